"""The conformance matrix: every installed implementation against the spec, op by op, as one Markdown file.

:func:`run_matrix` loads each target of :data:`~cnnconform.targets.BUILTIN_TARGETS` that is installed
(refcnn, fastcnn, PyTorch, ONNX Runtime, TensorFlow, JAX), runs :func:`cnnconform.checker.conform` on it in
the widest float dtype it computes in (``float64``, or the adapter's ``DTYPE``), and records why each call
it declined was declined. :func:`render_markdown` turns that into ``specs/conformance-matrix.md``: a table
op by implementation (*pass*, *FAIL*, *cannot express* with its reason), every failure with its smallest
case, and the versions of everything that ran. The text depends only on the seed, the number of
randomized calls and the versions (no timings, no dates), so a regenerated file differs from the committed
one only when an implementation's behaviour does. :func:`write_atomically` writes it in one step.

Why the checker is not changed for this: declines are recorded by wrapping each target function, which
sees the ``NotImplementedError`` before the checker turns it into a skip.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cnnconform.checker import Options, conform
from cnnconform.report import Report
from cnnconform.targets import BUILTIN_TARGETS, SPEC_OPS, Target, TargetError, load_target

__all__ = ["Column", "Matrix", "run_matrix", "render_markdown", "write_atomically", "DEFAULT_OUT"]

#: Where ``cnn conform-matrix`` writes by default (relative to the current folder).
DEFAULT_OUT = Path("specs") / "conformance-matrix.md"


@dataclass
class Column:
    """One implementation: its report, the reasons of its declined calls, why it offers no function for
    some ops; or, when it cannot be loaded, ``missing`` with the reason."""

    name: str  # the target word: refcnn, torch, ...
    label: str = ""  # the target's NAME, with its version
    dtype: str = "float64"
    tolerance: float = 0.0
    report: Report | None = None
    declined: dict[str, Counter] = field(default_factory=dict)  # op -> reason -> calls
    not_offered: dict[str, str] = field(default_factory=dict)
    missing: str = ""


@dataclass
class Matrix:
    columns: list[Column]
    examples: int
    seed: int
    ops: tuple[str, ...]
    command: str = ""
    versions: dict[str, str] = field(default_factory=dict)


def _recording_declines(target: Target, declined: dict[str, Counter]) -> Target:
    """The target with each function wrapped to count, by reason, the calls it declines."""

    def wrap(op: str, fn: Callable) -> Callable:
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except NotImplementedError as exc:
                declined.setdefault(op, Counter())[_general_reason(str(exc) or "not implemented")] += 1
                raise

        call.__name__ = op
        return call

    functions = {op: wrap(op, fn) for op, fn in target.functions.items()}
    return Target(target.name, functions, target.checks_arguments, target.spec_messages, target.not_offered,
                  target.dtype)


_NUMBERS = re.compile(r"[\(\[][-\d, ()\[\]]*[\)\]]|(?<==)-?\d+")


def _general_reason(message: str) -> str:
    """A decline's message without the call's values (after "; got ", tuples of numbers, ``=3``), so that one
    rule reads as one reason."""
    message = message.split("; got ")[0].split("\n")[0].strip()
    return _NUMBERS.sub("…", message)


def run_matrix(targets=BUILTIN_TARGETS, *, examples: int = 25, seed: int = 0, ops=SPEC_OPS,
               progress: Callable[[str], None] | None = None) -> Matrix:
    """Run each of ``targets`` (names of built-in targets, or :class:`Target` objects) and collect the columns.

    Every target is loaded before any runs: Hypothesis draws literal constants from the modules loaded, so
    importing an adapter between two runs would change the later runs' draws. A target that cannot be loaded
    becomes a column with ``missing`` set."""
    say = progress or (lambda _text: None)
    columns, loaded = [], []
    for name in targets:
        column = Column(name.name if isinstance(name, Target) else name)
        try:
            target = name if isinstance(name, Target) else load_target(name)
        except TargetError as exc:
            column.missing = str(exc)
            say(f"{name}: not run: {exc}")
        else:
            column.label, column.dtype, column.not_offered = target.name, target.dtype, dict(target.not_offered)
            loaded.append((column, target))
        columns.append(column)
    for column, target in loaded:
        start = time.perf_counter()
        options = Options(dtype=column.dtype, examples=examples, seed=seed, ops=tuple(ops))
        column.tolerance = options.tol
        column.report = conform(_recording_declines(target, column.declined), options)
        totals = column.report.totals()
        say(f"{column.name}: {totals['run']} cases run, {totals['failed']} failed, {totals['skipped']} skipped "
            f"({time.perf_counter() - start:.0f} s)")
    return Matrix(columns, examples, seed, tuple(ops), versions=_versions())


def _project_version() -> str:
    """This project's version: the installed distribution's, else the checkout's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("cnn-ref-fast")
    except metadata.PackageNotFoundError:
        pass
    try:
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "unknown"


def _versions() -> dict[str, str]:
    import hypothesis

    versions = {"cnn-ref-fast (refcnn, fastcnn)": _project_version(), "Python": platform.python_version(),
                "NumPy": np.__version__, "Hypothesis": hypothesis.__version__,
                "platform": f"{platform.system()} {platform.machine()}"}
    numba = sys.modules.get("numba")
    if numba is not None:
        versions["Numba"] = numba.__version__
    return versions


# ---------------------------------------------------------------------------------------------------
# Markdown


class _Notes:
    """Numbered notes in order of first use: the same text gets the same number."""

    def __init__(self, prefix: str):
        self.prefix, self.texts = prefix, {}

    def ref(self, text: str) -> str:
        number = self.texts.setdefault(text, len(self.texts) + 1)
        return f"{self.prefix}{number}"


