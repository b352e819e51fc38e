"""Writes rendered output: the one place that touches ``generated/``.

Every file goes to a temporary sibling first and is renamed into place, so each file is always
either its old or its new version; nothing is written unless every page rendered. Runs on one
output directory take turns (an exclusive ``flock`` on the directory itself, so no lock file is
left behind), and each run first removes the temporary files a killed run left. ``compare`` is
the other half of ``check``: it reads the tree and names what differs from a fresh rendering.

``fingerprint``, ``remember`` and ``is_current`` let ``check`` skip parsing and rendering: after a
run has seen that the tree equals the rendering of some inputs, it records the inputs'
fingerprint and each output's sha256 in a per-user cache (never in the committed tree, so the
tree stays the same across machines and tool versions). When the inputs still have that
fingerprint and every file still has its hash, the tree is current; anything else, a
hand-edited file included, falls back to the full comparison.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from generator.errors import OutputError

MANIFEST = ".servicegen-manifest"
"""Lists the files a run wrote, so the next run can remove the ones it no longer renders."""
TEMP_SUFFIX = ".servicegen-tmp"
"""Ends the name of every temporary file a run writes; a later run removes leftovers."""
CACHE_ENV = "SERVICEGEN_CACHE_DIR"
"""Overrides where ``check``'s records live; set it empty to keep no records at all."""
_TOOLS = ("black", "docutils", "jinja2", "pydicom")
"""The libraries whose versions shape the output bytes, so a record names them."""


@dataclass(frozen=True)
class Drift:
    """How an output tree differs from a fresh rendering."""

    stale: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.stale or self.missing or self.extra)

    def lines(self) -> list[str]:
        return (
            [f"stale or hand-edited: {p}" for p in self.stale]
            + [f"missing: {p}" for p in self.missing]
            + [f"extra: {p}" for p in self.extra]
        )


