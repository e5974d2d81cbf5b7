"""Benchmarks: ``cnn bench ops``, ``cnn bench train`` and ``cnn bench startup``.

Speed is measured, not tested: these commands print what each engine does on this machine, and the test
suite only checks the structure of what they return. Every measurement is a function returning data
(a dict of ``environment``, ``rows`` and ``notes``); renderers turn it into a table, ``--json`` prints it
as is.

* ``ops``: forward and backward of fastcnn's convolution and max pooling against PyTorch (same threads,
  float32, NCHW) and against refcnn (on scaled-down shapes), the engines interleaved in one process,
  median of repeated runs.
* ``train``: training steps and inference of the seeds' Keras model (preset ``keras-mnist``) with fastcnn
  (:class:`cnn.Model`) and with an equivalent ``torch.nn`` model, each engine in its own child process so
  that its peak resident memory is its own.
* ``startup``: the cold compile time of fastcnn's kernels (a fresh, empty ``NUMBA_CACHE_DIR``) and the time
  from process start to the first result once that cache is warm.

Ratios always read "above 1: fastcnn is better": ``torch_time / fastcnn_time`` for ops, ``fastcnn images/s /
torch images/s`` for training. FLOPs count 2 per multiply-accumulate (``specs/counting.md``); a
convolution's backward (input and weight gradients) counts twice the forward's MACs.

Child processes run ``python -m cnn.bench --child SPEC`` (SPEC is JSON) and print one JSON line.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from cnnbase import netspec
from cnnbase.shapes import conv_macs, conv_output_size

from .threads import default_threads, set_threads, threads_for_all

__all__ = [
    "ConvCase", "MaxPoolCase", "OPS_CASES", "environment", "interleaved_medians", "ops_row", "measure_ops",
    "render_ops", "TorchTwinError", "torch_model", "measure_train", "train_summary",
    "render_train", "measure_startup", "render_startup", "bench",
]

#: The project root, put on the children's PYTHONPATH so that they import this checkout's packages.
_ROOT = Path(__file__).resolve().parent.parent
_NA = "n/a"
_TORCH_MISSING = "PyTorch is not installed: its columns are n/a (pip install torch==2.13.0)"


# --------------------------------------------------------------------------------------------------
# Environment and timing


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _installed_version(package: str) -> str | None:
    """The installed version without importing the package (importing torch costs seconds and memory)."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: int | None = None) -> dict:
    """What a reader needs to compare two benchmark runs: machine, versions and the settings that change speed.

    ``GLIBC_TUNABLES`` decides whether glibc keeps freed memory (issue 3 measured PyTorch's conv forward at
    8.4 ms with it and 20.7 ms without); ``OPENBLAS_CORETYPE`` pins OpenBLAS's kernels (AVX2 vs AVX-512).
    """
    return {
        "threads": threads,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": _installed_version("numba"),
        "torch": _installed_version("torch"),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "numba_threading_layer": numba_threading_layer(),
    }


def numba_threading_layer() -> str:
    """The layer Numba's parallel kernels run on in this process (launching a kernel costs 2-4 us on OpenMP
    or TBB and 170-490 us on 'workqueue', see fastcnn._runtime), or what will be tried before the first one."""
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        import numba

        return numba.threading_layer()
    return os.environ.get("NUMBA_THREADING_LAYER") or "not started (Numba tries tbb, omp, workqueue)"


def _header(env: dict) -> list[str]:
    return [
        f"threads {env['threads'] or '(default)'}   cpu {env['cpu']} ({env['cpu_count']} logical)   python {env['python']}   "
        f"numpy {env['numpy']}   numba {env['numba']}   torch {env['torch'] or _NA}",
        f"GLIBC_TUNABLES={env['GLIBC_TUNABLES'] or '(unset: glibc returns freed memory to the system)'}   "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or '(unset)'}   "
        f"numba threading layer: {env.get('numba_threading_layer') or _NA}",
    ]


def interleaved_medians(fns: dict, repeats: int, rounds: int = 3) -> dict:
    """Median seconds of each callable over ``repeats`` timed calls, taken in blocks that alternate.

    Each of ``rounds`` rounds runs every callable in turn as a block: one untimed warm-up call, then its
    share of the timed calls. Alternating the blocks lets noise from other processes hit every engine
    alike; timing blocks rather than single calls keeps one engine's thread pool out of the other's
    timings. Measured here with 2 threads: a fastcnn conv2d timed right after a PyTorch call took 63 ms,
    against 41 ms in a block of its own (PyTorch's OpenMP workers keep spinning after its call).
    """
    times = {name: [] for name in fns}
    per_round = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    for count in per_round:
        for name, fn in fns.items():
            fn()
            for _ in range(count):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------------------------------
