"""Flatten's and the dense layer's arguments: the checks both engines run first (``specs/dense.md``).

:func:`flatten_dims` and :func:`linear_dims` take shapes and hyperparameters and return the resolved ints;
:func:`check_linear_arrays` and :func:`check_flatten_backward` add the array checks of one call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_dim, check_float_array, check_shape, invalid
from .limits import check_arrays

__all__ = [
    "FlattenDims", "flatten_dims", "check_flatten", "check_flatten_backward",
    "LinearDims", "linear_dims", "check_linear_arrays", "check_linear_backward",
]


@dataclass(frozen=True)
class FlattenDims:
    """Resolved arguments of :func:`flatten`: axes ``start..end`` (inclusive) merge into one."""

    start: int
    end: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def flatten_dims(op: str, shape: tuple, start_dim, end_dim) -> FlattenDims:
    """Check ``start_dim``/``end_dim`` against ``shape`` and compute the output shape.

    A 0-d array counts as one axis of size 1 (``torch.flatten`` turns it into shape ``(1,)``).
    """
    shape = tuple(int(n) for n in shape)
    rank = max(len(shape), 1)
    start = check_dim(start_dim, rank, "start_dim", op)
    end = check_dim(end_dim, rank, "end_dim", op)
    if start > end:
        raise ValueError(
            invalid(op, "end_dim", f"an axis at or after start_dim={start_dim} (axis {start}) for an array of "
                    f"shape {shape}", end_dim)
        )
    axes = shape if shape else (1,)
    merged = 1
    for n in axes[start:end + 1]:
        merged *= n
    return FlattenDims(start, end, shape, axes[:start] + (merged,) + axes[end + 1:])


def check_flatten(op: str, x, start_dim, end_dim) -> FlattenDims:
    """The checks of ``flatten``: a float array, and axes that exist in it."""
    check_float_array(x, "x", op)
    return flatten_dims(op, x.shape, start_dim, end_dim)


def check_flatten_backward(op: str, grad_out, x, start_dim, end_dim) -> FlattenDims:
    """The checks of ``flatten_backward``: ``x`` and the axes first, then ``grad_out`` of flatten's output."""
    dims = check_flatten(op, x, start_dim, end_dim)
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, dims.out_shape, "grad_out", op, context=f"flatten's output for x.shape={x.shape}, "
                f"start_dim={start_dim}, end_dim={end_dim}")
    return dims


@dataclass(frozen=True)
class LinearDims:
    """Resolved sizes of :func:`linear`: ``x`` is ``batch_shape + (in_features,)``."""

    batch_shape: tuple[int, ...]
    in_features: int
    out_features: int
    has_bias: bool

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.batch_shape + (self.out_features,)


def linear_dims(op: str, x_shape: tuple, weight_shape: tuple, bias_shape: tuple | None) -> LinearDims:
    """Check the shapes of ``x``, ``weight`` and ``bias`` (``None`` when absent) against each other."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    if len(x_shape) < 1:
        raise ValueError(f"{op}: argument `x` must have at least 1 dimension (*, in_features); "
                         f"received shape {x_shape}.")
    if len(weight_shape) != 2:
        raise ValueError(f"{op}: argument `weight` must have 2 dimensions (out_features, in_features); "
                         f"received shape {weight_shape}.")
    out_features, in_features = weight_shape
    if x_shape[-1] != in_features:
        raise ValueError(
            f"{op}: the last axis of `x` must equal weight's in_features; received x.shape={x_shape} and "
            f"weight.shape={weight_shape} (out_features, in_features)."
        )
    if bias_shape is not None and tuple(bias_shape) != (out_features,):
        raise ValueError(
            f"{op}: argument `bias` must have shape ({out_features},) (out_features of "
            f"weight.shape={weight_shape}); received shape {tuple(bias_shape)}."
        )
    dims = LinearDims(x_shape[:-1], in_features, out_features, bias_shape is not None)
    # The output holds batch x out_features numbers, which neither argument bounds: x (10^5, 1) and weight
    # (10^5, 1) are small, their product 10^10 numbers.
    check_arrays(op, [("the output", dims.out_shape)], lambda: f"x.shape={x_shape}, weight.shape={weight_shape}")
    return dims


def check_linear_arrays(op: str, x, weight, bias) -> LinearDims:
    """The float arrays of :func:`linear`, then their shapes against each other."""
    check_float_array(x, "x", op)
    check_float_array(weight, "weight", op)
    if bias is not None:
        check_float_array(bias, "bias", op)
    return linear_dims(op, x.shape, weight.shape, None if bias is None else bias.shape)


def check_linear_backward(op: str, grad_out, x, weight, bias) -> LinearDims:
    """The checks of ``linear_backward``: the forward's arrays, then ``grad_out`` of linear's output shape."""
    dims = check_linear_arrays(op, x, weight, bias)
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, dims.out_shape, "grad_out", op,
                context=f"linear's output for x.shape={x.shape} and weight.shape={weight.shape}")
    return dims
