"""Real peers for the end-to-end tests, one copy of each helper: free ports on 127.0.0.1, DCMTK's
tools found by absolute path, waiting for an AE to answer C-ECHO, stopping what a test started,
the archive package generated from pynetdicom's pages and served by ``python -m``, and findscu's
answers read back as datasets and statuses.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from generator.cli import main

ARCHIVE_PAGES = (
    "query_retrieve_service_class",
    "storage_service_class",
    "verification_service_class",
)
"""pynetdicom's pages the archive package is generated from and serves, in this order."""


def free_port() -> int:
    """A port nobody listens on right now, for servers that cannot be given port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dcmtk_tool(name: str) -> str | None:
    """The absolute path of DCMTK's ``name`` on PATH, skipping same-named tools of other
    projects (pynetdicom installs a ``storescp``, ``findscu``, … of its own into the virtual
    environment, first on PATH)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        probe = subprocess.run(
            [str(candidate), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        if "dcmtk" in (probe.stdout + probe.stderr).lower():
            return str(candidate)
    return None


def require_dcmtk(name: str) -> str:
    """DCMTK's ``name`` (absolute path), or skip the test saying why."""
    tool = dcmtk_tool(name)
    if tool is None:
        print(f"DCMTK's {name} not found: install DCMTK (apt-get install dcmtk) to run this test")
        pytest.skip(f"DCMTK's {name} is not installed")
    return tool


def dcmtk(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run DCMTK's ``name`` with ``args`` to the end (skipping the test if it is missing)."""
    return subprocess.run(
        [require_dcmtk(name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for_echo(
    port: int, process: subprocess.Popen[bytes], timeout: float = 20.0, called: str = "SERVICEGEN"
) -> None:
    """Wait until the AE ``called`` at ``port`` answers C-ECHO, failing early if ``process``
    died."""
    ae = AE("PROBE")
    ae.add_requested_context(Verification)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else b""
                pytest.fail(f"server exited with {process.returncode}: {output.decode()}")
            assoc = ae.associate("127.0.0.1", port, ae_title=called)
            if assoc.is_established:
                assoc.send_c_echo()
                assoc.release()
                return
            time.sleep(0.1)
        pytest.fail(f"nothing answered C-ECHO on port {port}")
    finally:
        ae.shutdown()


def stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """Stop ``process`` (SIGTERM, then SIGKILL after 10 s) and reap it. With ``group``, the
    process was started in a session of its own and its whole process group is signalled, so
    children it forked (dcmqrscp's, one per association) go with it."""

    def signal_it(number: int) -> None:
        try:
            if group:
                os.killpg(process.pid, number)
            else:
                process.send_signal(number)
        except ProcessLookupError:
            pass

    if process.poll() is None or group:
        signal_it(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        process.wait()


# The archive: pynetdicom's Query/Retrieve, Storage and Verification pages served by one AE


def generate_archive(pages: Path, root: Path) -> Path:
    """Generate the package ``archive`` under ``root`` from pynetdicom's pages in ``pages``
    (``ARCHIVE_PAGES``); returns the package's folder (its parent goes on ``sys.path``)."""
    spec, out = root / "spec", root / "pkg" / "archive"
    spec.mkdir(parents=True)
    for page in ARCHIVE_PAGES:
        shutil.copy(pages / f"{page}.rst", spec / f"{page}.rst")
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    return out


def start_archive(
    package: Path,
    folder: Path,
    port: int,
    ae_title: str = "ARCHIVE",
    destinations: Mapping[str, tuple[str, int]] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m archive serve PAGES FOLDER --port PORT --ae-title TITLE`` (with a
    ``--destinations`` file when given) and wait until it answers C-ECHO. The caller stops it
    (:func:`stop`)."""
    command = [sys.executable, "-m", package.name, "serve", *ARCHIVE_PAGES, str(folder)]
    command += ["--port", str(port), "--ae-title", ae_title]
    if destinations:
        listing = folder.parent / f"{folder.name}-destinations.txt"
        lines = (f"{title}={host}:{number}" for title, (host, number) in destinations.items())
        listing.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        command += ["--destinations", str(listing)]
    process = subprocess.Popen(
        command, cwd=package.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_echo(port, process, called=ae_title)
    except BaseException:
        stop(process)
        raise
    return process


# findscu's answers


@dataclass(frozen=True)
class Found:
    """What findscu received for one C-FIND: every response's Status in order (the Pending ones,
    then the final one), the Identifiers of the Pending responses, and its log."""

    statuses: list[int]
    responses: list[Dataset]
    log: str

    @property
    def final(self) -> int:
        """The Status of the final response."""
        assert self.statuses, self.log
        return self.statuses[-1]

    @property
    def pending(self) -> list[int]:
        """The Statuses of the Pending responses, one per Identifier received."""
        return self.statuses[:-1]

    @property
    def summary(self) -> str:
        """For assertion messages: the Statuses, findscu's errors and warnings, and the
        responses as keyword=value lines (the first 12)."""
        codes = ", ".join(f"0x{status:04X}" for status in self.statuses) or "none"
        lines = [f"statuses: {codes}"]
        lines += [line for line in self.log.splitlines() if line.startswith(("E:", "W:"))]
        for number, response in enumerate(self.responses[:12], 1):
            values = (f"{element.keyword or element.tag}={element.value}" for element in response)
            lines.append(f"response {number}: " + "; ".join(values))
        if len(self.responses) > 12:
            lines.append(f"... {len(self.responses) - 12} more responses")
        return "\n".join(lines)


_DIMSE_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")


def findscu(port: int, called: str, model: str, *keys: str) -> Found:
    """Query the AE ``called`` at 127.0.0.1:``port`` with DCMTK's findscu, information model
    ``model`` ("-P" Patient Root, "-S" Study Root), one ``-k`` per key ("Keyword=value", or
    "Keyword" for a return key). Each Pending response's Identifier is extracted to a file
    (``-X``) and read back with pydicom; the Statuses come from findscu's debug log, which
    prints every response received (findscu exits 0 whatever the final Status is)."""
    command = [require_dcmtk("findscu"), "-d", model, "-aec", called]
    for key in keys:
        command += ["-k", key]
    with tempfile.TemporaryDirectory(prefix="findscu-") as out:
        command += ["-X", "-od", out, "127.0.0.1", str(port)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        # The debug log, less DCMTK's notes on reading and writing files
        lines = (done.stdout + done.stderr).splitlines()
        log = "\n".join(line for line in lines if not line.startswith("D: Dcm"))
        assert done.returncode == 0, log
        files = sorted(Path(out).glob("rsp*.dcm"))
        responses: list[Dataset] = [dcmread(path) for path in files]
    statuses = [int(code, 16) for code in _DIMSE_STATUS.findall(log)]
    pending = [status for status in statuses if status in (0xFF00, 0xFF01)]
    assert len(pending) == len(responses), log
    return Found(statuses, responses, log)
