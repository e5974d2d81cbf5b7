"""Write specs/cases/pool.json: the conformance cases of the pooling family (specs/pool.md).

Run from anywhere: ``python specs/cases/generators/pool.py``. Needs PyTorch (2.13.0 was used) and NumPy;
never imports the engines under test.

Expected values come from two independent places:

* "hand": worked out by hand, the working in the case's ``doc`` and in specs/pool.md. The generator
  also asks PyTorch for the same numbers where PyTorch can express the case, and stops if they disagree.
* "torch 2.13.0": computed by PyTorch in float64 (``torch.nn.functional``). Where this spec's padding is
  not symmetric (per side, 'same'), the input is padded explicitly with ``F.pad`` first: ``-inf`` for max
  pooling (such cells never win), zeros for average pooling with count_include_pad=True (pre-padded cells
  then count as input, which is the same divisor as long as no ceil-mode window runs past the padding).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from _common import array, case, torch_source, write_cases

TORCH = torch_source()
CASES: list[dict] = []


# ---------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------


# A JSON array value from a nested list, NumPy array or tensor; ``dtype="int64"`` for indices. Whole floats
# are written as ints, so the hand-typed maps read as typed; without a "dtype" key they are still float64.
arr = partial(array, whole_as_int=True)


def t(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float64)


def distinct(shape, seed: int) -> np.ndarray:
    """Distinct multiples of 0.5 in a random order: no ties, exact in binary."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size // 2) * 0.5).reshape(shape)


def add(name, op, doc, source, args, kwargs=None, *, expected=None, raises=None, match=None):
    """Append a case to CASES, the order of the file."""
    CASES.append(case(name, op, doc, source, args, expected, kwargs=kwargs, raises=raises, match=match))


def same(got, want, what):
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    if not np.array_equal(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), equal_nan=True):
        raise SystemExit(f"{what}: PyTorch gives {got.tolist()}, the hand-worked value is {np.asarray(want).tolist()}")


