"""A model to ONNX: one graph of standard operators that computes the network as its description says.

``export_onnx(model, path)`` writes every layer of the model (blocks included) as ONNX nodes of opset
:data:`OPSET`, in the model's float type (``float32`` -> ``FLOAT``, ``float64`` -> ``DOUBLE``), with a dynamic
batch axis ``N``; it checks the result with ``onnx.checker.check_model(full_check=True)`` and writes the file
atomically (:func:`cnn.files.atomic_write`). The model's description (:meth:`cnn.Model.config`, JSON) goes in
the file's ``metadata_props`` under :data:`METADATA_KEY`, so :func:`cnn.interchange.onnx_import.import_onnx`
rebuilds the model with its layer names exactly; the weights are initializers named ``<layer>.<array>``
(``conv2d_1.weight``, ``batch_normalization.running_var``), the names of the model file's arrays.

The graph is inference: dropout is an ``Identity`` node, batch norm uses its running statistics, and a final
softmax is part of the graph: its output is then the model's probabilities (``Model.predict``); without one,
the last layer's output (``Model.forward``'s logits). Where one of our conventions has no ONNX attribute, the
graph spells it out with more nodes instead of approximating it (``specs/interchange.md``, "ONNX"):

* padding: per-side amounts go in ``pads`` (``'same'`` is resolved to the amounts, extra cell at the end,
  which is ONNX's ``SAME_UPPER``); the fills ``'replicate'``, ``'reflect'``, ``'circular'`` are a ``Pad`` node
  (``edge``, ``reflect``, ``wrap``) before the ``Conv``;
* max pooling whose padding is not below the kernel (ONNX Runtime refuses it) or whose ``ceil_mode`` adds a
  partial window: a ``Pad`` with ``-inf`` (padding never wins a max), then a ``MaxPool`` without padding;
* average pooling with padding or a partial window: our divisor (``specs/pool.md`` §3: the cells inside the
  padded extent, or inside the input with ``count_include_pad=False``) is written as a ``Pad`` of zeros, an
  ``AveragePool`` of full windows (divisor ``prod(k)``) and a ``Mul`` by the constant map ``prod(k) / D``;
* a transposed convolution's ``output_padding`` cells: ``ConvTranspose`` attribute ``output_padding``;
* global pooling gives ``(N, C)`` (a ``Flatten`` after ``GlobalAveragePool``), as our layers do.

Why opset 19: the first opset whose ``Pad`` has mode ``wrap`` (our ``'circular'`` fill); every other operator
used here is unchanged since opset 13 or earlier, and ONNX Runtime has run opset 19 since version 1.15
(2023), so the file also loads in older runtimes than the 1.32 the tests use.
"""

from __future__ import annotations

import json
import math

import numpy as np

from cnnbase import netspec

from cnnbase.checks import invalid, printable

from ..files import CheckpointError, atomic_write

__all__ = ["OPSET", "METADATA_KEY", "INPUT_NAME", "OUTPUT_NAME", "export_onnx", "to_onnx", "require_onnx",
           "weight_name", "weight_names"]

#: The ONNX opset of every exported file (see the module docstring for why 19).
OPSET = 19

#: The ``metadata_props`` key holding the model's description (:meth:`cnn.Model.config` as JSON).
METADATA_KEY = "cnn.model"

#: The graph's input and output names; the input is ``(N, *model.input_shape)``, ``N`` dynamic.
INPUT_NAME, OUTPUT_NAME = "input", "output"

#: Our activation names -> ONNX operators, with the attributes that make them ours (specs/activations.md:
#: leaky slope 0.01 and ELU alpha 1.0, PyTorch's defaults; softmax over the channel/class axis 1).
_ACTIVATIONS = {
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "elu": ("Elu", {"alpha": 1.0}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "softmax": ("Softmax", {"axis": 1}),
    "log_softmax": ("LogSoftmax", {"axis": 1}),
}

#: Protobuf refuses to serialise a message of 2 GiB or more (the weights are inside the one file).
_PROTOBUF_LIMIT = 2**31 - 2**20

#: Our padding fills -> ONNX ``Pad`` modes (``wrap`` needs opset 19).
_PAD_MODES = {"replicate": "edge", "reflect": "reflect", "circular": "wrap"}


def require_onnx():
    """The ``onnx`` module, or an ``ImportError`` of one line saying how to install it (it is an optional extra)."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"ONNX interchange needs the optional package onnx (pip install onnx): {error}") from None
    return onnx


class _Graph:
    """The nodes and initializers being written, in the model's float type, with unique names."""

    def __init__(self, onnx, dtype: np.dtype, weight_names):
        self.onnx, self.helper = onnx, onnx.helper
        self.dtype = dtype
        self.nodes, self.initializers = [], []
        # The weights' names are taken first, so that they are exactly ``<layer>.<array>`` whatever the layers
        # are called (a layer named ``output`` or ``a.weight`` gets a suffixed node name instead).
        self._weights = set(weight_names)
        self._names: set[str] = {INPUT_NAME, OUTPUT_NAME} | self._weights

    def unique(self, name: str) -> str:
        out, n = name, 1
        while out in self._names:
            n += 1
            out = f"{name}_{n}"
        self._names.add(out)
        return out

    def tensor(self, name: str, array) -> str:
        """An initializer (float arrays in the model's dtype, ints as int64); returns its name: a weight's
        reserved ``<layer>.<array>``, any other constant a unique name."""
        array = np.asarray(array)
        array = array.astype(np.int64) if array.dtype.kind in "iu" else array.astype(self.dtype)
        if name in self._weights:
            self._weights.discard(name)
        else:
            name = self.unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs, name: str, **attributes) -> str:
        """One node with one output, named after the node; returns the output's name."""
        name = self.unique(name)
        self.nodes.append(self.helper.make_node(op, list(inputs), [name], name=name, **attributes))
        return name


