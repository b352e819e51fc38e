"""Which findings ``lint`` and ``audit`` show, and which fail the run.

Configured as ruff is: ``--select``, ``--ignore`` and ``--fail-on`` on the command line, over the
same keys (plus ``per-page-ignores``) in ``[tool.servicegen.lint]`` or ``[tool.servicegen.audit]``
of the ``pyproject.toml`` closest to the pages (searched from the ``--spec`` folder, or the page's
folder, upward; the first that has a ``[tool.servicegen]`` table is the one). A selector is a code
or the start of one (``SG2`` is every SG2xx). Each layer, the file's and then the command line's,
starts afresh if it has a ``select`` (so ``--select SG301`` shows SG301 whatever the file
ignores) and then applies its selectors from the least to the most specific, an ``ignore`` winning
over a ``select`` just as specific. ``per-page-ignores`` apply last, whatever was selected; their
paths are relative to the folder of the ``pyproject.toml``.

The file is part of a pull request like the pages, so everything in it is checked: a mistake is
one line, ``pyproject.toml:line: message``, exit 2, never a silently ignored key or code.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib is in the standard library from 3.11
    import tomli as tomllib

from generator.errors import ServicegenError
from generator.findings import COMMAND_CODES, Finding, Severity

KEYS = ("select", "ignore", "fail-on", "per-page-ignores")
"""What ``[tool.servicegen.lint]`` and ``[tool.servicegen.audit]`` may hold."""
FAIL_ON = Severity.WARNING
"""The ``--fail-on`` default: info findings are shown, but never fail a commit."""


@dataclass(frozen=True)
class Layer:
    """One layer of rule selection, the file's or the command line's; ``select`` None keeps
    what the layer below selected."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """The codes a command shows, per page, and the least severity that fails the run."""

    enabled: frozenset[str]
    per_page: tuple[tuple[Path, frozenset[str]], ...]
    """Absolute page or folder paths, each with the codes left out of its findings."""
    fail_on: Severity

    def shown(self, findings: Iterable[Finding]) -> list[Finding]:
        return [finding for finding in findings if self._shows(finding)]

    def _shows(self, finding: Finding) -> bool:
        if finding.code not in self.enabled:
            return False
        where = Path(os.path.abspath(finding.path))
        return not any(
            finding.code in codes and where.is_relative_to(page) for page, codes in self.per_page
        )

    def fails(self, findings: Iterable[Finding]) -> bool:
        return any(finding.rule.severity.rank >= self.fail_on.rank for finding in findings)


def settings(
    command: str,
    target: Path,
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    fail_on: str | None = None,
) -> Settings:
    """What ``command`` (``lint`` or ``audit``) shows and fails on for the pages at ``target``:
    the command line's choices over those of the configuration file found from ``target``."""
    for option, given in (("--select", select or ()), ("--ignore", ignore or ())):
        bad = _unknown(command, given)
        if bad is not None:
            raise ServicegenError(_not_a_code(command, bad, option))
    found = find_config(target)
    configured = found.options()[command] if found else Options()
    command_line = Layer(None if select is None else tuple(select), tuple(ignore or ()))
    return Settings(
        _resolve(COMMAND_CODES[command], (configured.layer, command_line)),
        configured.per_page,
        Severity(fail_on) if fail_on else configured.fail_on,
    )


def _unknown(command: str, selectors: Iterable[str]) -> str | None:
    """The first of ``selectors`` that is neither a code of ``command`` nor the start of one."""
    codes = COMMAND_CODES[command]
    return next((s for s in selectors if not s or not any(c.startswith(s) for c in codes)), None)


def _not_a_code(command: str, selector: str, where: str) -> str:
    return f"{where}: {json.dumps(selector)} is not a code {command} reports, nor the start of one"


def _resolve(codes: Sequence[str], layers: Sequence[Layer]) -> frozenset[str]:
    """The ``codes`` that ``layers``, in order, leave selected (see the module's docstring)."""
    enabled = set(codes)
    for layer in layers:
        if layer.select is not None:
            enabled = set()
        moves = sorted(
            [(len(prefix), False, prefix) for prefix in layer.select or ()]
            + [(len(prefix), True, prefix) for prefix in layer.ignore]
        )
        for _, ignoring, prefix in moves:
            matched = {code for code in codes if code.startswith(prefix)}
            enabled = enabled - matched if ignoring else enabled | matched
    return frozenset(enabled)


@dataclass(frozen=True)
class Options:
    """A command's table of the configuration file, checked."""

    layer: Layer = Layer()
    per_page: tuple[tuple[Path, frozenset[str]], ...] = ()
    fail_on: Severity = FAIL_ON


