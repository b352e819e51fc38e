"""The costly last step of each output: black for Python, docutils' HTML writer for the docs.

black's results are cached per user by sha256 of job and tool, and used only once verified
against the fresh render; results are computed in forked worker processes when enough of them
miss the cache, while the renderer goes on with the next page.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import sys
import threading
import time
import tokenize
from typing import TYPE_CHECKING

import black
from black.parsing import InvalidInput

from generator import writer
from generator.errors import TemplateError
from generator.html import rst_to_html
from generator.pysource import BLACK_MODE

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

JOBS_ENV = "SERVICEGEN_JOBS"
"""How many worker processes black and the HTML writer may use (default: the usable CPUs)."""
_PARALLEL_PAGES = 4
"""Below this many pages, starting workers costs more than it saves."""


def finish(kind: str, text: str, template: str) -> str | TemplateError:
    """The costly, pure last step of one output: black for Python, docutils for HTML. Errors
    are returned, not raised, so they cross a process boundary intact."""
    if kind == "html":
        try:
            return rst_to_html(text, template or "page.rst.j2")
        except TemplateError as exc:
            return exc
    try:
        return black.format_str(text, mode=BLACK_MODE)
    except InvalidInput as exc:
        first = str(exc).splitlines()[0]
        return TemplateError(f"{template} rendered Python black cannot parse: {first}")
    except Exception as exc:  # noqa: BLE001 - black's own failure: one line, not a traceback
        return TemplateError(f"{template}: black failed: {type(exc).__name__}: {exc}")


def unwrap(result: str | TemplateError) -> str:
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


_RESULTS = "results"
"""The folder of ``writer.Cache`` that holds results, each named by its 64-hex-digit key."""
_ENTRY = re.compile("[0-9a-f]{64}")
_TEMPORARY = writer.temporary_pattern("[0-9a-f]{64}")


class _ResultCache:
    """black's results by sha256 of the job and of ``writer.tool_digest()``, in the per-user
    cache (``writer.Cache``), so a module whose text did not change costs no black again. The
    cache is untrusted, so a hit is used only when it reads as the unformatted render does
    (``_same_program``). HTML is not cached: nothing short of docutils' own run could verify it.
    Only a cache: what cannot be read, written or verified is absent. Least recently used
    entries go when there are more than ``LIMIT``; pruning deletes only regular files named as
    this class names its entries."""

    LIMIT = 4000
    """About 40 MB of black's output: a few thousand pages' worth."""

    def __init__(self, cache: writer.Cache, tool: str) -> None:
        self.cache = cache
        self.tool = tool
        self.added = 0

    @classmethod
    def open(cls) -> _ResultCache | None:
        cache = writer.Cache.open()
        if cache is None:
            return None
        try:
            return cls(cache, writer.tool_digest())
        except OSError:
            cache.close()
            return None

    def close(self) -> None:
        self.cache.close()

    def key(self, render: str) -> str:
        job = f"{self.tool}\0python\0{render}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(job).hexdigest()

    def get(self, key: str, render: str) -> str | None:
        """black's result for ``render``, if it is cached and verified."""
        blob = self.cache.read(f"{_RESULTS}/{key}")
        if blob is None or not _same_program(render, blob):
            return None
        try:
            text = blob.decode("utf-8")
        except UnicodeError:
            return None
        self.cache.touch(f"{_RESULTS}/{key}")
        return text

    def put(self, key: str, text: str) -> None:
        if self.cache.write(f"{_RESULTS}/{key}", text.encode("utf-8")):
            self.added += 1

    def prune(self) -> None:
        """Drop the least recently used entries beyond ``LIMIT``, and temporary files an hour old
        (a killed run's); only after a run added entries, so a warm run costs no listing."""
        if not self.added:
            return
        files = self.cache.mtimes(_RESULTS)
        entries = sorted((mtime, name) for name, mtime in files.items() if _ENTRY.fullmatch(name))
        doomed = [name for _, name in entries[: max(0, len(entries) - self.LIMIT)]]
        stale = time.time() - 3600
        doomed += [
            name for name, mtime in files.items() if _TEMPORARY.fullmatch(name) and mtime < stale
        ]
        for name in doomed:
            self.cache.remove(f"{_RESULTS}/{name}")


def _same_program(render: str, cached: bytes) -> bool:
    """Whether ``cached`` is the program ``render`` is, as Python reads it: the same source
    encoding (a coding cookie changes what Python imports, not what ``ast.parse`` of text sees),
    the same comments in order, and the same AST (black's own safe-mode check). An entry equal to
    the render, the usual case as the templates emit what black would, needs no parsing."""
    source = render.encode("utf-8")
    if cached == source:
        return True
    try:
        return _reading(cached) == _reading(source)
    except (SyntaxError, ValueError, tokenize.TokenError, RecursionError, MemoryError):
        return False  # untrusted bytes Python cannot read (a bad cookie, NUL, deep nesting)


def _reading(source: bytes) -> tuple[str, list[str], str]:
    tokens = list(tokenize.tokenize(io.BytesIO(source).readline))
    comments = [token.string for token in tokens if token.type == tokenize.COMMENT]
    return tokens[0].string, comments, ast.dump(ast.parse(source))


class Finisher:
    """Runs ``finish`` for every output whose result is not cached: in worker processes, while
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
        if self._cache is not None:
            self._cache.close()

    def submit(self, path: str, kind: str, text: str, template: str) -> None:
        self._jobs[path] = (kind, text, template)
        if self._cache is not None and kind == "python":
            self._keys[path] = key = self._cache.key(text)
            cached = self._cache.get(key, text)
            if cached is not None:
                self._done[path] = cached
                return
        self._missed.append(path)
        if self._pool is not None:
            self._done[path] = self._pool.submit(finish, kind, text, template)
        elif self._workers and len(self._missed) >= self.START_WORKERS:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
            for queued in self._missed:
                self._done[queued] = self._pool.submit(finish, *self._jobs[queued])

    def results(self) -> dict[str, str]:
        """Every finished output; the first error, in submission order, is raised. Should a
        worker die (killed, out of memory), its jobs are done again here."""
        from concurrent.futures import BrokenExecutor

        for path in reversed(self._jobs):
            # The parent, done rendering, takes the jobs no worker has started, from the end.
            queued = self._done.get(path)
            if not isinstance(queued, (str, TemplateError, type(None))) and queued.cancel():
                self._done[path] = finish(*self._jobs[path])
        missed = set(self._missed)
        out = {}
        for path in self._jobs:
            job = self._done.get(path)
            if job is None:  # no workers, or too few misses to start them
                job = finish(*self._jobs[path])
            elif not isinstance(job, (str, TemplateError)):
                try:
                    job = job.result()
                except BrokenExecutor:
                    job = finish(*self._jobs[path])
            out[path] = unwrap(job)
            if path in self._keys and path in missed and self._cache is not None:
                self._cache.put(self._keys[path], out[path])
        if self._cache is not None:
            self._cache.prune()
        return out
