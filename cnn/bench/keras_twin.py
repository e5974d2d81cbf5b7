"""The Keras 3 twin of a netspec model: the third row of ``cnn bench train``, when Keras is installed.

Keras is optional, never a requirement: nothing here imports it at import time; :func:`keras_model` takes the
``keras`` module. The twin is built with Keras's functional API (``keras.Input`` ... ``keras.Model``), so a
Residual block becomes its two branches joined by ``keras.layers.Add``, as Keras's own ResNets are written
(keras.io/api/applications/resnet). Images are channels-last (``N, H, W, C``), Keras's default
(``image_data_format() == "channels_last"``); the netspec layers, written for ``(C, H, W)`` samples, are
translated one type at a time through ``_TWINS``, and a type without an entry raises :class:`KerasTwinError`
naming it.

Conventions that differ and how the twin matches them:

* Padding: Keras convolutions pad ``"valid"`` or ``"same"`` only, and ``"same"`` with stride 2 pads more at
  the end than at the start (TensorFlow's rule); our explicit pads become a ``ZeroPadding2D`` of the same
  ``(top, bottom), (left, right)`` before a ``"valid"`` convolution, which is exactly PyTorch's and ours.
  Padded max pooling (whose padding is -inf, not zero) has no such twin and is refused.
* Batch norm: our ``momentum`` is PyTorch's (the weight of the batch's statistic); Keras's is the weight of
  the running one, so the twin's is ``1 - momentum`` (keras.io BatchNormalization: ``moving_mean =
  moving_mean * momentum + mean(batch) * (1 - momentum)``), same ``epsilon``. Both count the moving mean
  and variance as non-trainable weights, as our summary does.
* Flatten: Keras flattens ``(H, W, C)``, we flatten ``(C, H, W)``: the same number of weights in the next
  Dense layer, in another order (the twin is for timing and counting, weights are not copied).
* A final softmax is left to the loss (``from_logits=True``), as :class:`cnn.Model` and the torch twin do.
"""

from __future__ import annotations

from cnnbase.shapes import resolve_padding

__all__ = ["KerasTwinError", "keras_model", "keras_train_step"]


class KerasTwinError(ValueError):
    """A layer the Keras twin of a netspec model does not translate."""


def _activation(keras, name, last: bool) -> list:
    if name is None or (name == "softmax" and last):  # logits: the loss applies the softmax
        return []
    if name == "relu":
        return [keras.layers.ReLU()]
    raise KerasTwinError(f"activation {name!r} has no Keras twin here; use relu")


def _pads(config, shape, kernel, dilation) -> tuple[tuple[int, int], ...]:
    return resolve_padding(config.padding, tuple(shape[1:]), tuple(kernel), tuple(config.strides), tuple(dilation),
                           op=config.type)


def _conv2d(keras, config, shape, last) -> list:
    if config.padding_mode != "zeros":
        raise KerasTwinError(f"Conv2D: padding_mode {config.padding_mode!r} has no Keras twin here; use zeros")
    pads = _pads(config, shape, config.kernel_size, config.dilation)
    padding = [keras.layers.ZeroPadding2D(pads)] if any(p for pair in pads for p in pair) else []
    conv = keras.layers.Conv2D(config.filters, config.kernel_size, strides=config.strides, padding="valid",
                               dilation_rate=config.dilation, groups=config.groups, use_bias=config.use_bias)
    return padding + [conv] + _activation(keras, config.activation, last)


def _max_pool2d(keras, config, shape, last) -> list:
    pads = _pads(config, shape, config.pool_size, (1, 1))
    if config.ceil_mode or any(p for pair in pads for p in pair):
        raise KerasTwinError("MaxPool2D: padding or ceil_mode has no Keras twin here (Keras pads max pooling "
                             "only as 'same'); use an unpadded pooling")
    return [keras.layers.MaxPooling2D(config.pool_size, config.strides, padding="valid")]


def _dense(keras, config, shape, last) -> list:
    return [keras.layers.Dense(config.units, use_bias=config.use_bias)] + _activation(keras, config.activation, last)


def _batch_norm(keras, config, shape, last) -> list:
    return [keras.layers.BatchNormalization(axis=-1, momentum=1.0 - config.momentum, epsilon=config.eps)]


def _channel_pad(keras, config, shape, last) -> list:
    """Zero channels on the last axis (channels-last): Keras has no such layer, a ``Lambda`` over
    ``keras.ops.pad`` is the usual way (He et al.'s option-A shortcut)."""
    before, after = config.pads
    return [keras.layers.Lambda(lambda x: keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, after]]))]


def _residual(keras, config, shape, last) -> list:
    """One callable that applies body and shortcut (identity when empty) to the same tensor and adds them."""
    body = _layers(keras, config.body, shape)
    shortcut = _layers(keras, config.shortcut, shape)
    add = keras.layers.Add()
    activation = _activation(keras, config.activation, False)

    def block(x):
        return _apply(activation, add([_apply(body, x), _apply(shortcut, x)]))

    return [block]


#: The layer types with a twin: netspec type -> the Keras layers (or callables on a tensor) of one layer.
_TWINS = {
    "Conv2D": _conv2d,
    "MaxPool2D": _max_pool2d,
    "Dropout": lambda keras, config, shape, last: [keras.layers.Dropout(config.rate)],
    "Flatten": lambda keras, config, shape, last: [keras.layers.Flatten()],
    "Dense": _dense,
    "BatchNorm": _batch_norm,
    "Activation": lambda keras, config, shape, last: _activation(keras, config.activation, last),
    "GlobalAvgPool2D": lambda keras, config, shape, last: [keras.layers.GlobalAveragePooling2D()],
    "ChannelPad": _channel_pad,
    "Residual": _residual,
}


def _layers(keras, configs, input_shape, final: bool = False) -> list:
    shape, out = tuple(input_shape), []
    for index, config in enumerate(configs):
        twin = _TWINS.get(config.type)
        if twin is None:
            raise KerasTwinError(f"layer type {config.type} has no Keras twin in cnn bench train")
        out += twin(keras, config, shape, final and index == len(configs) - 1)
        shape = tuple(config.infer(shape).shape)
    return out


def _apply(layers: list, x):
    for layer in layers:
        x = layer(x)
    return x


def keras_model(keras, configs, input_shape):
    """The functional ``keras.Model`` twin of a netspec layer list for ``input_shape`` ``(C, H, W)``, taking
    channels-last ``(H, W, C)`` images (Conv2D, MaxPool2D unpadded, Dropout, Flatten, Dense, BatchNorm,
    Activation relu, GlobalAvgPool2D, ChannelPad and Residual blocks). Any other layer type raises
    :class:`KerasTwinError` naming it."""
    if len(input_shape) != 3:
        raise KerasTwinError(f"the Keras twin takes images (C, H, W); received input shape {tuple(input_shape)}")
    channels, height, width = input_shape
    inputs = keras.Input(shape=(height, width, channels))
    return keras.Model(inputs, _apply(_layers(keras, configs, input_shape, final=True), inputs))


def keras_train_step(model, xb, yb) -> float:
    """One training step of a compiled twin (forward, cross-entropy, backward, Adam update and the accuracy
    metric, in Keras's own compiled train function); converting the loss to a float waits for it, as
    ``float(loss)`` does for fastcnn and ``.item()`` for torch."""
    loss = model.train_on_batch(xb, yb)
    return float(loss[0] if isinstance(loss, (list, tuple)) else loss)
