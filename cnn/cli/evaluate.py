"""``cnn evaluate``: loss and accuracy of a trained model on a data set's split, overall and per class.

The scores are :mod:`cnn.scoring`'s; this module reads the options, checks that model and data fit, and
prints a table or JSON.
"""

from __future__ import annotations

import json

import click

from ..scoring import class_rows, score
from ..train import EVAL_BATCH_SIZE
from .common import (COUNT, CONTEXT, engine_option, model_argument, printable, reported, set_threads, shape_text,
                     split_option, threads_option)
from .inputs import (MODEL_RESIZE_HELP, MODEL_SIZE, class_names_of, fit_data_to_model, load_data,
                     model_resize_callback, open_model, output_classes, take_split)

__all__ = ["evaluate", "render_class_table"]


def render_class_table(rows: list[dict]) -> str:
    """One line per class; a class name from the data (or the model file) is printed through ``printable``,
    so a newline or an ANSI escape in it can neither split the table nor reach the terminal."""
    names = [printable(r["name"]) for r in rows]
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'class'.ljust(width)}  images  correct  accuracy"]
    for name, r in zip(names, rows):
        accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        lines.append(f"{name.ljust(width)}  {r['images']:>6,}  {r['correct']:>7,}  {accuracy:>8}")
    return "\n".join(lines)


@click.command(context_settings=CONTEXT)
@model_argument
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH",
              help="The data set (as cnn train --data).")
@split_option
@click.option("--limit", type=COUNT, metavar="N", help="Only the first N images of the split.")
@click.option("--batch-size", default=EVAL_BATCH_SIZE, show_default=True, type=COUNT)
@click.option("--resize", is_flag=False, flag_value=MODEL_SIZE, default=None, metavar="[HxW]",
              callback=model_resize_callback, help=MODEL_RESIZE_HELP)
@engine_option()
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate(model_path, data_name, split, limit, batch_size, resize, engine, threads, as_json):
    """Loss and accuracy of the model in MODEL.npz on a data set's test split, overall and per class."""
    with reported():
        set_threads(threads)
        model = open_model(model_path, engine)
        ds = fit_data_to_model(load_data(data_name), model, resize, f"the model in {model_path}")
        x, y = take_split(ds, split, limit)
        outputs = output_classes(model)
        scores = score(model, x, y, outputs, batch_size)
        rows = class_rows(scores, class_names_of(model_path, outputs, ds)[:ds.num_classes])
    if as_json:
        document = {"model": str(model_path), "data": ds.name, "split": split, "images": len(y),
                    "loss": scores["loss"], "accuracy": scores["accuracy"], "per_class": rows}
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"model: {printable(model_path)} (Total params: {model.summary().total_params:,}, input "
               f"{shape_text(model.input_shape)}), engine {engine}")
    click.echo(f"data: {printable(ds.describe())}; {split} split, {len(y):,} images")
    click.echo(f"loss {scores['loss']:.4f}  accuracy {scores['accuracy']:.4f}")
    click.echo("")
    click.echo(render_class_table(rows))
