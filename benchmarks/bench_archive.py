"""The served archive against DCMTK's ``dcmqrscp`` and pynetdicom's ``qrscp``, on the same files.

One run starts the SCPs one after another on 127.0.0.1, each over the same synthetic CT
archive (10,000 instances: 100 studies of one 100-image series, 20 patients), and measures them
with the same client, so every figure in a row is comparable:

- STUDY-level C-FIND of all studies (Study Root; 100 responses expected);
- IMAGE-level C-FIND of one series (Study Root, Study and Series Instance UID given; 100);
- C-MOVE of one study (100 instances) to DCMTK's ``storescp``, started here; the final
  response's completed sub-operations and the files ``storescp`` wrote are both counted;
- start-up with a warm index: process start until a C-ECHO succeeds, on a second start over the
  same folder (the first start, which may build an index, is shown apart);
- memory: VmRSS and VmHWM of the server process after start-up and after the C-FINDs, on the
  archive and on one ``--scale`` times its size, so whether memory grows with the archive shows.

A fourth column, ``floor``, is pynetdicom answering the same requests from memory
(``pynetdicom_floor.py``: the first request of each kind, untimed, is answered by the generated
package's backend and kept): what pynetdicom alone costs for each exchange, the bound below
which no server built on it goes. Its ``floor/best`` ratio says how much of the goal pynetdicom
leaves reachable; the floor is measured, never a contender in ``best``.

Requests are DCMTK's ``findscu`` and ``movescu``, one process per request as a user runs them,
timed from start to exit: the ``echoscu`` row (start, association, C-ECHO, release) is the part
of each figure that is not the request itself. Request figures are medians of ``--repeat`` runs
after one untimed warm-up. Every ratio is ours over the faster of ``dcmqrscp`` and ``qrscp``
among those that answered right (over the faster of both, marked ``?``, when neither did). The
goal: at most 1.0x on each, start-up with a warm index under 1 s, and memory that does not grow
with the archive beyond the index. A wrong count or status is printed loudly, not raised: the
run measures whatever the code does today, and exits 0 unless our server could not be measured.

Reference servers: ``/usr/bin/dcmqrscp`` (DCMTK; ``apt-get install dcmtk``) over hard links to
the archive's files in its storage area, indexed by ``dcmqridx``; and ``python -m pynetdicom
qrscp`` (needs SQLAlchemy: ``pip install -e '.[bench]'``) over an SQLite database filled by its
own ``db.add_instance`` with the archive's files where they are. A server that is not installed
is skipped, saying what to install. The archives and the reference indexes are built once under
``--cache`` and reused (building them is never timed); the package is generated afresh from
pynetdicom 3.0.4's pages in every run (``tests/sdist.py``; set ``SERVICEGEN_SDIST_CACHE`` to keep
the download). Run from the repository root (``--quick``: 1,000 instances, under a minute or two)::

    python benchmarks/bench_archive.py [--quick] [--instances N --studies S] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests import sdist

PAGES = ("query_retrieve_service_class", "storage_service_class", "verification_service_class")
PACKAGE = "benchmark_archive"
"""The generated package's name (the folder ``generate --out`` writes)."""
DCMTK = Path("/usr/bin")
"""DCMTK's tools, by absolute path: pynetdicom installs same-named scripts (``findscu``,
``storescp``, ...) into the virtual environment, first on PATH."""
OURS, DCMQRSCP, QRSCP, FLOOR = "servicegen", "dcmqrscp", "qrscp", "floor"
REFERENCES = (DCMQRSCP, QRSCP)
AE_TITLES = {OURS: "SERVICEGEN", DCMQRSCP: "DCMQRSCP", QRSCP: "QRSCP", FLOOR: "FLOOR"}
DESTINATION = "STORESCP"
"""The C-MOVE destination's AE title: DCMTK's storescp, which every server knows by it."""
ARCHIVE_FORMAT = 1
"""Part of the cache's folder names: bump it when :func:`instance` changes, so no run reuses
files written by an older version."""
UID_NAMESPACE = uuid.UUID("9d3b5c2e-0f61-4a8e-8a43-5b1f3e7c2d10")
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 600.0
"""Seconds a server may take until it answers C-ECHO: the current backend reads every file at
start-up, which takes minutes for the larger archive on a slow disk."""
POLL = 0.01
"""Seconds between C-ECHO attempts while a server starts: the resolution of start-up times."""

