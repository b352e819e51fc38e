"""The conformance statement (``docs/conformance.rst`` and ``.html``): its facts against the
model, the handlers' roles and docstrings, the runtime's policy and pynetdicom; its contexts
against the AE ``serve`` really builds; determinism, escaping, Sphinx; and the same for a package
of pynetdicom's 24 pages."""

from __future__ import annotations

import importlib
import inspect
import random
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import docutils.core
import pytest
from docutils import nodes
from pydicom.datadict import keyword_for_tag
from pydicom.uid import UID
from pynetdicom import (
    ALL_TRANSFER_SYNTAXES,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
)
from pynetdicom._globals import APPLICATION_CONTEXT_NAME, DEFAULT_MAX_LENGTH

from generator import conformance, render
from generator.cli import main
from generator.errors import SpecError
from generator.html import _READ_SETTINGS
from generator.model import Page
from generator.parser import parse_page, read_page
from generator.runtime import _handlers, _levels, server
from generator.views import Service

from .conftest import ROOT, SEED
from .test_docs import Scan
from .test_pynetdicom_pages import mend

DOCS = ROOT / "generated" / "docs"
RST = DOCS / "conformance.rst"
HTML = DOCS / "conformance.html"


def served(pages: Sequence[Page]) -> list[tuple[Page, Sequence[Service]]]:
    """Each page with its services, as the templates see them, in ``serve``'s (file name) order."""
    contexts = [render.page_context(page, "") for page in sorted(pages, key=lambda p: p.stem)]
    return [(context["page"], context["services"]) for context in contexts]


def doctree(rst: str) -> nodes.document:
    return docutils.core.publish_doctree(rst, settings_overrides=_READ_SETTINGS)


def section(node: nodes.Element, ident: str) -> nodes.section:
    """The section of ``node`` with id ``ident``, or that holds the element with that id (the
    statement's own targets sit on the paragraph under a heading)."""
    found = [e for e in node.findall(nodes.Element) if ident in e["ids"]]
    assert len(found) == 1, ident
    element: nodes.Node | None = found[0]
    while element is not None and not isinstance(element, nodes.section):
        element = element.parent
    assert isinstance(element, nodes.section), ident
    return element


def tables(node: nodes.Node) -> list[tuple[str, list[list[str]]]]:
    """(caption, body rows as cell texts) of every table in ``node``."""
    found = []
    for table in node.findall(nodes.table):
        titles = [child.astext() for child in table.children if isinstance(child, nodes.title)]
        rows = [
            [" ".join(entry.astext().split()) for entry in row.children]
            for body in table.findall(nodes.tbody)
            for row in body.findall(nodes.row)
        ]
        found.append((titles[0] if titles else "", rows))
    return found


def table(node: nodes.Node, caption: str) -> list[list[str]]:
    matches = [rows for title, rows in tables(node) if title == caption]
    assert len(matches) == 1, (caption, [title for title, _ in tables(node)])
    return matches[0]


def plain(rst: str) -> str:
    """A one-line RST fragment's text as docutils shows it (inline literals unquoted)."""
    return " ".join(doctree(f"T\n=\n\n{rst}\n").children[-1].astext().split())


def docstring_codes(handler: Any) -> list[str]:
    """The "Sends only these codes" lines of a generated handler's docstring."""
    lines = [line.strip() for line in (handler.__doc__ or "").splitlines()]
    start = lines.index("Sends only these codes:") + 1
    return [line[2:] for line in lines[start:] if line.startswith("- ")]


def check_statement(
    rst: str, pages: Sequence[Page], modules: dict[str, ModuleType] | None = None
) -> nodes.document:
    """What must hold of any statement: every SOP class of every page in the overview with its
    UID and role, and every code each handler sends, with when, under its page and DIMSE
    service, as the handler's docstring says it (when ``modules`` has the page's module)."""
    document = doctree(rst)
    overview = section(document, "conformance-statement-overview")
    specific = section(document, "conformance-sop-specific")
    for page, services in served(pages):
        if page.sop_classes:
            rows = {row[1]: row for row in table(overview, page.title)}
            for sop in page.sop_classes:
                name = UID(sop.uid).name
                assert rows[sop.uid][0] == (sop.keyword if name == sop.uid else name)
                assert rows[sop.uid][3] == "Yes", (page.stem, sop.keyword)
        for service in services:
            ident = f"conformance-{page.stem}-{service.dimse.value.lower()}".replace("_", "-")
            part = section(specific, ident)
            sent = table(part, f"{service.dimse.value} statuses sent")
            assert sent == [
                [plain(role.label), role.status.description if role.status else "", role.behaviour]
                for role in service.sent
            ]
            if modules is not None:
                handler = getattr(modules[page.stem], service.handler)
                assert [f"{plain(row[0])}: {row[2]}" for row in sent] == [
                    plain(line) for line in docstring_codes(handler)
                ]
        # Each request a page's SOP class may get is answered by the page's handler, or said
        # to be answered elsewhere.
        text = " ".join(
            section(specific, f"conformance-{page.stem}".replace("_", "-")).astext().split()
        )
        for sop in page.sop_classes:
            for dimse in sop.dimse:
                elsewhere = f"{dimse.value} of {sop.keyword}: answered by"
                ident = f"conformance-{page.stem}-{dimse.value.lower()}".replace("_", "-")
                parts = [e for e in specific.findall(nodes.Element) if ident in e["ids"]]
                here = (
                    bool(parts)
                    and f"{sop.keyword} ({sop.uid})" in section(specific, ident).astext()
                )
                assert here != (elsewhere in text), (page.stem, sop.keyword, dimse.value)
    return document


