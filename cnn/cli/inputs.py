"""What ``cnn train``, ``cnn evaluate`` and ``cnn predict`` read, and the checks that model and data fit
together before any work starts: every mistake becomes a :class:`~cnn.cli.common.UsageProblem` naming the
option to change.
"""

from __future__ import annotations

import click
import numpy as np

from cnnbase.limits import SizeLimitError

from .. import data as datasets
from ..model import Model, load_model
from ..run import read_class_names
from .common import UsageProblem, shape_text

__all__ = ["check_engine", "open_model", "output_classes", "check_input_shape", "check_fit", "load_data",
           "take_split", "class_names_of", "resize_data", "resize_option_callback", "fit_data_to_model",
           "RESIZE_HELP", "MODEL_SIZE", "MODEL_RESIZE_HELP", "model_resize_callback", "resize_to_model",
           "refuse_image_options"]

RESIZE_HELP = ("Resize the data set's images to HxW (e.g. 32x32), bilinear as PyTorch's interpolate "
               "(align_corners=False, no antialiasing).")


def check_engine(model: Model) -> None:
    try:
        model.check_engine()
    except RuntimeError as error:
        raise UsageProblem(f"{error} (on the command line: --engine refcnn)") from None


def open_model(path: str, engine: str) -> Model:
    model = load_model(path, engine=engine)
    check_engine(model)
    return model


def output_classes(model: Model) -> int:
    """The number of classes the model scores: the length of its last layer's output."""
    last = model.summary().rows[-1].output_shape
    if len(last) != 1:
        raise UsageProblem(f"the model ends in an output of shape {shape_text(last)}; a classifier ends in one "
                           "score per class (add flatten, dense<classes>)")
    return int(last[0])


def check_input_shape(input_shape, ds: datasets.Dataset, what: str, resize_flag: str | None = None) -> None:
    """The model's input is the data's image shape; when only H x W differ, say which ``--resize`` fixes it
    (``resize_flag``: how the command spells it; by default ``--resize HxW``)."""
    input_shape = tuple(input_shape)
    if input_shape != ds.image_shape and ds.is_series:
        fix = f"use a model made for {shape_text(ds.image_shape)} (--input {shape_text(ds.image_shape)})"
        if len(input_shape) == 2 and input_shape[0] == ds.image_shape[0]:
            fix = f"make the series that long (--data '{ds.name}:length={input_shape[1]}') or {fix}"
        raise UsageProblem(f"shape mismatch: {what} takes inputs of {shape_text(input_shape)} but {ds.name} has "
                           f"series of {shape_text(ds.image_shape)} (C x L); {fix}")
    if input_shape != ds.image_shape:
        fix = f"use a model made for {shape_text(ds.image_shape)}"
        if len(input_shape) == 2:  # a 1-D model on images: an .npz of (N, C, L) is images unless told otherwise
            fix += "; an .npz of (N, C, L) series is read as series with --data 'PATH:series' (specs/timeseries.md)"
        if len(input_shape) == 3 and input_shape[0] == ds.image_shape[0]:
            size = "x".join(map(str, input_shape[1:]))
            fix = f"resize the images ({resize_flag or '--resize ' + size}) or {fix}"
        raise UsageProblem(
            f"shape mismatch: {what} takes inputs of {shape_text(input_shape)} (C x H x W) but {ds.name} has "
            f"images of {shape_text(ds.image_shape)}; {fix}"
        )


def refuse_image_options(ds: datasets.Dataset, augment: str | None, resize: str | None) -> None:
    """``--augment`` and ``--resize`` transform images; on time series they are refused in one line each
    (a series' length is the data option ``length=L``, specs/timeseries.md)."""
    if not ds.is_series:
        return
    if augment:
        raise UsageProblem(f"--augment transforms images; {ds.name} holds time series (C x L): leave --augment out")
    if resize:
        raise UsageProblem(f"--resize resizes images; {ds.name} holds time series (C x L): to change their length "
                           f"use --data '{ds.name}:length=L' (truncate or zero-pad)")


