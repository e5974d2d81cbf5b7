"""fastcnn's fused convolution and evaluation-mode batch norm (fastcnn/conv_norm.py, issue 16) against the
composition it replaces, and cnn.Model taking it in passes that do not train.

``conv_batch_norm_forward(g, x, w, b, mean, var, nw, nb, eps, relu)`` must be ``batch_norm(conv_forward(g, x, w,
b), mean, var, nw, nb, training=False, eps=eps)`` (and ``relu`` of it), byte for byte
(``fastcheck.assert_bit_identical``: the sign of a zero, NaN and infinities included), whether Winograd F(4x4,
3x3) computes the convolution (then in one pass) or not (the plain ops in turn).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from cnn.model import Model
from cnnbase.conv import conv_geometry
from cnn import layers as L
from fastcheck import assert_bit_identical, results_per_thread_count, unfused_pass

#: (N, C, K, H, W, padding, stride, whether the op fuses): F(4x4, 3x3) on ResNet-20's three stages, odd sizes
#: whose last tile row and column are partly outside the output, no padding; im2col + GEMM on a stride-2 layer,
#: few channels and a small map; and a layer of 64 input channels that conv_forward computes by a GEMM per tap.
CASES = [
    (3, 16, 16, 28, 28, 1, 1, True),
    (2, 32, 32, 14, 14, 1, 1, True),
    (2, 64, 64, 7, 7, 1, 1, True),
    (2, 16, 24, 19, 17, 0, 1, True),
    (2, 16, 32, 28, 28, 1, 2, True),
    (2, 8, 8, 9, 9, 1, 1, True),
    (2, 16, 16, 6, 6, 1, 1, True),
    (2, 64, 8, 6, 6, 1, 1, False),
]


def _arrays(case, dtype, seed, hostile=False):
    N, C, K, H, W = case[:5]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)
    b = rng.standard_normal(K)
    stats = dict(running_mean=rng.standard_normal(K) * 0.3, running_var=rng.random(K) + 0.5,
                 norm_weight=rng.standard_normal(K), norm_bias=rng.standard_normal(K))
    if hostile:
        x[0, 0, 0, 0] = np.nan  # a NaN through the convolution into a few outputs, then the ReLU
        x[-1, -1, -1, -1] = np.inf
        stats["norm_weight"][0] = 0.0  # channel 0's outputs are its bias, 0: the ReLU's tie at exactly 0
        stats["norm_bias"][0] = 0.0
    return [a.astype(dtype) for a in (x, w, b)], {k: v.astype(dtype) for k, v in stats.items()}


def _geometry(case, x, w):
    return conv_geometry("conv2d", x.shape, w.shape, (w.shape[0],), case[6], case[5], 1, 1, "zeros", 2)


def _composed(geometry, x, w, b, stats, eps, relu, residual=None):
    y = fastcnn.conv_forward(geometry, x, w, b)
    plain = dict(running_mean=stats["running_mean"], running_var=stats["running_var"], weight=stats["norm_weight"],
                 bias=stats["norm_bias"])
    y = fastcnn.batch_norm(y, **plain, training=False, eps=eps)
    if residual is not None:
        y = y + residual
    return fastcnn.relu(y) if relu else y


def _residual(geometry, dtype, seed):
    return np.random.default_rng(seed).standard_normal(geometry.out_shape).astype(dtype)


@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_is_the_composition_bit_for_bit(case, dtype, relu, with_residual):
    (x, w, b), stats = _arrays(case, dtype, seed=sum(case[:5]))
    geometry = _geometry(case, x, w)
    assert fastcnn.conv_batch_norm_pays(geometry, dtype) == case[7]
    residual = _residual(geometry, dtype, seed=case[3]) if with_residual else None
    got = fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, eps=1e-3, relu=relu, residual=residual)
    assert got.dtype == dtype
    assert_bit_identical([got, _composed(geometry, x, w, b, stats, 1e-3, relu, residual)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_and_defaults_bit_for_bit(dtype):
    """NaN and infinity through the convolution, outputs of exactly 0, no biases and no batch-norm weight or
    bias (ones and zeros), the default eps."""
    case = CASES[3]
    (x, w, b), stats = _arrays(case, dtype, seed=9, hostile=True)
    geometry = conv_geometry("conv2d", x.shape, w.shape, None, 1, 0, 1, 1, "zeros", 2)
    for relu in (False, True):
        with np.errstate(all="ignore"):
            assert_bit_identical([
                fastcnn.conv_batch_norm_forward(geometry, x, w, None, **stats, relu=relu),
                _composed(geometry, x, w, None, stats, 1e-5, relu)])
            bare = dict(stats, norm_weight=None, norm_bias=None)
            assert_bit_identical([
                fastcnn.conv_batch_norm_forward(geometry, x, w, None, **bare, relu=relu),
                _composed(geometry, x, w, None, bare, 1e-5, relu)])


def test_dtypes_the_kernel_does_not_take_are_composed():
    """float64 statistics with a float32 convolution (the batch norm computes in float64), float16 inputs
    (the convolution's output is rounded to float16 before the batch norm): the plain ops in turn."""
    case = CASES[0]
    (x, w, b), stats = _arrays(case, np.float32, seed=1)
    geometry = _geometry(case, x, w)
    wide = {k: v.astype(np.float64) for k, v in stats.items()}
    got = fastcnn.conv_batch_norm_forward(geometry, x, w, b, **wide)
    assert got.dtype == np.float64
    assert_bit_identical([got, _composed(geometry, x, w, b, wide, 1e-5, False)])
    half = [a.astype(np.float16) for a in (x, w, b)]
    got = fastcnn.conv_batch_norm_forward(geometry, *half, **{k: v.astype(np.float16) for k, v in stats.items()})
    assert got.dtype == np.float16
    assert_bit_identical([got, _composed(geometry, *half, {k: v.astype(np.float16) for k, v in stats.items()},
                                         1e-5, False)])



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistics_of_any_layout_and_byte_order_bit_for_bit(dtype):
    """The batch norm's table of values (fastcnn.conv_norm._norm_table, by a small kernel for native float32 and
    float64 arrays, by NumPy otherwise): strided running statistics, big-endian ones, float16 ones (a float32
    convolution's fused pass), no weight or bias, each equals the composition bit for bit."""
    case = CASES[0]
    (x, w, b), stats = _arrays(case, dtype, seed=4)
    geometry = _geometry(case, x, w)
    K = w.shape[0]
    wide = {k: np.repeat(v, 2)[::2] for k, v in stats.items()}  # strided views of the same values
    swapped = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in stats.items()}
    variants = [wide, swapped, dict(stats, norm_weight=None, norm_bias=None)]
    if dtype == np.float32:
        variants.append({k: v.astype(np.float16) for k, v in stats.items()})
    for variant in variants:
        assert all(v is None or v.shape == (K,) for v in variant.values())
        got = fastcnn.conv_batch_norm_forward(geometry, x, w, b, **variant, relu=True)
        assert got.dtype == dtype
        assert_bit_identical([got, _composed(geometry, x, w, b, variant, 1e-5, True)])

