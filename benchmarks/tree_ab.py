r"""Training steps of two whole source trees alternated in one process (issue 16): the effect of a change that
reaches across packages (the Python around the kernels), where the host's drift cannot reach it.

``benchmarks/step_ab.py`` swaps one kernel module; a change to the wrappers' Python touches cnn, cnnbase and
fastcnn at once, and processes run a minute apart on this shared VM differ by 10% (session 37), more than such a
change. Here the project's packages are imported twice, from this checkout and from git revision REV
(``git archive`` into a folder kept under the temporary directory, so that its Numba cache survives between
runs: the first run compiles REV's kernels, a few minutes), each tree builds its own model, optimizer and scratch
buffers, and the steps alternate between them on the same batches:

    PYTHONPATH=$PWD python benchmarks/tree_ab.py --against REV
    PYTHONPATH=$PWD python benchmarks/tree_ab.py --against REV --inference     # forward passes only

How two trees share one interpreter: a module's functions keep their own globals, so a model built while
tree A's modules were imported keeps calling tree A's code after tree B's are imported under the same names.
What is looked up by name at call time (an ``import`` inside a function) goes through ``sys.modules``, so
before each step the tree's own modules are put back there. Numba compiles a tree's kernels from its own
files, and both trees' kernels run on Numba's one thread pool (``--threads`` for both).

Prints each tree's median step in ms per round (fresh processes), and the difference.

Two trees are two sets of buffers and caches, so a difference under ~1 ms is not settled here: in session 39 the
global average pool's kernel on two threads read 0.8 to 1.2 ms slower than on one in four rounds of this script
(inference), and 0.16 ms slower with the two alternated pass by pass in one model (patch the one module
attribute between steps for that).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The project's top-level packages, imported once per tree.
PACKAGES = ("cnnbase", "refcnn", "fastcnn", "cnnconform", "cnn")


def _tree_at(rev: str) -> str:
    """A folder holding REV's files (``git archive``), kept between runs under the temporary directory."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    folder = os.path.join(tempfile.gettempdir(), "tree_ab", sha[:12])
    if not os.path.isdir(folder):
        partial = f"{folder}.partial{os.getpid()}"
        os.makedirs(partial)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", partial], input=archive, check=True)
        os.replace(partial, folder)  # whole or not at all: a run stopped half-way leaves no half tree behind
    return folder


def _in_tree(module, root: str) -> bool:
    path = getattr(module, "__file__", None) or ""
    return os.path.abspath(path).startswith(root + os.sep)


class _Tree:
    """One tree's modules, model, optimizer and step function."""

    def __init__(self, root: str, args) -> None:
        self.root = root
        sys.path.insert(0, root)
        try:
            importlib.invalidate_caches()
            for name in PACKAGES:
                importlib.import_module(name)
            bench = importlib.import_module("cnn.bench.train")
            model_mod = importlib.import_module("cnn.model")
            importlib.import_module("cnn.threads").set_threads(args.threads)
            net = importlib.import_module("cnnbase.netspec").PRESETS[args.model]
            self.model = model_mod.Model(net.layers, net.input_shape, engine="fastcnn", seed=0, dtype="float32")
            self.opt = bench.fastcnn_optimizer("adam")
            self.train_step = importlib.import_module("cnn.train").train_step
            self.batches = bench._training_batches(args.data, args.batch, 30)[0]
        finally:
            sys.path.remove(root)
        self.modules = {name: m for name, m in sys.modules.items()
                        if name.split(".")[0] in PACKAGES and _in_tree(m, root)}
        for name in self.modules:  # the next tree imports its own under these names
            del sys.modules[name]

    def install(self) -> None:
        sys.modules.update(self.modules)

    def step(self, i: int, inference: bool) -> float:
        x, y = self.batches[i % len(self.batches)]
        start = time.perf_counter()
        if inference:
            self.model.forward(x, training=False, backward=False)  # as ``cnn bench train`` times inference
        else:
            self.train_step(self.model, self.opt, x, y, step=i, lr=self.opt.lr)
        return time.perf_counter() - start


def _child(args) -> dict:
    trees = {"current": _Tree(ROOT, args), f"at {args.against}": _Tree(_tree_at(args.against), args)}
    times: dict[str, list[float]] = {key: [] for key in trees}
    for i in range(args.warmup + args.steps):
        key = list(trees)[i % 2]
        trees[key].install()
        elapsed = trees[key].step(i // 2, args.inference)
        if i >= args.warmup:
            times[key].append(elapsed)
    return {key: 1e3 * statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="the git revision whose tree runs every other step")
    parser.add_argument("--model", default="resnet20-28")
    parser.add_argument("--data", default="fashion-mnist-small")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inference", action="store_true", help="time forward passes (evaluation mode) instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    what = "forward passes" if args.inference else "training steps (Adam)"
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, float32, {what}; {args.steps} steps a round, "
          "every other one the other tree; median ms per step")
    for r in range(args.rounds):
        out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout
        medians = json.loads(out.strip().splitlines()[-1])
        (a, ta), (b, tb) = medians.items()
        print(f"round {r + 1}: {a} {ta:.2f}, {b} {tb:.2f} ({ta - tb:+.2f} ms)", flush=True)


if __name__ == "__main__":
    main()