def resize_option_callback(ctx, param, value) -> str | None:
    """``--resize HxW`` checked when the command line is read; kept as its text (``run.json`` records it)."""
    if value is None:
        return None
    try:
        height, width = datasets.parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return f"{height}x{width}"


def resize_data(ds: datasets.Dataset, resize: str | None) -> datasets.Dataset:
    """The data set with its images resized to ``resize`` (``"HxW"``), or as it is."""
    if resize is None:
        return ds
    return ds.resized(*datasets.parse_size(resize))


#: What a bare ``--resize`` of ``cnn evaluate`` and ``cnn predict`` stands for: the model's input H x W.
MODEL_SIZE = "model"

MODEL_RESIZE_HELP = ("Resize the images to HxW (e.g. 28x28, or one side: 28), bilinear as cnn train --resize; a bare "
                     "--resize (or --resize model) means the model's input H x W. It must be the model's size.")


def model_resize_callback(ctx, param, value) -> str | None:
    """``cnn evaluate``/``predict`` ``--resize [HxW]``: None, :data:`MODEL_SIZE` (bare), or ``"HxW"``."""
    if value is None or value == MODEL_SIZE:
        return value
    try:
        height, width = datasets.parse_size(value)
    except ValueError as error:
        raise click.BadParameter(f"{error} (a bare --resize, for the model's input size, goes after the image "
                                 "files or before another option)") from None
    return f"{height}x{width}"


def resize_to_model(model: Model, resize: str | None, what: str) -> tuple[int, int] | None:
    """The H x W a ``--resize [HxW]`` asks for (None: no resizing): the model's own for a bare ``--resize``;
    an ``HxW`` that is not the model's is refused, naming the model's size."""
    if resize is None:
        return None
    if len(model.input_shape) != 3:
        raise UsageProblem(f"--resize: {what} takes inputs of {shape_text(model.input_shape)}, not images")
    size = tuple(model.input_shape[1:])
    if resize != MODEL_SIZE and datasets.parse_size(resize) != size:
        wanted = "x".join(map(str, size))
        raise UsageProblem(f"--resize {resize}: {what} takes images of {wanted} (H x W); use --resize {wanted} "
                           "or a bare --resize")
    return size


def fit_data_to_model(ds: datasets.Dataset, model: Model, resize: str | None, what: str) -> datasets.Dataset:
    """``cnn evaluate``/``predict --data``: with ``--resize [HxW]`` (:func:`resize_to_model`), the images resized
    to the model's H x W (the channels must agree); then the model must fit the data."""
    refuse_image_options(ds, None, resize)
    size = resize_to_model(model, resize, what)
    if size is not None and model.input_shape[0] == ds.image_shape[0]:
        ds = ds.resized(*size)
    check_fit(model, ds, what)
    return ds


def check_fit(model: Model, ds: datasets.Dataset, what: str = "the model", resize_flag: str | None = None) -> None:
    """The model takes the data's images and has a score for every class of the data."""
    check_input_shape(model.input_shape, ds, what, resize_flag)
    classes = output_classes(model)
    if classes < ds.num_classes:
        raise UsageProblem(f"{what} scores {classes} classes but {ds.name} has {ds.num_classes}; "
                           f"end the model in dense{ds.num_classes}")


def load_data(name_or_path: str, limit: int | None = None) -> datasets.Dataset:
    try:
        return datasets.load_dataset(name_or_path, limit=limit)
    except (datasets.DataError, SizeLimitError):
        raise
    except ValueError as error:  # Dataset.limit: more images asked for than there are
        raise UsageProblem(f"--limit: {error}") from None


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


def class_names_of(model_path, outputs: int, ds: datasets.Dataset | None = None) -> list[str]:
    """Names of the model's classes: the data's, else those ``cnn train`` stored in the model file, else numbers."""
    names = list(ds.class_names) if ds is not None else read_class_names(model_path)
    return names + [str(k) for k in range(len(names), outputs)]
