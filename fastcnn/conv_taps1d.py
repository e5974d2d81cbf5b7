"""1-D convolutions with many channels, stride 1: one GEMM per kernel tap, reading the arrays in place.

The wide grid of a single row is the output itself, so each tap's GEMM writes ``y[n]`` and reads
``grad_out[n]`` in place, with no wide buffer and no copy (issue 14; :mod:`fastcnn.conv`'s docstring has the
whole scheme). With a zero fill nothing is padded at all: a tap's GEMM covers only the output (forward) or
input (input gradient) cells whose partner lies inside the array. The weight gradient reads a channels-last
padded copy of the input, so its per-tap GEMM takes no transposed operand. :mod:`fastcnn.conv` decides when
(``_taps_1d_pays``) and checks the arguments.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import _runtime
from ._blas import gemm_strided, single_threaded
from ._conv_base import GW_BLOCK, SCRATCH, buffers, conv_maps, fill_rows, fold, none, pad, sum_blocks, thread_slots

__all__ = ["taps_1d_pass", "taps_1d_backward_pass"]

_FM = _runtime.FASTMATH


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _taps_1d(xs, w_taps, bias, G, D, lo, want_bias, y):
    """The forward of a 1-D stride-1 convolution: one GEMM per tap, straight into the output.

    In 1-D the wide grid of :func:`_shifted_gemm` *is* the output (a single row of ``L_out`` cells, nothing
    dropped), so each tap's GEMM writes ``y[n]`` itself. Output cell ``j`` of tap ``t`` reads source cell
    ``j + t*D - lo``: ``xs`` is either the padded input (``lo = 0``, every tap reads a whole row) or, with a
    zero fill, the input itself (``lo`` = the padding before it), and then a tap's GEMM covers only the
    output cells whose source lies inside the input (the others would add 0): no padded copy at all.
    ``y[n]`` = bias (or 0), then ``y[n, group, j0:j1] += w_taps[t, group] @ xs[n, group, j0 + off:j1 + off]``
    for t = 0, 1, ... in order.

    xs (N, C, Ls); w_taps (K, C_y, C/G); y (N, C_y, L_out). One task per sample, one BLAS thread.
    """
    N, C, Ls = xs.shape
    C_g = C // G
    C_y_g = y.shape[1] // G
    L = y.shape[2]
    for n in prange(N):
        y_n = y[n]
        if want_bias:
            fill_rows(y_n, bias)
        else:
            y_n[:, :] = 0
        for g in range(G):
            for tap in range(w_taps.shape[0]):
                off = tap * D - lo
                j0, j1 = max(0, -off), min(L, Ls - off)
                if j1 > j0:
                    gemm_strided(False, False, w_taps[tap, g * C_y_g:(g + 1) * C_y_g],
                                 xs[n, g * C_g:(g + 1) * C_g, j0 + off:j1 + off],
                                 y_n[g * C_y_g:(g + 1) * C_y_g, j0:j1], True)


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _pad_channels_last(x, src_w, out):
    """out[n, j, c] = x[n, c, src_w[j]], or 0 where src_w[j] is -1: each sample padded and transposed to
    (Lp, C), so that a tap's window of every channel is a block of whole rows (see _taps_1d_backward).
    Channels in blocks of 16, so that each block's source cells of consecutive j share cache lines."""
    N, C, L = x.shape
    Lp = src_w.size
    for n in prange(N):
        for c0 in range(0, C, 16):
            c1 = min(C, c0 + 16)
            for j in range(Lp):
                s = src_w[j]
                if s < 0:
                    for c in range(c0, c1):
                        out[n, j, c] = 0
                else:
                    for c in range(c0, c1):
                        out[n, j, c] = x[n, c, s]


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _taps_1d_backward(xt, go, w_taps, G, D, block, lo, direct, src_w, gw_blocks, gx, plane_bufs):
    """Both gradients of :func:`_taps_1d`'s convolution, reading ``grad_out`` in place.

    * weight gradient, per group and tap t: ``gw_blocks[b, t, group] += go[n, group] @ xt[n, t*D : t*D +
      L_out, group]``, summed over the samples of block b in order (the first one writes). ``xt`` is the
      padded input with channels last, so the right factor is a block of rows read in place and the GEMM
      is a plain product (no transposed operand): measured here 15-20% faster than ``go @ xp_window^T``
      on 128x512 by 512x128, for one copy of the input;
    * input gradient: tap t adds ``w_taps[t, group]^T @ go[n, group]`` onto the padded cells ``t*D ... t*D +
      L_out - 1``. With a zero fill (``direct``) a padded cell ``j`` is input cell ``j - lo`` or nothing, so
      the product is taken on the columns that land inside the input only and added onto ``gx[n]`` itself
      (zeroed first); with another fill it goes onto a zeroed padded plane that is folded onto ``gx[n]``
      through ``src_w``, as in :func:`_shifted_gemm_backward`. Taps in order: a fixed order of additions.

    xt (N, Lp, C); go (N, C_y, L_out); w_taps (K, C_y, C/G); gw_blocks (B, K, C_y, C/G) with B = ceil(N /
    block); gx (N, C, L); plane_bufs (threads, C, Lp) (unused when ``direct``).
    """
    N, Lp, C = xt.shape
    C_g = C // G
    C_y_g = go.shape[1] // G
    L = go.shape[2]
    Lx = gx.shape[2]
    src_h = np.zeros(1, dtype=np.int64)
    for b in prange((N + block - 1) // block):
        plane = plane_bufs[numba.get_thread_id()]
        for n in range(b * block, min(N, (b + 1) * block)):
            if direct:
                gx[n] = 0
            else:
                plane[:, :] = 0
            for g in range(G):
                dy_g = go[n, g * C_y_g:(g + 1) * C_y_g]
                for tap in range(w_taps.shape[0]):
                    off = tap * D
                    w_g = w_taps[tap, g * C_y_g:(g + 1) * C_y_g]
                    gemm_strided(False, False, dy_g, xt[n, off:off + L, g * C_g:(g + 1) * C_g],
                                 gw_blocks[b, tap, g * C_y_g:(g + 1) * C_y_g], n > b * block)
                    if not direct:
                        gemm_strided(True, False, w_g, dy_g, plane[g * C_g:(g + 1) * C_g, off:off + L], True)
                        continue
                    start, end = max(off, lo), min(off + L, lo + Lx)
                    if end > start:
                        gemm_strided(True, False, w_g, dy_g[:, start - off:end - off],
                                     gx[n, g * C_g:(g + 1) * C_g, start - lo:end - lo], True)
            if not direct:
                fold(plane.reshape(C, 1, Lp), src_h, src_w, gx[n].reshape(C, 1, Lx))


def _taps_of(w4):
    """(C_y, C/G, 1, K) -> (K, C_y, C/G): each tap's weight matrix, contiguous."""
    return np.ascontiguousarray(w4[:, :, 0, :].transpose(2, 0, 1))


def taps_1d_pass(x4, w4, bias, G, g2, y3):
    """y3 (N, C_y, L_out) = the 1-D convolution of ``x4`` (N, C, 1, L) by ``w4`` (+ ``bias``); the input is
    read in place with a zero fill, else through a padded copy."""
    N, C = x4.shape[:2]
    if g2.padding_mode == "zeros":
        xs, lo = x4.reshape(N, C, -1), g2.pads[1][0]
    else:
        xs, lo = pad(x4, *conv_maps(g2), "conv.xpad").reshape(N, C, -1), 0
    b = none(1, x4.dtype) if bias is None else bias
    with single_threaded(True):
        _taps_1d(xs, _taps_of(w4), b, G, g2.dilation[1], lo, bias is not None, y3)


def taps_1d_backward_pass(x4, go3, w4, G, g2, src_w, gx):
    """gx (N, C, 1, L), overwritten, and the returned weight gradient (C_y, C/G, 1, K) of
    :func:`taps_1d_pass`'s convolution; ``src_w`` maps the padded cells onto gx's."""
    K, D, lo = g2.kernel[1], g2.dilation[1], g2.pads[1][0]
    N, C = x4.shape[:2]
    Lp = src_w.size
    C_y, dtype = w4.shape[0], x4.dtype
    xt = SCRATCH.get("conv.xpad", N * Lp * C, dtype).reshape(N, Lp, C)
    _pad_channels_last(x4.reshape(N, C, -1), src_w, xt)
    n_blocks = -(-N // GW_BLOCK)
    gw_blocks = SCRATCH.get("conv.gw", n_blocks * K * C_y * (C // G), dtype).reshape(n_blocks, K, C_y, C // G)
    direct = g2.padding_mode == "zeros"
    # The kernel takes each thread's plane even when it does not use it (``direct``): one empty plane per
    # thread keeps that index in bounds.
    planes = np.empty((thread_slots(), 0, 0), dtype) if direct else buffers("conv.planes", (C, Lp), dtype)
    with single_threaded(True):
        _taps_1d_backward(xt, go3, _taps_of(w4), G, D, GW_BLOCK, lo, direct, src_w, gw_blocks, gx.reshape(N, C, -1),
                          planes)
        grad_taps = np.empty((K, C_y * (C // G)), dtype=dtype)
        sum_blocks(gw_blocks.reshape(n_blocks, K, -1), grad_taps)
    # (tap, C_y, C/G) -> (C_y, C/G, 1, K)
    return np.ascontiguousarray(grad_taps.reshape(K, C_y, C // G).transpose(1, 2, 0))[:, :, None, :]
