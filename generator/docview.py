"""What ``page.rst.j2`` needs to write a page's docs: where each block of the page's prose goes
among the generated page's headings, and the Python name and anchor of each SOP class and status
row (a view model, so the template holds no logic beyond loops).

The generated page has headings of its own: the title, *Supported SOP Classes*, *Statuses*, a
heading per run of one DIMSE service's tables, and each status table's own title. A paragraph
goes under the next of these headings (from where the previous paragraph went) whose title is
its section's, before that heading's table; a paragraph of any other section (*References*, say)
gets a section of its title after the last table the page has before it (or where the previous
paragraph went, if that is later), at the level of the heading that follows (a top-level section
at the end of the page). So the generated RST reads back to the same paragraphs in the same
order, each in a section of its own section's title; tables and the sections around them may
move, paragraphs never change order.

Anchors are inline targets in the RST (``_`CMoveStatus.MOVE_DESTINATION_UNKNOWN```), so docutils
and Sphinx give them one id, ``cmovestatus-move-destination-unknown``: a row's Python name,
as docutils makes an id of it. A SOP class's is its keyword (``colorpaletteinformationmodelfind``).
Every id is unique on the page and none is a heading's: a status row whose name another row has
already (a row a later table of its service replaces, whose code names the same member) reads
``... (superseded)``, and any other clash is numbered, ``... (2)``. A SOP class keyword cannot
be renamed (the parser reads it back), so one whose id is taken (keywords that differ only in
case, say) is shown without an anchor.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from generator.model import (
    Dimse,
    Page,
    Paragraph,
    SOPClass,
    Status,
    StatusTable,
    member_names,
)
from generator.rst_text import anchor_id, escape_inline
from generator.views import enum_name

MARKS = "=-~^"
"""The underline of each heading level: the title, its sections, a DIMSE service's, a table's."""
SOP_HEADING = "Supported SOP Classes"
NO_SOP_HEADING = "Supported SOP Classes: none"
STATUS_HEADING = "Statuses"


@dataclass(frozen=True)
class Section:
    """A section of prose the generated page has no heading for, written after a heading's
    table."""

    title: str
    level: int
    paragraphs: tuple[Paragraph, ...]

    @property
    def mark(self) -> str:
        return MARKS[self.level]


@dataclass(frozen=True)
class Heading:
    """One of the generated page's headings: the prose written under it, before its table, and
    the sections of prose written after its table."""

    title: str
    level: int
    prose: tuple[Paragraph, ...]
    after: tuple[Section, ...]

    @property
    def mark(self) -> str:
        return MARKS[self.level]


def _target(text: str) -> str:
    """An RST inline target: shown as ``text``, with the id docutils makes of it."""
    return "_`" + text.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True)
class SOPRow:
    """A SOP class and the anchor its keyword cell is (None when its id is taken)."""

    sop: SOPClass
    anchor: str | None

    @property
    def cell(self) -> str:
        """The RST of the keyword cell, which the parser reads back as the keyword."""
        return _target(self.anchor) if self.anchor else escape_inline(self.sop.keyword)


@dataclass(frozen=True)
class StatusRow:
    """A status row with the Python name of its code (``CFindStatus.SUCCESS``), the anchor of
    that name (the name, or for a replaced row ``... (superseded)``), and the anchors of the
    member's aliases, when the row is the member's."""

    status: Status
    name: str
    anchor: str
    aliases: tuple[str, ...] = ()

    @property
    def cell(self) -> str:
        """The RST of the Python name cell."""
        return ", alias ".join(_target(anchor) for anchor in (self.anchor, *self.aliases))


@dataclass(frozen=True)
class TableView:
    """A status table with its heading, the DIMSE service's heading before it when the service
    changes, and its rows."""

    table: StatusTable
    group: Heading | None
    heading: Heading
    rows: tuple[StatusRow, ...]


@dataclass(frozen=True)
class DocsView:
    """Everything ``page.rst.j2`` writes of a page, in the generated page's order."""

    title: Heading
    sop_classes: Heading
    sop_rows: tuple[SOPRow, ...]
    statuses: Heading
    tables: tuple[TableView, ...]

    @property
    def anchors(self) -> tuple[str, ...]:
        """Every anchor's id, in the page's order."""
        texts = [row.anchor for row in self.sop_rows if row.anchor]
        for table in self.tables:
            for row in table.rows:
                texts += [row.anchor, *row.aliases]
        return tuple(anchor_id(text) for text in texts)


@dataclass
class _Slot:
    title: str
    level: int
    line: int
    """The line of the status table under the heading (the first one's, for Statuses and a DIMSE
    service's heading; 0 for the title and the SOP classes): ascending in the page's order."""
    prose: list[Paragraph] = field(default_factory=list)
    after: list[tuple[str, int, list[Paragraph]]] = field(default_factory=list)

    def heading(self) -> Heading:
        after = tuple(
            Section(title, level, tuple(paragraphs)) for title, level, paragraphs in self.after
        )
        return Heading(self.title, self.level, tuple(self.prose), after)


