"""The figures of :mod:`cnn.pictures`, drawn from :mod:`cnn.pictures.numbers` on matplotlib's Agg canvas
directly (no display, no global pyplot state, as :func:`cnn.history.plot_history`), and written as PNG
atomically (:func:`save_png`).

Colour conventions: kernels and the signed Sobel outputs on a diverging map centred on 0 (red positive, blue
negative, white 0), one scale for the whole figure so that tiles compare; feature maps on ``viridis``, each map
scaled to its own range (as Keras's and most "visualizing feature maps" examples do: many maps are small in
absolute terms and would otherwise be blank); Grad-CAM on ``jet`` over the gray input, as the paper's figures.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ..files import atomic_write
from .numbers import feature_maps, grad_cam, kernels, sobel_example

__all__ = ["filter_grid", "activation_maps", "grad_cam_figure", "sobel_figure", "save_png", "MAX_FILTERS",
           "MAX_INPUTS", "MAX_MAPS"]

#: The most filters (rows) and input channels (columns) :func:`filter_grid` draws.
MAX_FILTERS = 16
MAX_INPUTS = 8
#: The most maps per layer :func:`activation_maps` draws.
MAX_MAPS = 16

_DIVERGING = "RdBu_r"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path, dpi: int = 100) -> None:
    """The figure as a PNG at ``path``, written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write(path, buffer.getvalue())