def _owned(out_dir: Path) -> set[str]:
    try:
        text = (out_dir / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    paths = {line for line in text.splitlines() if line and not line.startswith("#")}
    return {p for p in paths if not Path(p).is_absolute() and ".." not in Path(p).parts}


def _manifest(outputs: Mapping[str, str] | set[str]) -> str:
    return "# Files written by servicegen generate; do not edit.\n" + "".join(
        f"{path}\n" for path in sorted(outputs)
    )


def with_manifest(outputs: Mapping[str, str]) -> dict[str, str]:
    """The rendered files plus the manifest naming them."""
    return {**outputs, MANIFEST: _manifest(outputs)}


def _present(out_dir: Path) -> list[str]:
    """Every file under ``out_dir`` except Python's bytecode caches, as relative paths."""
    return [
        p.relative_to(out_dir).as_posix()
        for p in out_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]


def compare(outputs: Mapping[str, str], out_dir: Path) -> Drift:
    """Compare ``outputs`` (with manifest) with ``out_dir``: stale, missing and extra files."""
    expected = with_manifest(outputs)
    stale, missing = [], []
    for path, text in expected.items():
        try:
            on_disk = (out_dir / path).read_bytes()
        except FileNotFoundError:
            missing.append(path)
            continue
        except OSError as exc:
            raise OutputError(f"{out_dir / path}: cannot read: {exc.strerror or exc}") from None
        if on_disk != text.encode("utf-8"):
            stale.append(path)
    extra = sorted(path for path in _present(out_dir) if path not in expected)
    return Drift(tuple(sorted(stale)), tuple(sorted(missing)), tuple(extra))


def write(outputs: Mapping[str, str], out_dir: Path) -> list[str]:
    """Write ``outputs`` under ``out_dir`` atomically per file; remove files an earlier run wrote
    that are no longer rendered. Returns the paths that changed.

    The manifest is written first when new paths appear (naming old and new files) and last
    with the final list, so a run killed at any point leaves a manifest that names every file
    it may have written, and the next run removes what it no longer renders.
    """
    expected = with_manifest(outputs)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write: {exc.strerror or exc}") from None
    with _locked(out_dir):
        _remove_leftovers(out_dir)
        previous = _owned(out_dir)
        pending = {}
        for path, text in expected.items():
            data = text.encode("utf-8")
            try:
                if (out_dir / path).read_bytes() == data:
                    continue
            except OSError:
                pass
            pending[path] = data
        final = pending.pop(MANIFEST, None)
        changed = list(pending) + ([MANIFEST] if final is not None else [])
        if pending and set(outputs) - previous:
            intent = _manifest(previous | set(outputs)).encode()
            atomic_write(out_dir / MANIFEST, intent)
            final = None if final == intent else final
        for path, data in pending.items():
            atomic_write(out_dir / path, data)
        for path in sorted(previous - set(expected)):
            try:
                (out_dir / path).unlink()
                changed.append(path)
            except FileNotFoundError:
                pass
        if final is not None:
            atomic_write(out_dir / MANIFEST, final)
    return changed


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` so concurrent runs write one after another.

    Without ``fcntl`` (Windows) or where the file system cannot lock a directory, runs still
    write each file atomically, but two runs may interleave.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fd = os.open(out_dir, os.O_RDONLY)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot open: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
                raise OutputError(f"{out_dir}: cannot lock: {exc.strerror or exc}") from None
        yield
    finally:
        os.close(fd)


def _remove_leftovers(out_dir: Path) -> None:
    """Remove temporary files of runs that were killed; called with the lock held, when no
    other run can be writing one."""
    for path in out_dir.rglob(f".*{TEMP_SUFFIX}"):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove: {exc.strerror or exc}") from None


def atomic_write(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``target`` through a temporary sibling and a rename, so readers see the
    old file or the new one; ``durable`` syncs it to disk first (a cache entry need not be)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
        raise


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def tool_digest() -> str:
    """sha256 over what turns inputs into output besides the inputs: the Python version,
    servicegen's own source and the versions of the libraries that shape the output bytes."""
    digest = hashlib.sha256(sys.version.encode())
    for name in _TOOLS:
        try:
            version = metadata.version(name)  # no import: check's fast path loads none of them
        except metadata.PackageNotFoundError:  # importable without metadata (a source tree)
            version = str(getattr(importlib.import_module(name), "__version__", ""))
        digest.update(f"\0{name}\0{version}".encode())
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(f"\0generator/{path.name}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def fingerprint(spec: Path, templates: Sequence[Path]) -> str | None:
    """sha256 over everything a rendering depends on: the ``*.rst`` pages under ``spec`` (by
    path relative to it), every file of the ``templates`` directories in search order, and
    ``tool_digest()``. None when something cannot be read (the full path then reports it)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode("utf-8", "surrogateescape") + b"\0" + _sha256(data).encode())

    try:
        add("tool", tool_digest().encode())
        for path in sorted(spec.rglob("*.rst")):
            add(f"spec/{path.relative_to(spec).as_posix()}", path.read_bytes())
        for index, folder in enumerate(templates):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                add(f"templates{index}/{path.relative_to(folder).as_posix()}", path.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def cache_folder() -> Path | None:
    """Where servicegen keeps its per-user caches (``$SERVICEGEN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/servicegen``, else ``~/.cache/servicegen``); None when disabled."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "servicegen"


def _record_path(out_dir: Path) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    key = _sha256(str(out_dir.resolve()).encode("utf-8", "surrogateescape"))
    return folder / f"{key[:32]}.json"


def remember(out_dir: Path, inputs: str, outputs: Mapping[str, str]) -> None:
    """Record that ``out_dir`` holds exactly ``outputs`` (with manifest), rendered from inputs
    of fingerprint ``inputs``. Only a cache: any failure to write it is ignored."""
    record = _record_path(out_dir)
    if record is None:
        return
    hashes = {path: _sha256(text.encode("utf-8")) for path, text in with_manifest(outputs).items()}
    data = json.dumps({"inputs": inputs, "outputs": hashes}, sort_keys=True).encode()
    try:
        atomic_write(record, data, durable=False)
    except OutputError:
        pass


def is_current(out_dir: Path, inputs: str) -> bool:
    """Whether a record says inputs of fingerprint ``inputs`` render to exactly the files now in
    ``out_dir``: the same set of files (bytecode caches aside), each with its recorded sha256."""
    record = _record_path(out_dir)
    if record is None:
        return False
    try:
        data = json.loads(record.read_bytes())
        hashes = data["outputs"]
        if data["inputs"] != inputs or not isinstance(hashes, dict):
            return False
        if sorted(_present(out_dir)) != sorted(hashes):
            return False
        return all(_sha256((out_dir / path).read_bytes()) == hashes[path] for path in hashes)
    except (OSError, ValueError, KeyError, TypeError):
        return False
