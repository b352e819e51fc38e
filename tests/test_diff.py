"""``servicegen diff``: exact changelogs between pages, folders and git revisions of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from generator.cli import main

from .conftest import ROOT, SEED

DATA = ROOT / "tests" / "data" / "diff"
OLD, NEW = DATA / "old", DATA / "new"

PALETTE_TEXT = """\
  SOP classes
    1.2.840.10008.5.1.4.39.2: keyword ColorPaletteInformationModelFind → \
ColorPaletteQueryRetrieveInformationModelFind [breaking]
    added InventoryFind (1.2.840.10008.5.1.4.1.1.201.2)
    ColorPaletteInformationModelMove: UID 1.2.840.10008.5.1.4.39.3 → 1.2.840.10008.5.1.4.39.33 \
[breaking]
    removed ColorPaletteInformationModelGet (1.2.840.10008.5.1.4.39.4) [breaking]
  C-FIND
    0xA700: description “Out of resources” → “Refused: out of resources”
    0xB000: category Warning → Failure [breaking]
    split 0xC000 to 0xCFFF (Failure) into 0xC000 to 0xC0FF (Failure), 0xC100 to 0xCFFF (Failure)
    added 0xFF01 Pending: Matches are continuing; optional keys not supported
  C-MOVE
    removed 0xA702 Failure: Out of resources; unable to perform sub-operations [breaking]
    merged 0xC000 to 0xC0FF (Failure), 0xC100 to 0xCFFF (Failure) into 0xC000 to 0xCFFF (Failure)
  C-GET
    regrouped 0xA700 to 0xA7FF (Failure), 0xA800 to 0xA8FF (Failure) as 0xA700 to 0xA77F \
(Failure), 0xA780 to 0xA8FF (Failure)
    range 0xC000 to 0xCFFF (Failure) became 0xC000 to 0xC7FF (Failure) [breaking]
"""
"""The page's own changes: the split and the merge keep every code's category, the shrunk range
drops codes 0xC800-0xCFFF."""

PALETTE_API = """\
    renamed ColorPaletteInformationModelFind → ColorPaletteQueryRetrieveInformationModelFind \
(1.2.840.10008.5.1.4.39.2) [breaking]
    added InventoryFind (1.2.840.10008.5.1.4.1.1.201.2)
    ColorPaletteInformationModelMove: value 1.2.840.10008.5.1.4.39.3 → \
1.2.840.10008.5.1.4.39.33 [breaking]
    removed ColorPaletteInformationModelGet (1.2.840.10008.5.1.4.39.4) [breaking]
    renamed CFindStatus.OUT_OF_RESOURCES → CFindStatus.REFUSED_OUT_OF_RESOURCES (0xA700) \
[breaking]
    renamed CFindStatus.UNABLE_TO_PROCESS → CFindStatus.UNABLE_TO_PROCESS_C000 (0xC000) [breaking]
    added CFindStatus.UNABLE_TO_PROCESS_C100 (0xC100)
    added CFindStatus.MATCHES_CONTINUING_OPTIONAL_KEYS_NOT_SUPPORTED (0xFF01)
    renamed CMoveStatus.UNABLE_TO_PROCESS_C000 → CMoveStatus.UNABLE_TO_PROCESS (0xC000) [breaking]
    removed CMoveStatus.OUT_OF_RESOURCES_UNABLE_TO_PERFORM (0xA702) [breaking]
    removed CMoveStatus.UNABLE_TO_PROCESS_C100 (0xC100) [breaking]
    added CGetStatus.OUT_OF_RESOURCES_OR_MOVE_DESTINATION (0xA780)
    removed CGetStatus.MOVE_DESTINATION_UNKNOWN (0xA800) [breaking]
"""
"""The generated module's changes: a description change renames its member (0xA700), a split or
merge renames the members that had to be told apart by code, a regrouping drops one."""


def palette(page: str = "palette.rst") -> str:
    """The text report of the palette page as ``page``, whose module is named after it."""
    return f"{page}\n{PALETTE_TEXT}  {page.removesuffix('.rst')}.py\n{PALETTE_API}"


FOLDER_TEXT = f"""\
echo.rst
  page removed: 1 SOP class, 1 status [breaking]
{palette()}\
storage.rst
  page added: 1 SOP class, 2 statuses
