"""refcnn.pool: gradient checks, PyTorch agreement, ties, NaN, the geometry and the errors (specs/pool.md)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refcnn import pool
from cnnbase.pool import pool_geometry
from cnnbase.shapes import ShapeError, first_empty_window, kernel_extent
from tests.gradcheck import assert_close, check_backward

FORWARDS = [name for name in pool.__all__ if not name.endswith("_backward")]


def distinct(shape, seed=0):
    """Distinct values 0.5 apart in random order: no ties, so finite differences never move the argmax."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size // 2) * 0.5).reshape(shape)


# ---------------------------------------------------------------------------------------------------------
# The public surface
# ---------------------------------------------------------------------------------------------------------


def test_all_lists_every_forward_with_its_backward():
    assert set(FORWARDS) == {
        "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
        "global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d", "global_max_pool2d",
    }
    assert sorted(pool.__all__) == sorted(FORWARDS + [f"{name}_backward" for name in FORWARDS])


@pytest.mark.parametrize("name", FORWARDS)
def test_backward_takes_grad_out_then_exactly_the_forward_arguments(name):
    forward = inspect.signature(getattr(pool, name)).parameters
    backward = inspect.signature(getattr(pool, f"{name}_backward")).parameters
    assert list(backward)[0] == "grad_out"
    assert [(p.name, p.default) for p in list(backward.values())[1:]] == [(p.name, p.default) for p in forward.values()]


@pytest.mark.parametrize("name", FORWARDS)
def test_docstring_opens_with_an_equation_and_states_shapes(name):
    doc = getattr(pool, name).__doc__
    summary_and_equation = " ".join(doc.split("\n\n")[:2])
    assert " = " in summary_and_equation, doc
    assert "Shapes:" in doc and "->" in doc, doc


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_any_float_dtype_in_float64_out(dtype):
    x = distinct((1, 1, 4, 4)).astype(dtype)
    for fn in (pool.max_pool2d, pool.avg_pool2d):
        out = fn(x, 2)
        assert out.dtype == np.float64
        assert_close(out, fn(x.astype(np.float64), 2), atol=0, rtol=0, what=fn.__name__)


def test_spec_lists_every_conformance_case():
    specs = Path(__file__).resolve().parent.parent / "specs"
    text = (specs / "pool.md").read_text()
    cases = json.loads((specs / "cases" / "pool.json").read_text())["cases"]
    missing = [c["name"] for c in cases if c["name"].split("/", 1)[1] not in text]
    assert not missing, f"specs/pool.md does not list {missing}"


def test_seed_example_keeps_25_percent():
    x = np.array([[[[1, 3, 2, 1], [4, 2, 0, 1], [5, 1, 3, 8], [2, 6, 7, 4]]]], dtype=float)
    out, indices = pool.max_pool2d(x, 2, return_indices=True)
    assert out.tolist() == [[[[4, 2], [6, 8]]]]
    assert indices.dtype == np.int64 and indices.tolist() == [[[[4, 2], [13, 11]]]]
    assert out.size / x.size == 0.25


def test_one_d_is_two_d_of_height_one():
    x = distinct((2, 3, 7), seed=1)
    x2 = x[:, :, None, :]
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    max2d = pool.max_pool2d(x2, (1, 3), (1, 2), (0, 1), (1, 2), True)
    avg2d = pool.avg_pool2d(x2, (1, 3), (1, 2), (0, 1), True, False)
    assert_close(pool.max_pool1d(x, dilation=2, **kw), max2d[:, :, 0], atol=0, rtol=0, what="max")
    assert_close(pool.avg_pool1d(x, count_include_pad=False, **kw), avg2d[:, :, 0], atol=0, rtol=0, what="avg")


def test_global_pools_are_whole_map_windows():
    x = distinct((2, 2, 3, 4), seed=2)
    assert_close(pool.global_avg_pool2d(x), x.mean(axis=(2, 3), keepdims=True), atol=1e-12, rtol=0, what="avg2d")
    assert_close(pool.global_max_pool2d(x), x.max(axis=(2, 3), keepdims=True), atol=0, rtol=0, what="max2d")
    x1 = x[:, :, 0, :]
    assert pool.global_avg_pool1d(x1).shape == (2, 2, 1)
    assert_close(pool.global_max_pool1d(x1), x1.max(axis=2, keepdims=True), atol=0, rtol=0, what="max1d")


