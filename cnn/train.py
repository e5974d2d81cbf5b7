"""Training: ``fit``, ``train_step``, ``evaluate``, ``predict`` and ``top_k``.

One training step (``specs/training.md``), at global step ``t`` of epoch ``e``::

    lr     = schedule.lr(base_lr, e)
    logits = model.forward(x_batch, training=True, step=t)     # dropout seeds from (model seed, layer, t)
    loss   = cross_entropy(logits, y_batch)                     # mean over the batch; stop if not finite
    grad   = cross_entropy_backward(1, logits, y_batch)
    model.backward(grad)
    param  = <optimizer>_step(param, grad_param, state, lr=lr)  # trainable layers only, in model order
    t     += 1

The batches of epoch ``e`` are :func:`cnn.data.batches` ``(n, batch_size, seed, e)``, a pure function of
``(seed, e)``. Everything a step reads is thus either in the checkpoint written at the end of each epoch
(weights, running statistics, optimizer state, ``e``, ``t``, early-stopping state, history) or a pure
function of it, which is why a resumed run ends with the same weights as an uninterrupted one.
The checkpoint itself is :mod:`cnn.checkpoint`; the history, early stopping and the metrics log are
:mod:`cnn.history`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time

import numpy as np

from cnnbase.checks import check_int, invalid

from . import data
from .augment import augment_batch, make_policy
from .distributed import fingerprint, make_shards, shard_bounds, sum_in_order
from .checkpoint import (CHANGEABLE, CHECKPOINT_FILE, checkpoint_path, read_checkpoint, restore_checkpoint,
                         save_checkpoint)
from .history import METRICS, EarlyStopping, History, make_early_stopping, metrics_path, plot_history, write_log
from .optimizers import make_optimizer
from .profiling import DATA_ROW
from .schedules import make_schedule

#: The profile's row of the augmentation of the training batches (``fit(profile=..., augment=...)``).
AUGMENT_ROW = "(data: augment)"

# The names from EarlyStopping on live in cnn.history and cnn.checkpoint; they stay importable from here,
# where fit's callers found them before those modules existed.
__all__ = ["train_step", "sharded_step", "NonFiniteLossError", "fit", "evaluate", "predict", "top_k", "EVAL_BATCH_SIZE",
           "evaluation_batch_size", "EarlyStopping", "History", "plot_history", "write_log", "CHECKPOINT_FILE",
           "read_checkpoint"]

#: The default batch of evaluate and predict. Scoring keeps no activations for a backward pass, so a
#: batch this large costs little memory and spreads each kernel call's fixed cost over more images.
EVAL_BATCH_SIZE = 256


def evaluation_batch_size(batch_size: int) -> int:
    """The batch for scoring a model trained with ``batch_size``: :data:`EVAL_BATCH_SIZE`, or the training
    batch when that is larger (it already fit in memory with its gradients)."""
    return max(batch_size, EVAL_BATCH_SIZE)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept as it was."""


# --------------------------------------------------------------------------------------------------
# Arguments


def _check_xy(model, x, y, op: str, name: str = "x", *, batch_size: int = EVAL_BATCH_SIZE):
    x = model._check_input(x, op, batch_size)
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        kind = f"dtype {y.dtype}" if isinstance(y, np.ndarray) else type(y).__name__
        raise TypeError(f"{op}: argument `y` must be a numpy.ndarray of integer class labels; received {kind}.")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{op}: argument `y` must have shape ({x.shape[0]},), one label per row of {name} "
                         f"{x.shape}; received shape {y.shape}.")
    return x, y.astype(np.int64, copy=False)


def _split(model, x, y, validation_split, validation_data):
    if validation_data is not None and validation_split:
        raise ValueError("fit: give validation_split or validation_data, not both.")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("fit: argument `validation_data` must be a tuple (x_val, y_val).")
        return x, y, _check_xy(model, *validation_data, "fit", "x_val")
    if validation_split:
        train_idx, val_idx = data.validation_split(len(x), validation_split)  # the last part, as in Keras
        return x[train_idx], y[train_idx], (x[val_idx], y[val_idx])
    return x, y, None


