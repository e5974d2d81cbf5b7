"""fastcnn.im2row, the strided 2-D convolutions' path (channel-last patch rows, one GEMM per block of samples):
which layers take it, agreement with refcnn on channel counts of whole vectors (the register-transposed copies)
and every fill, the same bits on 1 and 2 threads, and a weight gradient without the input gradient.
``test_any_strided_convolution_matches_refcnn`` draws the other shapes (Hypothesis, any channel count).

Tolerances as tests/test_fast_conv.py: float64 1e-12 * scale; float32 2e-5 * scale * sqrt(R), R the longest sum
behind one value (C KH KW for the output and input gradient, N H_out W_out for the weight gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastcnn
from cnnbase import conv as geometry
from fastcheck import assert_bit_identical, results_per_thread_count
from fastcnn import conv as fc, im2row
from refcnn import conv as rc

pytestmark = pytest.mark.skipif(not fastcnn._blas.CBLAS, reason="im2row needs NumPy's CBLAS")


def _takes(x_shape, w_shape, stride, padding=1, dilation=1, groups=1, dtype=np.float32, backward=False):
    geom = geometry.conv_geometry("conv2d", x_shape, w_shape, None, stride, padding, dilation, groups, "zeros", 2)
    return im2row.pays(geom, geom.as_2d(), dtype, backward)


def test_resnets_strided_layers_take_it_and_the_others_do_not():
    assert _takes((64, 16, 28, 28), (32, 16, 3, 3), 2)  # ResNet-20's downsampling 3x3 layers
    assert _takes((64, 32, 14, 14), (64, 32, 3, 3), 2)
    assert _takes((8, 64, 56, 56), (128, 64, 3, 3), 2)  # ResNet-18's
    assert _takes((4, 8, 9, 9), (4, 8, 3, 2), (2, 1))  # one strided axis is enough
    assert not _takes((64, 16, 28, 28), (16, 16, 3, 3), 1)  # stride 1: Winograd, or conv.py's own paths
    assert not _takes((64, 16, 28, 28), (32, 16, 1, 1), 2, padding=0)  # 1x1: conv.py's im2col copies no window
    assert _takes((64, 16, 28, 28), (32, 16, 1, 1), 2, padding=0, backward=True)  # but its backward gains
    assert not _takes((64, 3, 28, 28), (32, 3, 3, 3), 2)  # few channels
    assert _takes((64, 4, 28, 28), (32, 4, 3, 3), 2)
    assert not _takes((64, 16, 28, 28), (32, 8, 3, 3), 2, groups=2)
    assert not _takes((64, 16, 28, 28), (32, 16, 3, 3), 2, dilation=(1, 2))  # runs no longer contiguous
    assert _takes((64, 16, 28, 28), (32, 16, 3, 3), 2, dilation=(2, 1))
    assert not _takes((1, 64, 1024, 1024), (64, 64, 3, 3), 2)  # a channel-last sample past MAX_SCRATCH


#: (N, C, K, H, W, kernel, stride, padding, dilation, fill, bias): whole vectors of channels (16, 32: every
#: copy by register transposes), odd sizes whose last blocks overlap, every fill, uneven pads.
CASES = [
    (3, 16, 32, 28, 28, 3, 2, 1, 1, "zeros", False),
    (5, 32, 64, 14, 14, 3, 2, 1, 1, "zeros", True),
    (3, 16, 16, 13, 11, 3, 2, 1, 1, "reflect", True),
    (2, 32, 16, 12, 9, (3, 2), (2, 3), ((1, 2), (0, 1)), (2, 1), "circular", False),
    (2, 16, 48, 10, 10, 5, 3, 2, 1, "replicate", True),
    (9, 16, 24, 7, 7, 3, 2, 1, 1, "zeros", True),  # 4x4 outputs: blocks of several samples, a short last one
    (2, 8, 5, 9, 11, 3, 2, 0, 1, "zeros", True),  # a channel count of no whole vector
    (3, 32, 64, 14, 14, 1, 2, 0, 1, "zeros", False),  # a 1x1 projection: its backward only
]


def _arrays(case, dtype, seed):
    N, C, K, H, W, kernel = case[:6]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, C, H, W))
    w = rng.uniform(-1, 1, (K, C, kh, kw))
    b = rng.uniform(-1, 1, K) if case[10] else None
    return x, w, b


def _kwargs(case):
    return dict(stride=case[6], padding=case[7], dilation=case[8], padding_mode=case[9])


def _close(got, want, dtype, reduction, what):
    scale = max(1.0, float(np.abs(want).max()))
    tol = 1e-12 * scale if dtype == np.float64 else 2e-5 * scale * math.sqrt(reduction)
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert got.dtype == dtype and err <= tol, f"{what}: error {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES)
def test_agrees_with_refcnn(case, dtype):
    x, w, b = _arrays(case, dtype, seed=sum(case[:5]))
    x, w = x.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64)  # the oracle sees the same inputs
    b = None if b is None else b.astype(dtype).astype(np.float64)
    kw = _kwargs(case)
    geom = geometry.conv_geometry("conv2d", x.shape, w.shape, None if b is None else b.shape, kw["stride"],
                                  kw["padding"], kw["dilation"], 1, kw["padding_mode"], 2)
    assert im2row.pays(geom, geom.as_2d(), dtype, backward=True)
    _check(x, w, b, kw, dtype)


def _check(x, w, b, kw, dtype):
    """fastcnn's forward and backward of the float64 arrays (exactly representable in ``dtype``) within the
    tolerances of refcnn's."""
    y_ref = rc.conv2d(x, w, b, **kw)
    g = np.random.default_rng(1).uniform(-1, 1, y_ref.shape)
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b, g)]
    window = w.shape[1] * w.shape[2] * w.shape[3]
    cells = g.shape[0] * g.shape[2] * g.shape[3]
    _close(fc.conv2d(*cast[:3], **kw), y_ref, dtype, window, "forward")
    got = fc.conv2d_backward(cast[3], *cast[:3], **kw)
    want = rc.conv2d_backward(g, x, w, b, **kw)
    for name, gg, ww, r in zip(("grad_x", "grad_w", "grad_b"), got, want, (window, cells, cells)):
        if ww is None:
            assert gg is None
            continue
        _close(gg, ww, dtype, r, name)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]])
