"""Pooling, fast: max and average pooling, the global pools, 1-D and 2-D (``specs/pool.md``).

Same names, arguments, defaults and docstrings as :mod:`refcnn.pool`, and the same checks: every wrapper
calls :func:`cnnbase.pool.pool_geometry` (or :func:`cnnbase.pool.whole_map`) before any kernel runs, so both
engines raise identical errors. As in refcnn, everything is written once for 2-D: a 1-D map is a map of
height 1 and a global pool is a window covering the whole map. The kernels see ``x`` as ``P = N*C``
independent planes ``(P, H, W)``.

Parallelism: ``prange`` over planes. Every plane's output (and, in the backward, its gradient) is written by
exactly one iteration, so there are no races and no reductions across threads: the results are
bit-identical whatever the thread count.

Semantics kept from refcnn:

* max: the window is scanned row-major (``kh`` outer, ``kw`` inner) over its cells inside the input; a
  value replaces the best when it is strictly greater (the first maximum wins a tie) or NaN (a window with
  NaN yields NaN, won by its last NaN);
* max backward: the argmax is recomputed from ``x`` (the API passes ``x``, not indices) and each window's
  gradient is added to its winner, windows in row-major order;
* avg: sum of the cells inside the input, divided by ``divisor_override``, or with ``count_include_pad`` by
  the number of window cells inside the padded extent (a ceil-mode overhang does not count), or else by the
  number of cells inside the input. A window on padding only averages to 0 (it is an error for max pooling
  and for ``count_include_pad=False``, raised by the geometry check).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from cnnbase.checks import FORWARD, Verdicts, array_key, invalid
from cnnbase.pool import PoolGeometry, avg_pool_geometry_of, fit_geometry, max_pool_geometry_of, whole_map

from . import _runtime
from .activations import relu as _relu_of, relu_backward as _relu_backward_of
from ._runtime import FASTMATH, KERNEL_FLAGS

__all__ = [
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool1d",
    "global_avg_pool1d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool1d",
    "global_max_pool1d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
]


# ---------------------------------------------------------------------------------------------------------
# Window arithmetic shared by the kernels (inlined by Numba)
# ---------------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **KERNEL_FLAGS)
def _taps(o, stride, pad_begin, kernel, dilation, n):
    """Window ``o`` along one axis: its first cell ``start = o*s - p_b`` and the range ``[j_lo, j_hi)`` of
    taps ``j`` whose cell ``start + j*d`` lies inside ``[0, n)`` (empty when ``j_hi <= j_lo``)."""
    start = o * stride - pad_begin
    j_lo = 0
    if start < 0:
        j_lo = (-start + dilation - 1) // dilation  # first tap at or after cell 0
    j_hi = 0
    if start <= n - 1:
        j_hi = min(kernel, (n - 1 - start) // dilation + 1)  # one past the last tap before cell n
    return start, j_lo, j_hi


@numba.njit(inline="always", **KERNEL_FLAGS)
def _padded_count(start, kernel, pad_begin, pad_end, n):
    """Cells of a window (dilation 1) inside the padded extent ``[-p_b, n + p_e)``: the count_include_pad
    divisor along one axis; cells past the end padding (a ceil-mode overhang) do not count."""
    return max(0, min(start + kernel, n + pad_end) - max(start, -pad_begin))


# ---------------------------------------------------------------------------------------------------------
# Max pooling kernels
# ---------------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **KERNEL_FLAGS)
def _window_argmax(plane, rh0, rh1, start_h, DH, cw0, cw1, start_w, DW):
    """The winner of one window: ``(value, ih, iw)``, first maximum in row-major order, last NaN if any.

    The window's taps inside the input are ``kh in [rh0, rh1)``, ``kw in [cw0, cw1)``; there is at least one
    (the geometry check refuses windows on padding only)."""
    bh = start_h + rh0 * DH
    bw = start_w + cw0 * DW
    best = plane[bh, bw]
    for kh in range(rh0, rh1):
        ih = start_h + kh * DH
        for kw in range(cw0, cw1):
            iw = start_w + kw * DW
            v = plane[ih, iw]
            # strict `>`: ties keep the first; `v != v`: NaN always takes over. `|`, not `or`: no short-circuit
            # branch, so the test compiles to a select the loop vectoriser can use (`or` made it 4x slower).
            if (v > best) | (v != v):
                best = v
                bh = ih
                bw = iw
    return best, bh, bw


@numba.njit(inline="always", **KERNEL_FLAGS)
def _window_max(plane, rh0, rh1, start_h, DH, cw0, cw1, start_w, DW):
    """The value of :func:`_window_argmax` without tracking where it is."""
    best = plane[start_h + rh0 * DH, start_w + cw0 * DW]
    for kh in range(rh0, rh1):
        ih = start_h + kh * DH
        for kw in range(cw0, cw1):
            v = plane[ih, start_w + kw * DW]
            if (v > best) | (v != v):
                best = v
    return best


@numba.njit(inline="always", **KERNEL_FLAGS)
def _takes_over(v, best):
    """The scan rule of :func:`_window_argmax`: ``v`` replaces ``best`` when strictly greater or NaN."""
    return (v > best) | (v != v)


@numba.njit(inline="always", **KERNEL_FLAGS)
def _max2x2(a, b, c, d):
    """The winner's value of a 2x2 window scanned a, b, c, d (:func:`_takes_over`), as selects."""
    best = b if _takes_over(b, a) else a
    best = c if _takes_over(c, best) else best
    return d if _takes_over(d, best) else best