def torch_grad(fn, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """d(sum(grad_out * fn(x)))/dx by PyTorch autograd."""
    xt = t(x).requires_grad_(True)
    out = fn(xt)
    out.backward(t(grad_out))
    return xt.grad.numpy()


def forward_and_backward(name, op, doc, x, kwargs, fn, *, indices=False, backward=True):
    """One forward case and (unless ``backward`` is False) one backward case (``<op>_backward``), by PyTorch."""
    out = fn(t(x))
    expected = arr(out[0]) if indices else arr(out)
    if indices:
        expected = [expected, arr(out[1], "int64")]
    add(f"{op}/{name}", op, doc, TORCH, [arr(x)], kwargs, expected=expected)
    if not backward:
        return
    first = (lambda v: fn(v)[0]) if indices else fn
    shape = tuple(first(t(x)).shape)
    grad_out = distinct(shape, 100) + 0.25  # no zeros, so a lost gradient shows
    add(f"{op}_backward/{name}", f"{op}_backward", f"gradient of {op}/{name}", TORCH,
        [arr(grad_out), arr(x)], kwargs, expected=arr(torch_grad(first, x, grad_out)))


# ---------------------------------------------------------------------------------------------------------
# Hand-worked cases
# ---------------------------------------------------------------------------------------------------------


def seed_cases():
    x = [[1, 3, 2, 1],
         [4, 2, 0, 1],
         [5, 1, 3, 8],
         [2, 6, 7, 4]]
    want = [[4, 2], [6, 8]]
    same(F.max_pool2d(t([[x]]), 2, 2), [[want]], "seed")
    add("max_pool2d/seed-2x2-keeps-25-percent", "max_pool2d",
        "4x4 map, 2x2 windows, stride 2: max of each quadrant [[1,3],[4,2]]->4, [[2,1],[0,1]]->2, "
        "[[5,1],[2,6]]->6, [[3,8],[7,4]]->8; 4 of 16 activations (25%) kept",
        "hand", [arr([[x]])], {"kernel_size": 2, "stride": 2}, expected=arr([[want]]))
    add("max_pool2d/seed-return-indices", "max_pool2d",
        "the seed map: the maxima 4, 2, 6, 8 sit at flat indices h*W+w = 1*4+0=4, 0*4+2=2, 3*4+1=13, 2*4+3=11",
        "hand", [arr([[x]])], {"kernel_size": 2, "return_indices": True},
        expected=[arr([[want]]), arr([[[[4, 2], [13, 11]]]], "int64")])
    grad_x = [[0, 0, 20, 0],
              [10, 0, 0, 0],
              [0, 0, 0, 40],
              [0, 30, 0, 0]]
    same(torch_grad(lambda v: F.max_pool2d(v, 2), np.array([[x]], float), np.array([[[[10, 20], [30, 40]]]], float)),
         [[grad_x]], "seed backward")
    add("max_pool2d_backward/seed-2x2-routes-to-maxima", "max_pool2d_backward",
        "grad_out [[10,20],[30,40]] on the seed map goes to the four maxima, every other cell gets 0",
        "hand", [arr([[[[10, 20], [30, 40]]]]), arr([[x]])], {"kernel_size": 2, "stride": 2},
        expected=arr([[grad_x]]))


def tie_cases():
    x = [[[[2, 2], [2, 1]]]]
    same(F.max_pool2d(t(x), 2, return_indices=True)[1], [[[[0]]]], "tie index")
    add("max_pool2d/tie-first-max-in-row-major-order", "max_pool2d",
        "three cells tie at 2: the first in row-major order (h=0, w=0, flat index 0) wins",
        "hand", [arr(x)], {"kernel_size": 2, "return_indices": True},
        expected=[arr([[[[2]]]]), arr([[[[0]]]], "int64")])
    add("max_pool2d_backward/tie-gradient-to-first-max", "max_pool2d_backward",
        "with a three-way tie the whole gradient 5 goes to the first maximum (0, 0), none is split",
        "hand", [arr([[[[5]]]]), arr(x)], {"kernel_size": 2}, expected=arr([[[[5, 0], [0, 0]]]]))
    x1 = [[[1, 3, 3, 0]]]
    grad = torch_grad(lambda v: F.max_pool1d(v, 2, 1), np.array(x1, float), np.ones((1, 1, 3)))
    same(grad, [[[0, 2, 1, 0]]], "tie 1d")
    add("max_pool1d_backward/tie-overlapping-windows-add", "max_pool1d_backward",
        "x = [1,3,3,0], k=2, s=1: windows [1,3]->3 at 1, [3,3]->first 3 at 1, [3,0]->3 at 2; grad 1 each: "
        "[0, 2, 1, 0]", "hand", [arr([[[1, 1, 1]]]), arr(x1)], {"kernel_size": 2, "stride": 1},
        expected=arr([[[0, 2, 1, 0]]]))


def nan_cases():
    nan = float("nan")
    x = [[[[1, nan, 3], [nan, 0, 2], [5, 6, 7]]]]
    out, idx = F.max_pool2d(t(x), 2, 1, return_indices=True)
    same(out, [[[[nan, nan], [nan, 7]]]], "nan values")
    same(idx, [[[[3, 1], [3, 8]]]], "nan indices")
    add("max_pool2d/nan-propagates-at-last-nan", "max_pool2d",
        "a NaN in a window makes the maximum NaN; its index is the window's last NaN in row-major order "
        "(window (0,0) holds NaN at 1 and 3 -> 3), PyTorch's rule",
        "hand", [arr(x)], {"kernel_size": 2, "stride": 1, "return_indices": True},
        expected=[arr([[[[nan, nan], [nan, 7]]]]), arr([[[[3, 1], [3, 8]]]], "int64")])
    grad = torch_grad(lambda v: F.max_pool2d(v, 2, 1), np.array(x, float), np.ones((1, 1, 2, 2)))
    same(grad, [[[[0, 1, 0], [2, 0, 0], [0, 0, 1]]]], "nan grad")
    add("max_pool2d_backward/nan-gradient-to-last-nan", "max_pool2d_backward",
        "gradients follow the reported indices: cells 3 (two windows), 1 and 8",
        "hand", [arr(np.ones((1, 1, 2, 2))), arr(x)], {"kernel_size": 2, "stride": 1},
        expected=arr([[[[0, 1, 0], [2, 0, 0], [0, 0, 1]]]]))


def ceil_and_padding_hand_cases():
    a = [[[1, 2, 3, 4, 5, 6]]]
    same(F.avg_pool1d(t(a), 3, 2, 1, ceil_mode=True), [[[1, 3, 5, 3]]], "ceil divisor")
    add("avg_pool1d/ceil-mode-divisor-excludes-overhang", "avg_pool1d",
        "x=[1..6], k=3, s=2, p=1, ceil: windows [-1,0,1]->(0+1+2)/3=1, [1..3]->9/3=3, [3..5]->15/3=5, "
        "[5,6,7]: 7 lies past the end padding [-1, 7) so the divisor is 2: (6+0)/2=3",
        "hand", [arr(a)], {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        expected=arr([[[1, 3, 5, 3]]]))
    b = [[[1, 2, 3, 4, 5]]]
    same(F.avg_pool1d(t(b), 2, 2, 1, ceil_mode=True), [[[0.5, 2.5, 4.5]]], "ceil drop")
    add("avg_pool1d/ceil-mode-drops-window-starting-in-padding", "avg_pool1d",
        "x=[1..5], k=2, s=2, p=1, ceil: ceil(5/2)+1=4 windows would start at -1,1,3,5; 5 is end padding, so "
        "3 windows: (0+1)/2, (2+3)/2, (4+5)/2", "hand", [arr(b)],
        {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, expected=arr([[[0.5, 2.5, 4.5]]]))
    same(F.max_pool1d(t(b), 2, 2, ceil_mode=True), [[[2, 4, 5]]], "ceil partial")
    add("max_pool1d/ceil-mode-keeps-partial-window", "max_pool1d",
        "x=[1..5], k=2, s=2: floor gives 2 windows, ceil adds a third one reading cells 4 and 5 (5 lies past the "
        "input): max 5",
        "hand", [arr(b)], {"kernel_size": 2, "ceil_mode": True}, expected=arr([[[2, 4, 5]]]))
    add("max_pool1d/padding-exceeds-half-kernel", "max_pool1d",
        "x=[3,1,2], k=3, p=2 (PyTorch refuses p > k/2, ONNX allows it): windows start at -2..2 and each "
        "touches the input: max(3)=3, max(3,1)=3, max(3,1,2)=3, max(1,2)=2, max(2)=2",
        "hand", [arr([[[3, 1, 2]]])], {"kernel_size": 3, "stride": 1, "padding": 2},
        expected=arr([[[3, 3, 3, 2, 2]]]))
    add("avg_pool2d/empty-window-is-zero-with-count-include-pad", "avg_pool2d",
        "2x2 ones, k=2, s=2, p=2: windows start at -2, 0, 2 per axis; all but the centre cover only padding "
        "and give 0 (divisor 4), the centre averages the four ones",
        "hand", [arr(np.ones((1, 1, 2, 2)))], {"kernel_size": 2, "padding": 2},
        expected=arr([[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]]))
    x = [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]
    add("avg_pool2d/per-side-padding-count-include-pad-false", "avg_pool2d",
        "3x3 map 1..9, k=2, s=2, padding ((1,0),(0,1)) (one row on top, one column right): windows "
        "rows {-1,0}x cols {0,1} -> (1+2)/2, rows {-1,0} x cols {2,3} -> 3/1, rows {1,2} x cols {0,1} -> "
        "(4+5+7+8)/4, rows {1,2} x cols {2,3} -> (6+9)/2",
        "hand", [arr(x)], {"kernel_size": 2, "padding": [[1, 0], [0, 1]], "count_include_pad": False},
        expected=arr([[[[1.5, 3], [6, 7.5]]]]))


def global_hand_cases():
    x = [[[[1, 5], [5, 2]], [[-1, -3], [-2, -4]]]]
    same(F.adaptive_max_pool2d(t(x), 1, return_indices=True)[1], [[[[1]], [[0]]]], "global max index")
    add("global_max_pool2d/two-channels-tie", "global_max_pool2d",
        "channel 0: max 5 (tied at (0,1) and (1,0)), channel 1: max -1", "hand", [arr(x)],
        expected=arr([[[[5]], [[-1]]]]))
    add("global_max_pool2d_backward/tie-first-max", "global_max_pool2d_backward",
        "channel 0's gradient 2 goes to the first 5, at (0,1); channel 1's gradient 3 to -1 at (0,0)",
        "hand", [arr([[[[2]], [[3]]]]), arr(x)], expected=arr([[[[0, 2], [0, 0]], [[3, 0], [0, 0]]]]))
    add("global_avg_pool1d/mean-over-length", "global_avg_pool1d",
        "mean of [1, 2, 6] is 3", "hand", [arr([[[1, 2, 6]]])], expected=arr([[[3]]]))


# ---------------------------------------------------------------------------------------------------------
# PyTorch cases
# ---------------------------------------------------------------------------------------------------------


def torch_max_cases():
    x = distinct((2, 2, 5, 5), 1)
    forward_and_backward("batch-2-channels-2-k2-s1", "max_pool2d",
                         "N=2, C=2, 5x5, 2x2 windows overlapping (stride 1): gradients of shared maxima add",
                         x, {"kernel_size": 2, "stride": 1}, lambda v: F.max_pool2d(v, 2, 1))
    x = -np.abs(distinct((1, 1, 4, 5), 2)) - 1
    forward_and_backward("padding-1-all-negative", "max_pool2d",
                         "all inputs negative, padding 1: padded cells never win (they act as -inf, not 0)",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1}, lambda v: F.max_pool2d(v, 3, 2, 1))
    x = distinct((1, 2, 5, 5), 3)
    forward_and_backward("ceil-mode-padding-1", "max_pool2d", "5x5, k=2, s=2, p=1, ceil_mode: 3x3 (4th window dropped)",
                         x, {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
                         lambda v: F.max_pool2d(v, 2, 2, 1, ceil_mode=True))
    x = distinct((1, 1, 6, 6), 4)
    forward_and_backward("dilation-2-padding-1", "max_pool2d", "6x6, k=3, s=1, d=2, p=1: windows of extent 5",
                         x, {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2},
                         lambda v: F.max_pool2d(v, 3, 1, 1, 2))
    x = distinct((1, 1, 4, 7), 5)
    forward_and_backward("rectangular-kernel-and-stride", "max_pool2d",
                         "4x7, kernel (2, 3), stride (1, 2), padding (0, 1), return_indices",
                         x, {"kernel_size": [2, 3], "stride": [1, 2], "padding": [0, 1], "return_indices": True},
                         lambda v: F.max_pool2d(v, (2, 3), (1, 2), (0, 1), return_indices=True), indices=True)
    x = distinct((1, 1, 4, 4), 6)
    inf = -math.inf
    forward_and_backward("per-side-padding", "max_pool2d",
                         "4x4, k=2, s=2, padding ((1,0),(0,1)): one row on top, one column on the right",
                         x, {"kernel_size": 2, "padding": [[1, 0], [0, 1]]},
                         lambda v: F.max_pool2d(F.pad(v, (0, 1, 1, 0), value=inf), 2, 2))
    forward_and_backward("same-padding-k2-s1", "max_pool2d",
                         "4x4, k=2, s=1, 'same': total padding 1 per axis, at the end: (0, 1); output 4x4",
                         x, {"kernel_size": 2, "stride": 1, "padding": "same"},
                         lambda v: F.max_pool2d(F.pad(v, (0, 1, 0, 1), value=inf), 2, 1))
    forward_and_backward("same-lower-padding-k2-s1", "max_pool2d",
                         "4x4, k=2, s=1, 'same_lower': the odd cell goes first: (1, 0); output 4x4",
                         x, {"kernel_size": 2, "stride": 1, "padding": "same_lower"},
                         lambda v: F.max_pool2d(F.pad(v, (1, 0, 1, 0), value=inf), 2, 1), backward=False)
    x = distinct((2, 1, 7), 7)
    forward_and_backward("k3-s2-p1-indices", "max_pool1d", "N=2, L=7, k=3, s=2, p=1, return_indices",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True},
                         lambda v: F.max_pool1d(v, 3, 2, 1, return_indices=True), indices=True)
    forward_and_backward("dilation-2-stride-3-ceil", "max_pool1d",
                         "L=7, k=2, s=3, d=2, ceil_mode: the last window reads cells 6 and 8, "
                         "8 lies past the input",
                         x, {"kernel_size": 2, "stride": 3, "dilation": 2, "ceil_mode": True},
                         lambda v: F.max_pool1d(v, 2, 3, 0, 2, ceil_mode=True), backward=False)


def torch_avg_cases():
    x = distinct((1, 2, 5, 5), 11)
    forward_and_backward("padding-1-count-include-pad", "avg_pool2d",
                         "5x5, k=3, s=2, p=1, count_include_pad=True: border windows divide by 9",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1}, lambda v: F.avg_pool2d(v, 3, 2, 1))
    forward_and_backward("padding-1-exclude-pad", "avg_pool2d",
                         "as padding-1-count-include-pad with count_include_pad=False: border windows divide by 4 or 6",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
                         lambda v: F.avg_pool2d(v, 3, 2, 1, count_include_pad=False))
    x = distinct((1, 1, 6, 5), 12)
    forward_and_backward("ceil-mode-padding-1", "avg_pool2d",
                         "6x5, k=3, s=2, p=1, ceil_mode: the last row of windows runs past the end padding; "
                         "those cells are not counted in the divisor",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                         lambda v: F.avg_pool2d(v, 3, 2, 1, ceil_mode=True))
    forward_and_backward("ceil-mode-exclude-pad", "avg_pool2d",
                         "as ceil-mode-padding-1 with count_include_pad=False",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                             "count_include_pad": False},
                         lambda v: F.avg_pool2d(v, 3, 2, 1, ceil_mode=True, count_include_pad=False), backward=False)
    x = distinct((1, 1, 4, 4), 13)
    forward_and_backward("divisor-override", "avg_pool2d", "4x4, k=2, s=1, p=1, divisor_override=3",
                         x, {"kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3},
                         lambda v: F.avg_pool2d(v, 2, 1, 1, divisor_override=3))
    forward_and_backward("same-padding-k3-s2", "avg_pool2d",
                         "4x4, k=3, s=2, 'same': out 2, total padding 1 per axis, at the end (0, 1); "
                         "padded cells count (count_include_pad=True)",
                         x, {"kernel_size": 3, "stride": 2, "padding": "same"},
                         lambda v: F.avg_pool2d(F.pad(v, (0, 1, 0, 1)), 3, 2))
    forward_and_backward("same-lower-padding-k3-s2", "avg_pool2d",
                         "as same-padding-k3-s2 with 'same_lower': padding (1, 0)",
                         x, {"kernel_size": 3, "stride": 2, "padding": "same_lower"},
                         lambda v: F.avg_pool2d(F.pad(v, (1, 0, 1, 0)), 3, 2), backward=False)
    x = distinct((2, 2, 6), 14)
    forward_and_backward("k3-s2-p1", "avg_pool1d", "N=2, C=2, L=6, k=3, s=2, p=1",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1}, lambda v: F.avg_pool1d(v, 3, 2, 1))
    forward_and_backward("k3-s2-p1-exclude-pad", "avg_pool1d", "as k3-s2-p1 with count_include_pad=False",
                         x, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
                         lambda v: F.avg_pool1d(v, 3, 2, 1, count_include_pad=False), backward=False)


