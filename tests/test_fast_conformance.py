"""Every named case of specs/cases/*.json passes in fastcnn, in float64 and in float32 (format:
specs/cases/README.md; refcnn's run of the same cases is tests/test_conformance.py).

* float64: the inputs as written, the case's own tolerance (``atol``/``rtol``, 1e-9 by default).
* float32: every float input rounded to float32 first (labels stay int64), so fastcnn runs its float32
  kernels. The expected values stay the float64 ones, so the tolerance is loosened to
  ``atol = 1e-4 * max(1, largest finite |expected|)``, ``rtol = 1e-4`` where the case's is tighter: the
  loosest bound the per-family files used (see ``fastcheck.as_float32_case``). The per-family files check
  float32 results much more tightly, against refcnn run on the same float32 values.

Error cases must raise the named error (and ``match``) in both dtypes.
"""

import pytest

from fastcheck import fastcnn_op, run_case_in_float32
from cnnconform.cases import load_cases, run_case

CASES = load_cases()


def test_cases_exist_for_every_family():
    """A family dropped from specs/cases would silently leave fastcnn unchecked here."""
    families = {case.family for case in CASES}
    assert {"conv", "pool", "activations", "dense", "dropout", "norm", "losses", "optim", "shapes", "augment"} <= families


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fastcnn_passes_case_in_float64(case):
    result = run_case(case, fastcnn_op(case.op))
    assert result.passed, f"{case.name} ({case.doc}), float64:\n  " + "\n  ".join(result.problems)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fastcnn_passes_case_in_float32(case):
    result = run_case_in_float32(case, fastcnn_op(case.op))
    assert result.passed, f"{case.name} ({case.doc}), float32:\n  " + "\n  ".join(result.problems)
