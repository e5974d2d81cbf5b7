"""The training commands of the ``cnn`` command line: ``cnn train``, ``cnn evaluate``, ``cnn predict``.

They are plain :class:`click.Command` objects; ``cli.py`` adds them to its group with ``cnn.add_command``.
Everything they compute comes from the library (:mod:`cnn.data`, :mod:`cnn.model`, :mod:`cnn.train`);
this module reads options, checks that model, data and files fit together before any work starts, and
turns every mistake in the input into one line on stderr:

* exit status 2: a usage error (bad option, unknown or malformed data, a model that cannot be built or
  read, a model and data of different shapes, a checkpoint of another run, a run folder in the way);
* exit status 1: training stopped because the loss became NaN or infinite (the last good checkpoint is kept).

A run folder (``--out``) holds ``run.json`` (the options, so ``--resume`` needs only ``--out``),
``checkpoint.npz`` (replaced atomically after each epoch), ``metrics.json`` (the metrics per epoch),
``curves.png`` and, at the end, ``model.npz`` (weights and configuration, what ``cnn evaluate`` and
``cnn predict`` read).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import click
import numpy as np

from cnnbase import netspec

from . import data as datasets
from . import threads as threads_module
from . import train as training
from .files import CheckpointError, load_archive, save_archive, write_json
from .model import ENGINES, Model, load_model
from .optimizers import OPTIMIZERS, Optimizer

__all__ = ["train", "evaluate", "predict", "EXIT_USAGE", "EXIT_FAILED", "RUN_FILES"]

EXIT_USAGE = 2  # as click's own usage errors
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by Ctrl-C

RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
LOG_FILE = "metrics.json"
PLOT_FILE = "curves.png"
CHECKPOINT_FILE = training.CHECKPOINT_FILE
#: Every file ``cnn train`` writes in a run folder; only these are ever replaced or removed.
RUN_FILES = (RUN_FILE, CHECKPOINT_FILE, LOG_FILE, PLOT_FILE, MODEL_FILE)
_RUN_FORMAT = "cnn-run-1"

_CONTEXT = {"help_option_names": ["-h", "--help"]}


class UsageProblem(ValueError):
    """A mistake in what the user asked for, found by this module; reported as one line, exit status 2."""


#: Exceptions that mean "the input is wrong", never "the program is wrong": reported without a traceback.
USER_ERRORS = (UsageProblem, datasets.DataError, netspec.NetSpecError, CheckpointError)


def fail(message: str, status: int = EXIT_USAGE) -> None:
    click.echo(f"cnn: error: {message}", err=True)
    raise SystemExit(status)


@contextlib.contextmanager
def reported(*also):
    """Turn the user errors raised inside into one line and exit status 2."""
    try:
        yield
    except USER_ERRORS + also as error:
        fail(str(error))


def shape_text(shape) -> str:
    return "x".join(str(n) for n in shape)


# ---------------------------------------------------------------------------------------------------
# Option parsing shared by the commands


_SCHEDULE_FORMS = {
    # form name -> (schedule name in cnn.schedules, the positional arguments after the name)
    "none": (None, ()),
    "step": ("step", (("step_size", int), ("gamma", float))),
    "exp": ("exponential", (("gamma", float),)),
    "cosine": ("cosine", (("t_max", int), ("eta_min", float))),
}


def parse_schedule(text: str) -> dict | None:
    """``"step:5:0.5"`` -> ``{"name": "step", "step_size": 5, "gamma": 0.5}``; ``"none"`` -> None.

    Trailing arguments may be left out (the schedule's defaults; cosine's ``t_max`` is the epoch count).
    """
    name, *values = text.strip().lower().split(":")
    if name not in _SCHEDULE_FORMS:
        raise click.BadParameter(f"expected none, step:SIZE:GAMMA, exp:GAMMA or cosine; received {text!r}")
    schedule, fields = _SCHEDULE_FORMS[name]
    if len(values) > len(fields):
        raise click.BadParameter(f"{name} takes at most {len(fields)} value(s) after the name; received {text!r}")
    if schedule is None:
        return None
    spec = {"name": schedule}
    for (key, kind), value in zip(fields, values):
        try:
            spec[key] = kind(value)
        except ValueError:
            raise click.BadParameter(f"{key} must be {'an int' if kind is int else 'a number'}; "
                                     f"received {value!r} in {text!r}") from None
    try:
        training.make_schedule(spec, epochs=1)  # validation only: the real one is made by fit
    except (ValueError, TypeError) as error:
        raise click.BadParameter(f"{text!r}: {error}") from None
    return spec


def _schedule_callback(ctx, param, value):
    return None if value is None else (parse_schedule(value), value)


def _betas_callback(ctx, param, value):
    if value is None:
        return None
    try:
        beta1, beta2 = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two numbers B1,B2 such as 0.9,0.999; received {value!r}") from None
    return (beta1, beta2)


def set_threads(threads: int | None) -> None:
    """fastcnn's kernel threads and the BLAS threads follow one count (:func:`cnn.threads.set_threads`)."""
    try:
        threads_module.set_threads(threads)
    except ValueError as error:
        raise UsageProblem(f"--threads: {error}") from None


