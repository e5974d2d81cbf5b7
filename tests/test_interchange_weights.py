"""Weights interchange (issue 15): the safetensors format (our reader and writer against the PyPI
``safetensors`` package, both ways; hostile headers), PyTorch state_dicts (our forward against the torch
twin built here, in eval mode, float32, to 1e-5) and Keras 3 ``.keras`` files (our forward against Keras's
``predict`` on the same images in NHWC).

The oracles are independent of the code under test: ``safetensors`` (Hugging Face's reference package),
torch modules written out by hand below, and Keras/TensorFlow. All three are optional extras.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest

from cnn.files import CheckpointError
from cnn.interchange import safetensors as st
from cnn.interchange import torch_state
from cnn.model import Model
from cnnbase.limits import SizeLimitError

#: float32 forwards against PyTorch's: fastcnn computes the 3x3 layers of 16 channels and more by Winograd
#: F(4x4, 3x3) by default, whose float32 rounding is about 14x the direct path's (specs/conv.md, section 8;
#: measured here up to 1.7e-5 relative on keras-mnist's logits). A wrongly mapped weight moves them by O(1).
TOL = 1e-4


def _rng(seed=0):
    return np.random.default_rng(seed)


def _randomise(model: Model, seed=0) -> Model:
    """Every parameter and buffer random (running variances positive), so that no mapping mistake can hide
    behind ones and zeros."""
    rng = _rng(seed)
    arrays = {}
    for key, value in model.state_arrays().items():
        new = rng.normal(0.0, 0.2, value.shape)
        if key.endswith("running_var"):
            new = rng.uniform(0.5, 1.5, value.shape)
        arrays[key] = new.astype(value.dtype)
    model.load_state_arrays(arrays)
    return model


# ---------------------------------------------------------------------------------------------------------------
# (a) safetensors


def test_safetensors_round_trip_keeps_model_and_arrays(tmp_path):
    model = _randomise(Model("conv4k3 relu, bn, residual(conv4k3 same, bn) relu, gap, dense3", (2, 7, 7)))
    path = tmp_path / "m.safetensors"
    st.save_model(model, path)
    back = st.load_model(path, engine="refcnn")
    assert back.config() == model.config()
    for key, value in model.state_arrays().items():
        np.testing.assert_array_equal(back.state_arrays()[key], value)
    x = _rng(1).normal(size=(3, 2, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(back.forward(x), model.forward(x), atol=1e-6)


def test_our_writer_read_by_the_reference_package(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    model = _randomise(Model("keras-mnist"))
    path = tmp_path / "m.safetensors"
    st.save_model(model, path)
    theirs = safetensors_numpy.load_file(str(path))
    assert set(theirs) == set(model.state_arrays())
    for key, value in model.state_arrays().items():
        np.testing.assert_array_equal(theirs[key], value)
    with safe_open(str(path), "np") as handle:
        assert json.loads(handle.metadata()[st.MODEL_KEY]) == model.config()


def test_reference_writer_read_by_ours(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = _rng(2)
    arrays = {"f32": rng.normal(size=(3, 4)).astype(np.float32), "f64": rng.normal(size=(2,)),
              "f16": rng.normal(size=(5,)).astype(np.float16), "i64": np.arange(6, dtype=np.int64).reshape(3, 2),
              "u8": np.arange(4, dtype=np.uint8), "bool": np.array([True, False]),
              "empty": np.zeros((0, 3), np.float32),
              "scalar": np.array(2.5, np.float32)}
    path = tmp_path / "t.safetensors"
    safetensors_numpy.save_file(arrays, str(path), metadata={"who": "reference"})
    ours, metadata = st.read_safetensors(path)
    assert metadata == {"who": "reference"}
    assert set(ours) == set(arrays)
    for key, value in arrays.items():
        assert ours[key].dtype == value.dtype and ours[key].shape == value.shape
        np.testing.assert_array_equal(ours[key], value)


def test_bfloat16_from_the_reference_writer_widens_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = torch.tensor([1.0, -2.5, 3.140625, 0.0], dtype=torch.bfloat16)
    path = tmp_path / "b.safetensors"
    safetensors_torch.save_file({"w": values}, str(path))
    ours, _ = st.read_safetensors(path)
    np.testing.assert_array_equal(ours["w"], values.float().numpy())


def _file(tmp_path, header, data=b"", *, length=None, name="h.safetensors"):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path = tmp_path / name
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


_GOOD = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("header, data, message", [
    ({"w": {"dtype": "F12", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "dtype 'F12' is not one read here"),
    ({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}}, bytes(8), "shape must be a list of ints"),
    ({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, bytes(8), "shape must be a list of ints"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, bytes(8), "data_offsets must be [begin, end]"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}, bytes(12),
     "hold 12 bytes; shape (2,) of F32 needs 8"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8), "hold -8 bytes"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8), "go past the end of the data (8 bytes)"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "overlaps the tensor before it"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "leaves a gap at byte 0"),
    (_GOOD, bytes(12), "bytes left over after them"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}}, bytes(8), "expected an object with"),
    ({"w": [1, 2]}, bytes(8), "expected an object with"),
    ({"__metadata__": {"a": 1}, **_GOOD}, bytes(8), "__metadata__ must be an object of strings"),
    ([1, 2], b"", "the header must be a JSON object"),
    (b"{not json", b"", "the header is not valid JSON"),
    (b'{"w": 1, "w": 2}', b"", "appears twice"),
    (b"\xff\xfe{}", b"", "the header is not UTF-8"),
    (b'{"w": ' + b"[" * 50 + b"]" * 50 + b"}", b"", "nests deeper than 4 levels"),
    (b"[" * 100000 + b"]" * 100000, b"", "nested thousands of levels deep"),
])
def test_hostile_header_fields_each_get_their_message(tmp_path, header, data, message):
    path = _file(tmp_path, header, data)
    with pytest.raises(CheckpointError) as caught:
        st.read_safetensors(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


def test_header_length_beyond_the_file_is_refused(tmp_path):
    path = _file(tmp_path, _GOOD, bytes(8), length=10**15)
    with pytest.raises(CheckpointError, match="header length says 1000000000000000 bytes but only"):
        st.read_safetensors(path)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="it has 2 bytes; the header length alone takes 8"):
        st.read_safetensors(short)


def test_huge_tensor_is_refused_from_the_header_before_allocation(tmp_path, monkeypatch):
    # 10**12 float64 values claimed by a 200-byte file: refused by CNN_MAX_ARRAY_BYTES from the header alone.
    header = {"w": {"dtype": "F64", "shape": [10**6, 10**6], "data_offsets": [0, 8 * 10**12]}}
    path = _file(tmp_path, header)
    with pytest.raises(SizeLimitError, match="CNN_MAX_ARRAY_BYTES"):
        st.read_safetensors(path)
    # Within the limit but beyond the file: the offsets are refused, still before any allocation.
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "16T")
    with pytest.raises(CheckpointError, match="go past the end of the data"):
        st.read_safetensors(path)


def test_a_file_without_our_description_says_to_give_the_network(tmp_path):
    path = tmp_path / "plain.safetensors"
    st.write_safetensors(path, {"fc.weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(CheckpointError, match="holds no network description.*--model"):
        st.load_model(path)


# ---------------------------------------------------------------------------------------------------------------
# (b) PyTorch state_dicts -> our forward == torch's (eval mode, float32)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_random_(module, torch, seed):
    """Random weights and running statistics in a torch module (no download, no torchvision)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2)
    return module.eval()


