"""Data augmentation's one op in Numba: every (image, channel) plane resampled through its image's inverse
affine map, then the pixel stage and the erase, in one parallel loop (``specs/augment.md``, section 1).

The work items are the ``N*C`` planes; each is computed whole by one iteration (resampled into its float64
output plane, its mean summed in row-major order, contrast, brightness and erase applied; the result is
rounded to the input's dtype once, at the end), so the result does not depend on the thread count or on
the order the planes are visited. The arithmetic is refcnn's, expression by expression and in float64 (``fastmath`` off: no
contraction into FMA, which would move a ``floor`` across an integer), so float64 results equal refcnn's
bit for bit and a float32 or float16 result is refcnn's float64 result rounded once.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cnnbase.augment import check_augment

from . import _runtime

__all__ = ["augment"]

_CONSTANT, _NEAREST, _REFLECT, _WRAP = 0, 1, 2, 3  # cnnbase.augment.FILL_CODES

# Inlining: the per-sample helpers below are inlined into the pixel loop by Numba (inline="always"): as calls
# taking a 2-D array they cost 2.5x the whole kernel's time. The loops over a plane are not: inlining them too
# gained nothing measurable and tripled the compile time (about 10 s of CPU instead of 3.5 s per dtype).
_NEAREST_INTERPOLATION = 0  # cnnbase.augment.INTERPOLATION_CODES


# ----------------------------------------------------------------------------------------------------------
# Kernels


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _source_index(k, n, mode):
    """The index sample ``k`` reads along an axis of size ``n``, or -1 for the constant fill."""
    if 0 <= k < n:
        return k
    if mode == _CONSTANT:
        return -1
    if mode == _NEAREST:
        return 0 if k < 0 else n - 1
    if mode == _REFLECT:
        m = k % (2 * n)  # Numba's % on ints is Python's: the result has the divisor's sign
        return m if m < n else 2 * n - 1 - m
    return k % n


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _sample(plane, r, c, mode, fill):
    h, w = plane.shape
    rr = _source_index(r, h, mode)
    cc = _source_index(c, w, mode)
    if rr < 0 or cc < 0:
        return fill
    return np.float64(plane[rr, cc])


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _bilinear_row(plane, r, c0, fc, mode, fill):
    a = _sample(plane, r, c0, mode, fill)
    if fc == 0.0:
        return a
    return (1.0 - fc) * a + fc * _sample(plane, r, c0 + 1, mode, fill)


@numba.njit(**_runtime.KERNEL_FLAGS)
def _resample_plane(source, t0, t1, t2, t3, t4, t5, mode, fill, interp, out):
    """``out[i, j]`` (float64) = the resampled value of output pixel ``(i, j)``."""
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            u = t0 * i + t1 * j + t2
            v = t3 * i + t4 * j + t5
            if interp == _NEAREST_INTERPOLATION:
                out[i, j] = _sample(source, np.int64(math.floor(u + 0.5)), np.int64(math.floor(v + 0.5)), mode, fill)
                continue
            fu = math.floor(u)
            fv = math.floor(v)
            fr = u - fu
            fc = v - fv
            r0 = np.int64(fu)
            c0 = np.int64(fv)
            top = _bilinear_row(source, r0, c0, fc, mode, fill)
            if fr == 0.0:
                out[i, j] = top
            else:
                out[i, j] = (1.0 - fr) * top + fr * _bilinear_row(source, r0 + 1, c0, fc, mode, fill)


@numba.njit(**_runtime.KERNEL_FLAGS)
def _pixel_stage(values, contrast, brightness):
    h, w = values.shape
    if contrast != 1.0 and h * w > 0:
        total = 0.0
        for i in range(h):
            for j in range(w):
                total += values[i, j]
        mean = total / (h * w)
        for i in range(h):
            for j in range(w):
                values[i, j] = (values[i, j] - mean) * contrast + mean
    if brightness != 0.0:
        for i in range(h):
            for j in range(w):
                values[i, j] = values[i, j] + brightness


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _augment_kernel(x, t, pixel, has_pixel, boxes, has_boxes, mode, fill, interp, out):
    """One iteration per (image, channel) plane of ``x`` (N, C, H, W) into the float64 ``out``; ``pixel`` and
    ``boxes`` are read only when their flag is set (they may then be empty placeholders)."""
    n_images, channels, h, w = x.shape
    for p in numba.prange(n_images * channels):
        n = p // channels
        ch = p - n * channels
        plane = out[n, ch]
        _resample_plane(x[n, ch], t[n, 0], t[n, 1], t[n, 2], t[n, 3], t[n, 4], t[n, 5], mode, fill, interp, plane)
        if has_pixel:
            _pixel_stage(plane, pixel[n, 0], pixel[n, 1])
        if has_boxes:
            for i in range(boxes[n, 0], boxes[n, 1]):
                for j in range(boxes[n, 2], boxes[n, 3]):
                    plane[i, j] = fill


# ----------------------------------------------------------------------------------------------------------
# Public function

_NO_PIXEL = np.zeros((0, 2), dtype=np.float64)
_NO_BOXES = np.zeros((0, 4), dtype=np.int64)


def augment(x, transform, pixel=None, erase=None, fill_mode="constant", fill_value=0.0,
            interpolation="bilinear") -> np.ndarray:
    args = check_augment(x, transform, pixel, erase, fill_mode, fill_value, interpolation)
    src = _runtime.as_compute(x, _runtime.compute_dtype(x))  # float16 read as float32: exactly
    # The kernel writes float64 whatever x's dtype, so that every result is rounded once (by astype below);
    # two compiled variants (float32 and float64 x) instead of one per pair of input and output dtypes.
    out = np.empty(x.shape, dtype=np.float64)
    _augment_kernel(src, args.transform, _NO_PIXEL if args.pixel is None else args.pixel, args.pixel is not None,
                    _NO_BOXES if args.boxes is None else args.boxes, args.boxes is not None, args.fill_code,
                    args.fill_value, args.interpolation_code, out)
    return out.astype(x.dtype, copy=False)


_runtime.share_docstrings(globals(), __all__, notes={
    "augment": "fastcnn: computed in float64 per plane and rounded once to x's dtype: a float64 result equals "
               "refcnn's bit for bit, a float32 (float16) one is refcnn's rounded to float32 (float16); "
               "one parallel iteration per (image, channel), so the result does not depend on the thread count.",
})
