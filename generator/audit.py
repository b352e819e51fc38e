"""``servicegen audit``: the pages against the pynetdicom that is installed.

The pages document pynetdicom, and pynetdicom's code is what runs: its SOP class constants
(``pynetdicom.sop_class``), the status dicts its service classes answer with
(``pynetdicom.status``, chosen per service class and DIMSE service as its ``SCP`` methods choose
them), and the status codes its source actually sends. Where the two disagree one of them is
wrong, so every disagreement is a finding, grouped and counted by kind.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pynetdicom
import pynetdicom.status
from pynetdicom import sop_class
from pynetdicom.service_class import QueryRetrieveServiceClass, ServiceClass

from generator.findings import RULES, Finding, sort_findings
from generator.keywords import pynetdicom_keywords
from generator.lint import plural, read_leniently
from generator.model import Dimse, Page, Scope, Status, StatusTable, code_text

StatusDict = Mapping[int, tuple[str, str]]

_QR_STATUSES = {
    Dimse.C_FIND: "QR_FIND_SERVICE_CLASS_STATUS",
    Dimse.C_GET: "QR_GET_SERVICE_CLASS_STATUS",
    Dimse.C_MOVE: "QR_MOVE_SERVICE_CLASS_STATUS",
}
"""What a Query/Retrieve service class that keeps the inherited ``SCP`` answers with, by service;
every other service class answers with its ``statuses``."""


def audit(spec: Path) -> list[Finding]:
    """Every finding of every page at ``spec``, by page and line."""
    pages, findings = read_leniently(spec)
    for page in pages:
        findings.extend(_sop_classes(page))
        for dimse in page.dimse_services:
            findings.extend(_statuses(page, dimse))
    return sort_findings(findings)


def _sop_classes(page: Page) -> Iterator[Finding]:
    keywords = pynetdicom_keywords()
    uids = {keyword: uid for uid, keyword in keywords.items()}
    for sop in page.sop_classes:
        known = keywords.get(sop.uid)
        if known is None and sop.keyword in uids:
            yield Finding(
                page.source,
                sop.line,
                "SG401",
                f"UID {sop.uid} of {sop.keyword} differs from pynetdicom's {uids[sop.keyword]}",
            )
        elif known is None:
            yield Finding(
                page.source,
                sop.line,
                "SG403",
                f"pynetdicom knows neither UID {sop.uid} nor keyword {sop.keyword}",
            )
        elif known != sop.keyword and sop.keyword.isidentifier():
            yield Finding(
                page.source,
                sop.line,
                "SG402",
                f"keyword {sop.keyword} differs from pynetdicom's {known} for {sop.uid}",
            )


def _statuses(page: Page, dimse: Dimse) -> Iterator[Finding]:
    tables = [t for t in page.status_tables if t.dimse is dimse]
    if not tables:
        return
    answer = _pynetdicom_statuses(page, dimse)
    if answer is None:
        yield Finding(
            page.source,
            tables[0].line,
            "SG414",
            f"pynetdicom has no service class for the {dimse.value} SOP classes of this page",
        )
        return
    where, statuses = answer
    for table in tables:
        for status in table.statuses:
            if table.scope is Scope.IMPLEMENTATION:
                yield from _never_sent(page, table, status)
            else:
                yield from _compare(page, table, status, where, statuses)


def _pynetdicom_statuses(page: Page, dimse: Dimse) -> tuple[str, StatusDict] | None:
    """The status dict pynetdicom answers ``dimse`` with for the page's SOP classes, and where it
    lives; the first SOP class pynetdicom has a service class for decides."""
    for sop in page.sop_classes:
        service = sop_class.uid_to_service_class(sop.uid)
        if dimse not in sop.dimse or service is ServiceClass:
            continue
        if (
            issubclass(service, QueryRetrieveServiceClass)
            and dimse in _QR_STATUSES
            and service.SCP is QueryRetrieveServiceClass.SCP
        ):
            name = _QR_STATUSES[dimse]
            return f"pynetdicom.status.{name}", getattr(pynetdicom.status, name)
        names = [
            name
            for name in pynetdicom.status.__all__
            if getattr(pynetdicom.status, name) is service.statuses
        ]
        where = f"pynetdicom.status.{names[0]}" if names else f"{service.__name__}.statuses"
        return where, service.statuses
    return None


def _compare(
    page: Page, table: StatusTable, status: Status, where: str, statuses: StatusDict
) -> Iterator[Finding]:
    codes = range(status.first, status.last + 1)
    missing = [code for code in codes if code not in statuses]
    if missing:
        what = f": {len(missing)} of its {len(codes)} codes are" if status.is_range else " is"
        yield Finding(
            page.source,
            status.line,
            "SG412",
            f"{code_text(status)} ({table.dimse.value}){what} not in {where}",
        )
    others = sorted({statuses[c][0] for c in codes if c in statuses} - {status.category.value})
    if others:
        yield Finding(
            page.source,
            status.line,
            "SG411",
            f"{code_text(status)} ({table.dimse.value}) is {status.category.value} here but"
            f" {' and '.join(others)} in {where}",
        )


def _never_sent(page: Page, table: StatusTable, status: Status) -> Iterator[Finding]:
    if not any(code in _codes_in_source() for code in range(status.first, status.last + 1)):
        yield Finding(
            page.source,
            status.line,
            "SG413",
            f"{code_text(status)} ({table.dimse.value}) appears nowhere in pynetdicom's source,"
            " so it is never sent",
        )


_HEX_CODE = re.compile(r"\b0x([0-9A-Fa-f]{4})\b")


@functools.cache
def _codes_in_source() -> frozenset[int]:
    """Every four-digit hex literal in pynetdicom's own modules (its tests and benchmarks
    excluded): a status code that is not among them is not sent by pynetdicom."""
    root = Path(pynetdicom.__file__).parent
    codes: set[int] = set()
    for path in root.rglob("*.py"):
        if {"tests", "benchmarks"} & set(path.relative_to(root).parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        codes.update(int(match, 16) for match in _HEX_CODE.findall(text))
    return frozenset(codes)


def report(findings: list[Finding], output_format: str) -> str:
    """Findings grouped by kind, each group headed by its code, title and count; or JSON with
    the counts and the findings."""
    counts = Counter(f.code for f in findings)
    if output_format == "json":
        return (
            json.dumps(
                {
                    "counts": {code: counts[code] for code in sorted(counts)},
                    "findings": [f.to_json() for f in findings],
                },
                indent=2,
            )
            + "\n"
        )
    lines: list[str] = []
    for code in sorted(counts):
        lines.append(f"{code} {RULES[code].title}: {counts[code]}")
        lines.extend(f"  {finding}" for finding in findings if finding.code == code)
    if findings:
        lines.append(
            f"{plural(len(findings), 'finding', 'findings')} of"
            f" {plural(len(counts), 'kind', 'kinds')}"
        )
    return "".join(f"{line}\n" for line in lines)