# --- The archive -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How many of each entity the synthetic archive holds; every series the same size."""

    instances: int
    studies: int
    series_per_study: int = 1

    @property
    def series(self) -> int:
        return self.studies * self.series_per_study

    @property
    def images_per_series(self) -> int:
        return self.instances // self.series

    @property
    def patients(self) -> int:
        """Five studies per patient: 20 patients for 100 studies, as a small clinic's archive."""
        return max(1, self.studies // 5)

    @property
    def name(self) -> str:
        return f"ct-{self.instances}-{self.studies}-{self.series_per_study}-v{ARCHIVE_FORMAT}"

    def scaled(self, factor: int) -> Layout:
        """The same shape with ``factor`` times the studies (so the same series sizes)."""
        return Layout(self.instances * factor, self.studies * factor, self.series_per_study)

    def check(self) -> None:
        if min(self.instances, self.studies, self.series_per_study) < 1:
            raise SystemExit("--instances, --studies and --series-per-study must be at least 1")
        if self.instances % self.series:
            raise SystemExit(
                f"{self.instances} instances do not split evenly into {self.series} series"
            )

    def paths(self) -> Iterator[tuple[int, int, int, str]]:
        """(study, series, image, path relative to the archive folder) of every instance."""
        for study in range(self.studies):
            for series in range(self.series_per_study):
                for image in range(self.images_per_series):
                    yield study, series, image, f"ST{study:04d}/SE{series:02d}/IM{image:05d}.dcm"


def uid(*path: object) -> str:
    """A UID that is the same in every run: ``2.25.`` and a name-based (version 5) UUID, as PS3.5
    B.2 allows, so cached archives and reference indexes stay valid."""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(map(str, path))).int}"


PIXELS = b"".join((value * 4).to_bytes(2, "little") for value in range(1024))
"""32 x 32 pixels of 12 bits in 16 (2 KiB): a real CT slice's 512 KiB would time the disk."""


