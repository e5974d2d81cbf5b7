"""Few-channel convolutions: fastcnn's direct kernels (fastcnn/conv_direct.py) against im2col + GEMM.

Both paths run through the public ``fastcnn.conv2d`` / ``conv2d_backward``, alternating in one process (the
choice forced by replacing ``conv_direct.direct_pays``), and the medians are printed side by side:

    python benchmarks/conv_direct_bench.py [--threads 1,2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastcnn  # noqa: E402
from fastcnn import conv_direct  # noqa: E402

#: (N, C_in, C_out, H=W, padding, groups, stride): the seeds' first layer, CIFAR's, 4 and 8 channels, depthwise
#: layers (one with stride 2), 4 channels per group, and a strided stem.
CASES = [(128, 1, 32, 28, 0, 1, 1), (128, 3, 32, 32, 1, 1, 1), (128, 4, 32, 32, 1, 1, 1), (128, 8, 32, 32, 1, 1, 1),
         (64, 32, 32, 56, 1, 32, 1), (64, 64, 64, 28, 1, 16, 1), (64, 64, 64, 28, 1, 64, 2),
         (128, 3, 16, 32, 1, 1, 2)]


def ALWAYS(*args) -> bool:
    return True


def NEVER(*args) -> bool:
    return False


def medians(fns, repeats: int) -> list[float]:
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [1e3 * float(np.median(t)) for t in times]


def with_rule(rule, fn):
    """``fn`` with :func:`fastcnn.conv_direct.direct_pays` replaced by ``rule`` (always or never direct), so
    that both paths are timed on every row, the ones the measured rule sends elsewhere included."""
    def run():
        saved, conv_direct.direct_pays = conv_direct.direct_pays, rule
        try:
            fn()
        finally:
            conv_direct.direct_pays = saved
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()[0]:.2f}; float32; ms medians of {args.repeats} alternating runs")
    for threads in [int(t) for t in args.threads.split(",")]:
        fastcnn.set_num_threads(threads)
        for N, C, K, H, pad, groups, stride in CASES:
            x = rng.standard_normal((N, C, H, H)).astype(np.float32)
            w = rng.standard_normal((K, C // groups, 3, 3)).astype(np.float32)
            b = rng.standard_normal(K).astype(np.float32)
            g = rng.standard_normal(fastcnn.conv2d(x, w, b, stride, pad, 1, groups).shape).astype(np.float32)

            def fwd():
                fastcnn.conv2d(x, w, b, stride, pad, 1, groups)

            def bwd():
                fastcnn.conv2d_backward(g, x, w, b, stride, pad, 1, groups)

            gemm_f, direct_f, gemm_b, direct_b = medians(
                [with_rule(NEVER, fwd), with_rule(ALWAYS, fwd), with_rule(NEVER, bwd), with_rule(ALWAYS, bwd)],
                args.repeats)
            print(f"threads {threads}  {N}x{C}x{H}x{H} -> {K}, pad {pad}, groups {groups}, stride {stride}: "
                  f"forward gemm {gemm_f:7.2f} direct {direct_f:7.2f} ({gemm_f / direct_f:4.2f}x)   "
                  f"backward gemm {gemm_b:7.2f} direct {direct_b:7.2f} ({gemm_b / direct_b:4.2f}x)")


if __name__ == "__main__":
    main()