"""


def run_diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["diff", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_folders_give_a_changelog_per_page_and_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_diff(capsys, str(OLD), str(NEW)) == (1, FOLDER_TEXT, "")


def test_two_pages_pair_up_whatever_their_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = tmp_path / "renamed.rst"
    shutil.copy(NEW / "palette.rst", renamed)
    assert run_diff(capsys, str(OLD / "palette.rst"), str(renamed)) == (
        1,
        palette("renamed.rst"),
        "",
    )


def test_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diff(capsys, "--format", "markdown", str(OLD), str(NEW))
    assert status == 1
    lines = out.splitlines()
    assert lines[:12] == [
        "## echo.rst",
        "",
        "- page removed: 1 SOP class, 1 status **breaking**",
        "",
        "## palette.rst",
        "",
        "### SOP classes",
        "",
        (
            "- `1.2.840.10008.5.1.4.39.2`: keyword `ColorPaletteInformationModelFind` →"
            " `ColorPaletteQueryRetrieveInformationModelFind` **breaking**"
        ),
        "- added `InventoryFind` (1.2.840.10008.5.1.4.1.1.201.2)",
        (
            "- `ColorPaletteInformationModelMove`: UID `1.2.840.10008.5.1.4.39.3` →"
            " `1.2.840.10008.5.1.4.39.33` **breaking**"
        ),
        "- removed `ColorPaletteInformationModelGet` (1.2.840.10008.5.1.4.39.4) **breaking**",
    ]
    module = lines.index("### palette.py")
    assert lines[module + 1 : module + 5] == [
        "",
        (
            "- renamed `ColorPaletteInformationModelFind` →"
            " `ColorPaletteQueryRetrieveInformationModelFind` (1.2.840.10008.5.1.4.39.2) **breaking**"
        ),
        "- added `InventoryFind` (1.2.840.10008.5.1.4.1.1.201.2)",
        (
            "- `ColorPaletteInformationModelMove`: value `1.2.840.10008.5.1.4.39.3` →"
            " `1.2.840.10008.5.1.4.39.33` **breaking**"
        ),
    ]
    assert lines[module + 15 :] == [
        "",
        "## storage.rst",
        "",
        "- page added: 1 SOP class, 2 statuses",
    ]
    assert out.count("\n### ") == 5 and out.count("\n## ") == 2 and "\n\n\n" not in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diff(capsys, "--format", "json", str(OLD), str(NEW))
    changes = json.loads(out)
    assert status == 1 and len(changes) == 27
    assert [(c["kind"], c["breaking"]) for c in changes if c["section"] == "C-FIND"] == [
        ("description changed", False),
        ("category changed", True),
        ("split", False),
        ("added", False),
    ]
    assert changes[6] == {
        "page": "palette.rst",
        "section": "C-FIND",
        "kind": "category changed",
        "subject": "0xB000",
        "old": "Warning",
        "new": "Failure",
        "breaking": True,
    }
    assert changes[17:20] == [
        {
            "page": "palette.rst",
            "section": "palette.py",
            "kind": "renamed",
            "subject": "0xA700",
            "old": "CFindStatus.OUT_OF_RESOURCES",
            "new": "CFindStatus.REFUSED_OUT_OF_RESOURCES",
            "breaking": True,
        },
        {
            "page": "palette.rst",
            "section": "palette.py",
            "kind": "renamed",
            "subject": "0xC000",
            "old": "CFindStatus.UNABLE_TO_PROCESS",
            "new": "CFindStatus.UNABLE_TO_PROCESS_C000",
            "breaking": True,
        },
        {
            "page": "palette.rst",
            "section": "palette.py",
            "kind": "added",
            "subject": "CFindStatus.UNABLE_TO_PROCESS_C100",
            "old": "",
            "new": "0xC100",
            "breaking": False,
        },
    ]


def test_nothing_changed_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_diff(capsys, str(SEED), str(SEED)) == (0, "", "")
    assert run_diff(capsys, "--format", "json", str(OLD), str(OLD)) == (0, "[]\n", "")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose first commit holds the old pages in spec/ and second the new."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copytree(OLD, repo / "spec")
    git(repo, "add", "spec")
    git(repo, "commit", "-qm", "old")
    shutil.rmtree(repo / "spec")
    shutil.copytree(NEW, repo / "spec")
    git(repo, "add", "-A", "spec")
    git(repo, "commit", "-qm", "new")
    monkeypatch.chdir(repo)
    return repo


def test_git_revisions_of_a_folder_and_of_a_page(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_diff(capsys, "HEAD~1:spec", "HEAD:spec") == (1, FOLDER_TEXT, "")
    assert run_diff(capsys, "HEAD~1:spec/palette.rst", "spec/palette.rst") == (1, palette(), "")
    assert run_diff(capsys, "HEAD:spec", "spec") == (0, "", "")


def test_a_revision_path_is_from_the_root_wherever_it_runs(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in ``git show REV:path``: from a subdirectory too, where ``git ls-tree`` alone lists
    only what lies below it; ``./`` and ``../`` are from the working directory."""
    (repo / "generated").mkdir()
    monkeypatch.chdir(repo / "generated")
    assert run_diff(capsys, "HEAD~1:spec", "HEAD:spec") == (1, FOLDER_TEXT, "")
    assert run_diff(capsys, "HEAD~1:../spec", "HEAD:./../spec/") == (1, FOLDER_TEXT, "")
    assert run_diff(capsys, "HEAD~1:spec/palette.rst", "HEAD:../spec/palette.rst") == (
        1,
        palette(),
        "",
    )
    assert run_diff(capsys, "HEAD:spec", "../spec") == (0, "", "")
    assert run_diff(capsys, "HEAD:./spec", "../spec") == (
        2,
        "",
        "servicegen: HEAD:./spec: fatal: path 'generated/spec' does not exist in 'HEAD'\n",
    )


