"""fastcnn.conv agrees with refcnn.conv (the oracle), with PyTorch, and raises refcnn's errors.

Tolerances, with ``scale = max(1, max |refcnn result|)`` per returned array:

* float64: max abs error <= 1e-12 * scale (the engines only sum in different orders);
* float32: max abs error <= 2e-5 * scale * sqrt(R), ``R`` the length of the longest reduction behind one
  value (C_in/G * KH * KW for the forward and input gradient, N * H_out * W_out for the weight and bias
  gradients): float32 rounding errors of a sum of R terms grow like sqrt(R) * 6e-8 * scale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastcnn
from cnnbase import conv as geometry
from cnnconform import strategies
from cnnconform.cases import compare, decode_expected, load_cases, run_case
from fastcnn import conv as fc
from refcnn import conv as rc


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_agree(got, expected, *, dtype, reductions, what):
    """Each returned array within the module's tolerance of refcnn's; None where refcnn gives None."""
    for i, (g, e) in enumerate(zip(_as_tuple(got), _as_tuple(expected))):
        if e is None:
            assert g is None, f"{what}: output {i} should be None"
            continue
        assert g.shape == e.shape, f"{what}: output {i} shape {g.shape} != {e.shape}"
        assert g.dtype == dtype, f"{what}: output {i} dtype {g.dtype} != {dtype}"
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        tol = 1e-12 * scale if dtype == np.float64 else 2e-5 * scale * math.sqrt(reductions[i])
        err = np.abs(g.astype(np.float64) - e)
        if err.size and err.max() > tol:
            k = np.unravel_index(int(np.argmax(err)), err.shape)
            raise AssertionError(f"{what}: output {i} max error {err.max():.3g} > {tol:.3g} at {k}: "
                                 f"got {g[k]!r}, expected {e[k]!r}")


# --- strategies (cnnconform.strategies: hyperparameters first, sizes valid by construction) -------------


def _problems(calls, rank):
    """(x, weight, bias, kwargs) of valid calls of rank ``rank`` (1 or 2 when None), every padding form (and
    fill); all elements of one call within +-1 or +-1e3."""
    ranks = st.sampled_from((1, 2)) if rank is None else st.just(rank)
    scales = st.sampled_from((1.0, 1e3))
    return st.tuples(ranks, scales).flatmap(
        lambda rs: calls(rs[0], elements=st.floats(-rs[1], rs[1], allow_nan=False, allow_infinity=False))
    ).map(_as_problem)


def _as_problem(call):
    kwargs = dict(call.kwargs)
    bias = kwargs.pop("bias")
    return call.args[0], call.args[1], bias, kwargs


def _with_empty_batches(problems):
    """Some problems with their batch emptied, ``x[:0]``: N = 0 must work in both engines, forward and
    backward (an empty output, a zero weight and bias gradient). The shared strategies draw N >= 1."""
    return st.tuples(problems, st.booleans()).map(
        lambda pe: ((pe[0][0][:0],) + tuple(pe[0][1:])) if pe[1] else pe[0])


def conv_problems(rank=None):
    return _with_empty_batches(_problems(strategies.conv_calls, rank))


def conv_transpose_problems(rank=None):
    return _with_empty_batches(_problems(strategies.conv_transpose_calls, rank))


def _names(transposed, rank):
    base = ("conv_transpose" if transposed else "conv") + f"{rank}d"
    return base, base + "_backward"


def _reductions(x, w, grad_out, transposed):
    """Longest sum behind one value of (y or grad_x, grad_w, grad_b)."""
    window = max(w.shape[0], w.shape[1]) * int(np.prod(w.shape[2:]))
    if transposed:
        return (window, window, x.shape[0] * int(np.prod(x.shape[2:])), grad_out[:1].size)
    gw = grad_out.shape[0] * int(np.prod(grad_out.shape[2:]))
    return (window, window, gw, gw)


def _check_against_refcnn(problem, transposed, dtype):
    x, w, b, kwargs = problem
    rank = x.ndim - 2
    fwd, bwd = _names(transposed, rank)
    y_ref = getattr(rc, fwd)(x, w, b, **kwargs)
    grad_out = np.random.default_rng(1).uniform(-1, 1, y_ref.shape)
    r = _reductions(x, w, grad_out, transposed)
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b, grad_out)]
    xs, ws, bs, gs = cast
    if dtype != np.float64:  # the oracle sees the same rounded inputs
        x, w, b, grad_out = [None if a is None else a.astype(np.float64) for a in cast]
        y_ref = getattr(rc, fwd)(x, w, b, **kwargs)
    what = f"{fwd} x{x.shape} w{w.shape} bias={b is not None} {kwargs} {np.dtype(dtype).name}"
    _assert_agree(getattr(fc, fwd)(xs, ws, bs, **kwargs), y_ref, dtype=dtype, reductions=r[:1], what=what)
    _assert_agree(getattr(fc, bwd)(gs, xs, ws, bs, **kwargs), getattr(rc, bwd)(grad_out, x, w, b, **kwargs),
                  dtype=dtype, reductions=r[1:], what=what + " backward")


# --- agreement with refcnn ----------------------------------------------------------------------------


@settings(max_examples=30)
@given(conv_problems(), st.sampled_from((np.float64, np.float32)))
def test_conv_matches_refcnn(problem, dtype):
    _check_against_refcnn(problem, transposed=False, dtype=dtype)


@settings(max_examples=30)
@given(conv_problems(), st.sampled_from((np.float64, np.float32)))
def test_shifted_gemm_matches_refcnn(problem, dtype):
    """The stride-1 forward and backward without im2col (one GEMM per tap on a wide output grid,
    fastcnn.conv._shifted_gemm and _shifted_gemm_backward) normally start at 64 channels per group; with the
    threshold at 1 every stride-1 draw takes them."""
    if not fastcnn._blas.CBLAS:
        pytest.skip("the shifted forward needs NumPy's CBLAS")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fc, "SHIFTED_MIN_CHANNELS", 1)
        patch.setattr(fastcnn.winograd, "MIN_CHANNELS", 2**62)  # 'auto' keeps 3x3 kernels on this path too
        _check_against_refcnn(problem, transposed=False, dtype=dtype)


def test_shifted_gemm_is_taken_from_64_channels_and_is_deterministic():
    """Real layers take the path test_shifted_gemm_matches_refcnn checks (stride 1 from 64 channels per
    group, not stride 2), and it gives the same bits on 1 and 2 threads, forward and backward."""
    from fastcheck import assert_bit_identical, results_per_thread_count

    def takes_shifted(stride):
        geom = geometry.conv_geometry("conv2d", (2, 64, 9, 8), (3, 64, 3, 3), None, stride, 1, 1, 1, "zeros", 2)
        return fc._shifted_pays(geom, geom.as_2d())

    assert takes_shifted(1) == fastcnn._blas.CBLAS
    assert not takes_shifted(2)
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((5, 64, 9, 8)), rng.standard_normal((3, 64, 3, 3)), rng.standard_normal(3)
    g = rng.standard_normal((5, 3, 9, 8))
    kw = dict(padding=1, algorithm="direct")  # 'auto' would take Winograd for this 3x3 kernel
    runs = results_per_thread_count(lambda: (fc.conv2d(x, w, b, **kw), *fc.conv2d_backward(g, x, w, b, **kw)))
    assert_bit_identical(runs)
    expected = (rc.conv2d(x, w, b, padding=1), *rc.conv2d_backward(g, x, w, b, padding=1))
    for got, want in zip(runs[0], expected):
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


# The 1-D path (issue 14): one GEMM per tap into the output, the input read in place with a zero fill.
# (N, C_in, C_out, L, K, padding, dilation, groups, padding_mode, stride); C_in / groups >= 64 takes it.
TAPS_1D_CASES = [
    (3, 64, 8, 20, 8, "same", 1, 1, "zeros", 1),  # even K: 3 cells before, 4 after (cnnbase.shapes.same_padding)
    (3, 64, 8, 20, 3, "same", 1, 1, "zeros", 1),
    (5, 64, 6, 9, 4, "same", 2, 1, "zeros", 1),  # dilated even K: total 6, 3 and 3
    (2, 128, 6, 7, 3, "same", 1, 2, "zeros", 1),  # two groups of 64
    (3, 64, 5, 12, 8, "same", 1, 1, "reflect", 1),  # another fill: padded copy, plane folded
    (3, 64, 5, 12, 4, "same", 2, 1, "circular", 1),
    (2, 64, 4, 3, 3, ((0, 7),), 1, 1, "replicate", 1),  # padding longer than the input
    (3, 64, 5, 12, 5, ((1, 6),), 1, 1, "zeros", 1),  # uneven explicit pads
    (2, 64, 4, 3, 9, ((4, 4),), 1, 1, "zeros", 1),  # L_out = 3 < K: most taps see padding only
    (2, 64, 4, 1, 1, "same", 1, 1, "zeros", 1),  # L = L_out = 1
    (3, 64, 4, 10, 5, 0, 1, 1, "zeros", 1),  # valid: L_out = 6
    (3, 64, 4, 11, 3, 1, 1, 1, "zeros", 2),  # stride 2: not this path (the im2col one), same answers
]


def _torch_conv1d(torch, x, w, b, padding, dilation, groups, mode, stride):
    """PyTorch's conv1d on the same problem, the padding applied by F.pad (its own fill modes) first."""
    F = torch.nn.functional
    (lo, hi), = geometry.conv_geometry("conv1d", x.shape, w.shape, b.shape, stride, padding, dilation, groups,
                                       mode, 1).pads
    xp = F.pad(x, (lo, hi), mode="constant" if mode == "zeros" else mode)
    return F.conv1d(xp, w, b, stride=stride, dilation=dilation, groups=groups)


