"""fastcnn dropout against refcnn (the oracle), PyTorch's semantics, the spec's cases and its errors.

Tolerance: none. The mask is integer arithmetic and must be bit-identical to refcnn's; each output is
``x_i * (m_i * s)`` formed in float64 and rounded once, so a float64 result equals refcnn's exactly and a
float32 (float16) result equals refcnn's float64 result rounded to float32 (float16). The shared helpers live
in tests/fastcheck.py; the spec's conformance cases run in tests/test_fast_conformance.py.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import fastcnn
import refcnn
from cnnconform import strategies
from fastcheck import assert_bit_identical, assert_same_api, raised, results_per_thread_count

DTYPES = (np.float64, np.float32, np.float16)


# ------------------------------------------------------------------------------------------------ strategies

shapes = array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
probabilities = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))
seeds = st.one_of(st.integers(-(2 ** 70), 2 ** 70), st.integers(0, 1000))


def dropout_calls(dtypes=DTYPES):
    """(x, grad_out, p, training, seed) of a valid dropout_backward call (cnnconform.strategies), the arrays
    in one of ``dtypes``."""
    calls = strategies.calls("dropout_backward", shapes=shapes, probabilities=probabilities, seeds=seeds)
    return st.tuples(calls, st.sampled_from(dtypes)).map(_as_dropout_call)


def _as_dropout_call(call_and_dtype):
    call, dtype = call_and_dtype
    (g, x), kwargs = call.args, call.kwargs
    return x.astype(dtype), g.astype(dtype), kwargs["p"], kwargs["training"], kwargs["seed"]


def as_dtype_of(reference: np.ndarray, x: np.ndarray) -> np.ndarray:
    """refcnn's float64 result rounded to ``x``'s dtype: what fastcnn must return exactly."""
    return reference.astype(x.dtype)


# ---------------------------------------------------------------------------------------- agreement with refcnn

def test_api_mirrors_refcnn():
    assert_same_api(importlib.import_module("fastcnn.dropout"), importlib.import_module("refcnn.dropout"))



@settings(max_examples=30)
@given(strategies.calls("dropout_mask", shapes=shapes, probabilities=probabilities, seeds=seeds))
def test_mask_is_bit_identical_to_refcnn(call):
    shape, p, seed = call.args
    got, expected = fastcnn.dropout_mask(shape, p, seed), refcnn.dropout_mask(shape, p, seed)
    assert got.dtype == np.float64 and got.shape == expected.shape
    assert np.array_equal(got, expected), f"shape={shape} p={p} seed={seed}"


@settings(max_examples=30)
@given(dropout_calls())
def test_forward_and_backward_equal_refcnn(call):
    x, g, p, training, seed = call
    y = fastcnn.dropout(x, p, training, seed=seed)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert np.array_equal(y, as_dtype_of(refcnn.dropout(x, p, training, seed=seed), x), equal_nan=True)
    grad = fastcnn.dropout_backward(g, x, p, training, seed=seed)
    assert grad.dtype == x.dtype
    assert np.array_equal(grad, as_dtype_of(refcnn.dropout_backward(g, x, p, training, seed=seed), x))


@settings(max_examples=20)
@given(dropout_calls())
def test_inplace_writes_x_and_returns_it(call):
    x, _, p, training, seed = call
    expected = as_dtype_of(refcnn.dropout(x.copy(), p, training, seed=seed), x)
    y = fastcnn.dropout(x, p, training, True, seed=seed)
    assert y is x
    assert np.array_equal(x, expected)


def test_float16_is_rounded_once_as_refcnn_s_result():
    # Hypothesis found it: 4.133 * 10 stored in float32 and then in float16 ties the second rounding the
    # other way (41.3125) than refcnn's float64 result rounded once to float16 (41.34375).
    x = np.array([0, 0, 0, 4.133], dtype=np.float16)
    expected = refcnn.dropout(x.astype(np.float64), 0.9, seed=0).astype(np.float16)
    assert expected[3] != 0  # the seed keeps the element that ties
    assert np.array_equal(fastcnn.dropout(x, 0.9, seed=0), expected)
    assert np.array_equal(fastcnn.dropout(x.copy(), 0.9, True, True, seed=0), expected)
    assert np.array_equal(fastcnn.dropout_backward(x, x, 0.9, seed=0), expected)


def test_inplace_on_a_non_contiguous_view_writes_through():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    view = base[:, ::2]
    expected = refcnn.dropout(view.copy(), 0.5, seed=3).astype(np.float32)
    assert fastcnn.dropout(view, 0.5, True, True, seed=3) is view
    assert np.array_equal(base[:, ::2], expected)
    assert np.array_equal(base[:, 1::2], np.arange(24, dtype=np.float32).reshape(4, 6)[:, 1::2])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # refcnn's inf * 0
def test_nan_inf_and_signed_zero_follow_refcnn():
    x = np.array([np.nan, np.inf, -np.inf, -1.0, -0.0, 2.0] * 4)
    for p in (0.0, 0.5, 1.0):
        got, expected = fastcnn.dropout(x, p, seed=5), refcnn.dropout(x, p, seed=5)
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(expected))


def test_backward_does_not_write():
    x, g = np.ones((3, 4)), np.full((3, 4), 2.0)
    fastcnn.dropout_backward(g, x, 0.5, True, True, seed=1)
    assert np.all(x == 1.0) and np.all(g == 2.0)


def test_mixed_dtypes_promote_like_numpy():
    x, g = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
    assert fastcnn.dropout_backward(g, x, 0.5, seed=1).dtype == np.float64
    assert fastcnn.dropout_backward(g.astype(np.float16), x, 0.5, seed=1).dtype == np.float32


# -------------------------------------------------------------------------------------------- errors

invalid_arguments = st.sampled_from([
    dict(p=-0.1), dict(p=1.5), dict(p=float("nan")), dict(p="0.5"), dict(p=None),
    dict(seed=1.0), dict(seed=True), dict(seed="7"),
    dict(training=1), dict(training=None), dict(inplace="yes"),
    dict(x=[1.0, 2.0]), dict(x=np.arange(4)), dict(x=np.ones(3, dtype=bool)),
    dict(grad_out=np.ones(5)), dict(grad_out=np.ones(4, dtype=np.int32)), dict(grad_out=3.0),
])


@settings(max_examples=80)  # cheap: no kernel runs
@given(bad=invalid_arguments, backward=st.booleans())
def test_invalid_arguments_raise_the_same_error_as_refcnn(bad, backward):
    call = dict(x=np.ones(4), grad_out=np.ones(4), p=0.5, training=True, inplace=False, seed=0)
    call.update(bad)
    grad_out = call.pop("grad_out")
    if not backward and "grad_out" in bad:
        return
    name = "dropout_backward" if backward else "dropout"
    args = ((grad_out,) if backward else ()) + (call.pop("x"),)
    expected = raised(getattr(refcnn, name), *args, **call)
    assert expected is not None, f"refcnn accepted {bad}"
    assert raised(getattr(fastcnn, name), *args, **call) == expected


@pytest.mark.parametrize("shape", [-1, (2, -3), (2.0,), "4", None, (True, 2)])
def test_invalid_mask_shapes_raise_the_same_error_as_refcnn(shape):
    expected = raised(refcnn.dropout_mask, shape, 0.5, 0)
    assert expected is not None
    assert raised(fastcnn.dropout_mask, shape, 0.5, 0) == expected


# ---------------------------------------------------------------------------------- threads, torch

def test_results_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(0).standard_normal((3, 5, 70, 71)).astype(np.float32)  # several blocks
    assert_bit_identical(results_per_thread_count(
        lambda: (fastcnn.dropout(x, 0.3, seed=9), fastcnn.dropout_mask(x.shape, 0.3, 9))))


def test_scaling_and_special_cases_agree_with_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
    for p in (0.2, 0.5, 0.9):  # masks differ by design; the kept values and their scale must agree
        ours = fastcnn.dropout(x, p, seed=4)
        theirs = F.dropout(torch.from_numpy(x), p, True).numpy()
        for y in (ours, theirs):
            kept = y != 0
            assert np.allclose(y[kept], x[kept] / np.float32(1 - p), rtol=1e-6, atol=0)
            assert abs(kept.mean() - (1 - p)) < 0.05
    for p, training in ((0.0, True), (1.0, True), (0.5, False)):
        ours = fastcnn.dropout(x, p, training, seed=4)
        theirs = F.dropout(torch.from_numpy(x), p, training).numpy()
        assert np.array_equal(ours, theirs)
        assert np.array_equal(np.signbit(ours), np.signbit(theirs))
