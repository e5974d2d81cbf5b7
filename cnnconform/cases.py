"""Load and run the conformance cases of ``specs/cases/*.json`` (format: ``specs/cases/README.md``).

Used by the test suite and by ``cnn conform``. Decoding and comparison live here, once, so every caller
reads a case the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["CASES_DIR", "Case", "load_cases", "decode_arg", "decode_expected", "compare", "run_case", "CaseResult"]

CASES_DIR = Path(__file__).resolve().parent.parent / "specs" / "cases"
FORMAT = "cnn-conformance-cases/1"
_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


@dataclass(frozen=True)
class Case:
    """One named case: call ``op(*args, **kwargs)`` and expect ``expected`` or the error ``raises``."""

    name: str
    op: str
    doc: str
    source: str
    family: str
    raw: dict = field(repr=False)

    @property
    def atol(self) -> float:
        return float(self.raw.get("atol", 1e-9))

    @property
    def rtol(self) -> float:
        return float(self.raw.get("rtol", 1e-9))

    def args(self) -> list:
        """Fresh decoded positional arguments (new arrays each call, as ops may update some in place)."""
        return [decode_arg(a) for a in self.raw["args"]]

    def kwargs(self) -> dict:
        return {k: decode_arg(v) for k, v in self.raw.get("kwargs", {}).items()}


def _is_array(value) -> bool:
    return isinstance(value, dict) and "shape" in value and "data" in value


def _array(value: dict) -> np.ndarray:
    dtype = np.dtype(value.get("dtype", "float64"))
    data = [_SPECIAL[v] if isinstance(v, str) else v for v in value["data"]]
    return np.array(data, dtype=dtype).reshape(value["shape"])


def decode_arg(value):
    """An argument: arrays become ndarrays, lists become tuples (recursively)."""
    if _is_array(value):
        return _array(value)
    if isinstance(value, list):
        return tuple(decode_arg(v) for v in value)
    if isinstance(value, dict):
        return {k: decode_arg(v) for k, v in value.items()}
    return value


def decode_expected(value):
    """A return value: arrays become ndarrays, lists tuples of values, other objects dicts."""
    if _is_array(value):
        return _array(value)
    if isinstance(value, list):
        return tuple(decode_expected(v) for v in value)
    if isinstance(value, dict):
        return {k: decode_expected(v) for k, v in value.items()}
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    return value


def load_cases(directory: Path | str = CASES_DIR) -> list[Case]:
    """Every case of every ``*.json`` file in ``directory``, in file then listed order; names are unique."""
    cases, seen = [], {}
    for path in sorted(Path(directory).glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: expected \"format\": \"{FORMAT}\", found {doc.get('format')!r}")
        for raw in doc["cases"]:
            missing = [k for k in ("name", "op", "doc", "source", "args") if k not in raw]
            if missing or ("expected" in raw) == ("raises" in raw):
                raise ValueError(f"{path}: case {raw.get('name')!r} lacks {missing or 'exactly one of expected/raises'}")
            if raw["name"] in seen:
                raise ValueError(f"{path}: case name {raw['name']!r} is also used in {seen[raw['name']]}")
            seen[raw["name"]] = path.name
            cases.append(Case(raw["name"], raw["op"], raw["doc"], raw["source"], doc["family"], raw))
    return cases


def compare(got, expected, atol: float, rtol: float, where: str = "result") -> tuple[list[str], float, float]:
    """Compare a return value with an expected one.

    Returns ``(problems, max_abs_error, max_rel_error)``; ``problems`` is empty when they agree.
    """
    problems: list[str] = []
    worst = [0.0, 0.0]

    def walk(g, e, at):
        if isinstance(e, np.ndarray):
            if not isinstance(g, np.ndarray):
                problems.append(f"{at}: expected an array of shape {e.shape}, got {type(g).__name__}")
                return
            if g.shape != e.shape:
                problems.append(f"{at}: expected shape {e.shape}, got {g.shape}")
                return
            if np.issubdtype(e.dtype, np.integer):
                if not np.array_equal(g, e):
                    problems.append(f"{at}: integer values differ")
                return
            _numbers(np.asarray(g, dtype=np.float64), e, at)
        elif e is None:
            if g is not None:
                problems.append(f"{at}: expected None, got {type(g).__name__}")
        elif isinstance(e, tuple):
            if not isinstance(g, (tuple, list)) or len(g) != len(e):
                problems.append(f"{at}: expected a tuple of {len(e)} values, got {type(g).__name__}")
                return
            for i, (gi, ei) in enumerate(zip(g, e)):
                walk(gi, ei, f"{at}[{i}]")
        elif isinstance(e, dict):
            if not isinstance(g, dict):
                problems.append(f"{at}: expected a dict, got {type(g).__name__}")
                return
            for k, ev in e.items():
                if k not in g:
                    problems.append(f"{at}: missing key {k!r}")
                else:
                    walk(g[k], ev, f"{at}[{k!r}]")
        elif isinstance(e, float) or (isinstance(e, int) and not isinstance(e, bool) and isinstance(g, float)):
            _numbers(np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64), at)
        elif g != e:
            problems.append(f"{at}: expected {e!r}, got {g!r}")

    def _numbers(g, e, at):
        if g.shape != e.shape:
            problems.append(f"{at}: expected shape {e.shape}, got {g.shape}")
            return
        nan_e, nan_g = np.isnan(e), np.isnan(g)
        if np.any(nan_e != nan_g):
            problems.append(f"{at}: NaN where none is expected, or a number where NaN is expected")
        ok = ~(nan_e | nan_g)
        same_inf = (g == e) & ok  # equal infinities have an error of 0, not inf - inf = nan
        diff = np.where(same_inf, 0.0, np.abs(g - e))[ok]
        if diff.size:
            rel = diff / np.maximum(np.abs(e[ok]), np.finfo(np.float64).tiny)
            worst[0] = max(worst[0], float(diff.max()))
            worst[1] = max(worst[1], float(np.where(diff == 0, 0.0, rel).max()))
            bad = diff > atol + rtol * np.abs(e[ok])
            if np.any(bad):
                k = int(np.argmax(bad))
                problems.append(
                    f"{at}: {int(bad.sum())} of {diff.size} values differ; first at flat index {k}: "
                    f"got {g[ok][k]!r}, expected {e[ok][k]!r}"
                )

    walk(got, expected, where)
    return problems, worst[0], worst[1]


@dataclass
class CaseResult:
    """What running one case against one implementation gave."""

    case: Case
    passed: bool
    problems: list[str]
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0


def run_case(case: Case, fn: Callable[..., Any], convert_input: Callable | None = None) -> CaseResult:
    """Call ``fn`` on the case's arguments and judge the result. Never raises for the implementation's
    errors: an unexpected exception is a failure carrying its message.

    ``convert_input`` maps each float array before the call (for example to float32).
    """
    args, kwargs = case.args(), case.kwargs()
    if convert_input is not None:
        args = [convert_input(a) if isinstance(a, np.ndarray) else a for a in args]
        kwargs = {k: convert_input(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    expected_error = case.raw.get("raises")
    try:
        got = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the implementation under test may raise anything
        if expected_error and any(cls.__name__ == expected_error for cls in type(exc).__mro__):
            match = case.raw.get("match")
            if match and match not in str(exc):
                return CaseResult(case, False, [f"raised {type(exc).__name__} without {match!r}: {exc}"])
            return CaseResult(case, True, [])
        return CaseResult(case, False, [f"raised {type(exc).__name__}: {exc}"])
    if expected_error:
        return CaseResult(case, False, [f"expected {expected_error}, but the call returned normally"])
    problems, abs_err, rel_err = compare(got, decode_expected(case.raw["expected"]), case.atol, case.rtol)
    for position, value in case.raw.get("after", {}).items():
        more, a, r = compare(args[int(position)], decode_expected(value), case.atol, case.rtol,
                             where=f"argument {position} after the call")
        problems += more
        abs_err, rel_err = max(abs_err, a), max(rel_err, r)
    return CaseResult(case, not problems, problems, abs_err, rel_err)
