"""F(4x4, 3x3)'s matrices and the weights' side of it (fastcnn.winograd4): ``U = G g G^T`` per pair of channels,
its adjoint for the weight gradient, and the transformed weights that evaluation-mode calls remember.

Lavin, A. and Gray, S. (2015), "Fast Algorithms for Convolutional Neural Networks", arXiv:1509.09308, section
4.2. The transforms are computed in float64 and stored in the convolution's dtype; the kernels take arrays only.
"""

from __future__ import annotations

import collections
import threading

import numba
import numpy as np
from numba import prange

from . import _runtime
from ._claim import claim, wait_for

__all__ = ["BT", "G", "AT", "weight_transform", "weight_grad", "remembered_weight_transform", "REMEMBERED_BYTES"]

#: The F(4x4, 3x3) matrices (Lavin and Gray 2015, section 4.2).
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], dtype=np.float64)


def weight_transform(w4, dtype, transposed=False):
    """U (36, C, K): U[a*6 + b, c, k] = (G w[k, c] G^T)[a, b], computed in float64, stored in ``dtype``; or with
    ``transposed``, U's transpose (36, K, C), the same values (each formed by the same operations: the kernel's
    arithmetic does not depend on which channel axis runs innermost), without a transposing copy after."""
    wt, U = transform_args(w4, dtype, transposed)
    _runtime.launch(_transform_kernel, wt.size, wt, U)  # 64 x 64 channels: 88 us alone, 165 on 2 threads
    return U


#: Evaluation-mode calls (a batch norm in the op: fastcnn.conv_norm, which only a pass that does not train
#: takes) remember their transformed weights: a network's inference calls each layer with the same weights every
#: time, and on ResNet-20's 64-channel layers the transform cost 0.1-0.2 ms of a 0.9 ms call (the 590 KB of U
#: written on one core and read on both). Per weight array (its identity, shape and dtype) the last weights seen,
#: a copy, and their U; reused only when the weights now hold the same bits (compared in full, so a weight changed
#: in place is seen), the least recently used let go past REMEMBERED_BYTES.
REMEMBERED_BYTES = 64 << 20
_remembered: collections.OrderedDict = collections.OrderedDict()
_remembered_lock = threading.Lock()


def remembered_weight_transform(w4, dtype):
    """:func:`weight_transform` of w4, from the last evaluation-mode call with the same weights when there was
    one (see REMEMBERED_BYTES)."""
    # The array's identity finds the candidate (``w4.ctypes.data`` cost ~17 us a call in an inference pass); the
    # full comparison of bits below decides, so another array that takes the same id is never given stale U. The
    # dtypes themselves in the key (their ``.str`` is a new string each time) and the bits viewed in the kernel:
    # 37 -> 23 us a call where the kernel before has left the caches cold (session 39).
    key = (id(w4), w4.shape, w4.dtype, dtype if isinstance(dtype, np.dtype) else np.dtype(dtype))
    with _remembered_lock:
        seen = _remembered.get(key)
        if seen is not None:
            _remembered.move_to_end(key)
    if seen is not None and _same_weights(seen[0], w4):
        return seen[1]
    U = weight_transform(w4, dtype)
    with _remembered_lock:
        _remembered.pop(key, None)
        _remembered[key] = (w4.copy(), U)
        total = sum(w.nbytes + u.nbytes for w, u in _remembered.values())
        while total > REMEMBERED_BYTES and len(_remembered) > 1:
            w, u = _remembered.popitem(last=False)[1]
            total -= w.nbytes + u.nbytes
    return U


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _same_weights(a, b):
    """Whether two C-contiguous float arrays of one dtype and shape hold the same bits (:func:`_same_bits` of
    their integer views)."""
    if a.itemsize == 4:
        return _same_bits(a.reshape(-1).view(np.int32), b.reshape(-1).view(np.int32))
    return _same_bits(a.reshape(-1).view(np.int64), b.reshape(-1).view(np.int64))


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _same_bits(a, b):
    """Whether two integer views of floats, as long and not empty, hold the same bits (a NaN equals itself, 0.0
    differs from -0.0). One OR of XORs over all of them, no branch: vectorised, 4 us for 64 x 64 x 3 x 3 (an exit
    at the first difference: 11 us)."""
    differ = a[0] ^ b[0]
    for i in range(1, a.size):
        differ |= a[i] ^ b[i]
    return differ == 0


