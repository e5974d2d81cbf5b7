"""``cnn augment``: a PNG grid of training images and what an ``--augment`` description makes of them.

Row k is one training image (the first of each class, in class order, then the next images): its original,
then the image as epochs 1, 2, ... of ``cnn train --seed S --augment TEXT`` see it (the parameters come from
the seed, the epoch and the image's index in the training set, :mod:`cnnbase.augment_policy`). The drawing
and the PNG are :mod:`cnn.augment`'s.
"""

from __future__ import annotations

import click
import numpy as np

from .. import data as datasets
from ..augment import make_policy, preview_images, write_preview
from ..model import get_engine
from .common import CONTEXT, UsageProblem, engine_option, printable, reported, set_threads, threads_option
from .inputs import load_data
from .train import MAX_SEED, augment_callback

__all__ = ["augment", "preview_index"]


def preview_index(labels: np.ndarray, count: int) -> np.ndarray:
    """``count`` training images: the first of each class in class order, then the first of the rest."""
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)]
    rest = [i for i in range(len(labels)) if i not in set(firsts)][:max(0, count - len(firsts))]
    return np.array((firsts + rest)[:count], dtype=np.int64)


@click.command(context_settings=CONTEXT)
@click.option("--data", "data_name", default="default", show_default=True, metavar="NAME|PATH",
              help="The data set (as cnn train --data); its training images are shown.")
@click.option("--augment", "description", required=True, callback=augment_callback, metavar="TRANSFORMS",
              help="As cnn train --augment, e.g. \"rotation=10, shift=0.1, zoom=0.1, hflip, erase=0.25\".")
@click.option("--out", required=True, metavar="FILE.png", help="The PNG to write (replaced atomically).")
@click.option("--images", default=8, show_default=True, type=click.IntRange(1, 64), help="Rows: training images.")
@click.option("--variants", default=7, show_default=True, type=click.IntRange(1, 32),
              help="Augmented columns: epochs 1..V of the run.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="The run's seed (cnn train --seed).")
@engine_option()
@threads_option
def augment(data_name, description, out, images, variants, seed, engine, threads):
    """Write a PNG grid: training images and what --augment makes of them in the first epochs of a run.

    \b
    Example:
      cnn augment --data fashion-mnist-small --augment "rotation=15, zoom=0.1, hflip, erase=0.5" --out grid.png
    """
    with reported():
        if description is None:
            raise UsageProblem("--augment none changes nothing: give at least one transform (see --help)")
        if not out.lower().endswith(".png"):
            raise UsageProblem(f"--out {out}: the preview is a PNG; give a file name ending in .png")
        set_threads(threads)
        ds = load_data(data_name)
        if len(ds.y_train) == 0:
            raise UsageProblem(f"{ds.name} has no training images; --data needs a data set with a training split")
        index = preview_index(ds.y_train, images)
        x = datasets.to_float(ds.x_train[index])
        if engine == "refcnn":  # the reference engine computes in float64
            x = x.astype(np.float64)
        grid = preview_images(get_engine(engine), x, make_policy(description), seed=seed, variants=variants,
                              index=index)
        labels = [f"{ds.class_names[ds.y_train[i]]} #{i}" for i in index]
        write_preview(out, grid, title=f"{ds.name}, --seed {seed}: {description}",
                      row_labels=labels, column_labels=["original"] + [f"epoch {e + 1}" for e in range(variants)])
    click.echo(f"wrote {printable(out)}: {len(index)} images of {printable(ds.name)}, the original and "
               f"{variants} augmented variants each ({description})")