class _Unexpressible(ValueError):
    pass


def _flat_pads(pairs) -> list[int]:
    """``((b0, e0), (b1, e1))`` -> ONNX's ``[b0, b1, e0, e1]``."""
    return [int(b) for b, _ in pairs] + [int(e) for _, e in pairs]


def _pad(g: _Graph, x: str, name: str, spatial_pairs, mode: str = "constant", value=None,
         channel_pair=(0, 0)) -> str:
    """A ``Pad`` node over (N, C, *spatial): nothing on N, ``channel_pair`` on C, ``spatial_pairs`` after."""
    pairs = [(0, 0), tuple(channel_pair)] + [tuple(p) for p in spatial_pairs]
    inputs = [x, g.tensor(f"{name}.pads", np.array(_flat_pads(pairs), dtype=np.int64))]
    if value is not None:
        inputs.append(g.tensor(f"{name}.value", np.array(value)))
    return g.node("Pad", inputs, name, mode=mode)


def _activation(g: _Graph, x: str, layer_name: str, activation) -> str:
    if activation is None:
        return x
    op, attributes = _ACTIVATIONS[activation]
    return g.node(op, [x], f"{layer_name}/{activation}", **attributes)


def _conv(g: _Graph, layer, x: str) -> str:
    geom, name = layer.geometry, layer.name
    pads = geom.pads
    if geom.padding_mode != "zeros" and any(b or e for b, e in pads):
        for (b, e), n in zip(pads, geom.sizes):
            if geom.padding_mode == "reflect" and max(b, e) > n - 1:
                # Ours keeps reflecting (period 2(n-1), as np.pad); ONNX Runtime refuses a reflect pad >= n.
                raise _Unexpressible(
                    f"padding_mode='reflect' with padding ({b}, {e}) on an axis of {n} cells: ONNX's Pad reflects "
                    f"at most n - 1 = {n - 1} cells (ONNX Runtime refuses more)")
        x = _pad(g, x, f"{name}/pad", pads, _PAD_MODES[geom.padding_mode])
        pads = tuple((0, 0) for _ in pads)
    weight = layer._weight()  # a connection table is its 0/1 mask applied: the weights the forward uses
    inputs = [x, g.tensor(f"{name}.weight", weight)]
    if "bias" in layer.params:
        inputs.append(g.tensor(f"{name}.bias", layer.params["bias"]))
    return g.node("Conv", inputs, name, kernel_shape=list(geom.kernel), strides=list(geom.stride),
                  dilations=list(geom.dilation), pads=_flat_pads(pads), group=geom.G)


