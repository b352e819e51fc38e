"""Hostile pages (issue 10): what a page in a pull request can make servicegen do.

Every class of the review is tried with examples of our own making: text that reaches the docs as
markup or pulls in a file, docutils messages read as page text, rows lost to spans, text mangled
on its way to code and docs, input that crashed, problems reported one at a time, and reading
that grew quadratically. Properties close the classes: random cell text never leaks a docutils
message and always round-trips; random bytes as a page never give a traceback.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import parser, render
from generator.errors import SpecError, TemplateError
from generator.html import rst_to_html
from generator.parser import examine_bytes, parse_page

from .conftest import servicegen
from .test_docs import Scan, round_trip, without_lines

SOPS = "   * - 1.2.840.10008.1.1\n     - Verification\n"


def page(*rows: str, intro: str = "Intro.", title: str = "Echo", sops: str = SOPS) -> str:
    """A page with one C-ECHO status list-table; each of ``rows`` is a description cell's RST
    (0x0000, 0x0001, ... in order), written after ``     - ``."""
    cells = "".join(
        f"   * - 0x{n:04X}\n     - {'Success' if n == 0 else 'Warning'}\n     - {row}\n"
        for n, row in enumerate(rows)
    )
    return (
        f"{title}\n{'=' * max(4, len(title) * 2)}\n\n{intro}\n\n"
        ".. list-table::\n   :header-rows: 1\n\n   * - UID\n     - SOP Class\n"
        f"{sops}\n"
        "C-ECHO Statuses\n---------------\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - Code (hex)\n     - Category\n     - Description\n" + cells
    )


def problems(text: str) -> list[str]:
    """The ``path:line: message`` lines a strict read of ``text`` gives (none if it reads)."""
    try:
        parse_page(text, "pg.rst")
    except SpecError as exc:
        return exc.lines()
    return []


def one_line_refusal(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, no traceback, each error line ``servicegen: path:line: ...``."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("servicegen: ") for line in lines), lines
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


# 1. Docs injection and local file disclosure -----------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        # The review's example: a newline and a directive inside a link target.
        ":dcm:`text <part04/x.html\n.. include:: /etc/passwd\ny>`",
        "`text <https://x/a\n.. raw:: html\nb>`__",
        "`trap <javascript:alert(1)>`__",
        "`trap <data:text/html,<script>x</script>>`__",
        "`relative <../../etc/passwd>`__",
        ":dcm:`x <javascript:alert(1)>`",
        "`file <file:///etc/passwd>`__",
    ],
)
def test_a_link_target_is_a_one_line_web_url_or_refused_where_it_is(link: str) -> None:
    from generator.rst_text import is_web_url

    in_cell = link.replace("\n", "\n       ")
    for text in (page("Done", intro=f"See {link}."), page(f"Done, see {in_cell}.")):
        found = problems(text)
        if found:
            assert all(line.startswith("pg.rst:") for line in found), found
            assert any(
                "is not a one-line http(s) or mailto URL" in line
                or "reference in a table" in line
                or "target defined elsewhere" in line  # docutils read a named reference
                for line in found
            ), found
            continue
        # docutils read it as text, or as a link whose target is a web URL after all.
        model = parse_page(text, "pg.rst")
        assert all(is_web_url(link.url) for link in model.links), model.links
        html = render.render([model])["docs/pg.html"]
        targets = [href for href in Scan(html).links if not href.startswith(("#", "index.html"))]
        assert all(is_web_url(href) for href in targets), targets
        assert "root:" not in html and "<script" not in html


@pytest.mark.parametrize(
    "markup",
    [
        ".. include:: SECRET",
        ".. raw:: html\n\n   <script>alert(1)</script>",
        ".. role:: raw-html(raw)\n   :format: html\n\n:raw-html:`<script>alert(1)</script>`",
        ".. csv-table::\n   :file: SECRET",
    ],
)
def test_the_html_step_inserts_no_file_and_no_raw_output(markup: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    with pytest.raises(TemplateError, match="disabled|deactivated"):
        rst_to_html(f"T\n=\n\n{markup.replace('SECRET', str(secret))}\n")


def test_the_html_step_never_drops_a_table_silently() -> None:
    """A generated line longer than docutils' default limit (10,000) used to lose its table."""
    long_x, long_y = " ".join(["x" * 200] * 50), " ".join(["y" * 200] * 150)
    model = parse_page(page(long_x, long_y), "pg.rst")
    html = render.render([model])["docs/pg.html"]
    assert long_x in html and long_y in html
    with pytest.raises(TemplateError, match="docutils rejects"):
        rst_to_html("T\n=\n\n+---+\n| a |\n+===+\n")


