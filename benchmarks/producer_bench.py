"""The seeds' conv2 backward with conv1's, two ways, side by side (issue 16; fastcnn.conv_pool, ``producer=``).

    python benchmarks/producer_bench.py [--threads 2] [--batch 128] [--rounds 3]

* plain: ``conv_relu_pool_backward(..., input_relu=True)`` writes the ReLU's input gradient (N, 32, 26, 26),
  then ``conv_backward`` of conv1 reads it for its weight and bias gradients (what cnn's layers did before);
* producer: ``conv_relu_pool_backward(..., producer=(conv1's geometry, its input))`` gives conv1's gradients
  in the same pass, without the full-size gradient.

Medians of 21 calls per round, the two alternating within each round; float32 on synthetic data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastcnn  # noqa: E402
from cnnbase.conv import conv_geometry  # noqa: E402
from cnnbase.pool import pool_geometry  # noqa: E402


def _median_ms(fn, calls=21) -> float:
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=fastcnn.get_num_threads())
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fastcnn.set_num_threads(args.threads)
    N, dtype = args.batch, np.float32
    first = conv_geometry("conv2d", (N, 1, 28, 28), (32, 1, 3, 3), (32,), 1, 0, 1, 1, "zeros", 2)
    conv = conv_geometry("conv2d", (N, 32, 26, 26), (64, 32, 3, 3), (64,), 1, 0, 1, 1, "zeros", 2)
    pool = pool_geometry("max_pool2d", (N, 64) + conv.out, 2, 2, 0, 1, False, 2, kind="max")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((N, 1, 28, 28)).astype(dtype)
    w0, b0 = (rng.standard_normal((32, 1, 3, 3)) / 3).astype(dtype), np.zeros(32, dtype)
    w, b = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(dtype), np.zeros(64, dtype)
    x = fastcnn.conv_relu_forward(first, x0, w0, b0)
    y, winners = fastcnn.conv_relu_pool_forward(conv, pool, x, w, b)
    g = rng.standard_normal(y.shape).astype(dtype)

    def plain():
        gx = fastcnn.conv_relu_pool_backward(conv, pool, g, x, w, b, winners, input_relu=True)[0]
        return fastcnn.conv_backward(first, gx, x0, w0, b0, input_grad=False)

    def producer():
        return fastcnn.conv_relu_pool_backward(conv, pool, g, x, w, b, winners, producer=(first, x0))

    print(f"batch {N}, float32, fastcnn threads {args.threads}; ms, median of 21 calls")
    for r in range(args.rounds):
        a, c = _median_ms(plain), _median_ms(producer)
        print(f"round {r + 1}: plain {a:.2f}  producer {c:.2f}  ratio {a / c:.2f}")


if __name__ == "__main__":
    main()
