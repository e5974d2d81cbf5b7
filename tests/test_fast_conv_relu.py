"""fastcnn's fused convolution-ReLU ops (fastcnn/conv_relu.py, issue 16) against the composition they replace,
and cnn.Model taking them.

``conv_relu_forward(cg, x, w, b)`` must be ``relu(conv_forward(cg, x, w, b))`` and
``conv_relu_backward(cg, g, x, w, b, y)`` must be ``conv_backward(cg, relu_backward(g, pre), x, w, b)``: bit for
bit against fastcnn's own plain ops (both run the same im2col + GEMM path, so the fusion changes no rounding),
byte for byte (``fastcheck.assert_bit_identical``: the sign of a zero, NaN and infinities included); and
within float64 rounding of refcnn's plain ops (the oracle).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn.model import Model
from cnnbase.conv import conv_geometry
from fastcheck import assert_bit_identical, results_per_thread_count, unfused_pass

#: (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups, rank): the seeds' first layer scaled down
#: in batch, RGB with padding, strides, dilation, groups of more than two channels, a 1-D layer.
LAYERS = [
    (4, 1, 28, 28, 32, 3, 1, 0, 1, 1, 2),
    (3, 3, 13, 11, 8, 5, 1, 2, 1, 1, 2),
    (2, 3, 15, 15, 6, 3, 2, 1, 1, 1, 2),
    (2, 2, 12, 12, 5, 3, 1, 1, 2, 1, 2),
    (2, 8, 9, 9, 6, 3, 1, 1, 1, 2, 2),
    (3, 2, 1, 40, 7, 5, 1, 2, 1, 1, 1),
]


def _geometry(N, C, H, W, K, k, stride, padding, dilation, groups, rank, bias=True):
    x_shape = (N, C, W) if rank == 1 else (N, C, H, W)
    w_shape = (K, C // groups) + (k,) * rank
    return conv_geometry(f"conv{rank}d", x_shape, w_shape, (K,) if bias else None, stride, padding, dilation,
                         groups, "zeros", rank)


def _arrays(geom, dtype, seed, hostile=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape)
    if hostile:  # NaN and infinities reach the sums; zeros give outputs of exactly 0
        picks = rng.random(x.shape)
        x[picks < 0.02] = np.nan
        x[(picks >= 0.02) & (picks < 0.04)] = -np.inf
        x[(picks >= 0.04) & (picks < 0.3)] = 0.0
    w = rng.standard_normal(geom.weight_shape) / np.sqrt(np.prod(geom.weight_shape[1:]))
    b = rng.standard_normal(geom.C_out)
    g = rng.standard_normal(geom.out_shape)
    if g.size:
        g.flat[1] = np.inf  # times ReLU's 0 where the output is <= 0: NaN, in the composition as here
        g.flat[3] = -0.0
    return x.astype(dtype), w.astype(dtype), b.astype(dtype), g.astype(dtype)


def _fused(cg, x, w, b, g, input_grad=True):
    y = fastcnn.conv_relu_forward(cg, x, w, b)
    return y, *fastcnn.conv_relu_backward(cg, g, x, w, b, y, input_grad=input_grad)


def _composed(cg, x, w, b, g, input_grad=True):
    pre = fastcnn.conv_forward(cg, x, w, b)
    return fastcnn.relu(pre), *fastcnn.conv_backward(cg, fastcnn.relu_backward(g, pre), x, w, b,
                                                     input_grad=input_grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", LAYERS)
def test_fused_is_the_composition_bit_for_bit(layer, dtype):
    cg = _geometry(*layer)
    assert fastcnn.conv_relu_pays(cg, dtype)
    x, w, b, g = _arrays(cg, dtype, seed=sum(layer))
    assert_bit_identical([_composed(cg, x, w, b, g), _fused(cg, x, w, b, g)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_no_bias_and_no_input_grad(dtype):
    cg = _geometry(3, 3, 10, 13, 6, 3, 1, 1, 1, 1, 2, bias=False)
    x, w, _, g = _arrays(cg, dtype, seed=11, hostile=True)
    want = _composed(cg, x, w, None, g)
    assert_bit_identical([want, _fused(cg, x, w, None, g)])
    assert_bit_identical([(want[0], None, *want[2:]), _fused(cg, x, w, None, g, input_grad=False)])


def test_agrees_with_refcnn():
    """float64 against the oracle's plain ops (refcnn's conv2d, relu and their backwards)."""
    cg = _geometry(*LAYERS[1])
    x, w, b, g = _arrays(cg, np.float64, seed=3)
    g[~np.isfinite(g)] = 1.0
    pre = refcnn.conv2d(x, w, b, padding=2)
    want = (refcnn.relu(pre), *refcnn.conv2d_backward(refcnn.relu_backward(g, pre), x, w, b, padding=2))
    for got, expected in zip(_fused(cg, x, w, b, g), want):
        assert np.abs(got - expected).max() <= 1e-12 * max(1.0, np.abs(expected).max())


def test_bit_identical_whatever_the_thread_count():
    cg = _geometry(9, 1, 14, 12, 8, 3, 1, 0, 1, 1, 2)
    x, w, b, g = _arrays(cg, np.float32, seed=5)
    assert_bit_identical(results_per_thread_count(lambda: _fused(cg, x, w, b, g)))


def test_refuses_what_it_does_not_compute():
    depthwise = _geometry(2, 4, 10, 10, 4, 3, 1, 1, 1, 4, 2)  # the direct grouped kernels take it
    assert not fastcnn.conv_relu_pays(depthwise, np.float32)
    x, w, b, g = _arrays(depthwise, np.float32, seed=7)
    with pytest.raises(ValueError, match=r"conv_relu_forward: invalid value for argument `conv_geometry`"):
        fastcnn.conv_relu_forward(depthwise, x, w, b)
    winograd = _geometry(2, 32, 12, 12, 32, 3, 1, 1, 1, 1, 2)  # 'auto' takes Winograd F(4x4, 3x3)
    assert not fastcnn.conv_relu_pays(winograd, np.float32)
    cg = _geometry(*LAYERS[0])
    x, w, b, g = _arrays(cg, np.float32, seed=8)
    y = fastcnn.conv_relu_forward(cg, x, w, b)
    with pytest.raises(ValueError, match=r"`y`"):
        fastcnn.conv_relu_backward(cg, g, x, w, b, y[:1])
    with pytest.raises(TypeError, match=r"`y`"):
        fastcnn.conv_relu_backward(cg, g, x, w, b, y.astype(np.int32))
    with pytest.raises(ValueError, match=r"`grad_out`"):
        fastcnn.conv_relu_backward(cg, g[..., :-1], x, w, b, y)
    with pytest.raises(TypeError, match=r"`input_grad`"):
        fastcnn.conv_relu_backward(cg, g, x, w, b, y, input_grad=1)


def test_empty_batch():
    cg = _geometry(0, 1, 8, 8, 4, 3, 1, 0, 1, 1, 2)
    x, w, b, g = _arrays(cg, np.float32, seed=9)
    y = fastcnn.conv_relu_forward(cg, x, w, b)
    assert y.shape == (0, 4, 6, 6)
    gx, gw, gb = fastcnn.conv_relu_backward(cg, g, x, w, b, y)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


SPEC = "conv8k3 relu, conv6k3 relu, flatten, dense5 softmax"


def test_model_takes_the_fused_layer_bit_for_bit():
    """Both convolutions (1 and 8 input channels, im2col + GEMM) compute their ReLU inside; the logits, the
    input gradient and every parameter gradient equal an unfused pass's."""
    model = Model(SPEC, (1, 12, 12), seed=4)
    first, second = model.layers[0], model.layers[1]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 1, 12, 12)).astype(np.float32)
    logits = model.forward(x, training=True, step=3)
    assert first._relu_inside and second._relu_inside
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    out, g, plain_grads = unfused_pass(model, x, grad, step=3)  # fuse off: the plain ops
    assert not first._relu_inside and not second._relu_inside
    np.testing.assert_array_equal(logits, out)
    if grad_x is None:
        assert g is None
    else:
        np.testing.assert_array_equal(grad_x, g)
    for key in grads:
        np.testing.assert_array_equal(grads[key], plain_grads[key], err_msg=key)