def test_a_link_keeps_its_target_exactly_through_model_rst_and_html() -> None:
    url = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_C.html#a_b_"
    text = page(f"See `the standard <{url}>`__ and mailto:someone@example.org.")
    model = parse_page(text, "pg.rst")
    assert url in {link.url for link in model.links}
    assert without_lines(round_trip(model)) == without_lines(model)
    assert url in Scan(render.render([model])["docs/pg.html"]).links


# 7. docutils messages never become page text --------------------------------------------------


@pytest.mark.parametrize("cell", ["...", "--", ":", ".", "*"])
def test_a_cell_docutils_comments_on_reads_as_its_own_text(cell: str) -> None:
    escaped = "\\" + cell if cell[0] in "-=*:." else cell
    read = 0
    for written in {cell, escaped}:
        try:
            model = parse_page(page(written), "pg.rst")
        except SpecError as exc:
            assert all(line.startswith("pg.rst:") for line in exc.lines())
            continue
        (status,) = model.status_tables[0].statuses
        assert status.description in (cell, cell.replace("\\", "")), status.description
        assert "INFO" not in status.description and "pg.rst" not in status.description
        read += 1
    assert read, "neither the cell nor its escaped form reads"


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("- a bullet", "bullet list"),
        ("1. an item", "enumerated list"),
        ("#. an item", "enumerated list"),
        ("| a line", "line block"),
        (">>> doctest()", "doctest block"),
        (".. a comment", "comment"),
        ("term\n         definition", "definition list"),
        (":field: value", "field list"),
        ("-o  an option", "option list"),
        ("see [1]_", "footnote reference"),
        ("see |sub|", "substitution reference"),
        ("Keyword_", "reference"),
        ("Keyword__", "reference"),
        ("`a target`_", "reference"),
    ],
)
def test_a_cell_that_is_no_paragraph_is_refused_at_its_row(cell: str, kind: str) -> None:
    text = page("Fine", cell)
    row_line = text.splitlines().index("   * - 0x0001") + 1
    message = (
        f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} in a table cell: write the cell as plain "
        "text (a backslash escapes a markup character)"
    )
    assert problems(text) == [f"pg.rst:{row_line}: {message}"], problems(text)


@pytest.mark.parametrize(
    ("markup", "kind"),
    [
        ("|sub|\n\n.. |sub| replace:: the real text", "a substitution reference"),
        ("|nosuch|", "a substitution reference"),
        ("[#f]_\n\n.. [#f] A footnote.", "a footnote reference"),
        ("[CIT]_\n\n.. [CIT] A citation.", "a citation reference"),
        ("Foo_\n\n.. _Foo: https://example.com/foo", "a reference"),
        ("anon__\n\n__ https://example.com/anon", "a reference"),
        ("`text <Foo_>`_\n\n.. _Foo: https://example.com/foo", "a reference"),
        ("Nowhere_", "a reference"),
        ("t_\n\n.. _t: https://example.com", "a reference"),
    ],
)
@pytest.mark.parametrize("where", ["prose", "title"])
def test_markup_defined_elsewhere_is_refused_in_prose_and_titles(
    markup: str, kind: str, where: str
) -> None:
    """Prose and titles were read with substitutions, footnotes and named links flattened to
    their names or dropped, as cells no longer were."""
    use, _, definition = markup.partition("\n\n")
    if where == "prose":
        text = page("Done", intro=f"See {use} here.\n\n{definition}")
        line = text.splitlines().index(f"See {use} here.") + 1
    else:
        text = page("Done", title=f"Echo {use}", intro=f"Intro.\n\n{definition}")
        line = 1
    message = (
        f"{kind}: servicegen reads no text or target defined elsewhere; write the text, or the "
        "link as `text <https://...>`__, in its place"
    )
    assert problems(text) == [f"pg.rst:{line}: {message}"]


