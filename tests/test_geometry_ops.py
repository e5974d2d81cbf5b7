"""conv_forward/conv_backward and pool_forward/pool_backward: a geometry resolved once (for one sample, as a
``cnn`` layer resolves it when built) computes, on any batch, exactly what the op it was resolved for
computes, in both engines; arrays that do not fit it are refused before any kernel runs."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnnbase.conv import conv_geometry, conv_transpose_geometry
from cnnbase.pool import pool_geometry

ENGINES = [refcnn, fastcnn]
RNG = np.random.default_rng(7)


def _same(got, expected):
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e is None:
            assert g is None
        else:
            assert g.shape == e.shape and g.dtype == e.dtype
            np.testing.assert_array_equal(g, e)  # the same computation, so the same bits


CONV_CASES = [
    # (op, rank, x shape, weight shape, keyword arguments)
    ("conv2d", 2, (5, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding="same", dilation=1, groups=2,
                                                   padding_mode="reflect")),
    ("conv1d", 1, (3, 2, 9), (4, 2, 3), dict(stride=1, padding=((2, 1),), dilation=2, groups=1,
                                             padding_mode="circular")),
]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
@pytest.mark.parametrize("op, rank, x_shape, w_shape, kwargs", CONV_CASES)
def test_conv_on_a_geometry_resolved_once_is_the_op(engine, op, rank, x_shape, w_shape, kwargs):
    x, w = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape)
    b = RNG.standard_normal(w_shape[0])
    geometry = conv_geometry(op, (1,) + x_shape[1:], w_shape, b.shape, kwargs["stride"], kwargs["padding"],
                             kwargs["dilation"], kwargs["groups"], kwargs["padding_mode"], rank)
    y = getattr(engine, op)(x, w, b, **kwargs)
    _same(engine.conv_forward(geometry, x, w, b), y)
    g = RNG.standard_normal(y.shape)
    _same(engine.conv_backward(geometry, g, x, w, b), getattr(engine, op + "_backward")(g, x, w, b, **kwargs))


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
def test_transposed_conv_on_a_geometry_resolved_once_is_the_op(engine):
    x, w = RNG.standard_normal((3, 4, 5, 4)), RNG.standard_normal((4, 3, 3, 2))
    kwargs = dict(stride=2, padding=(1, 0), output_padding=1, groups=2, dilation=1)
    geometry = conv_transpose_geometry("conv_transpose2d", (1, 4, 5, 4), w.shape, None, 2, (1, 0), 1, 2, 1, 2)
    y = engine.conv_transpose2d(x, w, None, **kwargs)
    _same(engine.conv_forward(geometry, x, w), y)
    g = RNG.standard_normal(y.shape)
    _same(engine.conv_backward(geometry, g, x, w), engine.conv_transpose2d_backward(g, x, w, None, **kwargs))


POOL_CASES = [
    ("max_pool2d", 2, (4, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True,
                                         return_indices=True), dict(kind="max", return_indices=True)),
    ("max_pool2d", 2, (4, 3, 8, 8), dict(kernel_size=2), dict(kind="max")),  # fastcnn's 2x2 kernels
    ("avg_pool1d", 1, (2, 3, 9), dict(kernel_size=4, stride=3, padding=2, ceil_mode=False,
                                      count_include_pad=False), dict(kind="avg", count_include_pad=False)),
]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
@pytest.mark.parametrize("op, rank, x_shape, kwargs, geometry_kwargs", POOL_CASES)
def test_pool_on_a_geometry_resolved_once_is_the_op(engine, op, rank, x_shape, kwargs, geometry_kwargs):
    x = RNG.standard_normal(x_shape)
    geometry = pool_geometry(op, (1,) + x_shape[1:], kwargs["kernel_size"], kwargs.get("stride"),
                             kwargs.get("padding", 0), kwargs.get("dilation", 1), kwargs.get("ceil_mode", False),
                             rank, **geometry_kwargs)
    y = getattr(engine, op)(x, **kwargs)
    _same(engine.pool_forward(geometry, x), y)
    g = RNG.standard_normal((y[0] if isinstance(y, tuple) else y).shape)
    _same(engine.pool_backward(geometry, g, x), getattr(engine, op + "_backward")(g, x, **kwargs))


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
def test_arrays_that_do_not_fit_the_geometry_are_refused_by_name(engine):
    geometry = conv_geometry("conv2d", (1, 2, 5, 5), (3, 2, 3, 3), (3,), 1, 0, 1, 1, "zeros", 2)
    x, w, b = np.ones((4, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"conv2d: argument `x` must have shape \(N,\) \+ \(2, 5, 5\)"):
        engine.conv_forward(geometry, np.ones((4, 2, 6, 5)), w, b)
    with pytest.raises(ValueError, match=r"conv2d: argument `weight` must have shape \(3, 2, 3, 3\)"):
        engine.conv_forward(geometry, x, np.ones((3, 2, 2, 2)), b)
    with pytest.raises(ValueError, match=r"conv2d: argument `bias` must have shape \(3,\)"):
        engine.conv_forward(geometry, x, w, np.ones(4))
    with pytest.raises(ValueError, match=r"conv2d: argument `grad_out` must have shape \(4, 3, 3, 3\)"):
        engine.conv_backward(geometry, np.ones((4, 3, 2, 2)), x, w, b)
    with pytest.raises(TypeError, match="argument `x` must be a numpy.ndarray"):
        engine.conv_forward(geometry, [[1.0]], w, b)
    pool = pool_geometry("max_pool2d", (1, 2, 4, 4), 2, None, 0, 1, False, 2)
    with pytest.raises(ValueError, match=r"max_pool2d: argument `x` must have shape \(N,\) \+ \(2, 4, 4\)"):
        engine.pool_forward(pool, np.ones((3, 2, 4)))
    with pytest.raises(ValueError, match=r"max_pool2d: argument `grad_out` must have shape \(3, 2, 2, 2\)"):
        engine.pool_backward(pool, np.ones((3, 2, 4, 4)), np.ones((3, 2, 4, 4)))
