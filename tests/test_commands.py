"""`cnn train`, `cnn evaluate` and `cnn predict` through click's CliRunner, on a tiny data set written here.

The data set has 48 training and 16 test gray 12x12 images of 3 classes, so a small model trains in well
under a second per epoch even on the reference engine. fastcnn is used when it has every op the model
needs (it is the default engine), refcnn otherwise.
"""

import json
import os

import click
import numpy as np
import pytest
from click.testing import CliRunner

from cnn import data as datasets
from cnn.cli.evaluate import evaluate
from cnn.cli.predict import predict
from cnn.cli.train import parse_schedule, train
from cnn.files import load_archive
from cnn.model import Model

SPEC = "conv4k3 relu, maxpool2, flatten, dense3"
GROUP = click.Group("cnn", commands={"train": train, "evaluate": evaluate, "predict": predict})


def _pick_engine() -> str:
    try:
        model = Model(SPEC, (1, 12, 12), engine="fastcnn")
        model.check_engine()
        import fastcnn

        if all(hasattr(fastcnn, op) for op in ("adam_step", "sgd_step")):
            return "fastcnn"
    except Exception:  # fastcnn missing or half-written: the reference engine checks the commands as well
        pass
    return "refcnn"


ENGINE = os.environ.get("CNN_TEST_ENGINE") or _pick_engine()


def run(*args):
    return CliRunner().invoke(GROUP, [str(a) for a in args])


def write_tiny_data(path, *, shape=(12, 12), channels=None, seed=0):
    """Images whose class is the row of a bright band, so a few epochs learn something."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 + 3 * c: 5 + 3 * c, :] = 250
        if channels is not None:
            x = np.repeat(x[:, None], channels, axis=1)
        return x, y

    x_train, y_train = make(48)
    x_test, y_test = make(16)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(["top", "middle", "bottom"]))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_data(tmp_path_factory.mktemp("data") / "tiny.npz")


def train_args(tiny, out, *extra, epochs=1):
    return ("train", "--model", SPEC, "--data", tiny, "--epochs", epochs, "--batch-size", 16,
            "--engine", ENGINE, "--out", out, *extra)


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """One finished run, shared by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("runs") / "first"
    result = run(*train_args(tiny, out))
    assert result.exit_code == 0, result.output
    return out, result


def assert_one_line_error(result, status=2, *fragments):
    assert result.exit_code == status, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnn: error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------------------------------------------
# train


def test_train_writes_weights_log_plot_checkpoint_and_reports(trained):
    out, result = trained
    for name in ("model.npz", "metrics.json", "curves.png", "checkpoint.npz", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in log["epochs"]] == [1]
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch 1/1")]
    assert len(epoch_lines) == 1
    assert "loss" in epoch_lines[0] and "accuracy" in epoch_lines[0] and "images/s" in epoch_lines[0]
    assert "test: loss" in result.stdout and "(16 images)" in result.stdout
    assert str(out) in result.stdout
    arrays, document = load_archive(out / "model.npz")
    assert document["class_names"] == ["top", "middle", "bottom"]
    assert any(key.startswith("param/") for key in arrays)


def test_second_train_into_the_same_folder_refuses_and_keeps_the_run(trained, tiny):
    out, _ = trained
    before = {name: (out / name).read_bytes() for name in ("model.npz", "checkpoint.npz", "metrics.json")}
    result = run(*train_args(tiny, out))
    assert_one_line_error(result, 2, "--resume", "--overwrite", str(out))
    assert {name: (out / name).read_bytes() for name in before} == before


