"""How the package writes numbers, in one place so that messages, the text grammar and the tables agree.

Shapes as ``1x28x28``; per-axis ints as ``3`` when every axis agrees and ``3x5`` when not; counts with
thousands separators (``225,034``); byte sizes in binary units (``879.04 KiB``).
"""

from __future__ import annotations


def format_count(n: int) -> str:
    """``225034`` -> ``'225,034'``."""
    return f"{n:,}"


def format_bytes(n: int) -> str:
    """Binary units: ``900136`` -> ``'879.04 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _shape_text(shape) -> str:
    """``(1, 28, 28)`` -> ``'1x28x28'``."""
    return "x".join(str(n) for n in shape)


def _ints_text(values) -> str:
    """``(3, 3)`` -> ``'3'``, ``(3, 5)`` -> ``'3x5'``."""
    values = values if isinstance(values, tuple) else (values,)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))