def _conv_transpose(g: _Graph, layer, x: str) -> str:
    geom, name = layer.geometry, layer.name
    inputs = [x, g.tensor(f"{name}.weight", layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.tensor(f"{name}.bias", layer.params["bias"]))
    return g.node("ConvTranspose", inputs, name, kernel_shape=list(geom.kernel), strides=list(geom.stride),
                  dilations=list(geom.dilation), pads=_flat_pads(geom.pads), group=geom.G,
                  output_padding=list(geom.output_padding))


def _full_window_pads(geom) -> tuple[tuple[int, int], ...]:
    """The padding after which every one of ``geom``'s windows lies inside the padded input: its own, plus, at
    the end, the cells a ceil-mode window reaches past the end padding."""
    pairs = []
    for n, k, s, (b, e), out in zip(geom.sizes, geom.kernel, geom.stride, geom.pads, geom.out_sizes):
        beyond = max((out - 1) * s + k - (n + b + e), 0)
        pairs.append((b, e + beyond))
    return tuple(pairs)


def _pool_attributes(geom, pads) -> dict:
    return {"kernel_shape": list(geom.kernel), "strides": list(geom.stride), "pads": _flat_pads(pads)}


def _max_pool(g: _Graph, layer, x: str) -> str:
    geom, name = layer.geometry, layer.name
    full = _full_window_pads(geom)
    native = full == tuple(geom.pads) and all(max(b, e) < k for (b, e), k in zip(geom.pads, geom.kernel))
    if native:  # every window is whole and ONNX Runtime takes the padding (it refuses pads >= kernel)
        return g.node("MaxPool", [x], name, **_pool_attributes(geom, geom.pads))
    x = _pad(g, x, f"{name}/pad", full, value=-np.inf)  # -inf never wins; no window is padding only
    return g.node("MaxPool", [x], name, **_pool_attributes(geom, ((0, 0),) * len(full)))


def _divisor_counts(geom) -> list[np.ndarray]:
    """Per axis, our average-pool divisor of each output position (``specs/pool.md`` §3): the window's cells
    inside the padded extent ``[-p_b, n + p_e)`` (``count_include_pad``) or inside the input ``[0, n)``."""
    counts = []
    for n, k, s, (b, e), out in zip(geom.sizes, geom.kernel, geom.stride, geom.pads, geom.out_sizes):
        lo, hi = (-b, n + e) if geom.count_include_pad else (0, n)
        starts = np.arange(out) * s - b
        counts.append(np.minimum(starts + k, hi) - np.maximum(starts, lo))
    return counts


def _avg_pool(g: _Graph, layer, x: str) -> str:
    geom, name = layer.geometry, layer.name
    full = _full_window_pads(geom)
    if all(b == 0 and e == 0 for b, e in full):  # whole windows, no padding: the divisor is prod(k) everywhere
        return g.node("AveragePool", [x], name, **_pool_attributes(geom, full))
    x = _pad(g, x, f"{name}/pad", full, value=0.0)
    x = g.node("AveragePool", [x], f"{name}/sum_over_k", **_pool_attributes(geom, ((0, 0),) * len(full)))
    # The mean of every whole window, times prod(k) / D: our divisor D, as a constant map (1, 1, *out).
    scale = np.ones((1, 1), dtype=np.float64)
    for k, count in zip(geom.kernel, _divisor_counts(geom)):
        scale = scale[..., None] * (k / count)
    return g.node("Mul", [x, g.tensor(f"{name}.divisor_scale", scale)], name)


def _global_pool(g: _Graph, layer, x: str) -> str:
    op = "GlobalMaxPool" if isinstance(layer.config, (netspec.GlobalMaxPool1D, netspec.GlobalMaxPool2D)) \
        else "GlobalAveragePool"
    pooled = g.node(op, [x], f"{layer.name}/{op}")
    return g.node("Flatten", [pooled], layer.name, axis=1)  # (N, C, 1, ...) -> (N, C): our layer's shape


def _dense(g: _Graph, layer, x: str) -> str:
    inputs = [x, g.tensor(f"{layer.name}.weight", layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.tensor(f"{layer.name}.bias", layer.params["bias"]))
    return g.node("Gemm", inputs, layer.name, transB=1)  # y = x W^T + b, W of shape (units, in_features)


def _batch_norm(g: _Graph, layer, x: str) -> str:
    name, cfg = layer.name, layer.config
    inputs = [x] + [g.tensor(f"{name}.{key}", store[key]) for store, key in (
        (layer.params, "weight"), (layer.params, "bias"), (layer.buffers, "running_mean"),
        (layer.buffers, "running_var"))]
    # ONNX's momentum is Keras's (the weight of the old running value): ours is 1 - it. Inference ignores it.
    return g.node("BatchNormalization", inputs, name, epsilon=float(cfg.eps), momentum=1.0 - float(cfg.momentum))


def _channel_pad(g: _Graph, layer, x: str) -> str:
    rank = len(layer.input_shape) - 1
    return _pad(g, x, layer.name, ((0, 0),) * rank, value=0.0, channel_pair=layer.config.pads)


def _zero_padding(g: _Graph, layer, x: str) -> str:
    return _pad(g, x, layer.name, layer.config.pairs, value=0.0)


def _residual(g: _Graph, layer, x: str) -> str:
    body = _layers(g, layer.branches["body"], x)
    shortcut = _layers(g, layer.branches["shortcut"], x)  # no layers: the identity
    return g.node("Add", [body, shortcut], layer.name)


def _concat(g: _Graph, layer, x: str) -> str:
    outputs = [_layers(g, layers, x) for layers in layer.branches.values()]
    return g.node("Concat", outputs, layer.name, axis=1)


#: How each record family is written; the first class in this order that the record is an instance of wins.
_WRITERS = (
    (netspec.BaseConv, _conv),
    (netspec.BaseConvTranspose, _conv_transpose),
    (netspec.BaseMaxPool, _max_pool),
    (netspec.BaseAvgPool, _avg_pool),
    (netspec.BaseGlobalPool, _global_pool),
    (netspec.Flatten, lambda g, layer, x: g.node("Flatten", [x], layer.name, axis=1)),  # C, H, W order: ours
    (netspec.Dense, _dense),
    (netspec.Dropout, lambda g, layer, x: g.node("Identity", [x], layer.name)),  # inference: the identity
    (netspec.BatchNorm, _batch_norm),
    (netspec.Activation, lambda g, layer, x: x),  # the activation itself is written after every layer
    (netspec.ChannelPad, _channel_pad),
    (netspec.BaseZeroPadding, _zero_padding),
    (netspec.Residual, _residual),
    (netspec.Concat, _concat),
)


def _layer(g: _Graph, layer, x: str) -> str:
    for record_class, write in _WRITERS:
        if isinstance(layer.config, record_class):
            try:
                y = write(g, layer, x)
            except _Unexpressible as error:
                raise CheckpointError(f"export_onnx: layer {printable(layer.name)!r} ({layer.config.type}) cannot be "
                                      f"written in "
                                 f"ONNX: {error}") from None
            # The record's activation, not the runtime layer's: the model takes a final softmax out of its last
            # layer while training; the exported graph computes the probabilities, as Model.predict.
            return _activation(g, y, layer.name, getattr(layer.config, "activation", None))
    raise CheckpointError(f"export_onnx: layer {printable(layer.name)!r} ({layer.config.type}) has no ONNX form here; "
                          f"the layers "
                     f"written are {', '.join(cls.__name__ for cls, _ in _WRITERS)}")


def _layers(g: _Graph, layers, x: str) -> str:
    for layer in layers:
        x = _layer(g, layer, x)
    return x


def weight_name(key: str) -> str:
    """A model file's array key -> its initializer's name: ``param/conv2d_1/weight`` -> ``conv2d_1.weight``
    (a block's inner layer keeps its path: ``residual/body/conv2d.weight``)."""
    _, _, rest = key.partition("/")
    layer, _, array = rest.rpartition("/")
    return f"{layer}.{array}"


def weight_names(model) -> dict[str, str]:
    """Every initializer name of the model's weights, by the model file's array key."""
    return {weight_name(key): key for key in model.state_arrays()}


def to_onnx(model):
    """The model as an ``onnx.ModelProto`` (checked with ``onnx.checker.check_model(full_check=True)``)."""
    onnx = require_onnx()
    helper = onnx.helper
    elem = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}[model.dtype.name]
    g = _Graph(onnx, model.dtype, weight_names(model))
    y = _layers(g, model.layers, INPUT_NAME)
    g.nodes.append(helper.make_node("Identity", [y], [OUTPUT_NAME], name=g.unique(f"{OUTPUT_NAME}/identity")))
    batch = "N"
    inputs = [helper.make_tensor_value_info(INPUT_NAME, elem, [batch, *model.input_shape])]
    out_shape = model.layers[-1].output_shape
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, elem, [batch, *out_shape])]
    graph = helper.make_graph(g.nodes, model.name, inputs, outputs, initializer=g.initializers,
                              doc_string="exported by cnn (cnn.interchange.onnx_export)")
    opsets = [helper.make_opsetid("", OPSET)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="cnn",
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(proto, {METADATA_KEY: json.dumps(model.config(), separators=(",", ":"))})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, *, opset: int = OPSET) -> None:
    """Write ``model`` (a :class:`cnn.Model`) to ``path`` as an ONNX file of opset :data:`OPSET`, atomically.

    The graph computes the network's output (the probabilities after a final softmax, as ``Model.predict``;
    else the last layer's output, as ``Model.forward``) for an input of shape ``(N, *model.input_shape)`` of the
    model's float type. A layer that ONNX cannot express as we compute it, or a model too large for one file,
    is a :class:`~cnn.files.CheckpointError` (a ``ValueError``; ``cnn`` commands report it as one line) naming
    the layer; a missing ``onnx`` package an ``ImportError`` of one line. ``opset`` is there to be stated, not
    chosen: another value is a ``ValueError``. Nothing is written unless the whole file is."""
    if opset != OPSET:
        raise ValueError(invalid("export_onnx", "opset", f"{OPSET} (the opset this exporter writes and tests)",
                                 opset))
    weights = sum(math.prod(a.shape) * a.itemsize for a in model.state_arrays().values())
    if weights >= _PROTOBUF_LIMIT:
        raise CheckpointError(f"export_onnx: the model's weights take {weights} bytes; one ONNX file holds less than "
                         f"2 GiB (protobuf's limit), and this exporter writes no external data files")
    proto = to_onnx(model)
    atomic_write(path, proto.SerializeToString())
