"""The errors a user can meet; the CLI turns each into one line per problem and an exit status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ServicegenError(Exception):
    """Base of every error servicegen reports to a user rather than as a traceback."""

    def lines(self) -> list[str]:
        """What the CLI prints, one line each."""
        return [str(self)]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a page, at a line: a page may have several, reported together."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class SpecError(ServicegenError):
    """A page that cannot be read into the model: names the file and line of every problem found,
    so a user mends them all in one pass. ``path``, ``line`` and ``message`` are the first's."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message
        self.problems: tuple[Problem, ...] = (Problem(path, line, message),)

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> SpecError:
        """One error carrying ``problems`` (at least one), in the order given."""
        first = problems[0]
        error = cls(first.path, first.line, first.message)
        error.problems = tuple(problems)
        error.args = ("\n".join(map(str, problems)),)
        return error

    def lines(self) -> list[str]:
        return [str(problem) for problem in self.problems]


class TemplateError(ServicegenError):
    """A template that fails to render, or renders code black cannot parse."""


class OutputError(ServicegenError):
    """An output directory that cannot be read or written as asked."""
