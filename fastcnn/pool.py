"""Pooling, fast: max and average pooling, the global pools, 1-D and 2-D (``specs/pool.md``).

Same names, arguments and defaults as :mod:`refcnn.pool`, and the same checks: every wrapper calls
:func:`refcnn.pool.pool_geometry` (or :func:`refcnn.pool.check_input_shape`) before any kernel runs, so both
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

from cnnbase.checks import check_float_array, check_shape
from refcnn.pool import __all__ as _REF_ALL
from refcnn.pool import check_input_shape, pool_geometry

from . import _runtime
from ._runtime import FASTMATH, KERNEL_FLAGS

__all__ = list(_REF_ALL)


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
def _window_argmax(plane, rh0, rh1, start_h, dh, cw0, cw1, start_w, dw):
    """The winner of one window: ``(value, ih, iw)``, first maximum in row-major order, last NaN if any.

    The window's taps inside the input are ``kh in [rh0, rh1)``, ``kw in [cw0, cw1)``; there is at least one
    (the geometry check refuses windows on padding only)."""
    bh = start_h + rh0 * dh
    bw = start_w + cw0 * dw
    best = plane[bh, bw]
    for kh in range(rh0, rh1):
        ih = start_h + kh * dh
        for kw in range(cw0, cw1):
            iw = start_w + kw * dw
            v = plane[ih, iw]
            # strict `>`: ties keep the first; `v != v`: NaN always takes over. `|`, not `or`: no short-circuit
            # branch, so the test compiles to a select the loop vectoriser can use (`or` made it 4x slower).
            if (v > best) | (v != v):
                best = v
                bh = ih
                bw = iw
    return best, bh, bw


@numba.njit(inline="always", **KERNEL_FLAGS)
def _window_max(plane, rh0, rh1, start_h, dh, cw0, cw1, start_w, dw):
    """The value of :func:`_window_argmax` without tracking where it is."""
    best = plane[start_h + rh0 * dh, start_w + cw0 * dw]
    for kh in range(rh0, rh1):
        ih = start_h + kh * dh
        for kw in range(cw0, cw1):
            v = plane[ih, start_w + kw * dw]
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
    planes, out_h, out_w = y.shape
    for p in prange(planes):
        for oh in range(out_h):
            ih = 2 * oh
            for ow in range(out_w):
                iw = 2 * ow
                y[p, oh, ow] = _max2x2(x[p, ih, iw], x[p, ih, iw + 1], x[p, ih + 1, iw], x[p, ih + 1, iw + 1])


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_kernel(x, kh, kw, sh, sw, dh, dw, ph, pw, y):
    """``y[p, oh, ow]`` = the maximum of window (oh, ow) of plane p (general geometry, no indices)."""
    planes, height, width = x.shape
    _, out_h, out_w = y.shape
    for p in prange(planes):
        plane = x[p]
        for oh in range(out_h):
            start_h, rh0, rh1 = _taps(oh, sh, ph, kh, dh, height)
            for ow in range(out_w):
                start_w, cw0, cw1 = _taps(ow, sw, pw, kw, dw, width)
                y[p, oh, ow] = _window_max(plane, rh0, rh1, start_h, dh, cw0, cw1, start_w, dw)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_indices_kernel(x, kh, kw, sh, sw, dh, dw, ph, pw, y, indices):
    """As :func:`_max_pool_kernel`, also storing each winner's flat index ``ih*W + iw`` in its plane."""
    planes, height, width = x.shape
    _, out_h, out_w = y.shape
    for p in prange(planes):
        plane = x[p]
        for oh in range(out_h):
            start_h, rh0, rh1 = _taps(oh, sh, ph, kh, dh, height)
            for ow in range(out_w):
                start_w, cw0, cw1 = _taps(ow, sw, pw, kw, dw, width)
                best, bh, bw = _window_argmax(plane, rh0, rh1, start_h, dh, cw0, cw1, start_w, dw)
                y[p, oh, ow] = best
                indices[p, oh, ow] = bh * width + bw


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_backward_kernel(grad_out, x, kh, kw, sh, sw, dh, dw, ph, pw, grad_x):
    """``grad_x[p]``: each window's gradient added to its winner, recomputed from ``x``.

    One iteration owns plane p of ``grad_x`` entirely (zeroes it, then scatters into it), so no two threads
    touch one element; the plane stays in cache between the two passes."""
    planes, height, width = x.shape
    _, out_h, out_w = grad_out.shape
    for p in prange(planes):
        plane = x[p]
        target = grad_x[p]
        target[:, :] = 0.0
        for oh in range(out_h):
            start_h, rh0, rh1 = _taps(oh, sh, ph, kh, dh, height)
            for ow in range(out_w):
                start_w, cw0, cw1 = _taps(ow, sw, pw, kw, dw, width)
                _, bh, bw = _window_argmax(plane, rh0, rh1, start_h, dh, cw0, cw1, start_w, dw)
                target[bh, bw] += grad_out[p, oh, ow]


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _max_pool_2x2_backward_kernel(grad_out, x, grad_x):
    """:func:`_max_pool_backward_kernel` for 2x2 windows, stride 2, no padding, no dilation, floor mode.

    The windows do not overlap, so each cell is written once: the winner gets the window's gradient, the
    other three cells 0, and a last odd row or column (in no window) 0. Two passes per pair of rows: the
    winners (0..3) of a row of windows into a small buffer, then both input rows written left to right.
    Writing the four cells of each window in the first pass instead ran 2-3 times slower (strided stores
    behind data-dependent selects do not vectorise)."""
    planes, height, width = x.shape
    _, out_h, out_w = grad_out.shape
    zero = grad_x.dtype.type(0)
    for p in prange(planes):
        winners = np.empty(out_w, dtype=np.int32)
        for oh in range(out_h):
            ih = 2 * oh
            for ow in range(out_w):
                iw = 2 * ow
                winners[ow] = _position2x2(x[p, ih, iw], x[p, ih, iw + 1], x[p, ih + 1, iw], x[p, ih + 1, iw + 1])
            for iw in range(2 * out_w):
                ow = iw >> 1
                g = grad_out[p, oh, ow]
                column = iw & 1  # 0: left cell of its window, 1: right cell
                grad_x[p, ih, iw] = g if winners[ow] == column else zero
                grad_x[p, ih + 1, iw] = g if winners[ow] == 2 + column else zero
            for iw in range(2 * out_w, width):
                grad_x[p, ih, iw] = zero
                grad_x[p, ih + 1, iw] = zero
        for ih in range(2 * out_h, height):
            for iw in range(width):
                grad_x[p, ih, iw] = zero


