"""Where a network comes from: :func:`load_network` turns what ``cnn shape`` and ``--model`` are given
(a preset name, a ``.json`` file or a text spec) into a :class:`~cnnbase.netspec.network.Network`.

It is the one place that knows all three sources, so it sits above the grammar, the JSON file and the
presets; it tells apart a mistyped preset from a bad spec to give the more likely advice.

A ``.json`` file is read as a hostile one may be: at most ``CNN_MAX_FILE_BYTES`` of it
(:mod:`cnnbase.limits`), as UTF-8, and any document Python's reader cannot take (nested thousands deep,
an int of thousands of digits) is a :class:`SpecParseError` naming the file, never a traceback.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat

from ..checks import printable
from ..limits import check_bytes, limit
from .errors import SpecParseError
from .formats import format_value
from .grammar import _has_layer_head
from .text import parse_spec
from .network import Network
from .presets import PRESETS


def _read_text(source: str) -> str:
    """The text of a network file: refused past ``CNN_MAX_FILE_BYTES`` (read no further, so that ``/dev/zero``
    or a huge file cannot fill the memory) and when it is not UTF-8."""
    cap = limit("CNN_MAX_FILE_BYTES")
    try:
        # Non-blocking, so that a FIFO named like a network file is refused below instead of waited on.
        with os.fdopen(os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SpecParseError(f"cannot read {printable(source)}: it is not a regular file")
            data = handle.read(cap + 1)
    except OSError as error:
        raise SpecParseError(f"cannot read {printable(source)}: {error.strerror}") from None
    check_bytes(len(data), what=f"the network file {printable(source)} (at least)", name="CNN_MAX_FILE_BYTES")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecParseError(
            f"{printable(source)} is not UTF-8 text: byte 0x{data[error.start]:02x} at position {error.start}"
        ) from None


def _parse_json(source: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise SpecParseError(f"{printable(source)} is not valid JSON: {error.msg} at {where}") from None
    except RecursionError:
        raise SpecParseError(
            f"{printable(source)} is not a network file: its JSON is nested thousands of levels deep") from None
    except ValueError as error:  # an int of more than 4,300 digits (Python's limit on converting them)
        raise SpecParseError(f"{printable(source)} is not a network file: {error}") from None


def _load_json(source: str) -> Network:
    data = _parse_json(source, _read_text(source))
    try:
        return Network.from_dict(data)
    except SpecParseError as error:
        raise SpecParseError(f"{printable(source)}: {error}") from None


def _closest_presets(name: str) -> str:
    """``"; did you mean resnet50 or resnet56? (cnn shape --list lists all N)"``: the presets nearest to a
    mistyped name by :class:`difflib.SequenceMatcher`'s ratio (case ignored, so ``ResNet50`` finds ``resnet50``):
    at most three, each at least 0.7 and within 0.05 of the best, so that a near miss is not drowned by names
    that merely share ``net``; the full list only while it is short, since one line cannot hold dozens of names."""
    by_lower = {preset.lower(): preset for preset in PRESETS}
    ratios = {}
    for lower in by_lower:
        matcher = difflib.SequenceMatcher(None, name.lower(), lower)
        ratios[lower] = matcher.ratio()
    ranked = sorted((r, lower) for lower, r in ratios.items() if r >= 0.7)[::-1]
    close = [by_lower[lower] for r, lower in ranked[:3] if r >= ranked[0][0] - 0.05]
    if len(PRESETS) <= 6 and not close:
        return f"; presets: {', '.join(PRESETS)}"
    listing = f"cnn shape --list lists all {len(PRESETS)}"
    if not close:
        return f"; no preset has a close name ({listing})"
    choices = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"; did you mean {choices}? ({listing})"


def load_network(source: str) -> Network:
    """A preset name, a path to a ``.json`` network file, or a text spec (without input shape).

    Raises :class:`SpecParseError` for anything that does not describe a network, naming the file, the layer
    or the word; :class:`~cnnbase.limits.SizeLimitError` for a file larger than ``CNN_MAX_FILE_BYTES``.
    """
    if not isinstance(source, str):
        raise SpecParseError(
            f"a network is a preset name, a .json file or a text spec; received {type(source).__name__}")
    if source in PRESETS:
        return PRESETS[source]
    if source.endswith(".json"):
        return _load_json(source)
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", source):
        raise SpecParseError(f"unknown preset {format_value(source)}{_closest_presets(source)}")
    try:
        return Network(None, tuple(parse_spec(source)))
    except SpecParseError:
        # One bare word that is no layer: more likely a mistyped preset than a spec.
        if re.fullmatch(r"[A-Za-z][\w\-]{0,60}", source) and not _has_layer_head(source):
            raise SpecParseError(
                f"{source!r} is neither a preset nor a layer spec (grammar: specs/netspec.md){_closest_presets(source)}"
            ) from None
        raise
