"""fastcnn's fused ops (issue 16, item 2) against the unfused composition they replace.

``relu_pool_forward(g, x)`` must be ``pool_forward(g, relu(x))`` and ``relu_pool_backward(g, grad, x)`` must be
``relu_backward(pool_backward(g, grad, relu(x)), x)``: bit for bit against fastcnn's own plain ops (sign of
zero included), and against refcnn's plain ops (the oracle): the forward exactly (max pooling and ReLU only
move or zero values), the backward within fastcheck's tolerance (overlapping windows add gradients, in float64
in refcnn; exact where windows do not overlap). Then ``cnn.Model``: its
fused pass (conv-ReLU-maxpool) gives the unfused layers' results and gradients bit for bit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn.model import Model
from cnnbase.pool import pool_geometry
from fastcheck import assert_agrees, assert_bit_identical, results_per_thread_count, unfused_pass

#: (rank, sample shape (C, *sizes), kernel, stride, padding, dilation, ceil_mode): the plain 2x2 kernel (even
#: and odd sizes) and the general geometries that run the two ops.
GEOMETRIES = [
    (2, (3, 8, 8), 2, 2, 0, 1, False),
    (2, (2, 9, 7), 2, 2, 0, 1, False),
    (2, (2, 7, 7), 2, 2, 0, 1, True),
    (2, (2, 9, 9), 3, 2, 1, 1, False),
    (2, (2, 6, 6), 2, 1, 0, 1, False),
    (2, (1, 9, 9), 2, 2, 0, 2, False),
    (1, (3, 11), 2, 2, 0, 1, False),
]


def _geometry(rank, sample, kernel, stride, padding, dilation, ceil_mode, kind="max"):
    return pool_geometry(f"{kind}_pool{rank}d", (1,) + sample, kernel, stride, padding, dilation, ceil_mode, rank,
                         kind=kind)


def _hostile_values(shape, dtype, seed):
    """Normal values with ties at 0, windows of negatives only, -0.0, NaN and infinities."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    picks = rng.random(shape)
    x[picks < 0.15] = 0.0
    x[(picks >= 0.15) & (picks < 0.2)] = -0.0
    x[(picks >= 0.2) & (picks < 0.22)] = np.nan
    x[(picks >= 0.22) & (picks < 0.24)] = -np.inf
    x[(picks >= 0.24) & (picks < 0.26)] = np.inf
    x[0, 0] = -np.abs(x[0, 0]) - 1.0  # one map of negatives only: every window's ReLU'd values tie at 0
    return x.astype(dtype)


def _gradient(shape, dtype, seed):
    g = np.random.default_rng(seed).standard_normal(shape)
    g.flat[::7] = -g.flat[::7]  # negative gradients at cells ReLU zeroes give -0.0 in the composition
    g.flat[3] = np.inf  # an infinite gradient times ReLU's 0 is NaN: the fused pass must put it where the
    return g.astype(dtype)  # composition does


def _assert_same_bits(got, expected, what):
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    np.testing.assert_array_equal(got, expected, err_msg=what)
    assert np.array_equal(np.signbit(got), np.signbit(expected)), f"{what}: the sign of a zero differs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setup", GEOMETRIES)
def test_relu_pool_is_the_composition_of_the_plain_ops(setup, dtype):
    g = _geometry(*setup)
    x = _hostile_values((3,) + setup[1], dtype, seed=len(setup[1]) + setup[2])
    y = fastcnn.relu_pool_forward(g, x)
    _assert_same_bits(y, fastcnn.pool_forward(g, fastcnn.relu(x)), f"forward {setup}")
    np.testing.assert_array_equal(y, refcnn.pool_forward(g, refcnn.relu(x)).astype(dtype))
    grad = _gradient(y.shape, dtype, seed=5)
    got = fastcnn.relu_pool_backward(g, grad, x)
    _assert_same_bits(got, fastcnn.relu_backward(fastcnn.pool_backward(g, grad, fastcnn.relu(x)), x),
                      f"backward {setup}")
    oracle = refcnn.relu_backward(refcnn.pool_backward(g, grad, refcnn.relu(x)), x)
    # Overlapping windows add gradients: in the input's dtype here, in float64 in refcnn (fastcheck's rule).
    assert_agrees(got, oracle, dtype=dtype, reduction=setup[2] ** setup[0], what=f"backward {setup} against refcnn")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_2x2_window_of_special_values(dtype):
    """Every 2x2 window over {NaN, -inf, -1, -0.0, 0.0, 2, inf} (7**4 windows side by side, so the vectorised
    loops run): value and routed gradient are refcnn's composition, the gradient's zeros signed as fastcnn's."""
    values = [np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf]
    windows = np.array(list(itertools.product(values, repeat=4)))
    n = len(windows)
    x = np.empty((1, 1, 2, 2 * n))
    x[0, 0, 0, 0::2], x[0, 0, 0, 1::2], x[0, 0, 1, 0::2], x[0, 0, 1, 1::2] = windows.T
    x = x.astype(dtype)
    g = _geometry(2, (1, 2, 2 * n), 2, 2, 0, 1, False)
    grad = ((-1.0) ** np.arange(n) * np.arange(1.0, n + 1)).reshape(1, 1, 1, n).astype(dtype)
    np.testing.assert_array_equal(fastcnn.relu_pool_forward(g, x),
                                  refcnn.pool_forward(g, refcnn.relu(x)).astype(dtype))
    got = fastcnn.relu_pool_backward(g, grad, x)
    np.testing.assert_array_equal(got, refcnn.relu_backward(refcnn.pool_backward(g, grad, refcnn.relu(x)), x))
    _assert_same_bits(got, fastcnn.relu_backward(fastcnn.pool_backward(g, grad, fastcnn.relu(x)), x), "2x2")