# ---------------------------------------------------------------------------------------------------------
# Average pooling kernels
# ---------------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **KERNEL_FLAGS)
def _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, kh, kw, ph_b, ph_e, pw_b, pw_e, height, width,
                 count_include_pad, divisor_override):
    """The divisor of one window (specs/pool.md §3): the override, else the padded-extent count, else the
    count of cells inside the input."""
    if divisor_override > 0:
        return divisor_override
    if count_include_pad:
        return (_padded_count(start_h, kh, ph_b, ph_e, height)
                * _padded_count(start_w, kw, pw_b, pw_e, width))
    return max(0, rh1 - rh0) * max(0, cw1 - cw0)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _avg_pool_kernel(x, kh, kw, sh, sw, ph_b, ph_e, pw_b, pw_e, count_include_pad, divisor_override, y):
    """``y[p, oh, ow]`` = the sum of window (oh, ow) over the input cells, divided by its divisor.

    ``divisor_override`` is 0 for none (kernels take ints only, never None)."""
    planes, height, width = x.shape
    _, out_h, out_w = y.shape
    for p in prange(planes):
        for oh in range(out_h):
            start_h, rh0, rh1 = _taps(oh, sh, ph_b, kh, 1, height)
            for ow in range(out_w):
                start_w, cw0, cw1 = _taps(ow, sw, pw_b, kw, 1, width)
                total = 0.0
                for ih in range(start_h + rh0, start_h + rh1):
                    for iw in range(start_w + cw0, start_w + cw1):
                        total += x[p, ih, iw]
                divisor = _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, kh, kw, ph_b, ph_e, pw_b, pw_e,
                                       height, width, count_include_pad, divisor_override)
                y[p, oh, ow] = total / divisor


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _avg_pool_backward_kernel(grad_out, kh, kw, sh, sw, ph_b, ph_e, pw_b, pw_e, count_include_pad,
                              divisor_override, grad_x):
    """``grad_x[p]``: each window's gradient divided by its divisor and added to its input cells; one
    iteration owns plane p."""
    planes, height, width = grad_x.shape
    _, out_h, out_w = grad_out.shape
    for p in prange(planes):
        target = grad_x[p]
        target[:, :] = 0.0
        for oh in range(out_h):
            start_h, rh0, rh1 = _taps(oh, sh, ph_b, kh, 1, height)
            for ow in range(out_w):
                start_w, cw0, cw1 = _taps(ow, sw, pw_b, kw, 1, width)
                divisor = _avg_divisor(start_h, rh0, rh1, start_w, cw0, cw1, kh, kw, ph_b, ph_e, pw_b, pw_e,
                                       height, width, count_include_pad, divisor_override)
                share = grad_out[p, oh, ow] / divisor
                for ih in range(start_h + rh0, start_h + rh1):
                    for iw in range(start_w + cw0, start_w + cw1):
                        target[ih, iw] += share