# ---------------------------------------------------------------------------------------------------------
# Ties, NaN, padding semantics
# ---------------------------------------------------------------------------------------------------------


def test_tie_goes_to_first_max_in_row_major_order():
    x = np.array([[[[1, 2], [2, 2]]]], dtype=float)
    _, indices = pool.max_pool2d(x, 2, return_indices=True)
    assert indices.item() == 1
    assert pool.max_pool2d_backward(np.array([[[[7.0]]]]), x, 2).tolist() == [[[[0, 7], [0, 0]]]]


def test_constant_map_every_window_picks_its_first_cell():
    x = np.zeros((1, 1, 4, 4))
    _, indices = pool.max_pool2d(x, 2, stride=1, return_indices=True)
    assert indices[0, 0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]


def test_overlapping_windows_add_their_gradients():
    x = np.array([[[0.0, 9.0, 0.0, 0.0]]])
    grad = pool.max_pool1d_backward(np.array([[[1.0, 2.0, 4.0]]]), x, 2, stride=1)
    assert grad.tolist() == [[[0.0, 3.0, 4.0, 0.0]]]


def test_nan_propagates_and_reports_the_last_nan():
    nan = np.nan
    x = np.array([[[1.0, nan, 5.0, nan, 2.0]]])
    out, indices = pool.max_pool1d(x, 5, return_indices=True)
    assert np.isnan(out.item()) and indices.item() == 3
    assert pool.max_pool1d_backward(np.ones((1, 1, 1)), x, 5).tolist() == [[[0, 0, 0, 1, 0]]]


def test_padding_never_wins_a_max():
    x = np.full((1, 1, 2, 2), -5.0)
    assert pool.max_pool2d(x, 2, stride=1, padding=1).tolist() == [[[[-5.0] * 3] * 3]]


def test_avg_divisor_counts_padded_extent_not_ceil_overhang():
    x = np.arange(1.0, 7.0).reshape(1, 1, 6)
    assert pool.avg_pool1d(x, 3, 2, 1, ceil_mode=True).tolist() == [[[1.0, 3.0, 5.0, 3.0]]]
    assert pool.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).tolist() == [[[1.5, 3.0, 5.0, 6.0]]]


def test_avg_empty_window_with_count_include_pad_is_zero():
    out = pool.avg_pool2d(np.ones((1, 1, 2, 2)), 2, padding=2)
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_padding_larger_than_half_the_kernel_is_allowed_when_no_window_is_empty():
    assert pool.max_pool1d(np.array([[[3.0, 1.0, 2.0]]]), 3, 1, 2).tolist() == [[[3, 3, 3, 2, 2]]]


# ---------------------------------------------------------------------------------------------------------
# The geometry shared with fastcnn
# ---------------------------------------------------------------------------------------------------------


