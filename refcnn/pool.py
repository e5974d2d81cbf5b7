"""Pooling: max and average pooling over windows, and the global pools, in 1-D and 2-D.

The specification is ``specs/pool.md``; the symbols are those of its glossary. Every op is written once,
for 2-D maps: a 1-D map of length ``L`` is pooled as a 2-D map of height 1 (kernel, stride and dilation 1
and no padding along the added axis), and a global pool is a windowed pool whose window is the whole map.

Every check runs first, on the ground floor (:func:`cnnbase.pool.pool_geometry`, from shapes and
hyperparameters alone), so both engines raise the same errors. :func:`pool_forward` and :func:`pool_backward`
run on a geometry resolved once by their caller.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase import shapes
from cnnbase.checks import as_float64
from cnnbase.pool import PoolGeometry, avg_pool_geometry_of, fit_geometry, max_pool_geometry_of, whole_map

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
# The loops, written once for 2-D planes (N, C, H, W)
# ---------------------------------------------------------------------------------------------------------


def _window_cells(o: int, axis: int, g: PoolGeometry) -> list[int]:
    """Input coordinates inside ``[0, n)`` read by window ``o`` along ``axis``, in increasing order."""
    start = shapes.window_start(o, g.stride[axis], g.pads[axis][0])
    d = g.dilation[axis]
    # the taps j whose cell start + j*d is inside, computed rather than searched (a window may have 10^8 taps)
    return [start + j * d for j in shapes.window_taps(start, g.kernel[axis], d, 0, g.sizes[axis])]


def _padded_extent_count(o: int, axis: int, g: PoolGeometry) -> int:
    """Window cells inside the padded extent ``[-p_b, n + p_e)``: the divisor along ``axis`` with
    count_include_pad. Cells beyond the end padding, which exist only because of ceil_mode, do not count."""
    p_b, p_e = g.pads[axis]
    start = shapes.window_start(o, g.stride[axis], p_b)
    return len(shapes.window_taps(start, g.kernel[axis], g.dilation[axis], -p_b, g.sizes[axis] + p_e))


def _as_planes(x: np.ndarray, rank: int) -> np.ndarray:
    """float64 view of ``x`` as ``(N, C, H, W)``; a 1-D map is a map of height 1."""
    x = as_float64(x)
    return x if rank == 2 else x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])


def _window_argmax(plane: np.ndarray, rows: list[int], cols: list[int]) -> tuple[float, int, int]:
    """The first maximum in row-major window order (strict ``>``), except that a NaN always takes over,
    so a window holding NaN yields NaN at its last NaN: PyTorch's rule."""
    best_h, best_w = rows[0], cols[0]
    best = plane[best_h, best_w]
    for ih in rows:
        for iw in cols:
            value = plane[ih, iw]
            if value > best or math.isnan(value):
                best, best_h, best_w = value, ih, iw
    return float(best), best_h, best_w


