"""Time series: the .ts / .tsv / (N, C, L) .npz readers, z-normalisation, the 1-D presets' parameter counts
against torch modules written from the papers, and the command line on series (specs/timeseries.md).

Expected values are worked by hand from the small files written here, or counted by torch.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

from cnn.cli import cnn
from cnn.data import DataError, load_dataset
from cnn.data.timeseries import SeriesOptions, load_series, znormalize
from cnnbase.limits import SizeLimitError
from cnnbase.netspec import PRESETS

HEADER = "# a comment\n@problemName Toy\n@timeStamps false\n@missing false\n@univariate true\n" \
         "@equalLength true\n@seriesLength 4\n@classLabel true a b\n@data\n"


def _write(path, text: str):
    path.write_text(text)
    return path


def _pair(tmp_path, train: str, test: str | None = None, name: str = "Toy", suffix: str = ".ts"):
    path = _write(tmp_path / f"{name}_TRAIN{suffix}", train)
    if test is not None:
        _write(tmp_path / f"{name}_TEST{suffix}", test)
    return path


# --------------------------------------------------------------------------------------------------
# .ts


def test_univariate_ts_with_its_test_file_beside_it_unnormalised(tmp_path):
    path = _pair(tmp_path, HEADER + "1,2,3,4:a\n4,3,2,1:b\n", HEADER + "0,0,1,0:b\n")
    ds = load_series(path, SeriesOptions(znorm="none"))
    assert ds.class_names == ("a", "b")
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (2, 1, 4)
    np.testing.assert_array_equal(ds.x_train[:, 0], [[1, 2, 3, 4], [4, 3, 2, 1]])
    np.testing.assert_array_equal(ds.y_train, [0, 1])
    np.testing.assert_array_equal(ds.x_test[0, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(ds.y_test, [1])
    assert ds.is_series and ds.image_shape == (1, 4)


def test_per_series_z_normalisation_is_the_hand_computation(tmp_path):
    path = _pair(tmp_path, HEADER + "1,2,3,4:a\n5,5,5,5:b\n")
    ds = load_series(path)  # default: per series
    std = math.sqrt(((1.5 ** 2) * 2 + (0.5 ** 2) * 2) / 4)  # population std of 1..4 about 2.5
    np.testing.assert_allclose(ds.x_train[0, 0], [-1.5 / std, -0.5 / std, 0.5 / std, 1.5 / std], rtol=1e-6)
    np.testing.assert_array_equal(ds.x_train[1, 0], [0, 0, 0, 0])  # a constant series is only centred
    assert len(ds.y_test) == 0  # no _TEST file beside it


def test_per_channel_z_normalisation_uses_training_statistics_for_both_splits(tmp_path):
    header = HEADER.replace("@univariate true", "@univariate false\n@dimensions 2").replace("@seriesLength 4",
                                                                                           "@seriesLength 2")
    path = _pair(tmp_path, header + "0,2:10,10:a\n4,6:10,30:b\n", header + "3,3:20,20:a\n")
    ds = load_series(path, SeriesOptions(znorm="channel"))
    # channel 0 over the training split: 0, 2, 4, 6 -> mean 3, std sqrt(5); channel 1: 10, 10, 10, 30 -> 15, sqrt(75)
    s0, s1 = math.sqrt(5), math.sqrt(75)
    np.testing.assert_allclose(ds.x_train[:, 0], [[-3 / s0, -1 / s0], [1 / s0, 3 / s0]], rtol=1e-6)
    np.testing.assert_allclose(ds.x_train[:, 1], [[-5 / s1, -5 / s1], [-5 / s1, 15 / s1]], rtol=1e-6)
    np.testing.assert_allclose(ds.x_test[0], [[0, 0], [5 / s1, 5 / s1]], rtol=1e-6, atol=1e-7)


def test_znormalize_function_against_numpy_by_hand():
    x = np.array([[[2.0, 4.0, 6.0]], [[1.0, 1.0, 4.0]]])
    out, stats = znormalize(x, "series")
    assert stats is None
    np.testing.assert_allclose(out[0, 0], np.array([-2, 0, 2]) / math.sqrt(8 / 3))
    np.testing.assert_allclose(out[1, 0], np.array([-1, -1, 2]) / math.sqrt(2))


def test_multivariate_ts_reads_dimensions_between_colons(tmp_path):
    header = HEADER.replace("@univariate true", "@univariate false\n@dimensions 3").replace("@seriesLength 4",
                                                                                           "@seriesLength 2")
    path = _pair(tmp_path, header + "1,2:3,4:5,6:b\n7,8:9,10:11,12:a\n")
    ds = load_series(path, SeriesOptions(znorm="none"))
    assert ds.x_train.shape == (2, 3, 2)
    np.testing.assert_array_equal(ds.x_train[1], [[7, 8], [9, 10], [11, 12]])
    np.testing.assert_array_equal(ds.y_train, [1, 0])


UNEQUAL = HEADER.replace("@equalLength true\n@seriesLength 4\n", "@equalLength false\n")


def test_unequal_lengths_are_one_clear_line_or_truncated_and_zero_padded(tmp_path):
    path = _pair(tmp_path, UNEQUAL + "1,2,3,4,5:a\n1,2:b\n")
    with pytest.raises(DataError, match=r"lengths from 2 to 5.*") as info:
        load_series(path)
    assert "length=" in str(info.value) and "\n" not in str(info.value)
    ds = load_series(path, SeriesOptions(znorm="none", length=3))
    np.testing.assert_array_equal(ds.x_train[:, 0], [[1, 2, 3], [1, 2, 0]])
    ds = load_dataset(f"{path}:length=3,znorm=none")  # the same through the --data option syntax
    np.testing.assert_array_equal(ds.x_train[:, 0], [[1, 2, 3], [1, 2, 0]])


@pytest.mark.parametrize("line", ["1,?,3,4:a\n", "1,NaN,3,4:a\n"])
def test_missing_values_are_refused_naming_the_line(tmp_path, line):
    path = _pair(tmp_path, HEADER + "1,2,3,4:a\n" + line)
    with pytest.raises(DataError, match=r"no missing values in dimension 0 \(line 11\)"):
        load_series(path)


@pytest.mark.parametrize("text, words", [
    (HEADER.replace("@problemName", "@problem"), "header key"),
    (HEADER.replace("@data\n", ""), "@data"),
    (HEADER.replace("@classLabel true a b", "@classLabel false"), "@classLabel true"),
    (HEADER.replace("@timeStamps false", "@timeStamps true"), "timeStamps"),
    (HEADER.replace("@seriesLength 4", "@seriesLength -4"), "positive integer"),
    (HEADER + "1,2,3,4:c\n", "class label"),
    (HEADER + "1,2,3:a\n", "@seriesLength 4"),
    (HEADER + "1,2,3,4:1,2,3,4:a\n", "1 dimension"),
    (HEADER + "1,2,x,4:a\n", "real numbers"),
    (HEADER + "1,2,inf,4:a\n", "finite values"),
    (HEADER.replace("@data\n", "") + "1,2,3,4:a\n", "header line"),
])
def test_bad_ts_files_are_one_line_data_errors(tmp_path, text, words):
    path = _pair(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_series(path)
    assert words in str(info.value) and "\n" not in str(info.value) and str(path) in str(info.value)


def test_huge_series_stop_at_the_array_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "64K")
    long = ",".join(["1"] * 20000)
    path = _pair(tmp_path, UNEQUAL + f"{long}:a\n")
    with pytest.raises(SizeLimitError):
        load_series(path)


def test_gzipped_ts_and_the_catalog_name(tmp_path):
    path = tmp_path / "Toy_TRAIN.ts.gz"
    path.write_bytes(gzip.compress((HEADER + "1,2,3,4:a\n").encode()))
    assert load_dataset(str(path)).x_train.shape == (1, 1, 4)
    ds = load_dataset("gunpoint")  # shipped: the UCR split, 50 + 150 series of 150
    assert (len(ds.y_train), len(ds.y_test), ds.image_shape) == (50, 150, (1, 150))


# --------------------------------------------------------------------------------------------------
# .tsv and .npz


def test_ucr_tsv_label_first_and_trailing_nan_padding(tmp_path):
    path = _pair(tmp_path, "1\t0.5\t1.5\t2.5\n-1\t3\t4\tNaN\n", "1\t0\t1\t2\n", suffix=".tsv")
    with pytest.raises(DataError, match="lengths from 2 to 3"):
        load_series(path)
    ds = load_series(path, SeriesOptions(znorm="none", length=3))
    assert ds.class_names == ("-1", "1")  # numeric labels in numeric order
    np.testing.assert_array_equal(ds.x_train[:, 0], [[0.5, 1.5, 2.5], [3, 4, 0]])
    np.testing.assert_array_equal(ds.y_train, [1, 0])
    np.testing.assert_array_equal(ds.y_test, [1])
    bad = _pair(tmp_path, "1\t0.5\tNaN\t2.5\n", name="Bad", suffix=".tsv")
    with pytest.raises(DataError, match="missing"):
        load_series(bad)


def test_npz_of_n_c_l_series_with_values_outside_0_1(tmp_path):
    path = tmp_path / "s.npz"
    x = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3) * 10 - 50
    np.savez(path, x_train=x, y_train=np.array([0, 1]), x_test=x[:1], y_test=np.array([1]))
    ds = load_dataset(f"{path}:series,znorm=none")
    assert ds.x_train.shape == (2, 2, 3) and ds.is_series
    np.testing.assert_array_equal(ds.x_train, x.astype(np.float32))
    np.savez(path, x_train=x[:, 0], y_train=np.array([0, 1]), x_test=x[:1, 0], y_test=np.array([1]))
    assert load_dataset(f"{path}:series").x_train.shape == (2, 1, 3)  # (N, L): one channel
    x[0, 0, 0] = np.nan
    np.savez(path, x_train=x, y_train=np.array([0, 1]), x_test=x[:1], y_test=np.array([1]))
    with pytest.raises(DataError, match="missing"):
        load_dataset(f"{path}:series")


def test_bad_series_options_are_refused():
    for text in ("gunpoint:znorm=zscore", "gunpoint:length=0", "gunpoint:colour=1", "gunpoint:series=1"):
        with pytest.raises(DataError):
            load_dataset(text)


# --------------------------------------------------------------------------------------------------
# Presets against torch modules written from the papers / the authors' Keras code


def _counts(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters())
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, stats


def _conv_bn(cin, cout, k, bias=True, relu=True):
    layers = [nn.Conv1d(cin, cout, k, padding="same", bias=bias), nn.BatchNorm1d(cout)]
    return layers + ([nn.ReLU()] if relu else [])


def _fcn(c, k):
    return nn.Sequential(*_conv_bn(c, 128, 8), *_conv_bn(128, 256, 5), *_conv_bn(256, 128, 3),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(128, k))


def _resnet(c, k):
    blocks, cin = [], c
    for f in (64, 128, 128):
        body = nn.Sequential(*_conv_bn(cin, f, 8), *_conv_bn(f, f, 5), *_conv_bn(f, f, 3, relu=False))
        short = nn.Sequential(nn.Conv1d(cin, f, 1), nn.BatchNorm1d(f)) if cin != f else nn.BatchNorm1d(f)
        blocks += [body, short]
        cin = f
    return nn.ModuleList(blocks + [nn.Linear(128, k)])


class _Inception(nn.Module):
    def __init__(self, cin):
        super().__init__()
        width = 32 if cin > 1 else cin  # the authors' code: no bottleneck on a 1-channel input
        self.bottleneck = nn.Conv1d(cin, 32, 1, bias=False) if cin > 1 else nn.Identity()
        self.convs = nn.ModuleList(nn.Conv1d(width, 32, k, padding="same", bias=False) for k in (40, 20, 10))
        self.pool_conv = nn.Conv1d(cin, 32, 1, bias=False)
        self.bn = nn.BatchNorm1d(128)


def _inceptiontime(c, k):
    modules = [_Inception(c if i == 0 else 128) for i in range(6)]
    shortcuts = [nn.Sequential(nn.Conv1d(cin, 128, 1, bias=False), nn.BatchNorm1d(128)) for cin in (c, 128)]
    return nn.ModuleList(modules + shortcuts + [nn.Linear(128, k)])


@pytest.mark.parametrize("name, build", [("fcn1d", _fcn), ("resnet1d", _resnet), ("inceptiontime", _inceptiontime)])
def test_series_presets_count_what_torch_counts(name, build):
    summary = PRESETS[name].summary()
    assert (summary.trainable_params, summary.non_trainable_params) == _counts(build(1, 2))
    if name != "inceptiontime":  # adapted to BasicMotions' 6 x 100 and 4 classes
        adapted = PRESETS[name].adapted((6, 100), 4).network.summary()
        assert (adapted.trainable_params, adapted.non_trainable_params) == _counts(build(6, 4))
    assert summary.rows[-1].output_shape == (2,)


def test_fcn1d_preset_counts_by_hand():
    # conv 1*8*128+128, 128*5*256+256, 256*3*128+128; BN 2*(128+256+128); dense 128*2+2
    assert PRESETS["fcn1d"].summary().trainable_params == 1_152 + 164_096 + 98_432 + 1_024 + 258


def test_inceptiontime_module_concatenates_four_branches_of_32():
    rows = PRESETS["inceptiontime"].summary().rows
    assert rows[0].output_shape == (128, 150)  # the first residual block of 3 modules
    assert rows[-2].output_shape == (128,)  # after global average pooling


# --------------------------------------------------------------------------------------------------
# The command line


def run(*args):
    return CliRunner().invoke(cnn, list(args))


def test_shape_fcn1d_on_series():
    result = run("shape", "fcn1d", "--input", "1x150")
    assert result.exit_code == 0, result.output
    assert "Trainable params: 264,962" in result.output and "128x150" in result.output


def test_train_evaluate_predict_on_a_shipped_series_set(tmp_path):
    model = "conv1d4k3 same, bn, relu, gap1d, dense2 softmax"
    out = tmp_path / "run"
    result = run("train", "--data", "italypowerdemand", "--model", model, "--epochs", "1", "--batch-size", "16",
                 "--threads", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "series of 1x24 (C x L)" in result.output and "test: loss" in result.output
    assert (out / "curves.png").is_file()
    result = run("evaluate", str(out / "model.npz"), "--data", "italypowerdemand", "--limit", "20")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and result.output.count("\n1 ") + result.output.count("\n2 ") == 2
    result = run("predict", str(out / "model.npz"), "--data", "italypowerdemand", "--limit", "2", "--top-k", "2")
    assert result.exit_code == 0 and result.output.count("test[") == 2


@pytest.mark.parametrize("args, words", [
    (["--augment", "hflip"], "--augment transforms images"),
    (["--resize", "8x8"], "--resize resizes images"),
    (["--input", "1x30"], "italypowerdemand:length=30"),
])
def test_train_refuses_image_options_on_series(tmp_path, args, words):
    result = run("train", "--data", "italypowerdemand", "--model", "fcn1d", "--epochs", "1", "--out",
                 str(tmp_path / "r"), *args)
    assert result.exit_code == 2 and words in result.output
    assert not (tmp_path / "r" / "model.npz").exists()


def test_a_3d_npz_without_the_series_option_is_images_and_the_error_says_how_to_read_series(tmp_path):
    path = tmp_path / "s.npz"
    x = np.random.default_rng(0).normal(size=(4, 2, 64)) * 0.1 + 0.5
    np.savez(path, x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=x[:2], y_test=np.array([0, 1]))
    model = "conv1d4k3 same, relu, gap1d, dense2 softmax"
    result = run("train", "--data", str(path), "--model", model, "--input", "2x64", "--epochs", "1",
                 "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "--data 'PATH:series'" in result.output
    result = run("train", "--data", f"{path}:series", "--model", model, "--epochs", "1", "--threads", "1",
                 "--out", str(tmp_path / "r2"))
    assert result.exit_code == 0, result.output
    assert "series of 2x64 (C x L)" in result.output
