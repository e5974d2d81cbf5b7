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
from cnn import layers as L
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
    assert isinstance(conv._x, L._Deferred)  # the first layer's output was computed inside the pooled op
    # and, the input gradient wanted, is computed once for the backward (the same bits: see below)
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    out, g, plain_grads = unfused_pass(model, x, grad, step=3)
    assert conv._winners is None and not pool._pooled_before
    np.testing.assert_array_equal(logits, out)
    np.testing.assert_array_equal(grad_x, g)
    for key in grads:
        np.testing.assert_array_equal(grads[key], plain_grads[key], err_msg=key)


# ----------------------------------------------------------------------------------------------------------
# producer=(geometry, x0): the first layer's parameter gradients from the block's backward


#: (N, C0, H0, W0, C, K, kernel, padding, dilation, block padding): the producer convolution (C0 -> C channels)
#: and the pooled block (C -> K): the seeds' pair scaled down in batch, a padded and a dilated producer with
#: three input channels (a colour first layer), a padded block, a 1x1 producer.
PRODUCERS = [
    (3, 1, 28, 28, 32, 64, 3, 0, 1, 0),
    (2, 3, 14, 13, 32, 32, 3, 1, 1, 1),
    (2, 3, 16, 15, 16, 16, 3, 2, 2, 1),
    (4, 2, 12, 12, 32, 32, 1, 0, 1, 0),
]


def _producer_case(N, C0, H0, W0, C, K, k, padding, dilation, block_padding, dtype, seed=0, bias=True):
    pgeom = conv_geometry("conv2d", (N, C0, H0, W0), (C, C0, k, k), (C,) if bias else None, 1, padding, dilation,
                          1, "zeros", 2)
    cg, pg = _geometries(N, C, *pgeom.out, K, block_padding)
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((N, C0, H0, W0)).astype(dtype)
    w0 = (rng.standard_normal((C, C0, k, k)) / np.sqrt(C0 * k * k)).astype(dtype)
    b0 = (rng.standard_normal(C) * 0.1).astype(dtype) if bias else None
    x = fastcnn.relu(fastcnn.conv_forward(pgeom, x0, w0, b0))
    _, w, b = _arrays(N, C, *pgeom.out, K, dtype, seed=seed + 1)
    y, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)
    g = _grad(y.shape, dtype, seed=seed + 2)
    g[np.isinf(g)] = 1.0
    return pgeom, cg, pg, x0, w0, b0, x, w, b, winners, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PRODUCERS)
def test_producer_grads_are_the_composition(case, dtype):
    """The block's gradients bit for bit those of the plain call; the producer's, those of conv_backward of
    relu_backward of grad_x, up to the order of the sums (the same terms: float32 within a few roundings)."""
    pgeom, cg, pg, x0, w0, b0, x, w, b, winners, g = _producer_case(*case, dtype, seed=sum(case))
    assert fastcnn.conv_relu_pool_producer_fits(cg, pgeom, dtype)
    got = fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=(pgeom, x0))
    gx, gw, gb = fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners)
    _, gw0, gb0 = fastcnn.conv_backward(pgeom, fastcnn.relu_backward(gx, x), x0, w0, b0, input_grad=False)
    assert got[0] is None
    _assert_same_bits(got[1:3], (gw, gb), f"{case}: the block's gradients")
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for name, a, e in (("weight", got[3], gw0), ("bias", got[4], gb0)):
        assert a.dtype == dtype and a.shape == e.shape, name
        np.testing.assert_allclose(a, e, rtol=0, atol=tol * max(1.0, np.abs(e).max()), err_msg=f"{case} {name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PRODUCERS)
def test_producer_forward_and_backward_compute_the_input_with_its_bits(case, dtype):
    """x=None, producer=(geometry, x0, w0, b0): the forward computes the block's input sample by sample, bit for
    bit conv_relu_forward's, so y and the winners are the plain call's; the backward with x=None equals the one
    given x, all five results."""
    pgeom, cg, pg, x0, w0, b0, x, w, b, winners, g = _producer_case(*case, dtype, seed=sum(case) + 1)
    assert np.array_equal(x, fastcnn.conv_relu_forward(pgeom, x0, w0, b0))  # the composition's input
    _assert_same_bits(fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(pgeom, x0, w0, b0)),
                      fastcnn.conv_relu_pool_forward(cg, pg, x, w, b), f"{case}: the forward")
    _assert_same_bits(fastcnn.conv_relu_pool_backward(cg, pg, g, None, w, b, winners, producer=(pgeom, x0, w0, b0)),
                      fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=(pgeom, x0)),
                      f"{case}: the backward")
    if b0 is not None:  # and without the producer's bias
        x = fastcnn.conv_relu_forward(pgeom, x0, w0, None)
        _assert_same_bits(fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(pgeom, x0, w0, None)),
                          fastcnn.conv_relu_pool_forward(cg, pg, x, w, b), f"{case}: no bias")


