"""Dropout forward: fastcnn against torch.nn.functional.dropout, side by side in one process.

    python benchmarks/dropout_bench.py [--threads 2] [--repeats 50] [--shape 128 64 12 12] [--p 0.5]

Both engines use the same number of threads; each is timed as the median of ``repeats`` calls after a
warm-up, interleaved (fastcnn, torch, fastcnn, ...) so that noise from other processes hits both alike.
Prints one row per engine with the median in ms, the throughput in elements per ns, and torch/fastcnn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastcnn  # noqa: E402
from cnn.threads import threads_for_all  # noqa: E402


def dropout_cases():
    """The benchmarked shapes: the activation after the second conv of the MNIST convnet, batch 128."""
    return [{"name": "dropout (128, 64, 12, 12) float32 p=0.5", "shape": (128, 64, 12, 12), "p": 0.5}]


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def interleaved_medians(fns: dict, repeats: int, rounds: int = 5) -> dict:
    """Median over ``rounds`` interleaved rounds of each function's per-round median (ms).

    Not :func:`cnn.bench.timing.interleaved_medians` (``cnn bench ops``: one median over blocks of calls, in
    seconds); kept so that this script's figures stay comparable with its earlier ones."""
    for fn in fns.values():  # warm-up: compilation, thread pools, first-touch of buffers
        for _ in range(3):
            fn()
    per_round = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            per_round[name].append(median_ms(fn, max(1, repeats // rounds)))
    return {name: statistics.median(v) for name, v in per_round.items()}


def run(shape, p: float, threads: int, repeats: int) -> list[dict]:
    """Rows ``{engine, ms, elements_per_ns}``; torch is left out when it is not installed."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    fns = {"fastcnn": lambda: fastcnn.dropout(x, p, True, seed=1)}
    try:
        import torch

        xt = torch.from_numpy(x)
        fns["torch"] = lambda: torch.nn.functional.dropout(xt, p, True)
    except ImportError:
        torch = None
    with threads_for_all(threads, torch):
        medians = interleaved_medians(fns, repeats)
    return [{"engine": k, "ms": v, "elements_per_ns": x.size / (v * 1e6)} for k, v in medians.items()]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--shape", type=int, nargs="+", default=list(dropout_cases()[0]["shape"]))
    ap.add_argument("--p", type=float, default=0.5)
    a = ap.parse_args(argv)
    rows = run(tuple(a.shape), a.p, a.threads, a.repeats)
    print(f"dropout forward, shape {tuple(a.shape)}, float32, p={a.p}, {a.threads} threads, "
          f"median of {a.repeats} calls")
    for r in rows:
        print(f"  {r['engine']:8s} {r['ms']:8.3f} ms   {r['elements_per_ns']:6.2f} elements/ns")
    by = {r["engine"]: r["ms"] for r in rows}
    if "torch" in by:
        print(f"  torch / fastcnn = {by['torch'] / by['fastcnn']:.2f}x (above 1: fastcnn is faster)")


if __name__ == "__main__":
    main()
