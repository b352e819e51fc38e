"""How the CLI talks to a person: ``--quiet`` and ``--verbose``, colour only on a terminal, and a
status line while a long run reads and renders pages.

Output meant for programs (JSON, lint findings, ``check``'s drift lines) is never dropped, and
is plain text whenever it is not going to a terminal, so pipes, logs and CI see the same bytes.
Everything printed passes through ``shown``: text from pages, file names and git can hold escape
sequences that would retitle or recolour a terminal, so control characters are printed as their
escapes, and one problem stays on one line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TextIO

QUIET, NORMAL, VERBOSE = -1, 0, 1
MANY_PAGES = 10
"""A run over more pages than this shows a status line (on a terminal)."""
_STYLES = {"error": "1;31", "problem": "33"}


def shown(text: str, *, in_json: bool = False) -> str:
    """``text`` with every character a terminal would act on or that is invisible (controls,
    line separators, bidirectional overrides, ...) written as its escape: Python's (``\\x1b``),
    or JSON's (``\\u001b``) inside JSON text, which stays valid JSON. A line break is escaped
    too, except between the lines of JSON, where it is layout."""
    if text.isprintable():
        return text
    if in_json:
        return "".join(c if c.isprintable() or c == "\n" else json.dumps(c)[1:-1] for c in text)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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

    def report(self, text: str, *, in_json: bool = False) -> None:
        """A command's result (findings, a changelog, JSON) on stdout, line by line, whatever
        the verbosity; each line ``shown`` safe for a terminal."""
        self.clear_status()
        if in_json:
            self.out.write(shown(text, in_json=True))
        else:
            self.out.write("\n".join(shown(line) for line in text.split("\n")))
        self.out.flush()

    def summary(self, text: str) -> None:
        """The one-line outcome of a run, on stdout; ``--quiet`` drops it."""
        if self.verbosity > QUIET:
            self._say(self.out, shown(text))

    def note(self, text: str) -> None:
        """Something worth knowing that is not a failure (a skipped page), on stderr; ``--quiet``
        drops it."""
        if self.verbosity > QUIET:
            self._say(self.err, shown(text))

    def detail(self, text: str) -> None:
        """Only with ``--verbose``: what a run did, file by file, on stderr."""
        if self.verbosity >= VERBOSE:
            self._say(self.err, shown(text))

    def problem(self, text: str) -> None:
        """A finding that is the run's result (a stale file), on stderr, whatever the verbosity."""
        self._say(self.err, self._paint(shown(text), "problem"))

    def error(self, text: str) -> None:
        """Why the run failed, on stderr as ``servicegen: text``, whatever the verbosity."""
        self._say(self.err, f"{self._paint('servicegen:', 'error')} {shown(text)}")

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
