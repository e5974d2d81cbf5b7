"""What fastcnn's convolution modules share (conv.py, conv_taps1d.py, conv_direct.py, winograd.py).

* **Scratch buffers**: one per (name, dtype), kept between calls; per-thread ones indexed by Numba's thread id.
* **Padding through index maps**: an input is padded by reading it through one map per axis (``src[j]``: the
  input cell that padded cell ``j`` copies, ``-1`` for a zero cell; :func:`src_map`), so every fill costs the
  same and no later loop tests bounds. A gradient computed on the padded plane goes back to the input by
  adding each cell onto the cell it copied: :func:`fold`, the padding's adjoint.
* **Ordered sums**: weight gradients are summed in blocks of :data:`GW_BLOCK` samples and the blocks added
  in order (:func:`sum_blocks`), so results do not depend on the thread count.
* **A batch norm after the convolution** (fastcnn.conv_norm): :func:`norm_span` on each channel's stored
  outputs, in cache.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import prange

from cnnbase.conv import WEIGHT_GRAD_BLOCK
from cnnbase.padding import source_index

from . import _runtime

__all__ = ["GW_BLOCK", "SCRATCH", "int_view", "none", "thread_slots", "buffers", "src_map", "conv_maps", "pad",
           "pad_planes", "identity_run", "copied_once", "fold", "sum_blocks", "SUM_LANES", "add_to_lanes", "fill_rows",
           "widen", "row_cells", "positions", "matrix", "NORM", "NORM_RELU", "NORM_RESIDUAL", "norm_flags", "norm_span"]

_FM = _runtime.FASTMATH


#: Samples whose weight-gradient terms one task adds up in its private buffer. Fixed, never derived from the
#: thread count, so the order of every addition, and so the result, is the same for any number of threads.
#: The ground floor's size check counts the ceil(N / GW_BLOCK) buffers (cnnbase.conv.conv_arrays).
GW_BLOCK = WEIGHT_GRAD_BLOCK


SCRATCH = _runtime.SCRATCH


def int_view(a: np.ndarray) -> np.ndarray:
    """An integer view of the float32 or float64 array ``a``, same shape: its bits, for kernels that move or
    compare values without reading them as floats."""
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


def none(ndim: int, dtype) -> np.ndarray:
    """An empty stand-in for an array argument a kernel is told not to touch (kernels take no None)."""
    return np.empty((0,) * ndim, dtype=dtype)


def thread_slots() -> int:
    """Per-thread buffers are indexed by Numba's thread id, below the pool size fixed at start-up."""
    return numba.config.NUMBA_NUM_THREADS


def buffers(name: str, shape: tuple, dtype) -> np.ndarray:
    """A scratch array of ``(threads,) + shape``, reused between calls."""
    slots = thread_slots()
    size = slots * math.prod(shape)  # ints: math.prod is 10x quicker than np.prod on a tuple
    return SCRATCH.get(name, size, dtype).reshape((slots,) + tuple(shape))


def src_map(pad_begin: int, padded: int, mode: str, real: int) -> np.ndarray:
    """The input index each of ``padded`` cells reads (``-1``: zero), for an axis of ``real`` input cells
    placed after ``pad_begin`` cells of padding: :func:`cnnbase.padding.source_index` on a whole axis at
    once (an axis of 10^8 padded cells takes a second this way, minutes one cell at a time)."""
    if padded <= 256:  # a short axis (the usual one) is quicker one cell at a time than in six NumPy calls
        return np.array([j if 0 <= j < real else (-1 if mode == "zeros" else source_index(j, real, mode))
                         for j in range(-pad_begin, padded - pad_begin)], dtype=np.int64)
    j = np.arange(padded, dtype=np.int64) - pad_begin
    inside = (j >= 0) & (j < real)
    if mode == "zeros":
        return np.where(inside, j, -1)
    if mode == "replicate":
        return np.clip(j, 0, real - 1)
    if mode == "circular":
        return j % real
    period = 2 * (real - 1)  # reflect (real >= 2 whenever an axis is padded, checked by the geometry)
    if period == 0:
        return np.where(inside, j, 0)
    r = j % period
    return np.where(r < real, r, period - r)


def conv_maps(g2):
    """Index maps of a convolution's padded input: size + both pads cells per axis, through the fill. New
    arrays at every call (a kernel may be given them to keep), made from maps computed once per axis."""
    (H, W), ((PH, PHe), (PW, PWe)) = g2.sizes, g2.pads
    return _axis_map(PH, H + PH + PHe, g2.padding_mode, H), _axis_map(PW, W + PW + PWe, g2.padding_mode, W)


def _axis_map(pad_begin: int, padded: int, mode: str, real: int) -> np.ndarray:
    """:func:`src_map`, a new array; a short axis's map (the usual one) from a tuple remembered per axis: a
    training step asks for the same few axes at every layer, and a 30-cell axis cost 8 us a call."""
    if padded > 256:
        return src_map(pad_begin, padded, mode, real)
    return np.array(_short_axis_map(pad_begin, padded, mode, real), dtype=np.int64)


