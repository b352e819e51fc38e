"""Writes rendered output: the one place that touches ``generated/`` and the per-user cache.

Whatever is already in the output folder is untrusted (DESIGN.md, "Trust boundaries"): it
arrives in pull requests. So every path below the folder is reached one component at a time from
directory descriptors opened with ``O_NOFOLLOW`` (``_Folder``): a symbolic link where the writer
would read, write, create a folder or remove is refused (``OutputError``), never followed, and
renaming a parent meanwhile cannot redirect anything. Every file goes to a temporary sibling first
and is renamed into place, so each file is always its old or its new version; nothing is written
unless every page rendered and every target is a plain file in plain folders. Runs on one output
take turns (an exclusive ``flock`` on the folder itself, so no lock file is left behind).

``compare`` is the other half of ``check``: it surveys the tree (``_Folder.survey``, never
following a link) and names every path servicegen did not write, and bytecode that is not shown
to come from the current source. ``is_current`` lets ``check`` skip rendering: a record, in the
per-user ``Cache`` and authenticated with the user's key, holds the fingerprint of the inputs and
what ``_describe`` made of a tree ``compare`` found equal to their rendering (every path, its kind
and its sha256); when the inputs still have that fingerprint and ``_describe`` still says the same
of the tree, it is current. Both sides use the same survey and description, so the fast path can
pass only a tree the full comparison passed.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import importlib
import json
import os
import re
import stat
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import NamedTuple

from generator.errors import OutputError, ServicegenError
from generator.pages import page_paths

MANIFEST = ".servicegen-manifest"
"""Lists the files a run wrote, so the next run can remove the ones it no longer renders."""
TEMP_SUFFIX = ".servicegen-tmp"
"""Ends the name of every temporary file a run writes; a later run removes leftovers."""
CACHE_ENV = "SERVICEGEN_CACHE_DIR"
"""Overrides where the per-user cache lives; set it empty to keep no cache at all."""
CACHE_NAME = "servicegen-cache"
"""servicegen's own folder inside the configured cache folder: the only place it writes there."""
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by servicegen.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)
"""Marks the cache folder as one that backups may skip (https://bford.info/cachedir/)."""
_TOOLS = ("black", "docutils", "jinja2", "markupsafe", "pydicom", "pynetdicom", "pytokens")
"""The libraries whose code shapes the output bytes: black and the tokenizer it formats with,
docutils, Jinja2 and markupsafe (which escapes the index), pydicom (the UID names in the docs),
pynetdicom (the conformance statement's transfer syntaxes, storage classes and implementation
identity)."""

FILE, DIR, LINK, SPECIAL = "file", "dir", "symlink", "special"
"""What a path in an output tree is; a link is never followed, so a link to a folder is a link."""
STALE, MISSING, UNVERIFIED = "stale or hand-edited", "missing", "unverified bytecode"
_UNWRITTEN = {FILE: "extra", DIR: "extra directory", LINK: "symbolic link", SPECIAL: "special file"}
"""How ``check`` names a path servicegen did not write, by what it is."""
_ORDER = (STALE, MISSING, *_UNWRITTEN.values(), UNVERIFIED)
_NOUNS = {FILE: "a file", DIR: "a folder", SPECIAL: "a special file"}

_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
"""(Windows has no ``O_NOFOLLOW`` nor ``dir_fd``: ``_Folder.open`` refuses to work there.)"""
_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
_OPEN_DIR = _FOLDER | _NOFOLLOW
_OPEN_FILE = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC | _NOFOLLOW
"""``O_NONBLOCK``: opening a FIFO planted where a file should be must not hang the run."""
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | _NOFOLLOW


@dataclass(frozen=True)
class Drift:
    """How an output tree differs from a fresh rendering: ``(what, path)`` pairs, in the order
    ``check`` reports them."""

    found: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.found)

    @property
    def stale(self) -> tuple[str, ...]:
        return tuple(path for what, path in self.found if what == STALE)

    def lines(self) -> list[str]:
        return [f"{what}: {path}" for what, path in self.found]


