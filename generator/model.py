"""The typed model of a service-class page: what the parser produces and everything else reads.

Plain frozen dataclasses with no I/O, no docutils and no Jinja, so the model can be built by hand in
tests, compared with ``==`` and printed as JSON by ``servicegen model``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Category(str, Enum):
    """A status category as pynetdicom spells it (``pynetdicom.status.STATUS_*``)."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"


class Scope(str, Enum):
    """Who defines a status table: PS3.7 (general), the service class, or pynetdicom itself."""

    GENERAL = "general"
    SERVICE = "service"
    IMPLEMENTATION = "implementation"


class Dimse(str, Enum):
    """A DIMSE service, in the spelling the pages use (``C-FIND``)."""

    C_ECHO = "C-ECHO"
    C_STORE = "C-STORE"
    C_FIND = "C-FIND"
    C_GET = "C-GET"
    C_MOVE = "C-MOVE"
    N_EVENT_REPORT = "N-EVENT-REPORT"
    N_GET = "N-GET"
    N_SET = "N-SET"
    N_ACTION = "N-ACTION"
    N_CREATE = "N-CREATE"
    N_DELETE = "N-DELETE"

    @property
    def ident(self) -> str:
        """``C_FIND``: the stem of the generated names for this service."""
        return self.name

    @property
    def event(self) -> str:
        """The pynetdicom intervention event bound for this service (``EVT_C_FIND``)."""
        return "EVT_" + self.name

    @property
    def callback(self) -> str:
        """pynetdicom 1.x's callback name for this service (``on_c_find``)."""
        return "on_" + self.name.lower()


@dataclass(frozen=True)
class Status:
    """One row of a status table; ``first == last`` except for ranges such as 0xC000 to 0xCFFF."""

    first: int
    last: int
    category: Category
    description: str
    description_rst: str
    line: int

    @property
    def is_range(self) -> bool:
        return self.first != self.last

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.first <= code <= self.last


@dataclass(frozen=True)
class StatusTable:
    """A status table of one DIMSE service, in document order."""

    dimse: Dimse
    scope: Scope
    title: str
    statuses: tuple[Status, ...]
    line: int


@dataclass(frozen=True)
class SOPClass:
    """A SOP class row; ``dimse`` lists the services the page gives it, in document order."""

    keyword: str
    uid: str
    dimse: tuple[Dimse, ...]
    line: int


@dataclass(frozen=True)
class Paragraph:
    """A block of the page's prose, outside its tables: a paragraph, or the text of another text
    block (a literal block, a line of a line block, a term, a rubric, ...), in document order.

    ``section`` is the title of the innermost section it stands in (the page title for text before
    it); ``text`` its plain text, whitespace collapsed; ``rst`` its inline markup as RST that reads
    back as the same text and links (as ``Status.description_rst``); ``item`` whether it opens a
    list item, which the generated docs show as a bullet."""

    section: str
    text: str
    rst: str
    item: bool
    line: int


@dataclass(frozen=True)
class Link:
    """A hyperlink of the page's prose or of a status description (to the DICOM standard,
    mostly), with its context: the ``section`` title and the ``context`` text (the paragraph or
    description) it stands in, so "Annex X" still reads "DICOM Standard, Part 4, Annex X"."""

    text: str
    url: str
    section: str
    context: str


@dataclass(frozen=True)
class Alias:
    """An old name of a ``dimse`` status member, kept for compatibility when its description is
    reworded: the page's comment ``.. servicegen: alias C-MOVE 0xA801 MOVE_DESTINATION_UNKNOWN``
    (``code`` is a row's code, or a range's first code: the member's value)."""

    dimse: Dimse
    code: int
    name: str
    line: int


