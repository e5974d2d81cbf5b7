"""Convolution, fast: conv1d, conv2d, their transposes and the backward of each (``specs/conv.md``).

Same names, arguments and errors as :mod:`refcnn.conv`; every check is the ground floor's
(:func:`cnnbase.conv.conv_geometry`, :func:`cnnbase.conv.conv_transpose_geometry`), run before any kernel.

How it computes (2-D; a 1-D op is the 2-D op with a unit height, as in refcnn):

1. **Pad once.** The input is copied into a padded buffer through the fill's index map ``src`` (one int
   array per axis, ``-1`` for a zero cell), so every fill costs the same and no later loop tests bounds
   (:mod:`fastcnn._conv_base`: the maps, the padding, its adjoint, the scratch buffers, the ordered sums).
2. **im2col per sample**, in the thread that will use it: ``cols[(ci, kh, kw), (oh, ow)] =
   x_pad[n, ci, oh*SH + kh*DH, ow*SW + kw*DW]`` into that thread's reused scratch buffer (flat rows, unsigned
   indices, so the row copies vectorise).
3. **GEMM through BLAS** inside the same ``prange`` task, one BLAS thread per task (so nothing is
   oversubscribed and there is one parallel region per pass): forward ``y[n, group] = W_g @ cols_g``;
   weight gradient ``dW_g = sum_n G_o[n, group] @ cols_g^T`` (accumulated in place, beta = 1); input
   gradient ``dcols_g = W_g^T @ G_o[n, group]``. The BLAS is NumPy's OpenBLAS called through CBLAS when
   NumPy ships one, else SciPy's through ``np.dot`` (see :mod:`fastcnn._blas`).
4. **col2im and fold** (input gradient): ``dcols`` is added back onto a padded plane, and the plane is folded
   onto the input through the same index map (a padded cell gives its gradient to the cell it copied).

**Stride 1 with many channels** (``SHIFTED_MIN_CHANNELS`` per group, 64) skips steps 2 and 4: tap (kh, kw)
reads the padded plane shifted by a constant offset, so on a *wide* output grid (rows of ``Wp`` cells, the
last ``Wp - W_out`` of each computed and dropped) every tap is one GEMM whose operand is the padded input
itself, read in place through CBLAS's leading dimension (``_shifted_gemm``, ``_shifted_gemm_backward``).
That saves the im2col copy, 9 times the input for a 3x3 kernel; with few channels the per-tap GEMMs are too
thin to pay for it.

**1-D, stride 1, the same channel rule** (:mod:`fastcnn.conv_taps1d`; issue 14): the wide grid of
a single row is the output itself, so each tap's GEMM writes ``y[n]`` and reads ``grad_out[n]`` in place,
with no wide buffer and no copy. With a zero fill nothing is padded at all: a tap's GEMM covers only the
output (forward) or input (input gradient) cells whose partner lies inside the array. The weight gradient
reads a channels-last padded copy of the input, so its per-tap GEMM takes no transposed operand.

A transposed convolution is a convolution's input gradient used as a layer, so its forward is steps 3-4 with
``x`` in the role of ``G_o``, and its backward is steps 1-3 on the padded ``grad_out``.

Determinism: every task writes its own samples; the weight gradient is summed sample by sample, in order,
within blocks of ``GW_BLOCK`` samples (a constant), and the blocks are added in order afterwards; each GEMM
runs on one thread. So results are bit-identical whatever the thread count (on one machine and BLAS: the
CBLAS and np.dot paths may differ in the last bits).

Zero fill versus refcnn: refcnn *skips* zero-filled cells, the GEMM multiplies them by 0. With finite weights
and gradients that is the same number; with an infinite or NaN weight (or ``grad_out``) a window that lies
partly in zero padding gives NaN here where refcnn gives a number. The stride-1 path's dropped columns are
such zeros too: there an infinite input can also turn a weight gradient of +-inf into NaN.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from cnnbase.conv import (
    ConvGeometry, as_2d, canonical, conv_geometry_of, conv_transpose_geometry_of, fit_geometry,
)
from cnnbase.checks import FORWARD, Verdicts, array_key, check_bool
from cnnbase.conv_algorithm import check_algorithm

from . import _blas, _runtime, conv_direct, im2row
from ._blas import gemm, gemm_strided, single_threaded
from ._conv_base import (
    GW_BLOCK, SCRATCH, SUM_LANES, add_masked_to_lanes, add_to_lanes, buffers as _buffers, conv_maps as _conv_maps,
    fill_rows as _fill_rows, fold as _fold, none as _none, norm_flags, norm_span, pad as _pad, src_map as _src_map,
    sum_blocks as _sum_blocks, widen as _widen,
)
from .conv_taps1d import taps_1d_backward_pass as _taps_1d_backward_pass, taps_1d_pass as _taps_1d_pass

__all__ = [
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
]

# ---------------------------------------------------------------------------------------------------
# Kernels: arrays and ints only
# ---------------------------------------------------------------------------------------------------

_FM = _runtime.FASTMATH


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _im2col(planes, KH, KW, SH, SW, DH, DW, H_out, W_out, cols):
    """cols[(c*KH + kh)*KW + kw, oh*W_out + ow] = planes[c, oh*SH + kh*DH, ow*SW + kw*DW], one sample.

    ``planes`` is the padded sample (C, Hp, Wp), so every read is in bounds by construction. Both arrays are
    read as flat rows with unsigned indices (np.uintp): with an int index computed from the runtime strides,
    Numba adds a negative-index check to every access and LLVM no longer vectorises the copy (4x slower).
    One loop for every stride, no ``if SW == 1`` special case: LLVM versions this loop for a unit stride by
    itself, and a branch between two copy loops made it vectorise neither (measured 10-14x slower).
    """
    C, Hp, Wp = planes.shape
    src = planes.reshape(-1)
    dst = cols.reshape(-1)
    L = H_out * W_out
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                row = ((c * KH + kh) * KW + kw) * L
                for oh in range(H_out):
                    s0 = (c * Hp + oh * SH + kh * DH) * Wp + kw * DW
                    d0 = row + oh * W_out
                    for ow in range(W_out):
                        dst[np.uintp(d0 + ow)] = src[np.uintp(s0 + ow * SW)]


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _col2im(dcols, KH, KW, SH, SW, DH, DW, H_out, W_out, planes):
    """The adjoint of ``_im2col``: planes = 0, then add each ``dcols`` value onto the cell im2col read it
    from. The order of additions onto a cell is fixed by the loops; flat unsigned indices as in _im2col."""
    C, Hp, Wp = planes.shape
    dst = planes.reshape(-1)
    src = dcols.reshape(-1)
    L = H_out * W_out
    dst[:] = 0
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                row = ((c * KH + kh) * KW + kw) * L
                for oh in range(H_out):
                    d0 = (c * Hp + oh * SH + kh * DH) * Wp + kw * DW
                    s0 = row + oh * W_out
                    for ow in range(W_out):
                        dst[np.uintp(d0 + ow * SW)] += src[np.uintp(s0 + ow)]


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _add_bias(y2, bias):
    """y2[c, :] += bias[c]; y2 (C, L), one sample."""
    for c in range(y2.shape[0]):
        b = bias[c]
        for i in range(y2.shape[1]):
            y2[c, i] += b


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _relu_rows(y2):
    """y2 = relu(y2) in place, as fastcnn.relu computes it (NaN passes); y2 (C, L), one sample."""
    flat = y2.reshape(-1)
    for i in range(flat.size):
        v = flat[i]
        flat[i] = 0.0 if v <= 0.0 else v


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _relu_grad(g2, y2, out):
    """out = g2 * (0 if y2 <= 0 else 1): fastcnn.relu_backward's product (y2, the ReLU's output, is <= 0
    exactly where its input is), so NaN and infinities in g2 behave alike; (C, L) arrays of one sample."""
    g, y, o = g2.reshape(-1), y2.reshape(-1), out.reshape(-1)
    for i in range(o.size):
        o[i] = g[i] * (0.0 if y[i] <= 0.0 else 1.0)


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _im2col_gemm(xp, w2, go3, bias, G, KH, KW, SH, SW, DH, DW, H_out, W_out, block,
                 want_y, want_gw, want_bias, cblas, y3, gw_blocks, cols_bufs, relu, masked, ym3, gm_bufs, norm,
                 norm_mode):
    """im2col of each padded sample, then per group ``g`` (``cols_g``: that group's rows of cols):

    * ``want_y``: ``y3[n, group] = w2[group] @ cols_g`` (+ ``bias`` when ``want_bias``);
    * ``want_gw``: ``gw_blocks[b, group] = sum over the samples n of block b, in order, of
      go3[n, group] @ cols_g^T`` (each GEMM adds onto the block's sum, beta = 1).

    xp (N, C, Hp, Wp); w2 (C_y, C/G*KH*KW); go3 (N, C_w, L); y3 (N, C_y, L); gw_blocks (B, C_w, C/G*KH*KW)
    with B = ceil(N / block). One task per block of samples; each thread has its own im2col buffer
    (``cols_bufs[thread]``); BLAS runs single-threaded inside.

    The ReLU after the convolution, for fastcnn.conv_relu: ``relu``: each sample's output is replaced by its
    ReLU while it is still in cache; ``masked``: the weight gradient is that of ``_relu_grad(go3[n], ym3[n])``
    (the ReLU's input gradient, ym3 the ReLU's output), formed per sample in ``gm_bufs[thread]`` (C_w, L).
    The evaluation-mode batch norm after it, for fastcnn.conv_norm: ``norm_mode`` (0: none), ``norm`` (C_y, 4):
    each sample's channels go through ``_conv_base.norm_span`` while they are in cache (no residual here).
    """
    N = xp.shape[0]
    K_g = cols_bufs.shape[1] // G
    C_y_g = y3.shape[1] // G
    C_w_g = gw_blocks.shape[1] // G
    for b in prange((N + block - 1) // block):
        tid = numba.get_thread_id()
        cols = cols_bufs[tid]
        for n in range(b * block, min(N, (b + 1) * block)):
            _im2col(xp[n], KH, KW, SH, SW, DH, DW, H_out, W_out, cols)
            if want_gw and masked:
                _relu_grad(go3[n], ym3[n], gm_bufs[tid])
            for g in range(G):
                cols_g = cols[g * K_g:(g + 1) * K_g]
                if want_y:
                    y_g = y3[n, g * C_y_g:(g + 1) * C_y_g]
                    if want_bias:  # the bias first and the product added on: no extra pass over y
                        _fill_rows(y_g, bias[g * C_y_g:(g + 1) * C_y_g])
                    gemm(False, False, w2[g * C_y_g:(g + 1) * C_y_g], cols_g, y_g, want_bias, cblas)
                if want_gw:
                    g_n = gm_bufs[tid] if masked else go3[n]  # go3 is a placeholder in a forward pass
                    gemm(False, True, g_n[g * C_w_g:(g + 1) * C_w_g], cols_g,
                          gw_blocks[b, g * C_w_g:(g + 1) * C_w_g], n > b * block, cblas)
            if want_y and norm_mode != 0:
                for k in range(y3.shape[1]):
                    norm_span(y3[n, k], norm[k, 0], norm[k, 1], norm[k, 2], norm[k, 3], norm_mode, y3[n, k])
            if want_y and relu:
                _relu_rows(y3[n])


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _shifted_gemm(xp, w_taps, bias, G, KH, KW, DH, DW, H_out, W_out, want_bias, y3, wide_bufs):
    """The forward of a stride-1 convolution without im2col: one GEMM per kernel tap, onto a wide output.

    With unit strides, tap (kh, kw) reads the padded plane shifted by ``off = kh*DH*Wp + kw*DW`` cells, so
    over a *wide* output grid of H_out rows of Wp cells (W_out real ones, then ``Wp - W_out`` cells that
    are computed and dropped) ``wide[co, j] = sum over taps of sum_ci w[co, ci, kh, kw] * xp[ci, off + j]``:
    per group and tap a GEMM ``wide_g += w_taps[tap, group] @ xp_g[:, off:off + L]`` whose right factor is
    the padded sample itself, read in place (row stride Hp*Wp). ``L = H_out*Wp - DW*(KW - 1)`` keeps the
    last tap inside the plane; the cells past L are in the dropped columns of the last row. Then the real
    columns are copied into y3 (+ bias). The taps are added in a fixed order, one GEMM per task (CBLAS).

    xp (N, C, Hp, Wp); w_taps (KH*KW, C_y, C/G); y3 (N, C_y, H_out*W_out); wide_bufs (threads, C_y, H_out*Wp).
    """
    N, C, Hp, Wp = xp.shape
    C_g = C // G
    C_y_g = y3.shape[1] // G
    L = H_out * Wp - DW * (KW - 1)
    for n in prange(N):
        wide = wide_bufs[numba.get_thread_id()]
        planes = xp[n].reshape(C, Hp * Wp)
        for g in range(G):
            for tap in range(KH * KW):
                off = (tap // KW) * DH * Wp + (tap % KW) * DW
                gemm_strided(False, False, w_taps[tap, g * C_y_g:(g + 1) * C_y_g],
                             planes[g * C_g:(g + 1) * C_g, off:off + L], wide[g * C_y_g:(g + 1) * C_y_g, :L],
                             tap > 0)
        for c in range(y3.shape[1]):
            b = bias[c] if want_bias else 0.0
            for oh in range(H_out):
                src = wide[c, oh * Wp:oh * Wp + W_out]
                dst = y3[n, c, oh * W_out:(oh + 1) * W_out]
                for ow in range(W_out):
                    dst[ow] = src[ow] + b




@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _shifted_gemm_backward(xp, go3, w_taps, G, KH, KW, DH, DW, H_out, W_out, block, src_h, src_w,
                           gw_blocks, gx, wide_bufs, plane_bufs):
    """Both gradients of :func:`_shifted_gemm`'s convolution, without im2col or col2im.

    With ``dy`` the sample's output gradient on the wide grid (zeros in the dropped columns) and, for tap
    (kh, kw), ``off = kh*DH*Wp + kw*DW``:

    * weight gradient, per group and tap: ``gw_blocks[b, tap, group] += dy_g[:, :L] @ xp_g[:, off:off + L]^T``,
      summed over the samples of block b in order (the first one writes, beta = 0);
    * input gradient: a zeroed padded plane gets ``plane_g[:, off:off + L] += w_taps[tap, group]^T @
      dy_g[:, :L]`` for every tap in order, then is folded onto gx[n] through the fill's index maps.

    A dropped column of ``dy`` is 0, so it adds nothing to either gradient (as long as the values it meets
    are finite). xp (N, C, Hp, Wp); go3 (N, C_y, H_out*W_out); w_taps (KH*KW, C_y, C/G); gw_blocks
    (B, KH*KW, C_y, C/G) with B = ceil(N / block); gx (N, C, H, W); wide_bufs (threads, C_y, H_out*Wp);
    plane_bufs (threads, C, Hp, Wp).
    """
    N, C, Hp, Wp = xp.shape
    C_g = C // G
    C_y = go3.shape[1]
    C_y_g = C_y // G
    L = H_out * Wp - DW * (KW - 1)
    for b in prange((N + block - 1) // block):
        tid = numba.get_thread_id()
        dy = wide_bufs[tid]
        plane = plane_bufs[tid]
        planes = plane.reshape(C, Hp * Wp)
        for n in range(b * block, min(N, (b + 1) * block)):
            _widen(go3[n], W_out, Wp, dy)
            x_planes = xp[n].reshape(C, Hp * Wp)
            planes[:, :] = 0
            for g in range(G):
                dy_g = dy[g * C_y_g:(g + 1) * C_y_g, :L]
                for tap in range(KH * KW):
                    off = (tap // KW) * DH * Wp + (tap % KW) * DW
                    gemm_strided(False, True, dy_g, x_planes[g * C_g:(g + 1) * C_g, off:off + L],
                                 gw_blocks[b, tap, g * C_y_g:(g + 1) * C_y_g], n > b * block)
                    gemm_strided(True, False, w_taps[tap, g * C_y_g:(g + 1) * C_y_g], dy_g,
                                 planes[g * C_g:(g + 1) * C_g, off:off + L], True)
            _fold(plane, src_h, src_w, gx[n])


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _gemm_col2im(go3, w2, bias, G, KH, KW, SH, SW, DH, DW, H_out, W_out, src_h, src_w, want_bias, cblas,
                 gx, dcols_bufs, plane_bufs, masked, ym3, gm_bufs):
    """gx[n] = fold(col2im(dcols)) with ``dcols[group] = w2[group]^T @ go3[n, group]``: the input gradient of
    ``_im2col_gemm``'s product (+ ``bias`` per channel of gx when ``want_bias``).

    go3 (N, C_y, L); w2 (C_y, C/G*KH*KW); gx (N, C, H, W); src_h, src_w map the padded planes (Hp, Wp) onto
    gx's cells. One task per sample, per-thread buffers. ``masked``: go3[n] is first multiplied by the ReLU's
    mask, as in :func:`_im2col_gemm`.
    """
    N = go3.shape[0]
    C_y_g = go3.shape[1] // G
    K_g = w2.shape[1]
    C = gx.shape[1]
    for n in prange(N):
        tid = numba.get_thread_id()
        dcols = dcols_bufs[tid]
        g_n = go3[n]
        if masked:
            g_n = gm_bufs[tid]
            _relu_grad(go3[n], ym3[n], g_n)
        for g in range(G):
            gemm(True, False, w2[g * C_y_g:(g + 1) * C_y_g], g_n[g * C_y_g:(g + 1) * C_y_g],
                  dcols[g * K_g:(g + 1) * K_g], False, cblas)
        _col2im(dcols, KH, KW, SH, SW, DH, DW, H_out, W_out, plane_bufs[tid])
        _fold(plane_bufs[tid], src_h, src_w, gx[n])
        if want_bias:
            _add_bias(gx[n].reshape(C, gx.shape[2] * gx.shape[3]), bias)


#: Partial sums per channel in :func:`_bias_grad`: each a float64 lane the loop vectoriser can keep in a
#: register without reassociating anything. Measured here (AVX-512, float32, 128x64x24x24): 8 lanes ran 4x
#: slower than a fast-math sum, 64 lanes as fast (0.15-0.36 ms); a constant, so the sum is the same
#: everywhere.
BIAS_LANES = SUM_LANES


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _bias_grad(g, masked, ym, out):
    """out[c] = the sum of g[:, c, :] in float64; g (N, C, L). A batch reduction, so fastmath is off and the
    order is the code's: one task per channel; lane j adds the cells i = j (mod BIAS_LANES) of each row's
    whole blocks, samples in order, a row's last L mod BIAS_LANES cells go to ``tail`` in order, and the lanes
    are added in order at the end. The same bits for any thread count and any vector width. ``masked``: the
    sum of ``_relu_grad(g, ym)`` instead, masked as it is added (fastcnn.conv_relu)."""
    N, C, L = g.shape
    for c in prange(C):
        lanes = np.zeros(BIAS_LANES)
        tail = 0.0
        for n in range(N):
            if masked:
                tail = add_masked_to_lanes(g[n, c], ym[n, c], lanes, tail)
            else:
                tail = add_to_lanes(g[n, c], lanes, tail)
        total = tail
        for j in range(BIAS_LANES):
            total += lanes[j]
        out[c] = total


# ---------------------------------------------------------------------------------------------------
# The passes: buffers and index maps around the kernels
# ---------------------------------------------------------------------------------------------------

def _relu_buffers(ym3, go3):
    """(masked, ym3, per-thread (C_w, L) buffers) for the kernels' ReLU mask: none when ``ym3`` is None."""
    if ym3 is None:
        return False, _none(3, go3.dtype), _none(3, go3.dtype)
    return True, ym3, _buffers("conv.relu_grad", go3.shape[1:], go3.dtype)


def _gemm_pass(xp, G, kernel, stride, dilation, out_hw, w2=None, bias=None, y3=None, go3=None, relu=False,
               ym3=None, norm=None, norm_relu=False):
    """im2col of the padded input ``xp`` sample by sample, then per group:

    * when ``y3`` is given (forward): ``y3[n, group] = w2[group] @ cols[n, group]`` (+ ``bias``);
    * when ``go3`` is given (weight gradient): returns ``sum_n go3[n, group] @ cols[n, group]^T``, shape
      ``(C_w, C/G * KH * KW)`` where ``C_w = go3.shape[1]``.

    ``xp`` (N, C, Hp, Wp); ``w2`` (C_y, C/G*KH*KW); ``y3`` (N, C_y, H_out*W_out); ``go3`` (N, C_w, H_out*W_out).
    ``relu``: y3 receives the ReLU of the convolution; ``ym3`` (a ReLU's output, go3's shape): the weight
    gradient is that of the ReLU's input (fastcnn.conv_relu). ``norm`` (C_y, 4) float64: y3 receives the
    evaluation-mode batch norm of the convolution, and its ReLU with ``norm_relu`` (fastcnn.conv_norm).
    """
    N, C = xp.shape[0], xp.shape[1]
    (KH, KW), (SH, SW), (DH, DW), (H_out, W_out) = kernel, stride, dilation, out_hw
    K_g = C // G * KH * KW
    dtype = xp.dtype
    cols = _buffers("conv.cols", (C * KH * KW, H_out * W_out), dtype)
    n_blocks = -(-N // GW_BLOCK)
    if go3 is not None:
        gw_blocks = SCRATCH.get("conv.gw", n_blocks * go3.shape[1] * K_g, dtype).reshape(n_blocks, -1, K_g)
    else:
        gw_blocks = _none(3, dtype)
    want_gw = go3 is not None
    go3 = go3 if want_gw else _none(3, dtype)
    masked, ym3, gm = _relu_buffers(ym3, go3)
    with single_threaded(_blas.CBLAS):
        _im2col_gemm(xp, _none(2, dtype) if w2 is None else w2, go3,
                     _none(1, dtype) if bias is None else bias, G, KH, KW, SH, SW, DH, DW, H_out, W_out, GW_BLOCK,
                     y3 is not None, want_gw, bias is not None, _blas.CBLAS,
                     _none(3, dtype) if y3 is None else y3, gw_blocks, cols, relu, masked, ym3, gm,
                     np.zeros((1, 4)) if norm is None else norm, norm_flags(norm, norm_relu, None))
        if not want_gw:
            return None
        grad_w = np.empty((go3.shape[1], K_g), dtype=dtype)
        _sum_blocks(gw_blocks, grad_w)
    return grad_w


#: Input channels per group from which a stride-1 forward takes :func:`_shifted_gemm` (a GEMM per tap,
#: no im2col) instead of im2col + one GEMM. Measured here (2 threads, float32, interleaved runs): 16x64x56x56
#: -> 64, 3x3, pad 1: 29.6 ms against 35.5; 128x32x24x24 -> 64: 28.6 against 27.4; 128x3x32x32 -> 32: 5.8
#: against 3.7. Each tap's GEMM has only C/G terms per output, so with few channels the repeated passes over
#: the output cost more than the im2col copy they save.
SHIFTED_MIN_CHANNELS = 64


def _shifted_pays(geom, g2) -> bool:
    return g2.stride == (1, 1) and geom.C_in // geom.G >= SHIFTED_MIN_CHANNELS and _blas.CBLAS


def _shifted_pass(xp, w4, bias, G, g2, y3):
    """y3 = the convolution of the padded input ``xp`` by ``w4`` (+ ``bias``), by :func:`_shifted_gemm`."""
    (KH, KW), (DH, DW), (H_out, W_out) = g2.kernel, g2.dilation, g2.out
    C_y = w4.shape[0]
    w_taps = np.ascontiguousarray(w4.reshape(C_y, -1, KH * KW).transpose(2, 0, 1))
    wide = _buffers("conv.wide", (C_y, H_out * xp.shape[3]), xp.dtype)
    with single_threaded(True):
        _shifted_gemm(xp, w_taps, _none(1, xp.dtype) if bias is None else bias, G, KH, KW, DH, DW, H_out, W_out,
                      bias is not None, y3, wide)


def _shifted_backward_pass(xp, go3, w4, G, g2, src_h, src_w, gx):
    """gx (overwritten) and the returned weight gradient (C_y, C/G, KH, KW) of the convolution of ``xp`` by
    ``w4``, by :func:`_shifted_gemm_backward`; ``src_h``, ``src_w`` map the padded planes onto gx's cells."""
    (KH, KW), (DH, DW), (H_out, W_out) = g2.kernel, g2.dilation, g2.out
    N, C, Hp, Wp = xp.shape
    C_y, dtype = w4.shape[0], xp.dtype
    w_taps = np.ascontiguousarray(w4.reshape(C_y, -1, KH * KW).transpose(2, 0, 1))
    n_blocks = -(-N // GW_BLOCK)
    gw_blocks = SCRATCH.get("conv.gw", n_blocks * KH * KW * C_y * (C // G), dtype).reshape(
        n_blocks, KH * KW, C_y, C // G)
    wide = _buffers("conv.wide", (C_y, H_out * Wp), dtype)
    planes = _buffers("conv.planes", (C, Hp, Wp), dtype)
    with single_threaded(True):
        _shifted_gemm_backward(xp, go3, w_taps, G, KH, KW, DH, DW, H_out, W_out, GW_BLOCK, src_h, src_w,
                               gw_blocks, gx, wide, planes)
        grad_taps = np.empty((KH * KW, C_y * (C // G)), dtype=dtype)
        _sum_blocks(gw_blocks.reshape(n_blocks, KH * KW, -1), grad_taps)
    # (tap, C_y, C/G) -> (C_y, C/G, KH, KW)
    return np.ascontiguousarray(grad_taps.reshape(KH, KW, C_y, C // G).transpose(2, 3, 0, 1))


def _taps_1d_pays(geom, g2) -> bool:
    """A 1-D convolution that :func:`_shifted_pays` would give to the shifted GEMMs takes their 1-D form,
    :func:`_taps_1d`: the same GEMMs with no wide buffer, no copy of ``grad_out``, no padded plane to fold
    when the fill is zeros."""
    return geom.rank == 1 and _shifted_pays(geom, g2)


def _col2im_pass(go3, w2, bias, G, kernel, stride, dilation, out_hw, src_h, src_w, gx, ym3=None):
    """gx = fold(col2im(w2_g^T @ go3[n, group])) (+ ``bias``): the input gradient of ``_gemm_pass``'s
    forward. ``go3`` (N, C_y, H_out*W_out), ``w2`` (C_y, C/G*KH*KW), gx (N, C, H, W) is overwritten;
    ``src_h``, ``src_w`` map the padded planes (their sizes) onto gx's cells. ``ym3``: as in _gemm_pass."""
    C = gx.shape[1]
    (KH, KW), (SH, SW), (DH, DW), (H_out, W_out) = kernel, stride, dilation, out_hw
    dtype = gx.dtype
    dcols = _buffers("conv.dcols", (C * KH * KW, H_out * W_out), dtype)
    planes = _buffers("conv.planes", (C, src_h.size, src_w.size), dtype)
    with single_threaded(_blas.CBLAS):
        _gemm_col2im(go3, w2, _none(1, dtype) if bias is None else bias, G, KH, KW, SH, SW, DH, DW,
                     H_out, W_out, src_h, src_w, bias is not None, _blas.CBLAS, gx, dcols, planes,
                     *_relu_buffers(ym3, go3))


def _grad_bias(go3, ym3=None):
    out = np.empty(go3.shape[1], dtype=go3.dtype)
    _bias_grad(go3, ym3 is not None, _none(3, go3.dtype) if ym3 is None else ym3, out)
    return out


# ---------------------------------------------------------------------------------------------------
# The four directions, for both ranks (arrays lifted to 2-D as in refcnn)
# ---------------------------------------------------------------------------------------------------


def _transpose_maps(g2):
    """Index maps between a transposed convolution's output and the plane its kernel copies are added on.

    Plane cell ``i`` is output cell ``i - p_b``; the plane spans the full, uncropped output and, when
    output_padding reaches past it, the appended cells (which receive no copy and stay 0)."""
    maps = []
    for n, k, s, d, (pb, _), out in zip(g2.sizes, g2.kernel, g2.stride, g2.dilation, g2.pads, g2.out):
        full = (n - 1) * s + d * (k - 1) + 1
        maps.append(_src_map(pb, max(full, pb + out), "zeros", out))
    return maps


def _compute(arrays, dtype):
    return [None if a is None else _runtime.as_compute(as_2d(a) if a.ndim == 3 else a, dtype) for a in arrays]


#: Algorithms beside the direct one, as name: (pays, forward, backward), registered by their modules when
#: fastcnn is imported (fastcnn.winograd4, fastcnn.winograd): they import this module's helpers, so it cannot
#: import them (no import cycle). 'auto' asks them in registration order and takes the first that pays.
ALGORITHMS = {}


def _other(geom, algorithm, dtype):
    """The registered algorithm ``algorithm`` (checked) names, or the one 'auto' picks by its rule; None: direct."""
    if algorithm == "auto":
        return next((entry for entry in ALGORITHMS.values() if entry[0](geom, dtype)), None)
    return ALGORITHMS.get(algorithm)


def gemm_path(geom: ConvGeometry, dtype) -> bool:
    """Whether ``conv_forward`` with ``algorithm="auto"`` computes this (checked) convolution by im2col + GEMM
    (:func:`_gemm_pass`) when its batch is not empty: no registered algorithm pays, and neither the 1-D tap
    GEMMs, the direct grouped kernels, the shifted GEMMs nor im2row take it. ``conv_backward`` does too,
    except for a strided 1x1 kernel, whose backward im2row takes (``im2row.pays``).
    fastcnn.conv_relu fuses the ReLU into that path only."""
    if geom.transposed or _other(geom, "auto", dtype) is not None:
        return False
    g2 = geom.as_2d()
    return not (_taps_1d_pays(geom, g2) or conv_direct.direct_pays(geom.C_in, geom.G, g2.stride)
                or _shifted_pays(geom, g2) or im2row.pays(geom, g2, dtype))


def _other_name(geom, algorithm, dtype):
    """The name of :func:`_other`'s algorithm, or None."""
    if algorithm == "auto":
        return next((name for name, entry in ALGORITHMS.items() if entry[0](geom, dtype)), None)
    return algorithm if algorithm in ALGORITHMS else None


def _choice(geom: ConvGeometry, algorithm, *arrays) -> tuple:
    """``(out_dtype, dtype, name)``: the dtype a call returns and the one it computes in (``arrays``: its float
    inputs), and the name of the registered algorithm that computes it (:func:`_other_name`), or None. A name,
    looked up in ALGORITHMS at each call: benchmarks/step_ab.py swaps the registry's entries."""
    dtype = _runtime.compute_dtype(*arrays)
    return _runtime.result_dtype(*arrays), dtype, _other_name(geom, algorithm, dtype)


def _conv_forward(geom: ConvGeometry, x, weight, bias, algorithm="auto", choice=None):
    """``choice``: :func:`_choice`'s answer for these arguments, remembered by the caller (or None)."""
    out_dtype, dtype, name = choice or _choice(geom, algorithm, x, weight, bias)
    other = None if name is None else ALGORITHMS[name]
    x4, w4, b = _compute([x, weight, bias], dtype)
    g2 = geom.as_2d()
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    if other is not None:
        other[1](geom, x4, w4, b, y)
        return y.astype(out_dtype, copy=False)
    if _taps_1d_pays(geom, g2):
        _taps_1d_pass(x4, w4, b, geom.G, g2, y.reshape(geom.N, geom.C_out, -1))
        return y.reshape(geom.out_shape).astype(out_dtype, copy=False)
    if im2row.pays(geom, g2, dtype):
        im2row.forward(geom, g2, x4, w4, b, y)
        return y.reshape(geom.out_shape).astype(out_dtype, copy=False)
    xp = _pad(x4, *_conv_maps(g2), "conv.xpad")
    if conv_direct.direct_pays(geom.C_in, geom.G, g2.stride):
        conv_direct.direct_forward(xp, w4, b, geom.G, g2.stride, g2.dilation, y)
    elif _shifted_pays(geom, g2):
        _shifted_pass(xp, w4, b, geom.G, g2, y.reshape(geom.N, geom.C_out, -1))
    else:
        _gemm_pass(xp, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, w2=w4.reshape(geom.C_out, -1), bias=b,
                   y3=y.reshape(geom.N, geom.C_out, -1))
    return y.reshape(geom.out_shape).astype(out_dtype, copy=False)


def _conv_backward(geom: ConvGeometry, grad_out, x, weight, bias, algorithm="auto", input_grad=True, choice=None):
    out_dtype, dtype, name = choice or _choice(geom, algorithm, grad_out, x, weight, bias)
    other = None if name is None else ALGORITHMS[name]
    go4, x4, w4 = _compute([grad_out, x, weight], dtype)
    g2 = geom.as_2d()
    go3 = go4.reshape(geom.N, geom.C_out, -1)
    grad_x = np.empty(x4.shape, dtype=dtype)
    if other is not None:
        grad_w = other[2](geom, go4, x4, w4, grad_x, input_grad)
        return _results(out_dtype, grad_x, grad_w, None if bias is None else _grad_bias(go3))
    w2 = w4.reshape(geom.C_out, -1)
    src_h, src_w = _conv_maps(g2)
    if _taps_1d_pays(geom, g2):
        grad_w = _taps_1d_backward_pass(x4, go3, w4, geom.G, g2, src_w, grad_x)
        grad_b = None if bias is None else _grad_bias(go3)
        return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)
    if im2row.pays(geom, g2, dtype, backward=True):
        grad_w = im2row.backward(geom, g2, go4, x4, w4, grad_x, input_grad)
        grad_b = None if bias is None else _grad_bias(go3)
        return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)
    xp = _pad(x4, src_h, src_w, "conv.xpad")
    if conv_direct.direct_pays(geom.C_in, geom.G, g2.stride):
        go4_2 = go3.reshape((geom.N, geom.C_out) + g2.out)
        grad_w = conv_direct.direct_grad_weight(xp, go4_2, geom.G, g2.stride, g2.dilation, w4.shape, GW_BLOCK,
                                                lambda size: SCRATCH.get("conv.gw", size, dtype))
        planes = _buffers("conv.planes", (geom.C_in, src_h.size, src_w.size), dtype)
        if input_grad:
            conv_direct.direct_grad_input(go4_2, w4, geom.G, g2.stride, g2.dilation, src_h, src_w, planes, grad_x)
    elif _shifted_pays(geom, g2):
        grad_w = _shifted_backward_pass(xp, go3, w4, geom.G, g2, src_h, src_w, grad_x)
    else:
        grad_w = _gemm_pass(xp, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, go3=go3)
        if input_grad:  # a first layer's input needs none: its col2im would be a quarter of its backward
            _col2im_pass(go3, w2, None, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, src_h, src_w, grad_x)
    grad_b = None if bias is None else _grad_bias(go3)
    return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)


def _conv_transpose_forward(geom: ConvGeometry, x, weight, bias):
    out_dtype = _runtime.result_dtype(x, weight, bias)
    dtype = _runtime.compute_dtype(x, weight, bias)
    x4, w4, b = _compute([x, weight, bias], dtype)
    g2 = geom.as_2d()
    # The transposed convolution is the input gradient of the convolution x_t -> x whose weight is w.
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    src_h, src_w = _transpose_maps(g2)
    _col2im_pass(x4.reshape(geom.N, geom.C_in, -1), w4.reshape(geom.C_in, -1), b, geom.G, g2.kernel, g2.stride,
                 g2.dilation, g2.sizes, src_h, src_w, y)
    return y.reshape(geom.out_shape).astype(out_dtype, copy=False)


def _conv_transpose_backward(geom: ConvGeometry, grad_out, x, weight, bias):
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    go4, x4, w4 = _compute([grad_out, x, weight], dtype)
    g2 = geom.as_2d()
    # grad_out padded onto the kernel-copy plane is the input of the convolution whose input gradient the
    # forward was: its forward gives grad_x and its weight gradient (against x) gives grad_w.
    gop = _pad(go4, *_transpose_maps(g2), "conv.gopad")
    grad_x = np.empty(x4.shape, dtype=dtype)
    x3 = x4.reshape(geom.N, geom.C_in, -1)
    grad_w = _gemm_pass(gop, geom.G, g2.kernel, g2.stride, g2.dilation, g2.sizes,
                        w2=w4.reshape(geom.C_in, -1), y3=grad_x.reshape(geom.N, geom.C_in, -1), go3=x3)
    grad_b = None if bias is None else _grad_bias(go4.reshape(geom.N, geom.C_out, -1))
    return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)


def _results(dtype, *arrays):
    return tuple(None if a is None else a.astype(dtype, copy=False) for a in arrays)


# ---------------------------------------------------------------------------------------------------
# Public functions: refcnn's signatures, docstrings and errors
# ---------------------------------------------------------------------------------------------------


def _forward(geom: ConvGeometry, x, weight, bias, algorithm="auto", choice=None):
    if geom.N == 0:  # an empty batch: nothing to compute (the kernels' reshapes need a sample)
        return np.zeros(geom.out_shape, dtype=_runtime.result_dtype(x, weight, bias))
    if geom.transposed:
        return _conv_transpose_forward(geom, x, weight, bias)
    return _conv_forward(geom, x, weight, bias, algorithm, choice)


def _backward(geom: ConvGeometry, grad_out, x, weight, bias, algorithm="auto", input_grad=True, choice=None):
    if geom.N == 0:  # no sample: every gradient is an empty or zero sum
        dtype = _runtime.result_dtype(grad_out, x, weight, bias)
        return (np.zeros(x.shape, dtype=dtype), np.zeros(weight.shape, dtype=dtype),
                None if bias is None else np.zeros(bias.shape, dtype=dtype))
    if geom.transposed:
        return _conv_transpose_backward(geom, grad_out, x, weight, bias)
    return _conv_backward(geom, grad_out, x, weight, bias, algorithm, input_grad, choice)


#: What conv_forward's and conv_backward's checks settle (the geometry fitted to the batch, the algorithm, the
#: dtypes), remembered per signature (issue 16): a layer calls with the same geometry and shapes every step, and
#: the checks, the choice of algorithm and the dtypes' promotion cost 60-70 us a call in a ResNet-20 step (the
#: kernel before leaves the caches cold), where the remembered answer costs one lookup.
_SETTLED = Verdicts()


def settled(caller: str, geometry: ConvGeometry, algorithm, x, weight, bias, grad_out=FORWARD, extra=(),
            settle=None):
    """``(geom, algorithm, choice)`` of :func:`fit_geometry`, ``check_algorithm`` and :func:`_choice` (refusals
    raise), remembered by the arrays' types, dtypes and shapes, the geometry and ``algorithm``. ``extra``: more
    of the key (what a fused op's own checks read); ``settle``: a function of that answer that the caller's own
    checks run in and whose answer is remembered instead."""
    keys = (array_key(x), array_key(weight), array_key(bias, (None,)), array_key(grad_out, (FORWARD,)))
    # with whether NumPy's CBLAS is taken: the algorithms' rules read it, and tests switch it off
    key = None if None in keys or None in extra else (caller, geometry, algorithm, keys, extra, _blas.CBLAS)

    def settle_now():
        geom = canonical(fit_geometry(geometry, x, weight, bias, grad_out, caller=caller))  # another batch: new
        checked = check_algorithm(caller, algorithm, geom)
        inputs = (x, weight, bias) if grad_out is FORWARD else (grad_out, x, weight, bias)
        answer = geom, checked, _choice(geom, checked, *inputs)
        return answer if settle is None else settle(answer)

    return _SETTLED.get(key, settle_now)


def conv_forward(geometry: ConvGeometry, x, weight, bias=None, *, algorithm="auto"):
    geom, algorithm, choice = settled("conv_forward", geometry, algorithm, x, weight, bias)
    return _forward(geom, x, weight, bias, algorithm, choice)


def conv_backward(geometry: ConvGeometry, grad_out, x, weight, bias=None, *, algorithm="auto", input_grad=True):
    geom, algorithm, choice = settled("conv_backward", geometry, algorithm, x, weight, bias, grad_out)
    input_grad = check_bool(input_grad, "input_grad", "conv_backward")
    grads = _backward(geom, grad_out, x, weight, bias, algorithm, input_grad, choice)
    return grads if input_grad else (None,) + tuple(grads[1:])


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", *,
           algorithm="auto"):
    geom = conv_geometry_of("conv2d", 2, x, weight, bias, stride, padding, dilation, groups, padding_mode)
    return _forward(geom, x, weight, bias, check_algorithm("conv2d", algorithm, geom))


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", *, algorithm="auto"):
    geom = conv_geometry_of("conv2d_backward", 2, x, weight, bias, stride, padding, dilation, groups,
                            padding_mode, grad_out)
    return _backward(geom, grad_out, x, weight, bias, check_algorithm("conv2d_backward", algorithm, geom))


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    geom = conv_geometry_of("conv1d", 1, x, weight, bias, stride, padding, dilation, groups, padding_mode)
    return _forward(geom, x, weight, bias)


def conv1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    geom = conv_geometry_of("conv1d_backward", 1, x, weight, bias, stride, padding, dilation, groups,
                            padding_mode, grad_out)
    return _backward(geom, grad_out, x, weight, bias)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    geom = conv_transpose_geometry_of("conv_transpose2d", 2, x, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    return _forward(geom, x, weight, bias)


def conv_transpose2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    geom = conv_transpose_geometry_of("conv_transpose2d_backward", 2, x, weight, bias, stride, padding,
                                      output_padding, groups, dilation, grad_out)
    return _backward(geom, grad_out, x, weight, bias)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    geom = conv_transpose_geometry_of("conv_transpose1d", 1, x, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    return _forward(geom, x, weight, bias)


def conv_transpose1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    geom = conv_transpose_geometry_of("conv_transpose1d_backward", 1, x, weight, bias, stride, padding,
                                      output_padding, groups, dilation, grad_out)
    return _backward(geom, grad_out, x, weight, bias)


_runtime.share_docstrings(globals(), [*__all__, "conv_forward", "conv_backward"])
