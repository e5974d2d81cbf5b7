"""cnn.train, cnn.optimizers, cnn.schedules: the loop, resume after kill -9, NaN stop, logs, oracles."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import refcnn
from cnnbase.netspec import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D

from cnn import data, train
from cnn.files import load_archive
from cnn.model import Model
from cnn.optimizers import Optimizer
from cnn.schedules import CosineDecay, ExponentialDecay, StepDecay

ROOT = Path(__file__).resolve().parent.parent


def tiny_layers():
    return [Conv2D(2, 3, activation="relu"), MaxPool2D(2), Dropout(0.25), Flatten(), Dense(3, activation="softmax")]


def tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, 6, 6)).astype(np.float32)
    y = (np.abs(x[:, 0, :2].sum(axis=(1, 2))) * 1.5).astype(np.int64) % 3
    return x, y


def tiny_model(seed=1, engine="refcnn", dtype="float32", layers=None):
    return Model(layers or tiny_layers(), (1, 6, 6), engine=engine, seed=seed, dtype=dtype)


def same_arrays(a: Model, b: Model) -> bool:
    left, right = a.state_arrays(), b.state_arrays()
    return left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)


FIT = dict(epochs=3, batch_size=8, optimizer="adam", lr=0.05, verbose=0)


# --------------------------------------------------------------------------------------------------
# Determinism, resume, NaN


def test_same_seed_same_result_and_training_learns():
    x, y = tiny_data()
    first, second = tiny_model(), tiny_model()
    history = train.fit(first, x, y, **FIT)
    train.fit(second, x, y, **FIT)
    assert same_arrays(first, second)
    assert history["loss"][-1] < history["loss"][0]
    third = tiny_model()
    train.fit(third, x, y, **{**FIT, "seed": 9})  # another batch order
    assert not same_arrays(first, third)


EPOCHS_KILLED = 5

KILLED_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.test_train import EPOCHS_KILLED, FIT, tiny_data, tiny_model
    from cnn import train
    x, y = tiny_data(48)
    train.fit(tiny_model(), x, y, **{{**FIT, "epochs": EPOCHS_KILLED}}, schedule="step", checkpoint_dir=sys.argv[1])
""")


def test_resume_after_kill_9_gives_the_uninterrupted_weights(tmp_path):
    folder = tmp_path / "run"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN.format(root=str(ROOT)))
    process = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.DEVNULL)
    checkpoint = folder / train.CHECKPOINT_FILE
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # into the next epoch, so the kill lands in the middle of one
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    _, document = load_archive(checkpoint)
    assert 1 <= document["training"]["epoch"] < EPOCHS_KILLED

    x, y = tiny_data(48)
    kwargs = {**FIT, "epochs": EPOCHS_KILLED, "schedule": "step"}
    resumed = tiny_model()
    resumed_history = train.fit(resumed, x, y, **kwargs, checkpoint_dir=folder, resume=True)
    uninterrupted = tiny_model()
    full_history = train.fit(uninterrupted, x, y, **kwargs)
    assert same_arrays(resumed, uninterrupted)
    assert resumed_history["loss"] == full_history["loss"]


def _nan_after(calls: int):
    """refcnn, except that cross_entropy returns NaN from its ``calls``-th call on."""
    engine = types.SimpleNamespace(**{name: getattr(refcnn, name) for name in refcnn.__all__}, __name__="flaky")
    count = {"n": 0}

    def cross_entropy(*args, **kwargs):
        count["n"] += 1
        value = refcnn.cross_entropy(*args, **kwargs)
        return np.float64("nan") if count["n"] >= calls else value

    engine.cross_entropy = cross_entropy
    return engine


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    x, y = tiny_data()  # 3 batches per epoch: the NaN comes in the second batch of epoch 2
    flaky = tiny_model(engine=_nan_after(5))
    with pytest.raises(train.NonFiniteLossError, match=r"loss is nan at epoch 2, batch 2.*checkpoint\.npz is kept"):
        train.fit(flaky, x, y, **FIT, checkpoint_dir=tmp_path)
    arrays, document = load_archive(tmp_path / train.CHECKPOINT_FILE)
    assert document["training"]["epoch"] == 1
    one_epoch = tiny_model()
    train.fit(one_epoch, x, y, **{**FIT, "epochs": 1})
    saved = {k: v for k, v in arrays.items() if k.startswith(("param/", "buffer/"))}
    assert all(np.array_equal(saved[k], v) for k, v in one_epoch.state_arrays().items())
    assert len(json.loads((tmp_path / "metrics.json").read_text())["epochs"]) == 1