@functools.lru_cache(maxsize=1024)
def _short_axis_map(pad_begin: int, padded: int, mode: str, real: int) -> tuple:
    return tuple(src_map(pad_begin, padded, mode, real).tolist())


def pad(x4, src_h, src_w, name: str):
    """x4 (N, C, H, W) read through the index maps into a scratch buffer (N, C, Hp, Wp); x4 itself when the
    maps are the identity (no padding)."""
    N, C, H, W = x4.shape
    Hp, Wp = src_h.size, src_w.size
    if Hp == H and Wp == W:
        return x4
    out = SCRATCH.get(name, N * C * Hp * Wp, x4.dtype).reshape(N, C, Hp, Wp)
    pad_planes(x4.reshape(N * C, H, W), src_h, src_w, out.reshape(N * C, Hp, Wp))
    return out


# Kernels


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def pad_planes(x, src_h, src_w, out):
    """out[p, i, j] = x[p, src_h[i], src_w[j]], or 0 where either index is -1. x (P, H, W), out (P, Hp, Wp).

    The columns that read the input in order (src_w[j] = j - lo for j in [lo, hi)) are copied as one run.
    """
    P, Hp, Wp = out.shape
    lo, hi = identity_run(src_w)
    for p in prange(P):
        for i in range(Hp):
            sh = src_h[i]
            if sh < 0:
                out[p, i, :] = 0
                continue
            out[p, i, lo:hi] = x[p, sh, 0:hi - lo]
            for j in range(lo):
                sw = src_w[j]
                out[p, i, j] = x[p, sh, sw] if sw >= 0 else 0
            for j in range(hi, Wp):
                sw = src_w[j]
                out[p, i, j] = x[p, sh, sw] if sw >= 0 else 0


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def identity_run(src):
    """(lo, hi): the cells lo <= j < hi of a padded axis that read the input in order (src[j] = j - lo)."""
    n = src.size
    lo = 0
    while lo < n and src[lo] != 0:
        lo += 1
    hi = lo
    while hi < n and src[hi] == hi - lo:
        hi += 1
    return lo, hi


def copied_once(src, size: int) -> bool:
    """Whether the index map ``src`` copies the ``size`` input cells once each, in order, side by side (a zero
    fill, or none): then they are its in-order run and nothing else."""
    idx = np.flatnonzero(src >= 0)
    return idx.size == size and np.array_equal(src[idx], np.arange(size)) and idx[-1] - idx[0] == size - 1


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def fold(planes, src_h, src_w, gx):
    """gx = 0, then each padded cell's value is added onto the input cell it was copied from (the adjoint of
    the padding; index -1, a zero-filled cell, gives nothing). Rows in order, cells in order: a fixed order.
    The in-order run of each row is a vectorised add; only the fill's cells are looked up one by one."""
    C, Hp, Wp = planes.shape
    lo, hi = identity_run(src_w)
    gx[:] = 0
    for c in range(C):
        for i in range(Hp):
            sh = src_h[i]
            if sh < 0:
                continue
            dst = gx[c, sh]
            src = planes[c, i]
            for j in range(lo):
                if src_w[j] >= 0:
                    dst[src_w[j]] += src[j]
            for j in range(hi - lo):
                dst[j] += src[lo + j]
            for j in range(hi, Wp):
                if src_w[j] >= 0:
                    dst[src_w[j]] += src[j]


