"""``servicegen diff``: a semantic changelog between two versions of the pages.

A text diff of grid tables is mostly border noise; this compares the models instead, so a reader
sees what a standard update means for code: which SOP classes and which status codes of which
DIMSE service were added, removed or changed, and which status ranges were split or merged. Each
page's generated module is rendered for both sides and read back with ``ast``, so the public
names importing code sees (added, removed, renamed) come from what the generator writes, whatever
rule names them. Every change says whether it breaks code that imports the module.
Either side is a page, a folder of pages, or ``REV:path`` of either in the git repository around
the working directory (read with ``git cat-file``, ``git ls-tree`` and ``git show``); ``path`` is
relative to the repository's root wherever the command runs, and ``./path`` or ``../path`` to the
working directory, as git reads ``REV:path`` itself. Pages are read leniently, as ``lint`` reads
them, so a page the generator refuses can still be compared.
"""

from __future__ import annotations

import ast
import json
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from generator import render
from generator.errors import ServicegenError
from generator.lint import plural
from generator.model import Category, Dimse, Page, SOPClass, Status, code_text
from generator.pages import page_paths
from generator.parser import examine_bytes, examine_page, keyword_fault

_REGROUPINGS = {
    "range changed": "range {old} became {new}",
    "split": "split {old} into {new}",
    "merged": "merged {old} into {new}",
    "regrouped": "regrouped {old} as {new}",
}
"""Status rows that overlap without matching, by how many rows each side has."""

SOP_CLASSES = "SOP classes"
"""The section of a page's changes that holds its SOP classes; then come its DIMSE services and
its generated module (``<stem>.py``)."""
_STATUS_SECTIONS = frozenset(dimse.value for dimse in Dimse)


def _quoted(text: str) -> str:
    return f"“{text}”"


@dataclass(frozen=True)
class Change:
    """One semantic change. ``subject`` is a SOP class's keyword, a status code or range, a
    public name of the generated module (the value it shares with its new name, if renamed), or
    the page; ``old`` and ``new`` hold what changed (empty for the side that has nothing).
    ``breaking``: code that imports the generated module may stop working."""

    page: str
    section: str
    kind: str
    subject: str
    old: str = ""
    new: str = ""
    breaking: bool = False

    def sentence(self, code: Callable[[str], str]) -> str:
        """The change in words; ``code`` marks up literal names and codes (backticks in
        Markdown)."""
        value = self.old or self.new
        if self.kind in ("page added", "page removed"):
            return f"{self.kind}: {value}"
        if self.kind in ("added", "removed"):
            if self.section in _STATUS_SECTIONS:
                return f"{self.kind} {code(self.subject)} {value}"
            return f"{self.kind} {code(self.subject)}" + (f" ({value})" if value else "")
        if self.kind == "renamed":
            return f"renamed {code(self.old)} → {code(self.new)} ({self.subject})"
        if self.kind in _REGROUPINGS:
            return _REGROUPINGS[self.kind].format(old=self.old, new=self.new)
        noun = self.kind.removesuffix(" changed")
        quote = _quoted if noun == "description" else code
        return f"{code(self.subject)}: {noun} {quote(self.old)} → {quote(self.new)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "section": self.section,
            "kind": self.kind,
            "subject": self.subject,
            "old": self.old,
            "new": self.new,
            "breaking": self.breaking,
        }


def changelog(old_spec: str, new_spec: str) -> list[Change]:
    """The changes from ``old_spec`` to ``new_spec``; two single pages pair up whatever their
    names."""
    old, new = load(old_spec), load(new_spec)
    if not _is_folder(old_spec) and not _is_folder(new_spec):
        old = {name: page for name, page in zip(new, old.values())}
    return diff(old, new)


def _is_folder(spec: str) -> bool:
    local = Path(spec)
    if local.exists() or ":" not in spec:
        return local.is_dir()
    if spec.startswith("-"):
        raise ServicegenError(f"{spec}: a revision cannot start with '-'")
    return _git(spec, "cat-file", "-t", spec).decode().strip() == "tree"


