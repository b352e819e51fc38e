"""Renders pages to output text: the only module that knows Jinja2 and black.

``render`` is a pure function from models to ``{relative path: text}``; nothing here touches the
output directory, so ``check`` is "render, then compare". Templates live in ``templates/``; a
user's ``--templates`` directory overrides any of them by file name.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import black
import docutils.core
import docutils.utils
import jinja2
from black.mode import TargetVersion
from black.parsing import InvalidInput
from black.strings import str_width
from docutils import nodes
from pydicom.uid import UID

from generator import writer
from generator.annex_c import ANNEX_C
from generator.errors import SpecError, TemplateError
from generator.model import Category, Dimse, Page, Status, code_text, member_names
from generator.rst_text import escape_inline, grid_table

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

BUILTIN_TEMPLATES = next(
    where
    for where in (
        Path(__file__).resolve().parent
        / "templates",  # an installed wheel (pyproject's package-dir)
        Path(__file__).resolve().parent.parent / "templates",  # a checkout or an editable install
    )
    if where.is_dir()
)
PAGE_TEMPLATES = {
    "page.py.j2": "{stem}.py",
    "page.rst.j2": "docs/{stem}.rst",
}
"""Templates rendered once per page, and the output path each renders to."""
SITE_TEMPLATES = {"index.html.j2": "docs/index.html", "style.css.j2": "docs/style.css"}
"""Templates rendered once for all pages together."""
_GENERATOR_META = re.compile(r'<meta name="generator"[^>]*>\n')
"""docutils names its version in every page; dropped so output is the same across versions."""
BLACK_MODE = black.Mode(line_length=100, target_versions={TargetVersion.PY310})


@dataclass(frozen=True)
class BackendMethod:
    signature: str
    doc: str


@dataclass(frozen=True)
class Service:
    """What the page template needs of one DIMSE service: names, merged rows, handler shape."""

    dimse: Dimse
    members: tuple[tuple[str, Status], ...]
    roles: Mapping[str, str]
    """The ``_handlers.Roles`` fields: the codes the handler itself chooses, by member name."""
    consequences: Mapping[str, str]
    """Codes pynetdicom sends because of what the handler yielded (0xB000, 0xA801)."""
    runtime: str
    params: str
    returns: str
    methods: tuple[BackendMethod, ...]

    @property
    def enum_name(self) -> str:
        return "".join(part.capitalize() for part in self.dimse.value.split("-")) + "Status"

    @property
    def table_name(self) -> str:
        return f"{self.dimse.ident}_STATUSES"

    @property
    def handler(self) -> str:
        return f"handle_{self.dimse.ident.lower()}"

    @property
    def uses_backend(self) -> bool:
        return "backend" in self.params

    @property
    def args(self) -> str:
        return "event, backend" if self.uses_backend else "event"

    @property
    def roles_by_member(self) -> dict[str, str]:
        outcomes = {**self.roles, **self.consequences}
        return {member: _ROLE_DOCS[role] for role, member in outcomes.items()}


_ROLE_DOCS = {
    "success": "sent when the request completes",
    "failure": "sent when the backend raises",
    "pending": "sent per match or sub-operation",
    "cancel": "sent when the peer cancels",
    "warning": "sent by pynetdicom when a sub-operation fails",
    "unknown_destination": "sent by pynetdicom when the backend knows no such destination",
    "no_such_instance": "sent when the backend finds no such instance",
}

_N_PARAMS = "event: Event, backend: Backend"
_N_RETURNS = "tuple[int, Dataset | None]"
_FIND = BackendMethod(
    "find(self, identifier: Dataset) -> Iterable[Dataset]",
    "Yield the matches for a C-FIND ``identifier``, each holding only the requested keys.",
)
_RETRIEVE = BackendMethod(
    "retrieve(self, identifier: Dataset) -> Sequence[Dataset]",
    "Return the instances a C-GET or C-MOVE ``identifier`` names.",
)
_SHAPES: dict[Dimse, tuple[str, str, tuple[BackendMethod, ...]]] = {
    Dimse.C_ECHO: ("event: Event", "int", ()),
    Dimse.C_STORE: (
        _N_PARAMS,
        "int",
        (BackendMethod("store(self, dataset: Dataset) -> None", "Keep a received instance."),),
    ),
    Dimse.C_FIND: (_N_PARAMS, "Iterator[tuple[int, Dataset | None]]", (_FIND,)),
    Dimse.C_GET: (_N_PARAMS, "Iterator[Any]", (_RETRIEVE,)),
    Dimse.C_MOVE: (
        _N_PARAMS,
        "Iterator[Any]",
        (
            _RETRIEVE,
            BackendMethod(
                "destination(self, ae_title: str) -> tuple[str, int] | None",
                "The (address, port) of move destination ``ae_title``, or None if unknown.",
            ),
        ),
    ),
    Dimse.N_EVENT_REPORT: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_event_report(self, class_uid: str, instance_uid: str, event_type: int, "
                "info: Dataset | None) -> Dataset | None",
                "Take an event report; None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_GET: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_get(self, class_uid: str, instance_uid: str, tags: list[int]) -> Dataset | None",
                "The requested attributes of an instance; None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_SET: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_set(self, class_uid: str, instance_uid: str, modification: Dataset) "
                "-> Dataset | None",
                "Apply a modification; the changed attributes, or None when there is no such "
                "instance.",
            ),
        ),
    ),
    Dimse.N_ACTION: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_action(self, class_uid: str, instance_uid: str, action_type: int, "
                "info: Dataset | None) -> Dataset | None",
                "Perform an action; its reply, or None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_CREATE: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_create(self, class_uid: str, instance_uid: str | None, "
                "attributes: Dataset | None) -> Dataset | None",
                "Create an instance; its attributes, or None when it cannot be created.",
            ),
        ),
    ),
    Dimse.N_DELETE: (
        _N_PARAMS,
        "int",
        (
            BackendMethod(
                "n_delete(self, class_uid: str, instance_uid: str) -> bool",
                "Delete an instance; False when there is no such instance.",
            ),
        ),
    ),
}


def _pick(members: Sequence[tuple[str, Status]], category: Category, *preferred: int) -> str | None:
    """The member of ``category`` whose first code comes first in ``preferred``, else the first
    member of that category at all."""
    of_category = [(name, s) for name, s in members if s.category is category]
    for code in preferred:
        for name, status in of_category:
            if status.first == code:
                return name
    return of_category[0][0] if of_category else None


def _failure(members: Sequence[tuple[str, Status]]) -> str | None:
    """The catch-all failure: a range such as 0xC000 to 0xCFFF ("Unable to process") if the page
    has one, else 0x0110 (Processing failure), else the first failure in 0xCxxx, else any."""
    for name, status in members:
        if status.category is Category.FAILURE and status.is_range:
            return name
    failures = [(name, s) for name, s in members if s.category is Category.FAILURE]
    for name, status in failures:
        if status.first == 0x0110 or 0xC000 <= status.first <= 0xCFFF:
            return name
    return failures[0][0] if failures else None


def _exact(members: Sequence[tuple[str, Status]], code: int) -> str | None:
    return next((name for name, status in members if status.first == code), None)


def service_view(page: Page, dimse: Dimse) -> Service:
    """Resolve one DIMSE service of ``page`` into names, roles and the handler's shape."""
    statuses = page.statuses(dimse)
    names = member_names(statuses)
    members = tuple((names[s], s) for s in statuses)
    roles: dict[str, str | None] = {
        "success": _pick(members, Category.SUCCESS, 0x0000),
        "failure": _failure(members),
        "pending": _pick(members, Category.PENDING, 0xFF00),
        "cancel": _pick(members, Category.CANCEL, 0xFE00),
    }
    consequences: dict[str, str | None] = {}
    if dimse in (Dimse.C_GET, Dimse.C_MOVE):
        consequences["warning"] = _pick(members, Category.WARNING, 0xB000)
    if dimse is Dimse.C_MOVE:
        consequences["unknown_destination"] = _exact(members, 0xA801)
    if dimse.value.startswith("N-"):
        roles["no_such_instance"] = _exact(members, 0x0112)
    for role in ("success", "failure"):
        if roles[role] is None:
            line = next((t.line for t in page.status_tables if t.dimse is dimse), 1)
            raise SpecError(page.source, line, f"the {dimse.value} tables define no {role} status")
    params, returns, methods = _SHAPES[dimse]
    return Service(
        dimse=dimse,
        members=members,
        roles={role: member for role, member in roles.items() if member is not None},
        consequences={role: member for role, member in consequences.items() if member},
        runtime=dimse.ident.lower(),
        params=params,
        returns=returns,
        methods=methods,
    )


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def pyrepr(value: str) -> str:
    """A Python string literal for any text: spec text reaches code only through this.

    Quoted as black quotes it (double quotes unless single quotes need fewer escapes), with
    ``repr``'s escapes, so black leaves the literal as it is.
    """
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join(
        _ESCAPES.get(c) or ("\\" + c if c == quote else c if c.isprintable() else repr(c)[1:-1])
        for c in text
    )
    return quote + body + quote


