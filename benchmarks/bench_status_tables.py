"""The seed's generated status tables against pynetdicom's own ``QR_*_SERVICE_CLASS_STATUS``.

Every figure comes from this one run, ours and theirs measured side by side:

- memory: deep size (``sys.getsizeof`` over the dict, its keys and values, and the table's
  slots; each object once) of each table against pynetdicom's dict (goal <= 5%);
- exact-code lookup ``table[code]`` against the same lookup in a plain dict (goal <= 3x), net of
  ``timeit``'s loop (the cost of ``pass`` in the same loop);
- range-code lookup ``table[0xC123]``, in ns (goal <= 500 ns);
- importing the generated module, in fresh interpreters that first import everything the module
  imports from outside ``generated`` (pydicom, pynetdicom, the standard library) and settle the
  garbage collector, so the time is the module's own (goal <= 2 ms). Bytecode is compiled once,
  outside the repository, as an installed package has it.

Run: ``python benchmarks/bench_status_tables.py``.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODULE = "generated.color_palette_service_class"
IMPORTS = 25
"""Fresh interpreters per import measurement; the median is reported."""

DEPENDENCIES = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(n for n in set(sys.modules) - before if not n.startswith("generated"))))
"""
TIMED_IMPORT = """
import gc, importlib, json, sys, time
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
gc.collect()
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and of every object it holds (dict keys and values, tuple items, slots),
    each counted once. A dict subclass is read as a dict, so ranges are not expanded."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in dict.items(obj))
    elif isinstance(obj, (tuple, list, set, frozenset)):
        size += sum(deep_size(item, seen) for item in obj)
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                size += deep_size(getattr(obj, slot), seen)
    return size


def per_lookup(stmt: str, table: Mapping[int, Any], code: int) -> float:
    """Seconds per execution of ``stmt``, fastest of several repeats."""
    number = 1_000_000
    scope = {"table": table, "code": code}
    return min(timeit.repeat(stmt, globals=scope, number=number, repeat=7)) / number


def import_times(env: dict[str, str]) -> list[float]:
    python = [sys.executable, "-c"]
    found = subprocess.run(
        [*python, DEPENDENCIES.format(module=MODULE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    deps = found.stdout.strip()
    times = []
    for _ in range(IMPORTS + 1):
        result = subprocess.run(
            [*python, TIMED_IMPORT.format(module=MODULE), deps],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(result.stdout))
    return times[1:]  # the first compiled the bytecode


def verdict(value: float, goal: float, unit: str) -> str:
    return f"{value:7.2f}{unit} (goal <= {goal}{unit}: {'met' if value <= goal else 'NOT met'})"


def main() -> None:
    import importlib

    from pynetdicom import status

    module = importlib.import_module(MODULE)
    theirs = {
        "C-FIND": status.QR_FIND_SERVICE_CLASS_STATUS,
        "C-GET": status.QR_GET_SERVICE_CLASS_STATUS,
        "C-MOVE": status.QR_MOVE_SERVICE_CLASS_STATUS,
    }
    gc.collect()
    print(f"{MODULE} against pynetdicom.status")
    worst_memory = worst_exact = worst_range = 0.0
    for dimse, their_table in theirs.items():
        ours = module.STATUS_TABLES[dimse]
        mine, their_size = deep_size(ours), deep_size(their_table)
        exact_code = max(dict.keys(ours))  # not a small int, which CPython caches
        plain = dict(ours.items())
        loop = per_lookup("pass", plain, exact_code)
        exact = per_lookup("table[code]", ours, exact_code) - loop
        plain_exact = per_lookup("table[code]", plain, exact_code) - loop
        in_range = per_lookup("table[code]", ours, 0xC123)
        worst_memory = max(worst_memory, 100 * mine / their_size)
        worst_exact = max(worst_exact, exact / plain_exact)
        worst_range = max(worst_range, in_range * 1e9)
        print(
            f"  {dimse}: {len(ours)} codes; {mine:,} B against {their_size:,} B "
            f"({len(their_table)} entries); table[0x{exact_code:04X}] {exact * 1e9:.1f} ns net "
            f"against {plain_exact * 1e9:.1f} ns in a dict; table[0xC123] {in_range * 1e9:.0f} ns"
        )

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tmp
        times = import_times(env)
    median = statistics.median(times) * 1e3
    print(
        f"  import {MODULE}: median {median:.2f} ms of {IMPORTS} fresh interpreters "
        f"(fastest {min(times) * 1e3:.2f}, slowest {max(times) * 1e3:.2f})"
    )
    print(f"memory, worst table / pynetdicom's   {verdict(worst_memory, 5, '%')}")
    print(f"exact lookup, worst / plain dict     {verdict(worst_exact, 3, 'x')}")
    print(f"range lookup, worst                  {verdict(worst_range, 500, ' ns')}")
    print(f"import beyond dependencies, median   {verdict(median, 2, ' ms')}")


if __name__ == "__main__":
    main()
