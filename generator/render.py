"""Renders pages to output text: the only module that knows Jinja2.

``render`` is a pure function from models to ``{relative path: text}``; nothing here touches the
output directory, so ``check`` is "render, then compare". Templates live in ``templates/``; a
user's ``--templates`` directory overrides any of them by file name. What the templates need of
a page comes from ``views``, Python layout helpers from ``pysource``, and black and the HTML
writer run in ``finish``.
"""

from __future__ import annotations

import hashlib
import keyword
import os
import symtable
import traceback
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2

from generator import BUILTIN_TEMPLATES, RUNTIME
from generator.conformance import conformance_view
from generator.docview import docs_view
from generator.errors import Problem, ServicegenError, SpecError, TemplateError
from generator.finish import Finisher
from generator.html import uid_name
from generator.model import Page, code_text
from generator.pysource import docstring, pyargs, pydef, pyfit, pyrepr, pytuple
from generator.rst_text import embedded_uri, escape_inline, grid_table, simple_table, text_width
from generator.views import service_view
from generator.writer import MANIFEST

PAGE_TEMPLATES = {
    "page.py.j2": "{stem}.py",
    "page.rst.j2": "docs/{stem}.rst",
}
"""Templates rendered once per page, and the output path each renders to."""
PAGE_HTML = "docs/{stem}.html"
"""The page's HTML, which docutils writes from its RST."""
SITE_TEMPLATES = {
    "index.html.j2": "docs/index.html",
    "index.rst.j2": "docs/index.rst",
    "conf.py.j2": "docs/conf.py",
    "conformance.rst.j2": "docs/conformance.rst",
}
"""Templates rendered once for all pages together: the docutils site's index, the Sphinx
site's front page and configuration (``python -m sphinx -W -b html generated/docs OUT``), and
the conformance statement of the AE that serves every page."""
SITE_HTML = {"docs/conformance.html": "conformance.rst.j2"}
"""HTML that docutils writes from a site template's RST: path -> that template."""
SPHINX_HTML = {"docs/search.html": "Sphinx", "docs/genindex.html": "Sphinx"}
"""Pages Sphinx writes itself into a site built from ``docs/``: a page's RST of the same name
would replace them. (``py-modindex`` is no module name, so no page is named so.)"""


def runtime_files() -> dict[str, Path]:
    """The built-in runtime, copied verbatim: output path -> source file. Its modules keep their
    names; the stylesheet goes with the docs."""
    return {
        (f"docs/{path.name}" if path.suffix == ".css" else path.name): path
        for path in sorted(RUNTIME.iterdir())
        if path.suffix in (".py", ".css") and path.name != "__init__.py"
    }


def rst_cell(value: str) -> str:
    """Plain text escaped for a generated RST table cell or paragraph."""
    return escape_inline(" ".join(str(value).split()))


def underline(title: str, char: str) -> str:
    """An RST section underline as wide as ``title`` is on screen (wide characters count twice)."""
    return char * max(4, text_width(title))


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The Jinja environment: a user's ``templates`` directory first, then the built-in one. A
    template there that cannot be read would silently give way to the built-in one of its
    name, so it is an error."""
    search = [str(templates)] if templates is not None else []
    for folder, _, files in os.walk(search[0] if search else ""):  # as Jinja lists them
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".j2") and not os.path.isfile(path):
                raise TemplateError(f"{path}: not a readable file")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*search, str(BUILTIN_TEMPLATES)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    )
    env.filters.update(
        pyrepr=pyrepr,
        docstring=docstring,
        rst=rst_cell,
        underline=underline,
        uid_name=uid_name,
        code_text=code_text,
        uri=embedded_uri,
    )
    env.globals.update(
        pyfit=pyfit,
        pytuple=pytuple,
        pyargs=pyargs,
        pydef=pydef,
        grid_table=grid_table,
        simple_table=simple_table,
    )
    return env


def _template_names(env: jinja2.Environment) -> list[str]:
    with _template_errors("templates"):
        return sorted(set(env.list_templates(filter_func=lambda name: name.endswith(".j2"))))


def templates_digest(env: jinja2.Environment) -> str:
    """sha256 over every template's name and source, so a template change shows in the header."""
    digest = hashlib.sha256()
    assert env.loader is not None
    for name in _template_names(env):
        with _template_errors(name):
            source, _, _ = env.loader.get_source(env, name)
        digest.update(name.encode() + b"\0" + source.encode("utf-8") + b"\0")
    return digest.hexdigest()


