"""Flatten and the dense (fully connected, linear) layer (``specs/dense.md``).

The argument checks are the ground floor's (:mod:`cnnbase.dense`), so both engines raise the same errors.
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import as_float64
from cnnbase.dense import check_flatten, check_flatten_backward, check_linear_arrays, check_linear_backward

__all__ = ["flatten", "flatten_backward", "linear", "linear_backward"]


# ----------------------------------------------------------------------------------------------------------
# Flatten


def flatten(x: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge axes ``start_dim..end_dim`` (inclusive) into one, in row-major order:
    ``y[a, m, b] = x[a, i_start, ..., i_end, b]`` with ``m = ravel(i_start, ..., i_end)``.

    Shape: ``(d_0, ..., d_start, ..., d_end, ..., d_last) -> (d_0, ..., d_start * ... * d_end, ..., d_last)``;
    with the defaults ``(N, C, H, W) -> (N, C*H*W)``.

    Parameters
    ----------
    x : numpy.ndarray
        Float array.
    start_dim, end_dim : int
        First and last axis to merge, in ``[-ndim, ndim)``. The defaults are those of ``torch.nn.Flatten``
        (``torch.flatten`` has ``start_dim=0``).

    Returns
    -------
    numpy.ndarray
        A float64 copy of ``x`` in the new shape; the values and their row-major order are unchanged.
    """
    op = "flatten"
    dims = check_flatten(op, x, start_dim, end_dim)
    # Row-major merging of adjacent axes is exactly a reshape: no arithmetic happens here.
    return as_float64(x).reshape(dims.out_shape).copy()


def flatten_backward(grad_out: np.ndarray, x: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Gradient of :func:`flatten`: ``grad_x`` is ``grad_out`` reshaped back to ``x``'s shape.

    Shape: ``grad_out`` has :func:`flatten`'s output shape; ``grad_x`` has ``x``'s shape.
    """
    check_flatten_backward("flatten_backward", grad_out, x, start_dim, end_dim)
    return as_float64(grad_out).reshape(x.shape).copy()


# ----------------------------------------------------------------------------------------------------------
# Linear


def _rows(a: np.ndarray, width: int) -> np.ndarray:
    """View ``(*, width)`` as ``(B, width)``, B the product of the leading axes (the samples)."""
    samples = 1
    for n in a.shape[:-1]:
        samples *= n
    return a.reshape(samples, width)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Dense layer: ``y[b, o] = bias[o] + sum_i x[b, i] * weight[o, i]`` for every sample ``b``.

    Shape: ``x (*, in_features)``, ``weight (out_features, in_features)``, ``bias (out_features,)``
    -> ``y (*, out_features)``; ``*`` is any number of leading axes, usually ``(N,)``.

    Parameters
    ----------
    x : numpy.ndarray
        Float array ``(*, in_features)``.
    weight : numpy.ndarray
        Float array ``(out_features, in_features)`` (PyTorch's layout; Keras stores its transpose).
    bias : numpy.ndarray or None
        Float array ``(out_features,)``, or ``None`` for no bias.

    Returns
    -------
    numpy.ndarray
        float64 ``(*, out_features)``.
    """
    op = "linear"
    dims = check_linear_arrays(op, x, weight, bias)
    xs = _rows(as_float64(x), dims.in_features)
    w = as_float64(weight)
    b = None if bias is None else as_float64(bias)
    y = np.empty((xs.shape[0], dims.out_features), dtype=np.float64)
    for n in range(xs.shape[0]):
        for o in range(dims.out_features):
            total = 0.0 if b is None else float(b[o])
            for i in range(dims.in_features):
                total += float(xs[n, i]) * float(w[o, i])
            y[n, o] = total
    return y.reshape(dims.out_shape)


def linear_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`linear`:
    ``grad_x[b, i] = sum_o grad_out[b, o] * weight[o, i]``,
    ``grad_weight[o, i] = sum_b grad_out[b, o] * x[b, i]``,
    ``grad_bias[o] = sum_b grad_out[b, o]``, where ``b`` runs over every sample (all leading axes).

    Shape: ``grad_out (*, out_features)`` -> ``grad_x (*, in_features)``,
    ``grad_weight (out_features, in_features)``, ``grad_bias (out_features,)`` or ``None`` when ``bias`` is
    ``None``.
    """
    dims = check_linear_backward("linear_backward", grad_out, x, weight, bias)
    xs = _rows(as_float64(x), dims.in_features)
    g = _rows(as_float64(grad_out), dims.out_features)
    w = as_float64(weight)
    samples = xs.shape[0]

    grad_x = np.zeros(xs.shape, dtype=np.float64)
    for n in range(samples):
        for i in range(dims.in_features):
            total = 0.0
            for o in range(dims.out_features):
                total += float(g[n, o]) * float(w[o, i])
            grad_x[n, i] = total

    grad_weight = np.zeros(w.shape, dtype=np.float64)
    for o in range(dims.out_features):
        for i in range(dims.in_features):
            total = 0.0
            for n in range(samples):
                total += float(g[n, o]) * float(xs[n, i])
            grad_weight[o, i] = total

    grad_bias = None
    if dims.has_bias:
        grad_bias = np.zeros(dims.out_features, dtype=np.float64)
        for o in range(dims.out_features):
            total = 0.0
            for n in range(samples):
                total += float(g[n, o])
            grad_bias[o] = total

    return grad_x.reshape(x.shape), grad_weight, grad_bias
