"""``servicegen diff``: a semantic changelog between two versions of the pages.

A text diff of grid tables is mostly border noise; this compares the models instead, so a reader
sees what a standard update means for code: which SOP classes and which status codes of which
DIMSE service were added, removed or changed, and which status ranges were split or merged.
Either side is a page, a folder of pages, or ``REV:path`` of either in the git repository around
the working directory (read with ``git cat-file``, ``git ls-tree`` and ``git show``); ``path`` is
relative to the repository's root wherever the command runs, and ``./path`` or ``../path`` to the
working directory, as git reads ``REV:path`` itself. Pages are read leniently, as ``lint`` reads
them, so a page the generator refuses can still be compared.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import ServicegenError
from generator.lint import plural
from generator.model import Dimse, Page, SOPClass, Status, code_text
from generator.pages import page_paths
from generator.parser import examine_bytes, examine_page

_REGROUPINGS = {
    "range changed": "range {old} became {new}",
    "split": "split {old} into {new}",
    "merged": "merged {old} into {new}",
    "regrouped": "regrouped {old} as {new}",
}
"""Status rows that overlap without matching, by how many rows each side has."""

SOP_CLASSES = "SOP classes"
"""The section of a page's changes that holds its SOP classes; the others are DIMSE services."""


def _quoted(text: str) -> str:
    return f"“{text}”"


@dataclass(frozen=True)
class Change:
    """One semantic change. ``subject`` is a SOP class's keyword, a status code or range, or the
    page; ``old`` and ``new`` hold what changed (empty for the side that has nothing)."""

    page: str
    section: str
    kind: str
    subject: str
    old: str = ""
    new: str = ""

    def sentence(self, code: Callable[[str], str]) -> str:
        """The change in words; ``code`` marks up literal names and codes (backticks in
        Markdown)."""
        value = self.old or self.new
        if self.kind in ("page added", "page removed"):
            return f"{self.kind}: {value}"
        if self.kind in ("added", "removed"):
            what = f"({value})" if self.section == SOP_CLASSES else value
            return f"{self.kind} {code(self.subject)} {what}"
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
    """Every change from ``old`` to ``new`` (pages by name), page by page in name order. A page
    with no tables (an index) is not compared."""
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is not None and after is not None:
            changes.extend(_sop_changes(name, before.sop_classes, after.sop_classes))
            for dimse in dict.fromkeys((*after.dimse_services, *before.dimse_services)):
                changes.extend(_status_changes(name, dimse, before, after))
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
                changes.append(Change(name, "", "page removed", name, summary, ""))
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
            yield Change(page, SOP_CLASSES, "UID changed", sop.keyword, was.uid, sop.uid)
        if was.keyword != sop.keyword:
            yield Change(page, SOP_CLASSES, "keyword changed", sop.uid, was.keyword, sop.keyword)
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
            yield Change(page, SOP_CLASSES, "removed", sop.keyword, sop.uid, "")


def _services(dimse: tuple[Dimse, ...]) -> str:
    return ", ".join(d.value for d in dimse)


def _status_changes(page: str, dimse: Dimse, before: Page, after: Page) -> list[Change]:
    """Rows are matched by exact code or range first; the rest are grouped by overlap, so one
    old row against several new ones is a split, the reverse a merge. In code order."""
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
            kind = _regrouping(len(olds), len(news))
            change = Change(page, section, kind, code_text(first), _rows(olds), _rows(news))
        elif news:
            text = f"{first.category.value}: {first.description}"
            change = Change(page, section, "added", code_text(first), "", text)
        else:
            text = f"{first.category.value}: {first.description}"
            change = Change(page, section, "removed", code_text(first), text, "")
        found.append(((first.first, first.last), change))
    return [change for _, change in sorted(found, key=lambda item: item[0])]


def _regrouping(olds: int, news: int) -> str:
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


def report(changes: list[Change], output_format: str) -> str:
    """Changes as plain text, Markdown (a heading per page and section) or JSON (a list)."""
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
            lines.append(f"- {change.sentence(lambda text: f'`{text}`')}")
        else:
            lines.append(f"{'    ' if change.section else '  '}{change.sentence(str)}")
    return "".join(f"{line}\n" for line in lines)


def _heading(lines: list[str], text: str) -> None:
    """A Markdown heading with a blank line either side."""
    lines.extend([text, ""] if not lines or lines[-1] == "" else ["", text, ""])