def weight_grad(dU_blocks, dtype):
    """dg (K, C, 3, 3) = G^T dU G per (k, c), the adjoint of :func:`weight_transform`, where dU (36, C, K) is the
    sum of the backward tasks' blocks ``dU_blocks[0] + dU_blocks[1] + ...`` (B, 36, C, K), added in that order in
    their dtype (as ``_conv_base.sum_blocks`` adds blocks). One kernel sums and transforms each input channel's
    rows and writes dg in its own layout: no dU in memory between, no transposing copy after; the same bits as
    summing first. fastcnn.winograd4's backward computes the same inside its own parallel region
    (:func:`grad_share`, session 37); this standalone call is that computation's reference (tests/test_winograd.py
    checks both against it and it against a NumPy emulation)."""
    C, K = dU_blocks.shape[2:]
    dg = np.empty((K, C, 3, 3), dtype=dtype)
    _runtime.launch(_grad_kernel, 36 * C * K, dU_blocks, dg)  # weighed as sum_blocks weighs its output
    return dg


# The weight transforms run over the output channels k innermost, where U and dU are contiguous: every line is
# a loop over k that the compiler vectorises (6x faster on 64 -> 64 channels than one (k, c) at a time), each
# element still formed by the same float64 operations in the same order.


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _transform_channel(wt, U, c):
    """U[a*6 + b, c, k] = sum over i, j of G[a, i] wt[c, i, j, k] G[b, j], in float64: G w, then (G w) G^T,
    for one input channel c (whole rows U[xi, c, :]). wt (C, 3, 3, K) float64. NaN and infinities propagate
    silently, as in the other kernels."""
    K = wt.shape[3]
    t = np.empty((6, 3, K))
    for a in range(6):
        g0, g1, g2 = G[a, 0], G[a, 1], G[a, 2]
        for j in range(3):
            w0, w1, w2, ta = wt[c, 0, j], wt[c, 1, j], wt[c, 2, j], t[a, j]
            for k in range(K):
                ta[k] = g0 * w0[k] + g1 * w1[k] + g2 * w2[k]
    for a in range(6):
        t0, t1, t2 = t[a, 0], t[a, 1], t[a, 2]
        for b in range(6):
            g0, g1, g2, u = G[b, 0], G[b, 1], G[b, 2], U[6 * a + b, c]
            for k in range(K):
                u[k] = t0[k] * g0 + t1[k] * g1 + t2[k] * g2


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _transform_kernel(wt, U):
    """U from wt (:func:`_transform_channel`), a task per input channel."""
    for c in prange(wt.shape[0]):
        _transform_channel(wt, U, c)