def _keras_mnist_twin(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10))


RESNET = ("conv8k3 same, bn, relu, residual(conv8k3 same, bn, relu, conv8k3 same, bn) relu, "
          "residual(conv16k3s2p1, bn, relu, conv16k3 same, bn | shortcut: conv16k1s2, bn) relu, gap, dense10")


def _resnet_twin(torch):
    """The twin of :data:`RESNET`, named as torchvision's ResNet names its modules (conv1, bn1, layer1.0.conv1,
    ..., layer2.0.downsample.0, fc), so that the names sort otherwise than they run."""
    nn = torch.nn

    class Basic(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
                               if stride != 1 else None)

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, 1, 1)
            self.bn1 = nn.BatchNorm2d(8)
            self.layer1 = nn.Sequential(Basic(8, 8, 1))
            self.layer2 = nn.Sequential(Basic(8, 16, 2))
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


SERIES = "conv1d8k5 relu, bn, maxpool1d2, conv1d16k3 same relu, gap1d, dense3"


def _series_twin(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(2, 8, 5), nn.ReLU(), nn.BatchNorm1d(8), nn.MaxPool1d(2),
                         nn.Conv1d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(16, 3))


CASES = {
    "keras-mnist": ("keras-mnist", None, _keras_mnist_twin, (2, 1, 28, 28)),
    "resnet": (RESNET, "3x12x12", _resnet_twin, (2, 3, 12, 12)),
    "series": (SERIES, "2x40", _series_twin, (3, 2, 40)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_torch_state_dict_gives_torch_forward(tmp_path, torch, case, suffix):
    description, shape, twin, x_shape = CASES[case]
    module = _torch_random_(twin(torch), torch, seed=3)
    path = tmp_path / f"state{suffix}"
    if suffix == ".pt":
        torch.save(module.state_dict(), path)
    else:
        safetensors_torch = pytest.importorskip("safetensors.torch")
        safetensors_torch.save_file(module.state_dict(), str(path))
    model, mapped = torch_state.load_state_dict(path, description, shape)
    x = _rng(4).normal(size=x_shape).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expected, atol=TOL, rtol=TOL)
    assert len(mapped.pairs) == sum(1 for layer in model.all_layers() if layer.params or layer.buffers)


def test_torchvision_names_map_in_run_order_from_safetensors(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "r.safetensors"
    safetensors_torch.save_file(_resnet_twin(torch).state_dict(), str(path))
    _, mapped = torch_state.load_state_dict(path, RESNET, "3x12x12")
    assert [prefix for _, prefix in mapped.pairs] == [
        "conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2",
        "layer2.0.conv1", "layer2.0.bn1", "layer2.0.conv2", "layer2.0.bn2", "layer2.0.downsample.0",
        "layer2.0.downsample.1", "fc"]
    assert all(key.endswith("num_batches_tracked") for key in mapped.ignored) and len(mapped.ignored) == 6


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_state_dict_shape_mismatch_names_the_layer_and_both_shapes(tmp_path, torch, suffix):
    nn = torch.nn
    module = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(9216, 100), nn.ReLU(), nn.Linear(100, 10))
    path = tmp_path / f"bad{suffix}"
    if suffix == ".pt":
        torch.save(module.state_dict(), path)
    else:
        pytest.importorskip("safetensors.torch").save_file(module.state_dict(), str(path))
    with pytest.raises(CheckpointError) as caught:
        torch_state.load_state_dict(path, "keras-mnist")
    text = str(caught.value)
    assert "layer 'dense' (Dense)" in text and "weight (128, 9216)" in text and "weight (100, 9216)" in text


def test_pt_file_without_torch_is_one_line_and_never_unpickled(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    path = tmp_path / "state.pt"
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError) as caught:
        torch_state.read_state_dict(path)
    assert "needs PyTorch, which is not installed" in str(caught.value) and "\n" not in str(caught.value)


def test_pt_file_with_a_pickled_object_is_refused_by_weights_only(tmp_path, torch):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "obj": _Evil()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        torch_state.read_state_dict(path)
    assert not _Evil.ran


class _Evil:
    ran = False

    def __reduce__(self):
        return (_Evil._run, ())

    @staticmethod
    def _run():
        _Evil.ran = True
        return None


# ---------------------------------------------------------------------------------------------------------------
# (c) Keras 3 .keras files -> our forward on NCHW == Keras's predict on NHWC


def _keras_random_(model, seed):
    """Random weights in every layer of a Keras model (moving variances positive)."""
    rng = _rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.2, w.shape))
                               .astype("float32") for w in layer.weights])
    return model