def test_resume_continues_to_the_weights_of_an_uninterrupted_run(tiny, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(*train_args(tiny, straight, epochs=2)).exit_code == 0
    assert run(*train_args(tiny, resumed, epochs=1)).exit_code == 0
    # Only --out, --resume and the new epoch count: the other options come from the run's run.json.
    result = run("train", "--out", resumed, "--resume", "--epochs", 2, "--engine", ENGINE)
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.stdout and "epoch 1/2" not in result.stdout
    assert [row["epoch"] for row in json.loads((resumed / "metrics.json").read_text())["epochs"]] == [1, 2]
    a, _ = load_archive(straight / "model.npz")
    b, _ = load_archive(resumed / "model.npz")
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_with_other_settings_is_refused_and_changes_nothing(trained):
    out, _ = trained
    before = (out / "run.json").read_bytes(), (out / "checkpoint.npz").read_bytes()
    result = run("train", "--out", out, "--resume", "--batch-size", 8, "--engine", ENGINE)
    assert_one_line_error(result, 2, "--batch-size", "16 there", "8 here")
    assert ((out / "run.json").read_bytes(), (out / "checkpoint.npz").read_bytes()) == before


def test_overwrite_replaces_only_the_run_files(tiny, tmp_path):
    out = tmp_path / "run"
    assert run(*train_args(tiny, out)).exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = run(*train_args(tiny, out, "--overwrite", "--seed", 3))
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "run.json").read_text())["options"]["seed"] == 3


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    out = tmp_path / "run"
    # Epoch 1 trains at lr 0.01; the schedule then multiplies it by 1e37, which overflows float32.
    result = run(*train_args(tiny, out, "--optimizer", "sgd", "--lr", 0.01, "--schedule", "exp:1e37", epochs=3))
    assert_one_line_error(result, 1, "nan", "checkpoint")
    assert "epoch 1/3" in result.stdout
    _, document = load_archive(out / "checkpoint.npz")
    assert document["training"]["epoch"] == 1


def test_default_data_falls_back_to_the_shipped_sample_and_says_so(tmp_path, monkeypatch):
    if ENGINE != "fastcnn":
        pytest.skip("the sample's 2,000 test images are too slow on the reference engine")
    monkeypatch.setattr(datasets.catalog, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "nowhere")  # where it is read
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    result = run("train", "--model", "conv2k3 relu, maxpool4, flatten, dense10", "--limit", 32, "--epochs", 1,
                 "--out", tmp_path / "run", "--engine", ENGINE)
    assert result.exit_code == 0, result.output
    assert "fashion-mnist-small" in result.stdout and "was not found" in result.stdout
    assert "(2,000 images)" in result.stdout


# ---------------------------------------------------------------------------------------------------
# evaluate and predict


def test_evaluate_json_matches_the_accuracy_train_reported(trained, tiny):
    out, train_result = trained
    result = run("evaluate", out / "model.npz", "--data", tiny, "--engine", ENGINE, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 16
    assert [row["name"] for row in report["per_class"]] == ["top", "middle", "bottom"]
    assert sum(row["images"] for row in report["per_class"]) == 16
    assert sum(row["correct"] for row in report["per_class"]) == round(report["accuracy"] * 16)
    assert f"accuracy {report['accuracy']:.4f}" in train_result.stdout


def test_evaluate_text_has_a_row_per_class(trained, tiny):
    out, _ = trained
    result = run("evaluate", out / "model.npz", "--data", tiny, "--engine", ENGINE, "--split", "train",
                 "--limit", 8)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("loss ") and "accuracy" in line for line in lines)
    assert sum(line.split()[:1] in (["top"], ["middle"], ["bottom"]) for line in lines) == 3


def test_predict_data_json_gives_top_k_with_probabilities(trained, tiny):
    out, _ = trained
    result = run("predict", out / "model.npz", "--data", tiny, "--limit", 4, "--top-k", 2, "--engine", ENGINE,
                 "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["predictions"]
    assert [row["input"] for row in rows] == ["test[0]", "test[1]", "test[2]", "test[3]"]
    for row in rows:
        probabilities = [g["probability"] for g in row["top_k"]]
        assert len(probabilities) == 2 and probabilities[0] >= probabilities[1]
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert row["label_name"] in ("top", "middle", "bottom")


def test_predict_png_files_names_classes_from_the_model_file(trained, tmp_path):
    from PIL import Image

    out, _ = trained
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((12, 12), 40, np.uint8)).save(gray)
    colour = tmp_path / "colour.png"
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(colour)
    result = run("predict", out / "model.npz", gray, colour, "--resize", "--top-k", 3, "--engine", ENGINE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(gray), str(colour)]
    assert all(sorted(line.split()[1::2]) == ["bottom", "middle", "top"] for line in lines)


def test_predict_png_of_another_size_needs_resize(trained, tmp_path):
    from PIL import Image

    out, _ = trained
    image = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(image)
    result = run("predict", out / "model.npz", image, "--engine", ENGINE)
    assert_one_line_error(result, 2, "30x20", "12x12", "--resize")


# ---------------------------------------------------------------------------------------------------
# Usage errors: one line, exit status 2, nothing written


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "truncated.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "not-a-model.npz").write_text("hello")
    write_tiny_data(folder / "colour32.npz", shape=(32, 32), channels=3)
    return folder


