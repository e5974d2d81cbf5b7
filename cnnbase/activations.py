"""Activations' arguments: the checks both engines run before any computation (``specs/activations.md``).

Every activation keeps its input's shape, so the checks are few: a float array, a ``grad_out`` of the same
shape, the scalar hyperparameters, and the axis of softmax and log-softmax.
"""

from __future__ import annotations

import numpy as np

from .checks import check_dim, check_float, check_float_array, check_same_shape

__all__ = ["check_activation_input", "check_grad_out", "check_negative_slope", "check_alpha", "resolve_dim"]


def check_activation_input(x, op: str) -> np.ndarray:
    """Require a float ``numpy.ndarray`` of any shape."""
    return check_float_array(x, "x", op)


def check_grad_out(grad_out, x: np.ndarray, op: str) -> np.ndarray:
    """Require a float ``grad_out`` of ``x``'s shape (every activation keeps the shape)."""
    check_float_array(grad_out, "grad_out", op)
    check_same_shape(grad_out, x, "grad_out", "x", op)
    return grad_out


def check_negative_slope(negative_slope, op: str) -> float:
    """Any real number (PyTorch accepts negative and > 1 slopes too); not NaN."""
    return check_float(negative_slope, "negative_slope", op)


def check_alpha(alpha, op: str) -> float:
    """Any real number; not NaN."""
    return check_float(alpha, "alpha", op)


def resolve_dim(shape: tuple, dim, op: str) -> int:
    """``dim`` in ``[-ndim, ndim)`` as an axis in ``[0, ndim)``.

    A 0-d array is treated as one line of length 1 (PyTorch accepts ``dim`` 0 or -1 there).
    """
    return check_dim(dim, max(len(shape), 1), "dim", op)