@dataclass(frozen=True)
class PySeq:
    """A bracketed Python display of code items (strings or nested ``PySeq``), for ``pyfit``."""

    items: tuple[str | PySeq, ...]
    brackets: str = "()"
    is_tuple: bool = True
    """A one-item ``()`` display needs its comma (``("C-ECHO",)``); a call's does not."""

    def flat(self) -> str:
        inner = ", ".join(i if isinstance(i, str) else i.flat() for i in self.items)
        comma = "," if self.is_tuple and self.brackets == "()" and len(self.items) == 1 else ""
        return self.brackets[0] + inner + comma + self.brackets[1]


def pytuple(items: Sequence[str | PySeq]) -> PySeq:
    return PySeq(tuple(items))


def pyargs(items: Sequence[str | PySeq]) -> PySeq:
    return PySeq(tuple(items), is_tuple=False)


def pyfit(indent: int, lead: str, seq: PySeq, tail: str = "") -> str:
    """``lead`` + ``seq`` + ``tail`` as the lines black leaves alone: one line when it fits in
    black's line length, else one item per line, each laid out the same way, with a magic
    trailing comma, so black's pass over it is a no-op rather than a re-layout."""
    pad = " " * indent
    flat = pad + lead + seq.flat() + tail
    if not seq.items or str_width(flat) <= BLACK_MODE.line_length:
        return flat
    lines = [pad + lead + seq.brackets[0]]
    for item in seq.items:
        if isinstance(item, str):
            lines.append(f"{pad}    {item},")
        else:
            lines.append(pyfit(indent + 4, "", item, ","))
    lines.append(pad + seq.brackets[1] + tail)
    return "\n".join(lines)