def test_bit_identical_whatever_the_thread_count():
    (x, w, b), stats = _arrays(CASES[0], np.float32, seed=7)
    geometry = _geometry(CASES[0], x, w)
    assert_bit_identical(results_per_thread_count(
        lambda: fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, relu=True)))


def test_empty_batch_and_refusals():
    case = CASES[0]
    (x, w, b), stats = _arrays(case, np.float32, seed=2)
    geometry = _geometry(case, x[:0], w)
    assert fastcnn.conv_batch_norm_forward(geometry, x[:0], w, b, **stats).shape == (0, 16, 28, 28)
    geometry = _geometry(case, x, w)
    with pytest.raises(ValueError, match=r"conv_batch_norm_forward: .*argument `running_mean`.*16"):
        fastcnn.conv_batch_norm_forward(geometry, x, w, b, **dict(stats, running_mean=stats["running_mean"][:3]))
    with pytest.raises(ValueError, match=r"conv_batch_norm_forward: .*argument `eps`"):
        fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, eps=-1.0)
    with pytest.raises((TypeError, ValueError), match=r"conv_batch_norm_forward: .*argument `relu`"):
        fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, relu="yes")
    with pytest.raises(ValueError, match=r"conv_batch_norm_forward: .*argument `residual`.*\(3, 16, 28, 28\)"):
        fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, residual=x[:, :1])
    with pytest.raises((TypeError, ValueError), match=r"argument `x` must have shape"):
        fastcnn.conv_batch_norm_forward(geometry, x[:, :3], w, b, **stats)
    assert "conv_batch_norm_forward" in fastcnn.FUSED_OPS


