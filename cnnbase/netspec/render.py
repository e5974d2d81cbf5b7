"""Rendering: text from the data of a :class:`~cnnbase.netspec.summary.Summary`.

The ``cnn shape`` table (:func:`render_table`), the classic Keras ``model.summary()`` layout
(:func:`render_keras`, with each layer type's ``keras_class``), CSV and JSON. Nothing here computes a
number; the summary holds them all.
"""

from __future__ import annotations

import csv
import io
import json

from ..shapes import SPATIAL_AXES
from .formats import _ints_text, _shape_text, format_bytes, format_count, format_value
from .record import LAYER_TYPES
from .summary import Summary


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


def render_table(summary: Summary) -> str:
    """The ``cnn shape`` table: one line per layer, then the totals."""
    _check_summary(summary, "render_table")
    spatial = len(summary.input_shape) - 1
    axes = " x ".join(("C",) + SPATIAL_AXES[spatial]) if spatial else "features"
    header = ["#", "layer (type)", "output", "params", "non-trainable", "MACs", "RF", "jump", "start", "memory"]
    ones = (1,) * spatial
    input_row = ["0", "input", _shape_text(summary.input_shape), "", "", "", _axes_text(ones), _axes_text(ones),
                 _axes_text((0,) * spatial), format_bytes(summary.input_bytes)]
    table = [header, input_row]
    for row in summary.rows:
        table.append(
            [
                str(row.index),
                f"{row.name} ({row.type})",
                _shape_text(row.output_shape),
                format_count(row.trainable_params),
                format_count(row.non_trainable_params),
                format_count(row.macs),
                _axes_text(row.receptive_field),
                _axes_text(row.jump),
                _axes_text(row.start),
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


def render_keras(summary: Summary, *, model_name: str = "sequential") -> str:
    """The classic Keras ``model.summary()`` table (65 columns), with Keras' class names and shapes."""
    _check_summary(summary, "render_keras")
    if not isinstance(model_name, str) or not model_name.isprintable():
        error = ValueError if isinstance(model_name, str) else TypeError
        raise error(
            f"render_keras: argument `model_name` must be a printable str; received {format_value(model_name)}.")
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
    lines += [
        f"Total params: {format_count(summary.total_params)}",
        f"Trainable params: {format_count(summary.trainable_params)}",
        f"Non-trainable params: {format_count(summary.non_trainable_params)}",
        "_" * width,
    ]
    return "\n".join(lines)


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
