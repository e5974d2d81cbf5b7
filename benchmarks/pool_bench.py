"""2x2 max pooling of a (128, 64, 24, 24) float32 batch: fastcnn against PyTorch, side by side in one process.

Usage: ``python benchmarks/pool_bench.py [--threads 2] [--repeats 30] [--shape 128 64 24 24] [--json]``

Both engines use the same thread count (``fastcnn.set_num_threads`` and ``torch.set_num_threads``). Every
timing is the median of ``--repeats`` runs after warm-up, the two engines interleaved run by run so that
machine noise hits both alike. PyTorch's backward is timed as the aten op alone
(``max_pool2d_with_indices_backward`` with the indices of its forward), which is what autograd runs; fastcnn's
backward recomputes the argmax from ``x`` (its API passes ``x``, not indices), and that is included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastcnn  # noqa: E402
from cnn.bench.ops import MaxPoolCase  # noqa: E402
from cnn.threads import threads_for_all  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, run in turn ``repeats`` times after one warm-up call each.

    Run by run, unlike :func:`cnn.bench.timing.interleaved_medians` (``cnn bench ops``), which times blocks
    of calls; kept so that this script's figures stay comparable with its earlier ones."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--shape", type=int, nargs=4, default=[128, 64, 24, 24])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    arrays = MaxPoolCase(*args.shape).arrays()  # the data of `cnn bench ops --ops pool` at this shape
    x, grad_out = arrays["x"], arrays["grad_out"]

    xt, gt = torch.from_numpy(x), torch.from_numpy(grad_out)
    _, t_indices = F.max_pool2d(xt, 2, return_indices=True)
    aten_backward = torch.ops.aten.max_pool2d_with_indices_backward

    with threads_for_all(args.threads, torch), torch.no_grad():
        medians = interleaved_medians({
            "fastcnn forward": lambda: fastcnn.max_pool2d(x, 2),
            "torch forward": lambda: F.max_pool2d(xt, 2),
            "fastcnn forward+indices": lambda: fastcnn.max_pool2d(x, 2, return_indices=True),
            "torch forward+indices": lambda: F.max_pool2d(xt, 2, return_indices=True),
            "fastcnn backward": lambda: fastcnn.max_pool2d_backward(grad_out, x, 2),
            "torch backward": lambda: aten_backward(gt, xt, [2, 2], [2, 2], [0, 0], [1, 1], False, t_indices),
        }, args.repeats)

    rows = []
    for what in ("forward", "forward+indices", "backward"):
        ours, theirs = medians[f"fastcnn {what}"], medians[f"torch {what}"]
        rows.append(dict(op="max_pool2d 2x2", pass_=what, shape=tuple(args.shape), threads=args.threads,
                         fastcnn_ms=ours * 1e3, torch_ms=theirs * 1e3, speedup=theirs / ours))
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"max_pool2d 2x2, x {tuple(args.shape)} float32, {args.threads} threads, "
              f"median of {args.repeats} (torch {torch.__version__})")
        for r in rows:
            print(f"  {r['pass_']:<16} fastcnn {r['fastcnn_ms']:8.3f} ms   torch {r['torch_ms']:8.3f} ms   "
                  f"torch/fastcnn {r['speedup']:5.2f}x")
    return rows


if __name__ == "__main__":
    main()