def instance(layout: Layout, study: int, series: int, image: int) -> Dataset:
    """One CT Image Storage instance with the attributes a modality writes at each level."""
    patient = study % layout.patients
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uid("image", study, series, image)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = (
        f"2024{1 + study // 28 % 12:02d}{1 + study % 28:02d}"
    )
    ds.StudyTime = ds.SeriesTime = f"{8 + study % 10:02d}{study % 60:02d}00"
    ds.ContentTime = f"{8 + study % 10:02d}{study % 60:02d}{image % 60:02d}"
    ds.AccessionNumber = f"ACC{study:07d}"
    ds.Modality = "CT"
    ds.Manufacturer = "SERVICEGEN BENCH"
    ds.InstitutionName = "Loopback Hospital"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = "CT CHEST WITH CONTRAST"
    ds.SeriesDescription = f"AXIAL {series + 1}.0 MM"
    ds.PatientName = f"Patient{patient:03d}^Bench"
    ds.PatientID = f"PID{patient:05d}"
    ds.PatientBirthDate = f"19{40 + patient % 60:02d}0{1 + patient % 9}15"
    ds.PatientSex = "FM"[patient % 2]
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.StudyInstanceUID = uid("study", study)
    ds.SeriesInstanceUID = uid("series", study, series)
    ds.StudyID = str(study + 1)
    ds.SeriesNumber = series + 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = image + 1
    ds.ImagePositionPatient = [-160, -160, -image]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid("frame", study)
    ds.SliceLocation = -image
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.PixelSpacing = [10, 10]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.PixelData = PIXELS
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def cached(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build(target)`` unless a finished one is there already.

    ``NAME.complete`` beside it marks a finished build (not a file inside: the archive folder is
    served as it is, and a stray file there would be read as a broken instance). An unfinished
    one, say from an interrupted run, is removed and built again. Built in place rather than
    renamed into place, since dcmqridx records the absolute paths of the files it indexes."""
    marker = target.with_name(f"{target.name}.complete")
    if marker.exists() and target.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    build(target)
    marker.touch()
    return target


def build_archive(cache: Path, layout: Layout) -> Path:
    def write(folder: Path) -> None:
        print(f"  writing {layout.instances:,} instances into {folder} ...", flush=True)
        for study, series, image, relative in layout.paths():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            instance(layout, study, series, image).save_as(path, enforce_file_format=True)

    return cached(cache / layout.name, write)


# --- Processes ---------------------------------------------------------------------------------


class ServerFailed(Exception):
    """A server exited or never answered; the message says which."""


DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
"""The environment of every DCMTK process. Debian's DCMTK 3.6.7 leaves Nagle's algorithm on
unless TCP_NODELAY=1 is set: each message it sends in two writes (PDU header, then body) then
waits out the peer's delayed ACK, about 40 ms. storescp took 9 s to receive a 100-instance study
that way (0.1 s with it set), which would have timed storescp instead of the servers; dcmqrscp
and the clients get it too, so the reference is DCMTK at its fastest."""


class Process:
    """A started server, its output in a log file (a pipe nobody reads would fill and stall it).

    ``started`` is taken just before the process is created, so a start-up time measured from it
    includes the interpreter's own start."""

    def __init__(self, name: str, command: Sequence[str], log: Path, cwd: Path | None = None):
        self.name, self.log = name, log
        self._output: IO[bytes] = log.open("ab")
        dcmtk = Path(command[0]).parent == DCMTK
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._output,
            stderr=subprocess.STDOUT, env=DCMTK_ENV if dcmtk else None,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The log's last ``lines``, indented, for a failure's message."""
        if not self._output.closed:
            self._output.flush()
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(f"    | {line}" for line in text[-lines:])

    def stop(self) -> None:
        """SIGTERM (each server stops cleanly on it), then SIGKILL after 15 s."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self._output.close()


class Processes:
    """Every process this run started, so a ``finally`` can stop them all, whatever failed."""

    def __init__(self) -> None:
        self.started: list[Process] = []

    def start(
        self, name: str, command: Sequence[str], log: Path, cwd: Path | None = None
    ) -> Process:
        process = Process(name, command, log, cwd)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


def free_port() -> int:
    """A loopback port nobody listens on now, for servers that cannot be given port 0."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB: resident now, and the most it ever was."""
    fields: dict[str, int] = {}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    if len(fields) < 2:  # gone, or a zombie: it has no memory left to show
        raise ServerFailed(f"process {pid} exited before its memory was read")
    return fields["VmRSS"], fields["VmHWM"]


# --- The client --------------------------------------------------------------------------------


@dataclass
class Answer:
    """One timed request: the client's wall time, and what the server delivered."""

    seconds: float
    count: int
    """C-FIND: Pending responses; C-MOVE: the final response's completed sub-operations."""
    status: str
    """The final response's status as the DCMTK tool prints it, or why there was none."""
    failed: int = 0
    received: int = 0
    """C-MOVE: files storescp wrote."""

    def ok(self) -> bool:
        return self.status in ("Success", "0x0000")


_FINAL_FIND = re.compile(r"Received Final Find Response \((?P<status>[^)]*)\)")
_PENDING_FIND = re.compile(r"^I: Find Response: \d+ \(Pending", re.MULTILINE)
_MOVE_FIELD = re.compile(r"^D: (?P<name>[A-Za-z ]+?) *: (?P<value>.*)$", re.MULTILINE)


class Client:
    """The one client every server is measured with.

    Timed requests run DCMTK's findscu and movescu (by absolute path), one process each, as a
    user would, and are timed from its start to its exit: that includes the tool's own start
    (about 30 ms, most of it reading DCMTK's data dictionary) and the association, which the
    ``echoscu`` row shows on its own. A C client rather than pynetdicom in this process, which
    takes about a millisecond to take in each response (its reactor polls): with 100 or 10,000
    responses that would time the client. C-ECHO polls while a server starts use pynetdicom, whose
    association attempts cost far less than starting a process each time."""

    def __init__(self) -> None:
        # A refused connection while a server starts is expected: pynetdicom would log each.
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        self.ae = AE("BENCHSCU")
        self.ae.add_requested_context(Verification)

    def echo(self, port: int, called: str) -> bool:
        assoc = self.ae.associate(LOOPBACK, port, ae_title=called)
        if not assoc.is_established:
            return False
        try:
            status = assoc.send_c_echo()
            return bool(status) and status.Status == 0x0000
        finally:
            assoc.release()

    def wait_for_echo(self, process: Process, port: int, called: str) -> float:
        """Seconds from the process's start until it first answers C-ECHO."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not process.alive():
                raise ServerFailed(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )
            if self.echo(port, called):
                return time.perf_counter() - process.started
            time.sleep(POLL)
        raise ServerFailed(f"{process.name} did not answer C-ECHO within {START_TIMEOUT:.0f} s")

    def _run(self, tool: str, *args: str) -> tuple[float, int, str]:
        """(wall seconds, exit status, output) of DCMTK's ``tool`` run with ``args``."""
        command = [str(DCMTK / tool), "-aet", "BENCHSCU", *args]
        began = time.perf_counter()
        try:
            done = subprocess.run(
                command, capture_output=True, env=DCMTK_ENV, timeout=START_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise ServerFailed(f"{tool} got no answer within {START_TIMEOUT:.0f} s") from None
        seconds = time.perf_counter() - began
        # Responses are dumped as text, values and all: decode whatever a server put in them.
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        return seconds, done.returncode, output

    @staticmethod
    def _why(tool: str, status: int, output: str) -> str:
        lines = [line for line in output.splitlines() if line[:2] in ("E:", "F:")]
        return f"{tool} exit {status}: " + (" ".join(lines[-2:]) or "no final response")

    def echo_floor(self, port: int, called: str) -> Answer:
        """echoscu: the start, association, C-ECHO and release every timed request also pays."""
        seconds, status, output = self._run("echoscu", "-aec", called, LOOPBACK, str(port))
        return Answer(
            seconds, 0, "Success" if status == 0 else self._why("echoscu", status, output)
        )

    def find(self, port: int, called: str, keys: Sequence[str]) -> Answer:
        """findscu -S (Study Root) with ``keys`` as ``-k`` options; -v for the final status."""
        options = [arg for key in keys for arg in ("-k", key)]
        seconds, status, output = self._run(
            "findscu", "-v", "-S", "-aec", called, *options, LOOPBACK, str(port)
        )
        final = _FINAL_FIND.search(output)
        return Answer(
            seconds,
            len(_PENDING_FIND.findall(output)),
            final["status"] if final else self._why("findscu", status, output),
        )

    def move(self, port: int, called: str, study: str, received: Path) -> Answer:
        """movescu -S of one study to storescp; -d, since only its debug output shows the final
        response's sub-operation counts."""
        for old in received.iterdir():
            old.unlink()
        seconds, status, output = self._run(
            "movescu", "-d", "-S", "-aec", called, "-aem", DESTINATION,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
            LOOPBACK, str(port),
        )  # fmt: skip
        _, final, tail = output.rpartition("Received Final Move Response")
        fields = (
            {m["name"]: m["value"].strip() for m in _MOVE_FIELD.finditer(tail)} if final else {}
        )

        def number(name: str) -> int:
            value = fields.get(f"{name} Suboperations", "")
            return int(value) if value.isdigit() else 0

        return Answer(
            seconds,
            number("Completed"),
            fields.get("DIMSE Status", "").split(":")[0] or self._why("movescu", status, output),
            failed=number("Failed") + number("Warning"),
            received=sum(1 for _ in received.iterdir()),
        )


STUDY_KEYS = (
    "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName", "PatientID", "StudyDate",
    "StudyTime", "AccessionNumber", "StudyID",
)  # fmt: skip
"""All studies, with return keys all three servers keep (qrscp drops any others)."""


def image_keys(study: int) -> list[str]:
    """Every image of the study's first series, by its Study and Series Instance UIDs."""
    return [
        "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={uid('study', study)}",
        f"SeriesInstanceUID={uid('series', study, 0)}", "SOPInstanceUID", "InstanceNumber",
    ]  # fmt: skip


# --- The servers -------------------------------------------------------------------------------


@dataclass
class Setting:
    """What every server's set-up needs from this run."""

    cache: Path
    work: Path
    destination_port: int
    package: Path | None = None


class Server:
    """One contender: how to prepare its index (untimed) and the command that serves it."""

    name = ""

    def missing(self) -> str | None:
        """Why this server cannot run here (and what to install), or None."""
        return None

    def prepare(self, setting: Setting, layout: Layout, archive: Path) -> None:
        """Build what the server needs to serve ``archive``, once per cache."""

    def command(self, setting: Setting, layout: Layout, archive: Path, port: int) -> list[str]:
        raise NotImplementedError

    def cwd(self, setting: Setting) -> Path | None:
        return None


class Ours(Server):
    """``python -m <package> serve`` on the three pages, over the archive folder itself."""

    name = OURS

    def command(self, setting: Setting, layout: Layout, archive: Path, port: int) -> list[str]:
        destinations = setting.work / "destinations.txt"
        destinations.write_text(f"{DESTINATION}={LOOPBACK}:{setting.destination_port}\n")
        return [
            sys.executable, "-m", PACKAGE, "serve", *PAGES, str(archive), "--port", str(port),
            "--ae-title", AE_TITLES[OURS], "--destinations", str(destinations),
        ]  # fmt: skip

    def cwd(self, setting: Setting) -> Path | None:
        assert setting.package is not None
        return setting.package.parent


DCMQRSCP_CONFIG = """\
# Written by benchmarks/bench_archive.py for one run.
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
storescp = ({destination}, {host}, {destination_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
# Read-only: nothing in the benchmark stores, and an R area can never delete the files.
{title}  {storage}  R  ({studies}, 1024mb)  ANY
AETable END
"""


class Floor(Server):
    """pynetdicom answering from memory (``pynetdicom_floor.py``): what pynetdicom alone costs
    for each request, the bound below which no server built on it can go."""

    name = FLOOR

    def command(self, setting: Setting, layout: Layout, archive: Path, port: int) -> list[str]:
        return [
            sys.executable, str(Path(__file__).with_name("pynetdicom_floor.py")), PACKAGE,
            str(archive), "--port", str(port), "--ae-title", AE_TITLES[FLOOR],
            "--destination", f"{DESTINATION}={LOOPBACK}:{setting.destination_port}",
        ]  # fmt: skip

    def cwd(self, setting: Setting) -> Path | None:
        assert setting.package is not None
        return setting.package.parent


class Dcmqrscp(Server):
    """DCMTK's archive over hard links to the archive's files in its storage area.

    It forks a child per association (its default), so the memory figures are the parent's,
    which holds no index in memory: each child reads ``index.dat`` from disk. Its single-process
    mode (``-s``) would have been the fairer comparison, but DCMTK 3.6.7's crashes (SIGSEGV in
    ``DUL_DropAssociation``) as the first association ends. ``-dhl``: no reverse DNS lookup of
    each peer, which the other two never do either."""

    name = DCMQRSCP

    def missing(self) -> str | None:
        absent = [tool for tool in ("dcmqrscp", "dcmqridx") if not (DCMTK / tool).exists()]
        return f"DCMTK's {', '.join(absent)}: apt-get install dcmtk" if absent else None

    def storage(self, setting: Setting, layout: Layout) -> Path:
        return setting.cache / f"{layout.name}.dcmqrscp"

    def prepare(self, setting: Setting, layout: Layout, archive: Path) -> None:
        def index(storage: Path) -> None:
            print(f"  indexing {layout.instances:,} instances with dcmqridx ...", flush=True)
            linked = []
            for _, _, _, relative in layout.paths():
                target = storage / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(archive / relative, target)  # the same files, not copies of them
                except OSError:
                    shutil.copyfile(archive / relative, target)
                linked.append(str(target))
            for start in range(0, len(linked), 1000):  # command lines stay under ARG_MAX
                subprocess.run(
                    [str(DCMTK / "dcmqridx"), "-q", str(storage), *linked[start : start + 1000]],
                    check=True,
                )

        cached(self.storage(setting, layout), index)

    def command(self, setting: Setting, layout: Layout, archive: Path, port: int) -> list[str]:
        config = setting.work / f"dcmqrscp-{layout.name}.cfg"
        config.write_text(
            DCMQRSCP_CONFIG.format(
                port=port,
                host=LOOPBACK,
                destination=DESTINATION,
                destination_port=setting.destination_port,
                title=AE_TITLES[DCMQRSCP],
                storage=self.storage(setting, layout),
                # Its quota: at the limit, dcmqrscp would delete the oldest study on a store.
                studies=max(layout.studies, 100),
            )
        )
        # -ll fatal: past 32 MiB of index.dat (about 4,000 instances) it logs "DB ALERT: attempt
        # to seek beyond 33554432 bytes" for every record it reads, and reads on regardless; the
        # counts checked here would show a real failure.
        return [str(DCMTK / "dcmqrscp"), "-ll", "fatal", "-dhl", "-c", str(config), str(port)]


QRSCP_CONFIG = """\
# Written by benchmarks/bench_archive.py for one run.
[DEFAULT]
    ae_title: {title}
    port: {port}
    max_pdu: 16382
    acse_timeout: 30
    dimse_timeout: 30
    network_timeout: 30
    bind_address: {host}
    instance_location: {incoming}
    database_location: {database}
    log_identifier: False

[{destination}]
    address: {host}
    port: {destination_port}
"""

QRSCP_LOAD = """
import sys
from pydicom import dcmread
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from pynetdicom.apps.qrscp import db

database, listing = sys.argv[1], sys.argv[2]
url = f"sqlite:///{database}"
db.create(url)
session = sessionmaker(bind=create_engine(url))()
commit = session.commit
# add_instance commits after every file; one transaction for all of them is minutes faster.
session.commit = session.flush
with open(listing, encoding="utf-8") as paths:
    for path in paths.read().splitlines():
        db.add_instance(dcmread(path, stop_before_pixels=True), session, path)
commit()
"""
"""qrscp's own C-STORE handler, minus the network and the copy: ``db.add_instance`` of each
file, at its absolute path in the archive (qrscp reads the file from there for C-MOVE)."""


class Qrscp(Server):
    """pynetdicom's qrscp app over its SQLite database of the archive's files, in place."""

    name = QRSCP

    def missing(self) -> str | None:
        if importlib.util.find_spec("sqlalchemy") is None:
            return "SQLAlchemy for pynetdicom's qrscp: pip install -e '.[bench]'"
        return None

    def database(self, setting: Setting, layout: Layout) -> Path:
        return setting.cache / f"{layout.name}.qrscp" / "instances.sqlite"

    def prepare(self, setting: Setting, layout: Layout, archive: Path) -> None:
        def load(folder: Path) -> None:
            print(f"  loading {layout.instances:,} instances into qrscp's database ...", flush=True)
            listing = folder / "paths.txt"
            listing.write_text("".join(f"{archive / p}\n" for *_, p in layout.paths()))
            code = [sys.executable, "-c", QRSCP_LOAD, str(self.database(setting, layout))]
            subprocess.run([*code, str(listing)], check=True)

        cached(self.database(setting, layout).parent, load)

    def command(self, setting: Setting, layout: Layout, archive: Path, port: int) -> list[str]:
        config = setting.work / f"qrscp-{layout.name}.ini"
        config.write_text(
            QRSCP_CONFIG.format(
                title=AE_TITLES[QRSCP],
                port=port,
                host=LOOPBACK,
                # Absolute: qrscp resolves both against its own package folder.
                incoming=setting.work / "qrscp-incoming",
                database=self.database(setting, layout),
                destination=DESTINATION,
                destination_port=setting.destination_port,
            )
        )
        return [sys.executable, "-m", "pynetdicom", "qrscp", "-c", str(config)]


# --- Measuring ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one server did on one archive."""

    first_start: float | None = None
    warm_starts: list[float] = field(default_factory=list)
    after_start: tuple[int, int] | None = None
    after_work: tuple[int, int] | None = None
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    error: str | None = None


OPERATIONS = ("echo", "study", "image", "move")


def measure(
    server: Server,
    setting: Setting,
    layout: Layout,
    archive: Path,
    client: Client,
    processes: Processes,
    args: argparse.Namespace,
    received: Path,
    timed: bool,
) -> Figures:
    """Start ``server`` over ``archive`` ``1 + args.starts`` times, timing each start until C-ECHO;
    the last one stays up for the requests and the memory figures. With ``timed`` every request
    runs ``args.repeat`` times after a warm-up; without, each C-FIND runs once, so the memory
    after requests is comparable across archive sizes."""
    figures = Figures()
    title = AE_TITLES[server.name]
    log = setting.work / f"{server.name}-{layout.name}.log"
    middle = layout.studies // 2  # any study will do; the middle one is neither first nor last
    process: Process | None = None
    try:
        for start in range(1 + args.starts):
            port = free_port()
            command = server.command(setting, layout, archive, port)
            process = processes.start(server.name, command, log, server.cwd(setting))
            seconds = client.wait_for_echo(process, port, title)
            if start == 0:
                figures.first_start = seconds
            else:
                figures.warm_starts.append(seconds)
            if start < args.starts:
                process.stop()
        assert process is not None
        figures.after_start = memory(process.pid)
        requests: dict[str, Callable[[], Answer]] = {
            "echo": lambda: client.echo_floor(port, title),
            "study": lambda: client.find(port, title, STUDY_KEYS),
            "image": lambda: client.find(port, title, image_keys(middle)),
            "move": lambda: client.move(port, title, uid("study", middle), received),
        }
        for operation, request in requests.items():
            if timed:
                request()  # warm-up: first-use costs (imports, caches) are not what is measured
                figures.answers[operation] = [request() for _ in range(args.repeat)]
            elif operation in ("study", "image"):
                figures.answers[operation] = [request()]
        figures.after_work = memory(process.pid)
    except Exception as error:  # noqa: BLE001 - one failing must not lose the others' figures
        figures.error = str(error) if isinstance(error, ServerFailed) else repr(error)
        if process is not None and not isinstance(error, ServerFailed):
            figures.error += f"\n{process.tail()}"
    finally:
        if process is not None:
            process.stop()
    return figures


@dataclass
class Run:
    """Everything one invocation measured: per archive size, per server."""

    layouts: list[Layout]
    figures: dict[Layout, dict[str, Figures]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)


def generate_package(work: Path) -> Path:
    """The Q/R, Storage and Verification pages generated into ``work/pkg/PACKAGE`` by this
    checkout's generator, in a subprocess, as a user runs it."""
    pages = sdist.download_pages()
    spec = work / "spec"
    spec.mkdir()
    for page in PAGES:
        shutil.copy(pages / f"{page}.rst", spec / f"{page}.rst")
    out = work / "pkg" / PACKAGE
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "generator", "generate", "--spec", str(spec), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"servicegen generate failed:\n{result.stderr}")
    return out


def run(args: argparse.Namespace, work: Path) -> Run:
    layout = Layout(args.instances, args.studies, args.series_per_study)
    layout.check()
    result = Run([layout] + ([layout.scaled(args.scale)] if args.scale > 1 else []))
    ready: list[Server] = []
    servers: list[Server] = [Ours(), Dcmqrscp(), Qrscp(), Floor()]
    for server in servers:
        reason = server.missing()
        if reason:
            result.skipped[server.name] = reason
            print(f"SKIPPED {server.name}: needs {reason}", file=sys.stderr)
        else:
            ready.append(server)
    storescp = DCMTK / "storescp"
    absent = [
        tool
        for tool in ("storescp", "findscu", "movescu", "echoscu")
        if not (DCMTK / tool).exists()
    ]
    if absent:
        raise SystemExit(f"the client needs DCMTK's {', '.join(absent)}: apt-get install dcmtk")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    processes = Processes()
    client = Client()
    try:
        print("preparing (not timed):", flush=True)
        setting = Setting(cache, work, free_port(), generate_package(work))
        archives = {each: build_archive(cache, each) for each in result.layouts}
        for server in ready:
            for each, archive in archives.items():
                server.prepare(setting, each, archive)
        received = work / "received"
        received.mkdir()
        processes.start(
            "storescp",
            [str(storescp), "-aet", DESTINATION, "-od", str(received),
             str(setting.destination_port)],
            work / "storescp.log",
        )  # fmt: skip
        result.load.append(os.getloadavg())
        for server in ready:
            for each, archive in archives.items():
                timed = each == layout
                if server.name == FLOOR and not timed:
                    continue  # it holds answers in memory: its memory on a larger archive says nothing
                print(f"measuring {server.name} on {each.instances:,} instances ...", end="")
                sys.stdout.flush()
                began = time.monotonic()
                figures = measure(
                    server, setting, each, archive, client, processes, args, received, timed
                )
                print(f" {time.monotonic() - began:.0f} s", flush=True)
                result.figures.setdefault(each, {})[server.name] = figures
                if figures.error:
                    print(f"  FAILED: {figures.error}", file=sys.stderr, flush=True)
        result.load.append(os.getloadavg())
    finally:
        processes.stop_all()
        client.ae.shutdown()
    return result


# --- Reporting ---------------------------------------------------------------------------------


def expected(layout: Layout) -> dict[str, int]:
    """The right count for each request: one response per study, one per image of the series,
    one sub-operation per instance of the study."""
    return {
        "echo": 0,
        "study": layout.studies,
        "image": layout.images_per_series,
        "move": layout.instances // layout.studies,
    }


def wrong(operation: str, answers: list[Answer], right: int) -> str | None:
    """What is wrong with any of ``answers`` (count, final status, files received), or None."""
    problems = set()
    for answer in answers:
        if answer.count != right:
            what = "sub-operations completed" if operation == "move" else "responses"
            problems.add(f"{answer.count:,} {what}")
        if not answer.ok():
            problems.add(f"final status {answer.status}")
        if operation == "move" and (answer.failed or answer.received != right):
            problems.add(f"{answer.failed} failed, {answer.received} files received")
    if not problems:
        return None
    bad = sum(1 for a in answers if a.count != right or not a.ok())
    return f"{', '.join(sorted(problems))} (in {bad} of {len(answers)} runs)"


def milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f} ms"