@contextmanager
def _template_errors(template: str) -> Iterator[None]:
    """Any failure of a template (a user's ``--templates`` are code: a syntax error, a
    ``ZeroDivisionError``, a recursive include, bytes that are not UTF-8, a dangling link) as
    one ``TemplateError`` naming the template file and line, never a traceback."""
    try:
        yield
    except ServicegenError:
        raise
    except Exception as exc:  # noqa: BLE001 - see above
        where = template
        if isinstance(exc, jinja2.TemplateSyntaxError):
            where = f"{exc.filename or exc.name or template}:{exc.lineno}"
        else:
            frames = traceback.extract_tb(exc.__traceback__)
            inside = [f for f in frames if f.filename.endswith(".j2")]
            if inside:
                where = f"{inside[-1].filename}:{inside[-1].lineno}"
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None


def render(
    pages: Iterable[Page], templates: Path | None = None, *, count: int | None = None
) -> dict[str, str]:
    """Render every output file of ``pages``: ``{path relative to the output dir: text}``.

    Page modules, the runtime (``runtime_files``, copied; every other ``*.py.j2``, rendered once
    under its own name), ``py.typed``, and the docs: RST per page, docutils HTML5 built from that
    RST, an index, the Sphinx site's ``index.rst`` and ``conf.py``, and the conformance statement
    of the AE that serves them all (RST, and HTML from it).
    black and the HTML writer, most of the cost, run in worker processes for many pages, and
    their results are cached per user (``_ResultCache``), so unchanged outputs cost neither again.
    ``pages`` may be read lazily (``cli.load``): each page's jobs go to the workers before the
    next page is read; ``count``, how many pages to expect, then sizes the workers.
    """
    if count is None:
        pages = list(pages)
        count = len(pages)
    env = environment(templates)
    digest = templates_digest(env)
    finisher = Finisher(count)
    try:
        return _render_all(env, digest, pages, finisher)
    finally:
        finisher.close()


def _render_all(
    env: jinja2.Environment, digest: str, pages: Iterable[Page], finisher: Finisher
) -> dict[str, str]:
    templates = _template_names(env)
    runtime = {
        name: name[: -len(".j2")]
        for name in templates
        if name.endswith(".py.j2") and name not in PAGE_TEMPLATES and name not in SITE_TEMPLATES
    }
    copied = {
        target: source
        for target, source in runtime_files().items()
        if Path(target).name + ".j2" not in templates
    }
    runtime.update(
        {Path(target).name + ".j2": target for target in runtime_files() if target not in copied}
    )
    paths = _Paths(
        {
            "py.typed": "servicegen",
            MANIFEST: "servicegen",
            **{target: template for template, target in SITE_TEMPLATES.items()},
            **SITE_HTML,
            **SPHINX_HTML,
            **{target: template for template, target in runtime.items()},
            **{target: f"runtime/{source.name}" for target, source in copied.items()},
        }
    )
    outputs: dict[str, str] = {"py.typed": ""}
    views = []
    problems: list[Problem] = []
    try:
        for page in pages:
            try:
                if problems:
                    paths.claim(page)  # nothing will be written; still report every bad page
                else:
                    views.append(_render_page(env, digest, page, finisher, outputs, paths))
            except SpecError as exc:
                problems.extend(exc.problems)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError.of(sorted(problems, key=lambda p: (p.path, p.line)))
    views.sort(key=lambda view: view["page"].stem)
    site = {"pages": views, "conformance": conformance_view(views)}
    for template, target in SITE_TEMPLATES.items():
        outputs[target] = _render_one(env, template, site, target, finisher)
    for html, template in SITE_HTML.items():
        finisher.submit(html, "html", outputs[SITE_TEMPLATES[template]], template)
    for template, target in runtime.items():
        outputs[target] = _render_one(env, template, {"pages": views}, target, finisher)
    for target, source in copied.items():
        outputs[target] = source.read_text(encoding="utf-8")
    outputs.update(finisher.results())
    return dict(sorted(outputs.items()))


def _render_page(
    env: jinja2.Environment,
    digest: str,
    page: Page,
    finisher: Finisher,
    outputs: dict[str, str],
    paths: _Paths,
) -> dict[str, Any]:
    """Render ``page``'s own outputs into ``outputs``; its view, for the templates of all pages."""
    targets = paths.claim(page)
    context = page_context(page, digest)
    _refuse_clashes(env, page, context)
    for template, path in targets.items():
        outputs[path] = _render_one(env, template, context, path, finisher)
    html = PAGE_HTML.format(stem=page.stem)
    rst = outputs[PAGE_TEMPLATES["page.rst.j2"].format(stem=page.stem)]
    finisher.submit(html, "html", rst, "page.rst.j2")
    return context


def page_context(page: Page, digest: str) -> dict[str, Any]:
    """What the page templates are rendered with; ``digest`` is the templates' sha256."""
    services = [
        service_view(page, dimse) for dimse in dict.fromkeys(t.dimse for t in page.status_tables)
    ]
    return {
        "page": page,
        "services": services,
        "source_name": Path(page.source).name,
        "templates_sha256": digest,
        "backend_methods": list(dict.fromkeys(m for s in services for m in s.methods)),
        "levels": any(s.hierarchical and s.dimse.value == "C-FIND" for s in services),
        "status_count": sum(len(t.statuses) for t in page.status_tables),
        "docs": docs_view(page),
    }


