"""``servicegen lint``: exact findings on the seed, on a page of known faults and on pynetdicom's."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from generator.annex_c import annex_c_class
from generator.cli import main
from generator.lint import lint
from generator.model import Category

from .conftest import ROOT, SEED, servicegen

FAULTS = ROOT / "tests" / "data" / "lint" / "faults.rst"

SLIP = "{seed}:245: error: SG301 0xC511 in a C-MOVE table names on_c_get, C-GET's callback"
"""What lint says of the seed page with its defaults: the slip that pyproject.toml acknowledges."""


def run_lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = main(["lint", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_the_repository_lints_clean_having_acknowledged_the_seeds_slip(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert run_lint(capsys) == (0, [], "")
    assert run_lint(capsys, "--spec", str(SEED), "--fail-on", "info") == (0, [], "")
    assert run_lint(capsys, "--spec", "spec", "--select", "SG301") == (0, [], "")


def test_the_seed_copied_away_still_names_on_c_get_in_its_c_move_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / SEED.name
    shutil.copy(SEED, copy)
    assert run_lint(capsys, "--spec", str(copy)) == (1, [SLIP.format(seed=copy)], "")
    assert run_lint(capsys, "--spec", str(tmp_path)) == (1, [SLIP.format(seed=copy)], "")


def test_the_real_command_lints_the_repository_clean() -> None:
    result = servicegen("lint")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


FAULT_FINDINGS = [
    (
        14,
        (
            "info: SG203 keyword ModalityWorklistFind differs from pynetdicom's"
            " ModalityWorklistInformationFind for 1.2.840.10008.5.1.4.31"
        ),
    ),
    (
        16,
        (
            "warning: SG202 pydicom lists 1.2.840.10008.5.1.4.1.2.3.1 (Patient/Study Only"
            " Query/Retrieve Information Model - FIND) as retired"
        ),
    ),
    (18, "warning: SG201 pydicom does not know UID 1.2.826.0.1.3680043.9.9999.1"),
    (
        20,
        (
            "error: SG002 SOP class keyword 'Color Palette Find' is not a Python identifier"
            " (pynetdicom's keyword for its UID is ColorPaletteInformationModelFind)"
        ),
    ),
    (
        35,
        (
            "warning: SG302 the generated C-FIND handler answers a backend error with 0x0110,"
            " which the page's C-FIND tables lack; add a catch-all failure row"
            " (0xC000 to 0xCFFF, or 0x0110)"
        ),
    ),
    (40, "error: SG101 0x0107 is Failure here but Warning in PS3.7 Annex C"),
    (42, "warning: SG102 0x0300 is a code of no class in PS3.7 Annex C"),
    (
        44,
        (
            "error: SG101 0xAF00 to 0xB0FF is Failure here but includes Warning codes in PS3.7"
            " Annex C"
        ),
    ),
    (46, "error: SG301 0xC311 in a C-FIND table names EVT_C_MOVE, C-MOVE's event"),
    (
        49,
        (
            "error: SG002 unknown category 'Failed' (expected one of Success, Warning, Failure,"
            " Cancel, Pending)"
        ),
    ),
    (
        57,
        (
            "warning: SG302 the generated C-GET handler answers a backend error with 0x0110,"
            " which the page's C-GET tables lack; add a catch-all failure row"
            " (0xC000 to 0xCFFF, or 0x0110)"
        ),
    ),
    (66, "error: SG301 0xC411 in a C-GET table names on_c_find, C-FIND's callback"),
]
"""Every finding on the faults page, at its line, as ``lint`` prints it after the path."""


def faults(*codes: str) -> list[str]:
    """The faults page's findings of ``codes`` as printed, in order."""
    return [f"{FAULTS}:{line}: {text}" for line, text in FAULT_FINDINGS if text.split()[1] in codes]


