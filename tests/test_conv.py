"""refcnn.conv: gradient checks, an adjoint identity, PyTorch agreement and errors (specs/conv.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbase import conv as geometry
from cnnbase.shapes import ShapeError
from refcnn import conv as rc

from gradcheck import assert_close, check_backward

MODES = ("zeros", "replicate", "reflect", "circular")


def _arrays(rng, x_shape, w_shape, c_out, with_bias=True):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(c_out) if with_bias else None
    return x, w, b


# --- finite-difference gradient checks -----------------------------------------------------------

# (x shape, weight shape, with bias, keywords); conv weights are (C_out, C_in/G, ...).
CONV2D_GRAD = [
    ((1, 1, 4, 4), (2, 1, 3, 3), True, {}),
    ((1, 2, 4, 5), (2, 2, 3, 2), True, {"stride": 2, "padding": 1, "padding_mode": "replicate"}),
    ((2, 2, 3, 4), (4, 1, 2, 2), True, {"padding": ((1, 2), (2, 0)), "groups": 2, "padding_mode": "reflect"}),
    ((1, 1, 4, 4), (1, 1, 2, 3), False, {"padding": ((2, 0), (1, 1)), "dilation": 2, "padding_mode": "circular"}),
    ((1, 2, 5, 4), (2, 2, 2, 2), True, {"stride": 2, "padding": "same"}),
    ((1, 1, 4, 3), (1, 1, 2, 2), True, {"padding": "same_lower", "padding_mode": "reflect"}),
    ((1, 2, 3, 3), (4, 1, 3, 3), True, {"padding": 1, "groups": 2, "padding_mode": "circular"}),
    ((1, 1, 5, 4), (1, 1, 3, 2), True, {"stride": (2, 1), "padding": (2, 1), "dilation": (1, 2)}),
]

CONV1D_GRAD = [
    ((2, 1, 5), (2, 1, 3), True, {"padding": 2, "dilation": 2, "padding_mode": "reflect"}),
    ((1, 2, 6), (2, 1, 2), True, {"stride": 2, "padding": ((1, 2),), "groups": 2, "padding_mode": "circular"}),
    ((1, 2, 5), (1, 2, 4), False, {"stride": 2, "padding": "same", "padding_mode": "replicate"}),
]

# Transposed weights are (C_in, C_out/G, ...).
CONV_T2D_GRAD = [
    ((1, 2, 3, 3), (2, 1, 3, 3), True, {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 2, 2, 3), (2, 2, 2, 2), True, {"stride": (1, 2), "padding": (0, 1), "groups": 2, "dilation": (2, 1)}),
    ((1, 1, 2, 3), (1, 2, 3, 3), False, {"stride": 2, "padding": ((1, 0), (0, 2)), "output_padding": (0, 1)}),
]

CONV_T1D_GRAD = [
    ((2, 2, 3), (2, 3, 3), True, {"stride": 3, "padding": 1, "output_padding": 2}),
    ((1, 4, 3), (4, 1, 2), True, {"stride": 2, "padding": ((0, 2),), "groups": 2, "dilation": 2}),
]


def _c_out(w_shape, groups, transposed):
    return w_shape[1] * groups if transposed else w_shape[0]


def _gradcheck(forward, backward, x_shape, w_shape, with_bias, kwargs, transposed):
    rng = np.random.default_rng(7)
    x, w, b = _arrays(rng, x_shape, w_shape, _c_out(w_shape, kwargs.get("groups", 1), transposed), with_bias)
    arrays = [x, w] if b is None else [x, w, b]
    check_backward(forward, backward, arrays, tuple(range(len(arrays))), kwargs=kwargs,
                   what=f"{forward.__name__} x{x_shape} w{w_shape} {kwargs}")


@pytest.mark.parametrize("x_shape, w_shape, with_bias, kwargs", CONV2D_GRAD)
def test_conv2d_backward_matches_finite_differences(x_shape, w_shape, with_bias, kwargs):
    _gradcheck(rc.conv2d, rc.conv2d_backward, x_shape, w_shape, with_bias, kwargs, transposed=False)


@pytest.mark.parametrize("x_shape, w_shape, with_bias, kwargs", CONV1D_GRAD)
def test_conv1d_backward_matches_finite_differences(x_shape, w_shape, with_bias, kwargs):
    _gradcheck(rc.conv1d, rc.conv1d_backward, x_shape, w_shape, with_bias, kwargs, transposed=False)


@pytest.mark.parametrize("x_shape, w_shape, with_bias, kwargs", CONV_T2D_GRAD)
def test_conv_transpose2d_backward_matches_finite_differences(x_shape, w_shape, with_bias, kwargs):
    _gradcheck(rc.conv_transpose2d, rc.conv_transpose2d_backward, x_shape, w_shape, with_bias, kwargs,
               transposed=True)


@pytest.mark.parametrize("x_shape, w_shape, with_bias, kwargs", CONV_T1D_GRAD)
def test_conv_transpose1d_backward_matches_finite_differences(x_shape, w_shape, with_bias, kwargs):
    _gradcheck(rc.conv_transpose1d, rc.conv_transpose1d_backward, x_shape, w_shape, with_bias, kwargs,
               transposed=True)


@pytest.mark.parametrize("backward, x_shape, w_shape", [
    (rc.conv2d_backward, (1, 1, 3, 3), (1, 1, 2, 2)),
    (rc.conv1d_backward, (1, 1, 4), (1, 1, 2)),
    (rc.conv_transpose2d_backward, (1, 1, 2, 2), (1, 1, 2, 2)),
    (rc.conv_transpose1d_backward, (1, 1, 3), (1, 1, 2)),
])
def test_backward_returns_none_for_absent_bias_and_shapes_of_inputs(backward, x_shape, w_shape):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    forward = getattr(rc, backward.__name__.removesuffix("_backward"))
    grad_out = np.ones(forward(x, w).shape)
    grad_x, grad_w, grad_b = backward(grad_out, x, w)
    assert grad_b is None
    assert grad_x.shape == x.shape and grad_w.shape == w.shape
    assert grad_x.dtype == np.float64 and grad_w.dtype == np.float64


# --- properties without an oracle ----------------------------------------------------------------


@settings(max_examples=25)
@given(
    groups=st.integers(1, 2), c_in_g=st.integers(1, 2), c_out_g=st.integers(1, 2),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
    extra=st.tuples(st.integers(0, 3), st.integers(0, 3)), seed=st.integers(0, 2**32 - 1),
)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(groups, c_in_g, c_out_g, k, s, d, pads, extra, seed):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> with the same stride, padding, dilation and groups,
    and output_padding chosen to give back x's size: the transposed convolution is the adjoint map."""
    sizes = tuple(max(1, d[i] * (k[i] - 1) + 1 - sum(pads[i])) + extra[i] for i in range(2))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c_in_g * groups) + sizes)
    w = rng.standard_normal((c_out_g * groups, c_in_g) + k)
    kw = {"stride": s, "padding": pads, "dilation": d, "groups": groups}
    y = rng.standard_normal(rc.conv2d(x, w, **kw).shape)
    out = y.shape[2:]
    # the transposed size misses the cells no window reached; output_padding puts them back
    output_padding = tuple(
        sizes[i] - ((out[i] - 1) * s[i] - sum(pads[i]) + d[i] * (k[i] - 1) + 1) for i in range(2)
    )
    back = rc.conv_transpose2d(y, w, None, s, pads, output_padding, groups, d)
    assert back.shape == x.shape
    left, right = float(np.sum(rc.conv2d(x, w, **kw) * y)), float(np.sum(x * back))
    assert abs(left - right) <= 1e-9 * (1 + abs(left)), (kw, output_padding, left, right)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_lower_precision_inputs_are_computed_in_float64(dtype):
    rng = np.random.default_rng(3)
    x, w, b = (a.astype(dtype) for a in _arrays(rng, (1, 2, 4, 4), (3, 2, 2, 2), 3))
    y = rc.conv2d(x, w, b, padding=1)
    expected = rc.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1)
    assert y.dtype == np.float64
    assert_close(y, expected, atol=0, rtol=0, what=f"conv2d on {np.dtype(dtype).name}")