def test_pool_geometry_resolves_every_hyperparameter():
    g = pool_geometry("max_pool2d", (2, 3, 5, 6), (2, 3), None, "same", 1, False, 2)
    assert (g.batch, g.channels, g.sizes, g.kernel, g.stride, g.dilation) == (2, 3, (5, 6), (2, 3), (2, 3), (1, 1))
    assert g.pads == ((0, 1), (0, 0)) and g.out_sizes == (3, 2) and g.out_shape == (2, 3, 3, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.batch = 4


def test_pool_geometry_lifts_one_d_to_two_d():
    g = pool_geometry("avg_pool1d", (1, 1, 7), 3, 2, ((1, 0),), 1, True, 1, kind="avg", count_include_pad=False)
    g2 = g.as_2d()
    assert g2.sizes == (1, 7) and g2.kernel == (1, 3) and g2.pads == ((0, 0), (1, 0))
    assert g2.out_sizes == (1, g.out_sizes[0])
    assert g2.count_include_pad is False


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------

X4 = distinct((1, 1, 4, 4))


@pytest.mark.parametrize(
    "fn, kwargs, error, words",
    [
        (pool.max_pool2d, dict(kernel_size=0), ValueError, ["max_pool2d", "`kernel_size`", "kernel_size=0"]),
        (pool.max_pool2d, dict(kernel_size=(2, 2, 2)), ValueError, ["`kernel_size`"]),
        (pool.max_pool2d, dict(kernel_size=2.0), TypeError, ["`kernel_size`"]),
        (pool.max_pool2d, dict(kernel_size=2, stride=0), ValueError, ["`stride`", "stride=0"]),
        (pool.max_pool2d, dict(kernel_size=2, dilation=0), ValueError, ["`dilation`"]),
        (pool.max_pool2d, dict(kernel_size=2, padding=-1), ValueError, ["`padding`"]),
        (pool.max_pool2d, dict(kernel_size=2, padding="full"), ValueError, ["`padding`", "'full'"]),
        (pool.max_pool2d, dict(kernel_size=2, ceil_mode=1), TypeError, ["`ceil_mode`"]),
        (pool.max_pool2d, dict(kernel_size=2, return_indices="yes"), TypeError, ["`return_indices`"]),
        (pool.avg_pool2d, dict(kernel_size=2, count_include_pad=None), TypeError, ["`count_include_pad`"]),
        (pool.avg_pool2d, dict(kernel_size=2, divisor_override=0), ValueError, ["`divisor_override`"]),
        (pool.avg_pool2d, dict(kernel_size=2, divisor_override=1.5), TypeError, ["`divisor_override`"]),
        (pool.max_pool2d, dict(kernel_size=5), ShapeError, ["max_pool2d", "axis H", "(1, 1, 4, 4)", "less than 1"]),
        (pool.max_pool2d, dict(kernel_size=2, padding=3), ShapeError,
         ["max_pool2d", "window 0", "axis H", "covers only padding", "[-3, -2]", "(1, 1, 4, 4)"]),
        (pool.avg_pool2d, dict(kernel_size=2, padding=((0, 0), (0, 4)), stride=1, count_include_pad=False), ShapeError,
         ["avg_pool2d", "window 4", "axis W", "covers only padding"]),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(fn, kwargs, error, words):
    with pytest.raises(error) as info:
        fn(X4, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_dilated_empty_window_is_rejected_for_max_but_avg_has_no_dilation():
    with pytest.raises(ShapeError, match="window 1 along axis L covers only padding"):
        pool.max_pool1d(np.array([[[1.0, 2.0]]]), 2, stride=1, padding=2, dilation=3)


@pytest.mark.parametrize("fn", [pool.max_pool2d, pool.avg_pool2d])
def test_bad_inputs(fn):
    with pytest.raises(TypeError, match="numpy.ndarray"):
        fn([[[[1.0]]]], 1)
    with pytest.raises(TypeError, match="dtype int64"):
        fn(np.zeros((1, 1, 2, 2), dtype=np.int64), 1)
    with pytest.raises(ValueError, match=r"4 dimensions \(N, C, H, W\); received shape \(2, 2\)"):
        fn(np.zeros((2, 2)), 1)
    with pytest.raises(ShapeError, match="at least 1 cell"):
        fn(np.zeros((1, 1, 0, 2)), 1)


def test_global_pool_errors_name_the_global_op():
    with pytest.raises(ValueError, match="global_max_pool1d: argument `x` must have 3 dimensions"):
        pool.global_max_pool1d(X4)
    with pytest.raises(TypeError, match="global_avg_pool2d"):
        pool.global_avg_pool2d(np.zeros((1, 1, 2, 2), dtype=np.int32))


def test_backward_checks_grad_out_shape():
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: argument `grad_out` must have shape \(1, 1, 2, 2\)"):
        pool.avg_pool2d_backward(np.ones((1, 1, 3, 3)), X4, 2)
    with pytest.raises(TypeError, match="grad_out"):
        pool.max_pool2d_backward(np.ones((1, 1, 2, 2), dtype=np.int64), X4, 2)


# ---------------------------------------------------------------------------------------------------------
# Finite-difference gradient checks
# ---------------------------------------------------------------------------------------------------------

GRAD_CASES = [
    ("max_pool2d", (1, 2, 4, 5), dict(kernel_size=2)),
    ("max_pool2d", (1, 1, 5, 4), dict(kernel_size=3, stride=1, padding=1)),
    ("max_pool2d", (1, 1, 5, 5), dict(kernel_size=2, stride=1, padding=1, dilation=2)),
    ("max_pool2d", (1, 1, 4, 5), dict(kernel_size=(2, 3), stride=(1, 2), padding=((1, 0), (0, 1)))),
    ("max_pool2d", (1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", (1, 1, 4, 4), dict(kernel_size=3, stride=2, padding="same_lower")),
    ("max_pool1d", (2, 1, 6), dict(kernel_size=3, stride=1, padding=2)),
    ("max_pool1d", (1, 2, 7), dict(kernel_size=2, stride=3, dilation=2, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 4, 4), dict(kernel_size=2)),
    ("avg_pool2d", (1, 1, 5, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", (1, 1, 5, 5), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", (1, 1, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", (1, 1, 3, 4), dict(kernel_size=2, stride=1, padding=((0, 1), (1, 0)), divisor_override=3)),
    ("avg_pool2d", (1, 1, 2, 2), dict(kernel_size=2, padding=2)),
    ("avg_pool1d", (2, 1, 6), dict(kernel_size=3, stride=2, padding="same")),
    ("avg_pool1d", (1, 2, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("global_avg_pool2d", (2, 2, 2, 3), {}),
    ("global_max_pool2d", (2, 2, 2, 3), {}),
    ("global_avg_pool1d", (2, 2, 4), {}),
    ("global_max_pool1d", (2, 2, 4), {}),
]


@pytest.mark.parametrize("name, shape, kwargs", GRAD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_backward_matches_finite_differences(name, shape, kwargs):
    check_backward(getattr(pool, name), getattr(pool, f"{name}_backward"), [distinct(shape, seed=len(kwargs))], [0],
                   kwargs=kwargs, what=f"{name}{shape} {kwargs}")


# ---------------------------------------------------------------------------------------------------------
# Agreement with PyTorch (skipped without it)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _axis_size(draw, kernel, dilation, pad):
    """A spatial size with at least one window: n + 2p >= d(k-1) + 1."""
    least = max(1, kernel_extent(kernel, dilation) - 2 * pad)
    return draw(st.integers(least, least + 4))


# Local: padding of at most half the kernel, per axis (what PyTorch's pooling accepts), where the shared
# strategies draw every padding form the spec has.
@st.composite
def torch_pool_setups(draw, kind):
    """Hyperparameters PyTorch accepts (padding at most half the kernel), then sizes valid by construction."""
    rank = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if kind == "max" else (1,) * rank
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    sizes = tuple(_axis_size(draw, k, d, p) for k, d, p in zip(kernel, dilation, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + sizes
    x = draw(arrays(np.float64, shape, elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False)))
    kwargs = dict(kernel_size=kernel, stride=draw(st.sampled_from([None, stride])), padding=padding,
                  ceil_mode=draw(st.booleans()))
    if kind == "max":
        kwargs["dilation"] = dilation
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if rank == 2:
            kwargs["divisor_override"] = draw(st.sampled_from([None, 1, 3]))
    return rank, x, kwargs


def _has_empty_window(x, kwargs):
    rank = x.ndim - 2
    g = pool_geometry("probe", x.shape, kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                      kwargs.get("dilation", 1), kwargs["ceil_mode"], rank, kind="avg")
    return any(first_empty_window(g.sizes[a], g.kernel[a], g.stride[a], g.pads[a][0], g.dilation[a], g.out_sizes[a])
               is not None for a in range(rank))


def _torch_grad(torch, fn, x, grad_out):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    out.backward(torch.tensor(grad_out))
    return xt.grad.numpy()


@settings(max_examples=25)
@given(setup=torch_pool_setups("max"))
def test_max_pool_agrees_with_torch(torch, setup):
    rank, x, kwargs = setup
    F = torch.nn.functional
    ours = getattr(pool, f"max_pool{rank}d")
    theirs = getattr(F, f"max_pool{rank}d")
    if _has_empty_window(x, kwargs):
        # dilation can leave a window on padding only, which PyTorch fills with -inf and this spec refuses
        with pytest.raises(ShapeError, match="covers only padding"):
            ours(x, **kwargs)
        return
    out, indices = ours(x, return_indices=True, **kwargs)
    t_out, t_indices = theirs(torch.tensor(x), return_indices=True, **kwargs)
    assert_close(out, t_out.numpy(), atol=0, rtol=0, what=f"max_pool{rank}d {kwargs}")
    np.testing.assert_array_equal(indices, t_indices.numpy(), err_msg=f"indices, {kwargs}")
    grad_out = np.random.default_rng(0).standard_normal(out.shape)
    assert_close(getattr(pool, f"max_pool{rank}d_backward")(grad_out, x, **kwargs),
                 _torch_grad(torch, lambda v: theirs(v, **kwargs), x, grad_out),
                 atol=1e-12, rtol=1e-12, what=f"max_pool{rank}d_backward {kwargs}")


@settings(max_examples=25)
@given(setup=torch_pool_setups("avg"))
@example(setup=(1, np.arange(1.0, 7.0).reshape(1, 1, 6),  # a ceil-mode window past the end padding
                dict(kernel_size=(3,), stride=(2,), padding=(1,), ceil_mode=True, count_include_pad=True)))
def test_avg_pool_agrees_with_torch(torch, setup):
    rank, x, kwargs = setup
    F = torch.nn.functional
    ours, ours_backward = getattr(pool, f"avg_pool{rank}d"), getattr(pool, f"avg_pool{rank}d_backward")
    theirs = getattr(F, f"avg_pool{rank}d")
    out = ours(x, **kwargs)
    expected = theirs(torch.tensor(x), **kwargs).numpy()
    assert_close(out, expected, atol=1e-12, rtol=1e-12, what=f"avg_pool{rank}d {kwargs}")
    grad_out = np.random.default_rng(0).standard_normal(out.shape)
    expected = _torch_grad(torch, lambda v: theirs(v, **kwargs), x, grad_out)
    assert_close(ours_backward(grad_out, x, **kwargs), expected, atol=1e-12, rtol=1e-12,
                 what=f"avg_pool{rank}d_backward {kwargs}")


@settings(max_examples=15)
@given(x=arrays(np.float64, st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 4), st.integers(1, 4)),
                elements=st.integers(-2, 2).map(float)))
def test_ties_pick_the_same_index_as_torch(torch, x):
    F = torch.nn.functional
    _, indices = pool.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
    _, t_indices = F.max_pool2d(torch.tensor(x), 2, stride=1, padding=1, return_indices=True)
    np.testing.assert_array_equal(indices, t_indices.numpy())
    # the global pool's gradient lands on one cell per plane: the one PyTorch reports
    _, g_indices = F.adaptive_max_pool2d(torch.tensor(x), 1, return_indices=True)
    grad = pool.global_max_pool2d_backward(np.ones(x.shape[:2] + (1, 1)), x)
    flat = grad.reshape(x.shape[0], x.shape[1], -1)
    np.testing.assert_array_equal(np.count_nonzero(flat, axis=2), 1)
    np.testing.assert_array_equal(flat.argmax(axis=2), g_indices.numpy().reshape(x.shape[:2]))


def test_nan_matches_torch(torch):
    nan = np.nan
    x = np.array([[[[1, nan, 3], [nan, 0, 2], [5, 6, 7]]], [[[nan, 1, 1], [2, nan, 9], [0, 0, nan]]]])
    out, indices = pool.max_pool2d(x, 2, stride=1, return_indices=True)
    t_out, t_indices = torch.nn.functional.max_pool2d(torch.tensor(x), 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(indices, t_indices.numpy())
    _, g_indices = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), 1, return_indices=True)
    grad = pool.global_max_pool2d_backward(np.ones((2, 1, 1, 1)), x)
    assert [int(np.flatnonzero(grad[n, 0])[0]) for n in range(2)] == g_indices.numpy().reshape(-1).tolist()
