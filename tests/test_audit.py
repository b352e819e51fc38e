"""``servicegen audit``: exact findings against the installed pynetdicom (3.0.4) on the seed, on a
page of known disagreements and on pynetdicom's own pages."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from pydicom._uid_dict import UID_dictionary

from generator.audit import audit
from generator.cli import main
from generator.keywords import expected_keyword, pynetdicom_keywords
from generator.lint import lint

from .conftest import ROOT
from .test_pynetdicom_pages import INVENTORY, INVENTORY_PROBLEMS, mend

FAULTS = ROOT / "tests" / "data" / "audit" / "faults.rst"
QR_PAGES = (
    "color_palette_service_class",
    "defined_procedure_service_class",
    "hanging_protocol_service_class",
    "implant_template_service_class",
    "inventory_service_class",
    "protocol_approval_service_class",
    "query_retrieve_service_class",
)


def run_audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["audit", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_seed_documents_two_codes_pynetdicom_never_sends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    page = "spec/color_palette_service_class.rst"
    assert run_audit(capsys) == (
        1,
        (
            "SG413 documented but never sent: 2\n"
            f"  {page}:170: warning: SG413 0xC410 (C-GET) appears nowhere in pynetdicom's source, so it is"
            " never sent\n"
            f"  {page}:242: warning: SG413 0xC510 (C-MOVE) appears nowhere in pynetdicom's source, so it is"
            " never sent\n"
            "2 findings of 1 kind\n"
        ),
        "",
    )


def test_every_known_disagreement_is_found_once(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_audit(capsys, "--spec", str(FAULTS))
    assert status == 1
    assert out.splitlines() == [
        "SG401 UID differs from pynetdicom's: 1",
        (
            f"  {FAULTS}:15: error: SG401 UID 1.2.840.10008.5.1.4.1.2.2.9 of"
            " StudyRootQueryRetrieveInformationModelFind differs from pynetdicom's"
            " 1.2.840.10008.5.1.4.1.2.2.1"
        ),
        "SG402 keyword differs from pynetdicom's: 1",
        (
            f"  {FAULTS}:17: warning: SG402 keyword PatientStudyOnlyFind differs from pynetdicom's"
            " PatientStudyOnlyQueryRetrieveInformationModelFind for 1.2.840.10008.5.1.4.1.2.3.1"
        ),
        "SG403 SOP class unknown to pynetdicom: 2",
        (
            f"  {FAULTS}:19: warning: SG403 pynetdicom knows neither UID 1.2.826.0.1.3680043.9.9999.1 nor"
            " keyword ExamplePrivateFind"
        ),
        (
            f"  {FAULTS}:28: warning: SG403 pynetdicom knows neither UID 1.2.826.0.1.3680043.9.9999.2 nor"
            " keyword ExamplePrivateAction"
        ),
        "SG411 category differs from pynetdicom's: 1",
        (
            f"  {FAULTS}:39: error: SG411 0x0107 (C-FIND) is Failure here but Warning in"
            " pynetdicom.status.QR_FIND_SERVICE_CLASS_STATUS"
        ),
        "SG412 status not in pynetdicom's table: 2",
        (
            f"  {FAULTS}:50: warning: SG412 0xA123 (C-FIND) is not in"
            " pynetdicom.status.QR_FIND_SERVICE_CLASS_STATUS"
        ),
        (
            f"  {FAULTS}:52: warning: SG412 0xA700 to 0xA70F (C-FIND): 15 of its 16 codes are not in"
            " pynetdicom.status.QR_FIND_SERVICE_CLASS_STATUS"
        ),
        "SG413 documented but never sent: 1",
        (
            f"  {FAULTS}:67: warning: SG413 0xC399 (C-FIND) appears nowhere in pynetdicom's source, so it is"
            " never sent"
        ),
        "SG414 no pynetdicom service class to compare with: 1",
        (
            f"  {FAULTS}:73: warning: SG414 pynetdicom has no service class for the N-ACTION SOP classes of"
            " this page"
        ),
        "9 findings of 7 kinds",
    ]


def test_json_counts_by_kind(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_audit(capsys, "--format", "json", "--spec", str(FAULTS))
    data = json.loads(out)
    assert status == 1
    assert data["counts"] == {
        "SG401": 1,
        "SG402": 1,
        "SG403": 2,
        "SG411": 1,
        "SG412": 2,
        "SG413": 1,
        "SG414": 1,
    }
    assert data["findings"][4] == {
        "path": str(FAULTS),
        "line": 39,
        "code": "SG411",
        "severity": "error",
        "message": "0x0107 (C-FIND) is Failure here but Warning in"
        " pynetdicom.status.QR_FIND_SERVICE_CLASS_STATUS",
    }


def test_a_page_that_agrees_with_pynetdicom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "verification.rst").write_text(
        "Verification\n============\n\n"
        "+-------------------+--------------+\n"
        "| UID               | SOP Class    |\n"
        "+===================+==============+\n"
        "| 1.2.840.10008.1.1 | Verification |\n"
        "+-------------------+--------------+\n\n"
        "C-ECHO Statuses\n---------------\n\n"
        "+------------+----------+-------------+\n"
        "| Code (hex) | Category | Description |\n"
        "+============+==========+=============+\n"
        "| 0x0000     | Success  | Success     |\n"
        "+------------+----------+-------------+\n"
        "| 0x0122     | Failure  | Refused     |\n"
        "+------------+----------+-------------+\n",
        encoding="utf-8",
    )
    assert run_audit(capsys, "--spec", str(tmp_path)) == (0, "", "")


def test_a_missing_spec_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_audit(capsys, "--spec", str(tmp_path / "nowhere")) == (
        2,
        "",
        f"servicegen: {tmp_path / 'nowhere'}: no such page or directory\n",
    )


def test_pynetdicoms_own_pages_mended(pynetdicom_pages: Path, tmp_path: Path) -> None:
    spec = mend(pynetdicom_pages, tmp_path / "pages")
    findings = audit(spec)
    assert Counter(f.code for f in findings) == {"SG401": 2, "SG402": 3, "SG411": 70, "SG413": 14}
    storage = spec / "storage_service_class.rst"
    approval = spec / "protocol_approval_service_class.rst"
    assert [str(f) for f in findings if f.code in ("SG401", "SG402")] == [
        f"{approval}:{line}: warning: SG402 keyword ProtocolApprovalInformation{dimse} differs from"
        f" pynetdicom's ProtocolApprovalInformationModel{dimse} for 1.2.840.10008.5.1.4.1.1.200.{n}"
        for line, dimse, n in ((17, "Find", 4), (19, "Move", 5), (21, "Get", 6))
    ] + [
        (
            f"{storage}:24: error: SG401 UID 1.2.840.10008.5.1.4.1.1.1.1.1.1 of"
            " DigitalXRayImageStorageForProcessing differs from pynetdicom's"
            " 1.2.840.10008.5.1.4.1.1.1.1.1"
        ),
        (
            f"{storage}:32: error: SG401 UID 1.2.840.10008.5.1.1.4.1.1.3.1 of"
            " DigitalIntraOralXRayImageStorageForProcessing differs from pynetdicom's"
            " 1.2.840.10008.5.1.4.1.1.1.3.1"
        ),
    ]
    assert sorted(
        (Path(f.path).stem, f.message.split()[0]) for f in findings if f.code == "SG413"
    ) == [(page, code) for page in QR_PAGES for code in ("0xC410", "0xC510")]
    assert Counter(Path(f.path).stem for f in findings if f.code == "SG411") == {
        "instance_availability": 2,
        "media_creation": 15,
        "modality_performed_procedure_step": 5,
        "print_management": 16,
        "rt_machine": 16,
        "ups": 16,
    }


def test_unmended_rows_are_reported_and_audit_carries_on(pynetdicom_pages: Path) -> None:
    findings = audit(pynetdicom_pages)
    refused = [f for f in findings if f.code == "SG002"]
    assert [(Path(f.path).name, f.line, f.message) for f in refused] == [
        (INVENTORY, line, message) for line, message in INVENTORY_PROBLEMS
    ]
    assert Counter(f.code for f in findings) == {
        "SG002": 3,
        "SG401": 2,
        "SG402": 3,
        "SG411": 70,
        "SG413": 14,
    }


ADVICE = re.compile(r"(?:pynetdicom|pydicom)'s (?:keyword for its UID is )?(\w+)")
"""The keyword lint advises, in an SG203 or SG002 message."""


def sop_class_page(rows: list[tuple[str, str]]) -> str:
    """A page of one SOP class table of ``(uid, keyword)`` rows, the first row at line 7 and
    each next one two lines further."""
    uid_width = max(len(uid) for uid, _ in [*rows, ("UID", "")])
    name_width = max(len(name) for _, name in [*rows, ("", "SOP Class")])
    rule = f"+-{'-' * uid_width}-+-{'-' * name_width}-+\n"
    lines = [f"| {'UID'.ljust(uid_width)} | {'SOP Class'.ljust(name_width)} |\n"]
    lines.append(rule.replace("-", "="))
    for uid, name in rows:
        lines += [f"| {uid.ljust(uid_width)} | {name.ljust(name_width)} |\n", rule]
    return "Keywords\n========\n\n" + rule + "".join(lines)


def test_following_lints_keyword_advice_never_makes_an_audit_finding(tmp_path: Path) -> None:
    """Every SOP class either library names, under a wrong keyword (SG203) and under one that
    is no identifier (SG002): lint advises a keyword for each, and the pages that follow all of
    that advice have no lint finding about keywords and no audit SG402."""
    uids = sorted(
        uid
        for uid in {*pynetdicom_keywords(), *UID_dictionary}
        if (uid in pynetdicom_keywords() or UID_dictionary[uid][1] == "SOP Class")
        and expected_keyword(uid) is not None
    )
    wrong = {
        "wrong.rst": [(uid, f"Wrong{n}") for n, uid in enumerate(uids)],
        "not_names.rst": [(uid, f"Not a name {n}") for n, uid in enumerate(uids)],
    }
    spec = tmp_path / "spec"
    spec.mkdir()
    for name, rows in wrong.items():
        (spec / name).write_text(sop_class_page(rows), encoding="utf-8")
    assert Counter(keyword.source for keyword in map(expected_keyword, uids) if keyword) == {
        "pynetdicom": 252,
        "pydicom": 56,
    }
    advice: dict[tuple[str, int], str] = {}
    findings = lint(spec)
    by_uid = {f.message.split()[-1]: f.message for f in findings if f.code == "SG203"}
    assert by_uid["1.2.840.10008.5.1.4.39.2"] == (
        f"keyword Wrong{uids.index('1.2.840.10008.5.1.4.39.2')} differs from pynetdicom's"
        " ColorPaletteInformationModelFind for 1.2.840.10008.5.1.4.39.2"
    )
    assert by_uid["1.2.840.10008.1.9"] == (
        f"keyword Wrong{uids.index('1.2.840.10008.1.9')} differs from pydicom's"
        " BasicStudyContentNotification for 1.2.840.10008.1.9"
    )
    for finding in findings:
        if finding.code in ("SG002", "SG203"):
            match = ADVICE.search(finding.message)
            assert match and (Path(finding.path).name, finding.line) not in advice, finding
            advice[Path(finding.path).name, finding.line] = match[1]
    assert len(advice) == 2 * len(uids) == 616
    for name, rows in wrong.items():
        mended = [(uid, advice[name, 7 + 2 * n]) for n, (uid, _) in enumerate(rows)]
        (spec / name).write_text(sop_class_page(mended), encoding="utf-8")
    assert not [f for f in lint(spec) if f.code in ("SG002", "SG203")]
    assert Counter(f.code for f in audit(spec)) == {"SG403": 2 * 56}