# cnn bench ops: the benchmarked layers


@dataclass(frozen=True)
class ConvCase:
    """A batch of N samples (C_in, H, W) through a K x K convolution to C_out channels, stride 1."""

    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    K: int = 3
    padding: int = 0

    op = "conv2d"

    @property
    def name(self) -> str:
        return f"{self.N}x{self.C_in}x{self.H}x{self.W}->{self.C_out} k{self.K}" + (
            f" p{self.padding}" if self.padding else "")

    @property
    def out_hw(self) -> tuple[int, int]:
        p = self.padding
        return conv_output_size(self.H, self.K, 1, p, p), conv_output_size(self.W, self.K, 1, p, p)

    def flops(self, direction: str) -> int:
        """2 FLOPs per MAC; the backward (grad of input and weight) is two convolutions' worth."""
        forward = 2 * self.N * conv_macs(self.C_in, self.C_out, (self.K, self.K), self.out_hw)
        return forward * {"forward": 1, "backward": 2, "forward+backward": 3}[direction]

    def work(self, direction: str) -> int:
        """What refcnn's time is divided by to compare it with fastcnn's on another shape."""
        return self.flops(direction)

    def scaled(self) -> "ConvCase":
        """A shape refcnn's scalar loops finish in well under a second (about a microsecond per MAC)."""
        return ConvCase(1, min(self.C_in, 4), min(self.H, 12), min(self.W, 12), min(self.C_out, 8), self.K,
                        self.padding)

    def arrays(self, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        return {
            "x": rng.standard_normal((self.N, self.C_in, self.H, self.W), dtype=np.float32),
            "weight": rng.standard_normal((self.C_out, self.C_in, self.K, self.K), dtype=np.float32) * 0.1,
            "bias": rng.standard_normal(self.C_out, dtype=np.float32),
            "grad_out": rng.standard_normal((self.N, self.C_out) + self.out_hw, dtype=np.float32),
        }

    def calls(self, engine, a: dict) -> dict:
        """``{"forward": fn, "backward": fn}`` for fastcnn or refcnn (same names and arguments)."""
        x, w, b, g, p = a["x"], a["weight"], a["bias"], a["grad_out"], self.padding
        return {
            "forward": lambda: engine.conv2d(x, w, b, padding=p),
            "backward": lambda: engine.conv2d_backward(g, x, w, b, padding=p),
        }

    def torch_calls(self, torch, a: dict) -> dict:
        F, p = torch.nn.functional, self.padding
        x, w, b, g = (torch.from_numpy(a[k]) for k in ("x", "weight", "bias", "grad_out"))
        xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
        # The graph is built once, outside the timing; retain_graph lets each call run the backward alone.
        y = F.conv2d(xr, wr, br, padding=p)

        def forward():
            with torch.no_grad():
                return F.conv2d(x, w, b, padding=p)

        return {"forward": forward,
                "backward": lambda: torch.autograd.grad(y, (xr, wr, br), g, retain_graph=True)}


@dataclass(frozen=True)
class MaxPoolCase:
    """K x K max pooling, stride K, of a (N, C, H, W) batch."""

    N: int
    C: int
    H: int
    W: int
    K: int = 2

    op = "max_pool2d"

    @property
    def name(self) -> str:
        return f"{self.N}x{self.C}x{self.H}x{self.W} max{self.K}x{self.K}"

    def flops(self, direction: str) -> None:
        return None  # comparisons and copies: memory-bound, GFLOP/s would mean nothing

    def work(self, direction: str) -> int:
        return self.N * self.C * self.H * self.W * (2 if direction == "forward+backward" else 1)

    def scaled(self) -> "MaxPoolCase":
        return MaxPoolCase(1, min(self.C, 4), self.H, self.W, self.K)

    def arrays(self, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        out = (self.N, self.C, self.H // self.K, self.W // self.K)
        return {"x": rng.standard_normal((self.N, self.C, self.H, self.W), dtype=np.float32),
                "grad_out": rng.standard_normal(out, dtype=np.float32)}

    def calls(self, engine, a: dict) -> dict:
        x, g, k = a["x"], a["grad_out"], self.K
        return {"forward": lambda: engine.max_pool2d(x, k),
                "backward": lambda: engine.max_pool2d_backward(g, x, k)}

    def torch_calls(self, torch, a: dict) -> dict:
        F, k = torch.nn.functional, self.K
        x, g = torch.from_numpy(a["x"]), torch.from_numpy(a["grad_out"])
        xr = x.clone().requires_grad_()
        y = F.max_pool2d(xr, k)

        def forward():
            with torch.no_grad():
                return F.max_pool2d(x, k)

        return {"forward": forward, "backward": lambda: torch.autograd.grad(y, (xr,), g, retain_graph=True)}


#: The layers of issue 3's benchmark, by family (``--ops conv,pool``).
OPS_CASES = {
    "conv": (
        ConvCase(128, 1, 28, 28, 32),
        ConvCase(128, 32, 26, 26, 64),
        ConvCase(128, 3, 32, 32, 32, padding=1),
        ConvCase(16, 64, 56, 56, 64, padding=1),
    ),
    "pool": (MaxPoolCase(128, 64, 24, 24),),
}

DIRECTIONS = ("forward", "backward")

#: Exactly what each engine's time covers.
OPS_NOTES = (
    "fastcnn forward: fastcnn.conv2d(x, w, b, padding=p) / fastcnn.max_pool2d(x, 2); "
    "backward: fastcnn.conv2d_backward(g, x, w, b, padding=p) -> (grad_x, grad_w, grad_b) / "
    "fastcnn.max_pool2d_backward(g, x, 2), which finds each window's maximum again from x.",
    "torch forward: F.conv2d / F.max_pool2d under torch.no_grad(); backward: torch.autograd.grad(y, (x, w, b), g, "
    "retain_graph=True) / torch.autograd.grad(y, (x,), g, retain_graph=True) on a graph built once "
    "(the forward is not timed; pooling's backward uses the indices saved by its forward).",
    "refcnn: the same calls as fastcnn on a scaled-down shape (column 'refcnn shape'), float32 in, float64 "
    "computed; 'fast/ref' is refcnn's time per unit of work (FLOP for conv, input element for pooling) over "
    "fastcnn's, i.e. how many times faster fastcnn is.",
    "ratio torch/fast = torch time / fastcnn time: above 1, fastcnn is faster. GFLOP/s: 2 FLOPs per MAC, "
    "backward = 2x the forward's MACs (bias gradient not counted). Times: median, float32, NCHW.",
    "forward+backward: the sum of the two medians above, what a training step spends on the layer (torch's "
    "forward timed under no_grad, so its sum is a little optimistic for torch; for pooling it includes the "
    "forward in which torch saves the indices its backward reads).",
)


def select_cases(families: str | None) -> list:
    """The cases of the comma-separated families (all when None); a ValueError names unknown ones."""
    names = list(OPS_CASES) if not families else [f.strip() for f in families.split(",") if f.strip()]
    unknown = [n for n in names if n not in OPS_CASES]
    if unknown:
        raise ValueError(f"unknown op family {', '.join(unknown)}; choose among {', '.join(OPS_CASES)}")
    return [case for name in names for case in OPS_CASES[name]]


def ops_row(case, direction: str, seconds: dict, ref_case=None) -> dict:
    """One table row from median seconds by engine (``fastcnn``, and ``torch``/``refcnn`` when timed)."""
    fast = seconds["fastcnn"]
    flops = case.flops(direction)
    torch_s, ref_s = seconds.get("torch"), seconds.get("refcnn")

    def gflops(c, s):
        f = c.flops(direction)
        return None if f is None or s is None else f / s / 1e9

    row = {
        "op": case.op, "case": case.name, "direction": direction, "flops": flops,
        "fastcnn_ms": fast * 1e3, "fastcnn_gflops": gflops(case, fast),
        "torch_ms": None if torch_s is None else torch_s * 1e3, "torch_gflops": gflops(case, torch_s),
        "torch_over_fastcnn": None if torch_s is None else torch_s / fast,
        "refcnn_case": None, "refcnn_ms_per_sample": None, "refcnn_gflops": None, "fastcnn_over_refcnn": None,
    }
    if ref_case is not None and ref_s is not None:
        per_unit_ref = ref_s / ref_case.work(direction)
        per_unit_fast = fast / case.work(direction)
        row.update(refcnn_case=ref_case.name, refcnn_ms_per_sample=ref_s * 1e3 / ref_case.N,
                   refcnn_gflops=gflops(ref_case, ref_s), fastcnn_over_refcnn=per_unit_ref / per_unit_fast)
    return row


def _time_case(case, repeats: int, torch, with_refcnn: bool) -> list[dict]:
    import fastcnn

    engines = {"fastcnn": case.calls(fastcnn, case.arrays())}
    if torch is not None:
        engines["torch"] = case.torch_calls(torch, case.arrays())
    ref_case = case.scaled() if with_refcnn else None
    if ref_case is not None:
        import refcnn

        engines["refcnn"] = ref_case.calls(refcnn, ref_case.arrays())
    rows, medians = [], []
    for direction in DIRECTIONS:
        seconds = interleaved_medians({name: calls[direction] for name, calls in engines.items()}, repeats)
        rows.append(ops_row(case, direction, seconds, ref_case))
        medians.append(seconds)
    # a training step runs both: the sum of the two medians (see OPS_NOTES)
    both = {name: sum(m[name] for m in medians) for name in engines}
    rows.append(ops_row(case, "forward+backward", both, ref_case))
    return rows


def measure_ops(threads: int | None = None, repeats: int = 10, families: str | None = None,
                with_refcnn: bool = True, cases=None) -> dict:
    """Time every case of ``families`` (or the given ``cases``); returns environment, rows and notes."""
    cases = select_cases(families) if cases is None else list(cases)
    threads = default_threads() if threads is None else threads
    torch = _import_torch()
    notes = list(OPS_NOTES) if torch is not None else [_TORCH_MISSING] + list(OPS_NOTES)
    with threads_for_all(threads, torch):
        rows = [row for case in cases for row in _time_case(case, repeats, torch, with_refcnn)]
    env = environment(threads)
    env["repeats"] = repeats
    return {"environment": env, "rows": rows, "notes": notes}


# --------------------------------------------------------------------------------------------------
# Tables


def _fmt(value, spec: str) -> str:
    return _NA if value is None else format(value, spec)


def _table(headers: list[str], lines: list[list[str]], align: str) -> str:
    """Columns sized to their widest cell; ``align`` has one letter per column, 'l' or 'r'."""
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(headers)]

    def render(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)).rstrip()

    return "\n".join([render(headers), render(["-" * w for w in widths])] + [render(line) for line in lines])


def render_ops(result: dict) -> str:
    headers = ["layer", "pass", "fastcnn ms", "GFLOP/s", "torch ms", "GFLOP/s", "torch/fast",
               "refcnn shape", "ref ms/sample", "ref GFLOP/s", "fast/ref"]
    lines = [[
        r["case"], r["direction"], _fmt(r["fastcnn_ms"], ".2f"), _fmt(r["fastcnn_gflops"], ".1f"),
        _fmt(r["torch_ms"], ".2f"), _fmt(r["torch_gflops"], ".1f"), _fmt(r["torch_over_fastcnn"], ".2f"),
        r["refcnn_case"] or _NA, _fmt(r["refcnn_ms_per_sample"], ".1f"), _fmt(r["refcnn_gflops"], ".2g"),
        _fmt(r["fastcnn_over_refcnn"], ",.0f"),
    ] for r in result["rows"]]
    env = result["environment"]
    head = ["cnn bench ops: median of %d runs" % env["repeats"]] + _header(env)
    return "\n".join(head + ["", _table(headers, lines, "llrrrrrlrrr"), ""] + [f"* {n}" for n in result["notes"]])


# --------------------------------------------------------------------------------------------------
# cnn bench train: the two engines' models and steps


class TorchTwinError(ValueError):
    """A layer the torch twin of a netspec model does not translate."""


def _torch_padding(config) -> int | tuple:
    if config.padding == "valid":
        return 0
    if isinstance(config.padding, tuple) and all(isinstance(p, int) for p in config.padding):
        return config.padding
    raise TorchTwinError(f"{config.type}: padding {config.padding!r} has no torch twin here; use 'valid' or ints")


def _torch_activation(torch, name, last: bool):
    if name is None or (name == "softmax" and last):  # logits: the loss applies the softmax, as Model does
        return []
    if name == "relu":
        return [torch.nn.ReLU()]
    raise TorchTwinError(f"activation {name!r} has no torch twin here; use relu")


def torch_model(torch, configs, input_shape):
    """The ``torch.nn.Sequential`` twin of a netspec layer list (Conv2D, MaxPool2D, Dropout, Flatten, Dense
    with relu; a final softmax is left to the loss, as :class:`cnn.Model` does)."""
    nn = torch.nn
    shape, modules = tuple(input_shape), []
    for index, config in enumerate(configs):
        last = index == len(configs) - 1
        if config.type == "Conv2D":
            modules.append(nn.Conv2d(shape[0], config.filters, config.kernel_size, config.strides,
                                     _torch_padding(config), config.dilation, config.groups, config.use_bias))
            modules += _torch_activation(torch, config.activation, last)
        elif config.type == "MaxPool2D":
            modules.append(nn.MaxPool2d(config.pool_size, config.strides, ceil_mode=config.ceil_mode))
        elif config.type == "Dropout":
            modules.append(nn.Dropout(config.rate))
        elif config.type == "Flatten":
            modules.append(nn.Flatten())
        elif config.type == "Dense":
            modules.append(nn.Linear(shape[0], config.units, config.use_bias))
            modules += _torch_activation(torch, config.activation, last)
        else:
            raise TorchTwinError(f"layer type {config.type} has no torch twin in cnn bench train")
        shape = netspec.summarize([config], shape).rows[-1].output_shape
    return nn.Sequential(*modules)


def _torch_train_step(torch, model, optimizer, xb, yb) -> tuple[float, int]:
    """The same step in PyTorch; ``.item()`` waits for the result, as ``float(loss)`` does for fastcnn."""
    optimizer.zero_grad()
    logits = model(xb)
    loss = torch.nn.functional.cross_entropy(logits, yb)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == yb).sum().item())


