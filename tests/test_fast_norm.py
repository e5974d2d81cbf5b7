"""fastcnn batch norm against refcnn (the oracle), PyTorch, the spec's cases and its errors.

Tolerances, with ``scale = max(1, max |refcnn result|)``:

* float64: ``1e-12 * scale``. (The statistics and sums are float64 sums in fastcnn's fixed lane order,
  fastcnn/norm.py; with one cell per row, dense inputs, that is refcnn's sequential order exactly.)
* float32: ``2e-6 * scale``. Every value is computed in float64 from the float32 inputs, as refcnn does,
  and rounded once to float32 (half an ulp, 6e-8 relative); the bound leaves room for values near the scale.
* PyTorch (float64, its own summation order): ``1e-9 * scale``.
* grad_x in training cancels terms up to ``|g w| / sqrt(var + eps)``: its scale is at least the largest of
  those (``_grad_x_tolerance``).

The running statistics are compared with the same bounds, and exactly for dense inputs (one cell per row): there
both engines update them with the same float64 operations from the same sums.

The comparison (``fastcheck.assert_agrees``, which also requires NaN where refcnn has it) and the other shared
helpers live in tests/fastcheck.py; the spec's conformance cases run in tests/test_fast_conformance.py.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastcnn
import refcnn
from cnnconform import strategies
from fastcheck import assert_agrees, assert_bit_identical, assert_same_api, raised, results_per_thread_count

TOLERANCE = {np.float64: 1e-12, np.float32: 2e-6}  # relative to the scale: this file's rule (see above)


def assert_close(got, expected, dtype, what: str, tolerance=None):
    """fastcheck.assert_agrees (shape, NaN and infinities exact) with this file's bound,
    ``(tolerance or TOLERANCE[dtype]) * scale``."""
    assert_agrees(got, expected, dtype=dtype, tolerance=tolerance or TOLERANCE[dtype], what=what)


# ------------------------------------------------------------------------------------------------ strategies

def batch_norm_calls(dtypes=(np.float64, np.float32)):
    """Keyword arguments of one valid batch_norm_backward call (cnnconform.strategies), ``grad_out`` among
    them: 1 to 3 samples, eps over [1e-6, 1], the arrays in one of ``dtypes``, all elements of a call within
    +-2 of one scale of 1, 1e-3 or 50 (the running variances in [0.1, 5])."""
    epsilons = st.sampled_from([1e-5, 0.5]) | st.floats(1e-6, 1.0)

    def scaled(scale):
        elements = st.floats(-2 * scale, 2 * scale, allow_nan=False, allow_infinity=False)
        return strategies.calls("batch_norm_backward", samples=st.integers(1, 3), epsilons=epsilons, elements=elements)

    calls = st.sampled_from([1.0, 1e-3, 50.0]).flatmap(scaled)
    return st.tuples(calls, st.sampled_from(dtypes)).map(_as_keywords)


def _as_keywords(call_and_dtype):
    call, dtype = call_and_dtype
    keywords = dict(zip(("grad_out", "x", "running_mean", "running_var"), call.args), **call.kwargs)
    return {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in keywords.items()}


def copy_array(a: np.ndarray) -> np.ndarray:
    """A copy that stays read-only when ``a`` is (the error cases rely on it)."""
    b = a.copy()
    b.flags.writeable = a.flags.writeable
    return b


def copies(call: dict) -> dict:
    """The call with fresh copies of every array (the forward updates the running statistics in place)."""
    return {k: (copy_array(v) if isinstance(v, np.ndarray) else v) for k, v in call.items()}


def forward_args(call: dict) -> dict:
    return {k: v for k, v in call.items() if k != "grad_out"}


# ---------------------------------------------------------------------------------------- agreement with refcnn

def test_api_mirrors_refcnn():
    assert_same_api(importlib.import_module("fastcnn.norm"), importlib.import_module("refcnn.norm"))



@settings(max_examples=30)
@given(batch_norm_calls())
def test_forward_and_running_statistics_equal_refcnn(call):
    ours, theirs = copies(call), copies(call)
    dtype = call["x"].dtype.type
    y = fastcnn.batch_norm(**forward_args(ours))
    expected = refcnn.batch_norm(**forward_args(theirs))
    assert y.dtype == dtype
    assert_close(y, expected, dtype, f"y, {dtype.__name__}, training={call['training']}")
    for key in ("running_mean", "running_var"):
        if call[key] is not None:
            assert ours[key].dtype == dtype
            assert_close(ours[key], theirs[key], dtype, key)


def _grad_x_tolerance(call, expected_grad_x, dtype) -> float:
    """grad_x in training is ``(r/m)(m dxhat - sum dxhat - xhat sum dxhat xhat)``: a difference of terms up to
    ``r |g w|`` (r = 1/sqrt(var + eps)) that cancel to nothing when g is constant. Its rounding is relative to
    those terms, not to the result, so the bound's scale is the larger of the two (both engines' sums are
    exact to float64 rounding, in different orders)."""
    if not call["training"]:
        return TOLERANCE[dtype]
    x = np.asarray(call["x"], np.float64)
    x3 = x.reshape(x.shape[0], x.shape[1], -1)
    r = 1.0 / np.sqrt(x3.var(axis=(0, 2)) + call["eps"])
    w = np.ones(x.shape[1]) if call.get("weight") is None else np.abs(np.asarray(call["weight"], np.float64))
    g = np.abs(np.asarray(call["grad_out"], np.float64)).reshape(x3.shape)
    terms = float(np.max(g * (w * r)[None, :, None])) if g.size else 0.0
    scale = max(1.0, float(np.max(np.abs(expected_grad_x), initial=0.0)))
    return TOLERANCE[dtype] * max(1.0, terms) / scale


@settings(max_examples=30)
@given(batch_norm_calls())
def test_gradients_equal_refcnn(call):
    dtype = call["x"].dtype.type
    got = fastcnn.batch_norm_backward(**copies(call))
    expected = refcnn.batch_norm_backward(**copies(call))
    for name, g, e in zip(("grad_x", "grad_weight", "grad_bias"), got, expected):
        if e is None:
            assert g is None, name
        else:
            assert g.dtype == dtype, name
            tolerance = _grad_x_tolerance(call, e, dtype) if name == "grad_x" else None
            assert_close(g, e, dtype, f"{name}, {dtype.__name__}, training={call['training']}", tolerance)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_rows_use_lanes_and_agree_with_refcnn(dtype):
    """Rows of 3 whole blocks of 64 lanes and a tail of 5 (S = 197), values far from zero mean (where a
    careless sum loses digits): fastcnn's lane-order sums agree with refcnn's sequential ones to rounding."""
    rng = np.random.default_rng(11)
    x = (100.0 + rng.standard_normal((3, 2, 197))).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    call = dict(running_mean=np.zeros(2, dtype), running_var=np.ones(2, dtype), weight=np.array([0.5, -2.0], dtype),
                bias=np.array([1.0, 0.0], dtype), training=True)
    ours, theirs = copies(call), copies(call)
    assert_close(fastcnn.batch_norm(x, **ours), refcnn.batch_norm(x, **theirs), dtype, "y")
    for key in ("running_mean", "running_var"):
        assert_close(ours[key], theirs[key], dtype, key)
    for name, got, expected in zip(("grad_x", "grad_weight", "grad_bias"),
                                   fastcnn.batch_norm_backward(g, x, **copies(call)),
                                   refcnn.batch_norm_backward(g, x, **copies(call))):
        assert_close(got, expected, dtype, name)


def test_backward_reads_but_never_writes_the_running_statistics():
    call = dict(x=np.arange(12.0).reshape(2, 3, 2), grad_out=np.ones((2, 3, 2)), running_mean=np.zeros(3),
                running_var=np.ones(3), training=True)
    fastcnn.batch_norm_backward(**call)
    assert np.all(call["running_mean"] == 0) and np.all(call["running_var"] == 1)


@pytest.mark.parametrize("stats_dtype", [np.float16, np.float32])
def test_running_statistics_keep_their_dtype_and_match_refcnn(stats_dtype):
    x = np.random.default_rng(3).standard_normal((4, 2))  # one cell per row: refcnn's order, so exactly
    ours = [np.array([0.5, -1.0], stats_dtype), np.array([1.0, 2.0], stats_dtype)]
    theirs = [a.copy() for a in ours]
    fastcnn.batch_norm(x, *ours, training=True, momentum=0.3)
    refcnn.batch_norm(x, *theirs, training=True, momentum=0.3)
    for a, b in zip(ours, theirs):
        assert a.dtype == stats_dtype and np.array_equal(a, b)


@pytest.mark.parametrize("param_dtype", [np.float16, np.float32, ">f4", ">f8"])
def test_weights_and_running_statistics_of_any_float_dtype_match_refcnn(param_dtype):
    """The kernels read native float32 and float64 weights and running statistics where they are (and update the
    running ones in place) and take float64 copies of the others (float16, big-endian): the same results as
    refcnn either way, forward, running statistics and backward, through the fused ReLU op too."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3))  # one cell per row: refcnn's order, so the running statistics exactly
    params = [np.array(v, dtype=param_dtype) for v in ([0.5, -1.0, 2.0], [1.0, 2.0, 0.5], [1.5, -0.5, 1.0],
                                                       [0.1, 0.2, -0.3])]
    ours, theirs = [p.copy() for p in params], [p.copy() for p in params]
    y = fastcnn.batch_norm_relu(x, *ours, training=True, momentum=0.3)
    expected = refcnn.relu(refcnn.batch_norm(x, *theirs, training=True, momentum=0.3))
    assert_close(y, expected, np.float64, "y")
    for a, b in zip(ours[:2], theirs[:2]):
        assert a.dtype == np.dtype(param_dtype) and np.array_equal(a, b)
    g = rng.standard_normal((4, 3))
    got = fastcnn.batch_norm_backward(g, x, *ours, training=True)
    for a, b, what in zip(got, refcnn.batch_norm_backward(g, x, *theirs, training=True), ("grad_x", "weight", "bias")):
        assert_close(a, b, np.float64, what)


