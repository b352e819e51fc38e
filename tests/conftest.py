"""Shared fixtures: the repository's paths, the seed page, and pynetdicom's own pages."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from generator.model import Page
from generator.parser import read_page

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
SEED = SPEC / "color_palette_service_class.rst"
PYNETDICOM_VERSION = "3.0.4"


@pytest.fixture(scope="session")
def seed_page() -> Page:
    return read_page(SEED)


@pytest.fixture(scope="session")
def pynetdicom_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docs/service_classes/`` of pynetdicom 3.0.4's sdist, downloaded now (never committed).

    Skips with the reason when the download fails, unless ``SERVICEGEN_REQUIRE_SDIST`` is set
    (CI sets it, so a download failure there fails the run rather than hiding tests).
    """
    cache = os.environ.get("SERVICEGEN_SDIST_CACHE")
    where = Path(cache) if cache else tmp_path_factory.mktemp("sdist")
    pages = where / f"pynetdicom-{PYNETDICOM_VERSION}" / "docs" / "service_classes"
    if pages.is_dir():
        return pages
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"pynetdicom=={PYNETDICOM_VERSION}",
            "-d",
            str(where),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    archives = list(where.glob(f"pynetdicom-{PYNETDICOM_VERSION}.tar.gz"))
    if result.returncode != 0 or not archives:
        reason = (
            f"cannot download pynetdicom {PYNETDICOM_VERSION} sdist: {result.stderr.strip()[-300:]}"
        )
        if os.environ.get("SERVICEGEN_REQUIRE_SDIST"):
            pytest.fail(reason)
        pytest.skip(reason)
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/docs/service_classes/" in m.name]
        tar.extractall(where, members=members, filter="data")
    return pages
