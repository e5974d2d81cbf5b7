"""Helpers shared by the fastcnn test files (``tests/test_fast_*.py`` and ``tests/test_fast_conformance.py``).

fastcnn is checked against refcnn, the oracle, in the same few ways everywhere; each way is written once here
so that every family is held to the same rule:

* agreement with refcnn within a stated tolerance (:func:`assert_agrees`),
* the same error, type and message, for the same bad call (:func:`raised`, :func:`outcome`,
  :func:`assert_same_error`),
* the same public names and signatures (:func:`assert_same_api`),
* bit-identical results whatever the thread count (:func:`results_per_thread_count`,
  :func:`assert_bit_identical`),
* the conformance cases of ``specs/cases/*.json`` in float64 and float32 (:func:`fastcnn_op`,
  :func:`to_float32`, :func:`as_float32_case`, :func:`run_case_in_float32`).

This is a plain module, not a conftest: the test files import what they use, so a reader sees where a
helper comes from. (pytest puts ``tests/`` on ``sys.path``, as for ``gradcheck``.)
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np
import pytest

import fastcnn
from cnnconform.cases import Case, decode_expected, run_case

__all__ = [
    "FLOAT64_TOLERANCE", "FLOAT32_TOLERANCE", "CASE_FLOAT32_ATOL", "CASE_FLOAT32_RTOL",
    "agreement_limit", "assert_agrees", "outcome", "raised", "assert_same_error", "parameters",
    "assert_same_api", "results_per_thread_count", "assert_bit_identical", "fastcnn_op", "to_float32",
    "as_float32_case", "run_case_in_float32",
]


# ---------------------------------------------------------------------------------------------------------
# Agreement with refcnn
# ---------------------------------------------------------------------------------------------------------

# float64: the engines differ only in the order of their sums, a few ulps (2.2e-16) of the largest value.
FLOAT64_TOLERANCE = 1e-12
# float32 (and narrower): both engines read the very same float32 values, but a sum of R float32 terms
# drifts like sqrt(R) * 6e-8 * scale; 2e-5 leaves room for exp/tanh/divisions rounded in float32 too.
FLOAT32_TOLERANCE = 2e-5


def agreement_limit(dtype, scale: float, reduction: int = 1, tolerance: float | None = None) -> float:
    """The largest absolute error allowed against refcnn for results of magnitude ``scale``.

    float64: ``1e-12 * max(1, scale)``; otherwise ``2e-5 * max(1, scale) * sqrt(reduction)``, ``reduction``
    the length of the longest sum behind one value (1 for elementwise ops). ``tolerance``, when given,
    replaces the rule by ``tolerance * max(1, scale)``: a file whose engine rounds once from float64 states a
    tighter float32 bound, and comparisons with PyTorch a looser float64 one.
    """
    scale = max(1.0, scale)  # relative near the largest value, absolute below 1 (no blow-up near zero)
    if tolerance is not None:
        return tolerance * scale
    if np.dtype(dtype) == np.float64:
        return FLOAT64_TOLERANCE * scale
    return FLOAT32_TOLERANCE * scale * math.sqrt(max(reduction, 1))


def assert_agrees(got, expected, *, dtype=np.float64, reduction: int = 1, tolerance: float | None = None,
                  what: str = "") -> None:
    """``got`` (fastcnn) equals ``expected`` (refcnn, or PyTorch) within :func:`agreement_limit`.

    Shapes must match; NaN must appear exactly where ``expected`` has it and infinities must be the same
    infinity: neither can be "close", and an error of ``inf - inf`` would otherwise read as NaN. The scale is
    the largest finite ``|expected|``, so one infinity does not excuse every other value.
    """
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN positions")
    inf = np.isinf(expected)
    np.testing.assert_array_equal(got[inf], expected[inf], err_msg=f"{what}: infinities")
    finite = np.isfinite(expected)
    if not finite.any():
        return
    g, e = got[finite], expected[finite]
    limit = agreement_limit(dtype, float(np.max(np.abs(e))), reduction, tolerance)
    err = np.abs(g - e)  # inf where fastcnn overflowed and refcnn did not: fails below, as it should
    worst = int(np.argmax(err))
    assert err[worst] <= limit, (f"{what}: max abs error {err[worst]:.3g} > {limit:.3g} at finite element "
                                 f"{worst}: got {g[worst]!r}, expected {e[worst]!r}")


# ---------------------------------------------------------------------------------------------------------
# Errors: refcnn's, word for word
# ---------------------------------------------------------------------------------------------------------


def outcome(fn: Callable, *args, **kwargs) -> tuple[str, Any]:
    """``('ok', result)`` or ``('error', exception)``: any exception, for calls where either engine may
    return normally and what matters is that both do the same."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - comparing what both engines raise
        return "error", exc


