"""``mpiexec -n 2 cnn train`` against ``cnn train --shards 2`` (cnn/distributed.py), and how a job fails.

The oracle of the two-rank run is the one-process run with two shards: the same step by definition, computed
by other code paths (no MPI, both shards in one process); the two must agree bit for bit. Skipped without
mpi4py or an ``mpiexec``. Open MPI needs its run-as-root and oversubscribe settings in containers and CI.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")

ROOT = Path(__file__).resolve().parent.parent
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec")

MODEL = "conv4k3 relu, bn, maxpool2, flatten, dropout0.3, dense10 softmax"
# 200 images, the last 40 for validation: batches of 45, 45, 45, 25 rows, shards of 23/22 and 13/12.
ARGS = ["--data", "fashion-mnist-small", "--limit", "200", "--validation-split", "0.2",
        "--batch-size", "45", "--model", MODEL, "--threads", "1", "--seed", "3"]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"):
        env.pop(name, None)
    return env


def _cnn(*args):
    return [sys.executable, str(ROOT / "cli.py"), "train", *args]


def _mpiexec(*programs, timeout=120):
    """``mpiexec --oversubscribe -n 1 PROGRAM : -n 1 PROGRAM ...`` (one rank per program)."""
    command = [MPIEXEC, "--oversubscribe"]
    for i, program in enumerate(programs):
        command += ([":"] if i else []) + ["-n", "1", *program]
    start = time.perf_counter()
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    return result, time.perf_counter() - start


def _metrics(folder):
    document = json.loads((folder / "metrics.json").read_text())
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")}
            for row in document["epochs"]]


def test_two_ranks_equal_two_shards_in_one_process_bit_for_bit(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local = subprocess.run(_cnn(*ARGS, "--epochs", "2", "--shards", "2", "--out", str(one)), env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    run = _cnn(*ARGS, "--epochs", "2", "--out", str(two))
    result, _ = _mpiexec(run, run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test: loss") == 1  # rank 0 alone prints
    with np.load(one / "model.npz") as a, np.load(two / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key
    with np.load(one / "checkpoint.npz") as a, np.load(two / "checkpoint.npz") as b:
        for key in a.files:
            if a[key].dtype.kind == "f":
                assert np.array_equal(a[key], b[key]), key
    assert _metrics(one) == _metrics(two)
    assert json.loads((two / "run.json").read_text())["options"]["shards"] == 2


FAST = ["--data", "fashion-mnist-small", "--limit", "64", "--epochs", "1", "--batch-size", "32",
        "--model", "flatten, dense10 softmax", "--threads", "1", "--mpi-timeout", "5"]


def test_ranks_that_disagree_stop_together_with_one_line(tmp_path):
    """Rank 1 is given another seed: the start-of-run check names what differs; every rank ends, status 2."""
    out = str(tmp_path / "run")
    result, seconds = _mpiexec(_cnn(*FAST, "--out", out), _cnn(*FAST, "--out", out, "--seed", "1"))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cnn: error:")]
    assert len(errors) == 1 and "disagree" in errors[0] and "rank 1" in errors[0], result.stderr
    parts = errors[0].split("rank 1 (")[1].split(")")[0].split(", ")
    assert parts == ["model", "options", "weights"]  # the seed is in the model and the options; the data agree
    assert not (tmp_path / "run" / "model.npz").exists()


def test_a_rank_that_never_answers_ends_the_job_at_the_timeout(tmp_path):
    """Rank 1 joins MPI and then stalls: rank 0 gives up after --mpi-timeout and aborts the job."""
    stall = [sys.executable, "-c", "from mpi4py import MPI; import time; time.sleep(120)"]
    result, seconds = _mpiexec(_cnn(*FAST, "--out", str(tmp_path / "run")), stall, timeout=90)
    assert result.returncode != 0
    assert "no answer from the other ranks" in result.stderr, result.stderr
    assert seconds < 60


def test_a_rank_that_dies_ends_the_job(tmp_path):
    """Rank 1 exits with an error before the first exchange: mpiexec ends rank 0 too, status non-zero."""
    die = [sys.executable, "-c", "from mpi4py import MPI; import os; os._exit(3)"]
    result, seconds = _mpiexec(_cnn(*FAST, "--out", str(tmp_path / "run")), die, timeout=90)
    assert result.returncode != 0
    assert seconds < 60