PRESET = "keras-mnist"


def _training_batches(data_name: str, batch_size: int, count: int) -> tuple[list, str]:
    """``count`` batches of (float32 images, int64 labels) from the training set, in order, wrapping around
    a set smaller than ``count * batch_size``; only these images are converted to float."""
    from . import data

    ds = data.load_dataset(data_name)
    n = len(ds.y_train)
    out = []
    for b in range(count):
        index = np.arange(b * batch_size, (b + 1) * batch_size) % n
        out.append((data.to_float(ds.x_train[index]), ds.y_train[index].astype(np.int64)))
    return out, ds.describe()


def _import_engine(engine: str):
    """What a child imports for its engine; the idle child imports exactly this and stops."""
    if engine == "torch":
        import torch

        return torch
    import fastcnn

    return fastcnn


def _timed_loop(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def _time_torch(torch, threads: int, warm: list, timed: list) -> tuple[float, float]:
    """Seconds of the timed training steps and of the timed inference passes, PyTorch."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = netspec.PRESETS[PRESET]
    model = torch_model(torch, network.layers, network.input_shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    warm, timed = ([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in part] for part in (warm, timed))

    def step(batch):
        return _torch_train_step(torch, model, optimizer, *batch)

    model.train()
    _timed_loop(step, warm)
    train_s = _timed_loop(step, timed)
    model.eval()
    with torch.inference_mode():
        _timed_loop(lambda b: model(b[0]), warm[:1])
        infer_s = _timed_loop(lambda b: model(b[0]), timed)
    return train_s, infer_s


def _time_fastcnn(threads: int, warm: list, timed: list) -> tuple[float, float]:
    """Seconds of the timed training steps and of the timed inference passes, fastcnn through cnn.Model."""
    from .model import Model
    from .optimizers import Optimizer
    from .train import train_step

    set_threads(threads)
    network = netspec.PRESETS[PRESET]
    model = Model(network.layers, network.input_shape, engine="fastcnn", seed=0, dtype="float32")
    optimizer = Optimizer("adam", 1e-3)
    steps = iter(range(len(warm) + len(timed)))  # the global step seeds dropout, as in fit

    def step(batch):
        return train_step(model, optimizer, batch[0], batch[1], step=next(steps), lr=optimizer.lr)

    _timed_loop(step, warm)
    train_s = _timed_loop(step, timed)
    _timed_loop(lambda b: model.forward(b[0], training=False), warm[:1])
    infer_s = _timed_loop(lambda b: model.forward(b[0], training=False), timed)
    return train_s, infer_s


def _child_train(spec: dict) -> dict:
    """Warm-up, then timed training steps, then timed inference; runs in the engine's own process."""
    engine_name, threads = spec["engine"], spec["threads"]
    try:
        module = _import_engine(engine_name)
    except ImportError as error:
        return {"engine": engine_name, "error": f"cannot import {engine_name}: {error}"}
    batches, described = _training_batches(spec["data"], spec["batch_size"], spec["warmup"] + spec["batches"])
    warm, timed = batches[:spec["warmup"]], batches[spec["warmup"]:]
    if engine_name == "torch":
        train_s, infer_s = _time_torch(module, threads, warm, timed)
    else:
        train_s, infer_s = _time_fastcnn(threads, warm, timed)
    images = spec["batches"] * spec["batch_size"]
    return {"engine": engine_name, "version": getattr(module, "__version__", ""), "data": described,
            "train_images_per_s": images / train_s, "inference_images_per_s": images / infer_s,
            "peak_rss_mib": _peak_rss_mib(), "numba_threading_layer": numba_threading_layer()}


def _child_idle(spec: dict) -> dict:
    try:
        _import_engine(spec["engine"])
    except ImportError as error:
        return {"engine": spec["engine"], "error": f"cannot import {spec['engine']}: {error}"}
    return {"engine": spec["engine"], "peak_rss_mib": _peak_rss_mib()}


def _child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra or {})
    return env


