"""Faults while writing: runs at once on one output, and runs killed at any moment.

Two specs, A and B, render different trees: they share files whose contents differ, and each has
a page the other lacks. Whatever happens, every file must be its A or its B version (never torn),
the next complete run must leave exactly its own tree, and no temporary file may stay behind.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import BrokenExecutor, Future
from pathlib import Path

import pytest

from generator import finish, render, writer
from generator.parser import read_pages

from .conftest import ROOT, SEED

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock and /proc/locks: Linux")

KILL_BUDGET = 8.0
"""Seconds each kill test may spend killing runs; enough for dozens of kills mid-write."""


def make_spec(folder: Path, extra: str, mutate: bool) -> Path:
    """The seed, mutated or not (same cell width, so the table stays valid), plus a copy of it
    as ``extra``, so two specs differ both in shared files' contents and in their file sets."""
    folder.mkdir(parents=True)
    text = SEED.read_text(encoding="utf-8")
    if mutate:
        text = text.replace("Out of resources     ", "Out of memory (B)    ", 1)
        assert "Out of memory (B)" in text
    (folder / SEED.name).write_text(text, encoding="utf-8")
    (folder / f"{extra}.rst").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def specs(tmp_path: Path) -> tuple[Path, Path]:
    return (
        make_spec(tmp_path / "spec_a", "page_only_in_a", mutate=False),
        make_spec(tmp_path / "spec_b", "page_only_in_b", mutate=True),
    )


def rendered(spec: Path) -> dict[str, str]:
    return render.render(read_pages(spec))


def env() -> dict[str, str]:
    return {**os.environ, "SERVICEGEN_CACHE_DIR": "", "SERVICEGEN_JOBS": "1"}