def _max_pool_planes(x: np.ndarray, g: PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Maxima and their flat indices ``h*W + w`` for a 2-D geometry ``g`` and ``x`` of shape (N, C, H, W)."""
    out = np.empty(g.out_shape, dtype=np.float64)
    indices = np.empty(g.out_shape, dtype=np.int64)
    width = g.sizes[1]
    for n in range(g.batch):
        for c in range(g.channels):
            for oh in range(g.out_sizes[0]):
                rows = _window_cells(oh, 0, g)
                for ow in range(g.out_sizes[1]):
                    cols = _window_cells(ow, 1, g)
                    value, ih, iw = _window_argmax(x[n, c], rows, cols)
                    out[n, c, oh, ow] = value
                    indices[n, c, oh, ow] = ih * width + iw
    return out, indices


def _max_unpool_grad(grad_out: np.ndarray, indices: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Send each window's gradient to the element that won it; overlapping windows add."""
    grad_x = np.zeros(g.in_shape, dtype=np.float64)
    width = g.sizes[1]
    for n in range(g.batch):
        for c in range(g.channels):
            for oh in range(g.out_sizes[0]):
                for ow in range(g.out_sizes[1]):
                    ih, iw = divmod(int(indices[n, c, oh, ow]), width)
                    grad_x[n, c, ih, iw] += grad_out[n, c, oh, ow]
    return grad_x


def _avg_divisor(oh: int, ow: int, rows: list[int], cols: list[int], g: PoolGeometry) -> int:
    if g.divisor_override is not None:
        return g.divisor_override
    if g.count_include_pad:
        return _padded_extent_count(oh, 0, g) * _padded_extent_count(ow, 1, g)
    return len(rows) * len(cols)


def _avg_pool_planes(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
    out = np.empty(g.out_shape, dtype=np.float64)
    for n in range(g.batch):
        for c in range(g.channels):
            for oh in range(g.out_sizes[0]):
                rows = _window_cells(oh, 0, g)
                for ow in range(g.out_sizes[1]):
                    cols = _window_cells(ow, 1, g)
                    total = 0.0
                    for ih in rows:
                        for iw in cols:
                            total += x[n, c, ih, iw]
                    out[n, c, oh, ow] = total / _avg_divisor(oh, ow, rows, cols, g)
    return out


def _avg_pool_planes_backward(grad_out: np.ndarray, g: PoolGeometry) -> np.ndarray:
    grad_x = np.zeros(g.in_shape, dtype=np.float64)
    for n in range(g.batch):
        for c in range(g.channels):
            for oh in range(g.out_sizes[0]):
                rows = _window_cells(oh, 0, g)
                for ow in range(g.out_sizes[1]):
                    cols = _window_cells(ow, 1, g)
                    share = grad_out[n, c, oh, ow] / _avg_divisor(oh, ow, rows, cols, g)
                    for ih in rows:
                        for iw in cols:
                            grad_x[n, c, ih, iw] += share
    return grad_x


# ---------------------------------------------------------------------------------------------------------
# Shared drivers: validate, lift to 2-D, run the loops, restore the caller's rank
# ---------------------------------------------------------------------------------------------------------


def _forward(g: PoolGeometry, x):
    """Pool ``x`` as the resolved geometry ``g`` says (max or average, with indices or not)."""
    planes, g2 = _as_planes(x, g.rank), g.as_2d()
    if g.kind == "avg":
        return _avg_pool_planes(planes, g2).reshape(g.out_shape)
    out, indices = _max_pool_planes(planes, g2)
    out, indices = out.reshape(g.out_shape), indices.reshape(g.out_shape)
    return (out, indices) if g.return_indices else out


def _backward(g: PoolGeometry, grad_out, x):
    g2 = g.as_2d()
    grad_out = as_float64(grad_out).reshape(g2.out_shape)
    if g.kind == "avg":
        return _avg_pool_planes_backward(grad_out, g2).reshape(g.in_shape)
    _, indices = _max_pool_planes(_as_planes(x, g.rank), g2)
    return _max_unpool_grad(grad_out, indices, g2).reshape(g.in_shape)


def _max_pool(op, rank, x, *hyperparameters):
    return _forward(max_pool_geometry_of(op, rank, x, *hyperparameters), x)


def _max_pool_backward(op, rank, grad_out, x, *hyperparameters):
    return _backward(max_pool_geometry_of(op, rank, x, *hyperparameters, grad_out=grad_out), grad_out, x)


def _avg_pool(op, rank, x, *hyperparameters):
    return _forward(avg_pool_geometry_of(op, rank, x, *hyperparameters), x)


def _avg_pool_backward(op, rank, grad_out, x, *hyperparameters):
    return _backward(avg_pool_geometry_of(op, rank, x, *hyperparameters, grad_out=grad_out), grad_out, x)


def pool_forward(geometry: PoolGeometry, x):
    """The pooling that ``geometry`` describes, applied to ``x``.

    ``geometry`` comes from :func:`cnnbase.pool.pool_geometry`, resolved once (a ``cnn`` layer does it when it
    is built); ``x`` is only checked to fit it, for any batch size. Computes exactly what the op named by
    ``geometry.op`` computes (with the indices when ``geometry.return_indices``).
    """
    return _forward(fit_geometry(geometry, x), x)


def pool_backward(geometry: PoolGeometry, grad_out, x):
    """The gradient with respect to ``x`` of :func:`pool_forward` on a resolved geometry."""
    return _backward(fit_geometry(geometry, x, grad_out, caller="pool_backward"), grad_out, x)


# ---------------------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------------------


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling.

    ``y[n, c, oh, ow] = max over kh < KH, kw < KW of x[n, c, oh*SH - p_b^H + kh*DH, ow*SW - p_b^W + kw*DW]``,
    taken over the cells inside the input only (padding is ``-inf`` and never wins). Ties go to the first
    maximum in row-major window order; a NaN in the window makes the result NaN (at its last NaN).

    Shapes: ``x (N, C, H, W) -> y (N, C, H_out, W_out)``, ``H_out = floor((H + p_b^H + p_e^H - DH(KH-1) - 1)
    / SH) + 1`` (ceiling with ``ceil_mode``, dropping a last window that starts in the end padding); W alike.

    Parameters
    ----------
    x : ndarray (N, C, H, W), any float dtype
    kernel_size : int or (KH, KW)
    stride : int or (SH, SW) or None
        None means ``stride = kernel_size``.
    padding : int, (PH, PW), ((p_b^H, p_e^H), (p_b^W, p_e^W)), 'valid', 'same' or 'same_lower'
        Any amount, also more than half the kernel; a window covering padding only is an error.
    dilation : int or (DH, DW)
    ceil_mode : bool
    return_indices : bool
        Also return the int64 flat index ``ih*W + iw`` of each maximum within its (n, c) plane.

    Returns
    -------
    y : ndarray (N, C, H_out, W_out), float64; ``(y, indices)`` with ``return_indices``.
    """
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    ``dL/dx[n, c, ih, iw] = sum over windows (oh, ow) whose maximum is (ih, iw) of grad_out[n, c, oh, ow]``:
    each window's gradient goes to its maximum (the first one on ties); overlapping windows add.

    Shapes: ``grad_out (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W)``. ``grad_out`` is the
    gradient of the pooled values only (indices have none), also when ``return_indices`` is True.
    """
    return _max_pool_backward("max_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling: :func:`max_pool2d` of a map of height 1.

    ``y[n, c, o] = max over j < K of x[n, c, o*S - p_b + j*D]`` over the cells inside the input; ties go to
    the first maximum, a NaN in the window makes the result NaN (at its last NaN).

    Shapes: ``x (N, C, L) -> y (N, C, L_out)``, ``L_out = floor((L + p_b + p_e - D(K-1) - 1) / S) + 1``
    (ceiling with ``ceil_mode``). Arguments as in :func:`max_pool2d`, with ints or 1-tuples;
    ``indices`` are positions ``il`` in ``[0, L)``.
    """
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    """Gradient of :func:`max_pool1d`: ``dL/dx[n, c, i] = sum over windows o won by i of grad_out[n, c, o]``.

    Shapes: ``grad_out (N, C, L_out), x (N, C, L) -> grad_x (N, C, L)``.
    """
    return _max_pool_backward("max_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, dilation,
                              ceil_mode, return_indices)


# ---------------------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------------------


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling.

    ``y[n, c, oh, ow] = (1 / D_{oh,ow}) * sum over kh < KH, kw < KW of x[n, c, oh*SH - p_b^H + kh,
    ow*SW - p_b^W + kw]``, padding cells contributing 0. The divisor ``D`` is ``divisor_override`` when
    given; else with ``count_include_pad`` the number of window cells inside the padded extent
    ``[-p_b^H, H + p_e^H) x [-p_b^W, W + p_e^W)`` (cells past the end padding, present only because of
    ``ceil_mode``, do not count); else the number of window cells inside the input.

    Shapes: ``x (N, C, H, W) -> y (N, C, H_out, W_out)``, ``H_out = floor((H + p_b^H + p_e^H - KH) / SH) + 1``
    (ceiling with ``ceil_mode``, dropping a last window that starts in the end padding); W alike.

    Parameters
    ----------
    x : ndarray (N, C, H, W), any float dtype
    kernel_size : int or (KH, KW)
    stride : int or (SH, SW) or None
        None means ``stride = kernel_size``.
    padding : int, (PH, PW), ((p_b^H, p_e^H), (p_b^W, p_e^W)), 'valid', 'same' or 'same_lower'
    ceil_mode : bool
    count_include_pad : bool
        Without it a window covering padding only is an error (nothing to average).
    divisor_override : None or positive int

    Returns
    -------
    y : ndarray (N, C, H_out, W_out), float64
    """
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` with respect to ``x``.

    ``dL/dx[n, c, ih, iw] = sum over windows (oh, ow) containing (ih, iw) of grad_out[n, c, oh, ow] / D_{oh,ow}``.

    Shapes: ``grad_out (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling: :func:`avg_pool2d` of a map of height 1.

    ``y[n, c, o] = (1 / D_o) * sum over j < K of x[n, c, o*S - p_b + j]``, padding contributing 0; ``D_o``
    counts the window cells inside ``[-p_b, L + p_e)`` with ``count_include_pad``, else inside ``[0, L)``.

    Shapes: ``x (N, C, L) -> y (N, C, L_out)``, ``L_out = floor((L + p_b + p_e - K) / S) + 1`` (ceiling with
    ``ceil_mode``).
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool1d`: ``dL/dx[n, c, i] = sum over windows o containing i of grad_out[n, c, o] / D_o``.

    Shapes: ``grad_out (N, C, L_out), x (N, C, L) -> grad_x (N, C, L)``.
    """
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_out, x, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, None)


# ---------------------------------------------------------------------------------------------------------
# Global pools: one window covering the whole map
# ---------------------------------------------------------------------------------------------------------


def global_avg_pool2d(x):
    """Mean over the whole map: ``y[n, c, 0, 0] = (1 / (H W)) * sum over h, w of x[n, c, h, w]``.

    Shapes: ``x (N, C, H, W) -> y (N, C, 1, 1)``. Equals ``avg_pool2d(x, (H, W))``.
    """
    op = "global_avg_pool2d"
    return _avg_pool(op, 2, x, whole_map(op, x, 2), 1, 0, False, True, None)


def global_avg_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool2d`: ``dL/dx[n, c, h, w] = grad_out[n, c, 0, 0] / (H W)``.

    Shapes: ``grad_out (N, C, 1, 1), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    op = "global_avg_pool2d_backward"
    return _avg_pool_backward(op, 2, grad_out, x, whole_map(op, x, 2), 1, 0, False, True, None)


def global_avg_pool1d(x):
    """Mean over the whole sequence: ``y[n, c, 0] = (1 / L) * sum over l of x[n, c, l]``.

    Shapes: ``x (N, C, L) -> y (N, C, 1)``. Equals ``avg_pool1d(x, L)``.
    """
    op = "global_avg_pool1d"
    return _avg_pool(op, 1, x, whole_map(op, x, 1), 1, 0, False, True, None)


def global_avg_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool1d`: ``dL/dx[n, c, l] = grad_out[n, c, 0] / L``.

    Shapes: ``grad_out (N, C, 1), x (N, C, L) -> grad_x (N, C, L)``.
    """
    op = "global_avg_pool1d_backward"
    return _avg_pool_backward(op, 1, grad_out, x, whole_map(op, x, 1), 1, 0, False, True, None)


def global_max_pool2d(x):
    """Maximum over the whole map: ``y[n, c, 0, 0] = max over h, w of x[n, c, h, w]``.

    Ties go to the first maximum in row-major order; a NaN makes the result NaN.
    Shapes: ``x (N, C, H, W) -> y (N, C, 1, 1)``. Equals ``max_pool2d(x, (H, W))``.
    """
    op = "global_max_pool2d"
    return _max_pool(op, 2, x, whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool2d`: ``grad_out[n, c, 0, 0]`` goes to the (first) maximum of
    plane ``(n, c)``; every other element gets 0.

    Shapes: ``grad_out (N, C, 1, 1), x (N, C, H, W) -> grad_x (N, C, H, W)``.
    """
    op = "global_max_pool2d_backward"
    return _max_pool_backward(op, 2, grad_out, x, whole_map(op, x, 2), 1, 0, 1, False, False)


def global_max_pool1d(x):
    """Maximum over the whole sequence: ``y[n, c, 0] = max over l of x[n, c, l]``.

    Ties go to the first maximum; a NaN makes the result NaN.
    Shapes: ``x (N, C, L) -> y (N, C, 1)``. Equals ``max_pool1d(x, L)``.
    """
    op = "global_max_pool1d"
    return _max_pool(op, 1, x, whole_map(op, x, 1), 1, 0, 1, False, False)


def global_max_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool1d`: ``grad_out[n, c, 0]`` goes to the (first) maximum of
    sequence ``(n, c)``.

    Shapes: ``grad_out (N, C, 1), x (N, C, L) -> grad_x (N, C, L)``.
    """
    op = "global_max_pool1d_backward"
    return _max_pool_backward(op, 1, grad_out, x, whole_map(op, x, 1), 1, 0, 1, False, False)
