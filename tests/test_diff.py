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
ColorPaletteQueryRetrieveInformationModelFind
    added InventoryFind (1.2.840.10008.5.1.4.1.1.201.2)
    ColorPaletteInformationModelMove: UID 1.2.840.10008.5.1.4.39.3 → 1.2.840.10008.5.1.4.39.33
    removed ColorPaletteInformationModelGet (1.2.840.10008.5.1.4.39.4)
  C-FIND
    0xA700: description “Out of resources” → “Refused: out of resources”
    0xB000: category Warning → Failure
    split 0xC000 to 0xCFFF (Failure) into 0xC000 to 0xC0FF (Failure), 0xC100 to 0xCFFF (Failure)
    added 0xFF01 Pending: Matches are continuing; optional keys not supported
  C-MOVE
    removed 0xA702 Failure: Out of resources; unable to perform sub-operations
    merged 0xC000 to 0xC0FF (Failure), 0xC100 to 0xCFFF (Failure) into 0xC000 to 0xCFFF (Failure)
  C-GET
    regrouped 0xA700 to 0xA7FF (Failure), 0xA800 to 0xA8FF (Failure) as 0xA700 to 0xA77F \
(Failure), 0xA780 to 0xA8FF (Failure)
    range 0xC000 to 0xCFFF (Failure) became 0xC000 to 0xC7FF (Failure)
"""

FOLDER_TEXT = f"""\
echo.rst
  page removed: 1 SOP class, 1 status
palette.rst
{PALETTE_TEXT}\
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
        f"renamed.rst\n{PALETTE_TEXT}",
        "",
    )


def test_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diff(capsys, "--format", "markdown", str(OLD), str(NEW))
    assert status == 1
    assert out.splitlines()[:12] == [
        "## echo.rst",
        "",
        "- page removed: 1 SOP class, 1 status",
        "",
        "## palette.rst",
        "",
        "### SOP classes",
        "",
        (
            "- `1.2.840.10008.5.1.4.39.2`: keyword `ColorPaletteInformationModelFind` →"
            " `ColorPaletteQueryRetrieveInformationModelFind`"
        ),
        "- added `InventoryFind` (1.2.840.10008.5.1.4.1.1.201.2)",
        (
            "- `ColorPaletteInformationModelMove`: UID `1.2.840.10008.5.1.4.39.3` →"
            " `1.2.840.10008.5.1.4.39.33`"
        ),
        "- removed `ColorPaletteInformationModelGet` (1.2.840.10008.5.1.4.39.4)",
    ]
    assert out.count("\n### ") == 4 and out.count("\n## ") == 2 and "\n\n\n" not in out
    assert out.endswith("\n## storage.rst\n\n- page added: 1 SOP class, 2 statuses\n")


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diff(capsys, "--format", "json", str(OLD), str(NEW))
    changes = json.loads(out)
    assert status == 1 and len(changes) == 14
    assert [c["kind"] for c in changes if c["section"] == "C-FIND"] == [
        "description changed",
        "category changed",
        "split",
        "added",
    ]
    assert changes[6] == {
        "page": "palette.rst",
        "section": "C-FIND",
        "kind": "category changed",
        "subject": "0xB000",
        "old": "Warning",
        "new": "Failure",
    }


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
    assert run_diff(capsys, "HEAD~1:spec/palette.rst", "spec/palette.rst") == (
        1,
        f"palette.rst\n{PALETTE_TEXT}",
        "",
    )
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
        f"palette.rst\n{PALETTE_TEXT}",
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


def page_text(section: str, statuses: str) -> str:
    return (
        "Query\n=====\n\n"
        f"{section}\n{'-' * len(section)}\n\n"
        "+-----------------------------+----------------------------------------------+\n"
        "| UID                         | SOP Class                                    |\n"
        "+=============================+==============================================+\n"
        "| 1.2.840.10008.5.1.4.1.2.1.1 | PatientRootQueryRetrieveInformationModelFind |\n"
        "+-----------------------------+----------------------------------------------+\n\n"
        "C-FIND Statuses\n---------------\n\n"
        "+------------+----------+------------------------+\n"
        "| Code (hex) | Category | Description            |\n"
        "+============+==========+========================+\n"
        f"{statuses}"
    )


def status_row(code: str, category: str, description: str) -> str:
    return (
        f"| {code:<10} | {category:<8} | {description:<22} |\n"
        "+------------+----------+------------------------+\n"
    )


def test_services_of_a_sop_class_and_changes_in_code_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.rst", tmp_path / "new.rst"
    old.write_text(
        page_text(
            "Query (Find) SOP Classes",
            status_row("0xA900", "Failure", "Identifier mismatch")
            + status_row("0xFF00", "Pending", "Matches are continuing"),
        ),
        encoding="utf-8",
    )
    new.write_text(
        page_text(
            "Query (Get) SOP Classes",
            status_row("0xA123", "Failure", "A new failure")
            + status_row("0xFF00", "Warning", "Matches are continuing"),
        ),
        encoding="utf-8",
    )
    assert run_diff(capsys, str(old), str(new)) == (
        1,
        (
            "new.rst\n"
            "  SOP classes\n"
            "    PatientRootQueryRetrieveInformationModelFind: DIMSE services C-FIND → C-GET\n"
            "  C-FIND\n"
            "    added 0xA123 Failure: A new failure\n"
            "    removed 0xA900 Failure: Identifier mismatch\n"
            "    0xFF00: category Pending → Warning\n"
        ),
        "",
    )
