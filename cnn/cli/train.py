"""``cnn train``: train a model and write a run folder.

The command's parameters become one :class:`cnn.options.TrainOptions` (merged with the run's ``run.json``
on ``--resume``); the run folder's rules and files are :mod:`cnn.run`, the training loop
:func:`cnn.train.fit`. This module checks that model, data, optimizer and folder fit together before
anything is written, then prints what happens.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from pathlib import Path

import click

from cnnbase import netspec

from .. import data as datasets
from .. import distributed
from ..augment import AugmentError, make_policy
from .. import run as runs
from .. import train as training
from .. import transfer
from ..history import plot_history
from ..model import Model
from ..optimizers import OPTIMIZERS, Optimizer
from ..options import TrainOptions, parse_betas
from ..profiling import LayerProfile, render_profile
from ..schedules import Constant, Schedule
from .common import (COUNT, CONTEXT, EXIT_FAILED, EXIT_INTERRUPTED, FiniteFloat, UsageProblem, engine_option, fail,
                     printable, reported, set_threads, shape_text, threads_option)
from .inputs import (RESIZE_HELP, check_engine, check_fit, check_input_shape, load_data, output_classes,
                     refuse_image_options, resize_data, resize_option_callback)

__all__ = ["train", "parse_schedule", "RESUME_MAY_CHANGE", "MAX_SEED"]

_DEFAULTS = TrainOptions()
#: The options a ``--resume`` may give other values than the run's ``run.json``: more (or fewer) epochs, and
#: the learning rate and schedule (a run stopped by a NaN loss goes on with a lower rate). Anything else
#: would make another run of the same folder, which is refused.
RESUME_MAY_CHANGE = ("epochs", "lr", "schedule", "shards")
#: The largest ``--seed``: dropout seeds are 64-bit (``cnn.layers.derive_seed``), a larger one would alias.
MAX_SEED = 2**64 - 1


# ---------------------------------------------------------------------------------------------------
# Option parsing


def _schedule_callback(ctx, param, value) -> Schedule | None:
    if value is None:
        return None
    try:
        return Schedule.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def parse_schedule(text: str) -> dict | None:
    """``"step:5:0.5"`` -> ``{"name": "step", "step_size": 5, "gamma": 0.5}``; ``"none"`` -> None: the
    ``--schedule`` text as the dict ``fit(schedule=...)`` also takes, with only the arguments the text gives
    (the rest take the schedule's defaults; cosine's ``t_max`` is the epoch count). ``click.BadParameter``
    for a text ``--schedule`` refuses."""
    schedule = _schedule_callback(None, None, text)
    return None if isinstance(schedule, Constant) else schedule.to_dict()


def augment_callback(ctx, param, value) -> str | None:
    """``--augment TEXT`` -> its canonical text (None for ``none``), so that run.json records it in one
    spelling and ``--resume`` compares like with like; a bad name or value is one line naming it and the
    choices (``cnn: error: --augment: ...``, exit status 2), not click's three-line usage error."""
    if value is None:
        return None
    try:
        policy = make_policy(value)
    except AugmentError as error:  # one line, as the issue asks: the item, what it takes, the valid names
        fail(f"--augment: {str(error).removeprefix('augment: ')}")
    return policy.to_text() if policy.active else None


AUGMENT_HELP = ("Augment the training images (never the evaluation's), e.g. \"rotation=10, shift=0.1, zoom=0.1, "
                "shear=10, hflip, brightness=0.2, contrast=0.2, crop=4, erase=0.25, fill=nearest\" "
                "(specs/augment.md; preview: cnn augment).")


