"""The page's prose: every block of text outside the tables is in the model (in document order,
with its section), in the generated RST and HTML (escaped, links kept), and reads back to the same
model; links keep the text they stand in."""

from __future__ import annotations

import html as html_lib
import re
import sys
from collections import Counter
from types import FrameType
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from hypothesis import HealthCheck, given, settings

from generator import docview, render
from generator.errors import SpecError
from generator.html import rst_to_html
from generator.model import Page
from generator.parser import parse_page

from .test_docs import DOCS, SEED_HTML, Scan, round_trip, scan, without_lines
from .test_hostile_pages import CELL_TEXT, subsequence

SEED_RST = DOCS / "color_palette_service_class.rst"
TITLE = "Color Palette Query/Retrieve Service Class"
PYNETDICOM_TITLE = "pynetdicom Color Palette Query/Retrieve (Find) Statuses"
DCM = "https://dicom.nema.org/medical/dicom/current/output/chtml/"


def shown(text: str) -> str:
    """An HTML page's text as a reader sees it: tags dropped, whitespace collapsed."""
    return " ".join(Scan(text).text.split())


def test_the_seed_prose_is_read_in_order_with_its_sections(seed_page: Page) -> None:
    assert [(p.section, p.item, p.line) for p in seed_page.prose] == [
        (TITLE, False, 6),
        (PYNETDICOM_TITLE, False, 87),
        ("References", True, 264),
        ("References", True, 265),
        ("References", True, 266),
    ]
    intro, pynetdicom, *references = seed_page.prose
    assert intro.rst == (
        f"The `{TITLE} <{DCM}part04/chapter_X.html>`__ defines a service that facilitates access"
        " to Color Palette objects."
    )
    assert pynetdicom.text == (
        "When pynetdicom is acting as a Color Palette Query/Retrieve (Find) SCP it uses the"
        " following status codes values to indicate the corresponding issue has occurred to help"
        " aid in debugging."
    )
    assert [p.text for p in references] == [
        "DICOM Standard, Part 4, Annex C",
        "DICOM Standard, Part 4, Annex X",
        "DICOM Standard, Part 7, Sections 9.1.2.1.5, 9.1.3.1.6 and 9.1.4.1.7",
    ]


def test_links_keep_the_text_they_stand_in(seed_page: Page) -> None:
    part7 = "DICOM Standard, Part 7, Sections 9.1.2.1.5, 9.1.3.1.6 and 9.1.4.1.7"
    assert [(link.text, link.section, link.context) for link in seed_page.links] == [
        (TITLE, TITLE, seed_page.prose[0].text),
        ("Annex C", "References", "DICOM Standard, Part 4, Annex C"),
        ("Annex X", "References", "DICOM Standard, Part 4, Annex X"),
        ("9.1.2.1.5", "References", part7),
        ("9.1.3.1.6", "References", part7),
        ("9.1.4.1.7", "References", part7),
    ]
    assert seed_page.links[2].url == f"{DCM}part04/chapter_X.html" == seed_page.links[0].url


def test_every_block_of_prose_is_in_the_committed_rst_and_html(seed_page: Page) -> None:
    rst = SEED_RST.read_text(encoding="utf-8")
    page = SEED_HTML.read_text(encoding="utf-8")
    text = shown(page)
    at = 0
    for paragraph in seed_page.prose:
        assert rst.count(paragraph.rst) == 1, paragraph
        found = text.find(paragraph.text, at)
        assert found >= 0, paragraph
        at = found
    # The paragraph on pynetdicom's own statuses stands between its heading and its table.
    heading, when = page.index(f"{PYNETDICOM_TITLE}<a"), page.index("<p>When pynetdicom")
    assert heading < when < page.index("<table", heading)


