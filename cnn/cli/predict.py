"""``cnn predict``: the most probable classes of PNG images or of a data set's images, by a trained model.

The probabilities are :func:`cnn.train.predict`'s; this module reads the images, checks that model and
data fit, and prints one line (or a JSON row) per image.
"""

from __future__ import annotations

import json

import click
import numpy as np

from .. import data as datasets
from .. import train as training
from .common import (COUNT, CONTEXT, UsageProblem, engine_option, model_argument, printable, reported, set_threads,
                     split_option, threads_option)
from .inputs import (MODEL_RESIZE_HELP, MODEL_SIZE, class_names_of, fit_data_to_model, load_data,
                     model_resize_callback, open_model, output_classes, resize_to_model, take_split)

__all__ = ["predict", "prediction_rows", "render_prediction"]

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
    """One line per image; class names (from the data or the model file) and file names through ``printable``."""
    guesses = "  ".join(f"{printable(g['name'])} {g['probability']:.4f}" for g in row["top_k"])
    label = "" if row["label"] is None else f" (label {printable(row['label_name'])})"
    return f"{printable(row['input'])}{label}: {guesses}"


@click.command(context_settings=CONTEXT)
@model_argument
@click.argument("inputs", nargs=-1, metavar="[IMAGE.png]...")
@click.option("--data", "data_name", metavar="NAME|PATH", help="Predict the images of a data set instead of files.")
@split_option
@click.option("--limit", type=COUNT, metavar="N", help="With --data: the first N images of the split.")
@click.option("--top-k", default=3, show_default=True, type=COUNT, help="Classes shown per image.")
@click.option("--resize", is_flag=False, flag_value=MODEL_SIZE, default=None, metavar="[HxW]",
              callback=model_resize_callback, help=MODEL_RESIZE_HELP + " PNG files and --data images alike.")
@engine_option()
@threads_option
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
            ds = fit_data_to_model(load_data(data_name), model, resize, f"the model in {model_path}")
            x, labels = take_split(ds, split, limit)
            names = [f"{split}[{i}]" for i in range(len(labels))]
        else:
            ds, labels, names = None, None, list(inputs)
            scale = resize_to_model(model, resize, f"the model in {model_path}") is not None
            x = np.stack([datasets.read_image(path, model.input_shape, scale) for path in inputs])
        probabilities = training.predict(model, datasets.to_float(x))
        classes, top = training.top_k(probabilities, top_k)
        rows = prediction_rows(classes, top, class_names_of(model_path, outputs, ds), names, labels)
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "predictions": rows}, indent=2))
        return
    for row in rows:
        click.echo(render_prediction(row))
