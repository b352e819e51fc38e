"""The served Query/Retrieve archive, level by level (PS3.4 C.4.1), and its index: pynetdicom's
own Query/Retrieve, Storage and Verification pages generated into one package and served by its
``serve`` over 127.0.0.1 to real pynetdicom peers (DCMTK's tools are in test_qr_dcmtk.py).
"""

from __future__ import annotations

import importlib
import logging
import os
import sqlite3
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_FIND_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode, split_dataset
from pynetdicom.events import Event
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from .peers import ARCHIVE_PAGES, generate_archive

PATIENTS = (("Doe^Jane", "P1"), ("Doe^John", "P2"), ("Roe^Richard", "P3"))
INDEX = ".servicegen-index.sqlite3"


def instance(patient: int, study: int, series: int, number: int) -> Dataset:
    """One image of a small, regular archive: 3 patients, 2 studies each (the first with a CT
    and an MR series), 3 images per series; every other file Implicit VR Little Endian."""
    name, patient_id = PATIENTS[patient]
    modality = "CT" if series == 0 else "MR"
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.{patient}.{study}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.{series}"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{number}"
    ds.PatientName, ds.PatientID = name, patient_id
    ds.StudyDate = f"2024{patient + 1:02d}{study + 1:02d}"
    ds.StudyTime = "101010"
    ds.AccessionNumber = f"A{patient}{study}"
    ds.StudyID = f"S{study}"
    ds.Modality = modality
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = number + 1
    ds.file_meta = FileMetaDataset()
    syntax = ExplicitVRLittleEndian if number % 2 == 0 else ImplicitVRLittleEndian
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def archive_instances() -> list[Dataset]:
    return [
        instance(patient, study, series, number)
        for patient in range(3)
        for study in range(2)
        for series in range(2 if study == 0 else 1)
        for number in range(3)
    ]


