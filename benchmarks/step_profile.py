"""Per-layer-type medians of one fastcnn training step of the seeds' model (issue 16).

``cnn bench train --profile`` reports per-step means over the timed steps; on a loaded machine one slow step
(a descheduled thread) moves a mean a lot. This script times every step on its own and prints the median of
each row over the steps, so the lead can rerun it quietly and compare figures across branches:

    PYTHONPATH=$PWD python benchmarks/step_profile.py [--steps 30] [--threads 2] [--batch 128] [--ab] [--cpu]
                                                      [--model keras-mnist] [--per-layer] [--inference]

The model is the keras-mnist preset (conv32k3 relu, conv64k3 relu, maxpool2, dropout0.25, flatten, dense128
relu, dropout0.5, dense10 softmax), Adam, float32, on random 1x28x28 images (the data does not change the
work). ``--ab`` alternates steps with the conv-ReLU-maxpool fusion on and off (cnn.layers'
``relu_pool`` link cut for the "off" steps) and prints both columns: same process, same load, interleaved.
``--cpu`` times CPU time of the calling thread instead of wall time (with ``--threads 1`` and
``OPENBLAS_NUM_THREADS=1`` all the work is on that thread): on a loaded machine a descheduled step then costs
nothing extra, so A/B comparisons stay readable; the lead's quiet figures are wall time.
``--inference`` times eval-mode forward passes (``Model.forward(x)``) instead of training steps.
``--model`` takes another preset with 1x28x28 input (``resnet20-28``); ``--per-layer`` gives each layer its own
row (``"<position> <type>"``, in ``Model.all_layers`` order) instead of one per layer type.
Rows: each layer type's forward and backward (a layer's time includes its activation; with the fusion the
conv's ReLU is done inside MaxPool2D), the optimizer update, and the rest of the step (loss, its gradient,
the accuracy count, the Python between layers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastcnn  # noqa: E402
from cnn.model import Model  # noqa: E402
from cnn.optimizers import Optimizer  # noqa: E402
from cnn import profiling  # noqa: E402
from cnn.profiling import OPTIMIZER_ROW, LayerProfile  # noqa: E402
from cnn.train import train_step  # noqa: E402

PRESET = "keras-mnist"


def _set_fusion(model, on: bool, links) -> None:
    """Cut (or restore) every ReLU -> max pooling link the model made when it was built."""
    for producer, pool in links:
        producer.relu_pool, pool.relu_from = (pool, producer) if on else (None, None)


def _step_rows(profile: LayerProfile, step_seconds: float) -> dict[str, float]:
    rows = {}
    for (kind, phase), seconds in profile.seconds.items():
        rows[f"{kind} {phase}" if phase != "other" else kind] = seconds
    rows["(rest of the step)"] = step_seconds - sum(profile.seconds.values())
    rows["(whole step)"] = step_seconds
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps (per variant with --ab)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="fastcnn threads (default: as started)")
    parser.add_argument("--ab", action="store_true", help="alternate fused and unfused steps")
    parser.add_argument("--cpu", action="store_true", help="CPU time of this thread (use with --threads 1)")
    parser.add_argument("--model", default=PRESET, help="a preset of `cnn shape --list` with 1x28x28 input")
    parser.add_argument("--per-layer", action="store_true", help="one row per layer instead of per layer type")
    parser.add_argument("--inference", action="store_true", help="time eval-mode forward passes instead of steps")
    args = parser.parse_args(argv)
    clock = time.thread_time if args.cpu else time.perf_counter
    if args.cpu:  # the profile's own clock too (its module's `time`, replaced for this process only)
        profiling.time = types.SimpleNamespace(perf_counter=time.thread_time)
    if args.threads:
        fastcnn.set_num_threads(args.threads)

    model = Model(args.model, (1, 28, 28), seed=0)
    links = [(layer, layer.relu_pool) for layer in model.all_layers() if getattr(layer, "relu_pool", None)]
    optimizer = Optimizer("adam")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    profile = LayerProfile()
    profile.attach(model, optimizer, by_layer=args.per_layer)
    variants = ("fused", "unfused") if args.ab else ("fused" if links else "as built",)
    samples: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    step = 0
    for i in range(args.warmup + args.steps):
        for variant in variants:
            _set_fusion(model, variant != "unfused", links)
            profile.reset()
            start = clock()
            if args.inference:
                model.forward(x)
            else:
                train_step(model, optimizer, x, y, step=step, lr=1e-3)
            elapsed = clock() - start
            step += 1
            if i >= args.warmup:
                for row, seconds in _step_rows(profile, elapsed).items():
                    samples[variant].setdefault(row, []).append(seconds)
    profile.detach()

    load = os.getloadavg()
    print(f"{args.model}, batch {args.batch}, float32, Adam; fastcnn threads {fastcnn.get_num_threads()}; "
          f"{args.steps} steps per column after {args.warmup} warm-up; {'CPU' if args.cpu else 'wall'} time; "
          f"load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}")
    rows = list(samples[variants[0]])
    layer_rows = [r for r in rows if not r.startswith("(") and r != OPTIMIZER_ROW]
    order = sorted(layer_rows, key=(lambda r: r) if args.per_layer else
                   (lambda r: -statistics.median(samples[variants[0]][r])))
    order += [r for r in (OPTIMIZER_ROW, "(rest of the step)", "(whole step)") if r in rows]
    print(f"{'median ms/step':28s}" + "".join(f"{v:>12s}" for v in variants))
    for row in order:
        cells = "".join(f"{statistics.median(samples[v].get(row, [0.0])) * 1e3:12.2f}" for v in variants)
        print(f"{row:28s}{cells}")


if __name__ == "__main__":
    main()
