"""Convolution speed: fastcnn against PyTorch, side by side in one process, same thread count, float32, NCHW.

    python benchmarks/conv_bench.py [--threads 2] [--repeats 10] [--json]

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastcnn  # noqa: E402
from cnnbase.shapes import conv_macs, conv_output_size  # noqa: E402


@dataclass(frozen=True)
class ConvCase:
    """One benchmarked layer: a batch of N samples (C_in, H, W) -> C_out channels, K x K kernel."""

    name: str
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    K: int = 3
    padding: int = 0

    @property
    def out_hw(self) -> tuple[int, int]:
        return (conv_output_size(self.H, self.K, 1, self.padding, self.padding),
                conv_output_size(self.W, self.K, 1, self.padding, self.padding))

    @property
    def forward_flops(self) -> int:
        return 2 * self.N * conv_macs(self.C_in, self.C_out, (self.K, self.K), self.out_hw)


def conv_cases() -> list[ConvCase]:
    """The layers of issue 3's benchmark."""
    return [
        ConvCase("128x1x28x28->32 k3", 128, 1, 28, 28, 32),
        ConvCase("128x32x26x26->64 k3", 128, 32, 26, 26, 64),
        ConvCase("128x3x32x32->32 k3 p1", 128, 3, 32, 32, 32, padding=1),
        ConvCase("16x64x56x56->64 k3 p1", 16, 64, 56, 56, 64, padding=1),
    ]


def time_op(fn, repeats: int = 10) -> float:
    """Median seconds of ``repeats`` calls of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _arrays(case: ConvCase, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.N, case.C_in, case.H, case.W), dtype=np.float32)
    w = rng.standard_normal((case.C_out, case.C_in, case.K, case.K), dtype=np.float32) * 0.1
    b = rng.standard_normal(case.C_out, dtype=np.float32)
    g = rng.standard_normal((case.N, case.C_out) + case.out_hw, dtype=np.float32)
    return x, w, b, g


def fastcnn_ops(case: ConvCase):
    """``(forward, forward_backward)`` closures of fastcnn for ``case``."""
    x, w, b, g = _arrays(case)
    p = case.padding

    def forward():
        return fastcnn.conv2d(x, w, b, padding=p)

    def forward_backward():
        fastcnn.conv2d(x, w, b, padding=p)
        return fastcnn.conv2d_backward(g, x, w, b, padding=p)

    return forward, forward_backward


def torch_ops(case: ConvCase):
    """``(forward, forward_backward)`` closures of PyTorch for ``case``, or ``None`` without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    x, w, b, g = (torch.from_numpy(a) for a in _arrays(case))
    xr, wr, br = (a.clone().requires_grad_() for a in (x, w, b))
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
    """Median seconds of each closure, running them in turn ``repeats`` times after a warm-up of each."""
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
    fastcnn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass
    rows = []
    for case in conv_cases():
        fast = fastcnn_ops(case)
        ref = torch_ops(case)
        for i, direction in enumerate(("forward", "forward+backward")):
            fns = {"fastcnn": fast[i]}
            if ref is not None:
                fns["torch"] = ref[i]
            t = _interleaved(fns, repeats)
            flops = case.forward_flops * (1 if i == 0 else 3)
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
