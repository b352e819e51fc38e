"""The folder is the archive: several pages served by one AE, C-STORE written into the folder
durably, and a server started later on the same folder answering for what was stored. Peers
are DCMTK's storescu, echoscu and findscu over 127.0.0.1; the pages are pynetdicom 3.0.4's own.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pynetdicom.dsutils import decode, encode

from generated.backend import FolderBackend

from .peers import dcmtk, findscu, free_port, generate_archive, start_archive, stop


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
def archive_package(pynetdicom_pages: Path, tmp_path: Path) -> Path:
    """A package generated from pynetdicom's Query/Retrieve, Storage and Verification pages."""
    return generate_archive(pynetdicom_pages, tmp_path)


@pytest.fixture
def serving(archive_package: Path) -> Iterator[Callable[[Path], int]]:
    """Start ``python -m archive serve PAGE PAGE PAGE FOLDER``; every process is stopped."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(folder: Path) -> int:
        port = free_port()
        processes.append(start_archive(archive_package, folder, port))
        return port

    try:
        yield start
    finally:
        for process in processes:
            stop(process)


def test_one_ae_serves_three_pages_stores_durably_and_a_restart_finds_it(
    serving: Callable[[Path], int], tmp_path: Path
) -> None:
    """Three instances of one study (a CT series of two, an MR series of one) stored with
    DCMTK's storescu; a second server on the same folder answers C-FIND for them once per
    entity at each level (PS3.4 C.4.1), the study's computed keys counting what was stored."""
    start = serving
    folder = tmp_path / "archive-folder"
    folder.mkdir()
    uids = [generate_uid() for _ in range(3)]
    sent = [ct(uids[0]), ct(uids[1]), ct(uids[2])]
    sent[2].SOPClassUID, sent[2].Modality = MRImageStorage, "MR"
    sent[2].SeriesInstanceUID = "1.2.3.4.6"
    sent[1].file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    files = [tmp_path / f"sent{number}.dcm" for number in range(3)]
    for dataset, path in zip(sent, files):
        dataset.save_as(path, enforce_file_format=True)
    port = start(folder)
    assert dcmtk("echoscu", "-aec", "ARCHIVE", "127.0.0.1", str(port)).returncode == 0
    stored = dcmtk("storescu", "-xe", "-aec", "ARCHIVE", "127.0.0.1", str(port), *map(str, files))
    assert stored.returncode == 0, stored.stdout + stored.stderr
    written = [folder / f"{uid}.dcm" for uid in uids]
    assert instance_files(folder) == sorted(path.name for path in written)
    assert dcmread(written[0]).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    port = start(folder)  # a second server on the same folder, as after a restart

    study = findscu(
        port, "ARCHIVE", "-S", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName",
        "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    )  # fmt: skip
    assert (study.final, len(study.responses)) == (0x0000, 1), study.summary
    (answer,) = study.responses
    assert (answer.StudyInstanceUID, answer.PatientName) == ("1.2.3.4", "Doe^Jane")
    assert sorted(answer.ModalitiesInStudy) == ["CT", "MR"]
    assert (answer.NumberOfStudyRelatedSeries, answer.NumberOfStudyRelatedInstances) == (2, 3)

    series = findscu(
        port, "ARCHIVE", "-S", "QueryRetrieveLevel=SERIES", "StudyInstanceUID=1.2.3.4",
        "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances",
    )  # fmt: skip
    assert series.final == 0x0000, series.summary
    assert sorted(
        (str(ds.SeriesInstanceUID), str(ds.Modality), int(ds.NumberOfSeriesRelatedInstances))
        for ds in series.responses
    ) == [("1.2.3.4.5", "CT", 2), ("1.2.3.4.6", "MR", 1)]

    image = findscu(
        port, "ARCHIVE", "-S", "QueryRetrieveLevel=IMAGE", "StudyInstanceUID=1.2.3.4",
        "SeriesInstanceUID=1.2.3.4.5", f"SOPInstanceUID={uids[1]}", "PatientName",
    )  # fmt: skip
    assert (image.final, len(image.responses)) == (0x0000, 1), image.summary
    assert image.responses[0].PatientName == "Doe^Jane"
    assert instance_files(folder) == sorted(path.name for path in written)


# --- what the archive keeps, reads back and sends ---------------------------------------------


def element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One Explicit VR Little Endian element with a short length field, raw; ``length``
    overrides the length it declares."""
    declared = len(value) if length is None else length
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, declared) + value


UNREADABLE = {
    "a US value of 3 bytes": element(0x00280010, b"US", b"\x01\x00\x02"),
    "an unknown VR": element(0x00280030, b"VQ", b"abcd"),
    "a value cut short": element(0x00284000, b"LT", b"short", length=0x7FF0),
}
"""Elements pydicom reads without complaint, but whose value cannot be decoded or is shorter
than it claims: appended to an instance, they end it (their tags come after its last)."""


@pytest.mark.parametrize("tail", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_file_whose_values_cannot_be_read_is_skipped_and_the_archive_still_starts(
    tmp_path: Path, tail: bytes
) -> None:
    good, bad = generate_uid(), generate_uid()
    ct(good).save_as(tmp_path / "good.dcm", enforce_file_format=True)
    ct(bad).save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    with (tmp_path / "bad.dcm").open("ab") as stream:
        stream.write(tail)
    backend = FolderBackend(tmp_path)
    assert [str(ds.SOPInstanceUID) for ds in backend.instances()] == [good]
    assert backend.skipped == 1


@pytest.mark.parametrize("tail", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_store_refuses_a_data_set_the_archive_could_not_read_back(
    tmp_path: Path, tail: bytes
) -> None:
    """As a peer's C-STORE brings it: undecoded, read by pynetdicom from the bytes it sent."""
    body = encode(ct(generate_uid()), False, True)
    assert body is not None
    dataset = decode(BytesIO(body + tail), False, True)
    dataset.file_meta = ct("1.2").file_meta
    backend = FolderBackend(tmp_path)
    with pytest.raises(ValueError):
        backend.store(dataset)
    assert instance_files(tmp_path) == [] and len(backend) == 0


def test_a_file_cut_short_after_it_was_indexed_is_not_sent(tmp_path: Path) -> None:
    """Its Pixel Data, which indexing does not read, declares more than the file holds: the
    sub-operation fails rather than send part of an image as if whole."""
    uid = generate_uid()
    whole = ct(uid)
    whole.add_new(0x7FE00010, "OB", b"\x01" * 4000)
    whole.save_as(tmp_path / "image.dcm", enforce_file_format=True)
    data = (tmp_path / "image.dcm").read_bytes()
    (tmp_path / "image.dcm").write_bytes(data[:-1000])
    found = FolderBackend(tmp_path).retrieve(Dataset())
    assert found.uids() == [uid]
    with pytest.raises(OSError, match="declares 4000 bytes but holds 3000"):
        found[0]


def test_a_store_never_replaces_a_file_that_holds_another_instance_or_none(
    tmp_path: Path,
) -> None:
    """``<UID>.dcm`` taken by a file the index does not know as that UID's: the instance gets
    the next free ``<UID>-<n>.dcm``, and the other file is left as it was."""
    other = generate_uid()
    ct(other).save_as(tmp_path / "1.2.6.dcm", enforce_file_format=True)
    (tmp_path / "1.2.7.dcm").write_bytes(b"notes, not DICOM")
    (tmp_path / "1.2.7-1.dcm").write_bytes(b"more notes")
    before = {name: (tmp_path / name).read_bytes() for name in instance_files(tmp_path)}
    backend = FolderBackend(tmp_path)
    backend.store(ct("1.2.6"))
    backend.store(ct("1.2.7"))
    backend.store(ct("1.2.6", "New^Name"))  # a duplicate: into the file it came from
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert instance_files(tmp_path) == sorted([*before, "1.2.6-1.dcm", "1.2.7-2.dcm"])
    assert str(dcmread(tmp_path / "1.2.6-1.dcm").PatientName) == "New^Name"
    assert sorted(str(ds.SOPInstanceUID) for ds in FolderBackend(tmp_path).instances()) == [
        "1.2.6",
        "1.2.7",
        other,
    ]


def test_a_store_the_index_cannot_record_keeps_no_new_file(tmp_path: Path) -> None:
    """The index failing after the file is written (a full disk, a lost index) makes the store
    fail, so the peer is told Failure: a new file must then not stay to be found at the next
    start as if it had been stored."""
    backend = FolderBackend(tmp_path)
    backend.store(ct("1.2.8"))
    backend._index._db.execute("PRAGMA query_only = ON")  # it reads, but every write fails
    with pytest.raises(sqlite3.OperationalError):
        backend.store(ct("1.2.9"))
    assert instance_files(tmp_path) == ["1.2.8.dcm"]


def test_an_index_row_naming_a_path_outside_the_folder_is_never_written_to(
    tmp_path: Path,
) -> None:
    archive, outside = tmp_path / "archive", tmp_path / "outside"
    archive.mkdir()
    outside.mkdir()
    backend = FolderBackend(archive)
    backend.store(ct("1.2.27"))
    with sqlite3.connect(archive / ".servicegen-index.sqlite3") as planted:
        planted.execute(
            "UPDATE files SET path = ?, sortkey = ? WHERE uid = '1.2.27'",
            (b"../outside/1.2.27.dcm", b"..\0outside\x001.2.27.dcm"),
        )
    backend.store(ct("1.2.27", "Again^Name"))
    assert list(outside.iterdir()) == []
    assert instance_files(archive) == ["1.2.27-1.dcm", "1.2.27.dcm"]  # the row no longer names
    assert str(dcmread(archive / "1.2.27-1.dcm").PatientName) == "Again^Name"  # the first


def test_a_file_unreadable_at_one_start_is_read_at_the_next(tmp_path: Path) -> None:
    """A file that cannot be read is not remembered as no instance: made readable (which keeps
    its modification time), the next start finds it. Run as another user when root, whom no
    permission stops."""
    folder = Path(tempfile.mkdtemp(prefix="servicegen-unreadable-"))  # nobody may enter
    try:
        uid = generate_uid()
        ct(uid).save_as(folder / "x.dcm", enforce_file_format=True)
        os.chmod(folder / "x.dcm", 0)
        os.chmod(folder, 0o777)
        assert as_unprivileged(lambda: len(FolderBackend(folder))) == 0
        os.chmod(folder / "x.dcm", 0o644)
        assert [str(ds.SOPInstanceUID) for ds in FolderBackend(folder).instances()] == [uid]
    finally:
        shutil.rmtree(folder)


def as_unprivileged(count: Callable[[], int]) -> int:
    """``count()``, in a child process of user nobody when this one is root."""
    if os.geteuid() != 0:
        return count()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(writer, str(count()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as result:
        found = result.read()
    os.waitpid(child, 0)
    return int(found)
