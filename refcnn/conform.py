"""``cnn conform``: check an implementation against the specification, op by op.

A *target* is anything that exposes some of the spec's functions under the spec's names and signatures
(the adapter protocol, ``specs/adapter.md``): refcnn, fastcnn, PyTorch through ``refcnn.adapters.torch_adapter``,
or a user's module or ``.py`` file. For every op the target offers, :func:`conform` runs

* the named cases of ``specs/cases/*.json`` (through :func:`refcnn.cases.run_case`), and
* randomized calls drawn by :mod:`refcnn.strategies`, judged against refcnn in float64 (the oracle);
  when one fails, Hypothesis shrinks it and the smallest failing call is kept as pasteable Python.

The result is a :class:`Report` (rows of data); :func:`render_text` and :func:`render_json` turn it into
text. Nothing the target does (raise, return the wrong shape or dtype, return a list) crashes the checker:
each is a failure with its message.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import strategies
from .cases import Case, compare, load_cases, run_case

__all__ = [
    "Target", "TargetError", "Options", "OpRow", "Failure", "Report", "DEFAULT_TOLERANCE", "SPEC_OPS",
    "load_target", "select_ops", "conform", "render_text", "render_json",
]

#: ``|got - expected| <= tolerance + tolerance*|expected|`` for randomized cases, and the least tolerance of
#: a named case, by the dtype handed to the target (``specs/adapter.md``).
DEFAULT_TOLERANCE = {"float64": 1e-9, "float32": 1e-4}

#: Functions of the spec that live in the shape module rather than among the ops (family "shapes").
SHAPE_FUNCTIONS = ("conv_output_size", "conv_transpose_output_size", "same_padding", "receptive_field_step")


def _spec_ops() -> tuple[str, ...]:
    import refcnn

    return tuple(name for names in refcnn.OPS.values() for name in names) + SHAPE_FUNCTIONS


#: Every function of the spec, in family order: the rows of a report.
SPEC_OPS = _spec_ops()


class TargetError(Exception):
    """The target cannot be loaded (a usage error: exit status 2)."""


class Unsupported(Exception):
    """Raised inside the checker when a target declines a call with ``NotImplementedError``."""


# ---------------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    """An implementation under test: its name and the spec functions it offers."""

    name: str
    functions: dict[str, Callable]
    checks_arguments: bool = True  # whether it promises the spec's TypeError/ValueError for bad input
    spec_messages: bool = False  # whether its messages carry the spec's wording (cases' "match")

    def offers(self, op: str) -> bool:
        return op in self.functions


def _functions_of(namespace, names=None, with_shapes: bool = False) -> dict[str, Callable]:
    """The spec functions ``namespace`` offers: attributes with spec names that are callable. The engines
    keep the shape functions in their ``shapes`` module (``with_shapes``)."""
    found = {}
    shapes_module = getattr(namespace, "shapes", None) if with_shapes else None
    for op in names if names is not None else SPEC_OPS:
        fn = getattr(namespace, op, None)
        if fn is None and op in SHAPE_FUNCTIONS and shapes_module is not None:
            fn = getattr(shapes_module, op, None)
        if callable(fn):
            found[op] = fn
    return found


def target_from_namespace(namespace, default_name: str) -> Target:
    """A target from a module (or any object): its spec functions and the optional protocol attributes."""
    return Target(
        name=str(getattr(namespace, "NAME", default_name)),
        functions=_functions_of(namespace),
        checks_arguments=bool(getattr(namespace, "CHECKS_ARGUMENTS", True)),
        spec_messages=bool(getattr(namespace, "SPEC_MESSAGES", False)),
    )


def _builtin_target(name: str) -> Target:
    if name == "refcnn":
        import refcnn

        return Target("refcnn", _functions_of(refcnn, with_shapes=True), checks_arguments=True, spec_messages=True)
    if name == "fastcnn":
        try:
            import fastcnn
        except Exception as exc:  # noqa: BLE001 - an engine that fails to import is a usage problem here
            raise TargetError(f"cannot import fastcnn: {type(exc).__name__}: {exc}") from exc
        # fastcnn offers exactly the names in its __all__ lists (families not written yet offer none)
        offered = [op for op in SPEC_OPS if op in getattr(fastcnn, "__all__", ()) or op in SHAPE_FUNCTIONS]
        return Target("fastcnn", _functions_of(fastcnn, offered, with_shapes=True), checks_arguments=True,
                      spec_messages=True)
    try:
        from .adapters import torch_adapter
    except ImportError as exc:
        raise TargetError(f"the torch target needs PyTorch, which cannot be imported: {exc}") from exc
    return target_from_namespace(torch_adapter, "torch")


def _load_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"_conform_target_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file may fail in any way
        raise TargetError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _load_module(text: str):
    module_name, _, attribute = text.partition(":")
    if "" not in sys.path and "." not in sys.path:  # `cnn conform mypkg.impl` from the project's folder
        sys.path.insert(0, "")
    try:
        namespace = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001
        raise TargetError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in filter(None, attribute.split(".")):
        if not hasattr(namespace, part):
            raise TargetError(f"module {module_name!r} has no attribute path {attribute!r}")
        namespace = getattr(namespace, part)
    return namespace


def load_target(text: str) -> Target:
    """``refcnn``, ``fastcnn``, ``torch``, a path to a ``.py`` file, or ``package.module[:attribute]``.

    Raises :class:`TargetError` when it cannot be loaded or offers none of the spec's functions.
    """
    if text in ("refcnn", "fastcnn", "torch"):
        return _builtin_target(text)
    if text.endswith(".py"):
        path = Path(text)
        if not path.is_file():
            raise TargetError(f"no such file: {text}")
        target = target_from_namespace(_load_file(path), path.stem)
    else:
        target = target_from_namespace(_load_module(text), text)
    if not target.functions:
        raise TargetError(
            f"{text} offers none of the spec's functions (it needs attributes named like conv2d, relu, "
            f"max_pool2d; see specs/adapter.md)"
        )
    return target


def select_ops(text: str | None) -> tuple[str, ...]:
    """The ops named by ``--ops`` (comma separated). A forward op brings its backward along.

    Raises ``ValueError`` naming the unknown names.
    """
    if not text:
        return SPEC_OPS
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SPEC_OPS]
    if unknown or not names:
        raise ValueError(f"unknown op name(s) {', '.join(unknown) or repr(text)}; the spec's functions are: "
                         + ", ".join(SPEC_OPS))
    chosen = set(names) | {f"{name}_backward" for name in names if f"{name}_backward" in SPEC_OPS}
    return tuple(op for op in SPEC_OPS if op in chosen)


# ---------------------------------------------------------------------------------------------------
# The report as data


@dataclass
class Failure:
    """One failing case: a named case, or the smallest failing randomized call Hypothesis found."""

    op: str
    case: str  # the case name, or "random" for a shrunk randomized call
    problems: list[str]
    code: str = ""  # Python that reproduces it (randomized failures)


@dataclass
class OpRow:
    """What happened to one op: counts over named and randomized cases and the largest errors."""

    op: str
    offered: bool
    run: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    def record(self, passed: bool, abs_error: float = 0.0, rel_error: float = 0.0) -> None:
        self.run += 1
        self.passed += passed
        self.failed += not passed
        self.max_abs_error = max(self.max_abs_error, _finite_or_inf(abs_error))
        self.max_rel_error = max(self.max_rel_error, _finite_or_inf(rel_error))


def _finite_or_inf(value: float) -> float:
    return math.inf if value != value else value


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


@dataclass
class Report:
    target: str
    dtype: str
    tolerance: float
    examples: int
    seed: int
    rows: list[OpRow]
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(row.failed for row in self.rows)

    @property
    def passed(self) -> bool:
        """True when everything run passed (the exit status is 0)."""
        return self.failed == 0

    def totals(self) -> dict:
        return {key: sum(getattr(row, key) for row in self.rows) for key in ("run", "passed", "failed", "skipped")}


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
    expected = None if "raises" in case.raw else _decoded_expected(case)

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


def _decoded_expected(case: Case):
    from .cases import decode_expected

    return decode_expected(case.raw["expected"])


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
    import refcnn
    from hypothesis import reject

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
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
    from hypothesis.errors import Unsatisfiable
    from hypothesis.reporting import with_reporter

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


# ---------------------------------------------------------------------------------------------------
# Renderings


def _error(value: float) -> str:
    return f"{value:.1e}" if value else "0"


def render_text(report: Report, show_all: bool = False) -> str:
    """A table of the ops the target offers (all ops with ``show_all``), then every failure in full."""
    headers = ("op", "run", "passed", "failed", "skipped", "max abs err", "max rel err")
    rows = [r for r in report.rows if r.offered or show_all]
    table = [headers] + [
        (r.op if r.offered else f"{r.op} (not offered)", str(r.run), str(r.passed), str(r.failed), str(r.skipped),
         _error(r.max_abs_error), _error(r.max_rel_error))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    lines = [
        f"cnn conform {report.target}: dtype {report.dtype}, tolerance {report.tolerance:g}, "
        f"{report.examples} randomized calls per op, seed {report.seed}",
        "",
    ]
    for i, line in enumerate(table):
        cells = [line[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(line[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    not_offered = [r.op for r in report.rows if not r.offered]
    if not_offered and not show_all:
        lines.append(f"not offered by {report.target} ({len(not_offered)}): {', '.join(not_offered)}")
    totals = report.totals()
    offered = sum(r.offered for r in report.rows)
    lines.append("")
    lines.append(
        f"{offered} of {len(report.rows)} ops offered; {totals['run']} cases run, {totals['passed']} passed, "
        f"{totals['failed']} failed, {totals['skipped']} skipped ({report.seconds:.1f} s)"
    )
    for row in report.rows:
        for failure in row.failures:
            lines.append("")
            title = "smallest failing randomized call" if failure.case == "random" else f"case {failure.case}"
            lines.append(f"FAILED {failure.op}: {title}")
            lines.extend(f"  {problem}" for problem in failure.problems)
            if failure.code:
                lines.append("  reproduce with:")
                lines.extend(f"    {code_line}" if code_line else "" for code_line in failure.code.splitlines())
    lines.append("")
    lines.append("PASSED" if report.passed else f"FAILED: {report.failed} case(s)")
    return "\n".join(lines) + "\n"


def _jsonable_number(value: float):
    return value if math.isfinite(value) else str(value)


def render_json(report: Report) -> str:
    """The report for machines: totals, one object per op, failures with their reproducing code."""
    data: dict[str, Any] = {
        "target": report.target,
        "dtype": report.dtype,
        "tolerance": report.tolerance,
        "examples": report.examples,
        "seed": report.seed,
        "seconds": round(report.seconds, 3),
        "passed": report.passed,
        "totals": report.totals(),
        "ops": [
            {
                "op": r.op, "offered": r.offered, "run": r.run, "passed": r.passed, "failed": r.failed,
                "skipped": r.skipped, "max_abs_error": _jsonable_number(r.max_abs_error),
                "max_rel_error": _jsonable_number(r.max_rel_error),
                "failures": [dataclasses.asdict(f) for f in r.failures],
            }
            for r in report.rows
        ],
    }
    return json.dumps(data, indent=2) + "\n"
