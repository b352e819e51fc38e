"""Escaping plain text for reStructuredText, shared by the parser and the renderer.

The parser keeps each description's RST source in a normalised form built with this escaping, and
the renderer writes generated RST with it, so any text a page holds reads back as the same text.
"""

from __future__ import annotations

import re

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
