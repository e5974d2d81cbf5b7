"""Summaries that show structure (issue 11, item 3) and networks fitted to the data (item 4).

Expected numbers come from torch modules built here (parameter and buffer counts, bilinear resizing) or are
worked out by hand in the comments, never from the code under test.
"""

import json

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cnn import data as datasets
from cnn.cli.evaluate import evaluate
from cnn.cli.predict import predict
from cnn.cli.shape import shape
from cnn.cli.train import params_line, train
from cnn.model import Model
from cnnbase import netspec
from cnnbase.netspec import BatchNorm, Concat, Conv2D, Dense, Flatten, GlobalAvgPool2D, Residual

GROUP = click.Group("cnn", commands={"shape": shape, "train": train, "evaluate": evaluate, "predict": predict})


def run(*args):
    return CliRunner().invoke(GROUP, [str(a) for a in args])


def _block_net():
    """conv, a residual block with a batch-normed body and an identity shortcut, an inception-like concat
    (one branch a nested residual), then the head."""
    return [
        Conv2D(4, 3, padding=1),
        Residual([Conv2D(4, 3, padding=1, activation="relu"), BatchNorm()], activation="relu"),
        Concat([[Conv2D(2, 1)], [Residual([Conv2D(4, 1)])]]),
        Flatten(),
        Dense(3),
    ]


def _torch_block_net():
    """The same network in torch, for its counts: parameters are the trainable ones, the running mean and
    variance the non-trainable ones (torch's num_batches_tracked is no weight, as Keras does not count it)."""
    nn = torch.nn
    return nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 2, 1), nn.Conv2d(4, 4, 1), nn.Linear(6 * 8 * 8, 3)])


def _torch_counts(module):
    trainable = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable + buffers, trainable, buffers


# ---------------------------------------------------------------------------------------------------
# Printing a summary


def test_printing_a_summary_prints_the_table_and_keeps_its_fields():
    model = Model(_block_net(), (1, 8, 8))
    summary = model.summary()
    assert str(summary) == netspec.render_table(summary)
    assert str(summary).splitlines()[0].startswith("Input 1x8x8")
    total, trainable, non_trainable = _torch_counts(_torch_block_net())
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (
        total, trainable, non_trainable)
    assert f"Total params: {total:,}" in str(summary)
    assert len(summary.rows) == 5  # the fields are the dataclass's, blocks one row each


def test_summary_print_opens_blocks(capsys):
    Model(_block_net(), (1, 8, 8)).summary().print(depth=-1)
    assert "concat/branch1/residual/body/conv2d (Conv2D)" in capsys.readouterr().out


def test_train_and_shape_print_the_same_labelled_counts():
    summary = Model(_block_net(), (1, 8, 8)).summary()
    total, trainable, non_trainable = _torch_counts(_torch_block_net())
    line = params_line(summary)
    assert line == (f"Total params: {total:,}  Trainable params: {trainable:,}  "
                    f"Non-trainable params: {non_trainable:,}")
    table = netspec.render_table(summary)
    for label, value in (("Total params", total), ("Trainable params", trainable),
                         ("Non-trainable params", non_trainable)):
        assert f"{label}: {value:,}" in table


# ---------------------------------------------------------------------------------------------------
# Opening blocks


def _names(entries):
    return [e.name for e in entries]


def test_open_blocks_depth_and_paths():
    summary = netspec.summarize(_block_net(), (1, 8, 8))
    assert _names(netspec.open_blocks(summary, 0)) == ["conv2d", "residual", "concat", "flatten", "dense"]
    assert _names(netspec.open_blocks(summary, 1)) == [
        "conv2d", "residual", "residual/body/conv2d", "residual/body/batch_normalization", "concat",
        "concat/branch0/conv2d", "concat/branch1/residual", "flatten", "dense"]
    every = _names(netspec.open_blocks(summary, -1))
    assert "concat/branch1/residual/body/conv2d" in every and len(every) == 10


def test_opened_names_are_the_runtime_layer_names():
    model = Model(_block_net(), (1, 8, 8))
    for entry in netspec.open_blocks(model.summary(), -1):
        assert model.get_layer(entry.name) is not None


def test_connected_view_shows_what_feeds_each_join():
    summary = netspec.summarize(_block_net(), (1, 8, 8))
    feeds = {e.name: e.inputs for e in netspec.open_blocks(summary, -1, joins_last=True)}
    assert feeds["conv2d"] == ("input",)
    assert feeds["residual/body/conv2d"] == ("conv2d",)
    # The join adds the body's last layer and the identity shortcut: the block's input.
    assert feeds["residual"] == ("residual/body/batch_normalization", "conv2d")
    assert feeds["concat/branch0/conv2d"] == ("residual",)
    assert feeds["concat"] == ("concat/branch0/conv2d", "concat/branch1/residual")
    assert feeds["flatten"] == ("concat",)
    order = _names(netspec.open_blocks(summary, -1, joins_last=True))
    assert order.index("residual/body/batch_normalization") < order.index("residual") < order.index("concat")
    text = netspec.render_connected(summary)
    assert "Connected to" in text and "residual/body/batch_normalization[0][0]" in text


