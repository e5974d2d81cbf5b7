"""The run folder of ``cnn train``: which files a run writes, whether ``--out`` may be used as asked
(``--resume``, ``--overwrite``), its description ``run.json``, and clearing it.

A run folder holds only these files (:data:`RUN_FILES`), and only they are ever replaced or removed:

* ``run.json``: the run's options (:class:`cnn.options.TrainOptions`), so ``--resume`` needs only ``--out``,
  and, once finished, the data, class names, parameter count and test scores;
* ``checkpoint.npz``: replaced atomically after each epoch (:mod:`cnn.checkpoint`);
* ``metrics.json``: the metrics per epoch (:mod:`cnn.history`);
* ``curves.png``: the loss and accuracy curves;
* ``model.npz``: at the end, weights and configuration plus the class names, what ``cnn evaluate`` and
  ``cnn predict`` read.

Every check here runs before anything is written or removed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .checkpoint import CHECKPOINT_FILE
from .files import load_archive, save_archive, write_json
from .history import METRICS_FILE
from .options import TrainOptions

__all__ = ["RUN_FILE", "MODEL_FILE", "PLOT_FILE", "METRICS_FILE", "CHECKPOINT_FILE", "RUN_FILES", "RunFolderError",
           "default_run_dir", "existing_run_files", "check_run_dir", "read_run_file", "write_run_file",
           "clear_run_dir", "save_model", "read_class_names"]

RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
PLOT_FILE = "curves.png"
#: Every file ``cnn train`` writes in a run folder; only these are ever replaced or removed.
RUN_FILES = (RUN_FILE, CHECKPOINT_FILE, METRICS_FILE, PLOT_FILE, MODEL_FILE)
_FORMAT = "cnn-run-1"


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (or a ``run.json`` that cannot be read); the message names
    the folder and what to do instead."""


def default_run_dir(root: Path = Path("runs")) -> Path:
    """``runs/<date>-<time>``, with a counter when two runs start in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def existing_run_files(folder: Path) -> list[str]:
    return [name for name in RUN_FILES if (folder / name).exists()]


def check_run_dir(out: str | None, resume: bool, overwrite: bool) -> tuple[Path, TrainOptions | None]:
    """The run folder and, when resuming, the options recorded there. Nothing is written or removed here."""
    if resume and overwrite:
        raise RunFolderError("--resume continues a run and --overwrite replaces it: give one of them")
    if out is None:
        if resume:
            raise RunFolderError("--resume needs --out DIR, the folder of the run to continue")
        return default_run_dir(), None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {out}: exists and is not a folder")
    existing = existing_run_files(folder) if folder.is_dir() else []
    if resume:
        if not existing:
            raise RunFolderError(f"--resume: {folder} holds no run to continue (no {CHECKPOINT_FILE} or {RUN_FILE})")
        return folder, read_run_file(folder)
    if existing and not overwrite:
        raise RunFolderError(f"{folder} already holds a run ({', '.join(existing)}); continue it with --resume, "
                             "replace it with --overwrite, or choose another --out")
    return folder, None


def read_run_file(folder: Path) -> TrainOptions | None:
    """The options recorded in ``folder``'s ``run.json``; None when there is none."""
    path = folder / RUN_FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path} cannot be read as a run description: {error}") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise RunFolderError(f"{path} is not a run description written by cnn train")
    try:
        return TrainOptions.from_json(document.get("options", {}))
    except (ValueError, TypeError) as error:
        raise RunFolderError(f"{path}: its options cannot be read: {error}") from None


def write_run_file(folder: Path, options: TrainOptions, *, data: str, class_names, parameters: int,
                   test: dict | None) -> None:
    """Atomically (re)write ``run.json``: the options and what the run was made of; ``test`` once known."""
    write_json(folder / RUN_FILE, {
        "format": _FORMAT,
        "options": options.to_json(),
        "data": data,
        "class_names": list(class_names),
        "parameters": parameters,
        "test": test,
    })


def clear_run_dir(folder: Path) -> None:
    """``--overwrite``: remove the run's own files (:data:`RUN_FILES`), once everything else has been checked."""
    for name in existing_run_files(folder):
        (folder / name).unlink()


def save_model(model, path, class_names, data: str) -> None:
    """:meth:`cnn.Model.save`'s archive plus the class names and the data set's name, so that
    ``cnn predict`` can name classes without the data."""
    save_archive(path, model.state_arrays(), {"model": model.config(), "class_names": list(class_names), "data": data})


def read_class_names(path) -> list[str]:
    """The class names stored in a model file by :func:`save_model` (none for a plain :meth:`cnn.Model.save`)."""
    _, document = load_archive(path, "model file")
    return [str(n) for n in document.get("class_names", [])]
