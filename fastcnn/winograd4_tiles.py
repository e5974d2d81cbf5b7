"""The tile transforms of Winograd F(4x4, 3x3) (fastcnn.winograd4), one tile row at a time, channel-last.

With ``d`` a 6x6 input tile, ``Y`` a 4x4 output tile and the matrices of fastcnn.winograd4 (Lavin and Gray
2015), a tile row's transforms are:

* input: ``V[xi] = (B^T d B)[xi]`` for the 36 positions xi = a*6 + b (:func:`input_row`), and its adjoint,
  ``B dV B^T`` added onto the input gradient (:func:`input_adjoint_row`);
* output: ``Y = A^T M A`` (:func:`output_row`), and its adjoint, ``dM = A dY A^T`` (:func:`grad_out_row`);
* the copies between channel-first arrays and the channel-last rows the transforms read and write, the
  bias, and (for fastcnn.conv_pool) the 2x2 max pooling of ReLU and its gradient.

Every 2-D transform applies a 1-D one along the rows, then along the columns; every loop runs over the
channels, so that the compiler vectorises it. Kernels: arrays and ints only.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _runtime
from ._conv_base import NORM_RESIDUAL, identity_run, norm_span
from ._vector_tiles import fits, square, square_add, square_start, square_starts, square_width, tile_transform

__all__ = ["add_masked", "channels_last", "input_row", "output_row", "store_rows", "norm_rows", "load_grad_rows",
           "grad_out_row", "input_adjoint_row", "fold_channels_last", "masked_interior", "relu_mask"]

#: The transforms' constants as float32 scalars: exact in float32, and a float32 times a float32 stays float32
#: (an integer literal would make it float64) while a float64 times one stays float64.
_2, _4, _5, _8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


# ---------------------------------------------------------------------------------------------------
# The 1-D transforms on six (four) scalars; the 2-D ones apply them along rows, then along columns
# ---------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _bt(d0, d1, d2, d3, d4, d5):
    """B^T d: (4 d0 - 5 d2 + d4, -4 d1 - 4 d2 + d3 + d4, 4 d1 - 4 d2 - d3 + d4, -2 d1 - d2 + 2 d3 + d4,
    2 d1 - d2 - 2 d3 + d4, 4 d1 - 5 d3 + d5), sharing the sums rows 1-4 have in common."""
    p, q = d4 - _4 * d2, d3 - _4 * d1
    r, s = d4 - d2, _2 * (d3 - d1)
    return _4 * d0 - _5 * d2 + d4, p + q, p - q, r + s, r - s, _4 * d1 - _5 * d3 + d5


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _b(v0, v1, v2, v3, v4, v5):
    """B v, the adjoint of :func:`_bt`: column e of B^T dotted with v."""
    return (_4 * v0,
            _4 * (v2 - v1 + v5) + _2 * (v4 - v3),
            -_5 * v0 - _4 * (v1 + v2) - v3 - v4,
            v1 - v2 + _2 * (v3 - v4) - _5 * v5,
            v0 + v1 + v2 + v3 + v4,
            v5)


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _at(m0, m1, m2, m3, m4, m5):
    """A^T m: (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 (m3 - m4), m1 + m2 + 4 (m3 + m4), m1 - m2 + 8 (m3 - m4) + m5)."""
    s, d = m1 + m2, m1 - m2
    s2, d2 = m3 + m4, m3 - m4
    return m0 + s + s2, d + _2 * d2, s + _4 * s2, d + _8 * d2 + m5


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _a(o0, o1, o2, o3):
    """A o, the adjoint of :func:`_at`: (o0, o0 + o1 + o2 + o3, o0 - o1 + o2 - o3, o0 + 2 o1 + 4 o2 + 8 o3,
    o0 - 2 o1 + 4 o2 - 8 o3, o3)."""
    e, f = o0 + o2, o1 + o3
    e4, f2 = o0 + _4 * o2, _2 * o1 + _8 * o3
    return o0, e + f, e - f, e4 + f2, e4 - f2, o3


#: The 2-D transforms of one tile with the tile in vector registers (fastcnn._vector_tiles), for channel counts
#: of whole vectors: the same operations as the loops below, traced from the functions above, so the same bits.
_input_tile = tile_transform(_bt, 6)
_output_tile = tile_transform(_at, 6)
_grad_out_tile = tile_transform(_a, 4)
_input_adjoint_tile = tile_transform(_b, 6, accumulate=True)


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _check_tiles(fit, message):
    """Raise before a vector transform would read or write past its arrays (its intrinsic checks no bounds)."""
    if not fit:
        raise IndexError(message)


# ---------------------------------------------------------------------------------------------------
# Kernels: arrays and ints only. A tile row is the tw tiles side by side at tile height i; the tiles of a
# chunk are numbered row after row (sample after sample), t0 the first of a row.
# ---------------------------------------------------------------------------------------------------


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _block(h, n):
    """The first 36 n values of the flat scratch h as a (6, 6, n) block of channel vectors. Each vector is then a
    whole row of a C-contiguous array: sliced to n from a wider block, the loops over them ran 1.3-1.8x slower
    (16 to 64 channels, one thread)."""
    return h[:36 * n].reshape((6, 6, n))


# The same transforms on six (four) vectors of channels: one loop over the channels with each row a separate
# 1-D array. Written so, the compiler vectorises the loop; as a loop over 2-D indices (row, channel), the
# runtime overlap checks between 36 store streams of unknown stride made it give up (measured: scalar code,
# 3-4x slower).


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _vbt(d0, d1, d2, d3, d4, d5, v0, v1, v2, v3, v4, v5):
    """v_e[c] = (B^T d[:, c])[e]."""
    for c in range(v0.size):
        r = _bt(d0[c], d1[c], d2[c], d3[c], d4[c], d5[c])
        v0[c], v1[c], v2[c], v3[c], v4[c], v5[c] = r[0], r[1], r[2], r[3], r[4], r[5]


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _vb(v0, v1, v2, v3, v4, v5, d0, d1, d2, d3, d4, d5, accumulate):
    """d_e[c] = (B v[:, c])[e], or += when ``accumulate`` (a constant at each call: no branch in the loop)."""
    for c in range(d0.size):
        r = _b(v0[c], v1[c], v2[c], v3[c], v4[c], v5[c])
        if accumulate:
            d0[c], d1[c], d2[c], d3[c], d4[c], d5[c] = d0[c] + r[0], d1[c] + r[1], d2[c] + r[2], d3[c] + r[3], \
                d4[c] + r[4], d5[c] + r[5]
        else:
            d0[c], d1[c], d2[c], d3[c], d4[c], d5[c] = r[0], r[1], r[2], r[3], r[4], r[5]


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _vat(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3):
    """o_p[k] = (A^T m[:, k])[p]."""
    for k in range(o0.size):
        r = _at(m0[k], m1[k], m2[k], m3[k], m4[k], m5[k])
        o0[k], o1[k], o2[k], o3[k] = r[0], r[1], r[2], r[3]


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _va(o0, o1, o2, o3, m0, m1, m2, m3, m4, m5):
    """m_a[k] = (A o[:, k])[a]."""
    for k in range(m0.size):
        r = _a(o0[k], o1[k], o2[k], o3[k])
        m0[k], m1[k], m2[k], m3[k], m4[k], m5[k] = r[0], r[1], r[2], r[3], r[4], r[5]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def channels_last(xn, src_h, src_w, r0, r1, xt):
    """xt[r - r0, w, c] = xn[c, src_h[r], src_w[w]] for r0 <= r < r1, or 0 where either index is -1: rows of
    a sample's padded input (conv's index maps: zeros or any padding mode), channel-last, read straight from
    the unpadded sample. (A padded copy of the whole batch first cost more than these rows: ResNet-20 spent
    10 ms of a 190 ms step padding its 3x3 layers' inputs, forward and again backward.)"""
    C, H, W = xn.shape
    Wp = xt.shape[1]
    lo, hi = identity_run(src_w)
    width = square_width(hi - lo, C, xn.itemsize)
    blocks = square_starts(hi - lo, width)
    flat_x, flat_t = xn.reshape(-1), xt.reshape(-1)
    for r in range(r0, r1):
        sh = src_h[r]
        row = xt[r - r0]
        if sh < 0:
            row[:] = 0
            continue
        for w in range(src_w.size):
            sw = src_w[w]
            if blocks and lo <= w < hi:
                continue  # the in-order run: square blocks below
            if sw < 0:
                row[w, :] = 0
                continue
            for c in range(C):
                row[w, c] = xn[c, sh, sw]
        for c0 in range(0, C if blocks else 0, max(width, 1)):  # square blocks transposed in registers
            for b in range(blocks):
                w0 = square_start(b, hi - lo, width)
                square(width, flat_x, (c0 * H + sh) * W + w0, H * W, flat_t, ((r - r0) * Wp + lo + w0) * C + c0, C)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def input_row(xt, r, tw, V, t0, h):
    """V[a*6 + b, (t0 + j)*C + c] = (B^T d B)[a, b] for the 6x6 window d = xt[r:r+6, 4j:4j+6, c] of each
    tile j of the row: B^T along each window row into h (6, 6, C), then along each column of h.
    V (36, >= (t0 + tw)*C); h: scratch of at least 36 C values."""
    if fits(xt.shape[2], xt.itemsize):  # fastcnn._vector_tiles: the same bits
        _input_row_vectors(xt, r, tw, V, t0)
    else:
        _input_row_loops(xt, r, tw, V, t0, h)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_row_vectors(xt, r, tw, V, t0):
    C = xt.shape[2]
    Wp, SV = xt.shape[1], V.shape[1]
    _check_tiles(r + 6 <= xt.shape[0] and 4 * tw + 2 <= Wp and (t0 + tw) * C <= SV,
                 "winograd4_tiles.input_row: tiles past the arrays")
    src, dst = xt.reshape(-1), V.reshape(-1)
    for j in range(tw):
        _input_tile(src, (r * Wp + 4 * j) * C, Wp * C, C, dst, (t0 + j) * C, 6 * SV, SV, C)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_row_loops(xt, r, tw, V, t0, h):
    C = xt.shape[2]
    h = _block(h, C)
    for j in range(tw):
        s = 4 * j
        o = (t0 + j) * C
        for a in range(6):
            x = xt[r + a]
            _vbt(x[s], x[s + 1], x[s + 2], x[s + 3], x[s + 4], x[s + 5], h[a, 0], h[a, 1], h[a, 2], h[a, 3], h[a, 4],
                 h[a, 5])
        for b in range(6):
            _vbt(h[0, b], h[1, b], h[2, b], h[3, b], h[4, b], h[5, b],
                 V[b, o:o + C], V[6 + b, o:o + C], V[12 + b, o:o + C], V[18 + b, o:o + C], V[24 + b, o:o + C],
                 V[30 + b, o:o + C])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def output_row(M, t0, tw, yt, h):
    """yt[p, 4j + q, k] = (A^T M[:, t0 + j, k] A)[p, q] for each tile j of the row: A^T along each row of
    positions into h, then along the columns. yt (4, 4*tw, K); h: scratch of at least 36 K values."""
    if fits(yt.shape[2], yt.itemsize):  # fastcnn._vector_tiles: the same bits
        _output_row_vectors(M, t0, tw, yt)
    else:
        _output_row_loops(M, t0, tw, yt, h)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _output_row_vectors(M, t0, tw, yt):
    K = yt.shape[2]
    W4, SM = yt.shape[1], M.shape[1]
    _check_tiles(4 * tw <= W4 and (t0 + tw) * K <= SM, "winograd4_tiles.output_row: tiles past the arrays")
    src, dst = M.reshape(-1), yt.reshape(-1)
    for j in range(tw):
        _output_tile(src, (t0 + j) * K, 6 * SM, SM, dst, 4 * j * K, W4 * K, K, K)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _output_row_loops(M, t0, tw, yt, h):
    K = yt.shape[2]
    h = _block(h, K)
    for j in range(tw):
        o = (t0 + j) * K
        s = 4 * j
        for a in range(6):
            b = 6 * a
            _vat(M[b, o:o + K], M[b + 1, o:o + K], M[b + 2, o:o + K], M[b + 3, o:o + K], M[b + 4, o:o + K],
                 M[b + 5, o:o + K], h[a, 0], h[a, 1], h[a, 2], h[a, 3])
        for q in range(4):
            _vat(h[0, q], h[1, q], h[2, q], h[3, q], h[4, q], h[5, q],
                 yt[0, s + q], yt[1, s + q], yt[2, s + q], yt[3, s + q])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def store_rows(yt, bias, want_bias, oh, H_out, W_out, yn):
    """yn[k, oh + p, w] = yt[p, w, k] (+ bias[k]) for the rows and columns inside H_out x W_out. Without a bias,
    + 0: a -0.0 sum is stored as 0.0, as refcnn's sums from a zero bias give it. Channels of whole vectors go
    lanes by lanes cells at a time, transposed in registers with the addition on the way."""
    K = yn.shape[0]
    rows = min(4, H_out - oh)
    zero = yn.dtype.type(0)
    width = square_width(W_out, K, yn.itemsize)
    blocks = square_starts(W_out, width)
    if blocks:
        addend = bias if want_bias else np.zeros(K, dtype=yn.dtype)  # 16-64 values per tile row
        flat_t, flat_y, W4 = yt.reshape(-1), yn.reshape(-1), yt.shape[1]
        for p in range(rows):
            for k0 in range(0, K, width):
                for b in range(blocks):
                    w0 = square_start(b, W_out, width)
                    square_add(width, flat_t, (p * W4 + w0) * K + k0, K, flat_y,
                                (k0 * H_out + oh + p) * W_out + w0, H_out * W_out, addend, k0)
        return
    for k in range(K):
        b = bias[k] if want_bias else zero
        for p in range(rows):
            for w in range(W_out):
                yn[k, oh + p, w] = yt[p, w, k] + b


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def norm_rows(y, residual, n, r0, r1, norm, norm_mode):
    """Rows r0 <= r < r1 of sample n of y (N, K, H, W, C-contiguous), stored by :func:`store_rows`, through an
    evaluation-mode batch norm, ``norm`` (K, 4) float64 holding each channel's running mean,
    ``1 / sqrt(running_var + eps)``, weight and bias, and what ``norm_mode``'s flags add (``residual``, y's
    shape; the ReLU): ``_conv_base.norm_span`` on each channel's rows, one contiguous span in cache."""
    K, H, W = y.shape[1], y.shape[2], y.shape[3]
    size = (r1 - r0) * W
    flat_y, flat_r = y.reshape(-1), residual.reshape(-1)  # once: a view per channel cost more than a 7x7 span
    for k in range(K):
        start = ((n * K + k) * H + r0) * W
        span = flat_y[start:start + size]
        if norm_mode & NORM_RESIDUAL:
            norm_span(span, norm[k, 0], norm[k, 1], norm[k, 2], norm[k, 3], norm_mode, flat_r[start:start + size])
        else:
            norm_span(span, norm[k, 0], norm[k, 1], norm[k, 2], norm[k, 3], norm_mode, flat_r)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def load_grad_rows(gon, oh, H_out, W_out, gt):
    """gt[p, w, k] = gon[k, oh + p, w], 0 past H_out x W_out: a tile row's output gradient, channel-last.
    Channels of whole vectors go lanes by lanes cells at a time, transposed in registers."""
    K = gon.shape[0]
    cols = gt.shape[1]
    width = square_width(W_out, K, gon.itemsize)
    blocks = square_starts(W_out, width)
    flat_g, flat_t = gon.reshape(-1), gt.reshape(-1)
    for p in range(4):
        if blocks and oh + p < H_out:
            for k0 in range(0, K, width):
                for b in range(blocks):
                    w0 = square_start(b, W_out, width)
                    square(width, flat_g, (k0 * H_out + oh + p) * W_out + w0, H_out * W_out, flat_t,
                            (p * cols + w0) * K + k0, K)
            gt[p, W_out:] = 0
            continue
        for w in range(cols):
            if oh + p < H_out and w < W_out:
                for k in range(K):
                    gt[p, w, k] = gon[k, oh + p, w]
            else:
                for k in range(K):
                    gt[p, w, k] = 0


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def grad_out_row(gt, tw, dM, t0, h):
    """dM[a*6 + b, (t0 + j)*K + k] = (A dY A^T)[a, b] for the 4x4 output gradient dY = gt[:, 4j:4j+4, k] of
    each tile j: the adjoint of :func:`output_row` (A along each column into h, then along the rows)."""
    if fits(gt.shape[2], gt.itemsize):  # fastcnn._vector_tiles: the same bits
        _grad_out_row_vectors(gt, tw, dM, t0)
    else:
        _grad_out_row_loops(gt, tw, dM, t0, h)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_out_row_vectors(gt, tw, dM, t0):
    K = gt.shape[2]
    W4, SM = gt.shape[1], dM.shape[1]
    _check_tiles(gt.shape[0] == 4 and 4 * tw <= W4 and (t0 + tw) * K <= SM,
                 "winograd4_tiles.grad_out_row: tiles past the arrays")
    src, dst = gt.reshape(-1), dM.reshape(-1)
    for j in range(tw):
        _grad_out_tile(src, 4 * j * K, K, W4 * K, dst, (t0 + j) * K, SM, 6 * SM, K)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_out_row_loops(gt, tw, dM, t0, h):
    K = gt.shape[2]
    h = _block(h, K)
    for j in range(tw):
        s = 4 * j
        o = (t0 + j) * K
        for q in range(4):
            _va(gt[0, s + q], gt[1, s + q], gt[2, s + q], gt[3, s + q],
                h[0, q], h[1, q], h[2, q], h[3, q], h[4, q], h[5, q])
        for a in range(6):
            b = 6 * a
            _va(h[a, 0], h[a, 1], h[a, 2], h[a, 3],
                dM[b, o:o + K], dM[b + 1, o:o + K], dM[b + 2, o:o + K], dM[b + 3, o:o + K], dM[b + 4, o:o + K],
                dM[b + 5, o:o + K])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def input_adjoint_row(dV, t0, tw, r, plane, h):
    """plane[r:r+6, 4j:4j+6, c] += B dV[:, t0 + j, c] B^T for each tile j of the row, in order: the adjoint
    of :func:`input_row` (B along each row of positions into h, then along the columns, added onto the
    plane). plane (Hp, Wp, C), channel-last; h: scratch of at least 36 C values."""
    if fits(plane.shape[2], plane.itemsize):  # fastcnn._vector_tiles: the same bits
        _input_adjoint_row_vectors(dV, t0, tw, r, plane)
    else:
        _input_adjoint_row_loops(dV, t0, tw, r, plane, h)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_adjoint_row_vectors(dV, t0, tw, r, plane):
    C = plane.shape[2]
    Wp, SV = plane.shape[1], dV.shape[1]
    _check_tiles(r + 6 <= plane.shape[0] and 4 * tw + 2 <= Wp and (t0 + tw) * C <= SV,
                 "winograd4_tiles.input_adjoint_row: tiles past the arrays")
    src, dst = dV.reshape(-1), plane.reshape(-1)
    for j in range(tw):
        _input_adjoint_tile(src, (t0 + j) * C, 6 * SV, SV, dst, (r * Wp + 4 * j) * C, Wp * C, C, C)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_adjoint_row_loops(dV, t0, tw, r, plane, h):
    C = plane.shape[2]
    h = _block(h, C)
    for j in range(tw):
        s = 4 * j
        o = (t0 + j) * C
        for a in range(6):
            b = 6 * a
            _vb(dV[b, o:o + C], dV[b + 1, o:o + C], dV[b + 2, o:o + C], dV[b + 3, o:o + C], dV[b + 4, o:o + C],
                dV[b + 5, o:o + C], h[a, 0], h[a, 1], h[a, 2], h[a, 3], h[a, 4], h[a, 5], False)
        for q in range(6):
            _vb(h[0, q], h[1, q], h[2, q], h[3, q], h[4, q], h[5, q],
                plane[r, s + q], plane[r + 1, s + q], plane[r + 2, s + q], plane[r + 3, s + q], plane[r + 4, s + q],
                plane[r + 5, s + q], True)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def fold_channels_last(plane, src_h, src_w, once, gxn):
    """gxn = each padded cell of the channel-last plane (Hp, Wp, C) added onto the input cell it was copied
    from (index -1: a zero-filled cell, nothing): the adjoint of the padding, rows in order, cells in order.
    ``once``: every input cell was copied exactly once (a zero fill), so each is written, not summed, and
    gxn needs no zeroing first. A row of the plane is read for all channels while it is in L1, each channel's
    in-order run (``identity_run``) by a loop without branches (this order: 2x the channel-outer one); with
    ``once`` and channels of whole vectors, lanes by lanes cells at a time, transposed in registers."""
    Hp, Wp, C = plane.shape
    _, H, W = gxn.shape
    lo, hi = identity_run(src_w)
    width = square_width(hi - lo, C, gxn.itemsize) if once else 0
    blocks = square_starts(hi - lo, width)
    flat_p, flat_g = plane.reshape(-1), gxn.reshape(-1)
    if not once:
        gxn[:] = 0
    for i in range(Hp):
        sh = src_h[i]
        if sh < 0:
            continue
        if blocks:
            for c0 in range(0, C, width):
                for b in range(blocks):
                    j0 = square_start(b, hi - lo, width)
                    square(width, flat_p, (i * Wp + lo + j0) * C + c0, C, flat_g, (c0 * H + sh) * W + j0, H * W)
            continue
        for c in range(C):
            dst = gxn[c, sh]
            if once:
                for j in range(hi - lo):
                    dst[j] = plane[i, lo + j, c]
                continue
            for j in range(lo):
                if src_w[j] >= 0:
                    dst[src_w[j]] += plane[i, j, c]
            for j in range(hi - lo):
                dst[j] += plane[i, lo + j, c]
            for j in range(hi, Wp):
                if src_w[j] >= 0:
                    dst[src_w[j]] += plane[i, j, c]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def masked_interior(plane, xt, src_h, src_w, G):
    """G[i*W + j, c] = plane[r, w, c] * (0 if xt[r, w, c] <= 0 else 1) for the padded cell (r, w) that copied input
    cell (i, j) (src_h[r] = i, src_w[w] = j; a zero fill, each input cell copied once, in order): the input
    gradient of a ReLU whose output is the sample xt (channel-last, padded like the plane), as
    :func:`fold_channels_last` and :func:`relu_mask` give it, but channel-last: (H W, C), one row per cell."""
    C = plane.shape[2]
    lo_h, hi_h = identity_run(src_h)
    lo, hi = identity_run(src_w)
    W = hi - lo
    zero, one = plane.dtype.type(0), plane.dtype.type(1)
    for i in range(hi_h - lo_h):
        for j in range(W):
            p, m, g = plane[lo_h + i, lo + j], xt[lo_h + i, lo + j], G[i * W + j]
            for c in range(C):
                g[c] = p[c] * (zero if m[c] <= zero else one)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def relu_mask(gxn, xn):
    """gxn *= (0 if xn <= 0 else 1): fastcnn.relu_backward's product, in place, for an input xn that is a ReLU's
    output (``input_relu`` of fastcnn.conv_pool.conv_relu_pool_backward)."""
    g, x = gxn.reshape(-1), xn.reshape(-1)
    for i in range(g.size):
        g[i] = g[i] * (0.0 if x[i] <= 0.0 else 1.0)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def add_masked(gxn, gn, yn):
    """gxn = gxn + gn * (0 if yn <= 0 else 1), in place: fastcnn.relu_backward_add's sum (relu_backward's product
    in the dtype, then the sum in the dtype), for a residual block's identity shortcut (fastcnn.conv_residual)."""
    out, g, y = gxn.reshape(-1), gn.reshape(-1), yn.reshape(-1)
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for i in range(out.size):
        out[i] = out[i] + g[i] * (zero if y[i] <= zero else one)
