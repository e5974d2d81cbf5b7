"""Data augmentation's one op: each image resampled through its own inverse affine map, then its pixel
values changed (contrast, brightness) and a rectangle erased (``specs/augment.md``, section 1).

One resampling per image, whatever the transforms that were composed into its map (rotation, zoom, shift,
shear, flips, crops: that composing is the policy's business, section 2 of the spec). No backward: data
augmentation is not differentiated.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase.augment import AugmentArgs, check_augment
from cnnbase.checks import as_float64

__all__ = ["augment"]


def _source_index(k: int, n: int, fill_mode: str) -> int | None:
    """The index along an axis of size ``n`` that sample ``k`` reads, or None for the fill value.

    constant: outside is the fill value; nearest: the edge repeated (``a a | a b c d | d d``); reflect:
    half-sample symmetric, the edge repeated (``d c b a | a b c d | d c b a``, period ``2n``); wrap:
    periodic (``a b c d | a b c d | a b c d``, period ``n``)."""
    if 0 <= k < n:
        return k
    if fill_mode == "constant":
        return None
    if fill_mode == "nearest":
        return min(max(k, 0), n - 1)
    if fill_mode == "reflect":
        m = k % (2 * n)
        return m if m < n else 2 * n - 1 - m
    return k % n  # wrap


def _sample(image: np.ndarray, r: int, c: int, args: AugmentArgs) -> float:
    """``s(r, c)``: the image's value at integer position ``(r, c)``, extended by the fill mode."""
    h, w = image.shape
    rr = _source_index(r, h, args.fill_mode)
    cc = _source_index(c, w, args.fill_mode)
    if rr is None or cc is None:
        return args.fill_value
    return float(image[rr, cc])


def _bilinear_row(image: np.ndarray, r: int, c0: int, fc: float, args: AugmentArgs) -> float:
    """``(1 - fc) s(r, c0) + fc s(r, c0 + 1)``, the second term left out when ``fc = 0``."""
    a = _sample(image, r, c0, args)
    if fc == 0.0:
        return a
    return (1.0 - fc) * a + fc * _sample(image, r, c0 + 1, args)


def _resampled(image: np.ndarray, i: int, j: int, t: np.ndarray, args: AugmentArgs) -> float:
    """The value of output pixel ``(i, j)`` read from ``image`` through the inverse map ``t``."""
    u = t[0] * i + t[1] * j + t[2]  # source row
    v = t[3] * i + t[4] * j + t[5]  # source column
    if args.interpolation == "nearest":
        return _sample(image, math.floor(u + 0.5), math.floor(v + 0.5), args)
    r0, c0 = math.floor(u), math.floor(v)
    fr, fc = u - r0, v - c0  # exact: a float minus its floor
    top = _bilinear_row(image, r0, c0, fc, args)
    if fr == 0.0:
        return top
    return (1.0 - fr) * top + fr * _bilinear_row(image, r0 + 1, c0, fc, args)


def _pixel_stage(values: np.ndarray, contrast: float, brightness: float) -> None:
    """``y = (v - mean) * contrast + mean + brightness`` in place over one image channel ``values`` (H, W);
    the contrast term is skipped when ``contrast = 1`` and the brightness when ``brightness = 0``, so
    ``(1, 0)`` leaves every value as it is (bit for bit, -0.0, inf and NaN included)."""
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


