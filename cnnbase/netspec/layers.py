"""The layer types: one frozen record per type, its argument checks and its shape inference.

Each record canonicalises its arguments in ``__post_init__`` (:mod:`cnnbase.netspec.record`) and
answers :meth:`~cnnbase.netspec.record.Layer.infer`: the output shape of one sample, the parameters and
MACs of ``specs/counting.md``, and how it moves the receptive field. Every number comes from
:mod:`cnnbase.shapes`. A shape the layer cannot take raises ``_DoesNotFit``, to which the walk of
:mod:`cnnbase.netspec.summary` adds the layer's index and name.

Defining a class here with its own ``type`` (and ``keras_class``, ``keras_name``) registers it as a
layer type, so the order of the classes in this file is the order of :data:`LAYER_TYPES`. The blocks,
layers made of layers, are in :mod:`cnnbase.netspec.blocks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from .. import shapes
from ..checks import check_bool, check_choice, check_float, check_int, expand_ints, invalid, is_int
from ..padding import PADDING_MODES, check_padding_mode
from ..shapes import SPATIAL_AXES
from .errors import _DoesNotFit
from .record import ACTIVATIONS, Inferred, Layer, _canonical_padding, _check_activation, _set, _tuple

#: The records, in the order of this file (and of LAYER_TYPES); a new layer type adds its name here.
__all__ = [
    "CONNECTION_TABLES", "BaseConv", "Conv1D", "Conv2D",
    "BasePool", "BaseMaxPool", "BaseAvgPool", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
    "BaseGlobalPool", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "Flatten", "Dense", "Dropout", "BatchNorm", "Activation", "ChannelPad",
    "BaseZeroPadding", "ZeroPadding1D", "ZeroPadding2D",
    "BaseConvTranspose", "Conv1DTranspose", "Conv2DTranspose",
]

# --------------------------------------------------------------------------------------------------
# Shape inference shared by the windowed layers


def _split_map(shape: tuple[int, ...], rank: int) -> tuple[int, tuple[int, ...]]:
    """``(C, H, W)`` -> ``(C, (H, W))``, refusing a shape of another rank."""
    if len(shape) != rank + 1:
        axes = ", ".join(("C",) + SPATIAL_AXES[rank])
        advice = "" if len(shape) > 1 else ", not a feature vector"
        raise _DoesNotFit(f"needs a ({axes}) map per sample{advice}")
    return shape[0], tuple(shape[1:])


def _output_sizes(sizes, kernel, stride, dilation, pads, ceil_mode=False) -> tuple[int, ...]:
    rank = len(sizes)
    out = []
    for axis in range(rank):
        (begin, end), name = pads[axis], SPATIAL_AXES[rank][axis]
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


def _check_filters_and_window(layer) -> None:
    """The arguments a convolution and a transposed one share: ``filters``, and the kernel size, strides and
    dilation, each made one int per spatial axis."""
    op, rank = layer.type, layer.rank
    check_int(layer.filters, "filters", op, minimum=1)
    for name in ("kernel_size", "strides", "dilation"):
        _set(layer, name, expand_ints(_tuple(getattr(layer, name)), rank, name, op))


# --------------------------------------------------------------------------------------------------
# Connection tables: which input channels each filter of a convolution reads


#: LeNet-5's C3 table (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
#: recognition", Proc. IEEE 86(11), section II.B and Table I): the S2 maps each of the 16 C3 maps reads.
#: Maps 0-5 read every contiguous (cyclic) subset of three S2 maps, 6-11 every contiguous subset of four,
#: 12-14 three discontinuous subsets of four, 15 all six: 60 connections, 60*25 + 16 = 1,516 parameters.
LENET5_C3 = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

#: Named connection tables, written by name in JSON (``"connections": "lenet5"``) and text (``table=lenet5``).
CONNECTION_TABLES = {"lenet5": LENET5_C3}

_CONNECTIONS_EXPECTED = (f"None, a table name ({', '.join(CONNECTION_TABLES)}) or, for each filter, the tuple of "
                         "the input channels it reads (distinct ints >= 0, at least one)")


def _canonical_connections(value, filters: int, groups: int, op: str):
    """``None``, a table's name, or one sorted tuple of distinct input channels per filter; a table equal to
    a named one becomes its name, so that the two forms compare equal and write the short form."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in CONNECTION_TABLES:
            raise ValueError(invalid(op, "connections", _CONNECTIONS_EXPECTED, value))
        table = CONNECTION_TABLES[value]
    else:
        table = _tuple(value)
        if not isinstance(table, tuple):
            raise TypeError(invalid(op, "connections", _CONNECTIONS_EXPECTED, value))
        if (not all(isinstance(entry, tuple) and entry for entry in table)
                or not all(is_int(c) and c >= 0 for entry in table for c in entry)):
            raise ValueError(invalid(op, "connections", _CONNECTIONS_EXPECTED, value))
        repeated = [i for i, entry in enumerate(table) if len(set(entry)) != len(entry)]
        if repeated:
            raise ValueError(invalid(op, "connections", _CONNECTIONS_EXPECTED, value,
                                     extra=f"Filter {repeated[0]} names an input channel twice."))
        table = tuple(tuple(sorted(int(c) for c in entry)) for entry in table)
    if len(table) != filters:
        raise ValueError(invalid(op, "connections", f"one entry per filter ({filters} entries)", value,
                                 extra=f"It has {len(table)}."))
    if groups != 1:
        raise ValueError(invalid(op, "groups", "1 when connections are given (a table says which channels each "
                                 "filter reads; groups are one such table)", groups))
    for name, known in CONNECTION_TABLES.items():
        if known == table:
            return name
    return table


