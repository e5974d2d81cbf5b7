"""A network: a sample shape and its layers, and its JSON file ``{"input_shape": [...], "layers": [...]}``.

Each layer's JSON form is read by :func:`~cnnbase.netspec.record.layer_from_dict`, the inverse of
:meth:`~cnnbase.netspec.record.Layer.to_dict`; this module adds the file around the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NetSpecError, SpecParseError
from .record import Layer, layer_from_dict
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
