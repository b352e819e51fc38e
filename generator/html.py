"""The HTML docs: docutils' HTML5 writer over the generated RST, with anchors, self-links and
category badges added to the doctree in between, so the RST itself holds no raw HTML."""

from __future__ import annotations

import re

import docutils.core
import docutils.utils
from docutils import nodes
from pydicom.uid import UID

from generator.errors import TemplateError
from generator.model import Dimse
from generator.rst_text import Discard

_GENERATOR_META = re.compile(r'<meta name="generator"[^>]*>\n')
"""docutils names its version in every page; dropped so output is the same across versions."""


def uid_name(uid: str) -> str:
    """pydicom's registry name for ``uid``, so the docs show what pydicom calls the SOP class."""
    name = UID(uid).name
    return name if name != uid else "unknown to pydicom"


_HTML_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "line_length_limit": 1_000_000,
    "stylesheet_path": "",
    "stylesheet": "style.css",
    "embed_stylesheet": False,
    "section_self_link": True,
    "toc_backlinks": False,
    "output_encoding": "utf-8",
    "_disable_config": True,
}
"""One shared stylesheet, linked relatively so the site works from file://; self-links on
headings, and no links from a table of contents' title or entries' headings back to it; UTF-8
output, so docutils declares the charset a browser needs to read a local file.
No file insertion and no raw output, whatever the RST says; no limit on line length below the
parser's (a grid table row is as long as its longest description)."""
_READ_SETTINGS = {**_HTML_SETTINGS, "halt_level": 2, "warning_stream": Discard()}
"""Reading generated RST stops at docutils' first warning, raised rather than printed."""
_DIMSE_CLASSES = frozenset(dimse.value.lower() for dimse in Dimse)
"""The `:class:` that names a status table's service: ``c-find``, ``n-event-report``, ..."""


def rst_to_html(rst: str, template: str = "page.rst.j2") -> str:
    """docutils' HTML5 page for generated RST, linking ``style.css``.

    The doctree gets its anchors, self-links and category badges (``_decorate``) between reading
    and writing, so the RST holds no raw HTML and Sphinx reads it as it is. Generated RST must
    read cleanly: any docutils complaint (hidden from the page by ``report_level``) is an error
    here, naming ``template``, the one that rendered it, so a page never silently loses a table.
    """
    try:
        document = docutils.core.publish_doctree(rst, settings_overrides=_READ_SETTINGS)
        _decorate(document)
        out = docutils.core.publish_from_doctree(
            document, writer="html5", settings_overrides=_HTML_SETTINGS
        )
    except docutils.utils.SystemMessage as exc:
        message = " ".join(str(exc).split())
        raise TemplateError(f"{template} rendered RST docutils rejects: {message}") from None
    except TemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - docutils' own failure: one line, not a traceback
        raise TemplateError(f"docutils cannot write the HTML docs: {exc!r}") from None
    assert isinstance(out, bytes)
    return _GENERATOR_META.sub("", out.decode("utf-8"))


def _decorate(document: nodes.document) -> None:
    """Anchor the rows of the tables ``page.rst.j2`` marks with ``:class:``; README "HTML docs".

    The RST's own anchors, the inline targets of a SOP class's keyword and of a status row's
    Python name (ids Sphinx gives them too), become links to themselves. A SOP class row gets
    ``id=<keyword>``, its keyword cell linking the keyword's target (the row when it has none).
    A status row gets ``<dimse>-0xNNNN`` (``c-find-0xA700``; a range by its first code; ``-2``,
    ``-3``, ... when a later table of that service repeats the code), which its code cell links,
    and its code cell ``0xNNNN`` where the code first occurs on the page, so ``#0xA700`` finds
    it. Any id docutils already gave keeps it; a clashing new one gets a suffix.
    """
    taken = set(document.ids)

    def claim(wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in taken:
            n += 1
            candidate = f"{wanted}-{n}"
        taken.add(candidate)
        return candidate

    for table in document.findall(nodes.table):
        classes = table["classes"]
        if "sop-classes" in classes:
            keyword = _column(table, "sop class")
            for row, cells in _body_rows(table):
                anchor = claim(cells[keyword].astext().strip())
                if not _link_targets(cells[keyword]):
                    _self_link(row, cells[keyword], anchor)
                else:
                    row["ids"].append(anchor)
        elif "statuses" in classes:
            dimse = next((c for c in classes if c in _DIMSE_CLASSES), None)
            if dimse is None:
                raise TemplateError(
                    f"page.rst.j2: a status table's classes {classes} name no DIMSE"
                )
            code, category = _column(table, "code (hex)"), _column(table, "category")
            for row, cells in _body_rows(table):
                first = cells[code].astext().split()[0]
                _self_link(row, cells[code], claim(f"{dimse}-{first}"))
                if first not in taken:
                    taken.add(first)
                    cells[code]["ids"].append(first)
                for para in cells[category].findall(nodes.paragraph):
                    badge = f"badge-{para.astext().strip().lower()}"
                    para[:] = [nodes.inline("", "", *para.children, classes=["badge", badge])]
                for column, cell in enumerate(cells):
                    if column not in (code, category):
                        _link_targets(cell)
    header = document.get_decoration().get_header()
    header += nodes.paragraph(
        "", "", nodes.reference("", "All service classes", refuri="index.html")
    )


def _link_targets(cell: nodes.entry) -> bool:
    """Make each inline target in ``cell`` a link to itself; whether there was any."""
    targets = [t for t in cell.findall(nodes.target) if t["ids"] and not t.get("refuri")]
    for target in targets:
        link = nodes.reference("", "", refid=target["ids"][0])
        parent = target.parent
        parent[parent.index(target)] = link  # not replace_self, which moves the ids to the link
        link += target
    return bool(targets)


def _body_rows(table: nodes.table) -> list[tuple[nodes.row, list[nodes.entry]]]:
    """Each body row of ``table`` with its cells."""
    return [
        (row, [cell for cell in row.children if isinstance(cell, nodes.entry)])
        for body in table.findall(nodes.tbody)
        for row in body.findall(nodes.row)
    ]


def _column(table: nodes.table, name: str) -> int:
    """The index of the column headed ``name`` (case-insensitive) in a marked table."""
    for head in table.findall(nodes.thead):
        for row in head.findall(nodes.row):
            titles = [entry.astext().strip().lower() for entry in row.children]
            if name in titles:
                return titles.index(name)
    raise TemplateError(f"page.rst.j2: a table marked {table['classes']} has no {name!r} column")


def _self_link(row: nodes.row, cell: nodes.entry, anchor: str) -> None:
    """Give ``row`` the id ``anchor`` and make the text of ``cell`` a link to it."""
    row["ids"].append(anchor)
    for para in cell.findall(nodes.paragraph):
        para[:] = [nodes.reference("", "", *para.children, refid=anchor)]
