"""Writing reStructuredText: escaping shared by the parser and the renderer, and grid tables.

The parser keeps each description's RST source in a normalised form built with this escaping, and
the renderer writes generated RST with it, so any text a page holds reads back as the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docutils.nodes import make_id
from docutils.utils import column_width

_INLINE = re.compile(r"([\\*`|_:\[\]<>])")
_ENUMERATOR = re.compile(r"^(\(?(?:\d+|[A-Za-z]|[ivxlcdmIVXLCDM]+|#))([.)])(?=\s|$)")


def escape_inline(text: str, *, at_start: bool = True) -> str:
    """Escape ``text`` so that RST reads it back verbatim as inline text.

    Markup characters are backslash-escaped; at the start of a block, a leading character that is
    not a letter or digit is escaped too, so text such as ``- x``, ``#. x`` or ``.. x`` is never
    read as a list, an enumeration or a comment.
    """
    escaped = _INLINE.sub(r"\\\1", text)
    if at_start and escaped:
        escaped = _ENUMERATOR.sub(r"\1\\\2", escaped)
        if not escaped[0].isalnum() and escaped[0] != "\\":
            escaped = "\\" + escaped
    return escaped


_WEB_URL = re.compile(r"(?:https?://[^/?#\s]+|mailto:\S)\S*", re.IGNORECASE)
_URL_BREAKERS = frozenset("<>`\\")
"""Characters that would end or change an embedded URI in RST (``<``, ``>``, a backtick, a
backslash escape)."""


def is_web_url(url: str) -> bool:
    """Whether ``url`` is one line of an http(s) or mailto URL that RST can embed as it is: no
    whitespace, no control or other invisible character, nothing that ends ``<...>`` early."""
    return (
        _WEB_URL.fullmatch(url) is not None
        and url.isprintable()
        and not _URL_BREAKERS.intersection(url)
    )


def embedded_uri(url: str) -> str:
    """``url`` for ``<...>`` in RST: a final ``_`` escaped, or RST would read a reference name."""
    return url[:-1] + "\\_" if url.endswith("_") else url


def anchor_id(text: str) -> str:
    """The id docutils and Sphinx give an inline target ``_`text```: ``CFindStatus.SUCCESS`` is
    ``cfindstatus-success`` (lower case, runs of anything but ASCII letters and digits one ``-``,
    none at either end, nor digits at the start; empty for text with no ASCII letter)."""
    return make_id(text)


def text_width(text: str) -> int:
    """``text``'s width on screen; ASCII, nearly every cell, needs no per-character lookup."""
    return len(text) if text.isascii() else column_width(text)


def grid_table(rows: Sequence[Sequence[str]], indent: int = 0) -> str:
    """An RST grid table of ``rows`` (cells already RST), the first row its header.

    Grid tables rather than ``list-table``: docutils reads them in about half the time, which is
    most of the cost of writing the HTML docs. Widths count wide characters twice, as docutils
    does when it reads the table back.
    """
    widths = [max(text_width(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    pad = " " * indent

    def border(char: str) -> str:
        return pad + "+" + "+".join(char * width for width in widths) + "+"

    def line(row: Sequence[str]) -> str:
        cells = (
            f" {cell}{' ' * (width - text_width(cell) - 1)}" for cell, width in zip(row, widths)
        )
        return pad + "|" + "|".join(cells) + "|"

    out = [border("-"), line(rows[0]), border("=")]
    for row in rows[1:]:
        out += [line(row), border("-")]
    return "\n".join(out)


def simple_table(rows: Sequence[Sequence[str]], indent: int = 0) -> str:
    """An RST simple table of ``rows`` (cells already RST, each one line), the first row its
    header: docutils reads it in about half the time of a grid table, for documents that need
    no cell spanning lines and are not read back by the parser. A cell of the first column is
    never empty (docutils would read the row as the one above continued): an empty one holds an
    escaped space."""
    cells = [[row[0] or "\\ ", *row[1:]] for row in rows]
    widths = [max(text_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    pad = " " * indent
    border = pad + "  ".join("=" * width for width in widths)

    def line(row: Sequence[str]) -> str:
        padded = [f"{cell}{' ' * (width - text_width(cell))}" for cell, width in zip(row, widths)]
        return (pad + "  ".join(padded)).rstrip()

    return "\n".join([border, line(cells[0]), border, *map(line, cells[1:]), border])


class Discard:
    """A warning stream that drops docutils' own printing: servicegen reports its problems."""

    def write(self, data: str) -> int:
        return len(data)

    def flush(self) -> None:
        return None
