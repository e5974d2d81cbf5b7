"""Convolution, fast: conv1d, conv2d, their transposes and the backward of each (``specs/conv.md``).

Same names, arguments and errors as :mod:`refcnn.conv`; every check is refcnn's own
(:func:`refcnn.conv.conv_geometry`, :func:`refcnn.conv.conv_transpose_geometry`), run before any kernel.

How it computes (2-D; a 1-D op is the 2-D op with a unit height, as in refcnn):

1. **Pad once.** The input is copied into a padded buffer through the fill's index map ``src`` (one int
   array per axis, ``-1`` for a zero cell), so every fill costs the same and no later loop tests bounds.
2. **im2col per chunk of samples.** ``cols[n, (ci, kh, kw), (oh, ow)] = x_pad[n, ci, oh*SH + kh*DH,
   ow*SW + kw*DW]`` for a fixed number of samples at a time, into a reused scratch buffer.
3. **GEMM through BLAS** (``numpy.matmul``, called from Python between the Numba kernels, never inside
   ``prange``): forward ``y[n, group] = W_g @ cols[n, group]``; weight gradient
   ``dW_g = sum_n G_o[n, group] @ cols[n, group]^T``; input gradient ``dcols = W_g^T @ G_o[n, group]``.
4. **col2im and fold** (input gradient): ``dcols`` is added back onto a padded plane, and the plane is folded
   onto the input through the same index map (a padded cell gives its gradient to the cell it copied).

A transposed convolution is a convolution's input gradient used as a layer, so its forward is steps 3-4 with
``x`` in the role of ``G_o``, and its backward is steps 1-3 on the padded ``grad_out``.

Determinism: chunks have a size fixed by the shapes alone; the weight gradient of each chunk is computed per
sample and the samples are added in order into one buffer; every ``prange`` writes disjoint planes. So
results do not depend on the thread count (BLAS splits its work by output blocks, not along the reduction).

Zero fill versus refcnn: refcnn *skips* zero-filled cells, the GEMM multiplies them by 0. With finite weights
and gradients that is the same number; with an infinite or NaN weight (or ``grad_out``) a window that lies
partly in zero padding gives NaN here where refcnn gives a number.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import prange

from refcnn import conv as _ref
from refcnn._validation import check_float_array, check_shape
from refcnn.padding import source_index

from . import _runtime

__all__ = list(_ref.__all__)

# ---------------------------------------------------------------------------------------------------
# Threads: Numba's pool and BLAS's pool take turns, never nest
# ---------------------------------------------------------------------------------------------------


def _prefer_quiet_threading_layer() -> None:
    """Keep Numba's idle workers from spinning while BLAS runs between two parallel kernels.

    Numba's default OpenMP layer (libgomp) keeps its threads busy-waiting after a parallel region, which
    measured here made the following OpenBLAS call 2-3x slower. The 'workqueue' layer parks them instead.
    Applied only when the user chose no layer and before Numba has started its pool (it is fixed from the
    first parallel launch on). Recommended home: ``fastcnn/_runtime.py``.
    """
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    from numba.np.ufunc import parallel

    if not parallel._is_initialized:
        numba.config.THREADING_LAYER = "workqueue"


_prefer_quiet_threading_layer()

_blas_threads = [0]  # the count last given to BLAS; 0 = not yet set


def _match_blas_threads() -> None:
    """Give BLAS as many threads as Numba's kernels have (``fastcnn.set_num_threads``), so the thread count
    of the whole op follows one setting. A no-op unless the count changed since the last call."""
    n = numba.get_num_threads()
    if _blas_threads[0] == n:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl BLAS keeps its own count
        _blas_threads[0] = n
        return
    threadpool_limits(limits=n, user_api="blas")
    _blas_threads[0] = n


# ---------------------------------------------------------------------------------------------------
# Kernels: arrays and ints only
# ---------------------------------------------------------------------------------------------------

_FM = _runtime.FASTMATH


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _pad_planes(x, src_h, src_w, out):
    """out[p, i, j] = x[p, src_h[i], src_w[j]], or 0 where either index is -1. x (P, H, W), out (P, Hp, Wp).

    The columns that read the input in order (src_w[j] = j - lo for j in [lo, hi)) are copied as one run.
    """
    P, Hp, Wp = out.shape
    lo = 0
    while lo < Wp and src_w[lo] != 0:
        lo += 1
    hi = lo
    while hi < Wp and src_w[hi] == hi - lo:
        hi += 1
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


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _im2col(xp, n0, KH, KW, SH, SW, DH, DW, H_out, W_out, cols):
    """cols[s, (c*KH + kh)*KW + kw, oh*W_out + ow] = xp[n0 + s, c, oh*SH + kh*DH, ow*SW + kw*DW].

    xp is the padded input (N, C, Hp, Wp); cols (S, C*KH*KW, H_out*W_out). Every read is in bounds by
    construction, so the inner loop is a branch-free (strided) row copy.
    """
    S = cols.shape[0]
    C = xp.shape[1]
    for sc in prange(S * C):
        s = sc // C
        c = sc % C
        plane = xp[n0 + s, c]
        for kh in range(KH):
            for kw in range(KW):
                row = cols[s, (c * KH + kh) * KW + kw]
                for oh in range(H_out):
                    src = plane[oh * SH + kh * DH]
                    base = oh * W_out
                    start = kw * DW
                    if SW == 1:
                        row[base:base + W_out] = src[start:start + W_out]
                    else:
                        for ow in range(W_out):
                            row[base + ow] = src[start + ow * SW]


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _col2im_fold(dcols, n0, KH, KW, SH, SW, DH, DW, H_out, W_out, planes, src_h, src_w, gx):
    """The adjoint of padding + im2col: add dcols back onto padded planes, then fold each plane onto gx.

    planes[s, c, ih, iw] = sum of dcols[s, (c*KH + kh)*KW + kw, oh*W_out + ow] over ih = oh*SH + kh*DH,
    iw = ow*SW + kw*DW; then gx[n0 + s, c] = sum of planes[s, c, i, j] over src_h[i], src_w[j] (cells with
    index -1, zero fill, give nothing). Each (s, c) owns its plane and its gx plane: disjoint writes, fixed
    order of additions.
    """
    S = dcols.shape[0]
    C = gx.shape[1]
    Hp, Wp = planes.shape[2], planes.shape[3]
    for sc in prange(S * C):
        s = sc // C
        c = sc % C
        plane = planes[s, c]
        plane[:, :] = 0
        for kh in range(KH):
            for kw in range(KW):
                row = dcols[s, (c * KH + kh) * KW + kw]
                for oh in range(H_out):
                    dst = plane[oh * SH + kh * DH]
                    base = oh * W_out
                    start = kw * DW
                    for ow in range(W_out):
                        dst[start + ow * SW] += row[base + ow]
        out = gx[n0 + s, c]
        out[:, :] = 0
        for i in range(Hp):
            sh = src_h[i]
            if sh < 0:
                continue
            for j in range(Wp):
                sw = src_w[j]
                if sw >= 0:
                    out[sh, sw] += plane[i, j]


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _add_bias(y, bias):
    """y[n, c, :] += bias[c]; y (N, C, L)."""
    N, C, L = y.shape
    for nc in prange(N * C):
        b = bias[nc % C]
        row = y[nc // C, nc % C]
        for i in range(L):
            row[i] += b


@numba.njit(parallel=True, fastmath=_FM, **_runtime.KERNEL_FLAGS)
def _bias_grad(g, out):
    """out[c] = sum over n, in order, of the sum of the row g[n, c, :]; g (N, C, L). One channel per task,
    so the order of additions is fixed by the code (the row sums are vectorised), not by the threads."""
    N, C, L = g.shape
    for c in prange(C):
        acc = 0.0
        for n in range(N):
            row = g[n, c]
            part = 0.0
            for i in range(L):
                part += row[i]
            acc += part
        out[c] = acc


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_samples(acc, per_sample):
    """acc[i, j] += per_sample[0, i, j] + per_sample[1, i, j] + ..., sample by sample, in order."""
    S, A, B = per_sample.shape
    for i in prange(A):
        for s in range(S):
            for j in range(B):
                acc[i, j] += per_sample[s, i, j]


# ---------------------------------------------------------------------------------------------------
# The GEMM passes (Python: BLAS calls between kernels)
# ---------------------------------------------------------------------------------------------------

#: Bytes of im2col columns per chunk: large enough for BLAS to run at full speed and for ``prange`` to
#: have planes for every thread, small enough to stay in the last-level cache. The chunk depends on the
#: shapes only, never on the thread count, so results do not either.
CHUNK_BYTES = 2 << 20
SCRATCH = _runtime.SCRATCH


def _chunk_size(N: int, rows: int, cells: int, itemsize: int) -> int:
    per_sample = max(1, rows * cells * itemsize)
    return max(1, min(N, CHUNK_BYTES // per_sample))


def _src_map(pad_begin: int, padded: int, mode: str, real: int) -> np.ndarray:
    """The input index each of ``padded`` cells reads (``-1``: zero), for an axis of ``real`` input cells
    placed after ``pad_begin`` cells of padding."""
    src = np.full(padded, -1, dtype=np.int64)
    for i in range(padded):
        j = i - pad_begin
        if 0 <= j < real:
            src[i] = j
        elif mode != "zeros":
            src[i] = source_index(j, real, mode)
    return src


def _pad(x4, src_h, src_w, name: str):
    """x4 (N, C, H, W) read through the index maps into a scratch buffer (N, C, Hp, Wp); x4 itself when the
    maps are the identity (no padding)."""
    N, C, H, W = x4.shape
    Hp, Wp = src_h.size, src_w.size
    if Hp == H and Wp == W:
        return x4
    out = SCRATCH.get(name, N * C * Hp * Wp, x4.dtype).reshape(N, C, Hp, Wp)
    _pad_planes(x4.reshape(N * C, H, W), src_h, src_w, out.reshape(N * C, Hp, Wp))
    return out


def _gemm_pass(xp, G, kernel, stride, dilation, out_hw, w2=None, y3=None, go3=None):
    """im2col of the padded input ``xp`` chunk by chunk, then per group:

    * when ``y3`` is given (forward): ``y3[n, group] = w2[group] @ cols[n, group]``;
    * when ``go3`` is given (weight gradient): returns ``sum_n go3[n, group] @ cols[n, group]^T``, shape
      ``(C_w, C/G * KH * KW)`` where ``C_w = go3.shape[1]``.

    ``xp`` (N, C, Hp, Wp); ``w2`` (C_y, C/G*KH*KW); ``y3`` (N, C_y, H_out*W_out); ``go3`` (N, C_w, H_out*W_out).
    """
    N, C = xp.shape[0], xp.shape[1]
    (KH, KW), (SH, SW), (DH, DW), (H_out, W_out) = kernel, stride, dilation, out_hw
    L = H_out * W_out
    K_g = C // G * KH * KW
    chunk = _chunk_size(N, C * KH * KW, L, xp.dtype.itemsize)
    grad_w = None
    if go3 is not None:
        C_w_g = go3.shape[1] // G
        grad_w = np.zeros((go3.shape[1], K_g), dtype=xp.dtype)
        per_sample = SCRATCH.get("conv.gw", chunk * C_w_g * K_g, xp.dtype)
    cols_buf = SCRATCH.get("conv.cols", chunk * C * KH * KW * L, xp.dtype)
    for n0 in range(0, N, chunk):
        S = min(chunk, N - n0)
        cols = cols_buf[:S * C * KH * KW * L].reshape(S, C * KH * KW, L)
        _im2col(xp, n0, KH, KW, SH, SW, DH, DW, H_out, W_out, cols)
        for g in range(G):
            rows = slice(g * K_g, (g + 1) * K_g)
            if y3 is not None:
                C_y_g = y3.shape[1] // G
                np.matmul(w2[g * C_y_g:(g + 1) * C_y_g], cols[:, rows], out=y3[n0:n0 + S, g * C_y_g:(g + 1) * C_y_g])
            if go3 is not None:
                part = per_sample[:S * C_w_g * K_g].reshape(S, C_w_g, K_g)
                np.matmul(go3[n0:n0 + S, g * C_w_g:(g + 1) * C_w_g], cols[:, rows].transpose(0, 2, 1), out=part)
                _add_samples(grad_w[g * C_w_g:(g + 1) * C_w_g], part)
    return grad_w


def _col2im_pass(go3, w2, G, kernel, stride, dilation, out_hw, src_h, src_w, gx):
    """gx = fold(col2im(w2_g^T @ go3[n, group])): the input gradient of ``_gemm_pass``'s forward.

    ``go3`` (N, C_y, H_out*W_out), ``w2`` (C_y, C/G*KH*KW), gx (N, C, H, W) is overwritten; ``src_h``,
    ``src_w`` map the padded planes (their sizes) onto gx's cells.
    """
    N, C = gx.shape[0], gx.shape[1]
    (KH, KW), (SH, SW), (DH, DW), (H_out, W_out) = kernel, stride, dilation, out_hw
    L = H_out * W_out
    K_g = C // G * KH * KW
    C_y_g = go3.shape[1] // G
    Hp, Wp = src_h.size, src_w.size
    chunk = _chunk_size(N, C * KH * KW, L, gx.dtype.itemsize)
    dcols_buf = SCRATCH.get("conv.dcols", chunk * C * KH * KW * L, gx.dtype)
    planes_buf = SCRATCH.get("conv.planes", chunk * C * Hp * Wp, gx.dtype)
    w_t = [np.ascontiguousarray(w2[g * C_y_g:(g + 1) * C_y_g].T) for g in range(G)]
    for n0 in range(0, N, chunk):
        S = min(chunk, N - n0)
        dcols = dcols_buf[:S * C * KH * KW * L].reshape(S, C * KH * KW, L)
        for g in range(G):
            np.matmul(w_t[g], go3[n0:n0 + S, g * C_y_g:(g + 1) * C_y_g], out=dcols[:, g * K_g:(g + 1) * K_g])
        planes = planes_buf[:S * C * Hp * Wp].reshape(S, C, Hp, Wp)
        _col2im_fold(dcols, n0, KH, KW, SH, SW, DH, DW, H_out, W_out, planes, src_h, src_w, gx)


# ---------------------------------------------------------------------------------------------------
# The four directions, for both ranks (arrays lifted to 2-D as in refcnn)
# ---------------------------------------------------------------------------------------------------


def _check_grad_out(op: str, grad_out, geom) -> None:
    """refcnn's grad_out check, without its float64 copy."""
    check_float_array(grad_out, "grad_out", op)
    out_axes = ", ".join(a + "_out" for a in _ref._AXES[geom.rank])
    check_shape(grad_out, geom.out_shape, "grad_out", op, context=f"(N, C_out, {out_axes}) of the forward output")


