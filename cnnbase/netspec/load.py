"""Where a network comes from: :func:`load_network` turns what ``cnn shape`` and ``--model`` are given
(a preset name, a ``.json`` file or a text spec) into a :class:`~cnnbase.netspec.network.Network`.

It is the one place that knows all three sources, so it sits above the grammar, the JSON file and the
presets; it tells apart a mistyped preset from a bad spec to give the more likely advice.
"""

from __future__ import annotations

import json
import re

from .errors import SpecParseError
from .grammar import parse_spec
from .network import Network
from .presets import PRESETS


def load_network(source: str) -> Network:
    """A preset name, a path to a ``.json`` network file, or a text spec (without input shape)."""
    if source in PRESETS:
        return PRESETS[source]
    if source.endswith(".json"):
        try:
            with open(source, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as error:
            raise SpecParseError(f"cannot read {source}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}"
            raise SpecParseError(f"{source} is not valid JSON: {error.msg} at {where}") from None
        try:
            return Network.from_dict(data)
        except SpecParseError as error:
            raise SpecParseError(f"{source}: {error}") from None
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", source):
        raise SpecParseError(f"unknown preset {source!r}; presets: {', '.join(PRESETS)}")
    try:
        return Network(None, tuple(parse_spec(source)))
    except SpecParseError:
        if re.fullmatch(r"[A-Za-z][\w\-]*", source):  # one bare word: more likely a mistyped preset
            raise SpecParseError(
                f"{source!r} is neither a preset ({', '.join(PRESETS)}) nor a layer spec (grammar: specs/netspec.md)"
            ) from None
        raise
