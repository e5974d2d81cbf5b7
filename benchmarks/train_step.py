"""Median time of one training step of the seeds' model (keras-mnist, Adam, batch 128, float32), fastcnn.

Uses only names every version of this project has (cnn.model.Model, cnn.train.train_step), so the same file
times an older checkout side by side with this one, e.g. (issue 16's before/after):

    git worktree add /tmp/base <commit>
    for i in 1 2; do PYTHONPATH=/tmp/base python benchmarks/train_step.py --threads 2
                     PYTHONPATH=$PWD python benchmarks/train_step.py --threads 2; done

Three passes over the same 40 batches of the full Fashion-MNIST (the shipped sample without it); the first
pass holds the slow first steps (compilation, first-touch page faults), so the passes' medians are printed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cnn.bench.train import _training_batches  # noqa: E402
from cnn.model import Model  # noqa: E402
from cnn.optimizers import Optimizer  # noqa: E402
from cnn.threads import set_threads  # noqa: E402
from cnn.train import train_step  # noqa: E402
from cnnbase import netspec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    set_threads(args.threads)
    batches, _ = _training_batches("default", 128, args.batches)
    network = netspec.PRESETS["keras-mnist"]
    model = Model(network.layers, network.input_shape, engine="fastcnn", seed=0, dtype="float32")
    optimizer = Optimizer("adam", 1e-3)
    steps = itertools.count()
    medians = []
    for _ in range(args.passes):
        times = []
        for x, y in batches:
            start = time.perf_counter()
            train_step(model, optimizer, x, y, step=next(steps), lr=optimizer.lr)
            times.append(time.perf_counter() - start)
        medians.append(1e3 * float(np.median(times)))
    root = os.environ.get("PYTHONPATH") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"{root}: threads {args.threads}, load average {os.getloadavg()[0]:.2f}; median ms per step of each "
          f"pass: {', '.join(f'{m:.1f}' for m in medians)}")


if __name__ == "__main__":
    main()
