"""Writing Python source from templates: string literals any text can pass through, and layouts
black keeps as they are, so black's pass over a rendered module is nearly free."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import black
from black.mode import TargetVersion
from black.strings import str_width

BLACK_MODE = black.Mode(line_length=100, target_versions={TargetVersion.PY310})


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def pyrepr(value: str) -> str:
    """A Python string literal for any text: spec text reaches code only through this.

    Quoted as black quotes it (double quotes unless single quotes need fewer escapes), with
    ``repr``'s escapes, so black leaves the literal as it is.
    """
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join(
        _ESCAPES.get(c) or ("\\" + c if c == quote else c if c.isprintable() else repr(c)[1:-1])
        for c in text
    )
    return quote + body + quote


@dataclass(frozen=True)
class PySeq:
    """A bracketed Python display of code items (strings or nested ``PySeq``), for ``pyfit``."""

    items: tuple[str | PySeq, ...]
    brackets: str = "()"
    is_tuple: bool = True
    """A one-item ``()`` display needs its comma (``("C-ECHO",)``); a call's does not."""

    def flat(self) -> str:
        inner = ", ".join(i if isinstance(i, str) else i.flat() for i in self.items)
        comma = "," if self.is_tuple and self.brackets == "()" and len(self.items) == 1 else ""
        return self.brackets[0] + inner + comma + self.brackets[1]


def pytuple(items: Sequence[str | PySeq]) -> PySeq:
    return PySeq(tuple(items))


def pyargs(items: Sequence[str | PySeq]) -> PySeq:
    return PySeq(tuple(items), is_tuple=False)


def pyfit(indent: int, lead: str, seq: PySeq, tail: str = "") -> str:
    """``lead`` + ``seq`` + ``tail`` as the lines black leaves alone: one line when it fits in
    black's line length, else one item per line, each laid out the same way, with a magic
    trailing comma, so black's pass over it is a no-op rather than a re-layout."""
    pad = " " * indent
    flat = pad + lead + seq.flat() + tail
    if not seq.items or str_width(flat) <= BLACK_MODE.line_length:
        return flat
    lines = [pad + lead + seq.brackets[0]]
    for item in seq.items:
        if isinstance(item, str):
            lines.append(f"{pad}    {item},")
        else:
            lines.append(pyfit(indent + 4, "", item, ","))
    lines.append(pad + seq.brackets[1] + tail)
    return "\n".join(lines)


@functools.cache
def pydef(indent: int, header: str) -> str:
    """A ``def`` line as black lays it out at ``indent`` (a constant of the renderer, such as a
    ``Backend`` method, so black runs once per header and process, not once per page)."""
    nest = indent // 4
    source = "".join(f"{'    ' * n}class _{n}:\n" for n in range(nest))
    source += f"{'    ' * nest}{header}:\n{'    ' * (nest + 1)}pass\n"
    lines = black.format_str(source, mode=BLACK_MODE).splitlines()
    return "\n".join(lines[nest:-1])


def docstring(value: str) -> str:
    """Text made safe inside a triple-quoted docstring, reading back as exactly ``value``: no
    quote or backslash can end it early, and an invisible character is written as its escape
    (``\\u200b``, not a truncated ``\\x``)."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in escaped)
