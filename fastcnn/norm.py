"""Batch normalisation with PyTorch's semantics (``specs/norm.md``), in Numba.

``x`` is viewed as ``(N, C, S)`` as in refcnn. Each call is one parallel kernel over channels: one thread
computes a channel's statistics, its sums and its outputs, in float64 whatever the input dtype (rows shorter
than SUM_LANES, a block of channels side by side, sample by sample: ``_forward_short_block``). The sums are
fixed-order float64 sums (see "Kernels" below), so every result is independent of the thread count by
construction (no shared accumulator, no chunking that depends on the threads). They equal refcnn's sequential
sums bit for bit for dense inputs (one cell per row), and agree to float64 rounding otherwise (the tolerances
of tests/test_fast_norm.py).

Each pass asks for the rows a few samples ahead of the one it is on (``_ahead``, fastcnn._prefetch): a
channel's rows lie ``C * S`` cells apart, and in a training step they come from L3. ResNet-20's batch norms in
a step, every call timed where the step makes it (batch 64, 2 threads, 40 steps, two runs alternated):
26.8-27.9 -> 24.9-26.0 ms a step (session 37, the 2-core Xeon).

``1/sqrt(var + eps)`` is computed per channel in the kernel with IEEE results (inf at 0, NaN below 0), as refcnn
and PyTorch; the forward's kernel updates the running statistics, each channel's with the same float64 operations
as refcnn's loop (float16 ones: the same NumPy arithmetic in the wrapper).

Dtypes: the arrays are computed in ``compute_dtype`` of the float inputs (float16 in float32), each value
formed in float64 and rounded once when stored; results come back in the NumPy promotion of the float
inputs (``x``, ``running_mean``, ``running_var``, ``weight``, ``bias``, and ``grad_out`` for the backward).
The running statistics are updated in place in their own dtype, as in refcnn.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from cnnbase.checks import FORWARD, Verdicts, array_key, invalid
from cnnbase.norm import BatchNormArgs, call_key, check_batch_norm, check_batch_norm_backward

from . import _runtime
from ._conv_base import SUM_LANES, add_to_lanes
from ._prefetch import prefetch_row, prefetch_row_for_write, rows_ahead

__all__ = ["batch_norm", "batch_norm_backward"]


# ----------------------------------------------------------------------------------------------------------
# Kernels. fastmath is off in all of them: the sums keep the fixed lane order below (reassociation would let
# LLVM change it), and the elementwise parts are memory-bound, so it would buy nothing there.
#
# Every sum over ``(n, s)`` of one channel is a fixed-order float64 sum in SUM_LANES lanes (as
# ``_conv_base.add_to_lanes``, the convolutions' bias gradients), sample by sample: a row of at least SUM_LANES
# cells adds the terms of its whole blocks' cells s = j (mod SUM_LANES) onto lane j and its last S mod SUM_LANES
# cells in order onto a tail; a shorter row (7x7 maps, short 1-D inputs) adds cell s onto lane s. The total is
# the tail plus the lanes in order. With one cell per row (dense inputs) that is refcnn's sequential sum exactly;
# otherwise it agrees with it to float64 rounding. A single sequential chain waits for the adder at every
# element (about 4 cycles); the lanes are vectorised. Measured on (64, 16, 28, 28) float32, one thread, the
# statistics: 0.89 ms sequential, 0.38 ms in lanes through a float64 row, 0.23 ms with the terms formed in the
# lane loop; on (64, 64, 7, 7), rows of 49 cells: 0.27 ms summed sequentially, 0.074 ms in lanes.


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _lane_total(lanes, tail):
    total = tail
    for j in range(SUM_LANES):
        total += lanes[j]
    return total


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _ahead(a3, n, c, write=False):
    """Prefetch row (n + ahead, c) of ``a3``, when there is one: each pass below reads or writes a channel's
    rows, one per sample, ``C * S`` cells apart, which the hardware prefetchers do not follow (fastcnn._prefetch).
    The first pass over an array takes it; later passes of the same channel find it in L2."""
    ahead = rows_ahead(a3.shape[2], a3.itemsize)
    if n + ahead < a3.shape[0]:
        if write:
            prefetch_row_for_write(a3[n + ahead, c])
        else:
            prefetch_row(a3[n + ahead, c])


# Each sum has a loop for long rows and one for short rows, chosen once per channel: one loop with both
# branches inside ran the long rows 1.5x slower.


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_short_row(row, lanes):
    for j in range(row.size):
        lanes[j] += row[j]


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_squared_deviations(row, mean, lanes, tail):
    """The terms ``(row[s] - mean)^2`` of a long row, each formed in float64, added in the lane order."""
    end = row.size - row.size % SUM_LANES
    for i in range(0, end, SUM_LANES):
        for j in range(SUM_LANES):
            d = np.float64(row[i + j]) - mean
            lanes[j] += d * d
    for i in range(end, row.size):
        d = np.float64(row[i]) - mean
        tail += d * d
    return tail


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_short_squared_deviations(row, mean, lanes):
    for j in range(row.size):
        d = np.float64(row[j]) - mean
        lanes[j] += d * d


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_grad_products(g_row, x_row, mean, r, lanes, tail):
    """The terms ``g xhat = g[s] ((x[s] - mean) r)`` of a long row, each formed in float64, added in the lane
    order."""
    end = g_row.size - g_row.size % SUM_LANES
    for i in range(0, end, SUM_LANES):
        for j in range(SUM_LANES):
            lanes[j] += np.float64(g_row[i + j]) * ((np.float64(x_row[i + j]) - mean) * r)
    for i in range(end, g_row.size):
        tail += np.float64(g_row[i]) * ((np.float64(x_row[i]) - mean) * r)
    return tail


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_short_grad_products(g_row, x_row, mean, r, lanes):
    for j in range(g_row.size):
        lanes[j] += np.float64(g_row[j]) * ((np.float64(x_row[j]) - mean) * r)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _long_row_statistics(x3, c):
    """Channel ``c``'s batch mean and biased variance (float64), rows of at least SUM_LANES cells."""
    m = x3.shape[0] * x3.shape[2]
    lanes = np.zeros(SUM_LANES)
    tail = 0.0
    for n in range(x3.shape[0]):
        _ahead(x3, n, c)
        tail = add_to_lanes(x3[n, c], lanes, tail)
    mean = _lane_total(lanes, tail) / m
    lanes[:] = 0.0
    tail = 0.0
    for n in range(x3.shape[0]):
        tail = _add_squared_deviations(x3[n, c], mean, lanes, tail)
    return mean, _lane_total(lanes, tail) / m


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _channel_statistics(x3, c, training, means, variances, eps):
    """Channel ``c``'s mean and ``1/sqrt(var + eps)`` (long rows): in training the batch's (biased), written to
    ``means[c]`` and ``variances[c]``; otherwise those two given (the running statistics)."""
    if training:
        means[c], variances[c] = _long_row_statistics(x3, c)
    return means[c], 1.0 / np.sqrt(variances[c] + eps)


