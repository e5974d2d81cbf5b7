"""Transfer learning (issue 13): loading by name, freezing, per-layer learning rates, bottleneck features,
data sets of feature vectors, and the command line (``cnn train --init/--freeze``, ``cnn features``).

Expected values are computed independently of the code under test: torch's functional ops for the
features, a hand-written softmax cross-entropy gradient for the SGD step, plain numpy for the files.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from cli import cnn
from cnn import pretrained
from cnn.cli.common import UsageProblem
from cnn.cli.train import check_resume_options
from cnn.data import Dataset, load_npz, parse_classes
from cnn.files import CheckpointError
from cnn.model import Model
from cnn.optimizers import Optimizer
from cnn.options import TrainOptions
from cnn.train import train_step

BASE = "conv2k3 relu, maxpool2, dropout0.5, flatten"


def small(head: str, seed: int, spec: str = BASE) -> Model:
    return Model(f"{spec}, {head}", (1, 6, 6), engine="refcnn", seed=seed, dtype="float64")


# ------------------------------------------------------------------------------------------ load_weights


def test_load_by_name_takes_the_base_and_leaves_a_new_head(tmp_path):
    source = small("dense10", seed=1)
    source.save(tmp_path / "m.npz")
    target = small("dense5", seed=2)
    head_before = target.get_layer("dense").params["weight"].copy()
    report = target.load_weights(tmp_path / "m.npz", by_name=True, skip_mismatch=True)
    assert report.loaded == ("conv2d",)
    assert report.new == ()
    assert [name for name, _ in report.skipped] == ["dense"]
    assert "(10, 8)" in report.skipped[0][1] and "(5, 8)" in report.skipped[0][1]
    np.testing.assert_array_equal(target.get_layer("conv2d").params["weight"],
                                  source.get_layer("conv2d").params["weight"])
    np.testing.assert_array_equal(target.get_layer("dense").params["weight"], head_before)
    assert any(line.split()[:2] == ["dense", "skipped"] for line in report.lines())


def test_load_by_name_reports_layers_the_file_lacks_as_new(tmp_path):
    small("dense3", seed=1).save(tmp_path / "m.npz")
    target = small("dense3, dense4", seed=2)  # dense_1 is not in the file
    report = target.load_weights(tmp_path / "m.npz", by_name=True)
    assert report.loaded == ("conv2d", "dense") and report.new == ("dense_1",) and report.skipped == ()


def test_load_by_name_leaves_excluded_layers_new_even_when_they_match(tmp_path):
    source = small("dense3", seed=1)
    source.save(tmp_path / "m.npz")
    target = small("dense3", seed=2)
    head_before = target.get_layer("dense").params["weight"].copy()
    report = target.load_weights(tmp_path / "m.npz", by_name=True, exclude=["dense"])
    assert report.loaded == ("conv2d",) and report.new == ("dense",)
    np.testing.assert_array_equal(target.get_layer("dense").params["weight"], head_before)
    with pytest.raises(ValueError, match="conv2d, max_pooling2d, dropout, flatten, dense"):
        target.load_weights(tmp_path / "m.npz", by_name=True, exclude=["head"])


def test_load_mismatches_are_errors_naming_layer_and_shapes(tmp_path):
    small("dense10", seed=1).save(tmp_path / "m.npz")
    target = small("dense5", seed=2)
    before = {k: v.copy() for k, v in target.state_arrays().items()}
    with pytest.raises(CheckpointError, match=r"layer 'dense'.*\(10, 8\).*\(5, 8\)"):
        target.load_weights(tmp_path / "m.npz", by_name=True)
    for key, value in target.state_arrays().items():  # nothing half-loaded: conv2d matched but is untouched
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(CheckpointError, match="dense"):
        target.load_weights(tmp_path / "m.npz")  # by topology, as before
    with pytest.raises(ValueError, match="skip_mismatch"):
        target.load_weights(tmp_path / "m.npz", skip_mismatch=True)  # Keras: only with by_name


# ------------------------------------------------------------------------------------------ freezing


def test_freeze_until_freezes_the_prefix_only_and_lists_layers_for_a_bad_name():
    model = small("dense3, dense4", seed=0)
    assert model.freeze_until("flatten") == ["conv2d", "max_pooling2d", "dropout", "flatten"]
    assert [layer.trainable for layer in model.layers] == [False] * 4 + [True, True]
    assert model.frozen_params() == 2 * 9 + 2  # conv2k3 on one channel: weights and biases
    with pytest.raises(ValueError, match="conv2d, max_pooling2d, dropout, flatten, dense, dense_1"):
        model.freeze_until("nosuch")


def test_frozen_weights_are_bit_identical_after_a_step_while_the_others_change(rng):
    model = small("dense3", seed=0)
    model.freeze("conv2d")
    before = {k: v.copy() for k, v in model.state_arrays().items()}
    x, y = rng.random((4, 1, 6, 6)), np.array([0, 1, 2, 1])
    train_step(model, Optimizer("sgd", 0.5), x, y, step=0, lr=0.5)
    after = model.state_arrays()
    assert np.array_equal(after["param/conv2d/weight"], before["param/conv2d/weight"])
    assert np.array_equal(after["param/conv2d/bias"], before["param/conv2d/bias"])
    assert not np.array_equal(after["param/dense/weight"], before["param/dense/weight"])


def test_per_parameter_learning_rates_match_a_hand_computed_sgd_step(rng):
    """Two linear layers, softmax cross-entropy (mean over the batch), plain SGD: the gradient written out
    by hand, the first layer at 0.1 times the rate."""
    model = Model("dense5, dense3", (4,), engine="refcnn", seed=3, dtype="float64")
    w1, b1 = (model.get_layer("dense").params[k].copy() for k in ("weight", "bias"))
    w2, b2 = (model.get_layer("dense_1").params[k].copy() for k in ("weight", "bias"))
    x, y, lr = rng.standard_normal((6, 4)), np.array([0, 2, 1, 1, 0, 2]), 0.3
    h = x @ w1.T + b1
    z = h @ w2.T + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    gz = (p - np.eye(3)[y]) / len(y)
    gh = gz @ w2
    expected = {"dense/weight": w1 - 0.1 * lr * gh.T @ x, "dense/bias": b1 - 0.1 * lr * gh.sum(0),
                "dense_1/weight": w2 - lr * gz.T @ h, "dense_1/bias": b2 - lr * gz.sum(0)}
    optimizer = Optimizer("sgd", lr, lr_multipliers={"dense/weight": 0.1, "dense/bias": 0.1})
    train_step(model, optimizer, x, y, step=0, lr=lr)
    for key, value in expected.items():
        layer, _, name = key.partition("/")
        np.testing.assert_allclose(model.get_layer(layer).params[name], value, rtol=1e-12, atol=1e-14)
    assert Optimizer.from_config(optimizer.config()).lr_multipliers == optimizer.lr_multipliers
    with pytest.raises(ValueError, match="lr_multipliers"):
        Optimizer("sgd", lr_multipliers={"dense/weight": -1.0})


# ------------------------------------------------------------------------------------------ features


def test_features_equal_the_layers_run_by_torch(rng):
    model = small("dense3", seed=4)
    x = rng.random((5, 1, 6, 6))
    conv = model.get_layer("conv2d").params
    t = F.conv2d(torch.from_numpy(x), torch.from_numpy(conv["weight"]), torch.from_numpy(conv["bias"]))
    expected = F.max_pool2d(F.relu(t), 2).flatten(1).numpy()  # dropout: identity in inference
    np.testing.assert_allclose(model.features(x, "flatten"), expected, rtol=1e-12)
    np.testing.assert_allclose(model.features(x, "flatten", batch_size=2), expected, rtol=1e-12)
    assert model.features(x[:0], "flatten").shape == (0, 8)
    with pytest.raises(ValueError, match="conv2d, max_pooling2d, dropout, flatten, dense"):
        model.features(x, "nosuch")


# ------------------------------------------------------------------------------------------ data


def test_feature_vector_files_load_without_the_pixel_rule_and_classes_select(tmp_path):
    x_train = np.array([[0.5, 7.0], [-3.0, 2.0], [1.0, 1.0], [4.0, 0.0]], dtype=np.float32)
    np.savez(tmp_path / "f.npz", x_train=x_train, y_train=np.array([2, 0, 2, 1]),
             x_test=np.zeros((1, 2), np.float32), y_test=np.array([1]), class_names=np.array(["a", "b", "c"]))
    ds = load_npz(tmp_path / "f.npz")
    assert ds.is_features and ds.image_shape == (2,) and "feature vectors of 2 values" in ds.describe()
    np.testing.assert_array_equal(ds.x_train, x_train)
    sub = ds.classes_subset(parse_classes("2,1"), per_class=1)
    assert sub.class_names == ("c", "b")
    np.testing.assert_array_equal(sub.y_train, [0, 1])  # first image of class 2 (row 0), of class 1 (row 3)
    np.testing.assert_array_equal(sub.x_train, x_train[[0, 3]])
    np.savez(tmp_path / "i.npz", x_train=np.ones((2, 2), np.int64), y_train=np.array([0, 1]),
             x_test=np.ones((1, 2), np.int64), y_test=np.array([0]))
    with pytest.raises(ValueError, match="as floats"):
        load_npz(tmp_path / "i.npz")
    assert parse_classes("0-2,5") == (0, 1, 2, 5)
    with pytest.raises(ValueError, match="0-4"):
        parse_classes("4-0")


def test_classes_subset_keeps_image_sets_images():
    x = np.arange(4 * 4, dtype=np.uint8).reshape(4, 1, 2, 2)
    ds = Dataset(x, np.array([0, 1, 1, 0]), x[:2], np.array([1, 0]), ("a", "b"), "t", "test")
    sub = ds.classes_subset((1,))
    assert sub.x_train.shape == (2, 1, 2, 2) and sub.y_test.tolist() == [0] and sub.class_names == ("b",)


# ------------------------------------------------------------------------------------------ command line

TINY = "conv4k3 relu, maxpool2, flatten, dense10 softmax"


def cli(*args):
    return CliRunner().invoke(cnn, [str(a) for a in args])


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A tiny model trained one epoch on 100 images of the shipped sample (all 10 classes)."""
    folder = tmp_path_factory.mktemp("base")
    result = cli("train", "--data", "fashion-mnist-small", "--limit", 100, "--model", TINY, "--epochs", 1,
                 "--threads", 1, "--out", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run" / "model.npz"


def test_cli_init_freeze_and_features_round_trip(base_model, tmp_path):
    result = cli("train", "--data", "fashion-mnist-small", "--limit", 300, "--classes", "5-9", "--per-class", 4,
                 "--model", TINY, "--init", base_model, "--freeze", "conv2d", "--lr-pretrained", 0.5,
                 "--epochs", 1, "--threads", 1, "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["conv2d", "loaded"] for line in lines)
    assert any(line.split()[:2] == ["dense", "skipped"] for line in lines)  # 10 classes there, 5 here
    assert "Non-trainable params: 40 (frozen: 40)" in result.output  # conv4k3 on 1 channel: 4*9 + 4
    assert "20 training" in result.output  # 4 per class of 5 classes
    loaded, trained = np.load(base_model), np.load(tmp_path / "t" / "model.npz")
    for key in ("param/conv2d/weight", "param/conv2d/bias"):
        assert np.array_equal(loaded[key], trained[key])  # frozen: bit-identical
    options = json.loads((tmp_path / "t" / "run.json").read_text())["options"]
    assert (options["freeze"], options["lr_pretrained"], options["classes"]) == ("conv2d", 0.5, "5-9")

    result = cli("features", base_model, "--layer", "flatten", "--data", "fashion-mnist-small", "--limit", 30,
                 "--out", tmp_path / "f.npz", "--threads", 1)
    assert result.exit_code == 0, result.output
    feats = load_npz(tmp_path / "f.npz")
    assert feats.x_train.shape == (30, 4 * 13 * 13) and feats.num_classes == 10
    result = cli("train", "--data", tmp_path / "f.npz", "--model", "dense10 softmax", "--input", 676, "--epochs", 1,
                 "--threads", 1, "--out", tmp_path / "lin")
    assert result.exit_code == 0, result.output
    assert "feature vectors of 676 values" in result.output


@pytest.mark.parametrize("option", ["--freeze", "--freeze-until"])
def test_cli_unknown_layer_names_list_the_layers(base_model, tmp_path, option):
    result = cli("train", "--data", "fashion-mnist-small", "--limit", 20, "--model", TINY, "--init", base_model,
                 option, "conv9", "--epochs", 1, "--out", tmp_path / "t")
    assert result.exit_code == 2
    assert "conv9" in result.output and "conv2d, max_pooling2d, flatten, dense" in result.output
    assert not (tmp_path / "t" / "model.npz").exists()


def test_cli_init_from_a_model_with_no_matching_layer_is_an_error(tmp_path):
    Model("conv8k5 relu, flatten, dense10 softmax", (1, 28, 28), engine="refcnn").save(tmp_path / "other.npz")
    result = cli("train", "--data", "fashion-mnist-small", "--limit", 20, "--model", TINY, "--init",
                 tmp_path / "other.npz", "--epochs", 1, "--out", tmp_path / "t")
    assert result.exit_code == 2
    assert "no layer of it matches" in result.output and "conv2d" in result.output


def test_resume_refuses_a_change_of_the_transfer_options(tmp_path):
    with pytest.raises(UsageProblem, match="--freeze-until"):
        check_resume_options(TrainOptions(freeze_until="flatten"), TrainOptions(), tmp_path)


def test_pretrained_names_resolve_and_unknown_ones_are_listed():
    assert pretrained.resolve("pretrained:fashion-mnist").endswith("fmnist-small-cnn.npz")
    assert pretrained.resolve("some/model.npz") == "some/model.npz"
    with pytest.raises(ValueError, match="fashion-mnist"):
        pretrained.path("imagenet")


def test_the_shipped_model_loads_and_is_the_documented_network():
    from cnn.model import load_model
    from cnnbase import netspec

    model = load_model(pretrained.path("fashion-mnist"), engine="refcnn")
    assert model.input_shape == (1, 28, 28)
    assert [layer.config for layer in model.layers] == netspec.parse_spec(pretrained.SPECS["fashion-mnist"])
    assert model.count_params() == 56_714  # conv 160 + 4,640, dense 51,264 + 650
