"""Blocks: layers made of paths of layers, each path run from the block's input.

:class:`Residual` (``act(body(x) + shortcut(x))``) and :class:`Concat` (parallel branches joined along
C) count as one layer of a network. A block infers its paths with the same walk as a whole network
(:mod:`cnnbase.netspec.summary`), which knows only the :class:`~cnnbase.netspec.record.Layer`
interface; so this module sits above the summary and nothing below imports it. Defining a block class
with its own ``type`` registers it in :data:`LAYER_TYPES` and :data:`BLOCK_TYPES`.

Blocks have a text form too, read and written by :mod:`cnnbase.netspec.text` (which sits above this
module): ``residual(conv8k3p1, bn | shortcut: conv8k1) relu``, ``concat(conv8k1 ; identity)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from ..checks import invalid
from ..shapes import SPATIAL_AXES
from .errors import NetSpecError, SpecParseError, _DoesNotFit
from .formats import brief_value, _shape_text, format_value
from .record import Inferred, Layer, _check_activation, _refuse_unknown_keys, _set, layer_from_dict

#: The block types and their registry; a new block type adds its name here.
__all__ = ["Block", "Residual", "Concat", "BLOCK_TYPES", "MAX_NESTING"]
from .summary import Summary, _infer_all, summarize

#: The block types by their name in JSON and in ``Row.type``, in the order the classes are defined
#: (:meth:`Block.__init_subclass__` fills it).
BLOCK_TYPES: dict[str, type] = {}

#: How many blocks may nest inside one another: far more than any network needs, and few enough that the
#: walks over a block's paths (shape inference, building, forward and backward) stay far from Python's
#: recursion limit.
MAX_NESTING = 32


def _layers_tuple(value, what: str, op: str) -> tuple:
    items = tuple(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(item, Layer) for item in items):
        raise TypeError(f"{op}: argument `{what}` must be a list of layer records; received {format_value(value)}.")
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
    :meth:`branch_summaries` gives the rows inside. Blocks are written in Python, JSON or text
    (``residual(...)``, ``concat(...)``: ``specs/netspec.md``, "Blocks in the text grammar").

    A subclass that sets its own ``type`` joins :data:`BLOCK_TYPES` as well as :data:`LAYER_TYPES`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            BLOCK_TYPES[cls.type] = cls

    def named_branches(self) -> dict[str, tuple]:
        """The paths by label, in order (``{"body": ..., "shortcut": ...}``); the labels name the
        runtime layers inside the block (``residual/body/conv2d``)."""
        raise NotImplementedError  # pragma: no cover - every block overrides it

    def nesting(self) -> int:
        """How many blocks deep this one goes: 1, plus the deepest block inside it."""
        inner = [layer.nesting() for layers in self.named_branches().values() for layer in layers
                 if isinstance(layer, Block)]
        return 1 + max(inner, default=0)

    def _check_shared(self):
        super()._check_shared()
        if self.nesting() > MAX_NESTING:
            raise ValueError(
                f"{self.type}: blocks nest more than {MAX_NESTING} deep inside it; a network needs far fewer")

    def branch_summaries(self, input_shape, **kwargs) -> dict[str, Summary]:
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
            for axis, axis_name in enumerate(SPATIAL_AXES[len(in_shape) - 1]):
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
    def _from_json(cls, data: dict) -> "Layer":
        """The block from its JSON object: its keys checked here, its paths read by ``_from_paths_json``."""
        _refuse_unknown_keys(cls.type, data, sorted(f.name for f in dataclasses.fields(cls)))
        return cls._from_paths_json(data)

    @classmethod
    def from_dict(cls, data: dict) -> "Layer":
        """The block from its JSON form (:meth:`to_dict`); nested layers through :func:`layer_from_dict`."""
        layer = layer_from_dict(data)
        if not isinstance(layer, cls):
            raise SpecParseError(f"expected a {cls.type} layer; received type {format_value(data.get('type'))}")
        return layer


def _branch_from_json(kind: str, items, what: str) -> list:
    if not isinstance(items, list):
        raise SpecParseError(f"{kind}: `{what}` must be a list of layers; received {format_value(items)}")
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
    # Keras has no block classes (a nested model shows as one row), so the blocks keep their own names.
    keras_class: ClassVar[str] = "Residual"
    keras_name: ClassVar[str] = "residual"

    def __post_init__(self):
        _set(self, "body", _layers_tuple(self.body, "body", self.type))
        _set(self, "shortcut", _layers_tuple(self.shortcut, "shortcut", self.type))
        if not self.body:
            raise ValueError(invalid(self.type, "body", "at least one layer", []))
        _check_activation(self.activation, self.type)
        self._check_shared()

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
    def _from_paths_json(cls, data: dict) -> "Residual":
        if "body" not in data:
            raise SpecParseError(f"Residual: needs the key body; received {format_value(data)}")
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
    keras_class: ClassVar[str] = "Concat"
    keras_name: ClassVar[str] = "concat"

    def __post_init__(self):
        raw = self.branches
        if not isinstance(raw, (list, tuple)) or len(raw) < 2:
            expected = "a list of at least 2 branches (each a list of layer records)"
            raise ValueError(invalid(self.type, "branches", expected, brief_value(raw)))
        _set(self, "branches", tuple(_layers_tuple(b, "branches", self.type) for b in raw))
        self._check_shared()

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
    def _from_paths_json(cls, data: dict) -> "Concat":
        if "branches" not in data or not isinstance(data["branches"], list):
            raise SpecParseError(
                f"Concat: needs the key branches (a list of lists of layers); received {format_value(data)}")
        branches = [_branch_from_json(cls.type, b, f"branch{i}") for i, b in enumerate(data["branches"])]
        return cls(branches, name=data.get("name"))
