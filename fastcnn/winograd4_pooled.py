"""The 2x2 max pooling of ReLU inside F(4x4, 3x3)'s output transform, and its gradient's way back
(fastcnn.winograd4 for fastcnn.conv_pool).

A 4x4 output tile holds four whole 2x2 pooling windows, so the forward pools each tile's outputs while they are
in registers and never writes the convolution's output (:func:`pooled_output_row`, then :func:`store_pooled` a
chunk at a time), and the backward rebuilds each tile's output gradient from the pooled one and the windows'
winners (:func:`pooled_channels_last`, :func:`load_pooled_grad_rows`): the values fastcnn.relu_pool_forward and
relu_pool_backward compute from the stored output, bit for bit. The tile transforms themselves are
fastcnn.winograd4_tiles'. Kernels: arrays and ints only.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _runtime
from ._vector_tiles import fits
from .pool import _max2x2, _position2x2, _relu, _relu_passes
from .winograd4_tiles import _at, _block, _check_tiles, _output_tile, _vat

__all__ = ["pooled_output_row", "store_pooled", "pooled_channels_last", "load_pooled_grad_rows"]


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _pool_cells(a, c, d, e, zero, one):
    """(max_pool(relu) of the window a, c / d, e; its winner 0..3 by fastcnn.pool's scan rule on the ReLU'd
    values, plus 4 when ReLU stops the winner's gradient): selects only, so a loop of these vectorises."""
    ra, rc, rd, re = _relu(a, zero), _relu(c, zero), _relu(d, zero), _relu(e, zero)
    pos = _position2x2(ra, rc, rd, re)
    won = a if pos == 0 else (c if pos == 1 else (d if pos == 2 else e))
    return _max2x2(ra, rc, rd, re), pos + 4 * np.int32(_relu_passes(won, zero, one) == zero)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def pooled_output_row(M, t0, tw, bias, want_bias, row, pt, wt, h, codes):
    """The 2x2 max pooling of ReLU of the tile row's outputs (+ bias), in place of :func:`output_row` and
    :func:`store_rows`: pt[row + r, q, k] = max_pool(relu(y))[r, q, k] for the tile row's two pooled rows r and
    its 2 tw pooled columns q, as fastcnn.relu_pool_forward computes it from y, and wt[...] = :func:`_pool_cells`'s
    code; channel-last. The first pass of A^T is :func:`output_row`'s; the second takes the tile's columns
    two at a time (one pooled column), and pools their eight outputs while they are in registers (the same
    values: 12% quicker than writing the tile row and pooling it after). pt, wt (>= row + 2, 2 tw, K);
    :func:`store_pooled` copies a chunk's rows out. ``codes`` False: the winners are not wanted (an inference
    pass), and only the values are computed, the same ones. Channels of whole vectors: each output tile in vector
    registers (fastcnn._vector_tiles) into the scratch h, then pooled from there: the same values, the same bits."""
    if fits(pt.shape[2], pt.itemsize):
        _pooled_output_row_vectors(M, t0, tw, bias, want_bias, row, pt, wt, h, codes)
    else:
        _pooled_output_row_loops(M, t0, tw, bias, want_bias, row, pt, wt, h, codes)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _pooled_output_row_vectors(M, t0, tw, bias, want_bias, row, pt, wt, h, codes):
    K = pt.shape[2]
    SM = M.shape[1]
    _check_tiles(2 * tw <= pt.shape[1] and (t0 + tw) * K <= SM and 16 * K <= h.size,
                 "winograd4_pooled.pooled_output_row: tiles past the arrays")
    src, y = M.reshape(-1), h[:16 * K].reshape((4, 4, K))  # y[p, q]: the tile's outputs
    zero, one = pt.dtype.type(0), pt.dtype.type(1)
    for j in range(tw):
        _output_tile(src, (t0 + j) * K, 6 * SM, SM, h, 0, 4 * K, K, K)
        for half in range(2):
            yl0, yl1, yl2, yl3 = y[0, 2 * half], y[1, 2 * half], y[2, 2 * half], y[3, 2 * half]
            yr0, yr1, yr2, yr3 = y[0, 2 * half + 1], y[1, 2 * half + 1], y[2, 2 * half + 1], y[3, 2 * half + 1]
            top, top_w = pt[row, 2 * j + half], wt[row, 2 * j + half]
            low, low_w = pt[row + 1, 2 * j + half], wt[row + 1, 2 * j + half]
            if codes:
                for k in range(K):
                    b = bias[k] if want_bias else zero
                    top[k], top_w[k] = _pool_cells(yl0[k] + b, yr0[k] + b, yl1[k] + b, yr1[k] + b, zero, one)
                    low[k], low_w[k] = _pool_cells(yl2[k] + b, yr2[k] + b, yl3[k] + b, yr3[k] + b, zero, one)
                continue
            for k in range(K):
                b = bias[k] if want_bias else zero
                top[k] = _max2x2(_relu(yl0[k] + b, zero), _relu(yr0[k] + b, zero), _relu(yl1[k] + b, zero),
                                 _relu(yr1[k] + b, zero))
                low[k] = _max2x2(_relu(yl2[k] + b, zero), _relu(yr2[k] + b, zero), _relu(yl3[k] + b, zero),
                                 _relu(yr3[k] + b, zero))


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _pooled_output_row_loops(M, t0, tw, bias, want_bias, row, pt, wt, h, codes):
    K = pt.shape[2]
    h = _block(h, K)
    zero, one = pt.dtype.type(0), pt.dtype.type(1)
    for j in range(tw):
        o = (t0 + j) * K
        for a in range(6):
            b = 6 * a
            _vat(M[b, o:o + K], M[b + 1, o:o + K], M[b + 2, o:o + K], M[b + 3, o:o + K], M[b + 4, o:o + K],
                 M[b + 5, o:o + K], h[a, 0], h[a, 1], h[a, 2], h[a, 3])
        for half in range(2):
            lq, rq = 2 * half, 2 * half + 1  # the window's left and right columns of the tile
            l0, l1, l2, l3, l4, l5 = h[0, lq], h[1, lq], h[2, lq], h[3, lq], h[4, lq], h[5, lq]
            r0, r1, r2, r3, r4, r5 = h[0, rq], h[1, rq], h[2, rq], h[3, rq], h[4, rq], h[5, rq]
            top, top_w = pt[row, 2 * j + half], wt[row, 2 * j + half]
            low, low_w = pt[row + 1, 2 * j + half], wt[row + 1, 2 * j + half]
            if codes:
                for k in range(K):
                    b = bias[k] if want_bias else zero
                    yl = _at(l0[k], l1[k], l2[k], l3[k], l4[k], l5[k])  # the left column's rows 0..3
                    yr = _at(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])
                    top[k], top_w[k] = _pool_cells(yl[0] + b, yr[0] + b, yl[1] + b, yr[1] + b, zero, one)
                    low[k], low_w[k] = _pool_cells(yl[2] + b, yr[2] + b, yl[3] + b, yr[3] + b, zero, one)
                continue
            for k in range(K):
                b = bias[k] if want_bias else zero
                yl = _at(l0[k], l1[k], l2[k], l3[k], l4[k], l5[k])
                yr = _at(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])
                top[k] = _max2x2(_relu(yl[0] + b, zero), _relu(yr[0] + b, zero), _relu(yl[1] + b, zero),
                                 _relu(yr[1] + b, zero))
                low[k] = _max2x2(_relu(yl[2] + b, zero), _relu(yr[2] + b, zero), _relu(yl[3] + b, zero),
                                 _relu(yr[3] + b, zero))


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def store_pooled(pt, wt, qh, rows, yq, winners, codes):
    """yq[k, qh + r, q] = pt[r, q, k] and winners[k, qh + r, q] = wt[r, q, k] for the ``rows`` pooled rows
    of a chunk (those inside yq, Hq x Wq): :func:`pooled_output_row`'s values, channel-first. Once per sample and
    chunk, not per tile row: each channel's rows are then one run of whole cache lines (written a tile row at a
    time, between the chunk's GEMMs, the lines were fetched again for every row: the pooling took 4.8 ms of the
    seeds' conv2 forward, 2.4 alone)."""
    K, Hq, Wq = yq.shape
    for k in range(K):
        for r in range(min(rows, Hq - qh)):
            for q in range(Wq):
                yq[k, qh + r, q] = pt[r, q, k]
            if codes:  # ``codes`` False: none (an inference pass)
                for q in range(Wq):
                    winners[k, qh + r, q] = wt[r, q, k]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def pooled_channels_last(gq, winners, r0, r1, pt, wt):
    """pt[r - r0, q, k] = gq[k, r, q] times ReLU's factor on the window's winner (1, or 0 where the winner's
    value was <= 0: the gradient times 0, as fastcnn.relu_pool_backward computes it, -0.0 and NaN included)
    and wt[...] = the winner's position 0..3, for the pooled rows r0 <= r < r1 (those inside gq): a sample's
    pooled gradient, channel-last, once per chunk (a row pair per tile row, read across all channels at once,
    was 3x slower: the reads leap between the channels' planes). Each cell's channels are gathered and stored
    as one run (a loop over cells that stores K apart was 15% slower)."""
    K, Hq, Wq = gq.shape
    zero, one = pt.dtype.type(0), pt.dtype.type(1)
    for r in range(r0, min(r1, Hq)):
        for q in range(Wq):
            p, w = pt[r - r0, q], wt[r - r0, q]
            for k in range(K):
                code = winners[k, r, q]
                p[k] = gq[k, r, q] * (one if code < 4 else zero)
                w[k] = code & 3


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def load_pooled_grad_rows(pt_bits, wt, r0, rows, Wq, gt_bits):
    """The output gradient of a tile row under the pooling of :func:`store_pooled`, from
    :func:`pooled_channels_last`'s rows r0.. (``rows`` of them): each window's value on its winner's cell,
    +0.0 on the others and past the pooled cells, as fastcnn.relu_pool_backward writes them. On the bits
    (pt_bits, gt_bits: integer views of the float arrays pt and gt (4, 4*tw, K)): a cell is the value's bits
    AND a mask of all ones (the winner) or zeros (+0.0), so each loop over channels is branch-free integer
    work the compiler vectorises (a select per cell compiled to branches: 3x slower)."""
    gt_bits[2 * rows:] = 0  # the cells no window covers: past the last pooled row or column (an odd or partial edge)
    gt_bits[:2 * rows, 2 * Wq:] = 0
    for r in range(rows):
        for q in range(Wq):
            g, w = pt_bits[r0 + r, q], wt[r0 + r, q]
            t0, t1 = gt_bits[2 * r, 2 * q], gt_bits[2 * r, 2 * q + 1]
            b0, b1 = gt_bits[2 * r + 1, 2 * q], gt_bits[2 * r + 1, 2 * q + 1]
            for k in range(g.size):
                v, pos = g[k], w[k]
                t0[k] = v & -np.int32(pos == 0)
                t1[k] = v & -np.int32(pos == 1)
                b0[k] = v & -np.int32(pos == 2)
                b1[k] = v & -np.int32(pos == 3)
