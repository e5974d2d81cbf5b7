"""What the format readers share: a file's bytes (gunzipped when they are gzip) and a folder's entries, read
within the size limits and worded as :class:`~cnn.data.dataset.DataError`; the check that a file's labels fit
the class names; the bound on the class count inferred from labels.

IDX, CIFAR-10, ``.npz`` and image readers all import this; it sits beside :mod:`cnn.data.dataset` and below
them, so no reader imports another to reach it. The bounded reading itself is :mod:`cnn.safe_reading`'s.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ..safe_reading import FileProblem, open_regular_file, read_file, read_npz
from .dataset import MAX_CLASSES, DataError, _fail

#: Without class names, a data set may have up to this many classes whatever its number of labels; beyond it,
#: the inferred class count (the largest label + 1) must not exceed the number of labels in the file.
INFERRED_CLASSES_FREE = 1024


def _data_error(problem: FileProblem) -> DataError:
    return _fail(problem.path, problem.expected, problem.found)


@contextlib.contextmanager
def _as_data_errors():
    """Inside, a :class:`FileProblem` from :mod:`cnn.safe_reading` becomes a :class:`DataError` (same text)."""
    try:
        yield
    except FileProblem as problem:
        raise _data_error(problem) from None


def _read_bytes(path: Path) -> bytes:
    """The content of a regular file, decompressed when it starts with the gzip magic bytes (whatever its
    name); :class:`DataError` for what is not a readable regular file, ``SizeLimitError`` beyond the limits."""
    with _as_data_errors():
        return read_file(path)


def _read_text(path: Path) -> str:
    """A small text file (CIFAR's ``batches.meta.txt``), undecodable bytes replaced."""
    return _read_bytes(path).decode("utf-8", "replace")


def _read_npz(path: Path, names) -> dict:
    with _as_data_errors():
        return read_npz(path, names)


def _open_regular(path: Path):
    """A regular file opened for reading (never a FIFO, a device or a folder), else a DataError saying what it is."""
    with _as_data_errors():
        return open_regular_file(path)


def _entries(folder: Path) -> list[Path]:
    """The entries of a folder, sorted by name; :class:`DataError` when it cannot be listed."""
    try:
        return sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name))
    except OSError as error:
        reason = "no permission to list it" if isinstance(error, PermissionError) else (error.strerror or str(error))
        raise _fail(folder, "a readable folder", reason) from None


def _check_label_range(path, y: np.ndarray, num_classes: int, key: str = "") -> None:
    """Every label in ``0 .. num_classes - 1``, else a DataError naming the first one outside, its true value
    (read in the file's own dtype, so a uint64 2**64 - 1 is not reported as -1) and its index."""
    bad = np.flatnonzero((y < 0) | (y > num_classes - 1))
    if len(bad):
        where = f" of `{key}`" if key else ""
        raise _fail(path, f"labels in 0..{num_classes - 1}",
                    f"label {int(y[bad[0]])} at index {int(bad[0])}{where} ({len(bad)} out of range)")


def _inferred_class_count(path, labels: dict[str, np.ndarray]) -> int:
    """The class count of a file without class names: its largest label + 1, bounded so that a hostile label
    (10**9) does not build a billion class names. ``labels`` by key; every label is already >= 0."""
    total = sum(len(y) for y in labels.values())
    bound = min(MAX_CLASSES, max(INFERRED_CLASSES_FREE, total))
    for key, y in labels.items():
        if len(y) and int(y.max()) >= bound:
            index = int(np.argmax(y))
            raise _fail(path, f"labels below {bound:,} when the file has no class names (at most "
                              f"{MAX_CLASSES:,} classes, and no more than {INFERRED_CLASSES_FREE:,} unless the file "
                              f"has as many labels); store `class_names` in the file to use more",
                        f"label {int(y[index])} at index {index} of `{key}`")
    return max([int(y.max()) for y in labels.values() if len(y)], default=0) + 1
