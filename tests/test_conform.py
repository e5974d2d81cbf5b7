"""`cnn conform`: clean passes for correct engines, every deliberately wrong implementation caught with its
smallest failing call, usage errors exit 2 (click's CliRunner; tiny --examples budgets)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings

import refcnn
from cli import cnn
import cnnconform as conform
from cnnconform import strategies

ROOT = Path(__file__).resolve().parent.parent
WRONG = ROOT / "tests" / "wrong_impls"


def run(*args):
    return CliRunner().invoke(cnn, ["conform", *map(str, args)])


def load_module(path):
    """The wrong implementation as a module, to replay the printed reproduction against it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(code: str, impl):
    """Run the pasteable reproduction against ``impl`` and against refcnn: (its result, refcnn's)."""
    results = []
    for module in (impl, refcnn):
        namespace = {"impl": module}
        exec(code, namespace)  # noqa: S102 - the code conform printed, which is the point of the test
        results.append(namespace["result"])
    return tuple(results)


# ---------------------------------------------------------------------------------------------------
# Correct implementations pass


def test_refcnn_passes_every_op():
    result = run("refcnn", "--examples", 2)
    assert result.exit_code == 0, result.output
    assert "64 of 64 ops offered" in result.output
    assert "0 failed" in result.output and result.output.rstrip().endswith("PASSED")


