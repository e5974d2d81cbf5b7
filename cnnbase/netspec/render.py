"""Rendering: text from the data of a :class:`~cnnbase.netspec.summary.Summary`.

The ``cnn shape`` table (:func:`render_table`), the classic Keras ``model.summary()`` layout
(:func:`render_keras`, with each layer type's ``keras_class``), CSV and JSON. Nothing here computes a
number; the summary holds them all.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from ..checks import is_int
from ..shapes import SPATIAL_AXES
from .blocks import Block
from .formats import _ints_text, _shape_text, format_bytes, format_count, format_value
from .record import LAYER_TYPES
from .summary import Row, Summary, register_table_renderer


def _axes_text(values: tuple[int, ...]) -> str:
    return "-" if not values else _ints_text(values)


def _align(table: list[list[str]], left: set[int]) -> list[str]:
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [cell.ljust(w) if c in left else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _check_summary(summary, op: str) -> None:
    if not isinstance(summary, Summary):
        raise TypeError(
            f"{op}: argument `summary` must be a Summary (from summarize); received {type(summary).__name__}.")


# --------------------------------------------------------------------------------------------------
# Opening blocks: the layers inside, and what feeds what


@dataclass(frozen=True)
class Entry:
    """One line of an opened summary: a row, the path that names it, and the layers that feed it.

    ``name`` is the runtime name (``residual_1/body/conv2d``, as ``Model.get_layer`` takes it); ``level`` is
    how many blocks it sits in; ``inputs`` the names of the layers whose outputs it takes (``"input"`` for the
    network's input): the previous layer on its path, or for an opened block, the last layer of each path
    (the block's own input for an identity shortcut), which the block's join adds or concatenates.
    ``opened`` says the layers inside a block follow (table) or precede (connected view) its row.
    """

    label: str
    name: str
    row: Row
    level: int
    inputs: tuple[str, ...]
    opened: bool = False


def _check_depth(depth, op: str) -> int:
    if not is_int(depth) or depth < -1:
        raise ValueError(f"{op}: argument `depth` must be an int >= -1 (-1: every level); received "
                         f"{format_value(depth)}.")
    return int(depth)


def open_blocks(summary: Summary, depth: int = -1, *, joins_last: bool = False) -> list[Entry]:
    """The entries of ``summary`` with ``depth`` levels of blocks opened (``-1``: all, ``0``: none).

    A block's inner rows come from :meth:`~cnnbase.netspec.blocks.Block.branch_summaries` at the block's
    input shape, so their receptive fields count from the block's input, not the network's. With
    ``joins_last`` a block's row follows the layers inside it (the order data flows, as Keras lists a
    functional model); otherwise it heads them.
    """
    _check_summary(summary, "open_blocks")
    depth = _check_depth(depth, "open_blocks")
    return _open(summary, depth, "", "input", 0, "", joins_last)


def _open(summary: Summary, depth: int, prefix: str, source: str, level: int, label_prefix: str,
          joins_last: bool) -> list[Entry]:
    entries: list[Entry] = []
    layers = summary.layers if len(summary.layers) == len(summary.rows) else (None,) * len(summary.rows)
    shape = summary.input_shape
    for row, layer in zip(summary.rows, layers):
        name, label = prefix + row.name, label_prefix + str(row.index)
        if depth == 0 or not isinstance(layer, Block):
            entries.append(Entry(label, name, row, level, (source,)))
        else:
            inner, ends = [], []
            paths = layer.branch_summaries(shape, batch_size=summary.batch_size, dtype_bytes=summary.dtype_bytes)
            for path, sub in paths.items():
                sub_prefix = f"{name}/{path}/"
                inner += _open(sub, depth - 1, sub_prefix, source, level + 1, f"{label}.{path}.", joins_last)
                ends.append(sub_prefix + sub.rows[-1].name if sub.rows else source)
            head = Entry(label, name, row, level, tuple(ends), opened=True)
            entries += inner + [head] if joins_last else [head] + inner
        source, shape = name, row.output_shape
    return entries


def render_table(summary: Summary, *, depth: int = 0) -> str:
    """The ``cnn shape`` table: one line per layer, then the totals.

    ``depth`` levels of blocks are opened (``-1``: all; ``cnn shape --expand``/``--depth N``): the layers
    inside a block follow its row, indented and named by their path (``residual/body/conv2d``). Their
    parameters are already in the block's row, so the totals count each once; their receptive-field columns
    are left empty (they would count from the block's input, not the network's).
    """
    _check_summary(summary, "render_table")
    depth = _check_depth(depth, "render_table")
    spatial = len(summary.input_shape) - 1
    axes = " x ".join(("C",) + SPATIAL_AXES[spatial]) if spatial else "features"
    header = ["#", "layer (type)", "output", "params", "non-trainable", "MACs", "RF", "jump", "start", "memory"]
    ones = (1,) * spatial
    input_row = ["0", "input", _shape_text(summary.input_shape), "", "", "", _axes_text(ones), _axes_text(ones),
                 _axes_text((0,) * spatial), format_bytes(summary.input_bytes)]
    table = [header, input_row]
    for entry in open_blocks(summary, depth):
        row, top = entry.row, entry.level == 0
        table.append(
            [
                entry.label if entry.level == 0 else "",
                "  " * entry.level + f"{entry.name} ({row.type})",
                _shape_text(row.output_shape),
                format_count(row.trainable_params),
                format_count(row.non_trainable_params),
                format_count(row.macs),
                _axes_text(row.receptive_field) if top else "",
                _axes_text(row.jump) if top else "",
                _axes_text(row.start) if top else "",
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


register_table_renderer(render_table)


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


def _check_model_name(model_name, op: str) -> None:
    if not isinstance(model_name, str) or not model_name.isprintable():
        error = ValueError if isinstance(model_name, str) else TypeError
        raise error(f"{op}: argument `model_name` must be a printable str; received {format_value(model_name)}.")


def _keras_totals(summary: Summary, width: int) -> list[str]:
    return [
        f"Total params: {format_count(summary.total_params)}",
        f"Trainable params: {format_count(summary.trainable_params)}",
        f"Non-trainable params: {format_count(summary.non_trainable_params)}",
        "_" * width,
    ]


def render_connected(summary: Summary, *, model_name: str = "model", depth: int = -1) -> str:
    """The Keras functional-model summary (98 columns) with its "Connected to" column: which layer feeds which.

    Blocks are opened ``depth`` levels (``-1``: all) and listed in the order data flows: the layers of each
    path, each connected to the one before it (the first to the block's input), then the block's row, the
    join (an ``Add`` or ``Concatenate`` in Keras), connected to the last layer of every path; an identity
    shortcut shows as the block's input itself. Inbound layers beyond the first get lines of their own, as
    Keras prints them. Param # of an opened block's row is the sum over its inner rows (shown above it), so
    the totals count every weight once.
    """
    _check_summary(summary, "render_connected")
    _check_model_name(model_name, "render_connected")
    entries = open_blocks(summary, depth, joins_last=True)
    cells = [(f"{e.name} ({LAYER_TYPES[e.row.type].keras_class})", [f"{name}[0][0]" for name in e.inputs])
             for e in entries]
    # Keras' columns (98 wide), widened where a path name or an inbound name would be cut: a cut name
    # would hide which layer feeds which.
    first = max([32] + [len(name) + 1 for name, _ in cells])
    last = max([33] + [len(feed) + 1 for _, feeds in cells for feed in feeds])
    positions = [first, first + 21, first + 33, first + 33 + last]
    width = positions[-1]
    header = _keras_row(["Layer (type)", "Output Shape", "Param #", "Connected to"], positions).rstrip()
    lines = [f'Model: "{model_name}"', "_" * width, header, "=" * width]
    lines += [_keras_row(["input (InputLayer)", _keras_shape(summary.input_shape), "0", ""], positions).rstrip(),
              "_" * width]
    for i, (entry, (name, feeds)) in enumerate(zip(entries, cells)):
        fields = [name, _keras_shape(entry.row.output_shape), str(entry.row.params), feeds[0]]
        lines.append(_keras_row(fields, positions).rstrip())
        lines += [" " * positions[2] + feed for feed in feeds[1:]]
        lines.append("=" * width if i == len(entries) - 1 else "_" * width)
    if not entries:
        lines.append("=" * width)
    return "\n".join(lines + _keras_totals(summary, width))


def render_keras(summary: Summary, *, model_name: str = "sequential") -> str:
    """The classic Keras ``model.summary()`` table (65 columns), with Keras' class names and shapes."""
    _check_summary(summary, "render_keras")
    _check_model_name(model_name, "render_keras")
    positions, width = [29, 55, 65], 65
    header = _keras_row(["Layer (type)", "Output Shape", "Param #"], positions)
    lines = [f'Model: "{model_name}"', "_" * width, header, "=" * width]
    for i, row in enumerate(summary.rows):
        keras_class = LAYER_TYPES[row.type].keras_class
        fields = [f"{row.name} ({keras_class})", _keras_shape(row.output_shape), str(row.params)]
        lines.append(_keras_row(fields, positions))
        lines.append("=" * width if i == len(summary.rows) - 1 else "_" * width)
    if not summary.rows:
        lines.append("=" * width)
    return "\n".join(lines + _keras_totals(summary, width))


_CSV_COLUMNS = [
    "index", "name", "type", "output_shape", "trainable_params", "non_trainable_params", "params", "macs",
    "receptive_field", "jump", "start", "activation_bytes",
]


def render_csv(summary: Summary) -> str:
    """One row per layer; tuples are written ``26x26`` (the shape as ``32x26x26``)."""
    _check_summary(summary, "render_csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in summary.rows:
        data = row.to_dict()
        writer.writerow(["x".join(map(str, data[c])) if isinstance(data[c], list) else data[c] for c in _CSV_COLUMNS])
    return buffer.getvalue()


def render_json(summary: Summary) -> str:
    """The rows and totals of :meth:`Summary.to_dict` as indented JSON."""
    _check_summary(summary, "render_json")
    return json.dumps(summary.to_dict(), indent=2)