@numba.njit(inline="always", **KERNEL_FLAGS)
def _position2x2(a, b, c, d):
    """The winner's position (0..3) in a 2x2 window scanned a, b, c, d, in integer arithmetic.

    The scan rule read backwards from the winner's value ``m``: when ``m`` is a number, the winner is the
    first cell equal to it (a later cell takes over only when strictly greater; -0.0 == 0.0 both ways);
    when ``m`` is NaN, it is the last NaN (every NaN takes over). Written without a branch: the obvious
    ``if``-chain left the loop's scalar part with data-dependent branches, which mispredicted on every
    other window (measured 2.7 times slower on 128x64x24x24)."""
    m = _max2x2(a, b, c, d)
    ea, eb, ec = np.int32(a == m), np.int32(b == m), np.int32(c == m)
    first_equal = (1 - ea) * (1 + (1 - eb) * (1 + (1 - ec)))
    nb, nc, nd = np.int32(b != b), np.int32(c != c), np.int32(d != d)
    last_nan = nd * 3 + (1 - nd) * (nc * 2 + (1 - nc) * nb)
    m_nan = np.int32(m != m)
    return m_nan * last_nan + (1 - m_nan) * first_equal


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_2x2_kernel(x, y):
    """``y`` of the most common max pooling: 2x2 windows, stride 2, no padding, no dilation, floor mode.

    The same rule as the general kernel with the window loops written out, so the compiler can vectorise
    along a row of outputs; this is the case the benchmark of the issue times."""
    P, H_out, W_out = y.shape
    for p in prange(P):
        for oh in range(H_out):
            ih = 2 * oh
            for ow in range(W_out):
                iw = 2 * ow
                y[p, oh, ow] = _max2x2(x[p, ih, iw], x[p, ih, iw + 1], x[p, ih + 1, iw], x[p, ih + 1, iw + 1])


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_kernel(x, KH, KW, SH, SW, DH, DW, PH, PW, y):
    """``y[p, oh, ow]`` = the maximum of window (oh, ow) of plane p (general geometry, no indices)."""
    P, H, W = x.shape
    _, H_out, W_out = y.shape
    for p in prange(P):
        plane = x[p]
        for oh in range(H_out):
            start_h, rh0, rh1 = _taps(oh, SH, PH, KH, DH, H)
            for ow in range(W_out):
                start_w, cw0, cw1 = _taps(ow, SW, PW, KW, DW, W)
                y[p, oh, ow] = _window_max(plane, rh0, rh1, start_h, DH, cw0, cw1, start_w, DW)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_indices_kernel(x, KH, KW, SH, SW, DH, DW, PH, PW, y, indices):
    """As :func:`_max_pool_kernel`, also storing each winner's flat index ``ih*W + iw`` in its plane."""
    P, H, W = x.shape
    _, H_out, W_out = y.shape
    for p in prange(P):
        plane = x[p]
        for oh in range(H_out):
            start_h, rh0, rh1 = _taps(oh, SH, PH, KH, DH, H)
            for ow in range(W_out):
                start_w, cw0, cw1 = _taps(ow, SW, PW, KW, DW, W)
                best, bh, bw = _window_argmax(plane, rh0, rh1, start_h, DH, cw0, cw1, start_w, DW)
                y[p, oh, ow] = best
                indices[p, oh, ow] = bh * W + bw


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_backward_kernel(grad_out, x, KH, KW, SH, SW, DH, DW, PH, PW, grad_x):
    """``grad_x[p]``: each window's gradient added to its winner, recomputed from ``x``.

    One iteration owns plane p of ``grad_x`` entirely (zeroes it, then scatters into it), so no two threads
    touch one element; the plane stays in cache between the two passes."""
    P, H, W = x.shape
    _, H_out, W_out = grad_out.shape
    for p in prange(P):
        plane = x[p]
        target = grad_x[p]
        target[:, :] = 0.0
        for oh in range(H_out):
            start_h, rh0, rh1 = _taps(oh, SH, PH, KH, DH, H)
            for ow in range(W_out):
                start_w, cw0, cw1 = _taps(ow, SW, PW, KW, DW, W)
                _, bh, bw = _window_argmax(plane, rh0, rh1, start_h, DH, cw0, cw1, start_w, DW)
                target[bh, bw] += grad_out[p, oh, ow]


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_2x2_backward_kernel(grad_out, x, grad_x):
    """:func:`_max_pool_backward_kernel` for 2x2 windows, stride 2, no padding, no dilation, floor mode.

    The windows do not overlap, so each cell is written once: the winner gets the window's gradient, the
    other three cells 0, and a last odd row or column (in no window) 0. Two passes per pair of rows: the
    winners (0..3) of a row of windows into a small buffer, then both input rows written left to right.
    Writing the four cells of each window in the first pass instead ran 2-3 times slower (strided stores
    behind data-dependent selects do not vectorise)."""
    P, H, W = x.shape
    _, H_out, W_out = grad_out.shape
    zero = grad_x.dtype.type(0)
    for p in prange(P):
        winners = np.empty(W_out, dtype=np.int32)
        for oh in range(H_out):
            ih = 2 * oh
            for ow in range(W_out):
                iw = 2 * ow
                winners[ow] = _position2x2(x[p, ih, iw], x[p, ih, iw + 1], x[p, ih + 1, iw], x[p, ih + 1, iw + 1])
            for iw in range(2 * W_out):
                ow = iw >> 1
                g = grad_out[p, oh, ow]
                column = iw & 1  # 0: left cell of its window, 1: right cell
                grad_x[p, ih, iw] = g if winners[ow] == column else zero
                grad_x[p, ih + 1, iw] = g if winners[ow] == 2 + column else zero
            for iw in range(2 * W_out, W):
                grad_x[p, ih, iw] = zero
                grad_x[p, ih + 1, iw] = zero
        for ih in range(2 * H_out, H):
            for iw in range(W):
                grad_x[p, ih, iw] = zero


