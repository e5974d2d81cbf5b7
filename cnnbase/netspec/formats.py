"""How the package writes numbers, in one place so that messages, the text grammar and the tables agree.

Shapes as ``1x28x28``; per-axis ints as ``3`` when every axis agrees and ``3x5`` when not; counts with
thousands separators (``225,034``); byte sizes in binary units (``879.04 KiB``); a value read from a file or a
spec, in a message, as its repr cut short (:func:`format_value`), since a hostile one can be megabytes long.
"""

from __future__ import annotations

from ..limits import format_bytes  # noqa: F401  (the one writer of byte sizes; re-exported here)


def format_count(n: int) -> str:
    """``225034`` -> ``'225,034'``."""
    return f"{n:,}"


def _shape_text(shape) -> str:
    """``(1, 28, 28)`` -> ``'1x28x28'``."""
    return "x".join(str(n) for n in shape)


def _ints_text(values) -> str:
    """``(3, 3)`` -> ``'3'``, ``(3, 5)`` -> ``'3x5'``."""
    values = values if isinstance(values, tuple) else (values,)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def format_value(value, width: int = 80) -> str:
    """``repr(value)`` for a message, cut to about ``width`` characters (``...`` marks the cut).

    A value read from a hostile file can be megabytes long, and an int of more than 4,300 digits cannot be
    printed at all (Python refuses to convert it), so every value a message echoes from a file or a spec
    goes through here."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<an int of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a container holding an unprintable int, or nested too deep
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= width else text[: width - 3] + "..."


class _Cut(str):
    """A value's text that :func:`cnnbase.checks.invalid` shows as is (its ``repr`` is itself)."""

    def __repr__(self) -> str:
        return str(self)


def brief_value(value, width: int = 80):
    """``value`` itself when its repr is short (so that ``invalid()`` shows it as always), else its cut text."""
    text = format_value(value, width)
    return value if not text.endswith("...") and not text.startswith("<") else _Cut(text)