def row_cells(cells: int, itemsize: int) -> int:
    """The stride (in cells) between the position rows of a Winograd buffer whose rows hold ``cells``: rounded
    up to 4 KiB and one 64-byte line more. The transforms write (read) the rows at once; streams 4 KiB apart
    share one L1 set and evict each other (measured: a 64x56x56 input transform of F(2x2, 3x3) ran 10x
    slower with its 16 rows 7 x 4 KiB apart)."""
    page = 4096 // itemsize
    return -(-cells // page) * page + 64 // itemsize


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def positions(flat, count, S):
    """A thread's flat Winograd buffer as ``count`` rows of S cells, one per tile position."""
    return flat[:count * S].reshape((count, S))


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def matrix(flat, S, xi, a, b):
    """Row xi of :func:`positions` as the C-contiguous (a, b) matrix it holds."""
    return flat[xi * S:xi * S + a * b].reshape((a, b))


#: Lanes of :func:`add_to_lanes` (a module constant: the compiler unrolls and vectorises the lane loop; a
#: run-time width measured 2x slower).
SUM_LANES = 64


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def add_to_lanes(row, lanes, tail):
    """``lanes[j] += row[i + j]`` over the whole blocks of SUM_LANES cells of ``row``, in order, then the last
    cells onto ``tail``, in order; returns the new tail. lanes: SUM_LANES float64. The fixed-order float64 sum
    of the bias gradients (fastcnn.conv, fastcnn.conv_pool): the same bits for any vector width."""
    end = row.size - row.size % SUM_LANES
    for i in range(0, end, SUM_LANES):
        block = row[i:i + SUM_LANES]
        for j in range(SUM_LANES):
            lanes[j] += block[j]
    for i in range(end, row.size):
        tail += row[i]
    return tail


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def add_masked_to_lanes(row, y, lanes, tail):
    """:func:`add_to_lanes` of ``row * (0 if y <= 0 else 1)`` (a ReLU's input gradient from its output ``y``, as
    fastcnn.conv's ``_relu_grad`` forms it), without writing that product anywhere: the same values added in
    the same order, so the same bits."""
    end = row.size - row.size % SUM_LANES
    for i in range(0, end, SUM_LANES):
        block, mask = row[i:i + SUM_LANES], y[i:i + SUM_LANES]
        for j in range(SUM_LANES):
            lanes[j] += block[j] * (0.0 if mask[j] <= 0.0 else 1.0)
    for i in range(end, row.size):
        tail += row[i] * (0.0 if y[i] <= 0.0 else 1.0)
    return tail


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _sum_blocks(blocks, out):
    # Plain loops over each row: the array expressions ``out[i, :] += blocks[b, i, :]`` ran 2-4x slower
    # (36 x 4,096 sums of 4 blocks, one thread: 155 against 82 us); the same additions in the same order.
    B, A, K = blocks.shape
    for i in prange(A):
        o = out[i]
        for j in range(K):
            o[j] = 0
        for b in range(B):
            src = blocks[b, i]
            for j in range(K):
                o[j] = o[j] + src[j]


def sum_blocks(blocks, out):
    """out[i, j] = blocks[0, i, j] + blocks[1, i, j] + ..., in that order; one row of out per task (on the
    calling thread alone when out is small: ``_runtime.launch``)."""
    _runtime.launch(_sum_blocks, out.size, blocks, out)


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def fill_rows(y2, bias):
    """y2[c, :] = bias[c]; y2 (C, L), one sample."""
    for c in range(y2.shape[0]):
        y2[c, :] = bias[c]


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def widen(g2, W_out, Wp, wide):
    """wide[c, oh*Wp + ow] = g2[c, oh*W_out + ow] for ow < W_out, and 0 in the Wp - W_out cells after each
    row: one sample's output gradient laid out on :func:`fastcnn.conv._shifted_gemm`'s wide grid."""
    C, L = g2.shape
    H_out = L // W_out
    for c in range(C):
        for oh in range(H_out):
            wide[c, oh * Wp:oh * Wp + W_out] = g2[c, oh * W_out:(oh + 1) * W_out]
            wide[c, oh * Wp + W_out:(oh + 1) * Wp] = 0


#: Flags of what :func:`norm_span` does after the evaluation-mode batch norm: the ReLU, and a residual added
#: before it (fastcnn.conv_norm).
NORM, NORM_RELU, NORM_RESIDUAL = 1, 2, 4


def norm_flags(norm, relu: bool, residual) -> int:
    """:func:`norm_span`'s ``mode`` for a batch norm's table (None: no batch norm, 0), its ReLU, a residual."""
    if norm is None:
        return 0
    return NORM | (NORM_RELU if relu else 0) | (0 if residual is None else NORM_RESIDUAL)


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def norm_span(span, mean, r, scale, shift, mode, residual):
    """One channel's stored convolution outputs (a contiguous 1-D span) through an evaluation-mode batch norm,
    ``(y - mean) * r * scale + shift`` in float64 (r = 1 / sqrt(running_var + eps): fastcnn.norm's operations
    in its order), rounded to the span's dtype; then, by ``mode``'s flags, ``+ residual`` (a span as long:
    NumPy's sum in that dtype) and the ReLU (fastcnn.relu's rule). Indexed from 0: with indices that Numba
    must test for being negative the loops did not vectorise (1.15 against 0.19 ms for 64 x 16 x 28 x 28 on
    one thread)."""
    # One loop per combination of flags, each value's operations in the order above (the normalised value
    # rounded to the dtype first): spans of a 7x7 map's 49 cells paid each loop's remainder three times.
    dt = span.dtype.type
    zero = dt(0)
    if mode & NORM_RESIDUAL and mode & NORM_RELU:
        for j in range(span.size):
            v = dt((np.float64(span[j]) - mean) * r * scale + shift) + residual[j]
            span[j] = zero if v <= zero else v  # NaN fails `<=` and passes through
    elif mode & NORM_RESIDUAL:
        for j in range(span.size):
            span[j] = dt((np.float64(span[j]) - mean) * r * scale + shift) + residual[j]
    elif mode & NORM_RELU:
        for j in range(span.size):
            v = dt((np.float64(span[j]) - mean) * r * scale + shift)
            span[j] = zero if v <= zero else v
    else:
        for j in range(span.size):
            span[j] = (np.float64(span[j]) - mean) * r * scale + shift
