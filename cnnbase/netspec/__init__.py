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
branches joined along C). They are written in Python, JSON (nested layer lists) or text
(``"residual(conv8k3p1, bn | shortcut: conv8k1) relu, concat(conv8k1 ; identity)"``).

The counting conventions (what is a parameter, what is a MAC, what the receptive field means) are those
of ``specs/counting.md``. Layers are numbered from 1, as ``cnn shape`` prints them.

The modules, bottom up; each imports only modules listed before it (and the rest of :mod:`cnnbase`):

* ``errors``: :class:`NetSpecError`, :class:`SpecParseError`;
* ``formats``: how shapes, counts and byte sizes are written (:func:`format_count`, :func:`format_bytes`), and
  values read from files in messages, cut short (:func:`format_value`, :func:`brief_value`);
* ``record``: the base :class:`Layer`, the registry :data:`LAYER_TYPES`, :class:`Inferred`, the canonical
  forms of arguments, the JSON round trip (:func:`layer_from_dict`);
* ``layers``: the layer types (:class:`Conv2D`, :class:`MaxPool2D`, :class:`Dense`, ...) and the shape
  inference of each;
* ``summary``: :class:`Row`, :class:`Summary`, :func:`summarize`, :func:`default_names`, the walk that
  carries the receptive field;
* ``blocks``: :class:`Block`, :class:`Residual`, :class:`Concat`, :data:`BLOCK_TYPES`;
* ``network``: :class:`Network` and its JSON file;
* ``grammar``: the words of each layer type in the text grammar, and :func:`parse_shape`;
* ``text``: the text of a whole network (items, blocks, repeats): :func:`parse_spec`, :func:`to_spec`;
* ``presets``: :data:`PRESETS`; ``load``: :func:`load_network`;
* ``render``: :func:`render_table`, :func:`render_keras`, :func:`render_connected`, :func:`render_csv`,
  :func:`render_json`; :func:`open_blocks` lists the layers inside blocks and what feeds each.

Adding a layer type touches, in this package:

1. ``layers.py``: its record, a frozen dataclass subclass of :class:`Layer` (or of a base such as
   :class:`BaseConv`) that sets the class attributes ``type``, ``keras_class`` and ``keras_name``, checks
   its arguments in ``__post_init__`` and returns an :class:`Inferred` from ``infer(shape)``. Defining the
   class registers it in :data:`LAYER_TYPES`, which gives it its JSON form, its Keras class name in
   :func:`render_keras`, its default names and its place in the summary. A block goes in ``blocks.py``
   instead, as a subclass of :class:`Block`, and joins :data:`BLOCK_TYPES` too. Its name goes in that
   module's ``__all__``, which is how ``cnnbase.netspec.X`` finds it.
2. ``grammar.py``, only if it has a text form: its one entry in ``_FORMS`` (the regex of its head word, the
   argument its main number sets, the function that writes it back, its hint in the unknown-layer message);
   a block's is one entry in ``_BLOCK_FORMS`` of ``text.py`` (its word, its path separator, how to build and
   split it).

Outside the package: the spec (``specs/netspec.md``), the runtime layer in :mod:`cnn`, and the tests.
"""

# Imported floor by floor, bottom up: the layer types register themselves in LAYER_TYPES as their modules
# are imported, so this order (layers before blocks) is the order of LAYER_TYPES.
from .errors import NetSpecError, SpecParseError
from .formats import brief_value, format_bytes, format_count, format_value
from .record import (
    ACTIVATIONS, LARGEST_INT, LAYER_TYPES, MAX_JSON_DEPTH, Inferred, Layer, check_json_depth, layer_from_dict,
)
from . import layers as _layers
from .layers import *  # noqa: F401,F403  (every record, by layers.__all__)
from .summary import Row, Summary, default_names, summarize
from . import blocks as _blocks
from .blocks import *  # noqa: F401,F403  (every block type, by blocks.__all__)
from .network import Adapted, InputTooSmall, Network, smallest_input
from .grammar import parse_shape
from .text import parse_spec, to_spec
from .presets import PRESETS
from .load import load_network
from .render import open_blocks, render_connected, render_csv, render_json, render_keras, render_table

__all__ = [
    "NetSpecError",
    "SpecParseError",
    "ACTIVATIONS",
    "Layer",
    *_layers.__all__,
    *_blocks.__all__,
    "Inferred",
    "LAYER_TYPES",
    "layer_from_dict",
    "check_json_depth",
    "LARGEST_INT",
    "MAX_JSON_DEPTH",
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
    "format_value",
    "brief_value",
    "render_table",
    "render_keras",
    "render_connected",
    "Adapted",
    "InputTooSmall",
    "smallest_input",
    "open_blocks",
    "render_csv",
    "render_json",
]
