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
the run's, naming what differs (``specs/training.md``), except the learning rate and the schedule
(:data:`CHANGEABLE`) when the caller allows it: a run stopped by a NaN loss can go on with a lower rate. Such
a change is returned as ``{"epoch", "option", "from", "to"}`` in the training document's ``changes``.
"""

from __future__ import annotations

import os

from .files import CheckpointError, load_archive, save_archive
from .schedules import make_schedule

__all__ = ["CHECKPOINT_FILE", "CHANGEABLE", "CheckpointError", "checkpoint_path", "save_checkpoint",
           "read_checkpoint", "restore_checkpoint"]

#: The checkpoint's file name inside a checkpoint folder (a run folder for ``cnn train``).
CHECKPOINT_FILE = "checkpoint.npz"
_FORMAT = "cnn-checkpoint-1"
_OPTIMIZER_PREFIX = "optimizer/"
_MODEL_PREFIXES = ("param/", "buffer/")
#: What a resume may change: the base learning rate (the optimizer's ``lr``) and the schedule (a setting).
CHANGEABLE = ("lr", "schedule")


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


def restore_checkpoint(path, model, optimizer, settings: dict, *, allow_changes=()) -> dict:
    """Load a checkpoint into ``model`` and ``optimizer`` after checking that it belongs to this run (same
    model, optimizer and ``settings``, but for the :data:`CHANGEABLE` names in ``allow_changes``); returns its
    ``training`` document plus ``changes``, what differs among those allowed (the epoch from 1 they take
    effect at, the checkpoint's value and this run's). Nothing is loaded when the checkpoint does not belong."""
    unknown = sorted(set(allow_changes) - set(CHANGEABLE))
    if unknown:
        raise ValueError(f"restore_checkpoint: argument `allow_changes` may name {', '.join(CHANGEABLE)}; "
                         f"received {', '.join(map(str, unknown))}")
    arrays, document = read_checkpoint(path)
    if document["model"] != model.config():
        raise CheckpointError(f"{path} was written for another model; resume needs the same model "
                              "(layers, dtype, seed and frozen layers)")
    saved_optimizer, this_optimizer = document["optimizer"]["config"], optimizer.config()
    if _without(saved_optimizer, allow_changes) != _without(this_optimizer, allow_changes):
        raise CheckpointError(f"{path} was written with optimizer {saved_optimizer}; this run has {this_optimizer}"
                              + ("" if "lr" not in allow_changes else " (a resume may change only its lr)"))
    saved = document["training"]["settings"]
    differing = sorted(k for k in settings if saved.get(k) != settings[k] and k not in allow_changes)
    if differing:
        listing = ", ".join(f"{k}={saved.get(k)!r} there, {settings[k]!r} here" for k in differing)
        allowed = f" (it may change {' and '.join(allow_changes)})" if allow_changes else ""
        raise CheckpointError(f"{path}: resume needs the settings of the interrupted run{allowed}: {listing}")
    model.load_state_arrays({k: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIXES)}, path)
    optimizer.load_state_arrays(
        {k[len(_OPTIMIZER_PREFIX):]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER_PREFIX)},
        document["optimizer"]["state"],
    )
    training = dict(document["training"])
    epoch = int(training["epoch"]) + 1
    training["changes"] = []
    if saved_optimizer.get("lr") != this_optimizer["lr"]:
        training["changes"].append({"epoch": epoch, "option": "lr", "from": saved_optimizer.get("lr"),
                                    "to": this_optimizer["lr"]})
    if saved.get("schedule") != settings.get("schedule"):
        training["changes"].append({"epoch": epoch, "option": "schedule", "from": _schedule_text(saved.get("schedule")),
                                    "to": _schedule_text(settings.get("schedule"))})
    return training


def _without(config: dict, names) -> dict:
    return {k: v for k, v in config.items() if k not in names}


def _schedule_text(schedule: dict | None) -> str:
    """A schedule setting in the command line's text form (``step:5:0.5``), as run.json records options."""
    try:
        return make_schedule(schedule).text
    except (ValueError, TypeError):
        return str(schedule)
