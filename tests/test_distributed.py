"""The sharded training step in one process (``fit(shards=K)``, cnn/distributed.py).

Oracles: the unsharded path written out here from ``train_step`` and ``data.batches`` (shards=1 must be it,
bit for bit); the full-batch gradient of the reference engine refcnn in float64 (the shards' sum is the
gradient of the global batch's mean loss); ``np.array_split`` for the shard sizes; the running-statistics
formula of batch norm worked out with NumPy.
"""

import sys

import numpy as np
import pytest

from cnn import data, train
from cnn.distributed import LocalShards, make_shards, shard_bounds, sum_in_order, world_size_from_env
from cnn.layers import derive_seed
from cnn.model import Model
from cnn.optimizers import make_optimizer

SPEC = "conv3k3 relu, maxpool2, flatten, dense4 softmax"
INPUT = (1, 6, 6)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n,) + INPUT).astype(np.float32), rng.integers(0, 4, n)


class _Recorder:
    """An optimizer that keeps the gradients it is given and changes nothing."""

    def __init__(self):
        self.grads = None

    def step(self, engine, named_params, lr):
        self.grads = {key: np.array(grad, dtype=np.float64) for key, _, grad in named_params}
        return {key: param for key, param, _ in named_params}


def _sharded_grads(model, x, y, shards, step=0):
    recorder = _Recorder()
    loss, correct = train.sharded_step(model, recorder, lambda a, b: (x[a:b], y[a:b]), len(x), step=step, lr=0.1,
                                       shards=LocalShards(shards))
    return recorder.grads, loss, correct


def _reference_grads(model, x, y):
    """The full batch's gradient of the mean loss, by refcnn in float64 on the same weights."""
    twin = Model(model.configs, model.input_shape, engine="refcnn", dtype="float64", seed=model.seed)
    twin.load_state_arrays({k: v.astype(np.float64) for k, v in model.state_arrays().items()})
    recorder = _Recorder()
    loss, correct = train.train_step(twin, recorder, x.astype(np.float64), y, step=0, lr=0.1)
    return recorder.grads, loss, correct


@pytest.mark.parametrize("n, k", [(12, 1), (12, 2), (13, 3), (5, 7), (1, 2), (64, 5)])
def test_shard_bounds_are_array_split(n, k):
    sizes = [len(part) for part in np.array_split(np.arange(n), k)]
    bounds = shard_bounds(n, k)
    assert [b - a for a, b in bounds] == sizes
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(k - 1))


def test_sum_in_order_adds_left_to_right():
    rows = np.array([[1e8], [1.0], [-1e8]], dtype=np.float32)
    # ((1e8 + 1) - 1e8) in float32 is 0 (1e8 + 1 rounds to 1e8); another order would give 1.
    assert sum_in_order(rows)[0] == np.float32(0.0)
    assert sum_in_order(rows, [0, 2, 1])[0] == np.float32(1.0)


def test_one_shard_is_todays_fit_bit_for_bit():
    """fit(shards=1) against the loop of train_step over data.batches that fit ran before shards existed."""
    spec = "conv3k3 relu, batchnorm, maxpool2, flatten, dropout0.3, dense4 softmax"
    x, y = _data(40)
    fitted = Model(spec, INPUT, seed=3)
    train.fit(fitted, x, y, epochs=2, batch_size=16, verbose=0, shards=1)
    by_hand = Model(spec, INPUT, seed=3)
    optimizer, step = make_optimizer("adam"), 0
    for epoch in range(2):
        for index in data.batches(len(x), 16, 3, epoch):
            train.train_step(by_hand, optimizer, x[index], y[index], step=step, lr=optimizer.lr)
            step += 1
    for key, value in by_hand.state_arrays().items():
        assert np.array_equal(fitted.state_arrays()[key], value), key


@pytest.mark.parametrize("n, k", [(12, 2), (13, 3), (5, 7)])
def test_shard_gradients_sum_to_the_full_batch_gradient(n, k):
    """Even, uneven and empty shards (5 rows in 7 shards): the sum is the gradient of the batch's mean loss."""
    x, y = _data(n, seed=n)
    model = Model(SPEC, INPUT, seed=1, dtype="float64")
    grads, loss, correct = _sharded_grads(model, x.astype(np.float64), y, k)
    expected, expected_loss, expected_correct = _reference_grads(model, x, y)
    assert set(grads) == set(expected)
    for key in expected:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert correct == expected_correct


def test_float32_shards_agree_with_the_float64_reference():
    x, y = _data(13, seed=7)
    model = Model(SPEC, INPUT, seed=2)
    grads, _, _ = _sharded_grads(model, x, y, 3)
    expected, _, _ = _reference_grads(model, x, y)
    for key in expected:
        scale = np.abs(expected[key]).max()
        assert np.abs(grads[key] - expected[key]).max() <= 1e-6 * scale, key