def load(spec: str) -> dict[str, Page]:
    """The pages of ``spec`` (a page, a folder, or ``REV:path`` of either) by their path relative
    to the folder, or by file name for a single page. A path that exists is local even if it
    holds a colon."""
    local = Path(spec)
    if local.exists() or ":" not in spec:
        if local.is_file():
            return {local.name: examine_page(local).page}
        return {
            path.relative_to(local).as_posix(): examine_page(path).page
            for path in page_paths(local)
        }
    rev, _, path = spec.partition(":")
    if not _is_folder(spec):
        return {path.rsplit("/", 1)[-1]: examine_bytes(_git(spec, "show", spec), spec).page}
    # --full-tree: run in a subdirectory, ls-tree lists only the entries below that directory's
    # path inside the tree given (from generated/, HEAD:spec's generated/...), so nothing.
    listing = _git(spec, "ls-tree", "-r", "--full-tree", "--name-only", "-z", spec)
    names = listing.decode("utf-8", "surrogateescape").split("\0")
    prefix = f"{rev}:{path.rstrip('/')}/" if path.strip("/") else f"{rev}:"
    return {
        name: examine_bytes(_git(spec, "show", prefix + name), prefix + name).page
        for name in sorted(names)
        if name.endswith(".rst")
    }


def _git(spec: str, command: str, *args: str) -> bytes:
    """What ``git command args`` prints; its last line of complaint as an error if it fails.
    The last argument is a revision: ``--end-of-options`` keeps git from reading one that
    starts with ``-`` as an option (``--output=...``), which ``_is_folder`` refuses anyway."""
    *options, revision = args
    argv = ["git", command, *options, "--end-of-options", revision]
    try:
        result = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServicegenError(f"{spec}: git failed: {exc}") from None
    if result.returncode != 0:
        complaint = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ServicegenError(f"{spec}: {(complaint or ['git failed'])[-1]}")
    return result.stdout


def diff(old: dict[str, Page], new: dict[str, Page]) -> list[Change]:
    """Every change from ``old`` to ``new`` (pages by name), page by page in name order: SOP
    classes, each DIMSE service, then the generated module's public names. A page with no tables
    (an index) is not compared."""
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is not None and after is not None:
            changes.extend(_sop_changes(name, before.sop_classes, after.sop_classes))
            for dimse in dict.fromkeys((*after.dimse_services, *before.dimse_services)):
                changes.extend(_status_changes(name, dimse, before, after))
            section = f"{after.stem}.py"
            changes.extend(_api_changes(name, section, module_api(before), module_api(after)))
            continue
        page = after or before
        if page is not None and (page.sop_classes or page.status_tables):
            statuses = sum(len(t.statuses) for t in page.status_tables)
            summary = (
                f"{plural(len(page.sop_classes), 'SOP class', 'SOP classes')},"
                f" {plural(statuses, 'status', 'statuses')}"
            )
            if after is not None:
                changes.append(Change(name, "", "page added", name, "", summary))
            else:
                changes.append(Change(name, "", "page removed", name, summary, "", breaking=True))
    return changes


def _sop_changes(page: str, old: Sequence[SOPClass], new: Sequence[SOPClass]) -> Iterator[Change]:
    by_uid = {sop.uid: sop for sop in old}
    by_keyword = {sop.keyword: sop for sop in old}
    matched: set[str] = set()
    for sop in new:
        was = by_uid.get(sop.uid) or by_keyword.get(sop.keyword)
        if was is None or was.uid in matched:
            yield Change(page, SOP_CLASSES, "added", sop.keyword, "", sop.uid)
            continue
        matched.add(was.uid)
        if was.uid != sop.uid:
            yield Change(
                page, SOP_CLASSES, "UID changed", sop.keyword, was.uid, sop.uid, breaking=True
            )
        if was.keyword != sop.keyword:
            yield Change(
                page,
                SOP_CLASSES,
                "keyword changed",
                sop.uid,
                was.keyword,
                sop.keyword,
                breaking=True,
            )
        if was.dimse != sop.dimse:
            yield Change(
                page,
                SOP_CLASSES,
                "DIMSE services changed",
                sop.keyword,
                _services(was.dimse),
                _services(sop.dimse),
            )
    for sop in old:
        if sop.uid not in matched:
            yield Change(page, SOP_CLASSES, "removed", sop.keyword, sop.uid, "", breaking=True)


def _services(dimse: tuple[Dimse, ...]) -> str:
    return ", ".join(d.value for d in dimse)


