"""The augmentation op (``specs/augment.md``, section 1) in both engines.

* refcnn and fastcnn agree for any image size (1x1 and non-square included), channel count, transform, fill
  mode, interpolation, pixel stage and erase: bit for bit in float64, and fastcnn's float32 result is
  refcnn's rounded to float32 (Hypothesis);
* exact invariants: identity parameters return the input bit for bit (NaN, inf and -0.0 included); a
  horizontal flip applied twice is the identity; a quarter-turn with nearest interpolation is ``np.rot90``;
  an integer shift is ``np.roll`` (wrap) or a roll with the fill (constant);
* an independent oracle: ``scipy.ndimage.affine_transform`` with the same matrix and offset, order 0 and 1,
  modes grid-constant, nearest, reflect and grid-wrap;
* the pixel stage and the erase against plain NumPy formulas written here;
* bad input: one clear error, the same in both engines, before any kernel runs.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import fastcnn
import refcnn
from fastcheck import results_per_thread_count

ENGINES = [refcnn, fastcnn]
MODES = ["constant", "nearest", "reflect", "wrap"]
INTERPOLATIONS = ["nearest", "bilinear"]
SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "reflect": "reflect", "wrap": "grid-wrap"}
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _transforms(*rows, n=None):
    rows = rows if n is None else rows * n
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def _bits(a: np.ndarray) -> np.ndarray:
    """The array's bytes as unsigned ints: equal bits, so -0.0 != 0.0 and NaN == NaN of the same payload."""
    return np.ascontiguousarray(a).view(np.uint64 if a.dtype == np.float64 else np.uint32)


def _hostile_images(dtype, shape=(2, 3, 4, 5)) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return x


# ---------------------------------------------------------------------------------------------------------
# Engines agree (Hypothesis)
# ---------------------------------------------------------------------------------------------------------

# Transform entries: exact small values (identity, flips, quarter-turns, integer shifts: ties and exact
# positions) or any float in a range that keeps sources near the image (fill modes all exercised).
_ENTRY = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0]) | st.floats(-3, 3, allow_nan=False)


@st.composite
def augment_calls(draw):
    n, c = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(-5, 5, (n, c, h, w)).astype(dtype)
    rows = [draw(st.sampled_from([IDENTITY]) | st.tuples(*[_ENTRY] * 6)) for _ in range(n)]
    transform = np.array(rows, dtype=np.float64).reshape(n, 6)
    pixel = draw(st.none() | st.just(np.array(
        [[draw(st.sampled_from([1.0, 0.0, -1.0]) | st.floats(-2, 2)), draw(st.floats(-1, 1))] for _ in range(n)],
        dtype=np.float64).reshape(n, 2)))
    erase = draw(st.none() | st.just(np.array(
        [[draw(st.integers(-3, 6)), draw(st.integers(-3, 6)), draw(st.integers(0, 4)), draw(st.integers(0, 4))]
         for _ in range(n)], dtype=np.int64).reshape(n, 4)))
    kwargs = dict(pixel=pixel, erase=erase, fill_mode=draw(st.sampled_from(MODES)),
                  fill_value=draw(st.sampled_from([0.0, -1.5]) | st.floats(-10, 10)),
                  interpolation=draw(st.sampled_from(INTERPOLATIONS)))
    return x, transform, kwargs


@settings(max_examples=60, deadline=None)
@given(augment_calls())
def test_engines_agree_bit_for_bit(call):
    """The engines share every expression of the formula, in float64: equal results, not merely close ones
    (a floor moved across an integer by one rounding would show as a whole pixel's difference)."""
    x, transform, kwargs = call
    ref = refcnn.augment(x, transform, **kwargs)
    fast = fastcnn.augment(x, transform, **kwargs)
    assert fast.dtype == x.dtype and ref.dtype == np.float64 and fast.shape == ref.shape == x.shape
    np.testing.assert_array_equal(_bits(fast), _bits(ref.astype(x.dtype)))


