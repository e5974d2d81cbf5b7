"""fastcnn.activations agrees with refcnn.activations (the oracle), with PyTorch, and raises refcnn's errors.

Tolerances. float64: max abs error <= 1e-12 * max(1, scale), scale = max |refcnn result|. float32: inputs are
rounded to float32 first and refcnn runs on those very values; exp, tanh and the divisions round in float32:
max abs error <= 2e-5 * max(1, scale) * sqrt(L), L the line length for softmax (1 elementwise). The rule and
the shared helpers live in tests/fastcheck.py; the spec's conformance cases run in tests/test_fast_conformance.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from cnnconform import strategies
from fastcheck import assert_agrees, assert_bit_identical, assert_same_api, outcome, results_per_thread_count
from fastcnn import activations as fast
from refcnn import activations as ref

ELEMENTWISE = {"relu": {}, "leaky_relu": {"negative_slope": None}, "elu": {"alpha": None}, "sigmoid": {},
               "tanh": {}}
LINEWISE = ["softmax", "log_softmax"]

# Kinks (0), both signs, and values large enough to saturate sigmoid/tanh and exercise the exp branches.
VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0]) | st.floats(-30, 30, allow_nan=False, width=32)
SHAPES = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)  # empty and 0-d inputs too


def activation_calls(names, elements):
    """``(name, x, kwargs)`` of a valid call of one of ``names`` (cnnconform.strategies), negative_slope and
    alpha over [-3, 3]."""
    parameters = st.floats(-3, 3, allow_nan=False, width=32)
    return st.sampled_from(names).flatmap(
        lambda name: strategies.activation_calls(name, shapes=SHAPES, elements=elements, parameters=parameters)
    ).map(lambda call: (call.op, call.args[0], call.kwargs))


def elementwise_calls():
    return activation_calls(sorted(ELEMENTWISE), VALUES)


def linewise_calls():
    return activation_calls(LINEWISE, st.floats(-50, 50, allow_nan=False, width=32))


def _check_agreement(name, x, kwargs, dtype, reduction):
    x = x.astype(dtype)
    g = np.random.default_rng(0).uniform(-2, 2, x.shape).astype(dtype)
    y = getattr(fast, name)(x, **kwargs)
    assert y.dtype == dtype and y.shape == x.shape
    assert_agrees(y, getattr(ref, name)(x, **kwargs), dtype=dtype, reduction=reduction, what=f"{name} {kwargs}")
    grad = getattr(fast, f"{name}_backward")(g, x, **kwargs)
    assert grad.dtype == dtype
    assert_agrees(grad, getattr(ref, f"{name}_backward")(g, x, **kwargs), dtype=dtype, reduction=reduction,
                  what=f"{name}_backward {kwargs}")


def test_same_names_and_signatures_as_refcnn():
    assert_same_api(fast, ref)


@settings(max_examples=30)
@given(call=elementwise_calls(), dtype=st.sampled_from([np.float64, np.float32]))
def test_elementwise_forward_and_backward_agree(call, dtype):
    name, x, kwargs = call
    _check_agreement(name, x, kwargs, dtype, 1)


@settings(max_examples=30)
@given(call=linewise_calls(), dtype=st.sampled_from([np.float64, np.float32]))
def test_softmax_forward_and_backward_agree_along_any_dim(call, dtype):
    name, x, kwargs = call
    length = x.shape[kwargs["dim"]] if x.ndim else 1
    _check_agreement(name, x, kwargs, dtype, max(length, 1))


def test_special_values_propagate_as_in_refcnn():
    nan, inf = np.nan, np.inf
    x = np.array([[nan, 0.0, 1.0], [inf, 0.0, -1.0], [-inf, -inf, -inf], [-inf, 0.0, 2.0], [0.0, -0.0, 3.0]])
    g = np.array([[1.0, nan, inf], [2.0, -inf, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [nan, 1.0, 1.0]])
    for name in [*ELEMENTWISE, *LINEWISE]:
        for dim_kwargs in ([{}] if name in ELEMENTWISE else [{"dim": 0}, {"dim": 1}]):
            with np.errstate(all="ignore"):
                assert_agrees(getattr(fast, name)(x, **dim_kwargs), getattr(ref, name)(x, **dim_kwargs), what=name)
                assert_agrees(getattr(fast, f"{name}_backward")(g, x, **dim_kwargs),
                              getattr(ref, f"{name}_backward")(g, x, **dim_kwargs), what=f"{name}_backward")


@st.composite
def invalid_calls(draw):  # local: one bad argument each, where the shared strategies draw valid calls only
    name = draw(st.sampled_from(sorted(ELEMENTWISE) + LINEWISE))
    x = np.ones((2, 3))
    kwargs = {}
    bad = draw(st.sampled_from(["x", "param", "grad_out"]))
    if bad == "x":
        x = draw(st.sampled_from([x.astype(np.int32), x.tolist(), "x", None]))
    elif bad == "param":
        if name in LINEWISE:
            kwargs["dim"] = draw(st.sampled_from([2, -3, 1.0, None]))
        elif ELEMENTWISE[name]:
            kwargs[next(iter(ELEMENTWISE[name]))] = draw(st.sampled_from([np.nan, "a", None, True]))
        else:
            x = np.ones((2, 3), dtype=np.int8)
    return name, x, kwargs, bad == "grad_out"


@settings(max_examples=40)
@given(call=invalid_calls(), grad_shape=st.sampled_from([(3,), (2, 3, 1), (3, 2)]))
def test_invalid_arguments_raise_refcnn_errors(call, grad_shape):
    name, x, kwargs, bad_grad = call
    calls = [(name, (x,)), (f"{name}_backward", (np.ones(grad_shape) if bad_grad else np.ones((2, 3)), x))]
    if bad_grad:
        calls = calls[1:]
    for fn_name, args in calls:
        r_kind, r_exc = outcome(getattr(ref, fn_name), *args, **kwargs)
        f_kind, f_exc = outcome(getattr(fast, fn_name), *args, **kwargs)
        assert r_kind == f_kind == "error", (fn_name, kwargs, r_exc, f_exc)
        assert type(f_exc) is type(r_exc) and str(f_exc) == str(r_exc)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", [*ELEMENTWISE, *LINEWISE])
def test_returns_the_input_dtype(dtype, name):
    x = np.linspace(-2, 2, 12).reshape(3, 4).astype(dtype)
    assert getattr(fast, name)(x).dtype == dtype
    assert getattr(fast, f"{name}_backward")(np.ones_like(x), x).dtype == dtype
    assert getattr(fast, name)(np.full((), 0.5, dtype)).shape == ()


def test_bit_identical_with_one_and_two_threads():
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, (64, 33, 17)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        results = []
        for name in [*ELEMENTWISE, *LINEWISE]:
            for kwargs in ([{}] if name in ELEMENTWISE else [{"dim": 1}, {"dim": -1}]):
                results.append(getattr(fast, name)(x, **kwargs))
                results.append(getattr(fast, f"{name}_backward")(g, x, **kwargs))
        return results

    assert_bit_identical(results_per_thread_count(run))


@settings(max_examples=20)
@given(call=elementwise_calls() | linewise_calls())
def test_agrees_with_torch(call):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    name, x, kwargs = call
    xt = torch.tensor(x, requires_grad=True)
    t_fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(name) or getattr(F, name)
    t_y = t_fn(xt, **kwargs)
    assert_agrees(getattr(fast, name)(x, **kwargs), t_y.detach().numpy(), what=f"{name} vs torch")
    g = np.random.default_rng(1).uniform(-2, 2, x.shape)
    t_y.backward(torch.tensor(g))
    assert_agrees(getattr(fast, f"{name}_backward")(g, x, **kwargs), xt.grad.numpy(), what=f"{name}_backward vs torch")


# ------------------------------------------------------------------------------------------------ add_relu


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float16),
                                    (np.float32, np.float64)])
def test_add_relu_is_numpys_sum_then_relu_bit_for_bit(dtypes):
    """fastcnn.add_relu (fused, fastcnn only): NumPy's ``a + b`` (its rounding and dtype promotion) then
    fastcnn.relu, byte for byte: sums of exactly 0 from both signs, -0.0 + -0.0, NaN, infinities, inf - inf."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 5, 7, 11))
    b = rng.standard_normal(a.shape)
    b.flat[:4] = -a.flat[:4]  # exact zeros
    a.flat[4], b.flat[4] = -0.0, -0.0
    a.flat[5], a.flat[6], b.flat[7] = np.nan, np.inf, -np.inf
    a.flat[8], b.flat[8] = np.inf, -np.inf
    a, b = a.astype(dtypes[0]), b.astype(dtypes[1])
    with np.errstate(invalid="ignore"):
        want = fast.relu(a + b)
        got = fast.add_relu(a, b)
    assert_bit_identical([[got], [want]])
    assert got.dtype == want.dtype


