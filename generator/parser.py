"""Reads a service-class page into the model: the only module that knows docutils.

Tables are classified by their header row and the titles of the sections around them, never by
scraping the page text. Everything else the page shows as text is its prose: each text block
(paragraph, list item, literal block, ...) with the title of its section, in document order, its
inline markup kept as RST the generated docs write back; each link of the prose and of the status
descriptions keeps the text it stands in. Sphinx roles and directives docutils does not know are registered as inert
text first, so pynetdicom's own pages (``:dcm:``, ``:class:``, ``.. currentmodule::``) parse
cleanly, and every docutils complaint of level WARNING or above becomes a ``SpecError`` with the
page's path and line.

Problems in rows (a bad code, a keyword that is not an identifier, …) are collected rather than
raised at the first, so one run names them all: ``read_page`` raises them together, while
``examine_page`` keeps every row the model can hold and returns the problems beside the page, for
``lint`` and ``audit``, which report and carry on.

Page text is untrusted (pages arrive in pull requests): file insertion and raw output are off,
control characters are refused, every link target must be a one-line web URL, a table cell must
read as paragraphs of inline text (a list, a doctest or a comment in a cell is refused, never
read as something else), and no docutils message ever becomes page text.

Comments are not page text and are ignored, but for those that start with "servicegen": an
alias comment (``.. servicegen: alias C-MOVE 0xA801 NAME``) keeps an old enum member name, and
any other is a problem, so a mistyped one never silently does nothing.
"""

from __future__ import annotations

import bisect
import builtins
import dataclasses
import hashlib
import keyword
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import docutils.frontend
import docutils.parsers.rst
import docutils.statemachine
import docutils.utils
from docutils import nodes
from docutils.parsers.rst import Directive, directives, roles
from docutils.parsers.rst.languages import en
from docutils.utils import punctuation_chars
from pydicom.uid import UID

from generator.errors import Problem, SpecError
from generator.keywords import expected_keyword
from generator.model import (
    Alias,
    Category,
    Dimse,
    Link,
    Page,
    Paragraph,
    Scope,
    SOPClass,
    Status,
    StatusTable,
    alias_faults,
    code_text,
)
from generator.pages import page_paths
from generator.rst_text import Discard, embedded_uri, escape_inline, is_web_url

DICOM_BASE = "https://dicom.nema.org/medical/dicom/current/output/chtml/"
"""Where pynetdicom's ``:dcm:`` role points (its Sphinx ``extlinks`` setting)."""

_CODE = re.compile(r"0x([0-9A-Fa-f]{4})(?:\s+to\s+0x([0-9A-Fa-f]{4}))?")
_DIMSE_NAME = re.compile(
    r"\b([CN]-(?:ECHO|STORE|FIND|GET|MOVE|EVENT-REPORT|SET|ACTION|CREATE|DELETE))\b", re.IGNORECASE
)
"""A DIMSE service named in any case (``c-get``): read as its upper-case name, never taken for
no service, which would give the table to the service of the one before it."""
_QR_SUFFIX = {"(find)": Dimse.C_FIND, "(get)": Dimse.C_GET, "(move)": Dimse.C_MOVE}
_ROLE_USE = re.compile(r"(?<![\w`\\]):((?:[A-Za-z][\w+.-]*:)?[A-Za-z][\w+.-]*):`")
_DIRECTIVE_USE = re.compile(r"^\s*\.\.\s+([A-Za-z][\w:+.-]*)::", re.MULTILINE)
_LEAD = re.compile(r"^[~!]")
_COMMENT_MARK = "servicegen"
_SERVICEGEN_COMMENT = re.compile(rf"{_COMMENT_MARK}\b", re.IGNORECASE)
"""A comment meant for servicegen: any that starts with the word, so a typo is an error."""
_ALIAS_FORM = f"'.. {_COMMENT_MARK}: alias DIMSE 0xNNNN NAME'"
_ALIAS_CODE = re.compile(r"0x([0-9A-Fa-f]{4})")
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
    for path in page_paths(spec_dir):
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


