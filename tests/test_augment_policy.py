"""Data augmentation's policy (specs/augment.md sections 2+): the description and its errors, the
counter-based draws (against the spec's formula on Python ints), the composition into one inverse affine
map (against matrices built here from the spec's forward story, hand-worked cases and
scipy.ndimage.affine_transform as the resampler), and its use: fit, cnn train --augment, run.json and
--resume, evaluation, the cnn augment preview, the bench row."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import fastcnn
from cnn import data as datasets
from cnn.augment import augment_batch
from cnn.bench import render_train
from cnn.cli import cnn as CNN
from cnn.files import CheckpointError, load_archive
from cnn.model import Model
from cnn.threads import set_threads
from cnn.train import evaluate, fit
from cnnbase.augment_policy import (ERASE_RATIO, ERASE_SCALE, NAMES, SLOTS, AugmentError, AugmentParameters,
                                    AugmentPolicy, compose, draw, parameters, uniforms)
from tests.test_commands import assert_one_line_error, write_tiny_data

FULL = ("rotation=10, shift=0.1, zoom=0.1, shear=10, hflip, brightness=0.2, contrast=0.2, crop=4, erase=0.25, "
        "fill=nearest")


# --------------------------------------------------------------------------------------------------
# The description


def test_the_issue_description_parses_and_reads_back():
    policy = AugmentPolicy.parse(FULL)
    assert (policy.rotation, policy.height_shift, policy.width_shift, policy.zoom, policy.shear) == (10, .1, .1, .1, 10)
    assert policy.hflip and not policy.vflip
    assert (policy.brightness, policy.contrast, policy.crop, policy.erase, policy.fill) == (.2, .2, 4, .25, "nearest")
    assert policy.interpolation == "bilinear" and policy.fill_value == 0.0
    assert AugmentPolicy.parse(policy.to_text()) == policy
    assert AugmentPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


_FRACTION = st.floats(0, 1)
_POLICIES = st.builds(
    AugmentPolicy, rotation=st.floats(0, 180), height_shift=_FRACTION, width_shift=_FRACTION,
    height_zoom=st.floats(0, 1, exclude_max=True), width_zoom=st.floats(0, 1, exclude_max=True),
    shear=st.floats(0, 90, exclude_max=True), hflip=st.booleans(), vflip=st.booleans(), crop=st.integers(0, 65535),
    brightness=_FRACTION, contrast=_FRACTION, erase=_FRACTION, fill=st.sampled_from(["constant", "nearest", "wrap"]),
    fill_value=st.floats(-1e300, 1e300), interpolation=st.sampled_from(["nearest", "bilinear"]))


@settings(max_examples=200, deadline=None)
@given(_POLICIES)
def test_any_policy_reads_back_from_its_text_and_dict(policy):
    assert AugmentPolicy.parse(policy.to_text()) == policy
    assert AugmentPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_canonical_text_orders_and_merges():
    policy = AugmentPolicy.parse("hflip , width_shift=0.1, height_shift=0.1,rotation=5")
    assert policy.to_text() == "rotation=5, shift=0.1, hflip"
    assert AugmentPolicy.parse("height_shift=0.2, width_shift=0.1").to_text() == "height_shift=0.2, width_shift=0.1"


def test_keras_names_are_accepted():
    keras = AugmentPolicy.parse("rotation_range=20, width_shift_range=0.2, height_shift_range=0.1, zoom_range=0.3, "
                                "shear_range=5, horizontal_flip, vertical_flip, fill_mode=reflect")
    ours = AugmentPolicy.parse("rotation=20, width_shift=0.2, height_shift=0.1, zoom=0.3, shear=5, hflip, vflip, "
                               "fill=reflect")
    assert keras == ours


@pytest.mark.parametrize("text", ["", "none", " None "])
def test_nothing_is_no_augmentation(text):
    policy = AugmentPolicy.parse(text)
    assert policy == AugmentPolicy() and not policy.active and policy.to_text() == "none"
    # the fill and the interpolation alone change nothing
    assert not AugmentPolicy.parse("fill=wrap, interpolation=nearest").active


@pytest.mark.parametrize("text, named, choices", [
    ("rotate=10", "'rotate'", "rotation, shift"),
    ("rotation=200", "rotation", "[0, 180]"),
    ("rotation=nan", "rotation", "[0, 180]"),
    ("rotation", "rotation", "[0, 180]"),
    ("shift=-0.1", "shift", "[0, 1]"),
    ("zoom=1", "zoom", "[0, 1)"),
    ("shear=90", "shear", "[0, 90)"),
    ("crop=1.5", "crop", "an int"),
    ("crop=-1", "crop", "an int"),
    ("hflip=1", "hflip", "no value"),
    ("fill=mirror", "fill", "constant, nearest, reflect, wrap"),
    ("interpolation=cubic", "interpolation", "nearest, bilinear"),
    ("fill_value=inf", "fill_value", "finite"),
    ("erase=1.5", "erase", "[0, 1]"),
    ("rotation=10,,hflip", "empty item", "commas"),
    ("rotation=10, rotation=5", "rotation", "twice"),
    ("shift=0.1, width_shift=0.2", "width_shift", "once"),
    ("zoom=0.1, width_zoom=0.2", "zoom", "not both"),
])
def test_a_bad_item_is_one_line_naming_it_and_the_choices(text, named, choices):
    with pytest.raises(AugmentError) as caught:
        AugmentPolicy.parse(text)
    message = str(caught.value)
    assert "\n" not in message and named in message and choices in message, message


def test_unknown_name_suggests_the_closest():
    with pytest.raises(AugmentError, match="did you mean brightness"):
        AugmentPolicy.parse("brightnes=0.2")
    assert set(NAMES) >= {"rotation", "shift", "zoom", "shear", "hflip", "vflip", "crop", "brightness", "contrast",
                          "erase", "fill", "fill_value", "interpolation"}


def test_values_are_checked_from_python_too():
    with pytest.raises(AugmentError, match="rotation"):
        AugmentPolicy(rotation=-1)
    with pytest.raises(AugmentError, match="hflip"):
        AugmentPolicy(hflip=1)
    with pytest.raises(AugmentError, match="unknown name 'spin'"):
        AugmentPolicy.from_dict({"spin": 3})


# --------------------------------------------------------------------------------------------------
# Counter-based uniforms: the spec's formula on Python ints (written here again, not imported)

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def _mix(z):
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _spec_uniform(seed, epoch, index, slot):
    stream = _mix((seed % (1 << 64) + (epoch + 1) * GAMMA) & M64)
    key = _mix(stream)
    return (_mix((key + (index * 64 + slot + 1) * GAMMA) & M64) >> 11) * 2.0**-53


def test_mix_is_splitmix64():
    assert _mix(GAMMA) == 0xE220A8397B1DCDAF  # the first output of SplitMix64 from state 0


@pytest.mark.parametrize("seed, epoch", [(0, 0), (1, 3), (2**64 - 1, 11), (12345, 0)])
def test_uniforms_follow_the_spec_formula(seed, epoch):
    index = np.array([0, 1, 7, 59_999, 2**40])
    slots = np.array([0, 5, 12, 52, 63])
    u = uniforms(seed, epoch, index, slots)
    expected = [[_spec_uniform(seed, epoch, int(k), int(s)) for s in slots] for k in index]
    assert u.tolist() == expected  # bit for bit


def test_drawn_parameters_follow_the_spec_rules_from_the_uniforms():
    """Every parameter of specs/augment.md section 3 recomputed from the Python-int uniforms, per image."""
    H, W, seed, epoch = 28, 30, 0, 0
    d = draw(AugmentPolicy.parse(FULL + ", vflip"), seed, epoch, np.arange(20), H, W)
    assert d.erase[:, 2].any() and not d.erase[:, 2].all()  # both branches below are taken
    for k in range(20):
        u = [_spec_uniform(seed, epoch, k, s) for s in range(64)]
        crop_r, crop_c = min(math.floor(u[8] * 9), 8) - 4, min(math.floor(u[9] * 9), 8) - 4
        assert d.angle[k] == 10 * (2 * u[0] - 1) and d.shear[k] == 10 * (2 * u[3] - 1)
        assert d.zoom_h[k] == d.zoom_w[k] == 1 + 0.1 * (2 * u[1] - 1)
        assert d.shift_r[k] == 0.1 * (2 * u[4] - 1) * H + crop_r
        assert d.shift_c[k] == 0.1 * (2 * u[5] - 1) * W + crop_c
        assert d.flip_h[k] == (u[6] < 0.5) and d.flip_v[k] == (u[7] < 0.5)
        assert d.brightness[k] == 0.2 * (2 * u[10] - 1) and d.contrast[k] == 1 + 0.2 * (2 * u[11] - 1)
        rect = (0, 0, 0, 0)
        if u[12] < 0.25:
            for t in range(10):
                ua, ur, ut, ul = u[13 + 4 * t: 17 + 4 * t]
                area = H * W * (0.02 + 0.31 * ua)
                ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * ur)
                h, w = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
                if h < H and w < W:
                    rect = (min(math.floor(ut * (H - h + 1)), H - h), min(math.floor(ul * (W - w + 1)), W - w), h, w)
                    break
        assert tuple(d.erase[k]) == rect, k
    # the spec's worked example: image 0 of seed 0, epoch 0 (28 x 28)
    d0 = draw(AugmentPolicy.parse(FULL), 0, 0, [0], 28, 28)
    assert (round(d0.angle[0], 7), round(d0.shift_c[0], 7), bool(d0.flip_h[0])) == (-3.2389509, -2.3699741, True)


def test_uniforms_are_uniform_and_distinct_across_epochs():
    u0 = uniforms(5, 0, np.arange(4000), np.arange(SLOTS))
    u1 = uniforms(5, 1, np.arange(4000), np.arange(SLOTS))
    assert u0.min() >= 0.0 and u0.max() < 1.0
    assert abs(u0.mean() - 0.5) < 0.005 and abs(u0.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u0.ravel(), u1.ravel())[0, 1]) < 0.01


def test_parameters_do_not_depend_on_the_batch():
    policy = AugmentPolicy.parse(FULL)
    whole = parameters(policy, 3, 2, np.arange(1000), 28, 28)
    order = np.random.default_rng(0).permutation(1000)
    for batch_size in (1, 7, 128):
        for start in range(0, 1000, batch_size * 37 + 1):
            index = order[start:start + batch_size]
            part = parameters(policy, 3, 2, index, 28, 28)
            for got, want in zip(part, whole):
                assert np.array_equal(got, want[index])


def test_a_transform_draws_the_same_whatever_else_is_on():
    alone = draw(AugmentPolicy(rotation=30), 0, 0, np.arange(50), 28, 28)
    along = draw(AugmentPolicy.parse(FULL.replace("rotation=10", "rotation=30")), 0, 0, np.arange(50), 28, 28)
    assert np.array_equal(alone.angle, along.angle)


# --------------------------------------------------------------------------------------------------
# Drawing: ranges and rates


def _binomial_ok(hits, n, p, sigmas=5.0):
    return abs(hits / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_drawn_parameters_cover_their_ranges():
    n = 20_000
    policy = AugmentPolicy.parse("rotation=10, height_shift=0.1, width_shift=0.2, zoom=0.1, shear=5, hflip, vflip, "
                                 "crop=2, brightness=0.2, contrast=0.3")
    d = draw(policy, 9, 4, np.arange(n), 20, 30)
    assert -10 <= d.angle.min() < -9.9 and 9.9 < d.angle.max() < 10
    assert -5 <= d.shear.min() and d.shear.max() < 5
    assert np.array_equal(d.zoom_h, d.zoom_w) and 0.9 <= d.zoom_h.min() and d.zoom_h.max() < 1.1
    crop_r = np.round(d.shift_r - 0)  # shift (|.| < 2 px) plus an integer in [-2, 2]
    assert np.abs(d.shift_r).max() < 0.1 * 20 + 2 and np.abs(d.shift_c).max() < 0.2 * 30 + 2
    assert set(np.unique(crop_r)) <= set(range(-4, 5))
    assert _binomial_ok(d.flip_h.sum(), n, 0.5) and _binomial_ok(d.flip_v.sum(), n, 0.5)
    assert 0.7 <= d.contrast.min() and d.contrast.max() < 1.3 and abs(d.contrast.mean() - 1) < 0.01
    assert -0.2 <= d.brightness.min() and d.brightness.max() < 0.2
    assert not d.erase.any()


def test_crop_alone_is_an_integer_shift_with_every_offset_equally_likely():
    n = 9_000
    d = draw(AugmentPolicy(crop=4), 1, 0, np.arange(n), 28, 28)
    for shift in (d.shift_r, d.shift_c):
        assert np.array_equal(shift, np.round(shift))
        values, counts = np.unique(shift, return_counts=True)
        assert values.tolist() == list(range(-4, 5))
        assert all(_binomial_ok(c, n, 1 / 9) for c in counts)


def test_independent_zooms_per_axis():
    d = draw(AugmentPolicy(height_zoom=0.2, width_zoom=0.1), 0, 0, np.arange(2000), 28, 28)
    assert not np.array_equal(d.zoom_h, d.zoom_w)
    assert 0.8 <= d.zoom_h.min() < 0.81 and 0.9 <= d.zoom_w.min() and d.zoom_w.max() < 1.1


def test_erasing_follows_torchvisions_rule():
    n, H, W, p = 20_000, 28, 32, 0.25
    rect = draw(AugmentPolicy(erase=p), 2, 0, np.arange(n), H, W).erase
    top, left, h, w = rect.T
    erased = h > 0
    assert _binomial_ok(erased.sum(), n, p, sigmas=6)  # (nearly every first try fits at this size)
    assert np.all(w[erased] > 0) and np.all(h[~erased] == 0) and np.all(w[~erased] == 0)
    assert np.all(h < H) and np.all(w < W) and np.all(top >= 0) and np.all(left >= 0)
    assert np.all(top + h <= H) and np.all(left + w <= W)
    area = (h * w)[erased] / (H * W)
    # h and w are rounded: the area fraction stays near [0.02, 0.33]
    assert area.min() > 0.5 * ERASE_SCALE[0] and area.max() < 1.25 * ERASE_SCALE[1]
    ratio = h[erased] / w[erased]
    assert ratio.min() > 0.5 * ERASE_RATIO[0] and ratio.max() < 2 * ERASE_RATIO[1]
    # a top position in [0, H - h]: every row can start a rectangle
    assert top[erased].min() == 0


def test_erasing_gives_up_when_no_try_fits():
    rect = draw(AugmentPolicy(erase=1.0), 0, 0, np.arange(100), 2, 2).erase
    # on a 2x2 image an area of at least 0.08 pixels rounds to h or w of 0 or 1; h, w < 2 always fit
    assert np.all(rect[:, 2] < 2) and np.all(rect[:, 3] < 2)
    one = draw(AugmentPolicy(erase=1.0), 0, 0, np.arange(100), 1, 1).erase
    assert not one.any()  # h < 1 and w < 1 means an empty rectangle at best: nothing to erase


# --------------------------------------------------------------------------------------------------
# The composition


def _params(n=1, **given):
    fields = dict(angle=np.zeros(n), zoom_h=np.ones(n), zoom_w=np.ones(n), shear=np.zeros(n), shift_r=np.zeros(n),
                  shift_c=np.zeros(n), flip_h=np.zeros(n, bool), flip_v=np.zeros(n, bool), contrast=np.ones(n),
                  brightness=np.zeros(n), erase=np.zeros((n, 4), np.int64))
    fields.update({k: np.asarray(v).reshape(n) for k, v in given.items()})
    return AugmentParameters(**fields)


def _scipy(image, t, order, mode="grid-constant", cval=0.0):
    """The op's oracle: scipy.ndimage.affine_transform with matrix [[t0, t1], [t3, t4]], offset [t2, t5]."""
    return ndimage.affine_transform(image, np.array([[t[0], t[1]], [t[3], t[4]]]), offset=(t[2], t[5]),
                                    order=order, mode=mode, cval=cval)


