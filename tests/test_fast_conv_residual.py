"""fastcnn's conv_backward_add (fastcnn/conv_residual.py, issue 16): a residual block's first convolution's
backward with the identity shortcut's gradient added, against the composition it replaces, and cnn.Model
taking it.

``conv_backward_add(g, gy, x, w, b, shortcut_grad, y)`` must be ``conv_backward(g, gy, x, w, b)`` with
``relu_backward_add(shortcut_grad, y, grad_x)`` for grad_x, byte for byte (``fastcheck.assert_bit_identical``:
the sign of a zero, NaN and infinities included), whether Winograd F(4x4, 3x3) computes the convolution (the
sum inside its fold) or not (the plain ops in turn).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from cnn.blocks import ResidualBlock
from cnn.model import Model
from cnnbase.conv import conv_geometry
from fastcheck import assert_bit_identical, results_per_thread_count, unfused_pass

#: (N, C, K, H, W, padding, whether F(4x4, 3x3) computes it): ResNet-20's three stages, odd sizes whose last
#: tiles are partly outside, no padding (a fold that sums); few channels (conv.py's paths).
CASES = [
    (3, 16, 16, 28, 28, 1, True),
    (2, 32, 32, 14, 14, 1, True),
    (2, 64, 64, 7, 7, 1, True),
    (2, 16, 16, 19, 17, 1, True),
    (2, 16, 24, 18, 18, 0, True),
    (2, 4, 4, 9, 9, 1, False),
]


def _arrays(case, dtype, seed, hostile=False):
    N, C, K, H, W, p = case[:6]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)
    b = rng.standard_normal(K)
    gy = rng.standard_normal((N, K, H + 2 * p - 2, W + 2 * p - 2))
    shortcut_grad = rng.standard_normal(x.shape)
    y = np.maximum(rng.standard_normal(x.shape), 0.0)  # a ReLU's output: zeros where the mask is 0
    if hostile:
        shortcut_grad.flat[:4] = (np.inf, np.nan, -0.0, -np.inf)
        y.flat[:4] = (0.0, 1.0, 1.0, 0.0)  # inf * 0: NaN; NaN passes; -0.0 added; -inf * 0: NaN
    return [a.astype(dtype) for a in (gy, x, w, b, shortcut_grad, y)]


def _geometry(case, x, w):
    return conv_geometry("conv2d", x.shape, w.shape, (w.shape[0],), 1, case[5], 1, 1, "zeros", 2)


def _composed(geometry, gy, x, w, b, shortcut_grad, y):
    gx, gw, gb = fastcnn.conv_backward(geometry, gy, x, w, b)
    return fastcnn.relu_backward_add(shortcut_grad, y, gx), gw, gb


@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_is_the_composition_bit_for_bit(case, dtype, hostile, monkeypatch):
    """The same bits as the plain ops, and through the fused pass where F(4x4) computes the convolution: the op
    calls relu_backward_add only where it is not fused (the bits alone cannot tell the paths apart)."""
    gy, x, w, b, shortcut_grad, y = _arrays(case, dtype, seed=sum(case[:5]), hostile=hostile)
    geometry = _geometry(case, x, w)
    takes = fastcnn.conv._other(geometry, "auto", np.dtype(dtype)) is fastcnn.conv.ALGORITHMS["winograd4"]
    assert takes == case[6]
    plain, unfused = fastcnn.conv_residual.activations.relu_backward_add, []
    monkeypatch.setattr(fastcnn.conv_residual.activations, "relu_backward_add",
                        lambda *args: unfused.append(1) or plain(*args))
    with np.errstate(invalid="ignore"):
        got = fastcnn.conv_backward_add(geometry, gy, x, w, b, shortcut_grad, y)
        assert bool(unfused) == (not takes)
        assert_bit_identical([got, _composed(geometry, gy, x, w, b, shortcut_grad, y)])
    assert got[0].dtype == dtype


def test_same_bits_on_one_and_two_threads():
    gy, x, w, b, shortcut_grad, y = _arrays(CASES[0], np.float32, seed=3)
    geometry = _geometry(CASES[0], x, w)
    assert_bit_identical(results_per_thread_count(
        lambda: fastcnn.conv_backward_add(geometry, gy, x, w, b, shortcut_grad, y)))


def test_other_dtypes_no_input_gradient_and_refusals():
    """A float64 shortcut gradient with float32 arrays: the plain ops (NumPy's promotion); input_grad=False: no
    input gradient, nothing added; arrays of another shape or kind are refused, naming them."""
    gy, x, w, b, shortcut_grad, y = _arrays(CASES[0], np.float32, seed=4)
    geometry = _geometry(CASES[0], x, w)
    wide = shortcut_grad.astype(np.float64)
    assert_bit_identical([fastcnn.conv_backward_add(geometry, gy, x, w, b, wide, y),
                          _composed(geometry, gy, x, w, b, wide, y)])
    alone = fastcnn.conv_backward_add(geometry, gy, x, w, b, shortcut_grad, y, input_grad=False)
    assert alone[0] is None
    assert_bit_identical([alone[1:], fastcnn.conv_backward(geometry, gy, x, w, b, input_grad=False)[1:]])
    with pytest.raises(ValueError, match=r"conv_backward_add: .*`shortcut_grad`"):
        fastcnn.conv_backward_add(geometry, gy, x, w, b, shortcut_grad[:1], y)
    with pytest.raises(TypeError, match=r"conv_backward_add: .*`y`"):
        fastcnn.conv_backward_add(geometry, gy, x, w, b, shortcut_grad, y.astype(int))
    assert "conv_backward_add" in fastcnn.FUSED_OPS


SPEC = ("conv16k3p1 nobias, bn, relu, residual(conv16k3p1 nobias, bn, relu, conv16k3p1 nobias, bn) relu, "
        "residual(conv16k3p1 nobias, bn, relu, conv16k3p1 nobias, bn) relu, gap, dense5")


def _fused_and_unfused(spec, seed, took):
    """A model of ``spec`` on 3x12x12: its own training pass (fused ops) and an unfused one from the same
    buffers, ``(logits, input gradient, parameter gradients)`` each, and ``took(model)`` after each pass (whether
    the pass took the fused op under test)."""
    model = Model(spec, (3, 12, 12), seed=7)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    buffers = lambda: [v for layer in model.all_layers() for v in layer.buffers.values()]  # noqa: E731
    before = [v.copy() for v in buffers()]
    logits = model.forward(x, training=True, step=1)
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    fused = [logits, model.backward(grad), {key: layer.grads[p].copy() for key, layer, p in model.parameters()}]
    took_fused = took(model)
    for saved, v in zip(before, buffers()):
        v[...] = saved
    plain = list(unfused_pass(model, x, grad, step=1))
    return fused, plain, took_fused, took(model)


def _blocks(model):
    return [layer for layer in model.layers if isinstance(layer, ResidualBlock)]


def test_model_adds_the_shortcut_in_the_first_convolution_bit_for_bit():
    """ResNet's identity blocks on 16 channels (F(4x4, 3x3)): the block's first convolution's backward adds the
    shortcut's gradient; the input gradient and every parameter gradient equal an unfused pass's."""
    fused, plain, took_fused, took_plain = _fused_and_unfused(
        SPEC, 5, lambda model: [block.branches["body"][0]._added_shortcut for block in _blocks(model)])
    assert took_fused == [True, True] and took_plain == [False, False]
    assert_bit_identical([fused, plain])


# ----------------------------------------------------------------------------------------------------------
# conv_backward_sum: a projection shortcut's convolution's backward with the body's input gradient added in

#: (N, C, K, H, W, kernel, stride, padding, whether im2row computes it): ResNet's projections (1x1, stride 2) and
#: strided 3x3 layers, odd sizes, a stride-1 layer (Winograd: the plain ops) and few channels (conv.py's paths).
SUM_CASES = [
    (3, 16, 32, 28, 28, 1, 2, 0, True),
    (2, 32, 64, 14, 14, 1, 2, 0, True),
    (2, 16, 32, 15, 13, 3, 2, 1, True),
    (2, 8, 8, 9, 11, 1, 2, 0, True),
    (2, 16, 16, 10, 10, 3, 1, 1, False),
    (2, 2, 4, 9, 9, 1, 2, 0, False),
]


def _sum_arrays(case, dtype, seed, hostile=False):
    N, C, K, H, W, k, s, p = case[:8]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, k, k)) / np.sqrt(k * k * C)
    geometry = conv_geometry("conv2d", x.shape, w.shape, None, s, p, 1, 1, "zeros", 2)
    gy = rng.standard_normal((N, K) + tuple(geometry.out))
    addend = rng.standard_normal(x.shape)
    if hostile:  # an infinity, a NaN and a negative zero reach the sum, both where the stride skips and not
        addend[0, 0, :2, :2] = ((np.inf, np.nan), (-0.0, -np.inf))
    return geometry, [a.astype(dtype) for a in (gy, x, w, addend)]


def _sum_composed(geometry, gy, x, w, addend, input_grad=True):
    gx, gw, gb = fastcnn.conv_backward(geometry, gy, x, w, None, input_grad=input_grad)
    return (None if gx is None else gx + addend), gw, gb


@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SUM_CASES)
def test_sum_is_the_composition_bit_for_bit(case, dtype, hostile, monkeypatch):
    """The same bits as the plain ops, and through im2row's fused pass where im2row computes the convolution
    (it is handed the addend there, and only there)."""
    geometry, (gy, x, w, addend) = _sum_arrays(case, dtype, seed=sum(case[:5]), hostile=hostile)
    g2 = geometry.as_2d()
    takes = (fastcnn.conv._other(geometry, "auto", np.dtype(dtype)) is None
             and fastcnn.im2row.pays(geometry, g2, np.dtype(dtype), backward=True))
    assert takes == case[8]
    backward, fused = fastcnn.im2row.backward, []
    monkeypatch.setattr(fastcnn.im2row, "backward",
                        lambda *args, addend=None: fused.append(addend is not None) or backward(*args, addend=addend))
    with np.errstate(invalid="ignore"):
        got = fastcnn.conv_backward_sum(geometry, gy, x, w, None, addend)
        assert any(fused) == takes
        assert_bit_identical([got, _sum_composed(geometry, gy, x, w, addend)])
    assert got[0].dtype == dtype


def test_sum_same_bits_on_one_and_two_threads():
    geometry, (gy, x, w, addend) = _sum_arrays(SUM_CASES[0], np.float32, seed=3)
    assert_bit_identical(results_per_thread_count(
        lambda: fastcnn.conv_backward_sum(geometry, gy, x, w, None, addend)))


def test_sum_other_dtypes_no_input_gradient_and_refusals():
    """A float64 addend with float32 arrays: the plain ops (NumPy's promotion); a bias; input_grad=False: no input
    gradient, nothing added; an addend of another shape or kind is refused, naming it."""
    geometry, (gy, x, w, addend) = _sum_arrays(SUM_CASES[0], np.float32, seed=4)
    wide = addend.astype(np.float64)
    got = fastcnn.conv_backward_sum(geometry, gy, x, w, None, wide)
    assert got[0].dtype == np.float64
    assert_bit_identical([got, _sum_composed(geometry, gy, x, w, wide)])
    b = np.ones(w.shape[0], np.float32)
    gx, gw, gb = fastcnn.conv_backward(geometry, gy, x, w, b)
    assert_bit_identical([fastcnn.conv_backward_sum(geometry, gy, x, w, b, addend), (gx + addend, gw, gb)])
    alone = fastcnn.conv_backward_sum(geometry, gy, x, w, None, addend, input_grad=False)
    assert alone[0] is None
    assert_bit_identical([alone[1:], _sum_composed(geometry, gy, x, w, addend, input_grad=False)[1:]])
    with pytest.raises(ValueError, match=r"conv_backward_sum: .*`addend`.*\(3, 16, 28, 28\)"):
        fastcnn.conv_backward_sum(geometry, gy, x, w, None, addend[:1])
    with pytest.raises(TypeError, match=r"conv_backward_sum: .*`addend`"):
        fastcnn.conv_backward_sum(geometry, gy, x, w, None, addend.astype(int))
    assert "conv_backward_sum" in fastcnn.FUSED_OPS


PROJECTION_SPEC = ("conv16k3p1 nobias, bn, relu, residual(conv32k3s2p1 nobias, bn, relu, conv32k3p1 nobias, bn | "
                   "shortcut: conv32k1s2 nobias, bn) relu, gap, dense5")


def test_model_sums_in_the_projection_bit_for_bit():
    """ResNet's downsampling block (a 1x1 stride-2 projection and its batch norm): the projection's backward adds
    the body's input gradient; every gradient equals an unfused pass's."""
    fused, plain, took_fused, took_plain = _fused_and_unfused(
        PROJECTION_SPEC, 6, lambda model: _blocks(model)[0].branches["shortcut"][0]._added_body)
    assert took_fused and not took_plain
    assert_bit_identical([fused, plain])
