"""ONNX export and import (issue 15): our forward equals ONNX Runtime's on the exported file, export -> import
gives the model back exactly, plain graphs (onnx.helper, torch.onnx.export) are read, bad files are refused.

The oracles are independent of the code under test: ONNX Runtime running the exported or hand-built graph, and
PyTorch running the torch model the test builds. Random weights (the seeded initialisation, with random biases
and batch-norm statistics), inference mode.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cnn.files import CheckpointError  # noqa: E402
from cnn.interchange.onnx_export import METADATA_KEY, OPSET, export_onnx  # noqa: E402
from cnn.interchange.onnx_import import import_onnx  # noqa: E402
from cnn.model import Model  # noqa: E402
from cnnbase import netspec as ns  # noqa: E402
from cnnbase.limits import SizeLimitError  # noqa: E402


def _randomize(model: Model, seed: int = 0) -> Model:
    """Keep the seeded kernels; draw biases and batch-norm parameters and statistics, so that every array of
    the model matters in the comparison."""
    rng = np.random.default_rng(seed)
    for layer in model.all_layers():
        for store in (layer.params, layer.buffers):
            for name, value in store.items():
                if name == "bias" or name == "running_mean":
                    new = rng.normal(0.0, 0.1, value.shape)
                elif name == "running_var" or (name == "weight" and "running_var" in layer.buffers):
                    new = rng.uniform(0.5, 1.5, value.shape)
                else:
                    continue
                store[name] = new.astype(value.dtype)
    return model


def _ours(model: Model, x: np.ndarray) -> np.ndarray:
    """What the exported graph computes: the network as described, a final softmax included."""
    logits = model.forward(x)
    return model.probabilities(logits) if model.output_activation == "softmax" else logits


def _ort(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _every_layer_kind() -> list:
    """One network with every layer type and convention the exporter spells out."""
    return [
        ns.ZeroPadding2D(((1, 0), (0, 2))),
        ns.Conv2D(8, 3, padding="same", strides=2, activation="relu"),
        ns.Conv2D(8, 3, padding="same_lower", dilation=2, groups=2, padding_mode="reflect"),
        ns.BatchNorm(eps=1e-3),
        ns.Activation("elu"),
        ns.Conv2D(8, (2, 3), padding=((0, 1), (1, 1)), padding_mode="circular", activation="leaky_relu"),
        ns.Conv2D(8, 3, padding=1, padding_mode="replicate", use_bias=False, activation="tanh"),
        ns.MaxPool2D(3, 2, padding=1, ceil_mode=True),
        ns.AvgPool2D(3, 2, padding=1, ceil_mode=True),
        ns.Conv2DTranspose(6, 3, strides=2, padding="same", groups=2, activation="sigmoid"),
        ns.Conv2DTranspose(6, 2, strides=3),
        ns.AvgPool2D(2, 3, padding=((0, 1), (1, 0)), count_include_pad=False),
        ns.ChannelPad((1, 2)),
        ns.Residual([ns.Conv2D(9, 3, padding=1), ns.BatchNorm()], [], activation="relu"),
        ns.Concat([[ns.Conv2D(4, 1)], [], [ns.MaxPool2D(3, 1, padding=1)]]),
        ns.GlobalMaxPool2D(),
        ns.Dropout(0.3),
        ns.Dense(12, activation="log_softmax"),
        ns.BatchNorm(),
        ns.Dense(5, activation="softmax"),
    ]


def _one_d() -> list:
    return [ns.Conv1D(6, 5, padding="same"), ns.MaxPool1D(2, padding=1, ceil_mode=True),
            ns.Conv1DTranspose(4, 3, strides=2, padding=1, output_padding=1), ns.ZeroPadding1D((2, 1)),
            ns.AvgPool1D(3, 2, padding=1), ns.GlobalAvgPool1D(), ns.Dense(3)]


MODELS = {
    "keras-mnist": lambda: Model("keras-mnist", seed=1),
    "resnet20-a": lambda: Model("resnet20-a", seed=2),  # the CIFAR ResNet, option A (ChannelPad) shortcuts
    "resnet1d": lambda: Model("resnet1d", seed=3),
    "every-layer-kind": lambda: Model(_every_layer_kind(), (3, 13, 11), seed=4),
    "one-d-kinds": lambda: Model(_one_d(), (2, 17), seed=5),
    "lenet5-1998": lambda: Model("lenet5-1998", seed=6),  # C3's connection table; a layer named "output"
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model, randomized, exported once: ``{name: (model, path)}``."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name, make in MODELS.items():
        model = _randomize(make())
        path = folder / f"{name}.onnx"
        export_onnx(model, path)
        out[name] = (model, path)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_runtime_equals_our_forward_float32(exported, name):
    model, path = exported[name]
    x = np.random.default_rng(7).normal(size=(3,) + model.input_shape).astype(np.float32)
    ours, theirs = _ours(model, x), _ort(path, x)
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    scale = max(1.0, float(np.abs(ours).max()))
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5 * scale)


def test_onnx_runtime_equals_our_forward_float64(tmp_path):
    # ONNX Runtime 1.32's CPU kernels for Conv, AveragePool and Elu are float32 only ("Could not find an
    # implementation for Conv(11)"); a network of the ops it runs in double is compared tightly.
    model = _randomize(Model([ns.MaxPool2D(2, padding=1), ns.Flatten(), ns.Dense(7, activation="tanh"),
                              ns.BatchNorm(), ns.Activation("relu"), ns.Dense(5, activation="sigmoid"),
                              ns.Dense(4, activation="softmax")], (2, 5, 5), dtype="float64", seed=6))
    export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(8).normal(size=(4, 2, 5, 5))
    theirs = _ort(tmp_path / "m.onnx", x)
    assert theirs.dtype == np.float64
    np.testing.assert_allclose(theirs, _ours(model, x), rtol=1e-12, atol=1e-14)


def test_the_exported_file_is_checked_named_and_described(exported):
    model, path = exported["keras-mnist"]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain == ""] == [OPSET]
    names = {t.name for t in proto.graph.initializer}
    assert {"conv2d.weight", "conv2d_1.weight", "conv2d_1.bias", "dense_1.weight", "dense_1.bias"} <= names
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[METADATA_KEY]) == model.config()
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N" and not batch.HasField("dim_value")  # the batch axis is free
    x = np.zeros((5,) + model.input_shape, np.float32)
    assert _ort(path, x).shape == (5, 10)


@pytest.mark.parametrize("name", list(MODELS))
def test_export_then_import_gives_the_model_back(exported, name):
    model, path = exported[name]
    back = import_onnx(path)
    assert back.config() == model.config()
    ours, theirs = model.state_arrays(), back.state_arrays()
    assert list(theirs) == list(ours)
    for key, value in ours.items():
        assert theirs[key].dtype == value.dtype and np.array_equal(theirs[key], value), key


def test_export_then_import_float64_and_engine(tmp_path):
    model = _randomize(Model("conv4k3 same, bn, relu, maxpool2, flatten, dense3 softmax", (1, 6, 6),
                             dtype="float64", seed=9))
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx", engine="refcnn")
    assert back.engine.__name__ == "refcnn" and back.dtype == np.float64
    x = np.random.default_rng(1).normal(size=(2, 1, 6, 6))
    twin = Model.from_config(model.config(), engine="refcnn")
    twin.load_state_arrays(model.state_arrays())
    np.testing.assert_array_equal(back.forward(x), twin.forward(x))


# --------------------------------------------------------------------------------------------------
# Plain graphs: no metadata


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _plain_graph(rng) -> onnx.ModelProto:
    """A graph as another tool would write it: a stem, a residual join with an identity shortcut, a
    concatenation, global pooling, a MatMul + Add head and a softmax."""
    f = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", pads=[1, 0, 0, 1], group=2,
                         kernel_shape=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="stem_relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="body_conv", auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c2", "g", "beta", "mean", "var"], ["bn"], name="body_bn"),
        helper.make_node("Add", ["bn", "r1"], ["sum"], name="join"),
        helper.make_node("LeakyRelu", ["sum"], ["a"], name="after_join", alpha=0.01),
        helper.make_node("Conv", ["a", "w3", "b3"], ["c3"], name="branch_conv", kernel_shape=[1, 1]),
        helper.make_node("AveragePool", ["a"], ["p"], name="branch_pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1]),
        helper.make_node("Concat", ["c3", "p"], ["cat"], name="cat", axis=1),
        helper.make_node("MaxPool", ["cat"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("GlobalAveragePool", ["m"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("MatMul", ["flat", "wd"], ["mm"], name="head"),
        helper.make_node("Add", ["mm", "bd"], ["logits"], name="head_bias"),
        helper.make_node("Softmax", ["logits"], ["y"], name="probabilities", axis=-1),
    ]
    inits = [_init("w1", f(4, 1, 2, 2)), _init("b1", f(4)), _init("w2", f(4, 4, 3, 3)), _init("g", f(4) + 1),
             _init("beta", f(4)), _init("mean", f(4)), _init("var", np.abs(f(4)) + 0.5), _init("w3", f(3, 4, 1, 1)),
             _init("b3", f(3)), _init("wd", f(7, 5)), _init("bd", f(5))]
    graph = helper.make_graph(nodes, "plain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 7, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_import_a_plain_graph_built_with_onnx_helper(tmp_path):
    proto = _plain_graph(np.random.default_rng(3))
    onnx.checker.check_model(proto, full_check=True)
    path = tmp_path / "plain.onnx"
    path.write_bytes(proto.SerializeToString())
    model = import_onnx(path)
    assert [layer.config.type for layer in model.layers] == [
        "Conv2D", "Residual", "Concat", "MaxPool2D", "GlobalAvgPool2D", "Dense"]
    assert model.configs[0].activation == "relu" and model.configs[1].activation == "leaky_relu"
    assert model.configs[-1].activation == "softmax" and model.output_activation == "softmax"
    assert model.configs[2].branches[1][0] == ns.AvgPool2D(3, 1, padding=1, count_include_pad=False)  # ONNX default
    x = np.random.default_rng(4).normal(size=(3, 2, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(_ours(model, x), _ort(path, x), rtol=1e-5, atol=1e-6)


def _more_ops_graph(rng) -> onnx.ModelProto:
    """The ops the first plain graph leaves out, on a 1-D map: zero and channel Pad, an edge Pad folded into
    the Conv after it, ConvTranspose, GlobalMaxPool kept as a map (a MaxPool over the whole map), Reshape to
    (N, -1) (after a Relu, so not read as global pooling's flatten), Gemm with transB=0 and alpha, Dropout,
    Elu, Sigmoid, LogSoftmax."""
    f = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Pad", ["x", "zpads"], ["z"], name="zero_pad"),
        helper.make_node("Pad", ["z", "cpads", "zero"], ["cp"], name="channel_pad", mode="constant"),
        helper.make_node("Pad", ["cp", "epads"], ["ep"], name="edge_pad", mode="edge"),
        helper.make_node("Conv", ["ep", "w1", "b1"], ["c1"], name="conv", strides=[2]),
        helper.make_node("Elu", ["c1"], ["e"], name="elu"),
        helper.make_node("ConvTranspose", ["e", "wt", "bt"], ["t"], name="deconv", strides=[2], pads=[1, 0],
                         output_padding=[1], dilations=[2]),
        helper.make_node("Sigmoid", ["t"], ["s"], name="sigmoid"),
        helper.make_node("GlobalMaxPool", ["s"], ["g"], name="gmp"),
        helper.make_node("Relu", ["g"], ["gr"], name="relu"),
        helper.make_node("Reshape", ["gr", "shape"], ["flat"], name="flatten"),
        helper.make_node("Dropout", ["flat", "ratio"], ["d"], name="dropout"),
        helper.make_node("Gemm", ["d", "wd", "bd"], ["logits"], name="dense", alpha=0.5, beta=2.0),
        helper.make_node("LogSoftmax", ["logits"], ["y"], name="log_probabilities", axis=1),
    ]
    inits = [_init("zpads", i64(0, 0, 2, 0, 0, 1)), _init("cpads", i64(0, 1, 0, 0, 2, 0)),
             _init("zero", np.float32(0)), _init("epads", i64(0, 0, 1, 0, 0, 2)), _init("w1", f(4, 5, 3)),
             _init("b1", f(4)), _init("wt", f(4, 3, 2)), _init("bt", f(3)), _init("shape", i64(0, -1)),
             _init("ratio", np.float32(0.25)), _init("wd", f(3, 6)), _init("bd", f(6))]
    graph = helper.make_graph(nodes, "more", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 11])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)


def test_import_a_one_d_plain_graph_of_the_other_ops(tmp_path):
    proto = _more_ops_graph(np.random.default_rng(6))
    onnx.checker.check_model(proto, full_check=True)
    path = tmp_path / "more.onnx"
    path.write_bytes(proto.SerializeToString())
    model = import_onnx(path)
    assert [layer.config.type for layer in model.layers] == [
        "ZeroPadding1D", "ChannelPad", "Conv1D", "Conv1DTranspose", "MaxPool1D", "Activation", "Flatten", "Dropout",
        "Dense"]
    assert model.configs[2].padding_mode == "replicate" and model.configs[2].padding == ((1, 2),)
    x = np.random.default_rng(7).normal(size=(3, 2, 11)).astype(np.float32)
    np.testing.assert_allclose(_ours(model, x), _ort(path, x), rtol=1e-5, atol=1e-5)


def test_our_file_without_its_description_is_read_from_the_graph(exported, tmp_path):
    # Another tool may drop the metadata: the graph alone gives the same network (default layer names).
    model, path = exported["keras-mnist"]
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(proto.SerializeToString())
    back = import_onnx(bare)
    assert back.configs == [c for c in model.configs if not isinstance(c, ns.Dropout)]  # Identity: no layer
    x = np.random.default_rng(2).normal(size=(2,) + model.input_shape).astype(np.float32)
    np.testing.assert_allclose(_ours(back, x), _ours(model, x), rtol=1e-6, atol=1e-7)


def test_a_graph_no_block_expresses_is_refused_naming_the_node(tmp_path):
    # x feeds a Relu and a Sigmoid whose outputs are multiplied: a fork that joins at a Mul.
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="left"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="gate"),
             helper.make_node("Mul", ["a", "b"], ["y"], name="gated")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 4, 4])])
    path = tmp_path / "fork.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                       ir_version=9).SerializeToString())
    with pytest.raises(CheckpointError, match=r"join at node 'gated' \(Mul\); a fork must join at an Add"):
        import_onnx(path)


def test_import_a_torch_onnx_export(tmp_path):
    torch = pytest.importorskip("torch")
    # torch 2.13's default exporter (dynamo=True) needs onnxscript, which is not installed here; the
    # TorchScript exporter (dynamo=False) is what runs offline.
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(1, 6, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(6)
            self.body = torch.nn.Sequential(torch.nn.Conv2d(6, 6, 3, padding=1, padding_mode="reflect"),
                                            torch.nn.ReLU(), torch.nn.Conv2d(6, 6, 3, padding=2, dilation=2))
            self.pool = torch.nn.AvgPool2d(2, ceil_mode=True)
            self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(6 * 5 * 5, 4))

        def forward(self, x):
            h = torch.relu(self.bn(self.stem(x)))
            h = torch.relu(self.body(h) + h)
            return self.head(self.pool(h))

    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    net.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net, torch.zeros(1, 1, 9, 9), buffer, dynamo=False, opset_version=OPSET,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        except Exception as error:  # noqa: BLE001 - an exporter that cannot run offline: say so
            pytest.skip(f"torch.onnx.export (TorchScript) does not run here: {error}")
    path = tmp_path / "torch.onnx"
    path.write_bytes(buffer.getvalue())
    model = import_onnx(path)
    x = np.random.default_rng(5).normal(size=(2, 1, 9, 9)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_ours(model, x), expected, rtol=1e-5, atol=1e-5)
    assert any(isinstance(c, ns.Residual) for c in model.configs)


# --------------------------------------------------------------------------------------------------
# Refusals


def _one_node_file(tmp_path, node, inits=(), name="m.onnx"):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 4, 4])],
                              [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, ["n", 2, 4, 4])],
                              initializer=list(inits))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def test_an_unsupported_op_names_the_op_and_the_node(tmp_path):
    path = _one_node_file(tmp_path, helper.make_node("Sin", ["x"], ["y"], name="wobble"))
    with pytest.raises(CheckpointError, match=r"'Sin' \(node 'wobble'\) is not one our layers cover") as info:
        import_onnx(path)
    assert "\n" not in str(info.value)


def test_a_hostile_op_name_stays_on_one_line(tmp_path):
    path = _one_node_file(tmp_path, helper.make_node("Sin\nFAKE LINE", ["x"], ["y"], name="n\r1", domain="my.ops"))
    with pytest.raises(CheckpointError) as info:
        import_onnx(path)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


def test_a_leaky_slope_we_do_not_compute_is_refused(tmp_path):
    path = _one_node_file(tmp_path, helper.make_node("LeakyRelu", ["x"], ["y"], name="lr", alpha=0.2))
    with pytest.raises(CheckpointError, match=r"node 'lr' \(LeakyRelu\): alpha=0.2"):
        import_onnx(path)


def test_an_oversized_initializer_is_refused_before_it_is_allocated(tmp_path):
    # The shape claims 10**12 floats (3.6 TiB) while the file holds 8 bytes: allocating first would fail with a
    # MemoryError or worse; the size check refuses it from the shape alone.
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6], raw_data=b"\0" * 8)
    path = _one_node_file(tmp_path, helper.make_node("Conv", ["x", "w"], ["y"], name="c"), [huge])
    with pytest.raises(SizeLimitError, match=r"initializer 'w' of shape \(1000000, 1000000\)"):
        import_onnx(path)


def test_an_initializer_larger_than_its_bytes_is_refused(tmp_path):
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2, 3, 3], raw_data=b"\0" * 8)
    path = _one_node_file(tmp_path, helper.make_node("Conv", ["x", "w"], ["y"], name="c"), [short])
    with pytest.raises(CheckpointError, match=r"needs 54 values; the file holds 2"):
        import_onnx(path)


def test_external_data_is_refused(tmp_path):
    external = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2, 3, 3],
                           data_location=TensorProto.EXTERNAL)
    entry = external.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    path = _one_node_file(tmp_path, helper.make_node("Conv", ["x", "w"], ["y"], name="c"), [external])
    with pytest.raises(CheckpointError, match="external data"):
        import_onnx(path)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage \x00\x01" * 10, b"PK\x03\x04 not onnx"])
def test_a_garbage_file_is_one_clear_error(tmp_path, content):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"garbage\.onnx is not an ONNX file") as info:
        import_onnx(path)
    assert "\n" not in str(info.value)


def test_a_graph_the_onnx_checker_refuses_is_one_clear_error(tmp_path):
    # The Relu reads a tensor nothing computes: protobuf parses it, the ONNX checker does not accept it.
    path = _one_node_file(tmp_path, helper.make_node("Relu", ["nowhere"], ["y"], name="r"))
    with pytest.raises(CheckpointError, match=r"m\.onnx is not a valid ONNX model: .*nowhere") as info:
        import_onnx(path)
    assert "\n" not in str(info.value)


def test_a_missing_file_and_a_folder_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        import_onnx(tmp_path / "absent.onnx")
    with pytest.raises(CheckpointError, match="a folder"):
        import_onnx(tmp_path)


def test_export_refuses_what_onnx_cannot_say_naming_the_layer(tmp_path):
    # Ours keeps reflecting past n - 1 cells (np.pad's rule); ONNX Runtime's Pad refuses a reflect that long.
    model = Model([ns.Conv2D(2, 5, padding=3, padding_mode="reflect", name="wide"), ns.Flatten()], (1, 3, 3))
    with pytest.raises(CheckpointError, match=r"layer 'wide' \(Conv2D\) cannot be written in ONNX: padding_mode='refl"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ValueError, match=r"export_onnx: invalid value for argument `opset`. Expected 19"):
        export_onnx(Model("flatten, dense2", (3,)), tmp_path / "m.onnx", opset=17)
