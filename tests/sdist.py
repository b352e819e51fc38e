"""pynetdicom 3.0.4's ``docs/service_classes/`` pages, downloaded at run time and never committed.

Shared by the ``pynetdicom_pages`` fixture and the benchmarks, so both read the same real-world
input the same way. ``SERVICEGEN_SDIST_CACHE`` names a directory to keep the download in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pydicom.uid import UID

PYNETDICOM_VERSION = "3.0.4"
CACHE_ENV = "SERVICEGEN_SDIST_CACHE"
_SOP_ROW = re.compile(r"^(?P<lead>\| (?P<uid>[0-9.]+) +\| )(?P<cell>[^|]*)\|$", re.MULTILINE)


class SdistUnavailable(Exception):
    """The sdist could not be downloaded; the message says why."""


def download_pages(where: Path | None = None) -> Path:
    """The pages under ``where`` (default: ``$SERVICEGEN_SDIST_CACHE``, else a new temporary
    directory), downloaded with pip first unless already there."""
    if where is None:
        cache = os.environ.get(CACHE_ENV)
        where = Path(cache) if cache else Path(tempfile.mkdtemp(prefix="sdist-"))
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
        raise SdistUnavailable(
            f"cannot download pynetdicom {PYNETDICOM_VERSION} sdist: {result.stderr.strip()[-300:]}"
        )
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/docs/service_classes/" in m.name]
        tar.extractall(where, members=members, filter="data")
    return pages


def mend_inventory(text: str) -> str:
    """The inventory page with its three keyword cells ("Inventory FIND", ...) replaced by
    pydicom's keyword for the row's UID, padded to the same cell width."""

    mended: list[str] = []

    def mend(match: re.Match[str]) -> str:
        cell = match["cell"]
        if cell.strip().isidentifier():
            return match[0]
        keyword = UID(match["uid"]).keyword
        assert keyword and len(keyword) < len(cell), (cell, keyword)
        mended.append(keyword)
        return match["lead"] + keyword.ljust(len(cell)) + "|"

    text = _SOP_ROW.sub(mend, text)
    assert mended == ["InventoryFind", "InventoryMove", "InventoryGet"], mended
    return text


def spec_copy(pages: Path, dest: Path, copies: int = 1) -> Path:
    """``dest`` holding the pages, inventory mended; with ``copies`` > 1, that many copies of
    each page under new names (``<stem>_<n>.rst``)."""
    dest.mkdir(parents=True, exist_ok=True)
    for page in sorted(pages.glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        if page.stem == "inventory_service_class":
            text = mend_inventory(text)
        for n in range(copies):
            name = page.name if copies == 1 else f"{page.stem}_{n}.rst"
            (dest / name).write_text(text, encoding="utf-8")
    return dest