def test_a_link_target_defined_apart_is_a_web_url_or_refused() -> None:
    text = page("Done", intro="Intro.\n\n.. _t: javascript:alert(1)")
    line = text.splitlines().index(".. _t: javascript:alert(1)") + 1
    assert problems(text) == [
        f"pg.rst:{line}: link target 'javascript:alert(1)' is not a one-line http(s) or mailto URL"
    ]


# 8. Spans: read, or refused with a line; never a row dropped -----------------------------------

SPANNED = """\
Spans
=====

+---------+-------------------------+-------------------+
| Annex   | UID                     | SOP Class         |
+=========+=========================+===================+
| X       | 1.2.840.10008.5.1.4.39.2| PaletteFind       |
|         +-------------------------+-------------------+
|         | 1.2.840.10008.5.1.4.39.3| PaletteMove       |
+---------+-------------------------+-------------------+
| X       | 1.2.840.10008.5.1.4.39.4| PaletteGet        |
+---------+-------------------------+-------------------+

C-FIND Statuses
---------------

+------------+----------+------------------------+
| Code (hex) | Category | Description            |
+============+==========+========================+
| 0x0000     | Success  | Done                   |
+------------+----------+------------------------+
| 0xA700     | Failure  | Out of resources       |
+------------+          +------------------------+
| 0xC000     |          | Unable to process      |
+------------+----------+------------------------+
"""


def test_a_cell_spanning_rows_counts_in_every_row_it_covers() -> None:
    """The review's example: a first column spanning two rows lost a SOP class, exit 0."""
    model = parse_page(SPANNED, "pg.rst")
    assert [sop.keyword for sop in model.sop_classes] == [
        "PaletteFind",
        "PaletteMove",
        "PaletteGet",
    ]
    assert [(s.first, s.category.value) for s in model.status_tables[0].statuses] == [
        (0x0000, "Success"),
        (0xA700, "Failure"),
        (0xC000, "Failure"),
    ]


STATUS_HEADER = "Code (hex) | Category | Description"


@pytest.mark.parametrize(
    ("old", "new", "table", "kind"),
    [
        # No header row: the status table's header is read as a body row.
        ("   :header-rows: 1\n\n   * - Code", "\n   * - Code", 1, "a status table"),
        ("     - Description\n", "     - Meaning\n", 1, "a status table"),
        ("     - Category\n", "     - Kind\n", 1, "a status table"),
        ("     - SOP Class\n", "     - SOP Class Name\n", 0, "a SOP class table"),
        ("   :header-rows: 1\n\n   * - UID", "\n   * - UID", 0, "a SOP class table"),
        ("   * - UID\n", "   * - Identifier\n", 0, "a SOP class table"),  # by its UID values
    ],
)
def test_a_table_that_looks_read_but_has_another_header_is_refused(
    old: str, new: str, table: int, kind: str
) -> None:
    """Status and SOP class tables are known by their headers: a table that looks like one but
    whose header differs (or is missing) was ignored, rows and all, exit 0."""
    text = page("Done", "Warned")
    assert old in text
    text = text.replace(old, new)
    line = [n for n, row in enumerate(text.splitlines(), 1) if row == ".. list-table::"][table]
    header = STATUS_HEADER if kind == "a status table" else "UID | SOP Class"
    message = (
        f"this table looks like {kind} but its header row is not '{header}' "
        "(over a '===' line), so it would be ignored"
    )
    assert problems(text) == [f"pg.rst:{line}: {message}"]