# --------------------------------------------------------------------------------------------------
# Layers


@dataclass(frozen=True)
class BaseConv(Layer):
    """Base of :class:`Conv1D` and :class:`Conv2D` (``rank`` 1 or 2). Convolution
    ``y[n, co, o] = b[co] + sum_{ci, j} w[co, ci, j] x_pad[n, g*C_in/G + ci, o*s + j*d]``
    (``specs/conv.md``), with an optional activation after it.

    ``connections`` (PyTorch and Keras have no such argument): for each filter, the input channels it reads,
    as the partial connection tables of early convolutional networks (LeNet-5's C3: ``"lenet5"``, the
    1998 paper's Table I, :data:`LENET5_C3`). ``y[co] = b[co] + sum_{ci in connections[co], j} w[co, ci, j]
    x[ci, o*s + j*d]``: a full convolution whose weights outside the table are 0. Only connected weights are
    parameters and only their products are MACs: ``sum_co |connections[co]| * prod(k)`` (+ ``filters``
    biases). It needs ``groups=1`` (groups are one such table)."""

    filters: int
    kernel_size: object
    strides: object = 1
    padding: object = "valid"
    padding_mode: str = "zeros"
    dilation: object = 1
    groups: int = 1
    use_bias: bool = True
    activation: str | None = None
    connections: object = None

    rank: ClassVar[int] = 2

    def __post_init__(self):
        op, rank = self.type, self.rank
        _check_filters_and_window(self)
        _set(self, "groups", check_int(self.groups, "groups", op, minimum=1))
        padding = _canonical_padding(_tuple(self.padding), rank, self.kernel_size, self.strides, self.dilation, op)
        _set(self, "padding", padding)
        check_choice(self.padding_mode, "padding_mode", op, PADDING_MODES)
        check_bool(self.use_bias, "use_bias", op)
        _check_activation(self.activation, op)
        _set(self, "connections", _canonical_connections(self.connections, self.filters, self.groups, op))
        self._check_shared()

    @property
    def table(self) -> tuple[tuple[int, ...], ...] | None:
        """The connection table spelled out (a named one looked up), or None for a full convolution."""
        if isinstance(self.connections, str):
            return CONNECTION_TABLES[self.connections]
        return self.connections

    def _check_table(self, c_in: int) -> int:
        """The number of (filter, input channel) pairs the table connects; refuses a channel beyond C_in."""
        widest = max(c for entry in self.table for c in entry)
        if widest >= c_in:
            raise _DoesNotFit(f"connections read input channel {widest}, but the input has C_in={c_in} channels "
                              f"(0 to {c_in - 1})")
        return sum(len(entry) for entry in self.table)

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
        if self.connections is None:
            trainable = shapes.conv_params(c_in, self.filters, kernel, self.groups, self.use_bias)
            macs = shapes.conv_macs(c_in, self.filters, kernel, out, self.groups)
        else:  # the connected pairs only: one (filter, channel) pair is one C_in=1, C_out=1 convolution
            links = self._check_table(c_in)
            trainable = shapes.conv_params(1, 1, kernel, 1, False) * links + (self.filters if self.use_bias else 0)
            macs = shapes.conv_macs(1, 1, kernel, out, 1) * links
        return Inferred(
            shape=(self.filters,) + out,
            trainable=trainable,
            macs=macs,
            windows=tuple((kernel[a], stride[a], dilation[a], pads[a][0]) for a in range(self.rank)),
        )