_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Control characters (tab, LF and CR aside), line and paragraph separators (docutils would
break a line where an editor shows none) and lone surrogates: no page needs them, docutils
drops or mangles several (NUL marks its escapes), and they would reach terminals and code."""


def examine_text(text: str, source: str) -> Reading:
    """Parse RST ``text`` (read from ``source``) leniently, as ``examine_page`` does."""
    problems = [
        Problem(
            source,
            text.count("\n", 0, found.start()) + 1,
            f"character {found[0]!r} is not allowed in a page",
        )
        for found in _FORBIDDEN.finditer(text)
    ]
    if problems:
        raise SpecError.of(_first_per_line(problems))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    body = text.removeprefix("\ufeff")  # a byte order mark is a signature, not the title's text
    try:
        document = _doctree(body, source)
        lines = docutils.statemachine.string2lines(body)
        _refuse_long_words(document, source, lines)
        reader = _PageReader(source)
        page = reader.read(document, lines)
    except RecursionError:
        raise SpecError(
            source, _deepest_line(body), "markup nested too deeply for docutils to read"
        ) from None
    page = dataclasses.replace(page, sha256=digest)
    return Reading(page, tuple(sorted(reader.problems, key=lambda p: p.line)))


LONGEST_WORD = 200
"""The most characters a page's text may hold without a space: pynetdicom's longest word is 66
(a storage SOP class keyword). docutils' HTML writer takes time quadratic in a literal's
longest word, and a description's word becomes an enum member name, so a longer run would let
a page make every command slow."""
_LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")


def _refuse_long_words(document: nodes.document, source: str, lines: Sequence[str]) -> None:
    """Raise one ``SpecError`` naming the line of every word longer than ``LONGEST_WORD`` in
    any text block (prose, a title, a cell, a comment), as docutils read it: escaped spaces and
    markup inside a word are no break in it. ``lines`` are the page's, to find a comment's."""
    problems: list[Problem] = []
    openings: dict[str, list[int]] | None = None
    for block in document.findall(nodes.TextElement):
        if isinstance(block, nodes.Inline):
            continue
        text = block.astext()
        for found in _LONG_WORD.finditer(text):
            if isinstance(block, nodes.comment):
                openings = _comment_openings(lines) if openings is None else openings
                line = _comment_line(block, openings)
            else:
                line = _line_of(block)
            problems.append(
                Problem(
                    source,
                    line + text.count("\n", 0, found.start()),
                    f"{len(found[0]):,} characters without a space; a page allows at most "
                    f"{LONGEST_WORD} (write a long URL as a link, `text <https://...>`__)",
                )
            )
    if problems:
        raise SpecError.of(_first_per_line(problems))


def _first_per_line(problems: list[Problem]) -> list[Problem]:
    """One problem per line (the first), in line order: one mistake, one message."""
    seen: dict[int, Problem] = {}
    for problem in problems:
        seen.setdefault(problem.line, problem)
    return [seen[line] for line in sorted(seen)]


def _deepest_line(text: str) -> int:
    """The line that nests deepest, by indentation and leading list or quote markers: where a
    page too deep for docutils' recursion most likely is."""
    depth = [len(line) - len(line.lstrip(" -*+>|")) for line in text.splitlines()]
    return depth.index(max(depth)) + 1 if depth else 1


def _doctree(text: str, source: str) -> nodes.document:
    """docutils' doctree of a page, with no file insertion and no raw output; every problem of
    level WARNING or above raises, all of them in one ``SpecError``, and lesser messages are
    removed so that their text can never be read as the page's."""
    _register_inert(text)
    settings = docutils.frontend.get_default_settings(docutils.parsers.rst.Parser)
    settings.report_level = 5
    settings.halt_level = 5
    settings.warning_stream = Discard()
    settings.file_insertion_enabled = False
    settings.raw_enabled = False
    settings.line_length_limit = 1_000_000
    document = docutils.utils.new_document(source, settings)
    problems: list[Problem] = []

    def observe(message: nodes.system_message) -> None:
        if message["level"] >= 2:
            detail = message.children[0].astext() if message.children else message.astext()
            problems.append(Problem(source, message.get("line") or 1, " ".join(detail.split())))

    document.reporter.attach_observer(observe)
    try:
        docutils.parsers.rst.Parser().parse(text, document)
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - docutils' own bug on odd input: refuse, no traceback
        raise SpecError(source, 1, f"docutils cannot read the page: {exc!r}") from None
    if problems:
        raise SpecError.of(_first_per_line(problems))
    for message in list(document.findall(nodes.system_message)):
        message.parent.remove(message)
    return document


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


_TABLE_START = re.compile(r"\s*(?:\+(?:[-=]+\+)+|=+(?:\s+=+)+|\.\.\s+[\w-]*table::.*)\s*")
"""A line that starts a grid table, a simple table or a table directive."""


