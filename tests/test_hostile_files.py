"""Every damaged or hostile file of ``tests/hostile.py`` through its reader and through the ``cnn`` commands
that read it: the documented exception with one line naming the file in-process; exit status 2, exactly one
line ``cnn: error: ...`` on stderr, no traceback and nothing written from the command line.

Most commands run in-process through click's CliRunner (milliseconds each); a handful run as real
subprocesses (``python cli.py ...``), where the point is the process: its exit status and its stderr.

Cases whose failure comes from outside the data readers (the model configuration of a model file, netspec's
JSON parsing, ``SizeLimitError`` not yet among the command line's user errors) are strict xfails whose reason
says the change they need; they turn into failures to remove the mark once that change is in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hostile
from cnn.cli import cnn as CNN
from cnn.cli.common import USER_ERRORS
from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError

ROOT = Path(__file__).resolve().parent.parent
CASES = hostile.all_cases()
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SIZE_REPORTED = any(issubclass(SizeLimitError, kind) for kind in USER_ERRORS)


@pytest.fixture(scope="module")
def support(tmp_path_factory):
    return hostile.write_support(tmp_path_factory.mktemp("support"))


def _skip_or_xfail(case: hostile.Case, reason: str | None) -> list:
    marks = []
    if case.unprivileged:
        marks.append(pytest.mark.skipif(AS_ROOT, reason="root reads any file"))
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return marks


def _snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` with its size and modification time (links not followed)."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


# ---------------------------------------------------------------------------------------------------------------
# In-process: the reader raises the documented error, one printable line naming the file


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_skip_or_xfail(c, c.load_xfail)) for c in CASES])
def test_reader_refuses_hostile_file(case, tmp_path, monkeypatch):
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    verdict, detail = hostile.outcome(case, tmp_path)
    assert verdict == "clean", detail


# ---------------------------------------------------------------------------------------------------------------
# The commands that read each kind of file


#: The commands that read each kind of file, by reader (the command lines are :func:`command_line`'s).
COMMANDS = {"data": ("train",), "image": ("predict",), "model": ("evaluate", "predict"), "json": ("shape", "train")}


def command_line(case: hostile.Case, command: str, path: Path, out: Path, support: dict) -> list[str]:
    """``cnn <command> ...`` reading ``path`` as its reader takes it; ``out`` is a run folder that must not
    appear. The other files it needs (a model, a data set, an image) are good ones from ``support``."""
    engine = ["--engine", "refcnn"]
    lines = {
        ("data", "train"): ["train", "--data", path, "--out", out, "--epochs", "1", *engine],
        ("image", "predict"): ["predict", support["model"], path, *engine],
        ("model", "evaluate"): ["evaluate", path, "--data", support["data"], *engine],
        ("model", "predict"): ["predict", path, support["image"], *engine],
        ("json", "shape"): ["shape", path],
        ("json", "train"): ["train", "--model", path, "--data", support["data"], "--out", out, *engine],
    }
    return [str(arg) for arg in lines[case.reader, command]]


def _cli_reason(case: hostile.Case) -> str | None:
    if case.cli_xfail:
        return case.cli_xfail
    if case.expect == "size" and not SIZE_REPORTED:
        return hostile.SIZE_AT_CLI + (hostile.SIZE_THROUGH_LOAD_DATA if case.reader == "data" else "")
    return None


def _command_params():
    return [pytest.param(case, command, id=f"{command}-{case.id}", marks=_skip_or_xfail(case, _cli_reason(case)))
            for case in CASES for command in COMMANDS[case.reader]]


def assert_one_line_error(status: int, stderr: str, stdout: str, named: Path) -> None:
    """Exit status 2, one printable line ``cnn: error: ...`` on stderr naming ``named``, no traceback."""
    assert "Traceback" not in stderr + stdout, stderr
    lines = stderr.splitlines()
    assert status == 2, f"exit status {status}; stderr: {stderr!r}"
    assert len(lines) == 1 and lines[0].startswith("cnn: error: "), stderr
    assert lines[0].isprintable(), lines[0]
    assert not lines[0].startswith("cnn: error: --limit:"), "a file's error worded as a --limit mistake"
    assert printable(str(named)) in lines[0], lines[0]


@pytest.mark.parametrize("case, command", _command_params())
def test_command_refuses_hostile_file(case, command, tmp_path, support):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = case.build(corpus)
    out = tmp_path / "run"
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(CNN, command_line(case, command, path, out, support), env=case.env)
    assert_one_line_error(result.exit_code, result.stderr, result.stdout, corpus)
    assert not out.exists()
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------------------------
# A handful as real processes


def _subprocess_cases() -> list:
    wanted = ["IDX: a FIFO instead of a file", "gzip: gzip bomb (3 MiB of zeros, limit 1 MiB)",
              "CIFAR: pickle that calls os.system", "npz data: label 10**9 (a billion class names)",
              "images: 30000x30000 PNG (header only)", "model files: JSON nested 100000 deep"]
    chosen = [c for c in CASES if f"{c.category}: {c.name}" in wanted]
    assert len(chosen) == len(wanted)
    return [pytest.param(c, id=c.id, marks=_skip_or_xfail(c, _cli_reason(c))) for c in chosen]


@pytest.mark.parametrize("case", _subprocess_cases())
def test_process_refuses_hostile_file(case, tmp_path, support):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = case.build(corpus)
    out = tmp_path / "run"
    args = command_line(case, COMMANDS[case.reader][0], path, out, support)
    env = {**os.environ, **case.env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stderr, done.stdout, corpus)
    assert not out.exists()
    assert not Path("/tmp/cnn-hostile-pwned").exists()


def test_data_dev_null_is_one_line(tmp_path, monkeypatch):
    """``cnn train --data /dev/null`` (a character device): one line, exit 2 (it listed /dev/null as a folder),
    and the default run folder it had to lock first is gone again."""
    monkeypatch.chdir(tmp_path)  # the default --out, runs/<date-time>, is made here
    result = CliRunner().invoke(CNN, ["train", "--data", "/dev/null", "--engine", "refcnn"])
    assert_one_line_error(result.exit_code, result.stderr, result.stdout, Path("/dev/null"))
    assert "character device" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_json_network_fifo_does_not_hang(tmp_path):
    """A FIFO named ``net.json`` must be refused, not waited on."""
    path = hostile.fifo(tmp_path / "net.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "shape", str(path)], capture_output=True,
                          text=True, env=env, timeout=6)
    assert_one_line_error(done.returncode, done.stderr, done.stdout, path)
