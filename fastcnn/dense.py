"""Flatten and the dense layer, fast (``specs/dense.md``).

Same names, arguments, defaults and docstrings as :mod:`refcnn.dense`, and the same checks (:mod:`cnnbase.dense`)
before any computation.

``flatten`` is a reshape (a row-major merge of adjacent axes moves no value): no kernel.

``linear`` and its backward are three matrix products, each done by :func:`_matmul` in fixed blocks of work,
each block one single-threaded BLAS GEMM (:mod:`fastcnn._blas`) in a task that a thread claims
(:mod:`fastcnn._claim`): blocks of ``ROW_BLOCK`` rows of the left factor, of ``COLUMN_BLOCK`` columns of the
right factor when it is the larger (each thread then reads only its share of it: the backward's products), or of
``DEPTH_BLOCK`` terms of the sum when the result is the smallest of the three (the partial products are added
in order of depth afterwards). The forward's ``x @ w.T`` with such a long sum and a whole number of vectors of
outputs (the seeds' 9216 -> 128) takes :mod:`fastcnn._microkernel`'s register-blocked product instead where the
CPU has AVX-512 (``_microkernel.PAYS``), in ``PRODUCT_DEPTH_BLOCK`` parts, added the same way: single-threaded
OpenBLAS reaches only 100-115 GFLOP/s on it there. A product of fewer than ``ONE_GEMM_BELOW`` multiply-adds
(16.8 million: ResNet-20's head, the seeds' last layer) is one GEMM on the calling thread, OpenBLAS held at one
thread around it.
Multi-threaded BLAS would be simpler but is not deterministic: OpenBLAS's results change with its thread
count (measured here with threadpoolctl, OpenBLAS 0.3.31: about 12% of the elements of ``x @ w.T`` and 23% of
``grad_out.T @ x`` differ in their last bits between 1 and 2 BLAS threads). With blocks that depend on the
shapes only, every element is computed by the same calls whatever the thread count, so the batch reduction of
``grad_weight`` (which runs inside one GEMM along ``k = b``) is a fixed-order sum. ``grad_bias`` is NumPy's sum
over axis 0 of a C-contiguous array: row after row, in one thread.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import prange

from cnnbase.checks import FORWARD, Verdicts, array_key
from cnnbase.dense import (LinearDims, check_flatten, check_flatten_backward, check_linear_arrays,
                           check_linear_backward)

from . import _blas, _microkernel, _runtime
from ._blas import gemm, gemm_strided, single_threaded
from ._claim import claim, claim_args
from ._microkernel import DEPTH_PANEL, aligned_empty, product_nt
from ._runtime import KERNEL_FLAGS

__all__ = ["flatten", "flatten_backward", "linear", "linear_backward"]


#: Rows of the left factor per task of :func:`_row_blocks`: fixed, so results do not depend on the thread
#: count. 64, not 32: OpenBLAS 0.3.31's single-threaded sgemm is slower per flop on 32 x 9216 blocks (the seeds'
#: first dense layer, forward ``x @ w.T`` and ``grad_out.T @ x``): CPU time of one thread, interleaved, batch
#: 128, 32 -> 64 rows: linear 6.1 -> 4.4 ms, linear_backward 11.7 -> 9.5 ms (issue 16, a loaded 2-core machine).
ROW_BLOCK = 64

#: Columns of the right factor per task of :func:`_column_blocks`, the products whose right factor is the larger
#: (the backward's ``grad_out @ w`` and ``grad_out.T @ x``, 128 x 128 by 128 x 9216 in the seeds' model):
#: each thread then reads its share of that factor once, where row blocks made every thread read all of it.
#: 2,304 (4 tasks there) rather than 1,024 (9: one thread took 5): linear_backward 3.44-3.63 -> 3.00-3.14 ms
#: on 2 threads, and 5.75-5.84 -> 5.55-5.77 with one core busy (session 29); each element is one GEMM's sum
#: over the whole depth either way, and the results were the same bits.
COLUMN_BLOCK = 2304

#: Columns of the right factor from which a product is cut into column blocks (at least two blocks' worth
#: before COLUMN_BLOCK grew to 2,304).
MIN_COLUMNS = 2048

#: Depth per task of :func:`_depth_blocks`, the products of a long sum into a small result (the forward's
#: ``x @ w.T``, 128 x 9216 by 9216 x 128): each task reads a slice of both factors, and the partial products
#: are added in order afterwards.
DEPTH_BLOCK = 2048


#: Depth per task of :func:`_depth_panels` (the forward ``x @ w.T`` through fastcnn._microkernel, whose every
#: element is one chain of fused multiply-adds per part): shorter chains round less. The seeds' 9,216 features
#: in 12 parts, on 2 threads: 1.46 ms, largest error 6.8e-7 of the largest element, against 1.52-1.54 ms and
#: 1.1e-6 with 2,048 (BLAS blocks: 4.5e-7); 1,152 to 2,304 measured 1.38-1.47 ms (session 31).
PRODUCT_DEPTH_BLOCK = 768


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _row_blocks(a, b, trans_b, out, block, cblas, workers, counter):
    """``out = a @ op(b)`` (``op`` transposes when ``trans_b``), one single-threaded GEMM per block of
    ``block`` rows of ``a``, claimed one at a time (fastcnn._claim); all three C-contiguous."""
    rows = a.shape[0]
    for _ in prange(workers):
        while True:
            i = claim(counter)
            if i >= (rows + block - 1) // block:
                break
            r0 = i * block
            r1 = min(rows, r0 + block)
            gemm(False, trans_b, a[r0:r1], b, out[r0:r1], False, cblas)


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _column_blocks(a, trans_a, b, out, block, workers, counter):
    """``out = op(a) @ b``, one GEMM per block of ``block`` columns of ``b`` and ``out`` (views with their
    rows further apart than their length: CBLAS only)."""
    cols = b.shape[1]
    for _ in prange(workers):
        while True:
            j = claim(counter)
            if j >= (cols + block - 1) // block:
                break
            c0 = j * block
            c1 = min(cols, c0 + block)
            gemm_strided(trans_a, False, a, b[:, c0:c1], out[:, c0:c1], False)


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _depth_blocks(a, b, trans_b, parts, block, workers, counter):
    """``parts[p] = a[:, K_p] @ op(b)[K_p, :]`` for the blocks ``K_p`` of ``block`` columns of ``a`` (CBLAS
    only); the caller adds the parts in order."""
    depth = a.shape[1]
    for _ in prange(workers):
        while True:
            p = claim(counter)
            if p >= parts.shape[0]:
                break
            k0 = p * block
            k1 = min(depth, k0 + block)
            if trans_b:
                gemm_strided(False, True, a[:, k0:k1], b[:, k0:k1], parts[p], False)
            else:
                gemm_strided(False, False, a[:, k0:k1], b[k0:k1], parts[p], False)


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _depth_panels(x, w, parts, block, panels, workers, counter):
    """``parts[p] = x[:, K_p] @ w[:, K_p].T`` for the blocks ``K_p`` of ``block`` terms of the depth, by
    fastcnn._microkernel's register-blocked product (each thread transposing panels of ``w`` into its own
    ``panels[t]``); the caller adds the parts in order."""
    depth = x.shape[1]
    for t in prange(workers):
        while True:
            p = claim(counter)
            if p >= parts.shape[0]:
                break
            parts[p][:] = 0
            product_nt(x, w, parts[p], p * block, min(depth, (p + 1) * block), panels[t])


def _add_parts(out, parts):
    """``out = parts[0] + parts[1] + ...``, in order of depth."""
    out[...] = parts[0]
    for part in parts[1:]:
        out += part


#: Multiply-adds per element of ``_runtime.launch``'s work: a product under ``SERIAL_BELOW * MACS_PER_ELEMENT``
#: (16.8 million) runs on the calling thread alone. Measured (session 33, 2-core Xeon
#: AVX-512, float32, medians with a 200 us pause between calls, us on 1 / 2 threads, linear forward and
#: backward): 64 x 64 -> 10 (ResNet-20's head): 19 / 97 and 32 / 191; 128 x 128 -> 10 (the seeds' last layer):
#: 24 / 105 and 42 / 196; 128 x 512 -> 128 (8.4 million): 186 / 226 and 297 / 387; 256 x 1024 -> 256 (67
#: million): 1,425 / 858 and 2,315 / 1,408.
MACS_PER_ELEMENT = 256

#: Multiply-adds under which a product is one GEMM on the calling thread (:func:`_one_gemm`): the products
#: ``_runtime.launch``'s rule would run on the calling thread alone anyway (MACS_PER_ELEMENT).
ONE_GEMM_BELOW = _runtime.SERIAL_BELOW * MACS_PER_ELEMENT


def _matmul(a, b):
    """``a @ b`` in the common dtype of ``a`` and ``b`` (which are of one dtype), in fixed blocks of work, each
    one single-threaded GEMM, so that every element is formed the same way for any thread count: the larger
    factor is the one cut (its share read once per thread), along the depth when the result is the smallest
    of the three (then the parts are added in order of depth). A small product (MACS_PER_ELEMENT) is one
    single-threaded GEMM on the calling thread: waking the others costs more."""
    if a.shape[0] * a.shape[1] * b.shape[1] < ONE_GEMM_BELOW:
        return _one_gemm(a, b)
    return _matmul_blocks(a, b)


@numba.njit(fastmath=False, **KERNEL_FLAGS)
def _one_gemm_kernel(a, trans_a, b, trans_b, out, cblas):
    """``out = op(a) @ op(b)``, one GEMM on the calling thread, OpenBLAS held at one thread around it."""
    saved = _blas.hold_one_thread(cblas)
    gemm(trans_a, trans_b, a, b, out, False, cblas)
    _blas.release(saved)


def _one_gemm(a, b):
    """``a @ b``, one single-threaded GEMM, by a serial kernel. The blocks' parallel kernel on one thread, with
    Numba's and OpenBLAS's thread counts set around it from Python, took ResNet-20's head (64 x 64 -> 10)
    53 us warm and ~160 after a 32 MB pass; this 6 and 25 (NumPy's ``x @ w.T``: 2 and 17; session 39)."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    if out.size == 0 or a.shape[1] == 0:
        out[...] = 0  # BLAS is not called for empty products: the sum over no terms is 0
        return out
    (a, trans_a), (b, trans_b) = _operand(a), _operand(b)
    with _blas.outside_kernel(_blas.CBLAS):
        _one_gemm_kernel(a, trans_a, b, trans_b, out, _blas.CBLAS)
    return out


def _operand(m):
    """``(array, transposed)`` for a GEMM: a transposed operand (F-contiguous) as the C-contiguous array it is a
    view of, with ``transposed`` set (no copy); any other as a C-contiguous array."""
    if not m.flags.c_contiguous and m.flags.f_contiguous:
        return m.T, True
    return np.ascontiguousarray(m), False


def _matmul_blocks(a, b):
    M, depth = a.shape
    N = b.shape[1]
    out = np.empty((M, N), dtype=a.dtype)
    if out.size == 0 or depth == 0:
        out[...] = 0  # BLAS is not called for empty products: the sum over no terms is 0
        return out
    (a, trans_a), (b, trans_b) = _operand(a), _operand(b)
    long_sum = not trans_a and depth > max(M, N) and depth >= 2 * DEPTH_BLOCK
    if long_sum and trans_b and _microkernel.PAYS and _microkernel.fits(N, out.itemsize):  # the forward's x @ w.T
        parts = aligned_empty((-(-depth // PRODUCT_DEPTH_BLOCK), M, N), out.dtype)
        workers, counter = claim_args(parts.shape[0])
        _depth_panels(a, b, parts, PRODUCT_DEPTH_BLOCK, aligned_empty((workers, DEPTH_PANEL, N), out.dtype), workers,
                      counter)
        _add_parts(out, parts)
        return out
    with single_threaded(_blas.CBLAS):
        if _blas.CBLAS and long_sum:
            parts = np.empty((-(-depth // DEPTH_BLOCK), M, N), dtype=out.dtype)
            workers, counter = claim_args(parts.shape[0])
            _depth_blocks(a, b, trans_b, parts, DEPTH_BLOCK, workers, counter)
            _add_parts(out, parts)
        elif _blas.CBLAS and not trans_b and N > M and N >= MIN_COLUMNS:
            workers, counter = claim_args(-(-N // COLUMN_BLOCK))
            _column_blocks(a, trans_a, b, out, COLUMN_BLOCK, workers, counter)
        else:
            a = np.ascontiguousarray(a.T) if trans_a else a
            workers, counter = claim_args(-(-M // ROW_BLOCK))
            _row_blocks(a, b, trans_b, out, ROW_BLOCK, _blas.CBLAS, workers, counter)
    return out


def flatten(x, start_dim=1, end_dim=-1):
    op = "flatten"
    dims = check_flatten(op, x, start_dim, end_dim)
    return np.array(x, order="C", copy=True).reshape(dims.out_shape)


def flatten_backward(grad_out, x, start_dim=1, end_dim=-1):
    check_flatten_backward("flatten_backward", grad_out, x, start_dim, end_dim)
    out_dtype = _runtime.result_dtype(grad_out, x)
    return np.array(grad_out, dtype=out_dtype, order="C", copy=True).reshape(x.shape)


def _rows(a, width):
    """``(*, width)`` as ``(B, width)``; B is the product of the leading axes (the samples)."""
    return a.reshape(int(np.prod(a.shape[:-1], dtype=np.int64)), width)  # -1 fails when width is 0


class _Settled(NamedTuple):
    """What a linear call's signature settles: the checks' answer and the dtypes."""

    dims: LinearDims
    dtype: np.dtype  # computed in
    out: np.dtype  # returned in


#: The settled answers per signature (cnnbase.checks.Verdicts): the checks and the dtypes' promotion took
#: ResNet-20's head (64 x 64 -> 10) ~80 us a call where a kernel had left the caches cold, its product ~25.
_SETTLED = Verdicts()


def _settled(op, x, weight, bias, grad_out=FORWARD) -> _Settled:
    keys = (array_key(x), array_key(weight), array_key(bias, (None,)), array_key(grad_out, (FORWARD,)))
    return _SETTLED.get(None if None in keys else (op, keys), lambda: _settle(op, x, weight, bias, grad_out))


def _settle(op, x, weight, bias, grad_out) -> _Settled:
    if grad_out is FORWARD:
        dims = check_linear_arrays(op, x, weight, bias)
        floats = (x, weight, bias)
    else:
        dims = check_linear_backward(op, grad_out, x, weight, bias)
        floats = (grad_out, x, weight, bias)
    return _Settled(dims, _runtime.compute_dtype(*floats), _runtime.result_dtype(*floats))


def linear(x, weight, bias=None):
    settled = _settled("linear", x, weight, bias)
    dims, dtype = settled.dims, settled.dtype
    xs = _rows(_runtime.as_compute(x, dtype), dims.in_features)
    w = _runtime.as_compute(weight, dtype)
    y = _matmul(xs, w.T)  # (B, in) @ (in, out)
    if bias is not None:
        y += _runtime.as_compute(bias, dtype)
    return y.reshape(dims.out_shape).astype(settled.out, copy=False)


def linear_backward(grad_out, x, weight, bias=None):
    settled = _settled("linear_backward", x, weight, bias, grad_out)
    dims, dtype = settled.dims, settled.dtype
    g = _rows(_runtime.as_compute(grad_out, dtype), dims.out_features)
    xs = _rows(_runtime.as_compute(x, dtype), dims.in_features)
    w = _runtime.as_compute(weight, dtype)

    grad_x = _matmul(g, w)  # (B, out) @ (out, in)
    grad_weight = _matmul(g.T, xs)  # (out, B) @ (B, in): the reduction over the batch, k = b in order
    grad_bias = None if bias is None else g.sum(axis=0)
    out_dtype = settled.out
    return (
        grad_x.reshape(x.shape).astype(out_dtype, copy=False),
        grad_weight.astype(out_dtype, copy=False),
        None if grad_bias is None else grad_bias.astype(out_dtype, copy=False),
    )


_runtime.share_docstrings(globals(), __all__)