@pytest.mark.parametrize("case", TAPS_1D_CASES, ids=[str(i) for i in range(len(TAPS_1D_CASES))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv1d_taps_path_matches_torch(case, dtype):
    """fastcnn's 1-D path (fastcnn.conv_taps1d: _taps_1d and _taps_1d_backward) against PyTorch built here, forward
    and the three gradients, on the edge cases of its index arithmetic."""
    torch = pytest.importorskip("torch")
    N, C_in, C_out, L, K, padding, dilation, groups, mode, stride = case
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((N, C_in, L)), rng.standard_normal((C_out, C_in // groups, K))
    b = rng.standard_normal(C_out)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    geom = geometry.conv_geometry("conv1d", x.shape, w.shape, b.shape, stride, padding, dilation, groups, mode, 1)
    assert fc._taps_1d_pays(geom, geom.as_2d()) == (stride == 1 and fastcnn._blas.CBLAS)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = _torch_conv1d(torch, xt, wt, bt, padding, dilation, groups, mode, stride)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    expected = [t.detach().numpy() for t in (yt, xt.grad, wt.grad, bt.grad)]
    cast = [a.astype(dtype) for a in (x, w, b, g)]
    got = [fc.conv1d(*cast[:3], **kw), *fc.conv1d_backward(cast[3], *cast[:3], **kw)]
    long_sum = max(C_in // groups * K, N * L)
    for i, (a, e) in enumerate(zip(got, expected)):
        assert a.dtype == dtype and a.shape == e.shape
        scale = max(1.0, float(np.abs(e).max()))
        tol = 1e-12 * scale if dtype == np.float64 else 2e-5 * scale * math.sqrt(long_sum)
        assert np.abs(a - e).max() <= tol, f"result {i}: error {np.abs(a - e).max():.3g} > {tol:.3g}"


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_conv1d_taps_path_is_bit_identical_whatever_the_thread_count(mode):
    """11 samples: three weight-gradient blocks, one partial; float32, even K, 'same'."""
    from fastcheck import assert_bit_identical, results_per_thread_count

    rng = np.random.default_rng(12)
    x = rng.standard_normal((11, 64, 30)).astype(np.float32)
    w = rng.standard_normal((16, 64, 8)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    g = rng.standard_normal((11, 16, 30)).astype(np.float32)
    kw = dict(padding="same", padding_mode=mode)
    runs = results_per_thread_count(lambda: (fc.conv1d(x, w, b, **kw), *fc.conv1d_backward(g, x, w, b, **kw)))
    assert_bit_identical(runs)


@settings(max_examples=25)
@given(conv_transpose_problems(), st.sampled_from((np.float64, np.float32)))
def test_conv_transpose_matches_refcnn(problem, dtype):
    _check_against_refcnn(problem, transposed=True, dtype=dtype)


# --- agreement with PyTorch ---------------------------------------------------------------------------


@settings(max_examples=20)
@given(st.data())
def test_matches_torch(data):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    transposed = data.draw(st.booleans())
    if transposed:
        x, w, b, kw = data.draw(conv_transpose_problems(rank=2))
        if any(isinstance(p, tuple) for p in kw["padding"]):
            kw["padding"] = tuple(p for p, _ in kw["padding"])  # torch has no per-side form
            try:
                geometry.conv_transpose_geometry("t", x.shape, w.shape, None, kw["stride"], kw["padding"],
                                           kw["output_padding"], kw["groups"], kw["dilation"], 2)
            except ValueError:
                return
        ours, theirs = fc.conv_transpose2d, F.conv_transpose2d
    else:
        x, w, b, kw = data.draw(conv_problems(rank=2))
        if kw["padding_mode"] != "zeros" or not isinstance(kw["padding"], int):
            kw["padding_mode"], kw["padding"] = "zeros", 0
            if any(n < w.shape[2 + i] for i, n in enumerate(x.shape[2:])) or any(
                    (k - 1) * d + 1 > n for k, d, n in zip(w.shape[2:], np.broadcast_to(kw["dilation"], 2),
                                                          x.shape[2:])):
                return
        ours, theirs = fc.conv2d, F.conv2d
    fwd_kw = {k: v for k, v in kw.items() if k != "padding_mode"}
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = theirs(tx, tw, tb, **fwd_kw)
    g = np.random.default_rng(3).uniform(-1, 1, tuple(ty.shape))
    grads = torch.autograd.grad(ty, [t for t in (tx, tw, tb) if t is not None], torch.tensor(g))
    expected = (ty.detach().numpy(),) + tuple(t.numpy() for t in grads) + ((None,) if b is None else ())
    backward = getattr(fc, ours.__name__ + "_backward")
    got = (ours(x, w, b, **kw),) + backward(g, x, w, b, **kw)
    _assert_agree(got, expected, dtype=np.float64, reductions=(1,) * 4, what=f"torch {ours.__name__} {kw}")


# --- errors -------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    dict(groups=3), dict(groups=0), dict(stride=0), dict(stride=(1, 2, 3)), dict(dilation=-1),
    dict(padding=-1), dict(padding="full"), dict(padding=((1, 1), 2)), dict(padding_mode="mirror"),
    dict(padding=9, padding_mode="reflect", x_shape=(1, 2, 1, 4)), dict(x_shape=(1, 3, 4, 4)),
    dict(x_shape=(1, 2, 2, 2)), dict(x_shape=(2, 4)), dict(bias_shape=(3,)), dict(dtype=np.int64),
    dict(grad_shape=(1, 2, 3, 3)), dict(transposed=True, padding="same"),
    dict(transposed=True, output_padding=2, stride=2), dict(transposed=True, x_shape=(1, 3, 4, 4)),
]


@settings(max_examples=40)
@given(st.sampled_from(BAD_ARGUMENTS), st.sampled_from(("forward", "backward")), st.booleans())
def test_invalid_arguments_raise_refcnn_errors(bad, direction, one_d):
    bad = dict(bad)
    transposed = bad.pop("transposed", False)
    x_shape = bad.pop("x_shape", (1, 2, 4, 4))
    w_shape = (2, 2, 3, 3) if not transposed else (2, 1, 3, 3)
    bias_shape = bad.pop("bias_shape", (2,))
    grad_shape = bad.pop("grad_shape", None)
    dtype = bad.pop("dtype", np.float64)
    if one_d and len(x_shape) == 4:
        x_shape, w_shape = x_shape[:3], w_shape[:3]
        bad = {k: (v[0] if isinstance(v, tuple) and len(v) == 2 else v) for k, v in bad.items()}
    if transposed:
        bad.pop("padding_mode", None)
    x = np.ones(x_shape, dtype=dtype)
    w, b = np.ones(w_shape), np.ones(bias_shape)
    fwd, bwd = _names(transposed, len(w_shape) - 2)
    args = (x, w, b)
    if direction == "backward":
        g = np.ones(grad_shape or (1, 2) + (2,) * (len(w_shape) - 2))
        fwd, args = bwd, (g,) + args
    outcomes = [_outcome(getattr(module, fwd), args, bad) for module in (rc, fc)]
    assert outcomes[0] == outcomes[1]
    if grad_shape is None or direction == "backward":  # a bad grad_out shape only matters to a backward
        assert outcomes[0] != "returned", f"{fwd} {bad}: refcnn accepted it"


def _outcome(fn, args, kwargs):
    """The error type and message of a call, or 'returned'."""
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)
    return "returned"


# --- dtypes, threads, cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", fc.__all__)
def test_returns_the_input_dtype(name, dtype):
    transposed = name.startswith("conv_transpose")
    rank = 1 if "1d" in name else 2
    x = np.ones((2, 2) + (5,) * rank, dtype=dtype)
    w = np.ones((2, 1) + (3,) * rank, dtype=dtype)
    b = np.ones(2, dtype=dtype)
    kw = {"groups": 2}  # conv: 2 -> 2 channels; transposed: 2 -> 1*2 channels
    fwd = getattr(fc, _names(transposed, rank)[0])
    if name.endswith("_backward"):
        g = np.ones(fwd(x, w, b, **kw).shape, dtype=dtype)
        results = getattr(fc, name)(g, x, w, b, **kw)
    else:
        results = (getattr(fc, name)(x, w, b, **kw),)
    assert all(r.dtype == dtype for r in results)


def test_signatures_match_refcnn():
    import inspect

    assert fc.__all__ == rc.__all__
    for name in rc.__all__:
        assert inspect.signature(getattr(fc, name)) == inspect.signature(getattr(rc, name)), name


@pytest.mark.parametrize("transposed", [False, True])
def test_bit_identical_whatever_the_thread_count(transposed):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((11, 4, 9, 8)).astype(np.float32)  # 11 samples: several blocks, one partial
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    kw = dict(stride=2, padding=1, groups=2)
    fwd, bwd = (fc.conv_transpose2d, fc.conv_transpose2d_backward) if transposed else (fc.conv2d, fc.conv2d_backward)
    if not transposed:
        kw["padding_mode"] = "reflect"
    before = fastcnn.get_num_threads()
    runs = []
    try:
        for threads in (1, min(2, fastcnn._runtime.numba.config.NUMBA_NUM_THREADS)):
            fastcnn.set_num_threads(threads)
            y = fwd(x, w, b, **kw)
            g = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
            runs.append((y,) + bwd(g, x, w, b, **kw))
    finally:
        fastcnn.set_num_threads(before)
    for a, c in zip(*runs):
        assert np.array_equal(a, c)


CONV_CASES = [c for c in load_cases() if c.family == "conv"]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_cases_pass_in_float64(case):
    result = run_case(case, getattr(fc, case.op))
    assert result.passed, "\n".join(result.problems)


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_cases_pass_in_float32(case):
    def to32(a):
        return a.astype(np.float32) if a.dtype.kind == "f" else a

    if "raises" in case.raw:
        result = run_case(case, getattr(fc, case.op), convert_input=to32)
        assert result.passed, "\n".join(result.problems)
        return
    args = [to32(a) if isinstance(a, np.ndarray) else a for a in case.args()]
    kwargs = {k: to32(v) if isinstance(v, np.ndarray) else v for k, v in case.kwargs().items()}
    expected = decode_expected(case.raw["expected"])
    scale = max([1.0] + [float(np.max(np.abs(e))) for e in _as_tuple(expected) if isinstance(e, np.ndarray)])
    problems, _, _ = compare(getattr(fc, case.op)(*args, **kwargs), expected, atol=1e-4 * scale, rtol=1e-5)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("transposed", [False, True])
def test_np_dot_fallback_agrees_with_cblas(monkeypatch, transposed):
    """Without NumPy's OpenBLAS the kernels take np.dot (SciPy's BLAS); both paths give refcnn's numbers."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 4, 7, 6))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)
    kw = dict(stride=(1, 2), padding=1, groups=2)
    fwd, bwd = (fc.conv_transpose2d, fc.conv_transpose2d_backward) if transposed else (fc.conv2d, fc.conv2d_backward)
    y = fwd(x, w, b, **kw)
    g = np.sin(np.arange(y.size, dtype=np.float64)).reshape(y.shape)
    results = []
    for cblas in sorted({fastcnn._blas.CBLAS, False}):
        monkeypatch.setattr(fastcnn._blas, "CBLAS", cblas)
        results.append((fwd(x, w, b, **kw),) + bwd(g, x, w, b, **kw))
    for a, c in zip(results[0], results[-1]):
        scale = max(1.0, float(np.abs(a).max()))
        assert np.abs(a - c).max() <= 1e-12 * scale
