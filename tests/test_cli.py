"""The CLI end to end: generate, check, model, template overrides, and every bad-input case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator import render, writer
from generator.cli import main
from generator.errors import SpecError
from generator.parser import iter_pages, read_page

from .conftest import ROOT, SEED, servicegen


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    spec = tmp_path / "spec"
    spec.mkdir()
    shutil.copy(SEED, spec / SEED.name)
    return spec


def test_committed_output_is_a_fresh_generation() -> None:
    result = servicegen("check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_generate_is_deterministic_and_idempotent(spec_dir: Path, tmp_path: Path) -> None:
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert main(["generate", "--spec", str(spec_dir), "--out", str(out_a)]) == 0
    assert main(["generate", "--spec", str(spec_dir), "--out", str(out_b)]) == 0
    assert snapshot(out_a) == snapshot(out_b)
    assert snapshot(out_a) == {
        k: v for k, v in snapshot(ROOT / "generated").items() if "__pycache__" not in k
    }
    again = servicegen("generate", "--spec", str(spec_dir), "--out", str(out_a))
    assert again.returncode == 0 and "0 of" in again.stdout


def test_check_names_every_kind_of_drift(spec_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["generate", "--spec", str(spec_dir), "--out", str(out)]) == 0
    module = out / "color_palette_service_class.py"
    module.write_text(module.read_text().replace("0xC000", "0xC001", 1))
    (out / "docs" / "index.html").unlink()
    (out / "stray.py").write_text("x = 1\n")
    result = servicegen("check", "--spec", str(spec_dir), "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{out}: stale or hand-edited: color_palette_service_class.py",
        f"{out}: missing: docs/index.html",
        f"{out}: extra: stray.py",
    ]


def test_generate_removes_files_of_a_deleted_page(spec_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copy(SEED, spec_dir / "second_page.rst")
    assert main(["generate", "--spec", str(spec_dir), "--out", str(out)]) == 0
    assert (out / "second_page.py").is_file()
    (spec_dir / "second_page.rst").unlink()
    assert main(["generate", "--spec", str(spec_dir), "--out", str(out)]) == 0
    assert not (out / "second_page.py").exists()
    assert main(["check", "--spec", str(spec_dir), "--out", str(out)]) == 0


def test_a_page_whose_name_is_no_module_name_is_refused(spec_dir: Path, tmp_path: Path) -> None:
    page = spec_dir / "color-palette.rst"
    (spec_dir / SEED.name).rename(page)
    result = servicegen("generate", "--spec", str(spec_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr == (
        f"servicegen: {page}:1: file name 'color-palette' is no Python module name\n"
    )
    assert not (tmp_path / "out").exists()


def test_model_prints_the_documented_json() -> None:
    result = servicegen("model", str(SEED))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["title"] == "Color Palette Query/Retrieve Service Class"
    assert data["source"] == str(SEED)
    assert data["sop_classes"][0] == {
        "keyword": "ColorPaletteInformationModelFind",
        "uid": "1.2.840.10008.5.1.4.39.2",
        "dimse": "C-FIND",
        "dimse_services": ["C-FIND"],
        "line": 21,
    }
    assert [(t["dimse"], t["scope"], len(t["statuses"])) for t in data["status_tables"]] == [
        ("C-FIND", "general", 3),
        ("C-FIND", "service", 5),
        ("C-FIND", "implementation", 5),
        ("C-GET", "general", 6),
        ("C-GET", "service", 6),
        ("C-GET", "implementation", 5),
        ("C-MOVE", "general", 7),
        ("C-MOVE", "service", 7),
        ("C-MOVE", "implementation", 7),
    ]
    assert data["status_tables"][1]["statuses"][2] == {
        "first": 0xC000,
        "last": 0xCFFF,
        "category": "Failure",
        "description": "Unable to process",
        "description_rst": "Unable to process",
        "line": 76,
    }
    unable = {"name": "UNABLE_TO_PROCESS", "first": 0xC000, "last": 0xCFFF}
    assert [m for m in data["members"] if m["first"] in (0xC000, 0xFF01)] == [
        {"dimse": "C-FIND", **unable},
        {
            "dimse": "C-FIND",
            "name": "MATCHES_CONTINUING_ONE_OR_MORE_OPTIONAL",
            "first": 0xFF01,
            "last": 0xFF01,
        },
        {"dimse": "C-GET", **unable},
        {"dimse": "C-MOVE", **unable},
    ]
    assert len(data["members"]) == 13 + 17 + 21
    assert data["aliases"] == [
        {
            "dimse": "C-FIND",
            "code": 0xFF01,
            "name": "MATCHES_ARE_CONTINUING_ONE_OR_MORE_OPTIONAL_KEYS",
            "line": 274,
        }
    ]


def without_lines(data: object) -> object:
    """``servicegen model`` JSON without its lines and source: what the generated RST keeps."""
    if isinstance(data, dict):
        return {k: without_lines(v) for k, v in data.items() if k not in ("line", "source")}
    if isinstance(data, list):
        return [without_lines(item) for item in data]
    return data


def test_model_prints_the_prose_and_links_with_their_context_and_the_rst_reads_back() -> None:
    result = servicegen("model", str(SEED))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(p["section"], p["item"], p["line"]) for p in data["prose"]] == [
        ("Color Palette Query/Retrieve Service Class", False, 6),
        ("pynetdicom Color Palette Query/Retrieve (Find) Statuses", False, 87),
        ("References", True, 264),
        ("References", True, 265),
        ("References", True, 266),
    ]
    assert data["prose"][2] == {
        "section": "References",
        "text": "DICOM Standard, Part 4, Annex C",
        "rst": "DICOM Standard, Part 4, `Annex C <https://dicom.nema.org/medical/dicom/current"
        "/output/chtml/part04/chapter_C.html>`__",
        "item": True,
        "line": 264,
    }
    assert data["links"][1] == {
        "text": "Annex C",
        "url": "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/chapter_C.html",
        "section": "References",
        "context": "DICOM Standard, Part 4, Annex C",
    }
    docs = servicegen("model", str(ROOT / "generated" / "docs" / f"{SEED.stem}.rst"))
    assert docs.returncode == 0, docs.stderr
    assert without_lines(json.loads(docs.stdout)) == without_lines(data)


def test_user_templates_override_by_name(spec_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "index.html.j2").write_text("<p>{{ pages|length }} page</p>\n")
    out = tmp_path / "out"
    assert (
        main(["generate", "--spec", str(spec_dir), "--out", str(out), "--templates", str(custom)])
        == 0
    )
    assert (out / "docs" / "index.html").read_text() == "<p>1 page</p>\n"
    assert (out / "color_palette_service_class.py").read_bytes() == (
        ROOT / "generated" / "color_palette_service_class.py"
    ).read_bytes().replace(
        render.templates_digest(render.environment()).encode(),
        render.templates_digest(render.environment(custom)).encode(),
    )


def test_a_user_template_replaces_a_runtime_file_by_its_name(
    spec_dir: Path, tmp_path: Path
) -> None:
    """The runtime is copied verbatim, unless ``--templates`` holds its name plus ``.j2``."""
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "backend.py.j2").write_text('"""My archive for {{ pages|length }} page."""\n')
    (custom / "style.css.j2").write_text("body { color: black; }\n")
    out = tmp_path / "out"
    assert (
        main(["generate", "--spec", str(spec_dir), "--out", str(out), "--templates", str(custom)])
        == 0
    )
    assert (out / "backend.py").read_text() == '"""My archive for 1 page."""\n'
    assert (out / "docs" / "style.css").read_text() == "body { color: black; }\n"
    runtime = ROOT / "generator" / "runtime"
    assert (out / "_index.py").read_bytes() == (runtime / "_index.py").read_bytes()


def test_a_template_that_renders_bad_python_is_one_line(spec_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "page.py.j2").write_text("def broken(:\n")
    result = servicegen(
        "generate",
        "--spec",
        str(spec_dir),
        "--out",
        str(tmp_path / "o"),
        "--templates",
        str(custom),
    )
    assert result.returncode == 2
    assert (
        result.stderr.count("\n") == 1
        and "page.py.j2 rendered Python black cannot parse" in result.stderr
    )
    assert not (tmp_path / "o").exists()


def mutate(old: str, new: str) -> str:
    """The seed with one cell text replaced by another of the same width, so tables stay valid."""
    text = SEED.read_text(encoding="utf-8")
    assert len(old) == len(new) and text.count(old) >= 1
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


BAD_PAGES = {
    "broken grid table": (
        "| 0xA700           | Failure  | Out of resources                             |",
        "| 0xA700           | Failure  | Out of resources                              ",
        "Malformed table",
    ),
    "bad hex code": (
        "| 0xA700           | Failure  |",
        "| 0xA7G0           | Failure  |",
        "bad status code '0xA7G0': expected 0xNNNN or 0xNNNN to 0xNNNN",
    ),
    "unknown category": (
        "| 0xA700           | Failure  |",
        "| 0xA700           | Failed   |",
        "unknown category 'Failed' (expected one of Success, Warning, Failure, Cancel, Pending)",
    ),
    "invalid UID": (
        "| 1.2.840.10008.5.1.4.39.2    |",
        "| 1.2.840.10008.5.1.4.39.02   |",
        "invalid UID '1.2.840.10008.5.1.4.39.02'",
    ),
    "keyword not an identifier": (
        "| ColorPaletteInformationModelFind |",
        "| Color Palette FIND               |",
        "SOP class keyword 'Color Palette FIND' is not a Python identifier (pynetdicom's keyword for its UID is ColorPaletteInformationModelFind)",
    ),
    "reserved keyword": (
        "| ColorPaletteInformationModelFind |",
        "| lambda                           |",
        "SOP class keyword 'lambda' is a reserved word (pynetdicom's keyword for its UID is ColorPaletteInformationModelFind)",
    ),
    "keyword not ASCII": (
        "| ColorPaletteInformationModelFind |",
        "| \ufb01le                              |",
        (
            "SOP class keyword '\ufb01le' is not ASCII, as every DICOM keyword is"
            " (pynetdicom's keyword for its UID is ColorPaletteInformationModelFind)"
        ),
    ),
    "keyword clashing with a generated name": (
        "| ColorPaletteInformationModelFind |",
        "| Backend                          |",
        "SOP class keyword 'Backend' clashes with a name the generated module defines",
    ),
    "duplicate code": (
        "| 0xA900           | Failure  | Dataset does not match SOP Class             |",
        "| 0xA700           | Failure  | Dataset does not match SOP Class             |",
        "0xA700 repeats 0xA700 (line 72)",
    ),
    "code inside a range": (
        "| 0xFF00           | Pending  | Matches are continuing                       |",
        "| 0xC123           | Pending  | Matches are continuing                       |",
        "0xC123 overlaps 0xC000 to 0xCFFF (line 76)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
def test_bad_input_is_one_line_and_writes_nothing(
    case: str, spec_dir: Path, tmp_path: Path
) -> None:
    old, new, message = BAD_PAGES[case]
    page = spec_dir / SEED.name
    text = mutate(old, new)
    page.write_text(text, encoding="utf-8")
    (spec_dir / "another_page.rst").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "out"
    shutil.copytree(ROOT / "generated", out, ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot(out)
    result = servicegen("generate", "--spec", str(spec_dir), "--out", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    expected_line = (
        line_of(text, new) if case != "broken grid table" else line_of(text, "+====") - 2
    )
    assert lines[0].startswith(f"servicegen: {page}:")
    if case != "broken grid table":
        assert lines[0] == f"servicegen: {page}:{expected_line}: {message}"
    else:
        assert message in lines[0]
    assert snapshot(out) == before


def test_bytes_that_are_not_utf8(spec_dir: Path, tmp_path: Path) -> None:
    page = spec_dir / SEED.name
    data = SEED.read_bytes().replace(b"Out of resources", b"Out of r\xe9sources", 1)
    page.write_bytes(data)
    result = servicegen("generate", "--spec", str(spec_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    line = data[: data.index(b"\xe9")].count(b"\n") + 1
    assert result.stderr == f"servicegen: {page}:{line}: byte 0xE9 is not UTF-8\n"
    assert not (tmp_path / "out").exists()


def test_model_of_a_bad_page_is_one_line(tmp_path: Path) -> None:
    page = tmp_path / "bad.rst"
    page.write_text(mutate("| 0xA700           | Failure  |", "| 0xA700           | Failed   |"))
    result = servicegen("model", str(page))
    assert result.returncode == 2 and result.stderr.startswith(f"servicegen: {page}:")


AWKWARD = (
    'Quote \' and " and """ and \\ back\\slash {{ jinja }} {% raw %} <b>&amp;</b> `tick` *star*'
)