def test_inputs_are_not_modified():
    rng = np.random.default_rng(4)
    x, w, b = _arrays(rng, (1, 1, 3, 3), (1, 1, 2, 2), 1)
    copies = [a.copy() for a in (x, w, b)]
    grad_out = np.ones((1, 1, 4, 4))
    rc.conv2d_backward(grad_out, x, w, b, padding=1, padding_mode="reflect")
    for before, after in zip(copies, (x, w, b)):
        assert np.array_equal(before, after)


def test_conv_geometry_resolves_same_padding_for_stride_2():
    geom = geometry.conv_geometry("conv2d", (2, 4, 5, 6), (6, 2, 2, 4), (6,), 2, "same", 1, 2, "zeros", 2)
    assert (geom.N, geom.C_in, geom.C_out, geom.G) == (2, 4, 6, 2)
    assert geom.pads == ((0, 1), (1, 1))
    assert geom.out == (3, 3) and geom.out_shape == (2, 6, 3, 3)
    with pytest.raises(AttributeError):  # frozen: fastcnn may cache it safely
        geom.N = 3


def test_conv_transpose_geometry_resolves_output_size():
    geom = geometry.conv_transpose_geometry("conv_transpose1d", (1, 4, 3), (4, 1, 2), None, 2, ((0, 2),), 1, 2, 2, 1)
    # L_out = (3 - 1)*2 - 0 - 2 + 2*(2 - 1) + 1 + 1 = 6; C_out = (C_out/G) * G = 1 * 2
    assert (geom.C_out, geom.out, geom.output_padding) == (2, (6,), (1,))