# --------------------------------------------------------------------------------------------------
# Progress and summary lines


class _Progress:
    """A one-line bar rewritten in place with ``\\r``; silent unless enabled (a terminal)."""

    def __init__(self, stream, enabled: bool, epoch: int, epochs: int, total: int):
        self.stream, self.enabled = stream, enabled
        self.label, self.total = f"epoch {epoch}/{epochs}", total
        self.start = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(self.total, 1))
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total}  loss {loss:.4f}  {rate:,.0f} images/s")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _summary_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row['lr']:.4g}")
    parts.append(f"{row['seconds']:.1f}s")
    parts.append(f"{row['images_per_second']:,.0f} images/s")
    return "  ".join(parts)


# --------------------------------------------------------------------------------------------------
# fit


def train_step(model, optimizer, xb, yb, *, step: int, lr: float) -> tuple[float, int]:
    """One training step: forward (training mode, dropout seeded by ``step``), cross-entropy loss, backward,
    optimizer update of the trainable parameters. Returns ``(loss, correct predictions)``.

    When the loss is not finite nothing is updated: the caller decides what to do (``fit`` stops).
    """
    engine = model.engine
    logits = model.forward(xb, training=True, step=step)
    loss = float(engine.cross_entropy(logits, yb))
    if math.isfinite(loss):
        grad = engine.cross_entropy_backward(1.0, logits, yb).astype(model.dtype, copy=False)
        model.backward(grad, input_grad=False)  # the data needs no gradient
        _update(model, optimizer, lr)
    return loss, int(np.count_nonzero(np.argmax(logits, axis=1) == yb))


def _update(model, optimizer, lr: float) -> None:
    """The optimizer's step on every trainable parameter from its layer's ``grads``, in model order."""
    trainable = model.parameters(trainable_only=True)
    updated = optimizer.step(model.engine, [(key, layer.params[p], layer.grads[p]) for key, layer, p in trainable],
                             lr)
    for key, layer, p in trainable:
        layer.params[p] = updated[key]


class _ShardLayout:
    """Where each part of a shard's row of bytes lies: the trainable gradients (model order), the running
    statistics of the trainable layers (batch norm's), then three float64 numbers (the shard's share of the
    loss ``(n_r / B) * loss_r``, its correct count, 1 when it has rows)."""

    SCALARS = 3

    def __init__(self, model):
        self.dtype = model.dtype
        self.params = model.parameters(trainable_only=True)
        self.buffers = [(layer, name) for layer in model.all_layers() if layer.trainable for name in layer.buffers]
        self.grad_size = sum(layer.params[p].size for _, layer, p in self.params)
        self.buffer_size = sum(layer.buffers[name].size for layer, name in self.buffers)
        self.floats = self.grad_size + self.buffer_size
        self.nbytes = self.floats * self.dtype.itemsize + 8 * self.SCALARS

    def floats_of(self, rows: np.ndarray) -> np.ndarray:
        """(K, floats) view of the gradient and buffer part of ``rows`` (K, nbytes)."""
        return rows[:, :self.floats * self.dtype.itemsize].view(self.dtype)

    def scalars_of(self, rows: np.ndarray) -> np.ndarray:
        return rows[:, self.floats * self.dtype.itemsize:].view(np.float64)

    def saved_buffers(self) -> list[np.ndarray]:
        return [layer.buffers[name].copy() for layer, name in self.buffers]

    def restore_buffers(self, saved) -> None:
        for (layer, name), value in zip(self.buffers, saved):
            layer.buffers[name] = value.copy()

    def fill(self, row_floats: np.ndarray, with_grads: bool) -> None:
        """The model's gradients (zeros without ``with_grads``) and running statistics into one row."""
        at = 0
        for _, layer, p in self.params:
            size = layer.params[p].size
            if with_grads:
                row_floats[at:at + size] = layer.grads[p].reshape(-1)
            else:
                row_floats[at:at + size] = 0
            at += size
        for layer, name in self.buffers:
            size = layer.buffers[name].size
            row_floats[at:at + size] = layer.buffers[name].reshape(-1)
            at += size

    def unpack(self, grads: np.ndarray, buffers: np.ndarray | None) -> None:
        """The summed gradients into the layers' ``grads``, the averaged statistics into their ``buffers``."""
        at = 0
        for _, layer, p in self.params:
            shape = layer.params[p].shape
            layer.grads[p] = grads[at:at + math.prod(shape)].reshape(shape).copy()
            at += math.prod(shape)
        if buffers is None:
            return
        at = 0
        for layer, name in self.buffers:
            shape = layer.buffers[name].shape
            layer.buffers[name] = buffers[at:at + math.prod(shape)].reshape(shape).copy()
            at += math.prod(shape)