def test_a_dimse_service_is_named_in_any_case() -> None:
    """``c-find Statuses`` named no service, so its rows replaced C-ECHO's, exit 0."""
    sops = SOPS.replace("Verification\n", "Verification\n     - c-echo, C-Find\n")
    text = page("Done", sops=sops).replace("- SOP Class\n", "- SOP Class\n     - DIMSE Services\n")
    text += (
        "\nc-find Statuses\n---------------\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - Code (hex)\n     - Category\n     - Description\n"
        "   * - 0xFF00\n     - Pending\n     - Matching\n"
    )
    model = parse_page(text, "pg.rst")
    assert [(t.dimse.value, t.scope.value) for t in model.status_tables] == [
        ("C-ECHO", "general"),
        ("C-FIND", "general"),
    ]
    assert [d.value for d in model.sop_classes[0].dimse] == ["C-ECHO", "C-FIND"]


@pytest.mark.parametrize("directive", ["only:: html", "ifconfig:: x", "tabs::"])
@pytest.mark.parametrize("grid", [True, False])
def test_a_table_in_a_directive_read_as_text_is_refused_at_its_line(
    directive: str, grid: bool
) -> None:
    """An unknown directive's content is read as one paragraph: a table in it lost its rows."""
    table = (
        "+--------+---------+------+\n| 0xA700 | Failure | Out  |\n+--------+---------+------+"
        if grid
        else ".. list-table::\n\n   * - 0xA700\n     - Failure\n     - Out"
    )
    intro = f"Intro.\n\n.. {directive}\n\n" + "".join(f"   {row}\n" for row in table.splitlines())
    text = page("Done", intro=intro)
    line = text.splitlines().index(f"   {table.splitlines()[0]}") + 1
    name = directive.split("::")[0]
    message = (
        f"a table inside '.. {name}::', which servicegen reads as plain text: "
        "move the table out of the directive"
    )
    assert problems(text) == [f"pg.rst:{line}: {message}"]


def test_a_span_across_values_is_refused_at_its_row_never_dropped() -> None:
    # The UID spans two rows (two SOP classes with one UID); one cell holds a UID and a keyword.
    text = SPANNED.replace(
        "| X       | 1.2.840.10008.5.1.4.39.2| PaletteFind       |\n"
        "|         +-------------------------+-------------------+\n"
        "|         | 1.2.840.10008.5.1.4.39.3| PaletteMove       |\n",
        "| X       | 1.2.840.10008.5.1.4.39.2| PaletteFind       |\n"
        "|         |                         +-------------------+\n"
        "|         |                         | PaletteMove       |\n",
    ).replace(
        "| X       | 1.2.840.10008.5.1.4.39.4| PaletteGet        |",
        "| X       | 1.2.840.10008.5.1.4.39.4  PaletteGet        |",
    )
    assert problems(text) == [
        "pg.rst:9: 1.2.840.10008.5.1.4.39.2 is listed twice (first on line 7)",
        "pg.rst:11: one cell spans two columns that hold different values",
    ]


