"""The summary of a network: one :class:`Row` per layer, data first, and the walk that computes it.

:func:`summarize` walks the layers from one input sample: each layer's :meth:`~cnnbase.netspec.record.Layer.infer`
gives its output shape and costs, and the walk carries the receptive field along each spatial axis of the
input (``specs/counting.md``). The walk knows only the :class:`~cnnbase.netspec.record.Layer` interface, so
the blocks, which walk their own paths with it, sit above this module. The ``render_*`` functions of
:mod:`cnnbase.netspec.render` turn a :class:`Summary` into text.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

from .. import shapes
from ..checks import invalid, is_int
from .errors import NetSpecError, _DoesNotFit
from .formats import brief_value, _shape_text, format_value
from .record import LARGEST_INT, Layer, _tuple


@dataclass(frozen=True)
class Row:
    """One layer of a :class:`Summary`.

    ``receptive_field``, ``jump`` and ``start`` have one entry per spatial axis of the network input
    (H, W or L; empty for a feature-vector input): the number of input cells one output unit sees, the
    distance in input cells between neighbouring units, and the input coordinate of the first cell seen
    by unit 0 (negative when it lies in padding). After a transposed convolution of stride ``s`` they may
    be :class:`~fractions.Fraction` (a jump of 1/2 cell: ``specs/netspec.md``, "Through a transposed
    convolution"); ``to_dict`` writes such a value as the string ``"1/2"``. ``activation_bytes`` is the
    memory of the layer's output for the whole batch.
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
            out[key] = [_json_number(value) for value in out[key]]
        out["params"] = self.params
        return out


def _json_number(value):
    """An int as it is; a :class:`Fraction` that is not one as ``"p/q"`` (JSON has no exact fractions)."""
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else str(value)
    return value


@dataclass(frozen=True)
class Summary:
    """The rows of a network and their totals; ``render_*`` turn it into text."""

    input_shape: tuple[int, ...]
    rows: tuple[Row, ...]
    batch_size: int = 1
    dtype_bytes: int = 4
    #: The layer records the rows describe, one per row: what ``render_table(summary, depth=...)`` opens to show
    #: the layers inside a block. Not part of the figures (nor of equality).
    layers: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def __str__(self) -> str:
        """The ``cnn shape`` table, so that ``print(model.summary())`` prints what Keras' ``summary()`` prints."""
        return _renderer()(self)

    def print(self, depth: int = 0) -> None:
        """Print the table; ``depth`` levels of blocks opened (``-1``: all), as ``cnn shape --depth``."""
        print(_renderer()(self, depth=depth))

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


#: The function that writes a :class:`Summary` as the ``cnn shape`` table: :func:`~cnnbase.netspec.render.render_table`,
#: which registers itself here when :mod:`cnnbase.netspec.render` is imported (``cnnbase.netspec`` imports it). The
#: renderer sits above the blocks, which sit above this walk, so this module cannot import it.
_TABLE_RENDERER: list = []


def register_table_renderer(function) -> None:
    """Make ``function(summary, depth=0)`` the text of ``str(summary)`` and :meth:`Summary.print`."""
    _TABLE_RENDERER[:] = [function]


def _renderer():
    if not _TABLE_RENDERER:
        import importlib

        importlib.import_module("cnnbase.netspec.render")  # registers render_table
    return _TABLE_RENDERER[0]


# --------------------------------------------------------------------------------------------------
# The walk: layer after layer, carrying the receptive field


@dataclass
class _Field:
    """Receptive-field state along one spatial axis of the network input (``specs/counting.md``): ints, or
    Fractions after a transposed convolution whose stride does not divide them."""

    rf: int | Fraction = 1
    jump: int | Fraction = 1
    start: int | Fraction = 0
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
        f.rf, f.jump, f.start = (_plain(v) for v in shapes.receptive_field_step(f.rf, f.jump, f.start, k, s, d, p_b))
        if windows == "all":
            f.positions = 1
        else:
            f.positions = positions[axis] if positions is not None else out_shape[1 + axis]


def _plain(value):
    """A Fraction that is an integer as an int: a stride after a transposed one brings the jump back to cells."""
    return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value


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
        base = layer.keras_name
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(prefix + (base if count == 0 else f"{base}_{count}"))
    return names


def _check_input_shape(input_shape) -> tuple[int, ...]:
    """A sample shape of 1 to 3 positive ints, each at most :data:`LARGEST_INT` (a larger one is no size)."""
    shape = _tuple(input_shape)
    if (not isinstance(shape, tuple) or not 1 <= len(shape) <= 3
            or not all(is_int(n) and 1 <= n <= LARGEST_INT for n in shape)):
        raise NetSpecError(
            f"invalid input shape {format_value(input_shape)}: expected (C, H, W), (C, L) or (features,) of positive "
            "ints up to 2**63-1"
        )
    return tuple(int(n) for n in shape)


def _infer_all(layers, shape):
    """Infer ``layers`` one after the other from a sample of ``shape``.

    Returns ``(steps, fields, sees_all)``: one ``((index, layer, name, Inferred), (rf, jump, start))``
    per layer, the receptive-field state per spatial axis of ``shape`` after the last layer, and whether
    some layer saw every position. A layer that does not fit raises :class:`NetSpecError`.
    """
    if not isinstance(layers, (list, tuple)):
        raise TypeError(invalid("summarize", "layers", "a list of layer records", brief_value(layers)))
    layers = list(layers)
    fields = [_Field(positions=n) for n in shape[1:]]
    steps, sees_all = [], False
    for index, (layer, name) in enumerate(zip(layers, default_names(layers)), start=1):
        if not isinstance(layer, Layer):
            raise NetSpecError(
                f"layer {index}: expected a layer record (Conv2D, Dense, ...); received {format_value(layer)}")
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
    return Summary(input_shape=input_shape, rows=tuple(rows), batch_size=batch_size, dtype_bytes=dtype_bytes,
                   layers=tuple(layers))


def _positive(value, name: str) -> int:
    if not is_int(value) or not 1 <= value <= LARGEST_INT:
        raise NetSpecError(invalid("summarize", name, "a positive int up to 2**63-1", brief_value(value)))
    return int(value)