def _betas_callback(ctx, param, value) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        return parse_betas(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _classes_callback(ctx, param, value) -> str | None:
    """``--classes 0-4``: checked when read, kept as its text (run.json records it)."""
    if value is None:
        return None
    try:
        datasets.parse_classes(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


def select_classes(ds: datasets.Dataset, options: TrainOptions) -> datasets.Dataset:
    """``--classes`` (and ``--per-class``): only those classes of the data, relabelled from 0."""
    if options.classes is None:
        if options.per_class is not None:
            raise UsageProblem("--per-class needs --classes (e.g. --classes 0-9 --per-class 50)")
        return ds
    try:
        return ds.classes_subset(datasets.parse_classes(options.classes), options.per_class)
    except ValueError as error:
        raise UsageProblem(f"--classes {options.classes}: {ds.name} has classes 0-{ds.num_classes - 1}; "
                           f"{error}") from None


def start_from(model: Model, options: TrainOptions, optimizer: Optimizer) -> None:
    """``--init``, ``--freeze``, ``--freeze-until``, ``--lr-pretrained``: load the matching layers, print the
    table of what was loaded, freeze, and give the loaded layers their learning-rate multiplier."""
    for name in ("lr_pretrained", "init_exclude"):
        if getattr(options, name) is not None and options.init is None:
            raise UsageProblem(f"{_flag(name)} applies to the layers --init loads; give --init MODEL.npz")
    try:
        if options.init is not None:
            report = transfer.init_from(model, options.init, options.init_exclude)
            click.echo(f"init: {printable(options.init)}: {len(report.loaded)} layer(s) loaded, "
                       f"{len(report.new)} new, {len(report.skipped)} skipped")
            for line in report.lines():
                click.echo(f"      {printable(line)}")
            optimizer.lr_multipliers = transfer.pretrained_multipliers(model, report, options.lr_pretrained)
        frozen = transfer.freeze_layers(model, options.freeze, options.freeze_until)
    except transfer.TransferError as error:
        raise UsageProblem(str(error)) from None
    if frozen:
        click.echo(f"frozen: {', '.join(frozen)} (not trained, Keras's trainable=False; a frozen batch norm "
                   "runs in inference mode)")


def given_options(ctx: click.Context) -> set[str]:
    """The options of the run given on the command line (not left at their defaults)."""
    return {name for name in TrainOptions.names()
            if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)}


# ---------------------------------------------------------------------------------------------------
# Model, optimizer, validation split


def build_model(source: str, input_text: str | None, ds: datasets.Dataset, *, engine, seed, dtype,
                resize: str | None = None) -> tuple[Model, tuple[str, ...]]:
    """The model of a preset, a .json network file or a text spec, fitted to the data, and one line per change.

    The input shape is ``--input`` or the data's images (a preset's own shape gives way to the data), and the
    head takes the data's class count (:meth:`cnnbase.netspec.Network.adapted`). A network that cannot take
    the images fails naming the layer, the sizes and the ``--resize`` that would make it fit.
    """
    network = netspec.load_network(source)
    if not network.layers:
        raise UsageProblem(f"--model {source}: the network has no layers; a classifier needs at least one "
                           "(e.g. flatten, dense<classes>)")
    input_shape = netspec.parse_shape(input_text) if input_text is not None else ds.image_shape
    what = f"the model {source!r}" if source in netspec.PRESETS or source.endswith(".json") else "the model"
    check_input_shape(input_shape, ds, what)  # before building: a model of the wrong size may not even build
    try:
        adapted = network.adapted(input_shape, ds.num_classes)
    except netspec.InputTooSmall as error:
        raise UsageProblem(f"{what} cannot take {ds.name}'s images of {shape_text(input_shape)}: {error}"
                           f"{_resize_hint(error.smallest, resize)}") from None
    model = Model(adapted.network.layers, tuple(input_shape), engine=engine, seed=seed, dtype=dtype)
    check_engine(model)
    check_fit(model, ds, what)
    return model, adapted.changes


def _resize_hint(smallest, resize: str | None) -> str:
    if smallest is None or len(smallest) != 3:
        return ""
    size = "x".join(map(str, smallest[1:]))
    given = f" instead of --resize {resize}" if resize else ""
    return (f"; make the images that size: --resize {size}{given} "
            f"(and --input {shape_text(smallest)} if you give --input)")


def params_line(summary: netspec.Summary, frozen: int = 0) -> str:
    """The parameter counts as ``cnn shape`` and Keras label them: the total, then trainable and not; the
    ``frozen`` layers' parameters count as non-trainable, as in Keras, and are also shown alone."""
    line = (f"Total params: {summary.total_params:,}  Trainable params: {summary.trainable_params - frozen:,}  "
            f"Non-trainable params: {summary.non_trainable_params + frozen:,}")
    return line + (f" (frozen: {frozen:,})" if frozen else "")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_optimizer(options: TrainOptions) -> Optimizer:
    """The optimizer of the options; an option of another optimizer (``--momentum`` with adam) is refused."""
    name = options.optimizer
    allowed = set(Optimizer(name).hyperparameters)
    given = options.optimizer_arguments()
    wrong = [key for key in given if key not in allowed]
    if wrong:
        flags = ", ".join(_flag(key) for key in wrong)
        own = ", ".join(_flag(key) for key in TrainOptions.OPTIMIZER_OPTIONS if key in allowed)
        raise UsageProblem(f"{flags} does not apply to --optimizer {name} (its options: --lr, {own})")
    try:
        return Optimizer(name, options.lr, **given)
    except (ValueError, TypeError) as error:
        raise UsageProblem(str(error)) from None


def check_validation(options: TrainOptions, ds: datasets.Dataset) -> None:
    """``--validation-split`` and ``--validation-data`` are one or the other, and the split must leave images
    on both sides; ``--validation-data test`` needs a test split."""
    if options.validation_data is not None:
        if options.validation_split:
            raise UsageProblem(f"--validation-data {options.validation_data} and --validation-split "
                               f"{options.validation_split:g}: give one or the other")
        if len(ds.y_test) == 0:
            raise UsageProblem(f"--validation-data test: {printable(ds.name)} has no test split")
    check_validation_split(options.validation_split, len(ds.y_train))


def validation_data(options: TrainOptions, ds: datasets.Dataset):
    """The ``(x, y)`` that ``fit`` scores after every epoch for ``--validation-data test``, else None."""
    if options.validation_data != "test":
        return None
    return datasets.to_float(ds.x_test), ds.y_test


def check_validation_split(fraction: float, n: int) -> None:
    if fraction:
        try:
            datasets.validation_split(n, fraction)
        except ValueError as error:
            raise UsageProblem(f"--validation-split: {error}") from None


def check_training_images(ds: datasets.Dataset) -> None:
    """``fit`` needs at least one training image; say so before the run starts, naming the data."""
    if len(ds.y_train) == 0:
        raise UsageProblem(f"{ds.name} has no training images (its training split is empty); --data needs "
                           "a data set with a training split")


def _option_value(value) -> str:
    if value is None:
        return "not set"
    return getattr(value, "text", None) or str(value)


def check_resume_options(recorded: TrainOptions | None, record: TrainOptions, folder: Path) -> None:
    """``--resume`` may change :data:`RESUME_MAY_CHANGE` only; any other option that differs from the run's
    ``run.json`` (the model, the data, the batch size, the seed...) is refused, naming each."""
    if recorded is None:
        return
    differing = [name for name in TrainOptions.names()
                 if name not in RESUME_MAY_CHANGE and getattr(recorded, name) != getattr(record, name)]
    if differing:
        listing = ", ".join(f"{_flag(_OPTION_FLAGS.get(n, n))} ({_option_value(getattr(recorded, n))} there, "
                            f"{_option_value(getattr(record, n))} here)" for n in differing)
        raise UsageProblem(f"--resume continues the run in {folder} as {runs.RUN_FILE} records it; it may change "
                           f"--epochs, --lr and --schedule, not {listing}")


#: Options whose command-line flag is not their name with dashes.
_OPTION_FLAGS = {"model_source": "model", "input_text": "input", "data_name": "data"}


# ---------------------------------------------------------------------------------------------------
# Training and after


def run_fit(model: Model, ds: datasets.Dataset, optimizer: Optimizer, options: TrainOptions, folder: Path,
            resume: bool, on_start=None, profile=None, shards=None):
    """:func:`cnn.train.fit` with the run folder as checkpoint folder (it writes the checkpoint and the
    metrics log there); a non-finite loss and Ctrl-C become one line and their exit statuses. A resume may
    change the learning rate and the schedule (``on_start`` records it in ``run.json``)."""
    try:
        return training.fit(
            model, datasets.to_float(ds.x_train), ds.y_train, epochs=options.epochs,
            batch_size=options.batch_size, optimizer=optimizer, schedule=options.schedule,
            validation_split=options.validation_split, validation_data=validation_data(options, ds),
            early_stopping=options.early_stopping, checkpoint_dir=folder, resume=resume, seed=options.seed, on_start=on_start, profile=profile,
            augment=options.augment, shards=shards if shards is not None else options.shards,
        )
    except training.NonFiniteLossError as error:  # under MPI every rank sees the same loss: rank 0 says it
        fail_together(f"{error} Continue from there with a lower rate: cnn train --out {folder} --resume "
                      f"--lr {optimizer.lr / 10:g} (or another --schedule)", EXIT_FAILED)
    except KeyboardInterrupt:
        checkpoint = folder / runs.CHECKPOINT_FILE
        kept = (f"{checkpoint} holds the last finished epoch; continue with "
                f"cnn train --out {folder} --resume") if checkpoint.exists() else "no epoch finished"
        fail(f"interrupted; {kept}", EXIT_INTERRUPTED)


def run_profiled(model: Model, ds: datasets.Dataset, optimizer: Optimizer, options: TrainOptions, folder: Path,
                 resume: bool, on_start=None, shards=None):
    """``cnn train --profile``: :func:`run_fit` with every layer and the optimizer timed over this run's
    training epochs (not the validation passes, not the test evaluation), then the time per layer type
    printed. Profiling changes no result: the same seed gives the same weights."""
    profile = LayerProfile()
    with profile.attached(model, optimizer):
        history = run_fit(model, ds, optimizer, options, folder, resume, on_start, profile, shards)
    click.echo(profile_report(profile))
    return history


def profile_report(profile: LayerProfile) -> str:
    """What ``--profile`` prints: the steps it covers, then ms per step and % of the step per layer type."""
    if not profile.steps:
        return "profile: no training step ran"
    head = [f"profile: {profile.steps:,} training steps, {profile.step_seconds:.1f} s, "
            f"{1e3 * profile.step_seconds / profile.steps:,.2f} ms per step (the first steps include compiling)",
            "         a block's time is its own (a Residual's: the add and its activation); "
            "(rest of the step): loss, accuracy count, batch order"]
    return "\n".join(head + render_profile(profile.rows()))


def finish_evaluation(model: Model, ds: datasets.Dataset, batch_size: int) -> dict | None:
    if len(ds.y_test) == 0:
        return None
    return training.evaluate(model, datasets.to_float(ds.x_test), ds.y_test,
                             batch_size=training.evaluation_batch_size(batch_size))


def test_result_line(scores: dict | None, ds: datasets.Dataset) -> str:
    if scores is None:
        return f"test: {printable(ds.name)} has no test split"
    return f"test: loss {scores['loss']:.4f}  accuracy {scores['accuracy']:.4f}  ({len(ds.y_test):,} images)"


def write_run_file(folder: Path, record: TrainOptions, ds: datasets.Dataset, model: Model, test: dict | None,
                   changes=()):
    runs.write_run_file(folder, record, data=ds.describe(), class_names=ds.class_names,
                        parameters=model.count_params(), test=test, changes=changes)


def first_look(ctx, folder: Path, resume: bool, overwrite: bool, run_options: dict):
    """The checks of the folder and the options that read nothing but ``run.json``: ``(recorded options,
    options of this run, its optimizer)``. Every option is valid once this returns."""
    recorded = runs.check_run_dir(folder, resume, overwrite)
    options = TrainOptions(**run_options).apply_recorded(recorded, given_options(ctx))
    return recorded, options, build_optimizer(options)


def file_failed(error: OSError, folder: Path) -> None:
    """An ``OSError`` as one line naming the file. A write in the run folder that failed (a full disk, a
    folder made read-only) is exit status 1: every file is written atomically, so the run's files are each
    whole and the last checkpoint is intact. Anything else is a file the user named: exit status 2."""
    name = error.filename or folder
    reason = error.strerror or str(error)
    if Path(name).parent.absolute() != folder.absolute():
        fail(f"{name}: {reason}")
    checkpoint = folder / runs.CHECKPOINT_FILE
    kept = (f"{checkpoint} holds the last finished epoch (continue with cnn train --out {folder} --resume)"
            if checkpoint.exists() else "no epoch finished")
    fail(f"cannot write {name}: {reason}; {kept}", EXIT_FAILED)


# ---------------------------------------------------------------------------------------------------
# cnn train


@click.command(context_settings=CONTEXT)
@click.option("--model", "model_source", default=_DEFAULTS.model_source, show_default=True, metavar="MODEL",
              help="A preset (cnn shape --list), a .json network file or a text spec such as "
                   "\"conv32k3 relu, maxpool2, flatten, dense10 softmax\".")
@click.option("--input", "input_text", metavar="CxHxW",
              help="Input shape of the model (default: the data's images, after --resize; CxL for series); a "
                   "preset's head takes the data's class count.")
@click.option("--data", "data_name", default=_DEFAULTS.data_name, show_default=True, metavar="NAME|PATH",
              help="fashion-mnist, fashion-mnist-small (shipped), default (the full set when installed, else "
                   "the shipped sample), or a .npz file, IDX, CIFAR-10 or PNG class folder. Time series: gunpoint, "
                   "italypowerdemand, basicmotions (shipped) or a NAME_TRAIN.ts/.tsv file, z-normalised per series; "
                   "options after ':', e.g. gunpoint:znorm=channel, X_TRAIN.ts:length=200, x.npz:series "
                   "(specs/timeseries.md).")
@click.option("--resize", callback=resize_option_callback, metavar="HxW", help=RESIZE_HELP)
@click.option("--limit", type=COUNT, metavar="N", help="Train on the first N training images.")
@click.option("--epochs", default=_DEFAULTS.epochs, show_default=True, type=COUNT)
@click.option("--batch-size", default=_DEFAULTS.batch_size, show_default=True, type=COUNT)
@click.option("--optimizer", default=_DEFAULTS.optimizer, show_default=True, type=click.Choice(list(OPTIMIZERS)))
@click.option("--lr", type=FiniteFloat(min=0.0, min_open=True),
              help="Base learning rate (default: the optimizer's: adam 0.001, sgd 0.001, adadelta 1.0, rmsprop 0.01).")
@click.option("--momentum", type=FiniteFloat(min=0.0), help="sgd, rmsprop.")
@click.option("--weight-decay", type=FiniteFloat(min=0.0), help="Any optimizer (L2, as torch.optim).")
@click.option("--nesterov", is_flag=True, default=None, help="sgd: Nesterov momentum.")
@click.option("--rho", type=FiniteFloat(0.0, 1.0), help="adadelta.")
@click.option("--alpha", type=FiniteFloat(0.0, 1.0), help="rmsprop.")
@click.option("--betas", callback=_betas_callback, metavar="B1,B2", help="adam, e.g. 0.9,0.999.")
@click.option("--eps", type=FiniteFloat(min=0.0, min_open=True), help="adam, adadelta, rmsprop.")
@click.option("--schedule", callback=_schedule_callback, metavar="SCHEDULE",
              help="Learning rate per epoch: none, step:SIZE:GAMMA, exp:GAMMA or cosine[:T_MAX[:ETA_MIN]].")
@click.option("--validation-split", default=_DEFAULTS.validation_split, show_default=True,
              type=FiniteFloat(0.0, 1.0, max_open=True),
              help="Hold out this last fraction of the training images.")
@click.option("--validation-data", type=click.Choice(["test"]),
              help="Score the test split after every epoch (val_loss, val_accuracy in the log and the curves), "
                   "as Keras's validation_data=(x_test, y_test) in the seed articles. The test figure then "
                   "no longer judges choices made by watching it.")
@click.option("--early-stopping", type=COUNT, metavar="PATIENCE",
              help="Stop after PATIENCE epochs without improvement of val_loss (of loss without validation).")
@click.option("--augment", callback=augment_callback, metavar="TRANSFORMS", help=AUGMENT_HELP)
@click.option("--classes", metavar="LIST", callback=_classes_callback,
              help="Train and test on these classes only, relabelled from 0 (e.g. 0-4 or 5,7,9).")
@click.option("--per-class", type=COUNT, metavar="N",
              help="With --classes: the first N training images of each class (a small labelled set).")
@click.option("--init", metavar="MODEL.npz",
              help="Start from this model file (or pretrained:fashion-mnist, shipped): every layer whose name "
                   "and shapes match is loaded, the rest (a new head for this data's classes) is initialised; "
                   "prints which layers were loaded, new or skipped.")
@click.option("--init-exclude", metavar="NAMES",
              help="With --init: layers not loaded although they match, left new (comma list; e.g. the "
                   "classifier when the new data has as many classes as the old).")
@click.option("--freeze", metavar="NAMES",
              help="Do not train these layers (comma list of layer names, Keras's trainable=False); a frozen "
                   "batch norm runs in inference mode, on its running statistics, as in Keras.")
@click.option("--freeze-until", metavar="NAME",
              help="Freeze every layer from the first up to and including NAME (e.g. flatten: train the head).")
@click.option("--lr-pretrained", type=FiniteFloat(min=0.0), metavar="F",
              help="With --init: the loaded layers learn at F times the learning rate (--lr and its schedule), "
                   "the new ones at 1 times (e.g. 0.1 to fine-tune gently).")
@click.option("--seed", default=_DEFAULTS.seed, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="Seeds the weights, the batch order and dropout: same seed, same result.")
@click.option("--shards", type=COUNT, metavar="K",
              help="Compute each batch as K shards whose gradients are summed in shard order: the step "
                   "mpiexec -n K cnn train runs, reproduced bit for bit in one process (docs/mpi.md). Default 1; "
                   "under mpiexec the number of ranks.")
@click.option("--mpi-timeout", type=FiniteFloat(min=0.0, min_open=True), metavar="SECONDS",
              help=f"Under mpiexec: seconds a rank waits for the others in one exchange before it ends the job "
                   f"(default ${distributed.TIMEOUT_ENV} or {distributed.DEFAULT_TIMEOUT:g}).")
@threads_option
@engine_option("fastcnn, or refcnn (the slow reference, for checking).")
@click.option("--dtype", default=_DEFAULTS.dtype, show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--out", metavar="DIR", help="Run folder (default: runs/<date-time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out DIR from its last checkpoint (it may "
              "change --epochs, --lr and --schedule).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out DIR (only the files cnn train writes).")
@click.option("--profile", is_flag=True, help="After training, print the time per layer type (forward and "
              "backward), optimizer update and batch gather, as ms per step and % of the step, over this "
              "run's training epochs.")
@click.pass_context
def train(ctx, threads, engine, out, resume, overwrite, profile, mpi_timeout, **run_options):
    """Train a model; writes weights, a metrics log, a plot and checkpoints in a run folder.

    Prints one line per epoch, then the test accuracy. Exit status 2 for a usage error (including a model
    that does not fit the data, and a run folder another cnn train is writing in), 1 when the loss becomes NaN
    or infinite (the last good checkpoint is kept; resume it with a lower --lr) or a file cannot be written,
    130 on Ctrl-C. Every option is checked before anything is written.

    \b
    Example:
      cnn train --data fashion-mnist-small --epochs 3 --out runs/first
      cnn train --out runs/first --resume --epochs 5     # two more epochs, same options
      cnn train --out runs/first --resume --lr 0.0001    # on from the last checkpoint, a lower rate
      mpiexec -n 2 cnn train --data fashion-mnist-small --out runs/two   # data-parallel over 2 ranks
    """
    world = distributed.world_size_from_env()
    if world == 1:
        _train_one(ctx, threads, engine, out, resume, overwrite, profile, None, run_options)
        return
    writer = distributed.rank_from_env() == 0
    if not writer:  # rank 0 alone prints; the others say only what stops them
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    try:
        with reported():
            shards = _mpi_shards(ctx, world, run_options, mpi_timeout)
            run_options["shards"] = world  # recorded in run.json: a resume in one process takes the same steps
        _train_one(ctx, threads, engine, out, resume, overwrite, profile, shards, run_options)
    except SystemExit as exit:
        if exit.code not in (0, None) and not getattr(exit, "together", False):
            distributed.abort_job(exit.code if isinstance(exit.code, int) else 1)  # one rank alone: end them all
        raise
    except Exception:  # a bug: its traceback, then end every rank rather than leave them waiting
        traceback.print_exc()
        distributed.abort_job(EXIT_FAILED)


def fastcnn_threads() -> int:
    import fastcnn

    return fastcnn.get_num_threads()


def fail_together(message: str, status: int = 2) -> None:
    """:func:`fail` for what every rank of an MPI job finds alike (a non-finite loss, ranks that disagree, a
    --shards other than the ranks): rank 0 says it, every rank ends with ``status``, no rank aborts the
    others. Outside MPI, :func:`fail`."""
    if distributed.rank_from_env() == 0:
        click.echo(f"cnn: error: {printable(message)}", err=True)
    exit = SystemExit(status)
    exit.together = True
    raise exit


def _mpi_shards(ctx, world: int, run_options: dict, timeout):
    """Under ``mpiexec -n K``: the MPI backend (rank r computes shard r); ``--shards`` other than K, or no
    mpi4py, end every rank alike."""
    if "shards" in given_options(ctx) and run_options["shards"] != world:
        fail_together(f"--shards {run_options['shards']}: under mpiexec each of the {world} ranks computes one "
                      f"shard; leave --shards out (or give {world})")
    try:
        return distributed.make_shards(None, timeout=timeout)
    except distributed.DistributedError as error:
        fail_together(str(error))


def _train_one(ctx, threads, engine, out, resume, overwrite, profile, shards, run_options):
    """``cnn train`` in this process: alone (``shards`` None), or as one rank of an MPI job (rank 0 holds the
    run folder's lock and writes every file; the other ranks read it only to resume)."""
    writer = shards is None or shards.writer
    with reported():
        folder = runs.choose_run_dir(out, resume, overwrite)
        first_look(ctx, folder, resume, overwrite, run_options)  # a bad option fails before the folder is made
        if shards is not None and threads is None:
            threads = distributed.default_threads_per_rank(shards.size)  # ranks x threads <= cores
        set_threads(threads)
        if not writer:
            try:
                train_in(ctx, folder, resume, overwrite, run_options, engine, profile, shards)
            except distributed.DistributedError as error:
                fail_together(str(error))
            return
        lock = runs.lock_run_dir(folder) if out is not None else runs.lock_default_run_dir()
        folder = lock.folder
        with lock:
            if lock.taken_over:
                click.echo(f"cnn: note: {printable(lock.taken_over)}", err=True)
            try:
                test, ds = train_in(ctx, folder, resume, overwrite, run_options, engine, profile, shards)
            except OSError as error:
                file_failed(error, folder)
            except distributed.DistributedError as error:
                fail_together(str(error))
    click.echo(test_result_line(test, ds))
    written = [name for name in (runs.MODEL_FILE, runs.METRICS_FILE, runs.PLOT_FILE, runs.CHECKPOINT_FILE,
                                 runs.RUN_FILE) if (folder / name).exists()]
    click.echo(f"files: {printable(folder)}/ {', '.join(written)}")


def train_in(ctx, folder: Path, resume: bool, overwrite: bool, run_options: dict, engine: str,
             profile: bool = False, shards=None):
    """Everything ``cnn train`` does holding the run folder's lock: the folder checked again (another run may
    have finished there since the first look), the data read, the model built and checked against it, and
    only then the first write. Returns the test scores and the data set."""
    recorded, options, optimizer = first_look(ctx, folder, resume, overwrite, run_options)
    if shards is not None:  # under MPI the step has as many shards as ranks, whatever run.json recorded
        options = dataclasses.replace(options, shards=shards.size)
    ds = select_classes(load_data(options.data_name, options.limit), options)
    refuse_image_options(ds, options.augment, options.resize)  # time series: no --augment, no --resize
    ds = resize_data(ds, options.resize)
    click.echo(f"data: {printable(ds.describe())}")
    if options.data_name == "default" and ds.name != "fashion-mnist":
        click.echo(f"      (the full Fashion-MNIST was not found: install Debian's dataset-fashion-mnist or "
                   f"set {datasets.DATA_DIR_ENV})")
    check_training_images(ds)
    model, changes = build_model(options.model_source, options.input_text, ds, engine=engine, seed=options.seed,
                                 dtype=options.dtype, resize=options.resize)
    check_validation(options, ds)
    record = options.recordable(ds.name)
    if resume:
        check_resume_options(recorded, record, folder)
    click.echo(f"model: {printable(options.model_source)}: input {shape_text(model.input_shape)}, "
               f"{output_classes(model)} classes; engine {engine}, {options.dtype}")
    if changes:
        click.echo(f"       fitted to the data: {'; '.join(changes)}")
    start_from(model, options, optimizer)
    click.echo(f"       {params_line(model.summary(), model.frozen_params())}")
    if options.augment:
        click.echo(f"augment: {options.augment} (training batches only)")
    if shards is not None:  # every rank has read what it needs (run.json) before rank 0 writes there
        shards.barrier("the start (every rank loading its data and model)")
        click.echo(f"mpi: {shards.size} ranks, one shard of each batch per rank; "
                   f"{fastcnn_threads()} thread(s) per rank")
    writer = shards is None or shards.writer
    if not writer:
        run_fit(model, ds, optimizer, options, folder, resume, None, None, shards)
        return None, ds
    # Everything is checked: from here on the run writes.
    runs.remove_stale_temporaries(folder)
    if overwrite:
        runs.clear_run_dir(folder)
    if not resume:  # a resumed run keeps its record until it has checked out against it (on_start below)
        write_run_file(folder, record, ds, model, None)
    click.echo(f"run: {printable(folder)}{' (resumed)' if resume else ''}")

    def record_resume(history) -> None:
        if resume:
            write_run_file(folder, record, ds, model, None, history.changes)

    history = (run_profiled if profile else run_fit)(model, ds, optimizer, options, folder, resume, record_resume,
                                                     shards=shards)
    runs.save_model(model, folder / runs.MODEL_FILE, ds.class_names, ds.name)
    if history.epochs:
        plot_history(history, folder / runs.PLOT_FILE)
    test = finish_evaluation(model, ds, options.batch_size)
    write_run_file(folder, record, ds, model, test, history.changes)
    return test, ds