def test_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    x, y = tiny_data(8)
    train.fit(tiny_model(), x, y, **{**FIT, "epochs": 1}, checkpoint_dir=tmp_path)
    before = (tmp_path / train.CHECKPOINT_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="resume"):
        train.fit(tiny_model(), x, y, **{**FIT, "epochs": 1}, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size=8 there, 4 here"):
        train.fit(tiny_model(), x, y, **{**FIT, "epochs": 2, "batch_size": 4}, checkpoint_dir=tmp_path, resume=True)
    assert (tmp_path / train.CHECKPOINT_FILE).read_bytes() == before


# --------------------------------------------------------------------------------------------------
# Freezing, early stopping, validation


def test_frozen_layers_are_unchanged_after_fit():
    x, y = tiny_data()
    layers = [Conv2D(2, 3, activation="relu"), BatchNorm(), MaxPool2D(2), Flatten(), Dense(3, activation="softmax")]
    model = tiny_model(layers=layers)
    model.freeze("conv2d", "batch_normalization")
    frozen = {k: v.copy() for k, v in model.state_arrays().items() if "dense" not in k}
    dense_before = model.get_layer("dense").params["weight"].copy()
    train.fit(model, x, y, **FIT)
    assert all(np.array_equal(model.state_arrays()[k], v) for k, v in frozen.items())  # running stats too
    assert not np.array_equal(model.get_layer("dense").params["weight"], dense_before)


def test_early_stopping_stops_and_says_why():
    x, y = tiny_data()
    history = train.fit(tiny_model(), x, y, **{**FIT, "epochs": 30, "lr": 0.0}, validation_split=0.25,
                        early_stopping={"patience": 1, "monitor": "val_loss"})
    assert len(history.epochs) == 2  # epoch 1 sets the best, epoch 2 does not improve on it with lr 0
    assert "val_loss did not improve" in history.stop_reason
    assert set(history.epochs[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"}


def test_validation_data_is_evaluated_without_training_on_it():
    x, y = tiny_data()
    model = tiny_model()
    history = train.fit(model, x[:16], y[:16], **FIT, validation_data=(x[16:], y[16:]))
    assert history["val_loss"][-1] == pytest.approx(train.evaluate(model, x[16:], y[16:])["loss"])


# --------------------------------------------------------------------------------------------------
# Output: summary lines, progress bar, JSON log, PNG plot


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_one_summary_line_per_epoch_and_a_bar_only_on_a_terminal():
    x, y = tiny_data(16)
    plain = io.StringIO()
    train.fit(tiny_model(), x, y, **{**FIT, "verbose": 1}, stream=plain)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"epoch {i + 1}/3  loss ") for i, line in enumerate(lines))
    assert "\r" not in plain.getvalue() and "images/s" in lines[0]
    terminal = _Terminal()
    train.fit(tiny_model(), x, y, **{**FIT, "verbose": 1}, stream=terminal)
    assert "\repoch 1/3 [" in terminal.getvalue() and "images/s" in terminal.getvalue()


def test_json_log_and_png_plot_are_written(tmp_path):
    x, y = tiny_data(16)
    history = train.fit(tiny_model(), x, y, **FIT, validation_split=0.25, log_path=tmp_path / "log.json")
    assert json.loads((tmp_path / "log.json").read_text()) == json.loads(json.dumps(history.to_dict()))
    train.plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "log.json"]  # no temporary files left behind