def test_awkward_text_is_carried_exactly(tmp_path: Path) -> None:
    """Awkward description text reaches the module exactly, the HTML escaped, and the generated
    RST reads back to the same text."""
    spec = tmp_path / "spec"
    spec.mkdir()
    cell = AWKWARD.replace("\\", "\\\\").replace("`", "\\`").replace("*", "\\*")
    (spec / "awkward_page.rst").write_text(
        'Awkward "Page" \\\\ {{ x }}\n=========================\n\n'
        "+--------------------------+------------------------------+\n"
        "| UID                      | SOP Class                    |\n"
        "+==========================+==============================+\n"
        "| 1.2.3.4                  | Awkward                      |\n"
        "+--------------------------+------------------------------+\n\n"
        "C-ECHO Statuses\n~~~~~~~~~~~~~~~\n\n"
        f".. list-table::\n   :header-rows: 1\n\n   * - Code (hex)\n     - Category\n     - Description\n"
        f"   * - 0x0000\n     - Success\n     - {cell}\n"
        f"   * - 0x0110\n     - Failure\n     - Processing failure\n",
        encoding="utf-8",
    )
    model = read_page(spec / "awkward_page.rst")
    assert model.status_tables[0].statuses[0].description == AWKWARD
    out = tmp_path / "out"
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        module = importlib.import_module("out.awkward_page")
    finally:
        sys.path.remove(str(tmp_path))
    assert module.C_ECHO_STATUSES[0] == ("Success", AWKWARD)
    assert (module.__doc__ or "").startswith('Awkward "Page" \\ {{ x }}:')
    html = (out / "docs" / "awkward_page.html").read_text()
    assert "<b>&amp;</b>" not in html and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html
    back = read_page(out / "docs" / "awkward_page.rst")
    assert back.title == model.title
    assert back.status_tables[0].statuses[0].description == AWKWARD
    assert writer.compare(render.render([model]), out).stale == ()


