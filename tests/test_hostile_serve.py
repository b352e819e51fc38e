"""Hostile peers and hostile command lines against ``python -m generated serve`` (issue 10).

No key makes matching slow: wildcards never backtrack, DA/TM/DT ranges parse in linear time and
sequence keys nest a bounded depth. The server stops on the first SIGINT or SIGTERM whatever it
is doing and logs "Stopped" once; a bad argument is one line and exit status 2; nothing a peer
sends reaches the log unescaped.

Servers are real ``python -m generated serve`` processes spoken to over 127.0.0.1: a key that made
the old matcher backtrack held the GIL for good, which would hang an in-process server and the
test with it.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ColorPaletteInformationModelFind,
    ColorPaletteInformationModelMove,
)

from generated.backend import FolderBackend, matches, temporal_matches, wildcard_matches

from .peers import free_port, wait_for_echo
from .test_serve import MODULE, REPO, palette

# Keys break their VR's rules (wildcards, ranges, 64 KiB values); pydicom says so when they are set.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR"),
    pytest.mark.filterwarnings("ignore:The value length"),
]

KIB_64 = 64 * 1024
FAST = 1.0
"""Seconds any one query may take, from the test's side: generous, as the machine is shared."""
PROCEDURE_CODES = 0x00081032
"""ProcedureCodeSequence, the SQ key the nesting tests pile up."""
CATASTROPHIC = "*" * 13 + "b"
"""The issue's key: against a 53-character value the old regex translation never finished."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the block once ``seconds`` have passed. An interval timer does it, so
    even a runaway ``re`` match is interrupted (it checks for signals) rather than hanging."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reference_match(pattern: str, value: str) -> bool:
    """Wild Card Matching by dynamic programming: slow, and plainly right.

    ``reachable[j]`` tells whether the pattern read so far matches ``value[:j]``.
    """
    reachable = [True] + [False] * len(value)
    for char in pattern:
        if char == "*":
            reachable = list(itertools.accumulate(reachable, operator.or_))
        else:
            reachable = [False] + [
                reachable[j] and char in ("?", value[j]) for j in range(len(value))
            ]
    return reachable[-1]


def nested_codes(depth: int) -> bytes:
    """Implicit VR Little Endian bytes of ``depth`` ProcedureCodeSequence Items, each inside the
    last, built directly: pydicom would need a recursion limit raised to write them."""
    undefined = 0xFFFFFFFF
    code = struct.pack("<HHI", 0x0008, 0x0100, 2) + b"A "
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, undefined) + code
    open_sequence = struct.pack("<HHI", 0x0008, 0x1032, undefined)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_sequence = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    inner = open_item + close_item
    return (
        (open_item + open_sequence) * (depth - 1)
        + inner
        + (close_sequence + close_item) * (depth - 1)
    )


def with_nested_codes(dataset: Dataset, depth: int) -> Dataset:
    """``dataset`` with a ProcedureCodeSequence ``depth`` Items deep, kept as raw bytes. pydicom
    writes those as they are only if the dataset claims to have been read in the encoding it is
    written in: Implicit VR Little Endian and its default character set."""
    value = nested_codes(depth)
    dataset.set_original_encoding(True, True, "iso8859")
    dataset[PROCEDURE_CODES] = RawDataElement(
        Tag(PROCEDURE_CODES), None, len(value), value, 0, True, True
    )
    return dataset


# --- matching, in process ------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(st.text("ab*?", max_size=12), st.text("ab*?", max_size=12))
@example(CATASTROPHIC, "a" * 53)
@example(CATASTROPHIC, "a" * 52 + "b")
@example("*a" * 26 + "*b", "a" * 53)
@example("*?" * 30, "ab" * 30)
def test_wildcard_matches_agrees_with_reference_without_backtracking(
    pattern: str, value: str
) -> None:
    with time_limit(FAST):
        found = wildcard_matches(pattern, value)
    assert found == reference_match(pattern, value)


def test_wildcard_keys_of_64_kib_are_fast() -> None:
    rng = random.Random(10)
    mixed = "".join(rng.choice("*?a") for _ in range(KIB_64))
    assert len(mixed) - mixed.count("*") > 53  # so it cannot match 53 characters
    cases = [
        (mixed, "a" * 53, False),
        ("*a" * (KIB_64 // 2), "a" * 53, False),
        ("*" * KIB_64 + "b", "a" * 52 + "b", True),
        ("*?" * 53 + "*" * (KIB_64 - 106), "a" * 53, True),
        ("?" * 53 + "*" * KIB_64, "b" * 53, True),
        ("*" + "a?" * 5000 + "b*", "a" * 20000, False),
        ("*" + "a?" * 5000 + "b*", "a" * 20000 + "b", True),
    ]
    for pattern, value, expected in cases:
        with time_limit(FAST):
            assert wildcard_matches(pattern, value) is expected


def test_temporal_keys_of_64_kib_are_fast_and_malformed() -> None:
    """A DA/TM range holds one "-" and a DT range at most three: more is malformed, refused at
    once rather than tried "-" by "-"; ranges that use them all still work."""
    keys = {
        "DA": ["-" * KIB_64, "20240101" + "-20240101" * 7000, "20240101-" + " " * KIB_64 + "x"],
        "TM": ["-" * KIB_64, "1015" + "-1015" * 13000],
        "DT": ["-" * KIB_64, "2024" + "-2024" * 13000, "20240101-0500" * 5000],
    }
    values = {"DA": "20240101", "TM": "101500", "DT": "20240101101500"}
    for vr, queries in keys.items():
        for query in queries:
            with time_limit(FAST):
                assert temporal_matches(vr, query, values[vr]) is False
    noon = "20240101120000-0500"
    assert temporal_matches("DT", f"{noon}-20240101130000-0500", "20240101123000-0500") is True
    assert temporal_matches("DT", f"-{noon}", "20240101113000-0500") is True
    assert temporal_matches("DA", "20240101-20240102", "20240102") is True
    assert temporal_matches("TM", "10-11", "1130") is True


def nested_identifier(depth: int) -> Dataset:
    """An identifier whose ProcedureCodeSequence key nests ``depth`` Items deep."""
    identifier = Dataset()
    inner = identifier
    for _ in range(depth):
        item = Dataset()
        item.CodeValue = "A"
        inner.ProcedureCodeSequence = Sequence([item])
        inner = item
    return identifier


def test_sequence_keys_nested_too_deep_are_refused() -> None:
    instance = palette("ALPHA")
    assert matches(instance, nested_identifier(16)) is False
    with pytest.raises(ValueError, match="nest more than 16 levels"):
        matches(instance, nested_identifier(17))


def test_a_file_nested_too_deep_for_pydicom_is_skipped(tmp_path: Path) -> None:
    palette("ALPHA").save_as(tmp_path / "fine.dcm", enforce_file_format=True)
    deep = with_nested_codes(palette("BETA"), 3000)
    deep.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    deep.save_as(tmp_path / "deep.dcm", enforce_file_format=True)
    backend = FolderBackend(tmp_path)
    assert [str(ds.ContentLabel) for ds in list(backend.instances())] == ["ALPHA"]
    assert backend.skipped == 1


# --- served over the network ---------------------------------------------------------------


class Served:
    """A ``python -m generated serve`` process whose log goes to a file, so a full pipe never
    blocks it."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.port = free_port()
        self.log_path = log
        command = [sys.executable, "-m", "generated", "serve", MODULE, str(folder)]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], cwd=REPO, stdout=sink, stderr=sink
            )

    @property
    def log(self) -> bytes:
        return self.log_path.read_bytes()

    def log_lines(self, text: str) -> list[str]:
        """The log lines containing ``text``."""
        return [line for line in self.log.decode(errors="replace").splitlines() if text in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def serve_cli(tmp_path: Path) -> Iterator[Callable[[Path], Served]]:
    """Start ``python -m generated serve`` over a folder; every process started is killed after."""
    started: list[Served] = []

    def start(folder: Path) -> Served:
        served = Served(folder, tmp_path / f"serve{len(started)}.log")
        started.append(served)
        wait_for_echo(served.port, served.process)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.stop()


def write_palettes(folder: Path, **attributes: dict[str, str]) -> Path:
    """One palette file per ContentLabel in ``attributes``, with those attributes."""
    folder.mkdir(exist_ok=True)
    for label, values in attributes.items():
        ds = palette(label)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"{label}.dcm", enforce_file_format=True)
    return folder


