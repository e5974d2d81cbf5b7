"""fastcnn's Winograd convolutions, F(2x2, 3x3) (fastcnn/winograd.py) and F(4x4, 3x3) (fastcnn/winograd4.py),
issue 16, and the ``algorithm`` keyword.

The oracle is refcnn (the formula's loops, float64). Tolerances (``specs/conv.md``, "Algorithms") are stated
against the *magnitude bound* of each result: the same op on ``|x|``, ``|w|``, ``|grad_out|`` (refcnn,
float64), the sum of the absolute values of the terms behind each value, the scale a rounding error is
proportional to; the largest error of a result over the largest bound of that result (normwise: Winograd's
transforms mix the 16 cells of a tile, so one element's error follows its tile's magnitudes, not its own
terms'). Measured over 60 random draws (C up to 40, values up to 1e3, paddings 0-2): float32 direct path
2.2e-7 at worst, F(2x2, 3x3) 1.9e-7, F(4x4, 3x3) 2.3e-6; float64 F(2x2, 3x3) ~3e-16, F(4x4, 3x3) ~3e-15.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastcnn
import refcnn
from fastcnn import winograd4_weights
from fastcnn._claim import claim
from cnnbase.padding import PADDING_MODES
from fastcheck import assert_bit_identical, results_per_thread_count

#: Allowed largest error of a result, as a fraction of its largest magnitude bound (module docstring): about
#: 10x the float32 figure measured, and for float64 still 1e4 times above the measured 1e-16.
FLOAT64_BOUND = 1e-12
FLOAT32_BOUND = {"direct": 2e-6, "winograd": 2e-6, "winograd4": 2e-5}

WINOGRADS = ("winograd", "winograd4")


@st.composite
def winograd_problems(draw):
    """(x, w, b, grad_out, kwargs) in float64: 3x3, stride 1, small odd and even sizes (partial last
    tiles), padding 0-2 with every fill; values of one problem within +-1 or +-1e3."""
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    h, w = draw(st.integers(max(1, 3 - 2 * pad), 7)), draw(st.integers(max(1, 3 - 2 * pad), 7))
    mode = draw(st.sampled_from(PADDING_MODES))
    assume(mode != "reflect" or pad == 0 or min(h, w) >= 2)
    scale = draw(st.sampled_from((1.0, 1e3)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-scale, scale, (n, c, h, w))
    wt = rng.uniform(-scale, scale, (k, c, 3, 3))
    b = rng.uniform(-1, 1, k) if draw(st.booleans()) else None
    go = rng.uniform(-1, 1, (n, k, h + 2 * pad - 2, w + 2 * pad - 2))
    return x, wt, b, go, dict(padding=pad, padding_mode=mode)


def _bounds(x, w, b, go, kw):
    """refcnn's results on absolute values: each element's magnitude bound (y, grad_x, grad_w, grad_b)."""
    ab = None if b is None else np.abs(b)
    y = refcnn.conv2d(np.abs(x), np.abs(w), ab, **kw)
    return (y, *refcnn.conv2d_backward(np.abs(go), np.abs(x), np.abs(w), ab, **kw))


def _assert_within(got, want, bound, fraction, what):
    for i, (g, e, s) in enumerate(zip(got, want, bound)):
        if e is None:
            assert g is None, f"{what}: output {i} should be None"
            continue
        err = np.abs(g.astype(np.float64) - e)
        limit = fraction * float(np.max(s))
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        assert err[worst] <= limit, (f"{what}: output {i} error {err[worst]:.3g} > {limit:.3g} at {worst}: "
                                     f"got {g[worst]!r}, expected {e[worst]!r}")


def _winograd(x, w, b, go, kw, dtype=np.float64, algorithm="winograd"):
    x, w, go = (a.astype(dtype) for a in (x, w, go))
    b = None if b is None else b.astype(dtype)
    return (fastcnn.conv2d(x, w, b, algorithm=algorithm, **kw),
            *fastcnn.conv2d_backward(go, x, w, b, algorithm=algorithm, **kw))


@pytest.mark.parametrize("algorithm", WINOGRADS)
@settings(max_examples=20, deadline=None)
@given(problem=winograd_problems())
def test_float64_matches_refcnn(algorithm, problem):
    x, w, b, go, kw = problem
    want = (refcnn.conv2d(x, w, b, **kw), *refcnn.conv2d_backward(go, x, w, b, **kw))
    got = _winograd(x, w, b, go, kw, algorithm=algorithm)
    _assert_within(got, want, _bounds(x, w, b, go, kw), FLOAT64_BOUND, f"float64 {algorithm} {kw}")


@pytest.mark.parametrize("algorithm", WINOGRADS)
@settings(max_examples=20, deadline=None)
@given(problem=winograd_problems())
def test_float32_within_the_stated_bound(algorithm, problem):
    """float32 Winograd against refcnn on the same float32 values (so only fastcnn's rounding counts), within
    its FLOAT32_BOUND, as the direct path is within its own on the same draws."""
    x, w, b, go, kw = problem
    x, w, go = (a.astype(np.float32).astype(np.float64) for a in (x, w, go))
    b = None if b is None else b.astype(np.float32).astype(np.float64)
    want = (refcnn.conv2d(x, w, b, **kw), *refcnn.conv2d_backward(go, x, w, b, **kw))
    bound = _bounds(x, w, b, go, kw)
    got = _winograd(x, w, b, go, kw, np.float32, algorithm)
    assert all(g is None or g.dtype == np.float32 for g in got)
    _assert_within(got, want, bound, FLOAT32_BOUND[algorithm], f"float32 {algorithm} {kw}")
    direct = (fastcnn.conv2d(*(None if a is None else a.astype(np.float32) for a in (x, w, b)),
                             algorithm="direct", **kw),
              *fastcnn.conv2d_backward(*(None if a is None else a.astype(np.float32) for a in (go, x, w, b)),
                                       algorithm="direct", **kw))
    _assert_within(direct, want, bound, FLOAT32_BOUND["direct"], f"float32 direct {kw}")


def test_f4x4_matrices_compute_the_correlation():
    """The 1-D F(4, 3) identity behind fastcnn.winograd4: A^T [(G g) * (B^T d)] = (d_i g0 + d_(i+1) g1 +
    d_(i+2) g2 for i < 4), for random d, g and for each unit vector (every coefficient takes part)."""
    from fastcnn.winograd4_weights import AT, BT, G
    rng = np.random.default_rng(3)
    cases = [(rng.standard_normal(6), rng.standard_normal(3)) for _ in range(5)]
    cases += [(np.eye(6)[e], np.eye(3)[k]) for e in range(6) for k in range(3)]
    for d, g in cases:
        want = [d[i] * g[0] + d[i + 1] * g[1] + d[i + 2] * g[2] for i in range(4)]
        assert np.allclose(AT @ ((G @ g) * (BT @ d)), want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("chunk_bytes,min_tiles", [(1 << 20, 64), (1, 1), (1, 8), (1 << 30, 1)])
def test_f4x4_every_chunking_matches_refcnn(monkeypatch, chunk_bytes, min_tiles):
    """F(4x4, 3x3)'s blocks and chunks (winograd4._plan): one tile row per chunk, a few tile rows, whole
    samples several at a time, and the default; float64, odd sizes, 5 samples (a partial block)."""
    import fastcnn.winograd4 as w4
    monkeypatch.setattr(w4, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(w4, "MIN_TILES", min_tiles)
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((5, 3, 13, 10)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g = rng.standard_normal((5, 4, 13, 10))
    kw = dict(padding=1, padding_mode="circular")
    want = (refcnn.conv2d(x, w, b, **kw), *refcnn.conv2d_backward(g, x, w, b, **kw))
    got = _winograd(x, w, b, g, kw, algorithm="winograd4")
    _assert_within(got, want, _bounds(x, w, b, g, kw), FLOAT64_BOUND, f"chunking {chunk_bytes} {min_tiles}")


def test_f4x4_weight_gradient_memory_is_bounded(monkeypatch):
    """With DU_BYTES below one task's weight gradient, the backward takes the whole batch in one task
    (winograd4._task_samples) and still matches refcnn, bit-identically for 1 and 2 threads."""
    import fastcnn.winograd4 as w4
    monkeypatch.setattr(w4, "DU_BYTES", 1)
    assert w4._task_samples(9, 16, 16, 1, 8) == 9 and w4._task_samples(9, 16, 16, 2, 8) == 10
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((9, 5, 9, 8)), rng.standard_normal((6, 5, 3, 3)), rng.standard_normal(6)
    g = rng.standard_normal((9, 6, 9, 8))
    kw = dict(padding=1)
    want = (refcnn.conv2d(x, w, b, **kw), *refcnn.conv2d_backward(g, x, w, b, **kw))
    got = _winograd(x, w, b, g, kw, algorithm="winograd4")
    _assert_within(got, want, _bounds(x, w, b, g, kw), FLOAT64_BOUND, "one task")
    assert_bit_identical(results_per_thread_count(lambda: _winograd(x, w, b, g, kw, algorithm="winograd4")))


def test_f4x4_tile_maps_are_new_arrays_from_remembered_maps():
    """The tile maps are remembered per geometry (winograd4._maps) but each call gets arrays of its own: one
    written into does not change the next call's, for short axes (remembered) and long ones (not)."""
    import fastcnn.winograd4 as w4
    from cnnbase.conv import conv_geometry
    from fastcnn._conv_base import conv_maps
    for width in (30, 5000):
        g = conv_geometry("conv2d", (1, 16, 6, width), (16, 16, 3, 3), None, 1, 1, 1, 1, "reflect", 2)
        src_h, src_w = w4._tile_maps(g)
        expected = src_w.copy()
        src_h[:] = 7
        src_w[:] = 7
        again_h, again_w = w4._tile_maps(g)
        np.testing.assert_array_equal(again_w, expected)
        assert again_h[0] == 1 and again_h[-1] == -1  # reflect: the cell before row 0 is row 1; then the fill
        maps = conv_maps(g)  # the padded input's maps, remembered per axis for short axes
        kept = [m.copy() for m in maps]
        for m in maps:
            m[:] = 7
        for m, k in zip(conv_maps(g), kept):
            np.testing.assert_array_equal(m, k)


def test_f4x4_on_an_axis_too_long_to_remember():
    """An input wider than 4,096 padded cells (maps computed at every call, not remembered) gives the direct
    path's numbers within the float64 bound, forward and backward."""
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((1, 16, 3, 4200)), rng.standard_normal((16, 16, 3, 3)), rng.standard_normal(16)
    g = rng.standard_normal((1, 16, 3, 4200))
    kw = dict(padding=1, padding_mode="circular")
    got = _winograd(x, w, b, g, kw, algorithm="winograd4")
    want = (fastcnn.conv2d(x, w, b, algorithm="direct", **kw),
            *fastcnn.conv2d_backward(g, x, w, b, algorithm="direct", **kw))
    scale = [np.abs(a).max() * np.ones_like(a) for a in want]
    _assert_within(got, want, scale, 1e-10, "a 4,202-cell axis")


def test_a_hand_worked_tile():
    """One 4x4 input, one 3x3 kernel of ones on the centre column: y[i, j] = x[i, j+1] + x[i+1, j+1] +
    x[i+2, j+1], worked by hand for x = arange(16)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, :, 1] = 1
    y = fastcnn.conv2d(x, w, algorithm="winograd")
    assert np.array_equal(y[0, 0], [[1 + 5 + 9, 2 + 6 + 10], [5 + 9 + 13, 6 + 10 + 14]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_f4x4_transposed_weight_transform_is_the_transpose(dtype):
    """The backward's U^T is computed straight in (36, K, C): the transpose of the forward's U, bit for bit (each
    value formed by the same float64 operations, whichever channel axis runs innermost)."""
    w = np.random.default_rng(3).standard_normal((5, 3, 3, 3)).astype(dtype)
    w[0, 0, 0, 0] = np.inf
    U = winograd4_weights.weight_transform(w, dtype)
    UT = winograd4_weights.weight_transform(w, dtype, transposed=True)
    assert U.shape == (36, 3, 5) and UT.shape == (36, 5, 3)
    assert_bit_identical([UT, np.ascontiguousarray(U.transpose(0, 2, 1))])


@numba.njit(parallel=True)
def _shared_transform(w, wt, U, shares, workers, transposed):
    for _ in numba.prange(workers):
        winograd4_weights.transform_share(w, wt, U, shares, transposed)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_f4x4_transform_shared_by_the_threads_is_weight_transform(threads, dtype, transposed):
    """The convolutions' threads copy the weights to float64 and compute U (U^T) in shares of input (output)
    channels before their tasks: the same bits as weight_transform, and the same float64 copy as transform_args,
    with shares left for the last thread (13 channels: 8 + 5), and every share counted done; the winograd4 ops
    give the same bytes on one thread and two (test_bit_identical_whatever_the_thread_count). More workers than
    threads (4): the extra ones find every share taken."""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("fewer threads available")
    w = np.random.default_rng(4).standard_normal((13 if transposed else 9, 13, 3, 3)).astype(dtype)
    w[1, 2, 0, 0] = np.nan
    w64, U_args = winograd4_weights.transform_args(w, dtype, transposed)
    wt, U = np.full_like(w64, 7.0), np.full_like(U_args, 7.0)  # every cell written, none left as it was
    shares = np.zeros(2, dtype=np.int64)
    before = fastcnn.get_num_threads()
    try:
        fastcnn.set_num_threads(threads)
        _shared_transform(w, wt, U, shares, 4, transposed)
    finally:
        fastcnn.set_num_threads(before)
    assert shares[1] == -(-w64.shape[0] // winograd4_weights.SHARE_CHANNELS) == 2
    assert_bit_identical([wt, w64])
    assert_bit_identical([U, winograd4_weights.weight_transform(w, dtype, transposed)])


@numba.njit(parallel=True)
def _shared_grad(blocks, dg, counters, workers):
    for _ in numba.prange(workers):
        for _task in range(blocks.shape[0] // workers):  # this thread's tasks, each counted done
            claim(counters[:1])
        winograd4_weights.grad_share(blocks, dg, counters, blocks.shape[0] // workers * workers)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_f4x4_weight_grad_shared_by_the_threads_is_weight_grad(threads, dtype):
    """The backward's threads compute the weight gradient in shares of input channels once every task is counted
    done: the same bits as weight_grad (13 input channels: shares of 8 and 5)."""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("fewer threads available")
    blocks = np.random.default_rng(5).standard_normal((4, 36, 13, 6)).astype(dtype)
    dg = np.empty((6, 13, 3, 3), dtype=dtype)
    before = fastcnn.get_num_threads()
    try:
        fastcnn.set_num_threads(threads)
        _shared_grad(blocks, dg, np.zeros(2, dtype=np.int64), threads)
    finally:
        fastcnn.set_num_threads(before)
    assert_bit_identical([dg, winograd4_weights.weight_grad(blocks, dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("blocks, channels, filters", [(1, 3, 5), (8, 16, 16), (3, 64, 32)])
def test_f4x4_weight_grad_sums_the_blocks_in_order_then_transforms(dtype, blocks, channels, filters):
    """weight_grad of the backward tasks' blocks: dU = blocks[0] + blocks[1] + ... added in order in their dtype,
    then G^T dU G in float64, each sum from 0 in order: bit for bit NumPy doing the same operations one at a time
    (each an IEEE operation, so the order is all there is to agree on), written as (K, C, 3, 3)."""
    from fastcnn.winograd4_weights import G, weight_grad

    rng = np.random.default_rng(blocks * channels)
    dU_blocks = rng.standard_normal((blocks, 36, channels, filters)).astype(dtype)
    dU = np.zeros((36, channels, filters), dtype=dtype)
    for block in dU_blocks:
        dU = dU + block
    rows = dU.astype(np.float64).reshape(6, 6, channels, filters)  # rows[a, b] = dU[a*6 + b]
    t = np.empty((3, 6, channels, filters))
    for i in range(3):
        for b in range(6):
            acc = np.zeros((channels, filters))
            for a in range(6):
                acc = acc + G[a, i] * rows[a, b]
            t[i, b] = acc
    want = np.empty((filters, channels, 3, 3), dtype=dtype)
    for i in range(3):
        for j in range(3):
            acc = np.zeros((channels, filters))
            for b in range(6):
                acc = acc + t[i, b] * G[b, j]
            want[:, :, i, j] = acc.T
    got = weight_grad(dU_blocks, dtype)
    assert got.shape == (filters, channels, 3, 3) and got.dtype == dtype and got.flags.c_contiguous
    assert_bit_identical([got, want])


def test_a_hand_worked_f4x4_tile():
    """One 6x6 input, one kernel of ones on the centre row: y[i, j] = x[i+1, j] + x[i+1, j+1] + x[i+1, j+2]
    = 3 x[i+1, j+1] for x = arange(36) on rows of 6 (each row is an arithmetic run): 3 (6 (i + 1) + j + 1).
    The sums are small integers, exact through F(4x4, 3x3)'s sixths in float64 up to rounding."""
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, :] = 1
    y = fastcnn.conv2d(x, w, algorithm="winograd4")
    want = [[3 * (6 * (i + 1) + j + 1) for j in range(4)] for i in range(4)]
    assert np.allclose(y[0, 0], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_whatever_the_thread_count(dtype, algorithm):
    """11 samples (weight-gradient blocks of 4: one partial), odd sizes, reflect fill; forward and backward."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 17, 9, 13)).astype(dtype)
    w = rng.standard_normal((18, 17, 3, 3)).astype(dtype)
    b = rng.standard_normal(18).astype(dtype)
    g = rng.standard_normal((11, 18, 9, 13)).astype(dtype)
    kw = dict(padding=1, padding_mode="reflect", algorithm=algorithm)
    runs = results_per_thread_count(lambda: (fastcnn.conv2d(x, w, b, **kw), *fastcnn.conv2d_backward(g, x, w, b, **kw)))
    assert_bit_identical(runs)


def test_np_dot_path_agrees_with_cblas(monkeypatch):
    """Without NumPy's CBLAS the same kernels call np.dot (SciPy's BLAS); 'auto' then keeps the direct path."""
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((3, 16, 7, 6)), rng.standard_normal((16, 16, 3, 3)), rng.standard_normal(16)
    g = rng.standard_normal((3, 16, 7, 6))
    want = (refcnn.conv2d(x, w, b, padding=1), *refcnn.conv2d_backward(g, x, w, b, padding=1))
    monkeypatch.setattr(fastcnn._blas, "CBLAS", False)
    for algorithm in WINOGRADS:
        got = _winograd(x, w, b, g, dict(padding=1), algorithm=algorithm)
        for a, e in zip(got, want):
            assert np.abs(a - e).max() <= 1e-12 * np.abs(e).max(), algorithm
    assert not fastcnn.winograd.pays(_geometry((3, 32, 7, 6), (32, 32, 3, 3)), np.float64)
    assert not fastcnn.winograd4.pays(_geometry((3, 32, 9, 9), (32, 32, 3, 3)), np.float64)


def _geometry(x_shape, w_shape, stride=1, padding=1, dilation=1, groups=1):
    from cnnbase.conv import conv_geometry
    return conv_geometry("conv2d", x_shape, w_shape, None, stride, padding, dilation, groups, "zeros", 2)


def test_auto_rule_f4x4():
    """'auto' asks F(4x4, 3x3) first: it takes the seeds' conv2 and ResNet-20's 16-, 32- and 64-channel layers,
    (the last on its 7x7 maps), not 8-channel ones, 128 -> 128 channels, outputs under 7x7 (under 14x14 with
    fewer than 32 channels a side), nor what Winograd cannot compute."""
    pays = fastcnn.winograd4.pays
    cblas = fastcnn._blas.CBLAS
    assert list(fastcnn.conv.ALGORITHMS) == ["winograd4", "winograd"]
    assert pays(_geometry((128, 32, 26, 26), (64, 32, 3, 3), padding=0), np.float32) == cblas
    for c, size in ((16, 32), (16, 28), (16, 14), (32, 16), (32, 7), (64, 8), (64, 7)):
        assert pays(_geometry((128, c, size, size), (c, c, 3, 3)), np.float32) == cblas
    assert pays(_geometry((64, 16, 14, 14), (32, 16, 3, 3)), np.float32) == cblas
    for c, size in ((16, 13), (16, 9), (32, 6), (64, 6)):
        assert not pays(_geometry((128, c, size, size), (c, c, 3, 3)), np.float32), (c, size)
    assert not pays(_geometry((128, 8, 28, 28), (8, 8, 3, 3)), np.float32)
    assert not pays(_geometry((64, 128, 14, 14), (128, 128, 3, 3)), np.float32)
    assert not pays(_geometry((128, 32, 6, 6), (32, 32, 3, 3), padding=0), np.float32)
    assert not pays(_geometry((2, 32, 9, 9), (32, 32, 3, 3), stride=2), np.float32)
    assert not pays(_geometry((2, 32, 9, 9), (32, 32, 5, 5)), np.float32)


def test_auto_rule():
    """F(2x2, 3x3)'s own rule, asked when F(4x4, 3x3)'s does not take a layer: the seeds' conv2 (32 -> 64
    channels, 3x3, stride 1) and the 64-channel ResNet layer qualify, not the first layer (3 channels),
    16-channel layers, nor strided, dilated, grouped or 5x5 convolutions."""
    pays = fastcnn.winograd.pays
    cblas = fastcnn._blas.CBLAS
    assert pays(_geometry((128, 32, 26, 26), (64, 32, 3, 3), padding=0), np.float32) == cblas
    assert pays(_geometry((16, 64, 56, 56), (64, 64, 3, 3)), np.float32) == cblas
    assert not pays(_geometry((128, 3, 32, 32), (32, 3, 3, 3)), np.float32)
    assert not pays(_geometry((128, 16, 32, 32), (16, 16, 3, 3)), np.float32)  # below MIN_CHANNELS
    assert not pays(_geometry((2, 32, 9, 9), (32, 32, 3, 3), stride=2), np.float32)
    assert not pays(_geometry((2, 32, 9, 9), (32, 32, 3, 3), dilation=2), np.float32)
    assert not pays(_geometry((2, 32, 9, 9), (32, 16, 3, 3), groups=2), np.float32)
    assert not pays(_geometry((2, 32, 9, 9), (32, 32, 5, 5)), np.float32)


BAD = [  # (algorithm, hyperparameters, what the message must say)
    ("nonsense", dict(), "one of 'auto', 'direct', 'winograd', 'winograd4'"),
    (None, dict(), "one of 'auto', 'direct', 'winograd', 'winograd4'"),
    ("winograd", dict(stride=2), "stride (2, 2)"),
    ("winograd4", dict(stride=2), "'winograd4' computes 2-D, groups=1, 3x3 kernels"),
    ("winograd", dict(dilation=2), "dilation (2, 2)"),
    ("winograd", dict(groups=2), "groups=2"),
]


@pytest.mark.parametrize("engine", [refcnn, fastcnn], ids=["refcnn", "fastcnn"])
@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward"])
@pytest.mark.parametrize("algorithm,kw,reason", BAD)
def test_algorithm_errors(engine, op, algorithm, kw, reason):
    x, w = np.ones((1, 4, 6, 6)), np.ones((4, 4 // kw.get("groups", 1), 3, 3))
    args = (x, w) if op == "conv2d" else (np.ones((1, 4, 6, 6)), x, w)
    kw = dict(padding=kw.get("dilation", 1), **kw)
    if kw.get("stride") == 2:
        args = (x, w) if op == "conv2d" else (np.ones((1, 4, 3, 3)), x, w)
    with pytest.raises(ValueError) as err:
        getattr(engine, op)(*args, algorithm=algorithm, **kw)
    msg = str(err.value)
    assert msg.startswith(f"{op}: invalid value for argument `algorithm`"), msg
    assert reason in msg, msg


@pytest.mark.parametrize("engine", [refcnn, fastcnn], ids=["refcnn", "fastcnn"])
def test_algorithm_errors_on_geometry_ops(engine):
    """conv_forward and conv_backward check it too: 'winograd' on a 1-D or 5x5 geometry is refused."""
    from cnnbase.conv import conv_geometry
    g1 = conv_geometry("conv1d", (1, 2, 8), (2, 2, 3), None, 1, 1, 1, 1, "zeros", 1)
    with pytest.raises(ValueError, match=r"conv_forward: invalid value for argument `algorithm`.*1-D"):
        engine.conv_forward(g1, np.ones((1, 2, 8)), np.ones((2, 2, 3)), algorithm="winograd")
    g5 = _geometry((1, 2, 8, 8), (2, 2, 5, 5))
    with pytest.raises(ValueError, match=r"conv_backward: invalid value for argument `algorithm`.*kernel"):
        engine.conv_backward(g5, np.ones((1, 2, 6, 6)), np.ones((1, 2, 8, 8)), np.ones((2, 2, 5, 5)),
                             algorithm="winograd")


def test_every_algorithm_agrees_on_a_real_layer():
    """The seeds' conv2 shape, scaled down in batch: every algorithm within float32 rounding of 'direct'
    (F(4x4, 3x3) within its larger bound), and 'auto' is F(4x4, 3x3) bit for bit."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 32, 26, 26)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(np.float32)
    g = rng.standard_normal((4, 64, 24, 24)).astype(np.float32)
    results = {a: (fastcnn.conv2d(x, w, algorithm=a), *fastcnn.conv2d_backward(g, x, w, algorithm=a)[:2])
               for a in ("auto", "direct", "winograd", "winograd4")}
    for a, limit in (("winograd", 1e-5), ("winograd4", 1e-4)):
        for got, want in zip(results[a], results["direct"]):
            assert np.abs(got - want).max() <= limit * np.abs(want).max(), a
    if fastcnn._blas.CBLAS:
        for got, want in zip(results["auto"], results["winograd4"]):
            assert np.array_equal(got, want)