def page_module(env: jinja2.Environment, page: Page) -> str:
    """``page``'s module as ``env``'s ``page.py.j2`` renders it, before black: what ``diff``
    reads the generated API from. Its header holds no templates digest, which no name needs,
    and the keywords are not checked for clashes, so a page ``generate`` refuses still has one."""
    return _render_text(env, "page.py.j2", page_context(page, ""))


class _Paths:
    """Who writes each output path, so no file is written twice: a page whose output would be
    another page's, or a file the generator writes itself, is refused. Paths are compared
    case-folded, as macOS and Windows file systems compare names."""

    def __init__(self, own: Mapping[str, str]) -> None:
        self._writers = {path.casefold(): (path, writer) for path, writer in own.items()}

    def claim(self, page: Page) -> dict[str, str]:
        """``page``'s outputs, template -> path, each the page's alone from now on."""
        fault = _stem_fault(page.stem)
        if fault:
            raise SpecError(page.source, 1, f"file name {page.stem!r} {fault}")
        targets = {t: path.format(stem=page.stem) for t, path in PAGE_TEMPLATES.items()}
        paths = [*targets.values(), PAGE_HTML.format(stem=page.stem)]
        for path in paths:
            if path.casefold() in self._writers:
                other, writer = self._writers[path.casefold()]
                same = "" if other == path else f" as {other}, one file where case is ignored"
                raise SpecError(
                    page.source, 1, f"its output {path} is also written by {writer}{same}"
                )
        self._writers.update((path.casefold(), (path, page.source)) for path in paths)
        return targets


def _stem_fault(stem: str) -> str | None:
    """Why a page's file name cannot name its module, or None: ``from package import <stem>``
    must find it, as Python spells it after NFKC normalisation."""
    if not stem.isidentifier() or keyword.iskeyword(stem):
        return "is no Python module name"
    if stem.startswith("_"):
        return "starts with '_', which the generated package keeps for its own modules"
    normal = unicodedata.normalize("NFKC", stem)
    if normal != stem:
        return f"is not in NFKC form, so Python would import it as {normal!r}"
    return None


_STAND_IN = "servicegen_sop_class_"


def _global_names(source: str) -> set[str]:
    """Every name of a module's global scope: bound or read at its top level, or read from it by
    a function or class body."""
    table = symtable.symtable(source, "<module>", "exec")
    names = {symbol.get_name() for symbol in table.get_symbols()}
    nested = list(table.get_children())
    while nested:
        scope = nested.pop()
        names.update(symbol.get_name() for symbol in scope.get_symbols() if symbol.is_global())
        nested.extend(scope.get_children())
    return names


def _refuse_clashes(env: jinja2.Environment, page: Page, context: Mapping[str, Any]) -> None:
    """A SOP class keyword names a module-level constant that ``from module import *`` exports,
    so it must not be a name the module holds or reads for anything else (``UID``, ``Backend``,
    ``CFindStatus``; the parser refuses ``_`` names and builtins). Which names those are, the
    template tells: the module is rendered again with stand-ins for the keywords, aliases and
    all. Enum member names, aliases included, live in their enum's body, where no keyword can
    reach them; ``views.service_view`` proves those unique."""
    if not page.sop_classes:
        return
    sops = tuple(replace(sop, keyword=f"{_STAND_IN}{n}") for n, sop in enumerate(page.sop_classes))
    stand_ins = {sop.keyword for sop in sops}
    text = _render_text(env, "page.py.j2", {**context, "page": replace(page, sop_classes=sops)})
    try:
        used = _global_names(text) - stand_ins
    except SyntaxError:
        return  # black reports the template's broken Python with its own message
    problems = [
        Problem(
            page.source,
            sop.line,
            f"SOP class keyword {sop.keyword!r} clashes with a name the generated module defines",
        )
        for sop in page.sop_classes
        if sop.keyword in used
    ]
    if problems:
        raise SpecError.of(problems)


def _render_text(env: jinja2.Environment, template: str, context: Mapping[str, Any]) -> str:
    with _template_errors(template):
        return env.get_template(template).render(context)


def _render_one(
    env: jinja2.Environment,
    template: str,
    context: Mapping[str, Any],
    path: str,
    finisher: Finisher,
) -> str:
    """Render ``template``; Python goes on to ``finisher`` for black, and the text returned is
    the template's until ``finisher.results()`` replaces it."""
    text = _render_text(env, template, context)
    if path.endswith(".py"):
        finisher.submit(path, "python", text, template)
    return text
