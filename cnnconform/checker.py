"""Run the conformance checks of ``cnn conform``: named cases and randomized calls, judged op by op.

For every op a :class:`~cnnconform.targets.Target` offers, :func:`conform` runs

* the named cases of ``specs/cases/*.json`` (through :func:`cnnconform.cases.run_case`), and
* randomized calls drawn by :mod:`cnnconform.strategies`, judged against refcnn in float64 (the oracle);
  when one fails, Hypothesis shrinks it and the smallest failing call is kept as pasteable Python.

The result is a :class:`~cnnconform.report.Report` (rows of data, rendered by :mod:`cnnconform.report`).
Nothing the target does (raise, return the wrong shape or dtype, return a list) crashes the checker: each
is a failure with its message.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, seed, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter

import refcnn
from cnnconform import strategies
from cnnconform.cases import Case, compare, decode_expected, load_cases, run_case
from cnnconform.report import Failure, OpRow, Report
from cnnconform.targets import SPEC_OPS, Target

__all__ = ["DEFAULT_TOLERANCE", "Options", "run_named_case", "judge", "relative_error", "run_random_cases",
           "conform"]

#: ``|got - expected| <= tolerance + tolerance*|expected|`` for randomized cases, and the least tolerance of
#: a named case, by the dtype handed to the target (``specs/adapter.md``).
DEFAULT_TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


class Unsupported(Exception):
    """Raised inside the checker when a target declines a call with ``NotImplementedError``."""


@dataclass
class Options:
    """The knobs of a run (the command's options)."""

    dtype: str = "float64"
    tolerance: float | None = None  # None: DEFAULT_TOLERANCE[dtype]
    examples: int = 25  # randomized calls per op
    seed: int = 0
    ops: tuple[str, ...] = SPEC_OPS

    @property
    def tol(self) -> float:
        return DEFAULT_TOLERANCE[self.dtype] if self.tolerance is None else self.tolerance


# ---------------------------------------------------------------------------------------------------
# Calling the target


def _convert(value, dtype):
    """Float arrays (also inside tuples and dicts, e.g. optimizer state) to ``dtype``; others unchanged."""
    if isinstance(value, np.ndarray):
        return value.astype(dtype) if np.issubdtype(value.dtype, np.floating) else value.copy()
    if isinstance(value, tuple):
        return tuple(_convert(v, dtype) for v in value)
    if isinstance(value, list):
        return [_convert(v, dtype) for v in value]
    if isinstance(value, dict):
        return {k: _convert(v, dtype) for k, v in value.items()}
    return copy.deepcopy(value)


def _dtype_problems(got, expected, handed: np.dtype, where: str = "result") -> list[str]:
    """Float results must be float arrays at least as precise as what was handed in; int results ints."""
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return []  # compare() reports the missing array
        if np.issubdtype(expected.dtype, np.floating):
            if not np.issubdtype(got.dtype, np.floating) or got.dtype.itemsize < handed.itemsize:
                return [f"{where}: expected a float array of dtype {handed} or wider, got dtype {got.dtype}"]
        elif np.issubdtype(expected.dtype, np.integer) and not np.issubdtype(got.dtype, np.integer):
            return [f"{where}: expected an integer array, got dtype {got.dtype}"]
        return []
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)) and len(got) == len(expected):
        return [p for i, (g, e) in enumerate(zip(got, expected)) for p in _dtype_problems(g, e, handed, f"{where}[{i}]")]
    if isinstance(expected, dict) and isinstance(got, dict):
        return [p for k, e in expected.items() if k in got for p in _dtype_problems(got[k], e, handed, f"{where}[{k!r}]")]
    return []


def _call_target(fn: Callable, args, kwargs, dtype: np.dtype):
    """Call ``fn`` on converted copies; returns (result, the converted args after the call).

    ``NotImplementedError`` becomes :class:`Unsupported`; every other exception propagates.
    """
    args, kwargs = _convert(tuple(args), dtype), _convert(dict(kwargs), dtype)
    try:
        return fn(*args, **kwargs), args
    except NotImplementedError as exc:
        raise Unsupported(str(exc) or "not implemented") from exc