def check_engine(model: Model) -> None:
    try:
        model.check_engine()
    except RuntimeError as error:
        raise UsageProblem(f"{error} (on the command line: --engine refcnn)") from None


def output_classes(model: Model) -> int:
    """The number of classes the model scores: the length of its last layer's output."""
    last = model.summary().rows[-1].output_shape
    if len(last) != 1:
        raise UsageProblem(f"the model ends in an output of shape {shape_text(last)}; a classifier ends in one "
                           "score per class (add flatten, dense<classes>)")
    return int(last[0])


def check_input_shape(input_shape, ds: datasets.Dataset, what: str) -> None:
    if tuple(input_shape) != ds.image_shape:
        raise UsageProblem(
            f"shape mismatch: {what} takes inputs of {shape_text(input_shape)} (C x H x W) but {ds.name} has "
            f"images of {shape_text(ds.image_shape)}; use a model made for {shape_text(ds.image_shape)} "
            "(a text spec takes its input shape from the data)"
        )


def check_fit(model: Model, ds: datasets.Dataset, what: str = "the model") -> None:
    """The model takes the data's images and has a score for every class of the data."""
    check_input_shape(model.input_shape, ds, what)
    classes = output_classes(model)
    if classes < ds.num_classes:
        raise UsageProblem(f"{what} scores {classes} classes but {ds.name} has {ds.num_classes}; "
                           f"end the model in dense{ds.num_classes}")


def load_data(name_or_path: str, limit: int | None = None) -> datasets.Dataset:
    try:
        return datasets.load_dataset(name_or_path, limit=limit)
    except datasets.DataError:
        raise
    except ValueError as error:  # Dataset.limit: more images asked for than there are
        raise UsageProblem(f"--limit: {error}") from None


def class_names_of(model_path, outputs: int, ds: datasets.Dataset | None = None) -> list[str]:
    """Names of the model's classes: the data's, else those ``cnn train`` stored in the model file, else numbers."""
    if ds is not None:
        names = list(ds.class_names)
    else:
        _, document = load_archive(model_path, "model file")
        names = [str(n) for n in document.get("class_names", [])]
    return names + [str(k) for k in range(len(names), outputs)]