@pytest.mark.parametrize("args, fragments", [
    (("--data", "{bad}/truncated.npz"), ("truncated.npz", "zip")),
    (("--data", "no-such-data"), ("no-such-data",)),
    (("--model", "keras-mnist", "--input", "1x28x28", "--data", "{bad}/colour32.npz"), ("1x28x28", "3x32x32")),
    (("--model", "conv4k3 relu, flatten, dense3", "--input", "1x28x28", "--data", "{tiny}"), ("1x28x28", "1x12x12")),
    (("--model", "conv4k3 relu,, dense3", "--data", "{tiny}"), ("layer 2",)),
    (("--model", "no-such-preset", "--data", "{tiny}"), ("no-such-preset",)),
    (("--model", "conv4k3 relu, flatten", "--data", "{tiny}"), ("3 class scores", "no Dense", "dense3")),
    (("--model", SPEC, "--data", "{tiny}", "--momentum", "0.9"), ("--momentum", "adam")),
    (("--model", SPEC, "--data", "{tiny}", "--limit", "1000"), ("limit", "48")),
    (("--model", SPEC, "--data", "{tiny}", "--validation-split", "0.99"), ("--validation-split",)),
    (("--model", SPEC, "--data", "{tiny}", "--validation-split", "0.25", "--validation-data", "test"),
     ("--validation-split 0.25", "--validation-data test", "one or the other")),
], ids=["malformed-data-file", "unknown-data", "shape-mismatch", "input-mismatch", "bad-spec", "unknown-preset",
        "no-head-for-the-classes", "option-of-another-optimizer", "limit-too-large", "validation-too-large",
        "validation-split-and-data"])
def test_train_usage_errors(args, fragments, tiny, bad_files, tmp_path):
    out = tmp_path / "run"
    filled = [a.format(bad=bad_files, tiny=tiny) for a in args]
    result = run("train", *filled, "--engine", ENGINE, "--out", out)
    assert_one_line_error(result, 2, *fragments)
    assert not out.exists()


def test_resume_of_a_folder_without_a_run(tmp_path):
    assert_one_line_error(run("train", "--out", tmp_path, "--resume"), 2, "no run to continue")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_wrong_model_file(command, bad_files, tiny):
    extra = ("--data", tiny)
    result = run(command, bad_files / "not-a-model.npz", *extra)
    assert_one_line_error(result, 2, "not-a-model.npz")
    assert_one_line_error(run(command, bad_files / "missing.npz", *extra), 2, "missing.npz")


def test_evaluate_on_data_of_another_shape(trained, bad_files):
    out, _ = trained
    result = run("evaluate", out / "model.npz", "--data", bad_files / "colour32.npz", "--engine", ENGINE)
    assert_one_line_error(result, 2, "1x12x12", "3x32x32")


