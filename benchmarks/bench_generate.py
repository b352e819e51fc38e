"""How fast ``servicegen generate`` and ``check`` are on pynetdicom 3.0.4's 24 pages.

Every figure is a ratio of two timings taken side by side in this one run (repetitions
interleaved, fastest of each kept), so machine speed and load cancel out:

- full generation into an empty directory against the floor: a process that only parses the same
  pages with docutils and black-formats the same Python outputs (goal <= 1.2x);
- ``check`` of an up-to-date tree against a full generation (goal <= 0.25x), and a hand-edited
  file still reported;
- ten times the pages (copies under new names) against the 24 (goal <= 10x).

"Empty cache" runs start with an empty ``SERVICEGEN_CACHE_DIR``, so black and docutils redo
everything; "warm cache" runs reuse black's verified results from an earlier run (regenerating
into an empty directory, and after one page was edited; HTML is never cached, so docutils always
runs). The pages are downloaded at run time
(``tests/sdist.py``; set ``SERVICEGEN_SDIST_CACHE`` to keep the download), the inventory page's
three keyword cells mended. Run: ``python benchmarks/bench_generate.py``; ``BENCH_REPEAT`` sets
the repetitions (default 5).
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import sdist

FLOOR = """
import sys
from pathlib import Path

import black
import docutils.core

spec, out = Path(sys.argv[1]), Path(sys.argv[2])
mode = black.Mode(line_length=100, target_versions={black.TargetVersion.PY310})
settings = {"report_level": 5, "halt_level": 5, "_disable_config": True}
for page in sorted(spec.glob("*.rst")):
    text = page.read_text(encoding="utf-8")
    docutils.core.publish_doctree(text, source_path=str(page), settings_overrides=settings)
for module in sorted(out.rglob("*.py")):
    black.format_str(module.read_text(encoding="utf-8"), mode=mode)
"""
"""The floor: the work no generator of these outputs can skip, in the libraries that do it."""


class Timing:
    """Wall and CPU seconds (the process and every process it waited for) per repetition."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def best(self) -> tuple[float, float]:
        return min(self.wall), min(self.cpu)

    def __str__(self) -> str:
        wall, cpu = self.best()
        spread = statistics.median(self.wall)
        return f"{wall:6.2f} s wall (median {spread:.2f}), {cpu:6.2f} s CPU"


def run(
    args: Sequence[str], env: dict[str, str], timing: Timing | None = None
) -> subprocess.CompletedProcess[str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if timing is not None:
        timing.wall.append(wall)
        timing.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return result


def generate(spec: Path, out: Path, env: dict[str, str], timing: Timing | None = None) -> None:
    shutil.rmtree(out, ignore_errors=True)
    result = run(
        ["-m", "generator", "generate", "--spec", str(spec), "--out", str(out)], env, timing
    )
    assert result.returncode == 0, result.stderr


def check(
    spec: Path, out: Path, env: dict[str, str], timing: Timing
) -> subprocess.CompletedProcess[str]:
    return run(["-m", "generator", "check", "--spec", str(spec), "--out", str(out)], env, timing)


def verdict(ratio: float, goal: float) -> str:
    return f"{ratio:5.2f}x (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})"


def main() -> None:
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    pages = sdist.download_pages()
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        work = Path(tmp)
        spec = sdist.spec_copy(pages, work / "spec")
        spec10 = sdist.spec_copy(pages, work / "spec10", copies=10)
        out, out10, warm_out = work / "out", work / "out10", work / "warm"
        base = dict(os.environ)
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        # Bytecode compiled once, outside the repository, as an installed tool has it.
        base["PYTHONPYCACHEPREFIX"] = str(work / "pyc")
        caches = (work / f"cache{n}" for n in itertools.count())

        def cold() -> dict[str, str]:
            """A fresh, empty cache: nothing black or docutils did before is reused."""
            return {**base, "SERVICEGEN_CACHE_DIR": str(next(caches))}

        warm = {**base, "SERVICEGEN_CACHE_DIR": str(work / "warm-cache")}
        generate(spec, out, cold())  # bytecode, file cache
        generate(spec, warm_out, warm)  # fills the warm cache
        assert run(["-c", FLOOR, str(spec), str(out)], base).returncode == 0
        full, seq, floor, fresh, cached = Timing(), Timing(), Timing(), Timing(), Timing()
        for _ in range(repeat):
            run(["-c", FLOOR, str(spec), str(out)], base, floor)
            env = cold()
            generate(spec, out, env, full)
            result = check(spec, out, env, fresh)
            assert result.returncode == 0 and result.stderr == "", result.stderr
            generate(spec, warm_out, warm, cached)
            generate(spec, out, {**cold(), "SERVICEGEN_JOBS": "1"}, seq)

        one_page = Timing()
        page = spec / "ups.rst"
        text = page.read_text(encoding="utf-8")
        for n in range(repeat):
            # A description cell edited (same width), as a user changing one page would.
            edited_text = text.replace("| Success  | Success ", f"| Success  | Succe{n}s ", 1)
            assert edited_text != text
            page.write_text(edited_text, encoding="utf-8")
            result = run(
                ["-m", "generator", "generate", "--spec", str(spec), "--out", str(warm_out)],
                warm,
                one_page,
            )
            assert result.returncode == 0, result.stderr
        page.write_text(text, encoding="utf-8")

        env = cold()
        generate(spec, out, env)
        module = out / "query_retrieve_service_class.py"
        original = module.read_bytes()
        module.write_bytes(original.replace(b"0xC000", b"0xC001", 1))
        edited = Timing()
        caught = check(spec, out, env, edited)
        module.write_bytes(original)
        assert caught.returncode == 1, caught.stderr
        problems = [line for line in caught.stderr.splitlines() if "skipped" not in line]
        assert problems == [f"{out}: stale or hand-edited: {module.name}"], caught.stderr

        ten = Timing()
        for _ in range(max(2, repeat // 2)):
            generate(spec10, out10, cold(), ten)
            generate(spec, out, cold(), full)
        shutil.rmtree(out10, ignore_errors=True)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    (full_wall, full_cpu), (floor_wall, floor_cpu) = full.best(), floor.best()
    print(f"pynetdicom {sdist.PYNETDICOM_VERSION}'s 24 pages, {cpus} CPUs, best of {repeat}")
    print(f"  floor (docutils parse + black)    {floor}")
    print(f"  generate, empty cache             {full}")
    print(f"  generate, SERVICEGEN_JOBS=1       {seq}")
    print(f"  generate, warm cache, empty out   {cached}")
    print(f"  generate, warm, one page edited   {one_page}")
    print(f"  check, up to date                 {fresh}")
    print(f"  check, one hand-edited file       {edited}  (exit 1, file named)")
    print(f"  generate, 240 pages, empty cache  {ten}")
    print(f"generate / floor, wall              {verdict(full_wall / floor_wall, 1.2)}")
    print(f"generate / floor, CPU               {full_cpu / floor_cpu:5.2f}x")
    print(f"generate JOBS=1 / floor, wall       {seq.best()[0] / floor_wall:5.2f}x")
    print(f"generate warm cache / floor, wall   {cached.best()[0] / floor_wall:5.2f}x")
    print(f"one page edited, warm / floor, wall {one_page.best()[0] / floor_wall:5.2f}x")
    print(f"check up to date / generate         {verdict(fresh.best()[0] / full_wall, 0.25)}")
    print(f"240 pages / 24 pages                {verdict(ten.best()[0] / full_wall, 10)}")


if __name__ == "__main__":
    main()