def _source(t, row, col):
    return (t[0] * row + t[1] * col + t[2], t[3] * row + t[4] * col + t[5])


def test_identity_is_exact():
    t = compose(_params(3), 28, 28)
    assert t.tolist() == [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]] * 3
    t = parameters(AugmentPolicy(), 0, 0, np.arange(3), 5, 7)[0]
    assert t.tolist() == [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]] * 3


def test_rotation_by_90_degrees_maps_corners_to_corners_counter_clockwise():
    H = W = 5
    t = compose(_params(angle=90.0), H, W)[0]
    # counter-clockwise as displayed (row 0 at the top): the top-left output corner shows the top-right input one
    for out, src in [((0, 0), (0, 4)), ((0, 4), (4, 4)), ((4, 4), (4, 0)), ((4, 0), (0, 0)), ((2, 2), (2, 2))]:
        assert np.allclose(_source(t, *out), src, atol=1e-12)
    image = np.random.default_rng(0).random((H, W))
    assert np.array_equal(_scipy(image, t, order=0), np.rot90(image))


def test_rotation_of_a_rectangle_is_about_its_centre():
    t = compose(_params(angle=180.0), 4, 6)[0]
    assert np.allclose(_source(t, 0, 0), (3, 5)) and np.allclose(_source(t, 1.5, 2.5), (1.5, 2.5))