def find(port: int, identifier: Dataset, timeout: float = 5.0) -> tuple[list[str], int, float]:
    """C-FIND ``identifier`` (plus ContentLabel as return key) on an association of its own.

    Returns the matched labels, sorted, the final status (-1 if none came within ``timeout``)
    and the seconds it took. Implicit VR, as 64 KiB values overflow Explicit VR's length field.
    """
    identifier.ContentLabel = ""
    ae = AE("HOSTILE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(ColorPaletteInformationModelFind, ImplicitVRLittleEndian)
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="SERVICEGEN")
        assert assoc.is_established
        started = time.monotonic()
        responses = list(assoc.send_c_find(identifier, ColorPaletteInformationModelFind))
        elapsed = time.monotonic() - started
        if assoc.is_established:
            assoc.release()
    finally:
        ae.shutdown()
    final = responses[-1][0]
    labels = sorted(str(match.ContentLabel) for _, match in responses[:-1] if match is not None)
    return labels, int(final.Status) if "Status" in final else -1, elapsed


def keyed(**keys: str) -> Dataset:
    """An identifier with the given keys."""
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def test_served_wildcard_keys_are_answered_fast(
    tmp_path: Path, serve_cli: Callable[..., Served]
) -> None:
    folder = write_palettes(
        tmp_path / "palettes",
        ALPHA={"ContentDescription": "a" * 53},
        BETA={"ContentDescription": "a" * 52 + "b"},
    )
    served = serve_cli(folder)
    rng = random.Random(6)
    keys = {
        CATASTROPHIC: ["BETA"],
        "*" * 12 + "a" + "*" * 12 + "b": ["BETA"],
        "*a" * 26 + "*b": ["BETA"],
        "*" * (KIB_64 - 1) + "b": ["BETA"],
        "*?" * 53 + "*" * (KIB_64 - 106): ["ALPHA", "BETA"],
        "".join(rng.choice("*?a") for _ in range(KIB_64)): [],
    }
    for key, expected in keys.items():
        labels, status, elapsed = find(served.port, keyed(ContentDescription=key))
        assert (labels, status) == (expected, 0x0000), key[:40]
        assert elapsed < FAST, (key[:40], elapsed)


