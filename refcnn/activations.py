"""Activations: ReLU, leaky ReLU, ELU, sigmoid, tanh, softmax and log-softmax (``specs/activations.md``).

Elementwise activations take an array of any shape and apply one scalar function to each element; softmax
and log-softmax normalise each line of the array along ``dim``. Every forward has its backward beside it,
taking ``grad_out`` and exactly the forward's arguments and returning ``grad_x``.

Derivatives at the kinks follow PyTorch: ReLU'(0) = 0, leaky_relu'(0) = negative_slope, ELU'(0) = alpha.

The argument checks are the ground floor's (:mod:`cnnbase.activations`), so both engines raise the same errors.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase.activations import (
    check_activation_input, check_alpha, check_grad_out, check_negative_slope, resolve_dim,
)
from cnnbase.checks import as_float64

__all__ = [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward",
    "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
]


# ----------------------------------------------------------------------------------------------------------
# Loops shared by the elementwise activations


def _map(fn, x: np.ndarray) -> np.ndarray:
    """``y[i] = fn(x[i])`` for every index ``i`` of ``x``."""
    y = np.empty(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        y[i] = fn(float(x[i]))
    return y


def _map_grad(dfn, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grad_x[i] = grad_out[i] * dfn(x[i])`` for every index ``i`` of ``x``."""
    grad_x = np.empty(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        grad_x[i] = float(grad_out[i]) * dfn(float(x[i]))
    return grad_x


# ----------------------------------------------------------------------------------------------------------
# ReLU


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit: ``y = max(0, x)``, elementwise.

    Shape: any; ``y`` has ``x``'s shape.

    Parameters
    ----------
    x : numpy.ndarray
        Float array of any shape.

    Returns
    -------
    numpy.ndarray
        float64, ``x``'s shape.
    """
    x = as_float64(check_activation_input(x, "relu"))
    return _map(lambda v: 0.0 if v <= 0.0 else v, x)  # NaN fails `<=` and passes through


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`relu`: ``grad_x = grad_out * [x > 0]``, so ReLU'(0) = 0 (PyTorch).

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "relu_backward"
    x = as_float64(check_activation_input(x, op))
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    return _map_grad(lambda v: 0.0 if v <= 0.0 else 1.0, grad_out, x)


# ----------------------------------------------------------------------------------------------------------
# Leaky ReLU


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """Leaky ReLU: ``y = x if x > 0 else negative_slope * x``, elementwise.

    Shape: any; ``y`` has ``x``'s shape.

    Parameters
    ----------
    x : numpy.ndarray
        Float array of any shape.
    negative_slope : float
        Slope for ``x <= 0``; any real number (PyTorch's default 0.01).
    """
    op = "leaky_relu"
    x = as_float64(check_activation_input(x, op))
    slope = check_negative_slope(negative_slope, op)
    return _map(lambda v: v if v > 0.0 else slope * v, x)


def leaky_relu_backward(grad_out: np.ndarray, x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """Gradient of :func:`leaky_relu`: ``grad_x = grad_out * (1 if x > 0 else negative_slope)``, so the
    derivative at 0 is ``negative_slope`` (PyTorch).

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "leaky_relu_backward"
    x = as_float64(check_activation_input(x, op))
    slope = check_negative_slope(negative_slope, op)
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    return _map_grad(lambda v: 1.0 if v > 0.0 else slope, grad_out, x)


# ----------------------------------------------------------------------------------------------------------
# ELU


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: ``y = x if x > 0 else alpha * (exp(x) - 1)``, elementwise.

    Shape: any; ``y`` has ``x``'s shape.

    Parameters
    ----------
    x : numpy.ndarray
        Float array of any shape.
    alpha : float
        Scale of the negative branch, which tends to ``-alpha`` as ``x -> -inf``.
    """
    op = "elu"
    x = as_float64(check_activation_input(x, op))
    a = check_alpha(alpha, op)
    # expm1 keeps the relative accuracy of exp(x) - 1 for x near 0
    return _map(lambda v: v if v > 0.0 else a * math.expm1(v), x)


def elu_backward(grad_out: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Gradient of :func:`elu`: ``grad_x = grad_out * (1 if x > 0 else alpha * exp(x))``, so ELU'(0) = alpha
    (PyTorch).

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "elu_backward"
    x = as_float64(check_activation_input(x, op))
    a = check_alpha(alpha, op)
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    return _map_grad(lambda v: a * math.exp(v) if v <= 0.0 else 1.0, grad_out, x)


# ----------------------------------------------------------------------------------------------------------
# Sigmoid and tanh


def _sigmoid(v: float) -> float:
    # Two branches so that exp never overflows: exp of a non-positive number is at most 1.
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid: ``y = 1 / (1 + exp(-x))``, elementwise.

    Shape: any; ``y`` has ``x``'s shape.
    """
    x = as_float64(check_activation_input(x, "sigmoid"))
    return _map(_sigmoid, x)


def sigmoid_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`sigmoid`: ``grad_x = grad_out * s * (1 - s)`` with ``s = sigmoid(x)``.

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "sigmoid_backward"
    x = as_float64(check_activation_input(x, op))
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    return _map_grad(lambda v: _sigmoid(v) * (1.0 - _sigmoid(v)), grad_out, x)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent: ``y = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``, elementwise.

    Shape: any; ``y`` has ``x``'s shape.
    """
    x = as_float64(check_activation_input(x, "tanh"))
    return _map(math.tanh, x)


def tanh_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`tanh`: ``grad_x = grad_out * (1 - tanh(x)^2)``.

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "tanh_backward"
    x = as_float64(check_activation_input(x, op))
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    return _map_grad(lambda v: 1.0 - math.tanh(v) ** 2, grad_out, x)


# ----------------------------------------------------------------------------------------------------------
# Softmax and log-softmax: one line of the array along `dim` at a time


def _lines(shape: tuple, dim: int):
    """For each line along ``dim``: the list of its indices, in order of position along ``dim``."""
    outer = shape[:dim] + shape[dim + 1:]
    for rest in np.ndindex(outer):
        yield [rest[:dim] + (k,) + rest[dim:] for k in range(shape[dim])]


def _shifted_exps(values: list[float]) -> tuple[float, list[float], float]:
    """``m = max_j v_j``, the terms ``exp(v_j - m)`` and their sum.

    Subtracting the line's maximum changes no result and keeps every exponential at most 1, so nothing
    overflows, and the sum is at least 1 (the maximum's own term), so dividing by it or taking its log is
    safe. A NaN anywhere, or an infinite maximum, makes the line NaN, as in PyTorch.
    """
    m = max(values)
    exps = [math.exp(v - m) for v in values]
    total = 0.0
    for e in exps:
        total += e
    return m, exps, total


def _as_lines(x: np.ndarray) -> np.ndarray:
    """A 0-d array is one line of length 1."""
    return x.reshape(1) if x.ndim == 0 else x


def softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Softmax along ``dim``: ``y_k = exp(x_k - m) / sum_j exp(x_j - m)``, ``m = max_j x_j``, where ``k``
    and ``j`` run along ``dim`` and the other indices are fixed.

    Subtracting the line's maximum ``m`` changes nothing mathematically and keeps every exponential <= 1.
    A line containing NaN or ``+inf``, or only ``-inf``, gives NaN (as in PyTorch).

    Shape: any; ``y`` has ``x``'s shape; each line along ``dim`` of ``y`` sums to 1.

    Parameters
    ----------
    x : numpy.ndarray
        Float array of any shape.
    dim : int
        Axis in ``[-ndim, ndim)`` to normalise along. PyTorch has no default (an implicit dim is
        deprecated there); here it is the last axis.
    """
    op = "softmax"
    x = as_float64(check_activation_input(x, op))
    axis = resolve_dim(x.shape, dim, op)
    lines = _as_lines(x)
    y = np.empty(lines.shape, dtype=np.float64)
    for line in _lines(lines.shape, axis):
        if not line:  # an axis of size 0 has nothing to normalise
            continue
        _, exps, total = _shifted_exps([float(lines[i]) for i in line])
        for i, e in zip(line, exps):
            y[i] = e / total
    return y.reshape(x.shape)


def softmax_backward(grad_out: np.ndarray, x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Gradient of :func:`softmax`: ``grad_x_k = y_k * (grad_out_k - sum_j grad_out_j * y_j)`` along ``dim``,
    ``y = softmax(x, dim)``.

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "softmax_backward"
    x = as_float64(check_activation_input(x, op))
    axis = resolve_dim(x.shape, dim, op)
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    y = _as_lines(softmax(x, axis))
    g = _as_lines(grad_out)
    grad_x = np.empty(y.shape, dtype=np.float64)
    for line in _lines(y.shape, axis):
        dot = 0.0
        for i in line:
            dot += float(g[i]) * float(y[i])
        for i in line:
            grad_x[i] = float(y[i]) * (float(g[i]) - dot)
    return grad_x.reshape(x.shape)


def log_softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Log-softmax along ``dim``: ``y_k = (x_k - m) - log(sum_j exp(x_j - m))``, ``m = max_j x_j``.

    Computed directly rather than as ``log(softmax(x))``, which would give ``-inf`` where the softmax
    underflows to 0.

    Shape: any; ``y`` has ``x``'s shape.

    Parameters
    ----------
    x : numpy.ndarray
        Float array of any shape.
    dim : int
        Axis in ``[-ndim, ndim)`` to normalise along; the last by default.
    """
    op = "log_softmax"
    x = as_float64(check_activation_input(x, op))
    axis = resolve_dim(x.shape, dim, op)
    lines = _as_lines(x)
    y = np.empty(lines.shape, dtype=np.float64)
    for line in _lines(lines.shape, axis):
        if not line:
            continue
        values = [float(lines[i]) for i in line]
        m, _, total = _shifted_exps(values)
        log_total = math.log(total)
        for i, v in zip(line, values):
            y[i] = (v - m) - log_total
    return y.reshape(x.shape)


def log_softmax_backward(grad_out: np.ndarray, x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Gradient of :func:`log_softmax`: ``grad_x_k = grad_out_k - softmax(x)_k * sum_j grad_out_j`` along
    ``dim``.

    Shape: ``grad_out``, ``x`` and ``grad_x`` share one shape.
    """
    op = "log_softmax_backward"
    x = as_float64(check_activation_input(x, op))
    axis = resolve_dim(x.shape, dim, op)
    grad_out = as_float64(check_grad_out(grad_out, x, op))
    p = _as_lines(softmax(x, axis))
    g = _as_lines(grad_out)
    grad_x = np.empty(p.shape, dtype=np.float64)
    for line in _lines(p.shape, axis):
        total = 0.0
        for i in line:
            total += float(g[i])
        for i in line:
            grad_x[i] = float(g[i]) - float(p[i]) * total
    return grad_x.reshape(x.shape)