class _InertDirective(Directive):
    """A Sphinx directive read as plain text: its content becomes a paragraph and options are
    kept out of the way. A table in it is an error: flattened to text, its rows would be lost."""

    optional_arguments = 100
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[nodes.Node]:
        for line, text in enumerate(self.content, self.content_offset + 1):
            if _TABLE_START.fullmatch(text):
                return [
                    self.state_machine.reporter.error(
                        f"a table inside '.. {self.name}::', which servicegen reads as plain "
                        "text: move the table out of the directive",
                        line=line,
                    )
                ]
        text = " ".join(" ".join(self.content).split())
        return [nodes.paragraph(text, text)] if text else []


class _AnyOption(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return directives.unchanged


_InertDirective.option_spec = _AnyOption()


class _MistypedComment(Directive):
    """``.. servicegen:: alias ...``: a directive Sphinx would fail on, not the comment it means,
    which an inert directive would silently ignore."""

    optional_arguments = 100
    final_argument_whitespace = True
    has_content = True

    def run(self) -> list[nodes.Node]:
        raise self.error(
            f"'.. {self.name}::' is a directive; a servicegen comment has one colon: {_ALIAS_FORM}"
        )


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
        mistyped = name.lower() == _COMMENT_MARK
        directives.register_directive(name, _MistypedComment if mistyped else _InertDirective)


def plain_text(node: nodes.Node) -> str:
    """A node's text with markup dropped and whitespace collapsed."""
    return " ".join(node.astext().split())


def rst_source(node: nodes.Element) -> str:
    """A normalised RST source for a cell: re-serialised inline markup, whitespace collapsed."""
    parts: list[str] = []
    for para in node.findall(nodes.paragraph):
        parts.append(_inline_rst(para, first=True))
    return " ".join(" ".join(parts).split())


_MAY_PRECEDE = re.compile(rf"[\s{punctuation_chars.openers}{punctuation_chars.delimiters}]")
_MAY_FOLLOW = re.compile(
    rf"[\s\\{punctuation_chars.closing_delimiters}{punctuation_chars.delimiters}"
    rf"{punctuation_chars.closers}]"
)
"""What may stand right before and right after inline markup for RST to read it as markup (a
backslash: the next character is escaped, which docutils allows after markup)."""


def _inline_rst(node: nodes.Element, *, first: bool) -> str:
    """``node``'s inline content as RST that reads back as the same text and markup. Markup
    that touches a word (``H\\ *2*\\ O``) is set apart with an escaped space, which RST drops."""
    out = ""
    after_markup = False
    for child in node.children:
        markup = True
        if isinstance(child, nodes.Text):
            rst, markup = escape_inline(child.astext(), at_start=first and not out), False
        elif isinstance(child, nodes.literal) and not _literal_fault(child.astext()):
            rst = f"``{child.astext()}``"
        elif isinstance(child, nodes.strong):
            rst = f"**{_inline_rst(child, first=False)}**"
        elif isinstance(child, nodes.emphasis):
            rst = f"*{_inline_rst(child, first=False)}*"
        elif isinstance(child, nodes.reference) and child.get("refuri") and child.astext().strip():
            label = escape_inline(child.astext(), at_start=False)
            rst = f"`{label} <{embedded_uri(child['refuri'])}>`__"
        elif isinstance(child, nodes.Element):  # a role read as text, a literal RST cannot
            # write back (refused in a table cell), a link with no text: its text
            rst, markup = _inline_rst(child, first=first and not out), False
        else:
            continue
        if (
            rst
            and out
            and (
                (markup and not _MAY_PRECEDE.fullmatch(out[-1]))
                or (after_markup and not _MAY_FOLLOW.fullmatch(rst[0]))
            )
        ):
            out += "\\ "
        out += rst
        after_markup = markup if rst else after_markup
    return out


def _literal_fault(text: str) -> str | None:
    """Why an inline literal's text cannot be written back as ````text````, or None."""
    if not text.strip() or text != text.strip() or "``" in text or "`" in (text[0], text[-1]):
        return f"inline literal {text!r} cannot be written back as ``...``"
    return None


_NOT_PROSE = (nodes.Invisible, nodes.raw, nodes.system_message, nodes.table, nodes.label)
"""What a page does not show as text of its own (comments, targets, substitution definitions,
footnote labels), or shows as something else than prose (tables, read on their own)."""


def _links_in(node: nodes.Element) -> Iterator[tuple[str, str]]:
    """The text and target of every link in ``node`` that the generated RST writes back as one:
    a link with no text is read as text."""
    for ref in node.findall(nodes.reference):
        if ref.get("refuri") and ref.astext().strip():
            yield plain_text(ref), ref["refuri"]


def _prose_links(prose: Sequence[tuple[Paragraph, nodes.TextElement]]) -> Iterator[Link]:
    for paragraph, block in prose:
        for text, url in _links_in(block):
            yield Link(text, url, paragraph.section, paragraph.text)


_ELSEWHERE = (
    nodes.substitution_reference,
    nodes.footnote_reference,
    nodes.citation_reference,
)
"""Inline markup whose text stands for something defined elsewhere on the page (or in a Sphinx
project): its text alone would not be what a reader of the page sees. (An inline image is a
substitution, which docutils leaves unresolved here.)"""


def _from_elsewhere(node: nodes.Element) -> str | None:
    """``node``'s kind ("a footnote reference") if its text or target is defined elsewhere: also
    a reference to a named target (``Foo_``, ``Foo__``), which would lose its underscores and
    its target. None for any other node."""
    if not isinstance(node, _ELSEWHERE) and not (
        isinstance(node, nodes.reference) and not node.get("refuri")
    ):
        return None
    return _kind_of(node)


def _cell_fault(entry: nodes.Element) -> str | None:
    """Why a table cell cannot be read as plain inline text, or None: anything but paragraphs
    (a list, a line block, a doctest, a comment, a literal block, a nested table) would be read
    as something else than the text the author wrote, and so would markup defined elsewhere
    (``_from_elsewhere``)."""
    for child in entry.children:
        kind = None if isinstance(child, nodes.paragraph) else _kind_of(child)
        for inline in child.findall(nodes.Element):
            kind = _from_elsewhere(inline) or kind
            if isinstance(inline, nodes.literal) and _literal_fault(inline.astext()):
                return _literal_fault(inline.astext())
        if kind is not None:
            return (
                f"{kind} in a table cell: write the cell as plain text (a backslash escapes a "
                "markup character)"
            )
    return None


def _kind_of(node: nodes.Node) -> str:
    """ "a bullet list", "an image": how a message names ``node``."""
    kind = type(node).__name__.replace("_", " ")
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _outside_tables(node: nodes.Element) -> Iterator[nodes.Element]:
    """Every element below ``node``, in document order, but those in tables."""
    for child in node.children:
        if isinstance(child, nodes.Element) and not isinstance(child, nodes.table):
            yield child
            yield from _outside_tables(child)


@dataclass
class _Row:
    """A table row as a grid: one cell per column, a cell that spans columns or rows standing in
    every place it covers, so no value is lost or shifted by a span."""

    cells: list[nodes.entry]
    line: int


def _rows(table: nodes.table, part: type[nodes.Element]) -> list[_Row]:
    """The rows of ``table``'s head or body (``part``) as grids. A place no cell covers (only an
    irregular table has one) is an empty cell, so later checks report it."""
    rows: list[_Row] = []
    for tgroup in table.children:
        if not isinstance(tgroup, nodes.tgroup):
            continue
        width = int(tgroup.get("cols", 0))
        for group in tgroup.children:
            if not isinstance(group, part):
                continue
            carried: dict[int, tuple[nodes.entry, int]] = {}
            for row in group.children:
                if isinstance(row, nodes.row):
                    line = rows[-1].line if rows else _table_line(table)
                    rows.append(_grid_row(row, width, carried, line))
    return rows


def _grid_row(
    row: nodes.row, width: int, carried: dict[int, tuple[nodes.entry, int]], previous: int
) -> _Row:
    """One row as a grid; ``carried`` holds the cells of earlier rows that span into it, and
    ``previous`` is the line of a row with no text of its own."""
    cells: list[nodes.entry | None] = [None] * width
    for column, (entry, left) in list(carried.items()):
        cells[column] = entry
        if left > 1:
            carried[column] = (entry, left - 1)
        else:
            del carried[column]
    own = [entry for entry in row.children if isinstance(entry, nodes.entry)]
    column = 0
    for entry in own:
        while column < width and cells[column] is not None:
            column += 1
        for place in range(column, min(width, column + int(entry.get("morecols", 0)) + 1)):
            cells[place] = entry
            if entry.get("morerows"):
                carried[place] = (entry, int(entry["morerows"]))
            column = place + 1
    lines = [p.line for entry in own for p in entry.findall(nodes.paragraph) if p.line]
    line = min(lines) if lines else previous
    return _Row([cell if cell is not None else nodes.entry() for cell in cells], line)


def _header(table: nodes.table) -> list[str]:
    for row in _rows(table, nodes.thead):
        return [plain_text(cell).lower() for cell in row.cells]
    return []


_HEADERS = {
    "a SOP class table": "'UID | SOP Class'",
    "a status table": "'Code (hex) | Category | Description'",
}
_UID_LIKE = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")


def _lookalike(table: nodes.table, header: list[str]) -> str | None:
    """What ``table``, whose header servicegen does not read, looks like: a status table if its
    header (else its first row) names a code or a category or a cell holds a status code, a SOP
    class table if the header names a UID or a cell holds one. None for any other table (the
    pages' ``SOP Class | Usage SCU/SCP`` tables)."""
    rows = [[plain_text(cell).lower() for cell in row.cells] for row in _rows(table, nodes.tbody)]
    names = header or (rows[0] if rows else [])
    values = [cell for row in rows for cell in row]
    if any(n.startswith("code") or n == "category" for n in names) or any(
        _CODE.fullmatch(v) for v in values
    ):
        return "a status table"
    if any("uid" in n.split() for n in names) or any(_UID_LIKE.fullmatch(v) for v in values):
        return "a SOP class table"
    return None


_TABLE_DIRECTIVE = re.compile(r"\s*\.\.\s+[\w-]*table::")


def _table_line(table: nodes.table, lines: Sequence[str] = ()) -> int:
    """The line of ``table``'s top border. docutils 0.23 records it; 0.22 leaves it unset (and
    numbers a cell's paragraphs from a line further down), so there it is the first line of the
    block of non-blank lines that holds the table's first text, and servicegen reads the same
    line whichever docutils it runs with."""
    if table.line:
        return int(table.line)
    found = [p.line for p in table.findall(nodes.paragraph) if p.line]
    if not found:
        return 1
    if not lines:
        return max(1, min(found) - 1)
    line = min(min(found), len(lines))
    while line > 1 and lines[line - 2].strip():
        line -= 1
    # A table directive (list-table, csv-table): its options, then a blank line, then its rows.
    above = line - 2
    while above >= 1 and lines[above - 1].strip() and lines[above - 1][:1].isspace():
        above -= 1
    if above >= 1 and _TABLE_DIRECTIVE.match(lines[above - 1]):
        line = above
    return line


def _line_of(node: nodes.Node | None) -> int:
    """The line of ``node``, or of the nearest enclosing node that knows its line. docutils
    gives a section title the line of its underline; its text is on the line above."""
    while node is not None:
        if node.line:
            section_title = isinstance(node, nodes.title) and isinstance(node.parent, nodes.section)
            return int(node.line) - section_title
        node = node.parent
    return 1


_OPENING = re.compile(r"\s*\.\.\s+(.*?)\s*")


def _comment_openings(lines: Sequence[str]) -> dict[str, list[int]]:
    """Line numbers, ascending, of every line that could open a comment, by the text after its
    ``..``: built once per page, so finding each comment's line stays linear in the page."""
    openings: dict[str, list[int]] = {}
    for number, text in enumerate(lines, 1):
        match = _OPENING.fullmatch(text)
        if match:
            openings.setdefault(match[1], []).append(number)
    return openings


def _comment_line(comment: nodes.comment, openings: Mapping[str, list[int]]) -> int:
    """The line of a comment's ``..``. docutils gives a comment the line its block ends on (or
    the blank line after it), and none at all inside other markup: the nearest line at or
    before that which opens a comment with the same first line, else the first such line from
    where the enclosing markup starts."""
    found = openings.get(comment.astext().split("\n", 1)[0].strip(), [])
    if comment.line:
        at = bisect.bisect_right(found, comment.line)
        return found[at - 1] if at else comment.line
    start = _line_of(comment.parent)
    at = bisect.bisect_left(found, start)
    return found[at] if at < len(found) else start


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
        return Dimse(match.group(1).upper())
    lowered = title.lower()
    for suffix, dimse in _QR_SUFFIX.items():
        if suffix in lowered:
            return dimse
    return None


def _squash(text: str) -> str:
    squashed = re.sub(r"[^a-z0-9]", "", text.lower())
    return squashed.removesuffix("sopclasses").removesuffix("sopclass")


class _PageReader:
    """Walks one doctree in document order, collecting SOP classes, status tables, prose and
    links."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sop_rows: list[tuple[str, str, tuple[Dimse, ...] | None, int]] = []
        self.tables: list[StatusTable] = []
        self.dimse_table: list[tuple[list[str], list[Dimse]]] = []
        self.problems: list[Problem] = []
        # Per DIMSE service, the range row covering each code, over all its tables so far.
        self.ranges: dict[Dimse, dict[int, Status]] = {}
        self.description_links: list[Link] = []
        self.lines: Sequence[str] = ()

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.source, line, message))

    def read(self, document: nodes.document, lines: Sequence[str]) -> Page:
        """The page; ``lines`` are the source's lines as docutils counts them."""
        self.lines = lines
        self.check_links(document)
        self.check_elsewhere(document)
        title = ""
        for section in document.findall(nodes.section):
            title = plain_text(section[0])
            break
        for table in document.findall(nodes.table):
            self.classify(table)
        if not title and (self.sop_rows or self.tables):
            self.problem(1, "the page has no title: start it with a section title")
        prose = list(self.read_prose(document, title, item=False))
        page = Page(
            title=title,
            source=self.source,
            sop_classes=self.sop_classes(),
            status_tables=tuple(self.tables),
            prose=tuple(paragraph for paragraph, _ in prose),
            links=tuple(dict.fromkeys([*_prose_links(prose), *self.description_links])),
            aliases=tuple(self.read_comments(document, lines)),
        )
        faults = alias_faults(page)
        for alias, why in faults:
            self.problem(alias.line, why)
        bad = {alias for alias, _ in faults}
        return dataclasses.replace(page, aliases=tuple(a for a in page.aliases if a not in bad))

    def read_prose(
        self, node: nodes.Element, section: str, *, item: bool
    ) -> Iterator[tuple[Paragraph, nodes.TextElement]]:
        """Every text block of the page outside its tables and section titles, in document order,
        with the block it was read from: a paragraph, a literal block, a line of a line block, a
        term, a rubric, the title of a topic or an admonition, ... (each read as a paragraph, its
        whitespace collapsed). Comments, targets, substitution definitions and footnote labels are
        not shown on a page, so they are not prose; ``section`` is the title of the section
        ``node`` is in (the page title for text before it)."""
        for index, child in enumerate(node.children):
            if isinstance(child, nodes.section):
                title = child.children[0] if child.children else None
                inner = plain_text(title) if isinstance(title, nodes.title) else section
                yield from self.read_prose(child, inner, item=False)
            elif isinstance(child, _NOT_PROSE) or (
                isinstance(child, nodes.title) and isinstance(node, nodes.section)
            ):
                continue
            elif isinstance(child, nodes.TextElement) and not isinstance(child, nodes.Inline):
                text = plain_text(child)
                rst = " ".join(_inline_rst(child, first=True).split())
                if text and rst:
                    opens = item and index == 0
                    yield Paragraph(section, text, rst, opens, _line_of(child)), child
            elif isinstance(child, nodes.Element):
                yield from self.read_prose(child, section, item=isinstance(child, nodes.list_item))

    def read_comments(self, document: nodes.document, lines: Sequence[str]) -> Iterator[Alias]:
        """The aliases of the page's ``.. servicegen: alias DIMSE 0xNNNN NAME`` comments, which
        Sphinx and docutils show nowhere. Any other comment that starts with "servicegen" is a
        problem, so a mistyped one never silently does nothing; other comments are ignored."""
        openings: dict[str, list[int]] | None = None
        for comment in document.findall(nodes.comment):
            text = comment.astext()
            if not _SERVICEGEN_COMMENT.match(text):
                continue
            openings = _comment_openings(lines) if openings is None else openings
            line = _comment_line(comment, openings)
            words = text.split()
            if words[0] != f"{_COMMENT_MARK}:" or len(words) < 2:
                self.problem(line, f"a servicegen comment reads {_ALIAS_FORM}")
            elif words[1] != "alias":
                self.problem(line, f"unknown servicegen comment {words[1]!r}: {_ALIAS_FORM}")
            elif len(words) != 5:
                self.problem(line, f"a servicegen alias has three words after it: {_ALIAS_FORM}")
            elif words[2] not in Dimse._value2member_map_:
                known = ", ".join(d.value for d in Dimse)
                self.problem(line, f"unknown DIMSE service {words[2]!r} (expected one of {known})")
            elif (code := _ALIAS_CODE.fullmatch(words[3])) is None:
                self.problem(line, f"bad status code {words[3]!r}: expected 0xNNNN")
            else:
                yield Alias(Dimse(words[2]), int(code[1], 16), words[4], line)

    def check_links(self, document: nodes.document) -> None:
        """Refuse every link or link target whose target is not a one-line web URL
        (``javascript:``, a target with a newline and a directive after it, ...); a link's text
        stays, as text."""
        refused: set[tuple[int, str]] = set()
        for ref in [*document.findall(nodes.reference), *document.findall(nodes.target)]:
            uri = ref.get("refuri")
            if uri is None or is_web_url(uri):
                continue
            if (_line_of(ref), uri) not in refused:  # `text <uri>`_ is a link and a target
                refused.add((_line_of(ref), uri))
                self.problem(
                    _line_of(ref), f"link target {uri!r} is not a one-line http(s) or mailto URL"
                )
            if isinstance(ref, nodes.reference):
                ref.replace_self(ref.children or [nodes.Text("")])

    def check_elsewhere(self, document: nodes.document) -> None:
        """Refuse, in prose and titles, markup whose text or target is defined elsewhere
        (``_from_elsewhere``): servicegen resolves none, so its text would be shown flattened
        or lost. Cells of the tables servicegen reads are refused by row (``_cell_fault``)."""
        for node in _outside_tables(document):
            kind = _from_elsewhere(node)
            if kind:
                self.problem(
                    _line_of(node),
                    f"{kind}: servicegen reads no text or target defined elsewhere; write the "
                    "text, or the link as `text <https://...>`__, in its place",
                )

    def cells(self, row: _Row, *columns: int) -> list[str] | None:
        """The plain text of ``row``'s cells in ``columns``, or None (and a problem) when one
        cannot be read as text or one cell spans two of them."""
        entries = [row.cells[column] for column in columns]
        for entry in dict.fromkeys(entries):
            fault = _cell_fault(entry)
            if fault:
                self.problem(row.line, fault)
                return None
        if len({id(entry) for entry in entries}) < len(entries):
            self.problem(row.line, "one cell spans two columns that hold different values")
            return None
        return [plain_text(entry) for entry in entries]

    def classify(self, table: nodes.table) -> None:
        """Read ``table`` by its header; refuse one that looks like a SOP class or status table
        (``_lookalike``) but whose header does not say so, which would otherwise be ignored."""
        header = _header(table)
        if "uid" in header and "sop class" in header:
            dimse_col = next((i for i, h in enumerate(header) if h.startswith("dimse")), None)
            self.read_sop_table(table, header.index("uid"), header.index("sop class"), dimse_col)
        elif (
            len(header) >= 3
            and header[0].startswith("code")
            and header[1:3] == ["category", "description"]
        ):
            self.read_status_table(table)
        elif header[:1] == ["dimse service"]:
            self.read_dimse_table(table)
        elif kind := _lookalike(table, header):
            self.problem(
                _table_line(table, self.lines),
                f"this table looks like {kind} but its header row is not {_HEADERS[kind]} "
                "(over a '===' line), so it would be ignored",
            )

    def read_sop_table(
        self, table: nodes.table, uid_col: int, keyword_col: int, dimse_col: int | None
    ) -> None:
        """Read SOP class rows; their services come from a DIMSE column (the generated docs'
        style) or the section title (the seed's style), else later from the DIMSE table."""
        titled = _dimse_in(_section_title(table))
        columns = (uid_col, keyword_col) + ((dimse_col,) if dimse_col is not None else ())
        for row in _rows(table, nodes.tbody):
            texts = self.cells(row, *columns)
            if texts is None:
                continue
            uid, name = texts[0], texts[1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns as well as answering
                valid = UID(uid).is_valid
            if not valid:
                self.problem(row.line, f"invalid UID {uid!r}")
            why = keyword_fault(name)
            if why:
                known = expected_keyword(uid)
                hint = f" ({known.source}'s keyword for its UID is {known.name})" if known else ""
                self.problem(row.line, f"SOP class keyword {name!r} {why}{hint}")
            named: tuple[Dimse, ...] | None = (titled,) if titled else None
            if dimse_col is not None:
                found = _DIMSE_NAME.findall(texts[2])
                named = tuple(dict.fromkeys(Dimse(found_name.upper()) for found_name in found))
            self.sop_rows.append((name, uid, named or None, row.line))

    def read_status_table(self, table: nodes.table) -> None:
        title = _section_title(table)
        if not title:
            self.problem(
                _table_line(table, self.lines), "a status table needs a section title of its own"
            )
            return
        dimse = _dimse_in(title) or self.previous_dimse()
        if dimse is None:
            self.problem(
                _table_line(table, self.lines), f"cannot tell which DIMSE service {title!r} is for"
            )
            return
        if title.lower().startswith("pynetdicom"):
            scope = Scope.IMPLEMENTATION
        elif re.fullmatch(r"[CN]-[A-Z-]+ Statuses", title, re.IGNORECASE):
            scope = Scope.GENERAL
        else:
            scope = Scope.SERVICE
        statuses: list[Status] = []
        # Accepted rows never overlap, so together they cover at most the 65,536 codes: marking
        # each code they cover keeps the check linear in rows (a pair-wise one was quadratic).
        taken = bytearray(0x10000)
        owner: dict[int, Status] = {}
        for row in _rows(table, nodes.tbody):
            status = self.read_status(row)
            if status is None:
                continue
            clash = taken.find(1, status.first, status.last + 1)
            if clash < 0:
                statuses.append(status)
                self.description_links.extend(
                    Link(text, url, title, status.description)
                    for text, url in _links_in(row.cells[2])
                )
                taken[status.first : status.last + 1] = b"\x01" * (status.last - status.first + 1)
                owner.update(dict.fromkeys(range(status.first, status.last + 1), status))
                continue
            other = owner[clash]
            what = "repeats" if status.first == other.first else "overlaps"
            self.problem(
                row.line, f"{code_text(status)} {what} {code_text(other)} (line {other.line})"
            )
        self.check_ranges(dimse, statuses)
        self.tables.append(
            StatusTable(dimse, scope, title, tuple(statuses), _table_line(table, self.lines))
        )

    def check_ranges(self, dimse: Dimse, statuses: list[Status]) -> None:
        """Refuse a range that overlaps a range of an earlier table of the service without
        repeating it exactly: which row a code between them belongs to has no answer the status
        table could give (a later exact range replaces an earlier one, and an exact code wins
        over a range, as in pynetdicom's merged dicts)."""
        covered = self.ranges.setdefault(dimse, {})
        accepted = []
        for status in statuses:
            if not status.is_range:
                continue
            other = next(
                (covered[code] for code in range(status.first, status.last + 1) if code in covered),
                None,
            )
            if other is None or (other.first, other.last) == (status.first, status.last):
                accepted.append(status)
            else:
                self.problem(
                    status.line,
                    f"{code_text(status)} overlaps {code_text(other)} of an earlier "
                    f"{dimse.value} table (line {other.line}); a range may repeat another "
                    "exactly, or stay apart from it",
                )
        for status in accepted:
            covered.update(dict.fromkeys(range(status.first, status.last + 1), status))

    def read_status(self, row: _Row) -> Status | None:
        """The row as a ``Status``, or ``None`` (and a problem) when the model cannot hold it."""
        texts = self.cells(row, 0, 1, 2)
        if texts is None:
            return None
        code, category, description = texts
        match = _CODE.fullmatch(code)
        if not match:
            self.problem(row.line, f"bad status code {code!r}: expected 0xNNNN or 0xNNNN to 0xNNNN")
            return None
        first = int(match.group(1), 16)
        last = int(match.group(2), 16) if match.group(2) else first
        if last < first:
            self.problem(row.line, f"range {code!r} ends before it starts")
            return None
        if category not in Category._value2member_map_:
            known = ", ".join(c.value for c in Category)
            self.problem(row.line, f"unknown category {category!r} (expected one of {known})")
            return None
        return Status(
            first, last, Category(category), description, rst_source(row.cells[2]), row.line
        )

    def previous_dimse(self) -> Dimse | None:
        return self.tables[-1].dimse if self.tables else None

    def read_dimse_table(self, table: nodes.table) -> None:
        """Read a ``DIMSE Service`` table: a row that is one cell across the table names a group
        of SOP classes, the rows under it their services."""
        group: list[str] = []
        services: list[Dimse] = []
        for row in _rows(table, nodes.tbody):
            texts = self.cells(row, 0)
            if texts is None:
                continue
            if len({id(cell) for cell in row.cells}) == 1 and len(row.cells) > 1:
                if services:
                    self.dimse_table.append((group, services))
                    group, services = [], []
                group.append(_squash(texts[0]))
                continue
            match = _DIMSE_NAME.match(texts[0])
            if match:
                services.append(Dimse(match.group(1).upper()))
            else:
                self.problem(row.line, f"unknown DIMSE service {texts[0]!r}")
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


def keyword_fault(name: str) -> str | None:
    """Why ``name`` cannot be a module-level Python name that means itself, or None. (Names the
    generated module itself uses are refused when it is rendered: the template knows them.)"""
    if not name.isidentifier():
        return "is not a Python identifier"
    if not name.isascii():  # a homoglyph (Cyrillic 'а'), or a name Python reads as another
        return "is not ASCII, as every DICOM keyword is"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a reserved word"
    if name.startswith("_"):
        return "starts with '_', which Python and the generated package keep for themselves"
    if name in vars(builtins):
        return "is a Python builtin, which `from module import *` would hide"
    return None