@pytest.fixture(scope="module")
def qr(pynetdicom_pages: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated archive package's ``server`` module, imported from a temporary folder."""
    out = generate_archive(pynetdicom_pages, tmp_path_factory.mktemp("qr"))
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module(f"{out.name}.server")
    finally:
        sys.path.remove(str(out.parent))
        for name in [m for m in sys.modules if m.split(".")[0] == out.name]:
            del sys.modules[name]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    for ds in archive_instances():
        ds.save_as(path / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return path


@pytest.fixture
def start(qr: ModuleType) -> Iterator[Callable[..., int]]:
    """Serve the three pages over ``folder`` on a free port; every server is shut down."""
    servers: list[Any] = []

    def start_server(folder: Path, **kwargs: Any) -> int:
        server = qr.serve(ARCHIVE_PAGES, folder, port=0, block=False, **kwargs)
        servers.append(server)
        return int(server.server_address[1])

    try:
        yield start_server
    finally:
        for server in servers:
            server.ae.shutdown()


class Peer:
    """A pynetdicom SCU of the archive. Each request gets an association of its own: pynetdicom's
    requestor reactor can take the first response of a request made right after another on
    one association when the answer comes within a millisecond, as this archive's do."""

    def __init__(self, port: int, relational: bool = False, split: bool = False) -> None:
        self.port = port
        self.ae = AE("PEER")
        self.received: list[Dataset] = []
        self.received_bytes: dict[str, bytes] = {}
        """Each received instance's data set as it came, by SOP Instance UID."""
        self.identifiers: list[bytes] = []
        """Each response Identifier of a C-FIND as it came, encoded."""
        for uid in (
            PatientRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
            PatientRootQueryRetrieveInformationModelGet,
            PatientRootQueryRetrieveInformationModelMove,
        ):
            self.ae.add_requested_context(uid)
        self.negotiation: list[Any] = []
        for uid in (CTImageStorage, MRImageStorage):
            if split:  # one context per transfer syntax: each instance can go as it is kept
                self.ae.add_requested_context(uid, ImplicitVRLittleEndian)
                self.ae.add_requested_context(uid, ExplicitVRLittleEndian)
            else:
                self.ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            self.negotiation.append(build_role(uid, scp_role=True))
        if relational:
            item = SOPClassExtendedNegotiation()
            item.sop_class_uid = PatientRootQueryRetrieveInformationModelFind
            item.service_class_application_information = b"\x01"
            self.negotiation.append(item)

    def associate(self) -> Association:
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store), (evt.EVT_DIMSE_RECV, self._message)]
        assoc = self.ae.associate(
            "127.0.0.1",
            self.port,
            ae_title="SERVICEGEN",
            ext_neg=self.negotiation,
            evt_handlers=handlers,
        )
        assert assoc.is_established
        return assoc

    def _store(self, event: Event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        self.received.append(dataset)
        request = event.request
        assert isinstance(request, C_STORE) and isinstance(request.DataSet, BytesIO)
        self.received_bytes[str(dataset.SOPInstanceUID)] = request.DataSet.getvalue()
        return 0x0000

    def _message(self, event: Event) -> None:
        data = getattr(event.message, "data_set", None)
        if isinstance(event.message, C_FIND_RSP) and isinstance(data, BytesIO) and data.getvalue():
            self.identifiers.append(data.getvalue())

    def find(self, model: str = "S", **keys: Any) -> tuple[list[Dataset], list[int]]:
        """The matches and every status of a C-FIND (Study Root unless ``model`` is "P")."""
        uid = (
            PatientRootQueryRetrieveInformationModelFind
            if model == "P"
            else StudyRootQueryRetrieveInformationModelFind
        )
        identifier = Dataset()
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        assoc = self.associate()
        try:
            responses = list(assoc.send_c_find(identifier, uid))
        finally:
            assoc.release()
        return [m for _, m in responses if m is not None], [int(s.Status) for s, _ in responses]

    def retrieve(self, identifier: Dataset, uid: str, move_to: str = "") -> list[Any]:
        """Every (status, identifier) response of a C-GET, or of a C-MOVE to ``move_to``."""
        assoc = self.associate()
        try:
            if move_to:
                return list(assoc.send_c_move(identifier, move_to, uid))
            return list(assoc.send_c_get(identifier, uid))
        finally:
            assoc.release()

    def close(self) -> None:
        self.ae.shutdown()


@pytest.fixture
def connect() -> Iterator[Callable[..., Peer]]:
    peers: list[Peer] = []

    def make(port: int, relational: bool = False, split: bool = False) -> Peer:
        peers.append(Peer(port, relational, split))
        return peers[-1]

    try:
        yield make
    finally:
        for peer in peers:
            peer.close()


def values(matches: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(getattr(match, keyword)) for match in matches)


# --- one response per entity, computed attributes --------------------------------------------


def test_patient_level_answers_once_per_patient_with_counts(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    peer = connect(start(folder))
    found, statuses = peer.find(
        "P",
        QueryRetrieveLevel="PATIENT",
        PatientName="Doe*",
        PatientID="",
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedSeries="",
        NumberOfPatientRelatedInstances="",
    )
    assert statuses == [0xFF00, 0xFF00, 0x0000]
    assert values(found, "PatientID") == ["P1", "P2"]
    assert {(m.NumberOfPatientRelatedStudies, m.NumberOfPatientRelatedSeries) for m in found} == {
        (2, 3)
    }
    assert values(found, "NumberOfPatientRelatedInstances") == ["9", "9"]
    assert {m.RetrieveAETitle for m in found} == {"SERVICEGEN"}


def test_study_level_answers_once_per_study_with_modalities_and_classes(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    peer = connect(start(folder))
    found, statuses = peer.find(
        QueryRetrieveLevel="STUDY",
        StudyInstanceUID="",
        ModalitiesInStudy="MR",
        SOPClassesInStudy="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        PatientName="",
    )
    assert statuses == [0xFF00] * 3 + [0x0000]
    assert values(found, "PatientName") == ["Doe^Jane", "Doe^John", "Roe^Richard"]
    for match in found:
        assert list(match.ModalitiesInStudy) == ["CT", "MR"]
        assert list(match.SOPClassesInStudy) == [CTImageStorage, MRImageStorage]
        assert (match.NumberOfStudyRelatedSeries, match.NumberOfStudyRelatedInstances) == (2, 6)
    everything, _ = peer.find(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
    assert len(everything) == 6
    assert sorted(m.QueryRetrieveLevel for m in everything) == ["STUDY"] * 6


def test_series_and_image_levels_need_the_unique_keys_above(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    peer = connect(start(folder))
    study = "1.2.826.0.1.3680043.10.0.0"
    series, statuses = peer.find(
        QueryRetrieveLevel="SERIES",
        StudyInstanceUID=study,
        SeriesInstanceUID="",
        Modality="",
        NumberOfSeriesRelatedInstances="",
    )
    assert statuses[-1] == 0x0000
    assert sorted((m.Modality, int(m.NumberOfSeriesRelatedInstances)) for m in series) == [
        ("CT", 3),
        ("MR", 3),
    ]
    images, _ = peer.find(
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=study,
        SeriesInstanceUID=f"{study}.1",
        SOPInstanceUID="",
        InstanceNumber="",
    )
    assert values(images, "InstanceNumber") == ["1", "2", "3"]
    in_patient_root, statuses = peer.find(
        "P",
        QueryRetrieveLevel="IMAGE",
        PatientID="P1",
        StudyInstanceUID=study,
        SeriesInstanceUID=f"{study}.1",
        SOPInstanceUID="",
    )
    assert (len(in_patient_root), statuses[-1]) == (3, 0x0000)


@pytest.mark.parametrize(
    "model, keys",
    [
        pytest.param("S", {"PatientName": "Doe*"}, id="no-level"),
        pytest.param("S", {"QueryRetrieveLevel": "FOO"}, id="unknown-level"),
        pytest.param("S", {"QueryRetrieveLevel": "PATIENT"}, id="no-patient-level-in-study-root"),
        pytest.param(
            "P",
            {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.2", "SeriesInstanceUID": ""},
            id="series-without-patient-id",
        ),
        pytest.param(
            "S",
            {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.2*", "Modality": ""},
            id="wildcard-unique-key-above",
        ),
        pytest.param(
            "S", {"QueryRetrieveLevel": "STUDY", "Modality": "CT"}, id="series-key-at-study"
        ),
        pytest.param(
            "S", {"QueryRetrieveLevel": "STUDY", "SOPInstanceUID": ""}, id="image-key-at-study"
        ),
    ],
)
def test_an_identifier_the_levels_do_not_allow_gets_a900_and_no_matches(
    start: Callable[..., int],
    connect: Callable[..., Peer],
    folder: Path,
    model: str,
    keys: dict[str, str],
) -> None:
    found, statuses = connect(start(folder)).find(model, **keys)
    assert (found, statuses) == ([], [0xA900])


def test_an_unsupported_key_is_returned_empty_with_ff01(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    found, statuses = connect(start(folder)).find(
        QueryRetrieveLevel="STUDY", StudyInstanceUID="", StudyComments="", PatientName="Roe*"
    )
    assert statuses == [0xFF01, 0xFF01, 0x0000]
    assert [m.StudyComments for m in found] == ["", ""]


@pytest.mark.parametrize(
    "keys",
    [
        {"StudyComments": "nothing like it"},  # a key of no level: 0xFF01
        {"TimezoneOffsetFromUTC": "+0900"},  # the zone the query's times are in
        {"RetrieveAETitle": "ELSEWHERE"},  # the SCP's to return
    ],
)
def test_a_key_the_query_does_not_match_on_never_narrows_it(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path, keys: dict[str, str]
) -> None:
    """Whatever value such a key holds, every study PatientName selects is answered, as
    DCMTK's dcmqrscp answers; matching on it would silently drop them all."""
    found, statuses = connect(start(folder)).find(
        QueryRetrieveLevel="STUDY", StudyInstanceUID="", PatientName="Roe*", **keys
    )
    assert len(found) == 2 and statuses[-1] == 0x0000
    assert values(found, "RetrieveAETitle") == ["SERVICEGEN", "SERVICEGEN"]


def test_c_find_sends_values_as_their_files_hold_them(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """A response's values go out as the files hold them, not decoded and encoded again: the
    padding pydicom would trim stays, from an Explicit and an Implicit VR file alike. A Big
    Endian file's cannot go as they stand, so they are decoded, and still answer right."""
    series = "1.2.826.0.1.3680043.10.0.0.0"
    paths = sorted(folder.glob(f"{series}.*.dcm"))
    syntaxes = []
    for path, syntax in zip(paths, (None, None, ExplicitVRBigEndian)):
        ds = dcmread(path)
        ds.InstitutionName = "Loopback    "  # read back as "Loopback", kept so: 12 bytes
        if syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        dcmwrite(path, ds, enforce_file_format=True)  # in its TransferSyntaxUID's encoding
        syntaxes.append(ds.file_meta.TransferSyntaxUID)
    assert syntaxes == [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
    peer = connect(start(folder))
    found, statuses = peer.find(
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=series.rpartition(".")[0],
        SeriesInstanceUID=series,
        SOPInstanceUID="",
        InstitutionName="",
        StudyDate="",
    )
    assert statuses == [0xFF00] * 3 + [0x0000]
    assert sorted(str(m.InstitutionName) for m in found) == ["Loopback"] * 3
    assert [m.StudyDate for m in found] == ["20240101"] * 3
    as_held = [data.count(b"Loopback    ") for data in peer.identifiers]
    assert sorted(as_held) == [0, 1, 1]


def test_relational_queries_when_negotiated(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """Without relational queries a Patient Root STUDY query needs PatientID; with them
    (SOP Class Extended Negotiation byte 0 = 1, accepted) a patient key is enough."""
    port = start(folder)
    keys = {"QueryRetrieveLevel": "STUDY", "PatientName": "Roe*", "StudyInstanceUID": ""}
    assert connect(port).find("P", **keys) == ([], [0xA900])
    peer = connect(port, relational=True)
    assoc = peer.associate()
    accepted = assoc.acceptor.sop_class_extended
    assoc.release()
    assert accepted[PatientRootQueryRetrieveInformationModelFind] == b"\x01"
    found, statuses = peer.find("P", **keys)
    assert (len(found), statuses[-1]) == (2, 0x0000)


def test_an_identifier_shorter_than_it_claims_is_unable_to_process(
    start: Callable[..., int],
    connect: Callable[..., Peer],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostile peer's PatientName declares 0xFFFFFFF0 bytes: pydicom reads what there is, so
    it would match as if whole. The archive answers "Unable to process" (0xC000 range)."""
    import pynetdicom.association

    def hostile(*_args: Any, **_kwargs: Any) -> bytes:
        level = struct.pack("<HHI", 0x0008, 0x0052, 6) + b"STUDY "
        name = struct.pack("<HHI", 0x0010, 0x0010, 0xFFFFFFF0) + b"Doe*"
        return level + name

    peer = connect(start(folder))
    monkeypatch.setattr(pynetdicom.association, "encode", hostile)  # the peer's, not ours
    found, statuses = peer.find(QueryRetrieveLevel="STUDY", PatientName="Doe*")
    assert found == [] and len(statuses) == 1 and 0xC000 <= statuses[0] <= 0xCFFF


# --- retrieval -----------------------------------------------------------------------------


def test_c_get_sends_each_file_in_the_transfer_syntax_it_is_kept_in(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """Offered a context per transfer syntax, the peer gets every instance as it is kept, each
    value as the file holds it (so these files' data sets byte for byte, a value pydicom would
    write back shorter, its padding trimmed, included); offered one context of several, it gets
    the one the archive prefers, Explicit VR Little Endian."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = "1.2.826.0.1.3680043.10.0.0"
    identifier.SeriesInstanceUID = "1.2.826.0.1.3680043.10.0.0.0"
    files = sorted(folder.glob(f"{identifier.SeriesInstanceUID}.*.dcm"))
    explicit = next(path for path in files if not dcmread(path).original_encoding[0])
    padded = dcmread(explicit)
    padded.InstitutionName = "Loopback    "  # read back as "Loopback", written so: 8 bytes
    padded.save_as(explicit, enforce_file_format=True)
    port = start(folder)
    kept = {
        str(ds.SOPInstanceUID): ds.file_meta.TransferSyntaxUID
        for ds in map(dcmread, folder.glob(f"{identifier.SeriesInstanceUID}.*.dcm"))
    }
    assert sorted(kept.values()) == sorted([ExplicitVRLittleEndian] * 2 + [ImplicitVRLittleEndian])
    for split, expected in ((True, kept), (False, dict.fromkeys(kept, ExplicitVRLittleEndian))):
        peer = connect(port, split=split)
        responses = peer.retrieve(identifier, StudyRootQueryRetrieveInformationModelGet)
        assert int(responses[-1][0].Status) == 0x0000
        sent = {str(ds.SOPInstanceUID): ds.file_meta.TransferSyntaxUID for ds in peer.received}
        assert sent == expected
        for path in files:
            uid = str(dcmread(path).SOPInstanceUID)
            if sent[uid] == kept[uid]:
                assert peer.received_bytes[uid] == path.read_bytes()[split_dataset(path)[1] :]
        assert peer.received_bytes[str(padded.SOPInstanceUID)].count(b"Loopback    ") == 1


def test_a_retrieve_selects_by_its_unique_keys_alone(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """Other keys in a C-GET Identifier neither narrow nor empty it (C.4.2.2.1): a StudyDate
    and a PatientName that match nothing still retrieve all 6 instances of the study."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = "1.2.826.0.1.3680043.10.0.0"
    identifier.StudyDate = "19000101"
    identifier.PatientName = "Nobody"
    peer = connect(start(folder))
    responses = peer.retrieve(identifier, StudyRootQueryRetrieveInformationModelGet)
    assert int(responses[-1][0].Status) == 0x0000
    assert sorted(str(ds.SOPInstanceUID) for ds in peer.received) == [
        f"{identifier.StudyInstanceUID}.{series}.{number}"
        for series in (0, 1)
        for number in range(3)
    ]


@pytest.mark.parametrize("patient_id", ["*", "P?", "P*", "P1\\P2"])
def test_a_retrieve_whose_unique_key_is_a_pattern_or_list_is_refused(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path, patient_id: str
) -> None:
    """A unique key names entities, it does not search for them: a wildcard PatientID (or
    several, where only UIDs may be listed) gets 0xA900, not the whole archive."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "PATIENT"
    identifier.PatientID = patient_id
    peer = connect(start(folder))
    responses = peer.retrieve(identifier, PatientRootQueryRetrieveInformationModelGet)
    assert int(responses[-1][0].Status) == 0xA900 and peer.received == []


def test_c_move_stops_once_the_destination_goes_away(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """A destination that aborts after its second C-STORE: the move ends at once with 0xA702,
    the sub-operations not performed counted failed and every failed UID listed."""
    stored: list[str] = []
    lock = threading.Lock()

    def store(event: Event) -> int:
        with lock:
            stored.append(str(event.dataset.SOPInstanceUID))
            if len(stored) == 2:
                threading.Thread(target=event.assoc.abort).start()
        return 0x0000

    destination = AE("DYING")
    destination.add_supported_context(Verification)
    for uid in (CTImageStorage, MRImageStorage):
        destination.add_supported_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    server = destination.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)]
    )
    assert server is not None
    try:
        port = start(folder, destinations={"DYING": ("127.0.0.1", server.server_address[1])})
        peer = connect(port)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "PATIENT"
        identifier.PatientID = "P1"
        responses = peer.retrieve(identifier, PatientRootQueryRetrieveInformationModelMove, "DYING")
    finally:
        destination.shutdown()
    final, report = responses[-1]
    assert int(final.Status) == 0xA702 and report is not None
    assert "NumberOfRemainingSuboperations" not in final  # PS3.7: only in Pending and Cancel
    assert final.NumberOfCompletedSuboperations + final.NumberOfFailedSuboperations == 9
    assert len(responses) <= 5  # no stream of failed attempts after the abort
    failed = set(report.FailedSOPInstanceUIDList)
    assert len(failed) == final.NumberOfFailedSuboperations >= 6
    assert not failed & set(stored[: final.NumberOfCompletedSuboperations])


# --- the index -----------------------------------------------------------------------------


def patient_names(port: int, connect: Callable[..., Peer]) -> list[str]:
    found, _ = connect(port).find("P", QueryRetrieveLevel="PATIENT", PatientName="", PatientID="")
    return values(found, "PatientName")


def test_a_restart_reads_no_unchanged_file_and_rereads_a_changed_one(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """A file rewritten with the same size and modification time is, to the index, unchanged:
    a restart keeps answering from the index. Touch it and the next start reads it again."""
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Doe^John", "Roe^Richard"]
    index = (folder / INDEX).stat().st_mtime_ns
    # The patient's last file in path order: the one its PATIENT-level record comes from.
    target = max(folder.glob("1.2.826.0.1.3680043.10.2.*.dcm"))
    status = target.stat()
    edited = dcmread(target)
    edited.PatientName = "Poe^Richard"  # as long as "Roe^Richard"
    edited.save_as(target, enforce_file_format=True)
    assert target.stat().st_size == status.st_size
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Doe^John", "Roe^Richard"]
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Doe^John", "Poe^Richard"]
    assert (folder / INDEX).stat().st_mtime_ns >= index


def test_the_index_rebuilds_itself_when_deleted_corrupt_or_unusable(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    everyone = ["Doe^Jane", "Doe^John", "Roe^Richard"]
    assert patient_names(start(folder), connect) == everyone
    for name in os.listdir(folder):
        if name.startswith(INDEX):
            os.unlink(folder / name)
    for path in folder.glob("1.2.826.0.1.3680043.10.1.*"):
        path.unlink()
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Roe^Richard"]
    (folder / INDEX).write_bytes(b"not an index" * 100)
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Roe^Richard"]
    for name in os.listdir(folder):
        if name.startswith(INDEX):
            os.unlink(folder / name)
    (folder / INDEX).mkdir()  # cannot be an index file: kept in memory instead
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Roe^Richard"]


def test_a_row_with_no_size_or_time_is_stale_and_its_file_read_again(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path
) -> None:
    """An index whose table lacks the NOT NULL constraints (written by anything but servicegen)
    may hold a row with no modification time: it never equals the file's, so the file is read
    again rather than trusted, here making a patient whose rows were all blanked reappear."""
    everyone = ["Doe^Jane", "Doe^John", "Roe^Richard"]
    assert patient_names(start(folder), connect) == everyone
    with sqlite3.connect(folder / INDEX) as db:
        db.executescript(
            "CREATE TABLE loose AS SELECT * FROM files; DROP TABLE files;"
            " ALTER TABLE loose RENAME TO files;"
            " UPDATE files SET mtime_ns = NULL, size = NULL, uid = NULL WHERE patient_id = 'P3';"
        )
    assert patient_names(start(folder), connect) == everyone


def test_a_link_in_place_of_the_index_is_removed_never_written_through(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    (folder / INDEX).symlink_to(target)
    assert patient_names(start(folder), connect) == ["Doe^Jane", "Doe^John", "Roe^Richard"]
    assert target.read_bytes() == b"keep me" and not (folder / INDEX).is_symlink()


def test_an_index_row_naming_a_file_outside_the_folder_is_never_served(
    start: Callable[..., int], connect: Callable[..., Peer], folder: Path, tmp_path: Path
) -> None:
    """The index is the folder's cache: a row planted while the archive serves, pointing at a
    DICOM file beside the folder (a copy of one inside, under another name), is not sent."""
    outside = instance(0, 0, 0, 0)
    outside.PatientName = "Outside^Evil"
    outside.save_as(tmp_path / "outside.dcm", enforce_file_format=True)
    peer = connect(start(folder))
    with sqlite3.connect(folder / INDEX) as db:
        db.execute(
            "INSERT INTO files (path, sortkey, mtime_ns, size, uid, sop_class, study_uid,"
            " series_uid, header) SELECT ?, ?, 0, 0, uid, sop_class, study_uid, series_uid,"
            " header FROM files WHERE uid = ?",
            (b"../outside.dcm", b"..\0outside.dcm", str(outside.SOPInstanceUID)),
        )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = outside.StudyInstanceUID
    identifier.SeriesInstanceUID = outside.SeriesInstanceUID
    identifier.SOPInstanceUID = outside.SOPInstanceUID
    responses = peer.retrieve(identifier, StudyRootQueryRetrieveInformationModelGet)
    assert int(responses[-1][0].Status) == 0x0000
    assert [str(ds.PatientName) for ds in peer.received] == ["Doe^Jane"]
    with sqlite3.connect(folder / INDEX) as db:  # and one whose path is text, not bytes
        db.execute("INSERT INTO files (path, sortkey, mtime_ns, size) VALUES ('x.dcm', 'x', 0, 0)")
    start(folder)  # a restart forgets every row that names no file in the folder
    with sqlite3.connect(folder / INDEX) as db:
        planted = "SELECT count(*) FROM files WHERE path IN (?, 'x.dcm')"
        assert db.execute(planted, (b"../outside.dcm",)).fetchone()[0] == 0


# --- storage -------------------------------------------------------------------------------


def _store(port: int, dataset: Dataset) -> int:
    """The status of a pynetdicom peer's C-STORE of ``dataset``, whose command names the SOP
    Class and Instance UIDs ``dataset`` holds."""
    ae = AE("STORESCU")
    ae.add_requested_context(dataset.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="SERVICEGEN")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(dataset).Status)
    finally:
        assoc.release()


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "generated" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "change",
    [
        {"SOPInstanceUID": "1.2.3.999"},  # the command names 1.2.3.4
        {"SOPClassUID": MRImageStorage},  # the command names CT Image Storage
        {"StudyInstanceUID": None},
        {"SeriesInstanceUID": "1..2"},
        {"StudyInstanceUID": "1.2\\3.4"},
    ],
    ids=["other instance", "other class", "no study", "series no UID", "two studies"],
)
def test_a_c_store_of_a_data_set_that_is_not_the_instance_it_names_is_refused(
    start: Callable[..., int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str | None],
) -> None:
    """0xA900 "Data Set does not match SOP Class", nothing written, one log line: the data set
    must be the instance the request's Affected SOP Class and Instance UIDs name, and belong to
    a study and series (else it spoils every STUDY query and C-GET of its study)."""
    import pynetdicom.association

    named = instance(0, 0, 0, 0)
    named.SOPInstanceUID = "1.2.3.4"
    sent = instance(0, 0, 0, 0)
    sent.SOPInstanceUID = "1.2.3.4"
    for keyword, value in change.items():
        if value is None:
            delattr(sent, keyword)
        else:
            setattr(sent, keyword, value)
    monkeypatch.setattr(  # the peer's, not ours
        pynetdicom.association, "encode", lambda _ds, *args: encode(sent, *args)
    )
    folder = tmp_path / "archive"
    folder.mkdir()
    assert _store(start(folder), named) == 0xA900
    assert [p.name for p in folder.iterdir() if not p.name.startswith(INDEX)] == []
    [refusal] = _refusals(caplog)
    assert refusal.getMessage().startswith("C-STORE of") and refusal.exc_info is None


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack("<HH2sH", 0x0028, 0x0010, b"US", 3) + b"\x01\x00\x02",
        struct.pack("<HH2sH", 0x0028, 0x0030, b"VQ", 4) + b"abcd",
        struct.pack("<HH2sH", 0x0028, 0x4000, b"LT", 0x7FF0) + b"short",
    ],
    ids=["a US value of 3 bytes", "an unknown VR", "a value cut short"],
)
def test_a_c_store_of_a_data_set_the_archive_could_not_read_back_is_refused(
    start: Callable[..., int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tail: bytes,
) -> None:
    """Refused (the page's catch-all, 0xC000) with one log line saying why and no traceback,
    nothing written; so the archive still starts on the folder."""
    import pynetdicom.association

    def hostile(dataset: Dataset, *args: Any) -> bytes:
        body = encode(dataset, *args)
        assert body is not None
        return body + tail

    monkeypatch.setattr(pynetdicom.association, "encode", hostile)  # the peer's, not ours
    folder = tmp_path / "archive"
    folder.mkdir()
    assert _store(start(folder), instance(0, 0, 0, 0)) == 0xC000
    assert [p.name for p in folder.iterdir() if not p.name.startswith(INDEX)] == []
    [refusal] = _refusals(caplog)
    assert "refused" in refusal.getMessage() and refusal.exc_info is None