def test_expanded_table_counts_each_weight_once():
    summary = netspec.summarize(_block_net(), (1, 8, 8))
    total, _, _ = _torch_counts(_torch_block_net())
    opened = netspec.render_table(summary, depth=-1)
    assert f"Total params: {total:,} " in opened
    assert "    concat/branch1/residual/body/conv2d (Conv2D)" in opened  # two levels in, indented twice


def test_cli_expand_depth_and_connected():
    path_spec = "conv4k3 relu, maxpool2, flatten, dense10"
    plain = run("shape", path_spec, "--input", "1x8x8")
    assert plain.exit_code == 0, plain.output
    assert run("shape", path_spec, "--input", "1x8x8", "--expand").output == plain.output  # no blocks
    connected = run("shape", path_spec, "--input", "1x8x8", "--format", "connected")
    assert "max_pooling2d (MaxPooling2D)" in connected.output and "conv2d[0][0]" in connected.output
    refused = run("shape", path_spec, "--input", "1x8x8", "--expand", "--format", "json")
    assert refused.exit_code == 2 and "--expand" in refused.output
    both = run("shape", path_spec, "--input", "1x8x8", "--expand", "--depth", "1")
    assert both.exit_code == 2


def test_cli_expand_opens_a_json_network(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(netspec.Network((1, 8, 8), tuple(_block_net())).to_dict()))
    collapsed = run("shape", path)
    opened = run("shape", path, "--depth", "1")
    assert collapsed.exit_code == 0 and opened.exit_code == 0, opened.output
    assert "residual/body/conv2d" not in collapsed.output
    assert "residual/body/conv2d" in opened.output and "concat/branch1/residual/body" not in opened.output
    assert "concat/branch1/residual/body/conv2d" in run("shape", path, "--expand").output


# ---------------------------------------------------------------------------------------------------
# Fitting a network to the data


FIVE_POOLS = "conv8k3 same, maxpool2, maxpool2, maxpool2, maxpool2, maxpool2, flatten, dense10"


def test_adapted_replaces_the_head_and_the_input():
    network = netspec.load_network(FIVE_POOLS)
    adapted = network.adapted((3, 64, 64), 4)
    assert adapted.network.input_shape == (3, 64, 64)
    assert adapted.network.layers[-1] == Dense(4)
    assert adapted.network.layers[:-1] == network.layers[:-1]
    assert adapted.changes == ("head dense: 10 -> 4 units (the data's classes)",)
    # 64 / 2**5 = 2: a 8x2x2 map, 32 features into 4 units.
    assert netspec.summarize(adapted.network.layers, (3, 64, 64)).rows[-1].trainable_params == 32 * 4 + 4
    same = network.adapted((1, 32, 32), 10)
    assert same.changes == () and same.network.layers == network.layers


def test_adapted_keeps_a_head_followed_by_size_keeping_layers():
    network = netspec.load_network("flatten, dense10, dropout0.5, softmax")
    adapted = network.adapted((1, 4, 4), 3)
    assert netspec.summarize(adapted.network.layers, (1, 4, 4)).rows[-1].output_shape == (3,)


def test_adapted_refuses_what_it_cannot_fit():
    with pytest.raises(netspec.NetSpecError, match="no Dense"):
        netspec.Network(None, (Conv2D(10, 1), GlobalAvgPool2D())).adapted((1, 8, 8), 3)
    with pytest.raises(netspec.NetSpecError, match="not in 3 class scores"):
        netspec.load_network("conv4k3, flatten").adapted((1, 4, 4), 3)
    # Only the last Dense is the head: a hidden layer keeps its units.
    layers = netspec.load_network("flatten, dense10, dense5").adapted((1, 4, 4), 3).network.layers
    assert [layer.units for layer in layers[1:]] == [10, 3]


def test_a_network_that_cannot_take_the_input_names_the_smallest_that_fits():
    network = netspec.load_network(FIVE_POOLS)
    with pytest.raises(netspec.InputTooSmall) as caught:
        network.adapted((1, 28, 28), 10)
    # Five 2x2 poolings of stride 2 need 2**5 = 32 cells: 28 -> 14 -> 7 -> 3 -> 1 leaves the fifth nothing.
    assert caught.value.smallest == (1, 32, 32)
    message = str(caught.value)
    assert "max_pooling2d_4" in message and "1x32x32" in message and "\n" not in message
    # Three valid 3x3 convolutions need 7 cells; a (C, L) input keeps its rank.
    assert netspec.smallest_input([netspec.Conv1D(2, 3)] * 3, (1, 5)) == (1, 7)
    assert netspec.smallest_input([Dense(3)], (5,)) is None


def _tiny_npz(path, size=12, classes=3):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (20, size, size)).astype(np.uint8),
             y_train=np.arange(20) % classes, x_test=rng.integers(0, 255, (6, size, size)).astype(np.uint8),
             y_test=np.arange(6) % classes, class_names=np.array([f"c{k}" for k in range(classes)]))
    return path