@dataclass(frozen=True)
class Conv1D(BaseConv):
    """1-D convolution on ``(C_in, L)`` samples; output ``(filters, L_out)``."""

    type: ClassVar[str] = "Conv1D"
    keras_class: ClassVar[str] = "Conv1D"
    keras_name: ClassVar[str] = "conv1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class Conv2D(BaseConv):
    """2-D convolution on ``(C_in, H, W)`` samples; output ``(filters, H_out, W_out)``."""

    type: ClassVar[str] = "Conv2D"
    keras_class: ClassVar[str] = "Conv2D"
    keras_name: ClassVar[str] = "conv2d"
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
        self._check_shared()

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
                    f"axis {SPATIAL_AXES[self.rank][axis]}: window {empty} covers padding only "
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
    keras_class: ClassVar[str] = "MaxPooling1D"
    keras_name: ClassVar[str] = "max_pooling1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class MaxPool2D(BaseMaxPool):
    """Max pooling on ``(C, H, W)`` samples."""

    type: ClassVar[str] = "MaxPool2D"
    keras_class: ClassVar[str] = "MaxPooling2D"
    keras_name: ClassVar[str] = "max_pooling2d"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class AvgPool1D(BaseAvgPool):
    """Average pooling on ``(C, L)`` samples; ``count_include_pad`` as in PyTorch."""

    type: ClassVar[str] = "AvgPool1D"
    keras_class: ClassVar[str] = "AveragePooling1D"
    keras_name: ClassVar[str] = "average_pooling1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class AvgPool2D(BaseAvgPool):
    """Average pooling on ``(C, H, W)`` samples; ``count_include_pad`` as in PyTorch."""

    type: ClassVar[str] = "AvgPool2D"
    keras_class: ClassVar[str] = "AveragePooling2D"
    keras_name: ClassVar[str] = "average_pooling2d"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class BaseGlobalPool(Layer):
    """Base of the global pooling layers (``GlobalAvgPool1D/2D``, ``GlobalMaxPool1D/2D``): the max or
    mean over every position of each channel, ``(C, *spatial)`` -> ``(C,)``."""

    rank: ClassVar[int] = 2

    def __post_init__(self):
        self._check_shared()

    def infer(self, shape):
        channels, _ = _split_map(shape, self.rank)
        return Inferred(shape=(channels,), windows="all")