@pytest.mark.parametrize("args", [
    ("train", "--optimizer", "adagrad"),
    ("train", "--schedule", "step:x"),
    ("train", "--schedule", "linear"),
    ("train", "--epochs", "0"),
    ("train", "--betas", "0.9"),
    ("evaluate", "m.npz", "--split", "validation"),
    ("predict", "m.npz", "--top-k", "0"),
], ids=["optimizer", "schedule-value", "schedule-name", "epochs", "betas", "split", "top-k"])
def test_bad_options_are_click_usage_errors(args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.stderr and "Traceback" not in result.output


def test_predict_needs_files_or_data(trained):
    out, _ = trained
    assert_one_line_error(run("predict", out / "model.npz"), 2, "--data")


# ---------------------------------------------------------------------------------------------------
# Option parsing


@pytest.mark.parametrize("text, expected", [
    ("none", None),
    ("step:5:0.5", {"name": "step", "step_size": 5, "gamma": 0.5}),
    ("step:3", {"name": "step", "step_size": 3}),
    ("exp:0.9", {"name": "exponential", "gamma": 0.9}),
    ("cosine", {"name": "cosine"}),
    ("cosine:10:0.001", {"name": "cosine", "t_max": 10, "eta_min": 0.001}),
])
def test_parse_schedule(text, expected):
    assert parse_schedule(text) == expected


@pytest.mark.parametrize("text", ["step:1:2:3", "exp:fast", "warmup", "step:0"])
def test_parse_schedule_refuses(text):
    with pytest.raises(click.BadParameter):
        parse_schedule(text)


# ---------------------------------------------------------------------------------------------------
# Hostile options: every one checked before anything is written


@pytest.mark.parametrize("args, fragment", [
    (("--lr", "nan"), "--lr"),
    (("--lr", "inf"), "--lr"),
    (("--betas", "1.5,0.9"), "--betas"),
    (("--betas", "nan,nan"), "--betas"),
    (("--eps", "inf"), "--eps"),
    (("--optimizer", "sgd", "--momentum", "nan"), "--momentum"),
    (("--optimizer", "adadelta", "--rho", "nan"), "--rho"),
    (("--validation-split", "nan"), "--validation-split"),
    (("--schedule", "exp:inf"), "--schedule"),
    (("--schedule", "cosine:10:nan"), "--schedule"),
    (("--seed", "1.5"), "--seed"),
    (("--seed", "-1"), "--seed"),
    (("--seed", str(2**64)), "--seed"),
    (("--batch-size", str(10**23)), "--batch-size"),  # beyond int64: fit refused it after the folder was made
    (("--early-stopping", str(10**23)), "--early-stopping"),
], ids=["lr-nan", "lr-inf", "betas-1.5", "betas-nan", "eps-inf", "momentum-nan", "rho-nan", "split-nan",
        "schedule-inf", "eta-min-nan", "seed-float", "seed-negative", "seed-huge", "batch-size-huge",
        "patience-huge"])
def test_nonsense_option_values_are_usage_errors_that_write_nothing(args, fragment, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    result = run("train", "--model", SPEC, "--data", tiny, "--out", out, "--engine", ENGINE, *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no run folder, no run.json, nothing in the current folder


def test_an_empty_out_is_refused_not_the_current_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("train", "--model", SPEC, "--data", tiny, "--out", ""), 2, "--out", "empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_an_out_that_cannot_be_created_fails_before_the_data_is_read(where, tiny, tmp_path):
    if where == "proc" and not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "run" if where == "under-a-file" else "/proc/run"
    result = run("train", "--model", SPEC, "--data", tiny, "--out", out, "--engine", ENGINE)
    assert_one_line_error(result, 2, "--out", str(out), "cannot create")
    assert "data:" not in result.stdout


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_out_fails_before_the_data_is_read(tiny, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = run("train", "--model", SPEC, "--data", tiny, "--out", folder, "--engine", ENGINE)
        assert_one_line_error(result, 2, "--out", "cannot write")
        assert "data:" not in result.stdout
    finally:
        folder.chmod(0o700)


def test_a_network_file_without_layers_is_one_line(tiny, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text('{"layers": []}')
    out = tmp_path / "run"
    result = run("train", "--model", empty, "--data", tiny, "--out", out, "--engine", ENGINE)
    assert_one_line_error(result, 2, "no layers")
    assert not out.exists()


def test_data_without_training_images_is_one_line(tmp_path):
    empty = tmp_path / "empty.npz"
    np.savez(empty, x_train=np.zeros((0, 12, 12), np.uint8), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((4, 12, 12), np.uint8), y_test=np.array([0, 1, 2, 0]),
             class_names=np.array(["top", "middle", "bottom"]))
    out = tmp_path / "run"
    result = run("train", "--model", SPEC, "--data", empty, "--out", out, "--engine", ENGINE)
    assert_one_line_error(result, 2, "training image")
    assert not out.exists()


def test_a_size_limit_is_one_line_and_exit_2(tiny, tmp_path, monkeypatch):
    import cnn.cli.train as command
    from cnnbase.limits import SizeLimitError

    def too_big(*args, **kwargs):
        raise SizeLimitError("load_dataset: x_train needs 8.0 GiB; the limit is 4.0 GiB (set CNN_MAX_ARRAY_BYTES)")

    monkeypatch.setattr(command, "load_data", too_big)
    assert_one_line_error(run(*train_args(tiny, tmp_path / "run")), 2, "CNN_MAX_ARRAY_BYTES")
    assert not (tmp_path / "run").exists()


def test_class_names_from_files_are_printed_escaped(trained, tmp_path):
    out, _ = trained
    hostile = tmp_path / "hostile.npz"
    write_tiny_data(hostile)
    with np.load(hostile) as archive:
        arrays = dict(archive)
    arrays["class_names"] = np.array(["top\nINJECTED", "\x1b[31mred", "bottom"])
    np.savez(hostile, **arrays)
    for command in (("evaluate", out / "model.npz", "--data", hostile),
                    ("predict", out / "model.npz", "--data", hostile, "--limit", 3)):
        result = run(*command, "--engine", ENGINE)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\nINJECTED" not in result.stdout
        assert "top\\nINJECTED" in result.stdout and "\\x1b[31mred" in result.stdout


def test_validation_data_test_scores_the_test_split_after_every_epoch(tiny, tmp_path):
    """The last epoch's val_loss and val_accuracy are the test scores of the final weights that the run
    prints at the end (the same images, the same weights, scored twice)."""
    out = tmp_path / "run"
    result = run(*train_args(tiny, out, "--validation-data", "test", epochs=2))
    assert result.exit_code == 0, result.output
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    assert len(epochs) == 2 and all("val_loss" in e and "val_accuracy" in e for e in epochs)
    test = json.loads((out / "run.json").read_text())["test"]
    assert epochs[-1]["val_accuracy"] == pytest.approx(test["accuracy"])
    assert epochs[-1]["val_loss"] == pytest.approx(test["loss"], rel=1e-5)
    assert json.loads((out / "run.json").read_text())["options"]["validation_data"] == "test"


# ---------------------------------------------------------------------------------------------------------------
# cnn train --profile; cnn evaluate / predict --resize [HxW]


def test_train_profile_prints_time_per_layer_type_and_changes_no_weight(tiny, tmp_path):
    plain = run(*train_args(tiny, tmp_path / "plain", "--validation-split", 0.25, epochs=2))
    timed = run(*train_args(tiny, tmp_path / "timed", "--validation-split", 0.25, "--profile", epochs=2))
    assert plain.exit_code == 0 and timed.exit_code == 0, timed.output
    assert "profile:" not in plain.output
    lines = timed.output.splitlines()
    assert any(line.startswith("profile: 6 training steps") for line in lines)  # 36 images in batches of 16, twice
    layer_rows = {line.split()[0] for line in lines if line.split() and line.split()[0] in
                  ("Conv2D", "MaxPool2D", "Flatten", "Dense", "(optimizer", "(data:", "(rest")}
    assert layer_rows == {"Conv2D", "MaxPool2D", "Flatten", "Dense", "(optimizer", "(data:", "(rest"}
    (a, _), (b, _) = (load_archive(tmp_path / name / "model.npz") for name in ("plain", "timed"))
    assert len(a) >= 4 and set(a) == set(b)  # conv and dense, weight and bias each
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def tiny_24(tmp_path_factory):
    """The tiny data at twice the trained model's size: 24x24."""
    return write_tiny_data(tmp_path_factory.mktemp("data24") / "tiny24.npz", shape=(24, 24), seed=1)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_resize_takes_hxw_the_model_size_as_the_bare_flag(trained, tiny_24, command):
    out, _ = trained
    tail = ("--data", tiny_24, "--json", "--engine", ENGINE) + (("--limit", 5) if command == "predict" else ())
    bare = run(command, out / "model.npz", "--resize", *tail)
    sized = run(command, out / "model.npz", "--resize", "12x12", *tail)
    side = run(command, out / "model.npz", "--resize", "12", *tail)
    keyword = run(command, out / "model.npz", "--resize", "model", *tail)
    assert bare.exit_code == 0, bare.output
    assert json.loads(sized.stdout) == json.loads(bare.stdout) == json.loads(side.stdout) == json.loads(keyword.stdout)
    assert_one_line_error(run(command, out / "model.npz", *tail), 2, "12x12", "24x24", "--resize 12x12")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_resize_to_another_size_than_the_model_names_the_model_size(trained, tiny_24, command):
    out, _ = trained
    result = run(command, out / "model.npz", "--data", tiny_24, "--resize", "16x16", "--engine", ENGINE)
    assert_one_line_error(result, 2, "--resize 16x16", "takes images of 12x12", "--resize 12x12")
    bad = run(command, out / "model.npz", "--data", tiny_24, "--resize", "12y12", "--engine", ENGINE)
    assert bad.exit_code == 2 and "HxW" in bad.stderr and "12y12" in bad.stderr, bad.output


def test_predict_png_with_resize_hxw_as_with_the_bare_flag(trained, tmp_path):
    from PIL import Image

    out, _ = trained
    image = tmp_path / "big.png"
    Image.fromarray(np.arange(20 * 30, dtype=np.uint32).reshape(20, 30).astype(np.uint8)).save(image)
    sized = run("predict", out / "model.npz", image, "--resize", "12x12", "--json", "--engine", ENGINE)
    bare = run("predict", out / "model.npz", image, "--resize", "--json", "--engine", ENGINE)
    assert sized.exit_code == 0, sized.output
    assert json.loads(sized.stdout) == json.loads(bare.stdout)
    misplaced = run("predict", out / "model.npz", "--resize", image, "--engine", ENGINE)
    assert misplaced.exit_code == 2 and "goes after the image files" in misplaced.stderr, misplaced.output