def _run_child(spec: dict, env: dict | None = None) -> dict:
    """Run ``python -m cnn.bench --child SPEC``; its last stdout line is its JSON result. A child that
    fails gives ``{"error": <the end of its stderr>}`` instead of stopping the benchmark."""
    command = [sys.executable, "-m", "cnn.bench", "--child", json.dumps(spec)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env or _child_env(), cwd=str(_ROOT))
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"child exited with status {done.returncode}: {done.stderr.strip()[-600:]}", "wall_s": wall}
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def train_summary(rows: list[dict]) -> dict:
    """Ratios of the fastcnn row over the torch row (None when either is missing or failed):
    images/s (above 1: fastcnn faster) and peak memory (below 1: fastcnn uses less)."""
    by_engine = {r["engine"]: r for r in rows if not r.get("error")}
    fast, ref = by_engine.get("fastcnn"), by_engine.get("torch")

    def ratio(key):
        if fast is None or ref is None or fast.get(key) is None or ref.get(key) is None:
            return None
        return fast[key] / ref[key]

    return {"train_fastcnn_over_torch": ratio("train_images_per_s"),
            "inference_fastcnn_over_torch": ratio("inference_images_per_s"),
            "peak_rss_fastcnn_over_torch": ratio("peak_rss_mib")}


