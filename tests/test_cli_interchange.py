"""`cnn export` and `cnn import` end to end (click's CliRunner): a model file to safetensors and back, a PyTorch
state_dict onto --model, and the usage errors (exit status 2, one line)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cnn
from cnn.model import Model, load_model
from cnn.run import read_class_names, save_model


def run(*args):
    return CliRunner().invoke(cnn, [str(a) for a in args])


def _one_line_usage_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnn: error: ") and text in lines[0], result.output


@pytest.fixture
def model_file(tmp_path):
    model = Model("conv4k3 relu, bn, maxpool2, flatten, dense3 softmax", (1, 8, 8), seed=5)
    rng = np.random.default_rng(0)
    model.load_state_arrays({key: (rng.uniform(0.5, 1.5, value.shape) if key.endswith("var")
                                   else rng.normal(0, 0.3, value.shape)).astype(value.dtype)
                             for key, value in model.state_arrays().items()})
    path = tmp_path / "model.npz"
    save_model(model, path, ["cat", "dog", "bird"], "hand-made")
    return model, path


def test_export_safetensors_then_import_gives_the_same_model(tmp_path, model_file):
    model, path = model_file
    out = tmp_path / "m.safetensors"
    result = run("export", path, out)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "5 layers" in result.output and out.exists()
    back = tmp_path / "back.npz"
    result = run("import", out, back)
    assert result.exit_code == 0, result.output
    assert "the network from its metadata" in result.output
    imported = load_model(back)
    assert imported.config() == model.config()
    assert read_class_names(back) == ["cat", "dog", "bird"]
    x = np.random.default_rng(1).normal(size=(4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(imported.forward(x), model.forward(x))


def test_export_refuses_an_existing_file_without_overwrite(tmp_path, model_file):
    _, path = model_file
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"keep me")
    _one_line_usage_error(run("export", path, out), "exists; replace it with --overwrite")
    assert out.read_bytes() == b"keep me"
    assert run("export", path, out, "--overwrite").exit_code == 0
    assert out.read_bytes() != b"keep me"


@pytest.mark.parametrize("args, text", [
    (("export", "{model}", "{tmp}/m.h5"), "expected a file name ending in .safetensors or .onnx"),
    (("export", "{tmp}/missing.npz", "{tmp}/new.safetensors"), "no such model file"),
    (("import", "{tmp}/x.txt", "{tmp}/o.npz"), "expected a file ending in .onnx, .safetensors, .pt, .pth, .keras"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.bin"), "expected a file name ending in .npz"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.npz"), "holds a PyTorch state_dict without a network: give"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.npz", "--input-shape", "1x8x8"), "--input-shape goes with --model"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.npz", "--model", "dense2", "--input-shape", "3", "--data", "x"),
     "--input-shape and --data both give the input shape"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.npz", "--model", "dense2", "--input-shape", "1xx8"),
     "--input-shape: invalid input shape"),
    (("import", "{tmp}/s.safetensors", "{tmp}/o.npz", "--model", "dense5", "--input-shape", "3"),
     "layer 'dense' (Dense) needs weight (5, 3)"),
    (("import", "{tmp}/bad.safetensors", "{tmp}/o.npz"), "not a readable safetensors file"),
    (("import", "{tmp}/m.safetensors", "{tmp}/o.npz", "--model", "dense2"), "--model is for PyTorch state_dicts"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, model_file, args, text):
    from cnn.interchange import safetensors as st

    _, path = model_file
    st.write_safetensors(tmp_path / "s.safetensors", {"fc.weight": np.zeros((2, 3), np.float32),
                                                      "fc.bias": np.zeros(2, np.float32)})
    (tmp_path / "bad.safetensors").write_bytes(b"\x05" + bytes(7) + b"{}")
    assert run("export", path, tmp_path / "m.safetensors").exit_code == 0
    (tmp_path / "x.txt").write_text("hello")
    filled = [a.format(model=path, tmp=tmp_path) for a in args]
    _one_line_usage_error(run(*filled), text)


def test_import_torch_state_dict_onto_model_equals_torch(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 3)).eval()
    with torch.no_grad():
        module[2].running_mean.uniform_(-0.5, 0.5)
        module[2].running_var.uniform_(0.5, 1.5)
    source = tmp_path / "state.pt"
    torch.save(module.state_dict(), source)
    out = tmp_path / "model.npz"
    np.savez(tmp_path / "data.npz", x_train=np.zeros((2, 1, 8, 8), np.float32), y_train=np.array([0, 1]),
             x_test=np.zeros((2, 1, 8, 8), np.float32), y_test=np.array([0, 1]))
    result = run("import", source, out, "--model", "conv4k3 relu, bn, flatten, dense3", "--data", tmp_path / "data.npz")
    assert result.exit_code == 0, result.output
    assert "conv2d <- 0" in result.output and "dense <- 4" in result.output
    x = np.random.default_rng(2).normal(size=(2, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(load_model(out).forward(x), expected, atol=1e-5, rtol=1e-5)


def test_export_writes_class_names_and_network_in_the_metadata(tmp_path, model_file):
    safetensors = pytest.importorskip("safetensors")
    model, path = model_file
    out = tmp_path / "m.safetensors"
    assert run("export", path, out).exit_code == 0
    with safetensors.safe_open(str(out), "np") as handle:
        metadata = handle.metadata()
        assert set(handle.keys()) == set(model.state_arrays())
    assert json.loads(metadata["cnn_model"]) == model.config()
    assert json.loads(metadata["cnn_class_names"]) == ["cat", "dog", "bird"]


def test_export_onnx_then_import_gives_the_same_model_and_onnx_runtime_agrees(tmp_path, model_file):
    """The ONNX path of both commands: ONNX Runtime runs the exported file as our forward does (the final
    softmax is in the graph: probabilities), and importing it back gives the network and arrays exactly."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, path = model_file
    out = tmp_path / "m.onnx"
    result = run("export", path, out)
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(2).normal(size=(3, 1, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(theirs, model.predict(x), rtol=1e-5, atol=1e-6)
    back = tmp_path / "back.npz"
    result = run("import", out, back)
    assert result.exit_code == 0, result.output
    imported = load_model(back)
    assert imported.config() == model.config()
    for key, value in model.state_arrays().items():
        np.testing.assert_array_equal(imported.state_arrays()[key], value)


def test_import_of_a_garbage_onnx_file_is_one_line(tmp_path):
    pytest.importorskip("onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf model at all")
    _one_line_usage_error(run("import", bad, tmp_path / "out.npz"), "bad.onnx")