def test_read_only_statistics_and_weights_are_read_in_place():
    """Out of training the running statistics are only read, so read-only ones are taken (a model's buffers from
    a file may be read-only views), as read-only weights are in training: the same results as refcnn."""
    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((4, 3, 5, 5)).astype(np.float32), rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    arrays = [np.array(v, np.float32) for v in ([0.5, -1.0, 2.0], [1.0, 2.0, 0.5], [1.5, -0.5, 1.0], [0.1, 0.2, 0.3])]
    for a in arrays:
        a.flags.writeable = False
    got = fastcnn.batch_norm_relu(x, *arrays, training=False, saved_stats=np.empty((2, 3)))
    assert_close(got, refcnn.relu(refcnn.batch_norm(x, *arrays, training=False)), np.float32, "eval")
    got = fastcnn.batch_norm_backward(g, x, *arrays, training=False)
    for a, b, what in zip(got, refcnn.batch_norm_backward(g, x, *arrays, training=False), ("gx", "gw", "gb")):
        assert_close(a, b, np.float32, what)
    stats = [np.zeros(3, np.float32), np.ones(3, np.float32)]
    got = fastcnn.batch_norm(x, *stats, *arrays[2:], training=True)
    assert_close(got, refcnn.batch_norm(x, np.zeros(3), np.ones(3), *arrays[2:], training=True), np.float32, "train")


