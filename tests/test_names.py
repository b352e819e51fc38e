"""Enum member names (issue 11, point 4): short names by a documented rule, on every page of
pynetdicom's."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.model import Category, Dimse, Status, code_text, member_names
from generator.parser import read_page
from generator.views import service_view

from . import sdist
from .conftest import ROOT

# The rule


RULE = [
    ("Success", "SUCCESS"),
    ("Processing has been terminated", "PROCESSING_TERMINATED"),
    ("The UPS is already COMPLETED", "UPS_ALREADY_COMPLETED"),
    ("Identifier does not match SOP Class", "IDENTIFIER_NOT_MATCH_SOP_CLASS"),
    ("No such SOP Instance", "NO_SUCH_SOP_INSTANCE"),
    ("None of the frames", "NONE_OF_FRAMES"),
    ("Patient cannot be identified", "PATIENT_CANNOT_BE_IDENTIFIED"),
    ("User's callback", "USERS_CALLBACK"),
    ("Handler bound to evt.EVT_C_FIND", "HANDLER_BOUND_TO_EVT_C_FIND"),
    ("one two three four five six", "ONE_TWO_THREE_FOUR_FIVE_SIX"),
    ("one two three four five six seven", "ONE_TWO_THREE_FOUR_FIVE_SIX"),
    ("Failed to decode the dataset received from the peer", "FAILED_TO_DECODE_DATASET_RECEIVED"),
    ("The provided value of UPS State was not SCHEDULED", "PROVIDED_VALUE_OF_UPS_STATE"),
    ("Time-based request received for a non-time-based instance", "TIME_BASED_REQUEST_RECEIVED"),
    ("Event logged: no", "EVENT_LOGGED_NO"),
    ("Refused: already logged in", "REFUSED_ALREADY_LOGGED_IN"),
    ("Of to from with and or not", "OF"),
    ("The a an this", "STATUS"),
    ("", "STATUS"),
    ("1st attempt failed", "_1ST_ATTEMPT_FAILED"),
]
"""(description, member name): filler words go wherever they stand, "no", "not", "cannot" and
"be" never; at most six words; a name cut short ends on none of the words that lead into the
next (a whole description keeps its last word, whatever it is); never an empty name."""


@pytest.mark.parametrize(("description", "name"), RULE)
def test_the_naming_rule(description: str, name: str) -> None:
    row = Status(0xA700, 0xA700, Category.FAILURE, description, description, 1)
    assert member_names([row]) == {row: name}


EXAMPLES = ROOT / "tests" / "data" / "names" / "pynetdicom.md"


def documented_examples() -> list[list[str]]:
    """The rows of the examples table: page, service, code, description, member, comment."""
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line.startswith("| ")][1:]  # no header
    return [[cell.strip() for cell in line.strip()[1:-1].split("|")] for line in table]


def test_the_documented_examples_are_the_names_servicegen_gives(
    pynetdicom_pages: Path, tmp_path: Path
) -> None:
    """One example from each of pynetdicom 3.0.4's 24 pages (README and contributing notes)."""
    spec = sdist.spec_copy(pynetdicom_pages, tmp_path / "spec")
    examples = documented_examples()
    assert [row[0] for row in examples] == sorted(path.stem for path in spec.glob("*.rst"))
    assert len(examples) == 24
    for stem, service, code, description, member, _ in examples:
        page = read_page(spec / f"{stem}.rst")
        if not service:
            assert (page.status_tables, code, description, member) == ((), "", "", "")
            continue
        named = {
            code_text(status): (status.description, name)
            for name, status in service_view(page, Dimse(service)).members
        }
        assert named[code] == (description, member), stem


def test_no_name_of_pynetdicoms_pages_is_longer_than_six_words(pynetdicom_pages: Path) -> None:
    """Six words and a code at most, where the old rule gave up to eight and cut anywhere
    (``..._RECEIVED_FROM_THE``); the longest are 50 characters, where the old ones ran to 61."""
    names: set[str] = set()
    for path in sorted(pynetdicom_pages.glob("*.rst")):
        if path.stem == "inventory_service_class":
            continue  # its keywords are refused; its rows are the other Q/R pages' rows
        page = read_page(path)
        for dimse in dict.fromkeys(table.dimse for table in page.status_tables):
            for name, status in service_view(page, dimse).members:
                words = name.removesuffix(f"_{status.first:04X}").split("_")
                assert len(words) <= 6, name
                assert words[-1].lower() not in {"the", "of", "to", "from", "with", "and", "or"}
                names.add(name)
    longest = max(map(len, names))
    assert sorted(name for name in names if len(name) == longest) == [
        "APPLICABLE_MACHINE_VERIFICATION_INSTANCE_NOT_FOUND",
        "MATCHING_REACHED_RESPONSE_LIMIT_SUBSEQUENT_REQUEST",
    ]
