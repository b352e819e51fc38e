"""The README's pre-commit configuration, as printed, run by real pre-commit on real commits in a
throwaway git repository that holds this repository's pages, output and pyproject.toml: it
passes as committed, fails (exit 1, with the finding) when generated/ is stale or a page has a
warning, and passes again once pyproject.toml acknowledges the warning. ``servicegen`` on the
hooks' PATH runs this checkout's generator, as ``pip install -e .`` would make it; nothing
else sees this checkout (no ``PYTHONPATH``), so the pinned-commit hooks run what pre-commit
installed."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

README_BLOCK = re.compile(r"```yaml\n(# \.pre-commit-config\.yaml\n.*?)```", re.DOTALL)
SEED = "spec/color_palette_service_class.rst"
WARNING = f"{SEED}:72: warning: SG102 0x0300 is a code of no class in PS3.7 Annex C"


def readme_config() -> str:
    """The one ``.pre-commit-config.yaml`` block of the README, verbatim."""
    blocks = [m[1] for m in README_BLOCK.finditer((ROOT / "README.md").read_text("utf-8"))]
    assert len(blocks) == 1, blocks
    return blocks[0]


def environment(tmp_path: Path) -> dict[str, str]:
    """This environment with ``tmp_path/bin`` first on PATH, pre-commit's cache in ``tmp_path``,
    a git identity, no git configuration of the machine's and no ``PYTHONPATH``."""
    return {
        **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }


class Repository:
    """A new git repository at ``path``."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.mkdir(exist_ok=True)
        assert self.run("git", "init", "-q").returncode == 0

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def commit(self, message: str) -> tuple[int, list[str]]:
        """Stage everything and commit: the exit status and pre-commit's lines."""
        assert self.run("git", "add", "-A").returncode == 0
        result = self.run("git", "commit", "-q", "-m", message)
        return result.returncode, (result.stdout + result.stderr).splitlines()

    def head(self) -> str:
        return self.run("git", "rev-parse", "HEAD").stdout.strip()

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.path / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    """A repository holding this one's pages, output and pyproject.toml, the README's
    ``.pre-commit-config.yaml`` and pre-commit's hook, not yet committed."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[test]')")
    repository = Repository(tmp_path / "repo", environment(tmp_path))
    for folder in ("spec", "generated"):
        shutil.copytree(
            ROOT / folder, repository.path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", repository.path)
    (repository.path / ".pre-commit-config.yaml").write_text(readme_config(), encoding="utf-8")
    (tmp_path / "bin").mkdir()
    command = tmp_path / "bin" / "servicegen"
    command.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m generator "$@"\n', "utf-8"
    )
    command.chmod(0o755)
    install = repository.run(sys.executable, "-m", "pre_commit", "install")
    assert install.returncode == 0, install.stdout + install.stderr
    return repository


def hook_lines(lines: list[str]) -> list[str]:
    """pre-commit's verdict lines, the dots between name and verdict dropped."""
    return [re.sub(r"\.{3,}", " ", line) for line in lines if line.startswith("servicegen ")]


def test_the_readmes_hooks_pass_fail_and_pass_again(repository: Repository) -> None:
    status, lines = repository.commit("the pages and the code generated from them")
    assert (status, hook_lines(lines)) == (0, ["servicegen check Passed", "servicegen lint Passed"])

    # A hand edit makes generated/ stale; no page is staged, so lint is not run.
    repository.edit("generated/color_palette_service_class.py", "\n", "\n# hand edit\n")
    status, lines = repository.commit("hand edit")
    assert (status, hook_lines(lines)) == (
        1,
        ["servicegen check Failed", "servicegen lint (no files to check)Skipped"],
    )
    assert "- exit code: 1" in lines
    assert "generated: stale or hand-edited: color_palette_service_class.py" in lines
    assert repository.run("git", "checkout", "--", "generated").returncode == 0

    # A code of no class in PS3.7 Annex C: generated/ is stale and the page has a warning.
    repository.edit(SEED, "| 0xA700           | Failure  |", "| 0x0300           | Failure  |")
    status, lines = repository.commit("a new row")
    assert (status, hook_lines(lines)) == (1, ["servicegen check Failed", "servicegen lint Failed"])
    assert "generated: stale or hand-edited: color_palette_service_class.py" in lines
    assert WARNING in lines

    # Regenerated, only the warning fails the commit.
    assert repository.run("servicegen", "generate", "-q").returncode == 0
    status, lines = repository.commit("a new row")
    assert (status, hook_lines(lines)) == (1, ["servicegen check Passed", "servicegen lint Failed"])
    assert WARNING in lines

    # Acknowledged in pyproject.toml, whose change alone runs lint again.
    repository.edit("pyproject.toml", '= ["SG301"]', '= ["SG301", "SG102"]')
    status, lines = repository.commit("a new row, acknowledged")
    assert (status, hook_lines(lines)) == (0, ["servicegen check Passed", "servicegen lint Passed"])
    assert repository.run("git", "status", "--porcelain").stdout == ""


def test_the_published_hooks_are_the_readmes_with_their_own_language() -> None:
    """``.pre-commit-hooks.yaml`` (for a pinned servicegen commit) runs what the README's local
    hooks run, on the same files: the README block, each hook's ``language: system`` made
    ``python`` and its comments dropped, holds the same lines."""
    published = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8").splitlines()
    readme = [line.split("#")[0] for line in readme_config().splitlines()[4:]]
    assert [
        line.strip().removeprefix("- ").replace("language: system", "language: python")
        for line in readme
    ] == [
        line.strip().removeprefix("- ")
        for line in published
        if line.strip() and not line.startswith("#") and "description:" not in line
    ]


def test_the_published_hooks_run_from_a_pinned_commit(
    repository: Repository, tmp_path: Path
) -> None:
    """A configuration whose ``rev:`` is a real commit of servicegen: here a commit of this
    checkout's files (uncommitted changes included), which pre-commit installs from, as it
    would from servicegen's git URL."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no commit of servicegen to pin")
    servicegen = Repository(tmp_path / "servicegen", repository.env)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, target = ROOT / name, servicegen.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # generator/templates, a link to templates/
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    assert servicegen.commit("servicegen")[0] == 0
    (repository.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {servicegen.path}\n    rev: {servicegen.head()}\n    hooks:\n"
        "      - id: servicegen-check\n      - id: servicegen-lint\n",
        encoding="utf-8",
    )
    status, lines = repository.commit("pinned")
    assert (status, hook_lines(lines)) == (
        0,
        ["servicegen check Passed", "servicegen lint Passed"],
    ), lines
    repository.edit(SEED, "| 0xA700           | Failure  |", "| 0x0300           | Failure  |")
    assert repository.run("servicegen", "generate", "-q").returncode == 0
    status, lines = repository.commit("a new row")
    assert (status, hook_lines(lines)) == (1, ["servicegen check Passed", "servicegen lint Failed"])
    assert WARNING in lines