def test_a_shift_of_a_tenth_moves_a_28_wide_image_right_by_2_8_pixels():
    t = compose(_params(shift_c=0.1 * 28), 28, 28)[0]
    assert np.allclose(t, [1, 0, 0, 0, 1, -2.8])     # output column j shows source column j - 2.8
    image = np.zeros((28, 28))
    image[:, 10] = 1.0
    out = _scipy(image, t, order=1)
    # hand-worked: column 12 samples 9.2 (0.2 of column 10), column 13 samples 10.2 (0.8 of it)
    assert np.allclose(out[:, 12], 0.2) and np.allclose(out[:, 13], 0.8)
    assert np.allclose(out.sum(axis=0)[[i for i in range(28) if i not in (12, 13)]], 0)


def test_a_positive_height_shift_moves_the_content_down():
    t = compose(_params(shift_r=3.0), 10, 10)[0]
    image = np.random.default_rng(1).random((10, 10))
    out = _scipy(image, t, order=0)
    assert np.array_equal(out[3:], image[:-3]) and not out[:3].any()


def test_an_integer_crop_offset_is_a_roll_with_the_fill():
    image = np.random.default_rng(2).random((8, 9))
    t = compose(_params(shift_r=-2.0, shift_c=3.0), 8, 9)[0]
    expected = np.zeros_like(image)
    expected[:6, 3:] = image[2:, :6]
    assert np.array_equal(_scipy(image, t, order=1), expected)
    assert np.array_equal(_scipy(image, t, order=1, mode="grid-wrap"), np.roll(image, (-2, 3), axis=(0, 1)))