@dataclass(frozen=True)
class ConfigFile:
    """The ``pyproject.toml`` that configures servicegen: its path, its text (where a mistake's
    line is searched for) and its ``[tool.servicegen]`` table."""

    path: Path
    text: str
    table: dict[str, Any]

    def options(self) -> dict[str, Options]:
        """Every command's options, all checked whichever command runs, as a file is either
        right or refused."""
        for key in self.table:
            if key not in COMMAND_CODES:
                raise self.error(
                    (key,),
                    f"unknown key tool.servicegen.{key}; expected one of"
                    f" {', '.join(COMMAND_CODES)}",
                )
        return {command: self._options(command) for command in COMMAND_CODES}

    def _options(self, command: str) -> Options:
        name = f"tool.servicegen.{command}"
        section = self.table.get(command, {})
        if not isinstance(section, dict):
            raise self.error((command,), f"{name} must be a table, not {_kind(section)}")
        for key in section:
            if key not in KEYS:
                raise self.error(
                    (command, key),
                    f"unknown key {name}.{key}; expected one of {', '.join(KEYS)}",
                )
        fail_on = section.get("fail-on", FAIL_ON.value)
        if fail_on not in [severity.value for severity in Severity]:
            raise self.error(
                (command, "fail-on"),
                f'{name}.fail-on must be "info", "warning" or "error", not {_kind(fail_on)}',
            )
        select = (
            self._codes(command, ("select",), section["select"]) if "select" in section else None
        )
        return Options(
            Layer(select, self._codes(command, ("ignore",), section.get("ignore", []))),
            self._per_page(command, section.get("per-page-ignores", {})),
            Severity(fail_on),
        )

    def _per_page(self, command: str, table: object) -> tuple[tuple[Path, frozenset[str]], ...]:
        if not isinstance(table, dict):
            raise self.error(
                (command, "per-page-ignores"),
                f"tool.servicegen.{command}.per-page-ignores must be a table of page or folder"
                f" paths to arrays of codes, not {_kind(table)}",
            )
        return tuple(
            (
                Path(os.path.abspath(self.path.parent / page)),
                frozenset(
                    code
                    for prefix in self._codes(command, ("per-page-ignores", page), codes)
                    for code in COMMAND_CODES[command]
                    if code.startswith(prefix)
                ),
            )
            for page, codes in table.items()
        )

    def _codes(self, command: str, keys: Sequence[str], value: object) -> tuple[str, ...]:
        """``value``, checked to be an array of codes of ``command`` or starts of codes."""
        name = ".".join(
            ["tool.servicegen", command]
            + [k if re.fullmatch(r"[\w-]+", k) else json.dumps(k) for k in keys]
        )
        if not isinstance(value, list):
            raise self.error(
                (command, *keys), f"{name} must be an array of codes, not {_kind(value)}"
            )
        wrong = next((item for item in value if not isinstance(item, str)), None)
        if wrong is not None:
            raise self.error(
                (command, *keys),
                f"{name} must be an array of codes, not an array holding {_kind(wrong)}",
            )
        bad = _unknown(command, value)
        if bad is not None:
            raise self.error((command, *keys), _not_a_code(command, bad, name), value=bad)
        return tuple(value)

    def error(self, keys: Sequence[str], message: str, value: str | None = None) -> ServicegenError:
        """``message`` as ``path:line: message``, the line being that of ``keys`` (below
        ``tool.servicegen``) and then of ``value``."""
        return ServicegenError(f"{_shown(self.path)}:{self._line(keys, value)}: {message}")

    def _line(self, keys: Sequence[str], value: str | None) -> int:
        """The line of the last of ``tool``, ``servicegen``, ``keys`` and then ``value`` found,
        each searched from the line of the one before: tomllib gives no positions for what it
        parsed, so a bad key or value is found by search, and at worst reported at line 1."""
        lines = self.text.splitlines()
        patterns = [
            rf"""(?:^|[\[{{,.])\s*["']?{re.escape(key)}["']?\s*(?:[=.\]]|$)"""
            for key in ("tool", "servicegen", *keys)
        ]
        if value is not None:
            patterns.append(rf"""["']{re.escape(value)}["']""")
        start, found = 0, 1
        for pattern in map(re.compile, patterns):
            hit = next((n for n in range(start, len(lines)) if pattern.search(lines[n])), None)
            if hit is not None:
                start, found = hit, hit + 1
        return found


def find_config(target: Path) -> ConfigFile | None:
    """The closest ``pyproject.toml`` with a ``[tool.servicegen]`` table, searched from the
    folder of ``target`` (or ``target`` itself, a folder) upward, as ruff finds its own."""
    start = Path(os.path.abspath(target))
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        path = folder / "pyproject.toml"
        read = _read(path)
        if read is None:
            continue
        text, document = read
        tool = document.get("tool")
        if isinstance(tool, dict) and "servicegen" in tool:
            found = ConfigFile(path, text, tool["servicegen"])
            if not isinstance(found.table, dict):
                raise found.error((), f"tool.servicegen must be a table, not {_kind(found.table)}")
            return found
    return None


def _read(path: Path) -> tuple[str, dict[str, Any]] | None:
    """The text of ``path`` and the document it holds; None if there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServicegenError(f"{_shown(path)}: cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ServicegenError(
            f"{_shown(path)}:{line}: byte 0x{data[exc.start]:02X} is not UTF-8"
        ) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r" \(at line (\d+), column (\d+)\)$", str(exc))
        message = str(exc).removesuffix(where[0] if where else " (at end of document)")
        line = int(where[1]) if where else max(len(text.splitlines()), 1)
        column = f" at column {where[2]}" if where else " at the end of the file"
        raise ServicegenError(
            f"{_shown(path)}:{line}: not valid TOML: {message[:1].lower()}{message[1:]}{column}"
        ) from None


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it, as pages are shown."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def _kind(value: object) -> str:
    """What TOML calls the type of ``value`` (a string's own text), for a message."""
    if isinstance(value, str):
        return json.dumps(value)
    kinds = {bool: "a boolean", int: "an integer", float: "a float", list: "an array"}
    return {**kinds, dict: "a table"}.get(type(value), "a date or time")