def take_split(ds: datasets.Dataset, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if len(y) == 0:
        other = "train" if split == "test" else "test"
        raise UsageProblem(f"{ds.name} has no {split} split (0 images); use --split {other}")
    if limit is not None:
        if limit > len(y):
            raise UsageProblem(f"--limit {limit}: {ds.name} has only {len(y):,} {split} images")
        x, y = x[:limit], y[:limit]
    return x, y


def open_model(path: str, engine: str) -> Model:
    model = load_model(path, engine=engine)
    check_engine(model)
    return model


# ---------------------------------------------------------------------------------------------------
# cnn train: the run folder


def default_run_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = Path("runs") / stamp, 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = Path("runs") / f"{stamp}-{n}"
    return path


def existing_run_files(folder: Path) -> list[str]:
    return [name for name in RUN_FILES if (folder / name).exists()]


def read_run_file(folder: Path) -> dict | None:
    path = folder / RUN_FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageProblem(f"{path} cannot be read as a run description: {error}") from None
    if not isinstance(document, dict) or document.get("format") != _RUN_FORMAT:
        raise UsageProblem(f"{path} is not a run description written by cnn train")
    return document


def check_run_dir(out: str | None, resume: bool, overwrite: bool) -> tuple[Path, dict | None]:
    """The run folder and, when resuming, the options recorded there. Nothing is written or removed here."""
    if resume and overwrite:
        raise UsageProblem("--resume continues a run and --overwrite replaces it: give one of them")
    if out is None:
        if resume:
            raise UsageProblem("--resume needs --out DIR, the folder of the run to continue")
        return default_run_dir(), None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageProblem(f"--out {out}: exists and is not a folder")
    existing = existing_run_files(folder) if folder.is_dir() else []
    if resume:
        if not existing:
            raise UsageProblem(f"--resume: {folder} holds no run to continue (no {CHECKPOINT_FILE} or {RUN_FILE})")
        return folder, read_run_file(folder)
    if existing and not overwrite:
        raise UsageProblem(f"{folder} already holds a run ({', '.join(existing)}); continue it with --resume, "
                           "replace it with --overwrite, or choose another --out")
    return folder, None


def clear_run_dir(folder: Path) -> None:
    """--overwrite: remove this command's own files, once everything else has been checked."""
    for name in existing_run_files(folder):
        (folder / name).unlink()


#: The options a run is made of: recorded in run.json and taken from there by --resume unless given again.
RUN_OPTIONS = ("model_source", "input_text", "data_name", "limit", "epochs", "batch_size", "optimizer", "lr",
               "momentum", "weight_decay", "nesterov", "rho", "alpha", "betas", "eps", "schedule",
               "validation_split", "early_stopping", "seed", "dtype")


def apply_recorded(options: dict, recorded: dict | None) -> dict:
    """Options left at their defaults take the values the interrupted run was started with."""
    if not recorded:
        return options
    ctx = click.get_current_context()
    merged = dict(options)
    for key, value in recorded.get("options", {}).items():
        if key in RUN_OPTIONS and ctx.get_parameter_source(key) in (None, click.core.ParameterSource.DEFAULT):
            merged[key] = value
    return merged


def recordable(options: dict, ds: datasets.Dataset) -> dict:
    """The options as JSON, with paths made absolute and 'default' replaced by the data set it chose,
    so that --resume from another folder or machine state finds the same model and data."""
    values = {key: options[key] for key in RUN_OPTIONS}
    if values["data_name"] == "default":
        values["data_name"] = ds.name
    elif Path(values["data_name"]).exists():
        values["data_name"] = str(Path(values["data_name"]).resolve())
    if values["model_source"].endswith(".json") and Path(values["model_source"]).exists():
        values["model_source"] = str(Path(values["model_source"]).resolve())
    if values["schedule"] is not None:
        values["schedule"] = values["schedule"][1]  # the text the user gave
    if values["betas"] is not None:
        values["betas"] = ",".join(str(b) for b in values["betas"])
    return values


def _reparse(options: dict) -> dict:
    """Values read back from run.json are the raw texts; give them their parsed forms again."""
    options = dict(options)
    if isinstance(options.get("schedule"), str):
        options["schedule"] = (parse_schedule(options["schedule"]), options["schedule"])
    if isinstance(options.get("betas"), str):
        options["betas"] = _betas_callback(None, None, options["betas"])
    return options


# ---------------------------------------------------------------------------------------------------
# cnn train: model, optimizer


def build_model(source: str, input_text: str | None, ds: datasets.Dataset, *, engine, seed, dtype) -> Model:
    """The model of a preset, a .json network file or a text spec, checked against the data."""
    network = netspec.load_network(source)
    if input_text is not None:
        input_shape = netspec.parse_shape(input_text)
    else:
        input_shape = network.input_shape or ds.image_shape
    what = f"the model {source!r}" if source in netspec.PRESETS or source.endswith(".json") else "the model"
    check_input_shape(input_shape, ds, what)  # before building: a model of the wrong size may not even build
    model = Model(network.layers, tuple(input_shape), engine=engine, seed=seed, dtype=dtype)
    check_engine(model)
    check_fit(model, ds, what)
    return model


_OPTIMIZER_OPTIONS = ("momentum", "weight_decay", "nesterov", "rho", "alpha", "betas", "eps")


def build_optimizer(options: dict) -> Optimizer:
    name = options["optimizer"]
    allowed = set(Optimizer(name).hyperparameters)
    given = {key: options[key] for key in _OPTIMIZER_OPTIONS if options[key] not in (None, False)}
    wrong = [key for key in given if key not in allowed]
    if wrong:
        flags = ", ".join("--" + key.replace("_", "-") for key in wrong)
        own = ", ".join("--" + key.replace("_", "-") for key in _OPTIMIZER_OPTIONS if key in allowed)
        raise UsageProblem(f"{flags} does not apply to --optimizer {name} (its options: --lr, {own})")
    try:
        return Optimizer(name, options["lr"], **given)
    except (ValueError, TypeError) as error:
        raise UsageProblem(str(error)) from None


def check_validation_split(fraction: float, n: int) -> None:
    if fraction:
        try:
            datasets.validation_split(n, fraction)
        except ValueError as error:
            raise UsageProblem(f"--validation-split: {error}") from None


# ---------------------------------------------------------------------------------------------------
# cnn train: after training


def save_model(model: Model, path: Path, ds: datasets.Dataset) -> None:
    """Model.save's archive plus the class names, so ``cnn predict`` can name classes without the data."""
    save_archive(path, model.state_arrays(),
                 {"model": model.config(), "class_names": list(ds.class_names), "data": ds.name})


def test_result_line(scores: dict | None, ds: datasets.Dataset) -> str:
    if scores is None:
        return f"test: {ds.name} has no test split"
    return f"test: loss {scores['loss']:.4f}  accuracy {scores['accuracy']:.4f}  ({len(ds.y_test):,} images)"


def write_run_file(folder: Path, options: dict, ds: datasets.Dataset, model: Model, test: dict | None) -> None:
    write_json(folder / RUN_FILE, {
        "format": _RUN_FORMAT,
        "options": options,
        "data": ds.describe(),
        "class_names": list(ds.class_names),
        "parameters": model.count_params(),
        "test": test,
    })


# ---------------------------------------------------------------------------------------------------
# cnn train


@click.command(context_settings=_CONTEXT)
@click.option("--model", "model_source", default="keras-mnist", show_default=True, metavar="MODEL",
              help="A preset (cnn shape --list), a .json network file or a text spec such as "
                   "\"conv32k3 relu, maxpool2, flatten, dense10 softmax\".")
@click.option("--input", "input_text", metavar="CxHxW",
              help="Input shape of the model (default: the preset's or file's, else the data's images).")
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH",
              help="fashion-mnist, fashion-mnist-small (shipped), default (the full set when installed, else "
                   "the shipped sample), or a .npz file, IDX, CIFAR-10 or PNG class folder.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Train on the first N training images.")
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--optimizer", default="adam", show_default=True, type=click.Choice(list(OPTIMIZERS)))
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True),
              help="Base learning rate (default: the optimizer's: adam 0.001, sgd 0.001, adadelta 1.0, rmsprop 0.01).")
