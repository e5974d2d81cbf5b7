"""fastcnn.pool agrees with refcnn.pool (the oracle), with PyTorch, and raises refcnn's errors.

Tolerances. float64: max abs error <= 1e-12 * max(1, scale), scale = max |refcnn result|. float32: the inputs
are rounded to float32 first and refcnn is run on those very values, so max pooling (which only moves values)
must agree exactly; average pooling rounds each term and the division in float32:
max abs error <= 2e-5 * max(1, scale) * sqrt(window size). The rule and the shared helpers live in
tests/fastcheck.py; the spec's conformance cases run in tests/test_fast_conformance.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cnnconform import strategies
from fastcheck import (assert_agrees, assert_bit_identical, assert_same_api, assert_same_error,
                       results_per_thread_count)
from fastcnn import pool as fast
from refcnn import pool as ref

FORWARDS = [name for name in ref.__all__ if not name.endswith("_backward")]


# ---------------------------------------------------------------------------------------------------------
# Strategies: the window from cnnconform.strategies (hyperparameters first, then sizes where one window fits)
# ---------------------------------------------------------------------------------------------------------

# Local: the shared pooling strategies keep only the calls the spec accepts; this one keeps the windows the
# spec refuses too (a window on padding only), which both engines must refuse with the same error.
@st.composite
def pool_setups(draw, kind):
    """(rank, x, kwargs) for ``max_pool{rank}d`` or ``avg_pool{rank}d``; some windows may cover only padding,
    in which case both engines must raise the same error."""
    rank = draw(st.sampled_from([1, 2]))
    g = draw(strategies.pool_geometries(rank, dilated=kind == "max"))
    ties = draw(st.booleans())  # small integers make ties, which the first-max rule must break alike
    elements = st.integers(-3, 3).map(float) if ties else st.floats(-10, 10, allow_nan=False, width=32)
    # N = 0 too: an empty batch pools to an empty output in both engines
    x = draw(arrays(np.float64, (draw(st.integers(0, 2)), draw(st.integers(1, 2))) + g.sizes, elements=elements))
    kwargs = dict(kernel_size=g.kernel, stride=g.stride_arg, padding=g.padding, ceil_mode=g.ceil_mode)
    if kind == "max":
        kwargs["dilation"] = g.dilation
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if rank == 2:
            kwargs["divisor_override"] = draw(st.sampled_from([None, 1, 3]))
    return rank, x, kwargs


def grad_for(out_shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(out_shape).astype(dtype)


# ---------------------------------------------------------------------------------------------------------
# The public surface
# ---------------------------------------------------------------------------------------------------------


def test_same_names_and_signatures_as_refcnn():
    assert_same_api(fast, ref)


# ---------------------------------------------------------------------------------------------------------
# Agreement with refcnn
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(setup=pool_setups("max"), dtype=st.sampled_from([np.float64, np.float32]))
@example(setup=(2, np.arange(16.0).reshape(1, 1, 4, 4) % 3, dict(kernel_size=2, stride=None, padding=0,
                                                                     ceil_mode=False, dilation=1)),
         dtype=np.float64)
def test_max_pool_forward_indices_and_backward_agree(setup, dtype):
    rank, x, kwargs = setup
    x = x.astype(dtype)
    name = f"max_pool{rank}d"
    if assert_same_error(getattr(fast, name), getattr(ref, name), x, **kwargs):
        return
    out, indices = getattr(fast, name)(x, return_indices=True, **kwargs)
    r_out, r_indices = getattr(ref, name)(x, return_indices=True, **kwargs)
    assert out.dtype == dtype and indices.dtype == np.int64
    assert_agrees(out, r_out, dtype=dtype, what=f"{name} {kwargs}")
    np.testing.assert_array_equal(indices, r_indices, err_msg=f"{name} indices {kwargs}")
    assert_agrees(getattr(fast, name)(x, **kwargs), r_out, dtype=dtype, what=f"{name} values only {kwargs}")
    g = grad_for(out.shape, dtype=dtype)
    got = getattr(fast, f"{name}_backward")(g, x, **kwargs)
    assert got.dtype == dtype
    assert_agrees(got, getattr(ref, f"{name}_backward")(g, x, **kwargs), dtype=dtype,
                  reduction=int(np.prod(kwargs["kernel_size"])), what=f"{name}_backward {kwargs}")


@settings(max_examples=30)
@given(setup=pool_setups("avg"), dtype=st.sampled_from([np.float64, np.float32]))
def test_avg_pool_forward_and_backward_agree(setup, dtype):
    rank, x, kwargs = setup
    x = x.astype(dtype)
    name = f"avg_pool{rank}d"
    if assert_same_error(getattr(fast, name), getattr(ref, name), x, **kwargs):
        return
    window = int(np.prod(kwargs["kernel_size"]))
    out = getattr(fast, name)(x, **kwargs)
    assert out.dtype == dtype
    assert_agrees(out, getattr(ref, name)(x, **kwargs), dtype=dtype, reduction=window, what=f"{name} {kwargs}")
    g = grad_for(out.shape, dtype=dtype)
    assert_agrees(getattr(fast, f"{name}_backward")(g, x, **kwargs), getattr(ref, f"{name}_backward")(g, x, **kwargs),
                  dtype=dtype, reduction=window, what=f"{name}_backward {kwargs}")


@settings(max_examples=20)
@given(shape=st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7)),
       ties=st.booleans(), ceil_mode=st.booleans(), data=st.data())
def test_plain_2x2_fast_path_agrees(shape, ties, ceil_mode, data):
    """2x2 windows with stride 2 take a dedicated kernel (even and odd sizes, ties, NaN)."""
    elements = st.sampled_from([-1.0, 0.0, 1.0, np.nan]) if ties else st.floats(-10, 10, allow_nan=False)
    x = data.draw(arrays(np.float64, shape, elements=elements))
    out = fast.max_pool2d(x, 2, ceil_mode=ceil_mode)
    assert_agrees(out, ref.max_pool2d(x, 2, ceil_mode=ceil_mode), what=f"2x2 {shape}")
    g = grad_for(out.shape)
    np.testing.assert_array_equal(fast.max_pool2d_backward(g, x, 2, ceil_mode=ceil_mode),
                                  ref.max_pool2d_backward(g, x, 2, ceil_mode=ceil_mode))


@settings(max_examples=20)
@given(call=st.sampled_from(["global_avg_pool1d", "global_avg_pool2d"]).flatmap(
    lambda op: strategies.calls(op, elements=st.integers(-3, 3).map(float) | st.floats(-10, 10))))
def test_global_pools_agree(call):
    (x,) = call.args
    rank = x.ndim - 2
    for kind in ("avg", "max"):
        name = f"global_{kind}_pool{rank}d"
        out = getattr(fast, name)(x)
        assert_agrees(out, getattr(ref, name)(x), what=name)
        g = grad_for(out.shape)
        assert_agrees(getattr(fast, f"{name}_backward")(g, x), getattr(ref, f"{name}_backward")(g, x),
                      what=f"{name}_backward")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 2, 1, 1), (3, 1, 5, 2), (2, 3, 9), (4, 64, 56, 56)])
def test_global_average_pools_equal_the_window_of_the_whole_map(dtype, shape):
    """The global average pools' own kernels (a plane as one row) against avg_pool with the whole map as its
    window (the window kernels) and refcnn, with NaN, infinities and -0.0 among the cells; the last shape is
    large enough to run on two threads, and gives the same bits on one. float16 is computed in float32 and
    rounded once: within float16's half ulp of the window kernels' result."""
    rng = np.random.default_rng(29)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0][:x.size]
    rank = len(shape) - 2
    g = rng.standard_normal(shape[:2] + (1,) * rank).astype(dtype)
    g.reshape(-1)[:2] = [-0.0, np.inf]
    name, whole = f"global_avg_pool{rank}d", (shape[2:] if rank == 2 else shape[2])
    y, grad_x = getattr(fast, name)(x), getattr(fast, f"{name}_backward")(g, x)
    assert y.dtype == grad_x.dtype == dtype
    cells = int(np.prod(shape[2:]))
    checks = [(y, getattr(fast, f"avg_pool{rank}d")(x, whole), "forward, window"),
              (grad_x, getattr(fast, f"avg_pool{rank}d_backward")(g, x, whole), "backward, window")]
    if dtype != np.float16:  # refcnn returns float64
        checks += [(y, getattr(ref, name)(x), "forward, refcnn"), (grad_x, getattr(ref, f"{name}_backward")(g, x),
                                                                   "backward, refcnn")]
    for got, expected, what in checks:
        assert_agrees(got, expected, dtype=np.float32 if dtype == np.float16 else dtype,
                      tolerance=1e-3 if dtype == np.float16 else None,
                      reduction=cells if what.startswith("forward") else 1, what=what)
    if shape[1] == 64:
        assert_bit_identical(results_per_thread_count(
            lambda: [getattr(fast, name)(x), getattr(fast, f"{name}_backward")(g, x)]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_2x2_every_window_of_special_values(dtype):
    """Every 2x2 window over {NaN, -inf, -1, -0.0, 0.0, 2, inf} (7**4 = 2401 windows side by side in one
    row pair, so the 2x2 kernels' vectorised loops run, not only their scalar ends): the value and the
    routed gradient are refcnn's, bit for bit (first maximum on ties, -0.0 == 0.0, the last NaN)."""
    import itertools

    values = [np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf]
    windows = np.array(list(itertools.product(values, repeat=4)))
    n = len(windows)
    x = np.empty((1, 1, 2, 2 * n))
    x[0, 0, 0, 0::2], x[0, 0, 0, 1::2], x[0, 0, 1, 0::2], x[0, 0, 1, 1::2] = windows.T
    g = np.arange(1.0, n + 1).reshape(1, 1, 1, n)
    xs, gs = x.astype(dtype), g.astype(dtype)
    np.testing.assert_array_equal(fast.max_pool2d(xs, 2), ref.max_pool2d(xs, 2).astype(dtype))
    np.testing.assert_array_equal(fast.max_pool2d_backward(gs, xs, 2), ref.max_pool2d_backward(gs, xs, 2))


def test_nan_is_won_by_the_last_nan_as_in_refcnn():
    nan = np.nan
    x = np.array([[[[1, nan, 3], [nan, 0, 2], [5, 6, 7]]], [[[nan, 1, 1], [2, nan, 9], [0, 0, nan]]]])
    out, indices = fast.max_pool2d(x, 2, stride=1, return_indices=True)
    r_out, r_indices = ref.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(out, r_out)
    np.testing.assert_array_equal(indices, r_indices)
    g = grad_for(out.shape)
    np.testing.assert_array_equal(fast.max_pool2d_backward(g, x, 2, stride=1),
                                  ref.max_pool2d_backward(g, x, 2, stride=1))
    np.testing.assert_array_equal(fast.global_max_pool2d_backward(np.ones((2, 1, 1, 1)), x),
                                  ref.global_max_pool2d_backward(np.ones((2, 1, 1, 1)), x))


# ---------------------------------------------------------------------------------------------------------
# Errors: refcnn's, word for word
# ---------------------------------------------------------------------------------------------------------

X4 = np.arange(16.0).reshape(1, 1, 4, 4)


@st.composite
def invalid_calls(draw):  # local: one bad argument each, where the shared strategies draw valid calls only
    """One bad argument among otherwise valid ones."""
    name = draw(st.sampled_from(["max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"]))
    x = X4 if name.endswith("2d") else X4[0]
    kwargs = dict(kernel_size=2)
    bad = draw(st.sampled_from(["kernel_size", "stride", "padding", "dilation", "ceil_mode", "x", "flag",
                                "too_big", "empty_window", "grad_out"]))
    if bad in ("kernel_size", "stride"):
        kwargs[bad] = draw(st.sampled_from([0, -1, 2.0, (2, 2, 2), "2"]))
    elif bad == "padding":
        kwargs["padding"] = draw(st.sampled_from([-1, "full", ((1, 1), 2), (1, 2, 3)]))
    elif bad == "dilation":
        if name.startswith("max"):
            kwargs["dilation"] = draw(st.sampled_from([0, 1.5]))
        else:  # average pooling has no dilation
            kwargs["kernel_size"] = 0
    elif bad == "ceil_mode":
        kwargs["ceil_mode"] = draw(st.sampled_from([1, "yes", None]))
    elif bad == "x":
        x = draw(st.sampled_from([x.astype(np.int64), x.tolist(), x[0], np.zeros(x.shape[:-1] + (0,))]))
    elif bad == "flag":
        key = "return_indices" if name.startswith("max") else "count_include_pad"
        kwargs[key] = draw(st.sampled_from([0, "no"]))
        if name == "avg_pool2d" and draw(st.booleans()):
            kwargs = dict(kernel_size=2, divisor_override=draw(st.sampled_from([0, -2, 1.5])))
    elif bad == "too_big":
        kwargs["kernel_size"] = 5
    elif bad == "empty_window":
        kwargs.update(padding=3, stride=1)
        if name.startswith("avg"):
            kwargs["count_include_pad"] = False
    return name, x, kwargs, bad == "grad_out"


@settings(max_examples=40)
@given(call=invalid_calls())
def test_invalid_arguments_raise_refcnn_errors(call):
    name, x, kwargs, bad_grad = call
    if bad_grad:
        shape = np.shape(x)
        g = np.ones(shape[:-1] + (shape[-1] + 1,))
        assert assert_same_error(getattr(fast, f"{name}_backward"), getattr(ref, f"{name}_backward"), g, x, **kwargs)
        return
    assert assert_same_error(getattr(fast, name), getattr(ref, name), x, **kwargs), (name, kwargs)
    out_shape = (1, 1, 2, 2) if name.endswith("2d") else (1, 4, 2)
    assert_same_error(getattr(fast, f"{name}_backward"), getattr(ref, f"{name}_backward"),
                      np.ones(out_shape), x, **kwargs)


@pytest.mark.parametrize("name", ["global_max_pool1d", "global_avg_pool2d"])
def test_global_pool_errors_match(name):
    for x in (X4.astype(np.int32), X4[0, 0], [1.0], np.zeros((1, 1, 0, 2))):
        assert assert_same_error(getattr(fast, name), getattr(ref, name), x)


# ---------------------------------------------------------------------------------------------------------
# Dtypes, threads (the conformance cases run in tests/test_fast_conformance.py)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", FORWARDS)
def test_returns_the_input_dtype(dtype, name):
    rank = 2 if name.endswith("2d") else 1
    x = np.random.default_rng(1).standard_normal((2, 2) + (5,) * rank).astype(dtype)
    args = () if name.startswith("global") else (3,)
    kwargs = {} if name.startswith("global") else dict(stride=2, padding=1)
    out = getattr(fast, name)(x, *args, **kwargs)
    assert out.dtype == dtype
    g = np.ones(out.shape, dtype=dtype)
    assert getattr(fast, f"{name}_backward")(g, x, *args, **kwargs).dtype == dtype


def test_bit_identical_with_one_and_two_threads():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 8, 13, 12)).astype(np.float32)
    calls = [
        ("max_pool2d", dict(kernel_size=2)),
        ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
        ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ]

    def run():
        results = []
        for name, kwargs in calls:
            out = getattr(fast, name)(x, **kwargs)
            g = np.ones_like(out)
            results += [out, getattr(fast, f"{name}_backward")(g, x, **kwargs)]
        return results

    assert_bit_identical(results_per_thread_count(run))