def test_served_temporal_keys_of_64_kib_are_answered_fast(
    tmp_path: Path, serve_cli: Callable[..., Served]
) -> None:
    folder = write_palettes(
        tmp_path / "palettes",
        ALPHA={"ContentDate": "20240101", "ContentTime": "101500"},
        BETA={"ContentDate": "20240102", "AcquisitionDateTime": "20240102101500"},
    )
    served = serve_cli(folder)
    first = date(1900, 1, 1)
    many_dates = "\\".join((first + timedelta(days=n)).strftime("%Y%m%d") for n in range(7000))
    keys: list[tuple[Dataset, list[str]]] = [
        (keyed(ContentDate="-" * KIB_64), []),
        (keyed(ContentDate="20240101" + "-20240101" * 7000), []),
        (keyed(ContentTime="1015" + "-1015" * 13000), []),
        (keyed(AcquisitionDateTime="-" * KIB_64), []),
        (keyed(AcquisitionDateTime="20240101-0500" * 5000), []),
        (keyed(ContentDate=many_dates + "\\20240102"), ["BETA"]),
        (keyed(ContentDate="20240101-20240102"), ["ALPHA", "BETA"]),
    ]
    for identifier, expected in keys:
        labels, status, elapsed = find(served.port, identifier)
        assert (labels, status) == (expected, 0x0000)
        assert elapsed < FAST, elapsed


