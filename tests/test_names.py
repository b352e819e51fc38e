"""Enum member names (issue 11, point 4): short names by a documented rule, on every page of
pynetdicom's, and ``.. servicegen: alias`` comments that keep a member's old name when its
description is reworded, refused with ``path:line`` whenever they could not mean what they say."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from generator import render
from generator.errors import SpecError
from generator.lint import lint
from generator.model import Alias, Category, Dimse, Page, Status, code_text, member_names
from generator.parser import parse_page, read_page
from generator.rst_text import anchor_id
from generator.views import service_view

from . import sdist
from .conftest import ROOT, SEED, generate, load
from .test_docs import scan

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


# Aliases: a reworded description keeps its old name


def seed_text(*replacements: tuple[str, str]) -> str:
    """The seed page with each ``(old, new)`` cell text replaced at the same width."""
    text = SEED.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1 and len(old) == len(new), old
        text = text.replace(old, new)
    return text


REWORDED = ("Move destination unknown         ", "Refused: Move destination unknown")
"""The issue's example: 0xA801 reworded, which renames MOVE_DESTINATION_UNKNOWN."""


def test_a_reworded_description_keeps_its_old_name_by_alias(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    page = spec / "palette.rst"
    # Reworded alone, the member is renamed and code using the old name breaks.
    page.write_text(seed_text(REWORDED), encoding="utf-8")
    assert generate(spec, package, capsys) == (0, [])
    move = load(package, "palette").CMoveStatus
    assert move.REFUSED_MOVE_DESTINATION_UNKNOWN == 0xA801
    assert not hasattr(move, "MOVE_DESTINATION_UNKNOWN")
    # With the alias comment, the old name is the new member. A SOP class keyword that is the
    # alias's name is no clash: one is the module's, the other the enum's.
    keyword = ("ColorPaletteInformationModelFind", "MOVE_DESTINATION_UNKNOWN".ljust(32))
    page.write_text(
        seed_text(REWORDED, keyword)
        + "\n.. servicegen: alias C-MOVE 0xA801 MOVE_DESTINATION_UNKNOWN\n",
        encoding="utf-8",
    )
    assert generate(spec, package, capsys) == (0, [])
    del sys.modules[f"{package.name}.palette"]
    module = load(package, "palette")
    move = module.CMoveStatus
    assert move.MOVE_DESTINATION_UNKNOWN is move.REFUSED_MOVE_DESTINATION_UNKNOWN is move(0xA801)
    assert move["MOVE_DESTINATION_UNKNOWN"] is move.REFUSED_MOVE_DESTINATION_UNKNOWN
    assert "MOVE_DESTINATION_UNKNOWN" not in [member.name for member in move]
    assert module.MOVE_DESTINATION_UNKNOWN == "1.2.840.10008.5.1.4.39.2"
    source = (package / "palette.py").read_text(encoding="utf-8")
    assert "    MOVE_DESTINATION_UNKNOWN = REFUSED_MOVE_DESTINATION_UNKNOWN\n" in source
    assert "Old names kept for compatibility" in (move.__doc__ or "")
    assert "compatibility" not in (module.CGetStatus.__doc__ or "")


def test_an_alias_is_in_the_generated_rst_and_shows_in_the_html_only_as_its_anchor(
    seed_page: Page,
) -> None:
    """The seed's alias comment is in its model and the generated RST (``test_docs`` reads it
    back); the HTML holds the comment only as an HTML comment, as docutils writes a comment
    (Sphinx drops comments altogether), and shows the old name only where links to it land:
    beside its member's name, in the row's Python name cell."""
    alias = Alias(Dimse.C_FIND, 0xFF01, "MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS", 274)
    assert seed_page.aliases == (alias,)
    assert seed_page.to_json()["aliases"] == [
        {"dimse": "C-FIND", "code": 0xFF01, "name": alias.name, "line": 274}
    ]
    comment = f"servicegen: alias C-FIND 0xFF01 {alias.name}"
    rst = (ROOT / "generated" / "docs" / f"{SEED.stem}.rst").read_text(encoding="utf-8")
    assert rst.count(f"\n.. {comment}\n") == 1
    path = ROOT / "generated" / "docs" / f"{SEED.stem}.html"
    html = path.read_text(encoding="utf-8")
    assert html.count("servicegen: alias") == 1 and f"<!-- {comment} -->" in html
    old = f"CFindStatus.{alias.name}"
    anchor = f'<span class="target" id="{anchor_id(old)}">{old}</span>'
    assert html.count(alias.name) == 2 and html.count(anchor) == 1  # the comment, the anchor
    page = scan(path)
    assert page.row_of[anchor_id(old)] == "c-find-0xFF01"
    assert "Matches are continuing" in page.text and "servicegen" not in page.text
    assert page.text.count(alias.name) == 1


# Aliases that are refused


def refusal(comment: str) -> list[str]:
    """The problems of the seed page with ``comment`` added at its end, as ``path:line: ...``."""
    with pytest.raises(SpecError) as caught:
        parse_page(seed_text() + comment, "palette.rst")
    return caught.value.lines()


END = 276
"""The line of a comment added at the end of the seed page, after a blank line."""
FORM = "'.. servicegen: alias DIMSE 0xNNNN NAME'"
SERVICES = ", ".join(d.value for d in Dimse)
NOT_A_NAME = (
    "is not an enum member name: upper-case ASCII words and digits joined by single '_',"
    " as servicegen names members"
)
REFUSALS = {
    "alias C-MOOVE 0xA801 X": f"unknown DIMSE service 'C-MOOVE' (expected one of {SERVICES})",
    "alias c-move 0xA801 X": f"unknown DIMSE service 'c-move' (expected one of {SERVICES})",
    "alias C-MOVE A801 X": "bad status code 'A801': expected 0xNNNN",
    "alias C-MOVE 0xA8011 X": "bad status code '0xA8011': expected 0xNNNN",
    "alias C-MOVE 0xA802 X": (
        "no C-MOVE status row has code 0xA802 (a range is named by its first code)"
    ),
    "alias C-MOVE 0xC123 X": (
        "no C-MOVE status row has code 0xC123 (a range is named by its first code)"
    ),
    "alias N-GET 0x0000 X": (
        "no N-GET status row has code 0x0000 (a range is named by its first code)"
    ),
    "alias C-MOVE 0xA801 move_destination_unknown": f"alias 'move_destination_unknown' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 to_bytes": f"alias 'to_bytes' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 __X": f"alias '__X' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 _X_": f"alias '_X_' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 X__Y": f"alias 'X__Y' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 1ST": f"alias '1ST' {NOT_A_NAME}",
    "alias C-MOVE 0xA801 SUCCESS": (
        "alias SUCCESS is already the name of C-MOVE status 0x0000 (line 189)"
    ),
    "alias C-MOVE 0xA801 MOVE_DESTINATION_UNKNOWN": (
        "alias MOVE_DESTINATION_UNKNOWN is already the name of C-MOVE status 0xA801 (line 216)"
    ),
    "alias C-MOVE 0xA801": f"a servicegen alias has three words after it: {FORM}",
    "alias C-MOVE 0xA801 X Y": f"a servicegen alias has three words after it: {FORM}",
    "alais C-MOVE 0xA801 X": f"unknown servicegen comment 'alais': {FORM}",
    "rename C-MOVE 0xA801 X": f"unknown servicegen comment 'rename': {FORM}",
}


@pytest.mark.parametrize("comment", sorted(REFUSALS))
def test_a_bad_alias_comment_is_refused_at_its_line(comment: str) -> None:
    assert refusal(f"\n.. servicegen: {comment}\n") == [f"palette.rst:{END}: {REFUSALS[comment]}"]


@pytest.mark.parametrize(
    "comment",
    ["Servicegen: alias C-MOVE 0xA801 X", "servicegen alias C-MOVE 0xA801 X", "servicegen:"],
)
def test_a_comment_meant_for_servicegen_but_mistyped_is_refused(comment: str) -> None:
    assert refusal(f"\n.. {comment}\n") == [f"palette.rst:{END}: a servicegen comment reads {FORM}"]


def test_a_servicegen_directive_is_refused_not_ignored() -> None:
    """``::`` makes a directive, which an inert one would swallow and Sphinx would fail on."""
    directive = "'.. servicegen::' is a directive; a servicegen comment has one colon"
    assert refusal("\n.. servicegen:: alias C-MOVE 0xA801 X\n") == [
        f"palette.rst:{END}: {directive}: {FORM}"
    ]


def test_an_alias_that_repeats_a_name_is_refused_and_the_first_kept() -> None:
    """Two aliases of one enum may not share a name, of one code or two; the seed's own alias of
    C-FIND may be a C-MOVE alias's name too, in another enum."""
    comments = (
        "\n.. servicegen: alias C-MOVE 0xA801 OLD\n"
        ".. servicegen: alias C-MOVE 0xA801 OLD\n"
        ".. servicegen: alias C-MOVE 0xA900 OLD\n"
        ".. servicegen: alias C-MOVE 0xA801 OLDER\n"
        ".. servicegen: alias C-MOVE 0xC000 MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS\n"
    )
    assert refusal(comments) == [
        f"palette.rst:{END + 1}: alias OLD is already an alias of 0xA801 (line {END})",
        f"palette.rst:{END + 2}: alias OLD is already an alias of 0xA801 (line {END})",
    ]


def test_alias_comments_inside_other_markup_are_read_at_their_line() -> None:
    """docutils gives a comment in a list or quote no line, and one at the top level the line
    its block ends on: servicegen reports the line of the comment's ``..``."""
    text = (
        seed_text()
        + "\n* A list item.\n\n  .. servicegen: alias C-MOOVE 0xA801 X\n"
        + "\nA paragraph, and a quote after it.\n\n    .. servicegen: alias C-MOVE 0xA801 y\n"
        + "\n.. servicegen: alias C-MOVE 0xA801\n   OLD_NAME\n\n   more text\n"
        + "\nA literal block shows the syntax and is no comment::\n\n"
        + "    .. servicegen: alias C-MOOVE 0xA801 X\n"
        + "\n.. A plain comment that mentions servicegen: ignored.\n"
    )
    with pytest.raises(SpecError) as caught:
        parse_page(text, "palette.rst")
    assert caught.value.lines() == [
        f"palette.rst:{END + 2}: unknown DIMSE service 'C-MOOVE' (expected one of {SERVICES})",
        f"palette.rst:{END + 6}: alias 'y' {NOT_A_NAME}",
        f"palette.rst:{END + 8}: a servicegen alias has three words after it: {FORM}",
    ]


def test_a_page_with_a_bad_alias_writes_nothing_and_lint_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    page = spec / "palette.rst"
    page.write_text(seed_text() + "\n.. servicegen: alias C-MOVE 0xA802 X\n", encoding="utf-8")
    message = "no C-MOVE status row has code 0xA802 (a range is named by its first code)"
    assert generate(spec, tmp_path / "out", capsys) == (2, [f"servicegen: {page}:{END}: {message}"])
    assert not (tmp_path / "out").exists()
    assert [str(f) for f in lint(page) if f.code == "SG002"] == [
        f"{page}:{END}: error: SG002 {message}"
    ]


def test_a_page_built_by_hand_with_a_bad_alias_is_refused_by_render(seed_page: Page) -> None:
    """The views check a page's aliases as the parser does: a model made in code is refused
    at the alias's line, never rendered into an enum Python cannot import."""
    aliases = (Alias(Dimse.C_MOVE, 0xA801, "SUCCESS", 7), Alias(Dimse.C_GET, 0xA801, "OLD", 8))
    page = dataclasses.replace(seed_page, aliases=aliases)
    with pytest.raises(SpecError) as caught:
        render.render([page])
    assert caught.value.lines() == [
        f"{SEED}:8: no C-GET status row has code 0xA801 (a range is named by its first code)"
    ]
    page = dataclasses.replace(seed_page, aliases=aliases[:1])
    with pytest.raises(SpecError) as caught:
        render.render([page])
    assert caught.value.lines() == [
        f"{SEED}:7: alias SUCCESS is already the name of C-MOVE status 0x0000 (line 189)"
    ]