def test_dropout_masks_of_a_shard_are_seeded_by_the_shard():
    """Shard r's mask comes from derive_seed(model seed, layer index, step, r); unsharded, as before."""
    model = Model("dropout0.5, flatten, dense2", (1, 4, 4), seed=11, engine="refcnn", dtype="float64")
    x = np.ones((3, 1, 4, 4))
    layer = model.layers[0]
    import refcnn
    for shard, parts in ((None, (layer.index, 5)), (0, (layer.index, 5, 0)), (2, (layer.index, 5, 2))):
        model.forward(x, training=True, step=5, shard=shard)
        expected = refcnn.dropout(x, 0.5, True, seed=derive_seed(11, *parts))
        np.testing.assert_array_equal(layer._pre, expected)


def test_batch_norm_running_statistics_are_the_mean_over_shards():
    model = Model("batchnorm, flatten, dense2", (2, 3), seed=0, dtype="float64")
    rng = np.random.default_rng(4)
    x, y = rng.normal(2.0, 3.0, (7, 2, 3)), rng.integers(0, 2, 7)
    bn = model.layers[0]
    m = bn.config.momentum
    _sharded_grads(model, x, y, 2)  # shards of 4 and 3 rows
    means, variances = [], []
    for part in (x[:4], x[4:]):
        values = part.transpose(1, 0, 2).reshape(2, -1)
        means.append((1 - m) * 0.0 + m * values.mean(axis=1))
        variances.append((1 - m) * 1.0 + m * values.var(axis=1, ddof=1))
    np.testing.assert_allclose(bn.buffers["running_mean"], (means[0] + means[1]) / 2, rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], (variances[0] + variances[1]) / 2, rtol=1e-12)


def test_an_empty_shard_leaves_batch_norm_statistics_to_the_others():
    model = Model("batchnorm, flatten, dense2", (2, 3), seed=0, dtype="float64")
    x, y = np.random.default_rng(5).normal(size=(2, 2, 3)), np.array([0, 1])
    bn = model.layers[0]
    m = bn.config.momentum
    _sharded_grads(model, x, y, 3)  # shards of 1, 1 and 0 rows: the mean over the two with rows
    values = [x[i].reshape(2, -1) for i in range(2)]
    expected = sum(m * v.mean(axis=1) for v in values) / 2
    np.testing.assert_allclose(bn.buffers["running_mean"], expected, rtol=1e-12)


def test_fit_with_shards_trains_and_is_reproducible():
    spec = "conv3k3, batchnorm, relu, maxpool2, flatten, dropout0.3, dense4 softmax"
    x, y = _data(30)
    results = []
    for _ in range(2):
        model = Model(spec, INPUT, seed=5)
        history = train.fit(model, x, y, epochs=1, batch_size=8, verbose=0, shards=3)
        results.append((history.epochs[0]["loss"], model.state_arrays()))
    assert np.isfinite(results[0][0]) and results[0][0] == results[1][0]
    for key, value in results[0][1].items():
        assert np.array_equal(value, results[1][1][key]), key


def test_shards_argument_is_checked():
    with pytest.raises(ValueError, match="shards"):
        make_shards(0)
    with pytest.raises(TypeError, match="shards"):
        make_shards(1.5)
    assert make_shards(None).size == 1 and make_shards(4).size == 4


def _train_as_rank_zero_of_two(monkeypatch, tmp_path, *args):
    """``cnn train`` in a process whose environment says it is rank 0 of 2 (no MPI is started)."""
    from click.testing import CliRunner

    from cnn.cli import cnn

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    return CliRunner().invoke(cnn, ["train", "--data", "fashion-mnist-small", "--limit", "32", "--epochs", "1",
                                    "--out", str(tmp_path / "run"), *args])


def test_under_mpi_another_shard_count_is_refused_in_one_line(monkeypatch, tmp_path):
    result = _train_as_rank_zero_of_two(monkeypatch, tmp_path, "--shards", "3")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "cnn: error: --shards 3: under mpiexec each of the 2 ranks computes one shard; leave --shards out "
        "(or give 2)"]
    assert not (tmp_path / "run").exists()


def test_under_mpi_without_mpi4py_one_line_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    result = _train_as_rank_zero_of_two(monkeypatch, tmp_path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "mpi4py is not installed" in lines[0] and "cnn-ref-fast[mpi]" in lines[0], result.output
    assert not (tmp_path / "run").exists()


def test_without_mpi_the_environment_asks_for_one_process(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert world_size_from_env() == 1
    monkeypatch.setenv("PMI_SIZE", "4")
    assert world_size_from_env() == 4
    with pytest.raises(ValueError, match="shards"):
        make_shards(3)  # under 4 ranks, 3 shards cannot be