def sharded_step(model, optimizer, load, size: int, *, step: int, lr: float, shards) -> tuple[float, int]:
    """One training step of a global batch of ``size`` rows computed as ``shards.size`` shards
    (:mod:`cnn.distributed`, where the step is defined); ``load(start, stop)`` gives rows ``start:stop`` of
    the batch as ``(x, y)``. ``shards`` is a :class:`~cnn.distributed.LocalShards` (every shard here, one
    after the other) or a :class:`~cnn.distributed.MpiShards` (this rank's shard; the rows of all are
    gathered). Returns ``(loss, correct predictions)`` of the global batch; nothing is updated when the loss
    is not finite. With one shard this is :func:`train_step`, unchanged."""
    bounds = shard_bounds(size, shards.size)
    if shards.size == 1:
        xb, yb = load(0, size)
        return train_step(model, optimizer, xb, yb, step=step, lr=lr)
    engine, layout = model.engine, _ShardLayout(model)
    rows = np.zeros((shards.size, layout.nbytes), dtype=np.uint8)
    floats, scalars = layout.floats_of(rows), layout.scalars_of(rows)
    saved = layout.saved_buffers()
    for r in shards.local:
        start, stop = bounds[r]
        layout.restore_buffers(saved)  # every shard starts from the same running statistics
        if stop == start:  # an empty shard: no rows, no gradient, no statistics of its own
            layout.fill(floats[r], with_grads=False)
            continue
        xr, yr = load(start, stop)
        logits = model.forward(xr, training=True, step=step, shard=r)
        loss = float(engine.cross_entropy(logits, yr))
        finite = math.isfinite(loss)
        if finite:
            scale = (stop - start) / size  # the shard's share of the global batch's mean
            grad = engine.cross_entropy_backward(scale, logits, yr).astype(model.dtype, copy=False)
            model.backward(grad, input_grad=False)
        layout.fill(floats[r], with_grads=finite)
        scalars[r] = ((stop - start) / size * loss, np.count_nonzero(np.argmax(logits, axis=1) == yr), 1.0)
    rows = shards.gather_rows(rows)
    floats, scalars = layout.floats_of(rows), layout.scalars_of(rows)
    loss = 0.0
    for r in range(shards.size):
        loss += float(scalars[r, 0])
    correct = int(sum(int(scalars[r, 1]) for r in range(shards.size)))
    if not math.isfinite(loss):
        return loss, correct
    with_rows = [r for r in range(shards.size) if scalars[r, 2] == 1.0]
    grads = sum_in_order(floats[:, :layout.grad_size])
    buffers = None
    if layout.buffer_size:
        buffers = sum_in_order(floats[:, layout.grad_size:], with_rows)
        buffers /= layout.dtype.type(len(with_rows))
    layout.unpack(grads, buffers)
    _update(model, optimizer, lr)
    return loss, correct


def _paused(profile):
    """A validation pass is no training step: the profile does not count it."""
    return contextlib.nullcontext() if profile is None else profile.paused()


def _gather(x, y, index, profile=None):
    """The batch ``x[index], y[index]``; with a ``profile`` (:mod:`cnn.profiling`), its time is the row
    ``(data: batch gather)``."""
    if profile is None:
        return x[index], y[index]
    start = time.perf_counter()
    batch = x[index], y[index]
    profile.add(DATA_ROW, time.perf_counter() - start)
    return batch


