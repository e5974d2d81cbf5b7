"""``input_grad=False``: a first layer's input gradient is skipped in training, and nothing else changes.

The engines' ``conv_backward`` returns ``None`` for ``grad_x`` and the same weight and bias gradients; a model's
``backward(..., input_grad=False)`` (what a training step calls) fills the same parameter gradients as the
full backward, bit for bit, on both engines.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn.model import Model
from cnnbase.conv import conv_geometry

ENGINES = [refcnn, fastcnn]


@pytest.mark.parametrize("engine", ENGINES, ids=["refcnn", "fastcnn"])
@pytest.mark.parametrize("shape", [(3, 1, 9, 8, 4), (2, 3, 7, 7, 5), (2, 32, 8, 8, 32)],
                         ids=["first-layer", "rgb", "winograd"])
def test_conv_backward_without_the_input_gradient(engine, shape):
    n, c, h, w, k = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((k, c, 3, 3))
    bias = rng.standard_normal(k)
    geom = conv_geometry("conv2d", x.shape, weight.shape, bias.shape, 1, 1, 1, 1, "zeros", 2)
    g = rng.standard_normal((n, k, h, w))
    gx, gw, gb = engine.conv_backward(geom, g, x, weight, bias)
    none, gw2, gb2 = engine.conv_backward(geom, g, x, weight, bias, input_grad=False)
    assert gx is not None and none is None
    assert np.array_equal(gw, gw2) and np.array_equal(gb, gb2)


@pytest.mark.parametrize("engine", ENGINES, ids=["refcnn", "fastcnn"])
def test_input_grad_must_be_a_bool(engine):
    x, weight = np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3))
    geom = conv_geometry("conv2d", x.shape, weight.shape, None, 1, 0, 1, 1, "zeros", 2)
    with pytest.raises(TypeError, match="input_grad"):
        engine.conv_backward(geom, np.ones((1, 2, 2, 2)), x, weight, input_grad=1)


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
def test_model_backward_without_the_input_gradient_fills_the_same_gradients(engine):
    layers = "conv8k3 relu, maxpool2, flatten, dense10"
    model = Model(layers, (1, 10, 10), engine=engine, seed=3, dtype="float64")
    x = np.random.default_rng(1).standard_normal((4, 1, 10, 10))
    grad = np.random.default_rng(2).standard_normal((4, 10))
    model.forward(x, training=True, step=0)
    full = model.backward(grad)
    before = {key: layer.grads[name].copy() for key, layer, name in model.parameters()}
    model.forward(x, training=True, step=0)
    assert model.backward(grad, input_grad=False) is None
    after = {key: layer.grads[name] for key, layer, name in model.parameters()}
    assert full is not None and full.shape == x.shape
    assert before.keys() == after.keys()
    for key in before:
        assert np.array_equal(before[key], after[key]), key
    assert model.layers[0].input_grad  # set back for the next caller
