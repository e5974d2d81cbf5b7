"""refcnn losses: gradient checks over every reduction, PyTorch's conventions, PyTorch agreement, errors."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import refcnn
from cnnconform import strategies
from gradcheck import assert_close, check_backward

FLOATS = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
REDUCTIONS = ["mean", "sum", "none"]
TARGET = np.array([0, 2, 1, 2])  # N = 4 samples of C = 3 classes
WEIGHT = np.array([0.5, 2.0, 1.25])


# ----------------------------------------------------------------------------------------------------------
# Gradients


CE_CONFIGS = [
    dict(reduction=r, weight=w, ignore_index=i, label_smoothing=s)
    for r, w, i, s in itertools.product(REDUCTIONS, [False, True], [-100, 2], [0.0, 0.25])
]


@pytest.mark.parametrize("config", CE_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_cross_entropy_backward_matches_finite_differences(config, rng):
    kwargs = dict(config)
    weight = WEIGHT.copy() if kwargs.pop("weight") else None
    logits = rng.standard_normal((4, 3))
    check_backward(lambda x: refcnn.cross_entropy(x, TARGET, weight, **kwargs),
                   lambda g, x: refcnn.cross_entropy_backward(g, x, TARGET, weight, **kwargs),
                   [logits], [0], what=f"cross_entropy {config}")


@pytest.mark.parametrize("reduction, with_weight, ignore_index", list(itertools.product(REDUCTIONS, [False, True],
                                                                                         [-100, 0])))
def test_nll_loss_backward_matches_finite_differences(reduction, with_weight, ignore_index, rng):
    weight = WEIGHT.copy() if with_weight else None
    kwargs = {"reduction": reduction, "ignore_index": ignore_index}
    check_backward(lambda x: refcnn.nll_loss(x, TARGET, weight, **kwargs),
                   lambda g, x: refcnn.nll_loss_backward(g, x, TARGET, weight, **kwargs),
                   [rng.standard_normal((4, 3))], [0], what=f"nll_loss {kwargs} weight {with_weight}")


@pytest.mark.parametrize("op", ["mse_loss", "half_squared_error"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_squared_error_backward_matches_finite_differences(op, reduction, rng):
    check_backward(getattr(refcnn, op), getattr(refcnn, f"{op}_backward"),
                   [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))], [0, 1],
                   kwargs={"reduction": reduction}, what=f"{op} {reduction}")


def test_cross_entropy_backward_accepts_a_0d_grad_out(rng):
    x = rng.standard_normal((4, 3))
    assert np.array_equal(refcnn.cross_entropy_backward(np.array(2.0), x, TARGET),
                          refcnn.cross_entropy_backward(2.0, x, TARGET))


# ----------------------------------------------------------------------------------------------------------
# Conventions


def test_cross_entropy_is_nll_of_log_softmax(rng):
    x = rng.standard_normal((4, 3))
    for reduction in REDUCTIONS:
        assert_close(refcnn.cross_entropy(x, TARGET, WEIGHT, reduction=reduction),
                     refcnn.nll_loss(refcnn.log_softmax(x, dim=1), TARGET, WEIGHT, reduction=reduction),
                     atol=1e-14, rtol=1e-14, what=reduction)


def test_weighted_mean_divides_by_the_weights_of_the_kept_targets(rng):
    x = rng.standard_normal((4, 3))
    target = np.array([0, 2, -100, 1])
    total = refcnn.cross_entropy(x, target, WEIGHT, reduction="sum", label_smoothing=0.1)
    mean = refcnn.cross_entropy(x, target, WEIGHT, reduction="mean", label_smoothing=0.1)
    assert_close(mean, total / (0.5 + 1.25 + 2.0), atol=1e-14, rtol=1e-14, what="weighted mean")


def test_uniform_logits_lose_log_c():
    loss = refcnn.cross_entropy(np.zeros((3, 5)), np.array([0, 4, 2]))
    assert loss.shape == () and loss.dtype == np.float64
    assert math.isclose(float(loss), math.log(5.0), rel_tol=1e-15)


def test_all_ignored_batch_like_pytorch():
    x, target = np.zeros((2, 3)), np.array([-100, -100])
    assert math.isnan(refcnn.cross_entropy(x, target))
    assert math.isnan(refcnn.nll_loss(x, target))
    assert float(refcnn.cross_entropy(x, target, reduction="sum")) == 0.0
    assert refcnn.cross_entropy(x, target, reduction="none").tolist() == [0.0, 0.0]
    assert not refcnn.cross_entropy_backward(1.0, x, target, label_smoothing=0.1).any()


def test_reduction_shapes():
    x, target = np.zeros((2, 3)), np.array([0, 1])
    assert refcnn.cross_entropy(x, target, reduction="none").shape == (2,)
    assert refcnn.nll_loss(x, target, reduction="sum").shape == ()
    assert refcnn.mse_loss(x, x, reduction="none").shape == (2, 3)
    assert refcnn.half_squared_error(x, x).shape == ()


def test_seed_total_error():
    # Mazur's backpropagation walkthrough publishes E_total = 0.298371109
    total = refcnn.half_squared_error(np.array([0.75136507, 0.772928465]), np.array([0.01, 0.99]))
    assert abs(float(total) - 0.298371109) < 1e-9


def test_half_squared_error_is_half_the_summed_mse(rng):
    x, t = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    assert math.isclose(float(refcnn.half_squared_error(x, t)), float(refcnn.mse_loss(x, t, reduction="sum")) / 2,
                        rel_tol=1e-14)


def test_ignore_index_may_be_a_real_class(rng):
    x = rng.standard_normal((4, 3))
    kept = refcnn.cross_entropy(x, TARGET, reduction="none", ignore_index=2)
    assert kept[1] == 0.0 and kept[3] == 0.0 and kept[0] > 0.0


@pytest.mark.parametrize("dtype", [np.int32, np.uint8])
def test_any_integer_label_dtype(dtype, rng):
    x = rng.standard_normal((4, 3))
    assert refcnn.cross_entropy(x, TARGET.astype(dtype)) == refcnn.cross_entropy(x, TARGET)


# ----------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_class_loss_errors(op):
    fn, x = getattr(refcnn, op), np.zeros((2, 3))
    with pytest.raises(TypeError, match=f"{op}: argument `target` must have an integer dtype"):
        fn(x, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer dtype"):
        fn(x, np.array([True, False]))
    with pytest.raises(ValueError, match=r"class labels in \[0, 3\).*label 3 at target\[1\]"):
        fn(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 at target\[0\]"):
        fn(x, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"argument `target` must have shape \(2,\)"):
        fn(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"argument `weight` must have shape \(3,\)"):
        fn(x, np.array([0, 1]), np.ones(2))
    with pytest.raises(ValueError, match="argument `reduction`. Expected one of 'none', 'mean', 'sum'"):
        fn(x, np.array([0, 1]), reduction="avg")
    with pytest.raises(TypeError, match="argument `ignore_index`"):
        fn(x, np.array([0, 1]), ignore_index=1.5)
    with pytest.raises(ValueError, match=r"argument `input` must have 2 dimensions \(N, C\)"):
        fn(np.zeros(3), np.array([0]))
    with pytest.raises(TypeError, match="argument `input`"):
        fn(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))


@pytest.mark.parametrize("smoothing", [-0.1, 1.5])
def test_label_smoothing_outside_0_1(smoothing):
    with pytest.raises(ValueError, match=r"`label_smoothing`. Expected a number in \[0.0, 1.0\]"):
        refcnn.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=smoothing)


@pytest.mark.parametrize("op, args", [
    ("cross_entropy_backward", (np.zeros((2, 3)), np.array([0, 1]))),
    ("nll_loss_backward", (np.zeros((2, 3)), np.array([0, 1]))),
    ("mse_loss_backward", (np.zeros((2, 3)), np.zeros((2, 3)))),
    ("half_squared_error_backward", (np.zeros((2, 3)), np.zeros((2, 3)))),
])
def test_grad_out_must_match_the_output(op, args):
    fn = getattr(refcnn, op)
    with pytest.raises(ValueError, match=r"`grad_out` must have shape \(\)"):
        fn(np.ones(2), *args, reduction="sum")
    with pytest.raises(ValueError, match="`grad_out` must have shape"):
        fn(np.ones(5), *args, reduction="none")
    with pytest.raises(TypeError, match="`grad_out` must be a numpy.ndarray"):
        fn(1.0, *args, reduction="none")
    with pytest.raises(TypeError, match="`grad_out`"):
        fn("1", *args, reduction="mean")


@pytest.mark.parametrize("op", ["mse_loss", "half_squared_error"])
def test_squared_error_errors(op):
    fn = getattr(refcnn, op)
    with pytest.raises(ValueError, match=r"input.shape=\(2, 3\) and target.shape=\(3,\)"):
        fn(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="`reduction`"):
        fn(np.zeros(3), np.zeros(3), reduction="total")
    with pytest.raises(TypeError, match="`target`"):
        fn(np.zeros(3), np.zeros(3, dtype=np.int64))


# ----------------------------------------------------------------------------------------------------------
# Agreement with PyTorch (skipped without it)


# Local: an ignore_index of C (beyond the classes) and fully ignored batches (a NaN mean), which the shared
# strategy, meant for every target, leaves out.
@st.composite
def class_loss_calls(draw):
    """Hyperparameters first, then logits (N, C) and labels in range by construction, some ignored."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    reduction = draw(st.sampled_from(REDUCTIONS))
    ignore_index = draw(st.sampled_from([-100, 0, c]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    target = np.array(draw(st.lists(st.sampled_from(list(range(c)) + [ignore_index]), min_size=n, max_size=n)))
    weight = draw(st.none() | arrays(np.float64, (c,), elements=st.floats(0.1, 3)))
    x = draw(arrays(np.float64, (n, c), elements=FLOATS))
    grad_out = draw(arrays(np.float64, (n,), elements=FLOATS)) if reduction == "none" else draw(FLOATS)
    kwargs = {"ignore_index": ignore_index, "reduction": reduction}
    return x, target, weight, smoothing, kwargs, grad_out


def assert_close_nan(actual, expected, **kwargs):
    """assert_close for results that may be NaN (an all-ignored batch's mean): NaN must match NaN."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{kwargs['what']}: NaN where not expected: " \
        f"got {actual}, expected {expected}"
    assert_close(np.nan_to_num(actual), np.nan_to_num(expected), **kwargs)


def _torch_loss(torch, fn, x, target, weight, grad_out, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight)
    loss = fn(xt, torch.tensor(target, dtype=torch.int64), wt, **kwargs)
    loss.backward(torch.tensor(grad_out, dtype=torch.float64))
    return loss.detach().numpy(), xt.grad.numpy()


@settings(max_examples=30)
@given(class_loss_calls())
def test_cross_entropy_and_nll_agree_with_pytorch(call):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, target, weight, smoothing, kwargs, grad_out = call
    what = f"target {target.tolist()} weight {weight} smoothing {smoothing} {kwargs}"

    loss, grad = _torch_loss(torch, F.cross_entropy, x, target, weight, grad_out, label_smoothing=smoothing, **kwargs)
    assert_close_nan(refcnn.cross_entropy(x, target, weight, label_smoothing=smoothing, **kwargs), loss,
                 atol=1e-12, rtol=1e-11, what=f"cross_entropy {what}")
    assert_close_nan(refcnn.cross_entropy_backward(grad_out, x, target, weight, label_smoothing=smoothing, **kwargs),
                 grad, atol=1e-12, rtol=1e-10, what=f"cross_entropy_backward {what}")

    loss, grad = _torch_loss(torch, F.nll_loss, x, target, weight, grad_out, **kwargs)
    assert_close_nan(refcnn.nll_loss(x, target, weight, **kwargs), loss, atol=1e-12, rtol=1e-12, what=f"nll {what}")
    assert_close_nan(refcnn.nll_loss_backward(grad_out, x, target, weight, **kwargs), grad,
                 atol=1e-12, rtol=1e-12, what=f"nll_loss_backward {what}")


def pointwise_calls():
    """``(input, target, reduction, grad_out)`` of a valid squared-error call (cnnconform.strategies), of none
    to three axes; a reduced loss's grad_out as a Python float."""
    shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
    calls = strategies.calls("mse_loss_backward", shapes=shapes, elements=FLOATS)
    return calls.map(_as_pointwise_call)


def _as_pointwise_call(call):
    grad_out, x, t = call.args
    reduction = call.kwargs["reduction"]
    return x, t, reduction, grad_out if reduction == "none" else float(grad_out)


@settings(max_examples=25)
@given(pointwise_calls())
def test_squared_errors_agree_with_pytorch(call):
    torch = pytest.importorskip("torch")
    x, t, reduction, grad_out = call
    for op, scale in (("mse_loss", 1.0), ("half_squared_error", 0.5)):
        xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
        loss = scale * torch.nn.functional.mse_loss(xt, tt, reduction=reduction)
        loss.backward(torch.tensor(grad_out, dtype=torch.float64))
        what = f"{op} {reduction} shape {x.shape}"
        assert_close(getattr(refcnn, op)(x, t, reduction=reduction), loss.detach().numpy(),
                     atol=1e-12, rtol=1e-12, what=what)
        grad_input, grad_target = getattr(refcnn, f"{op}_backward")(grad_out, x, t, reduction=reduction)
        assert_close(grad_input, xt.grad.numpy(), atol=1e-12, rtol=1e-12, what=f"{what} grad_input")
        assert_close(grad_target, tt.grad.numpy(), atol=1e-12, rtol=1e-12, what=f"{what} grad_target")
