"""Tests for the reference backend template (copied to generated/backend.py for import).

Run from the repository root (``python -m pytest tests/test_backend.py``) so that the
``generated`` package is importable.
"""

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmwrite
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from generated import _index
from generated._archive import read_header
from generated._matching import sendable_as_read
from generated.backend import (
    FolderBackend,
    is_universal,
    matches,
    temporal_matches,
    wildcard_matches,
)

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "generator" / "runtime"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"

# Wildcards and ranges are not valid values of their VR outside a query; pydicom says so.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def instance(uid: str, **attributes: object) -> Dataset:
    """Build a minimal in-memory instance with the given keyword attributes."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = uid
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def query(**attributes: object) -> Dataset:
    """Build an Identifier from keyword attributes."""
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def matching_uids(instances: list[Dataset], identifier: Dataset) -> list[str]:
    """SOPInstanceUIDs of the instances that match, in order."""
    return [str(ds.SOPInstanceUID) for ds in instances if matches(ds, identifier)]


def code_item(value: str, scheme: str = "DCM") -> Dataset:
    """A code sequence Item."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    return item


def write_instance(path: Path, ds: Dataset) -> None:
    """Write ``ds`` as a proper DICOM file (preamble and File Meta Information)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True)


# --- the runtime source itself ----------------------------------------------------------------

BACKEND_MODULES = ("backend", "_matching", "_levels", "_archive", "_index")
"""The reference archive and the modules it is split into, by job."""


@pytest.mark.parametrize("name", BACKEND_MODULES)
def test_generated_copy_is_byte_identical_to_the_runtime_source(name: str) -> None:
    source = RUNTIME / f"{name}.py"
    assert (ROOT / "generated" / f"{name}.py").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("name", BACKEND_MODULES)
def test_the_archive_imports_only_stdlib_pydicom_and_its_own_modules(name: str) -> None:
    """So the package stays importable, and testable, without pynetdicom."""
    tree = ast.parse((RUNTIME / f"{name}.py").read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and str(node.module) in BACKEND_MODULES
        elif isinstance(node, ast.ImportFrom):
            roots.add(str(node.module).split(".")[0])
    assert roots - {"pydicom"} <= sys.stdlib_module_names
    assert ast.get_docstring(tree) is not None


# --- universal matching ----------------------------------------------------------------------


def test_universal_matching_empty_value_matches_present_and_absent() -> None:
    instances = [instance("1.1", PatientName="Doe^John"), instance("1.2")]
    assert matching_uids(instances, query(PatientName="")) == ["1.1", "1.2"]
    assert matching_uids(instances, query(PatientName=None)) == ["1.1", "1.2"]


def test_single_asterisk_is_universal_even_for_absent_attribute() -> None:
    instances = [instance("1.1", PatientID="A"), instance("1.2")]
    assert matching_uids(instances, query(PatientID="*")) == ["1.1", "1.2"]
    assert is_universal(query(PatientID="*")["PatientID"]) is True
    assert is_universal(query(PatientID="**")["PatientID"]) is False


def test_empty_keys_of_every_kind_are_universal() -> None:
    identifier = query(StudyDate="", SOPInstanceUID="", Rows=None, ProcedureCodeSequence=Sequence())
    assert [is_universal(element) for element in identifier] == [True, True, True, True]
    assert matches(instance("1.1"), identifier) is True


def test_query_retrieve_level_and_charset_are_not_matched() -> None:
    target = instance("1.1", PatientID="A", SpecificCharacterSet="ISO_IR 100")
    identifier = query(QueryRetrieveLevel="IMAGE", SpecificCharacterSet="ISO_IR 192", PatientID="A")
    assert matches(target, identifier) is True
    assert matches(instance("1.2"), query(QueryRetrieveLevel="PATIENT")) is True


# --- single value matching -------------------------------------------------------------------


def test_single_value_matching_is_exact_and_case_sensitive() -> None:
    instances = [
        instance("1.1", PatientName="Doe^John"),
        instance("1.2", PatientName="DOE^JOHN"),
        instance("1.3", PatientName="Doe^Johnny"),
    ]
    assert matching_uids(instances, query(PatientName="Doe^John")) == ["1.1"]
    assert matching_uids(instances, query(PatientName="DOE^JOHN")) == ["1.2"]


def test_single_value_matching_ignores_insignificant_padding() -> None:
    target = instance("1.1", PatientID="ABC", AdditionalPatientHistory="  text")
    assert matches(target, query(PatientID=" ABC ")) is True
    # LT keeps leading spaces significant; only trailing ones are padding.
    assert matches(target, query(AdditionalPatientHistory="  text  ")) is True
    assert matches(target, query(AdditionalPatientHistory="text")) is False


def test_numeric_values_compare_as_numbers() -> None:
    target = instance("1.1", InstanceNumber=5, Rows=512, SliceThickness="2.50")
    assert matches(target, query(InstanceNumber="5")) is True
    assert matches(target, query(InstanceNumber="6")) is False
    assert matches(target, query(Rows=512)) is True
    assert matches(target, query(Rows=256)) is False
    assert matches(target, query(SliceThickness="2.5")) is True


def test_missing_attribute_fails_non_universal_key() -> None:
    instances = [instance("1.1", PatientName="Doe^John"), instance("1.2")]
    assert matching_uids(instances, query(PatientName="Doe^John")) == ["1.1"]
    assert matching_uids(instances, query(PatientName="D*")) == ["1.1"]
    assert matching_uids(instances, query(Rows=512)) == []


def test_all_keys_must_match() -> None:
    instances = [
        instance("1.1", PatientID="A", Modality="CT"),
        instance("1.2", PatientID="A", Modality="MR"),
        instance("1.3", PatientID="B", Modality="CT"),
    ]
    assert matching_uids(instances, query(PatientID="A", Modality="CT")) == ["1.1"]


# --- wild card matching ----------------------------------------------------------------------


def test_asterisk_wildcard() -> None:
    instances = [
        instance("1.1", PatientName="Doe^John"),
        instance("1.2", PatientName="Doe^Jane"),
        instance("1.3", PatientName="Smith^John"),
        instance("1.4", PatientName="Do"),
    ]
    assert matching_uids(instances, query(PatientName="Doe*")) == ["1.1", "1.2"]
    assert matching_uids(instances, query(PatientName="*John")) == ["1.1", "1.3"]
    assert matching_uids(instances, query(PatientName="D*e^J*n*")) == ["1.1", "1.2"]
    assert matching_uids(instances, query(PatientName="Do*")) == ["1.1", "1.2", "1.4"]


def test_question_mark_wildcard_matches_exactly_one_character() -> None:
    instances = [
        instance("1.1", PatientID="AB1"),
        instance("1.2", PatientID="AB12"),
        instance("1.3", PatientID="AB"),
    ]
    assert matching_uids(instances, query(PatientID="AB?")) == ["1.1"]
    assert matching_uids(instances, query(PatientID="AB??")) == ["1.2"]
    assert matching_uids(instances, query(PatientID="?B*")) == ["1.1", "1.2", "1.3"]


def test_wildcard_treats_regex_characters_literally() -> None:
    assert wildcard_matches("a.b*", "a.bc") is True
    assert wildcard_matches("a.b*", "axbc") is False
    assert wildcard_matches("(x)+?", "(x)+!") is True
    assert wildcard_matches("a*", "a\nb") is True


def test_wildcards_do_not_apply_to_uid_date_or_numbers() -> None:
    target = instance("1.2.3", StudyDate="20240101", InstanceNumber=5)
    assert matches(target, query(SOPInstanceUID="1.2.*")) is False
    assert matches(target, query(StudyDate="2024*")) is False


def test_multi_valued_attribute_matches_any_value_or_whole_value() -> None:
    target = instance("1.1", ImageType=["ORIGINAL", "PRIMARY", "AXIAL"])
    assert matches(target, query(ImageType="PRIMARY")) is True
    assert matches(target, query(ImageType=["ORIGINAL", "PRIMARY", "AXIAL"])) is True
    assert matches(target, query(ImageType=["ORIGINAL", "PRIMARY", "*"])) is True
    assert matches(target, query(ImageType="DERIVED")) is False
    assert matches(target, query(ImageType=["ORIGINAL", "SECONDARY", "*"])) is False


# --- list of UID matching --------------------------------------------------------------------


def test_list_of_uid_matching() -> None:
    instances = [instance("1.2.3"), instance("1.2.4"), instance("1.2.5")]
    assert matching_uids(instances, query(SOPInstanceUID=["1.2.3", "1.2.5"])) == [
        "1.2.3",
        "1.2.5",
    ]
    assert matching_uids(instances, query(SOPInstanceUID="1.2.4")) == ["1.2.4"]
    assert matching_uids(instances, query(SOPInstanceUID="1.2")) == []


def test_uid_list_is_backslash_separated_string() -> None:
    identifier = query(SOPInstanceUID="1.2.3\\1.2.4")
    assert matching_uids([instance("1.2.4"), instance("1.2.9")], identifier) == ["1.2.4"]


# --- range matching --------------------------------------------------------------------------


DATES = ["20231231", "20240101", "20240115", "20240131", "20240201"]


def dated() -> list[Dataset]:
    """Instances with one StudyDate each, UIDs 1.0 .. 1.4."""
    return [instance(f"1.{index}", StudyDate=date) for index, date in enumerate(DATES)]


def test_date_range_closed() -> None:
    assert matching_uids(dated(), query(StudyDate="20240101-20240131")) == ["1.1", "1.2", "1.3"]


def test_date_range_open_start() -> None:
    assert matching_uids(dated(), query(StudyDate="-20240115")) == ["1.0", "1.1", "1.2"]


def test_date_range_open_end() -> None:
    assert matching_uids(dated(), query(StudyDate="20240115-")) == ["1.2", "1.3", "1.4"]


def test_date_single_value_and_inverted_range() -> None:
    assert matching_uids(dated(), query(StudyDate="20240115")) == ["1.2"]
    assert matching_uids(dated(), query(StudyDate="20240131-20240101")) == []
    assert matching_uids(dated(), query(StudyDate="garbage")) == []


def test_time_range_with_fractions_and_partial_bounds() -> None:
    times = ["095959.999999", "1000", "101559.999", "1016", "101600.000001"]
    instances = [instance(f"1.{index}", StudyTime=time) for index, time in enumerate(times)]
    assert matching_uids(instances, query(StudyTime="1000-1015")) == ["1.1", "1.2"]
    assert matching_uids(instances, query(StudyTime="-1015")) == ["1.0", "1.1", "1.2"]
    assert matching_uids(instances, query(StudyTime="101559.9995-")) == ["1.3", "1.4"]


def test_time_single_value_pads_to_full_precision() -> None:
    assert temporal_matches("TM", "1015", "101500.000") is True
    assert temporal_matches("TM", "101500", "1015") is True
    assert temporal_matches("TM", "1015", "101501") is False
    assert temporal_matches("TM", "10:15:00", "101500") is True


def test_datetime_range_with_partial_values() -> None:
    values = ["20231231235959", "2024010100", "20240102235959.999999", "20240103", "2024"]
    instances = [
        instance(f"1.{index}", AcquisitionDateTime=value) for index, value in enumerate(values)
    ]
    assert matching_uids(instances, query(AcquisitionDateTime="20240101-20240102")) == [
        "1.1",
        "1.2",
        "1.4",
    ]
    assert matching_uids(instances, query(AcquisitionDateTime="-2023")) == ["1.0"]
    assert matching_uids(instances, query(AcquisitionDateTime="20240103-")) == ["1.3"]


def test_datetime_offsets_are_honoured_when_both_sides_have_them() -> None:
    # 12:00 at +01:00 is 11:00 UTC.
    assert temporal_matches("DT", "20240101110000+0000-", "20240101120000+0100") is True
    assert temporal_matches("DT", "20240101110001+0000-", "20240101120000+0100") is False
    # Without an offset on one side, wall-clock times are compared.
    assert temporal_matches("DT", "20240101120000-", "20240101120000+0100") is True


def test_datetime_negative_offset_is_not_taken_for_a_range() -> None:
    assert temporal_matches("DT", "20240101120000-0500", "20240101170000+0000") is True
    assert temporal_matches("DT", "20240101120000-0500-", "20240101170000+0000") is True
    assert temporal_matches("DT", "2023-2024", "20231231") is True
    assert temporal_matches("DT", "2023-2024", "2025") is False


# --- sequence matching -----------------------------------------------------------------------


def coded(uid: str, *values: str) -> Dataset:
    """Instance whose ProcedureCodeSequence holds one Item per code value."""
    return instance(uid, ProcedureCodeSequence=Sequence([code_item(value) for value in values]))


def test_sequence_matching_any_item_matches() -> None:
    instances = [coded("1.1", "B", "A"), coded("1.2", "B"), instance("1.3"), coded("1.4")]
    key = Sequence([query(CodeValue="A")])
    assert matching_uids(instances, query(ProcedureCodeSequence=key)) == ["1.1"]


def test_sequence_item_keys_must_all_match_in_the_same_item() -> None:
    target = instance("1.1", ProcedureCodeSequence=Sequence([code_item("A", "X"), code_item("B")]))
    same_item = Sequence([query(CodeValue="A", CodingSchemeDesignator="X")])
    split = Sequence([query(CodeValue="A", CodingSchemeDesignator="DCM")])
    assert matches(target, query(ProcedureCodeSequence=same_item)) is True
    assert matches(target, query(ProcedureCodeSequence=split)) is False


def test_sequence_empty_or_all_universal_item_is_universal() -> None:
    instances = [coded("1.1", "A"), instance("1.2")]
    assert matching_uids(instances, query(ProcedureCodeSequence=Sequence())) == ["1.1", "1.2"]
    all_universal = Sequence([query(CodeValue="")])
    assert matching_uids(instances, query(ProcedureCodeSequence=all_universal)) == ["1.1", "1.2"]


def test_sequence_key_with_two_items_is_rejected() -> None:
    identifier = query(ProcedureCodeSequence=Sequence([query(CodeValue="A"), query(CodeValue="B")]))
    with pytest.raises(ValueError, match="at most one Item"):
        matches(coded("1.1", "A"), identifier)


def test_find_returns_only_matching_items_with_requested_keys(tmp_path: Path) -> None:
    backend = FolderBackend(tmp_path)
    backend.store(coded("1.1", "A", "B", "A"))
    key = Sequence([query(CodeValue="A")])
    [result] = backend.find(query(ProcedureCodeSequence=key))
    assert [item.CodeValue for item in result.ProcedureCodeSequence] == ["A", "A"]
    assert ["CodingSchemeDesignator" in item for item in result.ProcedureCodeSequence] == [
        False,
        False,
    ]


# --- backend ---------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with two instances (one nested), a text file and a bare dataset file."""
    write_instance(
        tmp_path / "b" / "second.dcm",
        instance("1.2", PatientName="Doe^Jane", PatientID="B", SpecificCharacterSet="ISO_IR 100"),
    )
    write_instance(
        tmp_path / "a.dcm", instance("1.1", PatientName="Doe^John", PatientID="A", Rows=512)
    )
    (tmp_path / "notes.txt").write_text("not DICOM at all\n", encoding="utf-8")
    (tmp_path / "empty.bin").write_bytes(b"")
    bare = instance("1.3", PatientName="Roe^Richard", PatientID="C")
    dcmwrite(tmp_path / "c_bare.dcm", bare, implicit_vr=True, little_endian=True)
    return tmp_path