def test_running_statistics_may_be_strided_views():
    x = np.random.default_rng(4).standard_normal((5, 3))
    stats = np.zeros((2, 6))
    ours = stats.copy()
    refcnn.batch_norm(x, stats[0, ::2], stats[1, ::2], training=True)
    fastcnn.batch_norm(x, ours[0, ::2], ours[1, ::2], training=True)
    assert np.array_equal(ours, stats)


def test_mixed_dtypes_promote_like_numpy():
    x = np.ones((2, 3), np.float32) + np.arange(3, dtype=np.float32)
    y = fastcnn.batch_norm(x, np.zeros(3), np.ones(3), training=False)
    assert y.dtype == np.float64
    assert fastcnn.batch_norm(x.astype(np.float16), None, None, training=True).dtype == np.float16


def test_zero_variance_and_nan_follow_refcnn():
    x = np.array([[1.0, np.nan], [1.0, 2.0]])
    for training, eps in ((True, 1e-5), (False, 0.0)):
        call = dict(running_mean=np.zeros(2), running_var=np.array([0.0, 1.0]), training=training, eps=eps)
        got = fastcnn.batch_norm(x, **copies(call))
        assert np.array_equal(got, refcnn.batch_norm(x, **copies(call)), equal_nan=True)
        got = fastcnn.batch_norm_backward(np.ones_like(x), x, **copies(call))[0]
        with np.errstate(all="ignore"):
            expected = refcnn.batch_norm_backward(np.ones_like(x), x, **copies(call))[0]
        assert np.array_equal(got, expected, equal_nan=True)


