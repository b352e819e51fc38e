"""What the README shows, runs: every ```python block as printed, in a fresh interpreter outside
the repository, with each value it shows (``expression  # repr``) checked against what Python
prints; the complete application serving real peers and type-checking with ``mypy --strict``;
the Quick start's two commands; the ``serve`` command line.

A block may opt out only with a first-line comment containing ``not run``, for a fragment that
cannot run; :data:`NOT_RUN` lists the ones that do, so a new opt-out is a deliberate change.
"""

from __future__ import annotations

import ast
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tokenize
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import ColorPaletteStorage  # type: ignore[attr-defined]

from generated import color_palette_service_class as cp

from .conftest import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_RUN: list[int] = []
"""README line numbers of the ```python blocks that opt out (none today)."""


def blocks(language: str) -> list[tuple[int, str]]:
    """(line of the block's first code line, code) of every fenced block in ``language``."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


def opted_out(code: str) -> bool:
    first = code.split("\n", 1)[0].strip()
    return first.startswith("#") and "not run" in first


PYTHON = blocks("python")
APP = next((line, code) for line, code in PYTHON if 'ae.start_server(("127.0.0.1", 11112)' in code)
SHOWN = [(line, code) for line, code in PYTHON if (line, code) != APP and not opted_out(code)]


def with_checks(code: str, first_line: int) -> str:
    """``code`` with each top-level ``expression  # shown`` turned into a check that
    ``repr(expression) == shown``, failing with the README line; everything else as printed."""
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT
    }
    tree = ast.parse(code)
    for index, node in enumerate(tree.body):
        shown = comments.get(node.end_lineno or 0)
        if isinstance(node, ast.Expr) and shown is not None:
            line = first_line + node.lineno - 1
            check = ast.parse(f"__shows(None, {shown!r}, {line})", mode="eval").body
            assert isinstance(check, ast.Call)
            check.args[0] = node.value
            tree.body[index] = ast.copy_location(ast.Expr(check), node)
    prelude = (
        "def __shows(value, shown, line):\n"
        "    if repr(value) != shown:\n"
        "        raise SystemExit(f'README.md:{line}: shows {shown}, Python prints {value!r}')\n"
    )
    return prelude + ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in ``cwd``, away from the repository."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_has_python_blocks_and_every_opt_out_is_listed() -> None:
    assert len(PYTHON) >= 2
    assert [line for line, code in PYTHON if opted_out(code)] == NOT_RUN


@pytest.mark.parametrize(("line", "code"), SHOWN, ids=[f"README.md:{line}" for line, _ in SHOWN])
def test_python_block_runs_as_printed_and_shows_what_python_prints(
    line: int, code: str, tmp_path: Path
) -> None:
    shown = sum(1 for row in code.splitlines() if re.search(r"\S\s+# ", row))
    checked = with_checks(code, line)
    assert checked.count("__shows(") == shown + 1  # the definition, then one per shown value
    result = python(checked, tmp_path)
    assert result.returncode == 0, result.stderr or result.stdout


def test_a_wrong_shown_value_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a repr the README gets wrong is reported at its line."""
    result = python(with_checks("1 + 1  # 3\n", 7), tmp_path)
    assert (result.returncode, result.stderr) == (1, "README.md:7: shows 3, Python prints 2\n")


def _wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listened on port {port}")


def test_the_application_serves_find_get_and_move_then_stops_itself(tmp_path: Path) -> None:
    code = APP[1]
    assert len(code.splitlines()) < 40
    (tmp_path / "app.py").write_text(code)
    received: list[str] = []

    def on_store(event: Event) -> int:
        received.append(str(event.dataset.ContentLabel))
        return 0x0000

    handlers = [(evt.EVT_C_STORE, on_store)]
    viewer = AE(ae_title="VIEWER")
    viewer.add_supported_context(ColorPaletteStorage)
    for uid in [*cp.SOP_CLASSES.values(), ColorPaletteStorage]:
        viewer.add_requested_context(uid)
    app = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        viewer.start_server(("127.0.0.1", 11113), block=False, evt_handlers=list(handlers))
        _wait_for_port(11112, app)
        role = build_role(ColorPaletteStorage, scp_role=True)
        assoc = viewer.associate(
            "127.0.0.1", 11112, ae_title="PALETTES", ext_neg=[role], evt_handlers=list(handlers)
        )
        assert assoc.is_established
        query = Dataset()
        query.QueryRetrieveLevel, query.ContentLabel, query.SOPInstanceUID = "IMAGE", "HOT", ""
        found = assoc.send_c_find(query, cp.ColorPaletteInformationModelFind)
        matches = [match for _, match in found if match is not None]
        assert [str(match.ContentLabel) for match in matches] == ["HOT"]
        one = Dataset()  # a single UID, not a list of them
        one.QueryRetrieveLevel, one.SOPInstanceUID = "IMAGE", matches[0].SOPInstanceUID
        got = list(assoc.send_c_get(one, cp.ColorPaletteInformationModelGet))
        moved = list(assoc.send_c_move(one, "VIEWER", cp.ColorPaletteInformationModelMove))
        assoc.release()
        finals = [int(responses[-1][0].Status) for responses in (got, moved)]
        assert (finals, received) == ([0x0000, 0x0000], ["HOT", "HOT"])
        stdout, _ = app.communicate(timeout=30)
    finally:
        viewer.shutdown()
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert (app.returncode, stdout) == (0, "Serving palettes on 127.0.0.1:11112 for ten seconds\n")