def test_folder_loads_dicom_sorted_and_skips_other_files(folder: Path) -> None:
    backend = FolderBackend(folder)
    assert [str(ds.SOPInstanceUID) for ds in list(backend.instances())] == ["1.1", "1.2", "1.3"]
    assert backend.skipped == 2


def test_file_without_preamble_is_loaded(folder: Path) -> None:
    assert (folder / "c_bare.dcm").read_bytes()[128:132] != b"DICM"
    backend = FolderBackend(folder)
    assert str(list(backend.instances())[2].PatientName) == "Roe^Richard"


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        FolderBackend(tmp_path / "nope")


def test_find_returns_requested_keys_only(folder: Path) -> None:
    backend = FolderBackend(folder)
    identifier = query(QueryRetrieveLevel="IMAGE", PatientID="A", PatientName="", StudyDate="")
    [result] = backend.find(identifier)
    assert sorted(element.keyword for element in result) == [
        "PatientID",
        "PatientName",
        "QueryRetrieveLevel",
        "StudyDate",
    ]
    assert str(result.PatientName) == "Doe^John"
    assert result.QueryRetrieveLevel == "IMAGE"
    assert result["StudyDate"].value in ("", None)


def test_find_adds_instance_character_set(folder: Path) -> None:
    backend = FolderBackend(folder)
    results = list(backend.find(query(PatientName="Doe^J*")))
    assert [sorted(element.keyword for element in ds) for ds in results] == [
        ["PatientName"],
        ["PatientName", "SpecificCharacterSet"],
    ]
    assert results[1].SpecificCharacterSet == "ISO_IR 100"