# -------------------------------------------------------------------------------------------- errors

def valid_call() -> dict:
    return dict(x=np.ones((2, 3, 2)), grad_out=np.ones((2, 3, 2)), running_mean=np.zeros(3),
                running_var=np.ones(3), weight=np.ones(3), bias=np.zeros(3), training=True, momentum=0.1,
                eps=1e-5)


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


invalid_arguments = st.sampled_from([
    dict(x=np.ones(3)), dict(x=np.ones((1, 1, 1, 1, 2))), dict(x=np.ones((2, 3), dtype=int)),
    dict(x=[[1.0, 2.0]]), dict(x=np.ones((0, 3))), dict(x=np.ones((1, 3)), grad_out=np.ones((1, 3))),
    dict(weight=np.ones(2)), dict(bias=np.ones((3, 1))), dict(running_var=np.ones(4)),
    dict(running_mean=None), dict(running_var=None), dict(running_mean=None, running_var=None, training=False),
    dict(running_mean=read_only(np.zeros(3))), dict(momentum=1.5), dict(momentum=-0.1), dict(eps=-1e-5),
    dict(eps=0.0), dict(eps=float("nan")), dict(training=1), dict(weight=np.ones(3, dtype=int)),
    dict(grad_out=np.ones((2, 3))), dict(grad_out=np.ones((2, 3, 2), dtype=int)),
])


@settings(max_examples=80)  # cheap: no kernel runs
@given(bad=invalid_arguments, backward=st.booleans())
def test_invalid_arguments_raise_the_same_error_as_refcnn(bad, backward):
    call = dict(valid_call(), **bad)
    if not backward:
        if "grad_out" in bad and len(bad) == 1:
            return  # only the backward takes grad_out
        call.pop("grad_out")
    name = "batch_norm_backward" if backward else "batch_norm"
    expected = raised(getattr(refcnn, name), **copies(call))
    assert expected is not None, f"refcnn accepted {bad}"
    assert raised(getattr(fastcnn, name), **copies(call)) == expected


# ---------------------------------------------------------------------------------- threads, torch