def measure_train(batches: int = 50, batch_size: int = 128, threads: int | None = None, data: str = "default",
                  warmup: int = 3) -> dict:
    """Train and infer with each engine in its own child process; rows of images/s and peak memory."""
    threads = default_threads() if threads is None else threads
    rows, notes = [], []
    for engine in ("fastcnn", "torch"):
        spec = {"kind": "train", "engine": engine, "threads": threads, "batches": batches,
                "batch_size": batch_size, "warmup": warmup, "data": data}
        idle = _run_child({"kind": "idle", "engine": engine})
        row = _run_child(spec)
        row.setdefault("engine", engine)
        row["idle_rss_mib"] = idle.get("peak_rss_mib")
        if row.get("error"):
            notes.append(f"{engine}: {row['error']}")
        rows.append(row)
    data_line = next((r["data"] for r in rows if r.get("data")), data)
    notes += [
        f"model: preset {PRESET} ({netspec.to_spec(netspec.PRESETS[PRESET].layers)}), Adam lr 1e-3, cross-entropy, "
        f"float32, batch {batch_size}; data: {data_line}.",
        f"train: {batches} steps timed after {warmup} warm-up steps; one step = forward, loss, backward, "
        "optimizer update, accuracy count (fastcnn: cnn.Model as cnn.train.fit runs it; torch: an equivalent "
        "nn.Sequential, torch.optim.Adam). Inference: forward only, eval mode (torch.inference_mode), same batches.",
        "memory: peak resident set (ru_maxrss) of each engine's own child process; 'idle MiB' is an interpreter "
        "with the same imports that does nothing. Ratios fastcnn/torch: above 1 faster (images/s), below 1 "
        "smaller (memory).",
    ]
    env = environment(threads)
    env.update(batches=batches, batch_size=batch_size, warmup=warmup, data=data)
    env["numba_threading_layer"] = next((r["numba_threading_layer"] for r in rows if r.get("engine") == "fastcnn"
                                         and "numba_threading_layer" in r), env["numba_threading_layer"])
    return {"environment": env, "rows": rows, "ratios": train_summary(rows), "notes": notes}


