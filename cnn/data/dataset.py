"""The result every loader returns (:class:`Dataset`), the one error for bad files (:class:`DataError`), the
class names of the known sets, and :func:`to_float`, which prepares a data set's images for a model.

Every format reader imports this module and nothing above it, so the invariants a :class:`Dataset` checks
and the wording of a :class:`DataError` are written once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from cnnbase.checks import invalid, printable
from cnnbase.limits import check_bytes, nbytes_of

from .resize import resize_bilinear

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


#: The most classes a data set may have (its class names read from a file, its class folders, or the count
#: inferred from its labels), and the longest class name: beyond them a file is refused, not trusted.
MAX_CLASSES = 100_000
MAX_CLASS_NAME_LENGTH = 1_000


class DataError(ValueError):
    """A data file or folder that is missing, truncated, malformed, inconsistent or unsafe to read."""


def _fail(path, expected: str, found: str) -> DataError:
    """The one message template for a bad file: the file, what was expected, what was found. One line
    whatever the file holds: the message goes through :func:`~cnnbase.checks.printable`, so a path, a class
    name or a key read from a file cannot break it with a newline or reach the terminal as an escape code."""
    return DataError(printable(f"{path}: expected {expected}; found {found}."))


def _check_class_names(path, names, what: str = "class names") -> tuple[str, ...]:
    """Class names read from a file or folder: 1 to :data:`MAX_CLASSES` strings of at most
    :data:`MAX_CLASS_NAME_LENGTH` characters, returned as given (the messages that print them escape them)."""
    names = tuple(names)
    if not 1 <= len(names) <= MAX_CLASSES:
        raise _fail(path, f"1 to {MAX_CLASSES:,} {what}", f"{len(names):,}")
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise _fail(path, f"{what} as strings", f"{type(name).__name__} at index {index}")
        if len(name) > MAX_CLASS_NAME_LENGTH:
            raise _fail(path, f"{what} of at most {MAX_CLASS_NAME_LENGTH:,} characters",
                        f"one of {len(name):,} at index {index} ({name[:40]!r}...)")
    return names


def _require_training_images(path, y_train: np.ndarray) -> None:
    """A data set to train on has at least one training image; an empty split is the file's fault, said here
    rather than as a division by zero in the first epoch."""
    if len(y_train) == 0:
        raise _fail(path, "at least 1 training image", "0")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and test images with their labels.

    Shapes: ``x_train`` (N, C, H, W), ``y_train`` (N,), ``x_test`` (N_test, C, H, W), ``y_test`` (N_test,).
    ``x_*`` are uint8 (0..255) or float32 (in [0, 1]); ``y_*`` are int64 in ``0 .. len(class_names) - 1``.
    Time series (:mod:`cnn.data.timeseries`) are float32 ``(N, C, L)`` of any real values: :attr:`is_series`;
    feature vectors (``cnn features``) are float32 ``(N, F)`` of any finite values: :attr:`is_features`.
    The test split may be empty (N_test = 0) when the source has none.

    ``name`` is a short identifier (``"fashion-mnist"``, ``"fashion-mnist-small"``, a file or folder name);
    ``source`` says where the data came from, in words, for the command line to print. Both are made
    printable (:func:`~cnnbase.checks.printable`) when the data set is built. ``class_names`` are kept as the
    file or folder gives them (they are stored in run files and model files as given), so they may hold any
    character: whatever prints them escapes them first.
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
        object.__setattr__(self, "name", printable(self.name))
        object.__setattr__(self, "source", printable(self.source))
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
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image, (C, L) of one series."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def is_series(self) -> bool:
        """Time series (N, C, L) rather than images (N, C, H, W)."""
        return self.x_train.ndim == 3

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` training images (the command line's ``--limit``); the test split is kept."""
        if n is None:
            return self
        available = len(self.y_train)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= available:
            expected = f"an int from 1 to {available} (the number of training images of {self.name})"
            raise ValueError(invalid("Dataset.limit", "limit", expected, n))
        return dataclasses.replace(self, x_train=self.x_train[:n], y_train=self.y_train[:n])

    def classes_subset(self, classes, per_class: int | None = None) -> "Dataset":
        """Only the images of ``classes`` (label numbers, in the order given), relabelled ``0..len(classes)-1``
        with their class names, both splits; with ``per_class``, only the first ``per_class`` training images
        of each class (in the file's order, so the same every time; the test split is kept whole). For
        transfer learning: pretrain on classes 0-4, then train on a small labelled set of 5-9
        (``cnn train --classes 5-9 --per-class 50``)."""
        classes = tuple(int(c) for c in classes)
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise ValueError(invalid("Dataset.classes_subset", "classes",
                                     f"distinct class numbers from 0 to {self.num_classes - 1}", classes))
        if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer))
                                      or per_class < 1):
            raise ValueError(invalid("Dataset.classes_subset", "per_class", "None or an int >= 1", per_class))
        new_label = np.full(self.num_classes, -1, dtype=np.int64)
        new_label[list(classes)] = np.arange(len(classes))
        train = _class_rows(self.y_train, classes, per_class)
        test = _class_rows(self.y_test, classes, None)
        listed = ",".join(map(str, classes)) + ("" if per_class is None else f", {per_class} per class")
        return dataclasses.replace(
            self, x_train=self.x_train[train], y_train=new_label[self.y_train[train]], x_test=self.x_test[test],
            y_test=new_label[self.y_test[test]], class_names=tuple(self.class_names[c] for c in classes),
            source=f"{self.source}, classes {listed}")

    def resized(self, height: int, width: int) -> "Dataset":
        """Both splits resized to ``height x width`` by :func:`~cnn.data.resize.resize_bilinear` (PyTorch's
        bilinear, ``align_corners=False``, no antialiasing): float32 images in [0, 1], the labels unchanged,
        ``source`` saying so. The same size returns ``self``. Deterministic: the same images give the same
        result."""
        if self.is_series:
            raise ValueError(f"Dataset {self.name}: time series (C x L) cannot be resized as images; "
                             "their length option does it (specs/timeseries.md)")
        if self.is_features:
            raise DataError(f"Dataset.resized: {self.name} holds feature vectors of {self.image_shape[0]} values, "
                             "not images; there is nothing to resize")
        if (height, width) == self.image_shape[1:]:
            return self
        return dataclasses.replace(
            self, x_train=resize_bilinear(self.x_train, height, width),
            x_test=resize_bilinear(self.x_test, height, width),
            source=f"{self.source}, resized bilinear to {height}x{width}")

    def describe(self) -> str:
        if self.is_series:
            c, length = self.image_shape
            return (f"{self.name}: {len(self.y_train):,} training and {len(self.y_test):,} test series of "
                    f"{c}x{length} (C x L), {self.num_classes} classes ({self.source})")
        if self.is_features:
            return (f"{self.name}: {len(self.y_train):,} training and {len(self.y_test):,} test feature vectors of "
                    f"{self.image_shape[0]} values, {self.num_classes} classes ({self.source})")
        c, h, w = self.image_shape
        return (
            f"{self.name}: {len(self.y_train):,} training and {len(self.y_test):,} test images of "
            f"{c}x{h}x{w}, {self.num_classes} classes ({self.source})"
        )

    @property
    def is_features(self) -> bool:
        """True for a data set of feature vectors ``(N, F)`` (``cnn features``' bottleneck features) rather
        than images: any float32 values, no [0, 1] rule, no resizing."""
        return self.x_train.ndim == 2