# ---------------------------------------------------------------------------------------------------------
# ReLU fused into max pooling (relu_pool_forward / relu_pool_backward)
# ---------------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **KERNEL_FLAGS)
def _relu(v, zero):
    """fastcnn.relu's rule on one value: ``0 if v <= 0 else v`` (NaN fails ``<=`` and passes through)."""
    return zero if v <= zero else v


@numba.njit(inline="always", **KERNEL_FLAGS)
def _relu_passes(v, zero, one):
    """fastcnn.relu_backward's factor on one value: ``0 if v <= 0 else 1`` (1 at NaN, as there)."""
    return zero if v <= zero else one


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _relu_max_pool_2x2_kernel(x, y):
    """``y = max_pool(relu(x))`` for plain 2x2 windows, as ``relu(max_pool(x))``: ReLU is non-decreasing, so
    the window's largest value after ReLU is ReLU of its largest value before (a NaN wins both ways and stays
    NaN; a window of values <= 0 gives 0 both ways). One ReLU per window instead of four, and the activation
    ``relu(x)`` is never written."""
    P, H_out, W_out = y.shape
    zero = y.dtype.type(0)
    for p in prange(P):
        for oh in range(H_out):
            ih = 2 * oh
            for ow in range(W_out):
                iw = 2 * ow
                best = _max2x2(x[p, ih, iw], x[p, ih, iw + 1], x[p, ih + 1, iw], x[p, ih + 1, iw + 1])
                y[p, oh, ow] = _relu(best, zero)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _relu_max_pool_2x2_backward_kernel(grad_out, x, grad_x):
    """``grad_x = relu_backward(max_pool_backward(grad_out, relu(x)), x)`` for plain 2x2 windows, in one pass.

    The winner of each window is found among the ReLU'd values, as the composition finds it (a window of
    values <= 0 is all zeros after ReLU: its first cell wins), and each cell's value is the composition's:
    the window's gradient at the winner, 0 elsewhere, times ReLU's factor at that cell. Same two-pass layout
    per pair of rows as :func:`_max_pool_2x2_backward_kernel`."""
    P, H, W = x.shape
    _, H_out, W_out = grad_out.shape
    zero = grad_x.dtype.type(0)
    one = grad_x.dtype.type(1)
    for p in prange(P):
        winners = np.empty(W_out, dtype=np.int32)
        for oh in range(H_out):
            ih = 2 * oh
            for ow in range(W_out):
                iw = 2 * ow
                winners[ow] = _position2x2(_relu(x[p, ih, iw], zero), _relu(x[p, ih, iw + 1], zero),
                                           _relu(x[p, ih + 1, iw], zero), _relu(x[p, ih + 1, iw + 1], zero))
            for iw in range(2 * W_out):
                ow = iw >> 1
                g = grad_out[p, oh, ow]
                column = iw & 1  # 0: left cell of its window, 1: right cell
                top = g if winners[ow] == column else zero
                bottom = g if winners[ow] == 2 + column else zero
                grad_x[p, ih, iw] = top * _relu_passes(x[p, ih, iw], zero, one)
                grad_x[p, ih + 1, iw] = bottom * _relu_passes(x[p, ih + 1, iw], zero, one)
            for iw in range(2 * W_out, W):
                grad_x[p, ih, iw] = zero
                grad_x[p, ih + 1, iw] = zero
        for ih in range(2 * H_out, H):
            for iw in range(W):
                grad_x[p, ih, iw] = zero


