"""The generated docs: the RST reads back to the spec's model, and the HTML site keeps its anchor
scheme, badges, pydicom names, escaping and offline self-containment (README "HTML docs")."""

from __future__ import annotations

import dataclasses
import importlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from pydicom.uid import UID

from generator import render
from generator.docview import docs_view
from generator.errors import SpecError
from generator.html import uid_name
from generator.model import Page
from generator.parser import parse_page, read_page
from generator.rst_text import anchor_id
from generator.views import enum_name

from .conftest import ROOT, SEED

DOCS = ROOT / "generated" / "docs"
SEED_HTML = DOCS / f"{SEED.stem}.html"


class Scan(HTMLParser):
    """The ids, links, resources and text of one HTML page, and each element's id chain."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.links: list[str] = []
        self.resources: list[tuple[str, str]] = []
        self.badges: list[str] = []
        self.row_of: dict[str, str] = {}
        self.metas: list[dict[str, str]] = []
        self.text = ""
        self._row = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "tr":
            self._row = attr.get("id", "")
        if "id" in attr:
            self.ids.append(attr["id"])
            self.row_of[attr["id"]] = self._row
        if tag == "a" and "href" in attr:
            self.links.append(attr["href"])
        if tag in ("link", "script", "img", "iframe", "source", "video", "audio"):
            self.resources.append((tag, attr.get("href") or attr.get("src") or ""))
        if tag == "span" and "badge" in attr.get("class", "").split():
            self.badges.append(attr["class"])
        if tag == "meta":
            self.metas.append(attr)

    def handle_data(self, data: str) -> None:
        self.text += data


def scan(path: Path) -> Scan:
    return Scan(path.read_text(encoding="utf-8"))


def without_lines(page: Page) -> Page:
    """``page`` with what the round trip cannot keep blanked: line numbers, source and hash."""
    return dataclasses.replace(
        page,
        source="",
        sha256="",
        sop_classes=tuple(dataclasses.replace(s, line=0) for s in page.sop_classes),
        status_tables=tuple(
            dataclasses.replace(
                t, line=0, statuses=tuple(dataclasses.replace(s, line=0) for s in t.statuses)
            )
            for t in page.status_tables
        ),
        aliases=tuple(dataclasses.replace(a, line=0) for a in page.aliases),
        prose=tuple(dataclasses.replace(p, line=0) for p in page.prose),
    )


def round_trip(page: Page) -> Page:
    rst = render.render([page])[f"docs/{page.stem}.rst"]
    return parse_page(rst, f"docs/{page.stem}.rst")


def test_generated_rst_reads_back_to_the_spec_model(seed_page: Page) -> None:
    expected = without_lines(seed_page)
    assert without_lines(round_trip(seed_page)) == expected
    committed = read_page(DOCS / f"{SEED.stem}.rst")
    assert without_lines(committed) == expected
    assert committed.links == seed_page.links and committed.prose[0].text == (
        "The Color Palette Query/Retrieve Service Class defines a service that facilitates "
        "access to Color Palette objects."
    )
    assert [(a.dimse.value, a.code, a.name) for a in committed.aliases] == [
        ("C-FIND", 0xFF01, "MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS")
    ]


def test_pynetdicom_pages_read_back_to_their_models(pynetdicom_pages: Path) -> None:
    differ = []
    for path in sorted(pynetdicom_pages.glob("*.rst")):
        if path.stem in ("index", "inventory_service_class"):
            continue
        page = read_page(path)
        if without_lines(round_trip(page)) != without_lines(page):
            differ.append(path.stem)
    assert differ == []


def test_every_id_is_unique_and_every_link_resolves() -> None:
    pages = {path.name: scan(path) for path in sorted(DOCS.glob("*.html"))}
    assert set(pages) == {"index.html", "conformance.html", SEED_HTML.name}
    for name, page in pages.items():
        assert len(page.ids) == len(set(page.ids)), name
        for link in page.links:
            url = urlsplit(link)
            if url.scheme:
                assert url.scheme == "https", (name, link)
                continue
            target = pages[url.path] if url.path else page
            assert not url.fragment or unquote(url.fragment) in target.ids, (name, link)


def test_anchors_follow_the_documented_scheme(seed_page: Page) -> None:
    page = scan(SEED_HTML)
    for sop in seed_page.sop_classes:
        assert page.row_of[sop.keyword] == sop.keyword
        assert page.row_of[sop.keyword.lower()] == sop.keyword
        assert f"#{sop.keyword.lower()}" in page.links
    first_row: dict[str, str] = {}
    seen: dict[str, int] = {}
    for table in seed_page.status_tables:
        for status in table.statuses:
            row = f"{table.dimse.value.lower()}-0x{status.first:04X}"
            seen[row] = seen.get(row, 0) + 1
            anchor = row if seen[row] == 1 else f"{row}-{seen[row]}"
            assert anchor in page.ids and f"#{anchor}" in page.links
            first_row.setdefault(f"0x{status.first:04X}", anchor)
    assert "c-find-0xA700" in page.ids and "c-get-0xC000" in page.ids
    for code, row in first_row.items():
        assert page.row_of[code] == row, code
    assert len([i for i in page.ids if re.fullmatch(r"0x[0-9A-F]{4}", i)]) == len(first_row)


def test_a_code_repeated_within_a_service_gets_a_numbered_anchor() -> None:
    table = (
        ".. list-table::\n   :header-rows: 1\n\n   * - Code (hex)\n     - Category\n"
        "     - Description\n   * - 0x0000\n     - Success\n     - {}\n"
        "   * - 0x0110\n     - Failure\n     - Processing failure\n\n"
    )
    text = (
        "Echo\n====\n\n.. list-table::\n   :header-rows: 1\n\n   * - UID\n     - SOP Class\n"
        "   * - 1.2.840.10008.1.1\n     - Verification\n\n"
        f"C-ECHO Statuses\n---------------\n\n{table.format('Success')}"
        f"pynetdicom C-ECHO Statuses\n--------------------------\n\n{table.format('Done')}"
    )
    page = parse_page(text, "echo.rst")
    html = Scan(render.render([page])["docs/echo.html"])
    assert html.row_of["0x0000"] == "c-echo-0x0000"
    assert {"c-echo-0x0000", "c-echo-0x0000-2", "Verification"} <= set(html.ids)
    assert html.ids.count("0x0000") == 1


def test_every_status_row_shows_its_category_as_a_badge(seed_page: Page) -> None:
    expected = [s.category.value.lower() for t in seed_page.status_tables for s in t.statuses]
    assert scan(SEED_HTML).badges == [f"badge badge-{category}" for category in expected]
    css = (DOCS / "style.css").read_text(encoding="utf-8")
    for category in set(expected):
        assert f".badge-{category} {{" in css


def test_sop_classes_show_pydicom_names_and_services(seed_page: Page) -> None:
    text = SEED_HTML.read_text(encoding="utf-8")
    for sop in seed_page.sop_classes:
        row = re.search(rf'<tr id="{sop.keyword}">(.*?)</tr>', text, re.DOTALL)
        assert row is not None
        cells = re.findall(r"<td><p>(.*?)</p></td>", row.group(1))
        assert cells[0] == sop.uid
        assert cells[2] == ", ".join(d.value for d in sop.dimse)
        assert cells[3] == UID(sop.uid).name != sop.uid
    assert uid_name("1.2.3.4") == "unknown to pydicom"


def test_page_lists_its_links_to_the_standard(seed_page: Page) -> None:
    links = scan(SEED_HTML).links
    for link in seed_page.links:
        assert link.url in links


def test_index_lists_every_page_with_its_counts(seed_page: Page) -> None:
    text = (DOCS / "index.html").read_text(encoding="utf-8")
    row = re.search(r"<tbody>\s*<tr>(.*?)</tr>\s*</tbody>", text, re.DOTALL)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)
    assert cells[0] == f'<a href="{SEED_HTML.name}">{seed_page.title}</a>'
    assert cells[1] == str(len(seed_page.sop_classes))
    assert re.findall(r">([CN]-[A-Z-]+)</a>", cells[2]) == ["C-FIND", "C-GET", "C-MOVE"]
    assert cells[3] == str(sum(len(t.statuses) for t in seed_page.status_tables)) == "51"


def test_site_is_self_contained_and_fits_a_phone() -> None:
    css = (DOCS / "style.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css
    assert "@media (max-width: 40rem)" in css
    for path in sorted(DOCS.glob("*.html")):
        page = scan(path)
        assert page.resources == [("link", "style.css")], path.name
        assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.metas
        assert {"charset": "utf-8"} in page.metas


def test_spec_text_is_escaped_in_the_index_and_the_page(tmp_path: Path) -> None:
    title = '<script>alert("x")</script> & Co'
    text = (
        f"{title}\n{'=' * len(title)}\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - UID\n     - SOP Class\n   * - 1.2.840.10008.1.1\n     - Verification\n\n"
        "C-ECHO Statuses\n---------------\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - Code (hex)\n     - Category\n     - Description\n"
        "   * - 0x0000\n     - Success\n     - <img src=x onerror=alert(1)>\n"
        "   * - 0x0110\n     - Failure\n     - Processing failure\n"
    )
    outputs = render.render([parse_page(text, "evil.rst")])
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co"
    assert escaped.replace("&quot;", "&#34;") in outputs["docs/index.html"]
    assert "<script" not in outputs["docs/index.html"] + outputs["docs/evil.html"]
    assert "<img" not in outputs["docs/evil.html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in outputs["docs/evil.html"]


def test_links_that_could_run_code_are_refused_where_they_are() -> None:
    text = (
        "Echo\n====\n\nSee `PS3.7 <https://dicom.nema.org/>`__ and `trap <javascript:alert(1)>`__.\n\n"
        ".. list-table::\n   :header-rows: 1\n\n"
        "   * - UID\n     - SOP Class\n   * - 1.2.840.10008.1.1\n     - Verification\n\n"
        "C-ECHO Statuses\n---------------\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - Code (hex)\n     - Category\n     - Description\n"
        "   * - 0x0000\n     - Success\n     - `done <JaVa\tScRiPt:alert(2)>`__\n"
        "   * - 0x0110\n     - Failure\n     - `data <data:text/html,x>`__, `mail <mailto:a@b.c>`__\n"
    )
    with pytest.raises(SpecError) as caught:
        parse_page(text, "echo.rst")
    assert caught.value.lines() == [
        "echo.rst:4: link target 'javascript:alert(1)' is not a one-line http(s) or mailto URL",
        "echo.rst:25: link target 'JaVaScRiPt:alert(2)' is not a one-line http(s) or mailto URL",
        "echo.rst:28: link target 'data:text/html,x' is not a one-line http(s) or mailto URL",
    ]
    html = render.render(
        [
            parse_page(
                text.replace("javascript:", "https://x/")
                .replace("JaVa\tScRiPt:", "https://y/")
                .replace("data:", "https://z/"),
                "echo.rst",
            )
        ]
    )["docs/echo.html"]
    assert {"https://dicom.nema.org/", "mailto:a@b.c", "https://x/alert(1)"} <= set(
        Scan(html).links
    )


def test_every_row_and_sop_class_shows_its_python_name_with_an_anchor(seed_page: Page) -> None:
    module = importlib.import_module("generated.color_palette_service_class")
    page = scan(SEED_HTML)
    text = SEED_HTML.read_text(encoding="utf-8")
    shown: list[str] = []
    for sop in seed_page.sop_classes:
        assert getattr(module, sop.keyword) == sop.uid
        anchor = anchor_id(sop.keyword)
        assert anchor == sop.keyword.lower() and page.row_of[anchor] == sop.keyword
        shown.append(anchor)
    seen: dict[str, int] = {}
    for table in seed_page.status_tables:
        enum = getattr(module, enum_name(table.dimse))
        for status in table.statuses:
            name = f"{enum.__name__}.{enum(status.first).name}"
            anchor = anchor_id(name)
            row = f"{table.dimse.value.lower()}-0x{status.first:04X}"
            seen[row] = seen.get(row, 0) + 1
            assert page.row_of[anchor] == (row if seen[row] == 1 else f"{row}-{seen[row]}")
            assert f'<span class="target" id="{anchor}">{name}</span>' in text
            assert f'href="#{anchor}"' in text
            shown.append(anchor)
    assert shown[-1] == "cmovestatus-users-implementation-oc-on-c-move-c515"
    assert "cmovestatus-move-destination-unknown" in shown
    old = "cfindstatus-matches-are-continuing-one-or-more-optional-keys"
    assert page.row_of[old] == "c-find-0xFF01"
    assert module.CFindStatus.MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS == 0xFF01
    targets = re.findall(r'<span class="target" id="([^"]+)"', text)
    assert len(targets) == len(set(targets)) == 3 + 51 + 1
    assert targets == list(docs_view(seed_page).anchors)
    assert set(targets) == {*shown, old}


CLASHING = """\
Echo
====