def test_the_application_type_checks_outside_the_repository(tmp_path: Path) -> None:
    """``mypy --strict app.py`` in a folder of its own, no MYPYPATH: mypy must find the
    installed ``generated`` package (the Quick start's editable install) and its types."""
    (tmp_path / "app.py").write_text(APP[1])
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "app.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "Success: no issues found in 1 source file\n"


def test_the_quick_start_is_two_commands_and_ci_runs_the_second_verbatim() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text[text.index("## Quick start") :].split("\n## ", 1)[0]
    (commands,) = [code for _, code in blocks("sh") if code in quick]
    install, test = commands.strip().splitlines()
    assert install == "pip install -e . && servicegen generate"
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_serve_command_line_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    (_, code), *_ = [(line, code) for line, code in blocks("sh") if "generated serve" in code]
    command = shlex.split(code.replace("\\\n", " "))
    assert command[:3] == ["python", "-m", "generated"]
    folder = tmp_path / command[5]
    folder.mkdir()
    process = subprocess.Popen(
        [sys.executable, *command[1:]],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(int(command[command.index("--port") + 1]), process)
        process.send_signal(signal.SIGTERM)
        log, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Serving generated.color_palette_service_class (C-FIND, C-GET, C-MOVE)" in log
    assert log.rstrip().endswith("Stopped")


def test_the_archive_command_lines_generate_serve_and_answer_dcmtk(
    tmp_path: Path, pynetdicom_pages: Path
) -> None:
    """The README's archive: generated from pynetdicom's three pages, served over a folder of
    two images of one study, asked by DCMTK's findscu at STUDY level (one answer, with the
    computed count), stopped by SIGTERM."""
    from .peers import require_dcmtk

    findscu = require_dcmtk("findscu")
    (_, code), *_ = [(line, code) for line, code in blocks("sh") if "archive serve" in code]
    generate, serve = (shlex.split(line) for line in code.replace("\\\n", " ").splitlines())
    assert generate[:2] == ["servicegen", "generate"] and serve[:3] == ["python", "-m", "archive"]
    spec = tmp_path / generate[generate.index("--spec") + 1]
    spec.mkdir()
    for name in serve[4:7]:
        (spec / f"{name}.rst").write_bytes((pynetdicom_pages / f"{name}.rst").read_bytes())
    made = subprocess.run(
        [sys.executable, "-m", "generator", *generate[1:]],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    folder = tmp_path / serve[7]
    folder.mkdir()
    for number in range(2):
        image = Dataset()
        image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        image.SOPInstanceUID = f"1.2.826.0.1.3680043.10.99.{number}"
        image.StudyInstanceUID, image.SeriesInstanceUID = "1.2.826.0.1.3680043.10.99", "1.2.9"
        image.PatientName, image.PatientID, image.Modality = "Doe^Jane", "P1", "CT"
        image.save_as(folder / f"{number}.dcm", implicit_vr=True, little_endian=True)
    (tmp_path / serve[serve.index("--destinations") + 1]).write_text("# none yet\n")
    process = subprocess.Popen(
        [sys.executable, *serve[1:]],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = serve[serve.index("--port") + 1]
        _wait_for_port(int(port), process)
        found = subprocess.run(
            [findscu, "-S", "-aec", "SERVICEGEN", "-k", "QueryRetrieveLevel=STUDY",
             "-k", "StudyInstanceUID", "-k", "NumberOfStudyRelatedInstances",
             "127.0.0.1", port],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        process.send_signal(signal.SIGTERM)
        log, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    answers = found.stdout + found.stderr
    assert found.returncode == 0 and answers.count("Find Response:") == 1, answers
    assert "NumberOfStudyRelatedInstances" in answers and "[2 ]" in answers, answers
    assert process.returncode == 0 and "Serving archive.query_retrieve_service_class" in log
    # one line per request: the association's extended negotiation is none
    requests = [line.split(" INFO ")[-1].split(" from ")[0] for line in log.splitlines()[1:-2]]
    assert requests == ["C-FIND"], log


def test_the_publishing_command_lines_build_the_docs(tmp_path: Path) -> None:
    """The README's Sphinx build, run as shown (Sphinx is a test dependency, so its
    ``pip install`` line is only checked), into a folder of its own."""
    (_, code), *_ = [(line, code) for line, code in blocks("sh") if "python -m sphinx" in code]
    install, build = code.strip().splitlines()
    assert install == "pip install sphinx"
    command = shlex.split(build)
    assert command[:3] == ["python", "-m", "sphinx"]
    built = subprocess.run(
        [sys.executable, *command[1:-1], str(tmp_path / command[-1])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / command[-1] / "color_palette_service_class.html").is_file()