def test_cli_train_fails_in_one_line_naming_layer_sizes_and_resize(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz", size=28)
    result = run("train", "--model", FIVE_POOLS, "--data", data, "--epochs", 1, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("cnn: error:")
    for fragment in ("max_pooling2d_4", "1x28x28", "1x32x32", "--resize 32x32", "--input"):
        assert fragment in line, (fragment, line)
    assert not (tmp_path / "run").exists()


def test_cli_train_resizes_and_fits_the_head(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz", size=28)
    spec = FIVE_POOLS.replace("dense10", "dense7")
    result = run("train", "--model", spec, "--data", data, "--epochs", 1, "--batch-size", 10, "--resize", "32x32",
                 "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "1x32x32" in result.output and "head dense: 7 -> 3 units" in result.output
    assert "Total params: " in result.output and "Non-trainable params: 0" in result.output
    bad = run("train", "--model", spec, "--data", data, "--resize", "32y3", "--out", tmp_path / "other")
    assert bad.exit_code == 2 and "HxW" in bad.output


def test_cli_train_and_shape_print_the_same_counts_for_a_batch_normed_model(tmp_path):
    """The issue's complaint: train printed the trainable count, shape the total. Both now print all three,
    labelled; torch counts them: conv 4*9+4 = 40, batch norm 4+4 trainable and 4+4 running statistics,
    dense 4*10*10*3+3 = 1,203."""
    data = _tiny_npz(tmp_path / "tiny.npz", size=12)
    spec = "conv4k3, batchnorm, flatten, dense3"
    nn = torch.nn
    total, trainable, non_trainable = _torch_counts(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4),
                                                                  nn.Flatten(), nn.Linear(400, 3)))
    expected = [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {non_trainable:,}"]
    trained = run("train", "--model", spec, "--data", data, "--epochs", 1, "--out", tmp_path / "run")
    shown = run("shape", spec, "--input", "1x12x12")
    assert trained.exit_code == 0 and shown.exit_code == 0, trained.output + shown.output
    assert "  ".join(expected) in trained.output
    assert all(f"{text}\n" in shown.output or f"{text} (" in shown.output for text in expected)


def test_cli_train_input_that_differs_from_the_data_suggests_resize(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz", size=12)
    result = run("train", "--model", "flatten, dense3", "--data", data, "--input", "1x16x16",
                 "--out", tmp_path / "run")
    assert result.exit_code == 2 and "--resize 16x16" in result.output


def test_cli_evaluate_and_predict_resize_the_data_to_the_model(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz", size=12)
    out = tmp_path / "run"
    trained = run("train", "--model", "conv2k3, flatten, dense3", "--data", data, "--epochs", 1, "--resize", "16",
                  "--out", out)
    assert trained.exit_code == 0, trained.output
    assert '"resize": "16x16"' in (out / "run.json").read_text()
    refused = run("evaluate", out / "model.npz", "--data", data)
    assert refused.exit_code == 2 and "--resize" in refused.stderr and "1x16x16" in refused.stderr
    scored = run("evaluate", out / "model.npz", "--data", data, "--resize", "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output)["images"] == 6
    predicted = run("predict", out / "model.npz", "--data", data, "--resize", "--limit", 2)
    assert predicted.exit_code == 0 and len(predicted.output.strip().splitlines()) == 2, predicted.output


# ---------------------------------------------------------------------------------------------------
# Resizing


@pytest.mark.parametrize("size,new", [((28, 28), (32, 32)), ((7, 5), (3, 11)), ((10, 10), (3, 3)),
                                      ((4, 6), (1, 1)), ((5, 9), (5, 9)), ((1, 3), (4, 2))])
def test_resize_matches_torch_bilinear(size, new):
    x = np.random.default_rng(1).random((2, 3, *size)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=new, mode="bilinear",
                                               align_corners=False, antialias=False).numpy()
    np.testing.assert_allclose(datasets.resize_bilinear(x, *new), expected, rtol=0, atol=1e-6)


def test_resize_of_uint8_images_is_the_float_images_resized():
    x = np.random.default_rng(2).integers(0, 256, (3, 1, 6, 6)).astype(np.uint8)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x.astype(np.float32) / 255), size=(9, 4),
                                               mode="bilinear", align_corners=False, antialias=False).numpy()
    out = datasets.resize_bilinear(x, 9, 4)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_dataset_resized(tmp_path):
    ds = datasets.load_npz(_tiny_npz(tmp_path / "tiny.npz"))
    resized = ds.resized(16, 20)
    assert resized.image_shape == (1, 16, 20) and resized.x_test.shape == (6, 1, 16, 20)
    assert (resized.y_train == ds.y_train).all() and "resized bilinear to 16x20" in resized.describe()
    assert ds.resized(12, 12) is ds
    np.testing.assert_array_equal(ds.resized(16, 20).x_train, resized.x_train)  # deterministic


def test_parse_size():
    assert datasets.parse_size("32x24") == (32, 24) and datasets.parse_size("32") == (32, 32)
    for bad in ("0x3", "3x", "axb", "1x2x3", "99999x2"):
        with pytest.raises(ValueError):
            datasets.parse_size(bad)