def test_flips_are_exact_and_about_the_centre():
    image = np.random.default_rng(3).random((6, 7))
    th = compose(_params(flip_h=True), 6, 7)[0]
    tv = compose(_params(flip_v=True), 6, 7)[0]
    assert th.tolist() == [1, 0, 0, 0, -1, 6] and tv.tolist() == [-1, 0, 5, 0, 1, 0]
    assert np.array_equal(_scipy(image, th, order=1), image[:, ::-1])
    assert np.array_equal(_scipy(image, tv, order=1), image[::-1])


def test_zoom_below_one_magnifies_about_the_centre():
    t = compose(_params(zoom_h=0.5, zoom_w=0.5), 9, 9)[0]
    # Keras's convention: the factor is the source extent, so 0.5 shows the middle half twice as large
    assert np.allclose(_source(t, 4, 4), (4, 4)) and np.allclose(_source(t, 0, 8), (2, 6))


def test_positive_shear_slants_upright_strokes_to_the_right():
    H = W = 21
    t = compose(_params(shear=45.0), H, W)[0]
    image = np.zeros((H, W))
    image[:, 10] = 1.0
    out = _scipy(image, t, order=0)
    # tan 45 = 1: a stroke through the centre leans like italic type: the top row to the right, the bottom left
    assert out[0].argmax() == 20 and out[10].argmax() == 10 and out[20].argmax() == 0