def _status_changes(page: str, dimse: Dimse, before: Page, after: Page) -> list[Change]:
    """Rows are matched by exact code or range first; the rest are grouped by overlap, so one
    old row against several new ones is a split, the reverse a merge. In code order. A group
    breaks code if it removes rows only, or if a code of its rows is answered with another
    category than before, or with none."""
    old = {(s.first, s.last): s for s in before.statuses(dimse)}
    new = {(s.first, s.last): s for s in after.statuses(dimse)}
    section = dimse.value
    found: list[tuple[tuple[int, int], Change]] = []
    for key in old.keys() & new.keys():
        was, now = old[key], new[key]
        if was.category is not now.category:
            change = Change(
                page,
                section,
                "category changed",
                code_text(now),
                was.category.value,
                now.category.value,
                breaking=True,
            )
            found.append((key, change))
        if was.description != now.description:
            change = Change(
                page,
                section,
                "description changed",
                code_text(now),
                was.description,
                now.description,
            )
            found.append((key, change))
    gone = [s for key, s in old.items() if key not in new]
    came = [s for key, s in new.items() if key not in old]
    for olds, news in _overlapping(gone, came):
        first = min((*olds, *news), key=lambda s: (s.first, s.last))
        if olds and news:
            sides = (_rows(olds), _rows(news))
        else:
            text = f"{first.category.value}: {first.description}"
            sides = ("", text) if news else (text, "")
        breaking = not news or _recategorised([*olds, *news], [*old.values()], [*new.values()])
        kind = _grouping(len(olds), len(news))
        change = Change(page, section, kind, code_text(first), *sides, breaking=breaking)
        found.append(((first.first, first.last), change))
    return [change for _, change in sorted(found, key=lambda item: item[0])]


def _recategorised(rows: list[Status], before: list[Status], after: list[Status]) -> bool:
    """Whether a code of ``rows`` that ``before``'s table answers is answered with another
    category by ``after``'s, or not at all. An answer can change only where a row starts or
    ends, so those codes are the ones looked at."""
    edges = {code for s in (*before, *after) for code in (s.first, s.last + 1)}
    return any(
        (was := _answer(before, code)) is not None and was is not _answer(after, code)
        for code in edges
        if any(code in row for row in rows)
    )


def _answer(statuses: list[Status], code: int) -> Category | None:
    """The category a generated status table answers ``code`` with: its exact row's, else that
    of the range holding it that starts last."""
    rows = [s for s in statuses if code in s]
    row = min(rows, key=lambda s: (s.is_range, -s.first), default=None)
    return None if row is None else row.category


def _grouping(olds: int, news: int) -> str:
    if not olds:
        return "added"
    if not news:
        return "removed"
    if olds == 1:
        return "range changed" if news == 1 else "split"
    return "merged" if news == 1 else "regrouped"


def _overlapping(
    olds: list[Status], news: list[Status]
) -> Iterator[tuple[list[Status], list[Status]]]:
    """The rows grouped into sets that overlap one another, each side by code, groups by their
    first code; one pass over the rows sorted by code."""
    groups: list[tuple[list[Status], list[Status]]] = []
    reach = -1
    """The last code the current group covers."""
    for status, side in sorted(
        [(s, 0) for s in olds] + [(s, 1) for s in news],
        key=lambda item: (item[0].first, item[0].last),
    ):
        if not groups or status.first > reach:
            groups.append(([], []))
        groups[-1][side].append(status)
        reach = max(reach, status.last)
    yield from groups


def _rows(statuses: list[Status]) -> str:
    return ", ".join(f"{code_text(s)} ({s.category.value})" for s in statuses)


@dataclass(frozen=True)
class Api:
    """The public names of a generated module, in its order: each qualified name
    (``CFindStatus.SUCCESS``) with its scope (``""`` for the module, else its class) and the
    literal code depends on (a SOP class constant's UID, an enum member's code; ``""`` for
    none). ``protocols`` are the classes the user's code implements (``Backend``), which a name
    added to breaks."""

    names: dict[str, tuple[str, str]]
    protocols: frozenset[str]


@cache
def _environment() -> jinja2.Environment:
    """The built-in templates, for both sides alike: the API changes ``diff`` reports are the
    pages' doing, never a template's."""
    return render.environment()


