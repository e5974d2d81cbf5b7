"""The numbers behind the pictures of :mod:`cnn.pictures`: a layer's kernels, the feature maps of one input,
a Grad-CAM heat map and the seeds' Sobel example. Nothing here draws; the tests check these numbers against
computations of their own (torch autograd, refcnn, hand-worked matrices).

Which layers qualify:

* kernels (:func:`kernels`): a 2-D convolution (``Conv2D``, also inside a block), the weights it convolves with
  (``weight * mask`` for a connection table), PyTorch's layout ``(filters, C_in / groups, kH, kW)``;
* feature maps (:func:`feature_maps`) and Grad-CAM (:func:`grad_cam`): a layer of the model's top level whose
  output is ``(C, H, W)`` (a convolution, pooling, batch norm, ...): the maps are what the next layer reads, the
  activation included (a ``conv32k3 relu`` gives the maps after the ReLU, as Keras's ``layer.output``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnbase import netspec
from cnnbase.checks import is_int
from cnnbase.netspec import format_value

from .. import layers as L
from ..data import FASHION_MNIST_CLASSES, interpolation_matrix, load_embedded_sample, to_float

__all__ = ["LayerChoiceError", "conv2d_layers", "map_layers", "pick_layer", "kernels", "feature_maps", "GradCam",
           "grad_cam", "upsample", "SobelExample", "sobel_example", "SOBEL_VERTICAL", "SOBEL_HORIZONTAL",
           "EDGE_IMAGE", "SOBEL_SAMPLE_INDEX"]


class LayerChoiceError(ValueError):
    """A layer name the model lacks (the message lists its layers), or a layer of the wrong kind (the message
    names the layers that qualify)."""


# --------------------------------------------------------------------------------------------------
# Choosing layers


def _describe(layer: L.Layer) -> str:
    return f"{layer.name} ({layer.config.type} -> {'x'.join(map(str, layer.output_shape))})"


def conv2d_layers(model) -> list[L.Layer]:
    """The model's 2-D convolutions (not transposed), blocks' inner ones included, in depth-first order."""
    return [layer for layer in model.all_layers()
            if isinstance(layer.config, netspec.BaseConv) and layer.config.rank == 2]


def map_layers(model) -> list[L.Layer]:
    """The top-level layers whose output is a stack of 2-D maps ``(C, H, W)``."""
    return [layer for layer in model.layers if len(layer.output_shape) == 3]


def pick_layer(model, name, qualifying: list[L.Layer], kind: str) -> L.Layer:
    """The layer named ``name`` among ``qualifying`` (None: the first).

    :class:`LayerChoiceError` when the model has no such layer (listing every layer) or when it is of the wrong
    kind (naming those of the right one, ``kind`` saying what they are)."""
    if not qualifying:
        raise LayerChoiceError(f"the model has no {kind}; its layers: "
                               + ", ".join(_describe(layer) for layer in model.all_layers()))
    if name is None:
        return qualifying[0]
    for layer in qualifying:
        if layer.name == name:
            return layer
    names = [layer.name for layer in model.all_layers()]
    if name in names:
        layer = model.all_layers()[names.index(name)]
        raise LayerChoiceError(f"layer {format_value(name)} ({layer.config.type}) is not a {kind}; "
                               f"layers that are: {', '.join(layer.name for layer in qualifying)}")
    raise LayerChoiceError(f"no layer named {format_value(name)}; the model's layers: "
                           + ", ".join(_describe(layer) for layer in model.all_layers()))


# --------------------------------------------------------------------------------------------------
# Kernels


def kernels(model, layer=None) -> tuple[L.Layer, np.ndarray]:
    """The layer (the first 2-D convolution by default) and its kernels, float64 ``(filters, C_in/groups, kH,
    kW)``: the weights the layer convolves with (outside a connection table they are 0)."""
    chosen = pick_layer(model, layer, conv2d_layers(model), "2-D convolution layer")
    weight = chosen.params["weight"]
    if chosen.mask is not None:
        weight = weight * chosen.mask
    return chosen, np.array(weight, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# One input through the model


def _model_input(model, image) -> np.ndarray:
    """``image`` (one sample: uint8 as read from a PNG or a data set, or floats as the model takes them) as a
    batch of one in the model's dtype."""
    image = np.asarray(image)
    if image.shape != tuple(model.input_shape):
        raise ValueError(f"the image has shape {image.shape} but the model takes {tuple(model.input_shape)}")
    if image.dtype == np.uint8:
        image = to_float(image[None])[0]
    elif image.dtype.kind != "f":
        raise TypeError(f"the image must be uint8 or floats; received dtype {image.dtype}")
    return np.ascontiguousarray(image[None], dtype=model.dtype)


def _run(model, image) -> list[np.ndarray]:
    """Every top-level layer's output for one input, in inference mode (no dropout, batch norm's running
    statistics); the last is the logits (the model's final softmax is not applied, see :mod:`cnn.model`)."""
    x = _model_input(model, image)
    model.check_batch_size(1)
    ctx = L.Pass(model.engine, False, model.dtype, model.seed, 0)
    outputs = []
    for layer in model.layers:
        x = layer.forward(x, ctx)
        outputs.append(x)
    return outputs