def _forward(p, k, H, W):
    """The spec's forward story in homogeneous (row, col) coordinates: flip, zoom, shear, rotate about the
    centre, shift. Built here from the geometric description, independently of compose()."""
    c = np.array([[1, 0, (H - 1) / 2], [0, 1, (W - 1) / 2], [0, 0, 1.0]])
    a = math.radians(p.angle[k])
    # counter-clockwise on screen with rows pointing down: (dr, dc) -> (cos dr - sin dc, sin dr + cos dc)
    rotate = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    # italic slant: a point above the centre (dr < 0) moves right by tan(s) * |dr|
    shear = np.array([[1, 0, 0], [-math.tan(math.radians(p.shear[k])), 1, 0], [0, 0, 1]])
    zoom = np.diag([1 / p.zoom_h[k], 1 / p.zoom_w[k], 1.0])     # the source extent's inverse: 0.5 magnifies 2x
    flip = np.diag([-1.0 if p.flip_v[k] else 1.0, -1.0 if p.flip_h[k] else 1.0, 1.0])
    shift = np.array([[1, 0, p.shift_r[k]], [0, 1, p.shift_c[k]], [0, 0, 1.0]])
    return shift @ c @ rotate @ shear @ zoom @ flip @ np.linalg.inv(c)


def test_composition_is_the_inverse_of_the_forward_story():
    H, W = 20, 30
    d = draw(AugmentPolicy.parse(FULL.replace("hflip", "hflip, vflip, height_zoom=0.2, width_zoom=0.3")
                                 .replace("zoom=0.1, ", "")), 7, 1, np.arange(40), H, W)
    t = compose(d, H, W)
    for k in range(40):
        inverse = np.linalg.inv(_forward(d, k, H, W))
        assert np.allclose(t[k], inverse[:2].ravel(), atol=1e-12), k