@click.option("--momentum", type=click.FloatRange(min=0.0), help="sgd, rmsprop.")
@click.option("--weight-decay", type=click.FloatRange(min=0.0), help="Any optimizer (L2, as torch.optim).")
@click.option("--nesterov", is_flag=True, default=None, help="sgd: Nesterov momentum.")
@click.option("--rho", type=click.FloatRange(0.0, 1.0), help="adadelta.")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0), help="rmsprop.")
@click.option("--betas", callback=_betas_callback, metavar="B1,B2", help="adam, e.g. 0.9,0.999.")
@click.option("--eps", type=click.FloatRange(min=0.0, min_open=True), help="adam, adadelta, rmsprop.")
@click.option("--schedule", callback=_schedule_callback, metavar="SCHEDULE",
              help="Learning rate per epoch: none, step:SIZE:GAMMA, exp:GAMMA or cosine[:T_MAX[:ETA_MIN]].")
@click.option("--validation-split", default=0.0, show_default=True,
              type=click.FloatRange(0.0, 1.0, max_open=True),
              help="Hold out this last fraction of the training images.")
@click.option("--early-stopping", type=click.IntRange(min=1), metavar="PATIENCE",
              help="Stop after PATIENCE epochs without improvement of val_loss (of loss without validation).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seeds the weights, the batch order and dropout: same seed, same result.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads of fastcnn's kernels and of BLAS.")