def _keras_models(keras):
    """The seeds' model (Sequential, as mnist_cnn.py), a model with batch norm, 'same' padding, strides,
    zero padding and average pooling, and a functional 1-D model with a residual Add and a Concatenate."""
    L = keras.layers
    seeds = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                              L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Dropout(0.25), L.Flatten(),
                              L.Dense(128, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax")])
    norm = keras.Sequential([keras.Input((9, 7, 3)), L.Conv2D(4, 3, strides=2, padding="same", name="stem"),
                             L.BatchNormalization(epsilon=1e-3), L.Activation("relu"),
                             L.ZeroPadding2D(((1, 0), (0, 2))), L.AveragePooling2D(2, padding="same"),
                             L.MaxPooling2D(2, strides=1, padding="same"), L.Flatten(), L.Dense(5),
                             L.Activation("softmax")])
    inp = keras.Input((20, 3))
    a = L.Conv1D(8, 3, padding="causal", dilation_rate=2, name="c1")(inp)
    a = L.BatchNormalization()(a)
    b = L.Conv1D(8, 1, name="c2")(inp)
    s = L.Activation("relu")(L.Add(name="join")([a, b]))  # named: Keras numbers default names per process
    c = L.Concatenate(name="cat")([s, inp])
    out = L.Dense(4, activation="tanh")(L.GlobalMaxPooling1D()(L.Conv1D(6, 5, strides=2, padding="same")(c)))
    series = keras.Model(inp, out)
    return {"seeds": (seeds, (2, 28, 28, 1)), "norm": (norm, (3, 9, 7, 3)), "series": (series, (2, 20, 3))}


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Each Keras model saved as .keras with the input and Keras's own predictions (TensorFlow imported once)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    folder = tmp_path_factory.mktemp("keras")
    out = {}
    for seed, (name, (model, shape)) in enumerate(_keras_models(keras).items()):
        _keras_random_(model, seed)
        path = folder / f"{name}.keras"
        model.save(path)
        x = _rng(10 + seed).normal(size=shape).astype(np.float32)
        out[name] = (path, x, model(x, training=False).numpy())
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3.15 on NumPy 2: its own __array__ call
@pytest.mark.parametrize("name", ["seeds", "norm", "series"])
def test_keras_file_gives_keras_predictions(keras_files, name):
    from cnn.interchange.keras_file import load_keras

    path, x, expected = keras_files[name]
    model, report = load_keras(path)
    x_ours = np.ascontiguousarray(np.moveaxis(x, -1, 1))  # NHWC -> NCHW (NLC -> NCL)
    got = model.predict(x_ours) if model.output_activation else model.forward(x_ours)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)
    assert report.names


