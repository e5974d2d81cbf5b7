"""``cnn bench ops | train | startup``: the click group over :mod:`cnn.bench` (:mod:`cnn.cli` adds it to ``cnn``).

The measuring and rendering are in :mod:`cnn.bench`; this module turns options into calls and prints the
result, as a table or, with ``--json``, as the data itself.
"""

from __future__ import annotations

import json

import click

from cnn.bench import (MAX_LOAD, MAX_ROUNDS, OPS_CASES, OPTIMIZER, OPTIMIZERS, PRESET, WARMUP, check_train_model,
                       check_train_sizes, is_synthetic, measure_ops, measure_startup, measure_train, parse_synthetic,
                       render_ops, render_startup, render_train, select_cases)
from cnn.threads import default_threads

from .common import COUNT, CONTEXT, EXIT_FAILED, UsageProblem, fail, reported
from .inputs import load_data
from .train import augment_callback


def _echo(result: dict, as_json: bool, renderer) -> None:
    click.echo(json.dumps(result, indent=1) if as_json else renderer(result))


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads > default_threads():
        raise click.BadParameter(f"at most NUMBA_NUM_THREADS={default_threads()} (the count fastcnn started "
                                 f"with); received {threads}", param_hint="--threads")


def _failed_rows(result: dict) -> list[str]:
    """The engines whose child failed for another reason than a missing import (PyTorch is optional)."""
    return [f"{row.get('engine', '?')}: {row['error']}" for row in result.get("rows", [])
            if row.get("error") and not str(row["error"]).startswith("cannot import")]


@click.group(context_settings=CONTEXT)
def bench() -> None:
    """Measure the engines' speed and memory on this machine (a benchmark, not a test)."""


@bench.command(context_settings=CONTEXT)
@click.option("--threads", type=COUNT, help="Threads of every engine (default: all of fastcnn's).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1, 10_000),
              help="Timed runs per engine (at most 10,000).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--ops", "families", metavar="FAMILY[,FAMILY]", help=f"Only these ({', '.join(OPS_CASES)}).")
@click.option("--refcnn/--no-refcnn", "with_refcnn", default=True, show_default=True,
              help="Also time refcnn on scaled-down shapes.")
def ops(threads, repeats, as_json, families, with_refcnn):
    """Forward and backward of fastcnn against PyTorch and refcnn: ms, GFLOP/s and ratios."""
    _check_threads(threads)
    try:
        select_cases(families)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ops") from None
    _echo(measure_ops(threads, repeats, families, with_refcnn), as_json, render_ops)


def _train_data(data_name: str, preset: str) -> tuple[tuple, int]:
    """The image shape and class count of ``--data``: a synthetic one's from its text (its defaults: the
    preset's, when the preset exists), a data set's once read."""
    if is_synthetic(data_name):
        try:
            return parse_synthetic(data_name, preset)
        except ValueError as error:
            raise UsageProblem(str(error)) from None
    ds = load_data(data_name)
    return ds.image_shape, ds.num_classes


@bench.command(context_settings=CONTEXT)
@click.option("--batches", default=50, show_default=True, type=COUNT, help="Timed batches.")
@click.option("--batch-size", default=128, show_default=True, type=COUNT)
@click.option("--warmup", default=WARMUP, show_default=True, type=COUNT,
              help="Untimed batches first (the first steps are slow: buffers grow, pages fault in).")
@click.option("--threads", type=COUNT, help="Threads of both engines (default: all of fastcnn's).")
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH|random[:CxHxW[:N]]",
              help="Data set name or path (default: the full Fashion-MNIST when installed, else the sample), or "
                   "random[:CxHxW[:CLASSES]]: seeded uniform random images, the same batches for every engine "
                   "(shape and classes default to the model's; e.g. --model resnet20 --data random:3x32x32:10).")
@click.option("--model", "preset", default=PRESET, show_default=True,
              help="A preset of `cnn shape --list` whose input is the data's (e.g. resnet20-28 for 28x28 gray).")
@click.option("--profile", is_flag=True, help="Also fastcnn's time per layer type, forward and backward.")
@click.option("--keras/--no-keras", "with_keras", default=True, show_default=True,
              help="A Keras 3 row too, when Keras is installed (optional: pip install tensorflow-cpu).")
@click.option("--augment", callback=augment_callback, metavar="TRANSFORMS",
              help="Also fastcnn's training steps on batches augmented as cnn train --augment TRANSFORMS does, and "
                   "the augmentation's own time (e.g. \"rotation=10, shift=0.1, hflip\").")
@click.option("--optimizer", default=OPTIMIZER, show_default=True, type=click.Choice(list(OPTIMIZERS)),
              help="The same optimizer and hyperparameters in every engine (adadelta: the seeds' mnist_cnn.py, "
                   "lr 1.0, rho 0.95, eps 1e-7).")
@click.option("--load", default=0, show_default=True, type=click.IntRange(0, MAX_LOAD),
              help=f"Busy background processes while the engines run (0 to {MAX_LOAD}): speed on a loaded machine.")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1, MAX_ROUNDS),
              help="Run the engines in turn this many times (fresh processes each time) and report medians: the "
                   f"ratios each round's own, side by side (1 to {MAX_ROUNDS}).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def train(batches, batch_size, warmup, threads, data_name, preset, profile, with_keras, augment, optimizer, load,
          rounds, as_json):
    """Training and inference images/s (from the median step) and peak memory of a preset (keras-mnist),
    fastcnn against PyTorch (and Keras, when installed), optionally beside busy processes (--load)."""
    _check_threads(threads)
    with reported():  # the data is read here first: a bad --data is one line, not a table of n/a
        image_shape, classes = _train_data(data_name, preset)
        check_train_sizes(image_shape, batches, batch_size, warmup)
        try:
            check_train_model(preset, image_shape, classes)
        except ValueError as error:
            raise UsageProblem(str(error)) from None
    # (options at their defaults are left out: the call is as before they existed)
    extra = {**({"augment": augment} if augment else {}), **({"load": load} if load else {}),
             **({"optimizer": optimizer} if optimizer != OPTIMIZER else {}),
             **({"rounds": rounds} if rounds > 1 else {})}
    result = measure_train(batches, batch_size, threads, data_name, warmup, preset, profile, keras=with_keras,
                           **extra)
    _echo(result, as_json, render_train)
    failed = _failed_rows(result)
    if failed:
        fail("bench train: " + "; ".join(failed), EXIT_FAILED)


@bench.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 1_000),
              help="Warm spawns per measure (at most 1,000).")
def startup(as_json, runs):
    """Cold compile time of fastcnn's kernels and warm start-up time to the first result."""
    try:
        result = measure_startup(runs)
    except RuntimeError as error:  # the cold compile child failed: its last line says why
        fail(f"bench startup: {error}", EXIT_FAILED)
    _echo(result, as_json, render_startup)