SPEC = ("conv16k3p1 nobias, bn, relu, residual(conv16k3p1 nobias, bn, relu, conv16k3p1 nobias, bn) relu, "
        "residual(conv32k3s2p1 nobias, bn, relu, conv32k3p1 nobias, bn | shortcut: conv32k1s2 nobias, bn) relu, "
        "conv16k3p1, bn, gap, dense5")


def _passes(model, x):
    """An evaluation pass as Model.forward runs it, and one with Pass.fuse off (every op the plain one)."""
    fused = model.forward(x)
    ctx = L.Pass(model.engine, False, model.dtype, model.seed, 0)
    plain = x
    for layer in model.layers:
        plain = layer.forward(plain, ctx)
    return fused, plain


def test_model_takes_it_in_passes_that_do_not_train_bit_for_bit():
    """conv, bn, relu; the same inside residual blocks, and conv, bn ending their bodies (the shortcut added
    and the block's ReLU inside that convolution's op), a stride-2 block with a 1x1 projection and its batch
    norm; a convolution with a bias and a batch norm without a ReLU: the logits of an evaluation pass equal
    an unfused pass's, and a training pass does not take the op. The running statistics are not the initial
    ones (a training pass ran first)."""
    model = Model(SPEC, (3, 28, 28), seed=4)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 3, 28, 28)).astype(np.float32)
    model.forward(x * 2 + 1, training=True)  # moves the running statistics
    convs = [layer for layer in model.all_layers() if getattr(layer, "norm_next", None) is not None]
    assert len(convs) == 7  # the stem, two in each block, the projection, the last
    fused, plain = _passes(model, x)
    model.forward(x)
    assert all(layer._norm_inside for layer in convs)  # F(4x4, 3x3), or im2col + GEMM (stem, stride 2, 1x1)
    ctx = L.Pass(model.engine, False, model.dtype, fuse=True)
    for block, tail in ((model.layers[3], convs[2]), (model.layers[4], convs[4])):
        assert block._relu_inside and block._tail(ctx) is tail
    np.testing.assert_array_equal(fused, plain)
    model.forward(x, training=True)
    assert not any(layer._norm_inside for layer in convs)