def test_composed_map_resamples_once_like_scipy_step_by_step():
    """One resampling with the composed map equals applying the forward steps one after another on a
    continuous image (here a linear ramp, which bilinear interpolation reproduces exactly inside)."""
    H, W = 16, 16
    rows, cols = np.mgrid[0:H, 0:W].astype(float)
    ramp = 0.3 * rows + 0.7 * cols
    p = _params(angle=20.0, zoom_h=0.8, zoom_w=0.8, shear=10.0, shift_r=1.5, shift_c=-0.5)
    t = compose(p, H, W)[0]
    out = _scipy(ramp, t, order=1, mode="nearest")
    src_r, src_c = _source(t, rows, cols)
    inside = (src_r >= 0) & (src_r <= H - 1) & (src_c >= 0) & (src_c <= W - 1)
    assert inside.sum() > 100
    assert np.allclose(out[inside], (0.3 * src_r + 0.7 * src_c)[inside])


def test_pixel_and_erase_arrays_are_given_only_when_on():
    t, pixel, erase = parameters(AugmentPolicy(rotation=5), 0, 0, np.arange(4), 8, 8)
    assert t.shape == (4, 6) and t.dtype == np.float64 and pixel is None and erase is None
    t, pixel, erase = parameters(AugmentPolicy(brightness=0.1, erase=0.5), 0, 0, np.arange(4), 8, 8)
    assert pixel.shape == (4, 2) and np.all(pixel[:, 0] == 1.0) and erase.shape == (4, 4) and erase.dtype == np.int64
    assert t.tolist() == [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]] * 4


def _read_png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # the IHDR chunk is whole
    return width, height


# --------------------------------------------------------------------------------------------------
# In use: fit, cnn train, run.json and --resume, evaluation, the preview (they need the engines' op)

HAS_OP = hasattr(fastcnn, "augment")
needs_op = pytest.mark.skipif(not HAS_OP, reason="the engines' augment op (specs/augment.md section 1) is missing")
SPEC = "conv4k3 relu, maxpool2, flatten, dense3"
POLICY = "rotation=15, shift=0.1, zoom=0.1, shear=10, hflip, brightness=0.2, contrast=0.2, crop=2, erase=0.5"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_data(tmp_path_factory.mktemp("data") / "tiny.npz")


def _xy(tiny):
    ds = datasets.load_dataset(str(tiny))
    return datasets.to_float(ds.x_train), ds.y_train, datasets.to_float(ds.x_test), ds.y_test


def _weights(model):
    return {k: v.copy() for k, v in model.state_arrays().items()}


def _fit(x, y, epochs, **kwargs):
    model = Model(SPEC, (1, 12, 12), engine="fastcnn", seed=1)
    history = fit(model, x, y, epochs=epochs, batch_size=16, verbose=0, **kwargs)
    return model, history


