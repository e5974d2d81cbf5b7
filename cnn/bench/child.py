"""The child-process protocol: what ``cnn bench`` measures in a fresh interpreter of its own.

A child runs ``python -m cnn.bench --child SPEC``, where SPEC is a JSON object whose ``kind`` names what to
do (the kinds are listed in ``cnn/bench/__main__.py``: ``train`` and ``idle`` from :mod:`cnn.bench.train`,
``compile_all`` from :mod:`cnn.bench.startup`), and prints one JSON line, its result. A child of its own
gives each engine its own peak resident memory and ``cnn bench startup`` a process that starts cold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The repository root (this file is ``<root>/cnn/bench/child.py``): the children's working folder, and first
#: on their PYTHONPATH so that they import this checkout's packages.
_ROOT = Path(__file__).resolve().parents[2]

_USAGE = "usage: python -m cnn.bench --child SPEC (used by cnn bench; run `cnn bench` instead)"


def _child_env(extra: dict | None = None) -> dict:
    """This process's environment with the repository root first on PYTHONPATH, then ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra or {})
    return env


def _run_child(spec: dict, env: dict | None = None) -> dict:
    """Run ``python -m cnn.bench --child SPEC``; its last stdout line is its JSON result. A child that
    fails gives ``{"error": <the last line of its stderr, the exception>}`` instead of stopping the benchmark."""
    command = [sys.executable, "-m", "cnn.bench", "--child", json.dumps(spec)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env or _child_env(), cwd=str(_ROOT))
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"child exited with status {done.returncode}: {_last_line(done.stderr)}", "wall_s": wall}
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def _last_line(text: str) -> str:
    """The last non-empty line of a child's stderr: the exception of a traceback, not a fragment of it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-600:] if lines else "(nothing on stderr)"


def _child_main(argv: list[str], kinds: dict) -> None:
    """The child's side: run ``kinds[spec["kind"]](spec)`` and print its result as one JSON line (an unknown
    kind fails with a traceback that names it, which the parent reports)."""
    if len(argv) != 2 or argv[0] != "--child":
        raise SystemExit(_USAGE)
    spec = json.loads(argv[1])
    print(json.dumps(kinds[spec["kind"]](spec)), flush=True)