def _conv_maps(g2):
    """Index maps of a convolution's padded input: size + both pads cells per axis, through the fill."""
    (H, W), ((PH, PHe), (PW, PWe)) = g2.sizes, g2.pads
    src_h = _src_map(PH, H + PH + PHe, g2.padding_mode, H)
    src_w = _src_map(PW, W + PW + PWe, g2.padding_mode, W)
    return src_h, src_w


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
    return [None if a is None else _runtime.as_compute(_ref._as_2d(a) if a.ndim == 3 else a, dtype) for a in arrays]


def _conv_forward(op, rank, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    _ref._check_arrays(op, x, weight, bias)
    geom = _ref.conv_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape,
                              stride, padding, dilation, groups, padding_mode, rank)
    out_dtype = _runtime.result_dtype(x, weight, bias)
    dtype = _runtime.compute_dtype(x, weight, bias)
    x4, w4, b = _compute([x, weight, bias], dtype)
    g2 = _ref._lift_to_2d(geom)
    _match_blas_threads()
    xp = _pad(x4, *_conv_maps(g2), "conv.xpad")
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    y3 = y.reshape(geom.N, geom.C_out, -1)
    _gemm_pass(xp, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, w2=w4.reshape(geom.C_out, -1), y3=y3)
    if b is not None:
        _add_bias(y3, b)
    return y.reshape(geom.out_shape).astype(out_dtype, copy=False)