@dataclass(frozen=True)
class GlobalAvgPool1D(BaseGlobalPool):
    """Mean over L of each channel: ``(C, L)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalAvgPool1D"
    keras_class: ClassVar[str] = "GlobalAveragePooling1D"
    keras_name: ClassVar[str] = "global_average_pooling1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class GlobalAvgPool2D(BaseGlobalPool):
    """Mean over H and W of each channel: ``(C, H, W)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalAvgPool2D"
    keras_class: ClassVar[str] = "GlobalAveragePooling2D"
    keras_name: ClassVar[str] = "global_average_pooling2d"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class GlobalMaxPool1D(BaseGlobalPool):
    """Max over L of each channel: ``(C, L)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalMaxPool1D"
    keras_class: ClassVar[str] = "GlobalMaxPooling1D"
    keras_name: ClassVar[str] = "global_max_pooling1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class GlobalMaxPool2D(BaseGlobalPool):
    """Max over H and W of each channel: ``(C, H, W)`` -> ``(C,)``."""

    type: ClassVar[str] = "GlobalMaxPool2D"
    keras_class: ClassVar[str] = "GlobalMaxPooling2D"
    keras_name: ClassVar[str] = "global_max_pooling2d"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class Flatten(Layer):
    """``(C, H, W)`` -> ``(C*H*W,)`` in C, H, W order (PyTorch's order; Keras flattens H, W, C)."""

    type: ClassVar[str] = "Flatten"
    keras_class: ClassVar[str] = "Flatten"
    keras_name: ClassVar[str] = "flatten"

    def __post_init__(self):
        self._check_shared()

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
    keras_class: ClassVar[str] = "Dense"
    keras_name: ClassVar[str] = "dense"

    def __post_init__(self):
        check_int(self.units, "units", self.type, minimum=1)
        check_bool(self.use_bias, "use_bias", self.type)
        _check_activation(self.activation, self.type)
        self._check_shared()

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
    keras_class: ClassVar[str] = "Dropout"
    keras_name: ClassVar[str] = "dropout"

    def __post_init__(self):
        _set(self, "rate", check_float(self.rate, "rate", self.type, minimum=0.0, maximum=1.0, max_open=True))
        self._check_shared()

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
    keras_class: ClassVar[str] = "BatchNormalization"
    keras_name: ClassVar[str] = "batch_normalization"

    def __post_init__(self):
        _set(self, "eps", check_float(self.eps, "eps", self.type, minimum=0.0, min_open=True))
        if not math.isfinite(self.eps):  # eps=inf would zero every output: a mistake, or 1e999 read from a file
            raise ValueError(invalid(self.type, "eps", "a finite number > 0.0", self.eps))
        _set(self, "momentum", check_float(self.momentum, "momentum", self.type, minimum=0.0, maximum=1.0))
        self._check_shared()

    def infer(self, shape):
        channels = shape[0]
        return Inferred(shape=tuple(shape), trainable=2 * channels, non_trainable=2 * channels)


@dataclass(frozen=True)
class Activation(Layer):
    """An activation on its own; ``softmax``/``log_softmax`` normalise over the channel axis C."""

    activation: str

    type: ClassVar[str] = "Activation"
    keras_class: ClassVar[str] = "Activation"
    keras_name: ClassVar[str] = "activation"

    def __post_init__(self):
        check_choice(self.activation, "activation", self.type, ACTIVATIONS)
        self._check_shared()

    def infer(self, shape):
        return Inferred(shape=tuple(shape))


@dataclass(frozen=True)
class ChannelPad(Layer):
    """Zero channels added before and after the channel axis (axis 0 of a sample): ``(C, *n)`` ->
    ``(before + C + after, *n)``, no parameters.

    It is the channel half of the CIFAR ResNets' "option A" shortcut (He et al. 2015, arXiv:1512.03385,
    section 4.2: "the shortcut still performs identity mapping, with extra zero entries padded for
    increasing dimensions"); the spatial half, taking every other pixel, is ``MaxPool2D(1, strides=2)``. The
    common PyTorch CIFAR code pads ``planes // 4`` channels on each side (``F.pad`` over the channel axis),
    so ``padding`` is, as in ``F.pad``, the zero channels on each side: an int for both, or
    ``(before, after)``. Keras has no such layer (a ``Lambda`` there).
    """

    padding: object

    type: ClassVar[str] = "ChannelPad"
    keras_class: ClassVar[str] = "ChannelPad"
    keras_name: ClassVar[str] = "channel_pad"

    def __post_init__(self):
        pads = expand_ints(_tuple(self.padding), 2, "padding", self.type, minimum=0)
        _set(self, "padding", pads[0] if pads[0] == pads[1] else pads)
        self._check_shared()

    @property
    def pads(self) -> tuple[int, int]:
        """``(before, after)``: the zero channels added on each side."""
        return (self.padding, self.padding) if isinstance(self.padding, int) else tuple(self.padding)

    def infer(self, shape):
        before, after = self.pads
        return Inferred(shape=(before + shape[0] + after,) + tuple(shape[1:]))


def _zero_padding_pairs(padding, rank: int, op: str) -> tuple[tuple[int, int], ...]:
    """Keras' forms of a ZeroPadding amount -> one ``(begin, end)`` per axis. 2-D: an int (every side),
    ``(h, w)`` (symmetric per axis) or ``((top, bottom), (left, right))``; 1-D: an int or ``(left, right)``
    (Keras' ZeroPadding1D reads two ints as the two sides), or ``((left, right),)``."""
    expected = ("an int >= 0, (left, right) or ((left, right),)" if rank == 1 else
                "an int >= 0, (h, w) or ((top, bottom), (left, right))")
    value = _tuple(padding)
    try:
        if rank == 1 and isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], tuple):
            value = value[0]
        if rank == 1:
            return (expand_ints(value, 2, "padding", op, minimum=0),)
        if isinstance(value, tuple) and len(value) == rank and all(isinstance(v, tuple) for v in value):
            return tuple(expand_ints(v, 2, "padding", op, minimum=0) for v in value)
        return tuple((p, p) for p in expand_ints(value, rank, "padding", op, minimum=0))
    except (TypeError, ValueError):
        raise ValueError(invalid(op, "padding", expected, padding)) from None


