"""Every named case of specs/cases/*.json passes in refcnn (format: specs/cases/README.md)."""

import pytest

import refcnn
from cnnconform.cases import load_cases, run_case

CASES = load_cases()


def test_cases_exist_for_every_family():
    families = {case.family for case in CASES}
    assert {"conv", "pool", "activations", "dense", "dropout", "norm", "losses", "optim", "shapes", "augment"} <= families


def test_every_case_names_a_refcnn_op():
    unknown = sorted({case.op for case in CASES if not hasattr(refcnn, case.op) and not hasattr(refcnn.shapes, case.op)})
    assert not unknown, f"cases name ops refcnn does not have: {unknown}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refcnn_passes_case(case):
    fn = getattr(refcnn, case.op, None) or getattr(refcnn.shapes, case.op)
    result = run_case(case, fn)
    assert result.passed, f"{case.name} ({case.doc}):\n  " + "\n  ".join(result.problems)
