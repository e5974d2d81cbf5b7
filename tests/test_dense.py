"""refcnn flatten and linear: gradient checks, shapes, PyTorch agreement, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import refcnn
from cnnbase.dense import flatten_dims, linear_dims
from cnnconform import strategies
from gradcheck import assert_close, check_backward

FLOATS = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("x_shape, out_features, with_bias", [
    ((2, 3), 4, True),
    ((2, 3), 2, False),
    ((2, 2, 3), 2, True),
    ((3,), 2, True),
    ((1, 1), 1, False),
])
def test_linear_backward_matches_finite_differences(x_shape, out_features, with_bias, rng):
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((out_features, x_shape[-1]))
    arrays_ = [x, weight] + ([rng.standard_normal(out_features)] if with_bias else [])
    differentiable = [0, 1, 2] if with_bias else [0, 1]
    check_backward(refcnn.linear, refcnn.linear_backward, arrays_, differentiable,
                   what=f"linear x {x_shape} out_features {out_features} bias {with_bias}")


def test_linear_backward_without_bias_returns_none_for_it(rng):
    grads = refcnn.linear_backward(np.ones((2, 2)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    assert len(grads) == 3 and grads[2] is None


@pytest.mark.parametrize("shape, start_dim, end_dim", [
    ((2, 3, 2), 1, -1), ((2, 3, 2), 0, 1), ((2, 3, 2, 2), 1, 2), ((2, 3), -1, -1),
])
def test_flatten_backward_matches_finite_differences(shape, start_dim, end_dim, rng):
    check_backward(refcnn.flatten, refcnn.flatten_backward, [rng.standard_normal(shape)], [0],
                   kwargs={"start_dim": start_dim, "end_dim": end_dim}, what=f"flatten {shape}")


# ----------------------------------------------------------------------------------------------------------
# Shapes and conventions


@pytest.mark.parametrize("shape, start_dim, end_dim, expected", [
    ((2, 3, 4, 5), 1, -1, (2, 60)),
    ((2, 3, 4, 5), 0, -1, (120,)),
    ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
    ((2, 3, 4, 5), -2, -1, (2, 3, 20)),
    ((2, 3), 1, 1, (2, 3)),
    ((2, 0, 3), 1, -1, (2, 0)),
    ((), 0, -1, (1,)),
])
def test_flatten_output_shape(shape, start_dim, end_dim, expected):
    assert flatten_dims("flatten", shape, start_dim, end_dim).out_shape == expected
    assert refcnn.flatten(np.zeros(shape), start_dim, end_dim).shape == expected


def test_flatten_keeps_row_major_order():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert refcnn.flatten(x).tolist() == [list(range(12)), list(range(12, 24))]


def test_linear_of_the_seed_hidden_layer():
    # Mazur's backpropagation walkthrough: net_h1 = 0.3775 and net_h2 = 0.3925
    y = refcnn.linear(np.array([[0.05, 0.10]]), np.array([[0.15, 0.20], [0.25, 0.30]]), np.array([0.35, 0.35]))
    assert_close(y, [[0.3775, 0.3925]], atol=1e-15, rtol=0, what="hidden nets")


def test_linear_dims_resolve_the_batch_axes():
    dims = linear_dims("linear", (2, 5, 3), (4, 3), (4,))
    assert (dims.batch_shape, dims.in_features, dims.out_features, dims.has_bias) == ((2, 5), 3, 4, True)
    assert dims.out_shape == (2, 5, 4)


def test_empty_batch_gives_empty_output_and_zero_gradients():
    x, weight, bias = np.zeros((0, 3)), np.ones((2, 3)), np.ones(2)
    assert refcnn.linear(x, weight, bias).shape == (0, 2)
    grad_x, grad_weight, grad_bias = refcnn.linear_backward(np.zeros((0, 2)), x, weight, bias)
    assert grad_x.shape == (0, 3) and not grad_weight.any() and not grad_bias.any()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_any_float_dtype_in_float64_out(dtype):
    x, weight = np.ones((2, 3), dtype=dtype), np.ones((1, 3), dtype=dtype)
    assert refcnn.linear(x, weight).dtype == np.float64
    assert all(g.dtype == np.float64 for g in refcnn.linear_backward(np.ones((2, 1), dtype=dtype), x, weight)[:2])
    assert refcnn.flatten(np.ones((2, 2, 2), dtype=dtype)).dtype == np.float64


def test_flatten_returns_a_copy():
    x = np.zeros((2, 2, 2))
    refcnn.flatten(x)[0, 0] = 1.0
    assert not x.any()


# ----------------------------------------------------------------------------------------------------------
# Errors


def test_linear_in_features_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"x.shape=\(2, 3\) and weight.shape=\(4, 5\)"):
        refcnn.linear(np.zeros((2, 3)), np.zeros((4, 5)))


@pytest.mark.parametrize("weight_shape", [(3,), (1, 2, 3)])
def test_linear_weight_must_be_2d(weight_shape):
    with pytest.raises(ValueError, match=r"`weight` must have 2 dimensions"):
        refcnn.linear(np.zeros((2, 3)), np.zeros(weight_shape))


def test_linear_bias_shape():
    with pytest.raises(ValueError, match=r"`bias` must have shape \(4,\).*received shape \(3,\)"):
        refcnn.linear_backward(np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3))


def test_linear_0d_input():
    with pytest.raises(ValueError, match="`x` must have at least 1 dimension"):
        refcnn.linear(np.array(1.0), np.zeros((2, 1)))


@pytest.mark.parametrize("name", ["x", "weight", "bias"])
def test_linear_integer_arrays_raise_type_error(name):
    args = {"x": np.zeros((2, 3)), "weight": np.zeros((4, 3)), "bias": np.zeros(4)}
    args[name] = args[name].astype(np.int64)
    with pytest.raises(TypeError, match=f"linear: argument `{name}`"):
        refcnn.linear(**args)


def test_linear_backward_grad_out_shape():
    with pytest.raises(ValueError, match=r"`grad_out` must have shape \(2, 4\)"):
        refcnn.linear_backward(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((4, 3)))


@pytest.mark.parametrize("start_dim, end_dim, name", [(3, -1, "start_dim"), (0, -4, "end_dim"), (2, 1, "end_dim"),
                                                      (1.0, 2, "start_dim")])
def test_flatten_bad_dims(start_dim, end_dim, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        refcnn.flatten(np.zeros((2, 3, 4)), start_dim, end_dim)


def test_flatten_backward_grad_out_shape():
    with pytest.raises(ValueError, match=r"`grad_out` must have shape \(2, 12\)"):
        refcnn.flatten_backward(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))


def test_flatten_rejects_integers_and_lists():
    with pytest.raises(TypeError, match="dtype int64"):
        refcnn.flatten(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        refcnn.flatten([[1.0, 2.0]])


# ----------------------------------------------------------------------------------------------------------
# Agreement with PyTorch (skipped without it)


def linear_calls():
    """``(x, weight, bias, grad_out)`` of a valid linear_backward call (cnnconform.strategies): sizes first
    (none to two batch axes, in/out features, bias or not), then arrays of exactly those sizes."""
    batch_shapes = array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)
    calls = strategies.calls("linear_backward", batch_shapes=batch_shapes, elements=FLOATS)
    return calls.map(lambda call: (call.args[1], call.args[2], call.kwargs["bias"], call.args[0]))


@settings(max_examples=25)
@given(linear_calls())
def test_linear_agrees_with_pytorch(call):
    torch = pytest.importorskip("torch")
    x, weight, bias, grad_out = call
    tensors = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, weight, bias)]
    y = torch.nn.functional.linear(*tensors)
    y.backward(torch.tensor(grad_out))
    what = f"linear x {x.shape} weight {weight.shape} bias {bias is not None}"
    assert_close(refcnn.linear(x, weight, bias), y.detach().numpy(), atol=1e-10, rtol=1e-12, what=what)
    for got, t, name in zip(refcnn.linear_backward(grad_out, x, weight, bias), tensors, ["x", "weight", "bias"]):
        if t is None:
            assert got is None, f"{what}: grad_bias should be None"
        else:
            assert_close(got, t.grad.numpy(), atol=1e-10, rtol=1e-12, what=f"{what} grad_{name}")


def flatten_calls():
    """``(x, start_dim, end_dim)`` of a valid call (cnnconform.strategies): 1 to 4 axes, each dim counted from
    the front or the back, end at or after start."""
    calls = strategies.calls("flatten", shapes=array_shapes(min_dims=1, max_dims=4, max_side=3), elements=FLOATS)
    return calls.map(lambda call: (call.args[0], call.kwargs["start_dim"], call.kwargs["end_dim"]))


@settings(max_examples=25)
@given(flatten_calls())
def test_flatten_agrees_with_pytorch(call):
    torch = pytest.importorskip("torch")
    x, start, end = call
    expected = torch.flatten(torch.tensor(x), start, end).numpy()
    got = refcnn.flatten(x, start, end)
    assert got.shape == expected.shape and np.array_equal(got, expected), f"x {x.shape} {start}..{end}"
    assert np.array_equal(refcnn.flatten_backward(got, x, start, end), x)