def _conv_backward(op, rank, grad_out, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    _ref._check_arrays(op, x, weight, bias)
    geom = _ref.conv_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape,
                              stride, padding, dilation, groups, padding_mode, rank)
    _check_grad_out(op, grad_out, geom)
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    go4, x4, w4 = _compute([grad_out, x, weight], dtype)
    g2 = _ref._lift_to_2d(geom)
    _match_blas_threads()
    go3 = go4.reshape(geom.N, geom.C_out, -1)
    w2 = w4.reshape(geom.C_out, -1)
    src_h, src_w = _conv_maps(g2)
    xp = _pad(x4, src_h, src_w, "conv.xpad")
    grad_w = _gemm_pass(xp, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, go3=go3)
    grad_x = np.empty(x4.shape, dtype=dtype)
    _col2im_pass(go3, w2, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, src_h, src_w, grad_x)
    grad_b = None
    if bias is not None:
        grad_b = np.empty(geom.C_out, dtype=dtype)
        _bias_grad(go3, grad_b)
    return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)


def _conv_transpose_forward(op, rank, x, weight, bias, stride, padding, output_padding, groups, dilation):
    _ref._check_arrays(op, x, weight, bias)
    geom = _ref.conv_transpose_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape,
                                        stride, padding, output_padding, groups, dilation, rank)
    out_dtype = _runtime.result_dtype(x, weight, bias)
    dtype = _runtime.compute_dtype(x, weight, bias)
    x4, w4, b = _compute([x, weight, bias], dtype)
    g2 = _ref._lift_to_2d(geom)
    _match_blas_threads()
    # The transposed convolution is the input gradient of the convolution x_t -> x whose weight is w.
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    src_h, src_w = _transpose_maps(g2)
    _col2im_pass(x4.reshape(geom.N, geom.C_in, -1), w4.reshape(geom.C_in, -1), geom.G, g2.kernel, g2.stride,
                 g2.dilation, g2.sizes, src_h, src_w, y)
    if b is not None:
        _add_bias(y.reshape(geom.N, geom.C_out, -1), b)
    return y.reshape(geom.out_shape).astype(out_dtype, copy=False)


