"""Exact expectations for every row of the seed page, in the model, the module and pynetdicom."""

from __future__ import annotations

import ast
import hashlib
import importlib
import sys

import pytest
from pynetdicom import status as pynd_status

from generator.model import Category, Dimse, Page, Scope
from generator.render import environment, templates_digest

from .conftest import ROOT, SEED

SOP_CLASSES = [
    ("ColorPaletteInformationModelFind", "1.2.840.10008.5.1.4.39.2", "C-FIND"),
    ("ColorPaletteInformationModelMove", "1.2.840.10008.5.1.4.39.3", "C-MOVE"),
    ("ColorPaletteInformationModelGet", "1.2.840.10008.5.1.4.39.4", "C-GET"),
]

TABLES = [
    (
        "C-FIND",
        "general",
        "C-FIND Statuses",
        [
            (0x0000, 0x0000, "Success", "Success"),
            (0x0122, 0x0122, "Failure", "SOP Class not supported"),
            (0xFE00, 0xFE00, "Cancel", "Processing has been terminated"),
        ],
    ),
    (
        "C-FIND",
        "service",
        "Color Palette Query/Retrieve (Find) Service Statuses",
        [
            (0xA700, 0xA700, "Failure", "Out of resources"),
            (0xA900, 0xA900, "Failure", "Dataset does not match SOP Class"),
            (0xC000, 0xCFFF, "Failure", "Unable to process"),
            (0xFF00, 0xFF00, "Pending", "Matches are continuing"),
            (
                0xFF01,
                0xFF01,
                "Pending",
                "Matches are continuing; one or more Optional keys was not supported",
            ),
        ],
    ),
    (
        "C-FIND",
        "implementation",
        "pynetdicom Color Palette Query/Retrieve (Find) Statuses",
        [
            (
                0xC001,
                0xC001,
                "Failure",
                "User's callback implementation returned a status Dataset with no (0000,0900) Status element",
            ),
            (
                0xC002,
                0xC002,
                "Failure",
                "User's callback implementation returned an invalid status object (not a pydicom Dataset or an int)",
            ),
            (0xC310, 0xC310, "Failure", "Failed to decode the dataset received from the peer"),
            (
                0xC311,
                0xC311,
                "Failure",
                "Unhandled exception raised by the user's implementation of the on_c_find callback",
            ),
            (
                0xC312,
                0xC312,
                "Failure",
                "Failed to encode the dataset received from the user's implementation of the on_c_find callback",
            ),
        ],
    ),
    (
        "C-GET",
        "general",
        "C-GET Statuses",
        [
            (0x0000, 0x0000, "Success", "Success"),
            (0x0122, 0x0122, "Failure", "SOP Class not supported"),
            (0x0124, 0x0124, "Failure", "Not authorised"),
            (0x0210, 0x0210, "Failure", "Duplicate invocation"),
            (0x0212, 0x0212, "Failure", "Mistyped argument"),
            (0xFE00, 0xFE00, "Cancel", "Sub-operations terminated"),
        ],
    ),
    (
        "C-GET",
        "service",
        "Color Palette Query/Retrieve (Get) Service Statuses",
        [
            (0xA701, 0xA701, "Failure", "Out of resources; unable to calculate number of matches"),
            (0xA702, 0xA702, "Failure", "Out of resources; unable to perform sub-operations"),
            (0xA900, 0xA900, "Failure", "Dataset does not match SOP Class"),
            (0xB000, 0xB000, "Warning", "Sub-operations complete, one or more or warnings"),
            (0xC000, 0xCFFF, "Failure", "Unable to process"),
            (0xFF00, 0xFF00, "Pending", "Sub-operations are continuing"),
        ],
    ),
    (
        "C-GET",
        "implementation",
        "pynetdicom Color Palette Query/Retrieve (Get) Statuses",
        [
            (
                0xC001,
                0xC001,
                "Failure",
                "User's callback implementation returned a status Dataset with no (0000,0900) Status element",
            ),
            (
                0xC002,
                0xC002,
                "Failure",
                "User's callback implementation returned an invalid status object (not a pydicom Dataset or an int)",
            ),
            (0xC410, 0xC410, "Failure", "Failed to decode the dataset received from the peer"),
            (
                0xC411,
                0xC411,
                "Failure",
                "Unhandled exception raised by the user's implementation of the on_c_get callback",
            ),
            (
                0xC413,
                0xC413,
                "Failure",
                "The user's implementation oc the on_c_get callback yielded an invalid number of sub-operations",
            ),
        ],
    ),
    (
        "C-MOVE",
        "general",
        "C-MOVE Statuses",
        [
            (0x0000, 0x0000, "Success", "Success"),
            (0x0122, 0x0122, "Failure", "SOP Class not supported"),
            (0x0124, 0x0124, "Failure", "Not authorised"),
            (0x0210, 0x0210, "Failure", "Duplicate invocation"),
            (0x0211, 0x0211, "Failure", "Unrecognised operation"),
            (0x0212, 0x0212, "Failure", "Mistyped argument"),
            (0xFE00, 0xFE00, "Cancel", "Sub-operations terminated"),
        ],
    ),
    (
        "C-MOVE",
        "service",
        "Color Palette Query/Retrieve (Move) Service Statuses",
        [
            (0xA701, 0xA701, "Failure", "Out of resources; unable to calculate number of matches"),
            (0xA702, 0xA702, "Failure", "Out of resources; unable to perform sub-operations"),
            (0xA801, 0xA801, "Failure", "Move destination unknown"),
            (0xA900, 0xA900, "Failure", "Dataset does not match SOP Class"),
            (0xB000, 0xB000, "Warning", "Sub-operations complete, one or more or warnings"),
            (0xC000, 0xCFFF, "Failure", "Unable to process"),
            (0xFF00, 0xFF00, "Pending", "Sub-operations are continuing"),
        ],
    ),
    (
        "C-MOVE",
        "implementation",
        "pynetdicom Color Palette Query/Retrieve (Move) Statuses",
        [
            (
                0xC001,
                0xC001,
                "Failure",
                "User's callback implementation returned a status Dataset with no (0000,0900) Status element",
            ),
            (
                0xC002,
                0xC002,
                "Failure",
                "User's callback implementation returned an invalid status object (not a pydicom Dataset or an int)",
            ),
            (0xC510, 0xC510, "Failure", "Failed to decode the dataset received from the peer"),
            (
                0xC511,
                0xC511,
                "Failure",
                "Unhandled exception raised by the user's implementation of the on_c_get callback",
            ),
            (
                0xC513,
                0xC513,
                "Failure",
                "The user's implementation oc the on_c_move callback yielded an invalid number of sub-operations",
            ),
            (
                0xC514,
                0xC514,
                "Failure",
                "The user's implementation oc the on_c_move callback failed to yield the (address, port) and/or the number of sub-operations",
            ),
            (
                0xC515,
                0xC515,
                "Failure",
                "The user's implementation oc the on_c_move callback failed to yield a valid (address, port) pair",
            ),
        ],
    ),
]


