"""Where a training step's time goes, and how fast today's kernels could make it: a bound (issue 16).

Measured beside PyTorch's step, in alternating child processes of one run:

    PYTHONPATH=$PWD python benchmarks/step_bound.py [--model resnet20-28] [--batch 64] [--threads 2]
                                                    [--steps 25] [--rounds 3] [--data fashion-mnist-small]

Each fastcnn child trains ``--model`` as ``cnn bench train`` does (``cnn.Model``, Adam, float32, the same
batches), times ``--steps`` plain steps (the step as users get it), then as many steps with every public
``fastcnn`` function wrapped. Per function, summed over its calls and given per step:

- **in step**: its calls where the step makes them;
- **of it in kernels**: the Numba kernels those calls ran (every kernel fastcnn's modules call from Python
  wrapped too); the rest of a call is its Python and NumPy: argument checks, plans, scratch buffers, the
  calls' set-up, and the caches refilled after the previous kernel evicted them;
- **repeated at once**: each call made once more, at once, with the same arguments: its inputs are then in
  cache, and the arrays it writes were just written, so the sum is the calls without memory a step old.

The child runs twice per round: with fastcnn's sleeping OpenMP waiters (``passive``: each parallel kernel pays
for waking the other thread, ~67 us on the 2-core VM) and with ``GOMP_SPINCOUNT=100000`` (``spin``: the waiters
spin between kernels, a launch ~2 us; docs/threads.md says why fastcnn does not). ``spin``'s repeated sum is the
step's calls with neither cold memory nor launch costs; less the calls' own Python and NumPy, it is their
kernels alone: no order of these calls, no buffer reuse, no thread pool makes a step of them faster (short of
faster kernels or fewer passes). The torch child times PyTorch's step as ``cnn bench train`` does (its libgomp
spins, its default).

The repeated call runs with the step's own arrays: ops that update in place (the optimizer, a gradient added
into another) update twice, which changes the values trained, not the work; running statistics and saved batch
statistics (the small arrays) are copied for the repeat so that they are updated once.

Printed: the medians over the rounds, ms per step; what the plain step spends outside fastcnn's calls (cnn's
layers, the model, the optimizer's loop); and the step 1.5x faster than PyTorch's (issue 16's goal for
``cnn bench train``'s ResNet row).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: libgomp's waiters spin this many iterations before they sleep in the ``spin`` child: on the 2-core VM a
#: launch after 0.2 ms of Python then costs ~1.7 us (docs/threads.md, session 32).
SPIN_COUNT = "100000"

#: What the fastcnn child sums per public function: its calls in the steps, the same calls repeated at once, and
#: the Numba kernels inside the calls in the steps.
KEYS = ("in_step", "repeated", "kernels")

#: fastcnn's public functions that start no kernel.
NOT_KERNELS = {"set_num_threads", "get_num_threads"}


def _batches(args):
    from cnn.bench.train import _training_batches

    batches, _ = _training_batches(args.data, args.batch, args.warmup + 2 * args.steps)
    return batches[:args.warmup], batches[args.warmup:args.warmup + args.steps], batches[args.warmup + args.steps:]


def _small_copy(value):
    """A copy of the small arrays a call updates as state (1-D running statistics, (2, C) saved statistics), so
    that the repeat leaves them as the step left them; anything else as it is."""
    import numpy as np

    return value.copy() if isinstance(value, np.ndarray) and value.ndim <= 2 and value.size <= 4096 else value


def _wrap_kernels(fastcnn, state):
    """Replace every Numba kernel that fastcnn's modules call from Python by one that adds its time to the public
    call it runs in (``state['op']``; not during the repeats): the rest of a call is its Python and NumPy."""
    import importlib
    import pkgutil

    import numba

    def wrapped(kernel):
        def timed(*args, **kwargs):
            op = state["op"]
            if op is None:
                return kernel(*args, **kwargs)
            state["op"] = None  # a kernel calling another from Python is counted once
            start = time.perf_counter()
            try:
                return kernel(*args, **kwargs)
            finally:
                state["kernels"][op] += time.perf_counter() - start
                state["op"] = op
        return timed

    for info in pkgutil.iter_modules(fastcnn.__path__):
        module = importlib.import_module(f"fastcnn.{info.name}")
        for name, value in list(vars(module).items()):
            if isinstance(value, numba.core.registry.CPUDispatcher):
                setattr(module, name, wrapped(value))


def _wrap_fastcnn(fastcnn, state):
    """Replace every public fastcnn function by one that, while ``state['on']``, times the call and its repeat."""
    _wrap_kernels(fastcnn, state)
    for name in dir(fastcnn):
        function = getattr(fastcnn, name)
        if name.startswith("_") or name in NOT_KERNELS or not callable(function) or isinstance(function, type):
            continue

        def timed(*args, __f=function, __name=name, **kwargs):
            if not state["on"]:
                return __f(*args, **kwargs)
            outer, state["op"] = state["op"], __name
            start = time.perf_counter()
            try:
                result = __f(*args, **kwargs)
            finally:
                state["op"] = outer
            middle = time.perf_counter()
            __f(*(_small_copy(a) for a in args), **{k: _small_copy(v) for k, v in kwargs.items()})
            end = time.perf_counter()
            state["in_step"][__name] += middle - start
            state["repeated"][__name] += end - middle
            return result

        setattr(fastcnn, name, timed)


def child_fastcnn(args) -> dict:
    import fastcnn
    from cnn.bench.train import fastcnn_optimizer
    from cnn.model import Model
    from cnn.threads import set_threads
    from cnn.train import train_step
    from cnnbase import netspec

    set_threads(args.threads)
    warm, plain, wrapped = _batches(args)
    state = {"on": False, "op": None, **{key: collections.defaultdict(float) for key in KEYS}}
    _wrap_fastcnn(fastcnn, state)
    network = netspec.PRESETS[args.model]
    model = Model(network.layers, network.input_shape, engine="fastcnn", seed=0, dtype="float32")
    optimizer = fastcnn_optimizer("adam")
    step_number = iter(range(10 ** 9))

    def step(batch):
        train_step(model, optimizer, batch[0], batch[1], step=next(step_number), lr=optimizer.lr)

    for batch in warm:
        step(batch)
    times = []
    for batch in plain:
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    state["on"] = True
    for batch in wrapped:
        step(batch)
    per_step = {key: {name: 1e3 * seconds / len(wrapped) for name, seconds in state[key].items()}
                for key in KEYS}
    return {"step_ms": 1e3 * statistics.median(times), **per_step}


def child_torch(args) -> dict:
    import torch
    from cnn.bench.train import _time_torch

    warm, plain, _ = _batches(args)
    train_s, _ = _time_torch(torch, args.threads, warm, plain, args.model, "adam")
    return {"step_ms": 1e3 * statistics.median(train_s)}


def _run(kind: str, args, extra_env: dict) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", kind, "--model", args.model, "--batch",
               str(args.batch), "--threads", str(args.threads), "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--data", args.data]
    env = {**os.environ, **extra_env, "PYTHONPATH": ROOT}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20-28")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default="fashion-mnist-small")
    parser.add_argument("--child", choices=["fastcnn", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((child_fastcnn if args.child == "fastcnn" else child_torch)(args)))
        return

    columns = {"passive": {}, "spin": {"GOMP_SPINCOUNT": SPIN_COUNT}}
    results = collections.defaultdict(list)
    for _ in range(args.rounds):
        for column, env in columns.items():
            results[column].append(_run("fastcnn", args, env))
        results["torch"].append(_run("torch", args, {}))

    def median(column, key, name=None):
        values = [r[key] if name is None else r[key].get(name, 0.0) for r in results[column]]
        return statistics.median(values)

    torch_ms = median("torch", "step_ms")
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, float32, Adam; {args.steps} steps per figure, "
          f"medians of {args.rounds} rounds (fastcnn passive, fastcnn spin, torch in turn); ms per step")
    cells = [("passive", "in_step"), ("passive", "kernels"), ("passive", "repeated"), ("spin", "in_step"),
             ("spin", "repeated")]
    heads = ["passive: in step", "of it in kernels", "repeated at once", "spin: in step", "repeated at once"]
    names = sorted(results["passive"][0]["in_step"], key=lambda n: -results["passive"][0]["in_step"][n])
    print(f"{'fastcnn function':30s}" + "".join(f"{h:>19s}" for h in heads))
    sums = [0.0] * len(cells)
    for name in names:
        row = [median(column, key, name) for column, key in cells]
        sums = [a + b for a, b in zip(sums, row)]
        if max(row) >= 0.1:
            print(f"{name:30s}" + "".join(f"{v:19.2f}" for v in row))
    print(f"{'(all of them)':30s}" + "".join(f"{v:19.2f}" for v in sums))
    plain = {column: median(column, "step_ms") for column in columns}
    print(f"{'(the plain step)':30s}{plain['passive']:19.2f}{'':38s}{plain['spin']:19.2f}")
    print(f"\nPython and NumPy inside fastcnn's calls: {sums[0] - sums[1]:.2f} ms; outside them (cnn's layers, "
          f"the model, the optimizer's loop): {plain['passive'] - sums[0]:.2f} ms (passive, in step)")
    print(f"PyTorch's step: {torch_ms:.2f} ms; 1.5x faster than it: {torch_ms / 1.5:.2f} ms. The plain step: "
          f"{torch_ms / plain['passive']:.2f}x PyTorch (passive), {torch_ms / plain['spin']:.2f}x (spin). Bound, "
          f"spin and every call repeated at once: {sums[4]:.2f} ms = {torch_ms / sums[4]:.2f}x; its kernels "
          f"alone (less the passive calls' Python and NumPy): {sums[4] - (sums[0] - sums[1]):.2f} ms = "
          f"{torch_ms / (sums[4] - (sums[0] - sums[1])):.2f}x")

if __name__ == "__main__":
    main()
