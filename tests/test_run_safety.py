"""A run folder survives what happens to it: two runs into one folder at once, a killed run and its stale lock
and temporary files, a full disk, a umask, and a resume that changes the learning rate after a NaN stop.

The concurrent and killed runs are real processes (`python cli.py train`), since the point is the process: its
exit status and what the kernel does with its lock when it dies. Everything else runs in-process through
click's CliRunner on the tiny data set of test_commands.
"""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnn import files
from cnn import run as runs
from cnn.files import load_archive

from test_commands import ENGINE, assert_one_line_error, run, train_args, write_tiny_data

ROOT = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_data(tmp_path_factory.mktemp("data") / "tiny.npz")


def snapshot(folder: Path) -> dict:
    """Every file of a folder and its bytes: what "nothing touched" compares."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def cli(*args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------
# The lock


@pytest.mark.skipif(not LINUX, reason="kill -9 and flock semantics as on Linux")
def test_concurrent_runs_one_fails_at_once_and_a_killed_runs_lock_is_taken_over(tiny, tmp_path):
    out = tmp_path / "run"
    first = cli(*train_args(tiny, out, epochs=100000))  # trains until killed, a checkpoint after each epoch
    try:
        wait_for(lambda: (out / "checkpoint.npz").exists() or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        before = (out / "run.json").read_bytes()
        second = cli(*train_args(tiny, out, "--overwrite", epochs=1))
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2, stderr
        assert stderr.count("\n") == 1 and stderr.startswith("cnn: error: "), stderr
        assert "another cnn train" in stderr and f"process {first.pid}" in stderr
        assert first.poll() is None  # the first run went on, its run.json as it wrote it
        assert (out / "run.json").read_bytes() == before
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert (out / runs.LOCK_FILE).exists()  # left behind by the killed run, but no longer held
    (out / ".checkpoint.npz.abcd1234.tmp").write_bytes(b"half a checkpoint")
    epoch = load_archive(out / "checkpoint.npz")[1]["training"]["epoch"]
    result = run("train", "--out", out, "--resume", "--epochs", epoch + 1, "--engine", ENGINE)
    assert result.exit_code == 0, result.output
    assert "took over the lock" in result.stderr and str(first.pid) in result.stderr
    assert not (out / runs.LOCK_FILE).exists() and not (out / ".checkpoint.npz.abcd1234.tmp").exists()
    assert load_archive(out / "checkpoint.npz")[1]["training"]["epoch"] == epoch + 1


def test_a_held_folder_is_refused_and_left_as_it_was(tiny, tmp_path):
    out = tmp_path / "run"
    assert run(*train_args(tiny, out)).exit_code == 0
    before = snapshot(out)
    with runs.lock_run_dir(out):
        for extra in (("--resume",), ("--overwrite",)):
            assert_one_line_error(run(*train_args(tiny, out, *extra, epochs=2)), 2, "another cnn train", str(out))
        assert snapshot(out) == {**before, runs.LOCK_FILE: (out / runs.LOCK_FILE).read_bytes()}
    assert snapshot(out) == before  # the lock goes with its holder


def test_the_lock_goes_on_an_error_and_a_folder_made_for_nothing_goes_too(tiny, tmp_path):
    out = tmp_path / "new" / "run"
    assert_one_line_error(run(*train_args(tiny, out, "--limit", 1000)), 2, "limit")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    assert_one_line_error(run(*train_args(tiny, kept, "--limit", 1000)), 2, "limit")
    assert list(kept.iterdir()) == []


def test_ctrl_c_before_training_is_exit_130_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    import cnn.cli.train as command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "load_data", interrupted)
    out = tmp_path / "run"
    assert_one_line_error(run(*train_args(tiny, out)), 130, "interrupted")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------
# Writes: a full disk, the umask, stale temporary files


@pytest.mark.skipif(not LINUX, reason="names an open file through /proc/self/fd")
def test_a_full_disk_is_one_line_naming_the_file_and_the_checkpoint_stays(tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(*train_args(tiny, out)).exit_code == 0
    before = (out / "checkpoint.npz").read_bytes()
    real_fsync = os.fsync

    def full_disk(fd):  # the data of a new checkpoint does not fit: ENOSPC when it is flushed to disk
        if ".checkpoint.npz." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    result = run("train", "--out", out, "--resume", "--epochs", 2, "--engine", ENGINE)
    assert_one_line_error(result, 1, str(out / "checkpoint.npz"), os.strerror(errno.ENOSPC), "--resume")
    assert (out / "checkpoint.npz").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not (out / runs.LOCK_FILE).exists()


def test_files_get_the_mode_of_a_plain_open(tmp_path, tiny):
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.bin"
        files.atomic_write(fresh, b"new")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"old")
        kept.chmod(0o640)
        files.atomic_write(kept, b"new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_bytes() == b"new"
        out = tmp_path / "run"
        assert run(*train_args(tiny, out)).exit_code == 0
        for name in runs.RUN_FILES:
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    finally:
        os.umask(old)


def test_a_restarted_run_removes_only_stale_temporaries_of_its_own_files(tiny, tmp_path):
    out = tmp_path / "run"
    assert run(*train_args(tiny, out)).exit_code == 0
    stale = [".checkpoint.npz.abcd1234.tmp", ".model.npz.z_9yx8w7.tmp", ".run.json.q1w2e3r4.tmp",
             ".metrics.json.aaaaaaaa.tmp", ".curves.png.12345678.tmp"]
    foreign = [".notes.txt.abcd1234.tmp", "checkpoint.npz.abcd1234.tmp", ".checkpoint.npz.tmp",
               ".checkpoint.npz.ABCD1234.tmp", ".checkpoint.npz.abcd12345.tmp"]
    for name in stale + foreign:
        (out / name).write_bytes(b"x" * 100)
    refused = run("train", "--out", out, "--resume", "--batch-size", 8, "--engine", ENGINE)
    assert refused.exit_code == 2 and all((out / n).exists() for n in stale)  # a refused run touches nothing
    assert run("train", "--out", out, "--resume", "--epochs", 2, "--engine", ENGINE).exit_code == 0
    assert not [n for n in stale if (out / n).exists()]
    assert all((out / n).exists() for n in foreign)


# ---------------------------------------------------------------------------------------------------
# A resume that changes the learning rate and the schedule


def test_after_a_nan_stop_a_resume_with_a_lower_rate_goes_on_and_says_so(tiny, tmp_path):
    out = tmp_path / "run"
    # Epoch 1 trains at lr 0.01; the schedule then multiplies it by 1e37, which overflows float32.
    stopped = run(*train_args(tiny, out, "--optimizer", "sgd", "--lr", 0.01, "--schedule", "exp:1e37", epochs=3))
    assert_one_line_error(stopped, 1, "nan", f"cnn train --out {out} --resume --lr 0.001")
    result = run("train", "--out", out, "--resume", "--lr", 0.001, "--schedule", "none", "--engine", ENGINE)
    assert result.exit_code == 0, result.output
    assert "resumed with lr 0.001 from epoch 2 (was 0.01)" in result.stdout
    assert "epoch 2/3" in result.stdout and "epoch 3/3" in result.stdout
    document = json.loads((out / "run.json").read_text())
    assert document["options"]["lr"] == 0.001 and document["options"]["schedule"] == "none"
    changes = [{"epoch": 2, "option": "lr", "from": 0.01, "to": 0.001},
               {"epoch": 2, "option": "schedule", "from": "exp:1e+37", "to": "none"}]
    assert document["changes"] == changes
    assert json.loads((out / "metrics.json").read_text())["changes"] == changes
    assert [row["lr"] for row in json.loads((out / "metrics.json").read_text())["epochs"]] == [0.01, 0.001, 0.001]
    # The new rate is now the run's: a plain resume keeps it and changes nothing more.
    again = run("train", "--out", out, "--resume", "--epochs", 4, "--engine", ENGINE)
    assert again.exit_code == 0, again.output
    assert "resumed with" not in again.stdout
    assert json.loads((out / "run.json").read_text())["changes"] == changes
    np.testing.assert_equal(load_archive(out / "checkpoint.npz")[1]["optimizer"]["config"]["lr"], 0.001)


@pytest.mark.parametrize("extra, flag", [
    (("--seed", 5), "--seed"),
    (("--model", "conv2k3 relu, maxpool2, flatten, dense3"), "--model"),
    (("--optimizer", "sgd"), "--optimizer"),
    (("--validation-split", 0.25), "--validation-split"),
])
def test_a_resume_refuses_any_other_change(tiny, tmp_path, extra, flag):
    out = tmp_path / "run"
    assert run(*train_args(tiny, out)).exit_code == 0
    before = snapshot(out)
    result = run("train", "--out", out, "--resume", "--epochs", 2, "--engine", ENGINE, *extra)
    assert_one_line_error(result, 2, flag, "--resume", "--lr")
    assert snapshot(out) == before


def test_two_default_run_folders_of_the_same_second_get_two_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with runs.lock_run_dir(runs.default_run_dir()) as first:
        with runs.lock_default_run_dir() as second:
            assert second.folder != first.folder and second.folder.parent == Path("runs")