def test_add_relu_shapes_and_refusals():
    for shape in ((), (0, 3), (70001,)):  # 0-d, empty, and past the serial threshold
        a, b = np.full(shape, -1.5, np.float32), np.full(shape, 2.0, np.float32)
        assert_bit_identical([[fast.add_relu(a, b)], [fast.relu(np.asarray(a + b))]])
    with pytest.raises(ValueError, match=r"add_relu: .*`b`"):
        fast.add_relu(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"add_relu: .*`a`"):
        fast.add_relu(np.ones(3, int), np.ones(3))
    assert "add_relu" in fast.FUSED_OPS


# ---------------------------------------------------------------------------------------- relu_backward_add


@pytest.mark.parametrize("dtypes", [(np.float32,) * 3, (np.float64,) * 3, (np.float16,) * 3,
                                    (np.float32, np.float32, np.float64), (np.float64, np.float32, np.float32)])
def test_relu_backward_add_is_the_sum_of_the_plain_ops_bit_for_bit(dtypes):
    """fastcnn.relu_backward_add (fused, fastcnn only; a residual block's input gradient): NumPy's ``addend +
    relu_backward(grad_out, x)`` byte for byte, its dtype included: an infinite and a NaN gradient where the
    mask is 0 (NaN), -0.0 products, x of exactly 0, NaN and -0.0, sums of exactly 0, and mixed dtypes (the
    plain ops then)."""
    rng = np.random.default_rng(8)
    g = rng.standard_normal((3, 5, 7, 11))
    x = rng.standard_normal(g.shape)
    addend = rng.standard_normal(g.shape)
    x.flat[:3] = (0.0, -0.0, np.nan)
    g.flat[3], x.flat[3] = np.inf, -1.0
    g.flat[4], x.flat[4] = np.nan, -2.0
    g.flat[5], x.flat[5], addend.flat[5] = -3.0, 1.0, 3.0  # -3 + 3: +0.0
    g.flat[6], x.flat[6], addend.flat[6] = -1.0, -1.0, -0.0  # -0.0 product + -0.0
    g, x, addend = g.astype(dtypes[0]), x.astype(dtypes[1]), addend.astype(dtypes[2])
    with np.errstate(invalid="ignore"):
        want = addend + fast.relu_backward(g, x)
        got = fast.relu_backward_add(g, x, addend)
    assert_bit_identical([[got], [want]])


def test_relu_backward_add_shapes_and_refusals():
    for shape in ((), (0, 3), (900001,)):  # 0-d, empty, and past the serial threshold
        g, x, a = np.full(shape, -1.5, np.float32), np.full(shape, 2.0, np.float32), np.full(shape, 0.25, np.float32)
        assert_bit_identical([[fast.relu_backward_add(g, x, a)], [a + fast.relu_backward(g, x)]])
    with pytest.raises(ValueError, match=r"relu_backward_add: .*`addend`"):
        fast.relu_backward_add(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"relu_backward_add: .*`addend`"):
        fast.relu_backward_add(np.ones(3), np.ones(3), np.ones(3, int))
    with pytest.raises(ValueError, match=r"relu_backward_add: .*`grad_out`"):
        fast.relu_backward_add(np.ones(4), np.ones(3), np.ones(3))
    assert "relu_backward_add" in fast.FUSED_OPS