# Short rows (7x7 maps, short 1-D inputs) go a block of channels at a time, sample by sample: a row of 49 float32
# cells is 3 cache lines, C * S cells from the next row of its channel, so a channel at a time waits for memory at
# every row; a block's rows of one sample lie side by side, and the hardware prefetchers follow them. Each
# channel's sums keep their order (sample by sample, cell s onto lane s), so the results are the same bits as a
# channel at a time. Measured (64, 64, 7, 7) float32 with ReLU, 2 threads, after a 32 MB pass, a channel per
# block and these blocks alternated (session 39): forward 0.295 -> 0.254 ms, backward 0.519 -> 0.385 ms.


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _short_block_statistics(x3, c0, c1, training, means, variances, eps):
    """:func:`_channel_statistics` for channels ``c0:c1`` of short rows, sample by sample; returns their
    ``1/sqrt(var + eps)`` (c1 - c0,)."""
    m = x3.shape[0] * x3.shape[2]
    if training:
        lanes = np.zeros((c1 - c0, SUM_LANES))
        for n in range(x3.shape[0]):
            for c in range(c0, c1):
                _add_short_row(x3[n, c], lanes[c - c0])
        for c in range(c0, c1):
            means[c] = _lane_total(lanes[c - c0], 0.0) / m
        lanes[:] = 0.0
        for n in range(x3.shape[0]):
            for c in range(c0, c1):
                _add_short_squared_deviations(x3[n, c], means[c], lanes[c - c0])
        for c in range(c0, c1):
            variances[c] = _lane_total(lanes[c - c0], 0.0) / m
    rs = np.empty(c1 - c0)
    for c in range(c0, c1):
        rs[c - c0] = 1.0 / np.sqrt(variances[c] + eps)
    return rs


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _normalized_row(x_row, mean, r, w, b, add, r3, n, c, relu, row):
    """``row = (x - mean) r w + b``, then ``+ r3[n, c]`` (add), then the ReLU (relu): see :func:`_forward`."""
    zero = row.dtype.type(0)
    for s in range(row.size):
        row[s] = (np.float64(x_row[s]) - mean) * r * w + b
    if add:
        added = r3[n, c]
        for s in range(row.size):
            row[s] = row[s] + added[s]
    if relu:
        for s in range(row.size):
            row[s] = zero if row[s] <= zero else row[s]  # NaN fails `<=` and passes through


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_long_channel(x3, c, training, eps, means, variances, weight, bias, relu, add, r3, y3, update,
                          running_mean, running_var, momentum, bessel):
    """Channel ``c`` of :func:`_forward`, long rows: its statistics, then its rows."""
    mean, r = _channel_statistics(x3, c, training, means, variances, eps)
    if update:
        _update_running_channel(running_mean, running_var, means[c], variances[c], momentum, bessel, c)
    w, b = np.float64(weight[c]), np.float64(bias[c])  # exact: the loops below as for float64 weights
    for n in range(x3.shape[0]):
        _ahead(y3, n, c, True)
        if not training:
            _ahead(x3, n, c)
        if add:
            _ahead(r3, n, c)
        _normalized_row(x3[n, c], mean, r, w, b, add, r3, n, c, relu, y3[n, c])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_short_block(x3, c0, c1, training, eps, means, variances, weight, bias, relu, add, r3, y3, update,
                         running_mean, running_var, momentum, bessel):
    """Channels ``c0:c1`` of :func:`_forward`, short rows, sample by sample."""
    rs = _short_block_statistics(x3, c0, c1, training, means, variances, eps)
    if update:
        for c in range(c0, c1):
            _update_running_channel(running_mean, running_var, means[c], variances[c], momentum, bessel, c)
    for n in range(x3.shape[0]):
        for c in range(c0, c1):
            _normalized_row(x3[n, c], means[c], rs[c - c0], np.float64(weight[c]), np.float64(bias[c]), add, r3, n,
                            c, relu, y3[n, c])


