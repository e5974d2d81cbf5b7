"""Training checkpoints: what ``fit`` saves after each epoch so that a run resumes bit for bit.

A checkpoint is one ``.npz`` archive (:mod:`cnn.files`, written atomically) holding the model's
parameters and buffers (``param/...``, ``buffer/...``), the optimizer's state arrays (``optimizer/...``)
and a JSON document::

    {"format": "cnn-checkpoint-1",
     "model": <Model.config()>,
     "optimizer": {"config": <Optimizer.config()>, "state": <its scalar state>},
     "training": {"epoch", "global_step", "settings", "history", "early_stopping"}}

``settings`` are what must not change across a resume (seed, batch size, schedule, data sizes, early
stopping); :func:`restore_checkpoint` refuses a checkpoint whose model, optimizer or settings differ from
the run's, naming what differs (``specs/training.md``).
"""

from __future__ import annotations

import os

from .files import CheckpointError, load_archive, save_archive

__all__ = ["CHECKPOINT_FILE", "CheckpointError", "checkpoint_path", "save_checkpoint", "read_checkpoint",
           "restore_checkpoint"]

#: The checkpoint's file name inside a checkpoint folder (a run folder for ``cnn train``).
CHECKPOINT_FILE = "checkpoint.npz"
_FORMAT = "cnn-checkpoint-1"
_OPTIMIZER_PREFIX = "optimizer/"
_MODEL_PREFIXES = ("param/", "buffer/")


def checkpoint_path(folder) -> str:
    """The checkpoint file of ``folder``."""
    return os.path.join(os.fspath(folder), CHECKPOINT_FILE)


def save_checkpoint(path, model, optimizer, training: dict) -> None:
    """Atomically write the model, the optimizer state and the ``training`` document to ``path``."""
    opt_arrays, opt_meta = optimizer.state_arrays()
    arrays = dict(model.state_arrays())
    arrays.update({_OPTIMIZER_PREFIX + k: v for k, v in opt_arrays.items()})
    document = {
        "format": _FORMAT,
        "model": model.config(),
        "optimizer": {"config": optimizer.config(), "state": opt_meta},
        "training": training,
    }
    save_archive(path, arrays, document)


def read_checkpoint(path) -> tuple[dict, dict]:
    """``(arrays, document)`` of a training checkpoint, refusing any other file."""
    arrays, document = load_archive(path, "training checkpoint")
    if document.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a training checkpoint (format {document.get('format')!r})")
    return arrays, document


def restore_checkpoint(path, model, optimizer, settings: dict) -> dict:
    """Load a checkpoint into ``model`` and ``optimizer`` after checking that it belongs to this run (same
    model, optimizer and ``settings``); returns its ``training`` document. Nothing is loaded when it does not."""
    arrays, document = read_checkpoint(path)
    if document["model"] != model.config():
        raise CheckpointError(f"{path} was written for another model; resume needs the same model "
                              "(layers, dtype, seed and frozen layers)")
    if document["optimizer"]["config"] != optimizer.config():
        raise CheckpointError(f"{path} was written with optimizer {document['optimizer']['config']}; "
                              f"this run has {optimizer.config()}")
    saved = document["training"]["settings"]
    differing = sorted(k for k in settings if saved.get(k) != settings[k])
    if differing:
        listing = ", ".join(f"{k}={saved.get(k)!r} there, {settings[k]!r} here" for k in differing)
        raise CheckpointError(f"{path}: resume needs the settings of the interrupted run: {listing}")
    model.load_state_arrays({k: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIXES)}, path)
    optimizer.load_state_arrays(
        {k[len(_OPTIMIZER_PREFIX):]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER_PREFIX)},
        document["optimizer"]["state"],
    )
    return document["training"]
