"""Which files are pages: the one listing that reading, fingerprinting, lint, diff and audit share.

Kept free of docutils so that ``check``'s fast path can list the pages it fingerprints without
loading the parser.
"""

from __future__ import annotations

import os
from pathlib import Path

from generator.errors import Problem, ServicegenError, SpecError


def page_paths(target: str | Path) -> list[Path]:
    """``target`` itself if it is a file, else every ``*.rst`` file below it, sorted.

    A symbolic link inside the folder (to a page or to a folder) is refused rather than
    followed: pages arrive in pull requests, and a link would read a file from outside the
    folder under review. ``target`` itself is the user's own choice and may be a link. A
    ``*.RST`` (any other case) is refused too, rather than silently left unread.
    """
    root = Path(target)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ServicegenError(f"{root}: no such page or directory")
    found: list[Path] = []
    links: list[Problem] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        pages = [name for name in files if name.endswith(".rst")]
        links.extend(
            Problem(str(here / name), 0, "is a symbolic link; pages are never read through a link")
            for name in dirs + pages
            if (here / name).is_symlink()
        )
        links.extend(
            Problem(str(here / name), 0, "is not read: a page's name ends in .rst, lower case")
            for name in files
            if name.lower().endswith(".rst") and not name.endswith(".rst")
        )
        found.extend(here / name for name in pages)
    if links:
        raise SpecError.of(sorted(links, key=lambda problem: problem.path))
    return sorted(found)