def test_same_bits_on_one_and_two_threads(case):
    x, w, b = (None if a is None else a.astype(np.float32) for a in _arrays(case, np.float32, seed=5))
    kw = _kwargs(case)
    g = np.random.default_rng(2).standard_normal(fc.conv2d(x, w, b, **kw).shape).astype(np.float32)
    assert_bit_identical(results_per_thread_count(
        lambda: (fc.conv2d(x, w, b, **kw), *fc.conv2d_backward(g, x, w, b, **kw))))


def test_weight_gradient_alone_is_the_same():
    """``input_grad=False`` (a first layer) skips the input gradient's GEMM and row2im; the weight gradient is
    the same bits."""
    case = CASES[1]
    x, w, b = (a.astype(np.float32) for a in _arrays(case, np.float32, seed=7))
    geom = geometry.conv_geometry("conv2d", x.shape, w.shape, b.shape, 2, 1, 1, 1, "zeros", 2)
    g = np.random.default_rng(3).standard_normal(geom.out_shape).astype(np.float32)
    full = fastcnn.conv_backward(geom, g, x, w, b)
    alone = fastcnn.conv_backward(geom, g, x, w, b, input_grad=False)
    assert_bit_identical([full[1:], alone[1:]])


def test_infinite_weight_through_zero_padding_is_nan_as_in_im2col():
    """Padded cells are zeros the GEMM multiplies (the module's note): an infinite weight meets them in the
    border outputs, which are NaN, as conv.py's im2col gives them; inside they are infinite, as refcnn's."""
    x = np.ones((1, 16, 6, 6), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    w[0, 0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        y = fc.conv2d(x, w, None, stride=2, padding=1)
    assert np.isnan(y[0, 0, 0, 0]) and np.isinf(y[0, 0, 1, 1])


@st.composite
def _strided_problems(draw):
    """(x, w, b, kwargs, dtype): one group, a stride other than 1 on some axis, no width dilation, any
    channel count (1 to 20: loops and register-transposed copies), pads per side and every fill,
    sizes for which the fill is defined (reflect: pads under the size) and the output not empty."""
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)).filter(lambda s: s != (1, 1)))
    dilation = (draw(st.integers(1, 2)), 1)
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
    sizes = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        low = max(3, extent - sum(pads[axis]))
        sizes.append(draw(st.integers(low, low + 7)))
    N, C, K = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-1, 1, (N, C, *sizes))
    w = rng.uniform(-1, 1, (K, C, *kernel))
    b = rng.uniform(-1, 1, K) if draw(st.booleans()) else None
    dtype = draw(st.sampled_from((np.float64, np.float32)))
    return x, w, b, dict(stride=stride, padding=pads, dilation=dilation, padding_mode=mode), dtype


@settings(max_examples=40)
@given(_strided_problems())
def test_any_strided_convolution_matches_refcnn(problem):
    """With MIN_CHANNELS at 1 every draw takes im2row (asserted; a 1x1 kernel its backward only), forward and
    both gradients within the tolerances above."""
    x, w, b, kw, dtype = problem
    x, w = x.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64)
    b = None if b is None else b.astype(dtype).astype(np.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2row, "MIN_CHANNELS", 1)
        geom = geometry.conv_geometry("conv2d", x.shape, w.shape, None if b is None else b.shape, kw["stride"],
                                      kw["padding"], kw["dilation"], 1, kw["padding_mode"], 2)
        assert im2row.pays(geom, geom.as_2d(), dtype, backward=True)
        assert im2row.pays(geom, geom.as_2d(), dtype) == (w.shape[2] * w.shape[3] > 1)
        _check(x, w, b, kw, dtype)