def _class_rows(y: np.ndarray, classes: tuple, per_class: int | None) -> np.ndarray:
    """The indices (ascending) of the rows of ``classes``, at most the first ``per_class`` of each."""
    keep = np.zeros(len(y), dtype=bool)
    for c in classes:
        rows = np.flatnonzero(y == c)
        keep[rows if per_class is None else rows[:per_class]] = True
    return np.flatnonzero(keep)


def parse_classes(text: str) -> tuple[int, ...]:
    """``"0-4"`` -> ``(0, 1, 2, 3, 4)``, ``"5,7,9"`` -> ``(5, 7, 9)``, ``"0-2,8"``; ``ValueError`` otherwise."""
    out = []
    try:
        for part in str(text).split(","):
            low, dash, high = part.strip().partition("-")
            first, last = int(low), int(high) if dash else int(low)
            if first < 0 or last < first or last - first > MAX_CLASSES:
                raise ValueError
            out.extend(range(first, last + 1))
    except ValueError:
        raise ValueError(f"expected class numbers such as 0-4 or 5,7,9; received {text!r}") from None
    if len(set(out)) != len(out):
        raise ValueError(f"expected distinct class numbers; received {text!r}")
    return tuple(out)


#: The ranks of ``x_train``/``x_test``: images (N, C, H, W) or feature vectors (N, F).
_SAMPLE_NDIMS = (4, 2)


