"""``servicegen lint``: what in a page is probably wrong even though the generator accepts it.

The checks hold each page to outside references that change on their own schedule (PS3.7 Annex C,
pydicom's UID registry, pynetdicom's SOP class keywords) and to itself (a table of one DIMSE
service naming another's handler), so a page can be read, generated and still be wrong. Findings
have stable codes (``findings.RULES``), documented in the README; ``audit`` reuses
``read_leniently``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from pydicom._uid_dict import UID_dictionary

from generator.annex_c import annex_c_classes
from generator.errors import SpecError
from generator.findings import Finding, sort_findings
from generator.keywords import expected_keyword
from generator.model import Dimse, Page, Status, StatusTable, code_text
from generator.pages import page_paths
from generator.parser import examine_page
from generator.views import service_view


def read_leniently(target: Path) -> tuple[list[Page], list[Finding]]:
    """The pages at ``target`` with every row the model can hold, and an SG001 finding for each
    page that cannot be read at all and an SG002 for each row the generator would refuse."""
    pages: list[Page] = []
    findings: list[Finding] = []
    for path in page_paths(target):
        try:
            reading = examine_page(path)
        except SpecError as exc:
            findings.extend(Finding(p.path, p.line, "SG001", p.message) for p in exc.problems)
            continue
        pages.append(reading.page)
        findings.extend(Finding(p.path, p.line, "SG002", p.message) for p in reading.problems)
    return pages, findings


def lint(target: Path) -> list[Finding]:
    """Every finding of every page at ``target``, by page and line."""
    pages, findings = read_leniently(target)
    for page in pages:
        findings.extend(lint_page(page))
    return sort_findings(findings)


def lint_page(page: Page) -> Iterator[Finding]:
    for table in page.status_tables:
        for status in table.statuses:
            yield from _annex_c(page, status)
            yield from _other_service(page, table, status)
    yield from _unlisted_roles(page)
    yield from _registry(page)


def _annex_c(page: Page, status: Status) -> Iterator[Finding]:
    classes = annex_c_classes(status.first, status.last)
    if None in classes:
        what = "includes codes" if status.is_range else "is a code"
        yield Finding(
            page.source,
            status.line,
            "SG102",
            f"{code_text(status)} {what} of no class in PS3.7 Annex C",
        )
    others = " and ".join(
        sorted(c.value for c in classes if c is not None and c is not status.category)
    )
    if others:
        says = f"includes {others} codes" if status.is_range else others
        yield Finding(
            page.source,
            status.line,
            "SG101",
            f"{code_text(status)} is {status.category.value} here but {says} in PS3.7 Annex C",
        )


_HANDLER_NAME = re.compile(r"\b(?:on_([cn]_[a-z_]+)|EVT_([CN]_[A-Z_]+))\b")
_SUB_OPERATIONS = {Dimse.C_GET: Dimse.C_STORE}
"""A C-GET's matches come back as C-STORE sub-operations on the same association, so its rows
may rightly name C-STORE's handler."""


def _other_service(page: Page, table: StatusTable, status: Status) -> Iterator[Finding]:
    for match in _HANDLER_NAME.finditer(status.description):
        named = Dimse.__members__.get((match.group(1) or match.group(2)).upper())
        if named is None or named in (table.dimse, _SUB_OPERATIONS.get(table.dimse)):
            continue
        yield Finding(
            page.source,
            status.line,
            "SG301",
            f"0x{status.first:04X} in a {table.dimse.value} table names {match.group(0)},"
            f" {named.value}'s {'event' if match.group(2) else 'callback'}",
        )


_UNLISTED = {
    "success": ("success", "a 0x0000 Success row"),
    "failure": ("a backend error", "a catch-all failure row (0xC000 to 0xCFFF, or 0x0110)"),
}


def _unlisted_roles(page: Page) -> Iterator[Finding]:
    """A generated handler answers success with 0x0000 and a backend error with the page's
    catch-all failure, else PS3.7's general 0x0110: a code sent but documented nowhere on the
    page when its tables lack it."""
    for dimse in dict.fromkeys(table.dimse for table in page.status_tables):
        line = next(table.line for table in page.status_tables if table.dimse is dimse)
        for role in service_view(page, dimse).roles.values():
            if role.status is None:
                outcome, row = _UNLISTED[role.name]
                yield Finding(
                    page.source,
                    line,
                    "SG302",
                    f"the generated {dimse.value} handler answers {outcome} with "
                    f"0x{role.code:04X}, which the page's {dimse.value} tables lack; add {row}",
                )


def _registry(page: Page) -> Iterator[Finding]:
    for sop in page.sop_classes:
        entry = UID_dictionary.get(sop.uid)
        if entry is None:
            yield Finding(page.source, sop.line, "SG201", f"pydicom does not know UID {sop.uid}")
        elif entry[3]:
            yield Finding(
                page.source, sop.line, "SG202", f"pydicom lists {sop.uid} ({entry[0]}) as retired"
            )
        known = expected_keyword(sop.uid)
        if known and sop.keyword != known.name and sop.keyword.isidentifier():
            yield Finding(
                page.source,
                sop.line,
                "SG203",
                f"keyword {sop.keyword} differs from {known.source}'s {known.name} for {sop.uid}",
            )


def plural(number: int, one: str, many: str) -> str:
    """``1 status``, ``2 statuses``."""
    return f"{number} {one if number == 1 else many}"


def report(findings: list[Finding], output_format: str) -> str:
    """Findings as text (a line each) or JSON (a list of objects)."""
    if output_format == "json":
        return json.dumps([f.to_json() for f in findings], indent=2) + "\n"
    return "".join(f"{finding}\n" for finding in findings)
