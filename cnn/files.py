"""Files that survive a crash: atomic writes, and ``.npz`` archives of arrays plus one JSON document.

Every file the library writes goes through here: model files (:meth:`cnn.Model.save`), training checkpoints
(:mod:`cnn.checkpoint`), the metrics log and plot (:mod:`cnn.history`) and the run description
(:mod:`cnn.run`).

Every file is written to a temporary file in the destination's folder, flushed and fsynced, then moved
over the destination with ``os.replace`` (atomic on POSIX and Windows): a reader, or a run killed at any
instant, sees the old file or the new one, never half of one. Archives hold plain arrays and the JSON
text as a one-element string array under ``__json__``; they are read with ``allow_pickle=False``, so a
file cannot run code (``specs/training.md``).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile

import numpy as np

__all__ = ["atomic_write", "is_temporary_of", "write_json", "save_archive", "load_archive", "CheckpointError", "JSON_KEY"]

#: The archive entry that holds the JSON document.
JSON_KEY = "__json__"


class CheckpointError(ValueError):
    """A model, weights or checkpoint file that cannot be read or does not match; the message names the
    file and what differs."""


#: The temporary file of ``atomic_write(".../NAME", ...)`` is ``.NAME.<8 random characters>.tmp`` in the
#: same folder; a write killed before its rename leaves one behind (:func:`is_temporary_of` recognises it).
_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")  # what tempfile.mkstemp puts between the prefix and the suffix


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of ``data``.

    The new file gets the permissions a plain ``open(path, "wb")`` would give it: an existing file's mode,
    else ``0o666`` less the umask (``mkstemp`` alone would leave it ``0o600``). An ``OSError`` (a full
    disk, a read-only folder) names ``path`` as its ``filename``, never the temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        mode = _mode_for(path)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX + os.path.basename(path) + ".", suffix=_TEMP_SUFFIX,
                                    dir=folder)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            _set_mode(handle.fileno(), temp, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        if os.path.exists(temp):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    _fsync_folder(folder)


def is_temporary_of(filename: str, name: str) -> bool:
    """Whether ``filename`` (a bare name) is a temporary file :func:`atomic_write` makes for ``name``."""
    head = _TEMP_PREFIX + name + "."
    if not (filename.startswith(head) and filename.endswith(_TEMP_SUFFIX)):
        return False
    return _TEMP_RANDOM.fullmatch(filename[len(head):-len(_TEMP_SUFFIX)]) is not None


def _naming(error: OSError, path: str) -> OSError:
    """``error`` with ``path`` as its file name (``OSError(errno, ...)`` keeps the subclass: PermissionError...)."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror or str(error), path)


def _umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: str) -> int:
    """The permission bits the new ``path`` gets: those of the file it replaces, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _set_mode(fd: int, temp: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13: only the read-only flag means anything there
        os.chmod(temp, mode)


def _fsync_folder(folder: str) -> None:
    # The rename itself is durable only once the folder's entry is on disk; not possible on every OS.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path, document) -> None:
    """Atomically write ``document`` as indented JSON."""
    atomic_write(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


def save_archive(path, arrays: dict[str, np.ndarray], document: dict) -> None:
    """Atomically write ``arrays`` and the JSON ``document`` to one ``.npz`` file."""
    if JSON_KEY in arrays:
        raise ValueError(f"save_archive: the array name {JSON_KEY!r} is reserved for the JSON document")
    buffer = io.BytesIO()
    np.savez(buffer, **{JSON_KEY: np.array([json.dumps(document)])}, **arrays)
    atomic_write(path, buffer.getvalue())


def load_archive(path, what: str = "model file") -> tuple[dict[str, np.ndarray], dict]:
    """Read an archive written by :func:`save_archive`: ``(arrays, document)``.

    Read through :func:`cnn.safe_reading.read_npz`: only a regular file, every size checked before it is
    allocated or decompressed (``CNN_MAX_FILE_BYTES`` for the file and each member's declared size,
    ``CNN_MAX_ARRAY_BYTES`` for each array's header), object arrays refused from their headers.

    Raises :class:`CheckpointError` naming the file for anything that is not such an archive (a missing
    file, a folder or a FIFO, a truncated zip, a bad CRC, an object array, a JSON document that does not parse,
    is nested too deep, holds an integer of thousands of digits, or is not an object), and
    :class:`cnnbase.limits.SizeLimitError` for a size beyond a limit.
    """
    from cnnbase.checks import printable

    from .safe_reading import FileProblem, read_npz

    shown = printable(os.fspath(path))
    try:
        arrays = read_npz(path)
    except FileProblem as problem:
        if problem.found == "no such file":
            raise CheckpointError(f"{shown}: no such {what}") from None
        raise CheckpointError(f"{shown} is not a readable {what} (.npz): expected {problem.expected}; "
                              f"found {problem.found}") from None
    if JSON_KEY not in arrays:
        names = [printable(name) for name in list(arrays)[:5]]
        raise CheckpointError(f"{shown} is not a {what}: it has no {JSON_KEY!r} entry (entries: {names})")
    text = arrays.pop(JSON_KEY)
    if text.shape != (1,) or text.dtype.kind != "U":
        raise CheckpointError(f"{shown}: the {JSON_KEY!r} entry must be one string; received {text.dtype} {text.shape}")
    return arrays, _parse_document(shown, str(text[0]), what)


def _parse_document(shown: str, text: str, what: str) -> dict:
    """The archive's JSON document, which must be an object. ``json.loads`` raises more than
    JSONDecodeError on hostile text: ValueError for an integer of more than 4,300 digits, RecursionError for
    arrays nested thousands deep; every one is a CheckpointError naming the file."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{shown}: its JSON document is nested too deeply to read") from None
    except ValueError as error:  # JSONDecodeError, and the int digit limit
        raise CheckpointError(f"{shown}: its JSON document does not parse: {error}") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{shown}: its JSON document must be an object ({{...}}) for a {what}; received "
                              f"{type(document).__name__}")
    return document
