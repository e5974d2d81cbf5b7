"""The conform targets of real implementations (ONNX Runtime, TensorFlow, JAX) and the conformance matrix.

Each adapter is held against the spec's named cases (``specs/cases/*.json``: hand-worked or PyTorch-made
values, computed by neither the adapter nor the library it wraps) for a few ops it offers; declines must be
counted as skipped, never as failures. The matrix writer is checked on a tiny run whose verdicts are known
in advance (refcnn, and a fake implementation with one deliberate bug and one decline). Optional packages
are imported with ``pytest.importorskip``; TensorFlow (slow to import) is imported once, by a module fixture.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

from cnnconform.checker import Options, conform
from cnnconform.matrix import render_markdown, run_matrix, write_atomically
from cnnconform.targets import TargetError, load_target, target_from_namespace


def _named_only(target, ops, dtype="float64"):
    """The report of the named cases alone (no randomized calls): fast, and judged on fixed values."""
    report = conform(target, Options(dtype=dtype, examples=0, ops=ops))
    return {row.op: row for row in report.rows}


def _assert_all_pass(rows):
    for op, row in rows.items():
        assert row.offered, op
        assert row.run > 0, f"{op}: no named case ran"
        assert row.failed == 0, (op, [f.problems for f in row.failures])


@pytest.fixture(scope="module")
def jax_target():
    pytest.importorskip("jax")
    return load_target("jax")


@pytest.fixture(scope="module")
def tf_target():
    pytest.importorskip("tensorflow")
    return load_target("tensorflow")


@pytest.fixture(scope="module")
def ort_target():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    return load_target("onnxruntime")


def test_jax_adapter_passes_named_cases(jax_target):
    _assert_all_pass(_named_only(jax_target, ("conv1d", "conv1d_backward", "conv_transpose1d", "avg_pool2d",
                                              "relu_backward", "softmax")))


def test_jax_adapter_declines_ceil_mode_as_skipped(jax_target):
    rows = _named_only(jax_target, ("max_pool1d",))
    assert rows["max_pool1d"].skipped > 0 and rows["max_pool1d"].failed == 0
    with pytest.raises(NotImplementedError, match="ceil mode"):
        jax_target.functions["max_pool1d"](np.zeros((1, 1, 5)), 2, ceil_mode=True)


def test_jax_adapter_leaves_x64_off_globally(jax_target):
    import jax
    import jax.numpy as jnp

    out = jax_target.functions["relu"](np.array([-1.0, 2.0]))
    assert out.dtype == np.float64 and list(out) == [0.0, 2.0]
    assert jnp.asarray(np.ones(1)).dtype == np.float32 or jax.config.jax_enable_x64  # left as it was


def test_tensorflow_adapter_passes_named_cases(tf_target):
    _assert_all_pass(_named_only(tf_target, ("conv2d", "max_pool2d", "relu", "relu_backward", "softmax",
                                             "mse_loss")))


def test_tensorflow_adapter_same_padding_is_tensorflow_same(tf_target):
    # spec 'same', k=2, n=3: one padding cell, at the end (TensorFlow's SAME, specs/shapes-and-padding.md):
    # windows [1, 2], [2, 3], [3, pad] -> with ones as weights 3, 5, 3
    got = tf_target.functions["conv1d"](np.array([[[1.0, 2.0, 3.0]]]), np.ones((1, 1, 2)), padding="same")
    np.testing.assert_array_equal(got, [[[3.0, 5.0, 3.0]]])


def test_tensorflow_adapter_declines_what_it_cannot_express(tf_target):
    with pytest.raises(NotImplementedError, match="alpha"):
        tf_target.functions["elu"](np.zeros(2), alpha=0.5)
    rows = _named_only(tf_target, ("avg_pool2d",))  # divisor_override and ceil-mode cases are declined
    assert rows["avg_pool2d"].skipped > 0 and rows["avg_pool2d"].failed == 0


def test_onnxruntime_adapter_passes_named_cases(ort_target):
    _assert_all_pass(_named_only(ort_target, ("conv2d", "max_pool1d", "avg_pool1d", "softmax", "nll_loss"),
                                 dtype="float32"))


def test_onnxruntime_adapter_declines_float64_conv(ort_target):
    with pytest.raises(NotImplementedError, match="float32 only"):
        ort_target.functions["conv1d"](np.zeros((1, 1, 3)), np.zeros((1, 1, 2)))
    rows = _named_only(ort_target, ("conv1d",))
    assert rows["conv1d"].run == 0 and rows["conv1d"].skipped > 0


def test_onnxruntime_adapter_indices_are_per_plane(ort_target):
    # two planes of [[1, 4], [3, 2]]: the maximum sits at flat index 1 of each plane (PyTorch's convention)
    x = np.tile(np.array([[1.0, 4.0], [3.0, 2.0]], dtype=np.float32), (1, 2, 1, 1))
    values, indices = ort_target.functions["max_pool2d"](x, 2, return_indices=True)
    assert values.ravel().tolist() == [4.0, 4.0] and indices.ravel().tolist() == [1, 1]


# ---------------------------------------------------------------------------------------------------
# Missing packages


def test_missing_package_is_a_target_error_naming_the_extra(monkeypatch):
    monkeypatch.delitem(sys.modules, "cnnconform.adapters.jax_adapter", raising=False)
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax now raises ImportError
    with pytest.raises(TargetError, match=r"the jax target needs JAX.*install the 'jax' extra"):
        load_target("jax")


# ---------------------------------------------------------------------------------------------------
# The matrix


def _fake_target():
    """relu as the spec says; leaky_relu with the slope 1 at 0 (ReLU'(0)-style bug); sigmoid declined."""
    fake = types.SimpleNamespace(
        NAME="fake 0.1",
        CHECKS_ARGUMENTS=False,
        NOT_OFFERED={"tanh": "the fake has no tanh"},
        relu=lambda x: np.maximum(x, 0.0),
        leaky_relu=lambda x, negative_slope=0.01: np.where(x >= 0, x, negative_slope * x),
        leaky_relu_backward=lambda g, x, negative_slope=0.01: np.where(x >= 0, g, negative_slope * g),
    )

    def sigmoid(x):
        raise NotImplementedError("the fake declines sigmoid; got (1, 2)")

    fake.sigmoid = sigmoid
    return target_from_namespace(fake, "fake")


def test_matrix_table_for_a_tiny_run(tmp_path):
    ops = ("relu", "leaky_relu", "leaky_relu_backward", "sigmoid", "tanh")
    matrix = run_matrix(("refcnn", _fake_target()), examples=3, seed=0, ops=ops)
    text = render_markdown(matrix)
    assert text == render_markdown(matrix)
    assert "| op | refcnn | fake 0.1 |" in text
    assert "| `relu` | pass | pass |" in text
    assert "| `leaky_relu` | pass | pass |" in text
    assert "| `leaky_relu_backward` | pass | **FAIL** (F1" in text
    assert "| `sigmoid` | pass | cannot express (r1) |" in text  # every call declined
    assert "| `tanh` | pass | cannot express (r2) |" in text  # not offered, with the adapter's reason
    assert "* **r1**: the fake declines sigmoid" in text and "got (1, 2)" not in text
    assert "* **r2**: the fake has no tanh" in text
    assert "impl.leaky_relu_backward(" in text  # the smallest case, as Python
    assert "| cnn-ref-fast (refcnn, fastcnn) | " in text
    # summary: refcnn passes all 5; the fake passes 2, fails 1, cannot express 2
    assert "| fake 0.1 | float64, 1e-09 | 4 | 2 | 0 | 1 | 2 |" in text
    out = tmp_path / "specs" / "matrix.md"
    write_atomically(out, text)
    assert out.read_text(encoding="utf-8") == text and [p.name for p in out.parent.iterdir()] == ["matrix.md"]


def test_matrix_command_writes_the_file(tmp_path):
    from cnn.cli import cnn

    out = tmp_path / "m.md"
    result = CliRunner().invoke(cnn, ["conform-matrix", "refcnn", "--ops", "relu", "--examples", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "cnn conform-matrix refcnn --examples 2 --seed 0 --ops relu" in text
    assert "| `relu_backward` | pass |" in text
    bad = CliRunner().invoke(cnn, ["conform-matrix", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown target" in bad.output
