"""The losses' arguments, and the one division rule of their reductions (``specs/losses.md``).

Both engines run these checks before any computation, so they raise the same errors; :func:`ieee_divide` is
how both divide by ``W`` or the element count when ``reduction='mean'`` (0/0 is NaN, as in PyTorch).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .checks import (
    as_float, as_float64, check_choice, check_float, check_float_array, check_int, check_int_array, check_same_shape,
    check_shape,
)

__all__ = [
    "REDUCTIONS", "ClassLossArgs", "class_loss_args", "check_labels", "check_class_loss", "PointwiseLossArgs",
    "pointwise_loss_args", "check_pointwise_loss", "check_loss_grad_out", "ieee_divide",
]

REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class ClassLossArgs:
    """Resolved arguments of :func:`cross_entropy` and :func:`nll_loss`: ``input`` is ``(n, c)``."""

    n: int
    c: int
    has_weight: bool
    ignore_index: int
    reduction: str
    label_smoothing: float


def class_loss_args(
    op: str, input_shape: tuple, target_shape: tuple, weight_shape: tuple | None,
    ignore_index, reduction, label_smoothing=0.0,
) -> ClassLossArgs:
    """Check the shapes of ``input (N, C)``, ``target (N,)``, ``weight (C,)`` and the hyperparameters."""
    input_shape, target_shape = tuple(input_shape), tuple(target_shape)
    if len(input_shape) != 2:
        raise ValueError(f"{op}: argument `input` must have 2 dimensions (N, C); received shape {input_shape}.")
    n, c = input_shape
    if c < 1:
        raise ValueError(f"{op}: argument `input` must have at least one class (N, C) with C >= 1; "
                         f"received shape {input_shape}.")
    if target_shape != (n,):
        raise ValueError(f"{op}: argument `target` must have shape ({n},) (N of input.shape={input_shape}); "
                         f"received shape {target_shape}.")
    if weight_shape is not None and tuple(weight_shape) != (c,):
        raise ValueError(f"{op}: argument `weight` must have shape ({c},) (C of input.shape={input_shape}); "
                         f"received shape {tuple(weight_shape)}.")
    ignore = check_int(ignore_index, "ignore_index", op, int64=False)  # any int (specs/losses.md)
    red = check_choice(reduction, "reduction", op, REDUCTIONS)
    smoothing = check_float(label_smoothing, "label_smoothing", op, minimum=0.0, maximum=1.0)
    return ClassLossArgs(n, c, weight_shape is not None, ignore, red, smoothing)


def check_labels(op: str, target: np.ndarray, c: int, ignore_index: int) -> None:
    """Every label is a class in ``[0, C)`` or equals ``ignore_index``; name the first one that is not."""
    for i in range(target.shape[0]):
        label = int(target[i])
        if label != ignore_index and not 0 <= label < c:
            raise ValueError(
                f"{op}: invalid value for argument `target`. Expected class labels in [0, {c}) or "
                f"ignore_index={ignore_index}. Received label {label} at target[{i}] (C={c}, "
                f"target.shape={target.shape})."
            )


@dataclass(frozen=True)
class PointwiseLossArgs:
    """Resolved arguments of the squared-error losses: ``input`` and ``target`` share ``shape``."""

    shape: tuple[int, ...]
    reduction: str


def pointwise_loss_args(op: str, input_shape: tuple, target_shape: tuple, reduction) -> PointwiseLossArgs:
    """``input`` and ``target`` of one shape (no broadcasting) and a known reduction."""
    if tuple(input_shape) != tuple(target_shape):
        raise ValueError(
            f"{op}: arguments `input` and `target` must have the same shape; received "
            f"input.shape={tuple(input_shape)} and target.shape={tuple(target_shape)}."
        )
    return PointwiseLossArgs(tuple(input_shape), check_choice(reduction, "reduction", op, REDUCTIONS))


def check_loss_grad_out(op: str, grad_out, reduction: str, out_shape: tuple):
    """``grad_out`` of the loss's output: a real number or 0-d float array for ``'mean'``/``'sum'``
    (returned as a float), a float array of ``out_shape`` for ``'none'`` (returned as float64)."""
    if reduction != "none":
        if isinstance(grad_out, numbers.Real) and not isinstance(grad_out, (bool, np.bool_)):
            return as_float(grad_out, "grad_out", op, "a number or a 0-d float array")
        check_float_array(grad_out, "grad_out", op)
        check_shape(grad_out, (), "grad_out", op, context=f"the loss is a scalar for reduction={reduction!r}")
        return float(grad_out)
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, out_shape, "grad_out", op, context="the loss's output for reduction='none'")
    return as_float64(grad_out)


def check_class_loss(op: str, input, target, weight, ignore_index, reduction, label_smoothing=0.0):
    """Every check of a class loss (arrays, shapes, hyperparameters, labels); returns the resolved arguments
    and the class weights as a list of floats (all ones without ``weight``)."""
    check_float_array(input, "input", op, 2, shape_hint="(N, C)")
    check_int_array(target, "target", op)
    if weight is not None:
        check_float_array(weight, "weight", op)
    args = class_loss_args(op, input.shape, target.shape, None if weight is None else weight.shape,
                           ignore_index, reduction, label_smoothing)
    check_labels(op, target, args.c, args.ignore_index)
    w = [1.0] * args.c if weight is None else [float(v) for v in as_float64(weight)]
    return args, w


def check_pointwise_loss(op: str, input, target, reduction) -> PointwiseLossArgs:
    """Every check of a squared-error loss: two float arrays of one shape and a known reduction."""
    check_float_array(input, "input", op)
    check_float_array(target, "target", op)
    check_same_shape(input, target, "input", "target", op)
    return pointwise_loss_args(op, input.shape, target.shape, reduction)


def ieee_divide(a: float, b: float) -> float:
    """IEEE division, as PyTorch gives it: 0/0 is nan and a/0 is +-inf (Python would raise instead)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a)
