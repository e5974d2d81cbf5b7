"""fastcnn's direct kernels for grouped convolutions with few channels per group (fastcnn/conv_direct.py).

The rule sends depthwise stride-1 convolutions there; these tests check that the rule takes them (so the
properties below do test the direct kernels), that the results are refcnn's in float64 and the GEMM path's in
float32 for any fill, dilation, padding and size, and that they do not depend on the thread count.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastcnn
import refcnn
from fastcnn import conv_direct

MODES = ["zeros", "reflect", "replicate", "circular"]


@st.composite
def grouped_cases(draw):
    rank = draw(st.sampled_from([1, 2]))
    per_group = draw(st.integers(1, conv_direct.DIRECT_MAX_CHANNELS))
    groups = draw(st.integers(2, 4))
    out_per_group = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    mode = draw(st.sampled_from(MODES))
    reach = dilation * (kernel - 1) + 1
    # reflect and circular fills need the padding below the size (the ground floor checks it)
    size = draw(st.integers(max(reach, padding + 1, 2), 11))
    n = draw(st.integers(1, 3))
    x_shape = (n, per_group * groups) + (size,) * rank
    w_shape = (out_per_group * groups, per_group) + (kernel,) * rank
    kw = dict(stride=1, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    return rank, x_shape, w_shape, kw, draw(st.integers(0, 2**31 - 1))


def _arrays(x_shape, w_shape, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


@contextlib.contextmanager
def _channel_limit(value):
    """The rule's channel limit set to ``value`` for the calls inside (0: never direct)."""
    saved = conv_direct.DIRECT_MAX_CHANNELS
    conv_direct.DIRECT_MAX_CHANNELS = value
    try:
        yield
    finally:
        conv_direct.DIRECT_MAX_CHANNELS = saved


def _ops(engine, rank):
    return (engine.conv2d, engine.conv2d_backward) if rank == 2 else (engine.conv1d, engine.conv1d_backward)


def test_the_rule_takes_depthwise_stride_1_only():
    assert conv_direct.direct_pays(32, 32, (1, 1))
    assert conv_direct.direct_pays(64, 32, (1, 1))  # 2 channels per group
    assert not conv_direct.direct_pays(3, 1, (1, 1))  # an ungrouped first layer stays on the GEMM path
    assert not conv_direct.direct_pays(32, 32, (2, 2))
    assert not conv_direct.direct_pays(128, 32, (1, 1))  # 4 per group: above the limit


@settings(max_examples=40, deadline=None)
@given(grouped_cases())
def test_float64_is_refcnn(case):
    rank, x_shape, w_shape, kw, seed = case
    x, w, b = _arrays(x_shape, w_shape, seed, np.float64)
    fwd, bwd = _ops(fastcnn, rank)
    ref_fwd, ref_bwd = _ops(refcnn, rank)
    y = fwd(x, w, b, **kw)
    np.testing.assert_allclose(y, ref_fwd(x, w, b, **kw), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    for got, want in zip(bwd(g, x, w, b, **kw), ref_bwd(g, x, w, b, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(grouped_cases())
def test_float32_agrees_with_the_gemm_path(case):
    rank, x_shape, w_shape, kw, seed = case
    x, w, b = _arrays(x_shape, w_shape, seed, np.float32)
    fwd, bwd = _ops(fastcnn, rank)
    y = fwd(x, w, b, **kw)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
    grads = bwd(g, x, w, b, **kw)
    with _channel_limit(0):  # the GEMM path for the same call
        y_gemm = fwd(x, w, b, **kw)
        grads_gemm = bwd(g, x, w, b, **kw)
    # float32 sums of at most 4 * 3 * 3 terms per output and a few hundred per weight, of values ~N(0, 1)
    np.testing.assert_allclose(y, y_gemm, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, grads_gemm):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_whatever_the_thread_count(dtype):
    x, w, b = _arrays((9, 16, 13, 11), (16, 1, 3, 3), 7, dtype)
    kw = dict(stride=1, padding=1, dilation=1, groups=16, padding_mode="reflect")
    g = np.random.default_rng(8).standard_normal((9, 16, 13, 11)).astype(dtype)
    before = fastcnn.get_num_threads()
    results = []
    try:
        for threads in (1, 2) if before >= 2 else (1,):
            fastcnn.set_num_threads(threads)
            results.append((fastcnn.conv2d(x, w, b, **kw),) + fastcnn.conv2d_backward(g, x, w, b, **kw))
    finally:
        fastcnn.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other):
            assert np.array_equal(a, c)


def test_a_hand_worked_depthwise_case():
    """Two channels, one 2x2 kernel each, no padding: every output is written out by hand."""
    x = np.array([[[[1, 2, 3], [4, 5, 6]], [[0, 1, 0], [2, 0, 1]]]], dtype=np.float64)  # (1, 2, 2, 3)
    w = np.array([[[[1, 0], [0, 1]]], [[[0, 2], [1, 0]]]], dtype=np.float64)  # (2, 1, 2, 2)
    b = np.array([0.5, -1.0])
    y = fastcnn.conv2d(x, w, b, groups=2)
    # channel 0: x[0,0]+x[1,1], x[0,1]+x[1,2] (+0.5); channel 1: 2*x[0,1]+x[1,0], 2*x[0,2]+x[1,1] (-1)
    assert y.tolist() == [[[[1 + 5 + 0.5, 2 + 6 + 0.5]], [[2 * 1 + 2 - 1, 2 * 0 + 0 - 1]]]]
