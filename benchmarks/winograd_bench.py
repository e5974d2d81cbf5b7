"""Direct against Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions in fastcnn, interleaved in one process
(issue 16).

Prints the median ms per call of ``fastcnn.conv2d`` (forward) and ``fastcnn.conv2d_backward`` (grad_x, grad_w,
grad_b) with ``algorithm="direct"``, ``"winograd"`` and ``"winograd4"`` side by side, float32, for the seeds'
conv2 layer and the 3x3 rows of ``cnn bench ops``, at each thread count asked, with the load average beside,
and each Winograd time as a ratio direct / Winograd (above 1: Winograd faster).

    PYTHONPATH=. python benchmarks/winograd_bench.py [--threads 2,1] [--repeats 15] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import fastcnn
from cnn.bench.timing import interleaved_medians

#: (N, C, H, W, K, padding): the seeds' conv2 (32x26x26 -> 64, no padding) and the 3x3 rows of cnn bench ops.
CASES = (
    (128, 32, 26, 26, 64, 0),
    (128, 3, 32, 32, 32, 1),
    (16, 64, 56, 56, 64, 1),
)


def _calls(case, dtype, algorithm):
    N, C, H, W, K, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    g = rng.standard_normal((N, K, H + 2 * p - 2, W + 2 * p - 2)).astype(dtype)
    return {
        "forward": lambda: fastcnn.conv2d(x, w, b, padding=p, algorithm=algorithm),
        "backward": lambda: fastcnn.conv2d_backward(g, x, w, b, padding=p, algorithm=algorithm),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="2,1")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    names = ("direct", "winograd", "winograd4")
    print(f"{'threads':>7} {'case (N,C,H,W,K,pad)':>24} {'dir':>4} {'direct ms':>10} {'F(2,3) ms':>10} "
          f"{'F(4,3) ms':>10} {'dir/F23':>8} {'dir/F43':>8}")
    for threads in [int(t) for t in args.threads.split(",")]:
        fastcnn.set_num_threads(threads)
        for case in CASES:
            calls = {name: _calls(case, args.dtype, name) for name in names}
            for d in ("forward", "backward"):
                med = interleaved_medians({name: calls[name][d] for name in names}, args.repeats)
                ms = [med[name] * 1e3 for name in names]
                print(f"{threads:>7} {str(case):>24} {d[:3]:>4} {ms[0]:>10.2f} {ms[1]:>10.2f} {ms[2]:>10.2f} "
                      f"{ms[0] / ms[1]:>8.2f} {ms[0] / ms[2]:>8.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