@numba.njit(parallel=True, fastmath=False, error_model="numpy", **_runtime.KERNEL_FLAGS)
def _forward(x3, training, eps, means, variances, weight, bias, relu, add, r3, y3, update, running_mean,
             running_var, momentum, bessel, blocks):
    """``y = (x - mean_c) * inv_std_c * weight_c + bias_c``, one block of channels per work item (``blocks`` of
    them; one channel each for long rows): its statistics (:func:`_channel_statistics`), then its rows. One
    parallel region per call: waking the threads costs more than a small layer's arithmetic on a busy machine.
    ``add``: each row, once stored (rounded to y's dtype), gets the same row of ``r3`` added in y's dtype (NumPy's
    ``y + r``); ``relu``: then goes through fastcnn.relu's rule in place (fastcnn.norm_relu). ``update``: the
    channel's running statistics are updated in place (:func:`_update_running_channel`; ``bessel`` m / (m - 1))."""
    c_count, s_count = x3.shape[1], x3.shape[2]
    for block in numba.prange(blocks):
        c0, c1 = block * c_count // blocks, (block + 1) * c_count // blocks
        if s_count < SUM_LANES:
            _forward_short_block(x3, c0, c1, training, eps, means, variances, weight, bias, relu, add, r3, y3,
                                 update, running_mean, running_var, momentum, bessel)
        else:
            for c in range(c0, c1):
                _forward_long_channel(x3, c, training, eps, means, variances, weight, bias, relu, add, r3, y3,
                                      update, running_mean, running_var, momentum, bessel)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _long_row_grad_sums(gs, gc, x3, c, mean, r, ask_g):
    """``(sum_{n,s} g, sum_{n,s} g xhat)`` of channel ``c`` in the lane order, g = gs[:, gc]; long rows.
    ``ask_g``: prefetch g's rows too (not when g is the masked copy, already in L2)."""
    g_lanes, gx_lanes = np.zeros(SUM_LANES), np.zeros(SUM_LANES)
    g_tail = gx_tail = 0.0
    for n in range(gs.shape[0]):
        if ask_g:
            _ahead(gs, n, gc)
        _ahead(x3, n, c)
        g_tail = add_to_lanes(gs[n, gc], g_lanes, g_tail)
        gx_tail = _add_grad_products(gs[n, gc], x3[n, c], mean, r, gx_lanes, gx_tail)
    return _lane_total(g_lanes, g_tail), _lane_total(gx_lanes, gx_tail)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _masked_rows(g3, y3, c0, c1):
    """(N, c1 - c0, S): channels ``c0:c1`` of ``g3`` times fastcnn.relu_backward's mask of the ReLU's output
    ``y3`` (``y <= 0`` exactly where the pre-activation is), each product in g's dtype, as relu_backward computes
    it."""
    n_count, _, s_count = g3.shape
    zero, one = g3.dtype.type(0), g3.dtype.type(1)
    gm = np.empty((n_count, c1 - c0, s_count), dtype=g3.dtype)
    for n in range(n_count):
        for c in range(c0, c1):
            if s_count >= SUM_LANES:  # short rows go side by side (see _forward_short_block)
                _ahead(g3, n, c)
                _ahead(y3, n, c)
            for s in range(s_count):
                gm[n, c - c0, s] = g3[n, c, s] * (zero if y3[n, c, s] <= zero else one)
    return gm


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_x_row(g_row, x_row, training, mean, r, w, m, sum_dxhat, sum_dxhat_xhat, row):
    """``grad_x`` of one row (specs/norm.md): see :func:`_backward`."""
    for s in range(row.size):
        dxhat = np.float64(g_row[s]) * w
        if training:
            xhat = (np.float64(x_row[s]) - mean) * r
            row[s] = r / m * (m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
        else:
            row[s] = dxhat * r


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_long_channel(g3, x3, c, training, recompute, eps, means, variances, weight, masked, y3, grad_x3,
                           grad_weight, grad_bias):
    """Channel ``c`` of :func:`_backward`, long rows."""
    m = x3.shape[0] * x3.shape[2]
    mean, r = _channel_statistics(x3, c, training and recompute, means, variances, eps)
    w = np.float64(weight[c])  # exact; the loops below as for a float64 weight (float32 here ran them 8% slower)
    gs, gc = g3, np.int64(c)  # channel gc of gs is g (int64: the prange index is unsigned)
    if masked:
        gs, gc = _masked_rows(g3, y3, c, c + 1), np.int64(0)
    sum_g, sum_g_xhat = _long_row_grad_sums(gs, gc, x3, c, mean, r, not masked)
    grad_weight[c] = sum_g_xhat
    grad_bias[c] = sum_g
    for n in range(x3.shape[0]):
        _ahead(grad_x3, n, c, True)
        _grad_x_row(gs[n, gc], x3[n, c], training, mean, r, w, m, w * sum_g, w * sum_g_xhat, grad_x3[n, c])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_short_block(g3, x3, c0, c1, training, recompute, eps, means, variances, weight, masked, y3, grad_x3,
                          grad_weight, grad_bias):
    """Channels ``c0:c1`` of :func:`_backward`, short rows, sample by sample (see :func:`_forward_short_block`;
    every channel's sums in the order of a channel at a time)."""
    m = x3.shape[0] * x3.shape[2]
    rs = _short_block_statistics(x3, c0, c1, training and recompute, means, variances, eps)
    gs, first = g3, 0  # channel c of g is channel c - first of gs
    if masked:
        gs, first = _masked_rows(g3, y3, c0, c1), c0
    g_lanes, gx_lanes = np.zeros((c1 - c0, SUM_LANES)), np.zeros((c1 - c0, SUM_LANES))
    for n in range(x3.shape[0]):
        for c in range(c0, c1):
            _add_short_row(gs[n, c - first], g_lanes[c - c0])
            _add_short_grad_products(gs[n, c - first], x3[n, c], means[c], rs[c - c0], gx_lanes[c - c0])
    for c in range(c0, c1):
        grad_bias[c] = _lane_total(g_lanes[c - c0], 0.0)
        grad_weight[c] = _lane_total(gx_lanes[c - c0], 0.0)
    for n in range(x3.shape[0]):
        for c in range(c0, c1):
            w = np.float64(weight[c])
            _grad_x_row(gs[n, c - first], x3[n, c], training, means[c], rs[c - c0], w, m, w * grad_bias[c],
                        w * grad_weight[c], grad_x3[n, c])


@numba.njit(parallel=True, fastmath=False, error_model="numpy", **_runtime.KERNEL_FLAGS)
def _backward(g3, x3, training, recompute, eps, means, variances, weight, masked, y3, grad_x3, grad_weight,
              grad_bias, blocks):
    """Per block of channels (``blocks`` of them; one channel each for long rows), in one parallel region: the
    statistics (:func:`_channel_statistics`; in training taken from x again when ``recompute``, else ``means``
    and ``variances`` are the forward's), ``grad_bias = sum g``, ``grad_weight = sum g xhat``, then ``grad_x``
    (specs/norm.md), with ``sum dxhat = w_c grad_bias`` and ``sum dxhat xhat = w_c grad_weight`` (``dxhat =
    g w_c``). ``masked``: ``g`` is ``g3`` through the mask of the ReLU whose output is ``y3``
    (:func:`_masked_rows`, fastcnn.norm_relu)."""
    c_count, s_count = x3.shape[1], x3.shape[2]
    for block in numba.prange(blocks):
        c0, c1 = block * c_count // blocks, (block + 1) * c_count // blocks
        if s_count < SUM_LANES:
            _backward_short_block(g3, x3, c0, c1, training, recompute, eps, means, variances, weight, masked, y3,
                                  grad_x3, grad_weight, grad_bias)
        else:
            for c in range(c0, c1):
                _backward_long_channel(g3, x3, c, training, recompute, eps, means, variances, weight, masked, y3,
                                       grad_x3, grad_weight, grad_bias)


# ----------------------------------------------------------------------------------------------------------
# Helpers of the wrappers


def _weights(v, default: np.ndarray) -> np.ndarray:
    """A weight or bias (C,) for the kernels: ``v`` itself where the kernels take its dtype (they read each value
    into float64, exactly, as a float64 copy would hold it; a copy cost ~6 us a call in a training step), else
    a float64 copy; ``default`` (float64, the settled call's) when ``v`` is None."""
    if v is None:
        return default
    return v if v.dtype in _KERNEL_FLOATS else np.ascontiguousarray(v, dtype=np.float64)


def _channel_vector(v, c: int, default: float) -> np.ndarray:
    """A (C,) float64 copy of ``v``, or ``default`` everywhere when ``v`` is None."""
    if v is None:
        return np.full(c, default, dtype=np.float64)
    return np.ascontiguousarray(v, dtype=np.float64)


def _statistics(running_mean, running_var, a) -> tuple[np.ndarray, np.ndarray]:
    """(C,) float64 means and variances for the kernels: the running ones, or room for the batch's."""
    if a.training:
        return np.empty(a.c, dtype=np.float64), np.empty(a.c, dtype=np.float64)
    return _channel_vector(running_mean, a.c, 0.0), _channel_vector(running_var, a.c, 1.0)


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _update_running_channel(running_mean, running_var, mean, variance, momentum, bessel, c):
    """:func:`_update_running_stats` for channel ``c``, by the forward's kernel: the same float64 operations in
    the same order, each result rounded once to the running statistics' dtype."""
    running_mean[c] = (1.0 - momentum) * np.float64(running_mean[c]) + momentum * mean
    running_var[c] = (1.0 - momentum) * np.float64(running_var[c]) + momentum * variance * bessel


def _update_running_stats(running_mean, running_var, means, variances, a) -> None:
    """``r = (1 - momentum) r + momentum stat`` in place, with the unbiased variance ``var * m / (m - 1)``;
    the same float64 operations, in the same order, as refcnn's per-channel loop."""
    bessel = a.m / (a.m - 1)
    old_mean = np.asarray(running_mean, dtype=np.float64)
    old_var = np.asarray(running_var, dtype=np.float64)
    running_mean[...] = (1.0 - a.momentum) * old_mean + a.momentum * means
    running_var[...] = (1.0 - a.momentum) * old_var + a.momentum * variances * bessel


def check_saved_stats(saved_stats, a, caller: str, *, filled: bool) -> None:
    """``saved_stats``: None, or a (2, C) float64 C-contiguous array (writeable when the forward ``filled`` it)."""
    if saved_stats is None:
        return
    expected = f"None or a C-contiguous (2, {a.c}) float64 array (C={a.c} from x)" + (", writeable" if filled else "")
    if (not isinstance(saved_stats, np.ndarray) or saved_stats.dtype != np.float64 or saved_stats.shape != (2, a.c)
            or not saved_stats.flags.c_contiguous or (filled and not saved_stats.flags.writeable)):
        what = (f"array of dtype {saved_stats.dtype}, shape {saved_stats.shape}"
                if isinstance(saved_stats, np.ndarray) else saved_stats)
        raise ValueError(invalid(caller, "saved_stats", expected, what))


def _forward_statistics(running_mean, running_var, a, saved_stats) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_statistics`, in ``saved_stats``' rows when given (the running ones copied in, out of training)."""
    if saved_stats is not None and a.training:
        return saved_stats[0], saved_stats[1]  # the kernel writes the batch's there
    means, variances = _statistics(running_mean, running_var, a)
    if saved_stats is None:
        return means, variances
    saved_stats[0], saved_stats[1] = means, variances
    return saved_stats[0], saved_stats[1]


def _as_ncs(x: np.ndarray, a, dtype) -> np.ndarray:
    return _runtime.as_compute(x, dtype).reshape(a.n, a.c, a.s)


# ----------------------------------------------------------------------------------------------------------
# The passes (the public functions here and fastcnn.norm_relu's)


class _Settled(NamedTuple):
    """What a call's signature settles before its kernel: the checks' answer, the dtypes, and whether the
    forward's kernel updates the running statistics (training, with float32 or float64 ones; float16 ones are
    updated by NumPy after it, as the kernels take no float16)."""

    a: BatchNormArgs
    dtype: np.dtype  # the arrays are computed in it
    out: np.dtype  # the results come back in it (NumPy's promotion of the float inputs)
    update: bool
    blocks: int  # the kernels' work items: a channel each (long rows), or a block of channels per thread (short)
    ones: np.ndarray  # (C,) float64: the weight when there is none (read by the kernels only)
    zeros: np.ndarray  # (C,) float64: the bias when there is none


#: The settled answers, remembered per signature (issue 16): a layer calls with the same shapes and
#: hyperparameters every step, and each of the checks, the dtypes' promotion and the running statistics' NumPy
#: update cost 20-40 us a call in a ResNet-20 step, where the kernel before has left the caches cold.
_SETTLED = Verdicts()


def _settled(caller, x, running_mean, running_var, weight, bias, training, momentum, eps, saved_stats,
             grad_out=FORWARD) -> _Settled:
    """The checks (refusals raise), then what they settle, remembered by everything they read."""
    key = call_key(caller, x, running_mean, running_var, weight, bias, training, momentum, eps, grad_out)
    saved = array_key(saved_stats, (None,))
    if key is not None and saved is not None and saved[0] != "is":
        saved += (saved_stats.flags.c_contiguous, saved_stats.flags.writeable)
    return _SETTLED.get(None if key is None or saved is None else (key, saved),
                        lambda: _settle(caller, x, running_mean, running_var, weight, bias, training, momentum, eps,
                                        saved_stats, grad_out))


def _settle(caller, x, running_mean, running_var, weight, bias, training, momentum, eps, saved_stats, grad_out):
    forward = grad_out is FORWARD
    if forward:
        a = check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, op=caller)
    else:
        a = check_batch_norm_backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps,
                                      op=caller)
    check_saved_stats(saved_stats, a, caller, filled=forward)
    inputs = (x, running_mean, running_var, weight, bias) + (() if forward else (grad_out,))
    update = (forward and a.training and a.has_running_stats
              and all(v.dtype in _KERNEL_FLOATS for v in (running_mean, running_var)))
    return _Settled(a, _runtime.compute_dtype(*inputs), _runtime.result_dtype(*inputs), update, _blocks(a),
                    np.ones(a.c), np.zeros(a.c))


def _blocks(a: BatchNormArgs) -> int:
    """The kernels' work items: one per channel for long rows; for short rows (:func:`_forward_short_block`) one
    block of channels per thread Numba may run (``NUMBA_NUM_THREADS``, fixed for the process: the count is
    remembered with the settled call; fewer running threads take several blocks each). The blocks never change
    a result."""
    if a.s >= SUM_LANES:
        return a.c
    return max(1, min(a.c, numba.config.NUMBA_NUM_THREADS))


#: The dtypes the kernels take: native float32 and float64 (not a big-endian one, whose ``dtype.type`` is the
#: same, nor float16).
_KERNEL_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))




def forward(x, running_mean, running_var, weight, bias, training, momentum, eps, relu: bool, caller: str,
            residual=None, saved_stats=None):
    """batch_norm's work, checked for ``caller``; ``relu``: fastcnn.norm_relu's fused ReLU too; ``residual``
    (checked by the caller: x's shape, the dtype of this batch norm's result): added before the ReLU;
    ``saved_stats``: None, or (2, C) float64 that receives the means and variances x was normalised with
    (fastcnn.norm_relu)."""
    settled = _settled(caller, x, running_mean, running_var, weight, bias, training, momentum, eps, saved_stats)
    a, dtype = settled.a, settled.dtype
    x3 = _as_ncs(x, a, dtype)
    means, variances = _forward_statistics(running_mean, running_var, a, saved_stats)
    y3 = np.empty(x3.shape, dtype=dtype)
    r3 = y3[:0] if residual is None else _runtime.as_compute(residual, dtype).reshape(x3.shape)
    _forward(x3, a.training, a.eps, means, variances, _weights(weight, settled.ones), _weights(bias, settled.zeros),
             relu, residual is not None, r3, y3, settled.update,
             *((running_mean, running_var) if settled.update else (means, variances)),  # stand-ins: not written
             a.momentum, a.m / (a.m - 1) if settled.update else 1.0, settled.blocks)
    if a.training and a.has_running_stats and not settled.update:
        _update_running_stats(running_mean, running_var, means, variances, a)
    return y3.reshape(x.shape).astype(settled.out, copy=False)


def backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps, y, caller: str,
             saved_stats=None):
    """batch_norm_backward's work, checked for ``caller``; with ``y`` (checked by the caller: x's shape), the
    gradient goes through the mask of the ReLU whose output y is first (fastcnn.norm_relu); ``saved_stats``:
    None, or the (2, C) float64 means and variances the forward normalised x with, used instead of computing
    them again (two passes over x fewer in training)."""
    settled = _settled(caller, x, running_mean, running_var, weight, bias, training, momentum, eps, saved_stats,
                       grad_out)
    a, dtype, out = settled.a, settled.dtype, settled.out
    x3, g3 = _as_ncs(x, a, dtype), _as_ncs(grad_out, a, dtype)
    y3 = x3 if y is None else _runtime.as_compute(y, dtype).reshape(x3.shape)
    if saved_stats is None:
        means, variances = _statistics(running_mean, running_var, a)
    elif saved_stats.flags.writeable:  # read in place: the kernel computes no statistics when given them
        means, variances = saved_stats[0], saved_stats[1]
    else:  # a read-only array is another type to Numba, one the kernel (which may write them) does not take
        means, variances = saved_stats[0].copy(), saved_stats[1].copy()
    grad_x3 = np.empty(x3.shape, dtype=dtype)
    grad_weight = np.empty(a.c, dtype=np.float64)
    grad_bias = np.empty(a.c, dtype=np.float64)
    _backward(g3, x3, a.training, saved_stats is None, a.eps, means, variances, _weights(weight, settled.ones),
              y is not None, y3, grad_x3, grad_weight, grad_bias, settled.blocks)
    return (
        grad_x3.reshape(x.shape).astype(out, copy=False),
        grad_weight.astype(out, copy=False) if a.has_weight else None,
        grad_bias.astype(out, copy=False) if a.has_bias else None,
    )


# ----------------------------------------------------------------------------------------------------------
# Public functions


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return forward(x, running_mean, running_var, weight, bias, training, momentum, eps, False, "batch_norm")


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None, training=False,
                        momentum=0.1, eps=1e-5):
    return backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps, None,
                    "batch_norm_backward")


_runtime.share_docstrings(globals(), __all__)
