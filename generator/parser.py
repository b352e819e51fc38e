"""Reads a service-class page into the model: the only module that knows docutils.

Tables are classified by their header row and the titles of the sections around them, never by
scraping the page text. Sphinx roles and directives docutils does not know are registered as inert
text first, so pynetdicom's own pages (``:dcm:``, ``:class:``, ``.. currentmodule::``) parse
cleanly, and every docutils complaint of level WARNING or above becomes a ``SpecError`` with the
page's path and line.

Problems in rows (a bad code, a keyword that is not an identifier, …) are collected rather than
raised at the first, so one run names them all: ``read_page`` raises them together, while
``examine_page`` keeps every row the model can hold and returns the problems beside the page, for
``lint`` and ``audit``, which report and carry on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import keyword
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import docutils.frontend
import docutils.parsers.rst
import docutils.utils
from docutils import nodes
from docutils.parsers.rst import Directive, directives, roles
from docutils.parsers.rst.languages import en
from pydicom.uid import UID

from generator.errors import Problem, SpecError
from generator.model import (
    Category,
    Dimse,
    Link,
    Page,
    Scope,
    SOPClass,
    Status,
    StatusTable,
    code_text,
)
from generator.rst_text import escape_inline

DICOM_BASE = "https://dicom.nema.org/medical/dicom/current/output/chtml/"
"""Where pynetdicom's ``:dcm:`` role points (its Sphinx ``extlinks`` setting)."""

_CODE = re.compile(r"0x([0-9A-Fa-f]{4})(?:\s+to\s+0x([0-9A-Fa-f]{4}))?")
_DIMSE_NAME = re.compile(
    r"\b([CN]-(?:ECHO|STORE|FIND|GET|MOVE|EVENT-REPORT|SET|ACTION|CREATE|DELETE))\b"
)
_QR_SUFFIX = {"(find)": Dimse.C_FIND, "(get)": Dimse.C_GET, "(move)": Dimse.C_MOVE}
_ROLE_USE = re.compile(r"(?<![\w`\\]):((?:[A-Za-z][\w+.-]*:)?[A-Za-z][\w+.-]*):`")
_DIRECTIVE_USE = re.compile(r"^\s*\.\.\s+([A-Za-z][\w:+.-]*)::", re.MULTILINE)
_LEAD = re.compile(r"^[~!]")
_KEYWORD_ENDINGS = (
    ("Find", Dimse.C_FIND),
    ("Query", Dimse.C_FIND),
    ("Get", Dimse.C_GET),
    ("Move", Dimse.C_MOVE),
    ("Storage", Dimse.C_STORE),
)


@dataclass(frozen=True)
class Reading:
    """A page read leniently: every row the model can hold, and what is wrong with the rest."""

    page: Page
    problems: tuple[Problem, ...]

    def strictly(self) -> Page:
        """The page, or one ``SpecError`` with every problem if there are any."""
        if self.problems:
            raise SpecError.of(self.problems)
        return self.page


def read_page(path: str | Path) -> Page:
    """Read the page at ``path``; raise one ``SpecError`` naming the line of everything wrong."""
    return examine_page(path).strictly()


def examine_page(path: str | Path) -> Reading:
    """Read the page at ``path`` leniently; raise ``SpecError`` only for a page that cannot be
    read at all (unreadable, not UTF-8, RST docutils cannot parse)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError(source, 0, f"cannot read: {exc.strerror or exc}") from None
    return examine_bytes(data, source)


def examine_bytes(data: bytes, source: str) -> Reading:
    """Read a page's bytes (from a file or ``git show``) leniently, as ``examine_page`` does."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(source, line, f"byte 0x{data[exc.start]:02X} is not UTF-8") from None
    return examine_text(text, source)


def read_pages(spec_dir: str | Path) -> list[Page]:
    """Every ``*.rst`` page below ``spec_dir``, sorted by path; raises one ``SpecError`` with the
    problems of every bad page."""
    return list(iter_pages(spec_dir))


