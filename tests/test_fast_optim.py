"""fastcnn optimizer steps against refcnn (the oracle), torch.optim, the spec's cases and its errors.

Tolerances, with ``scale = max(1, max |refcnn result|)``; NaN must appear exactly where refcnn has it:

* float64: ``1e-12 * scale``. Each element follows refcnn's operations in refcnn's order, so in practice
  the results are bit-identical.
* float32: ``2e-6 * scale``. Both engines read the same float32 values; fastcnn computes each element in
  float64 and rounds the new parameter and state once to float32.
* torch.optim (float64, ``foreach=False``; Adam's ``lerp`` rounds differently): ``1e-10 * scale``.

Several steps are checked by feeding refcnn's state of step ``k - 1`` to both engines at step ``k``.

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
RULES = ("sgd_step", "adam_step", "adadelta_step", "rmsprop_step")


def assert_close(got, expected, dtype, what: str, tolerance=None):
    """fastcheck.assert_agrees (shape, NaN and infinities exact) with this file's bound,
    ``(tolerance or TOLERANCE[dtype]) * scale``."""
    assert_agrees(got, expected, dtype=dtype, tolerance=tolerance or TOLERANCE[dtype], what=what)


# ------------------------------------------------------------------------------------------------ strategies

unit = st.floats(0.0, 1.0)
small = st.sampled_from([0.0, 0.1]) | st.floats(0.0, 0.5)


# Local: the spec's whole range of each hyperparameter (lr 0, momentum above 1, Keras's momentum form, eps 0),
# where the shared strategy draws the few common values every target handles. Kept here, not there: Hypothesis
# also draws the literal constants of the project's modules, and new ones would shift `cnn conform`'s draws.
@st.composite
def hyperparameters(draw, rule: str, torch_ranges: bool = False):
    """Valid keyword arguments of ``rule``; ``torch_ranges`` keeps to what torch.optim accepts too."""
    lr = draw(st.sampled_from([1e-3, 0.1, 0.0]) | st.floats(0.0, 1.0))
    if rule == "sgd_step":
        form = "pytorch" if torch_ranges else draw(st.sampled_from(["pytorch", "keras"]))
        momentum = draw(st.sampled_from([0.0, 0.9]) | st.floats(0.0, 1.5))
        nesterov = momentum > 0 and draw(st.booleans())
        dampening = 0.0 if nesterov or form == "keras" else draw(st.sampled_from([0.0, 0.5]) | unit)
        return dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=draw(small), nesterov=nesterov,
                    momentum_form=form)
    if rule == "adam_step":
        betas = (draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.999)))
        return dict(lr=lr, betas=betas, eps=draw(st.sampled_from([1e-8, 0.0, 0.1])), weight_decay=draw(small),
                    amsgrad=draw(st.booleans()), decoupled_weight_decay=draw(st.booleans()))
    if rule == "adadelta_step":
        return dict(lr=lr, rho=draw(unit), eps=draw(st.sampled_from([1e-6, 1e-3])), weight_decay=draw(small))
    # Against torch, alpha stays away from 0: centered RMSprop's first step then computes s - a^2 = 0 by
    # cancellation, and the rounding residue of each library's own operation order decides the result.
    alpha = draw(st.floats(0.1, 0.999) if torch_ranges else st.floats(0.0, 1.0) | st.just(1.2))
    return dict(lr=lr, alpha=alpha, eps=draw(st.sampled_from([1e-8, 0.0, 0.1])), weight_decay=draw(small),
                momentum=draw(st.sampled_from([0.0, 0.9]) | unit), centered=draw(st.booleans()))


# Local: a run of 1 to 3 gradients that the test steps through with both engines, carrying refcnn's state
# from step to step; the shared optimizer strategy draws one step from a state refcnn reached.
@st.composite
def optimizer_runs(draw, dtypes=(np.float64, np.float32), torch_ranges=False):
    """``(rule, kwargs, params, grads)``: hyperparameters first, then a shape and 1-3 steps of arrays
    (cnnconform.strategies.float_arrays; each gradient within +-1 or +-1e-3)."""
    rule = draw(st.sampled_from(RULES))
    kwargs = draw(hyperparameters(rule, torch_ranges))
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    param = draw(strategies.float_arrays(shape)).astype(dtype)
    grads = []
    for _ in range(draw(st.integers(1, 3))):
        scale = draw(st.sampled_from([1.0, 1e-3]))
        grads.append(draw(strategies.float_arrays(shape, st.floats(-scale, scale))).astype(dtype))
    return rule, kwargs, param, grads


def state_as(state, dtype):
    """A state dict with its arrays converted to ``dtype`` (refcnn's states are float64)."""
    if state is None:
        return None
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in state.items()}


