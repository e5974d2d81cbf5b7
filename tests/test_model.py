"""cnn.layers and cnn.model: building, initialisation, blocks, whole-model gradients, freezing, files."""

import os

import numpy as np
import pytest

import refcnn
from cnnbase import netspec
from cnnbase.netspec import (
    AvgPool2D, BatchNorm, Conv1D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool1D, GlobalMaxPool2D, MaxPool2D,
    Activation,
)

from cnn import files
from cnn.layers import Concat, Residual, derive_seed, layer_from_dict
from cnn.model import Model, load_model
from tests.gradcheck import assert_close


def small_branchy_layers():
    """Every kind of runtime layer and both blocks, small enough for finite differences."""
    return [
        Conv2D(2, 3, padding="same", padding_mode="reflect", activation="relu"),
        BatchNorm(),
        Residual([Conv2D(2, 3, padding=1, activation="tanh"), Conv2D(2, 3, padding="same")], activation="elu"),
        Concat([[Conv2D(1, 1)], [AvgPool2D(3, strides=1, padding=1), Conv2D(2, 1, dilation=1)]]),
        MaxPool2D(2),
        Dropout(0.3),
        Flatten(),
        Dense(3, activation="softmax"),
    ]


def loss_of(model, x, y, step=3):
    return float(refcnn.cross_entropy(model.forward(x, training=True, step=step), y))


# --------------------------------------------------------------------------------------------------
# Gradient of a whole model


@pytest.mark.parametrize("layers, shape", [
    (small_branchy_layers(), (1, 4, 4)),
    ([Conv1D(2, 2, strides=2, padding=((1, 0),), padding_mode="circular", activation="sigmoid"), BatchNorm(),
      GlobalAvgPool1D(), Dense(3)], (2, 5)),
    ([Conv2D(2, (2, 3), dilation=(1, 2), groups=2, use_bias=False, activation="leaky_relu"), GlobalMaxPool2D(),
      Dense(3, activation="log_softmax")], (2, 4, 6)),
])
def test_whole_model_backward_matches_finite_differences(layers, shape):
    rng = np.random.default_rng(7)
    model = Model(layers, shape, engine="refcnn", seed=3, dtype="float64")
    x = rng.normal(size=(3,) + shape)
    y = np.array([0, 2, 1])
    logits = model.forward(x, training=True, step=3)
    grad_x = model.backward(refcnn.cross_entropy_backward(1.0, logits, y))
    eps = 1e-6
    checked = 0
    for key, layer, name in model.parameters():
        param = layer.params[name]
        analytic = layer.grads[name]
        flat_indices = rng.choice(param.size, size=min(3, param.size), replace=False)
        for flat in flat_indices:
            idx = np.unravel_index(flat, param.shape)
            old = param[idx]
            param[idx] = old + eps
            up = loss_of(model, x, y)
            param[idx] = old - eps
            down = loss_of(model, x, y)
            param[idx] = old
            numeric = (up - down) / (2 * eps)
            assert abs(analytic[idx] - numeric) <= 1e-6 + 1e-5 * abs(numeric), (key, idx, analytic[idx], numeric)
            checked += 1
    for idx in [(0,) + (0,) * len(shape), (2,) + tuple(n - 1 for n in shape)]:
        old = x[idx]
        x[idx] = old + eps
        up = loss_of(model, x, y)
        x[idx] = old - eps
        down = loss_of(model, x, y)
        x[idx] = old
        assert abs(grad_x[idx] - (up - down) / (2 * eps)) <= 1e-6, idx
    assert checked >= len(model.parameters())


# --------------------------------------------------------------------------------------------------
# Building, summary, initialisation


def test_keras_preset_builds_with_the_published_parameter_count():
    model = Model(netspec.PRESETS["keras-mnist"], engine="refcnn", seed=0)
    assert model.count_params() == 1_199_882 == model.summary().total_params
    assert [row.name for row in model.summary().rows][:2] == ["conv2d", "conv2d_1"]
    assert model.layers[0].params["weight"].dtype == np.float32
    assert model.output_activation == "softmax" and model.layers[-1].activation is None