def iter_pages(spec_dir: str | Path) -> Iterator[Page]:
    """``read_pages`` one page at a time, so a caller renders each page while the next is read.
    Once a page is bad no more are yielded (nothing will be written), but every page is still
    read, and one ``SpecError`` after the last names the problems of every bad page."""
    problems: list[Problem] = []
    for path in sorted(Path(spec_dir).rglob("*.rst")):
        try:
            page = read_page(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if not problems:
            yield page
    if problems:
        raise SpecError.of(problems)


def parse_page(text: str, source: str) -> Page:
    """Parse RST ``text`` (read from ``source``) into a ``Page``; raise as ``read_page`` does."""
    return examine_text(text, source).strictly()


def examine_text(text: str, source: str) -> Reading:
    """Parse RST ``text`` (read from ``source``) leniently, as ``examine_page`` does."""
    document = _doctree(text, source)
    reader = _PageReader(source)
    page = reader.read(document)
    page = dataclasses.replace(page, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    return Reading(page, tuple(sorted(reader.problems, key=lambda p: p.line)))


def _doctree(text: str, source: str) -> nodes.document:
    _register_inert(text)
    settings = docutils.frontend.get_default_settings(docutils.parsers.rst.Parser)
    settings.report_level = 5
    settings.halt_level = 5
    settings.warning_stream = _Discard()
    settings.file_insertion_enabled = False
    settings.raw_enabled = False
    settings.line_length_limit = 1_000_000
    document = docutils.utils.new_document(source, settings)
    problems: list[nodes.system_message] = []

    def observe(message: nodes.system_message) -> None:
        if message["level"] >= 2:
            problems.append(message)

    document.reporter.attach_observer(observe)
    docutils.parsers.rst.Parser().parse(text, document)
    if problems:
        first = problems[0]
        detail = first.children[0].astext() if first.children else first.astext()
        raise SpecError(source, first.get("line") or 1, " ".join(detail.split()))
    return document


class _Discard:
    """A warning stream that drops docutils' own printing: problems arrive through the observer."""

    def write(self, data: str) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def _inert_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: dict[str, Any] | None = None,
    content: Sequence[str] = (),
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Sphinx-style roles as plain text; ``:dcm:`` keeps its link into the DICOM standard."""
    title, target = _title_and_target(docutils.utils.unescape(text))
    if name == "dcm":
        return [nodes.reference(rawtext, title, refuri=DICOM_BASE + target)], []
    return [nodes.Text(title)], []


def _title_and_target(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"(.*?)\s*<([^<>]*)>", text, re.DOTALL)
    if match and match.group(1):
        return match.group(1), match.group(2)
    target = _LEAD.sub("", text)
    title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    return title, target


class _InertDirective(Directive):
    """A Sphinx directive read as plain text: its content becomes a paragraph, options are kept
    out of the way, and nothing is an error."""

    optional_arguments = 100
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[nodes.Node]:
        text = " ".join(" ".join(self.content).split())
        return [nodes.paragraph(text, text)] if text else []


class _AnyOption(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return directives.unchanged


_InertDirective.option_spec = _AnyOption()


def _register_inert(text: str) -> None:
    """Register every role and directive the page uses that docutils does not know as inert."""
    known_roles = {*getattr(roles, "_roles", {}), *getattr(roles, "_role_registry", {}), *en.roles}
    for name in set(_ROLE_USE.findall(text)) - known_roles:
        roles.register_local_role(name, cast(Any, _inert_role))
    known_directives = {
        *getattr(directives, "_directives", {}),
        *getattr(directives, "_directive_registry", {}),
        *en.directives,
    }
    for name in set(_DIRECTIVE_USE.findall(text)) - known_directives:
        directives.register_directive(name, _InertDirective)


def plain_text(node: nodes.Node) -> str:
    """A node's text with markup dropped and whitespace collapsed."""
    return " ".join(node.astext().split())


def rst_source(node: nodes.Element) -> str:
    """A normalised RST source for a cell: re-serialised inline markup, whitespace collapsed."""
    parts: list[str] = []
    for para in node.findall(nodes.paragraph):
        parts.append(_inline_rst(para, first=True))
    return " ".join(" ".join(parts).split())


def _inline_rst(node: nodes.Element, *, first: bool) -> str:
    out: list[str] = []
    for child in node.children:
        at_start = first and not out
        if isinstance(child, nodes.Text):
            out.append(escape_inline(child.astext(), at_start=at_start))
        elif isinstance(child, nodes.literal):
            out.append(f"``{child.astext()}``")
        elif isinstance(child, nodes.strong):
            out.append(f"**{_inline_rst(child, first=False)}**")
        elif isinstance(child, nodes.emphasis):
            out.append(f"*{_inline_rst(child, first=False)}*")
        elif isinstance(child, nodes.reference) and child.get("refuri"):
            uri, label = child["refuri"], child.astext()
            out.append(
                uri if label == uri else f"`{escape_inline(label, at_start=False)} <{uri}>`__"
            )
        elif isinstance(child, nodes.Element):
            out.append(_inline_rst(child, first=at_start))
    return "".join(out)


@dataclass
class _Row:
    cells: list[nodes.entry]
    line: int


def _rows(table: nodes.table, part: type[nodes.Element]) -> Iterator[_Row]:
    for group in table.findall(part):
        for row in group.findall(nodes.row):
            cells = [e for e in row.children if isinstance(e, nodes.entry)]
            lines = [p.line for p in row.findall(nodes.paragraph) if p.line]
            yield _Row(cells, min(lines) if lines else (table.line or 1))


def _header(table: nodes.table) -> list[str]:
    for row in _rows(table, nodes.thead):
        return [plain_text(cell).lower() for cell in row.cells]
    return []


def _section_title(node: nodes.Node) -> str:
    parent = node.parent
    while parent is not None and not isinstance(parent, nodes.section):
        parent = parent.parent
    if parent is None or not parent.children or not isinstance(parent[0], nodes.title):
        return ""
    return plain_text(parent[0])


def _dimse_in(title: str) -> Dimse | None:
    match = _DIMSE_NAME.search(title)
    if match:
        return Dimse(match.group(1))
    lowered = title.lower()
    for suffix, dimse in _QR_SUFFIX.items():
        if suffix in lowered:
            return dimse
    return None


def _squash(text: str) -> str:
    squashed = re.sub(r"[^a-z0-9]", "", text.lower())
    return squashed.removesuffix("sopclasses").removesuffix("sopclass")


class _PageReader:
    """Walks one doctree in document order, collecting SOP classes, status tables and links."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sop_rows: list[tuple[str, str, tuple[Dimse, ...] | None, int]] = []
        self.tables: list[StatusTable] = []
        self.dimse_table: list[tuple[list[str], list[Dimse]]] = []
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.source, line, message))

    def read(self, document: nodes.document) -> Page:
        title = ""
        intro = ""
        for section in document.findall(nodes.section):
            title = plain_text(section[0])
            for child in section.children[1:]:
                if isinstance(child, nodes.paragraph):
                    intro = plain_text(child)
                    break
            break
        for table in document.findall(nodes.table):
            self.classify(table)
        links: dict[Link, None] = {}
        for ref in document.findall(nodes.reference):
            if ref.get("refuri"):
                links[Link(plain_text(ref), ref["refuri"])] = None
        return Page(
            title=title,
            source=self.source,
            sop_classes=self.sop_classes(),
            status_tables=tuple(self.tables),
            intro=intro,
            links=tuple(links),
        )

    def classify(self, table: nodes.table) -> None:
        header = _header(table)
        if "uid" in header and "sop class" in header:
            dimse_col = next((i for i, h in enumerate(header) if h.startswith("dimse")), None)
            self.read_sop_table(table, header.index("uid"), header.index("sop class"), dimse_col)
        elif (
            len(header) >= 3
            and header[0].startswith("code")
            and header[1:3]
            == [
                "category",
                "description",
            ]
        ):
            self.read_status_table(table)
        elif header[:1] == ["dimse service"]:
            self.read_dimse_table(table)

    def read_sop_table(
        self, table: nodes.table, uid_col: int, keyword_col: int, dimse_col: int | None
    ) -> None:
        """Read SOP class rows; their services come from a DIMSE column (the generated docs'
        style) or the section title (the seed's style), else later from the DIMSE table."""
        titled = _dimse_in(_section_title(table))
        for row in _rows(table, nodes.tbody):
            if len(row.cells) <= max(uid_col, keyword_col):
                continue
            uid = plain_text(row.cells[uid_col])
            name = plain_text(row.cells[keyword_col])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns as well as answering
                valid = UID(uid).is_valid
            if not valid:
                self.problem(row.line, f"invalid UID {uid!r}")
            why = _keyword_fault(name)
            if why:
                known = registry_keyword(uid)
                hint = f" (pydicom's keyword for its UID is {known})" if known else ""
                self.problem(row.line, f"SOP class keyword {name!r} {why}{hint}")
            named: tuple[Dimse, ...] | None = (titled,) if titled else None
            if dimse_col is not None and dimse_col < len(row.cells):
                found = _DIMSE_NAME.findall(plain_text(row.cells[dimse_col]))
                named = tuple(dict.fromkeys(Dimse(found_name) for found_name in found))
            self.sop_rows.append((name, uid, named or None, row.line))

    def read_status_table(self, table: nodes.table) -> None:
        title = _section_title(table)
        dimse = _dimse_in(title) or self.previous_dimse()
        if dimse is None:
            self.problem(table.line or 1, f"cannot tell which DIMSE service {title!r} is for")
            return
        if title.lower().startswith("pynetdicom"):
            scope = Scope.IMPLEMENTATION
        elif re.fullmatch(r"[CN]-[A-Z-]+ Statuses", title):
            scope = Scope.GENERAL
        else:
            scope = Scope.SERVICE
        statuses: list[Status] = []
        for row in _rows(table, nodes.tbody):
            status = self.read_status(row)
            if status is None:
                continue
            other = next((o for o in statuses if _overlap(status, o)), None)
            if other is None:
                statuses.append(status)
                continue
            what = "repeats" if status.first == other.first else "overlaps"
            self.problem(
                row.line, f"{code_text(status)} {what} {code_text(other)} (line {other.line})"
            )
        self.tables.append(StatusTable(dimse, scope, title, tuple(statuses), table.line or 1))

    def read_status(self, row: _Row) -> Status | None:
        """The row as a ``Status``, or ``None`` (and a problem) when the model cannot hold it."""
        if len(row.cells) < 3:
            self.problem(row.line, "a status row needs a code, a category and a description")
            return None
        code = plain_text(row.cells[0])
        match = _CODE.fullmatch(code)
        if not match:
            self.problem(row.line, f"bad status code {code!r}: expected 0xNNNN or 0xNNNN to 0xNNNN")
            return None
        first = int(match.group(1), 16)
        last = int(match.group(2), 16) if match.group(2) else first
        if last < first:
            self.problem(row.line, f"range {code!r} ends before it starts")
            return None
        category = plain_text(row.cells[1])
        if category not in Category._value2member_map_:
            known = ", ".join(c.value for c in Category)
            self.problem(row.line, f"unknown category {category!r} (expected one of {known})")
            return None
        description = plain_text(row.cells[2])
        return Status(
            first, last, Category(category), description, rst_source(row.cells[2]), row.line
        )

    def previous_dimse(self) -> Dimse | None:
        return self.tables[-1].dimse if self.tables else None

    def read_dimse_table(self, table: nodes.table) -> None:
        group: list[str] = []
        services: list[Dimse] = []
        for row in _rows(table, nodes.tbody):
            if len(row.cells) == 1:
                if services:
                    self.dimse_table.append((group, services))
                    group, services = [], []
                group.append(_squash(plain_text(row.cells[0])))
                continue
            name = plain_text(row.cells[0])
            match = _DIMSE_NAME.match(name)
            if match:
                services.append(Dimse(match.group(1)))
            else:
                self.problem(row.line, f"unknown DIMSE service {name!r}")
        self.dimse_table.append((group, services))

    def sop_classes(self) -> tuple[SOPClass, ...]:
        """Give each SOP class its services: from its own table's title (the seed's style), else
        from the DIMSE Services table's spanning row that names it, else from a keyword ending
        such as ``...Find``, else every service the page lists."""
        everything: dict[Dimse, None] = {}
        for _, services in self.dimse_table:
            everything.update(dict.fromkeys(services))
        if not everything:
            everything = dict.fromkeys(t.dimse for t in self.tables)
        result: list[SOPClass] = []
        seen: dict[str, int] = {}
        for name, uid, dimse, line in self.sop_rows:
            for value in (name, uid):
                if value and value in seen:
                    self.problem(line, f"{value} is listed twice (first on line {seen[value]})")
                seen.setdefault(value, line)
            if dimse is not None:
                given = dimse
            else:
                named = [svc for group, svc in self.dimse_table if _squash(name) in group]
                given = tuple(dict.fromkeys(d for svc in named for d in svc))
                by_suffix = [d for end, d in _KEYWORD_ENDINGS if name.endswith(end)]
                if not given and by_suffix and by_suffix[0] in everything:
                    given = (by_suffix[0],)
                given = given or tuple(everything)
            result.append(SOPClass(name, uid, given, line))
        return tuple(result)


def _keyword_fault(name: str) -> str | None:
    """Why ``name`` cannot be a module-level Python name that means itself, or None."""
    if not name.isidentifier():
        return "is not a Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a reserved word"
    if unicodedata.normalize("NFKC", name) != name:
        return "is not in NFKC form, so Python would read it as another name"
    return None


def registry_keyword(uid: str) -> str:
    """pydicom's keyword for ``uid``, or ``""`` when its registry does not know the UID."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about odd UIDs as well as answering
        return UID(uid).keyword


def _overlap(one: Status, other: Status) -> bool:
    return one.first <= other.last and other.first <= one.last