def test_keras_names_kept_and_blocks_named_after_the_merge(keras_files):
    from cnn.interchange.keras_file import load_keras

    model, report = load_keras(keras_files["norm"][0])
    assert model.layers[0].name == "stem"
    model, report = load_keras(keras_files["series"][0])
    names = dict(report.names)
    assert names["c1"] == "cat/branch0/join/body/c1" and names["c2"] == "cat/branch0/join/shortcut/c2"
    assert [layer.config.type for layer in model.layers] == ["Concat", "Conv1D", "GlobalMaxPool1D", "Dense"]


# ---------------------------------------------------------------------------------------------------------------
# (d) errors from .keras files (written here with zipfile and h5py: no TensorFlow needed)


def _keras_zip(path, layers, weights=None, *, model_class="Sequential"):
    h5py = pytest.importorskip("h5py")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        group = h5.create_group("layers")
        for key, arrays in (weights or {}).items():
            variables = group.create_group(key).create_group("vars")
            for index, array in enumerate(arrays):
                variables.create_dataset(str(index), data=array)
    config = {"class_name": model_class, "config": {"name": "m", "layers": layers}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
    return path


_INPUT = {"class_name": "InputLayer", "config": {"batch_shape": [None, 6, 4], "name": "input_layer"}}


def test_unsupported_keras_layer_is_one_line_naming_class_and_layer(tmp_path):
    from cnn.interchange.keras_file import UnsupportedKeras, load_keras

    lstm = {"class_name": "LSTM", "config": {"name": "my_lstm", "units": 3}}
    path = _keras_zip(tmp_path / "lstm.keras", [_INPUT, lstm])
    with pytest.raises(UnsupportedKeras) as caught:
        load_keras(path)
    text = str(caught.value)
    assert "layer 'my_lstm' of class LSTM cannot be imported" in text and "\n" not in text


@pytest.mark.parametrize("layer, text", [
    ({"class_name": "Conv1D", "config": {"name": "cf", "filters": 2, "kernel_size": [3],
                                         "data_format": "channels_first"}}, "data_format channels_first"),
    ({"class_name": "BatchNormalization", "config": {"name": "bn", "axis": 1},
      "build_config": {"input_shape": [None, 6, 4]}}, r"axis 1; the channel axis \(-1\) is read"),
    ({"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "leaky_relu"}},
     "activation 'leaky_relu'"),
])
def test_unsupported_keras_arguments_name_the_layer(tmp_path, layer, text):
    from cnn.interchange.keras_file import UnsupportedKeras, load_keras

    path = _keras_zip(tmp_path / "arg.keras", [_INPUT, {"class_name": "Flatten", "config": {"name": "f"}}, layer]
                      if layer["class_name"] == "Dense" else [_INPUT, layer])
    with pytest.raises(UnsupportedKeras, match=text) as caught:
        load_keras(path)
    assert f"layer '{layer['config']['name']}' of class {layer['class_name']}" in str(caught.value)


def test_keras_weights_of_the_wrong_shape_name_the_layer(tmp_path):
    from cnn.interchange.keras_file import load_keras

    conv = {"class_name": "Conv1D", "config": {"name": "conv", "filters": 2, "kernel_size": [3], "use_bias": False}}
    path = _keras_zip(tmp_path / "bad.keras", [_INPUT, conv], {"conv1d": [np.zeros((3, 5, 2), np.float32)]})
    expected = r"layer 'conv' \(Conv1D\): weight of shape \(2, 5, 3\).*needs \(2, 4, 3\)"
    with pytest.raises(CheckpointError, match=expected):
        load_keras(path)


def test_keras_zip_bomb_is_refused_from_the_declared_size(tmp_path, monkeypatch):
    from cnn.interchange.keras_file import read_keras

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        archive.writestr("model.weights.h5", bytes(16 * 1024**2))  # 16 MiB of zeros in a file of about 16 KiB
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "1M")
    with pytest.raises(SizeLimitError, match=r"member model.weights.h5 \(its declared size\) needs 16.00 MiB"):
        read_keras(path)


def test_keras_file_that_is_no_zip_is_one_line(tmp_path):
    from cnn.interchange.keras_file import read_keras

    path = tmp_path / "not.keras"
    path.write_bytes(b"plain text")
    with pytest.raises(CheckpointError, match="is not a Keras 3 .keras file"):
        read_keras(path)
