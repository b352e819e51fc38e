"""Writes rendered output: the one place that touches ``generated/``.

Every file goes to a temporary sibling first and is renamed into place, so each file is always
either its old or its new version; nothing is written unless every page rendered. ``compare`` is
the other half of ``check``: it reads the tree and names what differs from a fresh rendering.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from generator.errors import OutputError

MANIFEST = ".servicegen-manifest"
"""Lists the files a run wrote, so the next run can remove the ones it no longer renders."""


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
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def _manifest(outputs: Mapping[str, str]) -> str:
    return "# Files written by servicegen generate; do not edit.\n" + "".join(
        f"{path}\n" for path in sorted(outputs)
    )


def with_manifest(outputs: Mapping[str, str]) -> dict[str, str]:
    """The rendered files plus the manifest naming them."""
    return {**outputs, MANIFEST: _manifest(outputs)}


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
    present = (
        p.relative_to(out_dir).as_posix()
        for p in out_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    extra = sorted(path for path in present if path not in expected)
    return Drift(tuple(sorted(stale)), tuple(sorted(missing)), tuple(extra))


def write(outputs: Mapping[str, str], out_dir: Path) -> list[str]:
    """Write ``outputs`` under ``out_dir`` atomically per file; remove files an earlier run wrote
    that are no longer rendered. Returns the paths that changed."""
    expected = with_manifest(outputs)
    changed = []
    previous = _owned(out_dir)
    for path, text in expected.items():
        target = out_dir / path
        data = text.encode("utf-8")
        try:
            if target.read_bytes() == data:
                continue
        except OSError:
            pass
        _atomic_write(target, data)
        changed.append(path)
    for path in sorted(previous - set(expected)):
        try:
            (out_dir / path).unlink()
            changed.append(path)
        except FileNotFoundError:
            pass
    return changed


def _atomic_write(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
        raise
