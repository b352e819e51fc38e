"""What ``page.rst.j2`` needs to write a page's docs: where each block of the page's prose goes
among the generated page's headings (a view model, so the template holds no logic beyond loops).

The generated page has headings of its own: the title, *Supported SOP Classes*, *Statuses*, a
heading per run of one DIMSE service's tables, and each status table's own title. A paragraph
goes under the next of these headings (from where the previous paragraph went) whose title is
its section's, before that heading's table; a paragraph of any other section (*References*, say)
gets a section of its title after the last table the page has before it (or where the previous
paragraph went, if that is later), at the level of the heading that follows (a top-level section
at the end of the page). So the generated RST reads back to the same paragraphs in the same
order, each in a section of its own section's title; tables and the sections around them may
move, paragraphs never change order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from generator.model import Page, Paragraph, StatusTable

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


@dataclass(frozen=True)
class TableView:
    """A status table with its heading, and the DIMSE service's heading before it when the
    service changes."""

    table: StatusTable
    group: Heading | None
    heading: Heading


@dataclass(frozen=True)
class DocsView:
    """Everything ``page.rst.j2`` writes of a page, in the generated page's order."""

    title: Heading
    sop_classes: Heading
    statuses: Heading
    tables: tuple[TableView, ...]


@dataclass
class _Slot:
    title: str
    level: int
    line: int
    """The line of the heading's table (the first SOP class row's), 0 for a heading with none."""
    prose: list[Paragraph] = field(default_factory=list)
    after: list[Section] = field(default_factory=list)

    def heading(self) -> Heading:
        return Heading(self.title, self.level, tuple(self.prose), tuple(self.after))


def docs_view(page: Page) -> DocsView:
    """Lay out ``page``'s docs: prose placed under the headings (module docstring)."""
    slots = [
        _Slot(page.title, 0, 0),
        _Slot(
            SOP_HEADING if page.sop_classes else NO_SOP_HEADING,
            1,
            min((sop.line for sop in page.sop_classes), default=0),
        ),
        _Slot(STATUS_HEADING, 1, 0),
    ]
    groups: list[_Slot | None] = []
    for index, table in enumerate(page.status_tables):
        changed = index == 0 or page.status_tables[index - 1].dimse is not table.dimse
        groups.append(_Slot(table.dimse.value, 2, 0) if changed else None)
        slots += [*([groups[-1]] if groups[-1] else []), _Slot(table.title, 3, table.line)]
    _place(page.prose, slots)
    table_slots = [slot for slot in slots[3:] if slot.level == 3]
    return DocsView(
        title=slots[0].heading(),
        sop_classes=slots[1].heading(),
        statuses=slots[2].heading(),
        tables=tuple(
            TableView(table, group.heading() if group else None, slot.heading())
            for table, group, slot in zip(page.status_tables, groups, table_slots)
        ),
    )


def _place(prose: Iterable[Paragraph], slots: Sequence[_Slot]) -> None:
    """Put each paragraph under the next heading of its section's title, from where the previous
    one went (and not back under a heading a section of prose already follows); else in a
    section of its title after the last table the page has before it (or where the previous
    one went, if that is later)."""
    at = 0
    for paragraph in prose:
        found = [
            index
            for index in range(at, len(slots))
            if slots[index].title == paragraph.section and (index > at or not slots[at].after)
        ]
        if found:
            # Of headings with one title (two tables may share one), the first whose table
            # comes after the paragraph, else the last: text stands above its table.
            at = next((i for i in found if slots[i].line >= paragraph.line), found[-1])
            slots[at].prose.append(paragraph)
            continue
        at = max([at, *(i for i in range(at, len(slots)) if 0 < slots[i].line < paragraph.line)])
        after = slots[at].after
        if after and after[-1].title == paragraph.section:
            last = after[-1]
            after[-1] = Section(last.title, last.level, (*last.paragraphs, paragraph))
        else:
            level = slots[at + 1].level if at + 1 < len(slots) else 1
            after.append(Section(paragraph.section, level, (paragraph,)))