def _augmented(model, xb, index, augment, *, seed, epoch, profile=None):
    """The batch as ``augment`` changes it (:func:`cnn.augment.augment_batch`, each image by its index in the
    training set); with a ``profile``, its time is the row ``(data: augment)``."""
    if augment is None or not augment.active:
        return xb
    start = time.perf_counter()
    xb = augment_batch(model.engine, xb, augment, seed=seed, epoch=epoch, index=index)
    if profile is not None:
        profile.add(AUGMENT_ROW, time.perf_counter() - start)
    return xb


def _train_epoch(model, optimizer, x, y, *, epoch, epochs, batch_size, seed, step, lr, progress, last_good,
                 profile=None, augment=None, shards=None):
    """One epoch of steps; returns (mean loss, accuracy, next global step). With an active ``augment``
    policy each batch is augmented first, each image by its index in ``x`` (:func:`cnn.augment.augment_batch`).
    With ``shards`` (:mod:`cnn.distributed`) of more than one shard, each shard's rows are gathered and
    augmented by the process that computes the shard."""
    if len(x) == 0:  # fit refuses it first; a guard here too, as a division by len(x) follows
        raise ValueError("fit: there are no training examples (x has 0 rows after the validation split).")
    total_loss, correct, seen = 0.0, 0, 0
    for index in data.batches(len(x), batch_size, seed, epoch):
        if shards is None or shards.size == 1:
            xb, yb = _gather(x, y, index, profile)
            xb = _augmented(model, xb, index, augment, seed=seed, epoch=epoch, profile=profile)
            loss, right = train_step(model, optimizer, xb, yb, step=step, lr=lr)
        else:
            def load(start, stop, index=index):
                part = index[start:stop]
                xr, yr = _gather(x, y, part, profile)
                return _augmented(model, xr, part, augment, seed=seed, epoch=epoch, profile=profile), yr

            loss, right = sharded_step(model, optimizer, load, len(index), step=step, lr=lr, shards=shards)
        if not math.isfinite(loss):
            kept = f"the last good checkpoint {last_good} is kept" if last_good else "no checkpoint was written"
            raise NonFiniteLossError(
                f"training stopped: the loss is {loss} at epoch {epoch + 1}, batch {seen // batch_size + 1} "
                f"(global step {step}); this batch's update was not applied and {kept}. "
                "A lower learning rate usually helps: a resumed run may change the learning rate and schedule."
            )
        step += 1
        total_loss += loss * len(index)
        correct += right
        seen += len(index)
        progress.update(seen, total_loss / seen)
    return total_loss / seen, correct / seen, step


