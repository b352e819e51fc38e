"""``--select``, ``--ignore``, ``--fail-on`` and ``[tool.servicegen]`` of pyproject.toml: which
findings ``lint`` and ``audit`` show and fail on, exactly, on the faults pages; where the file is
found; and every mistake in it as one line at its line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from generator.cli import main

from .conftest import ROOT, SEED
from .test_lint import FAULTS, faults

AUDIT_FAULTS = ROOT / "tests" / "data" / "audit" / "faults.rst"
LINT = ("SG002", "SG101", "SG102", "SG201", "SG202", "SG203", "SG301", "SG302")
"""The codes of the findings on the lint faults page."""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.mark.parametrize(
    ("options", "codes", "status"),
    [
        ((), LINT, 1),
        (("--select", "SG2"), ("SG201", "SG202", "SG203"), 1),
        (("--select", "SG203"), ("SG203",), 0),
        (("--select", "SG203", "--fail-on", "info"), ("SG203",), 1),
        (("--select", "SG201", "--select", "SG203"), ("SG201", "SG203"), 1),
        (("--select", "SG102,SG2", "--fail-on", "error"), ("SG102", "SG201", "SG202", "SG203"), 0),
        (("--select", "SG1", "--fail-on", "error"), ("SG101", "SG102"), 1),
        (("--ignore", "SG0,SG1,SG3"), ("SG201", "SG202", "SG203"), 1),
        # The more specific selector wins, whatever the order; ignore wins at the same length.
        (("--ignore", "SG2", "--select", "SG201"), ("SG201",), 1),
        (("--select", "SG2", "--ignore", "SG203"), ("SG201", "SG202"), 1),
        (("--select", "SG2", "--ignore", "SG20"), (), 0),
        (("--select", "SG20", "--ignore", "SG2"), ("SG201", "SG202", "SG203"), 1),
        (("--select", "SG2", "--ignore", "SG2"), (), 0),
        (("--select", "SG", "--ignore", "SG0,SG2,SG3"), ("SG101", "SG102"), 1),
    ],
)
def test_command_line_selection(
    options: tuple[str, ...],
    codes: tuple[str, ...],
    status: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "lint", "--spec", str(FAULTS), *options) == (status, faults(*codes), "")


def project(root: Path, config: str, pages: tuple[str, ...] = ("spec/faults.rst",)) -> Path:
    """``root`` holding ``pyproject.toml`` with ``config`` and a copy of the faults page at each
    of ``pages``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(config, encoding="utf-8")
    for page in pages:
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FAULTS, root / page)
    return root


def lines_of(page: Path, *codes: str) -> list[str]:
    """What lint prints of the faults page's findings of ``codes`` for a copy at ``page``."""
    return relative(str(page), *codes)


def relative(page: str, *codes: str) -> list[str]:
    return [line.replace(str(FAULTS), page, 1) for line in faults(*codes)]


def test_the_file_configures_and_the_command_line_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(
        tmp_path / "repo",
        '[project]\nname = "x"\n\n[tool.servicegen.lint]\nignore = ["SG1", "SG2"]\n'
        'fail-on = "error"\n',
    )
    page = root / "spec" / "faults.rst"
    spec = str(root / "spec")
    rest = ("SG002", "SG301", "SG302")
    assert run(capsys, "lint", "--spec", spec) == (1, lines_of(page, *rest), "")
    assert run(capsys, "lint", "--spec", spec, "--select", "SG3") == (
        1,
        lines_of(page, "SG301", "SG302"),
        "",
    )
    # --select starts afresh: the file's ignore no longer applies, its fail-on still does.
    assert run(capsys, "lint", "--spec", spec, "--select", "SG201") == (
        0,
        lines_of(page, "SG201"),
        "",
    )
    assert run(capsys, "lint", "--spec", spec, "--select", "SG201", "--fail-on", "warning") == (
        1,
        lines_of(page, "SG201"),
        "",
    )
    # --ignore alone adds to the file's.
    assert run(capsys, "lint", "--spec", spec, "--ignore", "SG0,SG3") == (0, [], "")
    # A page given alone finds the file from its own folder, whatever the working directory.
    assert run(capsys, "lint", "--spec", str(page), "--select", "SG0") == (
        1,
        lines_of(page, "SG002"),
        "",
    )


