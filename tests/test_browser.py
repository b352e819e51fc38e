"""The docs in a real browser: headless Chromium opens the index, the seed page and the
conformance statement from file://, follows every link, reports no console errors or failed
loads, and draws the pages in colour at desktop and phone sizes, none wider than the window.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (NUL-separated JSON
on file descriptors 3 and 4), which needs only the standard library: no websocket client, no
driver. Skips, with the reason, when no Chromium is installed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from generator.model import Page

from .conftest import ROOT, SEED

DOCS = ROOT / "generated" / "docs"
PAGES = (DOCS / "index.html", DOCS / f"{SEED.stem}.html", DOCS / "conformance.html")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)
"""Chromium reads commands from fd 3 and writes replies to fd 4: this puts the pipes there."""
TIMEOUT = 30.0
FAILURE_BADGE = (0xFF, 0xEB, 0xE9)
"""``--failure-bg`` in style.css: seen only when the stylesheet loaded and applied."""
TARGET_ROW = (0xFF, 0xF8, 0xC5)
"""``--target`` in style.css (light): the background of the row a fragment points into."""


def chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


class Browser:
    """One headless Chromium with one page, and everything it reported that went wrong."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()
        self._log = profile / "chromium.log"
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", TRAMPOLINE, str(to_chrome), str(from_chrome), executable]
                + [*FLAGS, f"--user-data-dir={profile / 'user-data'}", "about:blank"],
                pass_fds=(to_chrome, from_chrome),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        self.events: list[dict[str, Any]] = []
        target = next(
            t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        attached = self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], TIMEOUT)
            chunk = os.read(self._in, 1 << 20) if ready else b""
            if not chunk:
                log = self._log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium stopped answering; its log ends:\n{log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session:
            command["sessionId"] = self._session
        os.write(self._out, json.dumps(command).encode() + b"\0")
        while True:
            message = self._receive()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def navigate(self, url: str) -> None:
        """Go to ``url`` and wait for its load event (none comes for a fragment of this page)."""
        seen = len(self.events)
        result = self.call("Page.navigate", url=url)
        assert "errorText" not in result, f"{url}: {result['errorText']}"
        if "loaderId" in result:
            while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
                self.events.append(self._receive())

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, (expression, result["exceptionDetails"])
        return result["result"].get("value")

    def resize(self, width: int, height: int, *, mobile: bool) -> None:
        """A window of ``width`` x ``height`` CSS pixels; ``mobile`` honours the viewport meta."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads, as text."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry']['text']} ({params['entry'].get('url')})")
            elif method == "Network.loadingFailed":
                found.append(f"failed load: {params['errorText']}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self._proc.wait(timeout=TIMEOUT)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            os.close(self._in)
            os.close(self._out)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium: neither /usr/bin/chromium nor `chromium` on PATH")
    session = Browser(executable, tmp_path_factory.mktemp("chromium"))
    try:
        yield session
    finally:
        session.close()


def test_every_link_resolves_and_nothing_goes_wrong(browser: Browser, seed_page: Page) -> None:
    external = set()
    for page in PAGES:
        browser.navigate(page.as_uri())
        links: list[str] = browser.evaluate("Array.from(document.links, a => a.href)")
        assert links, page.name
        for link in dict.fromkeys(links):
            url = urlsplit(link)
            if url.scheme != "file":
                external.add(link)
                continue
            browser.navigate(link)
            assert browser.evaluate("location.href") == link
            assert browser.evaluate("document.title"), link
            if url.fragment:
                target = browser.evaluate("document.querySelector(':target')?.id")
                assert target == unquote(url.fragment), link
    assert external == {link.url for link in seed_page.links}
    browser.navigate(f"{PAGES[1].as_uri()}#0xC000")
    assert browser.evaluate("document.querySelector(':target').closest('tr').id") == "c-find-0xC000"
    assert browser.problems() == []


@pytest.mark.parametrize(
    ("width", "height", "mobile"), [(1280, 900, False), (390, 844, True)], ids=["desktop", "phone"]
)
def test_a_python_name_anchor_is_reachable_and_the_prose_is_visible(
    browser: Browser, seed_page: Page, width: int, height: int, mobile: bool
) -> None:
    browser.resize(width, height, mobile=mobile)
    browser.navigate(PAGES[0].as_uri())
    browser.navigate(f"{PAGES[1].as_uri()}#cmovestatus-move-destination-unknown")
    target = "document.querySelector(':target')"
    assert browser.evaluate(f"{target}.textContent") == "CMoveStatus.MOVE_DESTINATION_UNKNOWN"
    assert browser.evaluate(f"{target}.closest('tr').id") == "c-move-0xA801"
    box = f"(r => [r.left, r.top, r.right, r.bottom])({target}.getBoundingClientRect())"
    left, top, right, bottom = browser.evaluate(box)  # scrolled into the window, to a pixel
    inside = -1 <= left < right <= width + 1 and -1 <= top < bottom <= height + 1
    assert inside, (left, top, right, bottom)
    row_colour = f"getComputedStyle({target}.closest('td')).backgroundColor"
    assert browser.evaluate(row_colour) == "rgb({}, {}, {})".format(*TARGET_ROW)
    text = browser.evaluate("document.body.innerText.replace(/\\s+/g, ' ')")
    for paragraph in seed_page.prose:  # innerText holds only what is rendered
        assert paragraph.text in text, paragraph
    intro = "document.querySelector('main > p').querySelector('a').href"
    assert browser.evaluate(intro) == seed_page.links[0].url
    assert browser.problems() == []


@pytest.mark.parametrize(
    ("width", "height", "mobile"), [(1280, 900, False), (390, 844, True)], ids=["desktop", "phone"]
)
def test_pages_draw_in_colour_and_fit_the_window(
    browser: Browser, tmp_path: Path, width: int, height: int, mobile: bool
) -> None:
    browser.resize(width, height, mobile=mobile)
    for page in PAGES:
        browser.navigate(page.as_uri())
        png = browser.screenshot()
        (tmp_path / f"{page.stem}-{width}x{height}.png").write_bytes(png)
        size, colours = png_colours(png)
        assert size == (width, height)
        assert len(colours) >= 8, f"{page.name} looks blank: {sorted(colours)[:8]}"
        # clientWidth, not innerWidth: a phone widens its visual viewport to fit what overflows.
        widths = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        scroll, window = browser.evaluate(widths)
        assert scroll <= window == width, f"{page.name} scrolls sideways at {width}px"
    browser.navigate(f"{PAGES[1].as_uri()}#statuses")
    _, colours = png_colours(browser.screenshot())
    assert FAILURE_BADGE in colours, "no failure badge drawn at #statuses: no stylesheet?"
    # The conformance statement's tables each sit in a container of their own, which scrolls
    # sideways when the table is wider than the window (on a phone, the widest are), not the page.
    for anchor in ("presentation-contexts", "conformance-sop-specific", "parameters"):
        browser.navigate(f"{PAGES[2].as_uri()}#{anchor}")
        png = browser.screenshot()
        (tmp_path / f"conformance-{anchor}-{width}x{height}.png").write_bytes(png)
        assert len(png_colours(png)[1]) >= 8, anchor
    loose = "table.conformance:not(div.table-scroll > table)"
    assert browser.evaluate(f"document.querySelectorAll({loose!r}).length") == 0
    assert browser.evaluate("document.querySelectorAll('div.table-scroll').length") >= 10
    widest = browser.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('div.table-scroll'), d => d.scrollWidth))"
    )
    scroll, window = browser.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= window == width
    assert widest > width if mobile else widest <= width
    assert browser.problems() == []


def test_dark_mode_draws_a_dark_page(browser: Browser) -> None:
    browser.call(
        "Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}]
    )
    try:
        browser.resize(390, 844, mobile=True)
        browser.navigate(PAGES[1].as_uri())
        _, colours = png_colours(browser.screenshot())
    finally:
        browser.call("Emulation.setEmulatedMedia", features=[])
    assert (0x0D, 0x11, 0x17) in colours and (0xFF, 0xFF, 0xFF) not in colours


def png_colours(png: bytes) -> tuple[tuple[int, int], set[tuple[int, int, int]]]:
    """The size of an 8-bit RGB or RGBA PNG and the set of colours of its pixels.

    Decoded with zlib and struct only: chunks, then each scanline's filter undone (PNG spec 9).
    """
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, header = 8, bytearray(), b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        chunk = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            data += chunk
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    step = 3 if colour_type == 2 else 4
    stride = width * step
    raw = zlib.decompress(bytes(data))
    previous = bytearray(stride)
    colours: set[tuple[int, int, int]] = set()
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride) if kind else ():
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            else:
                guess = left + up - corner
                near = min((abs(guess - v), n) for n, v in enumerate((left, up, corner)))[1]
                line[i] = (line[i] + (left, up, corner)[near]) & 0xFF
        colours.update(zip(line[0::step], line[1::step], line[2::step]))
        previous = line
    return (width, height), colours