def test_output_does_not_depend_on_how_the_spec_path_is_spelled(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    text = SPANNED.replace("| Unable to process      |", "| ...                    |")
    (spec / "pg.rst").write_text(text, encoding="utf-8")
    relative = servicegen("generate", "--spec", "spec", "--out", "a", cwd=tmp_path)
    absolute = servicegen(
        "generate", "--spec", str(spec), "--out", str(tmp_path / "b"), cwd=tmp_path
    )
    assert relative.returncode == absolute.returncode == 0, relative.stderr + absolute.stderr
    for produced in (tmp_path / "a").rglob("*"):
        if produced.is_file():
            twin = tmp_path / "b" / produced.relative_to(tmp_path / "a")
            assert produced.read_bytes() == twin.read_bytes(), produced
    module = (tmp_path / "a" / "pg.py").read_text(encoding="utf-8")
    assert "INFO" not in module and "spec/" not in module and '"..."' in module, module


def test_a_page_without_the_structure_the_docs_need_is_refused_where_it_is() -> None:
    """What the generated RST could not say back (no title, a status table with no title of its
    own, a literal RST cannot write) is refused; a page of no SOP classes still gets its docs."""
    text = page("Done")
    sops_only = text.split("\n", 3)[3].split("C-ECHO Statuses")[0]
    assert problems(sops_only) == ["pg.rst:1: the page has no title: start it with a section title"]
    statuses = text.split("C-ECHO Statuses\n---------------\n\n")[1]
    untitled = statuses + "\n" + text.split("C-ECHO Statuses")[0]
    assert problems(untitled) == ["pg.rst:1: a status table needs a section title of its own"]
    assert problems(page("Done", ":literal:`a``b`")) == [
        "pg.rst:26: inline literal 'a``b' cannot be written back as ``...``"
    ]
    sop_table = text[text.index(".. list-table::") : text.index("C-ECHO Statuses")]
    model = parse_page(text.replace(sop_table, ""), "pg.rst")
    assert model.sop_classes == ()
    html = render.render([model])["docs/pg.html"]
    assert "Supported SOP Classes: none<a" in html and 'class="sop-classes"' not in html


def test_a_symbolic_link_among_the_pages_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.rst").write_text(page("Done"), encoding="utf-8")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "page.rst").symlink_to(outside / "secret.rst")
    (spec / "more").symlink_to(outside, target_is_directory=True)
    for command in (
        ("generate", "--spec", "spec"),
        ("lint", "--spec", "spec"),
        ("check", "--spec", "spec"),
    ):
        result = servicegen(*command, cwd=tmp_path)
        assert result.returncode == 2, result
        assert result.stderr.splitlines() == [
            f"servicegen: spec/{name}:0: is a symbolic link; pages are never read through a link"
            for name in ("more", "page.rst")
        ]
    assert not (tmp_path / "generated").exists()


# 10. Exact text in code and docs ------------------------------------------------------------


def test_invisible_characters_are_escaped_exactly_in_docstrings(tmp_path: Path) -> None:
    title = "Zero\u200bWidth \u202eRTL\u202c Soft\u00adHyphen"
    model = parse_page("\ufeff" + page("Done", title=title), "pg.rst")
    assert model.title == title  # the byte order mark is no part of the title
    module = render.render([model])["pg.py"]
    docstring = ast.get_docstring(ast.parse(module))
    assert docstring is not None and docstring.startswith(title + ":"), docstring
    assert "\u200b" not in module and "\\u200b" in module  # escaped, not raw and not mangled


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x9b", "\u2028", "\x0c"])
def test_a_control_character_in_a_page_is_refused_at_its_line(char: str) -> None:
    text = page("Done", f"Bad{char}text")
    line = text.split("\n").index(f"     - Bad{char}text") + 1 if char != "\u2028" else 0
    found = problems(text)
    assert len(found) == 1 and f"character {char!r} is not allowed" in found[0], found
    if line:
        assert found[0].startswith(f"pg.rst:{line}:"), found


# 12. Never a traceback: deep nesting -----------------------------------------------------------


def deep(kind: str, depth: int = 200) -> str:
    if kind == "list":
        body = "\n".join("  " * n + "- item" for n in range(depth))
    else:
        body = "\n".join("  " * n + "quoted\n" for n in range(depth))
    return page("Done", intro=body)


@pytest.mark.parametrize("kind", ["list", "quote"])
def test_nesting_too_deep_for_docutils_is_one_line_in_every_command(
    kind: str, tmp_path: Path
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "pg.rst").write_text(deep(kind), encoding="utf-8")
    one_line_refusal(servicegen("generate", "--spec", "spec", cwd=tmp_path), "spec/pg.rst:")
    one_line_refusal(servicegen("check", "--spec", "spec", cwd=tmp_path), "spec/pg.rst:")
    one_line_refusal(servicegen("model", "spec/pg.rst", cwd=tmp_path), "spec/pg.rst:")
    for command in (
        ("lint", "--spec", "spec"),
        ("audit", "--spec", "spec"),
        ("diff", "spec", "spec"),
    ):
        result = servicegen(*command, cwd=tmp_path)
        assert "Traceback" not in result.stderr and result.returncode in (0, 1, 2), result.stderr


# 13. Every docutils problem, each at its line ----------------------------------------------------


def test_every_docutils_problem_is_reported_with_its_line() -> None:
    broken = "+------+\n| cell |\n"  # a grid table without its bottom border
    text = page("Done", intro=f"{broken}\n" + "Text.\n\n" * 40 + broken)
    found = problems(text)
    assert len(found) == 2, found
    lines = [int(line.split(":")[1]) for line in found]
    assert lines[1] - lines[0] >= 80, found


@pytest.mark.parametrize(
    "where",
    ["prose", "title", "cell", "literal", "escaped spaces", "markup inside", "comment", "below"],
)
def test_a_word_longer_than_the_limit_is_refused_at_its_line(where: str) -> None:
    """A 100,000-character literal took docutils' HTML writer 95 s, and a one-word description
    as long gave an enum member name as long: no page may make a command slow."""
    limit = parser.LONGEST_WORD
    word = "w" * (limit + 1)
    half = "w" * (limit // 2)
    used = {
        "prose": word,
        "title": word,
        "cell": word,
        "literal": f"``{word}``",
        "escaped spaces": "\\ ".join(word),
        "markup inside": f"{half}\\ *{half}*\\ {half}",
        "comment": f"Intro.\n\n.. {word}",
        "below": f"Intro\nmore {word}",
    }[where]
    if where == "title":
        text = page("Done", title=f"Echo {used}")
    elif where == "cell":
        text = page("Done", f"Not {used}")
    else:
        text = page("Done", intro=used)
    line = {"title": 1, "cell": 28, "comment": 6, "below": 5}.get(where, 4)
    found = problems(text)
    assert [problem.split(" characters")[0] for problem in found] == [
        f"pg.rst:{line}: {len(word) + (where == 'markup inside') * (len(half) - 1):,}"
    ], found
    assert found[0].endswith(
        f"a page allows at most {limit} (write a long URL as a link, " "`text <https://...>`__)"
    )
    assert not problems(page("Done", intro="w" * limit))


# 15. Reading grows like docutils' own parse, not quadratically ---------------------------------


def calls_into(module_file: str, text: str) -> int:
    """How many Python calls ``parse_page(text)`` makes into functions of ``module_file``."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event == "call" and frame.f_code.co_filename == module_file:  # type: ignore[attr-defined]
            count += 1

    sys.setprofile(profile)
    try:
        parse_page(text, "pg.rst")
    finally:
        sys.setprofile(None)
    return count


def test_status_table_reading_makes_a_linear_number_of_calls() -> None:
    def table(rows: int) -> str:
        return page(*(f"Row {n}" for n in range(rows)))

    small, large = (calls_into(parser.__file__, table(rows)) for rows in (300, 1200))
    # Linear: four times the rows, about four times the calls (a pair-wise overlap check
    # made sixteen times as many).
    assert large < 5 * small, (small, large)


# Properties ------------------------------------------------------------------------------------

CELL_TEXT = (
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list("*`_|:.-=+#>[]<\\()!?'\"~^ 0123456789abcXYZ")),
            st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


def subsequence(needle: str, haystack: str) -> bool:
    """Whether ``needle``'s non-space characters occur in ``haystack`` in order."""
    rest = iter(haystack)
    return all(char in rest for char in needle if not char.isspace())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=CELL_TEXT)
def test_random_cell_text_never_leaks_a_message_and_round_trips(cell: str) -> None:
    text = page("Done", cell)
    try:
        model = parse_page(text, "pg.rst")
    except SpecError as exc:
        assert exc.lines() and all(line.startswith("pg.rst:") for line in exc.lines())
        return
    status = model.status_tables[0].statuses[1]
    # docutils drops markup but never adds text: anything more is a message read as text.
    assert subsequence(status.description, cell), (cell, status.description)
    rst = PAGE_RST.render(render.page_context(model, ""))
    assert without_lines(parse_page(rst, "pg.rst")) == without_lines(model)
    html = rst_to_html(rst)  # raises on any docutils complaint
    assert "System Message" not in html


PAGE_RST = render.environment().get_template("page.rst.j2")
"""The docs' RST template alone: the property needs no Python rendered and formatted."""


RST_ISH = st.text(alphabet=st.sampled_from(list("+-=|*`_:.<> \n\t\\0x1aAbé…\u200b\x00\x1b")))
NESTED = st.tuples(st.sampled_from(["- ", "> ", "1. ", "* "]), st.integers(1, 400)).map(
    lambda marker_depth: (marker_depth[0] * marker_depth[1] + "x\n").encode()
)
"""Markup nested up to 400 deep: docutils' recursion limit lies on the way."""


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), RST_ISH.map(str.encode), NESTED))
def test_random_bytes_as_a_page_never_give_a_traceback(data: bytes) -> None:
    try:
        reading = examine_bytes(data, "pg.rst")
    except SpecError as exc:
        assert all(line.startswith("pg.rst:") for line in exc.lines())
        return
    if not reading.problems and (reading.page.sop_classes or reading.page.status_tables):
        render.render([reading.page])


