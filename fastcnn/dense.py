"""Flatten and the dense layer, fast (``specs/dense.md``).

Same names, arguments, defaults and docstrings as :mod:`refcnn.dense`, and the same checks (:mod:`cnnbase.dense`)
before any computation.

``flatten`` is a reshape (a row-major merge of adjacent axes moves no value): no kernel.

``linear`` and its backward are three matrix products, each done by :func:`_blocked_dot`: the rows of the
left factor are cut into fixed blocks of ``ROW_BLOCK`` rows, each block is one ``prange`` iteration, and each
iteration's product is one single-threaded BLAS GEMM (:mod:`fastcnn._blas`). Multi-threaded BLAS would be
simpler but is not deterministic: OpenBLAS's results change with its thread count (measured here with threadpoolctl, OpenBLAS 0.3.31: about 12% of the
elements of ``x @ w.T`` and 23% of ``grad_out.T @ x`` differ in their last bits between 1 and 2 BLAS
threads). With fixed blocks, every element is computed by the same single-threaded GEMM call whatever the
thread count, so the batch reduction of ``grad_weight`` (which runs inside one GEMM along ``k = b``) is
a fixed-order sum. ``grad_bias`` is NumPy's sum over axis 0 of a C-contiguous array: row after row, in one
thread.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from cnnbase.dense import check_flatten, check_flatten_backward, check_linear_arrays, check_linear_backward

from . import _blas, _runtime
from ._blas import gemm, single_threaded
from ._runtime import KERNEL_FLAGS

__all__ = ["flatten", "flatten_backward", "linear", "linear_backward"]


#: Rows of the left factor per task of :func:`_blocked_dot`: fixed, so results do not depend on the thread
#: count. 64, not 32: OpenBLAS 0.3.31's single-threaded sgemm is slower per flop on 32 x 9216 blocks (the seeds'
#: first dense layer, forward ``x @ w.T`` and ``grad_out.T @ x``): CPU time of one thread, interleaved, batch
#: 128, 32 -> 64 rows: linear 6.1 -> 4.4 ms, linear_backward 11.7 -> 9.5 ms (issue 16, a loaded 2-core machine).
#: 64 still gives a batch of 128 two tasks, one per core.
ROW_BLOCK = 64


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _blocked_dot(a, b, trans_b, out, block, cblas):
    """``out = a @ op(b)`` (``op`` transposes when ``trans_b``), one single-threaded GEMM per block of
    ``block`` rows of ``a``; all three C-contiguous."""
    rows = a.shape[0]
    for i in prange((rows + block - 1) // block):
        r0 = i * block
        r1 = min(rows, r0 + block)
        gemm(False, trans_b, a[r0:r1], b, out[r0:r1], False, cblas)


def _matmul(a, b):
    """``a @ b`` by :func:`_blocked_dot`, in the common dtype of ``a`` and ``b`` (which are of one dtype)."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    if out.size == 0 or a.shape[1] == 0:
        out[...] = 0  # BLAS is not called for empty products: the sum over no terms is 0
        return out
    # A transposed weight (F-contiguous) is passed as the C-contiguous array it is a view of: no copy.
    trans_b = not b.flags.c_contiguous and b.flags.f_contiguous
    b = b.T if trans_b else np.ascontiguousarray(b)
    with single_threaded(_blas.CBLAS):
        _blocked_dot(np.ascontiguousarray(a), b, trans_b, out, ROW_BLOCK, _blas.CBLAS)
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


def linear(x, weight, bias=None):
    op = "linear"
    dims = check_linear_arrays(op, x, weight, bias)
    dtype = _runtime.compute_dtype(x, weight, bias)
    xs = _rows(_runtime.as_compute(x, dtype), dims.in_features)
    w = _runtime.as_compute(weight, dtype)
    y = _matmul(xs, w.T)  # (B, in) @ (in, out)
    if bias is not None:
        y += _runtime.as_compute(bias, dtype)
    return y.reshape(dims.out_shape).astype(_runtime.result_dtype(x, weight, bias), copy=False)


def linear_backward(grad_out, x, weight, bias=None):
    dims = check_linear_backward("linear_backward", grad_out, x, weight, bias)
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    g = _rows(_runtime.as_compute(grad_out, dtype), dims.out_features)
    xs = _rows(_runtime.as_compute(x, dtype), dims.in_features)
    w = _runtime.as_compute(weight, dtype)

    grad_x = _matmul(g, w)  # (B, out) @ (out, in)
    grad_weight = _matmul(g.T, xs)  # (out, B) @ (B, in): the reduction over the batch, k = b in order
    grad_bias = None if bias is None else g.sum(axis=0)
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    return (
        grad_x.reshape(x.shape).astype(out_dtype, copy=False),
        grad_weight.astype(out_dtype, copy=False),
        None if grad_bias is None else grad_bias.astype(out_dtype, copy=False),
    )


_runtime.share_docstrings(globals(), __all__)