CEchoStatus.PROCESSING_FAILURE
------------------------------

A section titled like a Python name.

.. list-table::
   :header-rows: 1

   * - UID
     - SOP Class
   * - 1.2.840.10008.1.1
     - Verification
   * - 1.2.3.4
     - VERIFICATION

C-ECHO Statuses
---------------

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0x0000
     - Success
     - Success
   * - 0x0110
     - Failure
     - Processing failure

pynetdicom C-ECHO Statuses
--------------------------

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0x0000
     - Success
     - Success
"""


def test_anchors_stay_unique_where_names_would_clash() -> None:
    """A row a later table replaces shares its code's name, two keywords differ only in case,
    and a section is titled like a row's name: every anchor still has an id of its own."""
    page = parse_page(CLASHING, "echo.rst")
    view = docs_view(page)
    assert [row.anchor for row in view.sop_rows] == ["Verification", None]
    assert [row.anchor for table in view.tables for row in table.rows] == [
        "CEchoStatus.SUCCESS (superseded)",
        "CEchoStatus.PROCESSING_FAILURE (2)",
        "CEchoStatus.SUCCESS",
    ]
    assert view.anchors == (
        "verification",
        "cechostatus-success-superseded",
        "cechostatus-processing-failure-2",
        "cechostatus-success",
    )
    html = Scan(render.render([page])["docs/echo.html"])
    assert len(html.ids) == len(set(html.ids))
    assert set(view.anchors) <= set(html.ids)
    assert "cechostatus-processing-failure" in html.ids  # the section's
    assert html.row_of["VERIFICATION"] == "VERIFICATION"  # the docutils site's row anchor