# --------------------------------------------------------------------------------------------------
# evaluate, predict, top_k, arguments


def test_predict_rows_are_probabilities_and_top_k_orders_them():
    x, _ = tiny_data(5)
    probabilities = train.predict(tiny_model(), x, batch_size=2)
    assert probabilities.shape == (5, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    classes, top = train.top_k(np.array([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]]), 2)
    assert classes.tolist() == [[1, 2], [0, 2]] and top.tolist() == [[0.5, 0.3], [0.4, 0.4]]
    with pytest.raises(ValueError, match="k"):
        train.top_k(probabilities, 4)


def test_invalid_arguments_name_the_parameter():
    x, y = tiny_data(8)
    model = tiny_model()
    with pytest.raises(ValueError, match="`batch_size`"):
        train.fit(model, x, y, batch_size=0)
    with pytest.raises(ValueError, match=r"`y` must have shape \(8,\)"):
        train.fit(model, x, y[:5])
    with pytest.raises(TypeError, match="`y`"):
        train.fit(model, x, y.astype(np.float32))
    with pytest.raises(ValueError, match="`name`"):
        train.fit(model, x, y, optimizer="adamw")
    with pytest.raises(ValueError, match="unknown argument"):
        Optimizer("adam", momentum=0.9)
    with pytest.raises(ValueError, match="`schedule`"):
        train.fit(model, x, y, schedule="linear")
    with pytest.raises(ValueError, match="`metrics`"):
        train.fit(model, x, y, metrics=("f1",))


# --------------------------------------------------------------------------------------------------
# Oracles: PyTorch for the whole loop and the schedules; fastcnn against refcnn