# ---------------------------------------------------------------------------------------------------------
# Average pooling kernels
# ---------------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **KERNEL_FLAGS)
def _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, KH, KW, PH_b, PH_e, PW_b, PW_e, H, W,
                 count_include_pad, divisor_override):
    """The divisor of one window (specs/pool.md §3): the override, else the padded-extent count, else the
    count of cells inside the input."""
    if divisor_override > 0:
        return divisor_override
    if count_include_pad:
        return (_padded_count(start_h, KH, PH_b, PH_e, H)
                * _padded_count(start_w, KW, PW_b, PW_e, W))
    return max(0, rh1 - rh0) * max(0, cw1 - cw0)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _avg_pool_kernel(x, KH, KW, SH, SW, PH_b, PH_e, PW_b, PW_e, count_include_pad, divisor_override, y):
    """``y[p, oh, ow]`` = the sum of window (oh, ow) over the input cells, divided by its divisor.

    ``divisor_override`` is 0 for none (kernels take ints only, never None)."""
    P, H, W = x.shape
    _, H_out, W_out = y.shape
    for p in prange(P):
        for oh in range(H_out):
            start_h, rh0, rh1 = _taps(oh, SH, PH_b, KH, 1, H)
            for ow in range(W_out):
                start_w, cw0, cw1 = _taps(ow, SW, PW_b, KW, 1, W)
                total = 0.0
                for ih in range(start_h + rh0, start_h + rh1):
                    for iw in range(start_w + cw0, start_w + cw1):
                        total += x[p, ih, iw]
                divisor = _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, KH, KW, PH_b, PH_e, PW_b, PW_e,
                                       H, W, count_include_pad, divisor_override)
                y[p, oh, ow] = total / divisor


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _avg_pool_backward_kernel(grad_out, KH, KW, SH, SW, PH_b, PH_e, PW_b, PW_e, count_include_pad,
                              divisor_override, grad_x):
    """``grad_x[p]``: each window's gradient divided by its divisor and added to its input cells; one
    iteration owns plane p."""
    P, H, W = grad_x.shape
    _, H_out, W_out = grad_out.shape
    for p in prange(P):
        target = grad_x[p]
        target[:, :] = 0.0
        for oh in range(H_out):
            start_h, rh0, rh1 = _taps(oh, SH, PH_b, KH, 1, H)
            for ow in range(W_out):
                start_w, cw0, cw1 = _taps(ow, SW, PW_b, KW, 1, W)
                divisor = _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, KH, KW, PH_b, PH_e, PW_b, PW_e,
                                       H, W, count_include_pad, divisor_override)
                share = grad_out[p, oh, ow] / divisor
                for ih in range(start_h + rh0, start_h + rh1):
                    for iw in range(start_w + cw0, start_w + cw1):
                        target[ih, iw] += share


