"""cnn.optimizers.Optimizer updates the parameters that share a rate, dtypes and a step count by one call of the
step function on their values laid end to end. Every rule is elementwise, so that must give the same bits as one
call per parameter: checked here for every rule and its options, on both engines, over several steps, with
learning-rate multipliers (several groups), parameters of two dtypes, a state read back from a checkpoint and a
parameter that joins later (its own step count), and a large one (past GROUP_MAX, lowered here: updated alone)."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn import optimizers
from cnn.optimizers import OPTIMIZERS, Optimizer
from fastcheck import assert_bit_identical

RULES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("sgd", {"momentum": 0.8, "dampening": 0.1}),
    ("sgd", {"momentum": 0.8, "momentum_form": "keras"}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 1e-2}),
    ("adam", {"weight_decay": 1e-2, "decoupled_weight_decay": True}),
    ("adadelta", {"weight_decay": 1e-3}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9, "centered": True}),
]

SHAPES = {"a/weight": (4, 3, 3, 3), "a/bias": (4,), "b/weight": (5, 4), "b/bias": (5,), "c/weight": (2, 7)}


def _params(rng, dtypes):
    return {key: rng.standard_normal(shape).astype(dtypes.get(key, np.float32)) for key, shape in SHAPES.items()}


def _one_call_each(engine, name, hyper, lr, multipliers, params, grads, states):
    """The reference: the step function once per parameter, in order."""
    step_fn = getattr(engine, OPTIMIZERS[name])
    out = {}
    for key in params:
        rate = lr * multipliers.get(key, 1.0)
        out[key], states[key] = step_fn(params[key], grads[key], states.get(key), lr=rate, **hyper)
        out[key] = out[key].astype(params[key].dtype, copy=False)
    return out


@pytest.mark.parametrize("engine", [fastcnn, refcnn], ids=["fastcnn", "refcnn"])
@pytest.mark.parametrize("name, hyper", RULES)
def test_grouped_steps_are_one_call_per_parameter_bit_for_bit(engine, name, hyper, monkeypatch):
    monkeypatch.setattr(optimizers, "GROUP_MAX", 100)  # a/weight (108 values) is large: alone
    rng = np.random.default_rng(4)
    dtypes = {"c/weight": np.float64}  # a group of its own
    multipliers = {"b/weight": 0.5, "b/bias": 0.5}  # and another
    params = _params(rng, dtypes)
    optimizer = Optimizer(name, lr=0.05, lr_multipliers=multipliers, **hyper)
    ref_params, ref_states = dict(params), {}
    for step in range(4):
        grads = {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}
        if step == 2:  # a parameter that joins late (a layer unfrozen): a step count of its own
            params["d/weight"] = ref_params["d/weight"] = rng.standard_normal((3, 3)).astype(np.float32)
            grads["d/weight"] = rng.standard_normal((3, 3)).astype(np.float32)
        params = optimizer.step(engine, [(k, params[k], grads[k]) for k in params], 0.05)
        ref_params = _one_call_each(engine, name, hyper, 0.05, multipliers, ref_params, grads, ref_states)
        assert list(params) == list(ref_params)
        assert_bit_identical([params, ref_params])
        assert_bit_identical([optimizer.state, ref_states])


def test_results_are_views_of_one_call_and_are_read_without_a_copy():
    """The second step finds the parameters and state arrays laid end to end (views of the first call's
    results) and reads them in place; a parameter replaced by a new array is copied in, the same bits."""
    rng = np.random.default_rng(5)
    params = _params(rng, {})
    optimizer = Optimizer("adam", lr=0.01)
    grads = {k: np.ones_like(p) for k, p in params.items()}
    params = optimizer.step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)
    keys = list(params)
    assert not any(np.shares_memory(params[keys[0]], params[k]) for k in keys[1:])  # disjoint views...
    assert all(params[k].base is params[keys[0]].base for k in keys)  # ...of one array
    ref_params, ref_states = dict(params), {k: {n: (v.copy() if isinstance(v, np.ndarray) else v)
                                                for n, v in s.items()} for k, s in optimizer.state.items()}
    params["b/bias"] = params["b/bias"].copy()  # replaced: no longer laid end to end
    params = optimizer.step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)
    ref_params = _one_call_each(fastcnn, "adam", {}, 0.01, {}, ref_params, grads, ref_states)
    assert_bit_identical([params, ref_params])


def test_checkpointed_state_continues_bit_for_bit():
    rng = np.random.default_rng(6)
    params = _params(rng, {})
    a = Optimizer("adam", lr=0.01)
    grads = {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}
    params = a.step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)
    arrays, meta = a.state_arrays()
    b = Optimizer("adam", lr=0.01)
    b.load_state_arrays({k: v.copy() for k, v in arrays.items()}, meta)
    from_a = a.step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)
    from_b = b.step(fastcnn, [(k, params[k].copy(), grads[k]) for k in params], 0.01)
    assert_bit_identical([from_a, from_b])


def test_a_mismatched_gradient_gets_the_step_functions_error():
    """A gradient of another shape is not laid end to end with the others (that would shift every later
    parameter's values): it goes alone, to the step function's check."""
    rng = np.random.default_rng(7)
    params = _params(rng, {})
    grads = {k: np.ones_like(p) for k, p in params.items()}
    grads["b/weight"] = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="grad"):
        Optimizer("adam").step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)


@pytest.mark.parametrize("name, hyper", [("adam", {}), ("sgd", {"momentum": 0.9}), ("rmsprop", {"centered": True})])
def test_the_same_group_again_is_one_call_per_parameter_bit_for_bit(name, hyper, monkeypatch):
    """From the second step the optimizer finds last step's only group passed again (the very parameters and
    states it returned) and skips the grouping: the same bits as one call per parameter while the learning rate
    changes (a schedule), when the gradients change dtype (float64: the general grouping again) and back; a
    gradient of another shape at a later step still gets the step function's error."""
    calls = []
    same_group_again = Optimizer._same_group_again

    def spy(self, *args):
        members = same_group_again(self, *args)
        calls.append(members is not None)
        return members

    monkeypatch.setattr(Optimizer, "_same_group_again", spy)
    rng = np.random.default_rng(8)
    params = _params(rng, {})
    optimizer = Optimizer(name, lr=0.05, **hyper)
    ref_params, ref_states = dict(params), {}
    for step, (lr, grad_dtype) in enumerate([(0.05, np.float32), (0.04, np.float32), (0.03, np.float64),
                                             (0.02, np.float64), (0.01, np.float32)]):
        grads = {k: rng.standard_normal(p.shape).astype(grad_dtype) for k, p in params.items()}
        params = optimizer.step(fastcnn, [(k, params[k], grads[k]) for k in params], lr)
        ref_params = _one_call_each(fastcnn, name, hyper, lr, {}, ref_params, grads, ref_states)
        assert_bit_identical([params, ref_params])
        assert_bit_identical([optimizer.state, ref_states])
    assert calls == [False, True, False, True, False]  # the dtype's changes send it to the general grouping
    grads = {k: np.ones_like(p) for k, p in params.items()}
    grads["b/weight"] = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="grad"):
        optimizer.step(fastcnn, [(k, params[k], grads[k]) for k in params], 0.01)
