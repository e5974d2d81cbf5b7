"""Bilinear resizing of image batches, for ``--resize HxW`` (:meth:`cnn.data.Dataset.resized`).

The convention is PyTorch's ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=False)`` (also OpenCV's ``INTER_LINEAR``): pixel centres sit at half-integers, so output pixel ``i``
of ``n_out`` samples the input at ``(i + 0.5) * n_in / n_out - 0.5``, clamped at 0 below and at the last pixel
above, and takes the two neighbouring input pixels weighted by their distance. Rows and columns are resized
one after the other (bilinear is separable). There is no antialiasing filter: shrinking by more than 2 skips
pixels, as torch does with ``antialias=False`` and unlike PIL's ``BILINEAR``, which widens its filter when it
shrinks (upscaling, the usual case here, is the same in both).
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import invalid, is_int
from cnnbase.limits import check_bytes, nbytes_of

#: The largest side ``--resize`` makes: far beyond the images these networks take, small enough that one
#: resized image stays a few hundred MiB.
MAX_SIDE = 8192

#: Images resized at a time: bounds the float64 working copy.
_CHUNK = 1024


def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: row ``i`` holds the two weights output pixel ``i`` gives its input neighbours
    (half-pixel centres, clamped at the edges; see the module docstring)."""
    source = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    source = np.clip(source, 0.0, n_in - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def check_size(height, width, op: str = "resize") -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if not is_int(value) or not 1 <= value <= MAX_SIDE:
            raise ValueError(invalid(op, name, f"an int from 1 to {MAX_SIDE}", value))
    return int(height), int(width)


def resize_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Images ``(N, C, H, W)`` resized to ``(N, C, height, width)``: float32; uint8 images become ``x / 255``
    first (as :func:`cnn.data.to_float` makes them), so the result is in [0, 1] like the model's input."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise TypeError(f"resize_bilinear: argument `x` must be a numpy.ndarray (N, C, H, W); received "
                        f"{type(x).__name__} {getattr(x, 'shape', '')}.")
    height, width = check_size(height, width, "resize_bilinear")
    n, c, h, w = x.shape
    check_bytes(nbytes_of((n, c, height, width), 4), what=f"resize_bilinear: images of {c}x{height}x{width}")
    rows, columns = interpolation_matrix(h, height), interpolation_matrix(w, width)
    scale = 1 / 255 if x.dtype == np.uint8 else 1.0
    out = np.empty((n, c, height, width), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        part = x[start:start + _CHUNK].astype(np.float64) * scale
        out[start:start + _CHUNK] = np.einsum("ih,nchw,jw->ncij", rows, part, columns, optimize=True)
    return out


def parse_size(text: str) -> tuple[int, int]:
    """``"32x32"`` -> ``(32, 32)``; ``"32"`` -> ``(32, 32)``. ``ValueError`` naming the text otherwise."""
    parts = text.lower().split("x") if isinstance(text, str) else []
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"expected HxW such as 32x32 (or one side, 32); received {text!r}")
    sides = [int(p) for p in parts]
    height, width = sides * 2 if len(sides) == 1 else sides
    return check_size(height, width, "--resize")