def fit(model, x, y, *, epochs: int = 1, batch_size: int = 32, optimizer="adam", lr: float | None = None,
        schedule=None, validation_split: float = 0.0, validation_data=None, metrics=METRICS,
        early_stopping=None, checkpoint_dir=None, resume: bool = False, seed: int | None = None,
        verbose: int = 1, progress: bool | None = None, log_path=None, stream=None,
        allow_changes=CHANGEABLE, on_start=None, profile=None, augment=None, shards=None,
        mpi_timeout: float | None = None) -> History:
    """Train ``model`` on ``x`` (N, C, H, W) floats and ``y`` (N,) class labels; returns the :class:`History`.

    Parameters
    ----------
    optimizer : 'sgd', 'adam', 'adadelta', 'rmsprop', a config dict or an :class:`Optimizer`
    lr : float, optional
        The base learning rate (the optimizer's default when None).
    schedule : None, 'step', 'exponential', 'cosine', a dict ``{"name": ..., ...}`` or a Schedule
        The learning rate of each epoch (:mod:`cnn.schedules`; ``Schedule.parse("step:5:0.5")`` reads the
        command line's text form). Arguments left out take their defaults; cosine's ``t_max`` is ``epochs``.
    validation_split, validation_data
        The last fraction of ``x`` (as Keras), or a separate ``(x_val, y_val)``.
    metrics : iterable of 'loss', 'accuracy'
        What each epoch reports; the loss is always computed.
    early_stopping : None, a patience (int), a dict of :class:`EarlyStopping` arguments, or one
    checkpoint_dir : path, optional
        Where ``checkpoint.npz`` is replaced atomically after each epoch, and ``metrics.json`` written.
    resume : bool
        Continue from ``checkpoint_dir``'s checkpoint (same model, optimizer and settings required, but for
        those named in ``allow_changes``).
    allow_changes : names among ``"lr"``, ``"schedule"``
        What a resume may change (both by default; ``()`` refuses any change). A change is printed (when
        ``verbose``) and recorded in ``History.changes``, which travels in the checkpoint.
    seed : int, optional
        Seeds the batch order; defaults to the model's seed (which seeds dropout).
    verbose : int
        0: silent; 1: one summary line per epoch (and the progress bar when ``progress``).
    progress : bool, optional
        The per-epoch progress bar; by default shown only when ``stream`` is a terminal.
    log_path : path, optional
        A JSON log of the metrics per epoch, written atomically after each epoch (default: ``metrics.json``
        in ``checkpoint_dir``, when given).
    on_start : callable, optional
        Called with the :class:`History` once the run is set to train (a resumed checkpoint has been checked
        and loaded), before the first step: ``cnn train`` records a resume's changes in ``run.json`` there.
    profile : :class:`cnn.profiling.LayerProfile`, optional
        One attached to ``model`` and the optimizer by the caller (``with profile.attached(model, optimizer):
        fit(..., optimizer=optimizer, profile=profile)``): fit adds each training epoch's steps and seconds,
        times each batch's gather, and pauses it during the validation passes, so that ``profile.rows()`` is
        the time per layer type of this call's training steps. Profiling changes no result: same seed, same
        weights.
    augment : None, a description, a dict or an :class:`cnn.augment.AugmentPolicy`
        Data augmentation of the training batches (``"rotation=10, shift=0.1, zoom=0.1, hflip"``,
        ``specs/augment.md``), run by the model's engine after batching; image ``k`` of ``x`` (after the
        validation split) gets parameters drawn from ``(seed, epoch, k)``, whatever the batch size, the batch
        order or the thread count. Never applied to the validation data, nor by :func:`evaluate` or
        :func:`predict`. Recorded in the checkpoint's settings: a resume must give the same.
    shards : int, optional
        Compute each global batch as this many contiguous shards whose gradients are summed in shard order
        (:mod:`cnn.distributed`): the step ``mpiexec -n K`` runs, reproduced in one process. Default 1 (the
        unsharded step); under MPI it is the number of ranks (another number is refused), rank ``r``
        computes shard ``r``, every rank holds the same weights, and only rank 0 writes the checkpoint and
        the log and prints (the other ranks are silent); the validation pass runs on rank 0, its scores sent
        to all. A resume may use another number of shards (the weights go on from the checkpoint; the result
        then differs from an uninterrupted run with the old number).
    mpi_timeout : float, optional
        Under MPI, the seconds a rank waits in one exchange before it ends the job (``CNN_MPI_TIMEOUT``,
        default 300).

    Raises
    ------
    NonFiniteLossError
        When the loss becomes NaN or infinite; the last checkpoint is kept as it was.
    ValueError
        For no training examples (``x`` empty, or nothing left after the validation split), and for any
        argument out of range.
    """
    model.check_engine()
    shards = make_shards(shards, timeout=mpi_timeout)
    if not shards.writer:  # under MPI only rank 0 writes and prints
        verbose, checkpoint_dir, log_path = 0, (checkpoint_dir if resume else None), None
    stream = sys.stdout if stream is None else stream
    epochs = check_int(epochs, "epochs", "fit", minimum=0)
    batch_size = check_int(batch_size, "batch_size", "fit", minimum=1)
    seed = model.seed if seed is None else check_int(seed, "seed", "fit", minimum=0)
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(invalid("fit", "metrics", f"names among {METRICS}", metrics))
    x, y = _check_xy(model, x, y, "fit", batch_size=batch_size)
    augment = make_policy(augment)  # a bad description fails before anything else is read or written
    x, y, validation = _split(model, x, y, validation_split, validation_data)
    if len(x) == 0:
        raise ValueError("fit: there are no training examples: x has 0 rows"
                         + (" after the validation split." if validation_split else "."))
    optimizer = make_optimizer(optimizer, lr)
    schedule = make_schedule(schedule, epochs)
    stopper = make_early_stopping(early_stopping, validation is not None)
    if progress is None:
        progress = bool(getattr(stream, "isatty", lambda: False)())
    settings = {"seed": seed, "batch_size": batch_size, "schedule": schedule.to_dict(), "train_size": len(x),
                "validation_size": 0 if validation is None else len(validation[0]),
                "early_stopping": None if stopper is None else {k: v for k, v in stopper.to_dict().items()
                                                                if k not in ("best", "best_epoch", "wait")},
                "augment": augment.to_text() if augment.active else None}

    history, epoch, step = History(), 0, 0
    path = None if checkpoint_dir is None else checkpoint_path(checkpoint_dir)
    if log_path is None and checkpoint_dir is not None:
        log_path = metrics_path(checkpoint_dir)
    if path is not None and (os.path.exists(path) or not shards.writer):  # under MPI every rank reads it
        if not resume:
            raise FileExistsError(f"{path} already exists; pass resume=True (--resume) to continue that run, "
                                  "or choose another checkpoint folder")
        training = restore_checkpoint(path, model, optimizer, settings, allow_changes=allow_changes)
        epoch, step = training["epoch"], training["global_step"]
        history = History.from_dict(training["history"])
        history.changes.extend(training["changes"])
        if stopper is not None and training["early_stopping"] is not None:
            stopper = EarlyStopping(**training["early_stopping"])
        if verbose:
            for change in training["changes"]:
                print(f"resumed with {change['option']} {change['to']} from epoch {change['epoch']} "
                      f"(was {change['from']})", file=stream, flush=True)
    shards.agree(_agreement(model, optimizer, x, y, validation, settings, epochs, epoch, step))
    if on_start is not None:
        on_start(history)
    if history.stop_reason:  # a resumed run that had already stopped early
        return history

    while epoch < epochs:
        lr_now = schedule.lr(optimizer.lr, epoch)
        bar = _Progress(stream, progress and verbose > 0, epoch + 1, epochs, len(x))
        start, first_step = time.perf_counter(), step
        try:
            loss, accuracy, step = _train_epoch(model, optimizer, x, y, epoch=epoch, epochs=epochs,
                                                batch_size=batch_size, seed=seed, step=step, lr=lr_now,
                                                progress=bar, last_good=path if path and os.path.exists(path) else None,
                                                profile=profile, augment=augment, shards=shards)
        finally:
            bar.clear()
        seconds = time.perf_counter() - start
        if profile is not None:
            profile.add_steps(step - first_step, seconds)
        row = {"epoch": epoch + 1, "loss": loss}
        if "accuracy" in metrics:
            row["accuracy"] = accuracy
        if validation is not None:
            with _paused(profile):  # under MPI rank 0 scores, every rank gets its numbers
                scores = shards.broadcast_scores(
                    lambda: evaluate(model, *validation, batch_size=evaluation_batch_size(batch_size)))
            row.update({f"val_{k}": v for k, v in scores.items() if k in metrics or k == "loss"})
        row.update({"lr": lr_now, "seconds": seconds, "images_per_second": len(x) / max(seconds, 1e-9)})
        history.epochs.append(row)
        epoch += 1
        if stopper is not None and stopper.update(row[stopper.monitor], epoch):
            history.stop_reason = (f"early stopping: {stopper.monitor} did not improve for {stopper.wait} "
                                   f"epoch(s) after its best {stopper.best:.6g} at epoch {stopper.best_epoch}")
        if path is not None and shards.writer:
            training = {"epoch": epoch, "global_step": step, "settings": settings, "history": history.to_dict(),
                        "early_stopping": None if stopper is None else stopper.to_dict()}
            save_checkpoint(path, model, optimizer, training)
        if log_path is not None:
            write_log(history, log_path)
        if verbose:
            print(_summary_line(row, epochs), file=stream, flush=True)
        if history.stop_reason:
            if verbose:
                print(history.stop_reason, file=stream, flush=True)
            break
    return history