def mebibytes(kib: int) -> str:
    return f"{kib / 1024:,.1f}"


NAMES = (OURS, *REFERENCES, FLOOR)
WIDTH = 36


def ratio(values: dict[str, float], correct: dict[str, bool], server: str = OURS) -> str:
    """``server``'s figure over the faster reference that answered right (over the faster of
    all, marked ?, when none did)."""
    references = [name for name in REFERENCES if name in values and correct.get(name, True)]
    unsure = not references
    if unsure:
        references = [name for name in REFERENCES if name in values]
    best = min((values[name] for name in references), default=0.0)
    if server not in values or best <= 0:
        return "-"
    return f"{values[server] / best:.2f}x" + ("?" if unsure else "")


def row(label: str, values: dict[str, float], correct: dict[str, bool], goal: str) -> None:
    cells = "".join(
        f"{milliseconds(values.get(name)) + ('' if correct.get(name, True) else ' !'):>16}"
        for name in NAMES
    )
    floor = ratio(values, correct, FLOOR)
    print(f"{label:{WIDTH}}{cells}{ratio(values, correct):>11}{floor:>12}  {goal}")


def report(result: Run, args: argparse.Namespace) -> list[str]:
    """Print the tables; return the alarms (wrong answers, failures, skipped servers)."""
    layout = result.layouts[0]
    figures = result.figures.get(layout, {})
    right = expected(layout)
    alarms: list[str] = []
    print()
    print(
        f"archive: {layout.instances:,} CT instances, {layout.studies:,} studies, "
        f"{layout.series:,} series of {layout.images_per_series:,}, {layout.patients:,} patients"
    )
    print(
        f"medians of {args.repeat} requests (DCMTK findscu/movescu, wall time) and "
        f"{args.starts} warm starts; load average {' -> '.join(f'{l[0]:.1f}' for l in result.load)}"
    )
    header = (
        f"{'':{WIDTH}}"
        + "".join(f"{name:>16}" for name in NAMES)
        + f"{'ours/best':>11}{'floor/best':>12}  goal"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "echo": "client floor: echoscu run",
        "study": f"C-FIND STUDY, all {right['study']:,} studies",
        "image": f"C-FIND IMAGE, a {right['image']:,}-image series",
        "move": f"C-MOVE a {right['move']:,}-image study",
    }
    for operation in OPERATIONS:
        values: dict[str, float] = {}
        correct: dict[str, bool] = {}
        for name, measured in figures.items():
            answers = measured.answers.get(operation)
            if not answers:
                continue
            values[name] = statistics.median(answer.seconds for answer in answers)
            problem = wrong(operation, answers, right[operation])
            correct[name] = problem is None
            if problem:
                alarms.append(
                    f"{name}: {labels[operation]}: expected {right[operation]:,}, got {problem}"
                )
        row(labels[operation], values, correct, "" if operation == "echo" else "<= 1.0x")
    warm = {name: statistics.median(f.warm_starts) for name, f in figures.items() if f.warm_starts}
    row("start-up, warm index, to C-ECHO", warm, {}, "<= 1.0x, < 1 s")
    first = {name: f.first_start for name, f in figures.items() if f.first_start is not None}
    row("first start (builds any index)", first, {}, "")
    if OURS in warm:
        verdict = "met" if warm[OURS] < 1.0 else "NOT MET"
        print(f"start-up with a warm index under 1 s: {verdict} ({milliseconds(warm[OURS])})")

    print()
    print(
        "server memory, MiB: VmRSS now / VmHWM peak (dcmqrscp: the parent; each association is a child)"
    )
    print(f"{'':{WIDTH}}" + "".join(f"{name:>20}" for name in NAMES))
    for each in result.layouts:
        for when in ("after_start", "after_work"):
            cells = []
            for name in NAMES:
                pair = getattr(result.figures.get(each, {}).get(name), when, None)
                cells.append(
                    "-" if pair is None else f"{mebibytes(pair[0])} / {mebibytes(pair[1])}"
                )
            what = "after start-up" if when == "after_start" else "after C-FINDs"
            print(
                f"{f'{each.instances:,} instances, {what}':{WIDTH}}"
                + "".join(f"{c:>20}" for c in cells)
            )
    if len(result.layouts) > 1:
        big = result.layouts[1]
        cells = []
        for name in NAMES:
            small_figures = result.figures.get(layout, {}).get(name)
            big_figures = result.figures.get(big, {}).get(name)
            small = small_figures.after_start if small_figures else None
            large = big_figures.after_start if big_figures else None
            cells.append("-" if not (small and large) else f"{(large[1] - small[1]) / 1024:+,.1f}")
        label = f"peak growth at {args.scale}x, after start-up"
        print(
            f"{label:{WIDTH}}" + "".join(f"{c:>20}" for c in cells) + "   goal: ~0 beyond the index"
        )

    for each in result.layouts:
        for name, figures_of in result.figures.get(each, {}).items():
            if figures_of.error:
                alarms.append(f"{name} on {each.instances:,} instances FAILED: {figures_of.error}")
    for name, reason in result.skipped.items():
        alarms.append(f"{name}: SKIPPED, needs {reason}")
    return alarms


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--instances", type=int, default=10_000, help="instances in the archive")
    parser.add_argument("--studies", type=int, default=100, help="studies in the archive")
    parser.add_argument("--series-per-study", type=int, default=1, help="series in each study")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each request")
    parser.add_argument("--starts", type=int, default=3, help="timed warm starts of each server")
    parser.add_argument(
        "--scale",
        type=int,
        default=2,
        help="memory also on an archive this many times as large (1: no)",
    )
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "servicegen-bench-archive"),
        help="folder keeping archives and reference indexes between runs",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (server logs, configurations)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,000 instances in 10 studies, 2 requests, 1 start"
    )
    args = parser.parse_args()
    if args.quick:
        args.instances, args.studies, args.repeat, args.starts = 1000, 10, 2, 1
    if min(args.repeat, args.starts, args.scale) < 1:
        parser.error("--repeat, --starts and --scale must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        result = run(args, work)
    finally:
        if args.keep:
            print(f"server logs and configurations kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    alarms = report(result, args)
    if alarms:
        print()
        print("!" * 78)
        print('!!! WRONG ANSWERS, FAILURES OR MISSING SERVERS (" !" marks a wrong answer above):')
        for alarm in alarms:
            for number, line in enumerate(alarm.splitlines()):
                print(f"!!! {'' if number == 0 else '    '}{line}")
        print("!" * 78)
    # Wrong answers are reported, not failed on: the run measures what the code does today.
    # Only a run that measured nothing of ours is an error.
    ours = result.figures.get(result.layouts[0], {}).get(OURS)
    return 0 if ours is not None and ours.answers else 1


if __name__ == "__main__":
    sys.exit(main())