def render_train(result: dict) -> str:
    headers = ["engine", "version", "train images/s", "inference images/s", "peak MiB", "idle MiB"]
    lines = [[r["engine"], r.get("version") or _NA, _fmt(r.get("train_images_per_s"), ",.0f"),
              _fmt(r.get("inference_images_per_s"), ",.0f"), _fmt(r.get("peak_rss_mib"), ",.0f"),
              _fmt(r.get("idle_rss_mib"), ",.0f")] for r in result["rows"]]
    q = result["ratios"]
    lines.append(["fastcnn/torch", "", _fmt(q["train_fastcnn_over_torch"], ".2f"),
                  _fmt(q["inference_fastcnn_over_torch"], ".2f"), _fmt(q["peak_rss_fastcnn_over_torch"], ".2f"), ""])
    head = ["cnn bench train"] + _header(result["environment"])
    return "\n".join(head + ["", _table(headers, lines, "llrrrr"), ""] + [f"* {n}" for n in result["notes"]])


# --------------------------------------------------------------------------------------------------
# cnn bench startup


#: The first result of a fresh process: what a user's script does before anything else.
FIRST_RESULT_CODE = ("import numpy, fastcnn; "
                     "fastcnn.conv2d(numpy.ones((1, 1, 8, 8), numpy.float32), numpy.ones((4, 1, 3, 3), numpy.float32))")
