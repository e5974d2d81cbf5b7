"""The layer before a pooled F(4x4, 3x3) convolution, computed inside it (fastcnn.conv_pool, ``producer=``).

When the block's input x is ``relu(conv(x0))`` for a stride-1 convolution with few input channels (the seeds'
first layer), fastcnn.winograd4's kernels compute each sample of x where they need it, as
fastcnn.conv_relu_forward computes it (conv.py's im2col, the bias, one GEMM, the ReLU: the same bits), so the
whole x (11 MB at the seeds' batch of 128) is never written, nor read back; and the backward takes that
convolution's parameter gradients from each sample's channel-last input gradient
(``winograd4_tiles.masked_interior``). :func:`winograd4.producer_fits` says which convolutions.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _runtime, conv
from ._blas import gemm
from ._conv_base import buffers, conv_maps, none, pad

__all__ = ["producer_args", "producer_tuple", "sample"]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def sample(x, n, producer, cblas):
    """Sample n of the convolution's input: x[n]; or, when producer = (on, xp0, w0, b0, taps, cols, y1) is on,
    relu(conv(x0[n])) for the padded x0 (N, C0, Hp0, Wp0), weight w0 (C, C0 KH KW), bias b0 (empty: none) and
    taps (KH, KW, DH, DW, H, W) of a stride-1 convolution, computed into y1 (C, H W) as fastcnn.conv_relu_forward
    computes it (conv.py's im2col into cols (>= C0 KH KW, H W), the bias, one GEMM, the ReLU: the same bits), so
    the block's input is never stored whole. x then only gives the shape (N, C, ...)."""
    on, xp0, w0, b0, taps, cols_bufs, y1_bufs = producer
    if not on:
        return x[n]
    KH, KW, DH, DW, H, W = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5]
    tid = numba.get_thread_id()
    cols, y1 = cols_bufs[tid][:w0.shape[1]], y1_bufs[tid]
    conv._im2col(xp0[n], KH, KW, 1, 1, DH, DW, H, W, cols)
    if b0.size:
        conv._fill_rows(y1, b0)
    gemm(False, False, w0, cols, y1, b0.size > 0, cblas)
    conv._relu_rows(y1)
    return y1.reshape((y1.shape[0], H, W))


def producer_args(producer_geometry, x0, w0, b0):
    """``(xp0, w0 (C, C0 KH KW), b0 or an empty array, (KH, KW, DH, DW, H, W))``: what fastcnn.winograd4's
    ``forward`` and ``backward`` take as ``producer`` for a convolution ``winograd4.producer_fits`` accepts
    (arrays in the compute dtype)."""
    g = producer_geometry
    xp0 = pad(x0, *conv_maps(g), "winograd4.producer_x")
    b = none(1, w0.dtype) if b0 is None else b0
    return xp0, w0.reshape(g.C_out, -1), b, (*g.kernel, *g.dilation, *g.out)


def producer_tuple(geom, x4, producer, dtype):
    """(x for the kernels, :func:`sample`'s tuple) for the block ``geom``: x4 and a tuple that is off (with
    ``producer``, its im2col buffer sized for the backward's gradients), or, with ``producer`` and no x4, an
    array that only gives the shape (N, C, 0, 0) and the tuple that computes each sample."""
    on = producer is not None and x4 is None
    if producer is None:
        xp0, w0, b0, taps = none(4, dtype), none(2, dtype), none(1, dtype), (1,) * 6
    else:
        xp0, w0, b0, taps = producer
    cells = taps[4] * taps[5]
    cols = buffers("winograd4.producer_cols", (1, 1) if producer is None else (w0.shape[1] + 1, cells), dtype)
    y1 = buffers("winograd4.producer_y", (geom.C_in, cells) if on else (1, 1), dtype)
    x_arg = x4 if x4 is not None else np.empty((geom.N, geom.C_in, 0, 0), dtype=dtype)  # geom fitted to the batch
    return x_arg, (on, xp0, w0, b0, np.array(taps, dtype=np.int64), cols, y1)