def test_initialisation_is_he_for_relu_layers_glorot_otherwise_and_seeded():
    layers = [Conv2D(8, 3, activation="relu"), Conv2D(8, 3), BatchNorm(), Activation("relu"), Flatten(),
              Dense(10, activation="softmax")]
    model = Model(layers, (3, 8, 8), engine="refcnn", seed=5)
    he = np.sqrt(6 / (3 * 9))
    w0 = model.layers[0].params["weight"]
    assert np.abs(w0).max() <= he and np.abs(w0).max() > 0.9 * he  # uniform fills its range
    w1 = model.layers[1].params["weight"]
    assert np.abs(w1).max() > np.sqrt(6 / (8 * 9 + 8 * 9))  # conv, bn, relu: He, wider than Glorot
    dense = model.layers[-1].params["weight"]
    glorot = np.sqrt(6 / (8 * 4 * 4 + 10))
    assert np.abs(dense).max() <= glorot and np.abs(dense).max() > 0.9 * glorot
    assert not model.layers[0].params["bias"].any()
    same = Model(layers, (3, 8, 8), engine="refcnn", seed=5)
    other = Model(layers, (3, 8, 8), engine="refcnn", seed=6)
    assert np.array_equal(same.layers[0].params["weight"], w0)
    assert not np.array_equal(other.layers[0].params["weight"], w0)


def test_block_summary_counts_and_receptive_field():
    layers = [Residual([Conv2D(4, 3, padding=1), Conv2D(4, 3, padding=1)], [Conv2D(4, 1)], activation="relu")]
    rows = Model(layers, (2, 6, 6), engine="refcnn").summary().rows
    assert rows[0].name == "residual" and rows[0].output_shape == (4, 6, 6)
    assert rows[0].trainable_params == (4 * 2 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 2 + 4)
    assert rows[0].receptive_field == (5, 5) and rows[0].start == (-2, -2)


def test_residual_without_projection_names_the_mismatch():
    with pytest.raises(netspec.NetSpecError, match=r"layer 1 \(Residual 'residual'\).*shortcut"):
        Model([Residual([Conv2D(4, 3, padding=1)])], (2, 6, 6), engine="refcnn")


def test_concat_refuses_branches_of_different_sizes():
    with pytest.raises(netspec.NetSpecError, match="one spatial size"):
        Model([Concat([[Conv2D(1, 1)], [Conv2D(1, 3)]])], (1, 5, 5), engine="refcnn")


def test_block_configs_round_trip_through_json():
    block = Residual([Conv2D(4, 3, padding="same"), BatchNorm()], [Conv2D(4, 1, strides=1)], activation="relu",
                     name="res1")
    assert layer_from_dict(block.to_dict()) == block
    concat = Concat([[Conv2D(1, 1)], [MaxPool2D(3, strides=1, padding=1)]])
    assert layer_from_dict(concat.to_dict()) == concat


def test_block_arguments_are_checked():
    with pytest.raises(TypeError, match="body"):
        Residual([1, 2])
    with pytest.raises(ValueError, match="branches"):
        Concat([[Conv2D(1, 1)]])


def test_derive_seed_depends_on_every_part():
    seeds = {derive_seed(0, layer, step) for layer in range(3) for step in range(3)}
    assert len(seeds) == 9
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3) != derive_seed(2, 2, 3)


# --------------------------------------------------------------------------------------------------
# Forward behaviour


def test_predict_is_softmax_of_the_logits_and_eval_skips_dropout():
    model = Model([Flatten(), Dropout(0.5), Dense(4, activation="softmax")], (1, 3, 3), engine="refcnn", seed=2)
    x = np.random.default_rng(0).normal(size=(5, 1, 3, 3)).astype(np.float32)
    logits = model.forward(x)
    probabilities = model.predict(x)
    assert_close(probabilities, refcnn.softmax(logits.astype(np.float64), dim=1), atol=1e-6, rtol=1e-6, what="predict")
    assert np.array_equal(model.forward(x), logits)  # evaluation: no dropout, deterministic
    assert not np.array_equal(model.forward(x, training=True, step=0), model.forward(x, training=True, step=1))
    assert np.array_equal(model.forward(x, training=True, step=4), model.forward(x, training=True, step=4))