# ---------------------------------------------------------------------------------------------------
# Named cases


def _with_tolerance(case: Case, tol: float, keep_match: bool) -> Case:
    raw = dict(case.raw)
    raw["atol"], raw["rtol"] = max(case.atol, tol), max(case.rtol, tol)
    if not keep_match:
        raw.pop("match", None)
    return dataclasses.replace(case, raw=raw)


def run_named_case(case: Case, target: Target, options: Options, row: OpRow) -> None:
    """Run one named case against the target and record it in ``row``."""
    if case.raw.get("raises") and not target.checks_arguments:
        row.skipped += 1
        return
    dtype = np.dtype(options.dtype)
    declined: list[str] = []
    dtype_problems: list[str] = []
    outputs: list = []
    expected = None if "raises" in case.raw else decode_expected(case.raw["expected"])

    def call(*args, **kwargs):
        try:
            result, converted = _call_target(target.functions[case.op], args, kwargs, dtype)
        except Unsupported as exc:
            declined.append(str(exc))
            raise
        # arguments updated in place (batch norm's running statistics) are judged by run_case on its own
        # arrays: copy the target's updates back into them
        for mine, theirs in zip(args, converted):
            if isinstance(mine, np.ndarray) and isinstance(theirs, np.ndarray) and mine.shape == theirs.shape:
                mine[...] = theirs
        if expected is not None:
            dtype_problems.extend(_dtype_problems(result, expected, dtype))
        outputs.append(result)
        return result

    result = run_case(_with_tolerance(case, options.tol, target.spec_messages), call)
    if declined:
        row.skipped += 1
        return
    problems = dtype_problems + result.problems
    # the named cases' relative errors come from run_case, which does not floor |expected|: recompute
    rel_error = 0.0
    if outputs and expected is not None:
        rel_error = relative_error(outputs[0], expected, options.tol)
    row.record(not problems, result.max_abs_error, rel_error)
    if problems:
        row.failures.append(Failure(case.op, case.name, problems))


# ---------------------------------------------------------------------------------------------------
# Randomized cases


@dataclass
class Verdict:
    problems: list[str]
    abs_error: float = 0.0
    rel_error: float = 0.0


class _Mismatch(AssertionError):
    """Raised inside the Hypothesis test so that it shrinks the call."""


def judge(call: strategies.Call, fn: Callable, options: Options) -> Verdict | None:
    """Run ``call`` on the target and on refcnn (float64, on the same rounded inputs); ``None`` when the
    target declines the call. The oracle failing means the strategy drew an invalid call: rejected."""
    dtype = np.dtype(options.dtype)
    # the oracle sees exactly the numbers the target sees: rounded to the target's dtype, then widened
    rounded = _convert(call.args, dtype), _convert(call.kwargs, dtype)
    oracle_args, oracle_kwargs = _convert(rounded[0], np.float64), _convert(rounded[1], np.float64)
    oracle = getattr(refcnn, call.op, None) or getattr(refcnn.shapes, call.op)
    try:
        expected = oracle(*oracle_args, **oracle_kwargs)
    except Exception:  # noqa: BLE001 - a call the spec refuses is not a test of the target
        reject()
    try:
        got, target_args = _call_target(fn, rounded[0], rounded[1], dtype)
    except Unsupported:
        return None
    except Exception as exc:  # noqa: BLE001 - the implementation under test may raise anything
        return Verdict([f"raised {type(exc).__name__}: {exc}"])
    problems = _dtype_problems(got, expected, dtype)
    more, abs_error, _ = compare(got, expected, options.tol, options.tol)
    problems += more
    rel_error = relative_error(got, expected, options.tol)
    for i, (theirs, mine) in enumerate(zip(target_args, oracle_args)):
        if isinstance(mine, np.ndarray) and np.issubdtype(mine.dtype, np.floating):
            changed, a, _ = compare(theirs, mine, options.tol, options.tol, where=f"argument {i} after the call")
            problems += changed
            abs_error, rel_error = max(abs_error, a), max(rel_error, relative_error(theirs, mine, options.tol))
    return Verdict(problems, abs_error, rel_error)


