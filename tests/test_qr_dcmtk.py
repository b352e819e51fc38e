"""The served Query/Retrieve page checked with DCMTK's findscu, getscu and movescu, and compared
with DCMTK's reference archive ``dcmqrscp`` serving the same files.

C-FIND answers once per entity at the Query/Retrieve level (PS3.4 C.4.1): a small deterministic
archive (3 patients, 5 studies, 9 series, 26 CT and MR instances, Explicit and Implicit VR
files) is queried at every level of the Patient Root and Study Root models, and the responses,
as normalized dicts of the keys returned, must be the same set from both servers, with exact
counts. Where the two legitimately differ the test says so and why; where dcmqrscp does
something other than PS3.4 asks (it has no computed keys, it never checks an Identifier unless
told to), its behaviour is asserted too, so that a DCMTK that changes is noticed rather than
silently compared with.

Every server is a real process on 127.0.0.1 (``python -m archive serve``, ``dcmqrscp``,
``storescp``), started once for the module and stopped at its end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from .peers import (
    Found,
    dcmtk,
    findscu,
    free_port,
    generate_archive,
    require_dcmtk,
    start_archive,
    stop,
    wait_for_echo,
)

# The archive: who, which studies, which series, how many instances each


@dataclass(frozen=True)
class Instance:
    """One instance of the archive, with the attributes of every level it belongs to."""

    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study: int
    study_date: str
    accession: str
    description: str
    series: int
    modality: str
    number: int

    @property
    def study_uid(self) -> str:
        return uid("study", self.study)

    @property
    def series_uid(self) -> str:
        return uid("series", self.study, self.series)

    @property
    def sop_instance_uid(self) -> str:
        return uid("instance", self.study, self.series, self.number)

    @property
    def sop_class(self) -> str:
        return CTImageStorage if self.modality == "CT" else MRImageStorage

    def dataset(self, position: int) -> Dataset:
        """The instance as a file dataset; every third one Implicit VR Little Endian."""
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = self.sop_class, self.sop_instance_uid
        ds.PatientName, ds.PatientID = self.patient_name, self.patient_id
        ds.PatientBirthDate, ds.PatientSex = self.birth_date, self.sex
        ds.StudyInstanceUID, ds.StudyID = self.study_uid, str(self.study)
        ds.StudyDate, ds.StudyTime = self.study_date, "101500"
        ds.AccessionNumber, ds.StudyDescription = self.accession, self.description
        ds.ReferringPhysicianName = "Ref^Doc"
        ds.SeriesInstanceUID, ds.SeriesNumber = self.series_uid, self.series
        ds.Modality, ds.SeriesDescription = self.modality, f"{self.modality} series {self.series}"
        ds.InstanceNumber = self.number
        ds.file_meta = FileMetaDataset()
        implicit = position % 3 == 2
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        )
        return ds


def uid(*parts: object) -> str:
    """A UID derived from ``parts`` alone, so the archive is the same every run."""
    entropy = ["servicegen test_qr_dcmtk", *map(str, parts)]
    return str(generate_uid(entropy_srcs=entropy))


PATIENTS = {
    "PAT1": ("Doe^Jane", "19800101", "F"),
    "PAT2": ("Doe^John", "19750505", "M"),  # shares the prefix "Doe" with Doe^Jane
    "PAT3": ("Roe^Richard", "19600606", "M"),
}
STUDIES = {  # study number: patient, StudyDate, AccessionNumber, StudyDescription, series
    1: ("PAT1", "20240115", "ACC1", "CT chest", (("CT", 3),)),
    2: ("PAT1", "20240220", "ACC2", "MR head", (("MR", 3), ("CT", 2))),  # CT and MR
    3: ("PAT2", "20240310", "ACC3", "CT abdomen", (("CT", 3), ("CT", 3))),
    4: ("PAT3", "20231201", "ACC4", "MR knee", (("MR", 4), ("MR", 2))),
    5: ("PAT3", "20240301", "ACC5", "CT head", (("CT", 4), ("CT", 2))),
}
ARCHIVE = tuple(
    Instance(patient, *PATIENTS[patient], study, date, accession, description, series, modality, n)
    for study, (patient, date, accession, description, series_list) in STUDIES.items()
    for series, (modality, count) in enumerate(series_list, 1)
    for n in range(1, count + 1)
)
assert len(ARCHIVE) == 26


def study_uid(study: int) -> str:
    return uid("study", study)


def series_uid(study: int, series: int) -> str:
    return uid("series", study, series)


def instance_uid(study: int, series: int, number: int) -> str:
    return uid("instance", study, series, number)


def instances_of(study: int, series: int | None = None) -> set[str]:
    """The SOPInstanceUIDs of a study, or of one of its series."""
    return {
        instance.sop_instance_uid
        for instance in ARCHIVE
        if instance.study == study and series in (None, instance.series)
    }


# The servers


@dataclass(frozen=True)
class Peer:
    """A Query/Retrieve SCP listening on 127.0.0.1."""

    name: str
    port: int
    ae_title: str

    def find(self, model: str, *keys: str) -> Found:
        return findscu(self.port, self.ae_title, model, *keys)


@dataclass(frozen=True)
class Receiver:
    """DCMTK's storescp, the C-MOVE destination STORESCP of both archives."""

    port: int
    folder: Path

    def received(self) -> set[str]:
        return {str(dcmread(path).SOPInstanceUID) for path in self.folder.iterdir()}

    def clear(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()


MOVE_DESTINATION = "STORESCP"


@pytest.fixture(scope="module")
def archive_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive's files, written with pydicom."""
    folder = tmp_path_factory.mktemp("archive-files")
    for position, instance in enumerate(ARCHIVE):
        path = folder / f"{instance.study}-{instance.series}-{instance.number}.dcm"
        instance.dataset(position).save_as(path, enforce_file_format=True)
    return folder


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """DCMTK's storescp (every storage SOP class it knows, uncompressed) on a free port."""
    binary = require_dcmtk("storescp")
    folder = tmp_path_factory.mktemp("storescp-received")
    port = free_port()
    command = [binary, "-aet", MOVE_DESTINATION, "-od", str(folder), str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_echo(port, process, called=MOVE_DESTINATION)
        yield Receiver(port, folder)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def ours(
    pynetdicom_pages: Path,
    archive_files: Path,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Peer]:
    """``python -m archive serve`` (pynetdicom's Query/Retrieve, Storage and Verification pages)
    on a copy of the archive's files, STORESCP its one C-MOVE destination."""
    root = tmp_path_factory.mktemp("ours")
    package = generate_archive(pynetdicom_pages, root)
    folder = root / "archive"
    shutil.copytree(archive_files, folder)
    port = free_port()
    destinations = {MOVE_DESTINATION: ("127.0.0.1", receiver.port)}
    process = start_archive(package, folder, port, "ARCHIVE", destinations)
    try:
        yield Peer("ours", port, "ARCHIVE")
    finally:
        stop(process)


# NetworkTCPPort is only a default: each dcmqrscp is given its own port on its command line.
DCMQRSCP_CONFIG = """\
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
storescp = ({destination}, 127.0.0.1, {destination_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DCMQRSCP {storage} RW (100, 1024mb) ANY
AETable END
"""


@dataclass(frozen=True)
class References:
    """dcmqrscp twice on the same storage area: as it is by default (``lenient``: it checks no
    Identifier, see :func:`test_an_invalid_identifier_is_refused_with_no_matches`) and with
    ``--check-find --check-move`` (``strict``)."""

    lenient: Peer
    strict: Peer


@pytest.fixture(scope="module")
def references(
    archive_files: Path, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[References]:
    """DCMTK's reference Q/R SCP on the same files: copied into its storage area, indexed with
    dcmqridx, STORESCP in its HostTable. Each runs in a session of its own and forks a child
    per association (its --single-process mode crashes after the first association in DCMTK
    3.6.7 as Debian 12 ships it), so stopping it signals the whole process group."""
    binary = require_dcmtk("dcmqrscp")
    root = tmp_path_factory.mktemp("dcmqrscp")
    storage = root / "DCMQRSCP"
    storage.mkdir()
    copies = [
        str(shutil.copy(path, storage / path.name)) for path in sorted(archive_files.iterdir())
    ]
    indexed = dcmtk("dcmqridx", str(storage), *copies)
    assert indexed.returncode == 0, indexed.stdout + indexed.stderr
    config = root / "dcmqrscp.cfg"
    config.write_text(
        DCMQRSCP_CONFIG.format(
            port=free_port(),
            destination=MOVE_DESTINATION,
            destination_port=receiver.port,
            storage=storage,
        ),
        encoding="utf-8",
    )
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *flags: str) -> Peer:
        port = free_port()
        with (root / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [binary, "-c", str(config), *flags, str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        wait_for_echo(port, process, called="DCMQRSCP")
        return Peer(f"dcmqrscp {name}", port, "DCMQRSCP")

    try:
        yield References(start("lenient"), start("strict", "--check-find", "--check-move"))
    finally:
        for process in processes:
            stop(process, group=True)


# Comparing responses


def text(element: DataElement) -> str:
    """An element's value as findscu's peer sent it: values joined by backslashes."""
    if element.value is None or element.value == "":
        return ""
    if element.VM > 1:
        return "\\".join(str(value) for value in element.value)
    return str(element.value)


Row = tuple[tuple[str, str], ...]


def rows(found: Found, peer: Peer, leave_out: Iterable[str] = ()) -> list[Row]:
    """The responses as sorted (keyword, value) tuples, sorted, less ``leave_out``.

    RetrieveAETitle is checked, then left out: each server names itself (C.4.1.1.3.2), so the
    two differ there by design. dcmqrscp sends it unasked, in every response."""
    left_out = {"RetrieveAETitle", *leave_out}
    result = []
    for response in found.responses:
        title = text(response["RetrieveAETitle"]) if "RetrieveAETitle" in response else None
        assert title == peer.ae_title, f"{peer.name}: RetrieveAETitle\n{response}"
        items = ((element.keyword or str(element.tag), text(element)) for element in response)
        result.append(tuple(sorted(item for item in items if item[0] not in left_out)))
    return sorted(result)


def answers(found: Found) -> tuple[int, int]:
    """(final Status, number of matches)."""
    return found.final, len(found.responses)


@dataclass(frozen=True)
class Case:
    """A valid query both servers answer alike, and how many responses it has."""

    name: str
    model: str
    keys: tuple[str, ...]
    count: int

    def __str__(self) -> str:
        return self.name


STUDY_RETURN_KEYS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
)
# Only keys dcmqrscp supports (its index holds them): any other it leaves out of its responses.
CASES = [
    Case(
        "patients",
        "-P",
        (
            "QueryRetrieveLevel=PATIENT",
            "PatientID",
            "PatientName",
            "PatientBirthDate",
            "PatientSex",
        ),
        3,
    ),
    Case(
        "patient-name-wildcard",
        "-P",
        ("QueryRetrieveLevel=PATIENT", "PatientName=Doe*", "PatientID"),
        2,
    ),
    Case(
        "patient-name-one-character-wildcard",
        "-P",
        ("QueryRetrieveLevel=PATIENT", "PatientName=Doe^J?ne", "PatientID", "PatientSex"),
        1,
    ),
    Case(
        "patient-by-id",
        "-P",
        ("QueryRetrieveLevel=PATIENT", "PatientID=PAT2", "PatientName", "PatientBirthDate"),
        1,
    ),
    Case(
        "studies-study-root",
        "-S",
        ("QueryRetrieveLevel=STUDY", *STUDY_RETURN_KEYS, "PatientName", "PatientID"),
        5,
    ),
    Case(
        "studies-of-a-patient",
        "-P",
        ("QueryRetrieveLevel=STUDY", "PatientID=PAT3", *STUDY_RETURN_KEYS),
        2,
    ),
    Case(
        "study-date-range",
        "-S",
        ("QueryRetrieveLevel=STUDY", "StudyDate=20240101-20240301", "StudyInstanceUID", "StudyID"),
        3,
    ),
    Case(
        "study-date-up-to",
        "-S",
        ("QueryRetrieveLevel=STUDY", "StudyDate=-20240115", "StudyInstanceUID", "StudyID"),
        2,
    ),
    Case(
        "study-uid-list",
        "-S",
        (
            "QueryRetrieveLevel=STUDY",
            f"StudyInstanceUID={study_uid(1)}\\{study_uid(3)}",
            "StudyDate",
            "AccessionNumber",
        ),
        2,
    ),
    Case(
        "study-by-accession",
        "-S",
        ("QueryRetrieveLevel=STUDY", "AccessionNumber=ACC2", "StudyInstanceUID", "StudyID"),
        1,
    ),
    Case(
        "study-patient-name-wildcard",
        "-S",
        ("QueryRetrieveLevel=STUDY", "PatientName=Doe*", "PatientID", "StudyInstanceUID"),
        3,
    ),
    Case(
        "study-description-wildcard",
        "-S",
        ("QueryRetrieveLevel=STUDY", "StudyDescription=CT*", "StudyInstanceUID", "StudyID"),
        3,
    ),
    Case(
        "series-of-a-study",
        "-S",
        (
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={study_uid(2)}",
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
        ),
        2,
    ),
    Case(
        "series-by-modality",
        "-S",
        (
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={study_uid(2)}",
            "Modality=MR",
            "SeriesInstanceUID",
            "SeriesNumber",
        ),
        1,
    ),
    Case(
        "series-patient-root",
        "-P",
        (
            "QueryRetrieveLevel=SERIES",
            "PatientID=PAT2",
            f"StudyInstanceUID={study_uid(3)}",
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
        ),
        2,
    ),
    Case(
        "images-of-a-series",
        "-S",
        (
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={study_uid(2)}",
            f"SeriesInstanceUID={series_uid(2, 1)}",
            "SOPInstanceUID",
            "InstanceNumber",
        ),
        3,
    ),
    Case(
        "image-by-number",
        "-S",
        (
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={study_uid(5)}",
            f"SeriesInstanceUID={series_uid(5, 1)}",
            "InstanceNumber=2",
            "SOPInstanceUID",
        ),
        1,
    ),
    Case(
        "image-uid-list",
        "-S",
        (
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={study_uid(1)}",
            f"SeriesInstanceUID={series_uid(1, 1)}",
            f"SOPInstanceUID={instance_uid(1, 1, 1)}\\{instance_uid(1, 1, 3)}",
            "InstanceNumber",
        ),
        2,
    ),
    Case(
        "images-patient-root",
        "-P",
        (
            "QueryRetrieveLevel=IMAGE",
            "PatientID=PAT3",
            f"StudyInstanceUID={study_uid(4)}",
            f"SeriesInstanceUID={series_uid(4, 2)}",
            "SOPInstanceUID",
            "InstanceNumber",
        ),
        2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_query_is_answered_as_dcmqrscp_answers_it(
    case: Case, ours: Peer, references: References
) -> None:
    """The same responses, once per entity at the level, every one Pending 0xFF00 (every key
    asked for is one both support), then Success."""
    theirs = references.lenient.find(case.model, *case.keys)
    assert answers(theirs) == (0x0000, case.count), theirs.summary
    assert theirs.pending == [0xFF00] * case.count, theirs.summary
    expected = rows(theirs, references.lenient)
    mine = ours.find(case.model, *case.keys)
    assert answers(mine) == (0x0000, case.count), mine.summary
    assert mine.pending == [0xFF00] * case.count, mine.summary
    assert rows(mine, ours) == expected


# Computed keys: dcmqrscp has none, so ours are checked against the archive itself

COMPUTED = {
    "PATIENT": (
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    ),
    "STUDY": (
        "ModalitiesInStudy",
        "SOPClassesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "SERIES": ("NumberOfSeriesRelatedInstances",),
}


def expected_computed(level: str) -> dict[str, tuple[str, ...]]:
    """Unique key value -> the computed keys' values (multi-valued ones sorted), from ARCHIVE."""
    expected: dict[str, tuple[str, ...]] = {}
    if level == "PATIENT":
        for patient in PATIENTS:
            mine = [i for i in ARCHIVE if i.patient_id == patient]
            studies = {i.study for i in mine}
            series = {(i.study, i.series) for i in mine}
            expected[patient] = (str(len(studies)), str(len(series)), str(len(mine)))
    elif level == "STUDY":
        for study in STUDIES:
            mine = [i for i in ARCHIVE if i.study == study]
            modalities = "\\".join(sorted({i.modality for i in mine}))
            classes = "\\".join(sorted({i.sop_class for i in mine}))
            numbers = {i.series for i in mine}
            expected[study_uid(study)] = (modalities, classes, str(len(numbers)), str(len(mine)))
    else:
        for instance in ARCHIVE:
            if instance.study == 2:
                expected[instance.series_uid] = (str(len(instances_of(2, instance.series))),)
    return expected


UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID"}


def sorted_values(element: DataElement) -> str:
    return "\\".join(sorted(text(element).split("\\")))


@pytest.mark.parametrize("level", ["PATIENT", "STUDY", "SERIES"])
def test_computed_keys_count_what_the_archive_holds(
    level: str, ours: Peer, references: References
) -> None:
    """NumberOfPatientRelated*, NumberOfStudyRelated*, ModalitiesInStudy, SOPClassesInStudy and
    NumberOfSeriesRelatedInstances (PS3.4 C.6.1.1.2-4) hold what the archive holds: study 2 has
    CT and MR series, so its ModalitiesInStudy and SOPClassesInStudy have two values.

    dcmqrscp supports none of them: it leaves them out of its responses altogether (neither
    empty nor filled) and still answers 0xFF00, so from it only the entities are compared."""
    model = "-P" if level == "PATIENT" else "-S"
    keys = [f"QueryRetrieveLevel={level}", UNIQUE[level], *COMPUTED[level]]
    if level == "SERIES":
        keys.insert(1, f"StudyInstanceUID={study_uid(2)}")
    expected = expected_computed(level)
    theirs = references.lenient.find(model, *keys)
    assert answers(theirs) == (0x0000, len(expected)), theirs.summary
    assert theirs.pending == [0xFF00] * len(expected), theirs.summary
    for response in theirs.responses:
        assert not set(COMPUTED[level]) & {element.keyword for element in response}, response
    entities = rows(theirs, references.lenient)
    mine = ours.find(model, *keys)
    assert answers(mine) == (0x0000, len(expected)), mine.summary
    assert mine.pending == [0xFF00] * len(expected), mine.summary
    missing = [r for r in mine.responses if not set(COMPUTED[level]) <= set(r.dir())]
    assert not missing, mine.summary
    got = {
        text(response[UNIQUE[level]]): tuple(
            sorted_values(response[keyword]) for keyword in COMPUTED[level]
        )
        for response in mine.responses
    }
    assert got == expected, mine.summary
    assert rows(mine, ours, COMPUTED[level]) == entities


def test_modalities_in_study_matches_any_modality_of_the_study(
    ours: Peer, references: References
) -> None:
    """ModalitiesInStudy=MR matches the two studies with an MR series (one of them CT too).
    dcmqrscp does not support the key for matching either: it ignores it, answering all five
    studies (with 0xFF00, not 0xFF01), so here it is only recorded."""
    keys = ("QueryRetrieveLevel=STUDY", "ModalitiesInStudy=MR", "StudyInstanceUID")
    theirs = references.lenient.find("-S", *keys)
    assert answers(theirs) == (0x0000, 5), theirs.summary
    assert theirs.pending == [0xFF00] * 5, theirs.summary
    mine = ours.find("-S", *keys)
    assert answers(mine) == (0x0000, 2), mine.summary
    assert {text(ds["StudyInstanceUID"]) for ds in mine.responses} == {study_uid(2), study_uid(4)}
    found = sorted(sorted_values(ds["ModalitiesInStudy"]) for ds in mine.responses)
    assert found == ["CT\\MR", "MR"], mine.summary


# A key of the level above other than its unique key (Patient Root, STUDY level)


def test_a_patient_key_asked_for_at_the_study_level_is_returned(
    ours: Peer, references: References
) -> None:
    """PatientName asked for (empty) in a Patient Root STUDY query: both return it filled in,
    from the patient. dcmqrscp --check-find refuses the Identifier instead (0xA900: it allows
    no key of a level above but the unique one), which PS3.4 does not ask for."""
    keys = ("QueryRetrieveLevel=STUDY", "PatientID=PAT1", "PatientName", "StudyInstanceUID")
    theirs = references.lenient.find("-P", *keys)
    assert answers(theirs) == (0x0000, 2), theirs.summary
    assert theirs.pending == [0xFF00, 0xFF00], theirs.summary
    strict = references.strict.find("-P", *keys)
    assert answers(strict) == (0xA900, 0), strict.summary
    expected = rows(theirs, references.lenient)
    mine = ours.find("-P", *keys)
    assert answers(mine) == (0x0000, 2), mine.summary
    assert mine.pending == [0xFF00, 0xFF00], mine.summary
    assert {text(ds["PatientName"]) for ds in mine.responses} == {"Doe^Jane"}, mine.summary
    assert rows(mine, ours) == expected


def test_a_patient_key_to_match_at_the_study_level_is_unsupported_and_ignored(
    ours: Peer, references: References
) -> None:
    """PatientName=Doe^John with PatientID=PAT1 (Doe^Jane) in a Patient Root STUDY query: at the
    STUDY level PatientName is no key (``_levels.InformationModel.supports``), so it is not
    used for matching and each response is Pending 0xFF01 (an optional key not supported),
    holding the patient's name as stored. dcmqrscp ignores the key the same way, but says
    0xFF00; with --check-find it refuses the Identifier (0xA900)."""
    keys = (
        "QueryRetrieveLevel=STUDY",
        "PatientID=PAT1",
        "PatientName=Doe^John",
        "StudyInstanceUID",
    )
    theirs = references.lenient.find("-P", *keys)
    assert answers(theirs) == (0x0000, 2), theirs.summary
    assert theirs.pending == [0xFF00, 0xFF00], theirs.summary
    strict = references.strict.find("-P", *keys)
    assert answers(strict) == (0xA900, 0), strict.summary
    expected = rows(theirs, references.lenient)
    mine = ours.find("-P", *keys)
    assert answers(mine) == (0x0000, 2), mine.summary
    assert mine.pending == [0xFF01, 0xFF01], mine.summary
    assert rows(mine, ours) == expected


# Identifiers the SOP class does not allow


@dataclass(frozen=True)
class Invalid:
    """An Identifier C.4.1.2 does not allow, and what dcmqrscp answers, by default and with
    --check-find: (final Status, number of matches)."""

    name: str
    model: str
    keys: tuple[str, ...]
    lenient: tuple[int, int]
    strict: tuple[int, int]

    def __str__(self) -> str:
        return self.name


INVALID = [
    Invalid(
        "no-query-retrieve-level",
        "-S",
        ("StudyInstanceUID", "PatientName"),
        (0xA900, 0),
        (0xA900, 0),
    ),
    Invalid(
        "unknown-level",
        "-S",
        ("QueryRetrieveLevel=FOO", "StudyInstanceUID"),
        (0xC000, 0),
        (0xC000, 0),
    ),
    # dcmqrscp upper-cases the level and compares prefixes: "study" (and "STUDYX") is STUDY
    Invalid(
        "lower-case-level",
        "-S",
        ("QueryRetrieveLevel=study", "StudyInstanceUID"),
        (0x0000, 5),
        (0x0000, 5),
    ),
    Invalid(
        "patient-level-in-study-root",
        "-S",
        ("QueryRetrieveLevel=PATIENT", "PatientID"),
        (0xC000, 0),
        (0xA900, 0),
    ),
    Invalid(
        "series-without-patient-id-or-study-uid",
        "-P",
        ("QueryRetrieveLevel=SERIES", "SeriesInstanceUID", "Modality"),
        (0xC000, 0),
        (0xA900, 0),
    ),
    Invalid(
        "series-without-study-uid",
        "-P",
        ("QueryRetrieveLevel=SERIES", "PatientID=PAT1", "SeriesInstanceUID"),
        (0xC000, 0),
        (0xA900, 0),
    ),
    Invalid(
        "study-with-only-a-patient-name-above",
        "-P",
        ("QueryRetrieveLevel=STUDY", "PatientName=Doe^Jane", "StudyInstanceUID"),
        (0xC000, 0),
        (0xA900, 0),
    ),
    Invalid(
        "image-without-series-uid",
        "-S",
        ("QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study_uid(1)}", "SOPInstanceUID"),
        (0xC000, 0),
        (0xA900, 0),
    ),
    # By default dcmqrscp answers a key below the level with the value of one instance
    Invalid(
        "series-key-at-the-study-level",
        "-S",
        ("QueryRetrieveLevel=STUDY", "StudyInstanceUID", "SeriesInstanceUID"),
        (0x0000, 5),
        (0xA900, 0),
    ),
    Invalid(
        "study-key-at-the-patient-level",
        "-P",
        ("QueryRetrieveLevel=PATIENT", "PatientID", "StudyDate=20240115"),
        (0x0000, 3),
        (0xA900, 0),
    ),
    Invalid(
        "empty-unique-key-above",
        "-P",
        ("QueryRetrieveLevel=STUDY", "PatientID", "StudyInstanceUID"),
        (0x0000, 5),
        (0xA900, 0),
    ),
    # dcmqrscp matches a unique key above with wildcards (LO) or a list of UIDs (UI) as it
    # would at its own level; a wildcard in a UID matches nothing
    Invalid(
        "wildcard-unique-key-above",
        "-P",
        ("QueryRetrieveLevel=STUDY", "PatientID=PAT*", "StudyInstanceUID"),
        (0x0000, 5),
        (0x0000, 5),
    ),
    Invalid(
        "uid-list-unique-key-above",
        "-S",
        (
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={study_uid(1)}\\{study_uid(2)}",
            "SeriesInstanceUID",
        ),
        (0x0000, 3),
        (0x0000, 3),
    ),
    Invalid(
        "uid-wildcard-unique-key-above",
        "-S",
        ("QueryRetrieveLevel=SERIES", "StudyInstanceUID=*", "SeriesInstanceUID"),
        (0x0000, 0),
        (0x0000, 0),
    ),
]


@pytest.mark.parametrize("case", INVALID, ids=str)
def test_an_invalid_identifier_is_refused_with_no_matches(
    case: Invalid, ours: Peer, references: References
) -> None:
    """No Query/Retrieve level, an unknown one, a unique key of a level above missing, empty,
    wildcarded or a list (the single value C.4.1.2.1 asks for; no relational queries are
    negotiated), a key of a level below: answered 0xA900 with no matches.

    dcmqrscp's answers are recorded alongside: by default it checks only that the level is
    there (0xA900) and known (0xC000) and that a unique key of each level above is present
    (0xC000); with --check-find it refuses most of the rest with 0xA900, an unknown level
    still 0xC000."""
    lenient = references.lenient.find(case.model, *case.keys)
    assert answers(lenient) == case.lenient, lenient.summary
    strict = references.strict.find(case.model, *case.keys)
    assert answers(strict) == case.strict, strict.summary
    mine = ours.find(case.model, *case.keys)
    assert answers(mine) == (0xA900, 0), mine.summary


# C-GET and C-MOVE


@dataclass(frozen=True)
class Outcome:
    """The final C-GET or C-MOVE response: its Status and sub-operation counts."""

    status: int
    completed: int
    failed: int
    warning: int


_FIELD = re.compile(r"^D: (Message Type|Completed Suboperations|Failed Suboperations|"
                    r"Warning Suboperations|DIMSE Status)\s*: (\S+)")  # fmt: skip


def final_response(log: str, message: str) -> Outcome:
    """The last ``message`` ("C-GET RSP", "C-MOVE RSP") in a DCMTK tool's debug log."""
    found: list[dict[str, str]] = []
    for line in log.splitlines():
        match = _FIELD.match(line)
        if match is None:
            continue
        field, value = match.groups()
        if field == "Message Type":
            found.append({})
        if found:
            found[-1][field] = value.rstrip(":")
    last = [fields for fields in found if fields.get("Message Type") == message.split()[0]]
    assert last, log
    fields = last[-1]

    def count(name: str) -> int:
        value = fields.get(f"{name} Suboperations", "none")
        return 0 if value == "none" else int(value)

    return Outcome(
        int(fields["DIMSE Status"], 16), count("Completed"), count("Failed"), count("Warning")
    )


RETRIEVES = {
    "study": (
        "-S",
        ("QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study_uid(2)}"),
        instances_of(2),
    ),
    "series": (
        "-P",
        (
            "QueryRetrieveLevel=SERIES",
            "PatientID=PAT3",
            f"StudyInstanceUID={study_uid(4)}",
            f"SeriesInstanceUID={series_uid(4, 1)}",
        ),
        instances_of(4, 1),
    ),
}


def get(peer: Peer, model: str, keys: Iterable[str], folder: Path) -> tuple[Outcome, set[str]]:
    """DCMTK's getscu: the final response and the SOPInstanceUIDs received into ``folder``."""
    folder.mkdir()
    args = ["-d", model, "-aec", peer.ae_title, "-od", str(folder)]
    for key in keys:
        args += ["-k", key]
    done = dcmtk("getscu", *args, "127.0.0.1", str(peer.port))
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    received = {str(dcmread(path).SOPInstanceUID) for path in folder.iterdir()}
    return final_response(log, "C-GET RSP"), received


def move(
    peer: Peer, model: str, keys: Iterable[str], receiver: Receiver
) -> tuple[Outcome, set[str]]:
    """DCMTK's movescu to STORESCP: the final response and the SOPInstanceUIDs it received."""
    receiver.clear()
    args = ["-d", model, "-aec", peer.ae_title, "-aem", MOVE_DESTINATION]
    for key in keys:
        args += ["-k", key]
    done = dcmtk("movescu", *args, "127.0.0.1", str(peer.port))
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    return final_response(log, "C-MOVE RSP"), receiver.received()


@pytest.mark.parametrize("level", sorted(RETRIEVES))
def test_c_get_sends_what_dcmqrscp_sends(
    level: str, ours: Peer, references: References, tmp_path: Path
) -> None:
    model, keys, expected = RETRIEVES[level]
    mine = get(ours, model, keys, tmp_path / "ours")
    theirs = get(references.lenient, model, keys, tmp_path / "dcmqrscp")
    assert theirs == (Outcome(0x0000, len(expected), 0, 0), expected)
    assert mine == theirs


@pytest.mark.parametrize("level", sorted(RETRIEVES))
def test_c_move_sends_what_dcmqrscp_sends(
    level: str, ours: Peer, references: References, receiver: Receiver
) -> None:
    model, keys, expected = RETRIEVES[level]
    theirs = move(references.lenient, model, keys, receiver)
    mine = move(ours, model, keys, receiver)
    assert theirs == (Outcome(0x0000, len(expected), 0, 0), expected)
    assert mine == theirs
