"""Hostile input at the command line (issue 10): what reaches a terminal, templates that fail in
every way, a reader that goes away, and revisions that git would read as options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SEED, checkout, servicegen

ESCAPES = ("\x1b]2;pwned\x07", "\x1b[31m", "\x9b31m", "\u202e", "\n")
"""A window-title sequence, a colour, the one-byte CSI, a bidirectional override, a line break."""


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on, other than the line breaks between
    lines."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_shown_escapes_every_control_and_keeps_one_line() -> None:
    from generator.console import shown

    for escape in ESCAPES:
        assert raw_controls(shown(f"a{escape}b")) == [] and "\n" not in shown(f"a{escape}b")
    assert shown("naïve ✓ 漢字") == "naïve ✓ 漢字"
    assert shown('{\n  "a": "\x9b"\n}', in_json=True) == '{\n  "a": "\\u009b"\n}'


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_file_name_with_an_escape_sequence_reaches_no_terminal_raw(
    escape: str, tmp_path: Path
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    shutil.copy(SEED, spec / f"evil{escape}page.rst")
    for command in (
        ("generate", "--spec", "spec", "--out", "out"),
        ("lint", "--spec", "spec"),
        ("lint", "--spec", "spec", "--format", "json"),
        ("model", f"spec/evil{escape}page.rst"),
        ("diff", "spec", str(ROOT / "spec"), "--format", "json"),
        ("diff", "spec", str(ROOT / "spec")),
    ):
        result = servicegen(*command, cwd=tmp_path)
        assert "Traceback" not in result.stderr, result.stderr
        assert raw_controls(result.stdout + result.stderr) == [], (command, result)
    result = servicegen("generate", "--spec", "spec", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr


def test_page_text_with_bidirectional_controls_is_shown_escaped_by_diff(tmp_path: Path) -> None:
    old, new = tmp_path / "old.rst", tmp_path / "new.rst"
    text = SEED.read_text(encoding="utf-8")
    old.write_text(text, encoding="utf-8")
    new.write_text(text.replace("Unable to process", "Unable \u202eto proces"), encoding="utf-8")
    for output in ("text", "markdown", "json"):
        result = servicegen("diff", str(old), str(new), "--format", output, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "\u202e" not in result.stdout and "u202e" in result.stdout, result.stdout


# Template failures of every kind: one line, exit 2 ----------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 1 / 0 }}", "index.html.j2:1: ZeroDivisionError"),
        ("{{ 'a' + 1 }}", "index.html.j2:1: TypeError"),
        ('{% include "index.html.j2" %}', "index.html.j2:1: RecursionError"),
        ("{{ x.y( }}", "index.html.j2:1: TemplateSyntaxError"),
        (b"\xff\xfe not UTF-8", "UnicodeDecodeError"),
        (None, "index.html.j2: not a readable file"),
    ],
)
def test_a_failing_template_is_one_line_and_writes_nothing(
    template: str | bytes | None, expected: str, tmp_path: Path
) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    target = custom / "index.html.j2"
    if template is None:
        target.symlink_to(tmp_path / "nowhere.j2")
    elif isinstance(template, bytes):
        target.write_bytes(template)
    else:
        target.write_text(template, encoding="utf-8")
    result = servicegen(
        "generate",
        "--spec",
        str(ROOT / "spec"),
        "--out",
        "out",
        "--templates",
        "custom",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


# A reader that goes away ---------------------------------------------------------------------


def test_a_closed_pipe_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    rows = "".join(
        f"| 0x{n:04X}     | Failure  | Row {n:<17} |\n+------------+----------+-----------------------+\n"
        for n in range(1, 3000)
    )
    text = SEED.read_text(encoding="utf-8").split("Statuses\n--------")[0] + (
        "C-FIND Statuses\n---------------\n\n"
        "+------------+----------+-----------------------+\n"
        "| Code (hex) | Category | Description           |\n"
        "+============+==========+=======================+\n" + rows
    )
    (tmp_path / "big.rst").write_text(text, encoding="utf-8")
    for unbuffered in ("", "1"):
        # Unbuffered, Python drops what a closed pipe did not take without an error (its text
        # layer ignores a short write): then there is nothing to report, and no traceback.
        environ = {k: v for k, v in checkout().items() if k != "PYTHONUNBUFFERED"}
        process = subprocess.Popen(
            [sys.executable, "-m", "generator", "model", "big.rst"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**environ, "PYTHONUNBUFFERED": unbuffered} if unbuffered else environ,
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().strip() == b"{"
        process.stdout.close()  # as `| head -1` does
        stderr = process.stderr.read().decode()
        status = process.wait(timeout=120)
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
        if not unbuffered:
            assert status == 2, stderr
            assert stderr.splitlines() == [
                "servicegen: output closed before it was all written (broken pipe)"
            ]


# diff: a revision is never an option to git ----------------------------------------------------


@pytest.mark.parametrize(
    "revision",
    ["--output=OUT:spec", "-p:spec", "--exec=touch OUT:spec", "--end-of-options:spec"],
)
def test_a_revision_starting_with_a_dash_is_refused(revision: str, tmp_path: Path) -> None:
    out = tmp_path / "written-by-git"
    spec = revision.replace("OUT", str(out))
    result = servicegen("diff", "--", spec, "HEAD:spec", cwd=ROOT)
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [f"servicegen: {spec}: a revision cannot start with '-'"]
    assert not out.exists()


# An empty path is no folder -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("generate", "--out", ""),
        ("generate", "--spec", ""),
        ("check", "--templates", ""),
        ("model", ""),
        ("lint", "--spec", ""),
    ],
)
def test_an_empty_path_is_refused_not_read_as_this_folder(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    """``--out ""`` wrote the package into the current folder, exit 0."""
    result = servicegen(*argv, cwd=tmp_path)
    assert result.returncode == 2, result
    (error,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert error.endswith("an empty path names no file; write '.' for this folder"), error
    assert list(tmp_path.iterdir()) == []