def augment(x, transform, pixel=None, erase=None, fill_mode="constant", fill_value=0.0,
            interpolation="bilinear") -> np.ndarray:
    """Resample each image through its inverse affine map, then change contrast and brightness and erase a
    rectangle (``specs/augment.md``, section 1).

    Output pixel ``(i, j)`` (row ``i``, column ``j``, pixel centres at integer coordinates) of image ``n``
    reads the source position ``(u, v)`` of the inverse map ``t = transform[n]``::

        u = t0*i + t1*j + t2        v = t3*i + t4*j + t5

    ``s(r, c)`` is ``x[n, ch, r', c']`` with ``r' = e(r, H)``, ``c' = e(c, W)`` the index the fill mode maps
    an integer position to (constant: ``fill_value`` outside ``[0, H) x [0, W)``; nearest: clamped;
    reflect: ``m = k mod 2n``, ``m`` if ``m < n`` else ``2n - 1 - m``; wrap: ``k mod n``). Then

    * nearest: ``v_ij = s(floor(u + 1/2), floor(v + 1/2))`` (ties round up);
    * bilinear: ``r0 = floor(u)``, ``fr = u - r0``, ``c0 = floor(v)``, ``fc = v - c0``,
      ``row(r) = (1 - fc) s(r, c0) + fc s(r, c0 + 1)``, ``v_ij = (1 - fr) row(r0) + fr row(r0 + 1)``,
      a term of weight ``fr = 0`` or ``fc = 0`` left out (an integer position gives the sample itself).

    Pixel stage (``pixel[n] = (a, b)``, contrast and brightness), per image and channel, with
    ``mean = (1 / (H W)) sum_ij v_ij`` summed in row-major order: ``y_ij = (v_ij - mean) * a + mean + b``;
    the contrast term is skipped when ``a = 1``, the brightness term when ``b = 0``. No clipping.

    Erase (``erase[n] = (top, left, height, width)``): ``y_ij = fill_value`` in every channel for
    ``top <= i < top + height`` and ``left <= j < left + width`` (the part inside the image; height or
    width 0 erases nothing). Applied last.

    Shape: ``x`` ``(N, C, H, W)``, ``transform`` ``(N, 6)``, ``pixel`` ``(N, 2)`` or None, ``erase``
    ``(N, 4)`` ints or None -> ``y`` ``(N, C, H, W)``.

    Parameters
    ----------
    x : numpy.ndarray
        Images of any float dtype.
    transform : numpy.ndarray
        ``(N, 6)`` floats, the inverse map of each image (from an output pixel to its source position), in
        scipy.ndimage.affine_transform's convention: ``matrix = [[t0, t1], [t3, t4]]``, ``offset = [t2, t5]``.
        Identity: ``(1, 0, 0, 0, 1, 0)``. Finite, and every source position within ``[-2**50, 2**50]``.
    pixel : numpy.ndarray or None
        ``(N, 2)`` finite floats ``(contrast, brightness)`` of each image; None: no pixel stage.
    erase : numpy.ndarray or None
        ``(N, 4)`` ints ``(top, left, height, width)``, ``height, width >= 0``; the rectangle may reach out of
        the image (``top`` or ``left`` negative too). None: nothing erased.
    fill_mode : str
        ``"constant"``, ``"nearest"``, ``"reflect"`` or ``"wrap"``: what a sample outside the image reads.
    fill_value : float
        A finite number: the constant fill, and the value of erased pixels.
    interpolation : str
        ``"nearest"`` or ``"bilinear"``.

    Returns
    -------
    numpy.ndarray
        float64 array of ``x``'s shape.
    """
    args = check_augment(x, transform, pixel, erase, fill_mode, fill_value, interpolation)
    images = as_float64(x)
    n_images, channels, h, w = images.shape
    y = np.empty(images.shape, dtype=np.float64)
    for n in range(n_images):
        t = args.transform[n]
        for ch in range(channels):
            image = images[n, ch]
            for i in range(h):
                for j in range(w):
                    y[n, ch, i, j] = _resampled(image, i, j, t, args)
            if args.pixel is not None:
                _pixel_stage(y[n, ch], float(args.pixel[n, 0]), float(args.pixel[n, 1]))
            if args.boxes is not None:
                r_begin, r_end, c_begin, c_end = (int(b) for b in args.boxes[n])
                for i in range(r_begin, r_end):
                    for j in range(c_begin, c_end):
                        y[n, ch, i, j] = args.fill_value
    return y