def test_producer_grads_agree_with_refcnn():
    """float64 against refcnn's conv2d, relu, conv2d, max_pool2d and their backwards, all the way to the first
    convolution's weight and bias, no bias on the block."""
    pgeom, cg, pg, x0, w0, b0, x, w, _, winners, g = _producer_case(2, 3, 14, 13, 32, 32, 3, 1, 1, 1, np.float64,
                                                                    seed=9)
    _, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, None)
    pre0 = refcnn.conv2d(x0, w0, b0, padding=1)
    pre = refcnn.conv2d(refcnn.relu(pre0), w, None, padding=1)
    g_pre = refcnn.relu_backward(refcnn.max_pool2d_backward(g, refcnn.relu(pre), 2), pre)
    g_x = refcnn.conv2d_backward(g_pre, refcnn.relu(pre0), w, None, padding=1)[0]
    _, want_w0, want_b0 = refcnn.conv2d_backward(refcnn.relu_backward(g_x, pre0), x0, w0, b0, padding=1)
    got = fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, None, winners, producer=(pgeom, x0))
    assert got[2] is None
    for a, e in ((got[3], want_w0), (got[4], want_b0)):
        assert np.abs(a - e).max() <= 1e-12 * max(1.0, np.abs(e).max())


def test_producer_grads_bit_identical_whatever_the_thread_count():
    pgeom, cg, pg, x0, _, _, x, w, b, winners, g = _producer_case(11, 1, 18, 18, 32, 32, 3, 0, 1, 0, np.float32)
    assert_bit_identical(results_per_thread_count(
        lambda: fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=(pgeom, x0))[1:]))


def test_producer_empty_batch_and_refusals():
    pgeom, cg, pg, x0, _, _, x, w, b, winners, g = _producer_case(2, 1, 12, 12, 32, 32, 3, 0, 1, 0, np.float32)
    empty = fastcnn.conv_relu_pool_backward(cg, pg, g[:0], x[:0], w, b, winners[:0], producer=(pgeom, x0[:0]))
    assert empty[0] is None and all(np.array_equal(a, np.zeros_like(a)) for a in empty[1:])
    assert empty[3].shape == (32, 1, 3, 3) and empty[4].shape == (32,)
    with pytest.raises(TypeError, match=r"`producer`.*\(producer_geometry, x0\) or"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=pgeom)
    with pytest.raises(ValueError, match=r"`producer`.*sample shape \(1, 12, 12\)"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=(pgeom, x0[:, :, :11]))
    with pytest.raises(ValueError, match=r"`producer`.*x's batch, 2 samples"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners, producer=(pgeom, x0[:1]))
    with pytest.raises(TypeError, match=r"`x`.*an array"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, None, w, b, winners, producer=(pgeom, x0))
    w0 = np.ones((32, 1, 3, 3), np.float32)
    with pytest.raises(TypeError, match=r"`x`.*None with producer"):
        fastcnn.conv_relu_pool_forward(cg, pg, x, w, b, producer=(pgeom, x0, w0, None))
    with pytest.raises(TypeError, match=r"`producer`.*\(producer_geometry, x0, w0, b0\): "):
        fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(pgeom, x0))
    with pytest.raises(ValueError, match=r"`weight`"):
        fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(pgeom, x0, w0[:, :, :2], None))
    with pytest.raises(ValueError, match=r"`producer`.*output is the block's input sample \(32, 10, 10\)\. "
                                         r"Received producer=\(32, 8, 8\)"):
        fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(cg, x, w, b))
    with pytest.raises(TypeError, match=r"`x`"):
        fastcnn.conv_relu_pool_forward(cg, pg, None, w, b)
    strided = conv_geometry("conv2d", (2, 1, 22, 22), (32, 1, 3, 3), (32,), 2, 0, 1, 1, "zeros", 2)
    assert strided.out == pgeom.out and not fastcnn.conv_relu_pool_producer_fits(cg, strided, np.float32)
    with pytest.raises(ValueError, match=r"`producer`.*conv_relu_pool_producer_fits"):
        fastcnn.conv_relu_pool_backward(cg, pg, g, x, w, b, winners,
                                        producer=(strided, np.zeros((2, 1, 22, 22), np.float32)))
    reflect = conv_geometry("conv2d", (2, 1, 12, 12), (32, 1, 3, 3), (32,), 1, 1, 1, 1, "reflect", 2)
    assert not fastcnn.conv_relu_pool_producer_fits(_geometries(2, 32, 12, 12, 32, 0)[0], reflect, np.float32)
    wide = conv_geometry("conv2d", (2, 8, 12, 12), (32, 8, 3, 3), (32,), 1, 0, 1, 1, "zeros", 2)  # 72 rows
    assert not fastcnn.conv_relu_pool_producer_fits(cg, wide, np.float32)