# ---------------------------------------------------------------------------------------------------------
# Drivers: run a kernel on a resolved geometry, restore the caller's shape and dtype
# ---------------------------------------------------------------------------------------------------------


def _planes(a, dtype, batch, channels, H, W):
    """``a`` as C-contiguous ``(N*C, H, W)`` of ``dtype``; a 1-D map is a map of height 1."""
    return _runtime.as_compute(a, dtype).reshape(batch * channels, H, W)


def _max_geometry_args(g2):
    """The ints the max kernels take, from a 2-D geometry."""
    return (g2.kernel[0], g2.kernel[1], g2.stride[0], g2.stride[1], g2.dilation[0], g2.dilation[1],
            g2.pads[0][0], g2.pads[1][0])


def _avg_geometry_args(g2):
    """The ints the average kernels take, from a 2-D geometry (divisor_override None -> 0)."""
    return (g2.kernel[0], g2.kernel[1], g2.stride[0], g2.stride[1], g2.pads[0][0], g2.pads[0][1],
            g2.pads[1][0], g2.pads[1][1], int(g2.count_include_pad), g2.divisor_override or 0)


def _is_plain_2x2(g2):
    """2x2 windows with stride 2, no padding and no dilation, in floor mode: the tiled case."""
    tiled = g2.out_sizes[0] == g2.sizes[0] // 2 and g2.out_sizes[1] == g2.sizes[1] // 2
    return (g2.kernel == (2, 2) and g2.stride == (2, 2) and g2.dilation == (1, 1)
            and g2.pads == ((0, 0), (0, 0)) and tiled)


def _forward(g: PoolGeometry, x):
    """Pool ``x`` as the resolved geometry ``g`` says (max or average, with indices or not)."""
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    y = np.empty((xp.shape[0],) + g2.out_sizes, dtype=dtype)
    out_dtype = _runtime.result_dtype(x)
    if g.kind == "avg":
        _avg_pool_kernel(xp, *_avg_geometry_args(g2), y)
    elif g.return_indices:
        indices = np.empty(y.shape, dtype=np.int64)
        _max_pool_indices_kernel(xp, *_max_geometry_args(g2), y, indices)
        return y.reshape(g.out_shape).astype(out_dtype, copy=False), indices.reshape(g.out_shape)
    elif _is_plain_2x2(g2):
        _max_pool_2x2_kernel(xp, y)
    else:
        _max_pool_kernel(xp, *_max_geometry_args(g2), y)
    return y.reshape(g.out_shape).astype(out_dtype, copy=False)


def _backward(g: PoolGeometry, grad_out, x):
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x, grad_out)
    gp = _planes(grad_out, dtype, g2.batch, g2.channels, *g2.out_sizes)
    grad_x = np.empty((gp.shape[0],) + g2.sizes, dtype=dtype)
    if g.kind == "avg":
        _avg_pool_backward_kernel(gp, *_avg_geometry_args(g2), grad_x)
    else:
        xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
        if _is_plain_2x2(g2):
            _max_pool_2x2_backward_kernel(gp, xp, grad_x)
        else:
            _max_pool_backward_kernel(gp, xp, *_max_geometry_args(g2), grad_x)
    return grad_x.reshape(g.in_shape).astype(_runtime.result_dtype(grad_out, x), copy=False)


def _max_pool(op, rank, x, *hyperparameters):
    return _forward(max_pool_geometry_of(op, rank, x, *hyperparameters), x)


def _max_pool_backward(op, rank, grad_out, x, *hyperparameters):
    return _backward(max_pool_geometry_of(op, rank, x, *hyperparameters, grad_out=grad_out), grad_out, x)


def _avg_pool(op, rank, x, *hyperparameters):
    return _forward(avg_pool_geometry_of(op, rank, x, *hyperparameters), x)


def _avg_pool_backward(op, rank, grad_out, x, *hyperparameters):
    return _backward(avg_pool_geometry_of(op, rank, x, *hyperparameters, grad_out=grad_out), grad_out, x)