def test_json_report_has_one_object_per_op():
    result = run("refcnn", "--ops", "conv1d,relu,same_padding", "--examples", 3, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [row["op"] for row in data["ops"]] == ["conv1d", "conv1d_backward", "relu", "relu_backward", "same_padding"]
    conv1d = data["ops"][0]
    assert conv1d["run"] == conv1d["passed"] >= 3 + 4 and conv1d["failed"] == 0  # 3 random, 4 named cases
    assert data["passed"] is True and data["totals"]["failed"] == 0


def test_fastcnn_runs_at_every_stage():
    # ops fastcnn does not have yet are skipped, the others must pass
    result = run("fastcnn", "--ops", "conv2d,max_pool2d,relu,sgd_step", "--examples", 3, "--dtype", "float32")
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output


def test_torch_passes_on_the_ops_it_offers():
    pytest.importorskip("torch")
    ops = "conv2d,conv_transpose1d,max_pool2d,avg_pool2d,batch_norm,adam_step"
    result = run("torch", "--ops", ops, "--examples", 3)
    assert result.exit_code == 0, result.output
    assert "11 of 11 ops offered" in result.output


def test_torch_adapter_skips_what_torch_cannot_express():
    torch_adapter = pytest.importorskip("cnnconform.adapters.torch_adapter")
    x = np.arange(3.0).reshape(1, 1, 3)
    with pytest.raises(NotImplementedError, match="reflect"):
        torch_adapter.conv1d(x, np.ones((1, 1, 1)), padding=3, padding_mode="reflect")
    with pytest.raises(NotImplementedError, match="keras|momentum form"):
        torch_adapter.sgd_step(np.ones(2), np.ones(2), None, momentum=0.5, momentum_form="keras")
    target = conform.load_target("torch")
    assert not target.offers("dropout") and not target.checks_arguments


def test_student_example_passes():
    result = run(ROOT / "examples" / "numpy_student.py", "--examples", 10)
    assert result.exit_code == 0, result.output
    assert "4 of 64 ops offered" in result.output


def test_float32_results_are_judged_with_the_float32_tolerance():
    result = run("refcnn", "--ops", "conv2d", "--dtype", "float32", "--examples", 3, "--json")
    data = json.loads(result.output)
    assert data["tolerance"] == conform.DEFAULT_TOLERANCE["float32"] and data["passed"]


# ---------------------------------------------------------------------------------------------------
# Wrong implementations are caught, with the smallest failing call


WRONG_IMPLS = [
    # file, op, examples, what the minimal failure must say
    ("flipped_kernel.py", "conv2d", 10, "values differ"),
    ("same_wrong_side.py", "conv2d", 200, "values differ"),
    ("ceil_without_last_window_rule.py", "max_pool1d", 200, "expected shape"),
    ("avg_counts_padding.py", "avg_pool2d", 30, "values differ"),
    ("max_pool_last_tie.py", "max_pool2d_backward", 20, "values differ"),
    ("raises.py", "relu", 5, "raised RuntimeError: kernel launch failed"),
    ("wrong_shape.py", "relu", 5, "expected shape"),
    ("wrong_dtype.py", "relu", 5, "dtype float64 or wider, got dtype float32"),
]


@pytest.mark.parametrize("name, op, examples, message", WRONG_IMPLS, ids=[w[0] for w in WRONG_IMPLS])
def test_wrong_implementation_is_caught_with_a_minimal_case(name, op, examples, message):
    target = conform.load_target(str(WRONG / name))
    report = conform.conform(target, conform.Options(examples=examples, ops=conform.select_ops(op)))
    assert not report.passed
    row = next(r for r in report.rows if r.op == op)
    shrunk = [f for f in row.failures if f.case == "random"]
    assert len(shrunk) == 1, conform.render_text(report)
    assert any(message in problem for problem in shrunk[0].problems), shrunk[0].problems
    assert f"result = impl.{op}(" in shrunk[0].code
    # the printed call is small: a handful of numbers, not the arrays of a random draw
    assert shrunk[0].code.count(".0") < 25, shrunk[0].code
    # and it reproduces the failure when pasted
    if "raised" not in message:
        got, expected = replay(shrunk[0].code, load_module(WRONG / name))
        got = got[0] if isinstance(got, tuple) else got
        expected = expected[0] if isinstance(expected, tuple) else expected
        assert got.shape != expected.shape or got.dtype != expected.dtype or not np.allclose(got, expected)


def test_wrong_implementation_exits_1_and_prints_the_reproduction():
    result = run(WRONG / "flipped_kernel.py", "--ops", "conv2d", "--examples", 8)
    assert result.exit_code == 1, result.output
    assert "FAILED conv2d: smallest failing randomized call" in result.output
    assert "reproduce with:" in result.output and "np.array(" in result.output
    assert "FAILED conv2d: case conv2d/seed-sobel-6x6" in result.output  # named cases are caught too


# ---------------------------------------------------------------------------------------------------
# Usage errors


@pytest.mark.parametrize("args, message", [
    (["no_such_module_xyz"], "cannot import"),
    (["missing.py"], "no such file"),
    (["refcnn", "--ops", "conv2d,conv9d"], "conv9d"),
    (["refcnn", "--dtype", "float16"], "float16"),
    (["refcnn", "--examples", "-1"], "-1"),
    (["json"], "offers none of the spec's functions"),
])
def test_usage_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_select_ops_brings_the_backward_along():
    assert conform.select_ops("max_pool2d") == ("max_pool2d", "max_pool2d_backward")
    assert conform.select_ops("max_pool2d_backward") == ("max_pool2d_backward",)
    with pytest.raises(ValueError, match="conv9d"):
        conform.select_ops("conv9d")


def test_target_that_declines_calls_is_skipped_not_failed():
    def relu(x):
        raise NotImplementedError("not today")

    target = conform.Target("declines", {"relu": relu})
    report = conform.conform(target, conform.Options(examples=5, ops=("relu",)))
    row = report.rows[0]
    assert report.passed and row.run == 0 and row.skipped >= 5


# ---------------------------------------------------------------------------------------------------
# The strategies are reusable by tests


@settings(max_examples=15, deadline=None)
@given(strategies.calls("avg_pool2d_backward"))
def test_strategies_draw_calls_refcnn_accepts(call):
    grad_x = call.run(refcnn)
    assert grad_x.shape == call.args[1].shape


def test_call_code_rebuilds_the_call():
    call = strategies.Call("relu", (np.array([[-1.0, 2.0]]),))
    namespace = {"impl": refcnn}
    exec(call.code(), namespace)  # noqa: S102
    np.testing.assert_array_equal(namespace["result"], [[0.0, 2.0]])
