"""``cnn show``: pictures of what a trained model computes, as PNG files (:mod:`cnn.pictures` draws them).

    cnn show filters MODEL.npz [--layer NAME] --out filters.png
    cnn show activations MODEL.npz (IMAGE.png | --data NAME --index I) [--layer NAME]... --out maps.png
    cnn show gradcam MODEL.npz (IMAGE.png | --data NAME --index I) [--class C] [--layer NAME] --out cam.png
    cnn show sobel --out sobel.png

A layer name the model lacks lists its layers, and a layer of the wrong kind names those that qualify (exit
status 2, as every usage error).
"""

from __future__ import annotations

import click

from .. import data as datasets
from .. import pictures
from .common import CONTEXT, UsageProblem, engine_option, model_argument, printable, reported, split_option
from .inputs import class_names_of, load_data, open_model, output_classes

__all__ = ["show"]

_out_option = click.option("--out", "out", required=True, metavar="FILE.png", help="The PNG file to write.")


def _input_options(command):
    """IMAGE.png, or ``--data NAME --index I [--split]``: one input of the model."""
    command = split_option(command)
    command = click.option("--index", type=click.IntRange(0), metavar="I",
                           help="With --data: the image's position in the split (from 0).")(command)
    command = click.option("--data", "data_name", metavar="NAME|PATH",
                           help="Take the input from a data set (with --index) instead of a PNG file.")(command)
    return click.argument("image_path", required=False, metavar="[IMAGE.png]")(command)


def _one_input(model, model_path, image_path, data_name, split, index):
    """The input image (uint8 C x H x W), its true label (or None), the class names and a caption."""
    if bool(image_path) == bool(data_name):
        raise UsageProblem("give an image file or --data NAME_OR_PATH --index I (one of the two)")
    outputs = output_classes(model)
    if image_path:
        if index is not None:
            raise UsageProblem("--index goes with --data, not with an image file")
        image = datasets.read_image(image_path, model.input_shape, False)
        return image, None, class_names_of(model_path, outputs), printable(image_path)
    if index is None:
        raise UsageProblem("--data needs --index I, the position of the image in the split")
    ds = load_data(data_name)
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if index >= len(y):
        raise UsageProblem(f"--index {index}: {ds.name} has {len(y):,} {split} images (0 to {len(y) - 1})")
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise UsageProblem(f"the model takes inputs of {'x'.join(map(str, model.input_shape))} but {ds.name} has "
                           f"images of {'x'.join(map(str, x.shape[1:]))}")
    names = class_names_of(model_path, outputs, ds)
    return x[index], int(y[index]), names, f"{ds.name} {split}[{index}]"


def _write(figure, out) -> None:
    pictures.save_png(figure, out)
    click.echo(f"wrote {printable(out)}")


@click.group(context_settings=CONTEXT)
def show():
    """Pictures of a model's kernels, feature maps and Grad-CAM heat maps, and the Sobel example, as PNG."""


@show.command(context_settings=CONTEXT)
@model_argument
@click.option("--layer", metavar="NAME", help="A 2-D convolution layer (default: the first).")
@_out_option
@engine_option()
def filters(model_path, layer, out, engine):
    """A grid of the learned kernels of a convolution layer of MODEL.npz (red positive, blue negative).

    Example: cnn show filters runs/first/model.npz --out filters.png
    """
    with reported(pictures.LayerChoiceError):
        model = open_model(model_path, engine)
        figure = pictures.filter_grid(model, layer, model_name=printable(model_path))
        _write(figure, out)


@show.command(context_settings=CONTEXT)
@model_argument
@_input_options
@click.option("--layer", "layers", multiple=True, metavar="NAME",
              help="A layer with 2-D maps (repeat for several; default: every convolution).")
@_out_option
@engine_option()
def activations(model_path, image_path, data_name, index, split, layers, out, engine):
    """The feature maps each convolution layer of MODEL.npz computes for one input.

    Example: cnn show activations runs/first/model.npz --data fashion-mnist-small --index 7 --out maps.png
    """
    with reported(pictures.LayerChoiceError):
        model = open_model(model_path, engine)
        image, label, names, caption = _one_input(model, model_path, image_path, data_name, split, index)
        title = f"input: {caption}" + (f" (label: {printable(names[label])})" if label is not None else "")
        _write(pictures.activation_maps(model, image, list(layers) or None, title=title), out)


@show.command(context_settings=CONTEXT, short_help="Grad-CAM: where in one input the evidence for a class lies.")
@model_argument
@_input_options
@click.option("--class", "class_index", type=click.IntRange(0), metavar="C",
              help="The class whose evidence is shown (default: the predicted one).")
@click.option("--layer", metavar="NAME", help="A layer with 2-D maps (default: the last convolution).")
@_out_option
@engine_option()
def gradcam(model_path, image_path, data_name, index, split, class_index, layer, out, engine):
    """Grad-CAM (Selvaraju et al. 2017): where in one input the evidence for a class lies, by MODEL.npz.

    Example: cnn show gradcam runs/first/model.npz --data fashion-mnist-small --index 7 --out cam.png
    """
    with reported(pictures.LayerChoiceError):
        model = open_model(model_path, engine)
        image, label, names, caption = _one_input(model, model_path, image_path, data_name, split, index)
        if class_index is not None and class_index >= output_classes(model):
            raise UsageProblem(f"--class {class_index}: the model scores classes 0 to {output_classes(model) - 1}")
        figure = pictures.grad_cam_figure(model, image, class_index, layer, [printable(n) for n in names], label,
                                          title=caption)
        _write(figure, out)


@show.command(context_settings=CONTEXT)
@_out_option
def sobel(out):
    """The seeds' Sobel example as pictures: the 6x6 image, the kernel and the output, then both Sobel
    kernels on a shipped Fashion-MNIST image.

    Example: cnn show sobel --out sobel.png
    """
    with reported():
        _write(pictures.sobel_figure(), out)
