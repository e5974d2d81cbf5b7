r"""Training steps of one process alternated between two variants of fastcnn (issue 16): a change's effect on the
step, measured where the host's drift cannot reach it.

On a shared VM the step's time drifts by 10% and more between runs of a minute (session 36 saw PyTorch's step
at 88 and at 115 ms within one session), so two processes run one after the other compare the host's moods as
much as the code. Here every other step runs the variant, in one process, on the same model and batches:

    PYTHONPATH=$PWD python benchmarks/step_ab.py --against REV --module fastcnn/norm.py    # a kernel module
    PYTHONPATH=$PWD python benchmarks/step_ab.py --without conv_backward_sum              # a fused op
    PYTHONPATH=$PWD python benchmarks/step_ab.py --against REV --module fastcnn/winograd4.py \
        --functions forward,backward                                                          # its wrappers

``--against REV --module PATH``: PATH's Numba kernels as they were at git revision REV (the file read with
``git show``, loaded as a module of its own beside the current one) stand in for the current module's
kernels of the same name on the "against" steps; the module's Python wrappers stay the current ones, so REV's
kernels must take the current wrappers' arguments (a change inside kernels, as prefetching); with ``--functions
f,g`` the module's Python functions f and g (and fastcnn.conv's registry entries holding them) are swapped
instead, for a change of the kernels' arguments. ``--without
NAME``: the "without" steps run with ``fastcnn.NAME`` hidden, so that cnn's layers, which ask the engine
whether it has a fused op, take the plain ops (a fused op that cnn takes only when the engine has it).

Prints the median step of each variant in ms, over ``--steps`` steps (half each), after warm-up steps of both;
``--rounds`` repeats that in fresh processes. The model is ``--model`` (resnet20-28: ResNet-20 on 1x28x28),
trained as ``cnn bench train`` trains it (cnn.Model, Adam, float32, the embedded Fashion-MNIST sample).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _module_at(rev: str, path: str, name: str):
    """The file ``path`` as it was at git revision ``rev``, loaded as module ``name`` (its package's)."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    package = path[:-3].replace("/", ".").rsplit(".", 1)[0]
    directory = tempfile.mkdtemp(prefix="step_ab_")
    atexit.register(shutil.rmtree, directory, True)
    file = os.path.join(directory, os.path.basename(path))
    with open(file, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(f"{package}.{name}", file)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _kernel_swap(rev: str, path: str, functions: list[str]):
    """(install_current, install_against): functions that put the current or REV's kernels into the module; with
    ``functions``, those Python functions instead (the module's wrappers, where REV's kernels take other
    arguments), also where fastcnn.conv's registry of algorithms holds them."""
    import numba.core.registry

    from fastcnn import conv

    current = importlib.import_module(path[:-3].replace("/", "."))
    registry = dict(conv.ALGORITHMS)  # REV's module registers its own functions when it is loaded
    against = _module_at(rev, path, "_step_ab_against")
    conv.ALGORITHMS.update(registry)
    names = functions or [name for name, value in vars(against).items()
                          if isinstance(value, numba.core.registry.CPUDispatcher) and hasattr(current, name)]
    if not names or not all(hasattr(current, n) and hasattr(against, n) for n in names):
        raise SystemExit(f"{path} at {rev} and now: no kernel in both, or not every one of {names} in both")
    mine = {name: getattr(current, name) for name in names}
    theirs = {name: getattr(against, name) for name in names}

    def install(chosen):
        for name, f in chosen.items():
            setattr(current, name, f)
        swap = {id(mine[name]): chosen[name] for name in names}
        for key, entry in registry.items():
            conv.ALGORITHMS[key] = tuple(swap.get(id(member), member) for member in entry)

    return (lambda: install(mine)), (lambda: install(theirs))


def _hide(name: str):
    import fastcnn

    op = getattr(fastcnn, name, None)
    if op is None:
        raise SystemExit(f"fastcnn has no {name!r}")
    return (lambda: setattr(fastcnn, name, op)), (lambda: delattr(fastcnn, name))


def _child(args) -> dict:
    import fastcnn  # noqa: F401  (loaded before a module of its package is swapped)
    from cnn.bench.train import _training_batches, fastcnn_optimizer
    from cnn.model import Model
    from cnn.threads import set_threads
    from cnn.train import train_step
    from cnnbase import netspec

    set_threads(args.threads)
    if args.without:
        label = f"without {args.without}"
        base, other = _hide(args.without)
    else:
        label = f"{args.module} at {args.against}"
        base, other = _kernel_swap(args.against, args.module, [f for f in (args.functions or "").split(",") if f])
    variants = {"current": base, label: other}
    batches, _ = _training_batches(args.data, args.batch, 30)
    net = netspec.PRESETS[args.model]
    model = Model(net.layers, net.input_shape, engine="fastcnn", seed=0, dtype="float32")
    opt = fastcnn_optimizer("adam")
    times: dict[str, list[float]] = {key: [] for key in variants}
    for i in range(args.warmup + args.steps):
        key = list(variants)[i % 2]
        variants[key]()
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        train_step(model, opt, x, y, step=i, lr=opt.lr)
        if i >= args.warmup:
            times[key].append(time.perf_counter() - start)
    base()
    return {key: 1e3 * statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git revision whose --module kernels run every other step")
    parser.add_argument("--module", help="a kernel module's path, e.g. fastcnn/norm.py")
    parser.add_argument("--functions", help="with --against: these Python functions of --module instead of its "
                        "kernels, e.g. forward,backward")
    parser.add_argument("--without", help="a fused op of fastcnn hidden every other step, e.g. conv_backward_sum")
    parser.add_argument("--model", default="resnet20-28")
    parser.add_argument("--data", default="fashion-mnist-small")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if bool(args.without) == bool(args.against and args.module):
        parser.error("give either --without NAME or both --against REV and --module PATH")
    if args.child:
        print(json.dumps(_child(args)))
        return
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, float32, Adam; {args.steps} steps a round, "
          "every other one the variant; median ms per step")
    for r in range(args.rounds):
        out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], check=True, capture_output=True,
                             text=True, env=dict(os.environ, PYTHONPATH=ROOT)).stdout
        medians = json.loads(out.strip().splitlines()[-1])
        (a, ta), (b, tb) = medians.items()
        print(f"round {r + 1}: {a} {ta:.2f}, {b} {tb:.2f} ({tb - ta:+.2f} ms)")


if __name__ == "__main__":
    main()