def _conv_transpose_backward(op, rank, grad_out, x, weight, bias, stride, padding, output_padding, groups,
                             dilation):
    _ref._check_arrays(op, x, weight, bias)
    geom = _ref.conv_transpose_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape,
                                        stride, padding, output_padding, groups, dilation, rank)
    _check_grad_out(op, grad_out, geom)
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    go4, x4, w4 = _compute([grad_out, x, weight], dtype)
    g2 = _ref._lift_to_2d(geom)
    _match_blas_threads()
    # grad_out padded onto the kernel-copy plane is the input of the convolution whose input gradient the
    # forward was: its forward gives grad_x and its weight gradient (against x) gives grad_w.
    gop = _pad(go4, *_transpose_maps(g2), "conv.gopad")
    grad_x = np.empty(x4.shape, dtype=dtype)
    x3 = x4.reshape(geom.N, geom.C_in, -1)
    grad_w = _gemm_pass(gop, geom.G, g2.kernel, g2.stride, g2.dilation, g2.sizes,
                        w2=w4.reshape(geom.C_in, -1), y3=grad_x.reshape(geom.N, geom.C_in, -1), go3=x3)
    grad_b = None
    if bias is not None:
        grad_b = np.empty(geom.C_out, dtype=dtype)
        _bias_grad(go4.reshape(geom.N, geom.C_out, -1), grad_b)
    return _results(out_dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)