def torch_global_cases():
    x = distinct((2, 3, 3, 4), 21)
    forward_and_backward("batch-2-channels-3", "global_avg_pool2d", "mean over each 3x4 plane",
                         x, None, lambda v: F.adaptive_avg_pool2d(v, 1))
    forward_and_backward("batch-2-channels-3", "global_max_pool2d", "max over each 3x4 plane",
                         x, None, lambda v: F.adaptive_max_pool2d(v, 1))
    x = distinct((2, 2, 5), 22)
    forward_and_backward("batch-2-channels-2", "global_avg_pool1d", "mean over each length-5 row",
                         x, None, lambda v: F.adaptive_avg_pool1d(v, 1))
    forward_and_backward("batch-2-channels-2", "global_max_pool1d", "max over each length-5 row",
                         x, None, lambda v: F.adaptive_max_pool1d(v, 1))


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def error_cases():
    x4 = arr(distinct((1, 1, 4, 4), 31))
    add("max_pool2d/error-kernel-size-0", "max_pool2d", "kernel_size must be positive", "hand",
        [x4, 0], raises="ValueError", match="kernel_size")
    add("max_pool2d/error-stride-0", "max_pool2d", "stride must be positive", "hand",
        [x4, 2], {"stride": 0}, raises="ValueError", match="stride")
    add("avg_pool2d/error-int-dtype", "avg_pool2d", "an int64 array is not a float array", "hand",
        [arr(np.arange(16).reshape(1, 1, 4, 4), "int64"), 2], raises="TypeError", match="dtype")
    add("max_pool2d/error-wrong-ndim", "max_pool2d", "a 3-D array is not (N, C, H, W)", "hand",
        [arr(distinct((1, 4, 4), 32)), 2], raises="ValueError", match="4 dimensions")
    add("max_pool1d/error-wrong-ndim", "max_pool1d", "a 4-D array is not (N, C, L)", "hand",
        [x4, 2], raises="ValueError", match="3 dimensions")
    add("max_pool2d/error-kernel-larger-than-padded-input", "max_pool2d",
        "a 5x5 window on a 4x4 map without padding: output size 0 is an error", "hand",
        [x4, 5], raises="ValueError", match="less than 1")
    add("max_pool2d/error-empty-window", "max_pool2d",
        "4x4, k=2, s=2, p=3: window 0 reads rows -3, -2 only; there is nothing to take the maximum of",
        "hand", [x4, 2], {"padding": 3}, raises="ValueError", match="covers only padding")
    add("max_pool1d/error-empty-window-dilation", "max_pool1d",
        "L=2, k=2, d=3, p=2: window 0 reads -2 and 1 (touches), window 1 reads -1 and 2: both outside [0, 2)",
        "hand", [arr([[[1, 2]]]), 2], {"stride": 1, "padding": 2, "dilation": 3},
        raises="ValueError", match="covers only padding")
    add("avg_pool2d/error-empty-window-exclude-pad", "avg_pool2d",
        "count_include_pad=False with a window of padding only would divide by zero", "hand",
        [arr(np.ones((1, 1, 2, 2))), 2], {"padding": 2, "count_include_pad": False},
        raises="ValueError", match="covers only padding")
    add("avg_pool2d/error-divisor-override-0", "avg_pool2d", "divisor_override must be a positive int", "hand",
        [x4, 2], {"divisor_override": 0}, raises="ValueError", match="divisor_override")
    add("max_pool2d/error-padding-string", "max_pool2d", "'full' is not a padding amount", "hand",
        [x4, 2], {"padding": "full"}, raises="ValueError", match="padding")
    add("max_pool2d_backward/error-grad-out-shape", "max_pool2d_backward",
        "grad_out must have the pooled output's shape (1, 1, 2, 2)", "hand",
        [arr(np.ones((1, 1, 3, 3))), x4, 2], raises="ValueError", match="grad_out")


def main():
    seed_cases()
    tie_cases()
    nan_cases()
    ceil_and_padding_hand_cases()
    global_hand_cases()
    torch_max_cases()
    torch_avg_cases()
    torch_global_cases()
    error_cases()
    write_cases("pool", CASES)


if __name__ == "__main__":
    main()