@click.option("--engine", default="fastcnn", show_default=True, type=click.Choice(list(ENGINES)),
              help="fastcnn, or refcnn (the slow reference, for checking).")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--out", metavar="DIR", help="Run folder (default: runs/<date-time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out DIR from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out DIR (only the files cnn train writes).")
def train(**options):
    """Train a model; writes weights, a metrics log, a plot and checkpoints in a run folder.

    Prints one line per epoch, then the test accuracy. Exit status 2 for a usage error (including a model
    that does not fit the data), 1 when the loss becomes NaN or infinite (the last good checkpoint is kept).

    \b
    Example:
      cnn train --data fashion-mnist-small --epochs 3 --out runs/first
      cnn train --out runs/first --resume --epochs 5     # two more epochs, same options
    """
    with reported():
        folder, recorded = check_run_dir(options["out"], options["resume"], options["overwrite"])
        options = _reparse(apply_recorded(options, recorded))
        set_threads(options["threads"])
        ds = load_data(options["data_name"], options["limit"])
        click.echo(f"data: {ds.describe()}")
        if options["data_name"] == "default" and ds.name != "fashion-mnist":
            click.echo(f"      (the full Fashion-MNIST was not found: install Debian's dataset-fashion-mnist or "
                       f"set {datasets.DATA_DIR_ENV})")
        model = build_model(options["model_source"], options["input_text"], ds, engine=options["engine"],
                            seed=options["seed"], dtype=options["dtype"])
        optimizer = build_optimizer(options)
        check_validation_split(options["validation_split"], len(ds.y_train))
        record = recordable(options, ds)
        click.echo(f"model: {options['model_source']}: {model.count_params():,} parameters, input "
                   f"{shape_text(model.input_shape)}, {output_classes(model)} classes; engine {options['engine']}, "
                   f"{options['dtype']}")
        if options["overwrite"]:
            clear_run_dir(folder)
        if not options["resume"]:  # a resumed run keeps its record until it has checked out against it
            write_run_file(folder, record, ds, model, None)
        click.echo(f"run: {folder}{' (resumed)' if options['resume'] else ''}")
        history = run_fit(model, ds, optimizer, options, folder)
        save_model(model, folder / MODEL_FILE, ds)
        if history.epochs:
            training.plot_history(history, folder / PLOT_FILE)
        test = finish_evaluation(model, ds, options["batch_size"])
        write_run_file(folder, record, ds, model, test)
    click.echo(test_result_line(test, ds))
    written = [name for name in (MODEL_FILE, LOG_FILE, PLOT_FILE, CHECKPOINT_FILE, RUN_FILE)
               if (folder / name).exists()]
    click.echo(f"files: {folder}/ {', '.join(written)}")


def run_fit(model: Model, ds: datasets.Dataset, optimizer: Optimizer, options: dict, folder: Path):
    schedule = options["schedule"][0] if options["schedule"] is not None else None
    try:
        return training.fit(
            model, datasets.to_float(ds.x_train), ds.y_train, epochs=options["epochs"],
            batch_size=options["batch_size"], optimizer=optimizer, schedule=schedule,
            validation_split=options["validation_split"], early_stopping=options["early_stopping"],
            checkpoint_dir=folder, resume=options["resume"], seed=options["seed"], log_path=folder / LOG_FILE,
        )
    except training.NonFiniteLossError as error:
        fail(f"{error} Run folder: {folder}", EXIT_FAILED)
    except KeyboardInterrupt:
        kept = (f"{folder / CHECKPOINT_FILE} holds the last finished epoch; continue with "
                f"cnn train --out {folder} --resume") if (folder / CHECKPOINT_FILE).exists() else "no epoch finished"
        fail(f"interrupted; {kept}", EXIT_INTERRUPTED)


def finish_evaluation(model: Model, ds: datasets.Dataset, batch_size: int) -> dict | None:
    if len(ds.y_test) == 0:
        return None
    return training.evaluate(model, datasets.to_float(ds.x_test), ds.y_test, batch_size=max(batch_size, 256))


# ---------------------------------------------------------------------------------------------------
# cnn evaluate


def score(model: Model, x: np.ndarray, y: np.ndarray, outputs: int, batch_size: int) -> dict:
    """Mean cross-entropy, accuracy and per class (images, correct), in one pass over the data.

    :func:`cnn.train.evaluate` gives the first two; the per-class counts need the predictions too, and a
    second pass would double the time on the reference engine.
    """
    total, images, correct = 0.0, np.zeros(outputs, np.int64), np.zeros(outputs, np.int64)
    for start in range(0, len(y), batch_size):
        xb, yb = datasets.to_float(x[start:start + batch_size]), y[start:start + batch_size]
        logits = model.forward(xb, training=False)
        total += float(model.engine.cross_entropy(logits, yb, reduction="sum"))
        hit = np.argmax(logits, axis=1) == yb
        np.add.at(images, yb, 1)
        np.add.at(correct, yb[hit], 1)
    return {"loss": total / len(y), "accuracy": int(correct.sum()) / len(y), "images": images, "correct": correct}


def class_rows(scores: dict, names: list[str]) -> list[dict]:
    rows = []
    for k, name in enumerate(names):
        n, c = int(scores["images"][k]), int(scores["correct"][k])
        rows.append({"class": k, "name": name, "images": n, "correct": c, "accuracy": c / n if n else None})
    return rows


def render_class_table(rows: list[dict]) -> str:
    width = max(len("class"), *(len(r["name"]) for r in rows))
    lines = [f"{'class'.ljust(width)}  images  correct  accuracy"]
    for r in rows:
        accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        lines.append(f"{r['name'].ljust(width)}  {r['images']:>6,}  {r['correct']:>7,}  {accuracy:>8}")
    return "\n".join(lines)


_MODEL_ARGUMENT = click.argument("model_path", metavar="MODEL.npz")
_ENGINE_OPTION = click.option("--engine", default="fastcnn", show_default=True, type=click.Choice(list(ENGINES)))
_SPLIT_OPTION = click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train"]))
_THREADS_OPTION = click.option("--threads", type=click.IntRange(min=1),
                               help="Threads of fastcnn's kernels and of BLAS.")


@click.command(context_settings=_CONTEXT)
@_MODEL_ARGUMENT
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH",
              help="The data set (as cnn train --data).")
