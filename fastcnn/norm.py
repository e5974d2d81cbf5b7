"""Batch normalisation with PyTorch's semantics (``specs/norm.md``), in Numba.

``x`` is viewed as ``(N, C, S)`` as in refcnn. Every kernel runs ``prange`` over channels: each channel's
statistics and sums are computed by one thread, sequentially in the order ``n`` then ``s`` (refcnn's
order), in float64 whatever the input dtype. So the statistics are bit-identical to refcnn's, and every
result is independent of the thread count by construction (no shared accumulator, no chunking that depends
on the threads).

The per-channel scalars (``1/sqrt(var + eps)``, the running-statistics update) are O(C) NumPy float64
arithmetic in the wrapper, written exactly as refcnn writes them.

Dtypes: the arrays are computed in ``compute_dtype`` of the float inputs (float16 in float32), each value
formed in float64 and rounded once when stored; results come back in the NumPy promotion of the float
inputs (``x``, ``running_mean``, ``running_var``, ``weight``, ``bias``, and ``grad_out`` for the backward).
The running statistics are updated in place in their own dtype, as in refcnn.
"""

from __future__ import annotations

import numba
import numpy as np

from cnnbase.norm import check_batch_norm, check_batch_norm_backward

from . import _runtime

__all__ = ["batch_norm", "batch_norm_backward"]