def module_api(page: Page) -> Api:
    """The public names of the module ``generate`` writes for ``page`` (``__all__``, and what
    the classes it names define), read from the rendered module; none for a page without
    tables, which ``generate`` skips. Names come from the rendered text, never from the rule
    that makes them, so every naming rule and alias is reflected. A SOP class whose keyword
    ``generate`` refuses (``lint``'s SG002) has no constant, so a page read leniently still
    renders as Python."""
    if not (page.sop_classes or page.status_tables):
        return Api({}, frozenset())
    nameable = tuple(sop for sop in page.sop_classes if keyword_fault(sop.keyword) is None)
    tree = ast.parse(render.page_module(_environment(), replace(page, sop_classes=nameable)))
    bound = {name: stmt for stmt in tree.body for name in _bound(stmt)}
    exported = next(
        ast.literal_eval(s.value)
        for s in tree.body
        if isinstance(s, ast.Assign) and _bound(s) == ["__all__"]
    )
    names: dict[str, tuple[str, str]] = {}
    protocols = set()
    for name in exported:
        stmt = bound.get(name)
        names[name] = ("", _literal(stmt))
        if isinstance(stmt, ast.ClassDef):
            if any(isinstance(base, ast.Name) and base.id == "Protocol" for base in stmt.bases):
                protocols.add(name)
            names.update(
                (f"{name}.{member}", (name, _literal(inner)))
                for inner in stmt.body
                for member in _bound(inner)
                if not (member.startswith("__") and member.endswith("__"))
            )
    return Api(names, frozenset(protocols))


def _bound(stmt: ast.stmt) -> list[str]:
    """The names a statement of a module or class body binds."""
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [target.id for target in stmt.targets if isinstance(target, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _literal(stmt: ast.stmt | None) -> str:
    """The literal a name is bound to, through one call (``UID("1.2.3")``): a string as it is,
    an integer as a status code (``0xA700``); ``""`` for anything else."""
    value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
    if isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords:
        value = value.args[0]
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    if isinstance(value, ast.Constant) and isinstance(value.value, int):
        return f"0x{value.value:04X}"
    return ""


def _api_changes(page: str, section: str, before: Api, after: Api) -> Iterator[Change]:
    """Names added, removed, renamed or bound to another value, scope by scope (the module, then
    each class both sides have: a class added or removed is one change, not one per member).
    A name removed and one added with the same value in the same scope are a rename, paired in
    the modules' order. Everything but an addition breaks code, and so does an addition to a
    protocol, which the user's classes must then implement."""
    old, new = before.names, after.names
    scopes = dict.fromkeys(scope for scope, _ in (*new.values(), *old.values()))
    for scope in (s for s in scopes if not s or (s in old and s in new)):
        was = {name: value for name, (where, value) in old.items() if where == scope}
        now = {name: value for name, (where, value) in new.items() if where == scope}
        gone = [name for name in was if name not in now]
        renamed: dict[str, str] = {}
        """New name -> old name."""
        for name, value in now.items():
            if name not in was and value:
                candidates = (g for g in gone if was[g] == value and g not in renamed.values())
                origin = next(candidates, None)
                if origin is not None:
                    renamed[name] = origin
        for name, value in now.items():
            if name in renamed:
                yield Change(page, section, "renamed", value, renamed[name], name, breaking=True)
            elif name not in was:
                added = scope in after.protocols
                yield Change(page, section, "added", name, "", value, breaking=added)
            elif was[name] != value:
                yield Change(page, section, "value changed", name, was[name], value, breaking=True)
        for name in gone:
            if name not in renamed.values():
                yield Change(page, section, "removed", name, was[name], "", breaking=True)


def report(changes: list[Change], output_format: str) -> str:
    """Changes as plain text, Markdown (a heading per page and section) or JSON (a list); a
    change that breaks code is marked ``[breaking]``, ``**breaking**``, ``"breaking": true``."""
    if output_format == "json":
        return json.dumps([c.to_json() for c in changes], indent=2, ensure_ascii=False) + "\n"
    markdown = output_format == "markdown"
    lines: list[str] = []
    page = section = None
    for change in changes:
        if change.page != page:
            if markdown:
                _heading(lines, f"## {change.page}")
            else:
                lines.append(change.page)
            page, section = change.page, None
        if change.section and change.section != section:
            if markdown:
                _heading(lines, f"### {change.section}")
            else:
                lines.append(f"  {change.section}")
            section = change.section
        if markdown:
            mark = " **breaking**" if change.breaking else ""
            lines.append(f"- {change.sentence(lambda text: f'`{text}`')}{mark}")
        else:
            mark = " [breaking]" if change.breaking else ""
            lines.append(f"{'    ' if change.section else '  '}{change.sentence(str)}{mark}")
    return "".join(f"{line}\n" for line in lines)


def _heading(lines: list[str], text: str) -> None:
    """A Markdown heading with a blank line either side."""
    lines.extend([text, ""] if not lines or lines[-1] == "" else ["", text, ""])
