"""``cnn bench ops``: forward and backward of single layers, fastcnn against PyTorch and refcnn.

The engines run interleaved in one process, at one thread count, float32, NCHW; each figure is a median of
repeated runs (:func:`cnn.bench.timing.interleaved_medians`). refcnn runs a scaled-down shape of each case
(its scalar loops take about a microsecond per MAC) and is compared per unit of work.

A case (:class:`ConvCase`, :class:`Conv1dCase`, :class:`MaxPoolCase`) knows its name, its FLOPs, its arrays and
the calls each engine makes; ``benchmarks/conv_bench.py`` and ``benchmarks/pool_bench.py`` time the same cases.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cnnbase.shapes import conv_macs, conv_output_size

from ..threads import default_threads, threads_for_all
from .machine import _header, environment
from .tables import _NA, _fmt, _table
from .timing import interleaved_medians

_TORCH_MISSING = "PyTorch is not installed: its columns are n/a (pip install torch==2.13.0)"


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------------------------------
# The benchmarked layers


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
class Conv1dCase:
    """A batch of N series (C_in, L) through a K-tap 1-D convolution to C_out channels, stride 1, padding
    ``'same'`` (the time-series networks' layer: Wang, Yan and Oates 2017 use k 8, 5, 3 with 128 filters).
    For an even K the extra padded cell goes at the end, in both engines (``cnnbase.shapes.same_padding``;
    PyTorch's ``padding='same'`` does the same)."""

    N: int
    C_in: int
    L: int
    C_out: int
    K: int

    op = "conv1d"

    @property
    def name(self) -> str:
        return f"{self.N}x{self.C_in}x{self.L}->{self.C_out} k{self.K} same"

    def flops(self, direction: str) -> int:
        """2 FLOPs per MAC ('same': L outputs per channel); the backward is two convolutions' worth."""
        forward = 2 * self.N * conv_macs(self.C_in, self.C_out, (self.K,), (self.L,))
        return forward * {"forward": 1, "backward": 2, "forward+backward": 3}[direction]

    def work(self, direction: str) -> int:
        return self.flops(direction)

    def scaled(self) -> "Conv1dCase":
        return Conv1dCase(1, min(self.C_in, 4), min(self.L, 32), min(self.C_out, 8), self.K)

    def arrays(self, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        return {
            "x": rng.standard_normal((self.N, self.C_in, self.L), dtype=np.float32),
            "weight": rng.standard_normal((self.C_out, self.C_in, self.K), dtype=np.float32) * 0.1,
            "bias": rng.standard_normal(self.C_out, dtype=np.float32),
            "grad_out": rng.standard_normal((self.N, self.C_out, self.L), dtype=np.float32),
        }

    def calls(self, engine, a: dict) -> dict:
        x, w, b, g = a["x"], a["weight"], a["bias"], a["grad_out"]
        return {
            "forward": lambda: engine.conv1d(x, w, b, padding="same"),
            "backward": lambda: engine.conv1d_backward(g, x, w, b, padding="same"),
        }

    def torch_calls(self, torch, a: dict) -> dict:
        F = torch.nn.functional
        x, w, b, g = (torch.from_numpy(a[k]) for k in ("x", "weight", "bias", "grad_out"))
        xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
        with warnings.catch_warnings():  # an even K: PyTorch warns that it pads a copy (its cost, timed)
            warnings.simplefilter("ignore", UserWarning)
            y = F.conv1d(xr, wr, br, padding="same")

        def forward():
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return F.conv1d(x, w, b, padding="same")

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


#: The layers of issue 3's benchmark and issue 14's 1-D ones, by family (``--ops conv,pool,conv1d``).
OPS_CASES = {
    "conv": (
        ConvCase(128, 1, 28, 28, 32),
        ConvCase(128, 32, 26, 26, 64),
        ConvCase(128, 3, 32, 32, 32, padding=1),
        ConvCase(16, 64, 56, 56, 64, padding=1),
    ),
    "pool": (MaxPoolCase(128, 64, 24, 24),),
    # issue 14: the 1-D layers of the time-series networks (128 filters, k 8 and 3, 'same')
    "conv1d": (Conv1dCase(64, 128, 512, 128, 8), Conv1dCase(64, 128, 512, 128, 3)),
}

DIRECTIONS = ("forward", "backward")

#: Exactly what each engine's time covers.
OPS_NOTES = (
    "fastcnn forward: fastcnn.conv2d(x, w, b, padding=p) (conv1d: fastcnn.conv1d(x, w, b, padding='same')) / "
    "fastcnn.max_pool2d(x, 2); "
    "backward: fastcnn.conv2d_backward(g, x, w, b, padding=p) -> (grad_x, grad_w, grad_b) / "
    "fastcnn.max_pool2d_backward(g, x, 2), which finds each window's maximum again from x.",
    "torch forward: F.conv2d / F.conv1d(padding='same') / F.max_pool2d under torch.no_grad(); backward: "
    "torch.autograd.grad(y, (x, w, b), g, "
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


def render_ops(result: dict) -> str:
    """The rows of :func:`measure_ops` as a table under the environment's header, then the notes."""
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

