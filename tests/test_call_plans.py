"""Remembered checks and set-ups (issue 16): a call's answer or set-up reused only while everything it read is
the same.

``cnnbase.checks.Verdicts`` keeps the answers of ``fit_geometry`` and the batch-norm checks by a key of what they
read; ``fastcnn._runtime.Plans`` keeps F(4x4, 3x3)'s set-ups (index maps, plans, scratch buffers) per call shape
while the scratch buffers they hold are current. These tests change, between two calls, each thing a remembered
answer depends on, and expect the second call to see it: a refusal where the first call passed, the new limit, a
fresh set-up after the buffers grew, and the same numbers as a first call.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import fastcnn
import refcnn
from cnnbase.checks import Verdicts, array_key
from cnnbase.conv import conv_geometry, fit_geometry
from cnnbase import limits
from cnnbase.limits import SizeLimitError
from fastcnn import _runtime, winograd4

RNG = np.random.default_rng(36)


def _conv_arrays(n=2, c=16, k=16, size=14, dtype=np.float32):
    x = RNG.standard_normal((n, c, size, size)).astype(dtype)
    w = RNG.standard_normal((k, c, 3, 3)).astype(dtype)
    geom = conv_geometry("conv2d", (1, c, size, size), w.shape, None, 1, 1, 1, 1, "zeros", 2)
    return geom, x, w


# --- Verdicts ------------------------------------------------------------------------------------------------


def test_verdicts_keep_answers_not_refusals():
    verdicts, calls = Verdicts(), []

    def check(ok):
        calls.append(ok)
        if not ok:
            raise ValueError("refused")
        return "answer"

    with pytest.raises(ValueError):
        verdicts.get("k", lambda: check(False))
    with pytest.raises(ValueError):  # a refusal is not kept: the check runs again
        verdicts.get("k", lambda: check(False))
    assert verdicts.get("k", lambda: check(True)) == "answer"
    assert verdicts.get("k", lambda: check(False)) == "answer"  # kept: the key said nothing changed
    assert calls == [False, False, True]
    assert verdicts.get(None, lambda: check(True)) == "answer" and calls[-1] is True  # no key: always checked
    assert verdicts.get(["unhashable"], lambda: "checked") == "checked"


def test_verdicts_read_the_size_limit_at_every_call(monkeypatch):
    verdicts = Verdicts()
    monkeypatch.delenv("CNN_MAX_ARRAY_BYTES", raising=False)
    assert verdicts.get("k", lambda: 1) == 1
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "1K")
    assert verdicts.get("k", lambda: 2) == 2  # another limit: another key


def test_array_key_holds_type_dtype_and_shape():
    a = np.zeros((2, 3), dtype=np.float32)
    assert array_key(a) == (np.ndarray, np.dtype(np.float32), (2, 3))
    assert array_key(a.astype(">f4")) != array_key(a)
    assert array_key(np.zeros((3, 2), np.float32)) != array_key(a)
    assert array_key(None) is None and array_key([1.0]) is None
    assert array_key(None, (None,)) == ("is", "None")


def test_fit_geometry_refuses_what_it_passed_before_once_an_argument_changes():
    geom, x, w = _conv_arrays()
    assert fit_geometry(geom, x, w, None).N == 2
    assert fit_geometry(geom, x[:1], w, None).N == 1  # another batch: its own answer
    with pytest.raises(TypeError, match="floating-point"):
        fit_geometry(geom, x.astype(np.int32), w, None)
    with pytest.raises(ValueError, match="weight"):
        fit_geometry(geom, x, w[:, :8], None)
    with pytest.raises(TypeError):
        fit_geometry(geom, x, w.tolist(), None)
    with pytest.raises(ValueError, match="grad_out"):
        fit_geometry(geom, x, w, None, np.zeros((2, 16, 13, 13), np.float32), caller="conv_backward")


def test_conv_calls_honour_a_limit_set_between_them(monkeypatch):
    geom, x, w = _conv_arrays(n=8, size=28)
    monkeypatch.delenv("CNN_MAX_ARRAY_BYTES", raising=False)
    fastcnn.conv_forward(geom, x, w)
    fastcnn.conv_forward(geom, x, w)
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "64K")
    with pytest.raises(SizeLimitError, match="CNN_MAX_ARRAY_BYTES"):
        fastcnn.conv_forward(geom, x, w)
    monkeypatch.delenv("CNN_MAX_ARRAY_BYTES")
    fastcnn.conv_forward(geom, x, w)
    monkeypatch.setitem(limits.LIMITS, "CNN_MAX_ARRAY_BYTES", 64 * 1024)  # a lower default, as a program may set
    with pytest.raises(SizeLimitError, match="CNN_MAX_ARRAY_BYTES"):
        fastcnn.conv_forward(geom, x, w)


def test_batch_norm_checks_see_each_change_between_calls():
    x = RNG.standard_normal((4, 3, 5, 5)).astype(np.float32)
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    fastcnn.batch_norm(x, mean, var, training=True, momentum=0.1)
    fastcnn.batch_norm(x, mean, var, training=True, momentum=0.1)
    with pytest.raises(ValueError, match="momentum"):
        fastcnn.batch_norm(x, mean, var, training=True, momentum=1.5)
    read_only = mean.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        fastcnn.batch_norm(x, read_only, var, training=True)
    with pytest.raises(ValueError, match="one memory cell"):
        fastcnn.batch_norm(x, np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (3,), (0,), writeable=True),
                           var, training=True)
    with pytest.raises(ValueError, match="running_var"):
        fastcnn.batch_norm(x, mean, np.ones(4, np.float32), training=True)
    with pytest.raises(TypeError, match="training"):
        fastcnn.batch_norm(x, mean, var, training="yes")
    grad = np.ones_like(x)
    fastcnn.batch_norm_backward(grad, x, mean, var, training=True)
    with pytest.raises(ValueError, match="grad_out"):
        fastcnn.batch_norm_backward(grad[:, :2], x, mean, var, training=True)



def test_equal_geometries_are_one_object_and_settled_calls_share_it():
    """Geometries are made once per value (cnnbase.conv.canonical): two layers of one shape hold the same object,
    and the settled calls of conv_forward and conv_backward (another batch: a fitted geometry) share theirs, so
    the set-ups remembered by geometry are found by identity. Equality, hashing and pickling are unchanged."""
    import pickle

    args = ("conv2d", (4, 3, 9, 9), (5, 3, 3, 3), None, 1, 1, 1, 1, "zeros", 2)
    first, second = conv_geometry(*args), conv_geometry(*args)
    assert first is second
    other = conv_geometry("conv2d", (4, 3, 9, 9), (5, 3, 3, 3), None, 2, 1, 1, 1, "zeros", 2)
    assert other is not first and other != first
    copy = pickle.loads(pickle.dumps(first))
    assert copy == first and hash(copy) == hash(first)
    x, w = RNG.standard_normal((6, 3, 9, 9)).astype(np.float32), RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y = fastcnn.conv_forward(first, x, w)
    forward, _, _ = fastcnn.conv.settled("conv_forward", first, "auto", x, w, None)
    backward, _, _ = fastcnn.conv.settled("conv_backward", second, "auto", x, w, None, np.ones_like(y))
    assert forward is backward and forward.N == 6 and forward == first.with_batch(6)

def test_linear_checks_and_dtypes_see_each_change_between_calls():
    x, w, b = (RNG.standard_normal(shape).astype(np.float32) for shape in ((4, 6), (3, 6), (3,)))
    g = np.ones((4, 3), np.float32)
    for _ in range(2):
        assert fastcnn.linear(x, w, b).dtype == np.float32
        assert [a.dtype for a in fastcnn.linear_backward(g, x, w, b)] == [np.float32] * 3
    assert fastcnn.linear(x, w, b.astype(np.float64)).dtype == np.float64  # promoted again, not remembered
    assert fastcnn.linear(x, w, None).shape == (4, 3)
    with pytest.raises(ValueError, match="weight"):
        fastcnn.linear(x, w[:, :5], b)
    with pytest.raises(ValueError, match="bias"):
        fastcnn.linear(x, w, b[:2])
    with pytest.raises(TypeError, match="x"):
        fastcnn.linear(x.astype(np.int32), w, b)
    with pytest.raises(ValueError, match="grad_out"):
        fastcnn.linear_backward(g[:, :2], x, w, b)
    with pytest.raises(TypeError, match="grad_out"):
        fastcnn.linear_backward(None, x, w, b)

# --- Settled calls: fastcnn's public ops remember their checks, dtypes and algorithm per signature ---------------


def test_settled_conv_calls_look_the_algorithm_up_at_each_call(monkeypatch):
    """conv_forward remembers which algorithm computes a signature by its name: an entry swapped in the registry
    (as benchmarks/step_ab.py swaps them) is the one called next, and with NumPy's CBLAS switched off the rule is
    asked again (F(4x4) needs CBLAS), so the direct path computes the same convolution."""
    geom, x, w = _conv_arrays(n=2, size=14)
    expected = fastcnn.conv_forward(geom, x, w)
    entry, calls = fastcnn.conv.ALGORITHMS["winograd4"], []

    def spy(*args):
        calls.append(args[0])
        return entry[1](*args)

    monkeypatch.setitem(fastcnn.conv.ALGORITHMS, "winograd4", (entry[0], spy, entry[2]))
    assert np.array_equal(fastcnn.conv_forward(geom, x, w), expected) and len(calls) == 1
    monkeypatch.setattr(fastcnn._blas, "CBLAS", False)
    direct = fastcnn.conv_forward(geom, x, w)
    assert len(calls) == 1 and np.abs(direct - expected).max() <= 1e-4 * np.abs(expected).max()


def test_settled_fused_ops_still_check_their_own_arguments():
    """A fused op's remembered answer covers its own checks too: after a call that passed, each argument the
    fused op adds (shortcut_grad, y, addend, input_grad, relu, eps, residual) is checked again when it changes."""
    geom, x, w = _conv_arrays(n=2, size=14)
    g = np.ones((2, 16, 14, 14), np.float32)
    fastcnn.conv_backward_add(geom, g, x, w, None, g, x)
    with pytest.raises(ValueError, match="shortcut_grad"):
        fastcnn.conv_backward_add(geom, g, x, w, None, g[:, :8], x)
    with pytest.raises(TypeError, match="`y`"):
        fastcnn.conv_backward_add(geom, g, x, w, None, g, x.astype(np.int32))
    with pytest.raises(TypeError, match="input_grad"):
        fastcnn.conv_backward_add(geom, g, x, w, None, g, x, input_grad="no")
    fastcnn.conv_backward_sum(geom, g, x, w, None, g)
    with pytest.raises(ValueError, match="addend"):
        fastcnn.conv_backward_sum(geom, g, x, w, None, g[:1])
    stats = (np.zeros(16, np.float32), np.ones(16, np.float32))
    fastcnn.conv_batch_norm_forward(geom, x, w, None, *stats, relu=True)
    with pytest.raises(TypeError, match="relu"):
        fastcnn.conv_batch_norm_forward(geom, x, w, None, *stats, relu="yes")
    with pytest.raises(ValueError, match="eps"):
        fastcnn.conv_batch_norm_forward(geom, x, w, None, *stats, eps=-1.0)
    with pytest.raises(ValueError, match="residual"):
        fastcnn.conv_batch_norm_forward(geom, x, w, None, *stats, residual=g[:, :, :7])


def test_settled_batch_norms_check_saved_stats_and_residual_again():
    x = RNG.standard_normal((4, 3, 5, 5)).astype(np.float32)
    mean, var, saved = np.zeros(3, np.float32), np.ones(3, np.float32), np.empty((2, 3))
    fastcnn.batch_norm_relu(x, mean, var, training=True, saved_stats=saved)
    read_only = saved.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="saved_stats"):
        fastcnn.batch_norm_relu(x, mean, var, training=True, saved_stats=read_only)
    with pytest.raises(ValueError, match="saved_stats"):
        fastcnn.batch_norm_relu(x, mean, var, training=True, saved_stats=saved[:, :2])
    fastcnn.batch_norm_add_relu(x, x, mean, var, training=True)
    with pytest.raises(ValueError, match="residual"):
        fastcnn.batch_norm_add_relu(x, x[:2], mean, var, training=True)


# --- Plans ---------------------------------------------------------------------------------------------------


def test_plans_forget_every_entry_when_a_scratch_buffer_grows():
    plans, built = _runtime.Plans(), []

    def build(size):
        built.append(size)
        return _runtime.SCRATCH.get("test_call_plans.buffer", size, np.float32)

    first = plans.get("small", lambda: build(16))
    assert plans.get("small", lambda: build(16)) is first and built == [16]
    ref = weakref.ref(first.base)
    plans.get("large", lambda: build(10 ** 6))  # grows the buffer "small" holds a view of
    del first
    gc.collect()
    assert ref() is None  # no entry keeps the replaced buffer alive
    again = plans.get("small", lambda: build(16))
    assert built == [16, 10 ** 6, 16]
    assert again.base is _runtime.SCRATCH.get("test_call_plans.buffer", 1, np.float32).base


def test_plans_forget_past_their_size():
    plans = _runtime.Plans()
    for i in range(plans.MAX + 3):
        plans.get(i, lambda: i)
    assert len(plans._plans) <= plans.MAX


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_results_are_a_first_calls_after_other_shapes_grew_the_buffers(dtype):
    """The same layer called, then a larger one (which grows the scratch buffers its set-up held), then the first
    again: the same bits as the first call each time, and refcnn's values."""
    geom, x, w = _conv_arrays(n=3, size=12, dtype=dtype)
    big_geom, big_x, big_w = _conv_arrays(n=9, c=32, k=32, size=28, dtype=dtype)
    grad = RNG.standard_normal((3, 16, 12, 12)).astype(dtype)
    first = fastcnn.conv_forward(geom, x, w, algorithm="winograd4")
    first_back = fastcnn.conv_backward(geom, grad, x, w, algorithm="winograd4")
    assert winograd4.PLANS._plans  # the set-ups are kept
    fastcnn.conv_forward(big_geom, big_x, big_w, algorithm="winograd4")
    fastcnn.conv_backward(big_geom, np.ones((9, 32, 28, 28), dtype), big_x, big_w, algorithm="winograd4")
    np.testing.assert_array_equal(fastcnn.conv_forward(geom, x, w, algorithm="winograd4"), first)
    for again, before in zip(fastcnn.conv_backward(geom, grad, x, w, algorithm="winograd4"), first_back):
        if before is not None:
            np.testing.assert_array_equal(again, before)
    tol = dict(rtol=2e-3, atol=2e-3) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    expected = refcnn.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_allclose(first, expected, **tol)