def test_find_never_yields_empty_dataset(folder: Path) -> None:
    backend = FolderBackend(folder)
    results = list(backend.find(Dataset()))
    assert [str(ds.SOPInstanceUID) for ds in results] == ["1.1", "1.2", "1.3"]
    assert all(len(ds) > 0 for ds in results)
    [by_id] = list(backend.find(query(QueryRetrieveLevel="IMAGE", PatientID="B")))
    assert sorted(element.keyword for element in by_id) == [
        "PatientID",
        "QueryRetrieveLevel",
        "SpecificCharacterSet",
    ]
    with_level = list(backend.find(query(QueryRetrieveLevel="IMAGE")))
    assert [str(ds.SOPInstanceUID) for ds in with_level] == ["1.1", "1.2", "1.3"]
    assert with_level[0].QueryRetrieveLevel == "IMAGE"


def test_retrieve_returns_full_instances(folder: Path) -> None:
    backend = FolderBackend(folder)
    found = backend.retrieve(query(QueryRetrieveLevel="IMAGE", SOPInstanceUID=["1.1", "1.3"]))
    assert [str(ds.SOPInstanceUID) for ds in found] == ["1.1", "1.3"]
    assert len(found) == 2
    assert found[0].Rows == 512


def test_an_index_record_decodes_as_read_and_only_the_tags_asked_for(tmp_path: Path) -> None:
    """A record keeps each value's bytes, those pydicom decoded while reading the file (Specific
    Character Set) included, so decoding one parses no element of its own but a sequence; a
    query decodes only the elements it reads."""
    ds = instance("1.2.3.4", SpecificCharacterSet="ISO_IR 100", PatientName="Müller^Jürgen")
    ds.ReferencedStudySequence = [Dataset()]
    ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID = "1.2.3"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    read = read_header(tmp_path / "a.dcm")
    assert read is not None
    record = _index.encode(read[1])
    whole = _index.decode(record)
    assert isinstance(whole.get_item(0x00080005), RawDataElement)  # before a value is read
    assert whole.PatientName == "Müller^Jürgen"
    assert whole.ReferencedStudySequence[0].ReferencedSOPInstanceUID == "1.2.3"
    assert whole.SpecificCharacterSet == "ISO_IR 100"
    only = _index.decode(record, tags={0x00100010, 0x00080005})
    assert sorted(only.keys()) == [0x00080005, 0x00100010]
    assert only.PatientName == "Müller^Jürgen"