def test_a_revision_git_does_not_have_is_bad_input(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_diff(capsys, "HEAD~1:nowhere", "spec") == (
        2,
        "",
        "servicegen: HEAD~1:nowhere: fatal: path 'nowhere' does not exist in 'HEAD~1'\n",
    )


def page_text(section: str, *tables: str) -> str:
    """A page with one SOP class under the title ``section``, then ``tables``."""
    return (
        "Query\n=====\n\n"
        f"{section}\n{'-' * len(section)}\n\n"
        "+-----------------------------+----------------------------------------------+\n"
        "| UID                         | SOP Class                                    |\n"
        "+=============================+==============================================+\n"
        "| 1.2.840.10008.5.1.4.1.2.1.1 | PatientRootQueryRetrieveInformationModelFind |\n"
        "+-----------------------------+----------------------------------------------+\n\n"
        + "\n".join(tables)
    )


def status_table(title: str, *rows: tuple[str, str, str]) -> str:
    """A status table under the section ``title``; each row code, category, description."""
    border = f"+{'-' * 18}+{'-' * 10}+{'-' * 32}+\n"
    return (
        f"{title}\n{'-' * len(title)}\n\n{border}"
        f"| {'Code (hex)':<16} | Category | {'Description':<30} |\n"
        f"{border.replace('-', '=')}"
        + "".join(
            f"| {code:<16} | {category:<8} | {text:<30} |\n{border}"
            for code, category, text in rows
        )
    )


def write_pages(tmp_path: Path, old: str, new: str) -> tuple[str, str]:
    """``old.rst`` and ``new.rst`` in ``tmp_path``, holding ``old`` and ``new``."""
    paths = tmp_path / "old.rst", tmp_path / "new.rst"
    for path, text in zip(paths, (old, new)):
        path.write_text(text, encoding="utf-8")
    return str(paths[0]), str(paths[1])


def test_services_of_a_sop_class_and_changes_in_code_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = write_pages(
        tmp_path,
        page_text(
            "Query (Find) SOP Classes",
            status_table(
                "C-FIND Statuses",
                ("0xA900", "Failure", "Identifier mismatch"),
                ("0xFF00", "Pending", "Matches are continuing"),
            ),
        ),
        page_text(
            "Query (Get) SOP Classes",
            status_table(
                "C-FIND Statuses",
                ("0xA123", "Failure", "A new failure"),
                ("0xFF00", "Warning", "Matches are continuing"),
            ),
        ),
    )
    assert run_diff(capsys, old, new) == (
        1,
        (
            "new.rst\n"
            "  SOP classes\n"
            "    PatientRootQueryRetrieveInformationModelFind: DIMSE services C-FIND → C-GET\n"
            "  C-FIND\n"
            "    added 0xA123 Failure: A new failure\n"
            "    removed 0xA900 Failure: Identifier mismatch [breaking]\n"
            "    0xFF00: category Pending → Warning [breaking]\n"
            "  new.py\n"
            "    added CFindStatus.NEW_FAILURE (0xA123)\n"
            "    removed CFindStatus.IDENTIFIER_MISMATCH (0xA900) [breaking]\n"
        ),
        "",
    )


FIND = "Query (Find) SOP Classes"


def test_fail_on_breaking_passes_additions_and_fails_on_a_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A code, a description that keeps its member's name, a code inside a range of its
    category: nothing importing code used changes. A code inside a range of another category
    changes what the table answers for it."""
    finding = [
        ("0x0000", "Success", "Success"),
        ("0xC000 to 0xCFFF", "Failure", "Unable to process"),
    ]
    old, new = write_pages(
        tmp_path,
        page_text(FIND, status_table("C-FIND Statuses", *finding)),
        page_text(
            FIND,
            status_table(
                "C-FIND Statuses",
                ("0x0000", "Success", "Success."),
                *finding[1:],
                ("0xFF00", "Pending", "Matches are continuing"),
            ),
            status_table("pynetdicom C-FIND Statuses", ("0xC001", "Failure", "Bad status")),
        ),
    )
    additions = (
        "new.rst\n"
        "  C-FIND\n"
        "    0x0000: description “Success” → “Success.”\n"
        "    added 0xC001 Failure: Bad status\n"
        "    added 0xFF00 Pending: Matches are continuing\n"
        "  new.py\n"
        "    added CFindStatus.MATCHES_CONTINUING (0xFF00)\n"
        "    added CFindStatus.BAD_STATUS (0xC001)\n"
    )
    assert run_diff(capsys, "--fail-on", "breaking", old, new) == (0, additions, "")
    assert run_diff(capsys, "--fail-on", "any", old, new) == (1, additions, "")
    assert run_diff(capsys, old, new) == (1, additions, "")
    Path(new).write_text(
        Path(new)
        .read_text(encoding="utf-8")
        .replace("| Failure  | Bad status", "| Warning  | Bad status"),
        encoding="utf-8",
    )
    status, out, err = run_diff(capsys, "--fail-on", "breaking", "--format", "json", old, new)
    assert (status, err) == (1, "")
    assert [(c["kind"], c["subject"], c["breaking"]) for c in json.loads(out)] == [
        ("description changed", "0x0000", False),
        ("added", "0xC001", True),
        ("added", "0xFF00", False),
        ("added", "CFindStatus.MATCHES_CONTINUING", False),
        ("added", "CFindStatus.BAD_STATUS", False),
    ]


def test_a_service_added_asks_more_of_the_backend_your_code_implements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finding = status_table("C-FIND Statuses", ("0x0000", "Success", "Success"))
    moving = status_table(
        "C-MOVE Statuses",
        ("0x0000", "Success", "Success"),
        ("0xA801", "Failure", "Move destination unknown"),
    )
    old, new = write_pages(tmp_path, page_text(FIND, finding), page_text(FIND, finding, moving))
    assert run_diff(capsys, "--fail-on", "breaking", old, new) == (
        1,
        (
            "new.rst\n"
            "  C-MOVE\n"
            "    added 0x0000 Success: Success\n"
            "    added 0xA801 Failure: Move destination unknown\n"
            "  new.py\n"
            "    added CMoveStatus\n"
            "    added C_MOVE_STATUSES\n"
            "    added handle_c_move\n"
            "    added Backend.retrieve [breaking]\n"
            "    added Backend.destination [breaking]\n"
        ),
        "",
    )
    assert run_diff(capsys, new, old) == (
        1,
        (
            "old.rst\n"
            "  C-MOVE\n"
            "    removed 0x0000 Success: Success [breaking]\n"
            "    removed 0xA801 Failure: Move destination unknown [breaking]\n"
            "  old.py\n"
            "    removed CMoveStatus [breaking]\n"
            "    removed C_MOVE_STATUSES [breaking]\n"
            "    removed handle_c_move [breaking]\n"
            "    removed Backend.retrieve [breaking]\n"
            "    removed Backend.destination [breaking]\n"
        ),
        "",
    )


def test_an_alias_is_renamed_beside_the_member_it_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0xC000 is the value of two members, the range's and the exact code's (an IntEnum alias
    of the first): the range's, renamed, is paired with its new name, never with the other."""
    exact = status_table("pynetdicom C-FIND Statuses", ("0xC000", "Failure", "Cannot understand"))
    old, new = write_pages(
        tmp_path,
        page_text(
            FIND,
            status_table("C-FIND Statuses", ("0xC000 to 0xCFFF", "Failure", "Unable to process")),
            exact,
        ),
        page_text(
            FIND,
            status_table(
                "C-FIND Statuses", ("0xC000 to 0xCFFF", "Failure", "Unable to process now")
            ),
            exact,
        ),
    )
    assert run_diff(capsys, old, new) == (
        1,
        (
            "new.rst\n"
            "  C-FIND\n"
            "    0xC000 to 0xCFFF: description “Unable to process” → “Unable to process now”\n"
            "  new.py\n"
            "    renamed CFindStatus.UNABLE_TO_PROCESS → CFindStatus.UNABLE_TO_PROCESS_NOW (0xC000)"
            " [breaking]\n"
        ),
        "",
    )


def test_a_member_that_names_another_code_is_a_changed_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = write_pages(
        tmp_path,
        page_text(
            FIND, status_table("C-FIND Statuses", ("0xA900", "Failure", "Identifier mismatch"))
        ),
        page_text(
            FIND, status_table("C-FIND Statuses", ("0xA901", "Failure", "Identifier mismatch"))
        ),
    )
    assert run_diff(capsys, old, new) == (
        1,
        (
            "new.rst\n"
            "  C-FIND\n"
            "    removed 0xA900 Failure: Identifier mismatch [breaking]\n"
            "    added 0xA901 Failure: Identifier mismatch\n"
            "  new.py\n"
            "    CFindStatus.IDENTIFIER_MISMATCH: value 0xA900 → 0xA901 [breaking]\n"
        ),
        "",
    )


def test_a_sop_class_generate_refuses_has_no_constant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pages are read leniently: a keyword that is no Python name is compared as the page has
    it, and the module, rendered without it, still reads as Python."""
    text = page_text(FIND, status_table("C-FIND Statuses", ("0x0000", "Success", "Success")))
    broken = text.replace(
        "| PatientRootQueryRetrieveInformationModelFind |", "| Patient Root Find" + " " * 28 + "|"
    )
    old, new = write_pages(tmp_path, text, broken)
    assert run_diff(capsys, old, new) == (
        1,
        (
            "new.rst\n"
            "  SOP classes\n"
            "    1.2.840.10008.5.1.4.1.2.1.1: keyword PatientRootQueryRetrieveInformationModelFind"
            " → Patient Root Find [breaking]\n"
            "  new.py\n"
            "    removed PatientRootQueryRetrieveInformationModelFind (1.2.840.10008.5.1.4.1.2.1.1)"
            " [breaking]\n"
        ),
        "",
    )
