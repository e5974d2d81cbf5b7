"""Strided 2-D convolutions by im2row: im2col in the channel-last layout, one GEMM per block of samples.

conv.py's im2col copies ``cols[(c, kh, kw), (oh, ow)] = x_pad[c, oh*SH + kh*DH, ow*SW + kw*DW]``: with a stride
of 2 every row of ``cols`` is a gather of every other input cell, a scalar copy that LLVM cannot vectorise, and
its adjoint (col2im) a scalar scatter. ResNet's downsampling 3x3 layers spent most of their time there
(session 33, 2-core Xeon with AVX-512, 2 threads, batch 64: 16 -> 32 channels on 28x28, forward 0.98 ms of
which the GEMMs take about 0.4; PyTorch's oneDNN 0.56).

Channel-last, the same copy is contiguous. A sample's padded input is copied once to ``xt[h, w, c]``
(``winograd4_tiles.channels_last``: register transposes, padding through the index maps), and the patch of
output cell ``(oh, ow)`` is one row of ``P``, ``P[(oh, ow), (kh, kw, c)] = xt[oh*SH + kh*DH, ow*SW + kw, c]``:
for each kh, the ``KW`` cells ``ow*SW .. ow*SW + KW - 1`` of one row of ``xt``, ``KW * C`` contiguous values
(48 floats for a 3x3 kernel on 16 channels). Then, on a block of samples stacked row-wise:

* forward: ``Y = P @ W_r``, ``W_r[(kh, kw, c), k] = w[k, c, kh, kw]``; ``Y`` (cells x K) goes back to
  ``y[n, k, cell]`` through register transposes (``_vector_tiles.square_add``, the bias on the way);
* weight gradient: ``dW_r += P^T @ G`` with ``G[(oh, ow), k] = grad_out[n, k, oh, ow]`` (a transposed copy);
* input gradient: ``dP = G @ W_r^T``, whose rows are added back onto a zeroed channel-last plane, ``KW * C``
  contiguous values at a time (row2im, the adjoint of the patch copy), and the plane is folded onto
  ``grad_x[n]`` (``winograd4_tiles.fold_channels_last``: the padding's adjoint, transposed back).

It needs no stride: it takes strided layers only because conv.py's own paths serve stride 1 (Winograd,
the shifted GEMMs, the direct kernel for few channels) and its im2col copies unit-stride rows well
(:func:`pays` has the measured rule).

**Determinism**: as conv.py: the blocks of samples depend on the shapes only; each output is written by one
task; the weight gradient is summed per task of GW_BLOCK samples (its chunks in order) and the tasks' sums
added in order afterwards, each GEMM on one thread. Results are the same bits for any thread count; they
differ from conv.py's im2col in the last bits (another order of the same products).

**Zero fill**: padded cells are zeros that the GEMM multiplies, as in conv.py (the same note on infinite
weights applies).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from . import _blas, _runtime
from ._blas import gemm, hold_one_thread, outside_kernel, release
from ._claim import claim, most_workers, team
from ._conv_base import GW_BLOCK, SCRATCH, buffers, conv_maps, copied_once, none, norm_flags, sum_blocks
from ._vector_tiles import square, square_add, square_start, square_starts, square_width
from .winograd4_tiles import channels_last, fold_channels_last, norm_rows

__all__ = ["pays", "forward", "backward"]

#: Input channels from which a strided layer takes im2row. Measured with ``benchmarks/im2row_bench.py``
#: (session 33, 2-core Xeon with AVX-512, 2 threads, float32, interleaved medians, ms forward / backward,
#: conv.py's im2col against im2row): 3x3 stride 2, batch 64, to 32 channels: 3 channels on 32x32 0.49/0.98
#: against 0.53/0.89; 4 on 28x28 0.50/0.96 against 0.43/0.68; 8: 1.00/1.66 against 0.65/0.99; 16: 1.30/2.80
#: against 0.92/1.50; 32 x 64 x 28 x 28 -> 128: 4.17/9.58 against 3.74/7.77; 7x7 stride 2, 16 x 64 x 56 x 56
#: -> 64: 23.7/55.7 against 22.9/44.9.
MIN_CHANNELS = 4

#: Patch rows per GEMM at least (samples are stacked until a block has that many): a 7x7 output gives 49
#: rows per sample, too thin a GEMM alone.
MIN_ROWS = 192

#: Bytes of one thread's scratch at most (the channel-last sample and plane, the patch rows and the GEMM's
#: result); a larger layer keeps conv.py's im2col, which needs no whole channel-last sample.
MAX_SCRATCH = 8 << 20


def _block_samples(N, L):
    """Samples stacked per GEMM: enough for MIN_ROWS patch rows, at most GW_BLOCK (a weight-gradient task)."""
    return max(1, min(GW_BLOCK, -(-MIN_ROWS // max(L, 1)), N))


def _scratch_bytes(geom, g2, itemsize):
    Hp, Wp = (s + sum(p) for s, p in zip(g2.sizes, g2.pads))
    L = g2.out[0] * g2.out[1]
    nb = _block_samples(geom.N, L)
    return itemsize * (2 * Hp * Wp * geom.C_in + nb * L * (g2.kernel[0] * g2.kernel[1] * geom.C_in + geom.C_out))


def pays(geom, g2, dtype, backward=False) -> bool:
    """Whether conv.py gives this convolution (its backward with ``backward``) to im2row: 2-D (not transposed),
    one group, a stride other than 1, no dilation along the width (the patch runs are contiguous), at least
    MIN_CHANNELS input channels, a CBLAS (the kernels call BLAS inside a parallel region), per-thread scratch
    under MAX_SCRATCH, and for the forward a kernel of more than one tap. A strided 1x1 forward stays with
    conv.py's im2col, which copies only the cells it reads (im2row copies the whole sample channel-last first);
    its backward gains (the run quoted at MIN_CHANNELS: 64 x 16 x 28 x 28 -> 32, forward 0.35 against 0.49,
    backward 0.82 against 0.70; 64 x 32 x 14 x 14 -> 64: 0.25 against 0.29, 0.65 against 0.44)."""
    return (_blas.CBLAS and geom.rank == 2 and not geom.transposed and geom.G == 1 and g2.stride != (1, 1)
            and g2.dilation[1] == 1 and (backward or g2.kernel[0] * g2.kernel[1] > 1)
            and geom.C_in >= MIN_CHANNELS and geom.N > 0
            and _scratch_bytes(geom, g2, np.dtype(dtype).itemsize) <= MAX_SCRATCH)


# ---------------------------------------------------------------------------------------------------
# Kernels: arrays and ints only
# ---------------------------------------------------------------------------------------------------


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _patch_rows(xt, KH, KW, SH, SW, DH, H_out, W_out, P, r0):
    """P[r0 + oh*W_out + ow, (kh*KW + kw)*C + c] = xt[oh*SH + kh*DH, ow*SW + kw, c]: each row KH runs of KW*C
    contiguous values. Flat unsigned indices, as conv._im2col, so the runs are vector copies."""
    Wp, C = xt.shape[1], xt.shape[2]
    run = KW * C
    width = KH * run
    src, dst = xt.reshape(-1), P.reshape(-1)
    for oh in range(H_out):
        for ow in range(W_out):
            d0 = (r0 + oh * W_out + ow) * width
            for kh in range(KH):
                s0 = ((oh * SH + kh * DH) * Wp + ow * SW) * C
                dk = d0 + kh * run
                for i in range(run):
                    dst[np.uintp(dk + i)] = src[np.uintp(s0 + i)]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _row2im(dP, r0, KH, KW, SH, SW, DH, H_out, W_out, plane):
    """The adjoint of :func:`_patch_rows`: plane = 0, then each row's runs added onto the cells they were copied
    from, rows in order, kh in order (a fixed order of additions onto each cell)."""
    Wp, C = plane.shape[1], plane.shape[2]
    run = KW * C
    width = KH * run
    src, dst = dP.reshape(-1), plane.reshape(-1)
    dst[:] = 0
    for oh in range(H_out):
        for ow in range(W_out):
            s0 = (r0 + oh * W_out + ow) * width
            for kh in range(KH):
                d0 = ((oh * SH + kh * DH) * Wp + ow * SW) * C
                sk = s0 + kh * run
                for i in range(run):
                    dst[np.uintp(d0 + i)] += src[np.uintp(sk + i)]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _store(Y, r0, bias, want_bias, yn):
    """yn[k, cell] = Y[r0 + cell, k] (+ bias[k]); yn (K, L) one sample's output, Y (rows, K). Without a bias,
    + 0, as winograd4_tiles.store_rows (a -0.0 sum is stored as 0.0, as refcnn's sums from a zero bias give it).
    Channels of whole blocks are transposed in registers, the addition on the way."""
    K, L = yn.shape
    width = square_width(L, K, yn.itemsize)
    blocks = square_starts(L, width)
    if blocks:
        addend = bias if want_bias else np.zeros(K, dtype=yn.dtype)
        flat_t, flat_y = Y.reshape(-1), yn.reshape(-1)
        for k0 in range(0, K, width):
            for b in range(blocks):
                c0 = square_start(b, L, width)
                square_add(width, flat_t, (r0 + c0) * K + k0, K, flat_y, k0 * L + c0, L, addend, k0)
        return
    zero = yn.dtype.type(0)
    for k in range(K):
        b = bias[k] if want_bias else zero
        for cell in range(L):
            yn[k, cell] = Y[r0 + cell, k] + b


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _load(gn, r0, G):
    """G[r0 + cell, k] = gn[k, cell]: one sample's output gradient (K, L), channel-last."""
    K, L = gn.shape
    width = square_width(L, K, gn.itemsize)
    blocks = square_starts(L, width)
    if blocks:
        flat_g, flat_t = gn.reshape(-1), G.reshape(-1)
        for k0 in range(0, K, width):
            for b in range(blocks):
                c0 = square_start(b, L, width)
                square(width, flat_g, k0 * L + c0, L, flat_t, (r0 + c0) * K + k0, K)
        return
    for cell in range(L):
        for k in range(K):
            G[r0 + cell, k] = gn[k, cell]


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_kernel(x, src_h, src_w, W_r, bias, want_bias, KH, KW, SH, SW, DH, nb, cblas, y, norm, norm_mode,
                    residual, xt_bufs, P_bufs, Y_bufs, most):
    """y (N, K, H_out, W_out) = the convolution of x (N, C, H, W), padded through src_h, src_w, by W_r
    (KH KW C, K); blocks of nb samples claimed one at a time by at most ``most`` workers (fastcnn._claim), NumPy's
    OpenBLAS held at one thread meanwhile (``_blas.hold_one_thread``). ``norm``, ``norm_mode``, ``residual``: an
    evaluation-mode batch norm (and what it adds) on each sample once it is stored (``winograd4_tiles.norm_rows``;
    0: none)."""
    N, K, H_out, W_out = y.shape
    L = H_out * W_out
    saved = hold_one_thread(cblas)
    workers, counter = team((N + nb - 1) // nb, most)
    for _ in prange(workers):
        tid = numba.get_thread_id()
        xt, P, Y = xt_bufs[tid], P_bufs[tid], Y_bufs[tid]
        while True:
            blk = claim(counter)
            n0 = blk * nb
            if n0 >= N:
                break
            n1 = min(N, n0 + nb)
            for n in range(n0, n1):
                channels_last(x[n], src_h, src_w, 0, src_h.size, xt)
                _patch_rows(xt, KH, KW, SH, SW, DH, H_out, W_out, P, (n - n0) * L)
            rows = (n1 - n0) * L
            gemm(False, False, P[:rows], W_r, Y[:rows], False, cblas)
            for n in range(n0, n1):
                _store(Y, (n - n0) * L, bias, want_bias, y[n].reshape(K, L))
                if norm_mode != 0:  # while the sample is in cache
                    norm_rows(y, residual, n, 0, H_out, norm, norm_mode)
    release(saved)


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_kernel(x, go, src_h, src_w, W_rt, KH, KW, SH, SW, DH, nb, block, input_grad, once, cblas, dW_blocks,
                     gx, add, addend, xt_bufs, P_bufs, G_bufs, plane_bufs, most):
    """Both gradients of :func:`_forward_kernel`'s convolution; go (N, K, H_out, W_out). One task per ``block``
    samples (a multiple of nb), taken nb at a time:

    * ``dW_blocks[task] = sum over its chunks, in order, of P^T @ G`` (KH KW C, K);
    * when ``input_grad``: ``dP = G @ W_rt`` (W_rt = W_r^T, K x KH KW C, stored transposed: a plain product),
      written over P after its last use above, then per sample row2im onto the zeroed channel-last plane and
      the fold onto gx[n] through the index maps (``once``: a zero fill, each input cell copied once); with
      ``add``, then ``gx[n] + addend[n]`` in gx's dtype, while gx[n] is in cache (fastcnn.conv_residual).

    Tasks claimed by at most ``most`` workers, NumPy's OpenBLAS held at one thread meanwhile, as the forward."""
    N, K, H_out, W_out = go.shape
    L = H_out * W_out
    saved = hold_one_thread(cblas)
    workers, counter = team((N + block - 1) // block, most)
    for _ in prange(workers):
        tid = numba.get_thread_id()
        xt, P, G, plane = xt_bufs[tid], P_bufs[tid], G_bufs[tid], plane_bufs[tid]
        while True:
            task = claim(counter)
            if task * block >= N:
                break
            for n0 in range(task * block, min(N, (task + 1) * block), nb):
                n1 = min(N, n0 + nb)
                for n in range(n0, n1):
                    channels_last(x[n], src_h, src_w, 0, src_h.size, xt)
                    _patch_rows(xt, KH, KW, SH, SW, DH, H_out, W_out, P, (n - n0) * L)
                    _load(go[n].reshape(K, L), (n - n0) * L, G)
                rows = (n1 - n0) * L
                gemm(True, False, P[:rows], G[:rows], dW_blocks[task], n0 > task * block, cblas)
                if input_grad:
                    gemm(False, False, G[:rows], W_rt, P[:rows], False, cblas)
                    for n in range(n0, n1):
                        _row2im(P, (n - n0) * L, KH, KW, SH, SW, DH, H_out, W_out, plane)
                        fold_channels_last(plane, src_h, src_w, once, gx[n])
                        if add:
                            _add_sample(gx[n], addend[n])
    release(saved)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _add_sample(gxn, an):
    """``gxn = gxn + an`` (C, H, W), each sum in gxn's dtype, as NumPy's ``gx + addend`` forms it."""
    g, a = gxn.reshape(-1), an.reshape(-1)
    for i in range(g.size):
        g[i] = g[i] + a[i]


# ---------------------------------------------------------------------------------------------------
# The passes
# ---------------------------------------------------------------------------------------------------


def _maps(g2):
    """(src_h, src_w, once): the padded input's index maps (conv.py's, new arrays) and whether they copy every
    input cell exactly once (a zero fill), the latter remembered per geometry (it cost 20 us a call)."""
    src_h, src_w = conv_maps(g2)
    return src_h, src_w, _once(g2) if max(src_h.size, src_w.size) <= 4096 else _copied_once(g2, src_h, src_w)


@functools.lru_cache(maxsize=256)
def _once(g2):
    return _copied_once(g2, *conv_maps(g2))


def _copied_once(g2, src_h, src_w):
    return copied_once(src_h, g2.sizes[0]) and copied_once(src_w, g2.sizes[1])


def _rows_weight(w4):
    """W_r (KH KW C, K): W_r[(kh*KW + kw)*C + c, k] = w4[k, c, kh, kw]."""
    K = w4.shape[0]
    return np.ascontiguousarray(w4.transpose(2, 3, 1, 0)).reshape(-1, K)


def _scratch(geom, g2, dtype, nb, src_h, src_w, with_plane):
    C, K = geom.C_in, geom.C_out
    L = g2.out[0] * g2.out[1]
    KK = g2.kernel[0] * g2.kernel[1] * C
    xt = buffers("im2row.xt", (src_h.size, src_w.size, C), dtype)
    P = buffers("im2row.P", (nb * L, KK), dtype)
    Y = buffers("im2row.Y", (nb * L, K), dtype)
    plane = buffers("im2row.plane", (src_h.size, src_w.size, C) if with_plane else (1, 1, 1), dtype)
    return xt, P, Y, plane


def forward(geom, g2, x4, w4, bias, y, norm=None, norm_relu=False, residual=None):
    """y (N, K, H_out, W_out), overwritten: the convolution ``geom`` of x4 by w4 (+ bias). ``norm`` (K, 4)
    float64: y receives the evaluation-mode batch norm of the convolution, plus ``residual`` (y's shape) when
    given, and the ReLU of that with ``norm_relu`` (fastcnn.conv_norm), as winograd4.forward."""
    dtype = w4.dtype
    N = x4.shape[0]
    src_h, src_w, _ = _maps(g2)
    nb = _block_samples(N, g2.out[0] * g2.out[1])
    xt, P, Y, _ = _scratch(geom, g2, dtype, nb, src_h, src_w, False)
    (KH, KW), (SH, SW), (DH, _) = g2.kernel, g2.stride, g2.dilation
    y4 = y.reshape((N, geom.C_out) + tuple(g2.out))
    with outside_kernel(_blas.CBLAS):
        mode = norm_flags(norm, norm_relu, residual)
        _forward_kernel(x4.reshape((N, geom.C_in) + tuple(g2.sizes)), src_h, src_w, _rows_weight(w4),
                        none(1, dtype) if bias is None else bias, bias is not None, KH, KW, SH, SW, DH, nb,
                        _blas.CBLAS, y4, np.zeros((1, 4)) if norm is None else norm, mode,
                        np.zeros((1, 1, 1, 1), dtype=dtype) if residual is None else residual.reshape(y4.shape),
                        xt, P, Y, most_workers(-(-N // nb)))


def backward(geom, g2, go4, x4, w4, gx, input_grad=True, addend=None):
    """gx (N, C, H, W), overwritten when ``input_grad``, and the returned weight gradient (K, C, KH, KW) of
    :func:`forward`'s convolution. ``addend`` (gx's shape and dtype): gx receives the input gradient plus it."""
    dtype = w4.dtype
    N, C, K = x4.shape[0], geom.C_in, geom.C_out
    src_h, src_w, once = _maps(g2)
    L = g2.out[0] * g2.out[1]
    nb = _block_samples(N, L)
    block = nb * -(-GW_BLOCK // nb)
    tasks = -(-N // block)
    (KH, KW), (SH, SW), (DH, _) = g2.kernel, g2.stride, g2.dilation
    KK = KH * KW * C
    xt, P, G, plane = _scratch(geom, g2, dtype, nb, src_h, src_w, input_grad)
    dW_blocks = SCRATCH.get("im2row.dW", tasks * KK * K, dtype).reshape(tasks, KK, K)
    W_rt = np.ascontiguousarray(w4.transpose(0, 2, 3, 1)).reshape(K, KK)  # W_r^T
    with outside_kernel(_blas.CBLAS):
        _backward_kernel(x4.reshape((N, C) + tuple(g2.sizes)), go4.reshape((N, K) + tuple(g2.out)), src_h, src_w,
                         W_rt, KH, KW, SH, SW, DH, nb, block, bool(input_grad), once, _blas.CBLAS, dW_blocks,
                         gx.reshape((N, C) + tuple(g2.sizes)), addend is not None,
                         gx[:1] if addend is None else addend.reshape(gx.shape), xt, P, G, plane,
                         most_workers(tasks))
    dW = np.empty((KK, K), dtype=dtype)
    sum_blocks(dW_blocks, dW)
    # (kh, kw, c, k) -> (k, c, kh, kw)
    return np.ascontiguousarray(dW.reshape(KH, KW, C, K).transpose(3, 2, 0, 1))

