"""Findings of ``lint`` and ``audit``: their stable codes, severities and how they are shown.

Kept free of docutils, pydicom and pynetdicom, so the command line and ``settings`` can name
codes and severities without loading what reads and checks the pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How sure a finding is to be a fault: an error is one, a warning may be, info is a note.
    Declared from the least to the most severe, which ``rank`` and ``--fail-on`` rely on."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Rule:
    """A kind of finding: its stable code, its severity and what it means, in a few words."""

    code: str
    severity: Severity
    title: str


RULES = {
    rule.code: rule
    for rule in (
        Rule("SG001", Severity.ERROR, "page cannot be read"),
        Rule("SG002", Severity.ERROR, "row the generator refuses"),
        Rule("SG101", Severity.ERROR, "category contradicts PS3.7 Annex C"),
        Rule("SG102", Severity.WARNING, "code of no class in PS3.7 Annex C"),
        Rule("SG201", Severity.WARNING, "UID unknown to pydicom"),
        Rule("SG202", Severity.WARNING, "UID retired"),
        Rule("SG203", Severity.INFO, "keyword differs from pynetdicom's (or pydicom's)"),
        Rule("SG301", Severity.ERROR, "names another DIMSE service's callback or event"),
        Rule("SG302", Severity.WARNING, "handler sends a code the tables lack"),
        Rule("SG401", Severity.ERROR, "UID differs from pynetdicom's"),
        Rule("SG402", Severity.WARNING, "keyword differs from pynetdicom's"),
        Rule("SG403", Severity.WARNING, "SOP class unknown to pynetdicom"),
        Rule("SG411", Severity.ERROR, "category differs from pynetdicom's"),
        Rule("SG412", Severity.WARNING, "status not in pynetdicom's table"),
        Rule("SG413", Severity.WARNING, "documented but never sent"),
        Rule("SG414", Severity.WARNING, "no pynetdicom service class to compare with"),
    )
}
"""Every finding code of ``lint`` (SG0xx–SG3xx) and ``audit`` (SG0xx, SG4xx)."""

COMMAND_CODES = {
    "lint": tuple(code for code in RULES if code < "SG4"),
    "audit": tuple(code for code in RULES if code < "SG1" or code >= "SG4"),
}
"""The codes each command can report, which its ``--select`` and ``--ignore`` may name."""


@dataclass(frozen=True)
class Finding:
    """One finding at a line of a page."""

    path: str
    line: int
    code: str
    message: str

    @property
    def rule(self) -> Rule:
        return RULES[self.code]

    def __str__(self) -> str:
        """``path:line: severity: CODE message``, as compilers print a diagnostic, so editors
        and CI annotations read the severity."""
        return f"{self.path}:{self.line}: {self.rule.severity.value}: {self.code} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "code": self.code,
            "severity": self.rule.severity.value,
            "message": self.message,
        }


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.path, f.line, f.code))