@dataclass(frozen=True)
class BaseZeroPadding(Layer):
    """Base of :class:`ZeroPadding1D` and :class:`ZeroPadding2D`: zeros added around the spatial axes,
    ``(C, *n)`` -> ``(C, *(n + begin + end))``, as Keras' layers of the same names (the padding a
    convolution would add, as a layer of its own: Keras' ResNet50 writes its stem so)."""

    padding: object = 1

    rank: ClassVar[int] = 2

    def __post_init__(self):
        pairs = _zero_padding_pairs(self.padding, self.rank, self.type)
        if all(b == e for b, e in pairs):
            per_axis = tuple(b for b, _ in pairs)
            canonical = per_axis[0] if len(set(per_axis)) == 1 else per_axis
        else:
            canonical = pairs[0] if self.rank == 1 else pairs
        _set(self, "padding", canonical)
        self._check_shared()

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """``(begin, end)`` per spatial axis."""
        return _zero_padding_pairs(self.padding, self.rank, self.type)

    def infer(self, shape):
        channels, sizes = _split_map(shape, self.rank)
        pairs = self.pairs
        out = tuple(n + b + e for n, (b, e) in zip(sizes, pairs))
        return Inferred(shape=(channels,) + out, windows=tuple((1, 1, 1, b) for b, _ in pairs))


