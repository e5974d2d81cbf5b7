"""A Keras 3 ``.keras`` file read into our model: the network built from its configuration, the weights
converted from Keras's layouts to ours, Keras's layer names kept.

The file (Keras 3's saving format, ``keras.saving.save_model``; https://keras.io/api/models/model_saving_apis/)
is a zip of ``metadata.json``, ``config.json`` (the model's ``get_config``, class by class) and
``model.weights.h5``, where the arrays of each layer are ``layers/<key>/vars/0, 1, ...`` in the order the
layer created them. ``<key>`` is not the layer's name: Keras addresses a layer by its class name in snake case,
numbered in the order of the model's layers (``conv2d``, ``conv2d_1``, ``batch_normalization``; Keras's
``saving_lib._save_container_state``: "Do NOT address the saveable via saveable.name"), so a layer renamed
``c1`` is still ``conv2d`` in the weights file.

The file is untrusted: the zip's members are refused from their declared sizes (``CNN_MAX_FILE_BYTES``)
before they are read, and read through zipfile's stream, which never yields more than the declared size; the
JSON is parsed within Python's limits and a nesting depth; each HDF5 dataset's shape and dtype are checked
(floats only, ``CNN_MAX_ARRAY_BYTES``) before it is read. Nothing is unpickled. ``h5py`` is an optional extra,
imported by :func:`read_keras` only.

Layers read (data_format ``channels_last``, Keras's default; ``channels_first`` is refused in one line):
InputLayer; Conv1D, Conv2D (padding ``valid``/``same``, ``causal`` for Conv1D, strides, dilation_rate,
groups, use_bias, activation); MaxPooling1D/2D and AveragePooling1D/2D (``same`` average pooling divides by
the cells inside the input, as TensorFlow does: our ``count_include_pad=False``); GlobalAveragePooling1D/2D
and GlobalMaxPooling1D/2D (``keepdims=False``); Flatten; Dense; Dropout; BatchNormalization (last axis);
Activation and ReLU/Softmax layers and the ``activation=`` argument (linear, relu, sigmoid, tanh, softmax, elu);
ZeroPadding1D/2D. Sequential models, and functional models whose branches join in an ``Add`` of two paths
(our Residual block, named after the Add layer) or a ``Concatenate`` on the channel axis (our Concat block,
named after the Concatenate layer); one input, one output, each layer called once.

Layouts converted (Keras stores channels-last tensors; ours are PyTorch's):

* a convolution's kernel ``(*k, C_in/groups, filters)`` (HWIO; 1-D: WIO) becomes ``(filters, C_in/groups, *k)``
  (OIHW; OIW);
* a Dense kernel ``(in, units)`` becomes ``(units, in)``;
* the first Dense after a Flatten of a map: Keras flattens ``(H, W, C)`` (``(L, C)``), we flatten ``(C, H, W)``
  (``(C, L)``), so its input columns are permuted to our order;
* BatchNormalization's gamma, beta, moving_mean, moving_variance are our weight, bias, running_mean,
  running_var; its ``momentum`` m is our ``1 - m`` (ours weighs the new batch, Keras's the running value).
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from cnnbase import netspec
from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError, check_bytes, nbytes_of

from ..files import CheckpointError
from ._source import open_source

__all__ = ["H5PY_MISSING", "KerasFile", "KerasImport", "UnsupportedKeras", "read_keras", "network_of",
           "load_keras", "keras_weight_key"]

H5PY_MISSING = ("reading a .keras file needs h5py (its weights are HDF5), which is not installed: "
                "pip install h5py (it comes with tensorflow-cpu)")

#: The members read, and the largest ``config.json`` read (a model's configuration is kilobytes).
_CONFIG, _WEIGHTS = "config.json", "model.weights.h5"
_MAX_CONFIG_BYTES = 64 * 1024**2

_ACTIVATIONS = {"linear": None, "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                "elu": "elu"}
_SKIPPED = ("InputLayer",)
_MERGES = ("Add", "Concatenate")


class UnsupportedKeras(CheckpointError):
    """A layer class, argument or graph this reader does not convert; the message names the class and layer."""


@dataclass(frozen=True)
class KerasFile:
    """A ``.keras`` file read: its ``config`` (``config.json``) and ``weights``: each layer's arrays by its key in
    ``model.weights.h5`` (:func:`keras_weight_key`), in the order Keras created them."""

    config: dict
    weights: dict[str, list[np.ndarray]]


@dataclass(frozen=True)
class KerasImport:
    """What :func:`load_keras` did: ``names`` pairs (Keras's layer name, our layer's name, where a layer
    inside a block is ``add/body/conv2d_1``) for each layer with weights, and ``notes`` (layers left out:
    InputLayer, a linear Activation)."""

    names: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------------
# Reading the zip


def _member(archive: zipfile.ZipFile, name: str, shown: str, cap_name: str = "CNN_MAX_FILE_BYTES") -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"{shown} is not a Keras 3 .keras file: it has no {name}") from None
    check_bytes(info.file_size, what=f"{shown}: member {name} (its declared size)", name=cap_name)
    if name == _CONFIG and info.file_size > _MAX_CONFIG_BYTES:
        raise CheckpointError(f"{shown}: {name} declares {info.file_size} bytes; a model's configuration is "
                              f"far smaller (at most {_MAX_CONFIG_BYTES} read)")
    with archive.open(info) as stream:  # never yields more than the declared size; the CRC is checked at its end
        data = stream.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise CheckpointError(f"{shown}: member {name} holds {len(data)} bytes, not the {info.file_size} declared")
    return data


def _parse_config(shown: str, data: bytes) -> dict:
    try:
        config = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{shown}: {_CONFIG} is nested thousands of levels deep") from None
    except ValueError as error:  # not UTF-8, not JSON, an int of thousands of digits
        raise CheckpointError(f"{shown}: {_CONFIG} is not JSON ({printable(str(error))[:200]})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{shown}: {_CONFIG} must be a JSON object")
    try:
        netspec.check_json_depth(config, f"{shown}: {_CONFIG}")
    except netspec.NetSpecError as error:
        raise CheckpointError(str(error)) from None
    return config


def _read_weights(shown: str, data: bytes) -> dict[str, list[np.ndarray]]:
    try:
        import h5py
    except ImportError:
        raise CheckpointError(f"{shown}: {H5PY_MISSING}") from None
    out: dict[str, list[np.ndarray]] = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            layers = h5.get("layers")
            if not isinstance(layers, h5py.Group):
                raise CheckpointError(f"{shown}: {_WEIGHTS} has no 'layers' group")
            for key, group in layers.items():
                variables = group.get("vars") if isinstance(group, h5py.Group) else None
                if not isinstance(variables, h5py.Group):
                    continue
                out[key] = [_dataset(shown, key, variables, index) for index in range(len(variables))]
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{shown}: {_WEIGHTS} is not a readable HDF5 file "
                              f"({printable(str(error))[:200]})") from None
    return out


def _dataset(shown: str, key: str, variables, index: int) -> np.ndarray:
    name = str(index)
    dataset = variables.get(name)
    where = f"{shown}: layers/{printable(key)}/vars/{index}"
    if dataset is None or not hasattr(dataset, "shape"):
        raise CheckpointError(f"{where}: missing (the variables of a layer are numbered 0, 1, ...)")
    if dataset.dtype.kind != "f":
        raise CheckpointError(f"{where}: dtype {printable(str(dataset.dtype))}, not float")
    shape = tuple(int(n) for n in dataset.shape)
    check_bytes(nbytes_of(shape, dataset.dtype.itemsize), what=f"{where} of shape {shape}")
    return np.asarray(dataset[()], dtype=np.float64 if dataset.dtype.itemsize > 4 else np.float32)


def read_keras(path) -> KerasFile:
    """The configuration and weights of a Keras 3 ``.keras`` file, every size checked before it is read."""
    shown = printable(os.fspath(path))
    handle, _ = open_source(path, shown)
    with handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                config = _parse_config(shown, _member(archive, _CONFIG, shown))
                weights = _member(archive, _WEIGHTS, shown)
        except zipfile.BadZipFile as error:
            raise CheckpointError(f"{shown} is not a Keras 3 .keras file (a zip): {printable(str(error))}") from None
        except (CheckpointError, SizeLimitError):
            raise
        except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as error:
            raise CheckpointError(f"{shown}: a damaged zip ({type(error).__name__}: "
                                  f"{printable(str(error))[:200]})") from None
    return KerasFile(config, _read_weights(shown, weights))


# ---------------------------------------------------------------------------------------------------------------
# The configuration -> our layer records


def _snake(name: str) -> str:
    """Keras's ``to_snake_case`` (keras/src/utils/naming.py): ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_weight_key(class_names: list[str]) -> list[str]:
    """The key of each layer (by its class, in the model's order) in ``model.weights.h5``: the class in snake
    case, then ``_1``, ``_2``, ... for the repeats, as Keras's saving library names them."""
    used: dict[str, int] = {}
    keys = []
    for class_name in class_names:
        base = _snake(class_name)
        count = used.get(base, 0)
        used[base] = count + 1
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def _unsupported(shown: str, class_name: str, name: str, why: str = "") -> UnsupportedKeras:
    tail = f" ({why})" if why else ""
    return UnsupportedKeras(f"{shown}: layer {printable(name)!r} of class {printable(class_name)} cannot be "
                            f"imported{tail}")


