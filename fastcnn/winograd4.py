"""Winograd convolution F(4x4, 3x3): stride-1 3x3 convolutions with 4x fewer multiplications.

Lavin, A. and Gray, S. (2015), "Fast Algorithms for Convolutional Neural Networks", arXiv:1509.09308, section
4.2, whose matrices (Toom-Cook on the points 0, 1, -1, 2, -2 and infinity) are used here. Output tile ``Y``
(4x4) of input tile ``d`` (6x6) and kernel ``g`` (3x3)::

    Y = A^T [ (G g G^T) * (B^T d B) ] A            (* : element by element, 36 products for 144)

``tests/test_winograd.py`` checks the 1-D identity ``A^T [(G g) * (B^T d)] = (d0 g0 + d1 g1 + d2 g2, ...)``
for the matrices (in fastcnn.winograd4_weights, with the weights' transforms), and every result against refcnn.
Where :mod:`fastcnn.winograd` (F(2x2, 3x3)) holds only 0 and +-1 in ``B`` and ``A``, these hold 2, 4, 5 and 8
and ``G`` sixths and twenty-fourths: the float32 error grows (``specs/conv.md``, "Algorithms", gives the measured
bound).

**The sums over channels** are 36 GEMMs, one per tile position ``xi``, as in F(2x2, 3x3) (see that module for
the backward as the adjoint of the forward). The difference is the layout: here the transformed tiles are
*channel-last*, ``V[xi]`` is (tiles x C), ``U[xi]`` (C x K) and ``M[xi] = V[xi] @ U[xi]`` (tiles x K), so
that every transform is a loop over channels with contiguous loads and stores, which the compiler turns
into SIMD instructions (the channel counts of the layers it pays on, 16 and more, fill the vectors).
The input rows a chunk needs are copied to channel-last first, and the output rows back to channel-first
(fastcnn.winograd4_tiles: ``channels_last``, ``store_rows``): a copy of the input and one of the output per
call, which cost less than scalar transforms.

**Blocks that stay in cache**: one task takes a block of ``nb`` samples, and its tiles go through the 36
GEMMs in chunks whose ``V`` and ``M`` together stay under :data:`CHUNK_BYTES`: several whole samples per
chunk when a sample is small, some tile rows of one sample when it is large (``_plan``). The blocks depend
on the shapes only, never on the thread count: the weight gradient is summed chunk by chunk within a block
and the blocks in order afterwards, and every other value is computed by one task, so results are
bit-identical for any thread count.

**Padding**: through conv.py's index maps, with zero rows (columns) appended so that the last tile's 6x6
window lies inside (``_tile_maps``); the channel-last copy of a chunk's input rows reads the unpadded input
through them, so no padded copy of the batch is made. Outputs past ``H_out`` x ``W_out`` are dropped and
their gradients taken as 0.

**Pooling in the output transform** (``pooled``, for fastcnn.conv_pool): a 4x4 output tile holds four whole
2x2 pooling windows, so ``winograd4_pooled.pooled_output_row`` computes max_pool(relu(y)) and the windows'
winners instead of y (``store_pooled`` writes them out a chunk at a time), and the backward's
``load_pooled_grad_rows`` rebuilds each tile's output gradient from the pooled one.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from cnnbase.conv_algorithm import winograd_obstacle

from . import _blas, _runtime, conv
from ._blas import gemm, hold_one_thread, outside_kernel, release
from ._claim import claim, counters, most_workers, team
from ._conv_base import (SCRATCH, buffers, conv_maps, copied_once, int_view, matrix, none, norm_flags, positions,
                         row_cells, sum_blocks)
from .winograd4_producer import producer_tuple, sample
from .winograd4_weights import grad_share, remembered_weight_transform, transform_share
from .winograd4_pooled import load_pooled_grad_rows, pooled_channels_last, pooled_output_row, store_pooled
from .winograd4_tiles import (add_masked, channels_last, fold_channels_last, grad_out_row, input_adjoint_row, input_row,
                              load_grad_rows, masked_interior, norm_rows, output_row, relu_mask, store_rows)

__all__: list[str] = []

#: Bytes of one chunk's V and M together: half of this machine's 2 MB L2 per core leaves room for the
#: channel-last input rows, the output rows and the GEMM's own blocks.
CHUNK_BYTES = 1 << 20

#: Samples per block at most: enough tiles per GEMM (a 26x26 sample gives 36) without starving the threads of
#: tasks on a batch of 128.
MAX_BLOCK = 4

#: Bytes of the backward tasks' private weight gradients together, at most (they are summed in order at the
#: end): a large batch of many channels takes more samples per task rather than more memory.
DU_BYTES = 64 << 20

#: Samples per backward task at least: each task sums its weight gradient privately (36 x C x K) and the tasks'
#: sums are added in order afterwards, so fewer, longer tasks write and re-read fewer of them; the tasks are
#: claimed one at a time (fastcnn._claim), so a batch of 64 in 8 tasks still keeps 2 threads busy. Measured
#: here (session 28, 2 threads, float32, backward ms, 4 / 8 / 16 samples a task): 32 -> 32 on 14x14, batch 64:
#: 2.12 / 1.94 / 1.90; the seeds' conv2, batch 128: 11.7 / 11.6 / 11.6 (noisy); 16 -> 16 on 28x28 and
#: 64 -> 64 on 7x7: unchanged.
TASK_SAMPLES = 8

#: Tiles per chunk at least: each of the 36 GEMMs reads all of U[xi] (C x K) for the chunk's tiles, so fewer
#: tiles than this leave the GEMMs bound by reading U (measured on 128 -> 128 channels, 14x14: 16 tiles per
#: chunk ran 2x slower than direct).
MIN_TILES = 64

#: ``algorithm="auto"`` takes F(4x4, 3x3) from MIN_CHANNELS input and output channels, up to MAX_WEIGHTS
#: products C x K, on outputs of at least MIN_OUTPUT x MIN_OUTPUT (MIN_OUTPUT_FEW x MIN_OUTPUT_FEW when a side has
#: fewer than 32 channels). Measured here (2 threads, float32, batch
#: 128, 3x3 padding 1, interleaved medians, ms forward / backward; direct, F(2x2), F(4x4)):
#: 16 -> 16 channels on 32x32: 5.4/14.7, 6.3/11.2, 5.1/11.4; 16 -> 32 on 32x32: 7.5/17.8, 7.8/14.3, 5.8/11.6;
#: 32 -> 32 on 16x16: 4.6/10.6, 3.3/7.8, 2.7/5.6; 64 -> 64 on 8x8: 3.4/8.9, 3.2/7.9, 2.5/4.9; the seeds' conv2
#: (32 -> 64, 26x26, no padding): 11.9/29.7, 10.7/24.3, 6.8/16.8. It loses below 16 channels (8 -> 8 on
#: 28x28: 1.5/3.3, 1.9/3.6, 3.2/5.7), on 128 -> 128 channels (batch 64, 14x14: 26.3/39.6, 12.1/32.4,
#: 20.6/48.6: the 36 transformed weight matrices, 2.4 MB, no longer stay in cache), and forward on a 4x4
#: output (32 -> 32, 6x6 no padding: 0.48, 0.68, 0.80).
#: The output sizes, measured again in session 27 (2-core Xeon AVX-512, batch 64, padding 1, ms forward /
#: backward, direct against F(4x4)): a 7x7 output fills 77% of its 2x2 tiles and pays from 32 channels (32 -> 32:
#: 0.92/2.19 against 0.86/1.61; 64 -> 64: 1.85/4.54 against 1.75/3.18, ResNet-20's last stage) but not with 16
#: (0.45/1.11 against 0.61/1.10); 5x5 and 6x6 lose at 32 channels (6x6: 0.65/1.64 against 0.83/1.58). With 16
#: channels F(4x4) needs larger maps: 9x9 0.57/1.36 against 0.81/1.53, 13x13 0.85/2.07 against 1.10/2.03, but 16 ->
#: 32 on 14x14 1.03/2.65 against 1.07/2.01 and 16 -> 16 on 28x28 2.43/6.16 against 2.21/3.97.
MIN_CHANNELS = 16
MAX_WEIGHTS = 64 * 64
MIN_OUTPUT = 7
MIN_OUTPUT_FEW = 14

#: The forward's and the backward's set-ups per call shape (fastcnn._runtime.Plans).
PLANS = _runtime.Plans()

#: Stands for a given x4 where a set-up is made before the call's own x4 is at hand (only its being given
#: matters to ``producer_tuple``).
_GIVEN = np.empty((0, 0, 0, 0))


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _transform_inputs(x, src_h, src_w, n0, n1, i0, i1, tw, xts, V, h, producer, cblas):
    """V's tiles for tile rows i0 <= i < i1 of samples n0 <= n < n1 (numbered sample by sample). xts (slots, rows,
    Wp, C): sample n's channel-last rows go to slot (n - n0) % slots (one slot: each sample overwrites the last;
    nb slots: they stay for the backward's producer gradients). ``producer``: see :func:`winograd4_producer.sample`."""
    for n in range(n0, n1):
        xt = xts[(n - n0) % xts.shape[0]]
        channels_last(sample(x, n, producer, cblas), src_h, src_w, 4 * i0, 4 * (i1 - 1) + 6, xt)
        for i in range(i0, i1):
            input_row(xt, 4 * (i - i0), tw, V, ((n - n0) * (i1 - i0) + i - i0) * tw, h)


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_kernel(x, src_h, src_w, w4, U_given, bias, want_bias, H_out, W_out, nb, rows, cblas, pooled, codes, y,
                    winners, xt_bufs, V_bufs, M_bufs, y_bufs, h_bufs, p_bufs, w_bufs, producer, norm, norm_mode,
                    residual, most):
    """y = the convolution of the input x (N, C, H, W), padded through the tile maps src_h, src_w, by the
    transformed weights U (36, C, K): per block of nb samples, per chunk of ``rows`` tile rows (all of them
    when nb > 1): input transform,
    ``M[xi] = V[xi] @ U[xi]`` (one single-threaded BLAS call per position), output transform (+ bias).
    When ``pooled``, y (N, K, H_out // 2, W_out // 2) receives max_pool(relu(...)) instead and winners
    its windows' winners (``winograd4_pooled.pooled_output_row``) when ``codes``. ``producer``: the input
    computed sample by sample (``winograd4_producer.sample``). ``norm``, ``norm_mode``, ``residual``: an
    evaluation-mode batch norm, a residual added and a ReLU, applied to each chunk's rows of a sample once they
    are stored (``winograd4_tiles.norm_rows``; 0: none). The blocks are claimed one at a time by at most
    ``most`` workers (fastcnn._claim). U_given: U, or empty: the threads compute U from the weights w4
    (K, C, 3, 3) first (``winograd4_weights.transform_share``). NumPy's OpenBLAS is held at one thread meanwhile
    (``_blas.hold_one_thread``)."""
    N = x.shape[0]
    saved = hold_one_thread(cblas)
    transform = U_given.size == 0
    C, K = w4.shape[1], w4.shape[0]
    U = np.empty((36, C, K), dtype=y.dtype) if transform else U_given
    wt, shares = np.empty((C if transform else 0, 3, 3, K)), counters(2)
    workers, counter = team((N + nb - 1) // nb, most)
    for _ in prange(workers):
        if transform:
            transform_share(w4, wt, U, shares, False)
        while True:
            blk = claim(counter)
            if blk >= (N + nb - 1) // nb:
                break
            _forward_block(x, src_h, src_w, U, bias, want_bias, H_out, W_out, nb, rows, cblas, pooled, codes, y,
                           winners, xt_bufs, V_bufs, M_bufs, y_bufs, h_bufs, p_bufs, w_bufs, producer, norm,
                           norm_mode, residual, blk)
    release(saved)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_block(x, src_h, src_w, U, bias, want_bias, H_out, W_out, nb, rows, cblas, pooled, codes, y, winners,
                   xt_bufs, V_bufs, M_bufs, y_bufs, h_bufs, p_bufs, w_bufs, producer, norm, norm_mode, residual,
                   blk):
    """:func:`_forward_kernel`'s samples blk * nb <= n < (blk + 1) * nb, on this thread's scratch."""
    N, C = x.shape[0], x.shape[1]
    K = U.shape[2]
    th, tw = (H_out + 3) // 4, (W_out + 3) // 4
    SV, SM = V_bufs.shape[1] // 36, M_bufs.shape[1] // 36
    tid = numba.get_thread_id()
    V, M = positions(V_bufs[tid], 36, SV), positions(M_bufs[tid], 36, SM)
    n0, n1 = blk * nb, min(N, (blk + 1) * nb)
    for i0 in range(0, th, rows):
        i1 = min(th, i0 + rows)
        T = (n1 - n0) * (i1 - i0) * tw
        _transform_inputs(x, src_h, src_w, n0, n1, i0, i1, tw, xt_bufs[tid], V, h_bufs[tid], producer, cblas)
        for xi in range(36):
            gemm(False, False, matrix(V_bufs[tid], SV, xi, T, C), U[xi], matrix(M_bufs[tid], SM, xi, T, K),
                 False, cblas)
        for n in range(n0, n1):
            for i in range(i0, i1):
                t = ((n - n0) * (i1 - i0) + i - i0) * tw
                if pooled:
                    pooled_output_row(M, t, tw, bias, want_bias, 2 * (i - i0), p_bufs[tid], w_bufs[tid], h_bufs[tid],
                                      codes)
                else:
                    output_row(M, t, tw, y_bufs[tid], h_bufs[tid])
                    store_rows(y_bufs[tid], bias, want_bias, 4 * i, H_out, W_out, y[n])
            if norm_mode != 0 and not pooled:  # the chunk's rows of this sample, while they are in cache
                norm_rows(y, residual, n, 4 * i0, min(H_out, 4 * i1), norm, norm_mode)
            if pooled:
                store_pooled(p_bufs[tid], w_bufs[tid], 2 * i0, 2 * (i1 - i0), y[n], winners[n if codes else 0],
                             codes)


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_kernel(x, go, winners, w4, H_out, W_out, nb, rows, block, input_grad, cblas, pooled, src_h, src_w,
                     once, relu_input, add, g_add, y_add, dU_blocks, gx, xt_bufs, V_bufs, M_bufs, g_bufs, plane_bufs,
                     h_bufs, p_bufs, w_bufs, p_bits, g_bits, producer, producer_grads, G_bufs, pw_blocks, most):
    """Both gradients of :func:`_forward_kernel`'s convolution. One task per ``block`` samples (a multiple of
    nb), which it takes nb samples and ``rows`` tile rows at a time as there:

    * ``dU_blocks[blk, xi] = sum over the task's chunks, in order, of V[xi]^T @ dM[xi]`` (C x K);
    * when ``input_grad``: ``dV[xi] = dM[xi] @ UT[xi]``, UT[xi] = U[xi]^T (K x C) stored transposed (a plain
      product: 1.7x the rate of one with a transposed operand, 72 x 64 by 64 x 32, OpenBLAS 0.3.31; written
      over V[xi], whose last use was the product above), its adjoint input transform added onto the sample's
      zeroed channel-last padded plane, which is folded onto gx[n] through the fill's index maps once the
      sample's tiles are done.

    go (N, K, H_out, W_out), or when ``pooled`` the gradient of the pooled output (N, K, H_out // 2,
    W_out // 2) with the forward's winners (``winograd4_pooled.load_pooled_grad_rows``); dU_blocks (B, 36, C, K),
    B = ceil(N / block); plane_bufs (threads, nb, Hp, Wp, C). ``relu_input``: x is a ReLU's output, and gx
    receives the gradient with respect to that ReLU's input (gx times the mask of x > 0). ``add``: then
    ``g_add`` through the mask of ``y_add`` > 0 (x's shape) is added onto gx (``winograd4_tiles.add_masked``).

    ``producer_grads``: x = relu(conv(x0)) (x itself, or computed sample by sample when ``producer`` is on:
    ``winograd4_producer.sample``, whose tuple holds xp0 and the taps), and instead of gx each task sums that
    convolution's parameter gradients:
    ``pw_blocks[blk] = sum over its samples, in order, of cols @ G``, cols (C0 KH KW + 1, H W) the sample's
    im2col with a last row of ones (the bias), G (H W, C) the ReLU's input gradient, channel-last, taken from
    the plane and the sample's channel-last input (xt_bufs hold nb samples; the whole sample in one chunk).
    The tasks are claimed one at a time by at most ``most`` workers (fastcnn._claim). The threads compute UT
    from the weights w4 (K, C, 3, 3) first, as :func:`_forward_kernel` U; after the tasks, the weight gradient
    (K, C, 3, 3) from dU_blocks (``winograd4_weights.grad_share``), which the kernel returns. NumPy's OpenBLAS is
    held at one thread meanwhile (``_blas.hold_one_thread``)."""
    N = x.shape[0]
    tasks = (N + block - 1) // block
    saved = hold_one_thread(cblas)
    C, K = w4.shape[1], w4.shape[0]
    UT, wt = np.empty((36, K, C), dtype=w4.dtype), np.empty((K, 3, 3, C))
    dg, shares, grads = np.empty((K, C, 3, 3), dtype=w4.dtype), counters(2), counters(2)
    workers, counter = team(tasks, most)
    for _ in prange(workers):
        transform_share(w4, wt, UT, shares, True)
        while True:
            blk = claim(counter)
            if blk >= tasks:
                break
            _backward_block(x, go, winners, UT, H_out, W_out, nb, rows, block, input_grad, cblas, pooled, src_h,
                            src_w, once, relu_input, add, g_add, y_add, dU_blocks, gx, xt_bufs, V_bufs, M_bufs,
                            g_bufs, plane_bufs, h_bufs, p_bufs, w_bufs, p_bits, g_bits, producer, producer_grads,
                            G_bufs, pw_blocks, blk)
            claim(grads[:1])  # counted done, its block written
        grad_share(dU_blocks, dg, grads, tasks)
    release(saved)
    return dg


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_block(x, go, winners, UT, H_out, W_out, nb, rows, block, input_grad, cblas, pooled, src_h, src_w, once,
                    relu_input, add, g_add, y_add, dU_blocks, gx, xt_bufs, V_bufs, M_bufs, g_bufs, plane_bufs, h_bufs,
                    p_bufs, w_bufs, p_bits, g_bits, producer, producer_grads, G_bufs, pw_blocks, blk):
    """:func:`_backward_kernel`'s task ``blk`` (its samples and its dU_blocks[blk]), on this thread's scratch."""
    N, C = x.shape[0], x.shape[1]
    K = UT.shape[1]
    th, tw = (H_out + 3) // 4, (W_out + 3) // 4
    SV, SM = V_bufs.shape[1] // 36, M_bufs.shape[1] // 36
    tid = numba.get_thread_id()
    V, dM = positions(V_bufs[tid], 36, SV), positions(M_bufs[tid], 36, SM)
    planes = plane_bufs[tid]
    for n0 in range(blk * block, min(N, (blk + 1) * block), nb):
        n1 = min(N, n0 + nb)
        if input_grad:
            planes[:n1 - n0] = 0
        for i0 in range(0, th, rows):
            i1 = min(th, i0 + rows)
            T = (n1 - n0) * (i1 - i0) * tw
            _transform_inputs(x, src_h, src_w, n0, n1, i0, i1, tw, xt_bufs[tid], V, h_bufs[tid], producer, cblas)
            for n in range(n0, n1):
                if pooled:
                    pooled_channels_last(go[n], winners[n], 2 * i0, 2 * i1, p_bufs[tid], w_bufs[tid])
                for i in range(i0, i1):
                    if pooled:
                        rows_q = min(2, go.shape[2] - 2 * i)
                        load_pooled_grad_rows(p_bits[tid], w_bufs[tid], 2 * (i - i0), rows_q, go.shape[3],
                                              g_bits[tid])
                    else:
                        load_grad_rows(go[n], 4 * i, H_out, W_out, g_bufs[tid])
                    grad_out_row(g_bufs[tid], tw, dM, ((n - n0) * (i1 - i0) + i - i0) * tw, h_bufs[tid])
            first = n0 == blk * block and i0 == 0
            for xi in range(36):
                Vx = matrix(V_bufs[tid], SV, xi, T, C)
                dMx = matrix(M_bufs[tid], SM, xi, T, K)
                gemm(True, False, Vx, dMx, dU_blocks[blk, xi], not first, cblas)
                if input_grad:
                    gemm(False, False, dMx, UT[xi], Vx, False, cblas)
            if input_grad:
                for n in range(n0, n1):
                    for i in range(i0, i1):
                        input_adjoint_row(V, ((n - n0) * (i1 - i0) + i - i0) * tw, tw, 4 * i, planes[n - n0],
                                           h_bufs[tid])
        if producer_grads:
            xp0, taps, cols = producer[1], producer[4], producer[5][tid]
            for n in range(n0, n1):
                G = G_bufs[tid]
                masked_interior(planes[n - n0], xt_bufs[tid, n - n0], src_h, src_w, G)
                conv._im2col(xp0[n], taps[0], taps[1], 1, 1, taps[2], taps[3], taps[4], taps[5], cols[:-1])
                cols[-1] = 1  # the bias's row
                gemm(False, False, cols, G, pw_blocks[blk], n != blk * block, cblas)
        elif input_grad:
            for n in range(n0, n1):
                fold_channels_last(planes[n - n0], src_h, src_w, once, gx[n])
                if relu_input:  # while gx[n] and x[n] are in cache
                    relu_mask(gx[n], x[n])
                if add:  # fastcnn.conv_residual: the shortcut's gradient, while gx[n] is in cache
                    add_masked(gx[n], g_add[n], y_add[n])


# ---------------------------------------------------------------------------------------------------
# The passes: buffers, index maps
# ---------------------------------------------------------------------------------------------------


def pays(geom, dtype) -> bool:
    """``algorithm="auto"``'s rule for F(4x4, 3x3): it can compute ``geom`` (``winograd_obstacle``), NumPy
    ships a CBLAS, and the channels and output size are in the measured range (MIN_CHANNELS, MAX_WEIGHTS,
    MIN_OUTPUT)."""
    channels = min(geom.C_in, geom.C_out)
    min_output = MIN_OUTPUT if channels >= 32 else MIN_OUTPUT_FEW
    return (winograd_obstacle(geom) is None and _blas.CBLAS and channels >= MIN_CHANNELS
            and geom.C_in * geom.C_out <= MAX_WEIGHTS and min(geom.out) >= min_output)


def _tile_maps(g2):
    """conv.py's index maps of the padded input, lengthened with zero cells so that the last tile's 6x6
    window lies inside: 4 * ceil(out / 4) + 2 cells per axis. New arrays, from maps remembered per geometry (a
    call's set-up cost more than a small layer's work), which the calls' set-ups keep (PLANS)."""
    src_h, src_w, _ = _maps(g2)
    return np.array(src_h, dtype=np.int64), np.array(src_w, dtype=np.int64)


def _fills_once(g2) -> bool:
    """Whether the tile maps copy every input cell exactly once (a zero fill): see ``_conv_base.copied_once``."""
    return _maps(g2)[2]


def _maps(g2):
    """(src_h, src_w, once) of a geometry's tile maps, remembered when its axes are short (any layer of a
    usual network; an axis of 10^8 padded cells, which algorithm="winograd4" accepts, is computed each time)."""
    if max(s + sum(p) for s, p in zip(g2.sizes, g2.pads)) <= 4096:
        return _short_maps(g2)
    return _compute_maps(g2)


@functools.lru_cache(maxsize=256)
def _short_maps(g2):
    """:func:`_compute_maps` with the maps as tuples (nothing can write into them)."""
    src_h, src_w, once = _compute_maps(g2)
    return tuple(src_h.tolist()), tuple(src_w.tolist()), once


def _compute_maps(g2):
    """(src_h, src_w, once)."""
    src_h, src_w = conv_maps(g2)
    H_out, W_out = g2.out
    need_h, need_w = 4 * (-(-H_out // 4)) + 2, 4 * (-(-W_out // 4)) + 2
    src_h = np.append(src_h, np.full(max(0, need_h - src_h.size), -1, dtype=src_h.dtype))
    src_w = np.append(src_w, np.full(max(0, need_w - src_w.size), -1, dtype=src_w.dtype))
    return src_h, src_w, copied_once(src_h, g2.sizes[0]) and copied_once(src_w, g2.sizes[1])


def _plan(N, C, K, H_out, W_out, itemsize):
    """(nb samples per block, tile rows per chunk): V and M of a chunk under CHUNK_BYTES, whole samples per
    chunk (up to MAX_BLOCK, leaving at least two blocks) when one fits, else some tile rows of one sample;
    then at least MIN_TILES tiles per chunk where the batch has them, even past CHUNK_BYTES."""
    th, tw = -(-H_out // 4), -(-W_out // 4)
    row_bytes = 36 * (C + K) * tw * itemsize
    fit = max(1, CHUNK_BYTES // row_bytes)
    if fit < th:
        return 1, min(th, max(fit, -(-MIN_TILES // tw)))
    nb = max(1, min(fit // th, MAX_BLOCK, -(-N // 2)))
    if nb * th * tw < MIN_TILES:
        nb = max(nb, min(-(-MIN_TILES // (th * tw)), -(-N // 2)))
    return nb, th


def _task_samples(N, C, K, nb, itemsize):
    """Samples per backward task: TASK_SAMPLES (rounded up to whole blocks of nb), or more when the tasks' private
    weight gradients (36 x C x K each) would pass DU_BYTES: never derived from the thread count."""
    block = nb * -(-TASK_SAMPLES // nb)
    most = max(1, DU_BYTES // (36 * C * K * itemsize))
    if -(-N // block) > most:
        block = nb * -(-(-(-N // most)) // nb)
    return block


def _buffers(geom, dtype, nb, rows, Wp, slots=1):
    """The per-thread scratch: channel-last input rows (``slots`` samples' worth), V and M (36 rows each), one
    tile row of output, and the transforms' 6x6 block of channel vectors (flat: each transform views it at its
    own width)."""
    C, K = geom.C_in, geom.C_out
    tw = -(-geom.out[1] // 4)
    itemsize = np.dtype(dtype).itemsize
    T = nb * rows * tw
    xt = buffers("winograd4.xt", (slots, 4 * rows + 2, Wp, C), dtype)
    V = buffers("winograd4.V", (36 * row_cells(T * C, itemsize),), dtype)
    M = buffers("winograd4.M", (36 * row_cells(T * K, itemsize),), dtype)
    yt = buffers("winograd4.yt", (4, 4 * tw, K), dtype)
    h = buffers("winograd4.h", (36 * max(C, K),), dtype)  # the transforms' 6x6 block of channel vectors
    return xt, V, M, yt, h


def _pool_buffers(geom, dtype, pooled, rows):
    """The per-thread pooled rows of a chunk (``rows`` tile rows, 2 pooled rows each), channel-last: values and
    winners (a cell each when unused)."""
    shape = (2 * rows, -(-geom.out[1] // 4) * 2, geom.C_out) if pooled else (1, 1, 1)
    return buffers("winograd4.pooled", shape, dtype), buffers("winograd4.winners", shape, np.int8)


def forward(geom, x4, w4, bias, y, winners=None, producer=None, pool=None, norm=None, norm_relu=False,
            residual=None):
    """y (N, K, H_out, W_out), overwritten: the convolution ``geom`` (2-D, 3x3, stride 1, groups 1) of x4 by
    w4 (+ bias), by F(4x4, 3x3). With ``winners`` (int8, N x K x H_out // 2 x W_out // 2), y of that shape
    receives the 2x2 max pooling of its ReLU instead (fastcnn.conv_pool), and winners its windows' winners;
    ``pool=True`` without winners: the pooling alone. ``producer``: None, or
    ``(xp0, w0, b0, taps)`` (``winograd4_producer.producer_args``) when x4 is None: the input is relu(conv(x0)),
    computed sample by sample (``winograd4_producer.sample``). ``norm`` (K, 4) float64: y receives an
    evaluation-mode batch norm of the convolution, plus ``residual`` (y's shape and dtype) when given, and the
    ReLU of that with ``norm_relu`` (fastcnn.conv_norm; ``winograd4_tiles.norm_rows`` has the layout)."""
    dtype = w4.dtype
    pooled = winners is not None or bool(pool)
    N = geom.N if x4 is None else x4.shape[0]
    if producer is None:  # the usual call: its set-up remembered per shape (PLANS)
        setup = PLANS.get(("forward", geom, N, dtype, pooled), lambda: _forward_setup(geom, N, dtype, pooled))
        x_arg, computed = x4, setup[-1]
    else:
        setup = _forward_setup(geom, N, dtype, pooled)
        x_arg, computed = producer_tuple(geom, x4, producer, dtype)
    src_h, src_w, nb, rows, xt, V, M, yt, h, pt, wt, codes, no_bias, no_norm, no_residual, no_U, most, _ = setup
    # U: computed by the kernel's threads (winograd4_weights.transform_share), or in an evaluation-mode call as
    # the last call with these weights left it
    U = no_U if norm is None else remembered_weight_transform(w4, dtype)
    with outside_kernel(_blas.CBLAS):
        _forward_kernel(x_arg, src_h, src_w, w4, U, no_bias if bias is None else bias, bias is not None, geom.out[0],
                        geom.out[1], nb, rows, _blas.CBLAS, pooled, winners is not None, y,
                        codes if winners is None else winners, xt, V, M, yt, h, pt, wt, computed,
                        no_norm if norm is None else norm, norm_flags(norm, norm_relu, residual),
                        no_residual if residual is None else residual, most)


def _forward_setup(geom, N, dtype, pooled):
    """What :func:`forward` derives from the geometry, the batch, the dtype and ``pooled`` alone: the tile maps,
    the plan, the scratch buffers, stand-ins for the arguments a call leaves out, and the producer's tuple when
    there is none."""
    src_h, src_w = _tile_maps(geom)
    nb, rows = _plan(N, geom.C_in, geom.C_out, geom.out[0], geom.out[1], np.dtype(dtype).itemsize)
    xt, V, M, yt, h = _buffers(geom, dtype, nb, rows, src_w.size)
    pt, wt = _pool_buffers(geom, dtype, pooled, rows)
    no_producer = producer_tuple(geom, _GIVEN, None, dtype)[1]
    return (src_h, src_w, nb, rows, xt, V, M, yt, h, pt, wt, np.empty((1, 0, 0, 0), dtype=np.int8), none(1, dtype),
            np.zeros((1, 4)), np.zeros((1, 1, 1, 1), dtype=dtype), np.empty((0, 0, 0), dtype=dtype),
            most_workers(-(-N // nb)), no_producer)


def backward(geom, go4, x4, w4, gx, input_grad=True, winners=None, relu_input=False, producer=None, sums=None,
             addend=None):
    """gx (N, C, H, W), overwritten when ``input_grad``, and the returned weight gradient (K, C, 3, 3) of
    :func:`forward`'s convolution, by the adjoint of F(4x4, 3x3). With ``winners``, go4 is the gradient of
    the pooled output of ``forward(..., winners)``. ``relu_input``: x4 is a ReLU's output, and gx that ReLU's
    input gradient (fastcnn.relu_backward of gx and x4, bit for bit).

    ``producer``: None, or ``winograd4_producer.producer_args``'s tuple, x4 = relu(conv(x0)) (None: computed
    sample by sample as :func:`forward` does), and ``sums`` (C0 KH KW + 1, C): gx is left alone, and sums receives that
    convolution's weight gradient (row (c0 KH + kh) KW + kw) and bias gradient (the last row) instead.

    ``addend``: None, or ``(g, y)``, two arrays of x4's shape and dtype: gx receives ``gx + relu_backward(g, y)``
    (fastcnn.conv_residual; with ``input_grad`` and no producer)."""
    dtype = w4.dtype
    N = geom.N if x4 is None else x4.shape[0]
    fused, pooled = producer is not None, winners is not None
    if fused:
        setup = _backward_setup(geom, N, dtype, input_grad, pooled, producer, x4)
    else:  # the usual call: its set-up remembered per shape (PLANS)
        setup = PLANS.get(("backward", geom, N, dtype, bool(input_grad), pooled),
                          lambda: _backward_setup(geom, N, dtype, input_grad, pooled, None, _GIVEN))
    (src_h, src_w, nb, rows, block, n_blocks, xt, V, M, gt, h, planes, pt, wt, ipt, igt, once, dU_blocks, G, pw_blocks,
     x_arg, computed, no_codes, no_add) = setup
    if not fused:
        x_arg = x4
    with outside_kernel(_blas.CBLAS):  # UT and the weight gradient: computed by the kernel's threads
        dg = _backward_kernel(x_arg, go4, winners if pooled else no_codes, w4, geom.out[0], geom.out[1], nb, rows,
                              block, input_grad or fused, _blas.CBLAS, pooled, src_h, src_w, once, bool(relu_input),
                              addend is not None, *(no_add if addend is None else addend), dU_blocks, gx, xt, V, M,
                              gt, planes, h, pt, wt, ipt, igt, computed, fused, G, pw_blocks, most_workers(n_blocks))
    if fused:
        sum_blocks(pw_blocks, sums)
    return dg


def _backward_setup(geom, N, dtype, input_grad, pooled, producer, x4):
    """What :func:`backward` derives from the geometry, the batch, the dtype and its flags (and the producer's
    arrays, when one computes x4): the tile maps, the plan, the tasks, the scratch buffers, the kernel's x and
    producer tuple, and stand-ins for the arguments a call leaves out."""
    C, K = geom.C_in, geom.C_out
    src_h, src_w = _tile_maps(geom)
    nb, rows = _plan(N, C, K, geom.out[0], geom.out[1], np.dtype(dtype).itemsize)
    fused = producer is not None
    xt, V, M, gt, h = _buffers(geom, dtype, nb, rows, src_w.size, nb if fused else 1)
    block = _task_samples(N, C, K, nb, np.dtype(dtype).itemsize)
    n_blocks = -(-N // block)
    dU_blocks = SCRATCH.get("winograd4.dU", n_blocks * 36 * C * K, dtype).reshape(n_blocks, 36, C, K)
    planes = buffers("winograd4.planes", (nb if input_grad or fused else 1, src_h.size, src_w.size, C), dtype)
    pt, wt = _pool_buffers(geom, dtype, pooled, rows)
    x_arg, computed = producer_tuple(geom, x4, producer, dtype)
    R = computed[2].shape[1] + 1 if fused else 1
    P = geom.sizes[0] * geom.sizes[1] if fused else 1
    G = buffers("winograd4.producer_grad", (P, C if fused else 1), dtype)
    pw_blocks = SCRATCH.get("winograd4.producer_blocks", n_blocks * R * C, dtype).reshape(n_blocks, R, C)
    return (src_h, src_w, nb, rows, block, n_blocks, xt, V, M, gt, h, planes, pt, wt, int_view(pt), int_view(gt),
            _fills_once(geom), dU_blocks, G, pw_blocks, x_arg, computed, np.empty((0, 0, 0, 0), dtype=np.int8),
            (none(4, dtype), none(4, dtype)))


def producer_fits(geom, producer_geometry, dtype) -> bool:
    """Whether :func:`backward` can take the parameter gradients of ``producer_geometry``, a convolution whose
    ReLU'd output is ``geom``'s input, in its own pass: a 2-D convolution (not transposed) with stride 1, one
    group, zero padding, at most MAX_PRODUCER_TAPS input channels times taps (a first layer: its im2col is a
    few rows), the output geom's input; and F(4x4)'s plan holds a whole sample per chunk with a zero-filled
    padding (each input cell one plane cell), so each sample's plane and channel-last input are at hand."""
    p = producer_geometry
    if (p.rank != 2 or p.transposed or p.G != 1 or tuple(p.stride) != (1, 1) or p.padding_mode != "zeros"
            or p.C_out != geom.C_in or tuple(p.out) != tuple(geom.sizes)
            or p.C_in * p.kernel[0] * p.kernel[1] > MAX_PRODUCER_TAPS):
        return False
    H_out, W_out = geom.out
    rows = _plan(1, geom.C_in, geom.C_out, H_out, W_out, np.dtype(dtype).itemsize)[1]
    return rows == -(-H_out // 4) and _fills_once(geom)


#: Input channels times taps of a producer convolution (:func:`producer_fits`) at most: the rows of its
#: per-sample im2col, a GEMM of that many rows by the plane's cells.
MAX_PRODUCER_TAPS = 64


conv.ALGORITHMS["winograd4"] = (pays, forward, backward)