# ----------------------------------------------------------------------------------------------------------
# Kernels. fastmath is off in all of them: the sums must keep refcnn's sequential order (reassociation
# would let LLVM reorder them), and the elementwise parts are memory-bound, so it would buy nothing there.


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _batch_statistics(x3, means, variances):
    """``means[c] = (1/m) sum x``, ``variances[c] = (1/m) sum (x - mean)^2`` over ``(n, s)``, in float64."""
    n_count, c_count, s_count = x3.shape
    m = n_count * s_count
    for c in numba.prange(c_count):
        total = 0.0
        for n in range(n_count):
            for s in range(s_count):
                total += np.float64(x3[n, c, s])
        mean = total / m
        total = 0.0
        for n in range(n_count):
            for s in range(s_count):
                d = np.float64(x3[n, c, s]) - mean
                total += d * d
        means[c] = mean
        variances[c] = total / m


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _normalise(x3, means, inv_std, weight, bias, y3):
    """``y = (x - mean_c) * inv_std_c * weight_c + bias_c``, one (sample, channel) row per work item."""
    n_count, c_count, s_count = x3.shape
    for row in numba.prange(n_count * c_count):
        n, c = row // c_count, row % c_count
        mean, r, w, b = means[c], inv_std[c], weight[c], bias[c]
        for s in range(s_count):
            y3[n, c, s] = (np.float64(x3[n, c, s]) - mean) * r * w + b


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward(g3, x3, means, inv_std, weight, training, grad_x3, grad_weight, grad_bias):
    """Per channel: ``grad_weight = sum g xhat``, ``grad_bias = sum g``, then ``grad_x`` (specs/norm.md)."""
    n_count, c_count, s_count = x3.shape
    m = n_count * s_count
    for c in numba.prange(c_count):
        mean, r, w = means[c], inv_std[c], weight[c]
        sum_g_xhat = 0.0
        sum_g = 0.0
        sum_dxhat = 0.0
        sum_dxhat_xhat = 0.0
        for n in range(n_count):
            for s in range(s_count):
                g = np.float64(g3[n, c, s])
                xhat = (np.float64(x3[n, c, s]) - mean) * r
                sum_g_xhat += g * xhat
                sum_g += g
                sum_dxhat += g * w
                sum_dxhat_xhat += g * w * xhat
        grad_weight[c] = sum_g_xhat
        grad_bias[c] = sum_g
        for n in range(n_count):
            for s in range(s_count):
                dxhat = np.float64(g3[n, c, s]) * w
                if training:
                    xhat = (np.float64(x3[n, c, s]) - mean) * r
                    grad_x3[n, c, s] = r / m * (m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
                else:
                    grad_x3[n, c, s] = dxhat * r


# ----------------------------------------------------------------------------------------------------------
# Helpers of the wrappers


def _channel_vector(v, c: int, default: float) -> np.ndarray:
    """A (C,) float64 copy of ``v``, or ``default`` everywhere when ``v`` is None."""
    if v is None:
        return np.full(c, default, dtype=np.float64)
    return np.ascontiguousarray(v, dtype=np.float64)


def _statistics(x3: np.ndarray, running_mean, running_var, a) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance used to normalise: the batch's (biased) or the running ones."""
    if not a.training:
        return _channel_vector(running_mean, a.c, 0.0), _channel_vector(running_var, a.c, 1.0)
    means = np.empty(a.c, dtype=np.float64)
    variances = np.empty(a.c, dtype=np.float64)
    _batch_statistics(x3, means, variances)
    return means, variances


def _inv_std(variances: np.ndarray, eps: float) -> np.ndarray:
    """``1 / sqrt(var + eps)`` with IEEE results (inf at 0, NaN below 0), as refcnn and PyTorch."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.float64(1.0) / np.sqrt(variances + eps)


def _update_running_stats(running_mean, running_var, means, variances, a) -> None:
    """``r = (1 - momentum) r + momentum stat`` in place, with the unbiased variance ``var * m / (m - 1)``;
    the same float64 operations, in the same order, as refcnn's per-channel loop."""
    bessel = a.m / (a.m - 1)
    old_mean = np.asarray(running_mean, dtype=np.float64)
    old_var = np.asarray(running_var, dtype=np.float64)
    running_mean[...] = (1.0 - a.momentum) * old_mean + a.momentum * means
    running_var[...] = (1.0 - a.momentum) * old_var + a.momentum * variances * bessel


def _as_ncs(x: np.ndarray, a, dtype) -> np.ndarray:
    return _runtime.as_compute(x, dtype).reshape(a.n, a.c, a.s)


# ----------------------------------------------------------------------------------------------------------
# Public functions


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    a = check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    inputs = (x, running_mean, running_var, weight, bias)
    dtype = _runtime.compute_dtype(*inputs)
    x3 = _as_ncs(x, a, dtype)
    means, variances = _statistics(x3, running_mean, running_var, a)
    y3 = np.empty(x3.shape, dtype=dtype)
    _normalise(x3, means, _inv_std(variances, a.eps), _channel_vector(weight, a.c, 1.0),
               _channel_vector(bias, a.c, 0.0), y3)
    if a.training and a.has_running_stats:
        _update_running_stats(running_mean, running_var, means, variances, a)
    return y3.reshape(x.shape).astype(_runtime.result_dtype(*inputs), copy=False)


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None, training=False,
                        momentum=0.1, eps=1e-5):
    a = check_batch_norm_backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps)
    inputs = (grad_out, x, running_mean, running_var, weight, bias)
    dtype = _runtime.compute_dtype(*inputs)
    x3, g3 = _as_ncs(x, a, dtype), _as_ncs(grad_out, a, dtype)
    means, variances = _statistics(x3, running_mean, running_var, a)
    grad_x3 = np.empty(x3.shape, dtype=dtype)
    grad_weight = np.empty(a.c, dtype=np.float64)
    grad_bias = np.empty(a.c, dtype=np.float64)
    _backward(g3, x3, means, _inv_std(variances, a.eps), _channel_vector(weight, a.c, 1.0), a.training,
              grad_x3, grad_weight, grad_bias)
    out = _runtime.result_dtype(*inputs)
    return (
        grad_x3.reshape(x.shape).astype(out, copy=False),
        grad_weight.astype(out, copy=False) if a.has_weight else None,
        grad_bias.astype(out, copy=False) if a.has_bias else None,
    )


_runtime.share_docstrings(globals(), __all__)