# ---------------------------------------------------------------------------------------------------------
# Public API: the signatures and docstrings of refcnn.pool
# ---------------------------------------------------------------------------------------------------------


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    return _max_pool_backward("max_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    return _max_pool_backward("max_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, None)


def _global_geometry(op, rank, x, grad_out=FORWARD) -> PoolGeometry:
    """A global average pool's checks and geometry, remembered by the arrays' types, dtypes and shapes (issue 16:
    a network's last pool is called with the same shapes every step, and its checks cost ~130 us a call in a
    ResNet-20 training step)."""
    keys = (array_key(x), array_key(grad_out, (FORWARD,)))
    return _GLOBAL.get(None if None in keys else (op, rank, keys), lambda: avg_pool_geometry_of(
        op, rank, x, whole_map(op, x, rank), 1, 0, False, True, None, grad_out=grad_out))


_GLOBAL = Verdicts()


# A global average pool's window is the whole map: one sum per plane, over a contiguous row, and one value per
# plane back. The window kernels above walk it as a window (index arithmetic per cell, a scalar chain of 49 adds
# on a 7x7 map, and a zeroed plane added to); these run the plane as one vectorised row. ResNet-20's head, 64 x 64
# x 7 x 7 float32, after a 32 MB pass, the two alternated (session 39): forward 280 -> 102 us, backward 330-383 ->
# 105 us (the window kernels on 2 threads; these on the calling thread alone, CELLS_PER_ELEMENT).

#: Cells of a global pool per element of ``_runtime.launch``'s work: a cell is one add or one store, and two
#: threads pay only from about 800,000 cells (measured as above, us on 1 / 2 threads, forward and backward:
#: 64 x 64 x 7 x 7 113 / 187 and 187 / 213; 64 x 64 x 14 x 14 354 / 342 and 572 / 395; 64 x 128 x 14 x 14
#: 771 / 601 and 860 / 676).
CELLS_PER_ELEMENT = 8


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _global_avg_kernel(x2, divisor, y):
    """``y[p] = sum_s x2[p, s] / divisor``, in float64 (the window kernel's sum and division)."""
    for p in prange(x2.shape[0]):
        total = 0.0
        for s in range(x2.shape[1]):
            total += x2[p, s]
        y[p] = total / divisor


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _global_avg_backward_kernel(grad_out, divisor, grad_x2):
    """``grad_x2[p, s] = grad_out[p] / divisor`` for every cell s of plane p."""
    for p in prange(grad_x2.shape[0]):
        share = grad_out[p] / divisor
        row = grad_x2[p]
        for s in range(row.size):
            row[s] = share


def _global_forward(g: PoolGeometry, x):
    """A global average pool's forward: ``_forward``'s for an ``avg`` geometry whose window is the map."""
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x)
    planes = g2.batch * g2.channels
    y = np.empty(planes, dtype=dtype)
    cells = g2.sizes[0] * g2.sizes[1]
    _runtime.launch(_global_avg_kernel, planes * cells // CELLS_PER_ELEMENT,
                    _runtime.as_compute(x, dtype).reshape(planes, cells), cells, y)
    return y.reshape(g.out_shape).astype(_runtime.result_dtype(x), copy=False)


def _global_backward(g: PoolGeometry, grad_out, x):
    """A global average pool's backward, as :func:`_global_forward`."""
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x, grad_out)
    planes = g2.batch * g2.channels
    cells = g2.sizes[0] * g2.sizes[1]
    grad_x = np.empty((planes, cells), dtype=dtype)
    _runtime.launch(_global_avg_backward_kernel, planes * cells // CELLS_PER_ELEMENT,
                    _runtime.as_compute(grad_out, dtype).reshape(planes), cells, grad_x)
    return grad_x.reshape(g.in_shape).astype(_runtime.result_dtype(grad_out, x), copy=False)


def global_avg_pool2d(x):
    return _global_forward(_global_geometry("global_avg_pool2d", 2, x), x)


def global_avg_pool2d_backward(grad_out, x):
    return _global_backward(_global_geometry("global_avg_pool2d_backward", 2, x, grad_out), grad_out, x)


def global_avg_pool1d(x):
    return _global_forward(_global_geometry("global_avg_pool1d", 1, x), x)