# ---------------------------------------------------------------------------------------------------------
# Drivers: validate (refcnn's checks), convert, run a kernel, restore the caller's shape and dtype
# ---------------------------------------------------------------------------------------------------------


def _check_grad_out(op, grad_out, geometry):
    """refcnn.pool's grad_out check (same functions, same message), without its float64 copy."""
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, geometry.out_shape, "grad_out", op,
                context=f"the pooled output of x.shape={geometry.in_shape}")


def _planes(a, dtype, batch, channels, height, width):
    """``a`` as C-contiguous ``(N*C, H, W)`` of ``dtype``; a 1-D map is a map of height 1."""
    return _runtime.as_compute(a, dtype).reshape(batch * channels, height, width)


def _max_geometry_args(g2):
    """The ints the max kernels take, from a 2-D geometry."""
    return (g2.kernel[0], g2.kernel[1], g2.stride[0], g2.stride[1], g2.dilation[0], g2.dilation[1],
            g2.pads[0][0], g2.pads[1][0])


def _is_plain_2x2(g2):
    """2x2 windows with stride 2, no padding and no dilation, in floor mode: the tiled case."""
    tiled = g2.out_sizes[0] == g2.sizes[0] // 2 and g2.out_sizes[1] == g2.sizes[1] // 2
    return (g2.kernel == (2, 2) and g2.stride == (2, 2) and g2.dilation == (1, 1)
            and g2.pads == ((0, 0), (0, 0)) and tiled)


def _max_pool(op, rank, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    check_float_array(x, "x", op)
    g = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode, rank,
                      kind="max", return_indices=return_indices)
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    y = np.empty((xp.shape[0],) + g2.out_sizes, dtype=dtype)
    out_dtype = _runtime.result_dtype(x)
    if g.return_indices:
        indices = np.empty(y.shape, dtype=np.int64)
        _max_pool_indices_kernel(xp, *_max_geometry_args(g2), y, indices)
        return y.reshape(g.out_shape).astype(out_dtype, copy=False), indices.reshape(g.out_shape)
    if _is_plain_2x2(g2):
        _max_pool_2x2_kernel(xp, y)
    else:
        _max_pool_kernel(xp, *_max_geometry_args(g2), y)
    return y.reshape(g.out_shape).astype(out_dtype, copy=False)


