"""conv.py's im2col against fastcnn.im2row on strided layers, interleaved in one process (issue 16).

Prints the median ms per call of ``fastcnn.conv2d`` (forward) and ``fastcnn.conv2d_backward`` with im2row
switched off (``im2row.pays`` answering no: conv.py's im2col + GEMM) and forced on (answering yes, whatever
its rule), float32, and the ratio im2col / im2row (above 1: im2row faster), with PyTorch's times beside when
it is installed. The cases are the ones behind ``im2row.MIN_CHANNELS`` and ``im2row.pays``: ResNet-20's
downsampling layers (3x3 and 1x1 projections, batch 64), few input channels, and larger strided layers.

    PYTHONPATH=. python benchmarks/im2row_bench.py [--threads 2] [--repeats 25]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import fastcnn
from cnn.bench.timing import interleaved_medians
from fastcnn import im2row

#: (N, C, H, K, kernel, stride, padding): square inputs and kernels.
CASES = (
    (64, 3, 32, 32, 3, 2, 1),
    (64, 4, 28, 32, 3, 2, 1),
    (64, 8, 28, 32, 3, 2, 1),
    (64, 16, 28, 32, 3, 2, 1),
    (64, 32, 14, 64, 3, 2, 1),
    (64, 16, 28, 32, 1, 2, 0),
    (64, 32, 14, 64, 1, 2, 0),
    (32, 64, 28, 128, 3, 2, 1),
    (16, 64, 56, 64, 7, 2, 3),
)


def _calls(case, pays, torch=None):
    N, C, H, K, k, s, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((K, C, k, k)) / np.sqrt(k * k * C)).astype(np.float32)
    H_out = (H + 2 * p - k) // s + 1
    g = rng.standard_normal((N, K, H_out, H_out)).astype(np.float32)
    if torch is not None:
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        tg = torch.from_numpy(g)

        def forward():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, stride=s, padding=p)

        def backward():
            ty = torch.nn.functional.conv2d(tx, tw, stride=s, padding=p)
            torch.autograd.grad(ty, (tx, tw), tg)
        return {"forward": forward, "backward": backward}

    def switched(fn):
        def call():
            saved, im2row.pays = im2row.pays, pays
            try:
                fn()
            finally:
                im2row.pays = saved
        return call
    return {"forward": switched(lambda: fastcnn.conv2d(x, w, None, stride=s, padding=p)),
            "backward": switched(lambda: fastcnn.conv2d_backward(g, x, w, None, stride=s, padding=p))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args(argv)
    fastcnn.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"threads {args.threads}; load average before: {os.getloadavg()}")
    print(f"{'case (N,C,H,K,k,s,p)':>28} {'dir':>4} {'im2col ms':>10} {'im2row ms':>10} {'ratio':>6} {'torch ms':>9}")
    for case in CASES:
        calls = {"im2col": _calls(case, lambda *a, **k: False), "im2row": _calls(case, lambda *a, **k: True)}
        if torch is not None:
            calls["torch"] = _calls(case, None, torch)
        for d in ("forward", "backward"):
            med = interleaved_medians({name: c[d] for name, c in calls.items()}, args.repeats)
            peer = f"{med['torch'] * 1e3:>9.3f}" if "torch" in med else f"{'-':>9}"
            print(f"{str(case):>28} {d[:3]:>4} {med['im2col'] * 1e3:>10.3f} {med['im2row'] * 1e3:>10.3f} "
                  f"{med['im2col'] / med['im2row']:>6.2f} {peer}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