def _check_split(ds: Dataset, split: str) -> None:
    """Invariants every loader guarantees; a failure here is a bug in a loader, not in a file."""
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    where = f"Dataset {ds.name}"
    series = isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype == np.float32  # time series (N, C, L)
    if not series and (not isinstance(x, np.ndarray) or x.ndim not in _SAMPLE_NDIMS
                       or x.dtype not in (np.uint8, np.float32)):
        raise ValueError(f"{where}: x_{split} must be a uint8 or float32 array (N, C, H, W), float32 series "
                         f"(N, C, L) or feature vectors (N, F); received {type(x).__name__} "
                         f"{getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}.")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
        raise ValueError(f"{where}: y_{split} must be an int64 array (N,); received "
                         f"{type(y).__name__} {getattr(y, 'dtype', '')} {getattr(y, 'shape', '')}.")
    if len(x) != len(y):
        raise ValueError(f"{where}: x_{split} {x.shape} and y_{split} {y.shape} hold different numbers of images.")
    if len(y) and (y.min() < 0 or y.max() >= len(ds.class_names)):
        raise ValueError(f"{where}: y_{split} holds labels outside 0..{len(ds.class_names) - 1} "
                         f"(min {y.min()}, max {y.max()}).")


def to_float(x: np.ndarray, *, mean=None, std=None) -> np.ndarray:
    """Images as float32: ``x / 255`` for uint8 (so in [0, 1]), float images unchanged; then, when given,
    ``(x - mean[c]) / std[c]`` per channel.

    Shape: (N, C, H, W) -> (N, C, H, W); time series (N, C, L) -> (N, C, L) likewise; feature vectors
    (N, F) -> (N, F) (float32, unscaled). ``mean`` and ``std`` are a number or C numbers (not for features).
    """
    if isinstance(x, np.ndarray) and x.ndim == 2 and mean is None and std is None:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"to_float: feature vectors (N, F) must be floating point; received dtype {x.dtype}.")
        check_bytes(nbytes_of(x.shape, 4), what=f"to_float: the float32 copy of `x` of shape {x.shape}")
        return x.astype(np.float32)
    if not isinstance(x, np.ndarray) or x.ndim not in (3, 4):
        raise TypeError(f"to_float: argument `x` must be a numpy.ndarray (N, C, H, W), (N, C, L) or (N, F); received "
                        f"{type(x).__name__} {getattr(x, 'shape', '')}.")
    check_bytes(nbytes_of(x.shape, 4), what=f"to_float: the float32 copy of `x` of shape {x.shape}")
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
            raise ValueError(invalid("to_float", "std", "positive numbers", std))
        axes = (None, slice(None)) + (None,) * (x.ndim - 2)
        out = (out - m[axes]) / s[axes]
    return out


def _per_channel(value, name: str, channels: int) -> np.ndarray:
    """A number or C numbers as C float32 numbers (one per channel)."""
    v = np.asarray(value, dtype=np.float32).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, channels)
    if v.size != channels:
        raise ValueError(invalid("to_float", name, f"a number or C = {channels} numbers", value))
    return v