def test_served_deep_sequence_key_fails_briefly(
    tmp_path: Path, serve_cli: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys nested past the bound, or past pydicom's recursion limit, are a failure response
    with a bounded log entry; the server goes on answering."""
    monkeypatch.setattr(_config, "LOG_REQUEST_IDENTIFIERS", False)  # the SCU would decode it
    served = serve_cli(write_palettes(tmp_path / "palettes", ALPHA={}))
    for depth in (20, 5000):
        _, status, elapsed = find(served.port, with_nested_codes(Dataset(), depth))
        assert 0xC000 <= status <= 0xCFFF and elapsed < FAST
    assert find(served.port, Dataset())[:2] == (["ALPHA"], 0x0000)
    assert len(served.log.splitlines()) < 300


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """800 palettes with 53-character descriptions, so a universal C-FIND runs a while. Written
    as copies of one file with the UID rewritten in place: pydicom per file would be slow."""
    folder = tmp_path_factory.mktemp("crowd")
    template_uid = "2.25.1000000000"
    template = palette("ALPHA", template_uid)
    template.ContentDescription = "a" * 53
    template.save_as(folder / "template", enforce_file_format=True)
    raw = (folder / "template").read_bytes()
    (folder / "template").unlink()
    for index in range(800):
        uid = f"2.25.{1000000000 + index}".encode()
        (folder / f"{index}.dcm").write_bytes(raw.replace(template_uid.encode(), uid))
    return folder


@pytest.mark.parametrize("count", [1, 2], ids=["once", "twice-10ms-apart"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_a_busy_server_once(
    crowd: Path, serve_cli: Callable[..., Served], signum: signal.Signals, count: int
) -> None:
    """While one peer's C-FIND is being answered and another sent the issue's key, the first
    signal stops the server within seconds; a second is ignored; "Stopped" is logged once."""
    served = serve_cli(crowd)
    peer = AE("BUSY")
    peer.add_requested_context(ColorPaletteInformationModelFind)
    try:
        assoc = peer.associate("127.0.0.1", served.port, ae_title="SERVICEGEN")
        responses = assoc.send_c_find(keyed(ContentLabel=""), ColorPaletteInformationModelFind)
        status, _ = next(responses)
        assert status.Status == 0xFF00
        # With this key the old matcher held the GIL for good: no signal handler ran again.
        find(served.port, keyed(ContentDescription=CATASTROPHIC), timeout=2.0)
        for _ in range(count):
            os.kill(served.process.pid, signum)
            time.sleep(0.01)
        started = time.monotonic()
        try:
            returncode = served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 15 s after {signum.name}")
        took = time.monotonic() - started
    finally:
        peer.shutdown()
    assert returncode == 0 and took < 10, (returncode, took)
    log = served.log.decode(errors="replace")
    assert len(served.log_lines(" INFO Stopped")) == 1, log
    assert len(served.log_lines(f"Stopping on {signum.name}")) == 1, log
    assert "Traceback" not in log


def test_a_signal_as_the_server_comes_up_stops_it(tmp_path: Path) -> None:
    """SIGTERM sent the moment the port opens lands while the "Serving" line is being logged,
    or in one of pynetdicom's threads. A handler that raised could leave logging's lock held,
    and a main thread blocked for good would never run the handler: each hung the stop in
    about one attempt of five. Every attempt must stop, with its one "Stopped" line."""
    folder = write_palettes(tmp_path / "palettes", ALPHA={})
    for attempt in range(10):
        served = Served(folder, tmp_path / f"early{attempt}.log")
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and served.process.poll() is None
                    time.sleep(0.005)
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=15) == 0
        finally:
            served.stop()
        assert len(served.log_lines(" INFO Stopped")) == 1, served.log


def test_peer_chosen_titles_reach_the_log_escaped(
    tmp_path: Path, serve_cli: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynetdicom logs the AE titles it refuses; escape sequences in them must not reach the
    terminal. The peer here skips pynetdicom's own checks, as a hostile one would."""
    served = serve_cli(write_palettes(tmp_path / "palettes", ALPHA={}))
    monkeypatch.setitem(_config.VALIDATORS, "AE", lambda value: (True, ""))
    hostile, peer = AE("\x1b[31mCALLING"), AE("PEER")
    for ae in (hostile, peer):
        ae.add_requested_context(ColorPaletteInformationModelMove)
    try:
        refused = hostile.associate("127.0.0.1", served.port, ae_title="\x1b]2;CALLED\x07")
        assert not refused.is_established
        assoc = peer.associate("127.0.0.1", served.port, ae_title="SERVICEGEN")
        assert assoc.is_established
        destination = "\x1b[2J\x7fX"
        list(
            assoc.send_c_move(keyed(ContentLabel=""), destination, ColorPaletteInformationModelMove)
        )
        if assoc.is_established:
            assoc.release()
    finally:
        hostile.shutdown()
        peer.shutdown()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=15)
    log = served.log
    assert b"\\x1b]2;CALLED\\x07" in log and b"\\x1b[2J\\x7fX" in log, log
    assert [byte for byte in log if (byte < 0x20 or byte == 0x7F) and byte != 0x0A] == [], log