IMPORT_CODE = "import fastcnn"
BASELINE_CODE = "import numpy"
#: The floor of any program that calls one cached Numba function: Numba's import and its first-call set-up
#: (typing and lowering registries, which import SciPy's BLAS wrappers when SciPy is installed).
NUMBA_FLOOR_SCRIPT = """import numba, numpy
@numba.njit(cache=True)
def total(a):
    return a.sum()
total(numpy.ones(3))
"""


def _child_compile_all(spec: dict) -> dict:
    """Call every fastcnn op that has conformance cases, in float32 and float64, and time it."""
    start = time.perf_counter()
    import fastcnn
    from cnnconform.cases import load_cases, run_case

    imported = time.perf_counter()
    only = set(spec.get("ops") or ())
    cases = [c for c in load_cases() if hasattr(fastcnn, c.op) and (not only or c.op in only)]
    for dtype in (np.float32, np.float64):
        def convert(a, dtype=dtype):
            return a.astype(dtype) if a.dtype.kind == "f" else a

        for case in cases:
            run_case(case, getattr(fastcnn, case.op), convert_input=convert)
    every_op = {op for names in fastcnn.OPS.values() for op in names}
    return {"import_s": imported - start, "calls_s": time.perf_counter() - imported, "cases": len(cases),
            "ops_called": len({c.op for c in cases}),
            "ops_without_case": sorted(every_op - {c.op for c in cases}) if not only else []}


