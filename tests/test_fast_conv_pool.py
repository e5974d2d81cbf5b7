"""fastcnn's fused conv-ReLU-maxpool ops (fastcnn/conv_pool.py, issue 16 item 2) against the composition they
replace, and cnn.Model taking them.

``conv_relu_pool_forward(cg, pg, x, w, b)`` must be ``relu_pool_forward(pg, conv_forward(cg, x, w, b))`` and its
backward ``conv_backward(cg, relu_pool_backward(pg, grad, y), x, w, b)``: bit for bit against fastcnn's own
plain ops (both compute the convolution by Winograd F(4x4, 3x3), so the fusion changes no rounding), sign of
zero and NaN included, and within F(4x4, 3x3)'s stated float32 bound of refcnn's plain ops (the oracle).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn.model import Model
from cnnbase.conv import conv_geometry
from cnnbase.pool import pool_geometry
from fastcheck import assert_bit_identical, results_per_thread_count, unfused_pass

#: (N, C_in, H, W, C_out, padding): even and odd outputs (an odd last row or column is dropped by the pooling),
#: whole and partial F(4x4) tiles, the seeds' conv2 scaled down in batch, 16 channels on the smallest map
#: 'auto' gives F(4x4) with 16 channels (14x14 and more).
BLOCKS = [
    (3, 32, 10, 10, 32, 1),
    (2, 32, 11, 9, 40, 1),
    (4, 32, 12, 12, 32, 0),
    (2, 32, 26, 26, 64, 0),
    (5, 33, 17, 14, 34, 0),
    (2, 16, 16, 18, 16, 1),
    (1, 32, 34, 36, 32, 1),  # two rows of 36 span more than the 64 sum lanes of the bias gradient
    (1, 32, 45, 47, 32, 0),  # chunks of 9 of the 11 tile rows (winograd4._plan): pooled rows go out per chunk
]


def _geometries(N, C, H, W, K, padding, bias=True):
    cg = conv_geometry("conv2d", (N, C, H, W), (K, C, 3, 3), (K,) if bias else None, 1, padding, 1, 1, "zeros", 2)
    pg = pool_geometry("max_pool2d", (N, K) + cg.out, 2, 2, 0, 1, False, 2, kind="max")
    return cg, pg


def _arrays(N, C, H, W, K, dtype, seed, hostile=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    if hostile:  # NaN and infinities reach the windows; zeros tie them
        picks = rng.random(x.shape)
        x[picks < 0.01] = np.nan
        x[(picks >= 0.01) & (picks < 0.02)] = np.inf
        x[(picks >= 0.02) & (picks < 0.1)] = 0.0
    w = rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)
    b = rng.standard_normal(K)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype)


def _grad(shape, dtype, seed):
    g = np.random.default_rng(seed).standard_normal(shape)
    g.flat[::5] = -g.flat[::5]
    g.flat[2] = np.inf  # times ReLU's 0 where its winner is <= 0: NaN, in the composition as here
    return g.astype(dtype)


def _fused(cg, pg, x, w, b, g, input_grad=True):
    y, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)
    return y, *fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, input_grad=input_grad)


def _composed(cg, pg, x, w, b, g):
    pre = fastcnn.conv_forward(cg, x, w, b)
    return fastcnn.relu_pool_forward(pg, pre), *fastcnn.conv_backward(cg, fastcnn.relu_pool_backward(pg, g, pre),
                                                                       x, w, b)


def _assert_same_bits(got, want, what):
    for i, (a, e) in enumerate(zip(got, want)):
        if e is None:
            assert a is None, f"{what}: result {i}"
            continue
        assert a.dtype == e.dtype and a.shape == e.shape, f"{what}: result {i}"
        np.testing.assert_array_equal(a, e, err_msg=f"{what}: result {i}")
        assert np.array_equal(np.signbit(a), np.signbit(e)), f"{what}: result {i}, the sign of a zero"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", BLOCKS)
def test_fused_is_the_composition_bit_for_bit(block, dtype):
    cg, pg = _geometries(*block)
    assert fastcnn.conv_relu_pool_pays(cg, pg, dtype)
    N, C, H, W, K, _ = block
    x, w, b = _arrays(N, C, H, W, K, dtype, seed=sum(block))
    g = _grad((N, K) + tuple(s // 2 for s in cg.out), dtype, seed=1)
    _assert_same_bits(_fused(cg, pg, x, w, b, g), _composed(cg, pg, x, w, b, g), f"{block} {dtype.__name__}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_and_no_bias(dtype):
    """NaN, infinities and ties in x, an infinite gradient, no bias, and input_grad=False."""
    block = (3, 32, 10, 13, 32, 1)
    cg, pg = _geometries(*block, bias=False)
    N, C, H, W, K, _ = block
    x, w, _ = _arrays(N, C, H, W, K, dtype, seed=11, hostile=True)
    g = _grad((N, K) + tuple(s // 2 for s in cg.out), dtype, seed=2)
    want = _composed(cg, pg, x, w, None, g)
    _assert_same_bits(_fused(cg, pg, x, w, None, g), want, "special values")
    _assert_same_bits(_fused(cg, pg, x, w, None, g, input_grad=False), (want[0], None, *want[2:]),
                      "input_grad=False")


def test_agrees_with_refcnn():
    """float64 against the oracle's plain ops (refcnn's conv2d, relu, max_pool2d and their backwards)."""
    block = (2, 32, 11, 9, 40, 1)
    cg, pg = _geometries(*block)
    N, C, H, W, K, p = block
    x, w, b = _arrays(N, C, H, W, K, np.float64, seed=3)
    g = _grad((N, K, 5, 4), np.float64, seed=4)
    g[np.isinf(g)] = 1.0
    pre = refcnn.conv2d(x, w, b, padding=p)
    y = refcnn.max_pool2d(refcnn.relu(pre), 2)
    g_pre = refcnn.relu_backward(refcnn.max_pool2d_backward(g, refcnn.relu(pre), 2), pre)
    want = (y, *refcnn.conv2d_backward(g_pre, x, w, b, padding=p))
    for got, expected in zip(_fused(cg, pg, x, w, b, g), want):
        assert np.abs(got - expected).max() <= 1e-12 * max(1.0, np.abs(expected).max())


def test_bit_identical_whatever_the_thread_count():
    block = (9, 32, 12, 10, 36, 1)
    cg, pg = _geometries(*block)
    x, w, b = _arrays(9, 32, 12, 10, 36, np.float32, seed=5)
    g = _grad((9, 36, 6, 5), np.float32, seed=6)
    assert_bit_identical(results_per_thread_count(lambda: _fused(cg, pg, x, w, b, g)))


def test_refuses_what_it_does_not_compute():
    cg, pg = _geometries(2, 32, 10, 10, 32, 1)
    x, w, b = _arrays(2, 32, 10, 10, 32, np.float32, seed=7)
    small_cg, small_pg = _geometries(2, 4, 10, 10, 4, 1)  # 4 channels: 'auto' keeps the direct path
    assert not fastcnn.conv_relu_pool_pays(small_cg, small_pg, np.float32)
    xs, ws, bs = _arrays(2, 4, 10, 10, 4, np.float32, seed=8)
    with pytest.raises(ValueError, match=r"conv_relu_pool_forward: invalid value for argument `pool_geometry`"):
        fastcnn.conv_relu_pool_forward(small_cg, small_pg, xs, ws, bs)
    stride1 = pool_geometry("max_pool2d", (2, 32, 10, 10), 2, 1, 0, 1, False, 2, kind="max")
    assert not fastcnn.conv_relu_pool_pays(cg, stride1, np.float32)
    y, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)
    with pytest.raises(ValueError, match=r"`winners`"):
        fastcnn.conv_relu_pool_backward(cg, pg, y, x, w, b, winners[:1])
    with pytest.raises(TypeError, match=r"`winners`"):
        fastcnn.conv_relu_pool_backward(cg, pg, y, x, w, b, winners.astype(np.int32))
    with pytest.raises(ValueError, match=r"`grad_out`"):
        fastcnn.conv_relu_pool_backward(cg, pg, np.ones((2, 32, 10, 10), np.float32), x, w, b, winners)
    with pytest.raises(TypeError, match=r"`input_grad`"):
        fastcnn.conv_relu_pool_backward(cg, pg, y, x, w, b, winners, input_grad=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_relu_is_relu_backward_of_grad_x_bit_for_bit(dtype):
    """input_relu=True: grad_x through the mask of x (x a ReLU's output; here any values, NaN, infinities,
    zeros and negatives included), bit for bit fastcnn.relu_backward of the plain grad_x; the other results
    unchanged; nothing with input_grad=False; a non-bool refused."""
    block = (3, 32, 10, 13, 32, 1)
    cg, pg = _geometries(*block)
    N, C, H, W, K, _ = block
    x, w, b = _arrays(N, C, H, W, K, dtype, seed=12, hostile=True)
    x[:, :, ::3] = -x[:, :, ::3]
    g = _grad((N, K) + tuple(s // 2 for s in cg.out), dtype, seed=3)
    y, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)
    plain = fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners)
    masked = fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, input_relu=True)
    _assert_same_bits(masked, (fastcnn.relu_backward(plain[0], x), *plain[1:]), "input_relu")
    assert fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, input_grad=False, input_relu=True)[0] is None
    with pytest.raises(TypeError, match=r"`input_relu`"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, input_relu=1)


SPEC = "conv32k3 relu, conv32k3 relu, maxpool2, dropout0.25, flatten, dense8 relu, dense5 softmax"


def test_model_takes_the_fused_block_bit_for_bit():
    """conv32k3 relu, maxpool2 on 32 channels: the conv pools (its output is the pooled one, the pooling layer
    passes it on), and the logits, the input gradient and every parameter gradient equal an unfused pass's."""
    model = Model(SPEC, (1, 14, 14), seed=4)
    first, conv, pool = model.layers[0], model.layers[1], model.layers[2]
    assert conv.relu_input_from is first
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 1, 14, 14)).astype(np.float32)
    logits = model.forward(x, training=True, step=3)
    assert conv._winners is not None and pool._pooled_before
    assert first._relu_inside  # so the pooled backward masks its input gradient with the first layer's ReLU
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    out, g, plain_grads = unfused_pass(model, x, grad, step=3)
    assert conv._winners is None and not pool._pooled_before
    np.testing.assert_array_equal(logits, out)
    np.testing.assert_array_equal(grad_x, g)
    for key in grads:
        np.testing.assert_array_equal(grads[key], plain_grads[key], err_msg=key)