def snapshot(state):
    return None if state is None else {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}


# ---------------------------------------------------------------------------------------- agreement with refcnn

def test_api_mirrors_refcnn():
    assert_same_api(importlib.import_module("fastcnn.optim"), importlib.import_module("refcnn.optim"))



@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # refcnn's g / 0 when eps = 0
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@settings(max_examples=40)
@given(optimizer_runs())
def test_steps_equal_refcnn(run):
    rule, kwargs, param, grads = run
    dtype = param.dtype.type
    ours_fn, ref_fn = getattr(fastcnn, rule), getattr(refcnn, rule)
    state = None
    for k, grad in enumerate(grads, start=1):
        given_state = state_as(state, dtype)
        before = (param.copy(), grad.copy(), snapshot(given_state))
        new_param, new_state = ours_fn(param, grad, given_state, **kwargs)
        ref_param, ref_state = ref_fn(param, grad, given_state, **kwargs)
        what = f"{rule} {kwargs} {dtype.__name__} step {k}"
        assert new_param.dtype == dtype, what
        assert_close(new_param, ref_param, dtype, what + " param")
        assert set(new_state) == set(ref_state), what
        for key, value in ref_state.items():
            if isinstance(value, np.ndarray):
                assert new_state[key].dtype == dtype, f"{what} state[{key}]"
                assert_close(new_state[key], value, dtype, f"{what} state[{key}]")
            else:
                assert new_state[key] == value, f"{what} state[{key}]"
        # Nothing passed in changes.
        assert np.array_equal(param, before[0], equal_nan=True) and np.array_equal(grad, before[1])
        if given_state is not None:
            assert all(np.array_equal(given_state[key], v, equal_nan=True) for key, v in before[2].items()
                       if isinstance(v, np.ndarray))
        param, state = ref_param.astype(dtype), ref_state


def test_results_keep_the_param_dtype():
    p16, g32 = np.ones(4, np.float16), np.ones(4, np.float32)
    for rule in RULES:
        new_param, new_state = getattr(fastcnn, rule)(p16, g32, momentum=0.5) if rule in (
            "sgd_step", "rmsprop_step") else getattr(fastcnn, rule)(p16, g32)
        assert new_param.dtype == np.float16, rule
        assert all(v.dtype == np.float16 for v in new_state.values() if isinstance(v, np.ndarray)), rule


def test_non_contiguous_inputs():
    param = np.arange(12.0).reshape(3, 4).T
    grad = np.linspace(-1, 1, 24).reshape(6, 4)[::2].T
    state = {"step": 1, "exp_avg": np.full((4, 3), 0.5), "exp_avg_sq": np.full((3, 4), 0.25).T}
    got = fastcnn.adam_step(param, grad, state, lr=0.1)
    expected = refcnn.adam_step(param, grad, state, lr=0.1)
    assert np.array_equal(got[0], expected[0])
    assert all(np.array_equal(got[1][k], expected[1][k]) for k in ("exp_avg", "exp_avg_sq"))


# -------------------------------------------------------------------------------------------- errors