def global_avg_pool1d_backward(grad_out, x):
    return _global_backward(_global_geometry("global_avg_pool1d_backward", 1, x, grad_out), grad_out, x)


def global_max_pool2d(x):
    op = "global_max_pool2d"
    return _max_pool(op, 2, x, whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool2d_backward(grad_out, x):
    op = "global_max_pool2d_backward"
    return _max_pool_backward(op, 2, grad_out, x, whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool1d(x):
    op = "global_max_pool1d"
    return _max_pool(op, 1, x, whole_map(op, x, 1), 1, 0, 1, False, False)


def global_max_pool1d_backward(grad_out, x):
    op = "global_max_pool1d_backward"
    return _max_pool_backward(op, 1, grad_out, x, whole_map(op, x, 1), 1, 0, 1, False, False)


def pool_forward(geometry: PoolGeometry, x):
    return _forward(fit_geometry(geometry, x), x)


def pool_backward(geometry: PoolGeometry, grad_out, x):
    return _backward(fit_geometry(geometry, x, grad_out, caller="pool_backward"), grad_out, x)


# ---------------------------------------------------------------------------------------------------------
# Fused ops on a resolved geometry (fastcnn only: refcnn keeps the plain ops, the oracle of these)
# ---------------------------------------------------------------------------------------------------------

#: The fused ops fastcnn offers beside the spec's; ``cnn.layers`` uses them when an engine has them.
FUSED_OPS = ("relu_pool_forward", "relu_pool_backward")


def _relu_max_geometry(geometry, x, grad_out=FORWARD, caller="relu_pool_forward"):
    """The geometry fitted to ``x`` (and ``grad_out``), refused unless it is a max pooling without indices."""
    g = fit_geometry(geometry, x, grad_out, caller=caller)
    if g.kind != "max" or g.return_indices:
        raise ValueError(invalid(caller, "geometry", "a max pooling geometry without return_indices",
                                 f"{g.op} with return_indices={g.return_indices}"))
    return g


def relu_pool_forward(geometry: PoolGeometry, x):
    """``pool_forward(geometry, relu(x))`` for a max pooling ``geometry``, without writing ``relu(x)``.

    Bit for bit the composition of fastcnn's ``relu`` and ``pool_forward`` (tests/test_fast_pool.py checks it,
    and refcnn's composition as the oracle). For plain 2x2 windows (stride 2, no padding or dilation, floor
    mode) one kernel reads ``x`` once and writes only the pooled map: in a conv-ReLU-pool block the largest
    activation is never stored, and ReLU's own pass over it (one read, one write) is saved. Other geometries
    run the two ops. The backward, :func:`relu_pool_backward`, takes the same ``x`` (before ReLU)."""
    g = _relu_max_geometry(geometry, x)
    g2 = g.as_2d()
    if not _is_plain_2x2(g2):
        return _forward(g, _relu_of(x))
    dtype = _runtime.compute_dtype(x)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    y = np.empty((xp.shape[0],) + g2.out_sizes, dtype=dtype)
    _relu_max_pool_2x2_kernel(xp, y)
    return y.reshape(g.out_shape).astype(_runtime.result_dtype(x), copy=False)


def relu_pool_backward(geometry: PoolGeometry, grad_out, x):
    """``relu_backward(pool_backward(geometry, grad_out, relu(x)), x)``: the gradient of
    :func:`relu_pool_forward` with respect to ``x`` (before ReLU), bit for bit the composition.

    For plain 2x2 windows one pass reads ``x`` and ``grad_out`` and writes the gradient, where the
    composition writes ``relu(x)``, scatters into one array and multiplies it into another."""
    g = _relu_max_geometry(geometry, x, grad_out, caller="relu_pool_backward")
    g2 = g.as_2d()
    if not _is_plain_2x2(g2):
        return _relu_backward_of(_backward(g, grad_out, _relu_of(x)), x)
    dtype = _runtime.compute_dtype(x, grad_out)
    gp = _planes(grad_out, dtype, g2.batch, g2.channels, *g2.out_sizes)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    grad_x = np.empty((gp.shape[0],) + g2.sizes, dtype=dtype)
    _relu_max_pool_2x2_backward_kernel(gp, xp, grad_x)
    return grad_x.reshape(g.in_shape).astype(_runtime.result_dtype(grad_out, x), copy=False)


_runtime.share_docstrings(globals(), [*__all__, "pool_forward", "pool_backward"])
