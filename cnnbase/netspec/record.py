"""What every layer record is: the base class :class:`Layer`, the registry of layer types, the canonical
forms of arguments and the JSON round trip.

A layer record is a small frozen dataclass that holds a layer's arguments and no array. Two records
that mean the same thing compare equal (``kernel_size=3`` is ``(3, 3)``), because ``__post_init__``
stores every argument in one canonical form; :meth:`Layer.to_dict` writes the shortest equivalent JSON
and :func:`layer_from_dict` reads it back.

A subclass that sets its own ``type`` is a layer type: defining it adds it to :data:`LAYER_TYPES`, and
it states beside ``type`` its Keras class (``keras_class``, shown by ``render_keras`` and accepted as a
JSON type) and the base of its Keras default names (``keras_name``: ``conv2d``, ``conv2d_1``, ...). So a
new layer type is one class in :mod:`cnnbase.netspec.layers` (or :mod:`cnnbase.netspec.blocks`), not an
entry in several tables.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from .. import shapes
from ..checks import check_choice, invalid, is_int
from .errors import SpecParseError

#: Activations a layer may name; ``specs/activations.md`` defines them.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax")

#: Every layer type by its name in JSON and in ``Row.type``, blocks included, in the order the classes
#: are defined (:meth:`Layer.__init_subclass__` fills it).
LAYER_TYPES: dict[str, type] = {}


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


def _tuple(value):
    """JSON lists -> tuples, nested included, so that JSON and Python forms compare equal."""
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


def _json_value(value):
    """Tuples as JSON lists; ``(3, 3)`` as ``3``. Per-side padding pairs are never collapsed: ``[1, [0, 2]]``
    would mix the per-axis and per-side forms."""
    if not isinstance(value, tuple):
        return value
    if all(is_int(v) for v in value):
        collapsed = _collapse(value)
        return collapsed if is_int(collapsed) else list(value)
    return [list(v) for v in value]


def _check_activation(value, op: str):
    if value is None:
        return None
    return check_choice(value, "activation", op, ACTIVATIONS)


def _check_name(value, op: str):
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][\w.\-]*", value)):
        expected = "None or a word of letters, digits, '_', '.', '-' starting with a letter or '_'"
        raise ValueError(invalid(op, "name", expected, value))
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


# --------------------------------------------------------------------------------------------------
# The base of every layer record


@dataclass(frozen=True)
class Layer:
    """Base of every layer record. ``name`` is optional; :func:`summarize` names unnamed layers the way
    Keras does (``conv2d``, ``conv2d_1``, ...).

    A layer type sets three class attributes: ``type`` (its name in JSON, in the text of errors and in
    ``Row.type``), ``keras_class`` (the Keras class ``render_keras`` shows; also read as a JSON type) and
    ``keras_name`` (the base of its default names). Base classes set none of them.
    """

    _: KW_ONLY
    name: str | None = None

    type: ClassVar[str] = "Layer"
    keras_class: ClassVar[str]
    keras_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        """A class that sets its own ``type`` joins :data:`LAYER_TYPES`; it must set ``keras_class`` and
        ``keras_name`` beside it, so that a forgotten one fails where the class is written."""
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            return  # a base class (BaseConv, Block, ...): code shared by layer types, not a type
        missing = [attr for attr in ("keras_class", "keras_name") if attr not in cls.__dict__]
        if missing:
            raise TypeError(f"layer type {cls.type}: set {' and '.join(missing)} beside type")
        known = LAYER_TYPES.get(cls.type)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"layer type {cls.type}: already defined by {known.__module__}.{known.__qualname__}")
        LAYER_TYPES[cls.type] = cls

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

    @classmethod
    def _from_json(cls, data: dict) -> "Layer":
        """The record from its JSON object, whose ``type`` names this class: every other key is an argument
        (the inverse of :meth:`to_dict`). Blocks override it to read their nested layers."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        _refuse_unknown_keys(cls.type, data, allowed)
        kwargs = {key: _tuple(value) for key, value in data.items() if key != "type"}
        try:
            return cls(**kwargs)
        except TypeError as error:
            if "missing" in str(error):  # a required argument is absent: say which, in our words
                required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and not f.kw_only]
                needs = ", ".join(required)
                raise SpecParseError(f"{cls.type}: needs the key(s) {needs}; received {data!r}") from None
            raise


def _refuse_unknown_keys(kind: str, data: dict, allowed: list[str]) -> None:
    """Refuse the keys of ``data`` that are neither ``type`` nor in ``allowed`` (listed in the given order)."""
    unknown = [key for key in data if key != "type" and key not in allowed]
    if unknown:
        raise SpecParseError(
            f"{kind}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
        )


def layer_from_dict(data: dict) -> Layer:
    """Build a layer from its JSON form; Keras class names (``MaxPooling2D``) are accepted as types.
    Blocks (``Residual``, ``Concat``) hold their layers as nested lists of such objects."""
    if not isinstance(data, dict) or "type" not in data:
        raise SpecParseError(f"a layer must be a JSON object with a \"type\" key; received {data!r}")
    by_keras_class = {cls.keras_class: kind for kind, cls in LAYER_TYPES.items()}
    kind = by_keras_class.get(data["type"], data["type"])
    if kind not in LAYER_TYPES:
        raise SpecParseError(f"unknown layer type {data['type']!r}; known types: {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[kind]._from_json(data)