def test_sop_classes_exactly(seed_page: Page) -> None:
    got = [(s.keyword, s.uid, [d.value for d in s.dimse]) for s in seed_page.sop_classes]
    assert got == [(k, u, [d]) for k, u, d in SOP_CLASSES]


def test_status_tables_exactly(seed_page: Page) -> None:
    assert len(seed_page.status_tables) == 9
    assert sum(len(t.statuses) for t in seed_page.status_tables) == 51
    got = [
        (
            t.dimse.value,
            t.scope.value,
            t.title,
            [(s.first, s.last, s.category.value, s.description) for s in t.statuses],
        )
        for t in seed_page.status_tables
    ]
    assert got == [(d, s, t, rows) for d, s, t, rows in TABLES]


def test_rows_keep_rst_source_and_lines(seed_page: Page) -> None:
    find_impl = seed_page.status_tables[2]
    assert find_impl.scope is Scope.IMPLEMENTATION
    c001 = find_impl.statuses[0]
    assert c001.description_rst.endswith("no (0000,0900) *Status* element")
    assert c001.line == 94
    c312 = find_impl.statuses[4]
    assert c312.description_rst.endswith("of the ``on_c_find`` callback")
    ranges = [s for t in seed_page.status_tables for s in t.statuses if s.is_range]
    assert [(s.first, s.last, s.category) for s in ranges] == [
        (0xC000, 0xCFFF, Category.FAILURE)
    ] * 3


def test_page_title_and_links(seed_page: Page) -> None:
    assert seed_page.title == "Color Palette Query/Retrieve Service Class"
    assert seed_page.dimse_services == (Dimse.C_FIND, Dimse.C_MOVE, Dimse.C_GET)
    urls = [link.url.rsplit("/", 1)[-1] for link in seed_page.links]
    assert urls == [
        "chapter_X.html",
        "chapter_C.html",
        "chapter_X.html",
        "chapter_9.html#sect_9.1.2.1.5",
        "chapter_9.html#sect_9.1.3.1.6",
        "chapter_9.html#sect_9.1.4.1.7",
    ]


