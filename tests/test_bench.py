"""`cnn bench ops | train | startup`: the structure of what they return and the arithmetic of their ratios.

Never a timing threshold: the machine running the tests may be slow or busy. The smoke runs use the
smallest settings (--repeats 2, --batches 2, tiny shapes, a cold compile of one op).
"""

import json
import math

import click
import numpy as np
import pytest
from click.testing import CliRunner

from cnn import bench
from cnn.bench import Conv1dCase, ConvCase, MaxPoolCase
from cnn.bench.child import _run_child
from cnn.bench.torch_twin import copy_weights
from cnn.cli.bench import bench as bench_group

GROUP = click.Group("cnn", commands={"bench": bench_group})
ROW_KEYS = {"op", "case", "direction", "flops", "fastcnn_ms", "fastcnn_gflops", "torch_ms", "torch_gflops",
            "torch_over_fastcnn", "refcnn_case", "refcnn_ms_per_sample", "refcnn_gflops", "fastcnn_over_refcnn"}


def _invoke(*args):
    result = CliRunner().invoke(GROUP, ["bench", *args], catch_exceptions=False)
    return result


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# ops: arithmetic


def test_conv_flops_count_two_per_mac_and_backward_twice_the_forward():
    case = ConvCase(128, 32, 26, 26, 64)
    macs = 128 * 24 * 24 * 64 * 32 * 3 * 3
    assert case.out_hw == (24, 24)
    assert case.flops("forward") == 2 * macs
    assert case.flops("backward") == 4 * macs
    assert ConvCase(16, 64, 56, 56, 64, padding=1).out_hw == (56, 56)


def test_the_benchmark_has_issue_3s_layers():
    names = [case.name for case in bench.select_cases(None)]
    assert names == ["128x1x28x28->32 k3", "128x32x26x26->64 k3", "128x3x32x32->32 k3 p1",
                     "16x64x56x56->64 k3 p1", "128x64x24x24 max2x2", "64x128x512->128 k8 same",
                     "64x128x512->128 k3 same"]
    assert [c.op for c in bench.select_cases("conv1d")] == ["conv1d", "conv1d"]
    assert [c.op for c in bench.select_cases("pool")] == ["max_pool2d"]
    with pytest.raises(ValueError, match="unknown op family dense"):
        bench.select_cases("conv,dense")