@functools.cache
def pydef(indent: int, header: str) -> str:
    """A ``def`` line as black lays it out at ``indent`` (a constant of the renderer, such as a
    ``Backend`` method, so black runs once per header and process, not once per page)."""
    nest = indent // 4
    source = "".join(f"{'    ' * n}class _{n}:\n" for n in range(nest))
    source += f"{'    ' * nest}{header}:\n{'    ' * (nest + 1)}pass\n"
    lines = black.format_str(source, mode=BLACK_MODE).splitlines()
    return "\n".join(lines[nest:-1])


def docstring(value: str) -> str:
    """Text made safe inside a triple-quoted docstring: no quote or backslash can end it early."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in escaped)


def rst_cell(value: str) -> str:
    """Plain text escaped for a generated RST table cell or paragraph."""
    return escape_inline(" ".join(str(value).split()))


def underline(title: str, char: str) -> str:
    """An RST section underline as wide as ``title`` is on screen (wide characters count twice)."""
    return char * max(4, docutils.utils.column_width(title))


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


def render(pages: Sequence[Page], templates: Path | None = None) -> dict[str, str]:
    """Render every output file of ``pages``: ``{path relative to the output dir: text}``.

    Page modules, the runtime files (every other ``*.py.j2``, rendered once under its own name),
    ``py.typed``, and the docs: RST per page, docutils HTML5 built from that RST, and an index.
    black and the HTML writer, most of the cost, run in worker processes for many pages, and
    their results are cached per user (``_ResultCache``), so unchanged outputs cost neither again.
    """
    env = environment(templates)
    digest = templates_digest(env)
    finisher = _Finisher(len(pages))
    try:
        return _render_all(env, digest, pages, finisher)
    finally:
        finisher.close()


def _render_all(
    env: jinja2.Environment, digest: str, pages: Sequence[Page], finisher: _Finisher
) -> dict[str, str]:
    outputs: dict[str, str] = {"py.typed": ""}
    views = []
    for page in sorted(pages, key=lambda p: p.stem):
        services = [
            service_view(page, dimse)
            for dimse in dict.fromkeys(t.dimse for t in page.status_tables)
        ]
        context = {
            "page": page,
            "services": services,
            "source_name": Path(page.source).name,
            "templates_sha256": digest,
            "backend_methods": list(dict.fromkeys(m for s in services for m in s.methods)),
            "status_count": sum(len(t.statuses) for t in page.status_tables),
        }
        views.append(context)
        for template, target in PAGE_TEMPLATES.items():
            path = target.format(stem=page.stem)
            outputs[path] = _render_one(env, template, context, path, finisher)
            if path.endswith(".py"):
                _refuse_clashes(page, outputs[path])  # the template's text, before black
        finisher.submit(f"docs/{page.stem}.html", "html", outputs[f"docs/{page.stem}.rst"], "")
    for template, target in SITE_TEMPLATES.items():
        outputs[target] = _render_one(env, template, {"pages": views}, target, finisher)
    for name in _template_names(env):
        if name.endswith(".py.j2") and name not in PAGE_TEMPLATES:
            target = name[: -len(".j2")]
            context = {"pages": views, "annex_c": ANNEX_C}
            outputs[target] = _render_one(env, name, context, target, finisher)
    outputs.update(finisher.results())
    return dict(sorted(outputs.items()))


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
    finisher: _Finisher | None = None,
) -> str:
    """Render ``template``; Python goes through black now, or through ``finisher`` when given
    (the text returned is then a placeholder that ``finisher.results()`` replaces)."""
    try:
        text = env.get_template(template).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template}: {exc}") from None
    if path.endswith(".py"):
        if finisher is not None:
            finisher.submit(path, "python", text, template)
        else:
            text = _check(_finish("python", text, template))
    return text


JOBS_ENV = "SERVICEGEN_JOBS"
"""How many worker processes black and the HTML writer may use (default: the usable CPUs)."""
_PARALLEL_PAGES = 4
"""Below this many pages, starting workers costs more than it saves."""


def _finish(kind: str, text: str, template: str) -> str | TemplateError:
    """The costly, pure last step of one output: black for Python, docutils for HTML. Errors
    are returned, not raised, so they cross a process boundary intact."""
    if kind == "html":
        try:
            return rst_to_html(text)
        except TemplateError as exc:
            return exc
    try:
        return black.format_str(text, mode=BLACK_MODE)
    except InvalidInput as exc:
        first = str(exc).splitlines()[0]
        return TemplateError(f"{template} rendered Python black cannot parse: {first}")


def _check(result: str | TemplateError) -> str:
    if isinstance(result, TemplateError):
        raise result
    return result


def _workers(pages: int) -> int:
    """Worker processes for ``pages`` pages: none for few pages, one CPU, other threads running
    (forking those is unsafe), or outside Linux (forking is what makes workers cheap, as they
    inherit the imported black and docutils; macOS frameworks are not fork-safe)."""
    configured = os.environ.get(JOBS_ENV, "")
    if configured.isdigit():
        cpus = int(configured)
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    if (
        cpus < 2
        or pages < _PARALLEL_PAGES
        or sys.platform != "linux"
        or threading.active_count() > 1
    ):
        return 0
    return cpus


class _ResultCache:
    """Results of ``_finish`` by sha256 of the job and of ``writer.tool_digest()``, in the
    per-user cache (``writer.cache_folder()``), so an output whose text did not change costs
    neither black nor docutils again. Only a cache: what cannot be read or written is absent.
    Least recently used entries go when there are more than ``LIMIT``."""

    LIMIT = 4000
    """About 60 MB of black's and docutils' output: a few thousand pages' worth."""

    def __init__(self, folder: Path, tool: str) -> None:
        self.folder = folder / "results"
        self.tool = tool
        self.added = 0

    @classmethod
    def open(cls) -> _ResultCache | None:
        folder = writer.cache_folder()
        if folder is None:
            return None
        try:
            return cls(folder, writer.tool_digest())
        except OSError:
            return None

    def key(self, kind: str, text: str) -> str:
        job = f"{self.tool}\0{kind}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(job).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached text, if its entry is whole: each entry starts with its text's sha256."""
        entry = self.folder / key
        try:
            digest, _, text = entry.read_text(encoding="utf-8").partition("\n")
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
                return None
            os.utime(entry)
        except (OSError, UnicodeError):
            return None
        return text

    def put(self, key: str, text: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{key}.", suffix=writer.TEMP_SUFFIX, dir=self.folder
            )
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(hashlib.sha256(text.encode("utf-8")).hexdigest() + "\n" + text)
            os.replace(tmp, self.folder / key)
            self.added += 1
        except OSError:
            pass

    def prune(self) -> None:
        """Drop the least recently used entries beyond ``LIMIT``, and temporary files an hour old
        (a killed run's); only after a run added entries, so a warm run costs no listing."""
        if not self.added:
            return
        try:
            entries = [(e.stat().st_mtime, e.path) for e in os.scandir(self.folder)]
            stale = time.time() - 3600
            for mtime, path in sorted(entries)[: max(0, len(entries) - self.LIMIT)]:
                os.unlink(path)
            for mtime, path in entries:
                if path.endswith(writer.TEMP_SUFFIX) and mtime < stale:
                    os.unlink(path)
        except OSError:
            pass


