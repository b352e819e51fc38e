"""The errors a user can meet; the CLI turns each into one line and an exit status."""

from __future__ import annotations


class ServicegenError(Exception):
    """Base of every error servicegen reports to a user rather than as a traceback."""


class SpecError(ServicegenError):
    """A page that cannot be read into the model: always names the file and the offending line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class TemplateError(ServicegenError):
    """A template that fails to render, or renders code black cannot parse."""


class OutputError(ServicegenError):
    """An output directory that cannot be read or written as asked."""