def _results(dtype, *arrays):
    return tuple(None if a is None else a.astype(dtype, copy=False) for a in arrays)


# ---------------------------------------------------------------------------------------------------
# Public functions: refcnn's signatures, docstrings and errors
# ---------------------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv_forward("conv2d", 2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    return _conv_backward("conv2d_backward", 2, grad_out, x, weight, bias, stride, padding, dilation, groups,
                          padding_mode)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv_forward("conv1d", 1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    return _conv_backward("conv1d_backward", 1, grad_out, x, weight, bias, stride, padding, dilation, groups,
                          padding_mode)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose_forward("conv_transpose2d", 2, x, weight, bias, stride, padding, output_padding,
                                   groups, dilation)


def conv_transpose2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    return _conv_transpose_backward("conv_transpose2d_backward", 2, grad_out, x, weight, bias, stride, padding,
                                    output_padding, groups, dilation)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose_forward("conv_transpose1d", 1, x, weight, bias, stride, padding, output_padding,
                                   groups, dilation)


def conv_transpose1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    return _conv_transpose_backward("conv_transpose1d_backward", 1, grad_out, x, weight, bias, stride, padding,
                                    output_padding, groups, dilation)


def _share_docstrings() -> None:
    """The formulas live once, in refcnn's docstrings; fastcnn computes in the input's float type."""
    for name in __all__:
        doc = getattr(_ref, name).__doc__ or ""
        globals()[name].__doc__ = doc.replace("Returns float64.", "Returns the input's float dtype.") + (
            "\n    fastcnn: computed in float32 or float64 (float16 in float32) and returned in the input's dtype.\n"
        )


_share_docstrings()