@dataclass(frozen=True)
class Page:
    """A service-class page: its SOP classes, status tables, prose and alias comments in document
    order. ``links`` holds each link of the prose (in its order), then of the status descriptions
    (in table and row order), once per text, target and context."""

    title: str
    source: str
    sop_classes: tuple[SOPClass, ...]
    status_tables: tuple[StatusTable, ...]
    prose: tuple[Paragraph, ...] = field(default=())
    links: tuple[Link, ...] = field(default=())
    aliases: tuple[Alias, ...] = field(default=())
    sha256: str = ""

    @property
    def stem(self) -> str:
        """The page's file stem, which names its generated module and docs."""
        name = self.source.replace("\\", "/").rsplit("/", 1)[-1]
        return name.removesuffix(".rst")

    @property
    def dimse_services(self) -> tuple[Dimse, ...]:
        """Every DIMSE service the page names, SOP classes first, each once, in document order."""
        seen: dict[Dimse, None] = {}
        for sop in self.sop_classes:
            seen.update(dict.fromkeys(sop.dimse))
        for table in self.status_tables:
            seen[table.dimse] = None
        return tuple(seen)

    def statuses(self, dimse: Dimse) -> tuple[Status, ...]:
        """The rows of ``dimse``'s tables merged: a later table's row replaces an earlier one's
        for the same exact code (as pynetdicom's ``dict.update`` does), else document order."""
        merged: dict[tuple[int, int], Status] = {}
        for table in self.status_tables:
            if table.dimse is dimse:
                for status in table.statuses:
                    merged.pop((status.first, status.last), None)
                    merged[(status.first, status.last)] = status
        return tuple(merged.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``servicegen model`` prints (codes as ints, descriptions as plain text),
        with each service's enum member names, so a page's names can be seen without generating."""
        return {
            "title": self.title,
            "source": self.source,
            "sop_classes": [
                {
                    "keyword": sop.keyword,
                    "uid": sop.uid,
                    "dimse": sop.dimse[0].value if sop.dimse else None,
                    "dimse_services": [d.value for d in sop.dimse],
                    "line": sop.line,
                }
                for sop in self.sop_classes
            ],
            "status_tables": [
                {
                    "dimse": table.dimse.value,
                    "scope": table.scope.value,
                    "title": table.title,
                    "line": table.line,
                    "statuses": [
                        {
                            "first": s.first,
                            "last": s.last,
                            "category": s.category.value,
                            "description": s.description,
                            "description_rst": s.description_rst,
                            "line": s.line,
                        }
                        for s in table.statuses
                    ],
                }
                for table in self.status_tables
            ],
            "prose": [
                {
                    "section": p.section,
                    "text": p.text,
                    "rst": p.rst,
                    "item": p.item,
                    "line": p.line,
                }
                for p in self.prose
            ],
            "links": [
                {
                    "text": link.text,
                    "url": link.url,
                    "section": link.section,
                    "context": link.context,
                }
                for link in self.links
            ],
            "members": [
                {"dimse": dimse.value, "name": name, "first": status.first, "last": status.last}
                for dimse in dict.fromkeys(table.dimse for table in self.status_tables)
                for status, name in member_names(self.statuses(dimse)).items()
            ],
            "aliases": [
                {"dimse": a.dimse.value, "code": a.code, "name": a.name, "line": a.line}
                for a in self.aliases
            ],
        }


_WORD = re.compile(r"[A-Za-z0-9]+")
MAX_NAME_WORDS = 6
FILLER_WORDS = frozenset(
    {"a", "an", "the", "this", "that", "these", "those"}
    | {"is", "are", "was", "were", "been", "has", "have", "had", "do", "does", "did"}
)
"""Dropped wherever they stand: articles and demonstratives, and the auxiliary verbs of "is
not supported", "has been terminated", "does not match". Never a word that carries meaning:
"no", "not", "none", "cannot", "unable", "be" ("cannot be identified") all stay."""
DANGLING_WORDS = frozenset(
    {"about", "after", "against", "among", "as", "at", "before", "between", "by", "during"}
    | {"for", "from", "in", "into", "of", "on", "onto", "per", "since", "than", "through"}
    | {"to", "under", "until", "upon", "via", "with", "within", "without"}
    | {"and", "or", "nor", "but", "if", "because", "unless", "whether", "while", "when"}
    | {"where", "which", "who", "no", "not", "non"}
)
"""Prepositions, conjunctions and negations, which lead into the words after them: a name cut
short never ends on one ("..._RECEIVED_FROM" would promise a word that is not there, and
"..._STATE_NOT" would negate nothing)."""
_LAST_LEVEL = 2


def member_names(statuses: Iterable[Status]) -> dict[Status, str]:
    """Enum member names for one service's merged rows (each ``(first, last)`` at most once).

    The rule, documented in the README: apostrophes are dropped and the description's runs of
    ASCII letters and digits are its words; ``FILLER_WORDS`` and a word that repeats the one
    before it (``evt.EVT_C_FIND``) are dropped; the first ``MAX_NAME_WORDS`` words are kept and,
    when that cuts the description short, ``DANGLING_WORDS`` are taken off the end (never the
    first word); the words are upper-cased and joined by ``_`` (``_`` is prefixed when that
    starts with a digit; ``STATUS`` stands in for an empty name). Short names read well and
    survive a reworded tail; a reworded head is what ``.. servicegen: alias`` comments are for.
    While rows share a name, every one of them is qualified one level further: first
    ``_<first code as 4 hex digits>`` (``OUT_OF_RESOURCES_A701``), then ``_0x<first>`` and, for a
    range, ``_0x<last>``. The lower-case ``x`` of that last level appears in no other level's
    names, and the codes make it unique among its own, so the names are unique for any
    descriptions; each depends only on the set of rows, never on their order, and a name no
    other row shares is left as it is.
    """
    bases = {status: _base_name(status.description) for status in statuses}
    levels = dict.fromkeys(bases, 0)
    while True:
        names = {status: _qualified(base, status, levels[status]) for status, base in bases.items()}
        holders: dict[str, list[Status]] = {}
        for status, name in names.items():
            holders.setdefault(name, []).append(status)
        shared = [s for group in holders.values() if len(group) > 1 for s in group]
        if all(levels[status] == _LAST_LEVEL for status in shared):
            return names  # unique unless two rows have one (first, last): the caller refuses that
        for status in shared:
            levels[status] = min(levels[status] + 1, _LAST_LEVEL)


def _base_name(description: str) -> str:
    words: list[str] = []
    for word in _WORD.findall(description.replace("'", "").replace("\u2019", "")):
        folded = word.lower()
        if folded not in FILLER_WORDS and not (words and words[-1].lower() == folded):
            words.append(word)
    kept = words[:MAX_NAME_WORDS]
    if len(kept) < len(words):
        while len(kept) > 1 and kept[-1].lower() in DANGLING_WORDS:
            kept.pop()
    name = "_".join(kept).upper() or "STATUS"
    return "_" + name if name[0].isdigit() else name


def _qualified(base: str, status: Status, level: int) -> str:
    if level == 0:
        return base
    if level == 1:
        return f"{base}_{status.first:04X}"
    return f"{base}_0x{status.first:04X}" + (f"_0x{status.last:04X}" if status.is_range else "")


_MEMBER_NAME = re.compile(r"(?:[A-Z]|_[0-9])[A-Z0-9]*(?:_(?:0x)?[A-Z0-9]+)*")


def is_member_name(name: str) -> bool:
    """Whether an enum member can be called ``name`` and mean itself: the shape of the names
    ``member_names`` gives, upper-case ASCII words joined by single ``_`` (``_0x`` before a code),
    ``_`` only before a leading digit. That is no keyword, no ``_sunder_`` or ``__dunder__``
    (``enum`` reserves those) and no ``__private`` name (the class body would mangle it); and,
    with no lower-case letter, it never hides what ``int`` and ``IntEnum`` give every member
    (an alias called ``to_bytes`` would break ``member.to_bytes()``; ``mro`` is refused)."""
    return _MEMBER_NAME.fullmatch(name) is not None


def alias_faults(page: Page) -> list[tuple[Alias, str]]:
    """Every alias of ``page`` that cannot be an old name of a member, with why: it must name a
    row of its service (by code, a range by its first code) and a member name no member or other
    alias of that enum has. The parser reports these at the comment's line; the views refuse
    them too, for a page built by hand."""
    faults: list[tuple[Alias, str]] = []
    taken: dict[Dimse, dict[str, str]] = {}
    codes: dict[Dimse, set[int]] = {}
    for alias in page.aliases:
        if alias.dimse not in taken:  # once per service: linear in aliases and rows
            statuses = page.statuses(alias.dimse)
            what = f"the name of {alias.dimse.value} status"
            taken[alias.dimse] = {
                name: f"{what} {code_text(status)} (line {status.line})"
                for status, name in member_names(statuses).items()
            }
            codes[alias.dimse] = {status.first for status in statuses}
        names = taken[alias.dimse]
        if alias.code not in codes[alias.dimse]:
            fault = (
                f"no {alias.dimse.value} status row has code 0x{alias.code:04X}"
                " (a range is named by its first code)"
            )
        elif not is_member_name(alias.name):
            fault = (
                f"alias {alias.name!r} is not an enum member name: upper-case ASCII words and"
                " digits joined by single '_', as servicegen names members"
            )
        elif alias.name in names:
            fault = f"alias {alias.name} is already {names[alias.name]}"
        else:
            names[alias.name] = f"an alias of 0x{alias.code:04X} (line {alias.line})"
            continue
        faults.append((alias, fault))
    return faults


def code_text(status: Status) -> str:
    """``0xC000`` or ``0xC000 to 0xCFFF``, as the pages write a code."""
    if status.is_range:
        return f"0x{status.first:04X} to 0x{status.last:04X}"
    return f"0x{status.first:04X}"