def test_a_page_refused_while_rendering_and_a_later_bad_page_are_both_reported(
    spec_dir: Path, tmp_path: Path
) -> None:
    """Pages are rendered as they are read; a page the renderer refuses (a keyword clash) must
    not hide the problems of pages read after it."""
    (spec_dir / SEED.name).unlink()
    clash_old, clash_new, clash_message = BAD_PAGES["keyword clashing with a generated name"]
    code_old, code_new, code_message = BAD_PAGES["bad hex code"]
    clash, bad = spec_dir / "a_clash.rst", spec_dir / "z_bad.rst"
    clash.write_text(mutate(clash_old, clash_new), encoding="utf-8")
    bad.write_text(mutate(code_old, code_new), encoding="utf-8")
    result = servicegen("generate", "--spec", str(spec_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"servicegen: {clash}:{line_of(mutate(clash_old, clash_new), clash_new)}: {clash_message}",
        f"servicegen: {bad}:{line_of(mutate(code_old, code_new), code_new)}: {code_message}",
    ]
    assert not (tmp_path / "out").exists()


def test_pages_are_yielded_until_one_is_bad_and_every_bad_one_is_reported(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    old, new, message = BAD_PAGES["bad hex code"]
    for name, text in (("a", SEED.read_text(encoding="utf-8")), ("b", mutate(old, new))):
        (spec / f"{name}.rst").write_text(text, encoding="utf-8")
    (spec / "c.rst").write_bytes((spec / "b.rst").read_bytes())
    (spec / "d.rst").write_bytes(SEED.read_bytes())
    pages = iter_pages(spec)
    assert next(pages).source == str(spec / "a.rst")
    with pytest.raises(SpecError) as caught:
        next(pages)
    line = line_of(mutate(old, new), new)
    assert [str(p) for p in caught.value.problems] == [
        f"{spec / name}.rst:{line}: {message}" for name in "bc"
    ]


def test_check_of_an_up_to_date_tree_loads_no_rendering_library(
    spec_dir: Path, tmp_path: Path
) -> None:
    """README "Performance": the pre-commit case stops at the record, importing neither Jinja2,
    black, docutils nor pydicom; a hand-edited file still takes the full path and is named."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # with CI set, no records are read
    env[writer.CACHE_ENV] = str(tmp_path / "cache")
    probe = (
        "import sys\nfrom generator.cli import main\n"
        f"code = main(['check', '--spec', {str(spec_dir)!r}, '--out', {str(out)!r}])\n"
        "print(code, *sorted(m for m in ('black', 'docutils', 'jinja2', 'pydicom')"
        " if m in sys.modules))\n"
    )

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    generated = subprocess.run(
        [sys.executable, "-m", "generator", "generate", "--spec", str(spec_dir), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    assert check().stdout == "0\n"
    (out / "py.typed").write_text("edited")
    edited = check()
    assert edited.stdout == "1 black docutils jinja2 pydicom\n"
    assert edited.stderr == f"{out}: stale or hand-edited: py.typed\n"