# --- command line ----------------------------------------------------------------------------


BAD_ARGUMENTS = {
    "max-associations-zero": [MODULE, "FOLDER", "--max-associations", "0"],
    "max-associations-huge": [MODULE, "FOLDER", "--max-associations", "99999"],
    "timeout-negative": [MODULE, "FOLDER", "--acse-timeout", "-1"],
    "timeout-nan": [MODULE, "FOLDER", "--dimse-timeout", "nan"],
    "timeout-inf": [MODULE, "FOLDER", "--network-timeout", "inf"],
    "destinations-missing": [MODULE, "FOLDER", "--destinations", "FOLDER/none.txt"],
    "destinations-bad-line": [MODULE, "FOLDER", "--destinations", "FOLDER/bad.txt"],
    "port-too-big": [MODULE, "FOLDER", "--port", "99999"],
    "port-negative": [MODULE, "FOLDER", "--port", "-1"],
    "host-unresolvable": [MODULE, "FOLDER", "--host", "no-such-host.invalid"],
    "host-unencodable": [MODULE, "FOLDER", "--host", "a" * 300],
    "ae-title-17": [MODULE, "FOLDER", "--ae-title", "A" * 17],
    "ae-title-empty": [MODULE, "FOLDER", "--ae-title", ""],
    "ae-title-escape": [MODULE, "FOLDER", "--ae-title", "\x1b[31mX"],
    "port-in-use": [MODULE, "FOLDER", "--port", "BUSY"],
    "destination-port": [MODULE, "FOLDER", "--destination", "STORE=127.0.0.1:70000"],
    "module-private": ["_runtime", "FOLDER"],
    "module-main": ["__main__", "FOLDER"],
    "module-server": ["server", "FOLDER"],
    "module-backend": ["backend", "FOLDER"],
    "module-stdlib": ["os", "FOLDER"],
    "module-dots": ["..x", "FOLDER"],
    "module-empty": ["", "FOLDER"],
    "module-escape": ["\x1b]2;x\x07", "FOLDER"],
    "folder-escape": [MODULE, "FOLDER/\x1b[31mmissing"],
}


@pytest.mark.parametrize("arguments", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_are_one_clean_line(tmp_path: Path, arguments: list[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        (tmp_path / "bad.txt").write_text("# destinations\nSTORE=127.0.0.1:104\nSTORE 127.0.0.1\n")
        command = [arg.replace("FOLDER", str(tmp_path)).replace("BUSY", port) for arg in arguments]
        if "--port" not in command:
            command += ["--port", "0"]
        result = subprocess.run(
            [sys.executable, "-m", "generated", "serve", *command],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m generated"), result.stderr
    assert "error: " in lines[0] and "Traceback" not in result.stderr
    assert all(char.isprintable() for char in lines[0]), lines[0]