def test_the_seed_statement_states_every_sop_class_and_every_code_sent(seed_page: Page) -> None:
    from generated import color_palette_service_class as module

    document = check_statement(RST.read_text(encoding="utf-8"), [seed_page], {SEED.stem: module})
    specific = section(document, "conformance-sop-specific").astext()
    for sop in seed_page.sop_classes:
        assert f"{sop.keyword} ({sop.uid})" in specific
    overview = section(document, "conformance-statement-overview")
    storage = table(overview, "Storage SOP classes for C-GET")
    assert [row[1] for row in storage] == sorted(
        _handlers.STORAGE_SOP_CLASSES, key=lambda uid: [int(part) for part in uid.split(".")]
    )
    assert {(row[2], row[3]) for row in storage} == {("Yes (C-GET, C-MOVE)", "No")}
    assert table(overview, "Verification, which serve adds") == [
        ["Verification SOP Class", "1.2.840.10008.1.1", "No", "Yes"]
    ]
    # No page has C-STORE: pynetdicom answers one on a C-GET storage context, and it says so.
    assert "0xC211" in overview.astext()


def test_the_index_links_the_statement() -> None:
    index = Scan((DOCS / "index.html").read_text(encoding="utf-8"))
    assert "conformance.html" in index.links
    page = Scan(HTML.read_text(encoding="utf-8"))
    assert "index.html" in page.links
    assert page.resources == [("link", "style.css")]


