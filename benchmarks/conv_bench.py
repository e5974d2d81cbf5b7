"""Convolution speed: fastcnn against PyTorch, side by side in one process, same thread count, float32, NCHW.

    python benchmarks/conv_bench.py [--threads 2] [--repeats 10] [--json]

The layers, their arrays and fastcnn's calls are those of ``cnn bench ops`` (:class:`cnn.bench.ops.ConvCase`);
this script differs in timing the forward + backward as one call (PyTorch builds its graph on every call).
For each layer of :func:`conv_cases` it times the forward and the forward + backward (input, weight and bias
gradients) of each engine, median of ``repeats`` runs after one warm-up, and prints milliseconds, GFLOP/s
(2 FLOPs per multiply-accumulate; forward + backward counts 3 convolutions' worth) and the ratio
torch time / fastcnn time (above 1: fastcnn is faster). The engines are interleaved run by run so that noise
from other processes on the machine hits both alike.

glibc gives large freed blocks back to the system, which costs PyTorch (it allocates fresh outputs each call)
thousands of page faults per call; compare with
``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184`` set and unset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastcnn  # noqa: E402
from cnn.bench.ops import OPS_CASES, ConvCase  # noqa: E402
from cnn.threads import threads_for_all  # noqa: E402


def conv_cases() -> list[ConvCase]:
    """The layers of issue 3's benchmark: the conv cases of ``cnn bench ops``."""
    return list(OPS_CASES["conv"])


def time_op(fn, repeats: int = 10) -> float:
    """Median seconds of ``repeats`` calls of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fastcnn_ops(case: ConvCase):
    """``(forward, forward_backward)`` closures of fastcnn for ``case`` (the calls ``cnn bench ops`` times)."""
    calls = case.calls(fastcnn, case.arrays())
    forward, backward = calls["forward"], calls["backward"]

    def forward_backward():
        forward()
        return backward()

    return forward, forward_backward


def torch_ops(case: ConvCase):
    """``(forward, forward_backward)`` closures of PyTorch for ``case``, or ``None`` without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    arrays = case.arrays()
    x, w, b, g = (torch.from_numpy(arrays[k]) for k in ("x", "weight", "bias", "grad_out"))
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    p = case.padding
    F = torch.nn.functional

    def forward():
        with torch.no_grad():
            return F.conv2d(x, w, b, padding=p)

    def forward_backward():
        y = F.conv2d(xr, wr, br, padding=p)
        return torch.autograd.grad(y, (xr, wr, br), g)

    return forward, forward_backward


def _interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each closure, running them in turn ``repeats`` times after a warm-up of each.

    Run by run, unlike :func:`cnn.bench.timing.interleaved_medians` (``cnn bench ops``), which times blocks
    of calls; kept so that this script's figures stay comparable with its earlier ones."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def bench(threads: int = 2, repeats: int = 10) -> list[dict]:
    """One row per (layer, direction): times in ms, GFLOP/s, and torch/fastcnn ratio (None without torch)."""
    try:
        import torch
    except ImportError:
        torch = None
    with threads_for_all(threads, torch):
        return [row for case in conv_cases() for row in _bench_case(case, threads, repeats)]


def _bench_case(case: ConvCase, threads: int, repeats: int) -> list[dict]:
    """The rows of one layer: forward, then forward + backward."""
    fast = fastcnn_ops(case)
    ref = torch_ops(case)
    rows = []
    for i, direction in enumerate(("forward", "forward+backward")):
        fns = {"fastcnn": fast[i]}
        if ref is not None:
            fns["torch"] = ref[i]
        t = _interleaved(fns, repeats)
        flops = case.flops(direction)
        row = {"layer": case.name, "direction": direction, "threads": threads,
               "fastcnn_ms": t["fastcnn"] * 1e3, "fastcnn_gflops": flops / t["fastcnn"] / 1e9,
               "torch_ms": None, "torch_gflops": None, "ratio": None}
        if "torch" in t:
            row.update(torch_ms=t["torch"] * 1e3, torch_gflops=flops / t["torch"] / 1e9,
                       ratio=t["torch"] / t["fastcnn"])
        rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    """The rows as a text table."""
    head = f"{'layer':<24} {'direction':<17} {'fastcnn ms':>10} {'GFLOP/s':>8} {'torch ms':>9} {'GFLOP/s':>8} {'torch/fast':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        torch_part = (f"{r['torch_ms']:>9.2f} {r['torch_gflops']:>8.1f} {r['ratio']:>10.2f}"
                      if r["ratio"] is not None else f"{'-':>9} {'-':>8} {'-':>10}")
        lines.append(f"{r['layer']:<24} {r['direction']:<17} {r['fastcnn_ms']:>10.2f} {r['fastcnn_gflops']:>8.1f} "
                     + torch_part)
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = bench(args.threads, args.repeats)
    if args.json:
        print(json.dumps({"glibc_tunables": os.environ.get("GLIBC_TUNABLES"), "fastcnn_cblas": fastcnn._blas.CBLAS,
                          "rows": rows}, indent=1))
    else:
        print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES')!r}; fastcnn GEMMs through "
              + ("NumPy's OpenBLAS (CBLAS)" if fastcnn._blas.CBLAS else "SciPy's BLAS (np.dot)"))
        print(render(rows))


if __name__ == "__main__":
    main()
