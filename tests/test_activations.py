"""refcnn activations: gradient checks, conventions at the kinks, PyTorch agreement, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refcnn
from cnnconform import strategies
from gradcheck import assert_close, check_backward

# (op, keyword arguments): every backward is checked for each of these
CONFIGS = [
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.3}),
    ("leaky_relu", {"negative_slope": -0.5}),
    ("elu", {}),
    ("elu", {"alpha": 2.5}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softmax", {}),
    ("softmax", {"dim": 0}),
    ("softmax", {"dim": 1}),
    ("log_softmax", {}),
    ("log_softmax", {"dim": 0}),
    ("log_softmax", {"dim": -2}),
]


def away_from_kinks(rng, shape):
    """Values with |x| >= 0.1, so that a finite difference of size 1e-6 never straddles x = 0."""
    x = rng.uniform(0.1, 3.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("op, kwargs", CONFIGS, ids=[f"{op}-{kw}" for op, kw in CONFIGS])
def test_backward_matches_finite_differences(op, kwargs, rng):
    x = away_from_kinks(rng, (2, 3, 2))
    check_backward(getattr(refcnn, op), getattr(refcnn, f"{op}_backward"), [x], [0], kwargs=kwargs,
                   what=f"{op} {kwargs}")


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_a_0d_array_is_one_line_of_length_1(op):
    # softmax of a single value is the constant 1 (log-softmax 0), so its gradient vanishes
    assert float(getattr(refcnn, op)(np.array(2.0))) == (1.0 if op == "softmax" else 0.0)
    assert float(getattr(refcnn, f"{op}_backward")(np.array(5.0), np.array(0.7))) == 0.0


# ----------------------------------------------------------------------------------------------------------
# Conventions


@pytest.mark.parametrize("op, kwargs, slope_at_zero", [
    ("relu", {}, 0.0),
    ("leaky_relu", {}, 0.01),
    ("leaky_relu", {"negative_slope": 0.2}, 0.2),
    ("elu", {}, 1.0),
    ("elu", {"alpha": 2.0}, 2.0),
    ("sigmoid", {}, 0.25),
    ("tanh", {}, 1.0),
])
def test_derivative_at_zero_follows_pytorch(op, kwargs, slope_at_zero):
    grad = getattr(refcnn, f"{op}_backward")(np.array([3.0]), np.array([0.0]), **kwargs)
    assert grad.tolist() == [3.0 * slope_at_zero]


def test_relu_of_the_seed_example():
    assert refcnn.relu(np.array([-2.0, 0.0, 3.0])).tolist() == [0.0, 0.0, 3.0]


def test_softmax_does_not_overflow_and_sums_to_one():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
    y = refcnn.softmax(x)
    assert np.all(np.isfinite(y))
    assert_close(y.sum(axis=1), np.ones(2), atol=1e-15, rtol=0, what="softmax row sums")
    assert_close(y[0], refcnn.softmax(np.array([1.0, 2.0, 3.0])), atol=1e-15, rtol=0, what="shift invariance")


def test_log_softmax_keeps_tiny_probabilities_finite():
    y = refcnn.log_softmax(np.array([0.0, -1000.0]))
    assert y.tolist() == [0.0, -1000.0]


def test_sigmoid_saturates_without_overflow():
    y = refcnn.sigmoid(np.array([-800.0, 800.0]))
    assert y.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_any_float_dtype_in_float64_out(dtype):
    x = np.array([[-1.5, 0.5], [2.0, -0.25]], dtype=dtype)
    for op in ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax"]:
        y = getattr(refcnn, op)(x)
        assert y.dtype == np.float64 and y.shape == x.shape, op
        grad = getattr(refcnn, f"{op}_backward")(np.ones_like(x), x)
        assert grad.dtype == np.float64 and grad.shape == x.shape, op


def test_inputs_are_not_modified(rng):
    x = rng.standard_normal((2, 3))
    before = x.copy()
    refcnn.softmax_backward(np.ones_like(x), x)
    refcnn.elu(x)
    assert np.array_equal(x, before)


# ----------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("op", ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax"])
def test_integer_and_non_array_inputs_raise_type_error(op):
    fn = getattr(refcnn, op)
    with pytest.raises(TypeError, match=f"{op}: argument `x`.*dtype int64"):
        fn(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        fn([1.0, 2.0])


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("dim", [2, -3, 1.0, None])
def test_dim_out_of_range_raises(op, dim):
    x = np.zeros((2, 3))
    args = (x, x) if op.endswith("_backward") else (x,)
    with pytest.raises(ValueError, match=r"argument `dim`. Expected an int in \[-2, 2\)"):
        getattr(refcnn, op)(*args, dim=dim)


@pytest.mark.parametrize("op", [name for name in refcnn.OPS["activations"] if name.endswith("_backward")])
def test_grad_out_of_another_shape_raises(op):
    with pytest.raises(ValueError, match=r"grad_out.shape=\(3,\) and x.shape=\(2, 3\)"):
        getattr(refcnn, op)(np.ones(3), np.zeros((2, 3)))


@pytest.mark.parametrize("op, name", [("leaky_relu", "negative_slope"), ("elu", "alpha")])
def test_bad_hyperparameters_raise(op, name):
    x = np.zeros(3)
    with pytest.raises(ValueError, match=f"`{name}`.*Received {name}=nan"):
        getattr(refcnn, op)(x, **{name: math.nan})
    with pytest.raises(TypeError, match=f"`{name}`"):
        getattr(refcnn, op)(x, **{name: "0.1"})
    with pytest.raises(TypeError, match=f"`{name}`"):
        getattr(refcnn, f"{op}_backward")(x, x, **{name: None})


# ----------------------------------------------------------------------------------------------------------
# Agreement with PyTorch (skipped without it)


def _torch_reference(op, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return torch, {
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, kwargs.get("negative_slope", 0.01)),
        "elu": lambda t: F.elu(t, kwargs.get("alpha", 1.0)),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda t: F.softmax(t, dim=kwargs.get("dim", -1)),
        "log_softmax": lambda t: F.log_softmax(t, dim=kwargs.get("dim", -1)),
    }[op]


#: The range of each activation's float hyperparameter (negative slopes too).
PARAMETERS = {"leaky_relu": st.floats(-2, 2, allow_nan=False), "elu": st.floats(0.1, 3, allow_nan=False)}


def activation_calls():
    """``(op, kwargs, x, grad_out)`` of a valid backward call (cnnconform.strategies): an op, its
    hyperparameters, then an input of 1 to 3 small axes (dim valid by construction)."""
    ops = st.sampled_from(["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax"])
    calls = ops.flatmap(lambda op: strategies.calls(f"{op}_backward", parameters=PARAMETERS.get(op)))
    return calls.map(lambda call: (call.op[: -len("_backward")], call.kwargs, call.args[1], call.args[0]))


@settings(max_examples=40)
@given(activation_calls())
def test_forward_and_backward_agree_with_pytorch(call):
    op, kwargs, x, grad_out = call
    torch, reference = _torch_reference(op, kwargs)
    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt)
    yt.backward(torch.tensor(grad_out))
    what = f"{op} {kwargs} x.shape={x.shape}"
    assert_close(getattr(refcnn, op)(x, **kwargs), yt.detach().numpy(), atol=1e-12, rtol=1e-12, what=what)
    assert_close(getattr(refcnn, f"{op}_backward")(grad_out, x, **kwargs), xt.grad.numpy(),
                 atol=1e-12, rtol=1e-10, what=f"{what} backward")