@pytest.mark.parametrize("shape", [(0, 2, 3, 3), (2, 0, 3, 3), (2, 1, 0, 4), (2, 1, 4, 0)])
def test_empty_batches_channels_and_images(shape):
    x = np.zeros(shape)
    t = _transforms((0.5, 1, 2, -1, 0.5, 3), n=shape[0])
    for engine in ENGINES:
        y = engine.augment(x, t, np.ones((shape[0], 2)), np.ones((shape[0], 4), np.int64), "wrap")
        assert y.shape == shape


def test_float16_is_rounded_once():
    x = np.random.default_rng(2).standard_normal((3, 2, 5, 5)).astype(np.float16)
    t = _transforms((0.9, 0.3, 0.5, -0.2, 1.1, -0.4), n=3)
    pixel = np.tile([1.3, 0.2], (3, 1))
    fast = fastcnn.augment(x, t, pixel)
    assert fast.dtype == np.float16
    np.testing.assert_array_equal(_bits16(fast), _bits16(refcnn.augment(x, t, pixel).astype(np.float16)))


def _bits16(a):
    return a.view(np.uint16)


def test_results_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(3).standard_normal((5, 3, 9, 8))
    t = _transforms((0.9, 0.3, 0.5, -0.2, 1.1, -0.4), n=5)
    pixel = np.tile([1.3, 0.2], (5, 1))
    results = results_per_thread_count(lambda: fastcnn.augment(x, t, pixel, fill_mode="reflect"))
    np.testing.assert_array_equal(results[0], results[1])


# ---------------------------------------------------------------------------------------------------------
# Exact invariants
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_identity_parameters_return_the_input_bit_for_bit(engine, dtype, mode, interpolation):
    """Identity map, contrast 1, brightness 0, empty erase boxes: NaN, inf and -0.0 come through unchanged
    (no 0 * x term turns an inf into NaN, no + 0.0 turns -0.0 into 0.0)."""
    x = _hostile_images(dtype)
    n = x.shape[0]
    y = engine.augment(x, _transforms(IDENTITY, n=n), np.tile([1.0, 0.0], (n, 1)),
                       np.array([[1, 1, 0, 3], [0, 2, 5, 0]]), mode, 7.0, interpolation)
    np.testing.assert_array_equal(_bits(y.astype(dtype)), _bits(x))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_a_horizontal_flip_twice_is_the_identity(engine, interpolation):
    x = _hostile_images(np.float64, (2, 2, 3, 6))
    flip = _transforms((1, 0, 0, 0, -1, 6 - 1), n=2)
    once = engine.augment(x, flip, interpolation=interpolation)
    np.testing.assert_array_equal(_bits(once), _bits(x[..., ::-1]))
    np.testing.assert_array_equal(_bits(engine.augment(once, flip, interpolation=interpolation)), _bits(x))


def _quarter_turn(theta_degrees: float, n: int) -> tuple:
    """The inverse map of a counterclockwise turn (as displayed, row 0 at the top) by theta about the centre
    ((n-1)/2, (n-1)/2) of an n x n image, as specs/augment.md writes it in section 1."""
    theta = math.radians(theta_degrees)
    cos, sin, c = math.cos(theta), math.sin(theta), (n - 1) / 2
    return (cos, sin, c - cos * c - sin * c, -sin, cos, c + sin * c - cos * c)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n", [1, 4, 5])
def test_a_quarter_turn_with_nearest_interpolation_is_rot90(engine, n):
    """np.rot90(x, k, axes=(2, 3)) turns counterclockwise as displayed: the exact matrix (0, 1, 0, -1, 0, n-1)
    and the one built from cos/sin of 90 degrees (entries off by 6e-17) both give it, and -90 degrees
    gives k = -1."""
    x = np.random.default_rng(n).standard_normal((2, 3, n, n))
    exact = engine.augment(x, _transforms((0, 1, 0, -1, 0, n - 1), n=2), interpolation="nearest")
    np.testing.assert_array_equal(exact, np.rot90(x, 1, axes=(2, 3)))
    for degrees, k in ((90, 1), (-90, -1), (180, 2)):
        turned = engine.augment(x, _transforms(_quarter_turn(degrees, n), n=2), interpolation="nearest")
        np.testing.assert_array_equal(turned, np.rot90(x, k, axes=(2, 3)))


