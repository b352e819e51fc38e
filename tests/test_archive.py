"""The folder is the archive: several pages served by one AE, C-STORE written into the folder
durably, and a server started later on the same folder answering for what was stored. Peers
are DCMTK's storescu, echoscu and findscu over 127.0.0.1; the pages are pynetdicom 3.0.4's own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from generated.backend import FolderBackend

from .conftest import generate
from .test_serve import dcmtk_tool, free_port, wait_for_echo

PAGES = ("query_retrieve_service_class", "storage_service_class", "verification_service_class")


def ct(uid: str, patient: str = "Doe^Jane") -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
    ds.PatientName, ds.PatientID = patient, "P1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    ds.Modality = "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def instance_files(folder: Path) -> list[str]:
    """The files below ``folder`` but the archive's own (its index, named ``.servicegen-…``)."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if not p.name.startswith(".servicegen-index.")
    )


def test_store_writes_the_instance_into_the_folder_and_a_new_backend_finds_it(
    tmp_path: Path,
) -> None:
    backend = FolderBackend(tmp_path)
    uid = generate_uid()
    backend.store(ct(uid))
    written = tmp_path / f"{uid}.dcm"
    assert instance_files(tmp_path) == [written.name]
    assert dcmread(written).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    again = FolderBackend(tmp_path)
    assert [str(ds.SOPInstanceUID) for ds in list(again.instances())] == [uid]


def test_a_duplicate_replaces_the_instance_in_the_file_it_came_from(tmp_path: Path) -> None:
    uid = generate_uid()
    ct(uid, "Old^Name").save_as(tmp_path / "first.dcm", enforce_file_format=True)
    backend = FolderBackend(tmp_path)
    backend.store(ct(uid, "New^Name"))
    assert instance_files(tmp_path) == ["first.dcm"]
    assert [str(ds.PatientName) for ds in list(FolderBackend(tmp_path).instances())] == ["New^Name"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize("uid", ["../../escape", "1.2/../3", "1..2", ".1", "1" * 65, "1.2\\3.4"])
def test_a_sop_instance_uid_that_is_no_uid_never_names_a_file(tmp_path: Path, uid: str) -> None:
    """A peer chooses the SOPInstanceUID, and it names the file: anything but a UID (digits and
    single dots, at most 64 characters) is refused, and nothing is written or kept."""
    archive = tmp_path / "archive"
    archive.mkdir()
    backend = FolderBackend(archive)
    with pytest.raises(ValueError, match="cannot store an instance whose SOPInstanceUID is"):
        backend.store(ct(uid))
    assert instance_files(archive) == [] and list(backend.instances()) == []


def test_an_unfinished_store_is_never_read_as_an_instance(tmp_path: Path) -> None:
    """A crash between writing the temporary file and renaming it leaves the temporary file;
    the folder's next reader leaves it out instead of serving a possibly torn copy."""
    ct(generate_uid()).save_as(
        tmp_path / ".servicegen-0123456789abcdef.tmp", enforce_file_format=True
    )
    backend = FolderBackend(tmp_path)
    assert (list(backend.instances()), backend.skipped) == ([], 0)


@pytest.fixture
def archive_package(
    pynetdicom_pages: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A package generated from pynetdicom's Query/Retrieve, Storage and Verification pages."""
    spec, out = tmp_path / "spec", tmp_path / "pkg" / "archive"
    spec.mkdir()
    for page in PAGES:
        shutil.copy(pynetdicom_pages / f"{page}.rst", spec / f"{page}.rst")
    assert generate(spec, out, capsys)[0] == 0
    return out


@pytest.fixture
def serving(archive_package: Path, tmp_path: Path) -> Iterator[Callable[[Path], int]]:
    """Start ``python -m archive serve PAGE PAGE PAGE FOLDER``; every process is stopped."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(folder: Path) -> int:
        port = free_port()
        command = [sys.executable, "-m", archive_package.name, "serve", *PAGES, str(folder)]
        process = subprocess.Popen(
            [*command, "--port", str(port), "--ae-title", "ARCHIVE"],
            cwd=archive_package.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        wait_for_echo(port, process, called="ARCHIVE")
        return port

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)


def dcmtk(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    tool = dcmtk_tool(name)
    if tool is None:
        print(f"DCMTK's {name} not found: install DCMTK (apt-get install dcmtk) to run this test")
        pytest.skip(f"DCMTK's {name} is not installed")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_one_ae_serves_three_pages_stores_durably_and_a_restart_finds_it(
    serving: Callable[[Path], int], tmp_path: Path
) -> None:
    start = serving
    folder = tmp_path / "archive-folder"
    folder.mkdir()
    sent = tmp_path / "sent.dcm"
    uid = generate_uid()
    ct(uid).save_as(sent, enforce_file_format=True)
    port = start(folder)
    assert dcmtk("echoscu", "-aec", "ARCHIVE", "127.0.0.1", str(port)).returncode == 0
    stored = dcmtk("storescu", "-xe", "-aec", "ARCHIVE", "127.0.0.1", str(port), str(sent))
    assert stored.returncode == 0, stored.stdout + stored.stderr
    written = folder / f"{uid}.dcm"
    assert written.is_file()
    assert dcmread(written).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    port = start(folder)  # a second server on the same folder, as after a restart
    found = dcmtk(
        "findscu", "-S", "-aec", "ARCHIVE", "-k", "QueryRetrieveLevel=IMAGE",
        "-k", "StudyInstanceUID=1.2.3.4", "-k", "SeriesInstanceUID=1.2.3.4.5",
        "-k", f"SOPInstanceUID={uid}", "-k", "PatientName", "127.0.0.1", str(port),
    )  # fmt: skip
    assert found.returncode == 0, found.stdout + found.stderr
    log = found.stdout + found.stderr
    assert log.count("Find Response:") == 1 and "Doe^Jane" in log, log
    assert instance_files(folder) == [written.name]
