"""``cnn bench startup``: the cold compile time of fastcnn's kernels and the warm start-up time.

The cold run is a child process (:mod:`cnn.bench.child`, kind ``compile_all``) that calls every fastcnn op
with conformance cases, in float32 and float64, into a fresh, empty ``NUMBA_CACHE_DIR``; the warm runs then
spawn plain ``python`` processes against that now-warm cache and time them from spawn to exit.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .child import _ROOT, _child_env, _run_child
from .machine import _header, environment
from .tables import _table

#: The first result of a fresh process: what a user's script does before anything else.
FIRST_RESULT_CODE = ("import numpy, fastcnn; "
                     "fastcnn.conv2d(numpy.ones((1, 1, 8, 8), numpy.float32), numpy.ones((4, 1, 3, 3), numpy.float32))")
IMPORT_CODE = "import fastcnn"
BASELINE_CODE = "import numpy"
#: The floor of any program that calls one cached Numba function: Numba's import and its first-call set-up
#: (typing and lowering registries, which import SciPy's BLAS wrappers when SciPy is installed).
NUMBA_FLOOR_SCRIPT = """import numba, numpy
@numba.njit(cache=True)
def total(a):
    return a.sum()
total(numpy.ones(3))
"""


def _child_compile_all(spec: dict) -> dict:
    """Call every fastcnn op that has conformance cases, in float32 and float64, and time it."""
    start = time.perf_counter()
    import fastcnn
    from cnnconform.cases import load_cases, run_case

    imported = time.perf_counter()
    only = set(spec.get("ops") or ())
    cases = [c for c in load_cases() if hasattr(fastcnn, c.op) and (not only or c.op in only)]
    for dtype in (np.float32, np.float64):
        def convert(a, dtype=dtype):
            return a.astype(dtype) if a.dtype.kind == "f" else a

        for case in cases:
            run_case(case, getattr(fastcnn, case.op), convert_input=convert)
    every_op = {op for names in fastcnn.OPS.values() for op in names}
    return {"import_s": imported - start, "calls_s": time.perf_counter() - imported, "cases": len(cases),
            "ops_called": len({c.op for c in cases}),
            "ops_without_case": sorted(every_op - {c.op for c in cases}) if not only else []}


def _spawn_seconds(args: list[str], env: dict) -> float:
    """Seconds from spawning ``python *args`` to its exit; a failure raises with the child's message."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=str(_ROOT))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)!r} failed: {done.stderr.strip()[-600:]}")
    return seconds


def _cache_files(folder: str) -> dict:
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return {"index_files": sum(p.suffix == ".nbi" for p in files), "compiled_files": sum(p.suffix == ".nbc" for p in files)}


def measure_startup(warm_runs: int = 5, ops=None, first_result_code: str = FIRST_RESULT_CODE) -> dict:
    """Cold compile of every kernel into a fresh ``NUMBA_CACHE_DIR``, then warm-cache start-up times
    (median of ``warm_runs`` spawns each). ``ops`` limits the cold run to some ops and ``first_result_code``
    replaces the first call (both for quick tests)."""
    cache = tempfile.mkdtemp(prefix="cnn-bench-numba-cache-")
    try:
        env = _child_env({"NUMBA_CACHE_DIR": cache})
        cold = _run_child({"kind": "compile_all", "ops": list(ops or [])}, env)
        if cold.get("error"):
            raise RuntimeError(f"the cold compile run failed: {cold['error']}")
        cached = _cache_files(cache)

        def median_spawn(*args):
            return statistics.median(_spawn_seconds(list(args), env) for _ in range(warm_runs))

        floor_script = Path(cache) / "numba_floor.py"
        floor_script.write_text(NUMBA_FLOOR_SCRIPT)
        _spawn_seconds([str(floor_script)], env)  # compiles and caches its one function

        rows = [
            {"measure": "cold: every kernel compiled, spawn to exit", "seconds": cold["wall_s"],
             "detail": f"{cold['cases']} conformance cases x (float32, float64) over {cold['ops_called']} ops; "
                       f"import {cold['import_s']:.2f} s, calls {cold['calls_s']:.2f} s; "
                       f"{cached['compiled_files']} compiled kernel files cached"},
            {"measure": "warm: first result, spawn to exit", "seconds": median_spawn("-c", first_result_code),
             "detail": f"python -c \"{first_result_code}\", median of {warm_runs}"},
            {"measure": "warm: import fastcnn, spawn to exit", "seconds": median_spawn("-c", IMPORT_CODE),
             "detail": f"python -c \"{IMPORT_CODE}\", median of {warm_runs}"},
            {"measure": "context: import numpy, spawn to exit", "seconds": median_spawn("-c", BASELINE_CODE),
             "detail": f"python -c \"{BASELINE_CODE}\", median of {warm_runs}"},
            {"measure": "context: one cached Numba function", "seconds": median_spawn(str(floor_script)),
             "detail": "a script that imports numba and numpy and calls one cached @njit function (a.sum()), "
                       f"warm, median of {warm_runs}: the floor of any Numba program"},
        ]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    notes = ["NUMBA_CACHE_DIR: a fresh empty temporary folder for the cold run, reused (now warm) for the "
             "warm runs, then deleted."]
    if cold["ops_without_case"]:
        notes.append("ops with no conformance case, so not compiled in the cold run: "
                     + ", ".join(cold["ops_without_case"]))
    env_info = environment(None)
    env_info.update(warm_runs=warm_runs, cache=cached)
    return {"environment": env_info, "rows": rows, "notes": notes}


def render_startup(result: dict) -> str:
    """The rows of :func:`measure_startup` as a table under the header, then the notes."""
    lines = [[r["measure"], f"{r['seconds']:.2f}", r["detail"]] for r in result["rows"]]
    table = _table(["measure", "seconds", "what"], lines, "lrl")
    head = ["cnn bench startup"] + _header(result["environment"])
    return "\n".join(head + ["", table, ""] + [f"* {n}" for n in result["notes"]])