def raised(fn: Callable, *args, **kwargs) -> tuple[type, str] | None:
    """``(type, message)`` of the TypeError or ValueError ``fn`` raises, ``None`` if it returns.

    Only those two: they are the errors the spec names. Anything else (an IndexError from a kernel, say) is
    a bug and must surface with its own traceback rather than be compared.
    """
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)
    return None


def assert_same_error(fast_fn: Callable, ref_fn: Callable, *args, **kwargs) -> bool:
    """When refcnn raises, fastcnn raises the same type with the same message: returns True. Returns False
    (checking nothing) when refcnn returns normally, for strategies that draw some valid calls."""
    kind, ref_exc = outcome(ref_fn, *args, **kwargs)
    if kind == "ok":
        return False
    kind, fast_exc = outcome(fast_fn, *args, **kwargs)
    assert kind == "error", f"refcnn raised {ref_exc!r}, fastcnn returned normally"
    assert type(fast_exc) is type(ref_exc) and str(fast_exc) == str(ref_exc), (fast_exc, ref_exc)
    return True


# ---------------------------------------------------------------------------------------------------------
# The public surface
# ---------------------------------------------------------------------------------------------------------


def parameters(fn: Callable) -> list:
    """Names, kinds and defaults of ``fn``'s parameters (annotations aside: the engines may word them
    differently)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def assert_same_api(fast_module, ref_module) -> None:
    """fastcnn's module exports refcnn's names, in refcnn's order, with refcnn's signatures: a drop-in."""
    assert fast_module.__all__ == ref_module.__all__
    for name in ref_module.__all__:
        assert parameters(getattr(fast_module, name)) == parameters(getattr(ref_module, name)), name


# ---------------------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------------------


def results_per_thread_count(compute: Callable[[], Any], counts=(1, 2)) -> list:
    """``compute()`` run once with each of ``counts`` fastcnn threads; the thread count found is restored
    whatever happens (in ``finally``: a failure must not leave later tests on one thread).

    Skips when Numba was started with fewer threads than asked for: there is then nothing to compare, and
    ``set_num_threads`` would refuse the count.
    """
    if fastcnn._runtime.numba.config.NUMBA_NUM_THREADS < max(counts):
        pytest.skip(f"fewer than {max(counts)} threads available")
    before = fastcnn.get_num_threads()
    results = []
    try:
        for n in counts:
            fastcnn.set_num_threads(n)
            results.append(compute())
    finally:
        fastcnn.set_num_threads(before)
    return results


def _leaves(value) -> list:
    """The arrays (and other values) of a result, nested lists, tuples and dicts flattened in order."""
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in _leaves(value[k])]
    return [value]


def assert_bit_identical(runs: list) -> None:
    """Every run's results have the same dtypes, shapes and bytes as the first run's.

    Bytes, not ``array_equal``: the thread count must change no bit (not even a -0.0 into 0.0), and a NaN
    in the same place must count as equal.
    """
    first = _leaves(runs[0])
    for k, run in enumerate(runs[1:], start=1):
        leaves = _leaves(run)
        assert len(leaves) == len(first), f"run {k}: {len(leaves)} results, run 0: {len(first)}"
        for i, (a, b) in enumerate(zip(first, leaves)):
            if a is None or b is None:
                assert a is b, f"result {i}: {a!r} in run 0, {b!r} in run {k}"
                continue
            a, b = np.asarray(a), np.asarray(b)
            assert (a.dtype, a.shape) == (b.dtype, b.shape), f"result {i}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
            assert a.tobytes() == b.tobytes(), f"result {i} differs between run 0 and run {k}"


# ---------------------------------------------------------------------------------------------------------
# Conformance cases (specs/cases/*.json)
# ---------------------------------------------------------------------------------------------------------

# The cases' float32 tolerance: the loosest any fastcnn test file has used for them (atol 1e-4 * scale from
# conv, rtol 1e-4 from activations), and never tighter than the case's own. The cases' expected values are
# float64 results for float64 inputs, so in float32 they carry both the rounding of the inputs (relative
# 6e-8 per input, amplified by sums and steep functions) and float32 arithmetic.
CASE_FLOAT32_ATOL = 1e-4  # times max(1, the largest finite |expected| value of the case)
CASE_FLOAT32_RTOL = 1e-4


def fastcnn_op(name: str) -> Callable:
    """The fastcnn function a case names: ``fastcnn.<op>``, or ``fastcnn.shapes.<op>`` for the shape
    arithmetic (which fastcnn takes from refcnn). A name in neither fails the test: fastcnn offers every op."""
    fn = getattr(fastcnn, name, None) or getattr(fastcnn.shapes, name, None)
    if fn is None:
        pytest.fail(f"fastcnn has no op {name!r}")
    return fn


def to_float32(value):
    """``value`` with every float64 array rounded to float32, inside tuples and dicts too (an optimizer's
    state is a dict of arrays). Integer arrays (class labels) and other values are kept; an array that is
    not float64 is returned as is, the same object (``run_case`` checks in-place updates on it)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32) if value.dtype == np.float64 else value
    if isinstance(value, tuple):
        return tuple(to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: to_float32(v) for k, v in value.items()}
    return value