def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(5)
    call = dict(x=rng.standard_normal((6, 5, 9, 11)).astype(np.float32),
                grad_out=rng.standard_normal((6, 5, 9, 11)).astype(np.float32),
                running_mean=np.zeros(5, np.float32), running_var=np.ones(5, np.float32),
                weight=rng.standard_normal(5).astype(np.float32), bias=np.ones(5, np.float32), training=True)

    def run():
        c = copies(call)
        y = fastcnn.batch_norm(**forward_args(c))
        return [y, c["running_mean"], c["running_var"], *fastcnn.batch_norm_backward(**copies(call))]

    assert_bit_identical(results_per_thread_count(run))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_rows_give_the_same_bits_in_any_blocks_of_channels(monkeypatch, dtype):
    """Rows shorter than 64 cells (7x7 maps) go a block of channels at a time, sample by sample
    (fastcnn/norm.py): each channel's sums keep their order, so 1, 2, 3 or 7 blocks give the same bits, forward
    (plain, with ReLU, with a residual and ReLU) and backward (plain, through the ReLU, with the forward's
    statistics), in training and not; and they agree with refcnn."""
    from cnnbase.checks import Verdicts
    from fastcnn import norm

    rng = np.random.default_rng(13)
    x = (3.0 * rng.standard_normal((5, 7, 7, 7)) + 1.0).astype(dtype)
    g, residual = (rng.standard_normal(x.shape).astype(dtype) for _ in range(2))
    weight, bias = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)

    def run(blocks):
        monkeypatch.setattr(norm, "_SETTLED", Verdicts())  # settled calls remember their blocks
        monkeypatch.setattr(norm, "_blocks", lambda a: blocks)
        results = []
        for training in (True, False):
            stats = dict(running_mean=rng.standard_normal(7).astype(dtype),
                         running_var=(rng.random(7) + 0.5).astype(dtype))
            call = dict(weight=weight, bias=bias, training=training)
            saved = np.empty((2, 7))
            y = fastcnn.batch_norm_relu(x, **copies(stats), **call, saved_stats=saved)
            results += [fastcnn.batch_norm(x, **copies(stats), **call), y, saved,
                        fastcnn.batch_norm_add_relu(x, residual, **copies(stats), **call),
                        *fastcnn.batch_norm_backward(g, x, **stats, **call),
                        *fastcnn.batch_norm_relu_backward(g, x, y, **stats, **call),
                        *fastcnn.batch_norm_relu_backward(g, x, y, **stats, **call, saved_stats=saved)]
            running = copies(stats)
            fastcnn.batch_norm(x, **running, **call)
            results += [running["running_mean"], running["running_var"]]
        return results

    rng_state = rng.bit_generator.state
    per_blocks = []
    for blocks in (1, 2, 3, 7):
        rng.bit_generator.state = rng_state  # the same running statistics for each
        per_blocks.append(run(blocks))
    assert_bit_identical(per_blocks)
    call = dict(running_mean=np.zeros(7, dtype), running_var=np.ones(7, dtype), weight=weight, bias=bias,
                training=True)
    assert_close(fastcnn.batch_norm(x, **copies(call)), refcnn.batch_norm(x, **copies(call)), dtype, "y")
    for name, got, expected in zip(("grad_x", "grad_weight", "grad_bias"),
                                   fastcnn.batch_norm_backward(g, x, **copies(call)),
                                   refcnn.batch_norm_backward(g, x, **copies(call))):
        assert_close(got, expected, dtype, name)


@settings(max_examples=20)
@given(batch_norm_calls(dtypes=(np.float64,)))
def test_agrees_with_torch(call):
    torch = pytest.importorskip("torch")
    ours = copies(call)
    tensors = {k: (torch.tensor(v, requires_grad=k in ("x", "weight", "bias")) if isinstance(v, np.ndarray)
                   else v) for k, v in copies(call).items()}
    y_torch = torch.nn.functional.batch_norm(
        tensors["x"], tensors["running_mean"], tensors["running_var"], tensors["weight"], tensors["bias"],
        call["training"], call["momentum"], call["eps"])
    y_torch.backward(tensors["grad_out"])
    y = fastcnn.batch_norm(**forward_args(ours))
    assert_close(y, y_torch.detach().numpy(), np.float64, "y vs torch", tolerance=1e-9)
    for key in ("running_mean", "running_var"):
        if call[key] is not None:
            assert_close(ours[key], tensors[key].numpy(), np.float64, f"{key} vs torch", tolerance=1e-9)
    grads = fastcnn.batch_norm_backward(**copies(call))
    for name, g, key in zip(("grad_x", "grad_weight", "grad_bias"), grads, ("x", "weight", "bias")):
        if g is not None:
            assert_close(g, tensors[key].grad.numpy(), np.float64, f"{name} vs torch", tolerance=1e-9)