def test_references_keep_their_context_and_each_link_appears_once(seed_page: Page) -> None:
    page = SEED_HTML.read_text(encoding="utf-8")
    references = page[page.index('<section id="references">') :]
    items = re.findall(r"<li><p>(.*?)</p></li>", references)
    assert [" ".join(Scan(item).text.split()) for item in items] == [
        "DICOM Standard, Part 4, Annex C",
        "DICOM Standard, Part 4, Annex X",
        "DICOM Standard, Part 7, Sections 9.1.2.1.5, 9.1.3.1.6 and 9.1.4.1.7",
    ]
    external = Counter(link for link in scan(SEED_HTML).links if link.startswith("https:"))
    assert external == Counter(link.url for link in seed_page.links)
    assert external[f"{DCM}part04/chapter_X.html"] == 2  # the intro's link, and Annex X
    intro = re.search(r"<p>The (.*?)</p>", page)
    assert intro is not None
    assert intro.group(1).startswith(f'<a class="reference external" href="{DCM}part04/chapter_X')


PROSE_PAGE = """\
Preamble, before the title.

Echo Service
============

The :dcm:`Verification Service Class <part04/chapter_A.html>` and ``code``.

Overview
--------

* First *item*
* Second item

  A second paragraph of the item.

1. Numbered

Term
   Its definition.

::

   literal   block

| line one
| line two

.. note:: A note.

.. Not shown: a comment.

Supported SOP Classes
---------------------

Text before the SOP table.

.. list-table::
   :header-rows: 1

   * - UID
     - SOP Class
   * - 1.2.840.10008.1.1
     - Verification

Text after the SOP table.

Statuses
--------

Status prose.

C-ECHO Statuses
~~~~~~~~~~~~~~~

Before the table.

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0x0000
     - Success
     - Success
   * - 0x0110
     - Failure
     - Processing failure

After the table.

Interlude
~~~~~~~~~

Between two tables.

pynetdicom C-ECHO Statuses
~~~~~~~~~~~~~~~~~~~~~~~~~~

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0xC000
     - Failure
     - See `PS3.7 <https://dicom.nema.org/x.html>`__

Overview
--------

A second section of one title.

References
----------

* Part 7, `9.1 <https://dicom.nema.org/9.1.html>`__
"""


def test_prose_anywhere_on_a_page_reads_back_and_is_shown() -> None:
    page = parse_page(PROSE_PAGE, "echo.rst")
    assert [(p.section, p.text, p.item) for p in page.prose] == [
        ("Echo Service", "Preamble, before the title.", False),
        ("Echo Service", "The Verification Service Class and code.", False),
        ("Overview", "First item", True),
        ("Overview", "Second item", True),
        ("Overview", "A second paragraph of the item.", False),
        ("Overview", "Numbered", True),
        ("Overview", "Term", False),
        ("Overview", "Its definition.", False),
        ("Overview", "literal block", False),
        ("Overview", "line one", False),
        ("Overview", "line two", False),
        ("Overview", "A note.", False),
        ("Supported SOP Classes", "Text before the SOP table.", False),
        ("Supported SOP Classes", "Text after the SOP table.", False),
        ("Statuses", "Status prose.", False),
        ("C-ECHO Statuses", "Before the table.", False),
        ("C-ECHO Statuses", "After the table.", False),
        ("Interlude", "Between two tables.", False),
        ("Overview", "A second section of one title.", False),
        ("References", "Part 7, 9.1", True),
    ]
    assert [(link.text, link.section) for link in page.links] == [
        ("Verification Service Class", "Echo Service"),
        ("9.1", "References"),
        ("PS3.7", "pynetdicom C-ECHO Statuses"),
    ]
    assert without_lines(round_trip(page)) == without_lines(page)
    outputs = render.render([page])
    text = shown(outputs["docs/echo.html"])
    at = 0
    for paragraph in page.prose:
        found = text.find(paragraph.text, at)
        assert found >= 0, (paragraph, text[at:])
        at = found
    assert "Not shown" not in text