def test_the_readmes_example_configures_as_it_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (example,) = re.findall(
        r"```toml\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.DOTALL
    )
    root = project(tmp_path, example)
    shutil.copy(SEED, root / "spec")  # its SG301 is the one per-page-ignores names
    assert run(capsys, "lint", "--spec", str(root / "spec")) == (
        1,
        lines_of(root / "spec/faults.rst", "SG101", "SG102", "SG301"),
        "",
    )
    # fail-on = "error": the warnings alone pass.
    assert run(capsys, "lint", "--spec", str(root / "spec"), "--ignore", "SG101,SG301") == (
        0,
        lines_of(root / "spec/faults.rst", "SG102"),
        "",
    )


def test_the_closest_pyproject_with_a_servicegen_table_is_the_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(tmp_path, '[tool.servicegen.lint]\nselect = ["SG301"]\n', pages=())
    inner = project(tmp_path / "inner", '[project]\nname = "inner"\n')
    page = inner / "spec" / "faults.rst"
    # inner/pyproject.toml has no [tool.servicegen]: the one above configures.
    assert run(capsys, "lint", "--spec", str(inner / "spec")) == (1, lines_of(page, "SG301"), "")
    # Now it has one, empty: the defaults, and the one above is not read at all.
    (inner / "pyproject.toml").write_text("[tool.servicegen]\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[tool.servicegen.lint]\nselect = [", "utf-8")
    assert run(capsys, "lint", "--spec", str(inner / "spec")) == (1, lines_of(page, *LINT), "")


def test_per_page_ignores_are_relative_to_the_pyprojects_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(
        tmp_path,
        "[tool.servicegen.lint]\n"
        'select = ["SG1", "SG3"]\n'
        'per-page-ignores = { "spec/a.rst" = ["SG3"], "spec/more" = ["SG10", "SG302"] }\n',
        pages=("spec/a.rst", "spec/b.rst", "spec/more/c.rst"),
    )
    expected = [
        *relative("a.rst", "SG101", "SG102"),
        *relative("b.rst", "SG101", "SG102", "SG301", "SG302"),
        *relative("more/c.rst", "SG301"),
    ]
    monkeypatch.chdir(root / "spec")
    assert run(capsys, "lint", "--spec", ".") == (1, expected, "")
    monkeypatch.chdir(ROOT)
    assert run(capsys, "lint", "--spec", str(root / "spec")) == (
        1,
        [f"{root}/spec/{line}" for line in expected],
        "",
    )
    # --select never brings back what a page ignores.
    assert run(capsys, "lint", "--spec", str(root / "spec/a.rst"), "--select", "SG301") == (
        0,
        [],
        "",
    )


def test_audit_takes_the_same_options_and_its_own_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    page = "spec/color_palette_service_class.rst"
    never_sent = [
        "SG413 documented but never sent: 2",
        (
            f"  {page}:170: warning: SG413 0xC410 (C-GET) appears nowhere in pynetdicom's source,"
            " so it is never sent"
        ),
        (
            f"  {page}:242: warning: SG413 0xC510 (C-MOVE) appears nowhere in pynetdicom's source,"
            " so it is never sent"
        ),
        "2 findings of 1 kind",
    ]
    assert run(capsys, "audit", "--fail-on", "error") == (0, never_sent, "")
    assert run(capsys, "audit", "--ignore", "SG413") == (0, [], "")
    status, lines, _ = run(capsys, "audit", "--spec", str(AUDIT_FAULTS), "--select", "SG40")
    assert (status, lines[0], lines[-1]) == (
        1,
        "SG401 UID differs from pynetdicom's: 1",
        "4 findings of 3 kinds",
    )
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(SEED, root / "seed.rst")
    (root / "pyproject.toml").write_text(
        '[tool.servicegen.audit]\nfail-on = "error"\n[tool.servicegen.lint]\nignore = ["SG3"]\n',
        encoding="utf-8",
    )
    assert run(capsys, "audit", "--spec", str(root))[0] == 0
    assert run(capsys, "lint", "--spec", str(root)) == (0, [], "")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--select", "SG999", '--select: "SG999" is not a code lint reports, nor the start of one'),
        ("--ignore", "SG4", '--ignore: "SG4" is not a code lint reports, nor the start of one'),
        ("--select", "SG2,", '--select: "" is not a code lint reports, nor the start of one'),
        ("--select", "sg2", '--select: "sg2" is not a code lint reports, nor the start of one'),
    ],
)
def test_an_unknown_code_on_the_command_line_is_one_line(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "lint", "--spec", str(FAULTS), option, value) == (
        2,
        [],
        f"servicegen: {message}\n",
    )


def test_audit_codes_are_audits(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "audit", "--spec", str(AUDIT_FAULTS), "--select", "SG3") == (
        2,
        [],
        'servicegen: --select: "SG3" is not a code audit reports, nor the start of one\n',
    )