@needs_op
def test_augmented_batches_do_not_depend_on_batch_size_or_order(tiny):
    x = _xy(tiny)[0]
    policy = AugmentPolicy.parse(POLICY)
    whole = augment_batch(fastcnn, x, policy, seed=4, epoch=1, index=np.arange(len(x)))
    assert not np.array_equal(whole, x)
    order = np.random.default_rng(1).permutation(len(x))
    for size in (1, 5, 16):
        for start in range(0, len(x), size):
            index = order[start:start + size]
            assert np.array_equal(augment_batch(fastcnn, x[index], policy, seed=4, epoch=1, index=index), whole[index])
    assert whole.min() >= 0.0 and whole.max() <= 1.0  # brightness and contrast are clipped to [0, 1]


@needs_op
def test_fit_with_augment_is_bit_identical_across_resume_and_thread_counts(tiny, tmp_path):
    x, y, _, _ = _xy(tiny)
    before = fastcnn.get_num_threads()
    try:
        set_threads(1)
        straight, _ = _fit(x, y, 2, augment=POLICY)
        set_threads(2)
        _fit(x, y, 1, augment=POLICY, checkpoint_dir=tmp_path)
        resumed, history = _fit(x, y, 2, augment=POLICY, checkpoint_dir=tmp_path, resume=True)
    finally:
        set_threads(before)
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    a, b = _weights(straight), _weights(resumed)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    plain, _ = _fit(x, y, 2)
    assert any(not np.array_equal(a[k], v) for k, v in _weights(plain).items())  # augmentation did something


@needs_op
def test_resume_with_another_augmentation_is_refused(tiny, tmp_path):
    x, y, _, _ = _xy(tiny)
    _fit(x, y, 1, augment="hflip", checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="augment='hflip' there, 'vflip' here"):
        _fit(x, y, 2, augment="vflip", checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="augment='hflip' there, None here"):
        _fit(x, y, 2, checkpoint_dir=tmp_path, resume=True)


@needs_op
def test_evaluation_is_never_augmented(tiny):
    x, y, x_test, y_test = _xy(tiny)
    model, history = _fit(x, y, 1, augment=POLICY, validation_data=(x_test, y_test))
    scores = evaluate(model, x_test, y_test)
    assert history.epochs[-1]["val_loss"] == scores["loss"]
    assert history.epochs[-1]["val_accuracy"] == scores["accuracy"]
    # and evaluate itself equals the plain forward pass on the unchanged images
    logits = model.forward(x_test, training=False)
    assert scores["accuracy"] == np.mean(np.argmax(logits, axis=1) == y_test)


def test_fit_refuses_a_bad_description_before_training(tiny):
    x, y, _, _ = _xy(tiny)
    model = Model(SPEC, (1, 12, 12), engine="fastcnn", seed=1)
    before = _weights(model)
    with pytest.raises(AugmentError, match="unknown name 'spin'"):
        fit(model, x, y, epochs=1, verbose=0, augment="spin=3")
    assert all(np.array_equal(before[k], v) for k, v in _weights(model).items())


def _cnn(*args):
    return CliRunner().invoke(CNN, [str(a) for a in args])


def test_cnn_train_refuses_a_bad_augment_in_one_line(tiny, tmp_path):
    result = _cnn("train", "--model", SPEC, "--data", tiny, "--epochs", 1, "--out", tmp_path / "r",
                  "--augment", "rotation=10, flip")
    assert_one_line_error(result, 2, "--augment: unknown name 'flip'", "rotation, shift", "hflip, vflip")
    assert not (tmp_path / "r").exists()