def test_policy_defaults_are_the_runtimes_and_the_command_lines() -> None:
    document = doctree(RST.read_text(encoding="utf-8"))
    rows = {row[1]: row[2] for row in table(document, "Configuration parameters")}
    policy = server.Policy()
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(server.serve).parameters.items()
    }
    assert rows["--ae-title"] == defaults["ae_title"] == "SERVICEGEN"
    assert rows["--host"] == defaults["host"]
    assert rows["--port"] == str(defaults["port"])
    assert rows["--any-called-ae"] == ("no" if policy.require_called_ae else "yes")
    assert rows["--max-associations"] == str(policy.max_associations)
    for name in ("acse", "dimse", "network"):
        assert rows[f"--{name}-timeout"] == f"{getattr(policy, f'{name}_timeout'):g} s"
    assert rows["not configurable"] == f"{DEFAULT_MAX_LENGTH} bytes"
    # The options and defaults are those `python -m generated serve --help` prints.
    result = subprocess.run(
        [sys.executable, "-m", "generated", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    text = " ".join(result.stdout.split("options:", 1)[1].split())
    shown = {"False": "no", "True": "yes"}
    for option, default in rows.items():
        if not option.startswith("--"):
            continue
        found = re.search(re.escape(option) + r"\b[^()]*?\(default: ([^)]*)\)", text)
        assert found is not None, option
        value = shown.get(found.group(1), found.group(1))
        if option.endswith("-timeout"):
            value = f"{float(value):g} s"
        assert value == default, option
    general = dict(table(document, "General association parameters"))
    assert general["AE title"] == f"{defaults['ae_title']} (--ae-title)"
    assert general["Application Context Name"] == APPLICATION_CONTEXT_NAME
    assert general["Maximum PDU size received"].startswith(f"{DEFAULT_MAX_LENGTH} bytes")
    associations = dict(table(document, "Number of associations"))
    assert associations["Simultaneous associations accepted"].startswith(
        f"{policy.max_associations} "
    )


def test_implementation_identity_and_transfer_syntaxes_are_pynetdicoms() -> None:
    document = doctree(RST.read_text(encoding="utf-8"))
    identity = dict(table(document, "Implementation identifying information"))
    assert identity == {
        "Implementation Class UID": PYNETDICOM_IMPLEMENTATION_UID,
        "Implementation Version Name": PYNETDICOM_IMPLEMENTATION_VERSION,
    }
    syntaxes = table(document, "Transfer Syntaxes")
    assert sorted(uid for _, uid in syntaxes) == sorted(map(str, ALL_TRANSFER_SYNTAXES))
    assert [uid for _, uid in syntaxes] == sorted(
        (uid for _, uid in syntaxes), key=lambda uid: [int(part) for part in uid.split(".")]
    )
    for name, uid in syntaxes:
        assert name == UID(uid).name != uid
    contexts = table(document, "Presentation contexts accepted")
    assert {row[2] for row in contexts} == {"All (Transfer Syntaxes table)"}


def real_contexts(
    modules: Sequence[ModuleType], package_server: ModuleType
) -> list[tuple[Any, ...]]:
    ae = package_server._build_ae(modules, None, "SERVICEGEN", package_server.Policy())
    return [
        (str(cx.abstract_syntax), sorted(map(str, cx.transfer_syntax)), cx.scu_role, cx.scp_role)
        for cx in ae.supported_contexts
    ]


def recorded_contexts(pages: Sequence[Page]) -> list[tuple[Any, ...]]:
    return [
        (str(cx.abstract_syntax), sorted(map(str, cx.transfer_syntax)), cx.scu_role, cx.scp_role)
        for cx in conformance.supported_contexts(served(pages))
    ]


def test_the_contexts_stated_are_those_the_served_ae_supports(seed_page: Page) -> None:
    from generated import color_palette_service_class as module
    from generated import server as package_server

    assert recorded_contexts([seed_page]) == real_contexts([module], package_server)


def test_the_statement_is_deterministic(seed_page: Page, tmp_path: Path) -> None:
    other = parse_page(
        (SEED.read_text(encoding="utf-8")).replace(
            "Color Palette Query/Retrieve Service Class", "Another Palette Class", 1
        ),
        str(tmp_path / "another.rst"),
    )
    first = render.render([seed_page, other])
    again = render.render([other, seed_page])
    for path in ("docs/conformance.rst", "docs/conformance.html"):
        assert first[path] == again[path]
    text = first["docs/conformance.rst"]
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text)
    assert text.index("python -m generated serve another color_palette_service_class FOLDER")
    committed = render.render([seed_page])
    assert committed["docs/conformance.rst"] == RST.read_text(encoding="utf-8")
    assert committed["docs/conformance.html"] == HTML.read_text(encoding="utf-8")


HOSTILE = """\
{title}
{rule}

.. list-table::
   :header-rows: 1

   * - UID
     - SOP Class
   * - 1.2.840.10008.5.1.4.39.2
     - ColorPaletteInformationModelFind

C-FIND Statuses
---------------

.. list-table::
   :header-rows: 1

   * - Code (hex)
     - Category
     - Description
   * - 0x0000
     - Success
     - {description}
   * - 0xC000 to 0xCFFF
     - Failure
     - Unable to process
   * - 0xFF00
     - Pending
     - Matches are continuing
"""


@pytest.mark.parametrize(
    "title",
    [
        # markup characters escaped in the page, so its text holds them: `Co`_ |sub|
        '<script>alert("x")</script> & \\`Co\\`\\_ \\|sub\\| **b**',
        "Configuration",
        "conformance-configuration",
        "C-FIND Matching",
    ],
)
def test_page_text_is_escaped_and_cannot_take_a_section(title: str) -> None:
    description = "<img src=x onerror=alert(1)> *done* and `a link <https://example.org/>`__"
    text = HOSTILE.format(title=title, rule="=" * len(title), description=description)
    page = parse_page(text, "evil.rst")
    outputs = render.render([page])
    html = outputs["docs/conformance.html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    scan = Scan(html)
    assert "https://example.org/" in scan.links
    for link in scan.links:
        if link.startswith("#"):
            assert link[1:] in scan.ids, link
    assert "#conformance-configuration" in scan.links
    assert scan.ids.count("conformance-configuration") == 1
    document = doctree(outputs["docs/conformance.rst"])
    overview = section(document, "conformance-statement-overview")
    assert next(title for title, _ in tables(overview)) == " ".join(page.title.split())
    check_statement(outputs["docs/conformance.rst"], [page])


def test_a_page_cannot_take_the_statements_files_and_no_page_is_said_to_be_none() -> None:
    page = parse_page(SEED.read_text(encoding="utf-8"), "spec/conformance.rst")
    with pytest.raises(SpecError) as caught:
        render.render([page])
    assert caught.value.lines() == [
        (
            "spec/conformance.rst:1: its output docs/conformance.rst is also written by"
            " conformance.rst.j2"
        )
    ]
    empty = render.render([])
    assert "The package has no pages" in empty["docs/conformance.rst"]
    document = doctree(empty["docs/conformance.rst"])
    overview = section(document, "conformance-statement-overview")
    assert [title for title, _ in tables(overview)] == ["Verification, which serve adds"]


def test_relational_queries_are_said_once_and_only_for_the_hierarchical_models() -> None:
    assert conformance.RELATIONAL.negotiation not in RST.read_text(encoding="utf-8")
    assert "Relational queries" not in RST.read_text(encoding="utf-8")


def test_the_statement_builds_with_sphinx_without_warnings(tmp_path: Path) -> None:
    sphinx_build(tmp_path, DOCS)


def sphinx_build(tmp_path: Path, docs: Path) -> None:
    """Build a generated docs folder, a Sphinx project with the statement in its toctree, as
    the README publishes it, nitpicky too: no warning."""
    pytest.importorskip("sphinx")
    from sphinx.cmd.build import build_main

    assert build_main(["-W", "-n", "-q", "-b", "html", str(docs), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "conformance.html").is_file()


# pynetdicom's own pages, generated into one package


@pytest.fixture(scope="module")
def pynetdicom_package(
    pynetdicom_pages: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Page], dict[str, ModuleType]]]:
    root = tmp_path_factory.mktemp("conformance")
    spec = mend(pynetdicom_pages, root / "spec")
    out = root / "pynd_conformance"
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    pages = [read_page(p) for p in sorted(spec.glob("*.rst")) if p.stem != "index"]
    sys.path.insert(0, str(root))
    try:
        modules = {page.stem: importlib.import_module(f"{out.name}.{page.stem}") for page in pages}
        yield out, pages, modules
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith(out.name)]:
            del sys.modules[name]


