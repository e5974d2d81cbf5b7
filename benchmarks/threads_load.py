"""fastcnn on 1 and 2 threads beside busy processes: which threading strategy never loses to 1 thread (issue 16).

    python benchmarks/threads_load.py [--load 1] [--steps 6] [--rounds 4] [--batch-size 128] [--passes 2]
                                      [--envs libgomp,passive,spin10k] [--chunksize 1] [--thresholds 2]

Trains the seeds' model (keras-mnist, float32, Adam, synthetic batches) with ``--load`` busy processes
(:mod:`cnn.bench.load`) running throughout. The settings a process must be started with (libgomp's
``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT``, read once when the OpenMP runtime loads) get a child process each;
the children run one after the other, ``--passes`` times in turn. Inside a child, the strategies that can
change between calls are interleaved in blocks of ``--steps`` training steps, ``--rounds`` rounds, each step
timed on its own:

* ``1 thread``: every kernel on one thread;
* ``2 threads``: Numba's OpenMP layer as it is (static: each thread gets half of every loop up front);
* ``2 threads, chunksize 1``: :func:`numba.set_parallel_chunksize` (Numba >= 0.57): loops cut into chunks
  of one iteration;
* ``2 threads, ops under N serial``: every fastcnn op whose largest array has fewer than N elements runs on
  one thread (convolutions excepted), the others on two: what a work threshold in the kernels would do.

Prints the median step (ms) of each strategy in each child and pass, then one line per strategy: its median
over every pass over the median of ``1 thread`` (below 1: faster than one thread). The machine's load
average (``os.getloadavg``) is printed beside each pass: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Child environments: name -> the variables set for it (on top of this process's environment). Any of them
#: overrides fastcnn's own choice (fastcnn/_runtime.py: a user's setting wins); "fastcnn" leaves it to fastcnn;
#: "libgomp" is libgomp's default for as many threads as cores (GOMP_SPINCOUNT 300,000 when OMP_WAIT_POLICY
#: is unset: gcc.gnu.org/onlinedocs/libgomp/GOMP_005fSPINCOUNT.html). "tbb" is Numba's TBB layer: it needs
#: ``pip install tbb`` and, with pip's wheel, ``LD_LIBRARY_PATH`` naming the environment's ``lib`` folder.
ENVS = {
    "fastcnn": {},
    "libgomp": {"GOMP_SPINCOUNT": "300000"},
    "passive": {"OMP_WAIT_POLICY": "passive"},
    "spin1k": {"GOMP_SPINCOUNT": "1000"},
    "spin3k": {"GOMP_SPINCOUNT": "3000"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
    "spin100k": {"GOMP_SPINCOUNT": "100000"},
    "active": {"OMP_WAIT_POLICY": "active"},
    "tbb": {"NUMBA_THREADING_LAYER": "tbb"},
}
#: ``ops under N serial``: the thresholds tried (elements of an op's largest array).
THRESHOLDS = (1 << 18, 1 << 21)
#: Ops the threshold never makes serial: the convolutions, the bulk of the step's work.
ALWAYS_PARALLEL = {"conv_forward", "conv_backward", "conv2d", "conv2d_backward"}


class ThresholdEngine:
    """fastcnn as a stand-in engine module (cnn.model.get_engine takes any object with the engines' ops) whose
    ops run on one thread when their largest array has fewer than ``threshold`` elements."""

    def __init__(self, fastcnn, threshold: int):
        import numba
        import numpy as np

        self._fastcnn, self._threshold, self._numba, self._np = fastcnn, threshold, numba, np

    def __getattr__(self, name):
        target = getattr(self._fastcnn, name)
        if not callable(target) or name in ALWAYS_PARALLEL or name.startswith("_"):
            return target
        numba, ndarray, threshold = self._numba, self._np.ndarray, self._threshold

        def call(*args, **kwargs):
            largest = max((a.size for a in (*args, *kwargs.values()) if isinstance(a, ndarray)), default=0)
            if largest >= threshold:
                return target(*args, **kwargs)
            saved = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                return target(*args, **kwargs)
            finally:
                numba.set_num_threads(saved)

        return call


def _child(args) -> dict:
    """Interleaved blocks of training steps, one strategy per block; the median step of each, in ms."""
    import itertools

    import numba

    import fastcnn
    from cnn.bench.train import _synthetic_batches
    from cnn.model import Model
    from cnn.optimizers import Optimizer
    from cnn.threads import set_threads
    from cnn.train import train_step
    from cnnbase import netspec

    network = netspec.PRESETS["keras-mnist"]
    batches, _ = _synthetic_batches("random:1x28x28:10", args.batch_size, 4)

    def trainer(engine):
        model = Model(network.layers, network.input_shape, engine=engine, seed=0, dtype="float32")
        optimizer, counter = Optimizer("adam", 1e-3), itertools.count()

        def step():
            k = next(counter)
            x, y = batches[k % len(batches)]
            train_step(model, optimizer, x, y, step=k, lr=optimizer.lr)

        return step

    plain = trainer(fastcnn)
    strategies = {"1 thread": (1, 0, plain), "2 threads": (2, 0, plain)}
    if args.chunksize:
        strategies[f"2 threads, chunksize {args.chunksize}"] = (2, args.chunksize, plain)
    for threshold in THRESHOLDS[:args.thresholds]:
        strategies[f"2 threads, ops under {threshold:,} serial"] = (2, 0, trainer(ThresholdEngine(fastcnn, threshold)))
    times = {name: [] for name in strategies}
    for name, (threads, chunk, step) in strategies.items():  # warm-up: compile, grow buffers
        set_threads(threads)
        numba.set_parallel_chunksize(chunk)
        for _ in range(3):
            step()
    for _ in range(args.rounds):
        for name, (threads, chunk, step) in strategies.items():
            set_threads(threads)
            numba.set_parallel_chunksize(chunk)
            step()  # untimed: the first step after a switch pays the other strategy's leftovers
            for _ in range(args.steps):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--envs", default="libgomp,passive,spin10k")
    parser.add_argument("--chunksize", type=int, default=1, help="0: leave the chunksize strategy out")
    parser.add_argument("--thresholds", type=int, default=len(THRESHOLDS), help="how many of THRESHOLDS to try")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)), flush=True)
        return
    from cnn.bench.load import background_load

    envs = args.envs.split(",")
    command = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--rounds", str(args.rounds),
               "--batch-size", str(args.batch_size), "--chunksize", str(args.chunksize),
               "--thresholds", str(args.thresholds)]
    results: dict[tuple[str, str], list[float]] = {}
    print(f"cpu count {os.cpu_count()}, --load {args.load}, batch {args.batch_size}, "
          f"{args.rounds} rounds x {args.steps} steps per strategy and child", flush=True)
    with background_load(args.load):
        for p in range(args.passes):
            for env_name in envs:
                env = {**os.environ, "PYTHONPATH": str(ROOT), **ENVS[env_name]}
                done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(ROOT))
                if done.returncode:
                    print(f"{env_name}: child failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                medians = json.loads(done.stdout.strip().splitlines()[-1])
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"pass {p + 1} env {env_name} (load average {load}): "
                      + "; ".join(f"{k} {v:.1f} ms" for k, v in medians.items()), flush=True)
                for name, ms in medians.items():
                    results.setdefault((env_name, name), []).append(ms)
    first = envs[0]
    one = statistics.median(results.get((first, "1 thread"), [float("nan")]))
    print(f"\nmedian step over the passes, and over '{first}, 1 thread' ({one:.1f} ms):")
    for (env_name, name), values in results.items():
        median = statistics.median(values)
        print(f"  {env_name:8s} {name:36s} {median:8.1f} ms  {median / one:5.2f}")


if __name__ == "__main__":
    main()
