"""Batch normalisation with PyTorch's semantics (``specs/norm.md``).

``x`` of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` is viewed as ``(N, C, S)`` with ``S`` the
product of the spatial sizes (1, L or H*W), so one loop nest serves every rank. The statistics of
channel ``c`` are taken over ``m = N*S`` values.
"""

from __future__ import annotations


import numpy as np

from cnnbase.checks import as_float64
from cnnbase.norm import BatchNormArgs, check_batch_norm, check_batch_norm_backward

__all__ = ["batch_norm", "batch_norm_backward"]


def _as_ncs(x: np.ndarray, a: BatchNormArgs) -> np.ndarray:
    return as_float64(x).reshape(a.n, a.c, a.s)


def _channel_mean(x3: np.ndarray, a: BatchNormArgs, c: int) -> float:
    total = 0.0
    for n in range(a.n):
        for s in range(a.s):
            total += x3[n, c, s]
    return total / a.m


def _channel_biased_var(x3: np.ndarray, a: BatchNormArgs, c: int, mean: float) -> float:
    total = 0.0
    for n in range(a.n):
        for s in range(a.s):
            total += (x3[n, c, s] - mean) ** 2
    return total / a.m


def _statistics(x3: np.ndarray, running_mean, running_var, a: BatchNormArgs):
    """Per-channel mean and variance used to normalise: the batch's (biased) or the running ones."""
    if a.training:
        means = [_channel_mean(x3, a, c) for c in range(a.c)]
        variances = [_channel_biased_var(x3, a, c, means[c]) for c in range(a.c)]
    else:
        means = [float(running_mean[c]) for c in range(a.c)]
        variances = [float(running_var[c]) for c in range(a.c)]
    return means, variances


def _inv_std(variance: float, eps: float) -> np.float64:
    """``1 / sqrt(var + eps)`` with IEEE results (inf at 0, NaN below 0, as PyTorch) instead of exceptions."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.float64(1.0) / np.sqrt(np.float64(variance + eps))


def _affine(vector, c: int, default: float) -> float:
    return default if vector is None else float(vector[c])


def _update_running_stats(running_mean, running_var, means, variances, a: BatchNormArgs) -> None:
    """``r = (1 - momentum) r + momentum stat``, with the unbiased variance ``var * m / (m - 1)``."""
    bessel = a.m / (a.m - 1)
    for c in range(a.c):
        running_mean[c] = (1.0 - a.momentum) * float(running_mean[c]) + a.momentum * means[c]
        running_var[c] = (1.0 - a.momentum) * float(running_var[c]) + a.momentum * variances[c] * bessel


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation: ``y[n,c,s] = (x[n,c,s] - mu_c) / sqrt(var_c + eps) * weight_c + bias_c``.

    Training: ``mu_c = (1/m) sum_{n,s} x[n,c,s]``, ``var_c = (1/m) sum_{n,s} (x[n,c,s] - mu_c)^2`` (biased),
    ``m = N*S``; then, when given, ``running_mean <- (1 - momentum) running_mean + momentum mu_c`` and
    ``running_var <- (1 - momentum) running_var + momentum var_c m/(m - 1)`` in place, in their own dtype.
    Evaluation: ``mu_c = running_mean[c]``, ``var_c = running_var[c]``, nothing is updated.
    ``weight`` None means 1, ``bias`` None means 0.

    Shape: ``x`` (N, C), (N, C, L) or (N, C, H, W); ``running_mean``, ``running_var``, ``weight``, ``bias``
    (C,) -> ``y`` of ``x``'s shape. ``S`` = 1, L or H*W.

    Raises ``ValueError`` (like PyTorch) in training when ``m = 1`` or ``eps <= 0``, for ``eps < 0``, and when
    the running statistics are None in evaluation or only one of them is given.
    """
    a = check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    x3 = _as_ncs(x, a)
    means, variances = _statistics(x3, running_mean, running_var, a)
    y3 = np.empty((a.n, a.c, a.s), dtype=np.float64)
    for c in range(a.c):
        inv_std = _inv_std(variances[c], a.eps)
        w, b = _affine(weight, c, 1.0), _affine(bias, c, 0.0)
        for n in range(a.n):
            for s in range(a.s):
                y3[n, c, s] = (x3[n, c, s] - means[c]) * inv_std * w + b
    if a.training and a.has_running_stats:
        _update_running_stats(running_mean, running_var, means, variances, a)
    return y3.reshape(x.shape)


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None, training=False,
                        momentum=0.1, eps=1e-5):
    """Gradients of batch normalisation with respect to ``x``, ``weight`` and ``bias``.

    With ``xhat = (x - mu_c) / sqrt(var_c + eps)``, ``g = grad_out`` and ``dxhat = g * weight_c``:
    ``dL/dweight_c = sum_{n,s} g xhat``, ``dL/dbias_c = sum_{n,s} g``;
    training (through the batch statistics):
    ``dL/dx = (1/(m sqrt(var_c + eps))) (m dxhat - sum_{n,s} dxhat - xhat sum_{n,s} dxhat xhat)``;
    evaluation (running statistics are constants): ``dL/dx = dxhat / sqrt(var_c + eps)``.
    In training the running statistics are neither read nor written; in evaluation they are only read.

    Shape: ``grad_out`` and ``x`` (N, C), (N, C, L) or (N, C, H, W) -> ``grad_x`` of ``x``'s shape,
    ``grad_weight`` (C,) or None, ``grad_bias`` (C,) or None.
    """
    a = check_batch_norm_backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps)
    x3, g3 = _as_ncs(x, a), _as_ncs(grad_out, a)
    means, variances = _statistics(x3, running_mean, running_var, a)
    grad_x3 = np.empty((a.n, a.c, a.s), dtype=np.float64)
    grad_weight = np.zeros(a.c, dtype=np.float64)
    grad_bias = np.zeros(a.c, dtype=np.float64)
    for c in range(a.c):
        inv_std = _inv_std(variances[c], a.eps)
        w = _affine(weight, c, 1.0)
        sum_dxhat = 0.0
        sum_dxhat_xhat = 0.0
        for n in range(a.n):
            for s in range(a.s):
                xhat = (x3[n, c, s] - means[c]) * inv_std
                grad_weight[c] += g3[n, c, s] * xhat
                grad_bias[c] += g3[n, c, s]
                sum_dxhat += g3[n, c, s] * w
                sum_dxhat_xhat += g3[n, c, s] * w * xhat
        for n in range(a.n):
            for s in range(a.s):
                dxhat = g3[n, c, s] * w
                if a.training:
                    xhat = (x3[n, c, s] - means[c]) * inv_std
                    grad_x3[n, c, s] = inv_std / a.m * (a.m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
                else:
                    grad_x3[n, c, s] = dxhat * inv_std
    return (
        grad_x3.reshape(x.shape),
        grad_weight if a.has_weight else None,
        grad_bias if a.has_bias else None,
    )