# Roles docutils does not know read as text. (Not `:raw-html:`: docutils keeps the roles a page
# defines for the process, and a page of test_hostile_pages defines that one from `raw`, which
# is refused, not read as text.)
HOSTILE_PROSE = """\
Echo
====

\\.. raw:: html <script>alert(1)</script> and `a <b>` *emph <i>x</i>*

:inert-html:`<b>bold</b>` and :unknown:`<img src=x onerror=alert(2)>` \\`x <alert(3)>\\`__

.. code-block:: html

   <script>alert(4)</script>

::

   .. raw:: html

      <script>alert(5)</script>

* \\.. include:: /etc/passwd

``.. raw:: html`` and ``<script>alert(6)</script>``

.. list-table::
   :header-rows: 1

   * - UID
     - SOP Class
   * - 1.2.840.10008.1.1
     - Verification

C-ECHO Statuses
---------------

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0x0000
     - Success
     - Success
"""


def test_hostile_prose_comes_out_as_inert_text() -> None:
    page = parse_page(HOSTILE_PROSE, "evil.rst")
    assert len(page.prose) == 6 and page.links == ()
    assert without_lines(round_trip(page)) == without_lines(page)
    outputs = render.render([page])
    rst, html = outputs["docs/evil.rst"], outputs["docs/evil.html"]
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "/etc/passwd" in html and "root:" not in html
    text = shown(html)
    for n in range(1, 7):
        assert f"alert({n})" in text, n
    assert html_lib.escape("<script>alert(1)</script>", quote=False) in html
    # docutils reads the generated RST as text: no directive, raw node or literal block came of it.
    document = publish_doctree(rst, settings_overrides={"report_level": 5})
    assert not list(document.findall(nodes.raw))
    assert not list(document.findall(nodes.literal_block))
    assert [c.astext()[:20] for c in document.findall(nodes.comment)] == ["Generated by service"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=CELL_TEXT, second=CELL_TEXT)
def test_random_prose_never_leaks_a_message_and_round_trips(first: str, second: str) -> None:
    text = HOSTILE_PROSE.replace(HOSTILE_PROSE[6 : HOSTILE_PROSE.index(".. list-table::")], "")
    text = text.replace("Echo\n====\n", f"Echo\n====\n\n{first}\n\n* {second}\n")
    try:
        page = parse_page(text, "pg.rst")
    except SpecError as exc:
        assert exc.lines() and all(line.startswith("pg.rst:") for line in exc.lines())
        return
    # docutils drops markup but never adds text: anything more is a message read as text.
    shown_text = " ".join(p.text for p in page.prose)
    assert subsequence(shown_text, f"{first} {second}"), (first, second, shown_text)
    rst = render.environment().get_template("page.rst.j2").render(render.page_context(page, ""))
    assert without_lines(parse_page(rst, "pg.rst")) == without_lines(page)
    assert "System Message" not in rst_to_html(rst)  # raises on any docutils complaint


def many_tables(count: int) -> str:
    """A page of ``count`` status tables of one title, each with prose above and below it and a
    section of prose after it, and every row 0x0000: a row a later table replaces."""
    sections = [
        "C-ECHO Statuses\n---------------\n\nAbove.\n\n.. list-table::\n   :header-rows: 1\n\n"
        "   * - Code (hex)\n     - Category\n     - Description\n"
        f"   * - 0x0000\n     - Success\n     - Success\n\nBelow.\n\nOther {n:06}\n------------\n\n"
        f"Text {n}.\n"
        for n in range(count)
    ]
    return "Echo\n====\n\n" + "\n".join(sections)


def test_laying_out_the_docs_is_linear_in_tables_and_paragraphs() -> None:
    """Placing prose and naming anchors does work in proportion to the page (lines of docview
    run, counted): a search over every heading per paragraph, or a count up to a free name per
    replaced row, made a page of thousands of tables take minutes."""

    def lines_run(count: int) -> int:
        page = parse_page(many_tables(count), "echo.rst")
        lines = 0

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            nonlocal lines
            if frame.f_code.co_filename != docview.__file__:
                return None
            lines += event == "line"
            return trace

        sys.settrace(trace)
        try:
            view = docview.docs_view(page)
        finally:
            sys.settrace(None)
        assert len(view.anchors) == len(set(view.anchors)) == count
        return lines

    small, large = lines_run(100), lines_run(400)
    assert large < 5 * small, (small, large)