def test_pynetdicoms_pages_give_a_complete_statement(
    pynetdicom_package: tuple[Path, list[Page], dict[str, ModuleType]],
) -> None:
    out, pages, modules = pynetdicom_package
    assert len(pages) == 23
    rst = (out / "docs" / "conformance.rst").read_text(encoding="utf-8")
    document = check_statement(rst, pages, modules)
    html = Scan((out / "docs" / "conformance.html").read_text(encoding="utf-8"))
    assert len(html.ids) == len(set(html.ids))
    for link in html.links:
        if link.startswith("#"):
            assert link[1:] in html.ids, link
    # The relational-query sentence, once, and the negotiation on each hierarchical model's row.
    assert rst.count("Relational queries are accepted") == 1
    contexts = {row[1]: row for row in table(document, "Presentation contexts accepted")}
    for uid in _levels.MODELS:
        assert contexts[uid][4] == conformance.RELATIONAL.negotiation
    # The keys of every level of every model, each level once.
    levels = section(document, "query-levels")
    shown = tables(levels)
    models = list(_levels.MODELS.values())
    distinct = list(dict.fromkeys(level for model in models for level in model.levels))
    assert len(shown) == len(distinct)
    for level, (caption, rows) in zip(distinct, shown):
        assert caption.startswith(f"{level.name} level: ")
        keys = {keyword_for_tag(tag) for tag in level.keys | level.computed | {level.unique}}
        assert {row[0] for row in rows} == keys
        assert rows[0] == [level.unique_keyword, rows[0][1], rows[0][2], "Unique", rows[0][4]]
    # A page's SOP class another page's handler answers is said to be.
    application = section(document, "conformance-application-event").astext()
    assert "N-CREATE of SubstanceAdministrationLogging: answered by the page" in application


def test_pynetdicoms_statement_states_the_contexts_the_served_ae_supports(
    pynetdicom_package: tuple[Path, list[Page], dict[str, ModuleType]],
) -> None:
    out, pages, modules = pynetdicom_package
    package_server = importlib.import_module(f"{out.name}.server")
    ordered = [modules[page.stem] for page in sorted(pages, key=lambda p: p.stem)]
    assert recorded_contexts(pages) == real_contexts(ordered, package_server)
    shuffled = list(pages)
    random.Random(4).shuffle(shuffled)
    assert recorded_contexts(shuffled) == recorded_contexts(pages)


def test_pynetdicoms_statement_builds_with_sphinx(
    pynetdicom_package: tuple[Path, list[Page], dict[str, ModuleType]], tmp_path: Path
) -> None:
    out, _, _ = pynetdicom_package
    sphinx_build(tmp_path, out / "docs")