def _largest_finite(value) -> float:
    """The largest finite ``|x|`` among the numbers of a decoded expected value (0 if none)."""
    largest = 0.0
    for leaf in _leaves(value):
        if isinstance(leaf, (float, np.ndarray)) and np.asarray(leaf).dtype.kind == "f":
            a = np.abs(np.asarray(leaf, dtype=np.float64))
            a = a[np.isfinite(a)]
            if a.size:
                largest = max(largest, float(a.max()))
    return largest


def as_float32_case(case: Case) -> Case:
    """The case with its tolerance loosened to :data:`CASE_FLOAT32_ATOL` / :data:`CASE_FLOAT32_RTOL` where
    it is tighter. The absolute part scales with the case's largest finite expected value (its own or in
    ``after``), as a float32 rounding error does."""
    if "raises" in case.raw:
        return case  # an error case compares no numbers
    scale = max(1.0, _largest_finite(decode_expected(case.raw["expected"])),
                *(_largest_finite(decode_expected(v)) for v in case.raw.get("after", {}).values()))
    raw = dict(case.raw, atol=max(case.atol, CASE_FLOAT32_ATOL * scale), rtol=max(case.rtol, CASE_FLOAT32_RTOL))
    return Case(case.name, case.op, case.doc, case.source, case.family, raw)


def run_case_in_float32(case: Case, fn: Callable):
    """Run ``case`` on ``fn`` with its float inputs rounded to float32, under :func:`as_float32_case`.

    Top-level arrays go through ``run_case``'s ``convert_input``, so that an argument the op updates in place
    (batch norm's running statistics, checked by the case's ``after``) is the very array checked; arrays in
    tuples and dicts (optimizer states) are rounded by the wrapper, which leaves float32 arrays untouched.
    """
    def in_float32(*args, **kwargs):
        return fn(*to_float32(args), **to_float32(kwargs))

    return run_case(as_float32_case(case), in_float32, convert_input=to_float32)


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------


def unfused_pass(model, x, grad, step, training=True):
    """The same forward (training, unless told otherwise) and backward as ``Model.forward``/``Model.backward``,
    layer by layer through a Pass that does not fuse (every op the engine's plain one): ``(logits, input
    gradient, parameter gradients by key)``, the gradients copied. The fused-op tests compare a model's own pass
    with this one bit for bit."""
    from cnn import layers as L

    ctx = L.Pass(model.engine, training, model.dtype, model.seed, step)
    for layer in model.layers:
        x = layer.forward(x, ctx)
    g = grad
    for layer in reversed(model.layers):
        g = layer.backward(g)
    return x, g, {key: layer.grads[p].copy() for key, layer, p in model.parameters()}