def test_ranges_of_one_service_that_overlap_across_tables_are_refused() -> None:
    """A status table answers a code from one range: two ranges of a service that overlap
    without being equal (across tables; within one the row check refuses them) would leave the
    codes between them answered by neither, so the later row is refused at its line. An equal
    range replaces the earlier one, and exact codes inside a range are fine."""

    def grid(codes: list[str]) -> str:
        rule = "+------------------+----------+-------------+"
        head = "| Code (hex)       | Category | Description |"
        rows = "".join(
            f"| {code:<16} | Failure  | Row {n:<7} |\n{rule}\n" for n, code in enumerate(codes)
        )
        return f"{rule}\n{head}\n{rule.replace('-', '=')}\n{rows}"

    def two_tables(first: list[str], second: list[str]) -> str:
        return (
            "Page\n====\n\nC-FIND Statuses\n---------------\n\n"
            + grid(first)
            + "\nC-FIND Service Statuses\n-----------------------\n\n"
            + grid(second)
        )

    outer, inner = "0xC000 to 0xCFFF", "0xC100 to 0xC1FF"
    rule = "a range may repeat another exactly, or stay apart from it"
    assert problems(two_tables([outer], [inner])) == [
        f"pg.rst:19: {inner} overlaps {outer} of an earlier C-FIND table (line 10); {rule}"
    ]
    assert problems(two_tables([inner], ["0xC1F0 to 0xC2FF"])) == [
        f"pg.rst:19: 0xC1F0 to 0xC2FF overlaps {inner} of an earlier C-FIND table (line 10); {rule}"
    ]
    for fine in ([outer], ["0xC123", "0xD000 to 0xDFFF"]):
        assert problems(two_tables([outer, "0xA700"], fine)) == []


