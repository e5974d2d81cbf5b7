"""MNIST and Fashion-MNIST: one IDX file (:func:`read_idx`) and a folder of the 4 standard IDX files
(:func:`load_idx_folder`), gzipped or not.

The format is Yann LeCun's ("THE IDX FILE FORMAT", http://yann.lecun.com/exdb/mnist/); the checks are in
``specs/data.md``. :mod:`cnn.data.catalog` uses :func:`_is_idx_folder` to recognise such a folder by content.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cnnbase.checks import printable
from cnnbase.limits import check_bytes, nbytes_of

from .dataset import DIGIT_CLASSES, FASHION_MNIST_CLASSES, Dataset, _fail, _require_training_images
from .reading import _check_label_range, _read_bytes

#: The most dimensions an IDX file may have (NumPy's own limit is 64; MNIST's files have 1 and 3).
MAX_IDX_DIMS = 32
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
        Not a readable regular file, a damaged gzip stream, bad magic bytes, an unknown type code, a file
        shorter or longer than its header says.
    SizeLimitError
        A file larger than ``CNN_MAX_FILE_BYTES`` (or gzip data expanding beyond it), or a header whose array
        would exceed ``CNN_MAX_ARRAY_BYTES``; checked before anything of that size is allocated.
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
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise _fail(path, f"an IDX file of 1 to {MAX_IDX_DIMS} dimensions", f"{ndim} dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _fail(path, f"an IDX header of {header} bytes for {ndim} dimensions", f"{len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    check_bytes(nbytes_of(shape, dtype.itemsize),
                what=f"{printable(path)}: the IDX array of shape {shape} and dtype {dtype.name} (its header)")
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
            # Any entry of that name counts (a FIFO or a broken link too): reading it then says what is wrong.
            if (folder / name).is_symlink() or (folder / name).exists():
                return folder / name
    return None


def _is_idx_folder(folder: Path) -> bool:
    return all(_find_idx_file(folder, role) is not None for role in _IDX_FILES)


def _idx_images(path: Path) -> np.ndarray:
    x = read_idx(path)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise _fail(path, "uint8 images of 3 dimensions (N, H, W)", f"{x.dtype} of shape {x.shape}")
    if 0 in x.shape[1:]:
        raise _fail(path, "images of at least 1x1 pixels", f"shape {x.shape}")
    return x[:, None, :, :]


def _idx_labels(path: Path, count: int, images: Path, num_classes: int) -> np.ndarray:
    y = read_idx(path)
    if y.dtype != np.uint8 or y.ndim != 1:
        raise _fail(path, "uint8 labels of 1 dimension (N,)", f"{y.dtype} of shape {y.shape}")
    if len(y) != count:
        raise _fail(path, f"{count} labels, one per image of {images.name}", f"{len(y)} labels")
    _check_label_range(path, y, num_classes)
    return y.astype(np.int64)


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
    _require_training_images(paths["x_train"], x_train)
    x_test = _idx_images(paths["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _fail(paths["x_test"], f"images of the training images' size {x_train.shape[2:]}",
                    f"{x_test.shape[2:]}")
    y_train = _idx_labels(paths["y_train"], len(x_train), paths["x_train"], len(class_names))
    y_test = _idx_labels(paths["y_test"], len(x_test), paths["x_test"], len(class_names))
    return Dataset(x_train, y_train, x_test, y_test, tuple(class_names),
                   name or folder.resolve().name, f"IDX files in {folder}")