def _data_fingerprint(x, y) -> str:
    """The shapes, and the bytes of up to 64 rows spread over ``x`` and of every label: cheap, and enough to
    tell another data set, another ``--limit`` or another split from this one."""
    rows = np.unique(np.linspace(0, len(x) - 1, num=min(len(x), 64)).astype(np.int64)) if len(x) else []
    return fingerprint([np.asarray(x.shape), np.ascontiguousarray(x[rows]), np.ascontiguousarray(y)])


def _agreement(model, optimizer, x, y, validation, settings, epochs, epoch, step) -> dict:
    """What the ranks of an MPI job must agree on before the first step, each part as a digest: the model
    (configuration and weights, so ``--init`` and a resumed checkpoint count), the data, the options, and
    where the run stands (epoch, step, optimizer state)."""
    opt_arrays, opt_meta = optimizer.state_arrays()
    return {
        "model": fingerprint(model.config()),
        "weights": fingerprint([model.state_arrays()[k] for k in sorted(model.state_arrays())]),
        "data": _data_fingerprint(x, y),
        "validation data": "none" if validation is None else _data_fingerprint(*validation),
        "options": fingerprint({"settings": settings, "optimizer": optimizer.config(), "epochs": epochs,
                                "dtype": model.dtype.name, "engine": getattr(model.engine, "__name__", "?")}),
        "state": fingerprint({"epoch": epoch, "step": step, "optimizer": opt_meta,
                              "arrays": fingerprint([opt_arrays[k] for k in sorted(opt_arrays)])
                              if opt_arrays else None}),
    }