def test_every_known_fault_is_found_once_with_its_severity(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_lint(capsys, "--spec", str(FAULTS)) == (
        1,
        [f"{FAULTS}:{line}: {text}" for line, text in FAULT_FINDINGS],
        "",
    )


def test_json_carries_severity(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, _ = run_lint(capsys, "--format", "json", "--spec", str(FAULTS))
    assert status == 1
    found = json.loads("\n".join(lines))
    assert found[2] == {
        "path": str(FAULTS),
        "line": 18,
        "code": "SG201",
        "severity": "warning",
        "message": "pydicom does not know UID 1.2.826.0.1.3680043.9.9999.1",
    }
    assert [(f["code"], f["severity"]) for f in found][4:7] == [
        ("SG302", "warning"),
        ("SG101", "error"),
        ("SG102", "warning"),
    ]
    assert found[0]["severity"] == "info"


CLEAN = """Verification Service Class
==========================

+-------------------+--------------+
| UID               | SOP Class    |
+===================+==============+
| 1.2.840.10008.1.1 | Verification |
+-------------------+--------------+

C-ECHO Statuses
---------------

+------------+----------+--------------------+
| Code (hex) | Category | Description        |
+============+==========+====================+
| 0x0000     | Success  | Success            |
+------------+----------+--------------------+
| 0x0122     | Failure  | Refused: SOP Class |
|            |          | not supported      |
+------------+----------+--------------------+
"""


def test_a_clean_page_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "verification.rst").write_text(CLEAN, encoding="utf-8")
    assert run_lint(capsys, "--spec", str(tmp_path)) == (0, [], "")
    assert run_lint(capsys, "--format", "json", "--spec", str(tmp_path)) == (0, ["[]"], "")


def test_a_page_that_cannot_be_read_is_reported_and_lint_carries_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a_broken.rst").write_bytes(b"Title\n=====\n\nb\xe9d\n")
    (tmp_path / "b_clean.rst").write_text(CLEAN, encoding="utf-8")
    shutil.copy(SEED, tmp_path / "c_seed.rst")
    assert run_lint(capsys, "--spec", str(tmp_path)) == (
        1,
        [
            f"{tmp_path / 'a_broken.rst'}:4: error: SG001 byte 0xE9 is not UTF-8",
            SLIP.format(seed=tmp_path / "c_seed.rst"),
        ],
        "",
    )


def test_a_missing_target_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lint(capsys, "--spec", str(tmp_path / "nowhere")) == (
        2,
        [],
        f"servicegen: {tmp_path / 'nowhere'}: no such page or directory\n",
    )


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x0000, Category.SUCCESS),
        (0x0001, Category.WARNING),
        (0x0002, None),
        (0x0105, Category.FAILURE),
        (0x0107, Category.WARNING),
        (0x0116, Category.WARNING),
        (0x0119, Category.FAILURE),
        (0x011A, None),
        (0x011F, None),
        (0x0120, Category.FAILURE),
        (0x0125, None),
        (0x0213, Category.FAILURE),
        (0x0214, None),
        (0x9FFF, None),
        (0xA000, Category.FAILURE),
        (0xAFFF, Category.FAILURE),
        (0xB000, Category.WARNING),
        (0xBFFF, Category.WARNING),
        (0xCFFF, Category.FAILURE),
        (0xD000, None),
        (0xFE00, Category.CANCEL),
        (0xFF01, Category.PENDING),
        (0xFF02, None),
    ],
)
def test_annex_c_classes_at_their_edges(code: int, category: Category | None) -> None:
    assert annex_c_class(code) is category


def test_pynetdicoms_own_pages(pynetdicom_pages: Path) -> None:
    findings = lint(pynetdicom_pages)
    assert Counter(f.code for f in findings) == {
        "SG002": 3,
        "SG101": 70,
        "SG201": 2,
        "SG202": 3,
        "SG203": 3,
        "SG302": 7,
    }
    storage = pynetdicom_pages / "storage_service_class.rst"
    assert [str(f) for f in findings if f.code == "SG201"] == [
        f"{storage}:24: warning: SG201 pydicom does not know UID 1.2.840.10008.5.1.4.1.1.1.1.1.1",
        f"{storage}:32: warning: SG201 pydicom does not know UID 1.2.840.10008.5.1.1.4.1.1.3.1",
    ]
    availability = pynetdicom_pages / "instance_availability.rst"
    assert [str(f) for f in findings if f.path == str(availability)] == [
        f"{availability}:48: error: SG101 0x0107 is Failure here but Warning in PS3.7 Annex C",
        f"{availability}:54: error: SG101 0x0116 is Failure here but Warning in PS3.7 Annex C",
    ]
    approval = pynetdicom_pages / "protocol_approval_service_class.rst"
    assert [str(f) for f in findings if f.code == "SG203"] == [
        f"{approval}:{line}: info: SG203 keyword ProtocolApprovalInformation{dimse} differs from"
        f" pynetdicom's ProtocolApprovalInformationModel{dimse} for 1.2.840.10008.5.1.4.1.1.200.{n}"
        for line, dimse, n in ((17, "Find", 4), (19, "Move", 5), (21, "Get", 6))
    ]
    assert {f.line for f in findings if f.code == "SG202"} == {20, 26, 34}


def test_generate_refuses_exactly_the_rows_lint_reports_as_sg002(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    for name in ("a.rst", "b.rst"):
        shutil.copy(FAULTS, spec / name)
    refused = [f for f in lint(spec) if f.code == "SG002"]
    assert len(refused) == 4
    assert main(["generate", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"servicegen: {f.path}:{f.line}: {f.message}" for f in refused
    ]
    assert not (tmp_path / "out").exists()