def test_training_steps_agree_with_torch():
    torch = pytest.importorskip("torch")
    x, y = tiny_data(16)
    layers = [Conv2D(2, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(3, activation="softmax")]
    model = tiny_model(layers=layers, dtype="float64")
    weights = [torch.tensor(model.layers[i].params[p].copy(), requires_grad=True)
               for i, p in ((0, "weight"), (0, "bias"), (3, "weight"), (3, "bias"))]
    history = train.fit(model, x, y, epochs=2, batch_size=5, optimizer="adam", lr=0.01, schedule="exponential",
                        verbose=0)
    f = torch.nn.functional
    opt = torch.optim.Adam(weights, lr=0.01, foreach=False)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    xt = torch.tensor(x, dtype=torch.float64)
    for epoch in range(2):
        for index in data.batches(16, 5, model.seed, epoch):
            h = f.max_pool2d(f.relu(f.conv2d(xt[index], weights[0], weights[1])), 2)
            loss = f.cross_entropy(f.linear(h.flatten(1), weights[2], weights[3]), torch.tensor(y[index]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        scheduler.step()
    ours = [model.layers[0].params["weight"], model.layers[0].params["bias"], model.layers[3].params["weight"],
            model.layers[3].params["bias"]]
    for mine, theirs in zip(ours, weights):
        assert np.allclose(mine, theirs.detach().numpy(), atol=1e-10, rtol=1e-9)
    assert history["lr"] == [0.01, 0.01 * 0.9]


@settings(max_examples=20)
@given(step_size=st.integers(1, 5), gamma=st.floats(0.1, 1.0), t_max=st.integers(1, 8),
       eta_min=st.floats(0.0, 0.01), base=st.floats(1e-3, 1.0))
def test_schedules_agree_with_torch(step_size, gamma, t_max, eta_min, base):
    torch = pytest.importorskip("torch")
    cases = [(StepDecay(step_size, gamma), lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma)),
             (ExponentialDecay(gamma), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma)),
             (CosineDecay(t_max, eta_min), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, t_max, eta_min))]
    for schedule, make in cases:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        scheduler = make(opt)
        for epoch in range(t_max + 1):  # PyTorch's recursive cosine matches the closed form up to t_max
            assert schedule.lr(base, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
            opt.step()
            scheduler.step()


def test_reference_and_fast_engines_give_the_same_losses():
    import fastcnn

    probe = tiny_model(engine=fastcnn, dtype="float64")
    assert not (probe.required_ops() | {"adam_step"}) - set(dir(fastcnn))
    x, y = tiny_data(12)
    layers = [Conv2D(2, 3, padding="same", activation="relu"), BatchNorm(), MaxPool2D(2), Dropout(0.3), Flatten(),
              Dense(3, activation="softmax")]
    histories = [train.fit(tiny_model(engine=engine, dtype="float64", layers=layers), x, y, **FIT)
                 for engine in ("refcnn", "fastcnn")]
    assert np.allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------------------------------
# Hostile arguments: refused before training starts


def test_fit_without_training_examples_is_a_clear_value_error():
    x, y = tiny_data()
    with pytest.raises(ValueError, match="no training examples"):
        train.fit(tiny_model(), x[:0], y[:0], **FIT)


def test_predict_of_no_samples_is_empty_and_evaluate_of_none_refused():
    """predict concatenated no batches (numpy's 'need at least one array'); evaluate divided by zero."""
    x, y = tiny_data()
    model = tiny_model()
    probabilities = train.predict(model, x[:0])
    assert probabilities.shape == (0, model.predict(x[:1]).shape[1]) and probabilities.dtype == model.dtype
    with pytest.raises(ValueError, match="hold no samples"):
        train.evaluate(model, x[:0], y[:0])


@pytest.mark.parametrize("name, kwargs, argument", [
    ("adam", {"lr": float("nan")}, "lr"),
    ("adam", {"lr": float("inf")}, "lr"),
    ("adam", {"lr": 10**400}, "lr"),  # too large for a float: an OverflowError traceback before
    ("adam", {"betas": (1.5, 0.9)}, "betas"),
    ("adam", {"betas": (float("nan"), float("nan"))}, "betas"),
    ("sgd", {"momentum": float("inf")}, "momentum"),
    ("adadelta", {"rho": 2.0}, "rho"),
    ("rmsprop", {"eps": -1.0}, "eps"),
])
def test_an_optimizer_checks_its_hyperparameters_when_made_not_at_the_first_step(name, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        Optimizer(name, **kwargs)


def test_a_resume_may_change_the_rate_and_schedule_and_records_it(tmp_path):
    x, y = tiny_data()
    sgd = {**FIT, "optimizer": "sgd", "checkpoint_dir": tmp_path}
    train.fit(tiny_model(), x, y, **{**sgd, "epochs": 1, "lr": 0.01})
    before = (tmp_path / train.CHECKPOINT_FILE).read_bytes()
    with pytest.raises(ValueError, match="'lr': 0.01"):  # refused when the caller allows no change
        train.fit(tiny_model(), x, y, **{**sgd, "epochs": 2, "lr": 0.001}, resume=True, allow_changes=())
    assert (tmp_path / train.CHECKPOINT_FILE).read_bytes() == before
    stream, started = io.StringIO(), []
    history = train.fit(tiny_model(), x, y, **{**sgd, "epochs": 2, "lr": 0.001, "verbose": 1}, schedule="exponential",
                        resume=True, stream=stream, on_start=started.append)
    assert history.changes == [{"epoch": 2, "option": "lr", "from": 0.01, "to": 0.001},
                               {"epoch": 2, "option": "schedule", "from": "none", "to": "exp:0.9"}]
    assert started == [history] and "resumed with lr 0.001 from epoch 2 (was 0.01)" in stream.getvalue()
    assert [row["lr"] for row in history.epochs] == [0.01, pytest.approx(0.001 * 0.9)]
    _, document = load_archive(tmp_path / train.CHECKPOINT_FILE)
    assert document["training"]["history"]["changes"] == history.changes
