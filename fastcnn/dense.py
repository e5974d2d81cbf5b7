"""Flatten and the dense layer, fast (``specs/dense.md``).

Same names, arguments and defaults as :mod:`refcnn.dense`, and the same checks (:func:`refcnn.dense.flatten_dims`,
:func:`refcnn.dense.linear_dims` and the float-array checks) before any computation.

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

from cnnbase.checks import check_float_array, check_shape
from refcnn.dense import __all__ as _REF_ALL
from refcnn.dense import flatten_dims, linear_dims

from . import _blas, _runtime
from ._blas import gemm, single_threaded
from ._runtime import KERNEL_FLAGS

__all__ = list(_REF_ALL)


#: Rows of the left factor per task of :func:`_blocked_dot`: fixed, so results do not depend on the thread
#: count; 32 rows keep a block's GEMM efficient and still give a batch of 128 four tasks.
ROW_BLOCK = 32


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
    """Merge axes ``start_dim..end_dim`` (inclusive) into one, in row-major order:
    ``y[a, m, b] = x[a, i_start, ..., i_end, b]`` with ``m = ravel(i_start, ..., i_end)``.

    Shape: ``(d_0, ..., d_start, ..., d_end, ..., d_last) -> (d_0, ..., d_start * ... * d_end, ..., d_last)``;
    with the defaults ``(N, C, H, W) -> (N, C*H*W)``. Returns a new array of ``x``'s dtype.
    """
    op = "flatten"
    check_float_array(x, "x", op)
    dims = flatten_dims(op, x.shape, start_dim, end_dim)
    return np.array(x, order="C", copy=True).reshape(dims.out_shape)


def flatten_backward(grad_out, x, start_dim=1, end_dim=-1):
    """Gradient of :func:`flatten`: ``grad_x`` is ``grad_out`` reshaped back to ``x``'s shape.

    Shape: ``grad_out`` has :func:`flatten`'s output shape; ``grad_x`` has ``x``'s shape, in the dtype of
    ``grad_out`` and ``x`` promoted.
    """
    op = "flatten_backward"
    check_float_array(x, "x", op)
    dims = flatten_dims(op, x.shape, start_dim, end_dim)
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, dims.out_shape, "grad_out", op, context=f"flatten's output for x.shape={x.shape}, "
                f"start_dim={start_dim}, end_dim={end_dim}")
    out_dtype = _runtime.result_dtype(grad_out, x)
    return np.array(grad_out, dtype=out_dtype, order="C", copy=True).reshape(x.shape)


def _check_linear_arrays(op, x, weight, bias):
    """refcnn.dense's checks, in its order: the three float arrays, then their shapes against each other."""
    check_float_array(x, "x", op)
    check_float_array(weight, "weight", op)
    if bias is not None:
        check_float_array(bias, "bias", op)
    return linear_dims(op, x.shape, weight.shape, None if bias is None else bias.shape)


def _rows(a, width):
    """``(*, width)`` as ``(B, width)``; B is the product of the leading axes (the samples)."""
    return a.reshape(int(np.prod(a.shape[:-1], dtype=np.int64)), width)  # -1 fails when width is 0


def linear(x, weight, bias=None):
    """Dense layer: ``y[b, o] = bias[o] + sum_i x[b, i] * weight[o, i]`` for every sample ``b``.

    Shape: ``x (*, in_features)``, ``weight (out_features, in_features)``, ``bias (out_features,)``
    -> ``y (*, out_features)``, in the dtype of the inputs promoted (float16 computed in float32).
    """
    op = "linear"
    dims = _check_linear_arrays(op, x, weight, bias)
    dtype = _runtime.compute_dtype(x, weight, bias)
    xs = _rows(_runtime.as_compute(x, dtype), dims.in_features)
    w = _runtime.as_compute(weight, dtype)
    y = _matmul(xs, w.T)  # (B, in) @ (in, out)
    if bias is not None:
        y += _runtime.as_compute(bias, dtype)
    return y.reshape(dims.out_shape).astype(_runtime.result_dtype(x, weight, bias), copy=False)


def linear_backward(grad_out, x, weight, bias=None):
    """Gradients of :func:`linear`:
    ``grad_x[b, i] = sum_o grad_out[b, o] * weight[o, i]``,
    ``grad_weight[o, i] = sum_b grad_out[b, o] * x[b, i]``,
    ``grad_bias[o] = sum_b grad_out[b, o]``, ``b`` running over every sample (all leading axes).

    Shape: ``grad_out (*, out_features)`` -> ``grad_x (*, in_features)``, ``grad_weight (out_features,
    in_features)``, ``grad_bias (out_features,)`` or ``None`` when ``bias`` is ``None``; all in the dtype of
    the inputs promoted.
    """
    op = "linear_backward"
    dims = _check_linear_arrays(op, x, weight, bias)
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, dims.out_shape, "grad_out", op,
                context=f"linear's output for x.shape={x.shape} and weight.shape={weight.shape}")
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