def test_destination_lookup_strips_spaces(tmp_path: Path) -> None:
    backend = FolderBackend(tmp_path, {"STORESCP ": ("127.0.0.1", 11113)})
    assert backend.destination("STORESCP") == ("127.0.0.1", 11113)
    assert backend.destination("  STORESCP    ") == ("127.0.0.1", 11113)
    assert backend.destination("OTHER") is None
    assert FolderBackend(tmp_path).destination("STORESCP") is None


def test_store_replaces_same_sop_instance_uid(folder: Path) -> None:
    backend = FolderBackend(folder)
    backend.store(instance("1.2", PatientName="Replaced"))
    assert [str(ds.SOPInstanceUID) for ds in list(backend.instances())] == ["1.1", "1.2", "1.3"]
    assert str(list(backend.instances())[1].PatientName) == "Replaced"
    backend.store(instance("1.4", PatientName="New"))  # as 1.4.dcm: first in path order
    assert [str(ds.SOPInstanceUID) for ds in list(backend.instances())] == [
        "1.4",
        "1.1",
        "1.2",
        "1.3",
    ]
    assert [str(ds.PatientName) for ds in backend.find(query(PatientName="Replaced"))] == [
        "Replaced"
    ]


def test_store_rejects_dataset_without_uid(tmp_path: Path) -> None:
    backend = FolderBackend(tmp_path)
    with pytest.raises(ValueError, match="SOPInstanceUID"):
        backend.store(query(PatientName="Nobody"))
    assert list(backend.instances()) == []