def docs_view(page: Page) -> DocsView:
    """Lay out ``page``'s docs: prose placed under the headings (module docstring), Python names
    and anchors given."""
    first_table = page.status_tables[0].line if page.status_tables else 0
    slots = [
        _Slot(page.title, 0, 0),
        _Slot(SOP_HEADING if page.sop_classes else NO_SOP_HEADING, 1, 0),
        _Slot(STATUS_HEADING, 1, first_table),
    ]
    groups: list[_Slot | None] = []
    for index, table in enumerate(page.status_tables):
        changed = index == 0 or page.status_tables[index - 1].dimse is not table.dimse
        groups.append(_Slot(table.dimse.value, 2, table.line) if changed else None)
        slots += [*([groups[-1]] if groups[-1] else []), _Slot(table.title, 3, table.line)]
    _place(page.prose, slots, min((sop.line for sop in page.sop_classes), default=0))
    table_slots = [slot for slot in slots[3:] if slot.level == 3]
    taken = {anchor_id(slot.title) for slot in slots}
    taken.update(anchor_id(title) for slot in slots for title, _, _ in slot.after)
    claim = _claimer(taken)
    sop_rows = tuple(
        SOPRow(sop, sop.keyword if claim(sop.keyword) else None) for sop in page.sop_classes
    )
    rows = _status_rows(page, claim)
    return DocsView(
        title=slots[0].heading(),
        sop_classes=slots[1].heading(),
        sop_rows=sop_rows,
        statuses=slots[2].heading(),
        tables=tuple(
            TableView(table, group.heading() if group else None, slot.heading(), row)
            for table, group, slot, row in zip(page.status_tables, groups, table_slots, rows)
        ),
    )


def _place(prose: Iterable[Paragraph], slots: Sequence[_Slot], sop_line: int) -> None:
    """Put each paragraph under the next heading of its section's title, from where the previous
    one went (and not back under a heading a section of prose already follows); else in a
    section of its title after the last table the page has before it (``sop_line``: where the
    SOP classes' first row is), or where the previous one went, if that is later. A handful of
    bisections per paragraph: a page of thousands of tables is no reason to wait."""
    by_title: dict[str, list[int]] = {}
    for index, slot in enumerate(slots):
        by_title.setdefault(slot.title, []).append(index)
    lines = {title: [slots[i].line for i in same] for title, same in by_title.items()}
    tables = [index for index, slot in enumerate(slots) if slot.level == 3]
    table_lines = [slots[index].line for index in tables]
    at = 0
    for paragraph in prose:
        same = by_title.get(paragraph.section, [])
        start = bisect.bisect_left(same, at)
        if start < len(same) and same[start] == at and slots[at].after:
            start += 1
        if start < len(same):
            # Of headings with one title (two tables may share one), the first whose table
            # comes after the paragraph, else the last: text stands above its table.
            below = bisect.bisect_left(lines[paragraph.section], paragraph.line, lo=start)
            at = same[min(below, len(same) - 1)]
            slots[at].prose.append(paragraph)
            continue
        before = bisect.bisect_left(table_lines, paragraph.line)
        if before:
            at = max(at, tables[before - 1])
        if at < 1 and 0 < sop_line < paragraph.line:  # after the SOP classes' table
            at = 1
        after = slots[at].after
        if after and after[-1][0] == paragraph.section:
            after[-1][2].append(paragraph)
        else:
            level = slots[at + 1].level if at + 1 < len(slots) else 1
            after.append((paragraph.section, level, [paragraph]))


def _claimer(taken: set[str]) -> Callable[[str], bool]:
    """A function that takes an anchor's id for ``text`` if it is free and not empty."""

    def claim(text: str) -> bool:
        wanted = anchor_id(text)
        if not wanted or wanted in taken:
            return False
        taken.add(wanted)
        return True

    return claim


def _status_rows(page: Page, claim: Callable[[str], bool]) -> list[tuple[StatusRow, ...]]:
    """Each table's rows with their Python names and anchors: the rows whose descriptions the
    module holds first, then the rows later tables replace."""
    members: dict[tuple[Dimse, int, int], tuple[str, Status]] = {}
    for dimse in dict.fromkeys(table.dimse for table in page.status_tables):
        for status, name in member_names(page.statuses(dimse)).items():
            members[(dimse, status.first, status.last)] = (f"{enum_name(dimse)}.{name}", status)
    canonical: dict[tuple[Dimse, int], str] = {}  # the member an alias of a code stands for
    for (dimse, first, _), (name, _) in members.items():
        canonical.setdefault((dimse, first), name)
    aliases: dict[str, list[str]] = {}
    for alias in page.aliases:
        # A page built by hand with a bad alias is refused already, by views.service_view.
        if (alias.dimse, alias.code) in canonical:
            old = f"{enum_name(alias.dimse)}.{alias.name}"
            aliases.setdefault(canonical[(alias.dimse, alias.code)], []).append(old)
    counters: dict[str, int] = {}

    def numbered(text: str) -> str:
        if text not in counters and claim(text):
            counters[text] = 2
            return text
        n = counters.get(text, 2)
        while not claim(f"{text} ({n})"):
            n += 1
        counters[text] = n + 1
        return f"{text} ({n})"

    chosen: dict[tuple[int, int], StatusRow] = {}
    replaced: list[tuple[int, int, Status, str]] = []
    for t, table in enumerate(page.status_tables):
        for r, status in enumerate(table.statuses):
            name, holder = members[(table.dimse, status.first, status.last)]
            if holder != status:
                replaced.append((t, r, status, name))
                continue
            own = tuple(alias for alias in aliases.get(name, ()) if claim(alias))
            chosen[(t, r)] = StatusRow(status, name, numbered(name), own)
    for t, r, status, name in replaced:
        chosen[(t, r)] = StatusRow(status, name, numbered(f"{name} (superseded)"))
    return [
        tuple(chosen[(t, r)] for r in range(len(table.statuses)))
        for t, table in enumerate(page.status_tables)
    ]