@dataclass(frozen=True)
class ZeroPadding1D(BaseZeroPadding):
    """Zeros before and after L: ``(C, L)`` -> ``(C, left + L + right)``."""

    type: ClassVar[str] = "ZeroPadding1D"
    keras_class: ClassVar[str] = "ZeroPadding1D"
    keras_name: ClassVar[str] = "zero_padding1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class ZeroPadding2D(BaseZeroPadding):
    """Zeros around H and W: ``(C, H, W)`` -> ``(C, top + H + bottom, left + W + right)``."""

    type: ClassVar[str] = "ZeroPadding2D"
    keras_class: ClassVar[str] = "ZeroPadding2D"
    keras_name: ClassVar[str] = "zero_padding2d"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class BaseConvTranspose(Layer):
    """Base of :class:`Conv1DTranspose` and :class:`Conv2DTranspose` (``rank`` 1 or 2): the transposed
    convolution of ``specs/conv.md`` (``conv_transpose{1,2}d``, the gradient of a convolution with respect to
    its input), with Keras' arguments and output sizes.

    ``padding``: ``"valid"`` or ``"same"`` as Keras (output ``n*s + max(k_eff - s, 0)`` and ``n*s``; with
    ``output_padding``, ``(n - 1)*s + k_eff - 2*(k_eff // 2 if same else 0) + output_padding``), cropped as
    TensorFlow crops (the gradient of a SAME or VALID convolution: ``total // 2`` at the beginning), or an
    amount as PyTorch's ``padding`` (an int, per-axis ints or per-side pairs cropped from the full output).
    ``output_padding`` (Keras' default None: 0 for an amount) adds cells at the end. Padding 0 is ``"valid"``,
    whose size differs from PyTorch's when ``k < s`` unless ``output_padding`` is given.
    ``groups`` as PyTorch's ``ConvTranspose{1,2}d`` (Keras' layers have none): input channel group ``g`` feeds
    output group ``g`` only; the weight is ``(C_in, filters/groups, *k)``, parameters
    ``C_in * (filters/groups) * prod(k) + filters``. MACs count every product of the op, cropped ones included:
    ``C_in * (filters/groups) * prod(k) * prod(n_in)``. The receptive field: ``specs/netspec.md``
    ("Through a transposed convolution").
    """

    filters: int
    kernel_size: object
    strides: object = 1
    padding: object = "valid"
    output_padding: object = None
    dilation: object = 1
    groups: int = 1
    use_bias: bool = True
    activation: str | None = None

    rank: ClassVar[int] = 2

    def __post_init__(self):
        op, rank = self.type, self.rank
        _check_filters_and_window(self)
        padding = _tuple(self.padding)
        if isinstance(padding, str):
            check_choice(padding, "padding", op, ("valid", "same"))
        else:
            ones = (1,) * rank
            padding = _canonical_padding(padding, rank, self.kernel_size, ones, ones, op)
        _set(self, "padding", padding)
        if self.output_padding is not None:
            extra = expand_ints(_tuple(self.output_padding), rank, "output_padding", op, minimum=0)
            _set(self, "output_padding", extra[0] if len(set(extra)) == 1 else extra)
        _set(self, "groups", check_int(self.groups, "groups", op, minimum=1))
        check_bool(self.use_bias, "use_bias", op)
        _check_activation(self.activation, op)
        self._check_shared()

    def resolved(self) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
        """``(pads, output_padding)`` per axis for ``conv_transpose{1,2}d``: what Keras' ``padding`` and
        ``output_padding`` mean, in PyTorch's terms (crop ``(p_b, p_e)``, then add ``output_padding`` at the end)."""
        rank = self.rank
        extra = None if self.output_padding is None else expand_ints(self.output_padding, rank, "output_padding",
                                                                      self.type, minimum=0)
        if not isinstance(self.padding, str):
            ones = (1,) * rank
            pads = shapes.resolve_padding(self.padding, ones, self.kernel_size, ones, ones, op=self.type)
            return tuple(pads), extra if extra is not None else (0,) * rank
        pads, added = [], []
        for axis in range(rank):
            k = shapes.kernel_extent(self.kernel_size[axis], self.dilation[axis])
            s = self.strides[axis]
            if extra is None:  # Keras: n*s + max(k - s, 0) (valid), n*s (same)
                total = min(k - s, 0) if self.padding == "valid" else k - s
            else:  # Keras: (n - 1)*s + k - 2*pad + output_padding, pad = k // 2 (same) or 0 (valid)
                total = (2 * (k // 2) if self.padding == "same" else 0) - extra[axis]
            pads.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
            added.append(max(-total, 0))
        return tuple(pads), tuple(added)

    def infer(self, shape):
        c_in, sizes = _split_map(shape, self.rank)
        if c_in % self.groups or self.filters % self.groups:
            raise _DoesNotFit(
                f"groups={self.groups} must divide both the input channels C_in={c_in} and filters C_out={self.filters}"
            )
        pads, added = self.resolved()
        out = []
        for axis in range(self.rank):
            try:
                out.append(shapes.conv_transpose_output_size(
                    sizes[axis], self.kernel_size[axis], self.strides[axis], pads[axis][0], pads[axis][1],
                    self.dilation[axis], added[axis], where=f"axis {SPATIAL_AXES[self.rank][axis]}"))
            except shapes.ShapeError as error:
                raise _DoesNotFit(str(error)) from None
        return Inferred(
            shape=(self.filters,) + tuple(out),
            trainable=shapes.conv_params(c_in, self.filters, self.kernel_size, self.groups, self.use_bias),
            macs=shapes.conv_macs(c_in, self.filters, self.kernel_size, sizes, self.groups),
            windows=tuple(self._field_window(axis, pads[axis][0]) for axis in range(self.rank)),
        )

    def _field_window(self, axis: int, crop_begin: int) -> tuple:
        """The window ``(k, s, d, p_b)`` that moves the receptive field as this layer does (``specs/netspec.md``,
        "Through a transposed convolution"): output ``o`` reads the inputs ``i`` with ``i*s + j*d = o + p_b``
        for some tap ``j``, all within ``(o + p_b - d(k-1))/s <= i <= (o + p_b)/s``. That is a convolution of
        stride ``1/s`` (a "fractionally strided convolution", Dumoulin & Visin 2016, arXiv:1603.07285) with
        extent ``d(k-1)/s + 1`` and begin padding ``(d(k-1) - p_b)/s``: Fractions when ``s`` does not divide
        them, ints otherwise. With ``s = 1`` it is exact; with ``s > 1`` each unit's field lies inside it."""
        span, stride = shapes.kernel_extent(self.kernel_size[axis], self.dilation[axis]) - 1, self.strides[axis]
        return tuple(_plain(value) for value in
                     (Fraction(span, stride) + 1, Fraction(1, stride), 1, Fraction(span - crop_begin, stride)))


def _plain(value):
    """A Fraction that is an integer as an int (the receptive-field arithmetic stays in ints where it can)."""
    return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value


@dataclass(frozen=True)
class Conv1DTranspose(BaseConvTranspose):
    """1-D transposed convolution on ``(C_in, L)`` samples; output ``(filters, L_out)``."""

    type: ClassVar[str] = "Conv1DTranspose"
    keras_class: ClassVar[str] = "Conv1DTranspose"
    keras_name: ClassVar[str] = "conv1d_transpose"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class Conv2DTranspose(BaseConvTranspose):
    """2-D transposed convolution on ``(C_in, H, W)`` samples; output ``(filters, H_out, W_out)``."""

    type: ClassVar[str] = "Conv2DTranspose"
    keras_class: ClassVar[str] = "Conv2DTranspose"
    keras_name: ClassVar[str] = "conv2d_transpose"
    rank: ClassVar[int] = 2
