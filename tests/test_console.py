"""The CLI's global options and terminal manners: --quiet, --verbose, colour only on a terminal
(and never with NO_COLOR), a status line only on a terminal for runs over ten pages."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SEED

STALE = "\033[33m"
"""How a stale-file line starts on a terminal: in yellow."""


def servicegen(
    *args: str, terminal: bool = False, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the real command; with ``terminal``, its stderr is a pseudo-terminal, as in a shell."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environ.update(env or {})
    command = [sys.executable, "-m", "generator", *args]
    if not terminal:
        done = subprocess.run(
            command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=follower, text=True
    ) as proc:
        os.close(follower)
        stdout, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the command has exited and everything it wrote is read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.returncode, stdout, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def stale_out(tmp_path: Path) -> tuple[Path, Path]:
    """A spec folder of one page and an output folder with one hand-edited file."""
    spec, out = tmp_path / "spec", tmp_path / "out"
    spec.mkdir()
    shutil.copy(SEED, spec / SEED.name)
    assert servicegen("generate", "--spec", str(spec), "--out", str(out))[0] == 0
    (out / "docs" / "index.html").write_text("edited\n")
    return spec, out


def test_quiet_drops_the_summary_and_verbose_names_pages_and_files(tmp_path: Path) -> None:
    spec, out = tmp_path / "spec", tmp_path / "out"
    spec.mkdir()
    shutil.copy(SEED, spec / SEED.name)
    (spec / "index.rst").write_text("Index\n=====\n\nNo tables here.\n")
    code, stdout, stderr = servicegen("-q", "generate", "--spec", str(spec), "--out", str(out))
    assert (code, stdout, stderr) == (0, "", "")
    (out / "docs" / "style.css").unlink()
    code, stdout, stderr = servicegen(
        "generate", "--verbose", "--spec", str(spec), "--out", str(out)
    )
    assert code == 0 and stdout == f"{out}: 1 of 20 files changed\n"
    assert stderr.splitlines() == [
        f"{spec / 'color_palette_service_class.rst'}: 3 SOP classes, 9 status tables",
        f"{spec / 'index.rst'}: no SOP class or status table; skipped",
        f"{out}: changed docs/style.css",
    ]


def test_generate_counts_the_files_it_writes_not_its_manifest(tmp_path: Path) -> None:
    spec, out = tmp_path / "spec", tmp_path / "out"
    spec.mkdir()
    shutil.copy(SEED, spec / "a.rst")
    shutil.copy(SEED, spec / "b.rst")
    generate = ("generate", "-v", "--spec", str(spec), "--out", str(out))
    code, stdout, _ = servicegen(*generate)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != ".servicegen-manifest"]
    assert (code, stdout, len(files)) == (0, f"{out}: 23 of 23 files changed\n", 23)
    (spec / "b.rst").unlink()
    code, stdout, stderr = servicegen(*generate)
    assert (code, stdout) == (0, f"{out}: 5 of 20 files changed, 3 removed\n")
    assert sorted(line for line in stderr.splitlines() if "changed" in line) == [
        f"{out}: changed __init__.py",
        f"{out}: changed docs/conformance.html",
        f"{out}: changed docs/conformance.rst",
        f"{out}: changed docs/index.html",
        f"{out}: changed docs/index.rst",
    ]
    assert sorted(line for line in stderr.splitlines() if "removed" in line) == [
        f"{out}: removed b.py",
        f"{out}: removed docs/b.html",
        f"{out}: removed docs/b.rst",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "-q", "-v"),
        ("generate", "-v", "-q"),
        ("-q", "generate", "-v"),
        ("-v", "generate", "--quiet"),
        ("-q", "-v", "generate"),
    ],
)
def test_quiet_and_verbose_together_are_refused_in_any_order(args: tuple[str, ...]) -> None:
    code, stdout, stderr = servicegen(*args)
    assert (code, stdout) == (2, "")
    assert stderr.endswith(
        "servicegen: error: -q/--quiet and -v/--verbose cannot be used together\n"
    )


def test_check_says_up_to_date_only_when_asked(stale_out: tuple[Path, Path]) -> None:
    spec, out = stale_out
    check = ("check", "--spec", str(spec), "--out", str(out))
    assert servicegen("generate", "-q", "--spec", str(spec), "--out", str(out))[0] == 0
    assert servicegen(*check) == (0, "", "")
    for _ in range(2):  # rendered and compared; then (outside CI) from the record of that run
        code, stdout, stderr = servicegen(*check, "-v")
        assert (code, stdout) == (0, "")
        assert stderr.splitlines()[-1] == f"{out}: up to date with {spec}"


def test_quiet_keeps_findings_and_errors(stale_out: tuple[Path, Path]) -> None:
    spec, out = stale_out
    code, stdout, stderr = servicegen("check", "-q", "--spec", str(spec), "--out", str(out))
    assert (code, stdout, stderr) == (1, "", f"{out}: stale or hand-edited: docs/index.html\n")
    code, _, stderr = servicegen("-q", "check", "--spec", str(spec / "missing"))
    assert code == 2 and stderr == f"servicegen: {spec / 'missing'}: no such spec directory\n"


def test_colour_only_on_a_terminal_and_never_with_no_color(stale_out: tuple[Path, Path]) -> None:
    spec, out = stale_out
    check = ("check", "--spec", str(spec), "--out", str(out))
    line = f"{out}: stale or hand-edited: docs/index.html"
    assert servicegen(*check, terminal=True)[2] == f"{STALE}{line}\033[0m\n"
    assert servicegen(*check, terminal=True, env={"NO_COLOR": "1"})[2] == f"{line}\n"
    assert servicegen(*check, terminal=True, env={"TERM": "dumb"})[2] == f"{line}\n"
    assert servicegen(*check, terminal=True, env={"NO_COLOR": ""})[2].startswith(STALE)
    assert servicegen(*check)[2] == f"{line}\n"
    error = servicegen("check", "--spec", str(spec / "missing"), terminal=True)[2]
    assert error.startswith("\033[1;31mservicegen:\033[0m ")


def test_status_line_only_on_a_terminal_for_more_than_ten_pages(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    for n in range(11):
        shutil.copy(SEED, spec / f"page_{n:02}.rst")
    generate = ("generate", "--spec", str(spec), "--out", str(tmp_path / "out"))
    code, stdout, stderr = servicegen(*generate, terminal=True)
    assert code == 0 and stdout.endswith("files changed\n")
    line = "servicegen: reading and rendering 11 pages"
    assert stderr == f"{line}\r{' ' * len(line)}\r"
    assert servicegen(*generate)[2] == ""
    assert servicegen(*generate, "-q", terminal=True)[2] == ""
    (spec / "page_10.rst").unlink()
    assert servicegen(*generate, terminal=True)[2] == ""


def test_version_names_the_installed_release() -> None:
    code, stdout, _ = servicegen("--version")
    assert code == 0 and stdout.startswith("servicegen ") and stdout.strip() != "servicegen"
