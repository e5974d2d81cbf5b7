"""Data sets for training: loaders that check what they read, the embedded sample, batching.

Every loader returns a :class:`Dataset` whose images are ``(N, C, H, W)`` arrays (uint8, or float32 in
[0, 1]) and whose labels are int64 in ``0 .. len(class_names) - 1``. Anything wrong with a file (truncated,
malformed, inconsistent, unsafe) raises :class:`DataError`, whose message names the file, what was expected
and what was found. The formats and the checks are written down in ``specs/data.md``.

Formats:

* MNIST / Fashion-MNIST IDX files, gzipped or not (:func:`read_idx`, :func:`load_idx_folder`);
* CIFAR-10, binary version, and Python version through a restricted unpickler (:func:`load_cifar10`);
* ``.npz`` files with ``x_train, y_train, x_test, y_test`` (:func:`load_npz`);
* image folders ``root/<class>/*.png`` or ``root/{train,test}/<class>/*.png`` (:func:`load_image_folder`);
* the names ``"fashion-mnist"``, ``"fashion-mnist-small"`` (shipped in the package) and ``"default"``
  (:func:`load_dataset`).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "DIGIT_CLASSES",
    "CIFAR10_CLASSES",
    "DEBIAN_FASHION_MNIST_DIR",
    "DATA_DIR_ENV",
    "EMBEDDED_SAMPLE",
    "read_idx",
    "load_idx_folder",
    "read_cifar10_binary",
    "read_cifar10_pickle",
    "RestrictedUnpickler",
    "load_cifar10",
    "load_npz",
    "load_image_folder",
    "load_embedded_sample",
    "find_fashion_mnist",
    "load_dataset",
    "to_float",
    "batches",
    "validation_split",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DATA_DIR_ENV = "CNN_DATA_DIR"
EMBEDDED_SAMPLE = Path(__file__).resolve().parent / "datasets" / "fashion-mnist-small.npz"


class DataError(ValueError):
    """A data file or folder that is missing, truncated, malformed, inconsistent or unsafe to read."""


def _fail(path, expected: str, found: str) -> DataError:
    """The one message template: the file, what was expected, what was found."""
    return DataError(f"{path}: expected {expected}; found {found}.")


# --------------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and test images with their labels.

    Shapes: ``x_train`` (N, C, H, W), ``y_train`` (N,), ``x_test`` (N_test, C, H, W), ``y_test`` (N_test,).
    ``x_*`` are uint8 (0..255) or float32 (in [0, 1]); ``y_*`` are int64 in ``0 .. len(class_names) - 1``.
    The test split may be empty (N_test = 0) when the source has none.

    ``name`` is a short identifier (``"fashion-mnist"``, ``"fashion-mnist-small"``, a file or folder name);
    ``source`` says where the data came from, in words, for the command line to print.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    name: str
    source: str

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        _check_split(self, "train")
        _check_split(self, "test")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"Dataset {self.name}: training and test images differ in shape (C, H, W): "
                f"x_train {self.x_train.shape}, x_test {self.x_test.shape}."
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` training images (the command line's ``--limit``); the test split is kept."""
        if n is None:
            return self
        available = len(self.y_train)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= available:
            raise ValueError(
                f"Dataset.limit: invalid value for argument `limit`. Expected an int from 1 to {available} "
                f"(the number of training images of {self.name}). Received limit={n!r}."
            )
        return dataclasses.replace(self, x_train=self.x_train[:n], y_train=self.y_train[:n])

    def describe(self) -> str:
        c, h, w = self.image_shape
        return (
            f"{self.name}: {len(self.y_train):,} training and {len(self.y_test):,} test images of "
            f"{c}x{h}x{w}, {self.num_classes} classes ({self.source})"
        )