class _Finisher:
    """Runs ``_finish`` for every output whose result is not cached: in worker processes, while
    the parent renders the next page's templates, once there are enough jobs to pay for them
    (``_workers``), else in-process."""

    START_WORKERS = 2 * _PARALLEL_PAGES
    """Jobs (a page makes two) that must miss the cache before workers start."""

    def __init__(self, pages: int) -> None:
        self._workers = _workers(pages)
        self._pool: Executor | None = None
        self._cache = _ResultCache.open()
        self._jobs: dict[str, tuple[str, str, str]] = {}
        self._keys: dict[str, str] = {}
        self._missed: list[str] = []
        self._done: dict[str, str | TemplateError | Future[str | TemplateError]] = {}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def submit(self, path: str, kind: str, text: str, template: str) -> None:
        self._jobs[path] = (kind, text, template)
        if self._cache is not None:
            self._keys[path] = key = self._cache.key(kind, text)
            cached = self._cache.get(key)
            if cached is not None:
                self._done[path] = cached
                return
        self._missed.append(path)
        if self._pool is not None:
            self._done[path] = self._pool.submit(_finish, kind, text, template)
        elif self._workers and len(self._missed) >= self.START_WORKERS:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
            for queued in self._missed:
                self._done[queued] = self._pool.submit(_finish, *self._jobs[queued])

    def results(self) -> dict[str, str]:
        """Every finished output; the first error, in submission order, is raised. Should a
        worker die (killed, out of memory), its jobs are done again here."""
        from concurrent.futures import BrokenExecutor

        out = {}
        for path in self._jobs:
            job = self._done.get(path)
            fresh = not isinstance(job, str)
            if job is None:  # no workers, or too few misses to start them
                job = _finish(*self._jobs[path])
            elif not isinstance(job, (str, TemplateError)):
                try:
                    job = job.result()
                except BrokenExecutor:
                    job = _finish(*self._jobs[path])
            out[path] = _check(job)
            if fresh and self._cache is not None:
                self._cache.put(self._keys[path], out[path])
        if self._cache is not None:
            self._cache.prune()
        return out


