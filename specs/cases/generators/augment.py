"""Write specs/cases/augment.json: the conformance cases of the augmentation op (specs/augment.md, section 1).

Run from anywhere: ``python specs/cases/generators/augment.py``. Never imports the engines under test.

The worked examples of the spec are written out by hand ("hand"). The other expected values are the spec's
formula evaluated here with NumPy, vectorised over the whole image ("closed form"), and each resampling is
checked against ``scipy.ndimage.affine_transform`` (modes grid-constant, nearest, reflect, grid-wrap; order
0 and 1: an implementation independent of this file and of the engines) before it is written.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from scipy import ndimage

from _common import array, case, write_cases

CASES: list[dict] = []
arr = partial(array, whole_as_int=True)
SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "reflect": "reflect", "wrap": "grid-wrap"}
IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def add(name, doc, args, kwargs=None, *, expected=None, raises=None, match=None, source="closed form"):
    CASES.append(case(f"augment/{name}", "augment", doc, source, args, expected, kwargs=kwargs, raises=raises,
                      match=match, tol=None if raises else 1e-12))


# ---------------------------------------------------------------------------------------------------------
# The formula of specs/augment.md, section 1, with NumPy
# ---------------------------------------------------------------------------------------------------------


def extend(k: np.ndarray, n: int, mode: str) -> np.ndarray:
    """e(k, n) for integer positions; -1 marks the constant fill."""
    inside = (k >= 0) & (k < n)
    if mode == "constant":
        return np.where(inside, k, -1)
    if mode == "nearest":
        return np.clip(k, 0, n - 1)
    if mode == "reflect":
        m = np.mod(k, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    return np.mod(k, n)


def samples(image: np.ndarray, r: np.ndarray, c: np.ndarray, mode: str, fill: float) -> np.ndarray:
    h, w = image.shape
    rr, cc = extend(r, h, mode), extend(c, w, mode)
    out = image[np.maximum(rr, 0), np.maximum(cc, 0)]
    return np.where((rr < 0) | (cc < 0), fill, out)


def resample(image, t, mode, fill, interpolation):
    h, w = image.shape
    i, j = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    u, v = t[0] * i + t[1] * j + t[2], t[3] * i + t[4] * j + t[5]
    if interpolation == "nearest":
        return samples(image, np.floor(u + 0.5).astype(np.int64), np.floor(v + 0.5).astype(np.int64), mode, fill)
    r0, c0 = np.floor(u), np.floor(v)
    fr, fc = u - r0, v - c0
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    with np.errstate(invalid="ignore"):  # weight-0 terms are left out below
        def row(r):
            a = samples(image, r, c0, mode, fill)
            return np.where(fc == 0, a, (1 - fc) * a + fc * samples(image, r, c0 + 1, mode, fill))
        top = row(r0)
        return np.where(fr == 0, top, (1 - fr) * top + fr * row(r0 + 1))


def augment(x, transform, pixel=None, erase=None, fill_mode="constant", fill_value=0.0, interpolation="bilinear"):
    y = np.empty(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = resample(x[n, c], transform[n], fill_mode, fill_value, interpolation)
            oracle = ndimage.affine_transform(
                x[n, c], np.array(transform[n]).reshape(2, 3)[:, :2], offset=np.array(transform[n]).reshape(2, 3)[:, 2],
                order=("nearest", "bilinear").index(interpolation), mode=SCIPY_MODE[fill_mode], cval=fill_value)
            assert np.allclose(v, oracle, rtol=0, atol=1e-12), (v, oracle)
            if pixel is not None:
                a, b = pixel[n]
                if a != 1:
                    mean = v.sum() / v.size
                    v = (v - mean) * a + mean
                if b != 0:
                    v = v + b
            if erase is not None:
                top, left, height, width = (int(e) for e in erase[n])
                rows = [i for i in range(x.shape[2]) if top <= i < top + height]
                cols = [j for j in range(x.shape[3]) if left <= j < left + width]
                v[np.ix_(rows, cols)] = fill_value
            y[n, c] = v
    return y


def computed(name, doc, x, transform, pixel=None, erase=None, **kwargs):
    """A case whose expected value is the formula above (cross-checked against scipy)."""
    args = [arr(x), arr(transform)]
    kw = dict(kwargs)
    if pixel is not None:
        kw["pixel"] = arr(pixel)
    if erase is not None:
        kw["erase"] = arr(erase, "int64")
    expected = augment(x, np.asarray(transform, dtype=np.float64), None if pixel is None else np.asarray(pixel),
                       erase, **kwargs)
    add(name, doc, args, kw, expected=arr(expected))


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------


def hand_cases():
    row = np.arange(4.0).reshape(1, 1, 1, 4)
    for mode, values in (("constant", [9, 9, 0, 1]), ("nearest", [0, 0, 0, 1]), ("reflect", [1, 0, 0, 1]),
                         ("wrap", [2, 3, 0, 1])):
        add(f"fill-{mode}-shift-right-2", f"the row 0 1 2 3 read at columns -2 .. 1 (the spec's 1-D example, {mode})",
            [arr(row), arr([[1, 0, 0, 0, 1, -2]])], dict(fill_mode=mode, fill_value=9.0, interpolation="nearest"),
            expected=arr(np.array(values, dtype=float).reshape(1, 1, 1, 4)), source="hand")
    square = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)
    add("bilinear-worked-example", "[[0, 1], [2, 3]] read at (0.25, 0.5) everywhere (zero matrix): 1.0",
        [arr(square), arr([[0, 0, 0.25, 0, 0, 0.5]])], expected=arr(np.ones((1, 1, 2, 2))), source="hand")
    flat = np.arange(9.0).reshape(1, 1, 3, 3)
    add("rot90-counterclockwise", "(0, 1, 0, -1, 0, n-1) is np.rot90: output (i, j) reads (j, 2 - i)",
        [arr(flat), arr([[0, 1, 0, -1, 0, 2]])], dict(interpolation="nearest"),
        expected=arr(np.array([[2, 5, 8], [1, 4, 7], [0, 3, 6]], dtype=float).reshape(1, 1, 3, 3)), source="hand")
    add("hflip", "(1, 0, 0, 0, -1, W-1) mirrors left-right", [arr(flat), arr([[1, 0, 0, 0, -1, 2]])],
        expected=arr(flat[..., ::-1]), source="hand")
    add("order-resample-pixel-erase", "the spec's example: shift up one row, +10, erase (0, 0): the fill stays -1",
        [arr(np.full((1, 1, 3, 3), 2.0)), arr([[1, 0, 1, 0, 1, 0]]), arr([[1.0, 10.0]]),
         arr([[0, 0, 1, 1]], "int64")], dict(fill_value=-1.0),
        expected=arr(np.array([[-1, 12, 12], [12, 12, 12], [9, 9, 9]], dtype=float).reshape(1, 1, 3, 3)),
        source="hand")
    add("identity-keeps-nan", "identity map, contrast 1, brightness 0: a NaN stays where it is, alone",
        [arr(np.array([[7.0, 1.0], [np.nan, -2.0]]).reshape(1, 1, 2, 2)), arr([IDENTITY]), arr([[1.0, 0.0]])],
        expected=arr(np.array([[7.0, 1.0], [np.nan, -2.0]]).reshape(1, 1, 2, 2)), source="hand")


def formula_cases():
    rng = np.random.default_rng(12)
    x = np.round(rng.uniform(0, 1, (2, 2, 5, 6)), 3)
    theta = math.radians(30)
    cy, cx = 2.0, 2.5
    turn = [math.cos(theta), math.sin(theta), cy - cy * math.cos(theta) - cx * math.sin(theta),
            -math.sin(theta), math.cos(theta), cx + cy * math.sin(theta) - cx * math.cos(theta)]
    zoom_shear = [0.8, 0.3, 0.4, -0.1, 1.25, -0.6]
    # Entries exactly representable in float32: the float32 run of the cases rounds every float input, the
    # transform included, and a moved source position could move a nearest sample across a tie.
    turn, zoom_shear = (np.float32(v).astype(np.float64).tolist() for v in (turn, zoom_shear))
    for mode in ("constant", "nearest", "reflect", "wrap"):
        for interpolation in ("nearest", "bilinear"):
            computed(f"rotate30-zoom-shear-{mode}-{interpolation}",
                     f"a 30-degree turn about the centre and a zoom-shear, fill {mode}, {interpolation}",
                     x, [turn, zoom_shear], fill_mode=mode, fill_value=0.5, interpolation=interpolation)
    computed("pixel-contrast-brightness", "(v - mean) * a + mean + b per image and channel, after a half-pixel shift",
             x, [[1, 0, 0.5, 0, 1, 0], IDENTITY], pixel=[[1.5, 0.125], [0.5, -0.25]])
    computed("erase-overhanging", "boxes overhanging the top-left and the bottom-right corners",
             x, [IDENTITY, [1, 0, 0, 0, -1, 5]], erase=np.array([[-1, -2, 3, 4], [3, 4, 9, 9]]), fill_value=-1.0)
    computed("one-pixel-image", "a 1x1 image: reflect and wrap read the one pixel everywhere",
             np.array([[[[3.0]]]]), [[0.5, 0.5, -2.25, 0.375, -1.125, 4.75]], fill_mode="reflect")


def error_cases():
    x = arr(np.zeros((1, 1, 2, 2)))
    add("error-transform-shape", "transform must be (N, 6)", [x, arr([[1, 0, 0, 0, 1]])], raises="ValueError",
        match="transform")
    add("error-transform-nan", "transform entries must be finite", [x, arr([[1, 0, float("nan"), 0, 1, 0]])],
        raises="ValueError", match="finite")
    add("error-fill-mode", "fill_mode names one of the four modes", [x, arr([IDENTITY])], dict(fill_mode="mirror"),
        raises="ValueError", match="'constant', 'nearest', 'reflect', 'wrap'")
    add("error-interpolation", "interpolation is nearest or bilinear", [x, arr([IDENTITY])],
        dict(interpolation="bicubic"), raises="ValueError", match="interpolation")
    add("error-erase-negative-height", "an erase height must be >= 0", [x, arr([IDENTITY])],
        dict(erase=arr([[0, 0, -1, 1]], "int64")), raises="ValueError", match="erase")
    add("error-erase-floats", "erase boxes are ints", [x, arr([IDENTITY])], dict(erase=arr([[0.0, 0.0, 1.0, 1.0]])),
        raises="TypeError", match="erase")


if __name__ == "__main__":
    hand_cases()
    formula_cases()
    error_cases()
    write_cases("augment", CASES)