def _rolled_with_fill(x: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    """x moved down by dy rows and right by dx columns, the vacated pixels set to fill (plain NumPy)."""
    out = np.roll(x, (dy, dx), axis=(2, 3))
    h, w = x.shape[2:]
    out[:, :, :dy, :] = fill if dy > 0 else out[:, :, :dy, :]
    out[:, :, h + dy:, :] = fill if dy < 0 else out[:, :, h + dy:, :]
    out[:, :, :, :dx] = fill if dx > 0 else out[:, :, :, :dx]
    out[:, :, :, w + dx:] = fill if dx < 0 else out[:, :, :, w + dx:]
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("dy, dx", [(1, 2), (-2, 1), (0, -3), (3, 0), (-1, -1)])
def test_an_integer_shift_is_a_roll(engine, interpolation, dy, dx):
    """Output (i, j) reads (i - dy, j - dx): wrap is np.roll exactly; constant is the roll with the pixels
    that wrapped round set to the fill value."""
    x = np.random.default_rng(7).standard_normal((2, 2, 5, 6))
    t = _transforms((1, 0, -dy, 0, 1, -dx), n=2)
    wrapped = engine.augment(x, t, fill_mode="wrap", interpolation=interpolation)
    np.testing.assert_array_equal(wrapped, np.roll(x, (dy, dx), axis=(2, 3)))
    filled = engine.augment(x, t, fill_mode="constant", fill_value=-2.5, interpolation=interpolation)
    np.testing.assert_array_equal(filled, _rolled_with_fill(x, dy, dx, -2.5))


# ---------------------------------------------------------------------------------------------------------
# The independent oracle: scipy.ndimage.affine_transform
# ---------------------------------------------------------------------------------------------------------


def _scipy(x: np.ndarray, t: np.ndarray, mode: str, interpolation: str, fill: float) -> np.ndarray:
    out = np.empty(x.shape)
    for n in range(x.shape[0]):
        matrix, offset = np.array([[t[n, 0], t[n, 1]], [t[n, 3], t[n, 4]]]), np.array([t[n, 2], t[n, 5]])
        for c in range(x.shape[1]):
            out[n, c] = ndimage.affine_transform(x[n, c], matrix, offset=offset, order=INTERPOLATIONS.index(
                interpolation), mode=SCIPY_MODE[mode], cval=fill, prefilter=False)
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_scipy_affine_transform_is_an_independent_oracle(engine, mode, interpolation):
    """Rotations, zooms, shears and shifts reaching well outside the image (every fill mode at work), on
    images of 1x1, 1x7, 6x4 and 9x9. scipy's order 0 picks floor(pos + 0.5) as the spec does (ties up)."""
    rng = np.random.default_rng(11)
    for shape in ((3, 2, 1, 1), (3, 1, 1, 7), (4, 2, 6, 4), (4, 1, 9, 9)):
        x = rng.standard_normal(shape)
        t = np.column_stack([rng.uniform(-1.5, 1.5, shape[0]), rng.uniform(-1.5, 1.5, shape[0]),
                             rng.uniform(-12, 12, shape[0]), rng.uniform(-1.5, 1.5, shape[0]),
                             rng.uniform(-1.5, 1.5, shape[0]), rng.uniform(-12, 12, shape[0])])
        y = engine.augment(x, t, fill_mode=mode, fill_value=0.75, interpolation=interpolation)
        np.testing.assert_allclose(y, _scipy(x, t, mode, interpolation, 0.75), rtol=0, atol=1e-12)


def test_nearest_ties_round_up_as_scipy_does():
    """Half-integer positions: 0.5 reads pixel 1, -0.5 pixel 0, -1.5 the fill (floor(pos + 0.5)), as
    scipy's order 0; and 0.49999999999999994 + 0.5 rounds to 1.0 in float64, so it reads pixel 1 too."""
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    for offset, expected in ((0.5, [1, 2, 3, 4, -9]), (-0.5, [0, 1, 2, 3, 4]), (-1.5, [-9, 0, 1, 2, 3]),
                             (0.49999999999999994, [1, 2, 3, 4, -9])):
        t = _transforms((1, 0, 0, 0, 1, offset))
        oracle = _scipy(x, t, "constant", "nearest", -9.0)
        np.testing.assert_array_equal(oracle.reshape(-1), expected)
        for engine in ENGINES:
            np.testing.assert_array_equal(engine.augment(x, t, fill_value=-9.0, interpolation="nearest"), oracle)


@pytest.mark.parametrize("mode, expected", [
    # a b c d = 0 1 2 3 read at columns -2 .. 5 (specs/augment.md's 1-D examples)
    ("constant", [9, 9, 0, 1, 2, 3, 9, 9]),
    ("nearest", [0, 0, 0, 1, 2, 3, 3, 3]),
    ("reflect", [1, 0, 0, 1, 2, 3, 3, 2]),
    ("wrap", [2, 3, 0, 1, 2, 3, 0, 1]),
])
def test_the_fill_modes_of_the_spec_s_worked_example(mode, expected):
    """The output has the input's size, so the 8 samples at columns -2 .. 5 are read one call each, as
    pixel 0 of a 1x4 image shifted by k - 2 columns."""
    x = np.arange(4.0).reshape(1, 1, 1, 4)
    for engine in ENGINES:
        got = [engine.augment(x, _transforms((1, 0, 0, 0, 1, k - 2.0)), fill_mode=mode, fill_value=9.0,
                              interpolation="nearest")[0, 0, 0, 0] for k in range(8)]
        assert got == expected


# ---------------------------------------------------------------------------------------------------------
# Pixel stage and erase against plain NumPy
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_contrast_and_brightness_follow_keras_random_contrast(engine):
    """y = (v - mean) * a + mean + b, mean per image and channel over H x W (Keras 3 RandomContrast), after
    the resampling (here a flip: the mean is the resampled image's); no clipping."""
    x = np.random.default_rng(5).uniform(0, 1, (3, 2, 5, 4))
    pixel = np.array([[1.5, 0.25], [0.0, -1.0], [-2.0, 0.0]])
    t = _transforms((1, 0, 0, 0, -1, 3), n=3)
    v = x[..., ::-1]
    mean = v.mean(axis=(2, 3), keepdims=True)
    expected = (v - mean) * pixel[:, 0, None, None, None] + mean + pixel[:, 1, None, None, None]
    np.testing.assert_allclose(engine.augment(x, t, pixel), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_erase_sets_the_rectangle_inside_the_image_to_the_fill_value(engine):
    """Boxes inside, overhanging every border, wholly outside, empty, and huge (no overflow)."""
    x = np.random.default_rng(6).standard_normal((6, 2, 5, 7))
    boxes = np.array([[1, 2, 2, 3], [-2, -1, 4, 3], [3, 5, 10, 10], [9, 0, 2, 2], [0, 0, 0, 7],
                      [-(2**63), 2, 2**63 - 1, 2**63 - 1]], dtype=np.int64)
    expected = x.copy()
    for n, (top, left, height, width) in enumerate(boxes.tolist()):
        rows = [i for i in range(5) if top <= i < top + height]
        cols = [j for j in range(7) if left <= j < left + width]
        expected[n][np.ix_(range(2), rows, cols)] = -4.0
    y = engine.augment(x, _transforms(IDENTITY, n=6), erase=boxes, fill_value=-4.0)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_order_is_resample_then_pixel_then_erase(engine):
    x = np.full((1, 1, 3, 3), 2.0)
    y = engine.augment(x, _transforms((1, 0, 1, 0, 1, 0)), np.array([[1.0, 10.0]]), np.array([[0, 0, 1, 1]]),
                       fill_value=-1.0)
    # row 2 reads row 3: the fill -1; +10 everywhere; then the erased corner is -1, not 9
    np.testing.assert_array_equal(y[0, 0], [[-1, 12, 12], [12, 12, 12], [9, 9, 9]])


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------

def _same_error(call) -> Exception:
    """Both engines raise the same exception type with the same message; returns refcnn's."""
    errors = []
    for engine in ENGINES:
        with pytest.raises((TypeError, ValueError)) as info:
            call(engine)
        errors.append(info.value)
    assert (type(errors[0]), str(errors[0])) == (type(errors[1]), str(errors[1]))
    return errors[0]


_X = np.zeros((2, 1, 4, 4))
_T = _transforms(IDENTITY, n=2)


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((_X[0], _T), {}, ValueError, "argument `x` must have 4 dimensions (N, C, H, W)"),
    ((_X.astype(np.int64), _T), {}, TypeError, "argument `x` must have a floating-point dtype"),
    ((_X, [list(IDENTITY)] * 2), {}, TypeError, "argument `transform` must be a numpy.ndarray"),
    ((_X, _T[:1]), {}, ValueError, "argument `transform` must have shape (2, 6) (N=2 from x.shape=(2, 1, 4, 4))"),
    ((_X, _T.reshape(2, 3, 2)), {}, ValueError, "argument `transform` must have 2 dimensions (N, 6)"),
    ((_X, np.where(np.eye(2, 6) > 0, np.nan, _T)), {}, ValueError, "an (N, 6) array of finite numbers"),
    ((_X, _transforms((1, 0, 2.0**51, 0, 1, 0), n=2)), {}, ValueError, "within [-2**50, 2**50]"),
    ((_X, _transforms((1e300, 0, 0, 0, 1, 0), n=2)), {}, ValueError, "within [-2**50, 2**50]"),
    ((_X, _T, np.ones((2, 3))), {}, ValueError, "argument `pixel` must have shape (2, 2)"),
    ((_X, _T, np.array([[1.0, np.inf], [1, 0]])), {}, ValueError, "argument `pixel`. Expected an (N, 2) array"),
    ((_X, _T, None, np.zeros((2, 4))), {}, TypeError, "argument `erase` must have an integer dtype"),
    ((_X, _T, None, np.zeros((2, 4), bool)), {}, TypeError, "argument `erase` must have an integer dtype"),
    ((_X, _T, None, np.array([[0, 0, -1, 2], [0, 0, 1, 1]])), {}, ValueError, "with height >= 0 and width >= 0"),
    ((_X, _T, None, np.full((2, 4), 2**64 - 1, np.uint64)), {}, ValueError, "within int64"),
    ((_X, _T), dict(fill_mode="mirror"), ValueError,
     "Expected one of 'constant', 'nearest', 'reflect', 'wrap'. Received fill_mode='mirror'"),
    ((_X, _T), dict(interpolation="bicubic"), ValueError,
     "Expected one of 'nearest', 'bilinear'. Received interpolation='bicubic'"),
    ((_X, _T), dict(fill_value=float("nan")), ValueError, "argument `fill_value`. Expected a finite number"),
    ((_X, _T), dict(fill_value="0"), TypeError, "argument `fill_value`. Expected a finite number"),
    ((_X, _T), dict(fill_value=10**400), ValueError, "argument `fill_value`"),
])
def test_bad_arguments_are_refused_alike_before_any_kernel(monkeypatch, args, kwargs, error, words):
    def no_kernel(*_args):
        raise AssertionError("the kernel ran on arguments that should have been refused")

    monkeypatch.setattr(sys.modules["fastcnn.augment"], "_augment_kernel", no_kernel)
    raised = _same_error(lambda engine: engine.augment(*args, **kwargs))
    assert type(raised) is error and str(raised).startswith("augment: ") and words in str(raised), str(raised)


def test_a_batch_too_large_is_refused_before_it_is_allocated(monkeypatch):
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "1M")
    x = np.broadcast_to(np.float32(1), (1000, 1, 28, 28))
    raised = _same_error(lambda engine: engine.augment(x, np.tile(IDENTITY, (1000, 1))))
    assert "CNN_MAX_ARRAY_BYTES" in str(raised) and str(raised).startswith("augment: ")
