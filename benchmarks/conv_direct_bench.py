"""Few-channel convolutions: fastcnn's direct kernels (fastcnn/conv_direct.py) against im2col + GEMM.

Both paths run through the public ``fastcnn.conv2d`` / ``conv2d_backward``, alternating in one process (the
GEMM path by setting ``conv_direct.DIRECT_MAX_CHANNELS`` to 0), and the medians are printed side by side:

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


def with_limit(limit: int, fn):
    """``fn`` with the rule's channel limit set to ``limit`` (0: never direct); the rule's other conditions
    (groups, stride) still apply, so the ungrouped and strided rows time the GEMM path twice unless the rule
    is widened: the benchmark forces the direct path by patching direct_pays instead."""
    def run():
        saved, conv_direct.DIRECT_MAX_CHANNELS = conv_direct.DIRECT_MAX_CHANNELS, limit
        try:
            fn()
        finally:
            conv_direct.DIRECT_MAX_CHANNELS = saved
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
                [with_limit(0, fwd), with_limit(1 << 30, fwd), with_limit(0, bwd), with_limit(1 << 30, bwd)],
                args.repeats)
            print(f"threads {threads}  {N}x{C}x{H}x{H} -> {K}, pad {pad}, groups {groups}, stride {stride}: "
                  f"forward gemm {gemm_f:7.2f} direct {direct_f:7.2f} ({gemm_f / direct_f:4.2f}x)   "
                  f"backward gemm {gemm_b:7.2f} direct {direct_b:7.2f} ({gemm_b / direct_b:4.2f}x)")


if __name__ == "__main__":
    main()