# --- errors ----------------------------------------------------------------------------------------

X4, W4 = np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 3, 3))
X3, W3 = np.zeros((1, 2, 5)), np.zeros((3, 2, 3))

ERRORS = [
    # (call, error class, substrings of the message)
    (lambda: rc.conv2d(X4, np.zeros((3, 1, 3, 3))), ValueError,
     ["conv2d", "weight", "x.shape=(1, 2, 4, 4)", "weight.shape=(3, 1, 3, 3)"]),
    (lambda: rc.conv2d(X4, np.zeros((3, 1, 3, 3)), groups=2), ValueError, ["groups", "C_out = 3"]),
    (lambda: rc.conv2d(X4, np.zeros((1, 2, 5, 3))), ShapeError, ["conv2d: axis H", "weight.shape=(1, 2, 5, 3)"]),
    (lambda: rc.conv1d(X3, np.zeros((3, 2, 8)), padding=1), ShapeError, ["conv1d: axis L", "x.shape=(1, 2, 5)"]),
    (lambda: rc.conv2d(X4, W4, padding_mode="edge"), ValueError, ["padding_mode", "'edge'"]),
    (lambda: rc.conv2d(X4.astype(np.int64), W4), TypeError, ["`x`", "int64"]),
    (lambda: rc.conv2d(X4, W4.astype(np.int32)), TypeError, ["`weight`", "int32"]),
    (lambda: rc.conv2d(X4.tolist(), W4), TypeError, ["`x`", "list"]),
    (lambda: rc.conv2d(X4, W4, bias=np.zeros(2)), ValueError, ["bias", "(3,)"]),
    (lambda: rc.conv2d(X4, W4, stride=0), ValueError, ["stride", "stride=0"]),
    (lambda: rc.conv2d(X4, W4, dilation=(1, 0)), ValueError, ["dilation"]),
    (lambda: rc.conv2d(X4, W4, padding=-1), ValueError, ["padding"]),
    (lambda: rc.conv2d(X4, W4, padding=((1, 1), 2)), ValueError, ["padding"]),
    (lambda: rc.conv2d(X4, W4, padding="full"), ValueError, ["padding", "'full'"]),
    (lambda: rc.conv2d(X3, W3), ValueError, ["conv2d", "4 dimensions", "(N, C_in, H, W)"]),
    (lambda: rc.conv1d(X4, W4), ValueError, ["conv1d", "3 dimensions", "(N, C_in, L)"]),
    (lambda: rc.conv1d(X3, W3, groups=0), ValueError, ["groups"]),
    (lambda: rc.conv1d(np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), padding=1, padding_mode="reflect"), ValueError,
     ["reflect"]),
    (lambda: rc.conv2d_backward(np.zeros((1, 3, 3, 3)), X4, W4), ValueError, ["grad_out", "(1, 3, 2, 2)"]),
    (lambda: rc.conv_transpose2d(X4, np.zeros((3, 1, 3, 3))), ValueError, ["conv_transpose2d", "C_in = 2"]),
    (lambda: rc.conv_transpose2d(X4, np.zeros((2, 1, 3, 3)), padding="same"), ValueError, ["'same'"]),
    (lambda: rc.conv_transpose1d(X3, np.zeros((2, 1, 3)), stride=2, output_padding=2), ShapeError,
     ["output_padding", "conv_transpose1d: axis L"]),
    (lambda: rc.conv_transpose1d(X3, np.zeros((2, 1, 3)), padding=4), ShapeError, ["less than 1"]),
    (lambda: rc.conv_transpose1d(X3, np.zeros((2, 1, 3)), output_padding=-1), ValueError, ["output_padding"]),
]