def _max_pool_backward(op, rank, grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices):
    check_float_array(x, "x", op)
    g = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode, rank,
                      kind="max", return_indices=return_indices)
    _check_grad_out(op, grad_out, g)
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x, grad_out)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    gp = _planes(grad_out, dtype, g2.batch, g2.channels, *g2.out_sizes)
    grad_x = np.empty(xp.shape, dtype=dtype)
    if _is_plain_2x2(g2):
        _max_pool_2x2_backward_kernel(gp, xp, grad_x)
    else:
        _max_pool_backward_kernel(gp, xp, *_max_geometry_args(g2), grad_x)
    return grad_x.reshape(g.in_shape).astype(_runtime.result_dtype(grad_out, x), copy=False)


def _avg_geometry_args(g2):
    """The ints the average kernels take, from a 2-D geometry (divisor_override None -> 0)."""
    return (g2.kernel[0], g2.kernel[1], g2.stride[0], g2.stride[1], g2.pads[0][0], g2.pads[0][1],
            g2.pads[1][0], g2.pads[1][1], int(g2.count_include_pad), g2.divisor_override or 0)


def _avg_pool(op, rank, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    check_float_array(x, "x", op)
    g = pool_geometry(op, x.shape, kernel_size, stride, padding, 1, ceil_mode, rank, kind="avg",
                      count_include_pad=count_include_pad, divisor_override=divisor_override)
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x)
    xp = _planes(x, dtype, g2.batch, g2.channels, *g2.sizes)
    y = np.empty((xp.shape[0],) + g2.out_sizes, dtype=dtype)
    _avg_pool_kernel(xp, *_avg_geometry_args(g2), y)
    return y.reshape(g.out_shape).astype(_runtime.result_dtype(x), copy=False)


