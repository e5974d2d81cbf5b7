"""``cnn features``: a data set as the output of one layer of a trained model (bottleneck features).

The file it writes is a data set of feature vectors (``x_train`` ``(N, F)``, ``y_train``, ``x_test``,
``y_test``, ``class_names``) that ``cnn train --data`` reads, to train a small classifier on the features
of a pretrained network (:func:`cnn.transfer.bottleneck_features`).
"""

from __future__ import annotations

import click

from .. import pretrained
from ..transfer import bottleneck_features, save_dataset
from ..train import EVAL_BATCH_SIZE
from .common import (COUNT, CONTEXT, UsageProblem, engine_option, model_argument, printable, reported, set_threads,
                     threads_option)
from .inputs import check_input_shape, load_data, open_model
from .train import _classes_callback, select_classes
from ..options import TrainOptions

__all__ = ["features"]


@click.command(context_settings=CONTEXT)
@model_argument
@click.option("--layer", default="flatten", show_default=True, metavar="NAME",
              help="The layer whose output is the features (a top-level layer of the model).")
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH",
              help="The data set (as cnn train --data); both splits are written.")
@click.option("--limit", type=COUNT, metavar="N", help="Only the first N training images.")
@click.option("--classes", metavar="LIST", callback=_classes_callback,
              help="Only these classes, relabelled from 0 (as cnn train --classes).")
@click.option("--per-class", type=COUNT, metavar="N", help="With --classes: the first N training images of each.")
@click.option("--out", "out_path", required=True, metavar="FEATURES.npz", help="The file to write (atomically).")
@click.option("--batch-size", default=EVAL_BATCH_SIZE, show_default=True, type=COUNT)
@engine_option()
@threads_option
def features(model_path, layer, data_name, limit, classes, per_class, out_path, batch_size, engine, threads):
    """Write the output of one layer of the model in MODEL.npz (or pretrained:fashion-mnist) for every image
    of a data set, as a data set of feature vectors that cnn train reads.

    \b
    Example (bottleneck features, then a linear classifier on them):
      cnn features pretrained:fashion-mnist --layer flatten --data fashion-mnist-small --out feats.npz
      cnn train --data feats.npz --model "dense10 softmax" --epochs 5
    """
    with reported():
        set_threads(threads)
        try:
            model = open_model(pretrained.resolve(model_path), engine)
        except ValueError as error:
            raise UsageProblem(str(error)) from None
        names = [item.name for item in model.layers]
        if layer not in names:
            raise UsageProblem(f"--layer {layer}: the model has no top-level layer of that name; its layers: "
                               f"{', '.join(names)}")
        ds = select_classes(load_data(data_name, limit), TrainOptions(classes=classes, per_class=per_class))
        check_input_shape(model.input_shape, ds, f"the model in {model_path}")
        out = bottleneck_features(model, ds, layer, batch_size=batch_size)
        save_dataset(out_path, out)
    click.echo(f"model: {printable(model_path)}, layer {layer}: {out.image_shape[0]:,} values per image")
    click.echo(f"data: {printable(ds.describe())}")
    click.echo(f"wrote {printable(out_path)}: x_train {out.x_train.shape}, x_test {out.x_test.shape}, "
               f"{out.num_classes} classes")
