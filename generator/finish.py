"""The costly last step of each output: black for Python, docutils' HTML writer for the docs.

Results are cached per user by sha256 of job and tool, and computed in forked worker processes
when enough of them miss the cache, while the renderer goes on with the next page.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import black
from black.parsing import InvalidInput

from generator import writer
from generator.errors import OutputError, TemplateError
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
            return rst_to_html(text)
        except TemplateError as exc:
            return exc
    try:
        return black.format_str(text, mode=BLACK_MODE)
    except InvalidInput as exc:
        first = str(exc).splitlines()[0]
        return TemplateError(f"{template} rendered Python black cannot parse: {first}")


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


class _ResultCache:
    """Results of ``finish`` by sha256 of the job and of ``writer.tool_digest()``, in the
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
        entry = hashlib.sha256(text.encode("utf-8")).hexdigest() + "\n" + text
        try:
            writer.atomic_write(self.folder / key, entry.encode("utf-8"), durable=False)
            self.added += 1
        except OutputError:
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
            if path in missed and self._cache is not None:
                self._cache.put(self._keys[path], out[path])
        if self._cache is not None:
            self._cache.prune()
        return out
