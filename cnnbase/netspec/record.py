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
from ..checks import INT64_MAX, check_choice, invalid, is_int
from .errors import SpecParseError
from .formats import brief_value, format_value

#: Activations a layer may name; ``specs/activations.md`` defines them.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax")

#: The largest int a description may hold (a count, a size, a padding, a stride): int64's largest, the
#: largest size a NumPy axis can have. ``cnn shape`` counts networks of any size below it; a larger number
#: is a mistake or an attack, and refused where it is read.
LARGEST_INT = INT64_MAX

#: How deep lists and objects may nest in the JSON form of a network or a model: far beyond any network
#: (each nested block takes two levels) and far below Python's recursion limit, so that no reader recurses
#: into a hostile document until it crashes.
MAX_JSON_DEPTH = 100

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


#: The longest layer name: a name is shown in every table and message about its layer.
MAX_NAME_LENGTH = 200


def _check_name(value, op: str):
    """A layer's name is one printable word (it names the layer in messages, tables and files)."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_LENGTH
                              or not re.fullmatch(r"[A-Za-z_][\w.\-]*", value)):
        expected = (f"None or a word of letters, digits, '_', '.', '-' starting with a letter or '_' (at most "
                    f"{MAX_NAME_LENGTH} characters)")
        raise ValueError(invalid(op, "name", expected, brief_value(value)))
    return value


def _ints_in(value):
    """Every int in an argument: the value itself, or the items of a (nested) tuple such as a padding."""
    if isinstance(value, tuple):
        for item in value:
            yield from _ints_in(item)
    elif is_int(value):
        yield value


def _check_int_bounds(layer) -> None:
    """Refuse an argument holding an int beyond :data:`LARGEST_INT` (``Dense(10**30)``): ``cnn shape`` could
    count it, but no array could ever have such an axis, and its digits could not even be printed."""
    for f in dataclasses.fields(layer):
        value = getattr(layer, f.name)
        if any(abs(n) > LARGEST_INT for n in _ints_in(value)):
            raise ValueError(
                f"{layer.type}: invalid value for argument `{f.name}`. Expected sizes up to 2**63-1 (int64). "
                f"Received {f.name}={format_value(value)}."
            )


def check_json_depth(document, where: str) -> None:
    """Refuse a JSON document (lists and dicts) nested more than :data:`MAX_JSON_DEPTH` levels deep, without
    recursing: ``where`` names it in the :class:`SpecParseError` (``"the network file x.json"``)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_JSON_DEPTH:
                raise SpecParseError(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep; a network needs far "
                                     "fewer (each nested block takes two)")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


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

    def _check_shared(self):
        """The checks every record makes at the end of ``__post_init__``: its name is one printable word, and
        no argument holds an int beyond :data:`LARGEST_INT`."""
        _check_name(self.name, self.type)
        _check_int_bounds(self)

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
                raise SpecParseError(f"{cls.type}: needs the key(s) {needs}; received {format_value(data)}") from None
            raise


def _refuse_unknown_keys(kind: str, data: dict, allowed: list[str]) -> None:
    """Refuse the keys of ``data`` that are neither ``type`` nor in ``allowed`` (listed in the given order)."""
    unknown = [key for key in data if key != "type" and key not in allowed]
    if unknown:
        raise SpecParseError(
            f"{kind}: unknown key(s) {', '.join(format_value(key) for key in unknown)}; "
            f"allowed keys: {', '.join(allowed)}"
        )


def layer_from_dict(data: dict) -> Layer:
    """Build a layer from its JSON form; Keras class names (``MaxPooling2D``) are accepted as types.
    Blocks (``Residual``, ``Concat``) hold their layers as nested lists of such objects.

    Anything else raises :class:`SpecParseError` (or ``ValueError``/``TypeError`` from the record's own
    checks): a value that is not an object, a ``type`` that is not a known name, a document nested more than
    :data:`MAX_JSON_DEPTH` levels deep."""
    if not isinstance(data, dict) or "type" not in data:
        raise SpecParseError(f"a layer must be a JSON object with a \"type\" key; received {format_value(data)}")
    check_json_depth(data, "the layer")
    if not isinstance(data["type"], str):
        raise SpecParseError(
            f"a layer's \"type\" must be a string such as \"Conv2D\"; received {format_value(data['type'])}")
    by_keras_class = {cls.keras_class: kind for kind, cls in LAYER_TYPES.items()}
    kind = by_keras_class.get(data["type"], data["type"])
    if kind not in LAYER_TYPES:
        raise SpecParseError(f"unknown layer type {format_value(data['type'])}; known types: {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[kind]._from_json(data)