invalid_arguments = st.sampled_from([
    ("sgd_step", dict(lr=-0.1)), ("sgd_step", dict(momentum=-0.5)), ("sgd_step", dict(nesterov=True)),
    ("sgd_step", dict(momentum=0.9, dampening=0.1, nesterov=True)), ("sgd_step", dict(momentum_form="tf")),
    ("sgd_step", dict(momentum_form="keras", dampening=0.5)), ("sgd_step", dict(grad=np.ones(4))),
    ("sgd_step", dict(nesterov=1)), ("sgd_step", dict(lr=float("nan"))), ("sgd_step", dict(lr="0.1")),
    ("sgd_step", dict(momentum=0.9, state={"momentum_buffer": np.ones(2)})),
    ("sgd_step", dict(param=[1.0, 2.0, 3.0])), ("sgd_step", dict(param=np.arange(3))),
    ("adam_step", dict(betas=(1.0, 0.9))), ("adam_step", dict(betas=(0.9, -0.1))), ("adam_step", dict(betas=(0.9,))),
    ("adam_step", dict(betas=0.9)), ("adam_step", dict(eps=-1e-8)), ("adam_step", dict(amsgrad=None)),
    ("adam_step", dict(state={"step": 1, "exp_avg": np.zeros(3)})), ("adam_step", dict(state=[1])),
    ("adam_step", dict(state={"step": -1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)})),
    ("adam_step", dict(state={"step": 1, "exp_avg": np.zeros(3, int), "exp_avg_sq": np.zeros(3)})),
    ("adam_step", dict(amsgrad=True, state={"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)})),
    ("adam_step", dict(decoupled_weight_decay="yes")), ("adadelta_step", dict(rho=1.5)),
    ("adadelta_step", dict(weight_decay=-1.0)), ("rmsprop_step", dict(alpha=-0.5)),
    ("rmsprop_step", dict(momentum=-0.1)), ("rmsprop_step", dict(centered=0)),
    ("rmsprop_step", dict(momentum=0.5, state={"step": 1, "square_avg": np.zeros(3)})),
])


@settings(max_examples=80)  # cheap: no kernel runs
@given(invalid_arguments)
def test_invalid_arguments_raise_the_same_error_as_refcnn(bad):
    rule, kwargs = bad
    kwargs = dict(kwargs)
    param, grad = kwargs.pop("param", np.zeros(3)), kwargs.pop("grad", np.ones(3))
    state = kwargs.pop("state", None)
    expected = raised(getattr(refcnn, rule), param, grad, state, **kwargs)
    assert expected is not None, f"refcnn accepted {bad}"
    assert raised(getattr(fastcnn, rule), param, grad, state, **kwargs) == expected


# ---------------------------------------------------------------------------------- threads, torch

@pytest.mark.parametrize("size", [30011, 70001])  # below and above _runtime.SERIAL_BELOW
def test_results_do_not_depend_on_the_thread_count(size):
    rng = np.random.default_rng(7)
    param, grad = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32)

    def run():
        out = []
        for rule, kwargs in (("sgd_step", dict(momentum=0.9)), ("adam_step", dict(amsgrad=True)),
                             ("adadelta_step", {}), ("rmsprop_step", dict(momentum=0.5, centered=True))):
            new_param, new_state = getattr(fastcnn, rule)(param, grad, **kwargs)
            out += [new_param] + [v for v in new_state.values() if isinstance(v, np.ndarray)]
        return out

    assert_bit_identical(results_per_thread_count(run))


def test_small_parameters_run_on_the_calling_thread_alone_and_the_count_comes_back():
    from fastcnn import _runtime
    if fastcnn.get_num_threads() < 2:
        pytest.skip("needs 2 threads")
    threads = fastcnn.get_num_threads()
    assert _runtime.launch(fastcnn.get_num_threads, _runtime.SERIAL_BELOW - 1) == 1
    assert _runtime.launch(fastcnn.get_num_threads, _runtime.SERIAL_BELOW) == threads

    def fails():
        raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError, match="kernel failed"):
        _runtime.launch(fails, 1)
    assert fastcnn.get_num_threads() == threads
    with _runtime.serial_below(_runtime.SERIAL_BELOW - 1):  # the same rule for a block of kernels
        assert fastcnn.get_num_threads() == 1
    with _runtime.serial_below(_runtime.SERIAL_BELOW):
        assert fastcnn.get_num_threads() == threads
    with pytest.raises(RuntimeError, match="kernel failed"), _runtime.serial_below(1):
        fails()
    assert fastcnn.get_num_threads() == threads


TORCH_CLASSES = {"sgd_step": "SGD", "adam_step": "Adam", "adadelta_step": "Adadelta", "rmsprop_step": "RMSprop"}


@settings(max_examples=25)
@given(optimizer_runs(dtypes=(np.float64,), torch_ranges=True))
def test_agrees_with_torch_optim(run):
    torch = pytest.importorskip("torch")
    rule, kwargs, param, grads = run
    torch_kwargs = {k: v for k, v in kwargs.items() if k != "momentum_form"}
    tensor = torch.tensor(param, requires_grad=True)
    optimizer = getattr(torch.optim, TORCH_CLASSES[rule])([tensor], foreach=False, **torch_kwargs)
    state = None
    for k, grad in enumerate(grads, start=1):
        tensor.grad = torch.tensor(grad)
        optimizer.step()
        param, state = getattr(fastcnn, rule)(param, grad, state, **kwargs)
        assert_close(param, tensor.detach().numpy(), np.float64, f"{rule} {kwargs} step {k} vs torch",
                     tolerance=1e-10)