def test_conv1d_case_counts_same_padding_outputs_and_times_the_same_layer_in_both_engines():
    """Issue 14's 1-D rows: 'same' keeps L outputs (an even K too), and fastcnn's and PyTorch's calls give the
    same numbers on a small case (the comparison is between equal computations)."""
    case = Conv1dCase(64, 128, 512, 128, 8)
    assert case.flops("forward") == 2 * 64 * 512 * 128 * 128 * 8
    assert case.flops("forward+backward") == 3 * case.flops("forward")
    torch = pytest.importorskip("torch")
    import fastcnn

    small = Conv1dCase(3, 4, 11, 5, 4)
    a = small.arrays()
    ours, theirs = small.calls(fastcnn, a), small.torch_calls(torch, a)
    np.testing.assert_allclose(ours["forward"](), theirs["forward"]().numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(ours["backward"](), theirs["backward"]()):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_ops_row_ratios():
    case = ConvCase(8, 4, 10, 10, 6)
    ref = case.scaled()
    seconds = {"fastcnn": 0.010, "torch": 0.030, "refcnn": 2.0}
    row = bench.ops_row(case, "backward", seconds, ref)
    assert set(row) == ROW_KEYS
    assert row["torch_over_fastcnn"] == pytest.approx(3.0)  # above 1: fastcnn faster
    assert row["fastcnn_ms"] == pytest.approx(10.0) and row["torch_ms"] == pytest.approx(30.0)
    assert row["fastcnn_gflops"] == pytest.approx(case.flops("backward") / 0.010 / 1e9)
    assert row["torch_gflops"] == pytest.approx(row["fastcnn_gflops"] / 3)
    # refcnn ran another shape: compared per FLOP, not per call
    per_flop_ref = 2.0 / ref.flops("backward")
    per_flop_fast = 0.010 / case.flops("backward")
    assert row["fastcnn_over_refcnn"] == pytest.approx(per_flop_ref / per_flop_fast)
    assert row["refcnn_ms_per_sample"] == pytest.approx(2000.0 / ref.N)
    assert row["refcnn_case"] == ref.name


def test_ops_row_without_torch_or_refcnn_is_not_available_not_a_crash():
    case = MaxPoolCase(4, 2, 8, 8)
    row = bench.ops_row(case, "forward", {"fastcnn": 0.001})
    assert row["torch_ms"] is None and row["torch_over_fastcnn"] is None and row["fastcnn_over_refcnn"] is None
    assert row["fastcnn_gflops"] is None  # pooling has no FLOPs to speak of
    text = bench.render_ops({"environment": bench.environment(1) | {"repeats": 2}, "rows": [row], "notes": ["x"]})
    assert "n/a" in text and "4x2x8x8 max2x2" in text


def test_pooling_work_is_per_input_element():
    row = bench.ops_row(MaxPoolCase(4, 2, 8, 8), "backward", {"fastcnn": 0.001, "refcnn": 0.002},
                        MaxPoolCase(1, 2, 8, 8))
    assert row["fastcnn_over_refcnn"] == pytest.approx((0.002 / 128) / (0.001 / 512))


# --------------------------------------------------------------------------------------------------
# ops: smoke runs


def test_measure_ops_on_tiny_layers_gives_every_row():
    import fastcnn

    cases = [ConvCase(2, 2, 6, 6, 3, padding=1), MaxPoolCase(2, 2, 4, 4)]
    threads_before = fastcnn.get_num_threads()
    result = bench.measure_ops(threads=1, repeats=2, cases=cases)
    assert fastcnn.get_num_threads() == threads_before  # the caller's setting is given back
    json.dumps(result)  # what --json prints
    rows = result["rows"]
    assert [(r["case"], r["direction"]) for r in rows] == [
        ("2x2x6x6->3 k3 p1", "forward"), ("2x2x6x6->3 k3 p1", "backward"), ("2x2x6x6->3 k3 p1", "forward+backward"),
        ("2x2x4x4 max2x2", "forward"), ("2x2x4x4 max2x2", "backward"), ("2x2x4x4 max2x2", "forward+backward")]
    for i in (2, 5):  # the sum of the two timed rows above it, and three forwards' worth of FLOPs for conv
        assert rows[i]["fastcnn_ms"] == pytest.approx(rows[i - 2]["fastcnn_ms"] + rows[i - 1]["fastcnn_ms"])
    assert rows[2]["flops"] == 3 * rows[0]["flops"]
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["fastcnn_ms"] > 0 and row["refcnn_ms_per_sample"] > 0
        if _has_torch():
            assert row["torch_over_fastcnn"] == pytest.approx(row["torch_ms"] / row["fastcnn_ms"])
        else:
            assert row["torch_ms"] is None
    assert result["environment"]["threads"] == 1 and result["environment"]["repeats"] == 2


def test_cli_ops_json_without_refcnn():
    result = _invoke("ops", "--ops", "pool", "--repeats", "2", "--threads", "1", "--no-refcnn", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"environment", "rows", "notes"}
    assert {"threads", "cpu", "torch", "GLIBC_TUNABLES"} <= set(document["environment"])
    assert [r["direction"] for r in document["rows"]] == ["forward", "backward", "forward+backward"]
    assert all(r["refcnn_case"] is None and r["fastcnn_over_refcnn"] is None for r in document["rows"])


def test_cli_ops_table_header():
    result = _invoke("ops", "--ops", "pool", "--repeats", "1", "--threads", "1", "--no-refcnn")
    assert result.exit_code == 0, result.output
    assert "GLIBC_TUNABLES=" in result.output and "threads 1" in result.output
    assert "128x64x24x24 max2x2" in result.output and "torch/fast" in result.output


def test_cli_ops_unknown_family_is_a_usage_error():
    result = CliRunner().invoke(GROUP, ["bench", "ops", "--ops", "conv,bogus"])
    assert result.exit_code == 2
    assert "--ops" in result.output and "bogus" in result.output


# --------------------------------------------------------------------------------------------------
# train


def test_train_summary_ratios():
    rows = [{"engine": "fastcnn", "train_images_per_s": 3000.0, "inference_images_per_s": 9000.0, "peak_rss_mib": 300.0},
            {"engine": "torch", "train_images_per_s": 2000.0, "inference_images_per_s": 6000.0, "peak_rss_mib": 400.0}]
    assert bench.train_summary(rows) == {"train_fastcnn_over_torch": 1.5, "inference_fastcnn_over_torch": 1.5,
                                         "peak_rss_fastcnn_over_torch": 0.75}
    failed = [rows[0], {"engine": "torch", "error": "cannot import torch"}]
    assert set(bench.train_summary(failed).values()) == {None}


def test_train_step_is_fits_step():
    """One step equals one epoch of fit over a single batch (no dropout, so the step number is moot)."""
    import cnn

    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 1, 6, 6))
    y = np.array([0, 2, 1, 2])
    spec = "conv2k3 relu, flatten, dense3"
    fitted = cnn.Model(spec, (1, 6, 6), seed=3, dtype="float64")
    cnn.fit(fitted, x, y, epochs=1, batch_size=4, optimizer="adam", lr=0.01, verbose=0)
    stepped = cnn.Model(spec, (1, 6, 6), seed=3, dtype="float64")
    order = next(cnn.batches(4, 4, 3, 0))  # fit's batch order (seed = the model's seed, epoch 0)
    loss, correct = cnn.train.train_step(stepped, cnn.Optimizer("adam", 0.01), x[order], y[order], step=0, lr=0.01)
    assert math.isfinite(loss) and 0 <= correct <= 4
    for key, value in fitted.state_arrays().items():
        np.testing.assert_allclose(stepped.state_arrays()[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_torch_twin_has_the_same_parameters_as_the_model():
    torch = pytest.importorskip("torch")
    import cnn

    network = cnn.netspec.PRESETS[bench.PRESET]
    twin = bench.torch_model(torch, network.layers, network.input_shape)
    model = cnn.Model(network.layers, network.input_shape, engine="refcnn")
    assert sum(p.numel() for p in twin.parameters()) == model.count_params() == 1_199_882
    assert twin(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # logits, no softmax
    with pytest.raises(bench.TorchTwinError, match="AvgPool2D"):
        bench.torch_model(torch, cnn.netspec.parse_spec("conv4k3, avgpool2"), (1, 8, 8))


#: A small residual net with both shortcut kinds: a projection (conv + batch norm, the paper's option B) and
#: option A (strided identity + zero channels), batch norm, global average pooling and a dense head.
SMALL_RESNET = ("conv4k3p1 nobias, bn, relu, residual(conv8k3s2p1 nobias, bn, relu, conv8k3p1 nobias, bn "
                "| shortcut: conv8k1s2 nobias, bn) relu, residual(conv16k3s2p1 nobias, bn, relu, conv16k3p1 nobias, "
                "bn | shortcut: maxpool1s2, chpad4) relu, gap, dense10 softmax")


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_torch_twin_of_a_residual_net_gives_our_logits_and_running_statistics(training):
    """The twin is built by torch.nn (Conv2d, BatchNorm2d, AdaptiveAvgPool2d, ZeroPad3d...), from our weights:
    its logits are the reference for ours; in training both update the running statistics the same way."""
    torch = pytest.importorskip("torch")
    import cnn

    layers = cnn.netspec.parse_spec(SMALL_RESNET)
    model = cnn.Model(layers, (3, 12, 12), engine="fastcnn", seed=3, dtype="float32")
    for index, layer in enumerate(model.all_layers()):  # batch norm away from its identity start
        if layer.config.type == "BatchNorm":
            rng = np.random.default_rng(index)
            for name in ("weight", "bias", "running_mean"):
                layer.params.get(name, layer.buffers.get(name))[:] = rng.uniform(-0.5, 0.5, layer.input_shape[0])
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, layer.input_shape[0])
    twin = bench.torch_model(torch, layers, (3, 12, 12))
    copy_weights(torch, twin, model)
    twin.train(training)
    x = np.random.default_rng(0).standard_normal((5, 3, 12, 12)).astype(np.float32)
    ours = model.forward(x, training=training)
    theirs = twin(torch.from_numpy(x)).detach().numpy()
    assert ours.shape == theirs.shape == (5, 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    norms = [m for m in twin.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    mine = [layer for layer in model.all_layers() if layer.config.type == "BatchNorm"]
    assert len(norms) == len(mine) == 6
    for module, layer in zip(norms, mine):
        np.testing.assert_allclose(layer.buffers["running_var"], module.running_var.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_twin_pads_max_pooling_as_the_resnet_stem_does():
    """ResNet's stem pools 3x3/2 with padding 1: torch's max_pool2d pads with -inf, so negative inputs show it."""
    torch = pytest.importorskip("torch")
    import cnn

    layers = cnn.netspec.parse_spec("maxpool3s2p1")
    model = cnn.Model(layers, (2, 7, 7), engine="fastcnn", dtype="float32")
    x = -np.random.default_rng(2).uniform(1, 2, (3, 2, 7, 7)).astype(np.float32)
    theirs = bench.torch_model(torch, layers, (2, 7, 7))(torch.from_numpy(x)).numpy()
    assert theirs.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(model.forward(x), theirs.reshape(3, 2, 4, 4), rtol=0, atol=0)


def test_copy_weights_refuses_a_twin_of_another_net():
    torch = pytest.importorskip("torch")
    import cnn

    model = cnn.Model(cnn.netspec.parse_spec("conv4k3, flatten, dense10"), (1, 6, 6), engine="refcnn")
    other = bench.torch_model(torch, cnn.netspec.parse_spec("conv4k3, flatten, dense4, dense10"), (1, 6, 6))
    with pytest.raises(ValueError, match="3 in the twin"):
        copy_weights(torch, other, model)


def test_profile_times_each_layer_type_apart_and_changes_nothing():
    """Exclusive times: a block's own time is its total less its inner layers' (a fake clock makes it exact)."""
    import cnn
    from cnn import profiling as prof

    layers = cnn.netspec.parse_spec(SMALL_RESNET)
    plain = cnn.Model(layers, (3, 12, 12), engine="fastcnn", seed=1, dtype="float32")
    timed = cnn.Model(layers, (3, 12, 12), engine="fastcnn", seed=1, dtype="float32")
    profile = prof.profile_model(timed)
    x = np.random.default_rng(1).standard_normal((4, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(plain.forward(x, training=True), timed.forward(x, training=True))
    grad = np.ones((4, 10), np.float32)
    np.testing.assert_array_equal(plain.backward(grad), timed.backward(grad))
    kinds = {kind for kind, _ in profile.seconds}
    assert kinds == {"Conv2D", "BatchNorm", "Activation", "Residual", "MaxPool2D", "ChannelPad", "GlobalAvgPool2D",
                     "Dense"}
    rows = prof.profile_rows(profile.seconds, 2 * sum(profile.seconds.values()))
    assert rows[-1]["layer"] == "(rest of the step)" and rows[-1]["other_share"] == pytest.approx(0.5)
    assert sum(r["forward_share"] + r["backward_share"] for r in rows[:-1]) == pytest.approx(0.5)


def test_profile_by_layer_gives_each_layer_a_row_in_model_order():
    import cnn
    from cnn import profiling as prof

    model = cnn.Model("conv4k3 relu, conv4k3 relu, flatten, dense3 softmax", (1, 8, 8), engine="fastcnn", seed=1,
                      dtype="float32")
    profile = prof.LayerProfile()
    profile.attach(model, by_layer=True)
    model.backward(np.ones_like(model.forward(np.ones((2, 1, 8, 8), np.float32), training=True)))
    profile.detach()
    assert sorted(profile.seconds) == [(f"{i:02d} {kind}", phase) for i, kind in
                                       enumerate(["Conv2D", "Conv2D", "Flatten", "Dense"])
                                       for phase in ("backward", "forward")]


def test_profile_subtracts_inner_time_from_a_block(monkeypatch):
    from cnn import profiling as prof

    clock = iter([0.0, 1.0, 4.0, 10.0])  # block starts, inner starts, inner ends (3 s), block ends (10 s)
    monkeypatch.setattr(prof.time, "perf_counter", lambda: next(clock))

    class Fake:
        def __init__(self, kind, inner=None):
            self.config = type("C", (), {"type": kind})()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward(x) if self.inner else x

        def backward(self, g):
            return g

    inner = Fake("Conv2D")
    block = Fake("Residual", inner)
    profile = prof.LayerProfile()
    profile.wrap(inner)
    profile.wrap(block)
    block.forward(0)
    assert dict(profile.seconds) == {("Conv2D", "forward"): 3.0, ("Residual", "forward"): 7.0}


def test_cli_train_json_smoke():
    result = _invoke("train", "--batches", "2", "--warmup", "1", "--batch-size", "8", "--threads", "1",
                     "--data", "fashion-mnist-small", "--profile", "--no-keras", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"environment", "rows", "ratios", "notes", "profile"}
    assert document["environment"]["model"] == "keras-mnist"
    profiled = {row["layer"] for row in document["profile"]}
    assert profiled == {"Conv2D", "MaxPool2D", "Dropout", "Flatten", "Dense", "(optimizer update)",
                        "(rest of the step)"}
    assert all(row["forward_share"] >= 0 for row in document["profile"][:-2])
    fast, torch_row = document["rows"]
    assert fast["engine"] == "fastcnn" and torch_row["engine"] == "torch"
    assert "error" not in fast, fast
    assert fast["train_images_per_s"] > 0 and fast["inference_images_per_s"] > 0
    assert fast["peak_rss_mib"] > 0 and fast["idle_rss_mib"] > 0
    assert "fashion-mnist" in fast["data"]
    if _has_torch():
        assert "error" not in torch_row, torch_row
        assert document["ratios"]["train_fastcnn_over_torch"] == pytest.approx(
            fast["train_images_per_s"] / torch_row["train_images_per_s"])
        assert document["ratios"]["peak_rss_fastcnn_over_torch"] == pytest.approx(
            fast["peak_rss_mib"] / torch_row["peak_rss_mib"])
    else:
        assert torch_row["error"] and document["ratios"]["train_fastcnn_over_torch"] is None


def test_render_train_marks_a_failed_engine_not_available():
    rows = [{"engine": "fastcnn", "version": "0.1.0", "train_images_per_s": 1000.0, "inference_images_per_s": 5000.0,
             "peak_rss_mib": 300.0, "idle_rss_mib": 100.0},
            {"engine": "torch", "error": "cannot import torch", "idle_rss_mib": None}]
    text = bench.render_train({"environment": bench.environment(2), "rows": rows,
                               "ratios": bench.train_summary(rows), "notes": ["torch: cannot import torch"]})
    torch_line = next(line for line in text.splitlines() if line.startswith("torch "))
    assert torch_line.split()[1:] == ["n/a"] * 5
    assert "1,000" in text and "fastcnn/torch" in text


def test_a_failing_child_reports_instead_of_raising():
    result = _run_child({"kind": "no-such-kind"})
    assert "no-such-kind" in result["error"] and result["wall_s"] > 0


# --------------------------------------------------------------------------------------------------
# startup


def test_measure_startup_smoke():
    relu = "import numpy, fastcnn; fastcnn.relu(numpy.ones(3, numpy.float32))"
    result = bench.measure_startup(warm_runs=1, ops=["relu"], first_result_code=relu)
    json.dumps(result)
    measures = [r["measure"] for r in result["rows"]]
    assert measures[0].startswith("cold") and measures[1].startswith("warm: first result")
    assert len(measures) == 5 and all(r["seconds"] > 0 for r in result["rows"])
    assert measures[-1] == "context: one cached Numba function"
    assert result["environment"]["cache"]["compiled_files"] >= 2  # relu in float32 and float64
    assert "x (float32, float64) over 1 ops" in result["rows"][0]["detail"]
    text = bench.render_startup(result)
    assert "cold: every kernel compiled" in text and relu in text


@pytest.mark.parametrize("args, fragment", [
    (["--data", "/nonexistent"], "/nonexistent"),
    (["--data", "fashion-mnist-small", "--batch-size", "100000000"], "--batch-size 100000000"),
    (["--data", "fashion-mnist-small", "--model", "resnet20-2"], "did you mean resnet20-28"),
    (["--data", "fashion-mnist-small", "--model", "resnet20"], "takes 3x32x32 images; the data's are 1x28x28"),
    (["--data", "random:3x32x32:10"], "takes 1x28x28 images; the data's are 3x32x32"),
    (["--data", "random:1x28x28:11"], "keras-mnist scores 10 classes; the data has 11"),
    (["--data", "random:3x32"], "random:CxHxW:CLASSES"),
    (["--data", "random:1x28x28:ten"], "Received data='random:1x28x28:ten'"),
    (["--data", "random:3x4000x4000:10", "--model", "resnet20"], "CNN_MAX_ARRAY_BYTES"),
], ids=["missing-data", "batches-over-the-size-limit", "unknown-model", "model-for-other-images",
        "random-of-another-size", "random-with-more-classes", "random-not-an-image", "random-bad-classes",
        "random-over-the-size-limit"])
def test_cli_train_bad_input_is_one_line_and_exit_2_before_any_child(args, fragment, monkeypatch):
    import cnn.cli.bench as command

    monkeypatch.setattr(command, "measure_train", lambda *a, **k: pytest.fail("measured despite a bad input"))
    result = CliRunner().invoke(GROUP, ["bench", "train", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnn: error: ") and fragment in lines[0]
    assert "Traceback" not in result.output and "n/a" not in result.output


def test_cli_train_exits_1_when_an_engine_failed(monkeypatch):
    import cnn.cli.bench as command

    rows = [{"engine": "fastcnn", "error": "child exited with status 1: RuntimeError: boom"},
            {"engine": "torch", "error": "cannot import torch: No module named 'torch'"}]
    result_doc = {"environment": bench.environment(1), "rows": rows, "ratios": bench.train_summary(rows), "notes": []}
    monkeypatch.setattr(command, "measure_train", lambda *a, **k: result_doc)
    result = CliRunner().invoke(GROUP, ["bench", "train", "--data", "fashion-mnist-small", "--json"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "cnn: error: bench train: fastcnn: child exited with status 1: RuntimeError: boom"


def test_a_failing_child_reports_its_last_line_not_a_fragment():
    result = _run_child({"kind": "no-such-kind"})
    assert result["error"].startswith("child exited with status 1: KeyError") and "\n" not in result["error"]


def test_cli_train_passes_the_model_and_profile_on(monkeypatch):
    import cnn.cli.bench as command

    seen = []
    rows = [{"engine": "fastcnn", "train_images_per_s": 2.0, "inference_images_per_s": 4.0,
             "peak_rss_mib": 1.0}]
    profile = [{"layer": "Residual", "forward_s": 0.001, "backward_s": 0.002, "forward_share": 0.1,
                "backward_share": 0.2}, {"layer": "(rest of the step)", "forward_s": None, "backward_s": None,
                                         "forward_share": None, "backward_share": None, "other_s": 0.007,
                                         "other_share": 0.7}]

    def fake(*args, **kwargs):
        seen.append(args)
        return {"environment": bench.environment(1), "rows": rows, "ratios": bench.train_summary(rows),
                "notes": [], "profile": profile}

    monkeypatch.setattr(command, "measure_train", fake)
    result = CliRunner().invoke(GROUP, ["bench", "train", "--data", "fashion-mnist-small", "--model", "resnet20-28",
                                        "--profile"])
    assert result.exit_code == 0, result.output
    assert seen[0][-2:] == ("resnet20-28", True)
    residual = next(line for line in result.output.splitlines() if line.startswith("Residual"))
    assert residual.split() == ["Residual", "1.00", "2.00", "10.0", "20.0"]
    assert "70.0" in next(line for line in result.output.splitlines() if line.startswith("(rest of the step)"))


def _fit_small_resnet(profile=None):
    """Two epochs of SMALL_RESNET (batch norm, residual adds, dropout-free) with validation, seed 3."""
    import cnn

    rng = np.random.default_rng(3)
    x = rng.standard_normal((24, 3, 12, 12)).astype(np.float32)
    y = rng.integers(0, 10, 24)
    model = cnn.Model(cnn.netspec.parse_spec(SMALL_RESNET), (3, 12, 12), engine="fastcnn", seed=3, dtype="float32")
    optimizer = cnn.Optimizer("adam", 1e-3)
    if profile is None:
        cnn.fit(model, x, y, epochs=2, batch_size=8, optimizer=optimizer, validation_split=0.25, verbose=0)
    else:
        with profile.attached(model, optimizer):
            cnn.fit(model, x, y, epochs=2, batch_size=8, optimizer=optimizer, validation_split=0.25, verbose=0,
                    profile=profile)
    return model, optimizer


def test_fit_with_a_profile_ends_with_the_same_weights_bit_for_bit_and_counts_only_training_steps():
    from cnn import profiling

    plain, _ = _fit_small_resnet()
    profile = profiling.LayerProfile()
    timed, optimizer = _fit_small_resnet(profile)
    for (key, layer, p), (key2, layer2, p2) in zip(plain.parameters(), timed.parameters()):
        assert key == key2
        np.testing.assert_array_equal(layer.params[p], layer2.params[p2])
    assert profile.steps == 2 * 3  # 18 training images (the last quarter validates), batches of 8: 3 per epoch
    assert all("forward" not in vars(layer) for layer in timed.all_layers()) and "step" not in vars(optimizer)
    rows = {row["layer"]: row for row in profile.rows()}
    assert {"Conv2D", "BatchNorm", "Residual", profiling.OPTIMIZER_ROW, profiling.DATA_ROW,
            profiling.REST_ROW} <= set(rows)
    shares = [r["forward_share"] + r["backward_share"] for r in rows.values() if "other_s" not in r]
    shares += [r["other_share"] for r in rows.values() if "other_s" in r]
    assert sum(shares) == pytest.approx(1.0) and rows[profiling.REST_ROW]["other_s"] >= 0


def test_a_paused_profile_counts_nothing(monkeypatch):
    from cnn import profiling

    clock = iter([0.0, 2.0])
    monkeypatch.setattr(profiling.time, "perf_counter", lambda: next(clock))

    class Fake:
        config = type("C", (), {"type": "Dense"})()

        def forward(self, x):
            return x + 1

        def backward(self, g):
            return g

    layer, profile = Fake(), profiling.LayerProfile()
    profile.wrap(layer)
    with profile.paused():
        assert layer.forward(1) == 2
    assert not profile.seconds
    assert layer.forward(1) == 2 and dict(profile.seconds) == {("Dense", "forward"): 2.0}
    profile.detach()
    assert "forward" not in vars(layer) and layer.forward(1) == 2


# --------------------------------------------------------------------------------------------------
# train: synthetic data (--data random[:CxHxW[:CLASSES]])


@pytest.mark.parametrize("text, preset, expected", [
    ("random", "resnet20", ((3, 32, 32), 10)),  # the preset's own input and class count
    ("random", "resnet20-28", ((1, 28, 28), 10)),
    ("random:3x32x32", "keras-mnist", ((3, 32, 32), 10)),
    ("random:3x32x32:100", "resnet20", ((3, 32, 32), 100)),
])
def test_synthetic_data_text(text, preset, expected):
    assert bench.parse_synthetic(text, preset) == expected


def test_synthetic_batches_are_the_same_in_every_child_and_fit_the_shape():
    from cnn.bench.train import _training_batches

    first, described = _training_batches("random:3x5x4:7", 6, 3)
    again, _ = _training_batches("random:3x5x4:7", 6, 3)
    assert len(first) == 3 and "3x5x4, 7 classes" in described
    for (x, y), (x2, y2) in zip(first, again):
        assert x.shape == (6, 3, 5, 4) and x.dtype == np.float32 and y.dtype == np.int64 and y.shape == (6,)
        assert 0 <= x.min() and x.max() < 1 and 0 <= y.min() and y.max() < 7
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(first[0][0], first[1][0])  # batches differ from one another


def test_cli_train_random_data_for_the_cifar_resnet_reads_no_data_set(monkeypatch):
    import cnn.cli.bench as command

    seen = []
    rows = [{"engine": "fastcnn", "train_images_per_s": 2.0, "inference_images_per_s": 4.0, "peak_rss_mib": 1.0}]

    def fake(*args, **kwargs):
        seen.append(args)
        return {"environment": bench.environment(1), "rows": rows, "ratios": bench.train_summary(rows), "notes": []}

    monkeypatch.setattr(command, "measure_train", fake)
    monkeypatch.setattr(command, "load_data", lambda *a: pytest.fail("a synthetic --data reads no data set"))
    result = CliRunner().invoke(GROUP, ["bench", "train", "--model", "resnet20", "--data", "random:3x32x32:10"])
    assert result.exit_code == 0, result.output
    assert seen[0][3] == "random:3x32x32:10" and seen[0][5] == "resnet20"


def test_child_train_on_random_data_runs_each_engine_on_the_same_batches():
    """The children's work, in this process (at the default thread count, which it sets): fastcnn (and torch
    when installed) on synthetic images."""
    from cnn.bench.train import _child_train
    from cnn.threads import default_threads

    spec = {"kind": "train", "threads": default_threads(), "batches": 1, "batch_size": 4, "warmup": 1,
            "model": "keras-mnist", "data": "random:1x28x28:10", "profile": False}
    for engine in ("fastcnn", "torch") if _has_torch() else ("fastcnn",):
        row = _child_train({**spec, "engine": engine})
        assert "error" not in row, row
        assert row["data"].startswith("synthetic: uniform [0, 1) float32 images of 1x28x28, 10 classes")
        assert row["train_images_per_s"] > 0 and row["inference_images_per_s"] > 0


# --------------------------------------------------------------------------------------------------
# train: the Keras row (optional: skipped here when Keras is not installed; never installed by CI)


def _keras():
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("preset, published", [
    ("keras-mnist", 1_199_882),  # Keras's "Simple MNIST convnet" example prints Total params: 1,199,882
    ("resnet20-28", None),
])
def test_keras_twin_has_our_parameter_counts(preset, published):
    keras = _keras()
    from cnn.bench.keras_twin import keras_model

    network = cnn_netspec().PRESETS[preset]
    ours = network.summary()
    twin = keras_model(keras, network.layers, network.input_shape)
    trainable = sum(int(np.prod(w.shape)) for w in twin.trainable_weights)
    assert (twin.count_params(), trainable) == (ours.total_params, ours.trainable_params)
    if published is not None:
        assert twin.count_params() == published


def cnn_netspec():
    from cnnbase import netspec

    return netspec


def _by_creation(layers, cls):
    """Keras names layers of a class conv2d, conv2d_1, conv2d_2... in the order they are made."""
    def index(layer):
        tail = layer.name.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else 0
    return sorted((layer for layer in layers if isinstance(layer, cls)), key=index)


def test_keras_twin_computes_what_our_model_computes_channels_last():
    """The twin of the CIFAR ResNet-20 for 28x28 (strided 3x3 convolutions padded 1, projection shortcuts,
    batch norm, global pooling), given our weights (kernels (O, I, kh, kw) -> (kh, kw, I, O), dense (O, I) ->
    (I, O)): its inference output on channels-last images is ours, transposed."""
    keras = _keras()
    import cnn
    from cnn.bench.keras_twin import keras_model

    network = cnn_netspec().PRESETS["resnet20-28"]
    model = cnn.Model(network.layers, network.input_shape, engine="fastcnn", seed=5, dtype="float32")
    rng = np.random.default_rng(5)
    for layer in model.all_layers():  # running statistics away from (0, 1), so that they matter
        if "running_var" in layer.buffers:
            layer.buffers["running_mean"][...] = rng.standard_normal(layer.buffers["running_mean"].shape)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, layer.buffers["running_var"].shape)
    twin = keras_model(keras, network.layers, network.input_shape)
    ours = {t: [layer for layer in model.all_layers() if layer.config.type == t] for t in ("Conv2D", "BatchNorm",
                                                                                          "Dense")}
    pairs = [(ours["Conv2D"], keras.layers.Conv2D), (ours["BatchNorm"], keras.layers.BatchNormalization),
             (ours["Dense"], keras.layers.Dense)]
    for mine, cls in pairs:
        theirs = _by_creation(twin.layers, cls)
        assert len(mine) == len(theirs)
        for layer, keras_layer in zip(mine, theirs):
            p, b = layer.params, layer.buffers
            if cls is keras.layers.Conv2D:
                weights = [p["weight"].transpose(2, 3, 1, 0)] + ([p["bias"]] if "bias" in p else [])
            elif cls is keras.layers.Dense:
                weights = [p["weight"].T, p["bias"]]
            else:
                weights = [p["weight"], p["bias"], b["running_mean"], b["running_var"]]
            keras_layer.set_weights(weights)
    x = rng.uniform(0, 1, (3, *network.input_shape)).astype(np.float32)
    expected = model.forward(x, training=False)
    got = np.asarray(twin(x.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def test_keras_twin_refuses_a_layer_it_does_not_translate():
    keras = _keras()
    from cnn.bench.keras_twin import KerasTwinError, keras_model

    network = cnn_netspec().PRESETS["lenet5"]  # tanh activations
    with pytest.raises(KerasTwinError, match="tanh"):
        keras_model(keras, network.layers, network.input_shape)


def test_keras_child_trains_and_infers_on_random_data():
    keras = _keras()
    from cnn.bench.train import _child_train
    from cnn.threads import default_threads

    row = _child_train({"kind": "train", "engine": "keras", "threads": default_threads(), "batches": 2,
                        "batch_size": 4, "warmup": 1, "model": "keras-mnist", "data": "random", "profile": False})
    assert "error" not in row and "skipped" not in row, row
    assert row["keras_params"] == 1_199_882 and row["version"].startswith(keras.__version__ + " (")
    assert row["train_images_per_s"] > 0 and row["inference_images_per_s"] > 0 and row["peak_rss_mib"] > 0


def _fake_children(monkeypatch, engines_seen):
    from cnn.bench import train as module

    def fake(spec):
        engines_seen.append((spec["kind"], spec["engine"]))
        if spec["kind"] == "idle":
            return {"engine": spec["engine"], "peak_rss_mib": 10.0}
        if spec["engine"] == "keras" and spec["model"] == "lenet5":
            return {"engine": "keras", "skipped": "no Keras twin of --model lenet5: activation 'tanh'"}
        speed = {"fastcnn": 2.0, "torch": 1.0, "keras": 4.0}[spec["engine"]]
        return {"engine": spec["engine"], "version": "1", "data": "d", "train_images_per_s": speed,
                "inference_images_per_s": speed, "peak_rss_mib": 20.0 * speed}

    monkeypatch.setattr(module, "_run_child", fake)
    return module


def test_measure_train_adds_a_keras_row_and_its_ratios_when_installed(monkeypatch):
    seen = []
    module = _fake_children(monkeypatch, seen)
    monkeypatch.setattr(module, "_installed", lambda name: True)
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random")
    assert [r["engine"] for r in result["rows"]] == ["fastcnn", "torch", "keras"]
    assert result["ratios"]["train_fastcnn_over_keras"] == 0.5 and result["ratios"]["train_fastcnn_over_torch"] == 2
    assert result["ratios"]["peak_rss_fastcnn_over_keras"] == 0.5
    text = module.render_train(result)
    assert next(line for line in text.splitlines() if line.startswith("fastcnn/keras")).split()[1:] == [
        "0.50", "0.50", "0.50"]
    skipped = module.measure_train(batches=1, batch_size=2, threads=1, data="random", model="lenet5")
    assert [r["engine"] for r in skipped["rows"]] == ["fastcnn", "torch"]
    assert any(n.startswith("keras: no Keras twin of --model lenet5") for n in skipped["notes"])


def test_measure_train_without_keras_says_so_and_starts_no_keras_child(monkeypatch):
    seen = []
    module = _fake_children(monkeypatch, seen)
    monkeypatch.setattr(module, "_installed", lambda name: False)
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random")
    assert [r["engine"] for r in result["rows"]] == ["fastcnn", "torch"]
    assert not [s for s in seen if s[1] == "keras"] and "train_fastcnn_over_keras" not in result["ratios"]
    assert "keras: not installed, row skipped (optional: pip install tensorflow-cpu" in "\n".join(result["notes"])
    assert "fastcnn/keras" not in module.render_train(result)
    off = module.measure_train(batches=1, batch_size=2, threads=1, data="random", keras=False)
    assert not any(n.startswith("keras") for n in off["notes"])


# --------------------------------------------------------------------------------------------------
# train: per-step medians, the best peer, --optimizer and --load (issue 16)


def test_step_figures_come_from_the_median_step():
    """Steps of 100, 200 and 600 ms with batches of 10: median 200 ms, so 50 images/s; the mean step is 300 ms,
    33.3 images/s (hand-worked)."""
    from cnn.bench.train import step_figures

    got = step_figures("train", [0.1, 0.2, 0.6], 10)
    assert got["train_images_per_s"] == pytest.approx(50.0)
    assert got["train_mean_images_per_s"] == pytest.approx(100 / 3)
    assert (got["train_step_ms_median"], got["train_step_ms_min"], got["train_step_ms_max"]) == pytest.approx(
        (200.0, 100.0, 600.0))


def test_best_peer_is_the_faster_peer_per_column_and_the_smaller_for_memory():
    rows = [{"engine": "fastcnn", "train_images_per_s": 3000.0, "inference_images_per_s": 9000.0,
             "peak_rss_mib": 300.0},
            {"engine": "torch", "train_images_per_s": 2000.0, "inference_images_per_s": 6000.0, "peak_rss_mib": 400.0},
            {"engine": "keras", "train_images_per_s": 2500.0, "inference_images_per_s": 4000.0, "peak_rss_mib": 500.0}]
    got = bench.best_peer_summary(rows)
    assert (got["train_best_peer"], got["inference_best_peer"], got["peak_rss_best_peer"]) == ("keras", "torch",
                                                                                                 "torch")
    assert got["train_fastcnn_over_best_peer"] == pytest.approx(1.2)
    assert got["inference_fastcnn_over_best_peer"] == pytest.approx(1.5)
    assert got["peak_rss_fastcnn_over_best_peer"] == pytest.approx(0.75)
    failed_keras = rows[:2] + [{"engine": "keras", "error": "boom"}]
    assert bench.best_peer_summary(failed_keras)["train_fastcnn_over_best_peer"] == pytest.approx(1.5)
    assert set(bench.best_peer_summary(rows[:1]).values()) == {None}


def test_render_train_shows_the_best_peer_row_only_with_two_peers_and_the_load(monkeypatch):
    seen = []
    module = _fake_children(monkeypatch, seen)
    monkeypatch.setattr(module, "_installed", lambda name: True)
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random")
    text = module.render_train(result)  # fake speeds: fastcnn 2, torch 1, keras 4; memory 40, 20, 80 MiB
    best = next(line for line in text.splitlines() if line.startswith("fastcnn/best peer"))
    assert best.split()[2:] == ["keras/keras/torch", "0.50", "0.50", "2.00"]
    assert "background load: none (--load 0)" in text
    assert result["environment"]["load"] == 0 and result["environment"]["optimizer"] == "adam"
    monkeypatch.setattr(module, "_installed", lambda name: False)
    one_peer = module.render_train(module.measure_train(batches=1, batch_size=2, threads=1, data="random"))
    assert not any(line.startswith("fastcnn/best peer") for line in one_peer.splitlines())


def test_measure_train_runs_every_child_under_the_load_and_stops_it(monkeypatch):
    """--load 2: two busy processes alive while each child runs, none left after, the header says so."""
    from cnn.bench import train as module

    alive, before = [], set(_busy_children())

    def child(spec):
        alive.append(len(_settled(lambda: set(_busy_children()) - before, 2)))
        if spec["kind"] == "idle":
            return {"engine": spec["engine"], "peak_rss_mib": 1.0}
        return {"engine": spec["engine"], "train_images_per_s": 1.0, "inference_images_per_s": 1.0,
                "peak_rss_mib": 2.0}

    monkeypatch.setattr(module, "_run_child", child)
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random", keras=False, load=2)
    assert alive == [2, 2, 2, 2], alive
    assert set(_busy_children()) - before == set()
    assert result["environment"]["load"] == 2
    assert "background load: 2 busy processes (pure-Python loops, --load 2)" in module.render_train(result)


def _settled(read, size: int, timeout: float = 10.0):
    """``read()`` once it has ``size`` items, or its last value after ``timeout`` seconds: a process started a
    moment ago can be missing from /proc's view of its parent's children for a few milliseconds."""
    import time

    deadline = time.monotonic() + timeout
    value = read()
    while len(value) != size and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


def _busy_children() -> list[int]:
    """Pids of this process's living children that run the busy loop (read from /proc)."""
    import os
    from pathlib import Path

    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if int(fields.get("PPid", "0")) == os.getpid() and b"getppid" in cmdline \
                and not fields.get("State", "").startswith("Z"):
            pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("stop_with", [RuntimeError, KeyboardInterrupt])
def test_background_load_stops_its_processes_however_the_block_ends(stop_with):
    from cnn.bench.load import background_load

    with pytest.raises(stop_with):
        with background_load(2) as processes:
            assert [p.poll() for p in processes] == [None, None] and len(_settled(_busy_children, 2)) == 2
            raise stop_with()
    assert all(p.returncode is not None for p in processes) and _busy_children() == []


def test_a_busy_process_ends_by_itself_when_its_parent_dies():
    """A parent killed before it can stop its load (os._exit: no finally runs) leaves nothing spinning."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    code = "import os; from cnn.bench.load import start_load; print(start_load(1)[0].pid, flush=True); os._exit(0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parents[1]))
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    from pathlib import Path

    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    return not next(line for line in status.splitlines() if line.startswith("State:")).split()[1] == "Z"


@pytest.mark.parametrize("name", ["adam", "adadelta", "sgd", "rmsprop"])
def test_bench_optimizer_is_the_same_rule_in_fastcnn_and_torch(name):
    """Three steps of the benchmark's optimizer on one weight array give the same weights in fastcnn and in
    torch.optim (the oracle): the same rule and hyperparameters in both engines. Gradients of order 1 keep
    epsilon's placement (Adam, RMSprop: specs/optim.md) below the tolerance."""
    torch = pytest.importorskip("torch")
    import fastcnn
    from cnn.bench.train import fastcnn_optimizer, torch_optimizer

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(3)]
    ours, theirs = fastcnn_optimizer(name), torch.nn.Parameter(torch.tensor(weight))
    updater = torch_optimizer(torch, [theirs], name)
    current = weight
    for grad in grads:
        current = ours.step(fastcnn, [("w", current, grad)], ours.lr)["w"]
        theirs.grad = torch.tensor(grad)
        updater.step()
    np.testing.assert_allclose(current, theirs.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert not np.allclose(current, weight)


def test_bench_adadelta_is_the_seeds_keras_2_adadelta():
    """The seeds' mnist_cnn.py compiled with Keras 2's Adadelta(): lr 1.0, rho 0.95, epsilon K.epsilon() = 1e-7
    (Keras 2.2 optimizers.py defaults, specs/optim.md); every engine is given exactly these."""
    from cnn.bench.train import OPTIMIZERS, fastcnn_optimizer

    assert OPTIMIZERS["adadelta"][0] == {"lr": 1.0, "rho": 0.95, "eps": 1e-7}
    made = fastcnn_optimizer("adadelta")
    assert (made.lr, made.hyperparameters["rho"], made.hyperparameters["eps"]) == (1.0, 0.95, 1e-7)


@pytest.mark.parametrize("name, keras_config", [
    ("adam", {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}),
    ("sgd", {"learning_rate": 0.01, "momentum": 0.0}),
    ("rmsprop", {"learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-7}),
])
def test_bench_optimizer_in_keras_has_the_same_hyperparameters(name, keras_config):
    keras = _keras()
    from cnn.bench.train import keras_optimizer

    config = keras_optimizer(keras, name).get_config()
    assert {key: pytest.approx(config[key]) for key in keras_config} == keras_config


@pytest.mark.parametrize("args, fragment", [
    (["--optimizer", "adagrad"], "'adagrad' is not one of"),
    (["--load", str(bench.MAX_LOAD + 1)], f"{bench.MAX_LOAD + 1} is not in the range"),
])
def test_cli_train_refuses_an_unknown_optimizer_and_too_much_load(args, fragment, monkeypatch):
    import cnn.cli.bench as command

    monkeypatch.setattr(command, "measure_train", lambda *a, **k: pytest.fail("measured despite a bad input"))
    result = CliRunner().invoke(GROUP, ["bench", "train", "--data", "random", *args])
    assert result.exit_code == 2 and fragment in result.output, result.output


def test_cli_train_passes_optimizer_load_and_the_default_warmup_on(monkeypatch):
    import cnn.cli.bench as command

    seen = []
    rows = [{"engine": "fastcnn", "train_images_per_s": 2.0, "inference_images_per_s": 4.0, "peak_rss_mib": 1.0}]

    def fake(*args, **kwargs):
        seen.append((args, kwargs))
        return {"environment": bench.environment(1), "rows": rows, "ratios": bench.train_summary(rows), "notes": []}

    monkeypatch.setattr(command, "measure_train", fake)
    result = CliRunner().invoke(GROUP, ["bench", "train", "--data", "random", "--optimizer", "adadelta", "--load", "1"])
    assert result.exit_code == 0, result.output
    args, kwargs = seen[0]
    assert args[4] == 10 and kwargs["optimizer"] == "adadelta" and kwargs["load"] == 1


def test_measure_train_refuses_an_unknown_optimizer_before_any_child(monkeypatch):
    from cnn.bench import train as module

    monkeypatch.setattr(module, "_run_child", lambda spec: pytest.fail("a child started"))
    with pytest.raises(ValueError, match="optimizer.*one of adam, adadelta, sgd, rmsprop.*'adagrad'"):
        module.measure_train(batches=1, batch_size=2, threads=1, data="random", optimizer="adagrad")


# --------------------------------------------------------------------------------------------------
# train --rounds: the engines in turn, medians of figures and of each round's own ratios (issue 16)


def _round_children(monkeypatch, speeds, fail_round=None):
    """Fake children whose images/s come from ``speeds[engine][round]`` (the round counted per engine); the
    order of the calls is recorded. ``fail_round``: (engine, round) whose child fails."""
    from cnn.bench import train as module

    calls, count = [], {}

    def fake(spec):
        calls.append((spec["kind"], spec["engine"]))
        if spec["kind"] == "idle":
            return {"engine": spec["engine"], "peak_rss_mib": 5.0}
        r = count[spec["engine"]] = count.get(spec["engine"], -1) + 1
        if (spec["engine"], r) == fail_round:
            return {"engine": spec["engine"], "error": "boom"}
        speed = speeds[spec["engine"]][r]
        return {"engine": spec["engine"], "version": "1", "data": "d", "train_images_per_s": speed,
                "inference_images_per_s": 2 * speed, "peak_rss_mib": 10.0 + r}

    monkeypatch.setattr(module, "_run_child", fake)
    monkeypatch.setattr(module, "_installed", lambda name: True)
    return module, calls


def test_rounds_run_the_engines_in_turn_and_take_medians_of_figures_and_of_each_rounds_ratios(monkeypatch):
    # per round: fastcnn 3, 6, 4; torch 1, 1, 1; keras 2, 2, 1 -> best peer keras, keras, keras (tie-free)
    speeds = {"fastcnn": [3.0, 6.0, 4.0], "torch": [1.0, 1.0, 1.0], "keras": [2.0, 2.0, 1.5]}
    module, calls = _round_children(monkeypatch, speeds)
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random", rounds=3)
    train = [c[1] for c in calls if c[0] == "train"]
    assert train == ["fastcnn", "torch", "keras"] * 3  # in turn, not one engine's rounds back to back
    assert [c for c in calls if c[0] == "idle"] == [("idle", "fastcnn"), ("idle", "torch"), ("idle", "keras")]
    fast = next(r for r in result["rows"] if r["engine"] == "fastcnn")
    assert fast["train_images_per_s"] == 4.0 and fast["inference_images_per_s"] == 8.0  # medians of 3, 6, 4
    assert fast["peak_rss_mib"] == 12.0 and [r["train_images_per_s"] for r in fast["rounds"]] == [3.0, 6.0, 4.0]
    ratios = result["ratios"]
    # each round's own ratio over its best peer (keras): 1.5, 3.0, 2.667 -> median 2.667; the ratio of the medians
    # (4 / 2) would be 2.0: the rounds are compared side by side, not across rounds
    assert ratios["train_fastcnn_over_best_peer"] == pytest.approx(4.0 / 1.5)
    assert ratios["train_best_peer"] == "keras" and len(ratios["per_round"]) == 3
    assert ratios["train_fastcnn_over_torch"] == pytest.approx(4.0)
    note = next(n for n in result["notes"] if n.startswith("rounds:"))
    assert "train 1.50, 3.00, 2.67" in note and result["environment"]["rounds"] == 3
    text = module.render_train(result)
    assert "fastcnn/best peer" in text and "rounds: 3, the engines in turn" in text


def test_one_round_is_the_benchmark_as_before(monkeypatch):
    module, calls = _round_children(monkeypatch, {"fastcnn": [3.0], "torch": [1.0], "keras": [2.0]})
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random")
    assert "per_round" not in result["ratios"] and not any("rounds" in r for r in result["rows"])
    assert result["ratios"]["train_fastcnn_over_best_peer"] == pytest.approx(1.5)
    assert not any(n.startswith("rounds:") for n in result["notes"]) and "rounds:" not in module.render_train(result)


def test_a_failed_round_fails_the_engines_row_and_its_ratios(monkeypatch):
    speeds = {"fastcnn": [3.0, 6.0], "torch": [1.0, 1.0], "keras": [2.0, 2.0]}
    module, _ = _round_children(monkeypatch, speeds, fail_round=("keras", 1))
    result = module.measure_train(batches=1, batch_size=2, threads=1, data="random", rounds=2)
    keras = next(r for r in result["rows"] if r["engine"] == "keras")
    assert keras["error"] == "boom" and keras.get("train_images_per_s") is None  # no figure from the round that ran
    assert "keras: boom (round 2)" in result["notes"]
    # round 2 has no Keras figure: its best peer is torch; the median takes both rounds' own ratios
    assert result["ratios"]["train_fastcnn_over_best_peer"] == pytest.approx((1.5 + 6.0) / 2)
    assert "train_fastcnn_over_keras" not in result["ratios"]  # as for a Keras child that failed in one run


@pytest.mark.parametrize("rounds", [0, bench.MAX_ROUNDS + 1, True, 2.0])
def test_rounds_out_of_range_are_refused_naming_rounds(rounds):
    with pytest.raises(ValueError, match="rounds"):
        bench.check_rounds(rounds)


def test_cli_train_refuses_zero_rounds_and_passes_rounds_on(monkeypatch):
    import cnn.cli.bench as command

    monkeypatch.setattr(command, "measure_train", lambda *a, **k: pytest.fail("measured despite a bad input"))
    refused = CliRunner().invoke(GROUP, ["bench", "train", "--data", "random", "--rounds", "0"])
    assert refused.exit_code == 2 and "--rounds" in refused.output, refused.output
    seen = []
    rows = [{"engine": "fastcnn", "train_images_per_s": 2.0, "inference_images_per_s": 4.0, "peak_rss_mib": 1.0}]

    def fake(*args, **kwargs):
        seen.append(kwargs)
        return {"environment": bench.environment(1), "rows": rows, "ratios": bench.train_summary(rows), "notes": []}

    monkeypatch.setattr(command, "measure_train", fake)
    result = CliRunner().invoke(GROUP, ["bench", "train", "--data", "random", "--rounds", "3"])
    assert result.exit_code == 0 and seen[-1]["rounds"] == 3, result.output
