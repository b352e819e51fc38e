"""Shared fixtures: the repository's paths, the seed page, and pynetdicom's own pages."""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

from generator.cli import main
from generator.model import Page
from generator.parser import read_page

from . import sdist

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
SEED = SPEC / "color_palette_service_class.rst"
PYNETDICOM_VERSION = sdist.PYNETDICOM_VERSION


def checkout(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (by default the environment as it is now) for a fresh interpreter that runs this
    checkout's generator, wherever it runs and whatever ``servicegen`` is installed."""
    return {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}


def servicegen(
    *args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=cwd,
        env=checkout(env),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=300,
        check=False,
    )


def generate(
    spec: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, list[str]]:
    """``servicegen generate`` in this process: its exit status and its stderr lines."""
    capsys.readouterr()
    status = main(["generate", "--spec", str(spec), "--out", str(out), *extra])
    return status, capsys.readouterr().err.splitlines()


_packages = itertools.count()


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    """A fresh package directory under a folder on ``sys.path``; unloaded again afterwards."""
    name = f"package{next(_packages)}"
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path / name
    finally:
        sys.path.remove(str(tmp_path))
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]


def load(out: Path, stem: str) -> ModuleType:
    """The generated module ``stem`` of the package at ``out`` (on ``sys.path``: ``package``)."""
    return importlib.import_module(f"{out.name}.{stem}")


# In CI the property tests draw the same examples every run, so a run is red only for a reason a
# developer can reproduce (`CI=true pytest tests/test_properties.py`); locally they explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def seed_page() -> Page:
    return read_page(SEED)


@pytest.fixture(scope="session")
def pynetdicom_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docs/service_classes/`` of pynetdicom 3.0.4's sdist, downloaded now (never committed).

    Skips with the reason when the download fails, unless ``SERVICEGEN_REQUIRE_SDIST`` is set
    (CI sets it, so a download failure there fails the run rather than hiding tests).
    """
    cache = os.environ.get(sdist.CACHE_ENV)
    try:
        return sdist.download_pages(Path(cache) if cache else tmp_path_factory.mktemp("sdist"))
    except sdist.SdistUnavailable as exc:
        if os.environ.get("SERVICEGEN_REQUIRE_SDIST"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