def test_frozen_batch_norm_uses_running_statistics():
    model = Model([BatchNorm(), Flatten(), Dense(2)], (2, 2, 2), engine="refcnn", dtype="float64")
    bn = model.layers[0]
    bn.buffers["running_mean"][:] = [0.5, -1.0]
    bn.buffers["running_var"][:] = [2.0, 0.25]
    x = np.random.default_rng(1).normal(size=(4, 2, 2, 2))
    model.freeze("batch_normalization")
    assert np.array_equal(model.forward(x, training=True), model.forward(x, training=False))
    assert bn.buffers["running_mean"].tolist() == [0.5, -1.0]
    model.unfreeze("batch_normalization")
    assert not np.allclose(model.forward(x, training=True), model.forward(x, training=False))
    assert bn.buffers["running_mean"].tolist() != [0.5, -1.0]


def test_freezing_a_block_freezes_its_layers():
    model = Model([Residual([Conv2D(1, 1)]), Flatten(), Dense(2)], (1, 2, 2), engine="refcnn")
    model.freeze("residual")
    assert [key for key, _, _ in model.parameters(trainable_only=True)] == ["dense/weight", "dense/bias"]
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        model.freeze("nope")


def test_input_is_checked_naming_the_shapes():
    model = Model([Flatten(), Dense(2)], (1, 2, 2), engine="refcnn")
    with pytest.raises(ValueError, match=r"\(N, 1, 2, 2\).*\(3, 2, 2\)"):
        model.forward(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match="x"):
        model.forward(np.zeros((3, 1, 2, 2), dtype=np.int64))


def test_engine_missing_ops_is_refused_by_name():
    import types

    partial = types.SimpleNamespace(**{name: getattr(refcnn, name) for name in refcnn.__all__ if name != "conv2d"},
                                    __name__="partial")
    model = Model([Conv2D(1, 1), Flatten(), Dense(2)], (1, 2, 2), engine=partial)
    with pytest.raises(RuntimeError, match="has no conv2d"):
        model.check_engine()


# --------------------------------------------------------------------------------------------------
# Files


def test_save_and_load_round_trip(tmp_path):
    model = Model(small_branchy_layers(), (1, 4, 4), engine="refcnn", seed=4)
    model.freeze("conv2d")
    model.layers[1].buffers["running_var"][:] = [3.0, 4.0]
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path, engine="refcnn")
    x = np.random.default_rng(2).normal(size=(2, 1, 4, 4)).astype(np.float32)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.config() == model.config() and not loaded.get_layer("conv2d").trainable
    with np.load(path, allow_pickle=False) as archive:
        assert archive[files.JSON_KEY].dtype.kind == "U"


def test_load_rejects_a_wrong_shape_naming_the_layer(tmp_path):
    path = tmp_path / "model.npz"
    Model([Conv2D(2, 3), Flatten(), Dense(3)], (1, 5, 5), engine="refcnn").save(path)
    other = Model([Conv2D(4, 3), Flatten(), Dense(3)], (1, 5, 5), engine="refcnn")
    before = {k: v.copy() for k, v in other.state_arrays().items()}
    with pytest.raises(files.CheckpointError, match=r"layer 'conv2d' \(Conv2D\): param 'weight' has shape "
                                                         r"\(2, 1, 3, 3\).*needs \(4, 1, 3, 3\)"):
        other.load_weights(path)
    assert all(np.array_equal(before[k], v) for k, v in other.state_arrays().items())  # nothing half-loaded


def test_load_refuses_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a zip")
    with pytest.raises(files.CheckpointError, match="not a readable model file"):
        load_model(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __json__=np.array([{"model": 1}], dtype=object))
    with pytest.raises(files.CheckpointError, match="pickled.npz"):
        load_model(pickled)
    with pytest.raises(files.CheckpointError, match="no such model file"):
        load_model(tmp_path / "missing.npz")


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.npz"]  # the temporary file is gone too


# --------------------------------------------------------------------------------------------------
# PyTorch as an independent oracle


