"""The PyTorch twin of a netspec model, the speed anchor of ``cnn bench train``.

:func:`torch_model` translates a netspec layer list into an equivalent ``torch.nn.Sequential``, one layer
type at a time through ``_TWINS``. A type with no entry there raises :class:`TorchTwinError` naming it, so
adding a layer type to the library never requires touching this file: only a type one wants to benchmark
against PyTorch needs an entry (a function of ``(nn, config, input_shape, last)`` returning torch modules).
"""

from __future__ import annotations

from cnnbase import netspec


class TorchTwinError(ValueError):
    """A layer the torch twin of a netspec model does not translate."""


def _torch_padding(config) -> int | tuple:
    if config.padding == "valid":
        return 0
    if isinstance(config.padding, tuple) and all(isinstance(p, int) for p in config.padding):
        return config.padding
    raise TorchTwinError(f"{config.type}: padding {config.padding!r} has no torch twin here; use 'valid' or ints")


def _torch_activation(nn, name, last: bool) -> list:
    if name is None or (name == "softmax" and last):  # logits: the loss applies the softmax, as Model does
        return []
    if name == "relu":
        return [nn.ReLU()]
    raise TorchTwinError(f"activation {name!r} has no torch twin here; use relu")


def _conv2d(nn, config, shape, last) -> list:
    conv = nn.Conv2d(shape[0], config.filters, config.kernel_size, config.strides, _torch_padding(config),
                     config.dilation, config.groups, config.use_bias)
    return [conv] + _torch_activation(nn, config.activation, last)


def _dense(nn, config, shape, last) -> list:
    return [nn.Linear(shape[0], config.units, config.use_bias)] + _torch_activation(nn, config.activation, last)


#: The layer types with a twin: netspec type -> the torch modules of one layer.
_TWINS = {
    "Conv2D": _conv2d,
    "MaxPool2D": lambda nn, config, shape, last: [nn.MaxPool2d(config.pool_size, config.strides,
                                                               ceil_mode=config.ceil_mode)],
    "Dropout": lambda nn, config, shape, last: [nn.Dropout(config.rate)],
    "Flatten": lambda nn, config, shape, last: [nn.Flatten()],
    "Dense": _dense,
}


def torch_model(torch, configs, input_shape):
    """The ``torch.nn.Sequential`` twin of a netspec layer list (Conv2D, MaxPool2D, Dropout, Flatten, Dense
    with relu; a final softmax is left to the loss, as :class:`cnn.Model` does).

    Any other layer type raises :class:`TorchTwinError` naming it."""
    shape, modules = tuple(input_shape), []
    for index, config in enumerate(configs):
        twin = _TWINS.get(config.type)
        if twin is None:
            raise TorchTwinError(f"layer type {config.type} has no torch twin in cnn bench train")
        modules += twin(torch.nn, config, shape, index == len(configs) - 1)
        shape = netspec.summarize([config], shape).rows[-1].output_shape
    return torch.nn.Sequential(*modules)


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
