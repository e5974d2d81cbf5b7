"""fastcnn._vector_tiles: F(4x4, 3x3)'s tile transforms with a whole tile in vector registers.

Each of winograd4_tiles' four row transforms has two bodies: loops over channels in Numba, and a tile at a time
in vector registers, traced from the same scalar functions, for channel counts of whole vectors. The claim is
that they give the same bits, so each pair is run on the same arrays (random values, with infinities, NaN and
signed zeros among them) and the results are compared bit for bit, for both float dtypes and several vectors of
channels; the cells a row must not touch are filled with a marker and checked to be untouched. The transforms
themselves are checked against refcnn through the convolutions (tests/test_winograd.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastcnn import _microkernel as mk
from fastcnn import _vector_tiles, winograd4_pooled as pooled, winograd4_tiles as tiles

DTYPES = [np.float32, np.float64]


def _lanes(dtype) -> int:
    return mk.lanes(np.dtype(dtype).itemsize)


def _values(rng, shape, dtype):
    """Normal values with a few specials sprinkled in: the transforms must carry them as the loops do."""
    a = rng.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    picks = rng.choice(flat.size, size=max(1, flat.size // 50), replace=False)
    flat[picks] = rng.choice(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], dtype=dtype), size=picks.size)
    return a


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def _both(run, *arrays):
    """(loops' result, vectors' result): ``run(path, *copies)`` for each path on fresh copies of ``arrays``."""
    out = []
    for path in ("loops", "vectors"):
        copies = [a.copy() for a in arrays]
        run(path, *copies)
        out.append(copies)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 4])
def test_input_row(dtype, vectors):
    C, tw, r, t0 = vectors * _lanes(dtype), 3, 2, 1
    rng = np.random.default_rng(vectors)
    xt = _values(rng, (r + 7, 4 * tw + 3, C), dtype)
    V = np.full((36, (t0 + tw + 1) * C + 5), 7.0, dtype)  # marker: past the row's tiles stays 7
    h = np.empty(36 * C, dtype)

    def run(path, xt, V):
        if path == "loops":
            tiles._input_row_loops(xt, r, tw, V, t0, h)
        else:
            tiles._input_row_vectors(xt, r, tw, V, t0)

    (x0, loops), (x1, vectors_) = _both(run, xt, V)
    _same_bits(loops, vectors_)
    _same_bits(x0, xt)  # the input is only read
    assert (vectors_[:, :t0 * C] == 7).all() and (vectors_[:, (t0 + tw) * C:] == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 4])
def test_output_row(dtype, vectors):
    K, tw, t0 = vectors * _lanes(dtype), 3, 2
    rng = np.random.default_rng(10 + vectors)
    M = _values(rng, (36, (t0 + tw) * K + 3), dtype)
    yt = np.full((4, 4 * tw + 4, K), 7.0, dtype)
    h = np.empty(36 * K, dtype)

    def run(path, M, yt):
        if path == "loops":
            tiles._output_row_loops(M, t0, tw, yt, h)
        else:
            tiles._output_row_vectors(M, t0, tw, yt)

    (_, loops), (_, vectors_) = _both(run, M, yt)
    _same_bits(loops, vectors_)
    assert (vectors_[:, 4 * tw:] == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 4])
def test_grad_out_row(dtype, vectors):
    K, tw, t0 = vectors * _lanes(dtype), 3, 1
    rng = np.random.default_rng(20 + vectors)
    gt = _values(rng, (4, 4 * tw, K), dtype)
    dM = np.full((36, (t0 + tw + 1) * K), 7.0, dtype)
    h = np.empty(36 * K, dtype)

    def run(path, gt, dM):
        if path == "loops":
            tiles._grad_out_row_loops(gt, tw, dM, t0, h)
        else:
            tiles._grad_out_row_vectors(gt, tw, dM, t0)

    (_, loops), (_, vectors_) = _both(run, gt, dM)
    _same_bits(loops, vectors_)
    assert (vectors_[:, :t0 * K] == 7).all() and (vectors_[:, (t0 + tw) * K:] == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 4])
def test_input_adjoint_row_adds_tiles_in_order(dtype, vectors):
    """The 6x6 windows of neighbouring tiles share a column: each is added onto the plane's old values, tile
    after tile, as the loops add them."""
    C, tw, t0, r = vectors * _lanes(dtype), 4, 1, 3
    rng = np.random.default_rng(30 + vectors)
    dV = _values(rng, (36, (t0 + tw) * C), dtype)
    plane = _values(rng, (r + 8, 4 * tw + 4, C), dtype)
    h = np.empty(36 * C, dtype)

    def run(path, dV, plane):
        if path == "loops":
            tiles._input_adjoint_row_loops(dV, t0, tw, r, plane, h)
        else:
            tiles._input_adjoint_row_vectors(dV, t0, tw, r, plane)

    before = plane.copy()
    (_, loops), (_, vectors_) = _both(run, dV, plane)
    _same_bits(loops, vectors_)
    _same_bits(vectors_[:r], before[:r])  # rows outside the windows untouched
    _same_bits(vectors_[r + 6:], before[r + 6:])



@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("codes", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_pooled_output_row(dtype, codes, with_bias):
    """The output tile in registers, then max_pool(relu(y + bias)) and the winners' codes from it: the loops'
    values and codes, bit for bit (ties and NaN included: the specials are among the inputs)."""
    K, tw, t0, row = 2 * _lanes(dtype), 3, 1, 2
    rng = np.random.default_rng(40 + 2 * codes + with_bias)
    M = _values(rng, (36, (t0 + tw) * K), dtype)
    M[:, :K] = 0.0  # a tile of zeros: ties everywhere
    bias = _values(rng, (K,), dtype) if with_bias else np.zeros(1, dtype)
    pt = np.full((row + 3, 2 * tw + 1, K), 7.0, dtype)
    wt = np.full(pt.shape, 9, np.int8)
    h = np.empty(36 * K, dtype)

    def run(path, pt, wt):
        fn = pooled._pooled_output_row_loops if path == "loops" else pooled._pooled_output_row_vectors
        fn(M, t0 - 1, tw, bias, with_bias, row, pt, wt, h, codes)

    (p0, w0), (p1, w1) = _both(run, pt, wt)
    _same_bits(p0, p1)
    np.testing.assert_array_equal(w0, w1)
    assert (p1[:row] == 7).all() and (p1[row + 2:] == 7).all() and (p1[:, 2 * tw:] == 7).all()

def test_which_channel_counts_fit():
    for dtype in DTYPES:
        lanes, itemsize = _lanes(dtype), np.dtype(dtype).itemsize
        assert _vector_tiles.fits(lanes, itemsize) and _vector_tiles.fits(3 * lanes, itemsize)
        assert not _vector_tiles.fits(0, itemsize) and not _vector_tiles.fits(lanes + 1, itemsize)
        assert not _vector_tiles.fits(lanes // 2, itemsize)


def test_a_branch_cannot_be_traced():
    """Only +, -, * and negation become vector instructions; a comparison on a traced value is refused."""
    def relu(v):
        return (v if v > 0 else 0 * v,)

    def nonzero(v):
        return (v if v else -v,)

    with pytest.raises(TypeError):
        _vector_tiles._trace(relu, 1)
    with pytest.raises(TypeError, match="branch"):
        _vector_tiles._trace(nonzero, 1)


def test_the_tile_rows_refuse_arrays_too_small():
    """The vector transforms check their bounds once per row before the intrinsic runs (it checks none)."""
    lanes = _lanes(np.float32)
    xt = np.zeros((6, 10, lanes), np.float32)
    V = np.zeros((36, 2 * lanes), np.float32)  # room for two tiles, three asked for
    with pytest.raises(IndexError, match="input_row"):
        tiles._input_row_vectors(xt, 0, 3, V, 0)
    with pytest.raises(IndexError, match="output_row"):
        tiles._output_row_vectors(np.zeros((36, lanes), np.float32), 0, 2, np.zeros((4, 8, lanes), np.float32))


# The channel-last copies: square blocks transposed in registers, a vector's lanes on a side, or half or a
# quarter of them for runs shorter than a vector, where the channels are whole blocks; cell by cell elsewhere.
# Copies are exact, so each is checked bit for bit against NumPy's gather, on runs shorter than, equal to and
# longer than each block (the last block then overlaps its neighbour), and on channel counts that do and do not
# fit.

def _shapes(dtype):
    lanes = _lanes(dtype)
    half, quarter = lanes // 2, lanes // 4
    runs = (quarter - 1, quarter, half - 1, half, lanes - 1, lanes, lanes + 5, 2 * lanes + 3)
    return [(C, W) for C in (lanes, 2 * lanes, half, quarter, 3) for W in runs if W > 1]  # reflection needs 2


def _maps(H, W, kind):
    """Padded index maps: one zero cell each side and two past the end (F(4x4)'s tile maps), or a reflection."""
    if kind == "zeros":
        return (np.array([-1, *range(H), -1, -1], np.int64), np.array([-1, *range(W), -1, -1], np.int64))
    return (np.array([1, *range(H), H - 2], np.int64), np.array([1, *range(W), W - 2, -1], np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["zeros", "reflect"])
def test_channels_last_copies_exactly(dtype, kind):
    for C, W in _shapes(dtype):
        H = 5
        xn = _values(np.random.default_rng(C * W), (C, H, W), dtype)
        src_h, src_w = _maps(H, W, kind)
        r0, r1 = 1, src_h.size
        xt = np.full((r1 - r0, src_w.size, C), 7.0, dtype)
        tiles.channels_last(xn, src_h, src_w, r0, r1, xt)
        want = np.zeros_like(xt)
        for r in range(r0, r1):
            for w in range(src_w.size):
                if src_h[r] >= 0 and src_w[w] >= 0:
                    want[r - r0, w] = xn[:, src_h[r], src_w[w]]
        _same_bits(xt, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_store_rows_copies_and_adds_exactly(dtype, with_bias):
    """Without a bias each value gets + 0, which turns -0.0 into 0.0 (refcnn's sums start from a zero bias)."""
    for K, W in _shapes(dtype):
        H, oh = 6, 4  # the last tile row: two rows inside
        rng = np.random.default_rng(K + W)
        yt = _values(rng, (4, W + 3, K), dtype)
        yt[0, 0, 0] = -0.0
        bias = _values(rng, (K,), dtype) if with_bias else np.zeros(1, dtype)
        yn = np.full((K, H, W), 7.0, dtype)
        tiles.store_rows(yt, bias, with_bias, oh, H, W, yn)
        want = np.full_like(yn, 7.0)
        added = bias if with_bias else dtype(0)
        with np.errstate(invalid="ignore"):  # inf + -inf
            want[:, oh:] = (yt[:H - oh, :W] + added).transpose(2, 0, 1)
        _same_bits(yn, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_load_grad_rows_copies_exactly(dtype):
    for K, W in _shapes(dtype):
        H = 6
        gon = _values(np.random.default_rng(K * W), (K, H, W), dtype)
        for oh in (0, 4):
            gt = np.full((4, W + 3, K), 7.0, dtype)
            tiles.load_grad_rows(gon, oh, H, W, gt)
            want = np.zeros_like(gt)
            rows = min(4, H - oh)
            want[:rows, :W] = gon[:, oh:oh + rows].transpose(1, 2, 0)
            _same_bits(gt, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fold_channels_last_writes_each_cell_once(dtype):
    for C, W in _shapes(dtype):
        H = 5
        src_h, src_w = _maps(H, W, "zeros")
        plane = _values(np.random.default_rng(C + W), (src_h.size, src_w.size, C), dtype)
        gxn = np.full((C, H, W), 7.0, dtype)
        tiles.fold_channels_last(plane, src_h, src_w, True, gxn)
        _same_bits(gxn, np.ascontiguousarray(plane[1:H + 1, 1:W + 1].transpose(2, 0, 1)))