def test_forward_and_gradients_agree_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    model = Model([Conv2D(3, 3, strides=2, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
                   Dense(4, activation="softmax")], (2, 8, 8), engine="refcnn", dtype="float64")
    x, y = rng.normal(size=(3, 2, 8, 8)), np.array([0, 3, 1])
    logits = model.forward(x, training=True)
    model.backward(refcnn.cross_entropy_backward(1.0, logits, y))
    conv, dense = model.layers[0], model.layers[3]
    t = {name: torch.tensor(value, requires_grad=True) for name, value in
         {"cw": conv.params["weight"], "cb": conv.params["bias"], "dw": dense.params["weight"],
          "db": dense.params["bias"]}.items()}
    f = torch.nn.functional
    h = f.max_pool2d(f.relu(f.conv2d(torch.tensor(x), t["cw"], t["cb"], stride=2, padding=1)), 2)
    z = f.linear(h.flatten(1), t["dw"], t["db"])
    loss = f.cross_entropy(z, torch.tensor(y))
    loss.backward()
    assert_close(logits, z.detach().numpy(), atol=1e-12, rtol=1e-12, what="logits")
    for name, layer, key in (("cw", conv, "weight"), ("cb", conv, "bias"), ("dw", dense, "weight"), ("db", dense, "bias")):
        assert_close(layer.grads[key], t[name].grad.numpy(), atol=1e-12, rtol=1e-10, what=name)


def test_blocks_are_netspecs_and_nest_inside_models(tmp_path):
    import cnn.layers as L

    assert L.Residual is netspec.Residual and L.Concat is netspec.Concat
    assert L.layer_from_dict is netspec.layer_from_dict
    # a block inside a block: named by netspec, built and saved like any other layer
    inner = Residual([Conv2D(2, 3, padding=1)])
    layers = [Concat([[inner], [Conv2D(2, 1)]]), Flatten(), Dense(2)]
    model = Model(layers, (2, 3, 3), engine="refcnn", seed=1)
    assert [layer.name for layer in model.all_layers()][:4] == [
        "concat", "concat/branch0/residual", "concat/branch0/residual/body/conv2d", "concat/branch1/conv2d"]
    assert model.summary().total_params == model.count_params()
    path = tmp_path / "m.npz"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 3)).astype(np.float32)
    assert np.array_equal(load_model(path, engine="refcnn").forward(x), model.forward(x))


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
def test_an_empty_batch_through_batch_norm(engine):
    """Model.forward promises (0, classes) for no samples; a batch norm used to pass the empty array to the
    engine's op, which refuses a zero-sized axis. In a pass that does not train it now gives an empty output,
    and its backward no gradient (zeros), as the other layers do."""
    model = Model("conv8k3p1 nobias, bn, relu, residual(conv8k3p1, bn) relu, gap, dense3", (1, 6, 6), seed=0,
                  engine=engine)
    x = np.zeros((0, 1, 6, 6), np.float32)
    assert model.predict(x).shape == (0, 3)
    assert model.forward(x).shape == (0, 3)
    assert model.backward(np.zeros((0, 3), np.float32)).shape == x.shape
    norms = [layer for layer in model.all_layers() if "running_mean" in layer.buffers]
    assert len(norms) == 2 and all(not layer.grads["weight"].any() for layer in norms)


KEEPS_NOTHING = ("conv8k3p1 nobias, bn, relu, residual(conv8k3p1 nobias, bn, relu, conv8k3p1 nobias, bn) relu, "
                 "conv8k3 relu, maxpool2, dropout0.3, flatten, dense5")


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
def test_a_pass_that_keeps_nothing_for_a_backward(engine):
    """``Model.forward(..., backward=False)`` (evaluate, predict): the logits of a pass that keeps its
    activations, bit for bit, through residual blocks, fused batch norms, a fused conv-ReLU-pooling and dropout;
    afterwards no layer holds an activation (the input is freed with the caller's last reference), and a
    backward is refused, naming the cause, until a pass that keeps them, after which it is the usual one."""
    import weakref

    model = Model(KEEPS_NOTHING, (3, 10, 10), seed=3, engine=engine)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 10, 10)).astype(np.float32)
    grad = rng.normal(size=(4, 5)).astype(np.float32)
    want = model.forward(x)
    want_grad = model.backward(grad)
    kept = weakref.ref(x)
    assert np.array_equal(model.forward(x, backward=False), want)
    assert all(getattr(layer, name, None) is None for layer in model.all_layers()
               for name in ("_x", "_pre", "_winners", "_saved"))
    with pytest.raises(RuntimeError, match="backward=False and kept nothing to go back through"):
        model.backward(grad)
    copy = x.copy()
    del x
    assert kept() is None  # nothing in the model refers to it
    assert np.array_equal(model.forward(copy), want)
    assert np.array_equal(model.backward(grad), want_grad)
    held = weakref.ref(copy)
    del copy
    assert held() is not None  # a pass that keeps its activations holds its input, as before
    with pytest.raises(TypeError, match="Model.forward: invalid value for argument `backward`"):
        model.forward(np.zeros((1, 3, 10, 10), np.float32), backward=1)
