"""How the CLI talks to a person: ``--quiet`` and ``--verbose``, colour only on a terminal, and a
status line while a long run reads and renders pages.

Output meant for programs (JSON, lint findings, ``check``'s drift lines) is never dropped, and
is plain text whenever it is not going to a terminal, so pipes, logs and CI see the same bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

QUIET, NORMAL, VERBOSE = -1, 0, 1
MANY_PAGES = 10
"""A run over more pages than this shows a status line (on a terminal)."""
_STYLES = {"error": "1;31", "problem": "33"}


def colour_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only for a terminal, and not when the user turned it off: ``NO_COLOR`` set to
    anything but the empty string (https://no-color.org) or ``TERM=dumb``."""
    return stream.isatty() and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


class Console:
    """The CLI's stdout and stderr at one verbosity (``QUIET``, ``NORMAL`` or ``VERBOSE``)."""

    def __init__(
        self,
        verbosity: int = NORMAL,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.verbosity = verbosity
        self.out = sys.stdout if out is None else out
        self.err = sys.stderr if err is None else err
        self._environ = os.environ if environ is None else environ
        self._status = 0
        """The width of the status line on screen, 0 when there is none."""

    def _paint(self, text: str, style: str) -> str:
        """``text`` in colour when it goes to a terminal (stderr: every coloured line does)."""
        return (
            f"\033[{_STYLES[style]}m{text}\033[0m"
            if colour_wanted(self.err, self._environ)
            else text
        )

    def _say(self, stream: TextIO, text: str) -> None:
        self.clear_status()
        print(text, file=stream)

    def summary(self, text: str) -> None:
        """The one-line outcome of a run, on stdout; ``--quiet`` drops it."""
        if self.verbosity > QUIET:
            self._say(self.out, text)

    def note(self, text: str) -> None:
        """Something worth knowing that is not a failure (a skipped page), on stderr; ``--quiet``
        drops it."""
        if self.verbosity > QUIET:
            self._say(self.err, text)

    def detail(self, text: str) -> None:
        """Only with ``--verbose``: what a run did, file by file, on stderr."""
        if self.verbosity >= VERBOSE:
            self._say(self.err, text)

    def problem(self, text: str) -> None:
        """A finding that is the run's result (a stale file), on stderr, whatever the verbosity."""
        self._say(self.err, self._paint(text, "problem"))

    def error(self, text: str) -> None:
        """Why the run failed, on stderr as ``servicegen: text``, whatever the verbosity."""
        self._say(self.err, f"{self._paint('servicegen:', 'error')} {text}")

    def status(self, text: str, pages: int) -> None:
        """A line that the next output replaces, for runs over ``MANY_PAGES`` pages, on a
        terminal only and not with ``--quiet``: never in a pipe or a log."""
        if pages <= MANY_PAGES or self.verbosity <= QUIET or not self.err.isatty():
            return
        self.clear_status()
        self.err.write(text)
        self.err.flush()
        self._status = len(text)

    def clear_status(self) -> None:
        """Blank the status line with spaces, which works even where ``TERM=dumb``."""
        if self._status:
            self.err.write("\r" + " " * self._status + "\r")
            self.err.flush()
            self._status = 0