# --------------------------------------------------------------------------------------------------
# evaluate, predict


def _logits_in_batches(model, x, batch_size: int):
    for start in range(0, len(x), batch_size):
        yield start, model.forward(x[start:start + batch_size], training=False, backward=False)


def evaluate(model, x, y, *, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """``{"loss": mean cross-entropy, "accuracy": fraction of argmax(logits) == y}`` in evaluation mode."""
    model.check_engine()
    batch_size = check_int(batch_size, "batch_size", "evaluate", minimum=1)
    x, y = _check_xy(model, x, y, "evaluate", batch_size=batch_size)
    if len(x) == 0:  # a mean over no samples has no value; Keras refuses too
        raise ValueError("evaluate: arguments `x` and `y` hold no samples; a loss and an accuracy need at least one")
    total, correct = 0.0, 0
    for start, logits in _logits_in_batches(model, x, batch_size):
        yb = y[start:start + len(logits)]
        total += float(model.engine.cross_entropy(logits, yb, reduction="sum"))
        correct += int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
    return {"loss": total / len(x), "accuracy": correct / len(x)}


def predict(model, x, *, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Class probabilities ``softmax(logits)``, shape (N, classes), in the model's dtype."""
    model.check_engine()
    batch_size = check_int(batch_size, "batch_size", "predict", minimum=1)
    x = model._check_input(x, "predict", batch_size)
    parts = [model.probabilities(logits) for _, logits in _logits_in_batches(model, x, batch_size)]
    if not parts:  # no samples, so no batches: the forward pass of none gives the shape, (0, classes)
        return model.probabilities(model.forward(x, backward=False))
    return np.concatenate(parts, axis=0)


def top_k(probabilities: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes of each row, most probable first (ties: the lower class first).

    Returns ``(classes (N, k) int64, probabilities (N, k))``.
    """
    if not isinstance(probabilities, np.ndarray) or probabilities.ndim != 2:
        raise ValueError(f"top_k: argument `probabilities` must be a 2-D array (N, classes); received "
                         f"{getattr(probabilities, 'shape', type(probabilities).__name__)}.")
    k = check_int(k, "k", "top_k", minimum=1)
    if k > probabilities.shape[1]:
        raise ValueError(invalid("top_k", "k", f"at most {probabilities.shape[1]} (the number of classes)", k))
    classes = np.argsort(-probabilities, axis=1, kind="stable")[:, :k].astype(np.int64)
    return classes, np.take_along_axis(probabilities, classes, axis=1)