@pytest.mark.parametrize("call, error, words", ERRORS, ids=[f"error-{i}" for i in range(len(ERRORS))])
def test_invalid_arguments_raise_documented_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


# --- agreement with PyTorch ------------------------------------------------------------------------
# PyTorch pads only symmetrically with zeros inside its conv, so the oracle pads first with F.pad and
# convolves unpadded; the transposed oracle crops PyTorch's uncropped output itself.

TORCH_PAD_MODE = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect", "circular": "circular"}


def _same_pads(n, k, s, d, lower):
    """specs/shapes-and-padding.md section 3, written out again so the oracle does not use refcnn.shapes."""
    total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
    half, rest = total // 2, total - total // 2
    return (rest, half) if lower else (half, rest)


def _torch_grads(torch, forward, x, w, b, grad_out_seed):
    """forward(X, W, B) -> Y in torch; returns y and the three gradients for a random grad_out."""
    X, W = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    B = None if b is None else torch.tensor(b, requires_grad=True)
    Y = forward(X, W, B)
    grad_out = np.random.default_rng(grad_out_seed).standard_normal(tuple(Y.shape))
    Y.backward(torch.tensor(grad_out))
    grads = (X.grad.numpy(), W.grad.numpy(), None if B is None else B.grad.numpy())
    return Y.detach().numpy(), grad_out, grads


def _assert_agrees(name, ours, theirs, grads_ours, grads_theirs, params):
    what = f"{name} {params}"
    assert_close(ours, theirs, atol=1e-10, rtol=1e-10, what=f"{what} forward")
    for label, g_ours, g_theirs in zip(("grad_x", "grad_weight", "grad_bias"), grads_ours, grads_theirs):
        if g_theirs is None:
            assert g_ours is None, f"{what}: {label} should be None"
        else:
            assert_close(g_ours, g_theirs, atol=1e-10, rtol=1e-10, what=f"{what} {label}")