def _bare(axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def _image_for_display(image) -> tuple[np.ndarray, str | None]:
    """A model input ``(C, H, W)`` (uint8 0-255 or floats) as something ``imshow`` draws: gray ``(H, W)`` or RGB
    ``(H, W, 3)`` scaled to [0, 1] (other channel counts: the first channel, gray)."""
    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else np.asarray(image, dtype=np.float64)
    if image.shape[0] == 3:
        low, high = image.min(), image.max()
        return (image.transpose(1, 2, 0) - low) / (high - low if high > low else 1.0), None
    return image[0], "gray"


# --------------------------------------------------------------------------------------------------
# Kernels


def filter_grid(model, layer=None, model_name: str = "the model"):
    """A grid of a 2-D convolution's kernels (the first one by default).

    One input channel (a first layer on gray images): one tile per filter, 8 to a row. Several: one row per
    filter and one column per input channel, each tile the 2-D slice ``weight[filter, channel]``, as Brownlee's
    "How to Visualize Filters and Feature Maps in Convolutional Neural Networks" (Machine Learning Mastery,
    2019) draws VGG16's; a per-filter mean over the channels is not drawn, since slices of opposite sign
    cancel in it and hide what each connection detects. At most :data:`MAX_FILTERS` rows and
    :data:`MAX_INPUTS` columns; one colour scale, centred on 0, for every tile."""
    chosen, weights = kernels(model, layer)
    filters, inputs = weights.shape[:2]
    shown_filters = min(filters, MAX_FILTERS if inputs > 1 else 64)
    shown_inputs = min(inputs, MAX_INPUTS)
    limit = float(np.abs(weights[:shown_filters, :shown_inputs]).max()) or 1.0
    if inputs == 1:
        columns = min(8, shown_filters)
        rows = math.ceil(shown_filters / columns)
        tiles = [(f, 0, divmod(f, columns)) for f in range(shown_filters)]
    else:
        columns, rows = shown_inputs, shown_filters
        tiles = [(f, c, (f, c)) for f in range(shown_filters) for c in range(shown_inputs)]
    figure = _figure(1.1 * columns + 1.2, 1.1 * rows + 0.9)
    grid = figure.add_gridspec(rows, columns)
    image = None
    for f, c, (row, column) in tiles:
        axes = figure.add_subplot(grid[row, column])
        image = axes.imshow(weights[f, c], cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        _bare(axes)
        axes.set_title(f"{f}" if inputs == 1 else f"f{f} ← in {c}", fontsize=8)
    figure.colorbar(image, ax=figure.axes, shrink=0.6, label="weight")
    k = "x".join(map(str, weights.shape[2:]))
    shown = (f"{shown_filters} of {filters} filters" if inputs == 1 else
             f"filters 0-{shown_filters - 1} of {filters} (rows) x input channels 0-{shown_inputs - 1} of {inputs}")
    figure.suptitle(f"{model_name}: layer {chosen.name}, {k} kernels, {shown}\n"
                    "red: positive weight, blue: negative (one scale, centred on 0)", fontsize=10)
    return figure


# --------------------------------------------------------------------------------------------------
# Feature maps


def activation_maps(model, image, layers=None, title: str = ""):
    """The input and, per chosen layer (every top-level 2-D convolution by default), its first
    :data:`MAX_MAPS` feature maps for that input, 8 to a row, each scaled to its own range."""
    results = feature_maps(model, image, layers)
    columns = 8
    heights = [2.0] + [1.25 * math.ceil(min(len(maps), MAX_MAPS) / columns) + 0.4 for _, maps in results]
    figure = _figure(1.25 * columns, sum(heights))
    sections = figure.subfigures(len(results) + 1, 1, height_ratios=heights)
    shown, cmap = _image_for_display(image)
    axes = sections[0].subplots(1, 1)
    axes.imshow(shown, cmap=cmap, interpolation="nearest")
    _bare(axes)
    sections[0].suptitle(title or "input", fontsize=10)
    for section, (layer, maps) in zip(sections[1:], results):
        count = min(len(maps), MAX_MAPS)
        rows = math.ceil(count / columns)
        grid = section.subplots(rows, columns, squeeze=False)
        for index, axes in enumerate(grid.flat):
            _bare(axes)
            if index >= count:
                axes.set_axis_off()
                continue
            axes.imshow(maps[index], cmap="viridis", interpolation="nearest")
            axes.set_title(f"{index}  max {maps[index].max():.2g}", fontsize=7)
        size = "x".join(map(str, maps.shape[1:]))
        activation = f" + {layer.activation}" if layer.activation else ""
        section.suptitle(f"{layer.name} ({layer.config.type}{activation}): maps 0-{count - 1} of {len(maps)}, "
                         f"{size} each; each map on its own colour scale", fontsize=9)
    return figure


# --------------------------------------------------------------------------------------------------
# Grad-CAM


def grad_cam_figure(model, image, class_index=None, layer=None, class_names=None, label=None, title: str = ""):
    """Three panels: the input, the Grad-CAM heat map at the input's size, and the heat map over the input.
    ``class_names`` names the classes, ``label`` (an index) the input's true class when known."""
    result = grad_cam(model, image, class_index, layer)
    names = list(class_names) if class_names is not None else []
    names += [str(k) for k in range(len(names), len(result.probabilities))]
    predicted = int(np.argmax(result.probabilities))
    peak = result.heatmap.max()
    heat = result.heatmap / peak if peak > 0 else result.heatmap
    shown, cmap = _image_for_display(image)
    figure = _figure(9.5, 3.9)
    panels = figure.subplots(1, 3)
    panels[0].imshow(shown, cmap=cmap, interpolation="nearest")
    truth = f"label: {names[label]}\n" if label is not None else ""
    panels[0].set_title(f"{truth}predicted: {names[predicted]} ({result.probabilities[predicted]:.0%})", fontsize=9)
    heat_image = panels[1].imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    cam_size = "x".join(map(str, result.cam.shape))
    panels[1].set_title(f"Grad-CAM, {cam_size} at {result.layer.name},\nupsampled bilinearly", fontsize=9)
    panels[2].imshow(shown, cmap=cmap, interpolation="nearest")
    panels[2].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="nearest")
    panels[2].set_title("over the input", fontsize=9)
    for axes in panels:
        _bare(axes)
    figure.colorbar(heat_image, ax=list(panels), shrink=0.8, label="relative importance")
    figure.suptitle(f"{title + ': ' if title else ''}where the evidence for class {result.class_index} "
                    f"'{names[result.class_index]}' lies (logit {result.score:.2f}, "
                    f"p {result.probabilities[result.class_index]:.2g})", fontsize=10)
    return figure


# --------------------------------------------------------------------------------------------------
# The seeds' Sobel example


def _numbered(axes, values, cmap, limit, fontsize) -> None:
    axes.imshow(values, cmap=cmap, vmin=-limit if cmap == _DIVERGING else 0, vmax=limit, interpolation="nearest")
    for (i, j), value in np.ndenumerate(values):
        dark = value < 0.5 * limit if cmap == "gray" else abs(value) > 0.6 * limit
        axes.text(j, i, f"{value:g}", ha="center", va="center", fontsize=fontsize,
                  color="white" if dark else "black")
    _bare(axes)


def sobel_figure():
    """Top row: the seed example, the 6x6 image (0 | 255) cross-correlated with the vertical Sobel kernel
    gives a 4x4 map whose middle columns light up (-1020 = -4 x 255). Bottom row: both Sobel kernels on a
    shipped Fashion-MNIST image, and the gradient magnitude."""
    example = sobel_example()
    figure = _figure(11, 6.6)
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.05])
    panels = top.subplots(1, 3, width_ratios=[6, 3, 4])
    _numbered(panels[0], example.image, "gray", 255, 8)
    panels[0].set_title("6x6 input: 0 | 255", fontsize=9)
    _numbered(panels[1], example.kernel, _DIVERGING, 2, 10)
    panels[1].set_title("✱ vertical Sobel kernel", fontsize=9)
    _numbered(panels[2], example.output, _DIVERGING, 1020, 9)
    panels[2].set_title("= 4x4 output (stride 1, no padding)", fontsize=9)
    top.suptitle("The seed example: cross-correlation with the vertical Sobel kernel; the edge lights up "
                 "(-1020 = -4 x 255)", fontsize=10)
    panels = bottom.subplots(1, 4)
    panels[0].imshow(example.photo, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    panels[0].set_title(f"Fashion-MNIST test image\n({example.photo_label}, 28x28, values 0-1)", fontsize=9)
    limit = float(max(np.abs(example.vertical).max(), np.abs(example.horizontal).max())) or 1.0
    for axes, values, name in ((panels[1], example.vertical, "vertical Sobel"),
                               (panels[2], example.horizontal, "horizontal Sobel (its transpose)")):
        signed = axes.imshow(values, cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        axes.set_title(f"{name}\n26x26", fontsize=9)
    panels[3].imshow(example.magnitude, cmap="magma", interpolation="nearest")
    panels[3].set_title("edge strength\nsqrt(vertical² + horizontal²)", fontsize=9)
    for axes in panels:
        _bare(axes)
    bottom.colorbar(signed, ax=list(panels[1:3]), shrink=0.8)
    bottom.suptitle("The same kernels on a real image (refcnn.conv2d)", fontsize=10)
    return figure
