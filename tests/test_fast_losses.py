"""fastcnn losses against refcnn (the oracle), PyTorch, the spec's cases and its errors.

Tolerances, with ``scale = max(1, max |refcnn result|)``; NaN must appear exactly where refcnn has it:

* float64: ``1e-12 * scale``. Each term is computed in refcnn's order; only the squared errors' sums over
  more than ``_SUM_BLOCK`` elements are split into blocks (not reached by these small arrays).
* float32: ``2e-6 * scale``. Both engines read the same float32 values; fastcnn computes in float64 and
  rounds the result once to float32.
* PyTorch (float64, its own order of operations): ``1e-10 * scale``.

The comparison (``fastcheck.assert_agrees``) and the other shared helpers live in tests/fastcheck.py; the
spec's conformance cases run in tests/test_fast_conformance.py.
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
from fastcheck import assert_agrees, assert_bit_identical, assert_same_api, raised, results_per_thread_count

TOLERANCE = {np.float64: 1e-12, np.float32: 2e-6}  # relative to the scale: this file's rule (see above)
REDUCTIONS = ("none", "mean", "sum")


def assert_close(got, expected, dtype, what: str, tolerance=None):
    """fastcheck.assert_agrees (shape, NaN and infinities exact) with this file's bound,
    ``(tolerance or TOLERANCE[dtype]) * scale``."""
    assert_agrees(got, expected, dtype=dtype, tolerance=tolerance or TOLERANCE[dtype], what=what)


# ------------------------------------------------------------------------------------------------ strategies

# Local, unlike the squared errors below: it draws the edges of the label encoding (labels of narrow integer
# dtypes, an ignore_index beyond their range, empty and fully ignored batches, grad_out as a Python float),
# which the shared strategy, meant for every target PyTorch included, leaves out.
@st.composite
def class_loss_calls(draw, dtypes=(np.float64, np.float32), min_n=0, smoothing=True):
    """``(args, kwargs, grad_out)`` of a valid cross_entropy / nll_loss call: hyperparameters first."""
    reduction = draw(st.sampled_from(REDUCTIONS))
    dtype = draw(st.sampled_from(dtypes))
    n, c = draw(st.integers(min_n, 4)), draw(st.integers(1, 4))
    ignore_index = draw(st.sampled_from([-100, 0, 1, 2 ** 40]))
    label_dtype = draw(st.sampled_from([np.int64, np.int32, np.int16]))
    if ignore_index > np.iinfo(label_dtype).max:
        label_dtype = np.int64
    labels = draw(st.lists(st.integers(0, c - 1) | st.just(ignore_index), min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = (rng.standard_normal((n, c)) * draw(st.sampled_from([1.0, 10.0]))).astype(dtype)
    weight = rng.uniform(0.1, 3.0, c).astype(dtype) if draw(st.booleans()) else None
    kwargs = dict(ignore_index=ignore_index, reduction=reduction)
    if smoothing:
        kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
    grad_out = (rng.standard_normal(n).astype(dtype) if reduction == "none"
                else draw(st.sampled_from([1.0, -0.5, np.array(2.0, dtype=dtype)])))
    return (x, np.array(labels, dtype=label_dtype), weight), kwargs, grad_out


def pointwise_calls(dtypes=(np.float64, np.float32)):
    """``(input, target, reduction, grad_out)`` of a valid squared-error call (cnnconform.strategies), of
    none to three axes of 0 to 3, in one of ``dtypes``; a reduced loss's grad_out is a 0-d array or a number
    (the spec takes both)."""
    calls = strategies.calls("mse_loss_backward", shapes=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    return st.tuples(calls, st.sampled_from(dtypes), st.booleans()).map(_as_pointwise_call)


def _as_pointwise_call(drawn):
    call, dtype, as_number = drawn
    grad_out, x, t = (a.astype(dtype) for a in call.args)
    reduction = call.kwargs["reduction"]
    if reduction != "none" and as_number:
        grad_out = float(grad_out)
    return x, t, reduction, grad_out


def compare(name, args, kwargs, grad_out, dtype):
    forward = getattr(fastcnn, name)(*args, **kwargs)
    expected = getattr(refcnn, name)(*args, **kwargs)
    assert forward.dtype == dtype, f"{name}: dtype {forward.dtype}"
    assert_close(forward, expected, dtype, f"{name} {kwargs} {dtype.__name__}")
    got = getattr(fastcnn, name + "_backward")(grad_out, *args, **kwargs)
    expected = getattr(refcnn, name + "_backward")(grad_out, *args, **kwargs)
    for i, (g, e) in enumerate(zip(*((got, expected) if isinstance(got, tuple) else ((got,), (expected,))))):
        assert g.dtype == dtype, f"{name}_backward[{i}]: dtype {g.dtype}"
        assert_close(g, e, dtype, f"{name}_backward[{i}] {kwargs} {dtype.__name__}")


# ---------------------------------------------------------------------------------------- agreement with refcnn

def test_api_mirrors_refcnn():
    assert_same_api(importlib.import_module("fastcnn.losses"), importlib.import_module("refcnn.losses"))



@settings(max_examples=30)
@given(class_loss_calls())
def test_cross_entropy_equals_refcnn(call):
    args, kwargs, grad_out = call
    compare("cross_entropy", args, kwargs, grad_out, args[0].dtype.type)


@settings(max_examples=25)
@given(class_loss_calls(smoothing=False))
def test_nll_loss_equals_refcnn(call):
    args, kwargs, grad_out = call
    compare("nll_loss", args, kwargs, grad_out, args[0].dtype.type)


@settings(max_examples=25)
@given(pointwise_calls(), st.sampled_from(["mse_loss", "half_squared_error"]))
def test_squared_errors_equal_refcnn(call, name):
    x, t, reduction, grad_out = call
    compare(name, (x, t), dict(reduction=reduction), grad_out, x.dtype.type)


def test_nan_and_infinite_logits_follow_refcnn():
    x = np.array([[np.nan, 1.0], [np.inf, 0.0], [-np.inf, -np.inf], [0.0, 1.0]])
    target = np.array([0, 1, 0, -100])
    for reduction in REDUCTIONS:
        for smoothing in (0.0, 0.3):
            kwargs = dict(reduction=reduction, label_smoothing=smoothing)
            g = np.ones(4) if reduction == "none" else 1.0
            assert_close(fastcnn.cross_entropy(x, target, **kwargs), refcnn.cross_entropy(x, target, **kwargs),
                         np.float64, f"forward {kwargs}")
            assert_close(fastcnn.cross_entropy_backward(g, x, target, **kwargs),
                         refcnn.cross_entropy_backward(g, x, target, **kwargs), np.float64, f"backward {kwargs}")


def test_zero_total_weight_gives_ieee_results():
    x = np.array([[-1.0, -2.0]])
    for weight in (np.array([0.0, 1.0]), np.array([-0.0, 1.0])):
        for name in ("nll_loss", "cross_entropy"):
            got = getattr(fastcnn, name)(x, np.array([0]), weight)
            assert_close(got, getattr(refcnn, name)(x, np.array([0]), weight), np.float64, name)
            got = getattr(fastcnn, name + "_backward")(2.0, x, np.array([0]), weight)
            assert_close(got, getattr(refcnn, name + "_backward")(2.0, x, np.array([0]), weight), np.float64, name)


def test_unsigned_labels_with_an_ignore_index_out_of_their_range():
    x = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    for target, ignore_index in ((np.array([1, 0], np.uint8), i) for i in (-100, 2 ** 70, 1, 0)):
        got = fastcnn.nll_loss(x, target, ignore_index=ignore_index)
        assert_close(got, refcnn.nll_loss(x, target, ignore_index=ignore_index), np.float64, str(ignore_index))
    target = np.array([2 ** 64 - 1, 1], np.uint64)  # the ignored label wraps to -1 in int64: still ignored
    got = fastcnn.cross_entropy(x, target, ignore_index=2 ** 64 - 1, reduction="none")
    assert_close(got, refcnn.cross_entropy(x, target, ignore_index=2 ** 64 - 1, reduction="none"), np.float64, "u64")


def test_mixed_dtypes_promote_like_numpy():
    x32, t64 = np.zeros((2, 3), np.float32), np.ones((2, 3))
    assert fastcnn.mse_loss(x32, t64).dtype == np.float64
    assert fastcnn.mse_loss(x32.astype(np.float16), x32.astype(np.float16)).dtype == np.float16
    assert fastcnn.cross_entropy(x32, np.array([0, 1]), np.ones(3)).dtype == np.float64
    assert fastcnn.cross_entropy_backward(np.ones(2), x32, np.array([0, 1]), reduction="none").dtype == np.float64
    assert fastcnn.cross_entropy_backward(1.0, x32, np.array([0, 1])).dtype == np.float32


# -------------------------------------------------------------------------------------------- errors

def class_call(**bad):
    call = dict(input=np.zeros((2, 3)), target=np.array([0, 2]), weight=None, ignore_index=-100,
                reduction="mean", label_smoothing=0.0, grad_out=1.0)
    call.update(bad)
    return call


class_invalid = st.sampled_from([
    dict(input=np.zeros(3)), dict(input=np.zeros((2, 3, 1))), dict(input=np.zeros((2, 3), dtype=int)),
    dict(input=[[0.0]]), dict(input=np.zeros((2, 0))), dict(target=np.array([0.0, 1.0])),
    dict(target=np.array([0, 1, 2])), dict(target=np.array([0, 3])), dict(target=np.array([-1, 0])),
    dict(target=[0, 1]), dict(weight=np.ones(2)), dict(weight=np.ones(3, dtype=int)), dict(reduction="avg"),
    dict(reduction=None), dict(label_smoothing=1.5), dict(label_smoothing=-0.1),
    dict(label_smoothing=float("nan")), dict(ignore_index=1.0), dict(ignore_index=True),
    dict(reduction="none", grad_out=np.ones(3)), dict(reduction="none", grad_out=1.0),
    dict(grad_out=np.ones(2)), dict(grad_out="1"), dict(grad_out=np.array(1, dtype=int)),
])

pointwise_invalid = st.sampled_from([
    dict(input=np.zeros((2, 3)), target=np.zeros(3)), dict(target=np.zeros((2, 3), dtype=int)),
    dict(input=[1.0]), dict(reduction="total"), dict(reduction="none", grad_out=np.ones(3)),
    dict(grad_out=np.ones((2, 3))), dict(grad_out=True),
])


def same_error(name: str, args: tuple, kwargs: dict):
    expected = raised(getattr(refcnn, name), *args, **kwargs)
    got = raised(getattr(fastcnn, name), *args, **kwargs)
    return expected, got


@settings(max_examples=80)  # cheap: no kernel runs
@given(bad=class_invalid, name=st.sampled_from(["cross_entropy", "nll_loss"]), backward=st.booleans())
def test_invalid_class_loss_arguments_raise_the_same_error_as_refcnn(bad, name, backward):
    call = class_call(**bad)
    if name == "nll_loss":
        if "label_smoothing" in bad:
            return
        call.pop("label_smoothing")
    grad_out = call.pop("grad_out")
    if not backward and "grad_out" in bad:
        return
    args = (call.pop("input"), call.pop("target"), call.pop("weight"))
    if backward:
        name, args = name + "_backward", (grad_out,) + args
    expected, got = same_error(name, args, call)
    assert expected is not None, f"refcnn accepted {bad}"
    assert got == expected


@settings(max_examples=80)  # cheap: no kernel runs
@given(bad=pointwise_invalid, name=st.sampled_from(["mse_loss", "half_squared_error"]), backward=st.booleans())
def test_invalid_squared_error_arguments_raise_the_same_error_as_refcnn(bad, name, backward):
    call = dict(dict(input=np.zeros((2, 3)), target=np.zeros((2, 3)), reduction="mean", grad_out=1.0), **bad)
    grad_out = call.pop("grad_out")
    if not backward and "grad_out" in bad:
        return
    args = (call.pop("input"), call.pop("target"))
    if backward:
        name, args = name + "_backward", (grad_out,) + args
    expected, got = same_error(name, args, call)
    assert expected is not None, f"refcnn accepted {bad}"
    assert got == expected


# ---------------------------------------------------------------------------------- threads, torch

def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((7, 50, 97)).astype(np.float32), rng.standard_normal((7, 50, 97)).astype(np.float32)
    logits, labels = rng.standard_normal((300, 10)), rng.integers(0, 10, 300)
    assert_bit_identical(results_per_thread_count(
        lambda: [fastcnn.mse_loss(x, t, reduction=r) for r in REDUCTIONS]
        + list(fastcnn.mse_loss_backward(0.5, x, t))
        + [fastcnn.cross_entropy(logits, labels, label_smoothing=0.1),
           fastcnn.cross_entropy_backward(1.0, logits, labels)]))


@settings(max_examples=25)
@given(class_loss_calls(dtypes=(np.float64,), min_n=1), st.sampled_from(["cross_entropy", "nll_loss"]),
       pointwise_calls(dtypes=(np.float64,)))
def test_agrees_with_torch(call, name, pointwise):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (x, target, weight), kwargs, grad_out = call
    if name == "nll_loss":
        kwargs.pop("label_smoothing")
    xt = torch.tensor(x, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight)
    loss = getattr(F, name)(xt, torch.tensor(target, dtype=torch.int64), wt, **kwargs)
    loss.backward(torch.tensor(np.asarray(grad_out, dtype=np.float64)))
    got = getattr(fastcnn, name)(x, target, weight, **kwargs)
    assert_close(got, loss.detach().numpy(), np.float64, f"{name} vs torch", tolerance=1e-10)
    got = getattr(fastcnn, name + "_backward")(grad_out, x, target, weight, **kwargs)
    assert_close(got, xt.grad.numpy(), np.float64, f"{name}_backward vs torch", tolerance=1e-10)

    x, t, reduction, grad_out = pointwise
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    loss = F.mse_loss(xt, tt, reduction=reduction)
    loss.backward(torch.tensor(np.asarray(grad_out, dtype=np.float64)))
    assert_close(fastcnn.mse_loss(x, t, reduction=reduction), loss.detach().numpy(), np.float64, "mse vs torch",
                 tolerance=1e-10)
    grads = fastcnn.mse_loss_backward(grad_out, x, t, reduction=reduction)
    assert_close(grads[0], xt.grad.numpy(), np.float64, "mse grad_input vs torch", tolerance=1e-10)
    assert_close(grads[1], tt.grad.numpy(), np.float64, "mse grad_target vs torch", tolerance=1e-10)