MISTAKES: dict[str, tuple[str | bytes, str]] = {
    "bad TOML": (
        '[project]\nname = "x"\n\n[tool.servicegen.lint]\nfail-on = \n',
        "5: not valid TOML: invalid value at column 11",
    ),
    "TOML cut short": (
        '[tool.servicegen.lint]\nselect = ["SG2"\n',
        "2: not valid TOML: unclosed array at the end of the file",
    ),
    "not UTF-8": (
        b'[tool.servicegen.lint]\nselect = ["SG2"]\n# caf\xe9\n',
        "3: byte 0xE9 is not UTF-8",
    ),
    "unknown key": (
        '[project]\nname = "x"\n\n[tool.servicegen.lint]\nselect = ["SG2"]\nfial-on = "error"\n',
        (
            "6: unknown key tool.servicegen.lint.fial-on; expected one of select, ignore, fail-on,"
            " per-page-ignores"
        ),
    ),
    "unknown table": (
        '[tool.ruff.lint]\nselect = ["E"]\n\n[tool.servicegen.lnit]\nselect = ["SG2"]\n',
        "4: unknown key tool.servicegen.lnit; expected one of lint, audit",
    ),
    "unknown code": (
        '[tool.servicegen.lint]\nselect = [\n    "SG2",\n    "SG999",\n]\n',
        '4: tool.servicegen.lint.select: "SG999" is not a code lint reports, nor the start of one',
    ),
    "another command's code": (
        '[tool.servicegen.lint]\nselect = ["SG2"]\n[tool.servicegen.audit]\nignore = ["SG301"]\n',
        (
            '4: tool.servicegen.audit.ignore: "SG301" is not a code audit reports, nor the start of'
            " one"
        ),
    ),
    "a string for an array": (
        '[tool.servicegen.lint]\nignore = "SG2"\n',
        '2: tool.servicegen.lint.ignore must be an array of codes, not "SG2"',
    ),
    "a number in the array": (
        '[tool.servicegen.lint]\n\nselect = ["SG2", 301]\n',
        (
            "3: tool.servicegen.lint.select must be an array of codes, not an array holding an"
            " integer"
        ),
    ),
    "a bad severity": (
        '[tool.servicegen.lint]\nfail-on = "high"\n',
        '2: tool.servicegen.lint.fail-on must be "info", "warning" or "error", not "high"',
    ),
    "a severity that is no string": (
        "[tool.servicegen.audit]\nfail-on = 2\n",
        '2: tool.servicegen.audit.fail-on must be "info", "warning" or "error", not an integer',
    ),
    "per-page-ignores not a table": (
        '[tool.servicegen.lint]\nper-page-ignores = ["spec/a.rst"]\n',
        (
            "2: tool.servicegen.lint.per-page-ignores must be a table of page or folder paths to"
            " arrays of codes, not an array"
        ),
    ),
    "a per-page code": (
        (
            "[tool.servicegen.lint.per-page-ignores]\n"
            '"spec/a.rst" = ["SG3"]\n'
            '"spec/b.rst" = ["SG1", "SG9"]\n'
        ),
        (
            '3: tool.servicegen.lint.per-page-ignores."spec/b.rst": "SG9" is not a code lint'
            " reports, nor the start of one"
        ),
    ),
    "a command that is no table": (
        '[project]\nname = "x"\n[tool.servicegen]\nlint = "strict"\n',
        '4: tool.servicegen.lint must be a table, not "strict"',
    ),
    "servicegen that is no table": (
        "[tool]\nservicegen = true\n",
        "2: tool.servicegen must be a table, not a boolean",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_in_pyproject_is_one_line_at_its_line(
    mistake: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, message = MISTAKES[mistake]
    path = tmp_path / "pyproject.toml"
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(config, encoding="utf-8")
    shutil.copy(FAULTS, tmp_path / "faults.rst")
    monkeypatch.chdir(tmp_path)
    for command in ("lint", "audit"):
        assert run(capsys, command, "--spec", "faults.rst") == (
            2,
            [],
            f"servicegen: pyproject.toml:{message}\n",
        )
    # Shown as found when it is not below the working directory.
    monkeypatch.chdir(ROOT)
    assert run(capsys, "lint", "--spec", str(tmp_path)) == (
        2,
        [],
        f"servicegen: {path}:{message}\n",
    )


def test_a_pyproject_that_cannot_be_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    shutil.copy(FAULTS, tmp_path / "faults.rst")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "lint", "--spec", "faults.rst") == (
        2,
        [],
        "servicegen: pyproject.toml: cannot be read (Is a directory)\n",
    )