def _activation(value, shown, class_name, name):
    if isinstance(value, dict):  # a serialized function: {"class_name": "function", "config": "relu", ...}
        value = value.get("config")
    if value is None:
        return None
    if value not in _ACTIVATIONS:
        raise _unsupported(shown, class_name, name, f"activation {printable(str(value))!r}; read are "
                                                    f"{', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[value]


def _channels_last(cfg: dict, shown, class_name, name):
    if cfg.get("data_format", "channels_last") not in ("channels_last", None):
        raise _unsupported(shown, class_name, name, f"data_format {printable(str(cfg.get('data_format')))}; "
                                                    "channels_last is read")


def _rank(class_name: str) -> int:
    return 1 if "1D" in class_name else 2


def _clean_name(name) -> str:
    """A Keras name as one of ours (letters, digits, ``_ . -``): other characters become ``_``."""
    text = re.sub(r"[^\w.\-]", "_", str(name))
    return text if re.match(r"[A-Za-z_]", text) else "_" + text


def _conv(cls, cfg, name, shown, class_name):
    rank = _rank(class_name)
    kernel, dilation = tuple(cfg["kernel_size"]), tuple(cfg.get("dilation_rate", (1,) * rank))
    padding = cfg.get("padding", "valid")
    if padding == "causal" and rank == 1:  # left padding only: (k - 1) * d zeros before the series
        padding = ((dilation[0] * (kernel[0] - 1), 0),)
    elif padding not in ("valid", "same"):
        raise _unsupported(shown, class_name, name, f"padding {printable(str(padding))!r}")
    return cls(cfg["filters"], kernel, strides=tuple(cfg.get("strides", (1,) * rank)), padding=padding,
               dilation=dilation, groups=cfg.get("groups", 1), use_bias=cfg.get("use_bias", True),
               activation=_activation(cfg.get("activation"), shown, class_name, name), name=name)


def _pool(cls, cfg, name, shown, class_name):
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise _unsupported(shown, class_name, name, f"padding {printable(str(padding))!r}")
    pool = cfg["pool_size"]
    strides = cfg.get("strides") or pool
    extra = {"count_include_pad": False} if "Average" in class_name else {}
    return cls(tuple(pool) if isinstance(pool, list) else pool,
               strides=tuple(strides) if isinstance(strides, list) else strides, padding=padding, name=name, **extra)


def _zero_padding(cls, cfg, name, shown, class_name):
    padding = cfg.get("padding", 1)
    if isinstance(padding, list):
        padding = tuple(tuple(p) if isinstance(p, list) else p for p in padding)
        if class_name == "ZeroPadding1D" and len(padding) == 2 and all(isinstance(p, int) for p in padding):
            padding = (padding,)  # (left, right)
    return cls(padding=padding, name=name)


def _batch_norm(cfg, name, shown, class_name, built=None):
    """``built``: the layer's input shape from its ``build_config`` (None, *sample), to tell the last axis."""
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    last = len(built) - 1 if isinstance(built, list) else None
    if axis != -1 and (last is None or axis != last):
        raise _unsupported(shown, class_name, name, f"axis {printable(str(axis))}; the channel axis (-1) is read")
    return netspec.BatchNorm(eps=cfg.get("epsilon", 1e-3), momentum=round(1.0 - cfg.get("momentum", 0.99), 12),
                             name=name)


def _record(layer: dict, shown: str):
    """Our record for one Keras layer (None: a layer with nothing to compute here)."""
    class_name, cfg = layer.get("class_name"), layer.get("config") or {}
    name = _clean_name(cfg.get("name", layer.get("name", "?")))
    if class_name in ("Conv1D", "Conv2D"):
        _channels_last(cfg, shown, class_name, name)
        return _conv(getattr(netspec, class_name), cfg, name, shown, class_name)
    pools = {"MaxPooling1D": netspec.MaxPool1D, "MaxPooling2D": netspec.MaxPool2D,
             "AveragePooling1D": netspec.AvgPool1D, "AveragePooling2D": netspec.AvgPool2D}
    if class_name in pools:
        _channels_last(cfg, shown, class_name, name)
        return _pool(pools[class_name], cfg, name, shown, class_name)
    globals_ = {"GlobalAveragePooling1D": netspec.GlobalAvgPool1D, "GlobalAveragePooling2D": netspec.GlobalAvgPool2D,
                "GlobalMaxPooling1D": netspec.GlobalMaxPool1D, "GlobalMaxPooling2D": netspec.GlobalMaxPool2D}
    if class_name in globals_:
        _channels_last(cfg, shown, class_name, name)
        if cfg.get("keepdims"):
            raise _unsupported(shown, class_name, name, "keepdims=True")
        return globals_[class_name](name=name)
    if class_name == "Flatten":
        _channels_last(cfg, shown, class_name, name)
        return netspec.Flatten(name=name)
    if class_name == "Dense":
        return netspec.Dense(cfg["units"], use_bias=cfg.get("use_bias", True),
                             activation=_activation(cfg.get("activation"), shown, class_name, name), name=name)
    if class_name == "Dropout":
        return netspec.Dropout(cfg["rate"], name=name)
    if class_name == "BatchNormalization":
        return _batch_norm(cfg, name, shown, class_name, (layer.get("build_config") or {}).get("input_shape"))
    if class_name in ("Activation", "ReLU", "Softmax"):
        if class_name == "ReLU" and any(cfg.get(k) not in (None, 0, 0.0) for k in ("max_value", "negative_slope",
                                                                                  "threshold")):
            raise _unsupported(shown, class_name, name, "max_value, negative_slope or threshold set")
        value = {"ReLU": "relu", "Softmax": "softmax"}.get(class_name, cfg.get("activation"))
        activation = _activation(value, shown, class_name, name)
        return None if activation is None else netspec.Activation(activation, name=name)
    if class_name in ("ZeroPadding1D", "ZeroPadding2D"):
        _channels_last(cfg, shown, class_name, name)
        return _zero_padding(getattr(netspec, class_name), cfg, name, shown, class_name)
    raise _unsupported(shown, str(class_name), name, "not a layer class this reader converts")


def _input_shape(config: dict, layers: list, shown: str) -> tuple[int, ...]:
    """Our (C, *spatial) input from Keras's ``(None, *spatial, C)`` batch shape."""
    shape = None
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            cfg = layer.get("config") or {}
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            break
    if shape is None:
        shape = (config.get("build_input_shape") or (config.get("build_config") or {}).get("input_shape")
                 or ((layers[0].get("build_config") or {}).get("input_shape") if layers else None))
    if not isinstance(shape, list) or len(shape) < 2 or not all(isinstance(n, int) and n > 0 for n in shape[1:]):
        raise CheckpointError(f"{shown}: no input shape in {_CONFIG} (an InputLayer's batch_shape such as "
                              f"[null, 28, 28, 1]); found {printable(str(shape))[:80]}")
    sample = tuple(shape[1:])
    return sample if len(sample) == 1 else (sample[-1],) + sample[:-1]


# ---------------------------------------------------------------------------------------------------------------
# Functional graphs -> our sequence of layers and blocks


def _inbound(layer: dict) -> list[str]:
    """The names of the layers whose outputs a functional layer takes (its one call)."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise UnsupportedKeras(f"layer {printable(str(layer.get('name')))!r} is called {len(nodes)} times (a "
                               "shared layer); each layer must be called once")
    found = []

    def visit(value):
        if isinstance(value, dict):
            history = (value.get("config") or {}).get("keras_history")
            if value.get("class_name") == "__keras_tensor__" and isinstance(history, list) and history:
                found.append(str(history[0]))
                return
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    if nodes:
        visit(nodes[0].get("args", []))
    return found


class _Graph:
    """A functional model's layers as a graph, walked from its input into our layers and blocks."""

    def __init__(self, layers: list[dict], shown: str):
        self.shown = shown
        self.by_name = {str(layer.get("name") or (layer.get("config") or {}).get("name")): layer for layer in layers}
        self.inputs = {name: _inbound(layer) for name, layer in self.by_name.items()}
        self.consumers: dict[str, list[str]] = {name: [] for name in self.by_name}
        for name, sources in self.inputs.items():
            for source in sources:
                if source not in self.consumers:
                    raise CheckpointError(f"{shown}: layer {printable(name)!r} takes the output of "
                                          f"{printable(source)!r}, which is no layer of the model")
                self.consumers[source].append(name)

    def _is_merge(self, name: str) -> bool:
        return self.by_name[name].get("class_name") in _MERGES

    def _convert(self, name: str, records: list) -> None:
        layer = self.by_name[name]
        if len(self.inputs[name]) != 1:
            raise _unsupported(self.shown, str(layer.get("class_name")), name,
                               f"it takes {len(self.inputs[name])} inputs")
        record = _record(layer, self.shown)
        if record is not None:
            records.append(record)

    def walk(self, tensor: str, first: str | None = None) -> tuple[list, str | None, str]:
        """``(records, end, last)``: the records from ``tensor`` on (through ``first``, one of its consumers,
        when given) until a merge that closes a fork opened before (``end``) or the model's output (None);
        ``last`` is the Keras layer whose output reaches ``end`` (``tensor`` itself for an empty path)."""
        records: list = []
        if first is not None:
            if self._is_merge(first):
                return records, first, tensor
            self._convert(first, records)
            tensor = first
        while True:
            outs = self.consumers[tensor]
            if not outs:
                return records, None, tensor
            if len(outs) == 1:
                if self._is_merge(outs[0]):
                    return records, outs[0], tensor
                self._convert(outs[0], records)
                tensor = outs[0]
                continue
            rest, end, last = self._fork(tensor, outs)
            return records + rest, end, last

    def _fork(self, tensor: str, outs: list[str]) -> tuple[list, str | None, str]:
        """The paths from a fork, joined: a merge all of whose inputs are ends of paths from here makes a block
        of them (inner forks first), and the walk goes on after it, until one path is left."""
        paths = [self.walk(tensor, first) for first in outs]
        while len(paths) > 1:
            ready = next((end for _, end, _ in paths if end is not None
                          and sum(1 for _, e, _ in paths if e == end) == len(self.inputs[end])), None)
            if ready is None:
                raise UnsupportedKeras(f"{self.shown}: the {len(outs)} paths that start after layer "
                                       f"{printable(tensor)!r} do not join in an Add or Concatenate of their own")
            joined = [(records, last) for records, end, last in paths if end == ready]
            paths = [path for path in paths if path[1] != ready]
            rest, end, last = self.walk(ready)
            paths.append(([self._block(ready, joined)] + rest, end, last))
        return paths[0]

    def _block(self, merge: str, joined: list[tuple[list, str]]):
        """Our block for a merge layer and the paths it joins (``(records, last Keras layer)`` each)."""
        layer, sources = self.by_name[merge], self.inputs[merge]
        by_source = {last: records for records, last in joined}
        if sorted(by_source) != sorted(sources):
            raise _unsupported(self.shown, str(layer.get("class_name")), merge, "it takes a tensor twice")
        ordered = [by_source[source] for source in sources]
        cfg = layer.get("config") or {}
        name = _clean_name(cfg.get("name", merge))
        if layer.get("class_name") == "Add":
            if len(ordered) != 2:
                raise _unsupported(self.shown, "Add", merge, f"{len(ordered)} inputs; an Add of 2 is read")
            body, shortcut = ordered if ordered[0] else ordered[::-1]
            return netspec.Residual(list(body), list(shortcut), name=name)
        if cfg.get("axis", -1) != -1:
            raise _unsupported(self.shown, "Concatenate", merge, f"axis {cfg.get('axis')}; the channel axis (-1)")
        return netspec.Concat([list(path) for path in ordered], name=name)


def _records_of(config: dict, shown: str) -> tuple[list, list[dict]]:
    """Our records and the Keras layers (in the model's order) of a Sequential or functional configuration."""
    class_name, inner = config.get("class_name"), config.get("config") or {}
    layers = inner.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise CheckpointError(f"{shown}: {_CONFIG} has no list of layers (model class "
                              f"{printable(str(class_name))})")
    for layer in layers:
        if layer.get("class_name") in ("Sequential", "Functional", "Model"):
            raise _unsupported(shown, str(layer.get("class_name")), str((layer.get("config") or {}).get("name")),
                               "a model nested in the model")
    if class_name == "Sequential":
        records = [r for r in (_record(layer, shown) for layer in layers
                               if layer.get("class_name") not in _SKIPPED) if r is not None]
        return records, layers
    if class_name not in ("Functional", "Model"):
        raise CheckpointError(f"{shown}: model class {printable(str(class_name))} is not read (Sequential or "
                              "Functional)")
    inputs = [layer for layer in layers if layer.get("class_name") == "InputLayer"]
    if len(inputs) != 1:
        raise CheckpointError(f"{shown}: the model has {len(inputs)} inputs; one is read")
    graph = _Graph(layers, shown)
    start = str(inputs[0].get("name") or inputs[0]["config"].get("name"))
    records, end, _ = graph.walk(start)
    if end is not None:
        raise UnsupportedKeras(f"{shown}: layer {printable(end)!r} joins tensors that do not start at one fork")
    return records, layers


def network_of(keras: KerasFile, shown: str = "the .keras file") -> netspec.Network:
    """Our network (records and input shape) of a ``.keras`` file's configuration."""
    layers = (keras.config.get("config") or {}).get("layers") or []
    records, _ = _records_of(keras.config, shown)
    return netspec.Network(_input_shape(keras.config.get("config") or {}, layers, shown), tuple(records))


# ---------------------------------------------------------------------------------------------------------------
# The weights -> our layouts


def _flattened_map(layers_in_order) -> dict[str, tuple]:
    """For each Dense (by our name) that takes a Flatten's output (Dropout and Activation between them do not
    count), the (C, *spatial) map that Flatten flattened; a vector input is no map."""
    found = {}
    previous = None
    for layer in layers_in_order:
        if isinstance(layer.config, netspec.Dense) and previous is not None and len(previous.input_shape) > 1:
            found[layer.name] = previous.input_shape
        if isinstance(layer.config, netspec.Flatten):
            previous = layer
        elif not isinstance(layer.config, (netspec.Dropout, netspec.Activation)):
            previous = None
        for inner in getattr(layer, "branches", {}).values():
            found.update(_flattened_map(inner))
    return found


def _dense_weight(kernel: np.ndarray, flattened) -> np.ndarray:
    """Keras's ``(in, units)`` kernel as our ``(units, in)``; after a Flatten of a ``(C, *spatial)`` map, its
    inputs reordered from Keras's flatten order (``*spatial, C``) to ours (``C, *spatial``)."""
    weight = kernel.T
    if flattened is None:
        return weight
    channels, spatial = flattened[0], tuple(flattened[1:])
    units = weight.shape[0]
    return np.moveaxis(weight.reshape((units,) + spatial + (channels,)), -1, 1).reshape(units, -1)


def _arrays_for(layer, keras_cfg: dict, variables: list, flattened, shown: str) -> dict[str, np.ndarray]:
    """Our arrays of one runtime layer from the Keras variables of its layer."""
    cfg = layer.config
    where = f"{shown}: layer {printable(cfg.name)!r} ({cfg.keras_class})"
    if isinstance(cfg, netspec.BatchNorm):
        names = ([("weight", "gamma")] if keras_cfg.get("scale", True) else []) + \
                ([("bias", "beta")] if keras_cfg.get("center", True) else []) + \
                [("running_mean", "moving_mean"), ("running_var", "moving_variance")]
        if len(variables) != len(names):
            raise CheckpointError(f"{where}: {len(variables)} variables in {_WEIGHTS}; expected {len(names)} "
                                  f"({', '.join(k for _, k in names)})")
        out = {ours: value for (ours, _), value in zip(names, variables)}
        channels = layer.params["weight"].shape
        out.setdefault("weight", np.ones(channels))
        out.setdefault("bias", np.zeros(channels))
        return out
    expected = 1 + bool(getattr(cfg, "use_bias", False))
    if len(variables) != expected:
        raise CheckpointError(f"{where}: {len(variables)} variables in {_WEIGHTS}; expected {expected} (kernel"
                              f"{', bias' if expected == 2 else ''})")
    kernel = variables[0]
    if isinstance(cfg, netspec.BaseConv):
        weight = np.transpose(kernel, (kernel.ndim - 1, kernel.ndim - 2) + tuple(range(kernel.ndim - 2)))
    elif isinstance(cfg, netspec.Dense):
        if kernel.ndim != 2:
            raise CheckpointError(f"{where}: kernel of shape {kernel.shape}; a Dense kernel is (in, units)")
        weight = _dense_weight(kernel, flattened)
    else:  # pragma: no cover - only the layers above have arrays
        raise CheckpointError(f"{where}: no arrays expected")
    out = {"weight": np.ascontiguousarray(weight)}
    if expected == 2:
        out["bias"] = variables[1]
    return out


def load_keras(path, *, engine="fastcnn"):
    """``(model, report)``: our model of a Keras 3 ``.keras`` file, its weights converted (see the module's
    docstring), Keras's layer names kept. A layer or argument not read is one
    :class:`UnsupportedKeras` line naming the class and the layer; a weight of another shape than the
    configuration implies is a :class:`~cnn.files.CheckpointError` naming the layer and both shapes."""
    from ..model import Model

    shown = printable(os.fspath(path))
    keras = read_keras(path)
    try:
        network = network_of(keras, shown)
        model = Model(network.layers, network.input_shape, engine=engine)
    except (CheckpointError, SizeLimitError, netspec.NetSpecError):
        raise
    except (KeyError, TypeError, ValueError) as error:  # an argument missing, of the wrong type, or refused
        text = f"no {error}" if isinstance(error, KeyError) else str(error)
        raise CheckpointError(f"{shown}: its configuration cannot be built: {printable(text)}") from None
    keras_layers = (keras.config.get("config") or {}).get("layers") or []
    if keras.config.get("class_name") == "Sequential":
        keras_layers = [layer for layer in keras_layers if layer.get("class_name") != "InputLayer"]
    keys = keras_weight_key([str(layer.get("class_name")) for layer in keras_layers])
    by_name = {_clean_name((layer.get("config") or {}).get("name", layer.get("name"))): (layer, key)
               for layer, key in zip(keras_layers, keys)}
    flattened = _flattened_map(model.layers)
    arrays, names = {}, []
    for layer in model.all_layers():
        if not (layer.params or layer.buffers):
            continue
        keras_layer, key = by_name[layer.config.name]
        if key not in keras.weights:
            raise CheckpointError(f"{shown}: {_WEIGHTS} has no variables for layer {printable(layer.config.name)!r} "
                                  f"(looked for layers/{key})")
        converted = _arrays_for(layer, keras_layer.get("config") or {}, keras.weights[key],
                                flattened.get(layer.name), shown)
        for kind, store in (("param", layer.params), ("buffer", layer.buffers)):
            for name in store:
                value = converted[name]
                if value.shape != store[name].shape:
                    raise CheckpointError(f"{shown}: layer {printable(layer.config.name)!r} ({layer.config.type}): "
                                          f"{name} of shape {value.shape} from the file (converted); the network "
                                          f"needs {store[name].shape}")
                arrays[f"{kind}/{layer.name}/{name}"] = value
        names.append((str(keras_layer.get("config", {}).get("name")), layer.name))
    model.load_state_arrays(arrays, shown)
    skipped = [f"{layer.get('class_name')} {printable(str((layer.get('config') or {}).get('name')))!r} left out "
               "(nothing to compute)" for layer in keras_layers
               if layer.get("class_name") in _SKIPPED
               or (layer.get("class_name") == "Activation"
                   and _ACTIVATIONS.get((layer.get("config") or {}).get("activation")) is None)]
    return model, KerasImport(tuple(names), tuple(skipped))