#: Input channels per share of a transform computed inside a convolution's parallel region
#: (:func:`transform_share`).
SHARE_CHANNELS = 8


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _weights_channel(w4, wt, c, transposed):
    """wt[c] = channel c of the weights w4 (K, C, 3, 3) in float64, laid out for :func:`_transform_channel`:
    wt[c, i, j, k] = w4[k, c, i, j], or with ``transposed`` wt[k, i, j, c'] = w4[k, c', i, j] for k = c: what
    :func:`transform_args` copies, a channel at a time."""
    if transposed:
        for i in range(3):
            for j in range(3):
                row = wt[c, i, j]
                for c2 in range(row.size):
                    row[c2] = np.float64(w4[c, c2, i, j])
        return
    for i in range(3):
        for j in range(3):
            row = wt[c, i, j]
            for k in range(row.size):
                row[k] = np.float64(w4[k, c, i, j])


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def transform_share(w4, wt, U, counters, transposed):
    """U from the weights w4 (K, C, 3, 3) as :func:`weight_transform` computes it (U's transpose with
    ``transposed``), by the threads of a convolution's parallel region before their tasks: each takes shares of
    SHARE_CHANNELS channels of wt's first axis, one at a time (``counters[0]``, fastcnn._claim), copies them
    into wt (float64, :func:`transform_args`'s layout and shape) and transforms them, counts each share done
    (``counters[1]``) and returns once all are done. The thread that starts first does the shares while the
    others wake (about 67 us with fastcnn's sleeping waiters on the 2-core VM, more than a 16-channel layer's
    transform), and U is never written by one thread alone before the region; nor is wt (the float64 copy cost
    ~18 us a call from Python in a training step). The same values as weight_transform: each element by the
    same operations, whichever thread computes it. counters: (2,) int64, zero."""
    shares = -(-wt.shape[0] // SHARE_CHANNELS)
    while True:
        share = claim(counters[:1])
        if share >= shares:
            break
        for c in range(share * SHARE_CHANNELS, min(wt.shape[0], (share + 1) * SHARE_CHANNELS)):
            _weights_channel(w4, wt, c, transposed)
            _transform_channel(wt, U, c)
        claim(counters[1:])
    wait_for(counters[1:], shares)


def transform_args(w4, dtype, transposed=False):
    """``(wt, U)`` for :func:`transform_share` and the kernel: the weights in float64, (C, 3, 3, K), or with
    ``transposed`` (K, 3, 3, C) (the last axis innermost, see :func:`_transform_channel`), and room for U, or
    U's transpose (36, K, C)."""
    wt = np.ascontiguousarray(w4.transpose((0, 2, 3, 1) if transposed else (1, 2, 3, 0)), dtype=np.float64)
    return wt, np.empty((36, wt.shape[0], wt.shape[3]), dtype=dtype)


@numba.njit(inline="always", fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_channel(blocks, dg, c):
    """dg[k, c, i, j] = sum over a, b of G[a, i] dU[a*6 + b, c, k] G[b, j], dU the blocks' sum: per input channel
    c, its 36 rows of dU summed from 0 in order of the blocks in their dtype (as _conv_base._sum_blocks), then
    in float64 G^T dU, then G, each sum from 0 in order of a (b)."""
    B, K = blocks.shape[0], blocks.shape[3]
    dU = np.empty((36, K), dtype=blocks.dtype)
    for xi in range(36):
        row = dU[xi]
        for k in range(K):
            row[k] = 0
        for b in range(B):
            src = blocks[b, xi, c]
            for k in range(K):
                row[k] = row[k] + src[k]
    t = np.empty((3, 6, K))
    for i in range(3):
        g0, g1, g2, g3, g4, g5 = G[0, i], G[1, i], G[2, i], G[3, i], G[4, i], G[5, i]
        for b in range(6):
            acc = t[i, b]
            r0, r1, r2, r3, r4, r5 = dU[b], dU[6 + b], dU[12 + b], dU[18 + b], dU[24 + b], dU[30 + b]
            for k in range(K):
                s = 0.0
                s += g0 * r0[k]
                s += g1 * r1[k]
                s += g2 * r2[k]
                s += g3 * r3[k]
                s += g4 * r4[k]
                s += g5 * r5[k]
                acc[k] = s
    for i in range(3):
        t0, t1, t2, t3, t4, t5 = t[i, 0], t[i, 1], t[i, 2], t[i, 3], t[i, 4], t[i, 5]
        for j in range(3):
            h0, h1, h2, h3, h4, h5 = G[0, j], G[1, j], G[2, j], G[3, j], G[4, j], G[5, j]
            for k in range(K):
                s = 0.0
                s += t0[k] * h0
                s += t1[k] * h1
                s += t2[k] * h2
                s += t3[k] * h3
                s += t4[k] * h4
                s += t5[k] * h5
                dg[k, c, i, j] = s


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_kernel(blocks, dg):
    """dg from the blocks (:func:`_grad_channel`), a task per input channel."""
    for c in prange(blocks.shape[2]):
        _grad_channel(blocks, dg, c)


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def grad_share(blocks, dg, counters, tasks):
    """dg from the blocks as :func:`weight_grad` computes it, by the threads of the backward's parallel region
    after their tasks: once ``counters[0]`` counts all ``tasks`` done (each task's block written), each thread
    takes shares of SHARE_CHANNELS input channels, one at a time (``counters[1]``). The wait is for the tasks
    the other threads are still running (the region's end would wait for them as well); the sum and the
    transform then run on every thread, without a kernel of their own to launch after the region. The same
    values as weight_grad, whichever thread computes a channel. counters: (2,) int64, counters[0] counting the
    tasks done."""
    wait_for(counters[:1], tasks)
    shares = -(-blocks.shape[2] // SHARE_CHANNELS)
    while True:
        share = claim(counters[1:])
        if share >= shares:
            break
        for c in range(share * SHARE_CHANNELS, min(blocks.shape[2], (share + 1) * SHARE_CHANNELS)):
            _grad_channel(blocks, dg, c)