def relative_error(got, expected, floor: float) -> float:
    """Largest ``|got - expected| / |expected|`` over finite values with ``|expected| > floor``: below the
    floor the absolute tolerance decides, and a relative error of a value near 0 says nothing."""
    if isinstance(expected, np.ndarray) and isinstance(got, np.ndarray) and got.shape == expected.shape:
        if not np.issubdtype(expected.dtype, np.floating):
            return 0.0
        g, e = np.asarray(got, dtype=np.float64), expected
        keep = np.isfinite(e) & np.isfinite(g) & (np.abs(e) > floor)
        return float((np.abs(g - e)[keep] / np.abs(e[keep])).max()) if keep.any() else 0.0
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)) and len(got) == len(expected):
        return max((relative_error(g, e, floor) for g, e in zip(got, expected)), default=0.0)
    if isinstance(expected, dict) and isinstance(got, dict):
        return max((relative_error(got[k], e, floor) for k, e in expected.items() if k in got), default=0.0)
    return 0.0


def run_random_cases(op: str, target: Target, options: Options, row: OpRow) -> None:
    """Draw ``options.examples`` calls of ``op``; on a failure let Hypothesis shrink it and keep the
    smallest failing call. Counts cover the calls drawn before the first failure, plus that failure."""
    fn = target.functions[op]
    state = {"failing": False, "last": None}

    @seed(options.seed)
    @settings(max_examples=options.examples, database=None, deadline=None, derandomize=False,
              report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink))
    @given(call=strategies.calls(op))
    def check(call):
        verdict = judge(call, fn, options)
        if verdict is None:
            if not state["failing"]:
                row.skipped += 1
            return
        if not state["failing"]:
            row.record(not verdict.problems, verdict.abs_error, verdict.rel_error)
        if verdict.problems:
            state["failing"] = True
            state["last"] = (call, verdict)
            raise _Mismatch("; ".join(verdict.problems))

    try:
        with with_reporter(lambda *_: None):
            check()
    except _Mismatch:
        call, verdict = state["last"]  # the last failing call Hypothesis ran is the shrunk one
        row.failures.append(Failure(op, "random", verdict.problems, call.code()))
    except Unsatisfiable:
        pass  # every drawn call was declined or rejected: nothing was run
    except Exception as exc:  # noqa: BLE001 - e.g. hypothesis's Flaky: the target is not deterministic
        if not state["failing"]:
            row.record(False)
        last = state["last"]
        row.failures.append(Failure(op, "random", [f"{type(exc).__name__}: {exc}"], last[0].code() if last else ""))


def conform(target: Target, options: Options | None = None, cases: list[Case] | None = None) -> Report:
    """Check ``target`` on the named cases and randomized calls of every op in ``options.ops``."""
    options = options or Options()
    cases = load_cases() if cases is None else cases
    start = time.perf_counter()
    rows = []
    with np.errstate(all="ignore"):  # a wrong result may overflow an error ratio; the report says so
        for op in options.ops:
            rows.append(_check_op(op, target, options, cases))
    return Report(target.name, options.dtype, options.tol, options.examples, options.seed, rows,
                  time.perf_counter() - start)


def _check_op(op: str, target: Target, options: Options, cases: list[Case]) -> OpRow:
    row = OpRow(op, offered=target.offers(op))
    op_cases = [case for case in cases if case.op == op]
    if not row.offered:
        row.skipped = len(op_cases)
        return row
    for case in op_cases:
        run_named_case(case, target, options, row)
    if options.examples > 0 and strategies.has_strategy(op):
        run_random_cases(op, target, options, row)
    return row