@needs_op
def test_cnn_train_records_augment_and_resume_honours_it(tiny, tmp_path):
    out = tmp_path / "run"
    common = ("--model", SPEC, "--data", tiny, "--batch-size", 16, "--engine", "fastcnn", "--out", out)
    result = _cnn("train", *common, "--epochs", 1, "--augment", "hflip,rotation=10")
    assert result.exit_code == 0, result.output
    assert "augment: rotation=10, hflip (training batches only)" in result.stdout
    assert json.loads((out / "run.json").read_text())["options"]["augment"] == "rotation=10, hflip"
    result = _cnn("train", "--out", out, "--resume", "--epochs", 2, "--engine", "fastcnn")
    assert result.exit_code == 0, result.output
    _, document = load_archive(out / "checkpoint.npz")
    assert document["training"]["settings"]["augment"] == "rotation=10, hflip"
    refused = _cnn("train", "--out", out, "--resume", "--epochs", 3, "--augment", "vflip", "--engine", "fastcnn")
    assert_one_line_error(refused, 2, "--augment (rotation=10, hflip there, vflip here)")


@needs_op
def test_cnn_augment_writes_a_png_grid_atomically(tiny, tmp_path):
    out = tmp_path / "grid.png"
    result = _cnn("augment", "--data", tiny, "--augment", POLICY, "--out", out, "--images", 3, "--variants", 4)
    assert result.exit_code == 0, result.output
    assert "3 images" in result.stdout and "4 augmented variants" in result.stdout
    width, height = _read_png_size(out)
    assert width > 3 * height / 3 and height > 100   # 5 columns, 3 rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]  # no temporary file left behind
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.05


@pytest.mark.parametrize("args, fragments", [
    (("--augment", "none"), ("--augment none changes nothing",)),
    (("--augment", "hflip", "--out", "grid.jpg"), ("ending in .png",)),
    (("--augment", "zoom=2"), ("zoom takes a fraction in [0, 1)",)),
])
def test_cnn_augment_usage_errors(tiny, tmp_path, args, fragments):
    if "--out" not in args:
        args = args + ("--out", tmp_path / "g.png")
    result = _cnn("augment", "--data", tiny, *args)
    assert_one_line_error(result, 2, *fragments)
    assert not (tmp_path / "g.png").exists()


def test_both_engines_augment_a_batch_alike(tiny):
    import refcnn

    x = _xy(tiny)[0][:3].astype(np.float64)
    policy = AugmentPolicy.parse(POLICY + ", fill=reflect")
    fast = augment_batch(fastcnn, x, policy, seed=2, epoch=5, index=np.array([4, 0, 9]))
    ref = augment_batch(refcnn, x, policy, seed=2, epoch=5, index=np.array([4, 0, 9]))
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


def test_bench_train_has_an_augmented_row_and_says_torchvision_is_skipped():
    result = _cnn("bench", "train", "--batches", 2, "--warmup", 1, "--batch-size", 8, "--threads", 1,
                  "--data", "fashion-mnist-small", "--augment", "rotation=10, hflip, erase=0.5", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    fast = document["rows"][0]
    assert fast["engine"] == "fastcnn" and fast["augment"] == "rotation=10, hflip, erase=0.5"
    assert fast["train_augmented_images_per_s"] > 0 and fast["augment_ms_per_batch"] > 0
    assert 0 < fast["augment_share_of_step"]
    notes = " ".join(document["notes"])
    assert "of a training step without it" in notes
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert "torchvision is not installed" in notes and "skipped" in notes
    assert "fastcnn + augment" in render_train(document)


def test_bench_train_refuses_a_bad_augment():
    result = _cnn("bench", "train", "--data", "fashion-mnist-small", "--augment", "spin=3")
    assert result.exit_code == 2 and "unknown name 'spin'" in result.output


def test_a_profiled_fit_times_the_augmentation_and_trains_the_same(tiny):
    from cnn import profiling
    from cnn.optimizers import Optimizer
    from cnn.train import AUGMENT_ROW

    x, y, _, _ = _xy(tiny)
    plain, _ = _fit(x, y, 1, augment=POLICY, optimizer=Optimizer("adam", 1e-3))
    model = Model(SPEC, (1, 12, 12), engine="fastcnn", seed=1)
    optimizer, profile = Optimizer("adam", 1e-3), profiling.LayerProfile()
    with profile.attached(model, optimizer):
        fit(model, x, y, epochs=1, batch_size=16, optimizer=optimizer, verbose=0, augment=POLICY, profile=profile)
    a, b = _weights(plain), _weights(model)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    rows = {row["layer"]: row for row in profile.rows()}
    assert rows[AUGMENT_ROW]["other_s"] > 0 and profile.steps == 3
