"""The PyTorch twin of a netspec model, the speed anchor of ``cnn bench train``.

:func:`torch_model` translates a netspec layer list into an equivalent ``torch.nn.Sequential``, one layer
type at a time through ``_TWINS``. A type with no entry there raises :class:`TorchTwinError` naming it, so
adding a layer type to the library never requires touching this file: only a type one wants to benchmark
against PyTorch needs an entry (a function of ``(nn, config, input_shape, last)`` returning torch modules).
"""

from __future__ import annotations


class TorchTwinError(ValueError):
    """A layer the torch twin of a netspec model does not translate."""


def _torch_padding(config) -> int | tuple:
    if config.padding == "valid":
        return 0
    if isinstance(config.padding, int):
        return config.padding
    if isinstance(config.padding, tuple) and all(isinstance(p, int) for p in config.padding):
        return config.padding
    raise TorchTwinError(f"{config.type}: padding {config.padding!r} has no torch twin here; use 'valid' or ints")


def _torch_activation(nn, name, last: bool) -> list:
    if name is None or (name == "softmax" and last):  # logits: the loss applies the softmax, as Model does
        return []
    if name == "relu":
        return [nn.ReLU()]
    raise TorchTwinError(f"activation {name!r} has no torch twin here; use relu")


def _batch_norm(nn, config, shape, last) -> list:
    """``nn.BatchNorm2d`` (``BatchNorm1d`` after a dense layer): the same eps, and the same momentum
    convention (netspec's momentum is PyTorch's: the weight of the batch's statistic)."""
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return [cls(shape[0], eps=config.eps, momentum=config.momentum)]


def _global_avg_pool(nn, config, shape, last) -> list:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten()]


def _channel_pad(nn, config, shape, last) -> list:
    before, after = config.pads
    return [nn.ZeroPad3d((0, 0, 0, 0, before, after))]  # (W, H, C) pairs: only the channel axis


def _residual(nn, config, shape, last) -> list:
    """A :class:`_Residual` module: body, shortcut (identity when empty), their sum, the block's activation."""
    body = _sequential(nn, config.body, shape)
    shortcut = _sequential(nn, config.shortcut, shape)
    return [_residual_class(nn)(body, shortcut, _torch_activation(nn, config.activation, False))]


def _residual_class(nn):
    """``nn.Module`` subclass made on first use, so that importing this file never imports torch."""
    global _RESIDUAL
    if _RESIDUAL is None:
        class Residual(nn.Module):
            def __init__(self, body, shortcut, activation):
                super().__init__()
                self.body, self.shortcut, self.activation = body, shortcut, nn.Sequential(*activation)

            def forward(self, x):
                return self.activation(self.body(x) + self.shortcut(x))

        _RESIDUAL = Residual
    return _RESIDUAL


_RESIDUAL = None


def _conv2d(nn, config, shape, last) -> list:
    if config.connections is not None:  # nn.Conv2d would read every channel: another network
        raise TorchTwinError("a Conv2D with a connection table has no torch twin in cnn bench train")
    conv = nn.Conv2d(shape[0], config.filters, config.kernel_size, config.strides, _torch_padding(config),
                     config.dilation, config.groups, config.use_bias)
    return [conv] + _torch_activation(nn, config.activation, last)


def _dense(nn, config, shape, last) -> list:
    return [nn.Linear(shape[0], config.units, config.use_bias)] + _torch_activation(nn, config.activation, last)


#: The layer types with a twin: netspec type -> the torch modules of one layer.
_TWINS = {
    "Conv2D": _conv2d,
    "MaxPool2D": lambda nn, config, shape, last: [nn.MaxPool2d(config.pool_size, config.strides,
                                                               _torch_padding(config), ceil_mode=config.ceil_mode)],
    "Dropout": lambda nn, config, shape, last: [nn.Dropout(config.rate)],
    "Flatten": lambda nn, config, shape, last: [nn.Flatten()],
    "Dense": _dense,
    "BatchNorm": _batch_norm,
    "Activation": lambda nn, config, shape, last: _torch_activation(nn, config.activation, last),
    "GlobalAvgPool2D": _global_avg_pool,
    "ChannelPad": _channel_pad,
    "Residual": _residual,
}


def _sequential(nn, configs, input_shape, final: bool = False):
    shape, modules = tuple(input_shape), []
    for index, config in enumerate(configs):
        twin = _TWINS.get(config.type)
        if twin is None:
            raise TorchTwinError(f"layer type {config.type} has no torch twin in cnn bench train")
        modules += twin(nn, config, shape, final and index == len(configs) - 1)
        shape = tuple(config.infer(shape).shape)
    return nn.Sequential(*modules)


def torch_model(torch, configs, input_shape):
    """The ``torch.nn.Sequential`` twin of a netspec layer list (Conv2D, MaxPool2D, Dropout, Flatten, Dense,
    BatchNorm, Activation relu, GlobalAvgPool2D, ChannelPad and Residual blocks; a final softmax is left to
    the loss, as :class:`cnn.Model` does).

    Any other layer type raises :class:`TorchTwinError` naming it."""
    return _sequential(torch.nn, configs, input_shape, final=True)


def copy_weights(torch, twin, model) -> None:
    """Give the twin the parameters and running statistics of a :class:`cnn.Model`: both walk the network
    depth first (a block's body before its shortcut), so the k-th layer holding tensors on our side is the
    k-th convolution, dense or batch norm module on torch's; names and shapes must agree, else ValueError."""
    ours = [layer for layer in model.all_layers() if layer.params or layer.buffers]
    kinds = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    theirs = [m for m in twin.modules() if isinstance(m, kinds)]
    if len(ours) != len(theirs):
        raise ValueError(f"copy_weights: {len(ours)} layers with tensors here, {len(theirs)} in the twin")
    with torch.no_grad():
        for layer, module in zip(ours, theirs):
            for name, array in {**layer.params, **layer.buffers}.items():
                target = getattr(module, name)
                if tuple(target.shape) != array.shape:
                    raise ValueError(f"copy_weights: {layer.name}.{name} has shape {array.shape}, "
                                     f"the twin's {tuple(target.shape)}")
                target.copy_(torch.from_numpy(array))


def _torch_train_step(torch, model, optimizer, xb, yb) -> tuple[float, int]:
    """One training step of the twin, as :func:`cnn.train.train_step` is one of :class:`cnn.Model`: forward,
    cross-entropy, backward, update, accuracy count. ``.item()`` waits for the result, as ``float(loss)`` does
    for fastcnn."""
    optimizer.zero_grad()
    logits = model(xb)
    loss = torch.nn.functional.cross_entropy(logits, yb)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == yb).sum().item())
