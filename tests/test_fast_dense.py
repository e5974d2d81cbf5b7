"""fastcnn.dense agrees with refcnn.dense (the oracle), with PyTorch, and raises refcnn's errors.

Tolerances. flatten moves values only: exact. linear, float64: max abs error <= 1e-12 * max(1, scale),
scale = max |refcnn result|; float32 (inputs rounded to float32, refcnn run on those values, summing in
float32): max abs error <= 2e-5 * max(1, scale) * sqrt(K), K the length of the sum (in_features for y,
out_features for grad_x, the number of samples for grad_weight and grad_bias). The rule and the shared
helpers live in tests/fastcheck.py; the spec's conformance cases run in tests/test_fast_conformance.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import fastcnn
from cnnconform import strategies
from fastcheck import assert_agrees, assert_bit_identical, assert_same_api, outcome, results_per_thread_count
from fastcnn import dense as fast
from refcnn import dense as ref

FLOATS = st.floats(-10, 10, allow_nan=False, width=32)


def test_same_names_and_signatures_as_refcnn():
    assert_same_api(fast, ref)


def linear_setups():
    """``(x, weight, bias, grad_out)`` of a valid linear_backward call (cnnconform.strategies): none to two
    batch axes of 0 to 3, 0 to 5 features in and 1 to 5 out."""
    batch_shapes = array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
    calls = strategies.calls("linear_backward", batch_shapes=batch_shapes, in_features=st.integers(0, 5),
                             out_features=st.integers(1, 5), elements=FLOATS)
    return calls.map(lambda call: (call.args[1], call.args[2], call.kwargs["bias"], call.args[0]))


@settings(max_examples=30)
@given(setup=linear_setups(), dtype=st.sampled_from([np.float64, np.float32]))
def test_linear_forward_and_backward_agree(setup, dtype):
    x, w, b, g = (None if a is None else a.astype(dtype) for a in setup)
    samples = int(np.prod(x.shape[:-1]))
    y = fast.linear(x, w, b)
    assert y.dtype == dtype
    assert_agrees(y, ref.linear(x, w, b), dtype=dtype, reduction=w.shape[1], what="y")
    got = fast.linear_backward(g, x, w, b)
    expected = ref.linear_backward(g, x, w, b)
    for what, a, e, k in zip(("grad_x", "grad_weight", "grad_bias"), got, expected, (w.shape[0], samples, samples)):
        if e is None:
            assert a is None
            continue
        assert a.dtype == dtype, what
        assert_agrees(a, e, dtype=dtype, reduction=k, what=what)


@settings(max_examples=30)
@given(call=strategies.calls("flatten", shapes=array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
                             elements=FLOATS))
def test_flatten_and_backward_agree_exactly(call):
    (x,), start, end = call.args, call.kwargs["start_dim"], call.kwargs["end_dim"]
    y = fast.flatten(x, start, end)
    np.testing.assert_array_equal(y, ref.flatten(x, start, end))
    assert y.dtype == x.dtype and not np.shares_memory(y, x)
    g = np.arange(y.size, dtype=np.float32).reshape(y.shape)
    np.testing.assert_array_equal(fast.flatten_backward(g, x, start, end), ref.flatten_backward(g, x, start, end))


@st.composite
def invalid_calls(draw):  # local: one bad argument each, where the shared strategies draw valid calls only
    name = draw(st.sampled_from(["flatten", "flatten_backward", "linear", "linear_backward"]))
    x = np.ones((2, 3))
    if name.startswith("flatten"):
        bad = draw(st.sampled_from(["x", "dims", "grad_out"]))
        x = draw(st.sampled_from([x.astype(np.int64), x.tolist()])) if bad == "x" else x
        start, end = draw(st.sampled_from([(2, -1), (1, 0), (1.0, -1), (0, 5)])) if bad == "dims" else (0, -1)
        args = (x, start, end)
        if name == "flatten_backward":
            args = (np.ones(7) if bad == "grad_out" else np.ones(6),) + args
        return name, args
    w, b = np.ones((4, 3)), np.ones(4)
    bad = draw(st.sampled_from(["x", "weight", "bias", "grad_out", "dtype"]))
    if bad == "x":
        x = draw(st.sampled_from([np.ones((2, 4)), np.ones(()), [1.0, 2.0, 3.0]]))
    elif bad == "weight":
        w = draw(st.sampled_from([np.ones(3), np.ones((3, 4)), np.ones((4, 3, 1))]))
    elif bad == "bias":
        b = draw(st.sampled_from([np.ones(3), np.ones((4, 1)), np.ones(4, dtype=np.int32)]))
    elif bad == "dtype":
        w = w.astype(np.int64)
    args = (x, w, b)
    if name == "linear_backward":
        args = (np.ones((2, 5)) if bad == "grad_out" else np.ones((2, 4)),) + args
    return name, args


@settings(max_examples=40)
@given(call=invalid_calls())
def test_invalid_arguments_raise_refcnn_errors(call):
    name, args = call
    r_kind, r_exc = outcome(getattr(ref, name), *args)
    f_kind, f_exc = outcome(getattr(fast, name), *args)
    assert r_kind == "error" or f_kind == "ok"  # a draw that happens to be valid must be valid in both
    assert r_kind == f_kind, (name, r_exc, f_exc)
    if r_kind == "error":
        assert type(f_exc) is type(r_exc) and str(f_exc) == str(r_exc)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_returns_the_input_dtype(dtype):
    x, w, b = np.ones((2, 3, 4), dtype), np.ones((5, 4), dtype), np.ones(5, dtype)
    assert fast.flatten(x).dtype == dtype
    assert fast.flatten_backward(np.ones((2, 12), dtype), x).dtype == dtype
    assert fast.linear(x, w, b).dtype == dtype
    assert all(a.dtype == dtype for a in fast.linear_backward(np.ones((2, 3, 5), dtype), x, w, b))


def test_bit_identical_with_one_and_two_threads():
    """Numba threads (fastcnn.set_num_threads) and BLAS threads both: OpenBLAS's own products differ in their
    last bits between 1 and 2 threads for these shapes, so this also shows that linear does not use them."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2048, 96)).astype(np.float32)
    w = rng.standard_normal((40, 96)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    g = rng.standard_normal((2048, 40)).astype(np.float32)

    def run():
        # as many BLAS threads as fastcnn threads, whatever results_per_thread_count just set
        with threadpoolctl.threadpool_limits(limits=fastcnn.get_num_threads(), user_api="blas"):
            return [fast.linear(x, w, b), *fast.linear_backward(g, x, w, b)]

    assert_bit_identical(results_per_thread_count(run))


def test_one_row_or_column_with_any_stride():
    """NumPy counts a (2, 1) array with strides (8, 0) as C-contiguous, so its transpose, one row, reaches
    BLAS with a row stride of 0; CBLAS rejects that as a leading dimension (found by Hypothesis under
    NUMBA_BOUNDSCHECK: the product was never written). Every such view gives refcnn's numbers."""
    w = np.lib.stride_tricks.as_strided(np.array([3.0, -2.0]), shape=(2, 1), strides=(8, 0))
    x = np.lib.stride_tricks.as_strided(np.array([5.0]), shape=(4, 1), strides=(0, 0))
    g = np.arange(8.0).reshape(4, 2)
    assert w.flags.c_contiguous and w.T.flags.c_contiguous
    expected = [ref.linear(x, w), *ref.linear_backward(g, x, w)[:2]]
    for got, want in zip([fast.linear(x, w), *fast.linear_backward(g, x, w)[:2]], expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_np_dot_fallback_agrees_with_cblas(monkeypatch, dtype):
    """Without NumPy's OpenBLAS the blocks take np.dot (SciPy's BLAS); both paths give refcnn's numbers. The
    (5, 7) weight is used as given and transposed (F-contiguous), as the backward does."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((70, 7)).astype(dtype)
    w = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    g = rng.standard_normal((70, 5)).astype(dtype)
    expected = [ref.linear(x, w, b), *ref.linear_backward(g, x, w, b)]
    tolerance = 1e-12 if dtype == np.float64 else 1e-4
    for cblas in sorted({fastcnn._blas.CBLAS, False}):
        monkeypatch.setattr(fastcnn._blas, "CBLAS", cblas)
        got = [fast.linear(x, w, b), *fast.linear_backward(g, x, w, b)]
        for a, e in zip(got, expected):
            assert np.abs(a - e).max() <= tolerance * max(1.0, float(np.abs(e).max()))


def _long_products(dtype):
    """x (20, 4200), w (9, 4200), b, g (20, 9): the forward sums over 4,200 features into a 20 x 9 result (cut
    along the depth, DEPTH_BLOCK terms a part, a short last part), the backward's products have a right factor
    of 4,200 columns (cut into COLUMN_BLOCK columns, a short last block)."""
    rng = np.random.default_rng(17)
    return [rng.standard_normal(shape).astype(dtype) for shape in ((20, 4200), (9, 4200), (9,), (20, 9))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_products_are_cut_along_depth_and_columns(monkeypatch, dtype):
    """The blocks other than rows: each taken (counted through the module's names), each element within the
    reduction's tolerance of float64 NumPy on the same values, and the np.dot fallback (row blocks only)
    giving the same within it."""
    if not fastcnn._blas.CBLAS:
        pytest.skip("the depth and column blocks need CBLAS")
    monkeypatch.setattr(fast, "ONE_GEMM_BELOW", 0)  # these products are small enough for one GEMM otherwise
    x, w, b, g = _long_products(dtype)
    taken = []
    for name in ("_depth_blocks", "_column_blocks", "_row_blocks"):
        kernel = getattr(fast, name)
        monkeypatch.setattr(fast, name, lambda *args, _k=kernel, _n=name: (taken.append(_n), _k(*args))[1])
    y = fast.linear(x, w, b)
    grads = fast.linear_backward(g, x, w, b)
    assert taken == ["_depth_blocks", "_column_blocks", "_column_blocks"]
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
    expected = [x64 @ w64.T + b64, g64 @ w64, g64.T @ x64, g64.sum(axis=0)]
    reductions = [4200, 9, 20, 20]
    for what, got, e, k in zip(("y", "grad_x", "grad_weight", "grad_bias"), [y, *grads], expected, reductions):
        assert got.dtype == dtype
        assert_agrees(got, e, dtype=dtype, reduction=k, what=what)
    monkeypatch.setattr(fastcnn._blas, "CBLAS", False)
    taken.clear()
    fallback = [fast.linear(x, w, b), *fast.linear_backward(g, x, w, b)]
    assert taken == ["_row_blocks"] * 3
    for what, got, e, k in zip(("y", "grad_x", "grad_weight", "grad_bias"), fallback, expected, reductions):
        assert_agrees(got, e, dtype=dtype, reduction=k, what=f"np.dot {what}")


@pytest.mark.parametrize("one_gemm_below", [0, None], ids=["blocks", "one GEMM"])
def test_long_products_bit_identical_with_one_and_two_threads(monkeypatch, one_gemm_below):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if one_gemm_below is not None:
        monkeypatch.setattr(fast, "ONE_GEMM_BELOW", one_gemm_below)
    x, w, b, g = _long_products(np.float32)

    def run():
        with threadpoolctl.threadpool_limits(limits=fastcnn.get_num_threads(), user_api="blas"):
            return [fast.linear(x, w, b), *fast.linear_backward(g, x, w, b)]

    assert_bit_identical(results_per_thread_count(run))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_products_are_one_gemm_and_leave_blas_threads_as_they_were(monkeypatch, dtype):
    """ResNet-20's head (64 x 64 -> 10): each of the three products is one GEMM on the calling thread (no
    block kernel taken), within the reduction's tolerance of float64 NumPy, through CBLAS and through np.dot;
    OpenBLAS's thread count is the caller's again afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(23)
    x, w, b, g = (rng.standard_normal(shape).astype(dtype) for shape in ((64, 64), (10, 64), (10,), (64, 10)))
    taken = []
    for name in ("_depth_blocks", "_column_blocks", "_row_blocks", "_depth_panels", "_one_gemm_kernel"):
        kernel = getattr(fast, name)
        monkeypatch.setattr(fast, name, lambda *args, _k=kernel, _n=name: (taken.append(_n), _k(*args))[1])
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
    expected = [x64 @ w64.T + b64, g64 @ w64, g64.T @ x64, g64.sum(axis=0)]
    for cblas in sorted({fastcnn._blas.CBLAS, False}):
        monkeypatch.setattr(fastcnn._blas, "CBLAS", cblas)
        taken.clear()
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            got = [fast.linear(x, w, b), *fast.linear_backward(g, x, w, b)]
            after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert taken == ["_one_gemm_kernel"] * 3, cblas
        assert set(after) <= {2}, after
        for what, a, e, k in zip(("y", "grad_x", "grad_weight", "grad_bias"), got, expected, [64, 10, 64, 64]):
            assert a.dtype == dtype
            assert_agrees(a, e, dtype=dtype, reduction=k, what=f"{what}, cblas={cblas}")


@settings(max_examples=20)
@given(setup=linear_setups())
def test_agrees_with_torch(setup):
    torch = pytest.importorskip("torch")
    x, w, b, g = setup
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.linear(xt, wt, bt)
    assert_agrees(fast.linear(x, w, b), y.detach().numpy(), what="linear vs torch")
    y.backward(torch.tensor(g))
    got = fast.linear_backward(g, x, w, b)
    expected = [xt.grad, wt.grad, None if bt is None else bt.grad]
    for what, a, e in zip(("grad_x", "grad_weight", "grad_bias"), got, expected):
        if e is None:
            assert a is None
        else:
            assert_agrees(a, torch.zeros(a.shape, dtype=torch.float64) if e is None else e.numpy(), what=what)
