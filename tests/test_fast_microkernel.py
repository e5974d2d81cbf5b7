"""fastcnn._microkernel: the register-blocked ``x @ w.T`` behind the dense layer's forward (fastcnn.dense).

Checked exactly where exact answers exist: the transposed panels move values only, and a product of small
integers is exact in float32 and float64, so any misplaced row, column, block or term shows as a wrong number.
Each element is one chain of fused multiply-adds in order of the depth, continued from the value already
there: so a row does not depend on the block of rows it was computed in, and a depth range done in two calls
gives the bits of one call. On real numbers the product is held to the reduction's tolerance against float64
(tests/fastcheck.py), by itself and through ``fastcnn.linear``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcheck import assert_agrees, assert_bit_identical, results_per_thread_count
from fastcnn import _microkernel as mk
from fastcnn import dense

DTYPES = [np.float32, np.float64]


def _lanes(dtype) -> int:
    return mk.lanes(np.dtype(dtype).itemsize)


def _integers(rng, shape, dtype):
    return rng.integers(-4, 5, size=shape).astype(dtype)


def _product(x, w, k0, k1, out=None):
    out = np.zeros((x.shape[0], w.shape[0]), x.dtype) if out is None else out
    panel = mk.aligned_empty((mk.DEPTH_PANEL, w.shape[0]), x.dtype)
    mk.product_nt(x, w, out, k0, k1, panel)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("depth", [0, 1, 15, 16, 17, 40])
def test_panels_hold_w_transposed_exactly(dtype, depth):
    """Whole square blocks in registers, then the last depth % lanes terms one by one, from any first term."""
    lanes = _lanes(dtype)
    w = np.random.default_rng(depth).standard_normal((3 * lanes, 64)).astype(dtype)
    panel = np.full((mk.DEPTH_PANEL, w.shape[0]), np.nan, dtype)
    mk._pack_transposed(w, 7, depth, panel)
    np.testing.assert_array_equal(panel[:depth], w[:, 7:7 + depth].T)
    assert np.isnan(panel[depth:]).all()  # nothing written past the depth


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 5, 6, 7, 13])
def test_integer_products_are_exact(dtype, rows):
    """Every row block size (1..MR), one to NV+1 vectors of columns, a depth over two panels with a tail, and
    the sums continued from what ``out`` held."""
    lanes = _lanes(dtype)
    rng = np.random.default_rng(rows)
    columns = (mk.NV + 1) * lanes
    depth = 2 * mk.DEPTH_PANEL + 21
    x, w = _integers(rng, (rows, depth + 9), dtype), _integers(rng, (columns, depth + 9), dtype)
    start = _integers(rng, (rows, columns), dtype)
    got = _product(x, w, 4, 4 + depth, start.copy())
    expected = start.astype(np.int64) + x[:, 4:4 + depth].astype(np.int64) @ w[:, 4:4 + depth].astype(np.int64).T
    np.testing.assert_array_equal(got, expected.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_element_is_one_chain_in_order_of_depth(dtype):
    lanes = _lanes(dtype)
    rng = np.random.default_rng(3)
    depth = mk.DEPTH_PANEL + 100
    x = rng.standard_normal((11, depth)).astype(dtype)
    w = rng.standard_normal((2 * lanes, depth)).astype(dtype)
    whole = _product(x, w, 0, depth)
    for row in (0, 5, 6, 10):  # in a full block, at its end, alone in the next one, in a short last block
        np.testing.assert_array_equal(_product(x[row:row + 1], w, 0, depth)[0], whole[row])
    for split in (1, 37, mk.DEPTH_PANEL, mk.DEPTH_PANEL + 3):  # continued from the first call's sums
        np.testing.assert_array_equal(_product(x, w, split, depth, _product(x, w, 0, split)), whole)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert_agrees(whole, x64 @ w64.T, dtype=dtype, reduction=depth)


def test_refuses_arrays_that_do_not_fit():
    lanes = _lanes(np.float32)
    x, w = np.ones((2, 8), np.float32), np.ones((lanes + 1, 8), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        _product(x, w, 0, 8)  # columns not a whole number of vectors
    with pytest.raises(ValueError, match="do not fit"):
        _product(x, np.ones((lanes, 8), np.float32), 0, 9)  # past the depth


def _long_forward(dtype):
    """x (20, 4200), w (32, 4200): 32 outputs (whole vectors for float32 and float64 on AVX2 and AVX-512), a
    depth cut into PRODUCT_DEPTH_BLOCK parts with a short last one, 4200 % lanes terms packed one by one."""
    rng = np.random.default_rng(23)
    return [rng.standard_normal(shape).astype(dtype) for shape in ((20, 4200), (32, 4200), (32,))]


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_takes_the_panels_for_a_long_forward(monkeypatch, dtype):
    """Where the product pays (AVX-512); forced on here where it does not, so both kinds of CPU run it. These
    products are small enough for one GEMM otherwise (dense.ONE_GEMM_BELOW)."""
    monkeypatch.setattr(mk, "PAYS", True)
    monkeypatch.setattr(dense, "ONE_GEMM_BELOW", 0)
    x, w, b = _long_forward(dtype)
    taken = []
    kernel = dense._depth_panels
    monkeypatch.setattr(dense, "_depth_panels", lambda *args: (taken.append(1), kernel(*args))[1])
    y = fastcnn.linear(x, w, b)
    assert taken == [1] and y.dtype == dtype
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    assert_agrees(y, x64 @ w64.T + b64, dtype=dtype, reduction=x.shape[1])
    taken.clear()
    fastcnn.linear(x, w[:31], b[:31])  # 31 outputs: not whole vectors, BLAS blocks
    assert taken == []


def test_long_forward_bit_identical_with_one_and_two_threads(monkeypatch):
    monkeypatch.setattr(mk, "PAYS", True)
    monkeypatch.setattr(dense, "ONE_GEMM_BELOW", 0)
    x, w, b = _long_forward(np.float32)
    assert_bit_identical(results_per_thread_count(lambda: fastcnn.linear(x, w, b)))