def feature_maps(model, image, layers=None) -> list[tuple[L.Layer, np.ndarray]]:
    """``(layer, maps)`` for each chosen layer: its output for ``image``, float64 ``(C, H, W)``.

    ``layers``: names of top-level layers with 2-D maps, or None for every top-level 2-D convolution."""
    qualifying = map_layers(model)
    kind = "layer with 2-D feature maps (C x H x W output)"
    if layers is None:
        chosen = [layer for layer in qualifying if isinstance(layer.config, netspec.BaseConv)]
        if not chosen:
            chosen = [pick_layer(model, None, qualifying, kind)]
    else:
        chosen = [pick_layer(model, name, qualifying, kind) for name in layers]
    outputs = _run(model, image)
    by_layer = {id(layer): out for layer, out in zip(model.layers, outputs)}
    return [(layer, np.array(by_layer[id(layer)][0], dtype=np.float64)) for layer in chosen]


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D map resized to ``height x width``, bilinear with half-pixel centres (PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)``, :mod:`cnn.data.resize`), float64."""
    rows = interpolation_matrix(cam.shape[0], height)
    columns = interpolation_matrix(cam.shape[1], width)
    return rows @ cam @ columns.T


@dataclass
class GradCam:
    """A Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017, eq. 1-2) for one input and one class.

    ``weights[k] = mean_{i,j} d score / d maps[k, i, j]``; ``cam = ReLU(sum_k weights[k] maps[k])`` at the
    layer's resolution; ``heatmap`` the cam upsampled bilinearly to the input's H x W (unnormalised: divide by
    its maximum to draw it). ``score`` is the class's logit, ``probabilities`` the softmax of the logits."""

    layer: L.Layer
    class_index: int
    score: float
    probabilities: np.ndarray
    maps: np.ndarray
    gradients: np.ndarray
    weights: np.ndarray
    cam: np.ndarray
    heatmap: np.ndarray


def grad_cam(model, image, class_index=None, layer=None) -> GradCam:
    """Grad-CAM of ``class_index`` (None: the predicted class) at ``layer`` (None: the last top-level 2-D
    convolution; any top-level layer with ``(C, H, W)`` maps qualifies).

    The class score is the *logit*, before the softmax, as the paper's ``y^c``: a softmax score's gradient also
    carries the other classes' scores (``dp_c = p_c (dy_c - sum_j p_j dy_j)``), and it vanishes as ``p_c``
    nears 1. This model's :meth:`~cnn.model.Model.forward` returns the logits whatever its last activation (a
    final softmax is taken out for the loss), so the gradient is the backward pass from a one-hot on them,
    through the layers after ``layer`` only. The layers' gradients (``layer.grads``) are overwritten."""
    qualifying = map_layers(model)
    convs = [item for item in qualifying if isinstance(item.config, netspec.BaseConv)]
    kind = "layer with 2-D feature maps (C x H x W output)"
    chosen = pick_layer(model, layer, qualifying, kind) if layer is not None or not convs else convs[-1]
    outputs = _run(model, image)
    logits = outputs[-1]
    classes = logits.shape[1]
    if class_index is None:
        class_index = int(np.argmax(logits[0]))
    elif not is_int(class_index) or not 0 <= class_index < classes:
        raise ValueError(f"class index {format_value(class_index)} is not one of the model's classes 0 to "
                         f"{classes - 1}")
    position = model.layers.index(chosen)
    grad = np.zeros_like(logits)
    grad[0, class_index] = 1
    for later in reversed(model.layers[position + 1:]):
        grad = later.backward(grad)
    maps = np.array(outputs[position][0], dtype=np.float64)
    gradients = np.array(grad[0], dtype=np.float64)
    weights = gradients.mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(weights, maps, axes=1), 0.0)
    height, width = model.input_shape[1:]
    shifted = np.exp(logits[0].astype(np.float64) - logits[0].max())
    return GradCam(chosen, int(class_index), float(logits[0, class_index]), shifted / shifted.sum(), maps,
                   gradients, weights, cam, upsample(cam, height, width))


# --------------------------------------------------------------------------------------------------
# The seeds' Sobel example

#: The vertical-edge Sobel kernel of the seed example (``cnn demo``, ``specs/conv.md`` "Sobel edge"): used as
#: is, by cross-correlation, as every layer here does.
SOBEL_VERTICAL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
#: The horizontal-edge one: its transpose.
SOBEL_HORIZONTAL = SOBEL_VERTICAL.T.copy()
#: The seed example's 6x6 image: columns 0-2 are 0, columns 3-5 are 255 (``cnn demo``'s first example).
EDGE_IMAGE = np.array([[0, 0, 0, 255, 255, 255]] * 6, dtype=np.float64)
#: The shipped Fashion-MNIST test image the kernels are run on (an ankle boot: long straight edges).
SOBEL_SAMPLE_INDEX = 7


@dataclass
class SobelExample:
    """The seed example's image, kernel and output, and both kernels on a real image (``photo``, in [0, 1]),
    ``vertical``/``horizontal`` the cross-correlations and ``magnitude`` ``sqrt(v^2 + h^2)``."""

    image: np.ndarray
    kernel: np.ndarray
    output: np.ndarray
    photo: np.ndarray
    photo_label: str
    vertical: np.ndarray
    horizontal: np.ndarray
    magnitude: np.ndarray


def sobel_example(index: int = SOBEL_SAMPLE_INDEX) -> SobelExample:
    """Computed with refcnn's ``conv2d`` (stride 1, no padding) on the 6x6 image and on test image ``index`` of
    the shipped Fashion-MNIST sample."""
    import refcnn

    def conv(image, kernel):
        return refcnn.conv2d(image[None, None], kernel[None, None])[0, 0]

    sample = load_embedded_sample()
    photo = to_float(sample.x_test[index:index + 1])[0, 0].astype(np.float64)
    label = FASHION_MNIST_CLASSES[int(sample.y_test[index])]
    vertical, horizontal = conv(photo, SOBEL_VERTICAL), conv(photo, SOBEL_HORIZONTAL)
    return SobelExample(EDGE_IMAGE, SOBEL_VERTICAL, conv(EDGE_IMAGE, SOBEL_VERTICAL), photo, label, vertical,
                        horizontal, np.hypot(vertical, horizontal))