class _Found(NamedTuple):
    """A regular file's bytes and its status (owner and mode matter in the cache)."""

    data: bytes
    status: os.stat_result


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISDIR(mode):
        return DIR
    return FILE if stat.S_ISREG(mode) else SPECIAL


def _failure(path: Path, what: str, exc: OSError) -> OutputError:
    return OutputError(f"{path}: {what}: {exc.strerror or exc}")


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def temporary_pattern(name: str) -> re.Pattern[str]:
    """Matches the temporary siblings ``_Folder.write`` makes of files named by regex ``name``."""
    return re.compile(rf"\.{name}\.[0-9a-f]{{16}}{re.escape(TEMP_SUFFIX)}")


class _Folder:
    """A folder whose contents are reached only from directory descriptors, one path component
    at a time, each opened with ``O_NOFOLLOW``: no link below the folder is ever followed, and a
    parent renamed meanwhile cannot redirect a read, write or removal. The folder itself may be a
    link (the user's ``--out`` is theirs to choose). Paths are relative, ``/``-separated, with no
    empty, ``.`` or ``..`` component."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self._dirs = {"": fd}

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> _Folder | None:
        """The folder at ``path``, created if ``create``; None if it does not exist."""
        if os.open not in os.supports_dir_fd or not _NOFOLLOW:
            raise OutputError(f"{path}: servicegen needs O_NOFOLLOW and dir_fd (Linux, macOS)")
        try:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            return cls(path, os.open(path, _FOLDER))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _failure(path, "cannot open", exc) from None

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def refusal(self, path: str, kind: str, wanted: str = FILE) -> OutputError:
        """The error for finding ``kind`` at ``path`` where servicegen wants ``wanted``."""
        if kind == LINK:
            why = "is a symbolic link; servicegen never writes through links: remove it"
        else:
            need = "needs a folder" if wanted == DIR else "writes a file"
            why = f"is {_NOUNS[kind]} where servicegen {need}: remove it"
        return OutputError(f"{self.path / path}: {why}")

    def _refused(self, path: str, exc: OSError, wanted: str) -> OutputError:
        """``exc``, from opening ``path`` without following a link, as the user should read it."""
        status = self.lstat(path)
        kind = wanted if status is None else _kind(status.st_mode)
        if kind != wanted:
            return self.refusal(path, kind, wanted)
        return _failure(self.path / path, "cannot open", exc)

    def _entry(self, path: str, *, create: bool = False) -> tuple[int | None, str]:
        """A descriptor of the folder holding ``path`` (None if missing), and its name there."""
        folder, _, name = path.rpartition("/")
        return self._dir(folder, create=create), name

    def _dir(self, path: str, *, create: bool, mode: int = 0o777) -> int | None:
        """A descriptor of folder ``path`` (``""``: this one), created if ``create``; None if
        missing. Kept open for the folder's lifetime, so each component is opened once."""
        if path in self._dirs:
            return self._dirs[path]
        parent, name = self._entry(path, create=create)
        if parent is None:
            return None
        try:
            try:
                fd = os.open(name, _OPEN_DIR, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    return None
                try:
                    os.mkdir(name, mode, dir_fd=parent)
                except FileExistsError:
                    pass
                fd = os.open(name, _OPEN_DIR, dir_fd=parent)
        except OSError as exc:
            raise self._refused(path, exc, DIR) from None
        self._dirs[path] = fd
        return fd

    def child(self, name: str, *, mode: int) -> _Folder:
        """Sub-folder ``name``, created with ``mode`` if missing, as a folder of its own."""
        fd = self._dir(name, create=True, mode=mode)
        assert fd is not None
        return _Folder(self.path / name, os.dup(fd))

    def lstat(self, path: str) -> os.stat_result | None:
        """The status of ``path`` itself (a link's own), None if missing."""
        parent, name = self._entry(path)
        if parent is None:
            return None
        try:
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _failure(self.path / path, "cannot read", exc) from None

    def kind(self, path: str) -> str | None:
        status = self.lstat(path)
        return None if status is None else _kind(status.st_mode)

    def read(self, path: str) -> _Found | None:
        """Regular file ``path``, None if missing; anything else there is refused."""
        parent, name = self._entry(path)
        if parent is None:
            return None
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._refused(path, exc, FILE) from None
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise self.refusal(path, _kind(status.st_mode))
            with open(fd, "rb", closefd=False) as handle:
                return _Found(handle.read(), status)
        except OSError as exc:
            raise _failure(self.path / path, "cannot read", exc) from None
        finally:
            os.close(fd)

    def write(self, path: str, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
        """Write ``path`` through a temporary sibling and a rename, so readers see the old file
        or the new one; ``durable`` syncs it to disk first (a cache entry need not be)."""
        parent, name = self._entry(path, create=True)
        assert parent is not None
        temporary = f".{name}.{os.urandom(8).hex()}{TEMP_SUFFIX}"
        try:
            fd = os.open(temporary, _CREATE, mode, dir_fd=parent)
        except OSError as exc:
            raise _failure(self.path / path, "cannot write", exc) from None
        try:
            with open(fd, "wb") as handle:
                os.fchmod(fd, mode)
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(fd)
            os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException as exc:
            try:
                os.unlink(temporary, dir_fd=parent)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise _failure(self.path / path, "cannot write", exc) from None
            raise

    def remove(self, path: str) -> bool:
        """Remove ``path`` (a link itself, never its target); False if it was not there."""
        parent, name = self._entry(path)
        try:
            if parent is not None:
                os.unlink(name, dir_fd=parent)
                return True
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _failure(self.path / path, "cannot remove", exc) from None
        return False

    def remove_folder(self, path: str) -> None:
        """Remove folder ``path`` if it is empty; otherwise leave it."""
        parent, name = self._entry(path)
        if parent is not None:
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError:
                return
            fd = self._dirs.pop(path, None)
            if fd is not None:
                os.close(fd)

    def touch(self, path: str) -> None:
        parent, name = self._entry(path)
        if parent is not None:
            os.utime(name, dir_fd=parent, follow_symlinks=False)

    def survey(self, descend: Collection[str]) -> dict[str, str]:
        """Every path below this folder and what it is, found without following a link. Only
        the folders ``descend`` names are entered: any other is one entry, however large."""
        tree: dict[str, str] = {}
        pending = [""]
        while pending:
            folder = pending.pop()
            fd = self._dir(folder, create=False)
            if fd is None:
                continue
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        path = _join(folder, entry.name)
                        tree[path] = kind = _entry_kind(entry)
                        if kind == DIR and path in descend:
                            pending.append(path)
            except OSError as exc:
                raise _failure(self.path / folder, "cannot read", exc) from None
        return tree

    def mtimes(self, folder: str) -> dict[str, float]:
        """The regular files directly in ``folder`` and when each was last modified."""
        fd = self._dir(folder, create=False)
        if fd is None:
            return {}
        with os.scandir(fd) as entries:
            return {
                entry.name: entry.stat(follow_symlinks=False).st_mtime
                for entry in entries
                if entry.is_file(follow_symlinks=False)
            }


def _entry_kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return LINK
    if entry.is_dir(follow_symlinks=False):
        return DIR
    return FILE if entry.is_file(follow_symlinks=False) else SPECIAL


def _manifest(outputs: Iterable[str]) -> str:
    return "# Files written by servicegen generate; do not edit.\n" + "".join(
        f"{path}\n" for path in sorted(outputs)
    )


def with_manifest(outputs: Mapping[str, str]) -> dict[str, str]:
    """The rendered files plus the manifest naming them."""
    return {**outputs, MANIFEST: _manifest(outputs)}


def _encoded(outputs: Mapping[str, str]) -> dict[str, bytes]:
    return {path: text.encode("utf-8") for path, text in with_manifest(outputs).items()}


def _owned(folder: _Folder) -> set[str]:
    """The files the manifest says an earlier run wrote. A line servicegen cannot have written
    (bytes that are not UTF-8, a NUL, an empty or ``.`` component) names nothing to remove and is
    dropped: the run rewrites the manifest, so the next one is clean. A line naming a path
    outside the folder (absolute, or with ``..``) is refused: it is there to make a run delete
    what is not its own."""
    found = folder.read(MANIFEST)
    owned: set[str] = set()
    for number, raw in enumerate(found.data.split(b"\n") if found else [], 1):
        line = raw.removesuffix(b"\r")
        if not line or line.startswith(b"#"):
            continue
        try:
            entry = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        parts = entry.split("/")
        if entry.startswith("/") or ".." in parts:
            raise OutputError(
                f"{folder.path / MANIFEST}:{number}: {entry!r} is outside the output folder; "
                "servicegen removes only files it wrote inside it"
            )
        if "\0" not in entry and "" not in parts and "." not in parts:
            owned.add(entry)
    return owned


def _folders(paths: Iterable[str]) -> set[str]:
    """The folders that hold ``paths``, below the top."""
    folders = set()
    for path in paths:
        folder = _parent(path)
        while folder and folder not in folders:
            folders.add(folder)
            folder = _parent(folder)
    return folders


def _caches(paths: Iterable[str]) -> set[str]:
    """The ``__pycache__`` folder beside each Python module of ``paths``, where Python may write
    bytecode of it."""
    return {_join(_parent(path), "__pycache__") for path in paths if path.endswith(".py")}


class _Bytecode(NamedTuple):
    source: str
    tag: str
    optimize: int


_BYTECODE_NAME = re.compile(r"(?P<stem>[^.]+)\.(?P<tag>[^.]+)(?:\.opt-(?P<opt>[12]))?\.pyc")
"""How ``importlib.util.cache_from_source`` names bytecode: ``<stem>.<cache tag>[.opt-N].pyc``."""


def _bytecode_of(path: str) -> _Bytecode | None:
    """What Python would take ``path`` for, if it is named as bytecode in a ``__pycache__``."""
    folder, _, name = path.rpartition("/")
    match = _BYTECODE_NAME.fullmatch(name)
    if folder.rpartition("/")[2] != "__pycache__" or match is None:
        return None
    source = _join(_parent(folder), f"{match['stem']}.py")
    return _Bytecode(source, match["tag"], int(match["opt"] or 0))


def _ignored(data: bytes, source: os.stat_result | None) -> bool:
    """Whether every Python ignores bytecode ``data`` for a source of status ``source``: it is
    timestamp-based (PEP 552) and records another mtime or size, as bytecode does after a branch
    switch. Hash-based bytecode may be loaded unchecked, so it is never ignored here."""
    if len(data) < 16 or source is None or int.from_bytes(data[4:8], "little") not in (0, 2):
        return False
    recorded = (int.from_bytes(data[8:12], "little"), int.from_bytes(data[12:16], "little"))
    return recorded != (int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF)


def _describe(folder: _Folder, tree: Mapping[str, str]) -> dict[str, str]:
    """What ``check`` knows of each path of ``tree``: its kind, or a file's sha256 (bytecode's
    with whether Python ignores it, which its source's mtime and size decide)."""
    state = {}
    for path, kind in tree.items():
        found = folder.read(path) if kind == FILE else None
        if found is None:
            state[path] = kind
            continue
        state[path] = _sha256(found.data)
        bytecode = _bytecode_of(path)
        if bytecode is not None:
            ignored = _ignored(found.data, folder.lstat(bytecode.source))
            state[path] += ":ignored" if ignored else ":live"
    return state


def compare(outputs: Mapping[str, str], out_dir: Path, *, inputs: str | None = None) -> Drift:
    """Compare ``outputs`` (with manifest) with ``out_dir``: stale and missing files, and every
    path servicegen did not write (a file, a folder, once, a link, a FIFO), and bytecode not
    shown to come from the current source. With ``inputs``, their fingerprint, a tree found
    equal is recorded for ``is_current``."""
    expected = _encoded(outputs)
    folder = _Folder.open(out_dir)
    if folder is None:
        return Drift(tuple((MISSING, path) for path in sorted(expected)))
    with closing(folder):
        tree = folder.survey(_folders(expected) | _caches(expected))
        state = _describe(folder, tree)
        drift = _drift(folder, tree, state, expected)
    if inputs is not None and not drift:
        _remember(out_dir, inputs, state)
    return drift


def _drift(
    folder: _Folder,
    tree: Mapping[str, str],
    state: Mapping[str, str],
    expected: Mapping[str, bytes],
) -> Drift:
    allowed = _folders(expected) | _caches(expected)
    found, bytecode = [], {}
    for path, kind in tree.items():
        code = _bytecode_of(path) if kind == FILE else None
        if path in expected and kind == FILE:
            if state[path] != _sha256(expected[path]):
                found.append((STALE, path))
        elif kind == DIR and path in allowed:
            continue
        elif code is not None and code.source in expected:
            if not state[path].endswith(":ignored"):
                bytecode[path] = code
        else:
            found.append((_UNWRITTEN[kind], path))
    found += [(UNVERIFIED, path) for path in _unverified(folder, bytecode, expected)]
    for path in expected:
        if path not in tree and all(tree.get(f, DIR) == DIR for f in _folders([path])):
            found.append((MISSING, path))
    return Drift(tuple(sorted(found, key=lambda item: (_ORDER.index(item[0]), item[1]))))


def _unverified(
    folder: _Folder, bytecode: Mapping[str, _Bytecode], expected: Mapping[str, bytes]
) -> list[str]:
    """The paths of ``bytecode`` (none of it ignored by Python) not shown to be what this Python
    compiles of the source: bytecode this interpreter loads (its cache tag and magic number, a
    timestamp or checked hash that matches) whose code equals the source's; unchecked-hash
    bytecode, which Python loads whatever the source says, and another Python's never are."""
    candidates, unverified = {}, []
    for path, code in bytecode.items():
        found = folder.read(path)
        data = found.data if found else b""
        source = expected[code.source]
        flags = int.from_bytes(data[4:8], "little")
        ours = code.tag == sys.implementation.cache_tag and data[:4] == util.MAGIC_NUMBER
        if ours and (flags in (0, 2) or (flags == 3 and data[8:16] == util.source_hash(source))):
            candidates[path] = (data, source, code.optimize)
        else:
            unverified.append(path)
    verdicts = _same_code(list(candidates.values()))
    return unverified + [path for path, same in zip(candidates, verdicts) if not same]


_VERIFY = r"""
import json, marshal, sys, types

def key(value):
    if isinstance(value, types.CodeType):
        names = sorted(n for n in dir(value) if n.startswith("co_"))
        fields = [n for n in names if n not in ("co_filename", "co_lnotab")]
        return ("code",) + tuple(
            (n, key(getattr(value, n))) for n in fields if not callable(getattr(value, n))
        )
    if type(value) in (tuple, frozenset):
        return (type(value).__name__, type(value)(map(key, value)))
    return (type(value).__name__, repr(value))

verdicts = []
for pyc, source, optimize in json.load(sys.stdin):
    try:
        code = marshal.loads(bytes.fromhex(pyc)[16:])
        compiled = compile(bytes.fromhex(source), "-", "exec", dont_inherit=True, optimize=optimize)
        verdicts.append(key(code) == key(compiled))
    except Exception:
        verdicts.append(False)
print(json.dumps(verdicts))
"""
"""Compares unmarshalled bytecode with the compiled source, field by field and constants by type
and value (``code.__eq__`` skips some fields, such as ``co_stacksize``). It runs in a separate
interpreter because ``marshal`` is not safe against malicious data: a crash there only means
"not verified"."""


def _same_code(jobs: Sequence[tuple[bytes, bytes, int]]) -> list[bool]:
    """Whether each ``(bytecode, source, optimization level)`` holds the source's code."""
    import subprocess

    if not jobs:
        return []
    request = json.dumps([[data.hex(), source.hex(), level] for data, source, level in jobs])
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _VERIFY],
            input=request,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        verdicts = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != len(jobs):
        return [False] * len(jobs)
    return [verdict is True for verdict in verdicts]


def write(outputs: Mapping[str, str], out_dir: Path, *, inputs: str | None = None) -> list[str]:
    """Write ``outputs`` under ``out_dir`` atomically per file; remove files an earlier run wrote
    that are no longer rendered, and the bytecode of every module rewritten or removed. Returns
    the paths that changed. With ``inputs``, their fingerprint, a tree left exactly as rendered
    is recorded for ``is_current``.

    Every target is checked before anything is written: a link, a folder or a special file where
    a file goes, and a link on the way to a file to remove, are refused. The manifest is written
    first when new paths appear (naming old and new files) and last with the final list, so a run
    killed at any point leaves a manifest that names every file it may have written.
    """
    expected = _encoded(outputs)
    folder = _Folder.open(out_dir, create=True)
    assert folder is not None
    with closing(folder), _locked(folder):
        previous = _owned(folder)
        gone = sorted(path for path in previous - expected.keys() if _removable(folder, path))
        touched = [*expected, *gone]
        tree = folder.survey(_folders(touched) | _caches(touched))
        for path in expected:
            _refuse_unwritable(folder, tree, path)
        for path, kind in tree.items():
            if kind == FILE and _leftover(path):
                folder.remove(path)
        pending = {}
        for path, data in expected.items():
            found = folder.read(path) if tree.get(path) == FILE else None
            if found is None or found.data != data:
                pending[path] = data
        final = pending.pop(MANIFEST, None)
        changed = list(pending) + ([MANIFEST] if final is not None else [])
        if pending and set(outputs) - previous:
            intent = _manifest(previous | set(outputs)).encode()
            folder.write(MANIFEST, intent)
            final = None if final == intent else final
        modules = {path for path in [*pending, *gone] if path.endswith(".py")}
        for path, kind in tree.items():
            code = _bytecode_of(path) if kind == FILE else None
            if code is not None and code.source in modules:
                folder.remove(path)
        for path, data in pending.items():
            folder.write(path, data)
        changed += [path for path in gone if folder.remove(path)]
        kept = _folders(expected) | _caches(expected)
        for empty in sorted(_folders(gone) | _caches(gone), key=len, reverse=True):
            if empty not in kept:
                folder.remove_folder(empty)
        if final is not None:
            folder.write(MANIFEST, final)
        if inputs is not None:
            _remember_written(folder, inputs, expected)
    return changed


def _leftover(path: str) -> bool:
    """Whether ``path`` is a temporary file of a killed run: removed with the lock held, when no
    other run can be writing one."""
    name = path.rpartition("/")[2]
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _remember_written(folder: _Folder, inputs: str, expected: Mapping[str, bytes]) -> None:
    """Record a tree ``write`` left exactly as rendered: nothing in it but ``expected`` and its
    folders (no bytecode, which only ``compare`` verifies)."""
    layout = {path: FILE for path in expected} | dict.fromkeys(_folders(expected), DIR)
    if folder.survey(layout) == layout:
        hashes = {path: _sha256(data) for path, data in expected.items()}
        _remember(folder.path, inputs, {**layout, **hashes})


def _refuse_unwritable(folder: _Folder, tree: Mapping[str, str], path: str) -> None:
    """Refuse, before anything is written, a target servicegen could write only by following a
    link or replacing what it did not write: a link, a folder or a special file at ``path``, or
    anything but a folder on the way to it."""
    for above in sorted(_folders([path]), key=len):
        kind = tree.get(above)
        if kind is None:
            return
        if kind != DIR:
            raise folder.refusal(above, kind, DIR)
    kind = tree.get(path, FILE)
    if kind != FILE:
        raise folder.refusal(path, kind)


def _removable(folder: _Folder, path: str) -> bool:
    """Whether manifest entry ``path`` names a file to remove: a regular file, reached through
    folders. A link on the way or at the end is refused; anything else (a folder, nothing) is no
    target."""
    for step in [*sorted(_folders([path]), key=len), path]:
        kind = folder.kind(step)
        if kind == LINK:
            raise folder.refusal(step, kind)
        if kind != DIR:
            return step == path and kind == FILE
    return False


@contextmanager
def _locked(folder: _Folder) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so concurrent runs write one after another.

    Without ``fcntl`` or where the file system cannot lock a directory, runs still write each
    file atomically, but two runs may interleave.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fcntl.flock(folder.fd, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
            raise _failure(folder.path, "cannot lock", exc) from None
    yield


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
            try:
                version = str(getattr(importlib.import_module(name), "__version__", ""))
            except ImportError:  # a library the others no longer need
                version = "absent"
        digest.update(f"\0{name}\0{version}".encode())
    own = Path(__file__).resolve().parent
    for path in sorted([*own.glob("*.py"), *own.glob("runtime/*.py"), *own.glob("runtime/*.css")]):
        name = path.relative_to(own).as_posix()
        digest.update(f"\0generator/{name}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def fingerprint(spec: Path, templates: Sequence[Path]) -> str | None:
    """sha256 over everything a rendering depends on: the pages under ``spec`` (the listing the
    parser reads, by path relative to it), every file of the ``templates`` directories in search
    order, and ``tool_digest()``. None when something cannot be read (the full path then
    reports it)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode("utf-8", "surrogateescape") + b"\0" + _sha256(data).encode())

    try:
        add("tool", tool_digest().encode())
        for path in page_paths(spec):
            add(f"spec/{path.relative_to(spec).as_posix()}", path.read_bytes())
        for index, folder in enumerate(templates):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                add(f"templates{index}/{path.relative_to(folder).as_posix()}", path.read_bytes())
    except (OSError, ServicegenError):
        return None
    return digest.hexdigest()


def cache_folder() -> Path | None:
    """The configured per-user cache folder (``$SERVICEGEN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/servicegen``, else ``~/.cache/servicegen``); None when disabled.
    servicegen keeps to ``CACHE_NAME`` inside it (``Cache``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "servicegen"


def _marks_trusted() -> bool:
    """Whether what the user's key authenticates may be believed: not with ``CI`` set, where a
    cache is often restored from another run and its key is nobody's secret."""
    return not os.environ.get("CI")


def _private(status: os.stat_result, *, secret: bool = False) -> bool:
    """Owned by this user and writable by nobody else (if ``secret``, readable by nobody else)."""
    others = 0o077 if secret else 0o022
    return status.st_uid == os.geteuid() and not status.st_mode & others


class Cache:
    """servicegen's own folder inside the configured one (``CACHE_NAME``, tagged ``CACHEDIR.TAG``,
    owned by the user and writable by nobody else), the only place it writes or deletes there, so
    ``SERVICEGEN_CACHE_DIR`` may name a folder of one's own files. It holds ``records/`` of
    ``check``, ``results/`` of ``finish``, and ``key``: random bytes only the user can read, whose
    HMAC-SHA256 marks what servicegen wrote where nothing else can verify it. Only a cache:
    whatever cannot be read or written, or is not the user's own, is absent."""

    def __init__(self, folder: _Folder) -> None:
        self.folder = folder
        self._key: bytes | None = None

    @classmethod
    def open(cls) -> Cache | None:
        configured = cache_folder()
        try:
            base = None if configured is None else _Folder.open(configured, create=True)
            if base is None:
                return None
            with closing(base):
                cache = cls(base.child(CACHE_NAME, mode=0o700))
            if not _private(os.fstat(cache.folder.fd)):
                cache.close()
                return None
            if cache.folder.kind("CACHEDIR.TAG") is None:
                cache.write("CACHEDIR.TAG", _CACHEDIR_TAG)
        except OutputError:
            return None
        return cache

    def close(self) -> None:
        self.folder.close()

    def read(self, path: str, *, secret: bool = False) -> bytes | None:
        """Regular file ``path`` if it is the user's own (``_private``), else None."""
        try:
            found = self.folder.read(path)
        except OutputError:
            return None
        return found.data if found and _private(found.status, secret=secret) else None

    def write(self, path: str, data: bytes) -> bool:
        try:
            self.folder.write(path, data, durable=False, mode=0o600)
        except OutputError:
            return False
        return True

    def remove(self, path: str) -> None:
        try:
            self.folder.remove(path)
        except OutputError:
            pass

    def touch(self, path: str) -> None:
        try:
            self.folder.touch(path)
        except (OSError, OutputError):
            pass

    def mtimes(self, folder: str) -> dict[str, float]:
        try:
            return self.folder.mtimes(folder)
        except (OSError, OutputError):
            return {}

    def _mark(self, label: str, data: bytes) -> bytes:
        if self._key is None:
            key = self.read("key", secret=True)
            if key is None or len(key) != 32:
                key = os.urandom(32)
                self.write("key", key)
            self._key = key
        return hmac.new(self._key, label.encode() + b"\0" + data, "sha256").hexdigest().encode()

    def marked(self, label: str, data: bytes) -> bytes:
        """``data`` behind a line authenticating it as written by this user as ``label``."""
        return self._mark(label, data) + b"\n" + data

    def unmarked(self, label: str, blob: bytes) -> bytes | None:
        """The data of ``marked(label, data)``; None unless its mark is this user's for
        ``label`` and marks are trusted at all (``_marks_trusted``)."""
        mark, _, data = blob.partition(b"\n")
        if _marks_trusted() and hmac.compare_digest(mark, self._mark(label, data)):
            return data
        return None


def _record_path(out_dir: Path) -> tuple[str, str]:
    """The output folder as a record names it (resolved), and the record's path in the cache."""
    where = str(out_dir.resolve())
    return where, f"records/{_sha256(where.encode('utf-8', 'surrogateescape'))[:32]}"


def _remember(out_dir: Path, inputs: str, state: Mapping[str, str]) -> None:
    """Record that ``out_dir`` holds a tree ``_describe``d as ``state``, equal to the rendering
    of inputs of fingerprint ``inputs``. Never in CI (``_marks_trusted``)."""
    cache = Cache.open() if _marks_trusted() else None
    if cache is not None:
        where, path = _record_path(out_dir)
        record = {"out": where, "inputs": inputs, "tree": dict(state)}
        with closing(cache):
            cache.write(path, cache.marked("record", json.dumps(record, sort_keys=True).encode()))


def is_current(out_dir: Path, inputs: str) -> bool:
    """Whether a record of this user's says inputs of fingerprint ``inputs`` render to exactly
    the tree now in ``out_dir``: the same paths, kinds and contents, bytecode included."""
    cache = Cache.open() if _marks_trusted() else None
    if cache is None:
        return False
    where, path = _record_path(out_dir)
    with closing(cache):
        blob = cache.read(path)
        data = None if blob is None else cache.unmarked("record", blob)
    if data is None:
        return False
    try:
        record = json.loads(data)
        if record["out"] != where or record["inputs"] != inputs:
            return False
        recorded = record["tree"]
        folder = _Folder.open(out_dir)
        if folder is None or not isinstance(recorded, dict):
            return False
        with closing(folder):
            descend = {path for path, what in recorded.items() if what == DIR}
            return _describe(folder, folder.survey(descend)) == recorded
    except (OutputError, ValueError, KeyError, TypeError):
        return False