def _spawn_seconds(args: list[str], env: dict) -> float:
    """Seconds from spawning ``python *args`` to its exit; a failure raises with the child's message."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=str(_ROOT))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)!r} failed: {done.stderr.strip()[-600:]}")
    return seconds


def _cache_files(folder: str) -> dict:
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return {"index_files": sum(p.suffix == ".nbi" for p in files), "compiled_files": sum(p.suffix == ".nbc" for p in files)}


def measure_startup(warm_runs: int = 5, ops=None, first_result_code: str = FIRST_RESULT_CODE) -> dict:
    """Cold compile of every kernel into a fresh ``NUMBA_CACHE_DIR``, then warm-cache start-up times
    (median of ``warm_runs`` spawns each). ``ops`` limits the cold run to some ops and ``first_result_code``
    replaces the first call (both for quick tests)."""
    cache = tempfile.mkdtemp(prefix="cnn-bench-numba-cache-")
    try:
        env = _child_env({"NUMBA_CACHE_DIR": cache})
        cold = _run_child({"kind": "compile_all", "ops": list(ops or [])}, env)
        if cold.get("error"):
            raise RuntimeError(f"the cold compile run failed: {cold['error']}")
        cached = _cache_files(cache)

        def median_spawn(*args):
            return statistics.median(_spawn_seconds(list(args), env) for _ in range(warm_runs))

        floor_script = Path(cache) / "numba_floor.py"
        floor_script.write_text(NUMBA_FLOOR_SCRIPT)
        _spawn_seconds([str(floor_script)], env)  # compiles and caches its one function

        rows = [
            {"measure": "cold: every kernel compiled, spawn to exit", "seconds": cold["wall_s"],
             "detail": f"{cold['cases']} conformance cases x (float32, float64) over {cold['ops_called']} ops; "
                       f"import {cold['import_s']:.2f} s, calls {cold['calls_s']:.2f} s; "
                       f"{cached['compiled_files']} compiled kernel files cached"},
            {"measure": "warm: first result, spawn to exit", "seconds": median_spawn("-c", first_result_code),
             "detail": f"python -c \"{first_result_code}\", median of {warm_runs}"},
            {"measure": "warm: import fastcnn, spawn to exit", "seconds": median_spawn("-c", IMPORT_CODE),
             "detail": f"python -c \"{IMPORT_CODE}\", median of {warm_runs}"},
            {"measure": "context: import numpy, spawn to exit", "seconds": median_spawn("-c", BASELINE_CODE),
             "detail": f"python -c \"{BASELINE_CODE}\", median of {warm_runs}"},
            {"measure": "context: one cached Numba function", "seconds": median_spawn(str(floor_script)),
             "detail": "a script that imports numba and numpy and calls one cached @njit function (a.sum()), "
                       f"warm, median of {warm_runs}: the floor of any Numba program"},
        ]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    notes = [f"NUMBA_CACHE_DIR: a fresh empty temporary folder for the cold run, reused (now warm) for the "
             f"warm runs, then deleted."]
    if cold["ops_without_case"]:
        notes.append("ops with no conformance case, so not compiled in the cold run: "
                     + ", ".join(cold["ops_without_case"]))
    env_info = environment(None)
    env_info.update(warm_runs=warm_runs, cache=cached)
    return {"environment": env_info, "rows": rows, "notes": notes}


def render_startup(result: dict) -> str:
    lines = [[r["measure"], f"{r['seconds']:.2f}", r["detail"]] for r in result["rows"]]
    table = _table(["measure", "seconds", "what"], lines, "lrl")
    head = ["cnn bench startup"] + _header(result["environment"])
    return "\n".join(head + ["", table, ""] + [f"* {n}" for n in result["notes"]])


# --------------------------------------------------------------------------------------------------
# The click group (cli.py adds it to `cnn`)


def _echo(result: dict, as_json: bool, renderer) -> None:
    click.echo(json.dumps(result, indent=1) if as_json else renderer(result))


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads > default_threads():
        raise click.BadParameter(f"at most NUMBA_NUM_THREADS={default_threads()} (the count fastcnn started "
                                 f"with); received {threads}", param_hint="--threads")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Measure the engines' speed and memory on this machine (a benchmark, not a test)."""


@bench.command()
@click.option("--threads", type=click.IntRange(min=1), help="Threads of every engine (default: all of fastcnn's).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(min=1), help="Timed runs per engine.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--ops", "families", metavar="FAMILY[,FAMILY]", help=f"Only these ({', '.join(OPS_CASES)}).")
@click.option("--refcnn/--no-refcnn", "with_refcnn", default=True, show_default=True,
              help="Also time refcnn on scaled-down shapes.")
def ops(threads, repeats, as_json, families, with_refcnn):
    """Forward and backward of fastcnn against PyTorch and refcnn: ms, GFLOP/s and ratios."""
    _check_threads(threads)
    try:
        select_cases(families)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ops") from None
    _echo(measure_ops(threads, repeats, families, with_refcnn), as_json, render_ops)


@bench.command()
@click.option("--batches", default=50, show_default=True, type=click.IntRange(min=1), help="Timed batches.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(min=1), help="Untimed batches first.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads of both engines (default: all of fastcnn's).")
@click.option("--data", "data_name", default="default", show_default=True,
              help="Data set name or path (default: the full Fashion-MNIST when installed, else the sample).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def train(batches, batch_size, warmup, threads, data_name, as_json):
    """Training and inference images/s and peak memory of the keras-mnist model, fastcnn against PyTorch."""
    _check_threads(threads)
    _echo(measure_train(batches, batch_size, threads, data_name, warmup), as_json, render_train)


@bench.command()
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(min=1), help="Warm spawns per measure.")
def startup(as_json, runs):
    """Cold compile time of fastcnn's kernels and warm start-up time to the first result."""
    _echo(measure_startup(runs), as_json, render_startup)


# --------------------------------------------------------------------------------------------------
# Child entry: python -m cnn.bench --child SPEC

_CHILDREN = {"train": _child_train, "idle": _child_idle, "compile_all": _child_compile_all}


def _child_main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "--child":
        raise SystemExit("usage: python -m cnn.bench --child SPEC (used by cnn bench; run `cnn bench` instead)")
    spec = json.loads(argv[1])
    print(json.dumps(_CHILDREN[spec["kind"]](spec)), flush=True)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
