"""Static checks as tests: mypy --strict and ruff on the generator, the generated package (which
ships ``py.typed``, so its users' type checkers read it), the tests and the benchmarks, and black
on all of it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tool`` from the repository root, so pyproject.toml configures it."""
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", tool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


CODE = ("generator", "generated", "tests", "benchmarks")


def test_mypy_strict_passes_on_all_code(tmp_path: Path) -> None:
    assert (ROOT / "generated" / "py.typed").is_file()
    result = run("mypy", "--strict", "--cache-dir", str(tmp_path), *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_passes_on_all_code() -> None:
    result = run("ruff", "check", "--no-cache", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_black_leaves_all_code_as_it_is() -> None:
    result = run("black", "--check", "--quiet", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr
