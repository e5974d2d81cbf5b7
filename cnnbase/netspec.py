"""Network descriptions: layers without weights, their shapes and their costs.

A network is a list of small frozen layer records (``Conv2D(32, 3, activation="relu")``) and the shape
of one input sample, ``(C, H, W)``, ``(C, L)`` or ``(features,)`` (NCHW without the N). Nothing here
holds an array: :func:`summarize` walks the layers and returns, per layer, the output shape, the
parameter count, the multiply-accumulates, the receptive field and the activation memory, all computed
by :mod:`cnnbase.shapes`. The same data is behind ``cnn shape`` and ``model.summary()``.

Three ways to write a network (``specs/netspec.md``):

* Python: ``[Conv2D(32, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(10)]``;
* JSON: ``{"input_shape": [1, 28, 28], "layers": [{"type": "Conv2D", "filters": 32, "kernel_size": 3}]}``;
* text: ``"conv32k3 relu, maxpool2, flatten, dense10 softmax"`` (:func:`parse_spec`).

Two blocks nest layers: :class:`Residual` (``act(body(x) + shortcut(x))``) and :class:`Concat` (parallel
branches joined along C). They are written in Python or JSON (nested layer lists); the text grammar
has no form for them.

The counting conventions (what is a parameter, what is a MAC, what the receptive field means) are those
of ``specs/counting.md``. Layers are numbered from 1, as ``cnn shape`` prints them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from . import shapes
from .checks import check_bool, check_choice, check_float, check_int, expand_ints, is_int
from .padding import PADDING_MODES, check_padding_mode

__all__ = [
    "NetSpecError",
    "SpecParseError",
    "ACTIVATIONS",
    "Layer",
    "Conv1D",
    "Conv2D",
    "MaxPool1D",
    "MaxPool2D",
    "AvgPool1D",
    "AvgPool2D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNorm",
    "Activation",
    "Block",
    "Residual",
    "Concat",
    "BaseConv",
    "BasePool",
    "BaseMaxPool",
    "BaseAvgPool",
    "BaseGlobalPool",
    "Inferred",
    "BLOCK_TYPES",
    "LAYER_TYPES",
    "layer_from_dict",
    "default_names",
    "Network",
    "Row",
    "Summary",
    "summarize",
    "parse_spec",
    "to_spec",
    "parse_shape",
    "load_network",
    "PRESETS",
    "format_count",
    "format_bytes",
    "render_table",
    "render_keras",
    "render_csv",
    "render_json",
]

#: Activations a layer may name; ``specs/activations.md`` defines them.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax")

_AXIS_NAMES = shapes.SPATIAL_AXES


class NetSpecError(ValueError):
    """A network that cannot be built: a layer that does not fit its input, or a description that
    cannot be read. The message is one line naming the layer (index, type, name) and the numbers."""


class SpecParseError(NetSpecError):
    """A text, JSON or shape description that cannot be read; the message names the bad token and
    where it is."""


class _DoesNotFit(Exception):
    """Raised inside a layer's shape inference; :func:`summarize` adds the layer's index and name."""


# --------------------------------------------------------------------------------------------------
# Canonical forms: two layers that mean the same thing compare equal (kernel 3 == (3, 3)).


def _collapse(values: tuple):
    """``(3, 3)`` -> ``3``; ``(3, 5)`` stays: the shortest equivalent for JSON and text."""
    return values[0] if len(set(values)) == 1 else values


def _canonical_padding(padding, rank: int, kernel, stride, dilation, op: str):
    """The simplest equivalent padding: a name, one int, one int per axis, or (begin, end) per axis.

    Any amount :func:`cnnbase.shapes.resolve_padding` accepts is accepted; 0 everywhere is ``'valid'``.
    """
    if isinstance(padding, str):
        shapes.resolve_padding(padding, (1,) * rank, kernel, stride, dilation, op=op)  # validates the name
        return padding
    pairs = shapes.resolve_padding(padding, (1,) * rank, kernel, stride, dilation, op=op)
    if all(begin == end for begin, end in pairs):
        per_axis = tuple(begin for begin, _ in pairs)
        collapsed = _collapse(per_axis)
        return "valid" if collapsed == 0 else collapsed
    return pairs


def _set(layer, name: str, value) -> None:
    object.__setattr__(layer, name, value)  # frozen dataclasses canonicalise in __post_init__


def _check_activation(value, op: str):
    if value is None:
        return None
    return check_choice(value, "activation", op, ACTIVATIONS)


def _check_name(value, op: str):
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][\w.\-]*", value)):
        raise ValueError(
            f"{op}: invalid value for argument `name`. Expected None or a word of letters, digits, '_', '.', '-' "
            f"starting with a letter or '_'. Received name={value!r}."
        )
    return value


# --------------------------------------------------------------------------------------------------
# Shape inference results


@dataclass(frozen=True)
class Inferred:
    """What one layer does to one sample, as :meth:`Layer.infer` returns it: the output shape, the
    costs, and how the layer moves the receptive field.

    * ``shape``: the output shape of one sample;
    * ``trainable``, ``non_trainable``: parameter counts (``specs/counting.md``); ``macs``: the
      multiply-accumulates of one sample;
    * ``windows``: one ``(k, s, d, p_b)`` per spatial axis for a windowed layer, ``"all"`` for a layer
      whose units see every position of its input (global pooling, Dense), ``None`` for a layer that
      leaves the receptive field alone (activations, dropout, batch norm, Flatten);
    * ``positions``: units per spatial axis after the layer when the output shape does not show them
      (a block whose paths flatten a map); ``None`` means the spatial sizes of ``shape``;
    * ``inner_elements``: elements per sample of the outputs computed *inside* the layer and kept for
      the backward pass besides its output (the layers of a block); 0 for a plain layer.
    """

    shape: tuple[int, ...]
    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0
    windows: object = None
    positions: tuple[int, ...] | None = None
    inner_elements: int = 0


def _split_map(shape: tuple[int, ...], rank: int) -> tuple[int, tuple[int, ...]]:
    """``(C, H, W)`` -> ``(C, (H, W))``, refusing a shape of another rank."""
    if len(shape) != rank + 1:
        axes = ", ".join(("C",) + _AXIS_NAMES[rank])
        advice = "" if len(shape) > 1 else ", not a feature vector"
        raise _DoesNotFit(f"needs a ({axes}) map per sample{advice}")
    return shape[0], tuple(shape[1:])


def _output_sizes(sizes, kernel, stride, dilation, pads, ceil_mode=False) -> tuple[int, ...]:
    rank = len(sizes)
    out = []
    for axis in range(rank):
        (begin, end), name = pads[axis], _AXIS_NAMES[rank][axis]
        try:
            out.append(
                shapes.conv_output_size(
                    sizes[axis], kernel[axis], stride[axis], begin, end, dilation[axis], ceil_mode, where=f"axis {name}"
                )
            )
        except shapes.ShapeError as error:
            raise _DoesNotFit(str(error)) from None
    return tuple(out)


def _resolve_pads(layer, sizes, kernel, stride, dilation):
    return shapes.resolve_padding(layer.padding, sizes, kernel, stride, dilation, op=layer.type)


# --------------------------------------------------------------------------------------------------
# Layers


@dataclass(frozen=True)
class Layer:
    """Base of every layer record. ``name`` is optional; :func:`summarize` names unnamed layers the way
    Keras does (``conv2d``, ``conv2d_1``, ...)."""

    _: KW_ONLY
    name: str | None = None

    type: ClassVar[str] = "Layer"

    def _check_name(self):
        _check_name(self.name, self.type)

    def infer(self, shape: tuple[int, ...]) -> Inferred:  # pragma: no cover - every layer overrides it
        raise NotImplementedError

    def to_dict(self) -> dict:
        """JSON form: ``{"type": ..., <every argument that differs from its default>}``."""
        out = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "strides" and value == getattr(self, "pool_size", None):
                continue  # pooling strides default to the pool size
            value = _json_value(value)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            out[f.name] = value
        return out


def _json_value(value):
    """Tuples as JSON lists; ``(3, 3)`` as ``3``. Per-side padding pairs are never collapsed: ``[1, [0, 2]]``
    would mix the per-axis and per-side forms."""
    if not isinstance(value, tuple):
        return value
    if all(is_int(v) for v in value):
        collapsed = _collapse(value)
        return collapsed if is_int(collapsed) else list(value)
    return [list(v) for v in value]


@dataclass(frozen=True)
class BaseConv(Layer):
    """Base of :class:`Conv1D` and :class:`Conv2D` (``rank`` 1 or 2). Convolution
    ``y[n, co, o] = b[co] + sum_{ci, j} w[co, ci, j] x_pad[n, g*C_in/G + ci, o*s + j*d]``
    (``specs/conv.md``), with an optional activation after it."""

    filters: int
    kernel_size: object
    strides: object = 1
    padding: object = "valid"
    padding_mode: str = "zeros"
    dilation: object = 1
    groups: int = 1
    use_bias: bool = True
    activation: str | None = None

    rank: ClassVar[int] = 2

    def __post_init__(self):
        op, rank = self.type, self.rank
        check_int(self.filters, "filters", op, minimum=1)
        _set(self, "kernel_size", expand_ints(_tuple(self.kernel_size), rank, "kernel_size", op))
        _set(self, "strides", expand_ints(_tuple(self.strides), rank, "strides", op))
        _set(self, "dilation", expand_ints(_tuple(self.dilation), rank, "dilation", op))
        _set(self, "groups", check_int(self.groups, "groups", op, minimum=1))
        padding = _canonical_padding(_tuple(self.padding), rank, self.kernel_size, self.strides, self.dilation, op)
        _set(self, "padding", padding)
        check_choice(self.padding_mode, "padding_mode", op, PADDING_MODES)
        check_bool(self.use_bias, "use_bias", op)
        _check_activation(self.activation, op)
        self._check_name()

    def infer(self, shape):
        c_in, sizes = _split_map(shape, self.rank)
        kernel, stride, dilation = self.kernel_size, self.strides, self.dilation
        if c_in % self.groups or self.filters % self.groups:
            raise _DoesNotFit(
                f"groups={self.groups} must divide both the input channels C_in={c_in} and filters C_out={self.filters}"
            )
        pads = _resolve_pads(self, sizes, kernel, stride, dilation)
        try:
            check_padding_mode(self.padding_mode, pads, sizes, self.type)
        except ValueError as error:
            raise _DoesNotFit(str(error)) from None
        out = _output_sizes(sizes, kernel, stride, dilation, pads)
        return Inferred(
            shape=(self.filters,) + out,
            trainable=shapes.conv_params(c_in, self.filters, kernel, self.groups, self.use_bias),
            macs=shapes.conv_macs(c_in, self.filters, kernel, out, self.groups),
            windows=tuple((kernel[a], stride[a], dilation[a], pads[a][0]) for a in range(self.rank)),
        )


@dataclass(frozen=True)
class Conv1D(BaseConv):
    """1-D convolution on ``(C_in, L)`` samples; output ``(filters, L_out)``."""

    type: ClassVar[str] = "Conv1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class Conv2D(BaseConv):
    """2-D convolution on ``(C_in, H, W)`` samples; output ``(filters, H_out, W_out)``."""

    type: ClassVar[str] = "Conv2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class BasePool(Layer):
    """Base of the window pooling layers (max and average, ``rank`` 1 or 2): the max or mean of each
    window, channel by channel (``specs/pool.md``).

    ``strides=None`` means the pool size. A window that covers padding only is refused, the rule of
    :func:`cnnbase.shapes.first_empty_window`.
    """

    pool_size: object
    strides: object = None
    padding: object = "valid"
    ceil_mode: bool = False

    rank: ClassVar[int] = 2

    def __post_init__(self):
        op, rank = self.type, self.rank
        _set(self, "pool_size", expand_ints(_tuple(self.pool_size), rank, "pool_size", op))
        strides = self.pool_size if self.strides is None else self.strides
        _set(self, "strides", expand_ints(_tuple(strides), rank, "strides", op))
        ones = (1,) * rank
        _set(self, "padding", _canonical_padding(_tuple(self.padding), rank, self.pool_size, self.strides, ones, op))
        check_bool(self.ceil_mode, "ceil_mode", op)
        self._post_init_extra()
        self._check_name()

    def _post_init_extra(self):
        pass

    def infer(self, shape):
        channels, sizes = _split_map(shape, self.rank)
        kernel, stride, ones = self.pool_size, self.strides, (1,) * self.rank
        pads = _resolve_pads(self, sizes, kernel, stride, ones)
        out = _output_sizes(sizes, kernel, stride, ones, pads, self.ceil_mode)
        for axis in range(self.rank):
            empty = shapes.first_empty_window(sizes[axis], kernel[axis], stride[axis], pads[axis][0], 1, out[axis])
            if empty is not None:
                raise _DoesNotFit(
                    f"axis {_AXIS_NAMES[self.rank][axis]}: window {empty} covers padding only "
                    f"(n={sizes[axis]}, k={kernel[axis]}, s={stride[axis]}, p_begin={pads[axis][0]}, "
                    f"p_end={pads[axis][1]}, output size {out[axis]}); a pooling window must touch the input"
                )
        return Inferred(
            shape=(channels,) + out,
            windows=tuple((kernel[a], stride[a], 1, pads[a][0]) for a in range(self.rank)),
        )


@dataclass(frozen=True)
class BaseMaxPool(BasePool):
    """Base of :class:`MaxPool1D` and :class:`MaxPool2D`: the max of each window."""


@dataclass(frozen=True)
class BaseAvgPool(BasePool):
    """Base of :class:`AvgPool1D` and :class:`AvgPool2D`: the mean of each window."""

    count_include_pad: bool = True

    def _post_init_extra(self):
        check_bool(self.count_include_pad, "count_include_pad", self.type)


@dataclass(frozen=True)
class MaxPool1D(BaseMaxPool):
    """Max pooling on ``(C, L)`` samples."""

    type: ClassVar[str] = "MaxPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class MaxPool2D(BaseMaxPool):
    """Max pooling on ``(C, H, W)`` samples."""

    type: ClassVar[str] = "MaxPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class AvgPool1D(BaseAvgPool):
    """Average pooling on ``(C, L)`` samples; ``count_include_pad`` as in PyTorch."""

    type: ClassVar[str] = "AvgPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class AvgPool2D(BaseAvgPool):
    """Average pooling on ``(C, H, W)`` samples; ``count_include_pad`` as in PyTorch."""

    type: ClassVar[str] = "AvgPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class BaseGlobalPool(Layer):
    """Base of the global pooling layers (``GlobalAvgPool1D/2D``, ``GlobalMaxPool1D/2D``): the max or
    mean over every position of each channel, ``(C, *spatial)`` -> ``(C,)``."""

    rank: ClassVar[int] = 2

    def __post_init__(self):
        self._check_name()

    def infer(self, shape):
        channels, _ = _split_map(shape, self.rank)
        return Inferred(shape=(channels,), windows="all")


@dataclass(frozen=True)
class GlobalAvgPool1D(BaseGlobalPool):
    """Mean over L of each channel: ``(C, L)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalAvgPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class GlobalAvgPool2D(BaseGlobalPool):
    """Mean over H and W of each channel: ``(C, H, W)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalAvgPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class GlobalMaxPool1D(BaseGlobalPool):
    """Max over L of each channel: ``(C, L)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalMaxPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class GlobalMaxPool2D(BaseGlobalPool):
    """Max over H and W of each channel: ``(C, H, W)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalMaxPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class Flatten(Layer):
    """``(C, H, W)`` -> ``(C*H*W,)`` in C, H, W order (PyTorch's order; Keras flattens H, W, C)."""

    type: ClassVar[str] = "Flatten"

    def __post_init__(self):
        self._check_name()

    def infer(self, shape):
        return Inferred(shape=(math.prod(shape),))


@dataclass(frozen=True)
class Dense(Layer):
    """Fully connected ``y[o] = b[o] + sum_i W[o, i] x[i]``: ``(in_features,)`` -> ``(units,)``.

    Unlike Keras, a Dense layer does not apply itself along the last axis of a map: it needs a feature
    vector, so a map must go through Flatten or a global pooling layer first.
    """

    units: int
    use_bias: bool = True
    activation: str | None = None

    type: ClassVar[str] = "Dense"

    def __post_init__(self):
        check_int(self.units, "units", self.type, minimum=1)
        check_bool(self.use_bias, "use_bias", self.type)
        _check_activation(self.activation, self.type)
        self._check_name()

    def infer(self, shape):
        if len(shape) != 1:
            raise _DoesNotFit(
                "needs a feature vector (in_features,) per sample, not a map; "
                "put Flatten or a global pooling layer before it"
            )
        return Inferred(
            shape=(self.units,),
            trainable=shapes.linear_params(shape[0], self.units, self.use_bias),
            macs=shapes.linear_macs(shape[0], self.units),
            windows="all",
        )


@dataclass(frozen=True)
class Dropout(Layer):
    """Inverted dropout with drop probability ``rate`` while training; the identity otherwise."""

    rate: float

    type: ClassVar[str] = "Dropout"

    def __post_init__(self):
        _set(self, "rate", check_float(self.rate, "rate", self.type, minimum=0.0, maximum=1.0, max_open=True))
        self._check_name()

    def infer(self, shape):
        return Inferred(shape=tuple(shape))


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalisation over the channel axis (axis 0 of a sample: C, or the features of a vector).

    Per channel: trainable ``gamma`` and ``beta``, non-trainable running mean and variance (as Keras
    counts them). ``momentum`` follows PyTorch and refcnn: ``running = (1 - momentum)*running +
    momentum*batch_statistic`` (Keras' ``momentum=0.99`` is our ``0.01``).
    """

    eps: float = 1e-5
    momentum: float = 0.1

    type: ClassVar[str] = "BatchNorm"

    def __post_init__(self):
        _set(self, "eps", check_float(self.eps, "eps", self.type, minimum=0.0, min_open=True))
        _set(self, "momentum", check_float(self.momentum, "momentum", self.type, minimum=0.0, maximum=1.0))
        self._check_name()

    def infer(self, shape):
        channels = shape[0]
        return Inferred(shape=tuple(shape), trainable=2 * channels, non_trainable=2 * channels)


@dataclass(frozen=True)
class Activation(Layer):
    """An activation on its own; ``softmax``/``log_softmax`` normalise over the channel axis C."""

    activation: str

    type: ClassVar[str] = "Activation"

    def __post_init__(self):
        check_choice(self.activation, "activation", self.type, ACTIVATIONS)
        self._check_name()

    def infer(self, shape):
        return Inferred(shape=tuple(shape))


# --------------------------------------------------------------------------------------------------
# Blocks: layers made of paths of layers, each path run from the block's input


def _layers_tuple(value, what: str, op: str) -> tuple:
    items = tuple(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(item, Layer) for item in items):
        raise TypeError(f"{op}: argument `{what}` must be a list of layer records; received {value!r}.")
    return items


@dataclass(frozen=True)
class _Path:
    """One path of a block, inferred from the block's input."""

    label: str
    shape: tuple[int, ...]
    trainable: int
    non_trainable: int
    macs: int
    elements: int  # outputs of the path's layers, per sample
    fields: list  # one _Field per spatial axis of the block's input, relative to that input
    sees_all: bool  # a layer of the path sees every position (global pooling, Dense)


@dataclass(frozen=True)
class Block(Layer):
    """Base of the composite layers :class:`Residual` and :class:`Concat`: named paths of layer records,
    each run from the block's input, joined at the end.

    A block counts as one layer in :func:`summarize`: one row whose parameters and MACs are the sums
    over the layers inside it (the join itself costs 0 MACs), whose receptive field is the union of
    its paths' fields, and whose ``activation_bytes`` include the outputs of the layers inside it.
    :meth:`branch_summaries` gives the rows inside. Blocks have no text form; write them in Python or
    JSON (``specs/netspec.md``).
    """

    def named_branches(self) -> dict[str, tuple]:
        """The paths by label, in order (``{"body": ..., "shortcut": ...}``); the labels name the
        runtime layers inside the block (``residual/body/conv2d``)."""
        raise NotImplementedError  # pragma: no cover - every block overrides it

    def branch_summaries(self, input_shape, **kwargs) -> dict[str, "Summary"]:
        """A :class:`Summary` of each path, from the block's input shape (``summarize``'s keywords)."""
        return {label: summarize(layers, input_shape, **kwargs) for label, layers in self.named_branches().items()}

    def _paths(self, shape) -> list[_Path]:
        paths = []
        for label, layers in self.named_branches().items():
            try:
                steps, fields, sees_all = _infer_all(layers, shape)
            except NetSpecError as error:
                raise _DoesNotFit(f"{label}: {error}") from None
            results = [result for (_, _, _, result), _ in steps]
            paths.append(_Path(
                label=label,
                shape=results[-1].shape if results else tuple(shape),
                trainable=sum(r.trainable for r in results),
                non_trainable=sum(r.non_trainable for r in results),
                macs=sum(r.macs for r in results),
                elements=sum(math.prod(r.shape) + r.inner_elements for r in results),
                fields=fields,
                sees_all=sees_all,
            ))
        return paths

    def _join(self, paths: list[_Path], in_shape, out_shape) -> Inferred:
        """Costs are the sums over the paths; the receptive field is the union of the paths' fields."""
        windows, positions = None, None
        if len(in_shape) == 1 or any(p.sees_all for p in paths):
            # A vector input has no axis of its own to move; a path that sees every position makes the
            # union see every position too.
            windows = "all" if any(p.sees_all for p in paths) else None
        else:
            windows, positions = [], []
            for axis, axis_name in enumerate(_AXIS_NAMES[len(in_shape) - 1]):
                fields = [p.fields[axis] for p in paths]
                if len({f.jump for f in fields}) > 1:
                    listing = ", ".join(f"{p.label} {p.fields[axis].jump}" for p in paths)
                    raise _DoesNotFit(
                        f"axis {axis_name}: the paths step through the input by different jumps ({listing}), so "
                        "their units do not line up and the block has no receptive field; give every path the "
                        "same total stride"
                    )
                start = min(f.start for f in fields)
                end = max(f.start + f.rf for f in fields)
                # One window that composes like the union: size rf, stride jump, begin padding -start.
                windows.append((end - start, fields[0].jump, 1, -start))
                positions.append(max(f.positions for f in fields))
            windows = tuple(windows)
            positions = None if len(out_shape) > 1 else tuple(positions)
        return Inferred(
            shape=tuple(out_shape),
            trainable=sum(p.trainable for p in paths),
            non_trainable=sum(p.non_trainable for p in paths),
            macs=sum(p.macs for p in paths),
            windows=windows,
            positions=positions,
            inner_elements=sum(p.elements for p in paths),
        )

    def _branch_dicts(self, layers) -> list[dict]:
        return [layer.to_dict() for layer in layers]

    @classmethod
    def from_dict(cls, data: dict) -> "Layer":
        """The block from its JSON form (:meth:`to_dict`); nested layers through :func:`layer_from_dict`."""
        layer = layer_from_dict(data)
        if not isinstance(layer, cls):
            raise SpecParseError(f"expected a {cls.type} layer; received type {data.get('type')!r}")
        return layer


def _branch_from_json(kind: str, items, what: str) -> list:
    if not isinstance(items, list):
        raise SpecParseError(f"{kind}: `{what}` must be a list of layers; received {items!r}")
    layers = []
    for number, item in enumerate(items, start=1):
        try:
            layers.append(layer_from_dict(item))
        except (ValueError, TypeError) as error:
            raise SpecParseError(f"{kind}: {what} layer {number}: {error}") from None
    return layers


@dataclass(frozen=True)
class Residual(Block):
    """``y = act(body(x) + shortcut(x))``; an empty ``shortcut`` is the identity (He et al. 2016).

    ``body`` and ``shortcut`` are lists of layer records, each run from the block's input; their outputs
    must have the same shape. A projection shortcut is a 1x1 convolution:
    ``Residual([Conv2D(64, 3, strides=2, padding=1, activation="relu"), Conv2D(64, 3, padding=1)],
    [Conv2D(64, 1, strides=2)], activation="relu")``. Default name ``residual``.
    """

    body: tuple
    shortcut: tuple = ()
    activation: str | None = None

    type: ClassVar[str] = "Residual"

    def __post_init__(self):
        _set(self, "body", _layers_tuple(self.body, "body", self.type))
        _set(self, "shortcut", _layers_tuple(self.shortcut, "shortcut", self.type))
        if not self.body:
            raise ValueError(
                f"{self.type}: invalid value for argument `body`. Expected at least one layer. Received body=[]."
            )
        _check_activation(self.activation, self.type)
        self._check_name()

    def named_branches(self) -> dict[str, tuple]:
        return {"body": self.body, "shortcut": self.shortcut}

    def infer(self, shape):
        body, shortcut = self._paths(shape)
        if body.shape != shortcut.shape:
            kind = "the identity shortcut" if not self.shortcut else "the shortcut"
            raise _DoesNotFit(
                f"the body's output {_shape_text(body.shape)} differs from {kind}'s {_shape_text(shortcut.shape)}; "
                "a projection shortcut (shortcut=[Conv2D(C_out, 1, strides=s)]) makes them agree"
            )
        return self._join([body, shortcut], shape, body.shape)

    def to_dict(self) -> dict:
        """``{"type": "Residual", "body": [...], "shortcut": [...], "activation": ..., "name": ...}``; the
        last three only when set."""
        out = {"type": self.type, "body": self._branch_dicts(self.body)}
        if self.shortcut:
            out["shortcut"] = self._branch_dicts(self.shortcut)
        if self.activation is not None:
            out["activation"] = self.activation
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def _from_json(cls, data: dict) -> "Residual":
        if "body" not in data:
            raise SpecParseError(f"Residual: needs the key body; received {data!r}")
        return cls(
            _branch_from_json(cls.type, data["body"], "body"),
            _branch_from_json(cls.type, data.get("shortcut", []), "shortcut"),
            data.get("activation"),
            name=data.get("name"),
        )


@dataclass(frozen=True)
class Concat(Block):
    """``y = concat_C(branch_0(x), ..., branch_{B-1}(x))``: parallel branches joined along the channel
    axis (an Inception module). The branches' outputs must be maps that agree on every axis but C.
    Default name ``concat``."""

    branches: tuple

    type: ClassVar[str] = "Concat"

    def __post_init__(self):
        raw = self.branches
        if not isinstance(raw, (list, tuple)) or len(raw) < 2:
            raise ValueError(
                f"{self.type}: invalid value for argument `branches`. Expected a list of at least 2 branches "
                f"(each a list of layer records). Received branches={raw!r}."
            )
        _set(self, "branches", tuple(_layers_tuple(b, "branches", self.type) for b in raw))
        self._check_name()

    def named_branches(self) -> dict[str, tuple]:
        return {f"branch{i}": layers for i, layers in enumerate(self.branches)}

    def infer(self, shape):
        paths = self._paths(shape)
        if len({p.shape[1:] for p in paths}) != 1 or len(paths[0].shape) < 2:
            listing = ", ".join(f"{p.label} {_shape_text(p.shape)}" for p in paths)
            raise _DoesNotFit(
                f"branches must give maps of one spatial size to join along C; received {listing}"
            )
        channels = sum(p.shape[0] for p in paths)
        return self._join(paths, shape, (channels,) + paths[0].shape[1:])

    def to_dict(self) -> dict:
        """``{"type": "Concat", "branches": [[...], [...]], "name": ...}``; the name only when set."""
        out = {"type": self.type, "branches": [self._branch_dicts(b) for b in self.branches]}
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def _from_json(cls, data: dict) -> "Concat":
        if "branches" not in data or not isinstance(data["branches"], list):
            raise SpecParseError(f"Concat: needs the key branches (a list of lists of layers); received {data!r}")
        branches = [_branch_from_json(cls.type, b, f"branch{i}") for i, b in enumerate(data["branches"])]
        return cls(branches, name=data.get("name"))


#: The block types by their name in JSON and in ``Row.type``.
BLOCK_TYPES = {cls.type: cls for cls in (Residual, Concat)}

#: Every layer type by its name in JSON and in ``Row.type``, blocks included.
LAYER_TYPES = {
    cls.type: cls
    for cls in (
        Conv1D, Conv2D, MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D, GlobalAvgPool1D, GlobalAvgPool2D,
        GlobalMaxPool1D, GlobalMaxPool2D, Flatten, Dense, Dropout, BatchNorm, Activation, Residual, Concat,
    )
}

#: The Keras class of each layer type and the base of Keras' default layer names.
_KERAS = {
    "Conv1D": ("Conv1D", "conv1d"),
    "Conv2D": ("Conv2D", "conv2d"),
    "MaxPool1D": ("MaxPooling1D", "max_pooling1d"),
    "MaxPool2D": ("MaxPooling2D", "max_pooling2d"),
    "AvgPool1D": ("AveragePooling1D", "average_pooling1d"),
    "AvgPool2D": ("AveragePooling2D", "average_pooling2d"),
    "GlobalAvgPool1D": ("GlobalAveragePooling1D", "global_average_pooling1d"),
    "GlobalAvgPool2D": ("GlobalAveragePooling2D", "global_average_pooling2d"),
    "GlobalMaxPool1D": ("GlobalMaxPooling1D", "global_max_pooling1d"),
    "GlobalMaxPool2D": ("GlobalMaxPooling2D", "global_max_pooling2d"),
    "Flatten": ("Flatten", "flatten"),
    "Dense": ("Dense", "dense"),
    "Dropout": ("Dropout", "dropout"),
    "BatchNorm": ("BatchNormalization", "batch_normalization"),
    "Activation": ("Activation", "activation"),
    # Keras has no block classes; a nested model shows as one row, so the blocks keep their own names.
    "Residual": ("Residual", "residual"),
    "Concat": ("Concat", "concat"),
}
_TYPE_ALIASES = {keras: ours for ours, (keras, _) in _KERAS.items()}


def _tuple(value):
    """JSON lists -> tuples, nested included, so that JSON and Python forms compare equal."""
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


def layer_from_dict(data: dict) -> Layer:
    """Build a layer from its JSON form; Keras class names (``MaxPooling2D``) are accepted as types.
    Blocks (``Residual``, ``Concat``) hold their layers as nested lists of such objects."""
    if not isinstance(data, dict) or "type" not in data:
        raise SpecParseError(f"a layer must be a JSON object with a \"type\" key; received {data!r}")
    kind = _TYPE_ALIASES.get(data["type"], data["type"])
    if kind not in LAYER_TYPES:
        raise SpecParseError(f"unknown layer type {data['type']!r}; known types: {', '.join(LAYER_TYPES)}")
    cls = LAYER_TYPES[kind]
    allowed = [f.name for f in dataclasses.fields(cls)]
    if issubclass(cls, Block):
        unknown = [key for key in data if key != "type" and key not in allowed]
        if unknown:
            raise SpecParseError(
                f"{kind}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(sorted(allowed))}"
            )
        return cls._from_json(data)
    unknown = [key for key in data if key != "type" and key not in allowed]
    if unknown:
        raise SpecParseError(
            f"{kind}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
        )
    kwargs = {key: _tuple(value) for key, value in data.items() if key != "type"}
    try:
        return cls(**kwargs)
    except TypeError as error:
        if "missing" in str(error):  # a required argument is absent: say which, in our words
            required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and not f.kw_only]
            raise SpecParseError(f"{kind}: needs the key(s) {', '.join(required)}; received {data!r}") from None
        raise


# --------------------------------------------------------------------------------------------------
# Summary: data first


@dataclass(frozen=True)
class Row:
    """One layer of a :class:`Summary`.

    ``receptive_field``, ``jump`` and ``start`` have one entry per spatial axis of the network input
    (H, W or L; empty for a feature-vector input): the number of input cells one output unit sees, the
    distance in input cells between neighbouring units, and the input coordinate of the first cell seen
    by unit 0 (negative when it lies in padding). ``activation_bytes`` is the memory of the layer's
    output for the whole batch.
    """

    index: int
    name: str
    type: str
    output_shape: tuple[int, ...]
    trainable_params: int
    non_trainable_params: int
    macs: int
    receptive_field: tuple[int, ...]
    jump: tuple[int, ...]
    start: tuple[int, ...]
    activation_bytes: int

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("output_shape", "receptive_field", "jump", "start"):
            out[key] = list(out[key])
        out["params"] = self.params
        return out


@dataclass(frozen=True)
class Summary:
    """The rows of a network and their totals; ``render_*`` turn it into text."""

    input_shape: tuple[int, ...]
    rows: tuple[Row, ...]
    batch_size: int = 1
    dtype_bytes: int = 4

    @property
    def trainable_params(self) -> int:
        return sum(row.trainable_params for row in self.rows)

    @property
    def non_trainable_params(self) -> int:
        return sum(row.non_trainable_params for row in self.rows)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample."""
        return sum(row.macs for row in self.rows)

    @property
    def flops(self) -> int:
        """Floating-point operations of one sample: 2 per MAC (``specs/counting.md``)."""
        return 2 * self.macs

    @property
    def input_bytes(self) -> int:
        return math.prod(self.input_shape) * self.batch_size * self.dtype_bytes

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for the batch (the input not included)."""
        return sum(row.activation_bytes for row in self.rows)

    @property
    def param_bytes(self) -> int:
        return self.total_params * self.dtype_bytes

    def totals(self) -> dict:
        return {
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "batch_macs": self.macs * self.batch_size,
            "batch_flops": self.flops * self.batch_size,
            "input_bytes": self.input_bytes,
            "activation_bytes": self.activation_bytes,
            "param_bytes": self.param_bytes,
        }

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "dtype_bytes": self.dtype_bytes,
            "rows": [row.to_dict() for row in self.rows],
            "totals": self.totals(),
        }


@dataclass
class _Field:
    """Receptive-field state along one spatial axis of the network input (``specs/counting.md``)."""

    rf: int = 1
    jump: int = 1
    start: int = 0
    positions: int = 1  # units along this axis in the current layer's output


def _advance_fields(fields: list[_Field], windows, out_shape: tuple[int, ...], positions=None) -> None:
    if windows is None:
        return  # Flatten keeps each feature's field; so do element-wise layers
    for axis, f in enumerate(fields):
        if windows == "all":
            # A unit that sees every position is one window of size P with stride P (P = positions).
            k, s, d, p_b = f.positions, f.positions, 1, 0
        else:
            k, s, d, p_b = windows[axis]
        f.rf, f.jump, f.start = shapes.receptive_field_step(f.rf, f.jump, f.start, k, s, d, p_b)
        if windows == "all":
            f.positions = 1
        else:
            f.positions = positions[axis] if positions is not None else out_shape[1 + axis]


def default_names(layers, prefix: str = "") -> list[str]:
    """The name of each layer as :func:`summarize` shows it: its own ``name`` when set, else Keras'
    default, the snake-case class name then ``_1``, ``_2``, ... for repeats (``conv2d``, ``conv2d_1``,
    ``max_pooling2d``; blocks ``residual``, ``concat``). Every name is prefixed with ``prefix``
    (``"residual/body/"`` names the layers inside a block). Only the list given is numbered: the layers
    inside a block are not counted with those around it."""
    seen: dict[str, int] = {}
    names = []
    for layer in layers:
        if not isinstance(layer, Layer):
            names.append(prefix + "?")  # summarize refuses it, naming its index
            continue
        if layer.name is not None:
            names.append(prefix + layer.name)
            continue
        base = _KERAS[layer.type][1]
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(prefix + (base if count == 0 else f"{base}_{count}"))
    return names


def _check_input_shape(input_shape) -> tuple[int, ...]:
    shape = _tuple(input_shape)
    if not isinstance(shape, tuple) or not 1 <= len(shape) <= 3 or not all(is_int(n) and n >= 1 for n in shape):
        raise NetSpecError(
            f"invalid input shape {input_shape!r}: expected (C, H, W), (C, L) or (features,) of positive ints"
        )
    return tuple(int(n) for n in shape)


def _infer_all(layers, shape):
    """Infer ``layers`` one after the other from a sample of ``shape``.

    Returns ``(steps, fields, sees_all)``: one ``((index, layer, name, Inferred), (rf, jump, start))``
    per layer, the receptive-field state per spatial axis of ``shape`` after the last layer, and whether
    some layer saw every position. A layer that does not fit raises :class:`NetSpecError`.
    """
    layers = list(layers)
    fields = [_Field(positions=n) for n in shape[1:]]
    steps, sees_all = [], False
    for index, (layer, name) in enumerate(zip(layers, default_names(layers)), start=1):
        if not isinstance(layer, Layer):
            raise NetSpecError(f"layer {index}: expected a layer record (Conv2D, Dense, ...); received {layer!r}")
        try:
            result = layer.infer(shape)
        except _DoesNotFit as error:
            raise NetSpecError(
                f"layer {index} ({layer.type} {name!r}): {error}; input shape {_shape_text(shape)}"
            ) from None
        _advance_fields(fields, result.windows, result.shape, result.positions)
        sees_all = sees_all or result.windows == "all"
        shape = result.shape
        state = (tuple(f.rf for f in fields), tuple(f.jump for f in fields), tuple(f.start for f in fields))
        steps.append(((index, layer, name, result), state))
    return steps, fields, sees_all


def summarize(layers, input_shape, *, batch_size: int = 1, dtype_bytes: int = 4) -> Summary:
    """Walk ``layers`` from a sample of shape ``input_shape`` and return one :class:`Row` per layer.

    Shape per sample: ``(C, H, W)``, ``(C, L)`` or ``(features,)``; memory is for ``batch_size`` samples
    of ``dtype_bytes`` bytes each. A layer that cannot take its input raises :class:`NetSpecError`
    with a one-line message such as ``layer 5 (Conv2D 'conv2d_2'): axis H: the window spans ...``.
    """
    input_shape = _check_input_shape(input_shape)
    batch_size = _positive(batch_size, "batch_size")
    dtype_bytes = _positive(dtype_bytes, "dtype_bytes")
    steps, _, _ = _infer_all(layers, input_shape)
    rows = []
    for (index, layer, name, result), (rf, jump, start) in steps:
        rows.append(
            Row(
                index=index,
                name=name,
                type=layer.type,
                output_shape=result.shape,
                trainable_params=result.trainable,
                non_trainable_params=result.non_trainable,
                macs=result.macs,
                receptive_field=rf,
                jump=jump,
                start=start,
                activation_bytes=(math.prod(result.shape) + result.inner_elements) * batch_size * dtype_bytes,
            )
        )
    return Summary(input_shape=input_shape, rows=tuple(rows), batch_size=batch_size, dtype_bytes=dtype_bytes)


def _positive(value, name: str) -> int:
    if not is_int(value) or value < 1:
        raise NetSpecError(
            f"summarize: invalid value for argument `{name}`. Expected a positive int. Received {name}={value!r}."
        )
    return int(value)


@dataclass(frozen=True)
class Network:
    """A sample shape and its layers: the JSON file ``{"input_shape": [...], "layers": [...]}``.

    ``input_shape`` may be ``None`` for a text spec, which carries no input shape.
    """

    input_shape: tuple[int, ...] | None
    layers: tuple[Layer, ...]
    description: str = ""

    def summary(self, input_shape=None, **kwargs) -> Summary:
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise NetSpecError("this network has no input shape; give one (for example 1x28x28)")
        return summarize(self.layers, shape, **kwargs)

    def to_dict(self) -> dict:
        out = {
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data) -> "Network":
        if not isinstance(data, dict) or "layers" not in data or not isinstance(data["layers"], list):
            raise SpecParseError('a network file must be a JSON object {"input_shape": [...], "layers": [...]}')
        unknown = sorted(set(data) - {"input_shape", "layers", "description"})
        if unknown:
            raise SpecParseError(f"unknown key(s) in the network file: {', '.join(unknown)}")
        layers = []
        for index, item in enumerate(data["layers"], start=1):
            try:
                layers.append(layer_from_dict(item))
            except (ValueError, TypeError) as error:
                raise SpecParseError(f"layer {index} of the JSON file: {error}") from None
        shape = data.get("input_shape")
        return cls(None if shape is None else _check_input_shape(shape), tuple(layers), data.get("description", ""))


# --------------------------------------------------------------------------------------------------
# The text grammar (specs/netspec.md)

_NUMERIC_OPTION = re.compile(r"([kspdg])([0-9][0-9x:]*)")
_HEADS = [
    # (regex of the head word, layer type, name of the main number, glued options allowed)
    (re.compile(r"conv1d(\d+)((?:[kspdg][0-9][0-9x:]*)*)"), "Conv1D", "filters"),
    (re.compile(r"conv(?:2d)?(\d+)((?:[kspdg][0-9][0-9x:]*)*)"), "Conv2D", "filters"),
    (re.compile(r"maxpool1d(\d+)((?:[sp][0-9][0-9x:]*)*)"), "MaxPool1D", "pool_size"),
    (re.compile(r"maxpool(?:2d)?(\d+(?:x\d+)?)((?:[sp][0-9][0-9x:]*)*)"), "MaxPool2D", "pool_size"),
    (re.compile(r"avgpool1d(\d+)((?:[sp][0-9][0-9x:]*)*)"), "AvgPool1D", "pool_size"),
    (re.compile(r"avgpool(?:2d)?(\d+(?:x\d+)?)((?:[sp][0-9][0-9x:]*)*)"), "AvgPool2D", "pool_size"),
    (re.compile(r"dense(\d+)()"), "Dense", "units"),
    (re.compile(r"dropout([0-9.eE+\-]+)()"), "Dropout", "rate"),
    (re.compile(r"gap1d()()"), "GlobalAvgPool1D", None),
    (re.compile(r"gap(?:2d)?()()"), "GlobalAvgPool2D", None),
    (re.compile(r"gmp1d()()"), "GlobalMaxPool1D", None),
    (re.compile(r"gmp(?:2d)?()()"), "GlobalMaxPool2D", None),
    (re.compile(r"flatten()()"), "Flatten", None),
    (re.compile(r"(?:bn|batchnorm)()()"), "BatchNorm", None),
]
_LETTER_KEYS = {"k": "kernel_size", "s": "strides", "p": "padding", "d": "dilation", "g": "groups"}
_FLOAT_KEYS = {"eps": "eps", "momentum": "momentum"}


@dataclass(frozen=True)
class _Word:
    text: str
    column: int  # 1-based position in the spec


class _BadWord(Exception):
    def __init__(self, word: _Word, why: str):
        super().__init__(why)
        self.word, self.why = word, why


def _split_layers(text: str) -> list[list[_Word]]:
    groups: list[list[_Word]] = [[]]
    for match in re.finditer(r",|[^\s,]+", text):
        if match.group() == ",":
            groups.append([])
        else:
            groups[-1].append(_Word(match.group(), match.start() + 1))
    return groups


def _ints(word: _Word, value: str, what: str) -> tuple[int, ...]:
    parts = value.split("x")
    if not all(p.isdigit() for p in parts):
        raise _BadWord(word, f"{what} must be ints joined by 'x' (3 or 3x5); received {value!r}")
    return tuple(int(p) for p in parts)


def _one_or_tuple(values: tuple[int, ...]):
    return values[0] if len(values) == 1 else values


def _padding_value(word: _Word, value: str):
    """``1`` -> 1, ``1x2`` -> (1, 2), ``1:2x0:1`` -> ((1, 2), (0, 1))."""
    axes = value.split("x")
    if all(":" in axis for axis in axes):
        pairs = []
        for axis in axes:
            begin, _, end = axis.partition(":")
            if not (begin.isdigit() and end.isdigit()):
                raise _BadWord(word, f"per-side padding is begin:end per axis (1:2x0:1); received {value!r}")
            pairs.append((int(begin), int(end)))
        return tuple(pairs)
    if any(":" in axis for axis in axes):
        raise _BadWord(word, f"padding mixes per-side (1:2) and per-axis (1) forms; write every axis as begin:end")
    return _one_or_tuple(_ints(word, value, "padding"))


def _take_option(word: _Word, kind: str, kwargs: dict, key: str, value) -> None:
    cls = LAYER_TYPES[kind]
    if key not in {f.name for f in dataclasses.fields(cls)}:
        raise _BadWord(word, f"{kind} takes no {key}")
    if key in kwargs:
        raise _BadWord(word, f"{key} given twice")
    kwargs[key] = value


def _numeric_option(word: _Word, kind: str, kwargs: dict, letter: str, value: str) -> None:
    key = _LETTER_KEYS[letter]
    if kind.startswith(("MaxPool", "AvgPool")) and letter == "k":
        key = "pool_size"
    if key == "padding":
        parsed = _padding_value(word, value)
    elif key == "groups":
        parsed = _one_or_tuple(_ints(word, value, "groups"))
    else:
        parsed = _one_or_tuple(_ints(word, value, key))
    _take_option(word, kind, kwargs, key, parsed)


def _word_option(word: _Word, kind: str, kwargs: dict) -> None:
    text = word.text
    if text.startswith("@"):
        _take_option(word, kind, kwargs, "name", text[1:])
    elif _NUMERIC_OPTION.fullmatch(text):
        letter, value = _NUMERIC_OPTION.fullmatch(text).groups()
        _numeric_option(word, kind, kwargs, letter, value)
    elif "=" in text and text.split("=", 1)[0] in _FLOAT_KEYS:
        key, value = text.split("=", 1)
        try:
            number = float(value)
        except ValueError:
            raise _BadWord(word, f"{key} needs a number; received {value!r}") from None
        _take_option(word, kind, kwargs, _FLOAT_KEYS[key], number)
    elif text in shapes.PADDING_STRINGS:
        _take_option(word, kind, kwargs, "padding", text)
    elif text in PADDING_MODES:
        _take_option(word, kind, kwargs, "padding_mode", text)
    elif text in ACTIVATIONS:
        _take_option(word, kind, kwargs, "activation", text)
    elif text == "nobias":
        _take_option(word, kind, kwargs, "use_bias", False)
    elif text == "ceil":
        _take_option(word, kind, kwargs, "ceil_mode", True)
    elif text == "exclude_pad":
        _take_option(word, kind, kwargs, "count_include_pad", False)
    else:
        raise _BadWord(word, f"unknown option {text!r} for {kind}")


def _parse_head(word: _Word) -> tuple[str, dict]:
    """The first word: the layer kind, its main number and any glued numeric options."""
    text = word.text
    if text in ACTIVATIONS:
        return "Activation", {"activation": text}
    for pattern, kind, main in _HEADS:
        match = pattern.fullmatch(text)
        if not match:
            continue
        number, glued = match.groups()
        kwargs: dict = {}
        if main == "rate":
            try:
                kwargs[main] = float(number)
            except ValueError:
                raise _BadWord(word, f"dropout needs a rate such as dropout0.5; received {number!r}") from None
        elif main == "pool_size":
            kwargs[main] = _one_or_tuple(_ints(word, number, "pool size"))
        elif main is not None:
            kwargs[main] = int(number)
        for letter, value in _NUMERIC_OPTION.findall(glued):
            _numeric_option(word, kind, kwargs, letter, value)
        return kind, kwargs
    raise _BadWord(
        word,
        "unknown layer; a layer starts with conv<filters>, conv1d<filters>, maxpool<size>, avgpool<size>, "
        "maxpool1d<size>, avgpool1d<size>, gap, gmp, gap1d, gmp1d, flatten, dense<units>, dropout<rate>, bn "
        f"or an activation ({', '.join(ACTIVATIONS)})",
    )


def _parse_layer(words: list[_Word]) -> Layer:
    kind, kwargs = _parse_head(words[0])
    for word in words[1:]:
        _word_option(word, kind, kwargs)
    if kind.startswith("Conv") and "kernel_size" not in kwargs:
        raise _BadWord(words[0], f"{kind} needs a kernel size: k3 or k3x5 (for example conv32k3)")
    try:
        return LAYER_TYPES[kind](**kwargs)
    except (ValueError, TypeError) as error:
        raise _BadWord(words[0], str(error)) from None


def parse_spec(text: str) -> list[Layer]:
    """Read the text grammar of ``specs/netspec.md``: layers separated by commas, each a head word
    (``conv32k3``, ``maxpool2``, ``dense10``, ...) followed by options (``s2``, ``p1``, ``same``,
    ``relu``, ``@name``, ...).

    Raises :class:`SpecParseError` naming the layer number, the bad word and its column.
    """
    if not isinstance(text, str):
        raise SpecParseError(f"a text spec must be a str; received {type(text).__name__}")
    groups = _split_layers(text)
    if groups == [[]]:
        raise SpecParseError(
            "the spec is empty; write layers separated by commas, e.g. 'conv32k3 relu, flatten, dense10'"
        )
    layers = []
    for number, words in enumerate(groups, start=1):
        if not words:
            raise SpecParseError(f"layer {number} is empty (two commas in a row, or a comma at an end)")
        try:
            layers.append(_parse_layer(words))
        except _BadWord as bad:
            where = f"layer {number}, word {bad.word.text!r} at column {bad.word.column}"
            raise SpecParseError(f"{where}: {bad.why}") from None
    return layers


def _ints_text(values) -> str:
    """``(3, 3)`` -> ``'3'``, ``(3, 5)`` -> ``'3x5'``."""
    values = values if isinstance(values, tuple) else (values,)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _padding_text(padding) -> str:
    if isinstance(padding, str):
        return "" if padding == "valid" else " " + padding
    if is_int(padding):
        return f"p{padding}"
    if all(is_int(v) for v in padding):
        return "p" + "x".join(map(str, padding))
    return "p" + "x".join(f"{b}:{e}" for b, e in padding)


def _layer_text(layer: Layer) -> str:
    kind = layer.type
    if isinstance(layer, Block):
        raise NetSpecError(
            f"a {kind} block has no text form; write the network as JSON or Python (specs/netspec.md, Blocks)"
        )
    if isinstance(layer, BaseConv):
        head = f"conv{'1d' if layer.rank == 1 else ''}{layer.filters}k{_ints_text(layer.kernel_size)}"
        if set(layer.strides) != {1}:
            head += f"s{_ints_text(layer.strides)}"
        if set(layer.dilation) != {1}:
            head += f"d{_ints_text(layer.dilation)}"
        if layer.groups != 1:
            head += f"g{layer.groups}"
        pad = _padding_text(layer.padding)
        head, words = (head + pad, []) if pad.startswith("p") else (head, [pad.strip()] if pad else [])
        if layer.padding_mode != "zeros":
            words.append(layer.padding_mode)
        if not layer.use_bias:
            words.append("nobias")
        if layer.activation:
            words.append(layer.activation)
    elif isinstance(layer, BasePool):
        prefix = {"MaxPool": "maxpool", "AvgPool": "avgpool"}[kind[:7]]
        head = f"{prefix}{'1d' if layer.rank == 1 else ''}{_ints_text(layer.pool_size)}"
        if layer.strides != layer.pool_size:
            head += f"s{_ints_text(layer.strides)}"
        pad = _padding_text(layer.padding)
        head, words = (head + pad, []) if pad.startswith("p") else (head, [pad.strip()] if pad else [])
        if layer.ceil_mode:
            words.append("ceil")
        if isinstance(layer, BaseAvgPool) and not layer.count_include_pad:
            words.append("exclude_pad")
    elif isinstance(layer, BaseGlobalPool):
        head = {"GlobalAvgPool": "gap", "GlobalMaxPool": "gmp"}[kind[:13]] + ("1d" if layer.rank == 1 else "")
        words = []
    elif isinstance(layer, Dense):
        head, words = f"dense{layer.units}", []
        if not layer.use_bias:
            words.append("nobias")
        if layer.activation:
            words.append(layer.activation)
    elif isinstance(layer, Dropout):
        head, words = f"dropout{layer.rate!r}", []
    elif isinstance(layer, BatchNorm):
        head, words = "bn", []
        if layer.eps != 1e-5:
            words.append(f"eps={layer.eps!r}")
        if layer.momentum != 0.1:
            words.append(f"momentum={layer.momentum!r}")
    elif isinstance(layer, Activation):
        head, words = layer.activation, []
    else:  # Flatten
        head, words = "flatten", []
    if layer.name is not None:
        words.append("@" + layer.name)
    return " ".join([head] + words)


def to_spec(layers) -> str:
    """The text form of ``layers``, the inverse of :func:`parse_spec` (defaults left out). Blocks have no
    text form: a list holding a :class:`Residual` or :class:`Concat` raises :class:`NetSpecError`."""
    return ", ".join(_layer_text(layer) for layer in layers)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x28x28"`` -> ``(1, 28, 28)``: a sample shape (C, H, W), (C, L) or (features,)."""
    parts = text.strip().lower().split("x") if isinstance(text, str) else []
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SpecParseError(
            f"invalid input shape {text!r}: expected CxHxW, CxL or F with positive ints (for example 1x28x28)"
        )
    return tuple(int(p) for p in parts)


# --------------------------------------------------------------------------------------------------
# Presets: published networks with published parameter counts (tests check them)


def _preset(text: str, input_shape, description: str) -> Network:
    return Network(tuple(input_shape), tuple(parse_spec(text)), description)


PRESETS = {
    "keras-summary": _preset(
        "conv32k3 relu, maxpool2, conv64k3 relu, maxpool2, flatten, dense128 relu, dense10 softmax",
        (1, 28, 28),
        "the model.summary() example of the Keras documentation: 225,034 params",
    ),
    "keras-mnist": _preset(
        "conv32k3 relu, conv64k3 relu, maxpool2, dropout0.25, flatten, dense128 relu, dropout0.5, dense10 softmax",
        (1, 28, 28),
        "Keras' mnist_cnn.py example (12 epochs, about 99.25% test accuracy): 1,199,882 params",
    ),
    "tf-mnist-5x5": _preset(
        "conv32k5 same relu, maxpool2, conv64k5 same relu, maxpool2, flatten, dense1024 relu, dropout0.4, dense10",
        (1, 28, 28),
        "the TensorFlow layers tutorial's MNIST network (two 5x5 'same' convolutions): 3,274,634 params",
    ),
    "lenet5": _preset(
        "conv6k5 tanh, avgpool2, conv16k5 tanh, avgpool2, flatten, dense120 tanh, dense84 tanh, dense10 softmax",
        (1, 32, 32),
        "LeNet-5 (LeCun et al. 1998) as commonly implemented: 61,706 params",
    ),
}


def load_network(source: str) -> Network:
    """A preset name, a path to a ``.json`` network file, or a text spec (without input shape)."""
    if source in PRESETS:
        return PRESETS[source]
    if source.endswith(".json"):
        try:
            with open(source, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as error:
            raise SpecParseError(f"cannot read {source}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}"
            raise SpecParseError(f"{source} is not valid JSON: {error.msg} at {where}") from None
        try:
            return Network.from_dict(data)
        except SpecParseError as error:
            raise SpecParseError(f"{source}: {error}") from None
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", source):
        raise SpecParseError(f"unknown preset {source!r}; presets: {', '.join(PRESETS)}")
    try:
        return Network(None, tuple(parse_spec(source)))
    except SpecParseError as error:
        if re.fullmatch(r"[A-Za-z][\w\-]*", source):  # one bare word: more likely a mistyped preset
            raise SpecParseError(
                f"{source!r} is neither a preset ({', '.join(PRESETS)}) nor a layer spec (grammar: specs/netspec.md)"
            ) from None
        raise


# --------------------------------------------------------------------------------------------------
# Rendering: text from the data


def format_count(n: int) -> str:
    """``225034`` -> ``'225,034'``."""
    return f"{n:,}"


def format_bytes(n: int) -> str:
    """Binary units: ``900136`` -> ``'879.04 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _shape_text(shape) -> str:
    return "x".join(str(n) for n in shape)


def _axes_text(values: tuple[int, ...]) -> str:
    return "-" if not values else _ints_text(values) if len(set(values)) == 1 else "x".join(map(str, values))


def _align(table: list[list[str]], left: set[int]) -> list[str]:
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [cell.ljust(w) if c in left else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def render_table(summary: Summary) -> str:
    """The ``cnn shape`` table: one line per layer, then the totals."""
    spatial = len(summary.input_shape) - 1
    axes = " x ".join(("C",) + _AXIS_NAMES[spatial]) if spatial else "features"
    header = ["#", "layer (type)", "output", "params", "non-trainable", "MACs", "RF", "jump", "start", "memory"]
    ones = (1,) * spatial
    input_row = ["0", "input", _shape_text(summary.input_shape), "", "", "", _axes_text(ones), _axes_text(ones),
                 _axes_text((0,) * spatial), format_bytes(summary.input_bytes)]
    table = [header, input_row]
    for row in summary.rows:
        table.append(
            [
                str(row.index),
                f"{row.name} ({row.type})",
                _shape_text(row.output_shape),
                format_count(row.trainable_params),
                format_count(row.non_trainable_params),
                format_count(row.macs),
                _axes_text(row.receptive_field),
                _axes_text(row.jump),
                _axes_text(row.start),
                format_bytes(row.activation_bytes),
            ]
        )
    lines = _align(table, left={1, 2})
    rule = "-" * max(len(line) for line in lines)
    b = summary.batch_size
    totals = [
        f"Total params: {format_count(summary.total_params)} ({format_bytes(summary.param_bytes)})",
        f"Trainable params: {format_count(summary.trainable_params)}",
        f"Non-trainable params: {format_count(summary.non_trainable_params)}",
        f"MACs per sample: {format_count(summary.macs)}   FLOPs per sample (2 per MAC): {format_count(summary.flops)}",
    ]
    if b != 1:
        totals.append(
            f"MACs for the batch of {b}: {format_count(summary.macs * b)}   FLOPs: {format_count(summary.flops * b)}"
        )
    totals.append(
        f"Activation memory (batch {b}, {summary.dtype_bytes}-byte floats): {format_bytes(summary.activation_bytes)}"
        f"   input: {format_bytes(summary.input_bytes)}"
    )
    title = f"Input {_shape_text(summary.input_shape)} ({axes}) per sample; RF, jump and start in input cells per axis"
    return "\n".join([title, rule, lines[0], rule, *lines[1:], rule, *totals])


def _keras_shape(shape: tuple[int, ...]) -> str:
    """Keras prints channels last with the batch as None: (C, H, W) -> (None, H, W, C)."""
    ordered = tuple(shape[1:]) + (shape[0],) if len(shape) > 1 else tuple(shape)
    return "(" + ", ".join(["None"] + [str(n) for n in ordered]) + ")"


def _keras_row(fields: list[str], positions: list[int]) -> str:
    # Keras cuts each field at its column end and keeps one space before the next field.
    line = ""
    for i, text in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += text
        line = line[: positions[i]]
        line += " " * (positions[i] - len(line))
    return line


def render_keras(summary: Summary, *, model_name: str = "sequential") -> str:
    """The classic Keras ``model.summary()`` table (65 columns), with Keras' class names and shapes."""
    positions, width = [29, 55, 65], 65
    header = _keras_row(["Layer (type)", "Output Shape", "Param #"], positions)
    lines = [f'Model: "{model_name}"', "_" * width, header, "=" * width]
    for i, row in enumerate(summary.rows):
        keras_class = _KERAS[row.type][0]
        fields = [f"{row.name} ({keras_class})", _keras_shape(row.output_shape), str(row.params)]
        lines.append(_keras_row(fields, positions))
        lines.append("=" * width if i == len(summary.rows) - 1 else "_" * width)
    if not summary.rows:
        lines.append("=" * width)
    lines += [
        f"Total params: {format_count(summary.total_params)}",
        f"Trainable params: {format_count(summary.trainable_params)}",
        f"Non-trainable params: {format_count(summary.non_trainable_params)}",
        "_" * width,
    ]
    return "\n".join(lines)


_CSV_COLUMNS = [
    "index", "name", "type", "output_shape", "trainable_params", "non_trainable_params", "params", "macs",
    "receptive_field", "jump", "start", "activation_bytes",
]


def render_csv(summary: Summary) -> str:
    """One row per layer; tuples are written ``26x26`` (the shape as ``32x26x26``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in summary.rows:
        data = row.to_dict()
        writer.writerow(["x".join(map(str, data[c])) if isinstance(data[c], list) else data[c] for c in _CSV_COLUMNS])
    return buffer.getvalue()


def render_json(summary: Summary) -> str:
    """The rows and totals of :meth:`Summary.to_dict` as indented JSON."""
    return json.dumps(summary.to_dict(), indent=2)
