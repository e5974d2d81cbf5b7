"""Dropout's arguments and the spec's mixer: what both engines share (``specs/dropout.md``).

The keep-mask is counter-based: element ``i`` is kept when ``u_i >= p`` with ``u_i`` a pure function of
``(seed, i)`` built from SplitMix64's finaliser :func:`mix64` and its increment :data:`GOLDEN_GAMMA`. Here are
the checks of the public functions and the mixer on Python ints (the engines derive the key with it; fastcnn
runs the same arithmetic on uint64 inside its kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_bool, check_float, check_int64, check_float_array, check_same_shape, check_writable, invalid, is_int, shown
from .limits import check_arrays

__all__ = [
    "MASK64", "GOLDEN_GAMMA", "MIX_1", "MIX_2", "mix64", "DropoutArgs", "check_seed", "check_probability",
    "check_dropout", "check_dropout_backward", "check_mask_shape", "keep_scale",
]

MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: odd, so i -> key + (i+1)*gamma never repeats
MIX_1 = 0xBF58476D1CE4E5B9
MIX_2 = 0x94D049BB133111EB


@dataclass(frozen=True)
class DropoutArgs:
    """Validated dropout hyperparameters, shared by refcnn and fastcnn."""

    p: float
    training: bool
    inplace: bool
    seed: int


def check_seed(seed, op: str) -> int:
    """Any int is a seed; it is used modulo 2^64 (so -1 and 2^64 - 1 give the same mask)."""
    if not is_int(seed):
        raise TypeError(invalid(op, "seed", "an int", seed))
    return int(seed) % (1 << 64)


def check_probability(p, op: str) -> float:
    return check_float(p, "p", op, minimum=0.0, maximum=1.0)


def check_dropout(x, p, training, inplace, seed, op: str = "dropout", *, writes_x: bool = True) -> DropoutArgs:
    """Check the arguments of :func:`dropout` before any computation. With ``inplace`` (and ``writes_x``: the
    backward writes nothing) ``x`` must be writable and free of 0-stride axes (:func:`check_writable`)."""
    check_float_array(x, "x", op)
    args = DropoutArgs(
        p=check_probability(p, op),
        training=check_bool(training, "training", op),
        inplace=check_bool(inplace, "inplace", op),
        seed=check_seed(seed, op),
    )
    if args.inplace and writes_x:
        check_writable(x, "x", op, "inplace=True writes the result into it")
    return args


def check_dropout_backward(grad_out, x, p, training, inplace, seed, op: str = "dropout_backward") -> DropoutArgs:
    """The forward's checks, then a float ``grad_out`` of ``x``'s shape."""
    args = check_dropout(x, p, training, inplace, seed, op, writes_x=False)
    check_float_array(grad_out, "grad_out", op)
    check_same_shape(grad_out, x, "grad_out", "x", op)
    return args


def check_mask_shape(shape, op: str = "dropout_mask") -> tuple[int, ...]:
    """A shape is an int or a tuple/list of ints >= 0."""
    items = (shape,) if is_int(shape) else shape
    if not isinstance(items, (tuple, list)) or not all(is_int(v) for v in items):
        raise TypeError(invalid(op, "shape", "an int or a tuple of ints >= 0", shape))
    if any(v < 0 for v in items):
        raise ValueError(invalid(op, "shape", "an int or a tuple of ints >= 0", shape))
    if len(items) > 64:  # NumPy's limit on dimensions
        raise ValueError(invalid(op, "shape", "an int or a tuple of at most 64 ints >= 0", shape))
    for v in items:  # (0, 10**400) has no elements but no array can have that axis either
        check_int64(v, "shape", op, "an int or a tuple of ints >= 0", shown=shape)
    dims = tuple(int(v) for v in items)
    check_arrays(op, [("the mask", dims)], lambda: f"shape={shown(shape)}")
    return dims


def mix64(z: int) -> int:
    """SplitMix64's finaliser on a 64-bit unsigned integer (wrap-around arithmetic)."""
    z ^= z >> 30
    z = (z * MIX_1) & MASK64
    z ^= z >> 27
    z = (z * MIX_2) & MASK64
    z ^= z >> 31
    return z


def keep_scale(p: float) -> float:
    """The factor ``1 / (1 - p)`` of a kept element; ``p = 1`` keeps nothing, so its scale is never used (0)."""
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)