def test_alias_comments_find_their_lines_from_one_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each alias comment's line is looked up in an index of the page's comment openings built
    once, not by scanning the page per comment (quadratic: a page of many thousand comments
    took minutes). Every comment is still placed at its own ``..`` line."""
    built = []
    real = parser._comment_openings

    def counted(lines: list[str]) -> dict[str, list[int]]:
        built.append(len(lines))
        return real(lines)

    monkeypatch.setattr(parser, "_comment_openings", counted)
    seed = Path(__file__).resolve().parents[1] / "spec" / "color_palette_service_class.rst"
    text = seed.read_text(encoding="utf-8")
    first = text.count("\n") + 2
    text += "".join(f"\n.. servicegen: alias C-MOVE 0xA801 OLD_{n}\n" for n in range(50))
    page = parse_page(text, "pg.rst")
    assert len(built) == 1
    olds = [alias for alias in page.aliases if alias.name.startswith("OLD_")]
    assert [alias.line for alias in olds] == [first + 2 * n for n in range(50)]


@pytest.mark.parametrize("name", ["echo.RST", "echo.Rst"])
def test_a_page_whose_suffix_is_not_lower_case_is_refused_not_skipped(
    tmp_path: Path, name: str
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "a.rst").write_text(page("Done"), encoding="utf-8")
    (spec / name).write_text(page("Done"), encoding="utf-8")
    result = servicegen("generate", "--spec", "spec", "--out", "out", cwd=tmp_path)
    one_line_refusal(result, f"{name}:0: is not read: a page's name ends in .rst, lower case")
