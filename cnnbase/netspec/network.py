"""A network: a sample shape and its layers, and its JSON file ``{"input_shape": [...], "layers": [...]}``.

Each layer's JSON form is read by :func:`~cnnbase.netspec.record.layer_from_dict`, the inverse of
:meth:`~cnnbase.netspec.record.Layer.to_dict`; this module adds the file around the layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..checks import is_int
from .errors import NetSpecError, SpecParseError
from .formats import _shape_text, format_value
from .layers import Dense
from .record import LARGEST_INT, Layer, check_json_depth, layer_from_dict
from .summary import Summary, _check_input_shape, summarize

#: The largest side :func:`smallest_input` tries: far beyond any image a network of this library trains on.
LARGEST_SIDE_TRIED = 1 << 14


class InputTooSmall(NetSpecError):
    """A network that cannot take an input shape. ``smallest`` is the smallest shape with the same channels
    and equal sides that it can take (``None`` when none up to :data:`LARGEST_SIDE_TRIED` fits, or the
    input is a feature vector), for a message that says how large an input to give."""

    def __init__(self, message: str, input_shape: tuple[int, ...], smallest: tuple[int, ...] | None):
        super().__init__(message)
        self.input_shape = input_shape
        self.smallest = smallest


@dataclass(frozen=True)
class Adapted:
    """A network made to fit an input and a class count (:meth:`Network.adapted`), and one line per change."""

    network: "Network"
    changes: tuple[str, ...]


def _fits(layers, shape) -> bool:
    try:
        summarize(layers, shape)
    except NetSpecError:
        return False
    return True


def smallest_input(layers, input_shape) -> tuple[int, ...] | None:
    """The smallest ``(C, n, n)`` (or ``(C, n)``) with ``n`` above the input's largest side that ``layers`` take.

    Doubling, then bisection: the sizes a stack of windows accepts are every size from a least one on, so the
    bisection finds that least one; a network whose blocks accept only some sizes (paths that must agree)
    gets the first fitting size found by a short scan up from there, and ``None`` when none fits.
    """
    input_shape = _check_input_shape(input_shape)
    if len(input_shape) == 1:
        return None
    channels, spatial = input_shape[0], len(input_shape) - 1

    def shape(n):
        return (channels,) + (n,) * spatial

    low = max(input_shape[1:])  # the largest side given does not fit, or the input would
    high = low * 2
    while not _fits(layers, shape(high)):
        if high >= LARGEST_SIDE_TRIED:
            return None
        low, high = high, min(high * 2, LARGEST_SIDE_TRIED)
    while high - low > 1:
        middle = (low + high) // 2
        if _fits(layers, shape(middle)):
            high = middle
        else:
            low = middle
    return shape(high)


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

    def fitted_summary(self, input_shape) -> Summary:
        """:meth:`summary` at ``input_shape``; a network that cannot take it raises :class:`InputTooSmall`,
        whose message names the layer and the sizes (``summarize``'s) and the smallest input that fits."""
        input_shape = _check_input_shape(input_shape)
        try:
            return summarize(self.layers, input_shape)
        except NetSpecError as error:
            smallest = smallest_input(self.layers, input_shape)
            hint = (f"; the smallest input the network takes is {_shape_text(smallest)}" if smallest is not None
                    else "")
            raise InputTooSmall(f"{error}{hint}", input_shape, smallest) from None

    def head_index(self) -> int | None:
        """The index in :attr:`layers` of the classifier head: the last Dense layer (``None`` without one).
        :meth:`adapted` checks that the layers after it (activations, dropout) keep its size."""
        for index in range(len(self.layers) - 1, -1, -1):
            if isinstance(self.layers[index], Dense):
                return index
        return None

    def adapted(self, input_shape=None, classes=None) -> Adapted:
        """This network made to take ``input_shape`` and to score ``classes`` classes, as ``cnn train`` fits a
        preset to the data.

        The input shape replaces :attr:`input_shape` (a network's layers take their channels from their input,
        so a preset for 3x224x224 runs on 1x32x32 where its windows fit). When the network does not end in
        ``classes`` scores, its head (:meth:`head_index`, the last Dense) gets ``classes`` units; each change is
        one line of :attr:`Adapted.changes`. Raises :class:`InputTooSmall` for an input the network cannot take
        and :class:`NetSpecError` for a network whose output cannot be made ``(classes,)``.
        """
        shape = self.input_shape if input_shape is None else _check_input_shape(input_shape)
        if shape is None:
            raise NetSpecError("this network has no input shape; give one (for example 1x28x28)")
        changes, layers = [], self.layers
        if self.input_shape is not None and shape != self.input_shape:
            changes.append(f"input {_shape_text(self.input_shape)} -> {_shape_text(shape)}")
        summary = dataclasses.replace(self, input_shape=shape).fitted_summary(shape)
        if classes is not None:
            if not is_int(classes) or not 1 <= classes <= LARGEST_INT:
                raise NetSpecError(f"invalid class count {format_value(classes)}: expected a positive int")
            output = summary.rows[-1].output_shape if summary.rows else shape
            if output != (classes,):
                layers = self._with_head(summary, classes)
                head = self.layers[self.head_index()]
                changes.append(f"head {summary.rows[self.head_index()].name}: {head.units} -> {classes} units "
                               f"(the data's classes)")
        return Adapted(dataclasses.replace(self, input_shape=shape, layers=layers), tuple(changes))

    def _with_head(self, summary: Summary, classes: int) -> tuple[Layer, ...]:
        index = self.head_index()
        output = _shape_text(summary.rows[-1].output_shape) if summary.rows else "its input"
        if index is None:
            raise NetSpecError(f"the network ends in {output}, not in {classes} class scores, and has no Dense "
                               f"layer to take them; end it in dense{classes}")
        layers = list(self.layers)
        layers[index] = dataclasses.replace(layers[index], units=classes)
        after = summarize(layers, summary.input_shape).rows[-1].output_shape
        if after != (classes,):
            raise NetSpecError(f"the network ends in {output}; with its last Dense layer "
                               f"({summary.rows[index].name}) made dense{classes} it ends in {_shape_text(after)}, "
                               f"not in {classes} class scores")
        return tuple(layers)

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
        """The network of a JSON document; every problem raises :class:`SpecParseError` naming the key or the
        layer (a document that is not an object, an unknown key, an empty layer list, a bad layer)."""
        if not isinstance(data, dict) or "layers" not in data or not isinstance(data["layers"], list):
            raise SpecParseError('a network file must be a JSON object {"input_shape": [...], "layers": [...]}')
        check_json_depth(data, "the network")
        unknown = sorted(map(str, set(data) - {"input_shape", "layers", "description"}))
        if unknown:
            raise SpecParseError(f"unknown key(s) in the network file: {', '.join(map(format_value, unknown))}")
        if not data["layers"]:
            raise SpecParseError('the network has no layers: "layers" is an empty list')
        description = data.get("description", "")
        if not isinstance(description, str):
            raise SpecParseError(f'"description" must be a string; received {format_value(description)}')
        layers = []
        for index, item in enumerate(data["layers"], start=1):
            try:
                layers.append(layer_from_dict(item))
            except (ValueError, TypeError) as error:
                raise SpecParseError(f"layer {index} of the JSON file: {error}") from None
        shape = data.get("input_shape")
        try:
            shape = None if shape is None else _check_input_shape(shape)
        except NetSpecError as error:
            raise SpecParseError(f'"input_shape": {error}') from None
        return cls(shape, tuple(layers), description)
