"""Grouped convolutions with few input channels per group (depthwise ones), computed directly (issue 16).

With ``G`` groups of ``C/G`` channels, im2col + GEMM runs ``G`` products per sample, each of only
``C/G * KH * KW`` terms per output (9 for a depthwise 3x3): far below BLAS's rate, after a copy of the input
nine times over. Here each output row is instead a sum of ``C/G * KH * KW`` shifted input rows, each scaled by
one weight: ``y[n, k, oh, :] += w[k, c, kh, kw] * xp[n, c, oh*SH + kh*DH, kw*DW::SW]``, a vectorised
multiply-add over the row with no copy of the input.

The same loops run for any stride, dilation, groups and fill (the input is padded once by
:func:`fastcnn.conv._pad`, as for the GEMM paths), so a depthwise convolution (one channel per group) takes
this path too. The kernels take arrays and ints only; :mod:`fastcnn.conv` checks the arguments and decides
(:func:`direct_pays`).

Determinism: forward and input-gradient tasks write their own outputs; the weight gradient is summed sample by
sample within blocks of ``GW_BLOCK`` samples and the blocks are added in order (conv.py's scheme), so results
are the same for any thread count.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import _runtime
from ._conv_base import fold, widen

__all__ = ["DIRECT_MAX_CHANNELS", "direct_pays", "direct_forward", "direct_grad_weight", "direct_grad_input"]

_FM = _runtime.FASTMATH

#: Input channels per group up to which a grouped stride-1 convolution is computed here rather than by
#: im2col + GEMM. Measured on the 2-core AVX-512 Xeon, 1 thread, float32, interleaved medians of GEMM / direct
#: time (benchmarks/conv_direct_bench.py, load average 3): depthwise 64x32x56x56, 3x3, stride 1: forward 2.17x,
#: backward 2.13x; 4 channels per group (64x64x28x28, 16 groups): 0.98x and 1.16x (a tie); depthwise with
#: stride 2: 1.05x and 0.88x. Ungrouped layers with 1-8 channels (a first layer) stay on the GEMM path, which
#: won there by 1.5-2.5x: one GEMM of C_out rows per sample is already efficient when the output is wide.
DIRECT_MAX_CHANNELS = 2


def direct_pays(C_in: int, G: int, stride) -> bool:
    """Whether :mod:`fastcnn.conv` computes a convolution here: grouped, stride 1, at most
    :data:`DIRECT_MAX_CHANNELS` input channels per group (the measurements above)."""
    return G > 1 and C_in // G <= DIRECT_MAX_CHANNELS and tuple(stride) == (1, 1)


# ---------------------------------------------------------------------------------------------------
# Kernels
#
# Stride 1 computes on the *wide grid*: output cell (oh, ow) at flat position p = oh*Wp + ow of a buffer
# with the padded input's row length Wp, so tap (kh, kw) reads the padded plane at p + kh*DH*Wp + kw*DW, one
# long contiguous multiply-add over every row at once (the cells ow >= W_out are computed and dropped, or hold
# zeros in a gradient). Positions stop at the last real output cell, L = (H_out-1)*Wp + W_out, so no read
# leaves the plane. Other strides go row by row. Flat indices are unsigned (np.uintp) so that Numba adds no
# negative-index test and LLVM vectorises the loops (see fastcnn.conv._im2col).
# ---------------------------------------------------------------------------------------------------


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _forward(xp, w, bias, G, SH, SW, DH, DW, want_bias, y, wide_bufs):
    """y[n, k] = bias[k] + sum over c, kh, kw of w[k, c, kh, kw] * xp[n, g*C_g + c, oh*SH + kh*DH, ow*SW + kw*DW]
    (g = k // K_g). xp (N, C, Hp, Wp) padded; w (K, C_g, KH, KW); y (N, K, H_out, W_out). One task per
    (sample, output channel); ``wide_bufs[thread]`` holds H_out*Wp cells."""
    N, _, Hp, Wp = xp.shape
    K, C_g, KH, KW = w.shape
    H_out, W_out = y.shape[2], y.shape[3]
    K_g = K // G
    L = (H_out - 1) * Wp + W_out
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        c0 = (k // K_g) * C_g
        b = bias[k] if want_bias else 0.0
        out = y[n, k].reshape(-1)
        if SH == 1 and SW == 1:
            wide = wide_bufs[numba.get_thread_id()]
            wide[:L] = b
            for c in range(C_g):
                xf = xp[n, c0 + c].reshape(-1)
                for kh in range(KH):
                    for kw in range(KW):
                        wv = w[k, c, kh, kw]
                        off = kh * DH * Wp + kw * DW
                        for p in range(L):
                            wide[p] += wv * xf[np.uintp(p + off)]
            for oh in range(H_out):
                for ow in range(W_out):
                    out[np.uintp(oh * W_out + ow)] = wide[np.uintp(oh * Wp + ow)]
            continue
        out[:] = b
        for c in range(C_g):
            xf = xp[n, c0 + c].reshape(-1)
            for kh in range(KH):
                for kw in range(KW):
                    wv = w[k, c, kh, kw]
                    for oh in range(H_out):
                        s0 = (oh * SH + kh * DH) * Wp + kw * DW
                        d0 = oh * W_out
                        for ow in range(W_out):
                            out[np.uintp(d0 + ow)] += wv * xf[np.uintp(s0 + ow * SW)]


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _grad_weight(xp, go, G, SH, SW, DH, DW, block, gw_blocks, wide_bufs):
    """gw_blocks[b, k, c, kh, kw] = sum over the samples n of block b, in order, and the output cells of
    go[n, k, oh, ow] * xp[n, g*C_g + c, oh*SH + kh*DH, ow*SW + kw*DW]. One task per block of samples."""
    N, _, Hp, Wp = xp.shape
    _, K, C_g, KH, KW = gw_blocks.shape
    H_out, W_out = go.shape[2], go.shape[3]
    K_g = K // G
    L = (H_out - 1) * Wp + W_out
    zero = np.zeros(1, dtype=gw_blocks.dtype)
    for b in prange((N + block - 1) // block):
        acc = gw_blocks[b]
        acc[:] = 0
        wide = wide_bufs[numba.get_thread_id()]
        for n in range(b * block, min(N, (b + 1) * block)):
            for k in range(K):
                c0 = (k // K_g) * C_g
                gf = go[n, k].reshape(-1)
                if SH == 1 and SW == 1:
                    widen(go[n, k].reshape(1, -1), W_out, Wp, wide.reshape(1, -1))
                for c in range(C_g):
                    xf = xp[n, c0 + c].reshape(-1)
                    for kh in range(KH):
                        for kw in range(KW):
                            s = zero[0]  # the weights' dtype: a float32 sum stays float32
                            if SH == 1 and SW == 1:
                                off = kh * DH * Wp + kw * DW
                                for p in range(L):
                                    s += wide[p] * xf[np.uintp(p + off)]
                            else:
                                for oh in range(H_out):
                                    s0 = (oh * SH + kh * DH) * Wp + kw * DW
                                    d0 = oh * W_out
                                    for ow in range(W_out):
                                        s += gf[np.uintp(d0 + ow)] * xf[np.uintp(s0 + ow * SW)]
                            acc[k, c, kh, kw] += s


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _sum_blocks(blocks, out):
    """out = blocks[0] + blocks[1] + ..., in that order (flat rows of one weight each)."""
    B, A = blocks.shape
    for i in prange(A):
        s = blocks[0, i]
        for b in range(1, B):
            s += blocks[b, i]
        out[i] = s


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _grad_input(go, w, G, SH, SW, DH, DW, src_h, src_w, gx, plane_bufs, wide_bufs):
    """The padded plane of each sample gathers w[k, c, kh, kw] * go[n, k, oh, ow] at (oh*SH + kh*DH,
    ow*SW + kw*DW), output channels in order; then it is folded onto gx[n] through the fill's index maps
    (the adjoint of the padding). One task per sample; ``plane_bufs[thread]`` (C, Hp, Wp)."""
    N, K, H_out, W_out = go.shape
    _, C_g, KH, KW = w.shape
    Wp = plane_bufs.shape[3]
    K_g = K // G
    L = (H_out - 1) * Wp + W_out
    for n in prange(N):
        thread = numba.get_thread_id()
        plane = plane_bufs[thread]
        wide = wide_bufs[thread]
        plane[:] = 0
        for k in range(K):
            c0 = (k // K_g) * C_g
            gf = go[n, k].reshape(-1)
            if SH == 1 and SW == 1:
                widen(go[n, k].reshape(1, -1), W_out, Wp, wide.reshape(1, -1))
            for c in range(C_g):
                pf = plane[c0 + c].reshape(-1)
                for kh in range(KH):
                    for kw in range(KW):
                        wv = w[k, c, kh, kw]
                        if SH == 1 and SW == 1:
                            off = kh * DH * Wp + kw * DW
                            for p in range(L):
                                pf[np.uintp(p + off)] += wv * wide[p]
                        else:
                            for oh in range(H_out):
                                d0 = (oh * SH + kh * DH) * Wp + kw * DW
                                s0 = oh * W_out
                                for ow in range(W_out):
                                    pf[np.uintp(d0 + ow * SW)] += wv * gf[np.uintp(s0 + ow)]
        fold(plane, src_h, src_w, gx[n])


# ---------------------------------------------------------------------------------------------------
# Passes: what fastcnn.conv calls (arrays already checked, cast and padded)
# ---------------------------------------------------------------------------------------------------


def wide_buffers(xp, H_out: int):
    """One wide-grid buffer (H_out rows of the padded width) per thread slot."""
    slots = numba.config.NUMBA_NUM_THREADS
    size = H_out * xp.shape[3]
    return _runtime.SCRATCH.get("conv_direct.wide", slots * size, xp.dtype).reshape(slots, size)


def direct_forward(xp, w4, bias, G: int, stride, dilation, y4) -> None:
    """``y4`` (N, K, H_out, W_out) = the convolution of the padded input ``xp`` with ``w4`` (+ ``bias``)."""
    (SH, SW), (DH, DW) = stride, dilation
    want_bias = bias is not None
    b = bias if want_bias else np.zeros(0, dtype=xp.dtype)
    _forward(xp, w4, b, G, SH, SW, DH, DW, want_bias, y4, wide_buffers(xp, y4.shape[2]))


def direct_grad_weight(xp, go4, G: int, stride, dilation, weight_shape, block: int, scratch) -> np.ndarray:
    """The weight gradient ``sum_n`` of each sample's terms, summed in blocks of ``block`` samples then in
    block order; ``scratch(size)`` gives the blocks' buffer."""
    (SH, SW), (DH, DW) = stride, dilation
    n_blocks = -(-xp.shape[0] // block)
    size = int(np.prod(weight_shape))
    blocks = scratch(n_blocks * size).reshape((n_blocks,) + tuple(weight_shape))
    _grad_weight(xp, go4, G, SH, SW, DH, DW, block, blocks, wide_buffers(xp, go4.shape[2]))
    grad_w = np.empty(weight_shape, dtype=xp.dtype)
    _sum_blocks(blocks.reshape(n_blocks, size), grad_w.reshape(size))
    return grad_w


def direct_grad_input(go4, w4, G: int, stride, dilation, src_h, src_w, planes, gx4) -> None:
    """``gx4`` (N, C, H, W) = the input gradient, through per-thread padded ``planes`` (threads, C, Hp, Wp)."""
    (SH, SW), (DH, DW) = stride, dilation
    wide = wide_buffers(planes[0:1], go4.shape[2])
    _grad_input(go4, w4, G, SH, SW, DH, DW, src_h, src_w, gx4, planes, wide)