def _avg_pool_backward(op, rank, grad_out, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    check_float_array(x, "x", op)
    g = pool_geometry(op, x.shape, kernel_size, stride, padding, 1, ceil_mode, rank, kind="avg",
                      count_include_pad=count_include_pad, divisor_override=divisor_override)
    _check_grad_out(op, grad_out, g)
    g2 = g.as_2d()
    dtype = _runtime.compute_dtype(x, grad_out)
    gp = _planes(grad_out, dtype, g2.batch, g2.channels, *g2.out_sizes)
    grad_x = np.empty((gp.shape[0],) + g2.sizes, dtype=dtype)
    _avg_pool_backward_kernel(gp, *_avg_geometry_args(g2), grad_x)
    return grad_x.reshape(g.in_shape).astype(_runtime.result_dtype(grad_out, x), copy=False)


def _whole_map(op, x, rank):
    """The kernel of a global pool: the spatial sizes of ``x``, after refcnn's checks of ``x``."""
    check_float_array(x, "x", op)
    return check_input_shape(op, x.shape, rank)[2:]


# ---------------------------------------------------------------------------------------------------------
# Public API: the signatures of refcnn.pool
# ---------------------------------------------------------------------------------------------------------


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling: ``y[n, c, oh, ow] = max over the window's cells inside the input of x[n, c, ih, iw]``,
    ``ih = oh*SH - p_b^H + kh*DH``, ``iw = ow*SW - p_b^W + kw*DW``; first maximum wins a tie, NaN propagates
    (at its last NaN). As :func:`refcnn.pool.max_pool2d`.

    Shapes: ``x (N, C, H, W) -> y (N, C, H_out, W_out)`` in ``x``'s dtype; with ``return_indices`` also int64
    indices ``ih*W + iw`` of the output's shape.
    """
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    """Gradient of :func:`max_pool2d`: ``dL/dx[n, c, ih, iw] = sum over windows won by (ih, iw) of
    grad_out[n, c, oh, ow]``.

    Shapes: ``grad_out (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    return _max_pool_backward("max_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling: ``y[n, c, o] = max over j < K of x[n, c, o*S - p_b + j*D]`` (cells inside the input).

    Shapes: ``x (N, C, L) -> y (N, C, L_out)``; indices are positions in ``[0, L)``.
    """
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    """Gradient of :func:`max_pool1d`: ``dL/dx[n, c, i] = sum over windows o won by i of grad_out[n, c, o]``.

    Shapes: ``grad_out (N, C, L_out), x (N, C, L) -> grad_x (N, C, L)``.
    """
    return _max_pool_backward("max_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling: ``y[n, c, oh, ow] = (1 / D_{oh,ow}) * sum over the window's cells inside the input
    of x[n, c, ih, iw]``; the divisor ``D`` as in :func:`refcnn.pool.avg_pool2d`.

    Shapes: ``x (N, C, H, W) -> y (N, C, H_out, W_out)`` in ``x``'s dtype.
    """
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d`: ``dL/dx[n, c, ih, iw] = sum over windows containing (ih, iw) of
    grad_out[n, c, oh, ow] / D_{oh,ow}``.

    Shapes: ``grad_out (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling: ``y[n, c, o] = (1 / D_o) * sum over j < K of x[n, c, o*S - p_b + j]``.

    Shapes: ``x (N, C, L) -> y (N, C, L_out)``.
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool1d`: ``dL/dx[n, c, i] = sum over windows o containing i of grad_out[n, c, o] / D_o``.

    Shapes: ``grad_out (N, C, L_out), x (N, C, L) -> grad_x (N, C, L)``.
    """
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, None)


def global_avg_pool2d(x):
    """Mean over the whole map: ``y[n, c, 0, 0] = (1 / (H W)) * sum over h, w of x[n, c, h, w]``.

    Shapes: ``x (N, C, H, W) -> y (N, C, 1, 1)``.
    """
    op = "global_avg_pool2d"
    return _avg_pool(op, 2, x, _whole_map(op, x, 2), 1, 0, False, True, None)


def global_avg_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool2d`: ``dL/dx[n, c, h, w] = grad_out[n, c, 0, 0] / (H W)``.

    Shapes: ``grad_out (N, C, 1, 1), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    op = "global_avg_pool2d_backward"
    return _avg_pool_backward(op, 2, grad_out, x, _whole_map(op, x, 2), 1, 0, False, True, None)


def global_avg_pool1d(x):
    """Mean over the whole sequence: ``y[n, c, 0] = (1 / L) * sum over l of x[n, c, l]``.

    Shapes: ``x (N, C, L) -> y (N, C, 1)``.
    """
    op = "global_avg_pool1d"
    return _avg_pool(op, 1, x, _whole_map(op, x, 1), 1, 0, False, True, None)


def global_avg_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool1d`: ``dL/dx[n, c, l] = grad_out[n, c, 0] / L``.

    Shapes: ``grad_out (N, C, 1), x (N, C, L) -> grad_x (N, C, L)``.
    """
    op = "global_avg_pool1d_backward"
    return _avg_pool_backward(op, 1, grad_out, x, _whole_map(op, x, 1), 1, 0, False, True, None)


def global_max_pool2d(x):
    """Maximum over the whole map: ``y[n, c, 0, 0] = max over h, w of x[n, c, h, w]`` (first maximum, NaN
    propagates).

    Shapes: ``x (N, C, H, W) -> y (N, C, 1, 1)``.
    """
    op = "global_max_pool2d"
    return _max_pool(op, 2, x, _whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool2d`: ``grad_out[n, c, 0, 0]`` goes to the (first) maximum of plane
    ``(n, c)``, 0 elsewhere.

    Shapes: ``grad_out (N, C, 1, 1), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    op = "global_max_pool2d_backward"
    return _max_pool_backward(op, 2, grad_out, x, _whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool1d(x):
    """Maximum over the whole sequence: ``y[n, c, 0] = max over l of x[n, c, l]``.

    Shapes: ``x (N, C, L) -> y (N, C, 1)``.
    """
    op = "global_max_pool1d"
    return _max_pool(op, 1, x, _whole_map(op, x, 1), 1, 0, 1, False, False)


def global_max_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool1d`: ``grad_out[n, c, 0]`` goes to the (first) maximum of sequence
    ``(n, c)``.

    Shapes: ``grad_out (N, C, 1), x (N, C, L) -> grad_x (N, C, L)``.
    """
    op = "global_max_pool1d_backward"
    return _max_pool_backward(op, 1, grad_out, x, _whole_map(op, x, 1), 1, 0, 1, False, False)
