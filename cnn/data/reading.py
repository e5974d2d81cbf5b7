"""What the binary format readers share: a file's bytes, gunzipped when they are gzip, and the check that a
file's labels fit the class names.

IDX, CIFAR-10 and ``.npz`` readers all import this; it sits beside :mod:`cnn.data.dataset` and below them,
so no reader imports another to reach it.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .dataset import _fail


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip magic bytes (whatever its name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "a file", "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "a file", "a folder") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise _fail(path, "a complete gzip stream", f"a damaged or truncated one ({error})") from None


def _check_label_range(path, y: np.ndarray, num_classes: int) -> None:
    """Every label in ``0 .. num_classes - 1``, else a DataError naming the first one outside."""
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        raise _fail(path, f"labels in 0..{num_classes - 1}",
                    f"label {y[bad[0]]} at index {bad[0]} ({len(bad)} out of range)")