def _raw(vr: str | None, value: bytes, little: bool = True, length: int | None = None) -> Any:
    length = len(value) if length is None else length
    return RawDataElement(BaseTag(0x00080080), vr, length, value, 0, False, little)


@pytest.mark.parametrize(
    ("element", "sendable"),
    [
        (_raw("LO", b"Loopback"), True),
        (DataElement(0x00080080, "LO", "Loopback"), True),  # pydicom encodes a decoded one
        (_raw("LO", b"Loopbac"), False),  # odd length: pydicom would pad it
        (_raw(None, b"Loopback"), False),  # no VR to write in Explicit VR
        (_raw("US or SS", b"\x01\x00"), False),
        (_raw("LO", b"Loopback", little=False), False),
        (_raw("SQ", b"", length=0xFFFFFFFF), False),
    ],
)
def test_a_value_is_sent_as_read_only_when_it_can_be(element: Any, sendable: bool) -> None:
    """A C-FIND response's undecoded values go out as their files hold them only where that
    is a valid Little Endian element; any other is decoded and encoded by pydicom."""
    assert sendable_as_read(element) is sendable


def test_an_implicit_vr_record_knows_its_dictionary_vr() -> None:
    """Values indexed from an Implicit VR file get the VR pydicom would give them, so they too
    can be sent as read; an ambiguous or private one stays undecided."""
    elements = {
        0x00080080: _raw(None, b"Loopback"),
        0x00280106: RawDataElement(BaseTag(0x00280106), None, 2, b"\x01\x00", 0, True, True),
        0x00091010: RawDataElement(BaseTag(0x00091010), None, 2, b"ab", 0, True, True),
    }
    decoded = _index.decode(_index.encode(elements))
    vrs = {int(tag): element.VR for tag, element in decoded.items()}
    assert vrs == {0x00080080: "LO", 0x00280106: None, 0x00091010: None}
