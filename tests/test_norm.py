"""Batch normalisation: gradient checks in training and evaluation, the running-statistics update, errors,
and agreement with PyTorch (output, running statistics and gradients)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcnn import batch_norm, batch_norm_backward
from tests.gradcheck import check_backward

SHAPES = [(4, 3), (2, 3, 3), (2, 2, 2, 3)]


def setup(shape, *, affine=True, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.uniform(-2, 2, size=shape)
    rm, rv = rng.uniform(-0.5, 0.5, size=c), rng.uniform(0.5, 1.5, size=c)
    w = rng.uniform(0.5, 1.5, size=c) if affine else None
    b = rng.uniform(-1, 1, size=c) if affine else None
    return x, rm, rv, w, b


def forward_on_copies(x, rm, rv, w, b, **kwargs):
    """The forward updates the running statistics in place; finite differences must not see that."""
    return batch_norm(x, rm.copy(), rv.copy(), w, b, **kwargs)


# ----------------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_backward_agrees_with_finite_differences(shape, training, affine):
    x, rm, rv, w, b = setup(shape, affine=affine, seed=len(shape))
    differentiable = [0, 3, 4] if affine else [0]
    check_backward(forward_on_copies, batch_norm_backward, [x, rm, rv, w, b], differentiable,
                   kwargs={"training": training, "momentum": 0.3, "eps": 1e-3},
                   what=f"batch_norm shape={shape} training={training} affine={affine}")


def test_backward_returns_none_for_absent_weight_and_bias_and_leaves_running_stats_alone():
    x, rm, rv, _, _ = setup((3, 2, 2))
    rm0, rv0 = rm.copy(), rv.copy()
    gx, gw, gb = batch_norm_backward(np.ones_like(x), x, rm, rv, training=True)
    assert gx.shape == x.shape and gw is None and gb is None
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0)


def test_training_gradient_of_x_sums_to_zero_per_channel():
    # The output of each channel is invariant to shifting that channel's inputs, so dL/dx sums to 0.
    x, rm, rv, w, b = setup((3, 2, 4), seed=5)
    g = np.random.default_rng(6).standard_normal(x.shape)
    gx, _, _ = batch_norm_backward(g, x, rm, rv, w, b, training=True)
    np.testing.assert_allclose(gx.sum(axis=(0, 2)), 0.0, atol=1e-12)


# ----------------------------------------------------------------------------------------------- running stats

def test_running_statistics_use_the_unbiased_variance():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0]])  # channel 0: mean 3, m=3, unbiased var 4
    rm, rv = np.zeros(2), np.ones(2)
    batch_norm(x, rm, rv, training=True, momentum=0.25)
    np.testing.assert_allclose(rm, [0.75 * 0 + 0.25 * 3, 0.25 * 11], rtol=1e-15)
    np.testing.assert_allclose(rv, [0.75 + 0.25 * 4, 0.75 + 0.25 * 3], rtol=1e-15)


def test_training_output_uses_the_biased_variance():
    x = np.array([[1.0], [3.0]])
    y = batch_norm(x, None, None, training=True, eps=3.0)  # var 1 -> sqrt(1 + 3) = 2
    np.testing.assert_allclose(y, [[-0.5], [0.5]], rtol=1e-15)


def test_evaluation_leaves_running_statistics_unchanged():
    x, rm, rv, w, b = setup((2, 3, 2))
    rm0, rv0 = rm.copy(), rv.copy()
    batch_norm(x, rm, rv, w, b, training=False)
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0)


def test_float32_running_statistics_are_updated_in_their_own_dtype():
    x, _, _, _, _ = setup((4, 2))
    rm, rv = np.zeros(2, dtype=np.float32), np.ones(2, dtype=np.float32)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    y = batch_norm(x.astype(np.float32), rm, rv, training=True)
    batch_norm(x.astype(np.float32).astype(np.float64), rm64, rv64, training=True)
    assert y.dtype == np.float64 and rm.dtype == np.float32
    np.testing.assert_array_equal(rm, rm64.astype(np.float32))
    np.testing.assert_array_equal(rv, rv64.astype(np.float32))


# ----------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args,kwargs,error,text", [
    ((np.ones((1, 2)), np.zeros(2), np.ones(2)), {"training": True}, ValueError, "more than 1 value"),
    ((np.ones((3, 2)), None, None), {"training": False}, ValueError, "running_mean"),
    ((np.ones((3, 2)), np.zeros(2), None), {"training": True}, ValueError, "running_var"),
    ((np.ones((3, 2)), np.zeros(3), np.ones(3)), {}, ValueError, r"running_mean.*\(2,\).*\(3,\)"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2), np.ones(3)), {}, ValueError, "weight"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2), None, np.ones((2, 1))), {}, ValueError, "bias"),
    ((np.ones(3), np.zeros(3), np.ones(3)), {}, ValueError, "`x`"),
    ((np.ones((1, 2, 1, 1, 1)), np.zeros(2), np.ones(2)), {}, ValueError, "`x`"),
    ((np.ones((3, 2), dtype=np.int32), np.zeros(2), np.ones(2)), {}, TypeError, "`x`"),
    ((np.ones((3, 2)), [0.0, 0.0], np.ones(2)), {}, TypeError, "running_mean"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2)), {"momentum": -0.1}, ValueError, "momentum"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2)), {"eps": -1.0}, ValueError, "eps"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2)), {"training": True, "eps": 0.0}, ValueError, "eps"),
    ((np.ones((3, 2)), np.zeros(2), np.ones(2)), {"training": "no"}, TypeError, "training"),
])
def test_invalid_arguments_raise(args, kwargs, error, text):
    with pytest.raises(error, match=text):
        batch_norm(*args, **kwargs)


def test_read_only_running_statistics_raise_in_training_before_computing():
    rm, rv = np.zeros(2), np.ones(2)
    rm.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        batch_norm(np.ones((3, 2)), rm, rv, training=True)
    assert np.array_equal(rv, np.ones(2))


def test_backward_checks_grad_out_shape():
    with pytest.raises(ValueError, match=r"grad_out.*\(2, 2\).*\(3, 2\)"):
        batch_norm_backward(np.ones((2, 2)), np.ones((3, 2)), np.zeros(2), np.ones(2))


# ----------------------------------------------------------------------------------------------- PyTorch

# Local: sizes and hyperparameters only, with weight and bias present or absent together; the arrays come
# from setup(), in the ranges this file's gradient checks use too.
@st.composite
def batch_norm_problems(draw):
    training = draw(st.booleans())
    rank = draw(st.sampled_from([2, 3, 4]))
    affine = draw(st.booleans())
    with_stats = draw(st.booleans()) if training else True
    momentum = draw(st.floats(0.0, 1.0))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    c = draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 3)) for _ in range(rank - 2)]
    n = draw(st.integers(2 if training and not any(s > 1 for s in spatial) else 1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(shape=(n, c, *spatial), training=training, affine=affine, with_stats=with_stats,
                momentum=momentum, eps=eps, seed=seed)


@settings(max_examples=25)
@given(problem=batch_norm_problems())
def test_agrees_with_torch(problem):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, rm, rv, w, b = setup(problem["shape"], affine=problem["affine"], seed=problem["seed"])
    if not problem["with_stats"]:
        rm = rv = None
    kw = dict(training=problem["training"], momentum=problem["momentum"], eps=problem["eps"])
    g = np.random.default_rng(problem["seed"] + 1).standard_normal(x.shape)

    def tensor(a, grad=False):
        return None if a is None else torch.tensor(a, requires_grad=grad)

    xt, wt, bt = tensor(x, True), tensor(w, True), tensor(b, True)
    rmt, rvt = tensor(rm), tensor(rv)
    yt = F.batch_norm(xt, rmt, rvt, wt, bt, **kw)
    yt.backward(torch.tensor(g))

    rm_ours = None if rm is None else rm.copy()
    rv_ours = None if rv is None else rv.copy()
    y = batch_norm(x, rm_ours, rv_ours, w, b, **kw)
    gx, gw, gb = batch_norm_backward(g, x, rm, rv, w, b, **kw)
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, yt.detach().numpy(), err_msg=f"output {problem}", **tol)
    if rm is not None:
        np.testing.assert_allclose(rm_ours, rmt.numpy(), err_msg=f"running_mean {problem}", **tol)
        np.testing.assert_allclose(rv_ours, rvt.numpy(), err_msg=f"running_var {problem}", **tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), err_msg=f"grad_x {problem}", **tol)
    if problem["affine"]:
        np.testing.assert_allclose(gw, wt.grad.numpy(), err_msg=f"grad_weight {problem}", **tol)
        np.testing.assert_allclose(gb, bt.grad.numpy(), err_msg=f"grad_bias {problem}", **tol)
    else:
        assert gw is None and gb is None