def generate(spec: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "generator", "generate", "--spec", str(spec), "--out", str(out)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def temporaries(out: Path) -> list[Path]:
    return sorted(out.rglob(f"*{writer.TEMP_SUFFIX}"))


def versions(*trees: Mapping[str, str]) -> dict[str, set[bytes]]:
    """Every acceptable content of every path: each tree's file, and each manifest a run may
    leave (each tree's, and the one naming the files of all of them, written first)."""
    accepted: dict[str, set[bytes]] = {}
    for tree in trees:
        for path, text in writer.with_manifest(tree).items():
            accepted.setdefault(path, set()).add(text.encode("utf-8"))
    union = {path: "" for tree in trees for path in tree}
    accepted[writer.MANIFEST].add(writer.with_manifest(union)[writer.MANIFEST].encode("utf-8"))
    return accepted


def assert_each_file_whole(out: Path, accepted: Mapping[str, set[bytes]]) -> None:
    """Every file but a temporary one is one complete version of itself."""
    for path in out.rglob("*"):
        if path.is_file() and not path.name.endswith(writer.TEMP_SUFFIX):
            name = path.relative_to(out).as_posix()
            assert name in accepted, f"unexpected file {name}"
            assert path.read_bytes() in accepted[name], f"torn or foreign content in {name}"


def assert_exactly(tree: Mapping[str, str], out: Path) -> None:
    drift = writer.compare(tree, out)
    assert not drift, drift.lines()
    assert temporaries(out) == []


def test_concurrent_runs_end_in_one_runs_tree(specs: tuple[Path, Path], tmp_path: Path) -> None:
    spec_a, spec_b = specs
    tree_a, tree_b = rendered(spec_a), rendered(spec_b)
    out = tmp_path / "out"
    for _ in range(3):
        runs = [generate(spec_a if n % 2 else spec_b, out) for n in range(6)]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err.decode()
        assert_each_file_whole(out, versions(tree_a, tree_b))
        assert not writer.compare(tree_a, out) or not writer.compare(tree_b, out)
        assert temporaries(out) == []


def _waiting_on_a_lock(pid: int) -> bool:
    """Whether ``pid`` waits for a file lock (``/proc/locks`` lists waiters after ``->``)."""
    locks = Path("/proc/locks").read_text(encoding="ascii")
    return any(line.split()[5] == str(pid) for line in locks.splitlines() if "->" in line)


def test_a_run_waits_while_another_holds_the_output(
    specs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Holding the directory's lock (as a running generate does) keeps another run from
    writing anything until it is released; then that run writes its whole tree."""
    spec_a, _ = specs
    out = tmp_path / "out"
    out.mkdir()
    holder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        run = generate(spec_a, out)
        deadline = time.monotonic() + 120
        while not _waiting_on_a_lock(run.pid):
            assert run.poll() is None, "the run finished while the output was locked"
            assert time.monotonic() < deadline, "the run never waited for the lock"
            time.sleep(0.02)
        assert list(out.iterdir()) == []
    finally:
        os.close(holder)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err.decode()
    assert_exactly(rendered(spec_a), out)


WRITE_FOREVER = """
import pickle, sys
from pathlib import Path
from generator import writer
trees = pickle.loads(Path(sys.argv[1]).read_bytes())
out = Path(sys.argv[2])
print("ready", flush=True)
n = 0
while True:
    writer.write(trees[n % len(trees)], out)
    n += 1
"""


def test_a_writer_killed_at_any_moment_leaves_whole_files(
    specs: tuple[Path, Path], tmp_path: Path
) -> None:
    """A process writing A, B, A, ... is SIGKILLed at random moments, mostly mid-write: every
    file is then its A or B version, and the next complete run leaves its tree exactly."""
    spec_a, spec_b = specs
    tree_a, tree_b = rendered(spec_a), rendered(spec_b)
    accepted = versions(tree_a, tree_b)
    trees = tmp_path / "trees.pickle"
    trees.write_bytes(pickle.dumps([tree_a, tree_b]))
    out = tmp_path / "out"
    writer.write(tree_a, out)
    rng = random.Random(20260427)
    kills, leftovers = 0, 0
    stop = time.monotonic() + KILL_BUDGET
    while time.monotonic() < stop or kills < 10:
        run = subprocess.Popen(
            [sys.executable, "-c", WRITE_FOREVER, str(trees), str(out)],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
        )
        assert run.stdout is not None and run.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, 0.25))
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        run.stdout.close()
        kills += 1
        leftovers += len(temporaries(out))
        assert_each_file_whole(out, accepted)
        if kills % 5 == 0:
            tree = rng.choice([tree_a, tree_b])
            writer.write(tree, out)
            assert_exactly(tree, out)
    writer.write(tree_b, out)
    assert_exactly(tree_b, out)
    writer.write(tree_a, out)
    assert_exactly(tree_a, out)
    assert leftovers > 0, "no kill landed mid-write; the test proved nothing"


def test_generate_killed_at_any_moment_recovers(specs: tuple[Path, Path], tmp_path: Path) -> None:
    """The whole command SIGKILLed at random moments of its run; the next run recovers."""
    spec_a, spec_b = specs
    tree_a, tree_b = rendered(spec_a), rendered(spec_b)
    accepted = versions(tree_a, tree_b)
    out = tmp_path / "out"
    start = time.monotonic()
    first = generate(spec_a, out)
    assert first.wait(timeout=120) == 0
    duration = time.monotonic() - start
    rng = random.Random(20260428)
    stop = time.monotonic() + KILL_BUDGET
    n = 0
    while time.monotonic() < stop or n < 6:
        run = generate(spec_b if n % 2 == 0 else spec_a, out)
        time.sleep(rng.uniform(0.5, 1.05) * duration)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        assert_each_file_whole(out, accepted)
        n += 1
    for spec, tree in ((spec_b, tree_b), (spec_a, tree_a)):
        final = generate(spec, out)
        _, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
        assert_exactly(tree, out)


def test_only_leftovers_of_our_own_naming_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    tree = {"a.py": "x = 1\n", "docs/b.rst": "B\n"}
    writer.write(tree, out)
    stale = [
        out / f".a.py.k1l2m3n4{writer.TEMP_SUFFIX}",
        out / "docs" / f".b.rst.x{writer.TEMP_SUFFIX}",
    ]
    for path in stale:
        path.write_text("half a fi")
    foreign = [out / "notes.tmp", out / ".a.py.tmp"]
    for path in foreign:
        path.write_text("mine")
    assert writer.write(tree, out) == []
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "mine" for path in foreign)


def test_a_damaged_cache_entry_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """black's and docutils' cached results are checked before use: a damaged entry is redone."""
    monkeypatch.setenv(writer.CACHE_ENV, str(tmp_path / "cache"))
    pages = read_pages(SEED.parent)
    first = render.render(pages)
    entries = sorted((tmp_path / "cache" / writer.CACHE_NAME / "results").iterdir())
    assert 0 < len(entries) <= sum(p.endswith((".py", ".html")) for p in first)
    for entry in entries:
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2])
    assert render.render(pages) == first
    assert render.render(pages) == first


def test_work_shared_by_workers_and_parent_is_exact_and_cached_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, the parent takes the jobs none has started once it has rendered every page:
    whoever finished an output, it equals the in-process result and is cached."""
    spec = tmp_path / "spec"
    spec.mkdir()
    for n in range(12):
        (spec / f"page_{n:02}.rst").write_bytes(SEED.read_bytes())
    monkeypatch.setenv(finish.JOBS_ENV, "1")
    monkeypatch.setenv(writer.CACHE_ENV, "")
    alone = rendered(spec)
    monkeypatch.setenv(finish.JOBS_ENV, "2")
    monkeypatch.setenv(writer.CACHE_ENV, str(tmp_path / "cache"))
    assert finish._workers(12) == 2
    assert rendered(spec) == alone
    # black's, the cached ones: every module but the runtime's, which is copied as it is.
    formatted = [p for p in alone if p.endswith(".py") and p not in render.runtime_files()]
    results = tmp_path / "cache" / writer.CACHE_NAME / "results"
    assert len(list(results.iterdir())) == len(formatted) == 12 + 2  # __init__, docs/conf


def test_jobs_of_killed_workers_are_done_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed (by the OOM killer, say) costs time, never an output."""
    monkeypatch.setenv(finish.JOBS_ENV, "2")
    monkeypatch.setenv(writer.CACHE_ENV, "")
    items = "".join(f"    {n},\n" for n in range(3000))  # black-stable, and slow enough to kill
    sources = {f"m{n}.py": f"VALUE_{n} = [\n{items}]\n" for n in range(8)}
    assert len(sources) == finish.Finisher.START_WORKERS
    finisher = finish.Finisher(len(sources))
    try:
        for path, text in sources.items():
            finisher.submit(path, "python", text, "t.py.j2")
        pool = finisher._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            os.kill(process.pid, signal.SIGKILL)
        jobs = [job for job in finisher._done.values() if isinstance(job, Future)]
        assert any(isinstance(job.exception(timeout=60), BrokenExecutor) for job in jobs)
        assert finisher.results() == sources
    finally:
        finisher.close()