def uid_name(uid: str) -> str:
    """pydicom's registry name for ``uid``, so the docs show what pydicom calls the SOP class."""
    name = UID(uid).name
    return name if name != uid else "unknown to pydicom"


_HTML_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "stylesheet_path": "",
    "stylesheet": "style.css",
    "embed_stylesheet": False,
    "section_self_link": True,
    "output_encoding": "utf-8",
    "_disable_config": True,
}
"""One shared stylesheet, linked relatively so the site works from file://; self-links on
headings; UTF-8 output, so docutils declares the charset a browser needs to read a local file."""
_DIMSE_CLASSES = frozenset(dimse.value.lower() for dimse in Dimse)
"""The `:class:` that names a status table's service: ``c-find``, ``n-event-report``, ..."""


def rst_to_html(rst: str) -> str:
    """docutils' HTML5 page for generated RST, linking ``style.css``.

    The doctree gets its anchors, self-links and category badges (``_decorate``) between reading
    and writing, so the RST holds no raw HTML and Sphinx reads it as it is.
    """
    document = docutils.core.publish_doctree(rst, settings_overrides=_HTML_SETTINGS)
    _decorate(document)
    out = docutils.core.publish_from_doctree(
        document, writer="html5", settings_overrides=_HTML_SETTINGS
    )
    assert isinstance(out, bytes)
    return _GENERATOR_META.sub("", out.decode("utf-8"))


def _decorate(document: nodes.document) -> None:
    """Anchor the rows of the tables ``page.rst.j2`` marks with ``:class:``; README "HTML docs".

    A SOP class row gets ``id=<keyword>``. A status row gets ``<dimse>-0xNNNN`` (``c-find-0xA700``;
    a range by its first code; ``-2``, ``-3``, ... when a later table of that service repeats the
    code) and its code cell ``0xNNNN`` where the code first occurs on the page, so ``#0xA700``
    finds it. Any id docutils already gave a section keeps it; a clashing new one gets a suffix.
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
                _self_link(row, cells[keyword], claim(cells[keyword].astext().strip()))
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
    header = document.get_decoration().get_header()
    header += nodes.paragraph(
        "", "", nodes.reference("", "All service classes", refuri="index.html")
    )


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
