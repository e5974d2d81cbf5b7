"""Data sets for training: loaders that check what they read, the embedded sample, batching.

Every loader returns a :class:`Dataset` whose images are ``(N, C, H, W)`` arrays (uint8, or float32 in
[0, 1]) and whose labels are int64 in ``0 .. len(class_names) - 1``. Anything wrong with a file (truncated,
malformed, inconsistent, unsafe, not a regular file) raises :class:`DataError`, whose one-line message names
the file, what was expected and what was found; a size beyond one of :mod:`cnnbase.limits`'s limits (a file, a
decompressed stream, an array's header, an image's pixels) raises ``SizeLimitError`` before anything of that
size is allocated. The formats and the checks are written down in ``specs/data.md``.

One module per idea; this file only hands their names on:

* ``dataset``: :class:`Dataset`, :class:`DataError`, the class names, :func:`to_float`;
* ``reading``: a file's bytes (gunzipped) and a folder's entries, read within the size limits through
  :mod:`cnn.safe_reading`; the label check and the bound on an inferred class count the readers share;
* ``idx``: MNIST / Fashion-MNIST IDX files, gzipped or not (:func:`read_idx`, :func:`load_idx_folder`);
* ``cifar``: CIFAR-10, binary version, and Python version through a restricted unpickler
  (:func:`load_cifar10`);
* ``npz``: ``.npz`` files with ``x_train, y_train, x_test, y_test`` (:func:`load_npz`);
* ``images``: one PNG for a model (:func:`read_image`) and image folders ``root/<class>/*.png`` or
  ``root/{train,test}/<class>/*.png`` (:func:`load_image_folder`), through one decoder;
* ``catalog``: the names ``"fashion-mnist"``, ``"fashion-mnist-small"`` (shipped in the package) and
  ``"default"``, and paths recognised by content (:func:`load_dataset`);
* ``timeseries``: UCR/UEA ``.ts``, UCR ``.tsv`` and (N, C, L) ``.npz`` time series, z-normalised
  (:func:`load_series`, ``specs/timeseries.md``);
* ``batching``: :func:`batches` and :func:`validation_split`.
"""

from .batching import batches, validation_split
from .catalog import (
    DATA_DIR_ENV, DEBIAN_FASHION_MNIST_DIR, EMBEDDED_SAMPLE, find_fashion_mnist, load_dataset, load_embedded_sample,
)
from .cifar import RestrictedUnpickler, load_cifar10, read_cifar10_binary, read_cifar10_pickle
from .dataset import (
    CIFAR10_CLASSES, DIGIT_CLASSES, FASHION_MNIST_CLASSES, MAX_CLASS_NAME_LENGTH, MAX_CLASSES, DataError, Dataset,
    to_float,
)
from .dataset import parse_classes
from .idx import load_idx_folder, read_idx
from .images import PNG_MODES, load_image_folder, read_image
from .npz import LAYOUTS, load_npz
from .resize import interpolation_matrix, parse_size, resize_bilinear
from .timeseries import SeriesOptions, load_series

__all__ = [
    "DataError",
    "Dataset",
    "MAX_CLASSES",
    "MAX_CLASS_NAME_LENGTH",
    "PNG_MODES",
    "LAYOUTS",
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
    "read_image",
    "load_embedded_sample",
    "find_fashion_mnist",
    "load_dataset",
    "to_float",
    "batches",
    "validation_split",
    "resize_bilinear",
    "interpolation_matrix",
    "parse_size",
    "SeriesOptions",
    "load_series",
    "parse_classes",
]
