"""The report of ``cnn conform``: rows of data per op, and its two renderings.

:func:`cnnconform.checker.conform` fills a :class:`Report` (one :class:`OpRow` per op of the spec, each with
its counts, largest errors and :class:`Failure` records); :func:`render_text` prints it for people and
:func:`render_json` for machines. Nothing here runs a case.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Failure", "OpRow", "Report", "render_text", "render_json"]


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
