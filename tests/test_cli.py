"""The command line: `cnn shape` and `cnn demo` (click's CliRunner, no terminal needed)."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cnn

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return CliRunner().invoke(cnn, list(args))


def test_shape_keras_format_reproduces_the_published_summary():
    result = run("shape", "keras-summary", "--format", "keras")
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    for shape in ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)", "(None, 1600)",
                  "(None, 128)", "(None, 10)"]:
        assert any(shape in line for line in lines), shape
    params = [line.split()[-1] for line in lines if line.startswith(("conv2d", "max_pooling", "flatten", "dense"))]
    assert params == ["320", "0", "18496", "0", "0", "204928", "1290"]
    assert "Total params: 225,034" in lines
    assert "Trainable params: 225,034" in lines
    assert "Non-trainable params: 0" in lines


@pytest.mark.parametrize(
    "name, total", [("keras-mnist", "1,199,882"), ("tf-mnist-5x5", "3,274,634"), ("lenet5", "61,706")]
)
def test_shape_table_totals_of_presets(name, total):
    result = run("shape", name)
    assert result.exit_code == 0, result.output
    assert f"Total params: {total}" in result.stdout
    assert "FLOPs" in result.stdout and "KiB" in result.stdout


def test_shape_table_rows_show_receptive_field_and_memory():
    result = run("shape", "keras-summary", "--batch-size", "8", "--dtype-bytes", "2")
    row = next(line for line in result.stdout.splitlines() if line.startswith("4 "))
    assert row.split()[1:4] == ["max_pooling2d_1", "(MaxPool2D)", "64x5x5"]
    assert row.split()[-5:-2] == ["10", "4", "0"]  # RF, jump, start
    assert row.endswith("25.00 KiB")  # 64*5*5 values * 8 samples * 2 bytes = 25,600 bytes


def test_shape_json_and_csv_parse_back():
    data = json.loads(run("shape", "lenet5", "--format", "json").stdout)
    assert data["totals"]["total_params"] == 61_706
    assert [row["output_shape"] for row in data["rows"]][:4] == [[6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 5, 5]]
    rows = list(csv.DictReader(io.StringIO(run("shape", "lenet5", "--format", "csv").stdout)))
    assert sum(int(row["params"]) for row in rows) == 61_706
    assert rows[0]["receptive_field"] == "5x5"


def test_shape_text_spec_with_input():
    result = run("shape", "conv8k3 same relu, maxpool2, gap, dense4 softmax", "--input", "3x16x16", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["output_shape"] for row in data["rows"]] == [[8, 16, 16], [8, 8, 8], [8], [4]]
    assert data["totals"]["total_params"] == (8 * 3 * 9 + 8) + (4 * 8 + 4)


def test_shape_json_file(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]}))
    result = run("shape", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = csv.DictReader(io.StringIO(result.stdout))
    assert [row["output_shape"] for row in rows] == ["32x26x26", "32x13x13", "5408", "10"]


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_a_layer_that_cannot_fit_exits_2_with_one_line():
    line = _one_line_error(run("shape", "conv8k3, conv8k3, conv8k5 @conv3", "--input", "1x7x7"))
    for word in ["layer 3", "Conv2D 'conv3'", "axis H", "5 cells", "3 + 0 + 0 = 3", "8x3x3"]:
        assert word in line, line
    line = _one_line_error(run("shape", "lenet5", "--input", "1x12x12"))
    assert "layer 3 (Conv2D 'conv2d_1')" in line and "6x4x4" in line


@pytest.mark.parametrize(
    "args, words",
    [
        (["shape", "lenet-6"], ["unknown preset", "lenet5"]),
        (["shape", "lenet"], ["neither a preset"]),
        (["shape", "conv32k3, maxpol2", "--input", "1x28x28"], ["layer 2", "'maxpol2'", "column 11"]),
        (["shape", "missing.json"], ["cannot read missing.json"]),
        (["shape", "keras-summary", "--input", "1x28xx"], ["invalid input shape", "1x28xx"]),
        (["shape", "conv32k3, flatten"], ["--input"]),
        (["shape"], ["missing NETWORK"]),
    ],
)
def test_bad_usage_exits_2_with_one_line(args, words):
    line = _one_line_error(run(*args))
    for word in words:
        assert word in line, line


def test_bad_json_file_exits_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    assert "not valid JSON" in _one_line_error(run("shape", str(path)))
    path.write_text(json.dumps({"input_shape": [1, 8, 8], "layers": [{"type": "Conv2D", "filters": 2}]}))
    assert "kernel_size" in _one_line_error(run("shape", str(path)))


def test_shape_list_names_every_preset():
    result = run("shape", "--list")
    assert result.exit_code == 0
    for name in ["keras-summary", "keras-mnist", "tf-mnist-5x5", "lenet5"]:
        assert name in result.stdout


def test_demo_shows_the_seed_examples():
    result = run("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "0 -1020 -1020     0" in out  # the vertical edge of the 6x6 image
    assert "[[4, 3, 4], [2, 4, 3], [2, 3, 4]]" in out
    assert "[[6, 8], [3, 4]]" in out and "(25%)" in out
    assert "-> 3x3" in out and "-> 5x5" in out
    assert "[0.659, 0.242, 0.099]" in out
    assert "Total params: 225,034" in out


def test_python_cli_py_runs_from_a_checkout():
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "shape", "--list"], capture_output=True, text=True,
                            cwd=ROOT.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "keras-summary" in result.stdout


def test_version_is_the_package_version():
    from importlib import metadata

    import cnn.cli

    result = run("--version")
    assert result.exit_code == 0, result.output
    try:
        expected = metadata.version(cnn.cli.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        expected = next(line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines()
                        if line.startswith("version"))
    assert result.stdout.strip() == f"cnn {expected}"


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    from importlib import metadata

    import cnn.cli

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'\nversion = "{cnn.cli.version()}"\n' in pyproject


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(monkeypatch):
    import cnn.cli.shape as shape_command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shape_command, "build_summary", interrupted)
    result = run("shape", "keras-mnist")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "cnn: error: interrupted"


def test_an_error_quoting_a_control_character_stays_one_line():
    result = run("evaluate", "missing\n\x1b[2J.npz", "--data", "fashion-mnist-small")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "\x1b" not in result.stderr and "missing\\n\\x1b[2J.npz" in lines[0]