@dataclass
class _Cell:
    kind: str  # "pass", "pass, part declined", "FAIL", "cannot express", "not run"
    text: str


def _cell(column: Column, op: str, reasons: _Notes, failures: _Notes, failure_texts: dict) -> _Cell:
    row = next(r for r in column.report.rows if r.op == op)
    declined = column.declined.get(op, Counter())
    why = [reasons.ref(reason) for reason in sorted(declined)]
    if not row.offered:
        return _Cell("cannot express", f"cannot express ({reasons.ref(column.not_offered.get(op, 'not offered'))})")
    if row.failed:
        refs = []
        for failure in row.failures:
            ref = failures.ref(f"{column.name}/{op}/{failure.case}")
            failure_texts[ref] = (column, row, failure)
            refs.append(ref)
        return _Cell("FAIL", f"**FAIL** ({', '.join(refs)})")
    if row.run == 0:
        return _Cell("cannot express", f"cannot express ({', '.join(why) or 'no case ran'})")
    if declined:
        return _Cell("pass, part declined", f"pass, part declined ({', '.join(why)})")
    return _Cell("pass", "pass")


def _error(value: float) -> str:
    return f"{value:.1e}" if value else "0"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(matrix: Matrix) -> str:
    """The matrix file: how it was made, the summary, the table, the reasons, the failures, the versions."""
    ran = [c for c in matrix.columns if c.report is not None]
    reasons, failures = _Notes("r"), _Notes("F")
    failure_texts: dict = {}
    table = {op: [_cell(c, op, reasons, failures, failure_texts) for c in ran] for op in matrix.ops}
    lines = [
        "# Conformance matrix: implementations against the specification, op by op",
        "",
        "Generated by `cnnconform/matrix.py`; do not edit by hand. Regenerate with:",
        "",
        "```",
        matrix.command or f"cnn conform-matrix --examples {matrix.examples} --seed {matrix.seed}",
        "```",
        "",
        f"Each implementation runs the named cases of `specs/cases/*.json` and {matrix.examples} randomized calls "
        f"per op (seed {matrix.seed}), judged against refcnn in float64 (`specs/adapter.md`). **pass**: every "
        "case run agreed within the tolerance; **pass, part declined**: some calls were declined by the "
        "adapter (the implementation cannot express those argument values; reasons below); **FAIL**: a "
        "disagreement, listed with its smallest case under *Disagreements*; **cannot express**: the "
        "implementation offers no such function, or declined every call. What each disagreement means, and "
        "whether the spec or the implementation is wrong, is in [implementations.md](implementations.md).",
        "",
        "| implementation | dtype, tolerance | ops offered | pass | pass, part declined | FAIL | cannot express |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, column in enumerate(ran):
        kinds = Counter(table[op][index].kind for op in matrix.ops)
        offered = sum(r.offered for r in column.report.rows)
        lines.append(f"| {column.label} | {column.dtype}, {column.tolerance:g} | {offered} | {kinds['pass']} | "
                     f"{kinds['pass, part declined']} | {kinds['FAIL']} | {kinds['cannot express']} |")
    for column in matrix.columns:
        if column.report is None:
            lines.append(f"| {column.name} | not installed | | | | | |")
    float32 = [c.label for c in ran if c.dtype != "float64"]
    if float32:
        lines += ["", f"Run in float32 (its kernels lack float64 for some ops, so the whole column uses float32 "
                      f"and the float32 tolerance): {', '.join(float32)}."]
    missing = [c for c in matrix.columns if c.report is None]
    if missing:
        lines += [""] + [f"Not run: {c.name}: {_escape(c.missing)}" for c in missing]
    lines += ["", "## The matrix", "", "| op | " + " | ".join(c.name for c in ran) + " |",
              "|---|" + "---|" * len(ran)]
    for op in matrix.ops:
        lines.append(f"| `{op}` | " + " | ".join(cell.text for cell in table[op]) + " |")
    lines += ["", "## Reasons (cannot express, declined)", ""]
    for text, number in reasons.texts.items():
        lines.append(f"* **r{number}**: {_escape(text)}")
    lines += ["", "## Disagreements", ""]
    if not failure_texts:
        lines.append("None.")
    for ref in sorted(failure_texts, key=lambda r: int(r[1:])):
        lines += _failure_lines(ref, *failure_texts[ref])
    lines += ["", "## Versions", "", "| implementation or package | version |", "|---|---|"]
    for column in ran:
        lines.append(f"| {column.name} | {column.label} |")
    for name, version in matrix.versions.items():
        lines.append(f"| {name} | {version} |")
    return "\n".join(lines) + "\n"


def _named_case_code(name: str) -> str:
    """The named case as pasteable Python (``impl`` for the target), or "" when it is too long to show."""
    from cnnconform import strategies
    from cnnconform.cases import load_cases

    case = next((c for c in load_cases() if c.name == name), None)
    if case is None:
        return ""
    code = strategies.Call(case.op, tuple(case.args()), case.kwargs()).code()
    return code if len(code) <= 1500 else ""


def _failure_lines(ref: str, column: Column, row, failure) -> list[str]:
    what = "smallest failing randomized call (shrunk by Hypothesis)" if failure.case == "random" else \
        f"named case `{failure.case}` (`specs/cases/`)"
    code = failure.code or _named_case_code(failure.case)
    lines = [f"### {ref}: {column.name}, `{failure.op}`: {what}", "",
             f"Largest error on this op: {_error(row.max_abs_error)} absolute, {_error(row.max_rel_error)} "
             f"relative ({column.dtype}, tolerance {column.tolerance:g}).", ""]
    for problem in failure.problems[:4]:
        lines.append(f"* {_escape(problem[:400])}")
    if code:
        lines += ["", "```python", code.rstrip(), "```"]
    lines.append("")
    return lines


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