# Local: sizes large enough for F.pad's limits on non-zero fills (which the spec does not have), and the
# resolved per-side amounts the PyTorch oracle pads by; the arrays come from this file's seeded _arrays.
@st.composite
def conv_params(draw, rank):
    """Hyperparameters first, then sizes that are valid for them (and for PyTorch's F.pad) by construction."""
    groups = draw(st.integers(1, 2))
    kernel = draw(st.tuples(*[st.integers(1, 3)] * rank))
    stride = draw(st.tuples(*[st.integers(1, 3)] * rank))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * rank))
    mode = draw(st.sampled_from(MODES))
    form = draw(st.sampled_from(["int", "per-axis", "per-side", "valid", "same", "same_lower"]))
    side = st.integers(0, 2)
    if form == "int":
        amount = draw(side)
        padding, pairs = amount, [(amount, amount)] * rank
    elif form == "per-axis":
        amounts = draw(st.tuples(*[side] * rank))
        padding, pairs = amounts, [(a, a) for a in amounts]
    elif form == "per-side":
        pairs = [draw(st.tuples(side, side)) for _ in range(rank)]
        padding = tuple(pairs)
    else:
        padding, pairs = form, None
    sizes = []
    for i in range(rank):
        extent = dilation[i] * (kernel[i] - 1) + 1
        if pairs is None:
            # 'same' pads at most extent - 1 cells in all, fewer than n once n >= extent (F.pad's limit)
            lowest = extent if form == "valid" or mode != "zeros" else 1
        else:
            lowest = max(1, extent - sum(pairs[i]))
            if mode != "zeros":
                lowest = max(lowest, max(pairs[i]) + 1)
        sizes.append(draw(st.integers(max(lowest, 2 if mode == "reflect" else 1), lowest + 3)))
    if pairs is None:
        pairs = [(0, 0)] * rank if form == "valid" else [
            _same_pads(sizes[i], kernel[i], stride[i], dilation[i], form == "same_lower") for i in range(rank)
        ]
    return {
        "N": draw(st.integers(1, 2)),
        "c_in": groups * draw(st.integers(1, 2)),
        "c_out": groups * draw(st.integers(1, 2)),
        "sizes": tuple(sizes), "kernel": kernel, "bias": draw(st.booleans()), "pairs": pairs,
        "kwargs": {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "padding_mode": mode},
    }


def _check_conv_against_torch(rank, params, seed):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    kw = params["kwargs"]
    x, w, b = _arrays(rng, (params["N"], params["c_in"]) + params["sizes"],
                      (params["c_out"], params["c_in"] // kw["groups"]) + params["kernel"], params["c_out"],
                      params["bias"])
    flat = [v for pair in reversed(params["pairs"]) for v in pair]  # F.pad starts with the last axis
    conv = F.conv1d if rank == 1 else F.conv2d

    def forward(X, W, B):
        padded = F.pad(X, flat, mode=TORCH_PAD_MODE[kw["padding_mode"]])
        return conv(padded, W, B, stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])

    y, grad_out, grads = _torch_grads(torch, forward, x, w, b, seed + 1)
    name = "conv1d" if rank == 1 else "conv2d"
    ours = getattr(rc, name)(x, w, b, **kw)
    ours_grads = getattr(rc, name + "_backward")(grad_out, x, w, b, **kw)
    _assert_agrees(name, ours, y, ours_grads, grads, params)


@settings(max_examples=25)
@given(params=conv_params(2), seed=st.integers(0, 2**31))
def test_conv2d_agrees_with_torch(params, seed):
    _check_conv_against_torch(2, params, seed)


@settings(max_examples=25)
@given(params=conv_params(1), seed=st.integers(0, 2**31))
def test_conv1d_agrees_with_torch(params, seed):
    _check_conv_against_torch(1, params, seed)