@_SPLIT_OPTION
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the first N images of the split.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@_ENGINE_OPTION
@_THREADS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate(model_path, data_name, split, limit, batch_size, engine, threads, as_json):
    """Loss and accuracy of the model in MODEL.npz on a data set's test split, overall and per class."""
    with reported():
        set_threads(threads)
        model = open_model(model_path, engine)
        ds = load_data(data_name)
        check_fit(model, ds, f"the model in {model_path}")
        x, y = take_split(ds, split, limit)
        outputs = output_classes(model)
        scores = score(model, x, y, outputs, batch_size)
        rows = class_rows(scores, class_names_of(model_path, outputs, ds)[:ds.num_classes])
    if as_json:
        document = {"model": str(model_path), "data": ds.name, "split": split, "images": len(y),
                    "loss": scores["loss"], "accuracy": scores["accuracy"], "per_class": rows}
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"model: {model_path} ({model.count_params():,} parameters, input {shape_text(model.input_shape)}), "
               f"engine {engine}")
    click.echo(f"data: {ds.describe()}; {split} split, {len(y):,} images")
    click.echo(f"loss {scores['loss']:.4f}  accuracy {scores['accuracy']:.4f}")
    click.echo("")
    click.echo(render_class_table(rows))


# ---------------------------------------------------------------------------------------------------
# cnn predict


_PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")  # modes Pillow converts to gray or RGB without guessing


def read_image(path: str, input_shape: tuple, resize: bool) -> np.ndarray:
    """One PNG as uint8 (C, H, W) for a model taking ``input_shape``: colour becomes gray for a 1-channel
    model and gray becomes RGB for a 3-channel one; a different size is an error unless ``resize``."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise UsageProblem(f"the model takes inputs of {shape_text(input_shape)}; images fit a model taking "
                           "1xHxW (gray) or 3xHxW (RGB)")
    channels, height, width = input_shape
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in _PNG_MODES:
                raise UsageProblem(f"{path}: image mode {image.mode} (e.g. 16-bit) is not supported; "
                                   "save it as 8-bit gray or RGB")
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                if not resize:
                    raise UsageProblem(f"{path}: the image is {image.width}x{image.height} pixels (width x height) "
                                       f"but the model takes {width}x{height}; pass --resize to scale it")
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        if isinstance(error, UsageProblem):
            raise
        raise UsageProblem(f"{path}: not a readable image ({error})") from None
    return pixels.reshape(height, width, channels).transpose(2, 0, 1)


def prediction_rows(classes, probabilities, names, inputs, labels) -> list[dict]:
    rows = []
    for i, name in enumerate(inputs):
        label = None if labels is None else int(labels[i])
        rows.append({
            "input": name,
            "label": label,
            "label_name": None if label is None else names[label],
            "top_k": [{"class": int(k), "name": names[k], "probability": float(p)}
                      for k, p in zip(classes[i], probabilities[i])],
        })
    return rows


def render_prediction(row: dict) -> str:
    guesses = "  ".join(f"{g['name']} {g['probability']:.4f}" for g in row["top_k"])
    label = "" if row["label"] is None else f" (label {row['label_name']})"
    return f"{row['input']}{label}: {guesses}"


@click.command(context_settings=_CONTEXT)
@_MODEL_ARGUMENT
@click.argument("inputs", nargs=-1, metavar="[IMAGE.png]...")
@click.option("--data", "data_name", metavar="NAME|PATH", help="Predict the images of a data set instead of files.")
@_SPLIT_OPTION
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="With --data: the first N images of the split.")
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1), help="Classes shown per image.")
@click.option("--resize", is_flag=True, help="Scale images of another size to the model's input size.")
@_ENGINE_OPTION
@_THREADS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
def predict(model_path, inputs, data_name, split, limit, top_k, resize, engine, threads, as_json):
    """The most probable classes of each image, by the model in MODEL.npz.

    Images are PNG files given as arguments, or the images of a data set (--data). Colour images are made
    gray for a model of gray images (and gray ones RGB for a colour model).
    """
    with reported():
        if bool(inputs) == bool(data_name):
            raise UsageProblem("give image files or --data NAME_OR_PATH (one of the two)")
        set_threads(threads)
        model = open_model(model_path, engine)
        outputs = output_classes(model)
        if top_k > outputs:
            raise UsageProblem(f"--top-k {top_k}: the model scores only {outputs} classes")
        if data_name:
            ds = load_data(data_name)
            check_fit(model, ds, f"the model in {model_path}")
            x, labels = take_split(ds, split, limit)
            names = [f"{split}[{i}]" for i in range(len(labels))]
        else:
            ds, labels, names = None, None, list(inputs)
            x = np.stack([read_image(path, model.input_shape, resize) for path in inputs])
        probabilities = training.predict(model, datasets.to_float(x))
        classes, top = training.top_k(probabilities, top_k)
        rows = prediction_rows(classes, top, class_names_of(model_path, outputs, ds), names, labels)
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "predictions": rows}, indent=2))
        return
    for row in rows:
        click.echo(render_prediction(row))