@pytest.fixture(scope="module")
def module():  # type: ignore[no-untyped-def]
    return importlib.import_module("generated.color_palette_service_class")


def test_module_sop_classes(module) -> None:  # type: ignore[no-untyped-def]
    assert dict(module.SOP_CLASSES) == {k: u for k, u, _ in SOP_CLASSES}
    for keyword, uid, _ in SOP_CLASSES:
        assert getattr(module, keyword) == uid
        assert getattr(module, keyword).is_valid
    assert module.DIMSE_SERVICES == ("C-FIND", "C-GET", "C-MOVE")


@pytest.mark.parametrize("dimse", ["C-FIND", "C-GET", "C-MOVE"])
def test_module_status_tables_hold_every_row(module, dimse: str) -> None:  # type: ignore[no-untyped-def]
    table = module.STATUS_TABLES[dimse]
    assert table is getattr(module, dimse.replace("-", "_") + "_STATUSES")
    rows = [r for d, _, _, rs in TABLES if d == dimse for r in rs]
    for first, last, category, description in rows:
        for code in {first, (first + last) // 2, last}:
            if code != first and any(f == code for f, _, _, _ in rows):
                continue
            assert table[code] == (category, description)
            assert code in table
            assert table.get(code) == (category, description)
            assert module.category(code, dimse) == category
    exact = {f for f, l, _, _ in rows if f == l}
    covered = set().union(*(range(f, l + 1) for f, l, _, _ in rows))
    assert len(table) == len(covered) == len(list(table))
    assert exact <= set(table)
    assert 0x1234 not in table and table.get(0x1234) is None
    with pytest.raises(KeyError):
        table[0xD000]


def test_range_lookup_without_expansion(module) -> None:  # type: ignore[no-untyped-def]
    assert module.C_FIND_STATUSES[0xC123] == ("Failure", "Unable to process")
    assert module.C_FIND_STATUSES[0xC001][1].startswith("User's callback implementation")
    assert repr(module.C_FIND_STATUSES) == "StatusTable(12 codes, 1 ranges)"


SHARED_NAMES = {
    0x0000: "SUCCESS",
    0x0122: "SOP_CLASS_NOT_SUPPORTED",
    0xC000: "UNABLE_TO_PROCESS",
    0xC001: "USERS_CALLBACK_IMPLEMENTATION_RETURNED_STATUS_DATASET",
    0xC002: "USERS_CALLBACK_IMPLEMENTATION_RETURNED_INVALID_STATUS",
}
"""Members every service of the seed page has, by value."""
RETRIEVE_NAMES = {
    0x0124: "NOT_AUTHORISED",
    0x0210: "DUPLICATE_INVOCATION",
    0x0212: "MISTYPED_ARGUMENT",
    0xFE00: "SUB_OPERATIONS_TERMINATED",
    0xA701: "OUT_OF_RESOURCES_UNABLE_TO_CALCULATE",
    0xA702: "OUT_OF_RESOURCES_UNABLE_TO_PERFORM",
    0xA900: "DATASET_NOT_MATCH_SOP_CLASS",
    0xB000: "SUB_OPERATIONS_COMPLETE_ONE_OR_MORE",
    0xFF00: "SUB_OPERATIONS_CONTINUING",
}
"""Members C-GET and C-MOVE share, by value."""
ENUMS = {
    "CFindStatus": {
        **SHARED_NAMES,
        0xFE00: "PROCESSING_TERMINATED",
        0xA700: "OUT_OF_RESOURCES",
        0xA900: "DATASET_NOT_MATCH_SOP_CLASS",
        0xFF00: "MATCHES_CONTINUING",
        0xFF01: "MATCHES_CONTINUING_ONE_OR_MORE_OPTIONAL",
        0xC310: "FAILED_TO_DECODE_DATASET_RECEIVED",
        0xC311: "UNHANDLED_EXCEPTION_RAISED_BY_USERS_IMPLEMENTATION",
        0xC312: "FAILED_TO_ENCODE_DATASET_RECEIVED",
    },
    "CGetStatus": {
        **SHARED_NAMES,
        **RETRIEVE_NAMES,
        0xC410: "FAILED_TO_DECODE_DATASET_RECEIVED",
        0xC411: "UNHANDLED_EXCEPTION_RAISED_BY_USERS_IMPLEMENTATION",
        0xC413: "USERS_IMPLEMENTATION_OC_ON_C_GET",
    },
    "CMoveStatus": {
        **SHARED_NAMES,
        **RETRIEVE_NAMES,
        0x0211: "UNRECOGNISED_OPERATION",
        0xA801: "MOVE_DESTINATION_UNKNOWN",
        0xC510: "FAILED_TO_DECODE_DATASET_RECEIVED",
        0xC511: "UNHANDLED_EXCEPTION_RAISED_BY_USERS_IMPLEMENTATION",
        0xC513: "USERS_IMPLEMENTATION_OC_ON_C_MOVE_C513",
        0xC514: "USERS_IMPLEMENTATION_OC_ON_C_MOVE_C514",
        0xC515: "USERS_IMPLEMENTATION_OC_ON_C_MOVE_C515",
    },
}
"""Every member of the seed page's enums: filler words ("the", "are", "does", "has been") gone,
at most six words, never ending on one that leads into words cut off ("..._RECEIVED", not
"..._RECEIVED_FROM_THE"), and a code only where three rows would share a name."""


def test_enums_name_every_code_with_the_short_names(module) -> None:  # type: ignore[no-untyped-def]
    for enum, names in ENUMS.items():
        assert {member.value: member.name for member in getattr(module, enum)} == names
    # The page's one alias comment keeps the name the README used before names were shortened.
    find = module.CFindStatus
    assert set(find.__members__) - {member.name for member in find} == {
        "MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS"
    }
    assert find.MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS is find(0xFF01)
    assert "kept for compatibility" in (find.__doc__ or "")
    for enum in ("CGetStatus", "CMoveStatus"):
        members = getattr(module, enum)
        assert list(members.__members__) == [member.name for member in members]
    for dimse, enum in (
        ("C-FIND", "CFindStatus"),
        ("C-GET", "CGetStatus"),
        ("C-MOVE", "CMoveStatus"),
    ):
        firsts = {f for d, _, _, rs in TABLES if d == dimse for f, _, _, _ in rs}
        assert set(ENUMS[enum]) == firsts


def test_category_lookup_falls_back_to_annex_c(module) -> None:  # type: ignore[no-untyped-def]
    assert module.category(0xA801) == "Failure"
    assert module.category(0xB000) == "Warning"
    assert module.category(0x0107) == "Warning"
    assert module.category(0x0001) == "Warning"
    assert module.category(0x1234) == "Unknown"


_PYNETDICOM = {
    "C-FIND": pynd_status.QR_FIND_SERVICE_CLASS_STATUS,
    "C-GET": pynd_status.QR_GET_SERVICE_CLASS_STATUS,
    "C-MOVE": pynd_status.QR_MOVE_SERVICE_CLASS_STATUS,
}


@pytest.mark.parametrize("dimse", sorted(_PYNETDICOM))
def test_pynetdicom_agrees_on_every_shared_code(module, dimse: str) -> None:  # type: ignore[no-untyped-def]
    ours = module.STATUS_TABLES[dimse]
    theirs = _PYNETDICOM[dimse]
    shared = [code for code in theirs if code in ours]
    assert len(shared) > 4000  # the 0xC000 to 0xCFFF range is shared
    disagree = {hex(c): (ours[c][0], theirs[c][0]) for c in shared if ours[c][0] != theirs[c][0]}
    assert disagree == {}
    assert all(
        pynd_status.code_to_category(c) == ours[c][0] for c in shared if c < 0xC000 or c > 0xCFFF
    )


def test_generated_code_imports_only_stdlib_pydicom_and_pynetdicom() -> None:
    allowed = set(sys.stdlib_module_names) | {"pydicom", "pynetdicom"}
    checked = 0
    for path in sorted((ROOT / "generated").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert {name.split(".")[0] for name in names} <= allowed, (path.name, names)
            checked += 1
    assert checked > 20


def test_header_names_the_page_and_its_hashes(seed_page: Page) -> None:
    text = (ROOT / "generated" / "color_palette_service_class.py").read_text(encoding="utf-8")
    digest = hashlib.sha256(SEED.read_bytes()).hexdigest()
    header = text.splitlines()[:3]
    assert header[0].startswith("# Generated by servicegen from 'color_palette_service_class.rst'")
    assert "do not edit" in header[0]
    assert header[1] == f"# spec sha256: {digest}" and seed_page.sha256 == digest
    assert header[2] == f"# templates sha256: {templates_digest(environment())}"