def _check_split(ds: Dataset, split: str) -> None:
    """Invariants every loader guarantees; a failure here is a bug in a loader, not in a file."""
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    where = f"Dataset {ds.name}"
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype not in (np.uint8, np.float32):
        raise ValueError(f"{where}: x_{split} must be a uint8 or float32 array (N, C, H, W); received "
                         f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}.")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
        raise ValueError(f"{where}: y_{split} must be an int64 array (N,); received "
                         f"{type(y).__name__} {getattr(y, 'dtype', '')} {getattr(y, 'shape', '')}.")
    if len(x) != len(y):
        raise ValueError(f"{where}: x_{split} {x.shape} and y_{split} {y.shape} hold different numbers of images.")
    if len(y) and (y.min() < 0 or y.max() >= len(ds.class_names)):
        raise ValueError(f"{where}: y_{split} holds labels outside 0..{len(ds.class_names) - 1} "
                         f"(min {y.min()}, max {y.max()}).")


# --------------------------------------------------------------------------------------------------
# Reading bytes


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


# --------------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array in native byte order.

    Layout: 2 zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), a byte holding the number of dimensions d, d big-endian uint32 sizes, then the
    product of the sizes of big-endian values, and nothing after them.

    Raises
    ------
    DataError
        Bad magic bytes, unknown type code, a file shorter or longer than its header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise _fail(path, "an IDX file (at least a 4-byte header)", f"{len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise _fail(path, "an IDX file starting with 2 zero bytes", f"magic bytes {data[:4].hex()}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise _fail(path, f"an IDX type code among {known}", f"0x{code:02X}")
    if ndim == 0:
        raise _fail(path, "an IDX file with at least 1 dimension", "0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _fail(path, f"an IDX header of {header} bytes for {ndim} dimensions", f"{len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    size = header + math.prod(shape) * dtype.itemsize
    if len(data) != size:
        problem = "truncated" if len(data) < size else "longer than its header says"
        raise _fail(path, f"{size} bytes for an IDX array of shape {shape} and dtype {dtype.name}",
                    f"{len(data)} bytes ({problem})")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


# The standard names, and the variant with a dot that some MNIST mirrors use.
_IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find_idx_file(folder: Path, role: str) -> Path | None:
    for stem in _IDX_FILES[role]:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _is_idx_folder(folder: Path) -> bool:
    return all(_find_idx_file(folder, role) is not None for role in _IDX_FILES)


def _idx_images(path: Path) -> np.ndarray:
    x = read_idx(path)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise _fail(path, "uint8 images of 3 dimensions (N, H, W)", f"{x.dtype} of shape {x.shape}")
    return x[:, None, :, :]


def _idx_labels(path: Path, count: int, images: Path, num_classes: int) -> np.ndarray:
    y = read_idx(path)
    if y.dtype != np.uint8 or y.ndim != 1:
        raise _fail(path, "uint8 labels of 1 dimension (N,)", f"{y.dtype} of shape {y.shape}")
    if len(y) != count:
        raise _fail(path, f"{count} labels, one per image of {images.name}", f"{len(y)} labels")
    _check_label_range(path, y, num_classes)
    return y.astype(np.int64)


def _check_label_range(path, y: np.ndarray, num_classes: int) -> None:
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        raise _fail(path, f"labels in 0..{num_classes - 1}",
                    f"label {y[bad[0]]} at index {bad[0]} ({len(bad)} out of range)")


def load_idx_folder(folder, *, class_names=None, name: str | None = None) -> Dataset:
    """Load MNIST or Fashion-MNIST from a folder holding the 4 standard IDX files.

    Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``). Images (N, 28, 28) become (N, 1, 28, 28).

    ``class_names`` defaults to Fashion-MNIST's when the folder's name contains "fashion", else to the
    digits "0".."9"; labels must lie in ``0 .. len(class_names) - 1``.
    """
    folder = Path(folder)
    missing = [_IDX_FILES[role][0] for role in _IDX_FILES if _find_idx_file(folder, role) is None]
    if missing:
        raise _fail(folder, "the 4 IDX files of MNIST/Fashion-MNIST (optionally .gz)",
                    f"no {', '.join(missing)}")
    if class_names is None:
        class_names = FASHION_MNIST_CLASSES if "fashion" in folder.resolve().name.lower() else DIGIT_CLASSES
    paths = {role: _find_idx_file(folder, role) for role in _IDX_FILES}
    x_train = _idx_images(paths["x_train"])
    x_test = _idx_images(paths["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _fail(paths["x_test"], f"images of the training images' size {x_train.shape[2:]}",
                    f"{x_test.shape[2:]}")
    y_train = _idx_labels(paths["y_train"], len(x_train), paths["x_train"], len(class_names))
    y_test = _idx_labels(paths["y_test"], len(x_test), paths["x_test"], len(class_names))
    return Dataset(x_train, y_train, x_test, y_test, tuple(class_names),
                   name or folder.resolve().name, f"IDX files in {folder}")


# --------------------------------------------------------------------------------------------------
# CIFAR-10

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
    try:
        y = np.asarray(labels)
    except Exception:
        y = np.asarray(None)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(data):
        raise _fail(path, f"`labels` as {len(data)} ints, one per row of `data`",
                    f"{type(labels).__name__} giving {y.dtype} of shape {y.shape}")
    _check_label_range(path, y, num_classes)
    return data.reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE).copy(), y.astype(np.int64)


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
        if not meta.is_file():
            return CIFAR10_CLASSES
        names = tuple(line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip())
    else:
        meta = folder / "batches.meta"
        if not meta.is_file():
            return CIFAR10_CLASSES
        content = _restricted_load(meta)
        raw = _get(content, "label_names") if isinstance(content, dict) else None
        if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
            raise _fail(meta, "a pickled dict with `label_names`, a list of strings", repr(type(raw).__name__))
        names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw)
    if len(names) != 10:
        raise _fail(meta, "the 10 CIFAR-10 class names", f"{len(names)} names")
    return names


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
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise _fail(folder, f"the 6 CIFAR-10 batches ({layout} version)", f"no {', '.join(missing)}")
    class_names = _cifar_class_names(folder, layout)
    parts = [read(p, len(class_names)) for p in paths]
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    x_test, y_test = parts[-1]
    return Dataset(x_train, y_train, x_test, y_test, class_names, "cifar-10",
                   f"CIFAR-10 {layout} version in {folder}")


def _cifar_folder(folder: Path) -> Path:
    if _cifar_layout(folder) is None:
        for sub in ("cifar-10-batches-bin", "cifar-10-batches-py"):
            if _cifar_layout(folder / sub) is not None:
                return folder / sub
    return folder


# --------------------------------------------------------------------------------------------------
# .npz

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
LAYOUTS = ("NCHW", "NHWC")
_MAX_CHANNELS = 4  # gray, gray+alpha, RGB, RGBA: the only axis sizes taken for a channel axis


def _npz_arrays(path: Path) -> dict:
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise _fail(path, "a file", "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _fail(path, "a .npz archive (a zip of .npy arrays)", f"{type(error).__name__}: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _fail(path, "a .npz archive (a zip of .npy arrays)", "a single .npy array")
    with archive:
        missing = [k for k in _NPZ_KEYS if k not in archive.files]
        if missing:
            raise _fail(path, f"arrays named {', '.join(_NPZ_KEYS)}",
                        f"no {', '.join(missing)} (it holds {', '.join(archive.files) or 'nothing'})")
        arrays = {}
        for key in (*_NPZ_KEYS, "class_names"):
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as error:
                # allow_pickle=False refuses object arrays: their elements would be unpickled.
                raise _fail(path, f"`{key}` as a numeric array", f"an object array, refused ({error})") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                raise _fail(path, f"a readable array `{key}`", f"{type(error).__name__}: {error}") from None
    return arrays


def _channel_layout(path: Path, key: str, shape: tuple, layout: str | None) -> str:
    """NCHW or NHWC for a 4-D image array: the explicit ``layout``, else the axis that can be channels."""
    if layout is not None:
        return layout
    axis1, axis3 = shape[1] <= _MAX_CHANNELS, shape[3] <= _MAX_CHANNELS
    if axis1 != axis3:
        return "NCHW" if axis1 else "NHWC"
    what = "both could be" if axis1 else "neither can be"
    raise _fail(path, f"`{key}` with a channel axis of size 1..{_MAX_CHANNELS} either second (N, C, H, W) or "
                      f"last (N, H, W, C); pass layout='NCHW' or 'NHWC' to decide",
                f"shape {shape}, where {what}")


def _npz_images(path: Path, key: str, x: np.ndarray, layout: str | None) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        if _channel_layout(path, key, x.shape, layout) == "NHWC":
            x = x.transpose(0, 3, 1, 2)
    else:
        raise _fail(path, f"`{key}` of shape (N, H, W), (N, H, W, C) or (N, C, H, W)", f"shape {x.shape}")
    return np.ascontiguousarray(_image_values(path, key, x))


def _image_values(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """uint8 as is; other ints when within 0..255; floats as float32 when finite and within [0, 1]."""
    if x.dtype == np.uint8:
        return x
    if x.size == 0:
        kind = np.float32 if np.issubdtype(x.dtype, np.floating) else np.uint8
        return x.astype(kind)
    if np.issubdtype(x.dtype, np.integer) and not np.issubdtype(x.dtype, np.bool_):
        if x.min() < 0 or x.max() > 255:
            raise _fail(path, f"`{key}` pixel values in 0..255", f"{x.dtype} values from {x.min()} to {x.max()}")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise _fail(path, f"`{key}` with finite pixel values", "NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise _fail(path, f"`{key}` float pixel values in [0, 1] (or uint8 0..255)",
                        f"values from {x.min()} to {x.max()}")
        return x.astype(np.float32)
    raise _fail(path, f"`{key}` as uint8, integer or float pixels", f"dtype {x.dtype}")


def _npz_labels(path: Path, key: str, y: np.ndarray, count: int, images: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:  # Keras's cifar10.load_data() gives (N, 1)
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_):
        raise _fail(path, f"`{key}` as integer labels of shape (N,) or (N, 1)", f"{y.dtype} of shape {y.shape}")
    if len(y) != count:
        raise _fail(path, f"{count} labels in `{key}`, one per image of `{images}`", f"{len(y)}")
    if len(y) and y.min() < 0:
        raise _fail(path, f"`{key}` labels >= 0", f"label {y.min()}")
    return y.astype(np.int64)


def load_npz(path, *, layout: str | None = None, class_names=None, name: str | None = None) -> Dataset:
    """Load a ``.npz`` holding ``x_train, y_train, x_test, y_test`` (and optionally ``class_names``).

    Read with ``allow_pickle=False``: object arrays are refused. Images may be (N, H, W) (one channel),
    (N, C, H, W) or (N, H, W, C). For 4-D arrays ``layout`` ("NCHW" or "NHWC") says which; when it is None
    the layout is decided by which of axes 1 and 3 has a size of at most 4 (a channel count), and an array
    where both or neither do is refused with a message asking for ``layout``. Pixels are uint8 (any integer
    type with values in 0..255 is converted) or floats in [0, 1] (kept as float32). Labels are integers of
    shape (N,) or (N, 1). Class names come from ``class_names`` (the argument, else a string array in the
    file, else "0".."K-1" with K = the largest label + 1); every label must be below their count.
    """
    path = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"load_npz: invalid value for argument `layout`. Expected None, 'NCHW' or 'NHWC'. "
                         f"Received layout={layout!r}.")
    arrays = _npz_arrays(path)
    x_train = _npz_images(path, "x_train", arrays["x_train"], layout)
    x_test = _npz_images(path, "x_test", arrays["x_test"], layout)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _fail(path, f"`x_test` images of the training images' shape (C, H, W) = {x_train.shape[1:]}",
                    f"{x_test.shape[1:]} (x_train {arrays['x_train'].shape}, x_test {arrays['x_test'].shape})")
    if x_train.dtype != x_test.dtype:
        x_train, x_test = x_train.astype(np.float32) / _scale(x_train), x_test.astype(np.float32) / _scale(x_test)
    y_train = _npz_labels(path, "y_train", arrays["y_train"], len(x_train), "x_train")
    y_test = _npz_labels(path, "y_test", arrays["y_test"], len(x_test), "x_test")
    class_names = _npz_class_names(path, arrays, class_names, y_train, y_test)
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        _check_label_range(f"{path} (`{key}`)", y, len(class_names))
    return Dataset(x_train, y_train, x_test, y_test, class_names, name or path.stem, f"{path}")


def _scale(x: np.ndarray) -> float:
    return 255.0 if x.dtype == np.uint8 else 1.0


def _npz_class_names(path, arrays, given, y_train, y_test) -> tuple[str, ...]:
    if given is not None:
        return tuple(str(c) for c in given)
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
            raise _fail(path, "`class_names` as a 1-D array of strings", f"{names.dtype} of shape {names.shape}")
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    largest = max([int(y.max()) for y in (y_train, y_test) if len(y)], default=0)
    return tuple(str(k) for k in range(largest + 1))


# --------------------------------------------------------------------------------------------------
# Image folders


def _png_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png")


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _read_png(path: Path) -> np.ndarray:
    """One image as uint8 (C, H, W), C = 1 for grayscale (modes 1, L) and 3 for colour (RGB, P)."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib; only image folders need it

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("1", "L"):
                image, channels = image.convert("L"), 1
            elif mode in ("RGB", "P"):
                image, channels = image.convert("RGB"), 3
            else:
                raise _fail(path, "a grayscale (L) or RGB PNG", f"mode {mode}")
            pixels = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise _fail(path, "a readable PNG image", f"{type(error).__name__}: {error}") from None
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels).transpose(2, 0, 1)


def _read_class_tree(root: Path, class_names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Images of root/<class>/*.png, in class order then file-name order."""
    folders = _class_folders(root)
    names = tuple(f.name for f in folders)
    if not folders:
        raise _fail(root, "one folder per class holding .png images (root/<class>/*.png)", "no folders")
    if class_names is not None and names != class_names:
        raise _fail(root, f"the class folders of the training split {list(class_names)}", f"{list(names)}")
    images, labels, first = [], [], None
    for label, folder in enumerate(folders):
        files = _png_files(folder)
        if not files:
            raise _fail(folder, "at least one .png image in each class folder", "none")
        for path in files:
            image = _read_png(path)
            if first is None:
                first = (path, image.shape)
            elif image.shape != first[1]:
                raise _fail(path, f"an image of the same channels and size as {first[0]}, (C, H, W) = {first[1]}",
                            f"(C, H, W) = {image.shape}")
            images.append(image)
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def load_image_folder(root, *, test_fraction: float | None = None, seed: int = 0, name: str | None = None) -> Dataset:
    """Load images from ``root/<class>/*.png``, or ``root/train/<class>/*.png`` with ``root/test/<class>/*.png``.

    Classes are the sub-folder names sorted by name; label k is the k-th. Images are grayscale or RGB
    PNGs, all of one size and channel count, else a :class:`DataError` names the first file that differs.
    Without a ``test`` folder the test split is empty unless ``test_fraction`` (0 < f < 1) is given: then
    :func:`validation_split` with ``seed`` moves that fraction of the images to the test split.
    """
    root = Path(root)
    if not root.is_dir():
        raise _fail(root, "a folder of class folders", "no such folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        if test_fraction is not None:
            raise ValueError(f"load_image_folder: invalid value for argument `test_fraction`. Expected None, "
                             f"since {root} has its own test folder. Received test_fraction={test_fraction!r}.")
        x_train, y_train, names = _read_class_tree(root / "train", None)
        x_test, y_test, _ = _read_class_tree(root / "test", names)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise _fail(root / "test", f"images of the training images' shape (C, H, W) = {x_train.shape[1:]}",
                        f"{x_test.shape[1:]}")
    else:
        x, y, names = _read_class_tree(root, None)
        if test_fraction is None:
            x_train, y_train, x_test, y_test = x, y, x[:0], y[:0]
        else:
            keep, held = validation_split(len(y), test_fraction, seed=seed)
            x_train, y_train, x_test, y_test = x[keep], y[keep], x[held], y[held]
    return Dataset(x_train, y_train, x_test, y_test, names, name or root.resolve().name, f"PNG images in {root}")


# --------------------------------------------------------------------------------------------------
# Names: the embedded sample, the full Fashion-MNIST, and choosing a loader for a path


def load_embedded_sample() -> Dataset:
    """The Fashion-MNIST sample shipped in the package: 10,000 training and 2,000 test images, 28x28 gray.

    A stratified, seeded subset (1,000 training and 200 test images per class) built by
    ``scripts/make_embedded_sample.py``; Copyright 2017 Zalando SE, MIT licence
    (``cnn/datasets/fashion-mnist-LICENSE.txt``).
    """
    if not EMBEDDED_SAMPLE.is_file():
        raise _fail(EMBEDDED_SAMPLE, "the embedded Fashion-MNIST sample shipped with the package",
                    "no such file (rebuild it with scripts/make_embedded_sample.py)")
    ds = load_npz(EMBEDDED_SAMPLE, layout="NCHW", name="fashion-mnist-small")
    return dataclasses.replace(ds, source=f"embedded Fashion-MNIST sample, {EMBEDDED_SAMPLE}")


def _fashion_mnist_candidates() -> list[Path]:
    """Where the full Fashion-MNIST is looked for, in order: $CNN_DATA_DIR(/fashion-mnist), then Debian's."""
    places = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        places += [Path(env) / "fashion-mnist", Path(env)]
    places.append(DEBIAN_FASHION_MNIST_DIR)
    return places


def find_fashion_mnist() -> Path | None:
    """The first folder holding the 4 Fashion-MNIST IDX files among the candidates, or None."""
    for place in _fashion_mnist_candidates():
        if place.is_dir() and _is_idx_folder(place):
            return place
    return None


def _load_full_fashion_mnist(folder: Path) -> Dataset:
    ds = load_idx_folder(folder, class_names=FASHION_MNIST_CLASSES, name="fashion-mnist")
    return dataclasses.replace(ds, source=f"full Fashion-MNIST, {folder}")


def _missing_fashion_mnist() -> DataError:
    looked = ", ".join(str(p) for p in _fashion_mnist_candidates())
    return DataError(
        f"fashion-mnist: expected the 4 Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...) in one of "
        f"{looked}; found none. Install them with `apt-get install dataset-fashion-mnist` (Debian, Ubuntu), "
        f"set {DATA_DIR_ENV} to a folder holding them, or pass the folder as the data set; "
        f"'fashion-mnist-small' is a sample shipped with the package."
    )


def _load_path(path: Path, *, layout, test_fraction, seed) -> Dataset:
    """Choose a loader by what the path holds, not by what it is called."""
    if not path.exists():
        raise _fail(path, "a data set name (fashion-mnist, fashion-mnist-small, default) or an existing "
                          "file or folder", "neither")
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            return load_npz(path, layout=layout)
        raise _fail(path, "a .npz file (a zip archive) or a folder", f"a file starting with bytes {head.hex()}")
    if _is_idx_folder(path):
        return load_idx_folder(path)
    if _cifar_layout(_cifar_folder(path)) is not None:
        return load_cifar10(path)
    if any(_png_files(f) for f in _class_folders(path)) or (path / "train").is_dir():
        return load_image_folder(path, test_fraction=test_fraction, seed=seed)
    raise _fail(path, "a folder of MNIST/Fashion-MNIST IDX files, CIFAR-10 batches, or class folders of PNGs",
                f"none of these (it holds {', '.join(sorted(p.name for p in path.iterdir())[:8]) or 'nothing'})")


def load_dataset(name_or_path, *, limit: int | None = None, layout: str | None = None,
                 test_fraction: float | None = None, seed: int = 0) -> Dataset:
    """Load a data set by name or path, then keep its first ``limit`` training images.

    Names:

    * ``"fashion-mnist"``: the full set (60,000 + 10,000), from ``$CNN_DATA_DIR/fashion-mnist``,
      ``$CNN_DATA_DIR`` or ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``);
      a :class:`DataError` saying how to get it when none holds it;
    * ``"fashion-mnist-small"``: the sample shipped in the package (10,000 + 2,000);
    * ``"default"``: the full set when found, else the sample; the result's ``name`` and ``source`` say
      which.

    Anything else is a path: a ``.npz`` file, or a folder of IDX files, of CIFAR-10 batches, or of class
    folders of PNGs, recognised by content. ``layout`` goes to :func:`load_npz`, ``test_fraction`` and
    ``seed`` to :func:`load_image_folder`.
    """
    key = str(name_or_path)
    if key == "fashion-mnist-small":
        ds = load_embedded_sample()
    elif key in ("fashion-mnist", "default"):
        folder = find_fashion_mnist()
        if folder is not None:
            ds = _load_full_fashion_mnist(folder)
        elif key == "default":
            ds = load_embedded_sample()
        else:
            raise _missing_fashion_mnist()
    else:
        ds = _load_path(Path(name_or_path), layout=layout, test_fraction=test_fraction, seed=seed)
    return ds.limit(limit)


# --------------------------------------------------------------------------------------------------
# Preparing and batching


def to_float(x: np.ndarray, *, mean=None, std=None) -> np.ndarray:
    """Images as float32: ``x / 255`` for uint8 (so in [0, 1]), float images unchanged; then, when given,
    ``(x - mean[c]) / std[c]`` per channel.

    Shape: (N, C, H, W) -> (N, C, H, W). ``mean`` and ``std`` are a number or C numbers.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise TypeError(f"to_float: argument `x` must be a numpy.ndarray (N, C, H, W); received "
                        f"{type(x).__name__} {getattr(x, 'shape', '')}.")
    if x.dtype == np.uint8:
        out = x.astype(np.float32) * np.float32(1 / 255)
    elif np.issubdtype(x.dtype, np.floating):
        out = x.astype(np.float32)
    else:
        raise TypeError(f"to_float: argument `x` must be uint8 or floating point; received dtype {x.dtype}.")
    if mean is not None or std is not None:
        channels = x.shape[1]
        m = _per_channel(0.0 if mean is None else mean, "mean", channels)
        s = _per_channel(1.0 if std is None else std, "std", channels)
        if (s <= 0).any():
            raise ValueError(f"to_float: invalid value for argument `std`. Expected positive numbers. Received std={std!r}.")
        out = (out - m[None, :, None, None]) / s[None, :, None, None]
    return out


def _per_channel(value, name: str, channels: int) -> np.ndarray:
    v = np.asarray(value, dtype=np.float32).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, channels)
    if v.size != channels:
        raise ValueError(f"to_float: invalid value for argument `{name}`. Expected a number or C = {channels} "
                         f"numbers. Received {name}={value!r}.")
    return v


def _check_count(value, name: str, op: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        word = "an int" if minimum == 0 else f"an int >= {minimum}"
        raise ValueError(f"{op}: invalid value for argument `{name}`. Expected {word}. Received {name}={value!r}.")
    return int(value)


def batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True, *, drop_last: bool = False):
    """Yield the index arrays (int64) of the mini-batches of one epoch over ``n`` examples.

    With ``shuffle`` the order is a permutation drawn from ``numpy.random.default_rng([seed, epoch])``, a
    pure function of ``(seed, epoch)``, so a run resumed at epoch e sees the same batches as one that was
    never stopped; without it the order is 0..n-1. Every batch has ``batch_size`` indices except the last,
    which has the rest (dropped when ``drop_last``).
    """
    n = _check_count(n, "n", "batches", 0)
    batch_size = _check_count(batch_size, "batch_size", "batches", 1)
    seed = _check_count(seed, "seed", "batches", 0)
    epoch = _check_count(epoch, "epoch", "batches", 0)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size].astype(np.int64)


def validation_split(n: int, fraction: float, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train indices, validation indices), both sorted int64 arrays.

    The validation part has ``n - floor(n * (1 - fraction))`` examples (Keras's ``validation_split``
    count). With ``seed=None`` it is the last ones, as in Keras (taken before any shuffling); with a seed it
    is the last part of ``numpy.random.default_rng(seed).permutation(n)``. Both parts must be non-empty.
    """
    n = _check_count(n, "n", "validation_split", 2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise ValueError(f"validation_split: invalid value for argument `fraction`. Expected a number "
                         f"strictly between 0 and 1. Received fraction={fraction!r}.")
    n_val = n - int(math.floor(n * (1 - fraction)))
    if not 0 < n_val < n:
        raise ValueError(f"validation_split: fraction={fraction!r} of n={n} examples leaves "
                         f"{n_val} for validation and {n - n_val} for training; both must be at least 1.")
    if seed is None:
        order = np.arange(n)
    else:
        order = np.random.default_rng(_check_count(seed, "seed", "validation_split", 0)).permutation(n)
    return np.sort(order[: n - n_val]).astype(np.int64), np.sort(order[n - n_val:]).astype(np.int64)