def test_backward_after_a_fused_pass_equals_the_unfused_one():
    """An evaluation pass followed by a backward (the gradient of a class score with respect to the input, as
    pictures of what a network sees take it): each batch norm computes its convolution's output again."""
    model = Model(SPEC, (3, 28, 28), seed=5)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 28, 28)).astype(np.float32)
    model.forward(x * 3, training=True)
    logits = model.forward(x)
    grad = rng.standard_normal(logits.shape).astype(np.float32)
    fused_gx = model.backward(grad)
    fused_grads = {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
    _, g, plain_grads = unfused_pass(model, x, grad, 0, training=False)
    np.testing.assert_array_equal(fused_gx, g)
    for key in fused_grads:
        np.testing.assert_array_equal(fused_grads[key], plain_grads[key], err_msg=key)


def test_one_pass_where_it_pays(monkeypatch):
    """Where conv_batch_norm_pays, the batch norm is applied inside the convolution's kernel: no plain batch
    norm runs (and where it does not pay, one does)."""
    calls = []
    plain = fastcnn.conv_norm.norm.forward
    monkeypatch.setattr(fastcnn.conv_norm.norm, "forward", lambda *a: (calls.append(1), plain(*a))[1])
    for case in (CASES[0], CASES[4], CASES[7]):
        (x, w, b), stats = _arrays(case, np.float32, seed=4)
        calls.clear()
        fastcnn.conv_batch_norm_forward(_geometry(case, x, w), x, w, b, **stats, relu=True)
        assert len(calls) == (0 if case[7] else 1)


def _fused_and_composed(case, x, w, b, stats, transforms=None):
    """The fused op's result, and the composition's; ``transforms``: a list the fused op's weight transforms
    were counted in, cut to those (the composition's own plain call is not counted)."""
    geometry = _geometry(case, x, w)
    fused = fastcnn.conv_batch_norm_forward(geometry, x, w, b, **stats, relu=True)
    counted = None if transforms is None else len(transforms)
    composed = _composed(geometry, x, w, b, stats, 1e-5, True)
    if transforms is not None:
        del transforms[counted:]
    return fused, composed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_remembered_weight_transform_follows_the_weights(dtype, monkeypatch):
    """F(4x4)'s evaluation-mode calls reuse the transformed weights of the last call with the same weight array
    (fastcnn.winograd4_weights.REMEMBERED_BYTES) only while it holds the same bits: weights changed in place, a
    zero's sign flipped, a NaN put in, each call still equals the composition; the transform runs again exactly
    when the bits changed."""
    from fastcnn import winograd4_weights as wino
    monkeypatch.setattr(wino, "_remembered", type(wino._remembered)())
    transforms = []
    plain = wino.weight_transform
    monkeypatch.setattr(wino, "weight_transform", lambda *a, **k: (transforms.append(1), plain(*a, **k))[1])
    case = CASES[2]
    (x, w, b), stats = _arrays(case, dtype, seed=11)
    w[0, 0, 0, 0] = 0.0
    for change, recomputed in [(None, 1), (None, 0), (lambda w: w.__imul__(2), 1), (None, 0),
                               (lambda w: w.__setitem__((0, 0, 0, 0), -0.0), 1),
                               (lambda w: w.__setitem__((-1, -1, -1, -1), np.nan), 1), (None, 0)]:
        if change is not None:
            change(w)
        transforms.clear()
        with np.errstate(invalid="ignore"):
            got, want = _fused_and_composed(case, x, w, b, stats, transforms)
        assert_bit_identical([got, want])
        assert len(transforms) == recomputed
    # A copy of the weights (another array, the same bits) gets its own entry; both are remembered.
    transforms.clear()
    with np.errstate(invalid="ignore"):
        assert_bit_identical(list(_fused_and_composed(case, x, w.copy(), b, stats, transforms)))
    assert len(transforms) == 1 and len(wino._remembered) == 2


def test_remembered_weight_transforms_stay_under_their_bound(monkeypatch):
    """Past REMEMBERED_BYTES the least recently used weights are let go (one entry stays whatever its size);
    results are unchanged."""
    from fastcnn import winograd4_weights as wino
    monkeypatch.setattr(wino, "_remembered", type(wino._remembered)())
    case = CASES[1]
    weights = [_arrays(case, np.float32, seed=s)[0][1] for s in range(4)]
    entry = weights[0].nbytes * 5  # the weights' copy and U, 36/9 of them
    monkeypatch.setattr(wino, "REMEMBERED_BYTES", 2 * entry)
    (x, _, b), stats = _arrays(case, np.float32, seed=3)
    for w in weights:
        assert_bit_identical(list(_fused_and_composed(case, x, w, b, stats)))
    kept = [entry_w for entry_w, _ in wino._remembered.values()]
    assert len(kept) == 2
    np.testing.assert_array_equal(kept[0], weights[2])
    np.testing.assert_array_equal(kept[1], weights[3])
    monkeypatch.setattr(wino, "REMEMBERED_BYTES", 1)
    assert_bit_identical(list(_fused_and_composed(case, x, weights[0], b, stats)))
    assert len(wino._remembered) == 1
