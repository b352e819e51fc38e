"""Properties over random pages: what holds for every valid page, and for every broken one.

A page is drawn as a model first (title, SOP classes, status tables with exact codes and ranges,
free text with unicode, quotes, backslashes and RST markup characters) and then written as RST:
grid tables (cells wrapped over several lines) or list-tables, every markup character escaped,
so the text the page means is known exactly. Then:

- the generated module compiles, passes ``mypy --strict`` (many pages in one package, one run),
  and answers exactly the page's values;
- spec text reaches the module only as string constants: with the same page's texts replaced by
  tame ones, the module's AST is the same once string constants and enum member names (which
  are derived from descriptions) are blanked;
- a corrupted page is reported as ``servicegen: path:line: message`` lines, exit status 2,
  never a traceback.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import itertools
import keyword
import re
import string
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from docutils.utils import column_width
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from generator import render, writer
from generator.cli import main
from generator.model import Category, Dimse
from generator.parser import parse_page

from .conftest import ROOT

RESERVED = {
    # Names a generated module defines or imports: a SOP class keyword equal to one of them
    # would shadow it (the parser does not reject that yet), so pages here avoid them.
    "annotations",
    "Callable",
    "Iterable",
    "Iterator",
    "Mapping",
    "Sequence",
    "IntEnum",
    "MappingProxyType",
    "Any",
    "Protocol",
    "Dataset",
    "UID",
    "evt",
    "Event",
    "StatusTable",
    "annex_c_category",
    "SOP_CLASSES",
    "DIMSE_SERVICES",
    "STATUS_TABLES",
    "Backend",
    "category",
    "handlers",
}
for _dimse in Dimse:
    RESERVED |= {
        "".join(part.capitalize() for part in _dimse.value.split("-")) + "Status",
        f"{_dimse.ident}_STATUSES",
        f"_{_dimse.ident}_ROLES",
        f"handle_{_dimse.ident.lower()}",
    }

TEXT = st.characters(
    codec="utf-8",
    categories=("L", "N", "P", "S"),
    exclude_characters="\u00ad",  # a soft hyphen is invisible; docutils keeps it, fine, but
    # it makes failures unreadable
)
"""Letters (Latin, Greek, CJK, ...), digits, punctuation and symbols: no spaces or controls."""


@dataclass(frozen=True)
class Row:
    first: int
    last: int
    category: str
    description: str
    width: int = 40
    """Where a grid table's or list-table's description cell wraps."""


@dataclass(frozen=True)
class Table:
    dimse: Dimse
    title: str
    rows: tuple[Row, ...]
    grid: bool


@dataclass(frozen=True)
class PageSpec:
    """What a drawn page means; ``rst()`` writes it."""

    stem: str
    title: str
    intro: str
    sops: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    sop_grid: bool

    def texts(self) -> list[str]:
        return [self.title, self.intro, *(r.description for t in self.tables for r in t.rows)]

    def tame(self) -> PageSpec:
        """The same page with every free text replaced by plain words."""
        counter = itertools.count()
        return replace(
            self,
            title="Tame page",
            intro="Tame intro" if self.intro else "",
            tables=tuple(
                replace(
                    t, rows=tuple(replace(r, description=f"tame {next(counter)}") for r in t.rows)
                )
                for t in self.tables
            ),
        )

    def expected(self) -> dict[Dimse, tuple[dict[int, tuple[str, str]], list[Row]]]:
        """Per service: exact code -> row (a later table's row replaces an earlier one's), and
        the ranges."""
        result: dict[Dimse, tuple[dict[int, tuple[str, str]], list[Row]]] = {}
        for table in self.tables:
            exact, ranges = result.setdefault(table.dimse, ({}, []))
            for row in table.rows:
                if row.first == row.last:
                    exact[row.first] = (row.category, row.description)
                else:
                    ranges.append(row)
        return result

    def rst(self) -> str:
        title = escape(self.title)
        out = [title, "=" * max(4, column_width(title)), ""]
        if self.intro:
            out += [escape(self.intro), ""]
        out += ["Supported SOP Classes", "---------------------", ""]
        sop_rows = [[[uid], [escape(kw)]] for kw, uid in self.sops]
        out += table_rst(["UID", "SOP Class"], sop_rows, self.sop_grid) + [""]
        for table in self.tables:
            out += [table.title, "~" * len(table.title), ""]
            rows = [
                [[code(row)], [row.category], wrap(escape(row.description), row.width)]
                for row in table.rows
            ]
            header = ["Code (hex)", "Category", "Description"]
            out += table_rst(header, rows, table.grid) + [""]
        return "\n".join(out)


_MARKUP = frozenset(string.punctuation + "\u2022\u2023\u2043")
"""ASCII punctuation and the non-ASCII bullets docutils reads as list items."""


def escape(text: str) -> str:
    """RST for ``text`` read back as exactly ``text``: every markup character escaped."""
    return "".join("\\" + c if c in _MARKUP else c for c in text)


def code(row: Row) -> str:
    return f"0x{row.first:04X}" + (f" to 0x{row.last:04X}" if row.last != row.first else "")


def wrap(text: str, width: int) -> list[str]:
    """``text`` over several lines of about ``width`` columns, split at spaces only. A word of
    markup characters alone (``\\\\``, escaped ``\\``) never stands on a line of its own: RST
    would read a line of one punctuation character as a section underline or a transition."""
    lines: list[str] = []
    for word in text.split(" "):
        fits = lines and column_width(lines[-1]) + 1 + column_width(word) <= width
        if (
            fits
            or (lines and set(word) <= _MARKUP)
            or (len(lines) == 1 and set(lines[0]) <= _MARKUP)
        ):
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def table_rst(header: list[str], rows: list[list[list[str]]], grid: bool) -> list[str]:
    cells = [[[h] for h in header], *rows]
    if not grid:
        out = [".. list-table::", "   :header-rows: 1", ""]
        for row in cells:
            for n, cell in enumerate(row):
                lead = "   * - " if n == 0 else "     - "
                out.append(lead + cell[0])
                out += ["       " + line for line in cell[1:]]
        return out
    cols = [
        max(column_width(line) for row in cells for line in row[i]) + 2 for i in range(len(header))
    ]

    def border(char: str) -> str:
        return "+" + "+".join(char * w for w in cols) + "+"

    def lines(row: list[list[str]]) -> list[str]:
        height = max(len(cell) for cell in row)
        return [
            "|"
            + "|".join(
                " "
                + (cell[k] if k < len(cell) else "")
                + " " * (w - 1 - column_width(cell[k] if k < len(cell) else ""))
                for cell, w in zip(row, cols)
            )
            + "|"
            for k in range(height)
        ]

    out = [border("-"), *lines(cells[0]), border("=")]
    for row in cells[1:]:
        out += [*lines(row), border("-")]
    return out


def free_text(max_words: int = 12) -> st.SearchStrategy[str]:
    """Words of letters, digits, punctuation and symbols. Not a text of backslashes alone: its
    RST (each one escaped) is a line of one punctuation character, which RST reads as a
    transition wherever it stands alone, so no page can say it."""
    word = st.text(TEXT, min_size=1, max_size=10)
    return (
        st.lists(word, min_size=1, max_size=max_words)
        .map(" ".join)
        .filter(lambda text: set(text) != {"\\"})
    )


def identifiers() -> st.SearchStrategy[str]:
    """SOP class keywords: ASCII, as every DICOM keyword is (a page may use no other)."""
    letters = st.sampled_from(string.ascii_letters)
    tail = st.text(st.one_of(letters, st.sampled_from(string.digits + "_")), max_size=30)
    return (
        st.tuples(letters, tail)
        .map("".join)
        .filter(
            lambda s: not keyword.iskeyword(s)
            and not keyword.issoftkeyword(s)
            and s not in RESERVED
            and s not in vars(builtins)  # a keyword may not hide a builtin either
        )
    )


def uids() -> st.SearchStrategy[str]:
    part = st.integers(0, 10**8).map(str)
    return (
        st.lists(part, min_size=2, max_size=8)
        .map(lambda p: "1.2." + ".".join(p))
        .filter(lambda u: len(u) <= 64)
    )


CATEGORIES = [c.value for c in Category]


@st.composite
def tables_for(draw: st.DrawFn, dimse: Dimse, grid: st.SearchStrategy[bool]) -> list[Table]:
    """One to three tables of ``dimse``: disjoint codes and ranges within and across tables
    (a later table may repeat an earlier table's exact code, replacing its row), a success and
    a failure row in the first table (a handler needs both)."""
    taken: list[tuple[int, int]] = []
    exact_so_far: dict[int, str] = {}

    def free(first: int, last: int) -> bool:
        return all(last < a or first > b for a, b in taken)

    tables = []
    for n in range(draw(st.integers(1, 3))):
        rows: list[Row] = []
        own: list[tuple[int, int]] = []
        categories = ["Success", "Failure"] if n == 0 else []
        count = draw(st.integers(len(categories) or 1, 6))
        for k in range(count):
            category = categories[k] if k < len(categories) else draw(st.sampled_from(CATEGORIES))
            repeat = exact_so_far and n > 0 and draw(st.booleans())
            if repeat:
                first = last = draw(st.sampled_from(sorted(exact_so_far)))
                category = exact_so_far[first]  # so the service keeps its success and failure
                if any(a <= first <= b for a, b in own):
                    continue
            else:
                first = draw(st.integers(0, 0xFFFF))
                last = first
                if draw(st.integers(0, 4)) == 0:
                    last = min(0xFFFF, first + draw(st.integers(1, 0x1FFF)))
                if not free(first, last):
                    continue
                taken.append((first, last))
            own.append((first, last))
            rows.append(Row(first, last, category, draw(free_text()), draw(st.integers(8, 60))))
        if not rows or (n == 0 and not {"Success", "Failure"} <= {r.category for r in rows}):
            if n == 0:
                # Both roles are needed; the codes drawn clashed, so add fresh ones.
                for category in ("Success", "Failure"):
                    code_ = next(c for c in range(0x10000) if free(c, c))
                    taken.append((code_, code_))
                    rows.append(Row(code_, code_, category, draw(free_text())))
            else:
                continue
        exact_so_far.update((r.first, r.category) for r in rows if r.first == r.last)
        if n == 0:
            title = f"{dimse.value} Statuses"
        elif draw(st.booleans()):
            title = f"pynetdicom {dimse.value} Statuses {n}"
        else:
            title = f"{dimse.value} Service Statuses {n}"
        tables.append(Table(dimse, title, tuple(rows), draw(grid)))
    return tables


@st.composite
def pages(draw: st.DrawFn) -> PageSpec:
    grid = st.booleans()
    services = draw(st.lists(st.sampled_from(list(Dimse)), min_size=1, max_size=4, unique=True))
    tables = [t for dimse in services for t in draw(tables_for(dimse, grid))]
    sops = draw(
        st.lists(
            st.tuples(identifiers(), uids()),
            min_size=1,
            max_size=6,
            unique_by=(lambda s: s[0], lambda s: s[1]),
        )
    )
    return PageSpec(
        stem="page_" + draw(st.from_regex(r"[a-z0-9]{10}", fullmatch=True)),
        title=draw(free_text(8)),
        intro=draw(st.one_of(st.just(""), free_text(20))),
        sops=tuple(sops),
        tables=tuple(tables),
        sop_grid=draw(grid),
    )


_packages = itertools.count()


def generate(specs: list[PageSpec], root: Path) -> tuple[str, Path]:
    """Write ``specs`` as pages, generate them into a fresh package under ``root``."""
    name = f"props{next(_packages)}"
    spec_dir = root / f"{name}_spec"
    spec_dir.mkdir(parents=True)
    for spec in specs:
        (spec_dir / f"{spec.stem}.rst").write_text(spec.rst(), encoding="utf-8")
    pages_ = [parse_page(spec.rst(), str(spec_dir / f"{spec.stem}.rst")) for spec in specs]
    writer.write(render.render(pages_), root / name)
    return name, root / name


class _Blank(ast.NodeTransformer):
    """Blank every string constant, and every enum member name (in its class body and where
    ``<Enum>.<member>`` refers to it): what free text may change in a module."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant("S") if isinstance(node.value, str) else node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        if any(isinstance(b, ast.Name) and b.id == "IntEnum" for b in node.bases):
            for statement in node.body:
                if isinstance(statement, ast.Assign):
                    statement.targets = [ast.Name("M", ast.Store())]
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id.endswith("Status"):
            node.attr = "M"
        return node


def shape(source: str) -> str:
    return ast.dump(_Blank().visit(ast.parse(source)))


@given(spec=pages())
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_a_page_generates_a_module_with_exactly_its_values(
    spec: PageSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("props")
    name, out = generate([spec], root)
    source = (out / f"{spec.stem}.py").read_text(encoding="utf-8")
    compile(source, spec.stem, "exec")
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(f"{name}.{spec.stem}")
    finally:
        sys.path.remove(str(root))
    try:
        assert list(module.SOP_CLASSES.items()) == list(spec.sops)
        for kw, uid in spec.sops:
            assert getattr(module, kw) == uid
        expected = spec.expected()
        assert set(module.DIMSE_SERVICES) == {d.value for d in expected}
        for dimse, (exact, ranges) in expected.items():
            table = module.STATUS_TABLES[dimse.value]
            for code_, value in exact.items():
                assert table[code_] == value and code_ in table
            for r in ranges:
                for code_ in {r.first, (r.first + r.last) // 2, r.last}:
                    want = exact.get(code_, (r.category, r.description))
                    assert table[code_] == want and table.get(code_) == want
            covered = set(exact).union(*(range(r.first, r.last + 1) for r in ranges))
            assert len(table) == len(covered) and list(table) == sorted(covered)
            outside = next(c for c in range(0x10000) if c not in covered)
            assert outside not in table and table.get(outside) is None
    finally:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]

    # Spec text reaches the module only as string constants (docstrings included).
    tree = ast.parse(source)
    constants = [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    for exact, ranges in spec.expected().values():
        for description in [d for _, d in exact.values()] + [r.description for r in ranges]:
            assert description in constants
    assert any(c.startswith(spec.title + ":") for c in constants)
    tame = spec.tame()
    _, tame_out = generate([tame], root)
    tame_source = (tame_out / f"{tame.stem}.py").read_text(encoding="utf-8")
    assert shape(source) == shape(tame_source)


def test_many_pages_pass_mypy_strict_in_one_run(tmp_path: Path) -> None:
    """Hypothesis draws the pages (cheap), then one package holds them all and mypy runs once."""
    drawn: dict[str, PageSpec] = {}

    @given(spec=pages())
    @settings(max_examples=25, deadline=None, phases=[Phase.generate], database=None)
    def draw(spec: PageSpec) -> None:
        drawn[spec.stem] = spec

    draw()
    _, out = generate(list(drawn.values()), tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(out.glob("page_*.py"))) == len(drawn) > 10


def _row_lines(lines: list[str], start: str) -> int:
    """The index of the first line of the table row whose first cell is ``start``."""
    return next(
        n
        for n, line in enumerate(lines)
        if line.startswith(f"| {start} ") or line == f"   * - {start}"
    )


def _in_row(text: str, first_cell: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` (same width) in the row starting ``first_cell``:
    on its first line for a grid table, on the cell's own line for a list-table."""
    lines = text.split("\n")
    n = _row_lines(lines, first_cell)
    while not re.search(rf"(^|[ |-]){re.escape(old)}( |\||$)", lines[n]):
        n += 1
    lines[n] = re.sub(rf"(?<=[ |-]){re.escape(old)}(?= |\||$)", new, lines[n], count=1)
    return "\n".join(lines)


def _breaks(spec: PageSpec) -> st.SearchStrategy[tuple[str, str, bool]]:
    """(kind, corrupted RST, whether it is certain to be exactly one problem): a broken code,
    category or UID cell, or bytes that are not UTF-8, each one problem; or random characters
    inserted, or a line dropped, which may or may not break the page."""
    text = spec.rst()
    lines = text.split("\n")
    row = spec.tables[0].rows[0]
    uid = spec.sops[0][1]
    cell = code(row)
    one_problem = [
        ("bad code", _in_row(text, cell, cell, "0xZZ" + cell[4:]), True),
        ("bad category", _in_row(text, cell, row.category, row.category[:-1] + "q"), True),
        ("bad uid", _in_row(text, uid, uid, uid[:-1] + "x"), True),
        ("bad utf-8", text, True),
    ]
    markup = st.text(st.sampled_from("|+-=`*_:\\ \n0xZ"), min_size=1, max_size=3)
    return st.one_of(
        st.sampled_from(one_problem),
        st.tuples(st.integers(0, len(text)), markup).map(
            lambda at: ("insert", text[: at[0]] + at[1] + text[at[0] :], False)
        ),
        st.integers(0, len(lines) - 1).map(
            lambda n: ("drop line", "\n".join(lines[:n] + lines[n + 1 :]), False)
        ),
    )


@given(data=st.data(), spec=pages())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_a_corrupted_page_is_reported_as_path_line_never_a_traceback(
    data: st.DataObject, spec: PageSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    kind, text, single = data.draw(_breaks(spec))
    root = tmp_path_factory.mktemp("broken")
    page = root / "spec" / f"{spec.stem}.rst"
    page.parent.mkdir()
    raw = text.encode("utf-8")
    if kind == "bad utf-8":
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\xff" + raw[at:]
    page.write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["generate", "--spec", str(page.parent), "--out", str(root / "out")])
    problems = [line for line in err.getvalue().splitlines() if "skipped" not in line]
    event(f"{kind}: exit {status}")
    if status == 0:
        assert not single, f"{kind}: still generated"
        return
    assert status == 2 and problems, err.getvalue()
    assert not (root / "out").exists()
    if single:
        assert len(problems) == 1, problems
    pattern = re.compile(rf"servicegen: {re.escape(str(page))}:(\d+): .")
    for line in problems:
        match = pattern.match(line)
        assert match, line
        assert 1 <= int(match.group(1)) <= raw.count(b"\n") + 1, line
