"""fastcnn._prefetch (issue 16): software prefetches are hints, so what can be checked is that they compile for
every row a kernel may hand them, change nothing, and that the batch norms that issue them (fastcnn.norm) still
agree with refcnn on batches long enough for rows to be asked for ahead (``rows_ahead`` rows past the current
one: the other tests' batches are shorter than that)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastcnn
import refcnn
from fastcnn._prefetch import AHEAD_BYTES, prefetch_row, prefetch_row_for_write, rows_ahead


@numba.njit
def _ask_for_every_row(a2, write):
    for i in range(a2.shape[0]):
        if write:
            prefetch_row_for_write(a2[i])
        else:
            prefetch_row(a2[i])
    return rows_ahead(a2.shape[1], a2.itemsize)


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_prefetches_compile_for_any_row_and_change_nothing(dtype, write):
    """C-contiguous rows, strided rows (prefetched as nothing), empty rows: the values stay as they were."""
    a = (np.arange(7 * 50) % 97).astype(dtype).reshape(7, 50)
    before = a.copy()
    for rows in (a, a[:, ::3], a[:, :0], a[::2]):
        _ask_for_every_row(rows, write)
    np.testing.assert_array_equal(a, before)


def test_rows_ahead():
    assert rows_ahead(28 * 28, 4) == 2  # a row of 3 KB: at least two rows ahead
    assert rows_ahead(7 * 7, 4) == AHEAD_BYTES // 196
    assert rows_ahead(0, 4) == AHEAD_BYTES  # empty rows: never past the batch's end, see fastcnn.norm._ahead
    assert _ask_for_every_row(np.zeros((2, 64)), False) == AHEAD_BYTES // 512


def _stats(C, dtype, rng):
    return dict(running_mean=rng.standard_normal(C).astype(dtype), running_var=rng.random(C).astype(dtype) + 0.5,
                weight=rng.standard_normal(C).astype(dtype), bias=rng.standard_normal(C).astype(dtype))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(24, 3, 8, 10), (40, 2, 7, 7), (12, 2, 96)])
def test_batch_norms_that_prefetch_agree_with_refcnn(shape, dtype, training):
    """Rows of 80, 49 and 96 cells, batches past rows_ahead: the forward with its ReLU and with a residual, and
    the backward through the ReLU's mask, against refcnn's plain ops (float64, the bound of the other batch-norm
    tests: float64 rounding, and one float32 rounding of the stored results)."""
    rng = np.random.default_rng(sum(shape))
    assert shape[0] > rows_ahead(int(np.prod(shape[2:])), np.dtype(dtype).itemsize)
    x = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    residual = rng.standard_normal(shape).astype(dtype)
    s = _stats(shape[1], dtype, rng)
    as64 = {k: v.astype(np.float64) for k, v in s.items()}
    tol = 1e-12 if dtype == np.float64 else 2e-6

    def close(got, want):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))

    ref_pre = refcnn.batch_norm(x.astype(np.float64), **{k: v.copy() for k, v in as64.items()}, training=training)
    ref_y = refcnn.relu(ref_pre)
    close(fastcnn.batch_norm_relu(x, **{k: v.copy() for k, v in s.items()}, training=training), ref_y)
    close(fastcnn.batch_norm_add_relu(x, residual, **{k: v.copy() for k, v in s.items()}, training=training),
          refcnn.relu(ref_pre + residual.astype(np.float64)))
    y = fastcnn.batch_norm_relu(x, **{k: v.copy() for k, v in s.items()}, training=training)
    got = fastcnn.batch_norm_relu_backward(g, x, y, **{k: v.copy() for k, v in s.items()}, training=training)
    masked = refcnn.relu_backward(g.astype(np.float64), ref_pre)
    want = refcnn.batch_norm_backward(masked, x.astype(np.float64), **{k: v.copy() for k, v in as64.items()},
                                      training=training)
    for got_one, want_one in zip(got, want):
        close(got_one, want_one)
