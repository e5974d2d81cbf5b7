"""Optimizers: agreement with torch.optim over several steps (Hypothesis over the hyperparameters), the
Keras momentum form against its hand-written recurrence, purity, state handling and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcnn import adadelta_step, adam_step, rmsprop_step, sgd_step

SHAPE = (2, 3)
STEPS = 4


def gradients(seed: int, steps: int = STEPS) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-3, 3, size=SHAPE) for _ in range(steps)]


def run_ours(step_fn, param, grads, lrs=None, **kwargs):
    state = None
    for k, g in enumerate(grads):
        lr = {} if lrs is None else {"lr": lrs[k]}
        param, state = step_fn(param, g, state, **kwargs, **lr)
    return param, state


def run_torch(torch, optimizer_class, param, grads, **kwargs):
    p = torch.tensor(param, requires_grad=True)
    opt = optimizer_class([p], foreach=False, **kwargs)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy(), opt.state[p]


def assert_same_as_torch(ours, theirs, what):
    param, state = ours
    t_param, t_state = theirs
    np.testing.assert_allclose(param, t_param, rtol=1e-10, atol=1e-12, err_msg=f"param, {what}")
    for key, value in t_state.items():
        if value is None:
            continue
        if key == "step":
            assert state["step"] == int(value.item()), what
        else:
            np.testing.assert_allclose(state[key], value.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{key}, {what}")


# ----------------------------------------------------------------------------------------------- PyTorch

lrs = st.floats(1e-4, 0.5)
small = st.floats(0.0, 0.3)
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=25)
@given(lr=lrs, momentum=st.sampled_from([0.0, 0.5, 0.9]), dampening=st.sampled_from([0.0, 0.3]),
       nesterov=st.booleans(), weight_decay=small, seed=seeds)
def test_sgd_agrees_with_torch(lr, momentum, dampening, nesterov, weight_decay, seed):
    torch = pytest.importorskip("torch")
    if nesterov and (momentum == 0.0 or dampening != 0.0):
        nesterov = False
    kw = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
    param, grads = np.random.default_rng(seed).uniform(-2, 2, size=SHAPE), gradients(seed + 1)
    assert_same_as_torch(run_ours(sgd_step, param, grads, **kw), run_torch(torch, torch.optim.SGD, param, grads, **kw),
                         kw)


@settings(max_examples=25)
@given(lr=lrs, beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999), eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=small, amsgrad=st.booleans(), decoupled=st.booleans(), seed=seeds)
def test_adam_agrees_with_torch(lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, seed):
    torch = pytest.importorskip("torch")
    kw = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              decoupled_weight_decay=decoupled)
    param, grads = np.random.default_rng(seed).uniform(-2, 2, size=SHAPE), gradients(seed + 1)
    assert_same_as_torch(run_ours(adam_step, param, grads, **kw),
                         run_torch(torch, torch.optim.Adam, param, grads, **kw), kw)


@settings(max_examples=25)
@given(lr=st.floats(1e-3, 2.0), rho=st.floats(0.0, 1.0), eps=st.sampled_from([1e-6, 1e-7, 1e-3]),
       weight_decay=small, seed=seeds)
def test_adadelta_agrees_with_torch(lr, rho, eps, weight_decay, seed):
    torch = pytest.importorskip("torch")
    kw = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    param, grads = np.random.default_rng(seed).uniform(-2, 2, size=SHAPE), gradients(seed + 1)
    assert_same_as_torch(run_ours(adadelta_step, param, grads, **kw),
                         run_torch(torch, torch.optim.Adadelta, param, grads, **kw), kw)


@settings(max_examples=25)
@given(lr=lrs, alpha=st.floats(0.5, 0.999), eps=st.sampled_from([1e-8, 1e-3]), weight_decay=small,
       momentum=st.sampled_from([0.0, 0.5, 0.9]), centered=st.booleans(), seed=seeds)
def test_rmsprop_agrees_with_torch(lr, alpha, eps, weight_decay, momentum, centered, seed):
    torch = pytest.importorskip("torch")
    kw = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
    param, grads = np.random.default_rng(seed).uniform(-2, 2, size=SHAPE), gradients(seed + 1)
    assert_same_as_torch(run_ours(rmsprop_step, param, grads, **kw),
                         run_torch(torch, torch.optim.RMSprop, param, grads, **kw), kw)


# ----------------------------------------------------------------------------------------------- Keras form

def keras_recurrence(param, grads, lrs, momentum, nesterov):
    """Keras's SGD, written out per element: v <- mu v - lr g; p <- p + v (nesterov: p + mu v - lr g)."""
    p = param.copy()
    v = np.zeros_like(p)
    for g, lr in zip(grads, lrs):
        for i in np.ndindex(p.shape):
            v[i] = momentum * v[i] - lr * g[i]
            p[i] = p[i] + (momentum * v[i] - lr * g[i] if nesterov else v[i])
    return p, v


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_form_equals_its_recurrence_with_a_changing_lr(nesterov):
    param, grads = np.random.default_rng(0).uniform(-2, 2, size=SHAPE), gradients(1)
    lrs = [0.1, 0.05, 0.2, 0.01]
    p, state = run_ours(sgd_step, param, grads, lrs, momentum=0.9, nesterov=nesterov, momentum_form="keras")
    p_ref, v_ref = keras_recurrence(param, grads, lrs, 0.9, nesterov)
    np.testing.assert_allclose(p, p_ref, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(state["momentum_buffer"], v_ref, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_and_pytorch_forms_coincide_for_a_constant_lr(nesterov):
    param, grads = np.random.default_rng(2).uniform(-2, 2, size=SHAPE), gradients(3)
    lr = 0.05
    p_t, s_t = run_ours(sgd_step, param, grads, lr=lr, momentum=0.9, nesterov=nesterov)
    p_k, s_k = run_ours(sgd_step, param, grads, lr=lr, momentum=0.9, nesterov=nesterov, momentum_form="keras")
    np.testing.assert_allclose(p_k, p_t, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(s_k["momentum_buffer"], -lr * s_t["momentum_buffer"], rtol=1e-12, atol=1e-13)


def test_keras_and_pytorch_forms_differ_when_lr_changes():
    param, grads = np.random.default_rng(4).uniform(-2, 2, size=SHAPE), gradients(5)
    lrs = [0.1, 0.01, 0.1, 0.01]
    p_t, _ = run_ours(sgd_step, param, grads, lrs, momentum=0.9)
    p_k, _ = run_ours(sgd_step, param, grads, lrs, momentum=0.9, momentum_form="keras")
    assert np.max(np.abs(p_t - p_k)) > 1e-3


# ----------------------------------------------------------------------------------------------- purity and state

@pytest.mark.parametrize("step_fn,kwargs", [
    (sgd_step, {"momentum": 0.9, "weight_decay": 0.1}),
    (adam_step, {"amsgrad": True, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (adadelta_step, {"weight_decay": 0.1}),
    (rmsprop_step, {"momentum": 0.5, "centered": True}),
])
def test_inputs_are_never_changed(step_fn, kwargs):
    param, (g1, g2) = np.ones(SHAPE), gradients(6, 2)
    _, state = step_fn(param, g1, None, **kwargs)
    snapshot = (param.copy(), g2.copy(), {k: np.copy(v) for k, v in state.items()})
    new_param, new_state = step_fn(param, g2, state, **kwargs)
    assert np.array_equal(param, snapshot[0]) and np.array_equal(g2, snapshot[1])
    for key, value in snapshot[2].items():
        assert np.array_equal(state[key], value), key
        assert new_state[key] is not state[key] or np.ndim(value) == 0, key
    assert new_param is not param


def test_state_uses_pytorch_names_and_counts_steps():
    p, g = np.ones(SHAPE), np.ones(SHAPE)
    assert sgd_step(p, g)[1] == {}
    assert set(sgd_step(p, g, momentum=0.9)[1]) == {"momentum_buffer"}
    assert set(adam_step(p, g)[1]) == {"step", "exp_avg", "exp_avg_sq"}
    assert set(adam_step(p, g, amsgrad=True)[1]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert set(adadelta_step(p, g)[1]) == {"step", "square_avg", "acc_delta"}
    assert set(rmsprop_step(p, g, momentum=0.1, centered=True)[1]) == {"step", "square_avg", "momentum_buffer",
                                                                        "grad_avg"}
    _, state = adam_step(p, g)
    _, state = adam_step(p, g, state)
    assert state["step"] == 2 and isinstance(state["step"], int)


def test_zero_state_at_step_zero_equals_no_state():
    p, g = np.random.default_rng(7).uniform(-1, 1, size=SHAPE), np.ones(SHAPE)
    zeros = {"step": 0, "exp_avg": np.zeros(SHAPE), "exp_avg_sq": np.zeros(SHAPE)}
    a, _ = adam_step(p, g, None, lr=0.1)
    b, _ = adam_step(p, g, zeros, lr=0.1)
    assert np.array_equal(a, b)


def test_float32_inputs_give_float64_results():
    p, state = rmsprop_step(np.ones(3, dtype=np.float32), np.ones(3, dtype=np.float16))
    assert p.dtype == np.float64 and state["square_avg"].dtype == np.float64


# ----------------------------------------------------------------------------------------------- errors

P, G = np.ones(SHAPE), np.ones(SHAPE)


@pytest.mark.parametrize("step_fn,kwargs,error,text", [
    (sgd_step, {"lr": -1e-3}, ValueError, "`lr`"),
    (sgd_step, {"momentum": -0.1}, ValueError, "`momentum`"),
    (sgd_step, {"weight_decay": -0.1}, ValueError, "`weight_decay`"),
    (sgd_step, {"nesterov": True}, ValueError, "`nesterov`"),
    (sgd_step, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError, "`nesterov`"),
    (sgd_step, {"momentum": 0.9, "momentum_form": "tf"}, ValueError, "`momentum_form`"),
    (sgd_step, {"momentum": 0.9, "dampening": 0.5, "momentum_form": "keras"}, ValueError, "`dampening`"),
    (sgd_step, {"nesterov": 1}, TypeError, "`nesterov`"),
    (adam_step, {"lr": -1.0}, ValueError, "`lr`"),
    (adam_step, {"betas": (1.0, 0.999)}, ValueError, "`betas`"),
    (adam_step, {"betas": (0.9, 1.0)}, ValueError, "`betas`"),
    (adam_step, {"betas": (-0.1, 0.999)}, ValueError, "`betas`"),
    (adam_step, {"betas": (0.9,)}, ValueError, "`betas`"),
    (adam_step, {"betas": 0.9}, TypeError, "`betas`"),
    (adam_step, {"eps": -1e-8}, ValueError, "`eps`"),
    (adam_step, {"amsgrad": "yes"}, TypeError, "`amsgrad`"),
    (adadelta_step, {"rho": 1.1}, ValueError, "`rho`"),
    (adadelta_step, {"eps": -1.0}, ValueError, "`eps`"),
    (rmsprop_step, {"alpha": -0.5}, ValueError, "`alpha`"),
    (rmsprop_step, {"momentum": -0.5}, ValueError, "`momentum`"),
    (rmsprop_step, {"lr": float("nan")}, ValueError, "`lr`"),
])
def test_invalid_hyperparameters_raise(step_fn, kwargs, error, text):
    with pytest.raises(error, match=text):
        step_fn(P, G, **kwargs)


def test_invalid_arrays_and_states_raise():
    with pytest.raises(ValueError, match=r"param.*\(2, 3\).*grad.*\(3, 2\)"):
        sgd_step(P, np.ones((3, 2)))
    with pytest.raises(TypeError, match="`param`"):
        sgd_step([1.0], [1.0])
    with pytest.raises(TypeError, match="`grad`"):
        adam_step(P, np.ones(SHAPE, dtype=np.int64))
    with pytest.raises(TypeError, match="`state`"):
        adam_step(P, G, [1, 2])
    with pytest.raises(ValueError, match="exp_avg_sq"):
        adam_step(P, G, {"step": 1, "exp_avg": np.zeros(SHAPE)})
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        adam_step(P, G, adam_step(P, G)[1], amsgrad=True)
    with pytest.raises(ValueError, match=r"square_avg.*\(2, 3\).*\(3,\)"):
        rmsprop_step(P, G, {"step": 1, "square_avg": np.zeros(3)})
    with pytest.raises(ValueError, match="step"):
        adadelta_step(P, G, {"step": -1, "square_avg": np.zeros(SHAPE), "acc_delta": np.zeros(SHAPE)})


@pytest.mark.parametrize("step, kwargs, unused", [
    ("sgd_step", {"momentum": 0.0}, "momentum_buffer"),
    ("rmsprop_step", {"momentum": 0.0}, "momentum_buffer"),
    ("rmsprop_step", {"centered": False}, "grad_avg"),
    ("adam_step", {"amsgrad": False}, "max_exp_avg_sq"),
])
def test_state_a_configuration_does_not_use_is_never_read(step, kwargs, unused):
    """refcnn read every state key it knew, used or not (a junk momentum buffer with momentum=0 raised), while
    fastcnn ignored it: found by tests/test_robustness.py. Both ignore it now, as torch.optim does."""
    import fastcnn
    import refcnn

    param, grad = np.array([0.5, -1.0]), np.array([0.25, 0.75])
    _, state = getattr(refcnn, step)(param, grad, None, **kwargs)
    state = {**state, unused: "junk"}
    ref_param, _ = getattr(refcnn, step)(param, grad, state, **kwargs)
    fast_param, _ = getattr(fastcnn, step)(param, grad, state, **kwargs)
    np.testing.assert_allclose(ref_param, fast_param, rtol=1e-12)
