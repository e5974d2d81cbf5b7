"""A network: a sample shape and its layers, and its JSON file ``{"input_shape": [...], "layers": [...]}``.

Each layer's JSON form is read by :func:`~cnnbase.netspec.record.layer_from_dict`, the inverse of
:meth:`~cnnbase.netspec.record.Layer.to_dict`; this module adds the file around the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NetSpecError, SpecParseError
from .formats import format_value
from .record import Layer, check_json_depth, layer_from_dict
from .summary import Summary, _check_input_shape, summarize


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