def test_model_takes_the_producer_grads_when_no_input_gradient_is_wanted():
    """Model.backward(input_grad=False) (a training step): the pooled conv's backward gives the first layer its
    parameter gradients (the engine's producer=...); every other gradient equals the unfused pass's bit for
    bit, the first layer's up to the order of the sums."""
    model = Model(SPEC, (1, 14, 14), seed=4)
    first = model.layers[0]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 1, 14, 14)).astype(np.float32)
    logits = model.forward(x, training=True, step=3)
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    calls = []
    plain = fastcnn.conv_relu_pool_backward

    def spy(*args, **kwargs):
        calls.append(kwargs.get("producer"))
        return plain(*args, **kwargs)

    fastcnn.conv_relu_pool_backward = spy
    try:
        assert model.backward(grad, input_grad=False) is None
    finally:
        fastcnn.conv_relu_pool_backward = plain
    assert len(calls) == 1 and calls[0][0] is first.geometry and calls[0][1] is first._x
    assert len(calls[0]) == 4  # the forward left the first layer's output to the pooled op: computed again
    assert first._producer_grads is None  # taken by the first layer's backward
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    first.input_grad = False
    try:
        _, _, plain_grads = unfused_pass(model, x, grad, step=3)
    finally:
        first.input_grad = True
    for key in grads:
        if key.startswith(first.name + "/"):
            np.testing.assert_allclose(grads[key], plain_grads[key], rtol=0, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_array_equal(grads[key], plain_grads[key], err_msg=key)


def test_model_inference_leaves_the_first_output_to_the_pooled_op_bit_for_bit():
    """Eval mode: the first layer's output is computed inside the pooled convolution (never stored whole), and
    the logits equal an unfused eval pass's, layer by layer."""
    model = Model(SPEC, (1, 14, 14), seed=5)
    x = np.random.default_rng(3).standard_normal((7, 1, 14, 14)).astype(np.float32)
    logits = model.forward(x)
    assert isinstance(model.layers[1]._x, L._Deferred)
    ctx = L.Pass(model.engine, False, model.dtype, model.seed, 0)
    out = x
    for layer in model.layers:
        out = layer.forward(out, ctx)
    assert not isinstance(model.layers[1]._x, L._Deferred)
    np.testing.assert_array_equal(logits, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_without_winners_gives_the_same_values(dtype):
    """winners=False (an inference pass): None in the winners' place and y bit for bit the same, NaN, infinities
    and ties included, with and without a producer; a non-bool refused."""
    block = (3, 32, 10, 13, 32, 1)
    cg, pg = _geometries(*block)
    x, w, b = _arrays(*block[:4], block[4], dtype, seed=21, hostile=True)
    y, winners = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)
    alone = fastcnn.conv_relu_pool_forward(cg, pg, x, w, b, winners=False)
    assert alone[1] is None and winners is not None
    _assert_same_bits((alone[0],), (y,), "winners=False")
    pgeom, cg, pg, x0, w0, b0, x, w, b, _, _ = _producer_case(2, 3, 14, 13, 32, 32, 3, 1, 1, 1, dtype, seed=22)
    _assert_same_bits(fastcnn.conv_relu_pool_forward(cg, pg, None, w, b, producer=(pgeom, x0, w0, b0),
                                                     winners=False)[:1],
                      fastcnn.conv_relu_pool_forward(cg, pg, x, w, b)[:1], "winners=False, producer")
    with pytest.raises(TypeError, match=r"`winners`"):
        fastcnn.conv_relu_pool_forward(cg, pg, x, w, b, winners=0)


def test_model_backward_after_an_inference_pass():
    """Eval forward computes no winners; a backward after it computes them, and every gradient and the input
    gradient equal an unfused eval pass's, bit for bit."""
    model = Model(SPEC, (1, 14, 14), seed=6)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 1, 14, 14)).astype(np.float32)
    logits = model.forward(x)
    conv = model.layers[1]
    assert conv._pooled and conv._winners is None
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    assert conv._winners is not None
    grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    ctx = L.Pass(model.engine, False, model.dtype, model.seed, 0)
    out = x
    for layer in model.layers:
        out = layer.forward(out, ctx)
    g = grad
    for layer in reversed(model.layers):
        g = layer.backward(g)
    np.testing.assert_array_equal(logits, out)
    np.testing.assert_array_equal(grad_x, g)
    for key, layer, p in model.parameters():
        np.testing.assert_array_equal(grads[key], layer.grads[p], err_msg=key)