# ---------------------------------------------------------------------------------------------------------
# PyTorch as an independent oracle (skipped without it)
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=20)
@given(setup=pool_setups("max"), data=st.data())
def test_agrees_with_torch(setup, data):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rank, x, kwargs = setup
    # PyTorch takes symmetric padding of at most half the kernel only
    kwargs["padding"] = tuple(data.draw(st.integers(0, k // 2)) for k in kwargs["kernel_size"])
    kind = data.draw(st.sampled_from(["max", "avg"]))
    if kind == "avg":
        kwargs.pop("dilation")
        kwargs["count_include_pad"] = data.draw(st.booleans())
    name = f"{kind}_pool{rank}d"
    # The padding redrawn above can leave no room for a window, and dilation can leave a window on padding
    # only (refused here, -inf in PyTorch): those calls must fail as in refcnn; the rest must match PyTorch.
    if assert_same_error(getattr(fast, name), getattr(ref, name), x, **kwargs):
        return
    out = getattr(fast, name)(x, **kwargs)
    xt = torch.tensor(x, requires_grad=True)
    t_out = getattr(F, name)(xt, **kwargs)
    assert_agrees(out, t_out.detach().numpy(), what=f"{name} {kwargs} vs torch")
    g = grad_for(out.shape)
    t_out.backward(torch.tensor(g))
    assert_agrees(getattr(fast, f"{name}_backward")(g, x, **kwargs), xt.grad.numpy(), what=f"{name}_backward vs torch")