# Local: the per-side crops the PyTorch oracle cuts by, and sizes only (the arrays come from this file's
# seeded _arrays), where the shared strategy draws whole calls.
@st.composite
def conv_transpose_params(draw, rank):
    """Hyperparameters, then per-side crops and sizes for which the output has at least one cell."""
    groups = draw(st.integers(1, 2))
    kernel = draw(st.tuples(*[st.integers(1, 3)] * rank))
    stride = draw(st.tuples(*[st.integers(1, 3)] * rank))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * rank))
    output_padding = tuple(draw(st.integers(0, max(stride[i], dilation[i]) - 1)) for i in range(rank))
    pairs = [draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in range(rank)]
    sizes = []
    for i in range(rank):
        # (n-1)s - p_b - p_e + d(k-1) + output_padding + 1 >= 1
        short = sum(pairs[i]) - dilation[i] * (kernel[i] - 1) - output_padding[i]
        lowest = 1 + max(0, -(-short // stride[i]))
        sizes.append(draw(st.integers(lowest, lowest + 2)))
    symmetric = all(a == b for a, b in pairs)
    padding = tuple(a for a, _ in pairs) if symmetric and draw(st.booleans()) else tuple(pairs)
    return {
        "N": draw(st.integers(1, 2)), "c_in": groups * draw(st.integers(1, 2)),
        "c_out_g": draw(st.integers(1, 2)), "sizes": tuple(sizes), "kernel": kernel, "bias": draw(st.booleans()),
        "pairs": pairs, "output_padding": output_padding,
        "kwargs": {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups,
                   "dilation": dilation},
    }


def _check_conv_transpose_against_torch(rank, params, seed):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    kw = params["kwargs"]
    G = kw["groups"]
    x, w, b = _arrays(rng, (params["N"], params["c_in"]) + params["sizes"],
                      (params["c_in"], params["c_out_g"]) + params["kernel"], params["c_out_g"] * G, params["bias"])
    conv_t = F.conv_transpose1d if rank == 1 else F.conv_transpose2d

    def forward(X, W, B):
        full = conv_t(X, W, None, stride=kw["stride"], groups=G, dilation=kw["dilation"])
        for axis, ((begin, end), extra) in enumerate(zip(params["pairs"], params["output_padding"]), start=2):
            size = full.shape[axis]
            keep = size - begin - end + extra
            full = full.narrow(axis, min(begin, size), max(0, min(keep, size - begin)))
            # output cells past the last window (output_padding beyond the crop) hold zeros
            full = F.pad(full, [0, 0] * (rank + 1 - axis) + [0, keep - full.shape[axis]])
        return full if B is None else full + B.reshape((1, -1) + (1,) * rank)

    y, grad_out, grads = _torch_grads(torch, forward, x, w, b, seed + 1)
    name = "conv_transpose1d" if rank == 1 else "conv_transpose2d"
    ours = getattr(rc, name)(x, w, b, **kw)
    ours_grads = getattr(rc, name + "_backward")(grad_out, x, w, b, **kw)
    _assert_agrees(name, ours, y, ours_grads, grads, params)


@settings(max_examples=25)
@given(params=conv_transpose_params(2), seed=st.integers(0, 2**31))
def test_conv_transpose2d_agrees_with_torch(params, seed):
    _check_conv_transpose_against_torch(2, params, seed)


@settings(max_examples=25)
@given(params=conv_transpose_params(1), seed=st.integers(0, 2**31))
def test_conv_transpose1d_agrees_with_torch(params, seed):
    _check_conv_transpose_against_torch(1, params, seed)


def test_conv_transpose2d_agrees_with_torch_native_padding():
    """The crop-based oracle above is itself checked against PyTorch's own symmetric padding."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(5)
    x, w, b = _arrays(rng, (1, 2, 3, 2), (2, 2, 3, 3), 4)
    kw = {"stride": (2, 3), "padding": (1, 2), "output_padding": (1, 0), "groups": 2, "dilation": (1, 2)}
    expected = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw).numpy()
    assert_close(rc.conv_transpose2d(x, w, b, **kw), expected, atol=1e-10, rtol=1e-10, what=f"conv_transpose2d {kw}")
