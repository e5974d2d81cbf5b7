"""fastcnn's fused batch norm-ReLU ops (fastcnn/norm_relu.py, issue 16) against the composition they replace,
and cnn.Model taking them.

``batch_norm_relu(x, ...)`` must be ``relu(batch_norm(x, ...))``, running statistics included, and
``batch_norm_relu_backward(g, x, y, ...)`` must be ``batch_norm_backward(relu_backward(g, pre), x, ...)``: bit
for bit against fastcnn's own plain ops, byte for byte (``fastcheck.assert_bit_identical``: the sign of a zero,
NaN and infinities included); and within float64 rounding of refcnn's plain ops (the oracle).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
import refcnn
from cnn.blocks import ResidualBlock
from cnn.model import Model
from fastcheck import assert_bit_identical, results_per_thread_count, unfused_pass

#: x shapes: (N, C), 1-D, 2-D maps with rows shorter and longer than the 64 sum lanes.
SHAPES = [(6, 5), (3, 4, 9), (4, 3, 5, 5), (2, 3, 11, 13)]


def _arrays(shape, dtype, seed, hostile=False):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.3
    if hostile:  # NaN and infinities reach the statistics of some channels; exact zeros reach the ReLU
        x.reshape(shape[0], C, -1)[0, 0, 0] = np.nan
        x.reshape(shape[0], C, -1)[-1, -1, -1] = np.inf
    g = rng.standard_normal(shape)
    g.flat[1] = np.inf  # times ReLU's 0 where the output is <= 0: NaN, in the composition as here
    g.flat[2] = -0.0
    stats = dict(running_mean=rng.standard_normal(C), running_var=rng.random(C) + 0.5,
                 weight=rng.standard_normal(C), bias=rng.standard_normal(C))
    if hostile:
        stats["bias"][0] = 0.0
        stats["weight"][0] = 0.0  # every output of channel 0 is bias 0: the ReLU's tie at exactly 0
    return x.astype(dtype), g.astype(dtype), {k: v.astype(dtype) for k, v in stats.items()}


def _copies(stats):
    return {k: v.copy() for k, v in stats.items()}


def _fused(x, g, stats, training):
    s = _copies(stats)
    y = fastcnn.batch_norm_relu(x, **s, training=training, momentum=0.3, eps=1e-3)
    grads = fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=training, momentum=0.3, eps=1e-3)
    return [y, s["running_mean"], s["running_var"], *grads]


def _composed(x, g, stats, training, engine=fastcnn):
    s = _copies(stats)
    pre = engine.batch_norm(x, **s, training=training, momentum=0.3, eps=1e-3)
    y = engine.relu(pre)
    with np.errstate(all="ignore"):
        grads = engine.batch_norm_backward(engine.relu_backward(g, pre), x, **_copies(stats), training=training,
                                           momentum=0.3, eps=1e-3)
    return [y, s["running_mean"], s["running_var"], *grads]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_is_the_composition_bit_for_bit(shape, dtype, training):
    x, g, stats = _arrays(shape, dtype, seed=sum(shape))
    assert_bit_identical([_fused(x, g, stats, training), _composed(x, g, stats, training)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_bit_for_bit(dtype):
    """NaN and an infinity in x (whole channels of NaN statistics), outputs of exactly 0 (weight 0, bias 0),
    an infinite and a negative-zero gradient."""
    x, g, stats = _arrays((3, 4, 8, 9), dtype, seed=5, hostile=True)
    for training in (True, False):
        with np.errstate(all="ignore"):
            assert_bit_identical([_fused(x, g, stats, training), _composed(x, g, stats, training)])


def test_agrees_with_refcnn():
    x, g, stats = _arrays((3, 4, 10, 10), np.float64, seed=3)
    g[np.isinf(g)] = 1.0
    for training in (True, False):
        for got, want in zip(_fused(x, g, stats, training), _composed(x, g, stats, training, engine=refcnn)):
            assert np.abs(got - want).max() <= 1e-12 * max(1.0, np.abs(want).max())


def test_bit_identical_whatever_the_thread_count():
    x, g, stats = _arrays((5, 6, 12, 12), np.float32, seed=7)
    assert_bit_identical(results_per_thread_count(lambda: _fused(x, g, stats, True)))


def test_refuses_a_y_that_is_not_the_forward_output():
    x, g, stats = _arrays((2, 3, 4, 4), np.float32, seed=1)
    with pytest.raises(ValueError, match=r"batch_norm_relu_backward: .*`y`.*of x's shape \(2, 3, 4, 4\)"):
        fastcnn.batch_norm_relu_backward(g, x, x[:1], **stats, training=True)
    with pytest.raises(ValueError, match=r"`y`"):
        fastcnn.batch_norm_relu_backward(g, x, None, **stats, training=True)
    with pytest.raises(TypeError, match=r"batch_norm_relu: .*`x`"):
        fastcnn.batch_norm_relu(x.astype(int), **stats, training=True)
    assert set(fastcnn.norm_relu.FUSED_OPS) <= set(fastcnn.FUSED_OPS)


def _add_composed(x, residual, stats, training):
    s = _copies(stats)
    y = fastcnn.add_relu(fastcnn.batch_norm(x, **s, training=training, momentum=0.3, eps=1e-3), residual)
    return [y, s["running_mean"], s["running_var"]]


def _add_fused(x, residual, stats, training):
    s = _copies(stats)
    y = fastcnn.batch_norm_add_relu(x, residual, **s, training=training, momentum=0.3, eps=1e-3)
    return [y, s["running_mean"], s["running_var"]]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_add_relu_is_the_composition_bit_for_bit(shape, dtype, training):
    """``batch_norm_add_relu(x, r, ...)`` = ``add_relu(batch_norm(x, ...), r)``: output and running statistics;
    with a residual that cancels some outputs exactly (sums of 0), -0.0, NaN and infinities."""
    x, g, stats = _arrays(shape, dtype, seed=sum(shape) + 1, hostile=shape == SHAPES[-1])
    residual = g.copy()
    residual.flat[0] = np.nan
    residual.flat[3] = -np.inf
    residual.flat[4] = -0.0
    with np.errstate(all="ignore"):
        want = _add_composed(x, residual, stats, training)
        residual.flat[5] = -want[0].flat[5] if np.isfinite(want[0].flat[5]) else 0.0  # bn + r == 0 there
        assert_bit_identical([_add_fused(x, residual, stats, training), _add_composed(x, residual, stats, training)])


def test_batch_norm_add_relu_in_other_dtypes_and_refusals():
    """A residual of another dtype than the batch norm's result (float64 with float32 statistics), float16
    inputs: the plain ops in turn, the same bytes; a residual of another shape is refused, naming it."""
    x, g, stats = _arrays((3, 4, 5, 5), np.float32, seed=3)
    for residual, s in ((g.astype(np.float64), stats), (g.astype(np.float16), {k: v.astype(np.float16) for k, v
                                                                              in stats.items()})):
        xs = x.astype(s["weight"].dtype)
        assert_bit_identical([_add_fused(xs, residual, s, True), _add_composed(xs, residual, s, True)])
    with pytest.raises(ValueError, match=r"batch_norm_add_relu: .*`residual`"):
        fastcnn.batch_norm_add_relu(x, g[:2], **stats, training=True)
    with pytest.raises(TypeError, match=r"batch_norm_add_relu: .*`residual`"):
        fastcnn.batch_norm_add_relu(x, np.ones(x.shape, int), **stats, training=True)
    assert set(fastcnn.norm_relu.FUSED_OPS) <= set(fastcnn.FUSED_OPS)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_saved_stats_are_what_the_forward_normalised_with(shape, dtype, training):
    """``saved_stats``: the forward writes the means and biased variances it normalised with (the batch's, in
    float64 from NumPy here; the running ones out of training), and the backward given them returns the bytes of
    the backward that takes them from x again; the residual op writes the same; nothing else changes."""
    x, g, stats = _arrays(shape, dtype, seed=sum(shape) + 2, hostile=shape == SHAPES[-1])
    saved = np.full((2, shape[1]), np.nan)
    with np.errstate(all="ignore"):
        s = _copies(stats)
        y = fastcnn.batch_norm_relu(x, **s, training=training, momentum=0.3, eps=1e-3, saved_stats=saved)
        rows = np.moveaxis(x.astype(np.float64).reshape(shape[0], shape[1], -1), 1, 0).reshape(shape[1], -1)
        want = (rows.mean(axis=1), rows.var(axis=1)) if training else (stats["running_mean"], stats["running_var"])
        np.testing.assert_allclose(saved, np.array(want, dtype=np.float64), rtol=1e-12, atol=1e-12)
        given = saved.copy()
        grads = fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=training, momentum=0.3,
                                                 eps=1e-3, saved_stats=given)
        assert_bit_identical([[y, s["running_mean"], s["running_var"], *grads], _fused(x, g, stats, training)])
        assert_bit_identical([[given], [saved]])  # the backward only reads them
        given.flags.writeable = False  # read-only ones too (copied for the kernel)
        assert_bit_identical([grads, fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=training,
                                                                      momentum=0.3, eps=1e-3, saved_stats=given)])
        added = np.full((2, shape[1]), np.nan)
        fastcnn.batch_norm_add_relu(x, g, **_copies(stats), training=training, saved_stats=added, momentum=0.3,
                                    eps=1e-3)
        assert_bit_identical([[added], [saved]])


def test_the_backward_uses_the_saved_stats_it_is_given():
    """Given other statistics than x's, the backward computes with those: specs/norm.md's formula in float64
    NumPy with that mean and variance."""
    x, g, stats = _arrays((4, 3, 5, 5), np.float64, seed=11)
    g[~np.isfinite(g)] = 1.0  # finite sums: every entry compared
    y = fastcnn.batch_norm_relu(x, **_copies(stats), training=True)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.5])
    gx, gw, gb = fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=True,
                                                  saved_stats=np.array([mean, var]))
    shape = (1, 3, 1, 1)
    r = 1 / np.sqrt(var + 1e-5).reshape(shape)
    xhat = (x - mean.reshape(shape)) * r
    dy = np.where(y > 0, g, 0.0)
    m = x.size // 3
    dxhat = dy * stats["weight"].reshape(shape)
    want = r / m * (m * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
                    - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True))
    np.testing.assert_allclose(gx, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, (dy * xhat).sum(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(gb, dy.sum(axis=(0, 2, 3)), rtol=1e-10)


def test_refuses_saved_stats_of_the_wrong_kind():
    """Another shape, dtype or layout, a read-only array for the forward to write, a list: refused before any
    kernel runs, naming ``saved_stats``, what it expected and what it received."""
    x, g, stats = _arrays((2, 3, 4, 4), np.float32, seed=1)
    y = fastcnn.batch_norm_relu(x, **_copies(stats), training=True)
    read_only = np.zeros((2, 3))
    read_only.flags.writeable = False
    bad = [(np.zeros((3, 2)), r"shape \(3, 2\)"), (np.zeros((2, 3), np.float32), "dtype float32"),
           (np.zeros((3, 2)).T, r"shape \(2, 3\)"), ([[0.0] * 3] * 2, r"\[\[0.0")]
    for value, received in bad + [(read_only, r"shape \(2, 3\)")]:
        with pytest.raises(ValueError, match=r"batch_norm_relu: .*`saved_stats`.*C-contiguous \(2, 3\) float64.*"
                                             + received):
            fastcnn.batch_norm_relu(x, **_copies(stats), training=True, saved_stats=value)
    for value, received in bad:
        with pytest.raises(ValueError, match=r"batch_norm_relu_backward: .*`saved_stats`.*" + received):
            fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=True, saved_stats=value)
    fastcnn.batch_norm_relu_backward(g, x, y, **_copies(stats), training=True, saved_stats=read_only)  # only read


SPEC = "conv8k3p1 nobias, bn, relu, residual(conv8k3p1 nobias, bn, relu, conv8k3p1 nobias, bn) relu, gap, dense5"


def test_model_takes_the_fused_pair_bit_for_bit():
    """conv, bn, relu (and the same inside a residual block): the batch norm applies the ReLU, the ReLU layer
    passes its input on; the residual block adds its branches and applies its ReLU in one op; the logits, the
    input gradient, every parameter gradient and the running statistics equal an unfused pass's (the layers one
    by one with Pass.fuse off, fastcheck.unfused_pass)."""
    model = Model(SPEC, (3, 9, 9), seed=4)
    bn, act = model.layers[1], model.layers[2]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 9, 9)).astype(np.float32)
    before = [v.copy() for layer in model.all_layers() for v in layer.buffers.values()]
    logits = model.forward(x, training=True, step=3)
    assert bn._relu_fused and act._relu_done
    inner = [layer for layer in model.all_layers() if getattr(layer, "_relu_fused", False)]
    assert len(inner) == 2  # the stem's and the block's first batch norm
    block = model.layers[3]
    assert block._relu_inside  # the block's sum and its ReLU: fastcnn.add_relu
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    grad_x = model.backward(grad)
    fused_grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    fused_stats = [v.copy() for layer in model.all_layers() for v in layer.buffers.values()]
    for saved, v in zip(before, [v for layer in model.all_layers() for v in layer.buffers.values()]):
        v[...] = saved
    out, g, plain_grads = unfused_pass(model, x, grad, step=3)
    assert not bn._relu_fused and not act._relu_done and not block._relu_inside
    np.testing.assert_array_equal(logits, out)
    np.testing.assert_array_equal(grad_x, g)
    for key in fused_grads:
        np.testing.assert_array_equal(fused_grads[key], plain_grads[key], err_msg=key)
    for a, b in zip(fused_stats, [v for layer in model.all_layers() for v in layer.buffers.values()]):
        np.testing.assert_array_equal(a, b)


#: Residual blocks of the three shortcut kinds: identity, a projection ending with a batch norm (ResNet's), and
#: a projection of a convolution alone.
BLOCKS = ("conv8k3p1 nobias, bn, relu, residual(conv8k3p1 nobias, bn, relu, conv8k3p1 nobias, bn) relu, "
          "residual(conv12k3s2p1 nobias, bn, relu, conv12k3p1 nobias, bn | shortcut: conv12k1s2 nobias, bn) relu, "
          "residual(conv12k3p1 nobias, bn, relu, conv12k3p1 nobias, bn | shortcut: conv12k1) relu, gap, dense5")


def test_residual_blocks_end_in_the_batch_norm_bit_for_bit():
    """In training, each block's last batch norm adds the shortcut and applies the block's ReLU (the engine's
    batch_norm_add_relu), and the backward takes the ReLU's mask inside the batch norms that end the body and
    a projection shortcut, or inside the identity shortcut's sum (relu_backward_add): the logits, the input
    gradient, every parameter gradient and the running statistics equal an unfused pass's, byte for byte."""
    model = Model(BLOCKS, (3, 9, 9), seed=6)
    blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 9, 9)).astype(np.float32)
    buffers = lambda: [v for layer in model.all_layers() for v in layer.buffers.values()]  # noqa: E731
    before = [v.copy() for v in buffers()]
    logits = model.forward(x, training=True, step=2)
    assert all(block._added_by is block.branches["body"][-1] for block in blocks)
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    fused = [logits, model.backward(grad), {key: layer.grads[p].copy() for key, layer, p in model.parameters()},
             [v.copy() for v in buffers()]]
    for saved, v in zip(before, buffers()):
        v[...] = saved
    out, g, plain_grads = unfused_pass(model, x, grad, step=2)
    assert not any(block._added_by for block in blocks)
    assert_bit_identical([fused, [out, g, plain_grads, buffers()]])
