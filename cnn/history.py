"""What a run records epoch by epoch: the :class:`History`, the early-stopping rule that reads it, and its
two files, the metrics log (``metrics.json``, :func:`write_log`) and the curves (:func:`plot_history`).

``fit`` appends one row per epoch and, with a checkpoint folder, rewrites :data:`METRICS_FILE` there after
each epoch; the history and the early-stopping state also travel in the checkpoint, so a resumed run
continues both (``specs/training.md``).
"""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass, field

from cnnbase.checks import check_float, check_int, invalid

from .files import atomic_write, write_json

__all__ = ["METRICS", "METRICS_FILE", "EarlyStopping", "History", "make_early_stopping", "metrics_path",
           "write_log", "plot_history"]

#: The metrics an epoch can report; the loss is always computed.
METRICS = ("loss", "accuracy")
#: The metrics log's file name inside a checkpoint folder (a run folder for ``cnn train``).
METRICS_FILE = "metrics.json"


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode`` 'auto' minimises losses and maximises accuracies. ``best``, ``best_epoch`` and ``wait`` are
    the state saved in checkpoints.
    """

    monitor: str = "val_loss"
    patience: int = 3
    min_delta: float = 0.0
    mode: str = "auto"
    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0

    def __post_init__(self):
        check_int(self.patience, "patience", "EarlyStopping", minimum=0)
        check_float(self.min_delta, "min_delta", "EarlyStopping", minimum=0.0)
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(invalid("EarlyStopping", "mode", "'auto', 'min' or 'max'", self.mode))

    @property
    def maximise(self) -> bool:
        return self.mode == "max" or (self.mode == "auto" and "accuracy" in self.monitor)

    def update(self, value: float, epoch: int) -> bool:
        """Record one epoch's value; True when training should stop."""
        improved = self.best is None or (
            value > self.best + self.min_delta if self.maximise else value < self.best - self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.wait = float(value), int(epoch), 0
            return False
        self.wait += 1
        return self.wait >= self.patience  # Keras's rule: stop after `patience` epochs without improvement

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class History:
    """One dict of metrics per epoch (``epoch`` counts from 1), why training stopped, and what resumes changed:
    ``changes`` holds one ``{"epoch", "option", "from", "to"}`` per learning rate or schedule a resume changed,
    ``epoch`` the first epoch trained with ``to``."""

    epochs: list = field(default_factory=list)
    stop_reason: str = ""
    changes: list = field(default_factory=list)

    def __getitem__(self, metric: str) -> list:
        return [row.get(metric) for row in self.epochs]

    def to_dict(self) -> dict:
        document = {"epochs": self.epochs, "stop_reason": self.stop_reason}
        if self.changes:
            document["changes"] = self.changes
        return document

    @classmethod
    def from_dict(cls, document: dict) -> "History":
        return cls([dict(row) for row in document["epochs"]], document.get("stop_reason", ""),
                   [dict(change) for change in document.get("changes", [])])


def make_early_stopping(spec, has_validation: bool) -> EarlyStopping | None:
    """The early-stopping rule of ``fit(early_stopping=...)``: None, a patience (int), a dict of
    :class:`EarlyStopping` arguments, or one (copied, so the caller's keeps its state). Without validation
    data the default monitor ``val_loss`` becomes ``loss``; naming a ``val_`` monitor then is an error."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, EarlyStopping):
        stopper = dataclasses.replace(spec)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        stopper = EarlyStopping(patience=spec)
    elif isinstance(spec, dict):
        stopper = EarlyStopping(**spec)
    else:
        raise TypeError(f"fit: argument `early_stopping` must be None, a patience (int), a dict or an "
                        f"EarlyStopping; received {spec!r}.")
    if stopper.monitor.startswith("val_") and not has_validation:
        if "monitor" in (spec if isinstance(spec, dict) else {}) or isinstance(spec, EarlyStopping):
            raise ValueError(f"fit: early stopping monitors {stopper.monitor!r} but there is no validation data; "
                             "give validation_split or validation_data, or monitor 'loss'.")
        stopper.monitor = "loss"
    valid = METRICS + tuple("val_" + m for m in METRICS)
    if stopper.monitor not in valid:
        raise ValueError(invalid("EarlyStopping", "monitor", f"one of {valid}", stopper.monitor))
    return stopper


def metrics_path(folder) -> str:
    """The metrics log of ``folder``."""
    return os.path.join(os.fspath(folder), METRICS_FILE)


def write_log(history: History, path) -> None:
    """The metrics of every epoch as JSON, written atomically."""
    write_json(path, history.to_dict())


def plot_history(history: History, path) -> None:
    """A PNG of the loss and accuracy curves (training and validation), written atomically.

    Uses matplotlib's Agg canvas directly, so no display and no global pyplot state is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(figure)
    epochs = history["epoch"]
    for position, metric in enumerate(("loss", "accuracy")):
        axes = figure.add_subplot(1, 2, position + 1)
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = history[prefix + metric]
            if any(v is not None for v in values):
                axes.plot(epochs, values, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_title(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())
