"""CIFAR-10: one binary batch (:func:`read_cifar10_binary`), one Python batch through a restricted unpickler
(:func:`read_cifar10_pickle`, :class:`RestrictedUnpickler`), and the folder of either version
(:func:`load_cifar10`).

The Python version is a pickle, and ``pickle.load`` runs whatever the file asks for; here only the handful
of numpy reconstructors a pickled dict of arrays needs are admitted (``specs/data.md`` lists them).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .dataset import CIFAR10_CLASSES, Dataset, DataError, _check_class_names, _fail, _require_training_images
from .reading import _check_label_range, _read_bytes, _read_text

_CIFAR_SIDE = 32
_CIFAR_PIXELS = 3 * _CIFAR_SIDE * _CIFAR_SIDE
_CIFAR_RECORD = 1 + _CIFAR_PIXELS  # label byte, then 1024 red, 1024 green, 1024 blue bytes, row-major
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"


def read_cifar10_binary(path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch: records of 1 label byte + 3,072 pixel bytes.

    Returns ``x`` uint8 (N, 3, 32, 32) and ``y`` int64 (N,). The file length must be a positive multiple
    of 3,073 and every label below ``num_classes``.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) == 0 or len(data) % _CIFAR_RECORD:
        raise _fail(path, f"CIFAR-10 binary records of {_CIFAR_RECORD} bytes (1 label + {_CIFAR_PIXELS} pixels)",
                    f"{len(data)} bytes, {len(data) // _CIFAR_RECORD} records and {len(data) % _CIFAR_RECORD} "
                    f"bytes left over")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    y = records[:, 0].astype(np.int64)
    _check_label_range(path, y, num_classes)
    x = records[:, 1:].reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE).copy()
    return x, y


# What a pickled dict of numpy arrays, lists, bytes, str and ints needs, in NumPy 1.x and 2.x spellings.
# Everything else (os.system, builtins.eval, subprocess.Popen, ...) is refused before it is looked up.
_SAFE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1"); a pure text
    # transformation (PyTorch's weights_only unpickler admits it for the same reason).
    ("_codecs", "encode"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, strings, numbers and numpy arrays.

    ``find_class`` admits the handful of numpy reconstructors in ``_SAFE_GLOBALS`` and refuses every other
    global with :class:`DataError`, so a pickle that would call ``os.system`` stops before anything runs.
    """

    def __init__(self, file, *, path="<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self._path = path

    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise _fail(self._path, "a pickle of plain dicts, lists, bytes, str, ints and numpy arrays",
                        f"a reference to {module}.{name}, which is refused (loading it could run code)")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise _fail(self._path, "a pickle without persistent ids", f"persistent id {pid!r}")


def _restricted_load(path: Path):
    data = _read_bytes(path)
    try:
        # encoding="bytes": CIFAR's pickles come from Python 2, whose str keys arrive as bytes.
        return RestrictedUnpickler(io.BytesIO(data), path=path, encoding="bytes").load()
    except DataError:
        raise
    except Exception as error:  # a damaged pickle can raise almost anything; name the file instead
        raise _fail(path, "a complete pickle", f"{type(error).__name__}: {error}") from None


def _get(batch: dict, key: str):
    """CIFAR's dict keys are bytes (written by Python 2); accept str keys too."""
    return batch[key.encode()] if key.encode() in batch else batch.get(key)


def read_cifar10_pickle(path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 Python batch (a pickled dict with ``data`` (N, 3072) uint8 and ``labels``).

    Uses :class:`RestrictedUnpickler`. Returns ``x`` uint8 (N, 3, 32, 32) and ``y`` int64 (N,).
    """
    path = Path(path)
    batch = _restricted_load(path)
    if not isinstance(batch, dict):
        raise _fail(path, "a pickled dict with keys data and labels", type(batch).__name__)
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _fail(path, f"`data` as a uint8 array (N, {_CIFAR_PIXELS})", found)
    y = _pickled_labels(path, labels, len(data))
    _check_label_range(path, y, num_classes)
    return data.reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE).copy(), y.astype(np.int64)


def _pickled_labels(path: Path, labels, count: int) -> np.ndarray:
    """``labels`` as a 1-D integer array of ``count`` labels, from a list of ints or an integer array.

    The list is checked item by item before numpy sees it: ``np.asarray`` on a hostile pickle's list (lists
    nested through shared references, ints of 1,000 digits) could otherwise try to build an astronomically
    large array.
    """
    expected = f"`labels` as {count} ints, one per row of `data`"
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != count:
            raise _fail(path, expected, f"an array of {labels.dtype} of shape {labels.shape}")
        return labels
    if not isinstance(labels, list) or len(labels) != count:
        found = f"a list of {len(labels)}" if isinstance(labels, list) else type(labels).__name__
        raise _fail(path, expected, found)
    for index, value in enumerate(labels):
        if type(value) is not int or not 0 <= value < 2**63:
            shown = value if type(value) is int and abs(value) < 10**30 else type(value).__name__
            raise _fail(path, expected, f"{shown} at index {index}")
    return np.array(labels, dtype=np.int64)


def _present(path: Path) -> bool:
    """An entry of that name, whatever it is (a FIFO or a broken link too): reading it then says what is wrong."""
    return path.is_symlink() or path.exists()


def _cifar_layout(folder: Path) -> str | None:
    """'binary', 'python' or None, from the file names the two CIFAR-10 archives unpack to."""
    if (folder / "data_batch_1.bin").is_file() or (folder / "test_batch.bin").is_file():
        return "binary"
    if (folder / "data_batch_1").is_file() or (folder / "batches.meta").is_file():
        return "python"
    return None


def _cifar_class_names(folder: Path, layout: str) -> tuple[str, ...]:
    if layout == "binary":
        meta = folder / "batches.meta.txt"
        if not _present(meta):
            return CIFAR10_CLASSES
        names = tuple(line.strip() for line in _read_text(meta).splitlines() if line.strip())
    else:
        meta = folder / "batches.meta"
        if not _present(meta):
            return CIFAR10_CLASSES
        content = _restricted_load(meta)
        raw = _get(content, "label_names") if isinstance(content, dict) else None
        if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
            raise _fail(meta, "a pickled dict with `label_names`, a list of strings", repr(type(raw).__name__))
        names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw)
    if len(names) != 10:
        raise _fail(meta, "the 10 CIFAR-10 class names", f"{len(names)} names")
    return _check_class_names(meta, names)


def load_cifar10(folder) -> Dataset:
    """Load CIFAR-10 from the folder of its binary or Python version.

    Binary: ``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin`` (``batches.meta.txt`` for the
    class names, optional). Python: ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` (``batches.meta``),
    read only through :class:`RestrictedUnpickler`. A folder holding ``cifar-10-batches-bin`` or
    ``cifar-10-batches-py`` (what the archives unpack to) works too. All six batches are required.
    """
    folder = _cifar_folder(Path(folder))
    layout = _cifar_layout(folder)
    if layout is None:
        raise _fail(folder, "CIFAR-10 batches (data_batch_1.bin .. or the Python version's data_batch_1 ..)",
                    "none")
    suffix, read = (".bin", read_cifar10_binary) if layout == "binary" else ("", read_cifar10_pickle)
    paths = [folder / (stem + suffix) for stem in (*_CIFAR_TRAIN, _CIFAR_TEST)]
    missing = [p.name for p in paths if not _present(p)]
    if missing:
        raise _fail(folder, f"the 6 CIFAR-10 batches ({layout} version)", f"no {', '.join(missing)}")
    class_names = _cifar_class_names(folder, layout)
    parts = [read(p, len(class_names)) for p in paths]
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    _require_training_images(folder / (_CIFAR_TRAIN[0] + suffix), y_train)
    x_test, y_test = parts[-1]
    return Dataset(x_train, y_train, x_test, y_test, class_names, "cifar-10",
                   f"CIFAR-10 {layout} version in {folder}")


def _cifar_folder(folder: Path) -> Path:
    if _cifar_layout(folder) is None:
        for sub in ("cifar-10-batches-bin", "cifar-10-batches-py"):
            if _cifar_layout(folder / sub) is not None:
                return folder / sub
    return folder
