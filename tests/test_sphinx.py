"""The generated docs folder is a Sphinx site: ``python -m sphinx -W -b html generated/docs OUT``
builds every page and the index with no warning, over the committed docs and over a package of
pynetdicom's own pages; Sphinx gives each SOP class and status row the anchor docutils does, and
shows the page's prose. Builds run in a temporary OUT and leave the sources as they were."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from generator.docview import docs_view
from generator.parser import read_page

from . import sdist
from .conftest import ROOT, generate
from .test_docs import CLASHING, DOCS, Scan
from .test_prose import HOSTILE_PROSE, PROSE_PAGE

_TARGET = re.compile(r'<span class="target" id="([^"]+)"')


def sphinx(source: Path, out: Path) -> None:
    """Build ``source`` with Sphinx as the README says, failing on any warning."""
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("Sphinx is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + [str(source), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")}


def shown(path: Path) -> str:
    return " ".join(Scan(path.read_text(encoding="utf-8")).text.split())


def check_site(docs: Path, out: Path) -> int:
    """Every page of ``docs`` is in Sphinx's site, linked from its index, with the anchors of the
    docutils page in the same order and all its prose shown; how many pages there are."""
    pages = sorted(p for p in docs.glob("*.rst") if p.stem not in ("index", "conformance"))
    index = Scan((out / "index.html").read_text(encoding="utf-8"))
    assert "conformance.html" in index.links
    for rst in pages:
        page = read_page(rst)
        built, plain = out / f"{rst.stem}.html", docs / f"{rst.stem}.html"
        assert f"{rst.stem}.html" in index.links, rst.stem
        anchors = list(docs_view(page).anchors)
        assert anchors, rst.stem
        assert _TARGET.findall(built.read_text(encoding="utf-8")) == anchors, rst.stem
        assert _TARGET.findall(plain.read_text(encoding="utf-8")) == anchors, rst.stem
        sphinx_text, docutils_text = shown(built), shown(plain)
        for paragraph in page.prose:
            assert paragraph.text in sphinx_text, (rst.stem, paragraph)
            assert paragraph.text in docutils_text, (rst.stem, paragraph)
    return len(pages)


def test_sphinx_builds_the_committed_docs_without_a_warning(tmp_path: Path) -> None:
    before = snapshot(DOCS)
    sphinx(DOCS, tmp_path / "out")
    assert snapshot(DOCS) == before
    assert check_site(DOCS, tmp_path / "out") == 1
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert "import" not in conf and not re.search(r"20\d\d", conf)


def test_sphinx_builds_every_pynetdicom_page_without_a_warning(
    pynetdicom_pages: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = sdist.spec_copy(pynetdicom_pages, tmp_path / "spec")
    out = tmp_path / "pynetdicom_docs"
    status, errors = generate(spec, out, capsys)
    assert status == 0, errors
    sphinx(out / "docs", tmp_path / "site")
    assert check_site(out / "docs", tmp_path / "site") == 23
    ups = (tmp_path / "site" / "ups.html").read_text(encoding="utf-8")
    assert 'id="nsetstatus-specified-sop-instance-uid-not-exist-superseded"' in ups


def test_sphinx_builds_unusual_prose_hostile_prose_and_clashing_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    for name, text in (("prose", PROSE_PAGE), ("evil", HOSTILE_PROSE), ("echo", CLASHING)):
        (spec / f"{name}.rst").write_text(text, encoding="utf-8")
    out = tmp_path / "odd_docs"
    status, errors = generate(spec, out, capsys)
    assert status == 0, errors
    sphinx(out / "docs", tmp_path / "site")
    assert check_site(out / "docs", tmp_path / "site") == 3
    evil = (tmp_path / "site" / "evil.html").read_text(encoding="utf-8")
    assert "alert(1)" in evil and "<script>alert" not in evil and "<img" not in evil
