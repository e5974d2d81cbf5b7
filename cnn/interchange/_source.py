"""How every interchange reader opens the file it is given (``.safetensors``, ``.pt``, ``.keras``)."""

from __future__ import annotations

import io
import os

from cnnbase.limits import check_bytes

from ..files import CheckpointError
from ..safe_reading import FileProblem, open_regular_file


def open_source(path, shown: str) -> tuple[io.BufferedReader, int]:
    """``(handle, size)`` of ``path`` opened for binary reading. A path that is not a readable regular file
    is a :class:`~cnn.files.CheckpointError` naming it as ``shown``; a file over ``CNN_MAX_FILE_BYTES`` a
    :class:`~cnnbase.limits.SizeLimitError`, raised before a byte is read."""
    try:
        handle = open_regular_file(path)
    except FileProblem as problem:
        raise CheckpointError(f"{shown}: cannot read it: {problem.found}") from None
    try:
        size = os.fstat(handle.fileno()).st_size
        check_bytes(size, what=f"{shown}: the file", name="CNN_MAX_FILE_BYTES")
    except BaseException:
        handle.close()
        raise
    return handle, size
