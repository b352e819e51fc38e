"""Renders pages to output text: the only module that knows Jinja2.

``render`` is a pure function from models to ``{relative path: text}``; nothing here touches the
output directory, so ``check`` is "render, then compare". Templates live in ``templates/``; a
user's ``--templates`` directory overrides any of them by file name. What the templates need of
a page comes from ``views``, Python layout helpers from ``pysource``, and black and the HTML
writer run in ``finish``.
"""

from __future__ import annotations

import ast
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from generator import BUILTIN_TEMPLATES
from generator.annex_c import ANNEX_C
from generator.errors import Problem, SpecError, TemplateError
from generator.finish import Finisher
from generator.html import uid_name
from generator.model import Page, code_text
from generator.pysource import docstring, pyargs, pydef, pyfit, pyrepr, pytuple
from generator.rst_text import escape_inline, grid_table, text_width
from generator.views import service_view

PAGE_TEMPLATES = {
    "page.py.j2": "{stem}.py",
    "page.rst.j2": "docs/{stem}.rst",
}
"""Templates rendered once per page, and the output path each renders to."""
SITE_TEMPLATES = {"index.html.j2": "docs/index.html", "style.css.j2": "docs/style.css"}
"""Templates rendered once for all pages together."""


def rst_cell(value: str) -> str:
    """Plain text escaped for a generated RST table cell or paragraph."""
    return escape_inline(" ".join(str(value).split()))


def underline(title: str, char: str) -> str:
    """An RST section underline as wide as ``title`` is on screen (wide characters count twice)."""
    return char * max(4, text_width(title))


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The Jinja environment: a user's ``templates`` directory first, then the built-in one."""
    search = [str(templates)] if templates is not None else []
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
    )
    env.globals.update(
        pyfit=pyfit, pytuple=pytuple, pyargs=pyargs, pydef=pydef, grid_table=grid_table
    )
    return env


def _template_names(env: jinja2.Environment) -> list[str]:
    return sorted(set(env.list_templates(filter_func=lambda name: name.endswith(".j2"))))


def templates_digest(env: jinja2.Environment) -> str:
    """sha256 over every template's name and source, so a template change shows in the header."""
    digest = hashlib.sha256()
    assert env.loader is not None
    for name in _template_names(env):
        source, _, _ = env.loader.get_source(env, name)
        digest.update(name.encode() + b"\0" + source.encode("utf-8") + b"\0")
    return digest.hexdigest()


def render(
    pages: Iterable[Page], templates: Path | None = None, *, count: int | None = None
) -> dict[str, str]:
    """Render every output file of ``pages``: ``{path relative to the output dir: text}``.

    Page modules, the runtime files (every other ``*.py.j2``, rendered once under its own name),
    ``py.typed``, and the docs: RST per page, docutils HTML5 built from that RST, and an index.
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
    outputs: dict[str, str] = {"py.typed": ""}
    views = []
    problems: list[Problem] = []
    try:
        for page in pages:
            if problems:
                continue  # nothing will be written; reading on reports every bad page
            try:
                views.append(_render_page(env, digest, page, finisher, outputs))
            except SpecError as exc:
                problems.extend(exc.problems)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError.of(sorted(problems, key=lambda p: (p.path, p.line)))
    views.sort(key=lambda view: view["page"].stem)
    for template, target in SITE_TEMPLATES.items():
        outputs[target] = _render_one(env, template, {"pages": views}, target, finisher)
    for name in _template_names(env):
        if name.endswith(".py.j2") and name not in PAGE_TEMPLATES:
            target = name[: -len(".j2")]
            context = {"pages": views, "annex_c": ANNEX_C}
            outputs[target] = _render_one(env, name, context, target, finisher)
    outputs.update(finisher.results())
    return dict(sorted(outputs.items()))


def _render_page(
    env: jinja2.Environment,
    digest: str,
    page: Page,
    finisher: Finisher,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """Render ``page``'s own outputs into ``outputs``; its view, for the templates of all pages."""
    services = [
        service_view(page, dimse) for dimse in dict.fromkeys(t.dimse for t in page.status_tables)
    ]
    context = {
        "page": page,
        "services": services,
        "source_name": Path(page.source).name,
        "templates_sha256": digest,
        "backend_methods": list(dict.fromkeys(m for s in services for m in s.methods)),
        "status_count": sum(len(t.statuses) for t in page.status_tables),
    }
    for template, target in PAGE_TEMPLATES.items():
        path = target.format(stem=page.stem)
        outputs[path] = _render_one(env, template, context, path, finisher)
        if path.endswith(".py"):
            _refuse_clashes(page, outputs[path])  # the template's text, before black
    finisher.submit(f"docs/{page.stem}.html", "html", outputs[f"docs/{page.stem}.rst"], "")
    return context


def _module_bindings(source: str) -> Counter[str]:
    """How often each name is bound at the top level of a module (imports, assignments, defs)."""
    counts: Counter[str] = Counter()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            counts.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[node.name] += 1
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            counts.update(t.id for t in targets if isinstance(t, ast.Name))
    return counts


def _refuse_clashes(page: Page, module_source: str) -> None:
    """A SOP class keyword must name its own constant and nothing else the template binds
    (``UID``, ``Backend``, ``CFindStatus``, ...), or one would silently replace the other."""
    try:
        bindings = _module_bindings(module_source)
    except SyntaxError:
        return  # black reports the template's broken Python with its own message
    for sop in page.sop_classes:
        if bindings[sop.keyword] > 1:
            raise SpecError(
                page.source,
                sop.line,
                f"SOP class keyword {sop.keyword!r} clashes with a name the generated module "
                "defines",
            )


def _render_one(
    env: jinja2.Environment,
    template: str,
    context: Mapping[str, Any],
    path: str,
    finisher: Finisher,
) -> str:
    """Render ``template``; Python goes on to ``finisher`` for black, and the text returned is
    the template's until ``finisher.results()`` replaces it."""
    try:
        text = env.get_template(template).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template}: {exc}") from None
    if path.endswith(".py"):
        finisher.submit(path, "python", text, template)
    return text