def test_fused_ops_are_bit_identical_with_one_and_two_threads():
    x = _hostile_values((4, 8, 13, 12), np.float32, seed=3)
    geometries = [_geometry(2, (8, 13, 12), 2, 2, 0, 1, False), _geometry(2, (8, 13, 12), 3, 2, 1, 1, True)]

    def run():
        out = []
        for g in geometries:
            y = fastcnn.relu_pool_forward(g, x)
            out += [y, fastcnn.relu_pool_backward(g, np.ones_like(y), x)]
        return out

    assert_bit_identical(results_per_thread_count(run))


def test_fused_ops_refuse_what_they_cannot_compute():
    x = np.ones((2, 3, 4, 4), dtype=np.float32)
    avg = _geometry(2, (3, 4, 4), 2, 2, 0, 1, False, kind="avg")
    with pytest.raises(ValueError, match=r"relu_pool_forward: .* `geometry`\. Expected a max pooling"):
        fastcnn.relu_pool_forward(avg, x)
    with pytest.raises(TypeError, match=r"`geometry`"):
        fastcnn.relu_pool_forward((2, 2), x)
    g = _geometry(2, (3, 4, 4), 2, 2, 0, 1, False)
    with pytest.raises(ValueError, match=r"argument `x` must have shape"):
        fastcnn.relu_pool_forward(g, np.ones((2, 3, 5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"grad_out"):
        fastcnn.relu_pool_backward(g, np.ones((2, 3, 3, 2), dtype=np.float32), x)


SPEC = "conv4k3 relu, conv6k3 relu, maxpool2, dropout0.25, flatten, dense8 relu, dropout0.5, dense5 softmax"


def test_model_fuses_conv_relu_maxpool_bit_for_bit():
    model = Model(SPEC, (1, 12, 12), seed=4)
    conv, pool = model.layers[1], model.layers[2]
    assert conv.relu_pool is pool and pool.relu_from is conv
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 1, 12, 12)).astype(np.float32)
    logits = model.forward(x, training=True, step=3)
    assert pool._fused and conv._relu_handed_on  # the fused path ran
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    plain_logits, plain_grad_x, plain_grads = unfused_pass(model, x, grad, step=3)
    assert not pool._fused
    np.testing.assert_array_equal(logits, plain_logits)
    np.testing.assert_array_equal(grad_x, plain_grad_x)
    for key in grads:
        np.testing.assert_array_equal(grads[key], plain_grads[key], err_msg=key)


def test_features_of_a_fused_layer_are_its_activated_output():
    """Model.features looks at each layer's own output: the conv's is after its ReLU, fused pass or not."""
    model = Model(SPEC, (1, 12, 12), seed=4)
    x = np.random.default_rng(1).standard_normal((3, 1, 12, 12)).astype(np.float32)
    model.forward(x)  # a fused pass first must leave nothing behind
    out = model.features(x, "conv2d_1")
    assert out.min() >= 0.0
    np.testing.assert_array_equal(out, fastcnn.relu(model.layers[1]._pre))


def test_a_refcnn_model_runs_the_plain_ops():
    """refcnn has no fused op: the layers fall back to ReLU then pooling (refcnn stays the oracle)."""
    model = Model(SPEC, (1, 12, 12), seed=4, engine="refcnn", dtype="float64")
    model.forward(np.ones((2, 1, 12, 12)), training=True)
    assert not model.layers[1]._relu_handed_on and not model.layers[2]._fused
