"""The augmentation op's arguments: the checks both engines run first, and their resolved form
(``specs/augment.md``, section 1).

``augment(x, transform, pixel, erase, fill_mode, fill_value, interpolation)`` resamples each image of a batch
through its own inverse affine map, then applies a contrast and brightness change and erases a rectangle.
Everything about the call is checked here, in Python, before either engine computes anything, so that refcnn
and fastcnn raise the same errors with the same messages; :class:`AugmentArgs` is what they then run on:
float64 copies of the per-image parameters, and each erase box already clipped to the image.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .checks import (
    INT64_MAX, as_float, check_choice, check_float_array, check_int_array, check_shape, invalid, shown,
)
from .limits import check_arrays

__all__ = [
    "FILL_MODES", "INTERPOLATIONS", "FILL_CODES", "INTERPOLATION_CODES", "COORDINATE_BOUND", "AugmentArgs",
    "check_augment", "resolve_boxes",
]

#: The fill modes, in the order the spec lists them; the names are Keras's ``fill_mode`` names.
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
#: The interpolations; the names are Keras's ``interpolation`` names.
INTERPOLATIONS = ("nearest", "bilinear")
#: The integer codes the kernels take for the names above (their positions in the tuples).
FILL_CODES = {name: code for code, name in enumerate(FILL_MODES)}
INTERPOLATION_CODES = {name: code for code, name in enumerate(INTERPOLATIONS)}

#: Every source position a transform maps a pixel to must lie in ``[-2**50, 2**50]`` (both coordinates).
#: Far below 2**63, so that ``floor`` of it (and ``floor(pos + 0.5)``) is an exact int64 in every engine,
#: and with two bits of the float64 mantissa left for the fraction a bilinear weight needs. A transform that
#: sends pixels further away than that is a bug in whoever built it, not an augmentation.
COORDINATE_BOUND = 2.0**50
_BOUND_WORDS = "2**50"

_X_AXES = "(N, C, H, W)"


@dataclass(frozen=True)
class AugmentArgs:
    """One checked call of ``augment``, shared by refcnn and fastcnn.

    ``transform`` ``(N, 6)`` and ``pixel`` ``(N, 2)`` are C-contiguous float64 copies (``pixel`` is None when
    there is no pixel stage); ``boxes`` ``(N, 4)`` int64 holds each image's erase rectangle clipped to the
    image as ``(row_begin, row_end, col_begin, col_end)``, half-open, empty when a begin equals its end
    (None when there is no erasing)."""

    transform: np.ndarray
    pixel: np.ndarray | None
    boxes: np.ndarray | None
    fill_mode: str
    fill_value: float
    interpolation: str

    @property
    def fill_code(self) -> int:
        return FILL_CODES[self.fill_mode]

    @property
    def interpolation_code(self) -> int:
        return INTERPOLATION_CODES[self.interpolation]


def check_augment(x, transform, pixel=None, erase=None, fill_mode="constant", fill_value=0.0,
                  interpolation="bilinear", op: str = "augment") -> AugmentArgs:
    """Check the arguments of ``augment`` in their positional order, before anything is computed or
    allocated; return them resolved."""
    check_float_array(x, "x", op, 4, shape_hint=_X_AXES)
    n, _, h, w = x.shape
    context = f"N={n} from x.shape={x.shape}"
    t = _per_image_floats(transform, "transform", 6, n, context, op)
    _check_source_positions(t, transform, h, w, op)
    p = None if pixel is None else _per_image_floats(pixel, "pixel", 2, n, context, op)
    boxes = None if erase is None else resolve_boxes(_erase_boxes(erase, n, context, op), h, w)
    args = AugmentArgs(
        transform=t, pixel=p, boxes=boxes,
        fill_mode=check_choice(fill_mode, "fill_mode", op, FILL_MODES),
        fill_value=_finite_float(fill_value, "fill_value", op),
        interpolation=check_choice(interpolation, "interpolation", op, INTERPOLATIONS),
    )
    check_arrays(op, [("the output", x.shape)], lambda: f"x.shape={x.shape}")
    return args


def _per_image_floats(value, name: str, width: int, n: int, context: str, op: str) -> np.ndarray:
    """An ``(N, width)`` float array of finite numbers (any float dtype), as a C-contiguous float64 copy."""
    check_float_array(value, name, op, 2, shape_hint=f"(N, {width})")
    check_shape(value, (n, width), name, op, context=context)
    values = np.array(value, dtype=np.float64, order="C")
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise ValueError(invalid(op, name, f"an (N, {width}) array of finite numbers", value,
                                 extra=f"Row {row} is {shown(values[row].tolist())}."))
    return values


def _check_source_positions(t: np.ndarray, transform, h: int, w: int, op: str) -> None:
    """Every output pixel's source position within :data:`COORDINATE_BOUND`. The map is affine, so its
    extremes over the image are at the four corner pixels; they are checked with a margin of a few ulps
    beyond which no rounding of ``t0*i + t1*j + t2`` can reach."""
    if t.shape[0] == 0 or h == 0 or w == 0:
        return
    i = np.array([0.0, 0.0, h - 1.0, h - 1.0])
    j = np.array([0.0, w - 1.0, 0.0, w - 1.0])
    rows = np.abs(t[:, 0:1] * i + t[:, 1:2] * j + t[:, 2:3])
    cols = np.abs(t[:, 3:4] * i + t[:, 4:5] * j + t[:, 5:6])
    far = np.maximum(rows.max(axis=1), cols.max(axis=1))
    bad = np.flatnonzero(~(far <= COORDINATE_BOUND * (1.0 - 2.0**-40)))
    if bad.size:
        row = int(bad[0])
        raise ValueError(invalid(
            op, "transform",
            f"a map from every pixel (i, j) of the (H, W) = ({h}, {w}) image to a source position "
            f"(t0*i + t1*j + t2, t3*i + t4*j + t5) within [-{_BOUND_WORDS}, {_BOUND_WORDS}]", transform,
            extra=f"Row {row}, {shown(t[row].tolist())}, sends a corner pixel to distance {far[row]:.6g}."))


def _erase_boxes(erase, n: int, context: str, op: str) -> np.ndarray:
    """An ``(N, 4)`` integer array of ``(top, left, height, width)`` with ``height, width >= 0``, as int64."""
    check_int_array(erase, "erase", op, 2)
    check_shape(erase, (n, 4), "erase", op, context=context)
    expected = "an (N, 4) array of ints (top, left, height, width) with height >= 0 and width >= 0, within int64"
    if erase.size and erase.dtype.kind == "u" and int(erase.max()) > INT64_MAX:
        raise ValueError(invalid(op, "erase", expected, erase))
    boxes = np.array(erase, dtype=np.int64, order="C")
    if boxes.size and (boxes[:, 2:] < 0).any():
        row = int(np.argwhere(boxes[:, 2:] < 0)[0][0])
        raise ValueError(invalid(op, "erase", expected, erase, extra=f"Row {row} is {boxes[row].tolist()}."))
    return boxes


def resolve_boxes(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(top, left, height, width)`` rows -> the rectangle's part inside the ``(h, w)`` image as half-open
    ``(row_begin, row_end, col_begin, col_end)``; int64 arithmetic that cannot overflow for any int64 input
    with ``height, width >= 0`` (no ``top + height`` is formed unless ``top < 0`` or ``height`` is bounded)."""
    out = np.empty((boxes.shape[0], 4), dtype=np.int64)
    out[:, 0:2] = _clip_span(boxes[:, 0], boxes[:, 2], h)
    out[:, 2:4] = _clip_span(boxes[:, 1], boxes[:, 3], w)
    return out


def _clip_span(start: np.ndarray, length: np.ndarray, size: int) -> np.ndarray:
    """``[start, start + length) ∩ [0, size)`` as ``(begin, end)`` columns, ``begin <= end``."""
    begin = np.clip(start, 0, size)
    # start + length is formed for every row but kept only where start < 0, where it cannot overflow
    # (NumPy's integer arrays wrap around silently in the rows thrown away)
    end = np.where(start < 0, start + length, begin + np.minimum(length, size - begin))
    end = np.clip(end, begin, size)
    return np.stack([begin, end], axis=1)


def _finite_float(value, name: str, op: str) -> float:
    """A real number that is finite as a float64 (NumPy scalars too; bools are not numbers here)."""
    expected = "a finite number"
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(op, name, expected, value))
    result = as_float(value, name, op, expected)
    if not math.isfinite(result):
        raise ValueError(invalid(op, name, expected, value))
    return result
