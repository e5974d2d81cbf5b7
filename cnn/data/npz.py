""".npz files holding ``x_train, y_train, x_test, y_test`` (and optionally ``class_names``):
:func:`load_npz`.

Read through :func:`cnn.safe_reading.read_npz` (what ``numpy.load`` with ``allow_pickle=False`` gives, every
size checked first), so an object array (whose elements would be unpickled) is refused from its header. The
arrays may be channels-first or channels-last, uint8 or floats in [0, 1]; they come out as a
:class:`~cnn.data.dataset.Dataset` in (N, C, H, W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnbase.checks import invalid, printable
from cnnbase.limits import check_bytes, nbytes_of

from .dataset import Dataset, _check_class_names, _fail, _require_training_images
from .reading import _check_label_range, _inferred_class_count, _read_npz

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
LAYOUTS = ("NCHW", "NHWC")
_MAX_CHANNELS = 4  # gray, gray+alpha, RGB, RGBA: the only axis sizes taken for a channel axis


def _npz_arrays(path: Path) -> dict:
    """The arrays a data set needs, read through :func:`cnn.safe_reading.read_npz`: every size checked
    before it is allocated or decompressed, object arrays refused from their headers."""
    arrays = _read_npz(path, (*_NPZ_KEYS, "class_names"))
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        held = ", ".join(arrays) or "none of them"
        raise _fail(path, f"arrays named {', '.join(_NPZ_KEYS)}", f"no {', '.join(missing)} (of those it holds {held})")
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


def _npz_features(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """A 2-D array ``(N, F)``: feature vectors (``cnn features``' bottleneck features), not images: floats
    of any finite value (no [0, 1] rule: a ReLU layer's output is not a pixel), kept as float32."""
    if x.shape[1] == 0:
        raise _fail(path, f"`{key}` feature vectors of at least 1 value", f"shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise _fail(path, f"`{key}` feature vectors (N, F) as floats", f"dtype {x.dtype}")
    check_bytes(nbytes_of(x.shape, 4), what=f"load_npz: `{key}` of {printable(path)} as float32, shape {x.shape}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(out).all():
        raise _fail(path, f"`{key}` with finite values (as float32)", "NaN or infinite values")
    return out


def _npz_images(path: Path, key: str, x: np.ndarray, layout: str | None) -> np.ndarray:
    if x.ndim == 2:
        return _npz_features(path, key, x)
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        if _channel_layout(path, key, x.shape, layout) == "NHWC":
            x = x.transpose(0, 3, 1, 2)
    else:
        raise _fail(path, f"`{key}` of shape (N, H, W), (N, H, W, C), (N, C, H, W) or feature vectors (N, F)",
                    f"shape {x.shape}")
    if 0 in x.shape[1:]:
        raise _fail(path, f"`{key}` images of at least 1 channel and 1x1 pixels", f"(C, H, W) = {x.shape[1:]}")
    return np.ascontiguousarray(_image_values(path, key, x))


def _image_values(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """uint8 as is; other ints when within 0..255; floats as float32 when finite and within [0, 1]."""
    if x.dtype == np.uint8:
        return x
    check_bytes(nbytes_of(x.shape, 4),
                what=f"load_npz: `{key}` of {printable(path)} as float32 or uint8, shape {x.shape}")
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
    """Integer labels (N,) or (N, 1), one per image, all >= 0; kept in the file's dtype (so that a uint64
    label beyond int64 is reported as itself, not wrapped round) until the class count is known."""
    if y.ndim == 2 and y.shape[1] == 1:  # Keras's cifar10.load_data() gives (N, 1)
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise _fail(path, f"`{key}` as integer labels of shape (N,) or (N, 1)", f"{y.dtype} of shape {y.shape}")
    if len(y) != count:
        raise _fail(path, f"{count} labels in `{key}`, one per image of `{images}`", f"{len(y)}")
    if len(y) and y.min() < 0:
        index = int(np.argmin(y))
        raise _fail(path, f"`{key}` labels >= 0", f"label {int(y[index])} at index {index}")
    return y


def load_npz(path, *, layout: str | None = None, class_names=None, name: str | None = None) -> Dataset:
    """Load a ``.npz`` holding ``x_train, y_train, x_test, y_test`` (and optionally ``class_names``).

    Object arrays are refused. A 2-D array ``(N, F)`` is a set of feature vectors (``cnn features``' output):
    floats of any finite value, kept as float32. Images may be (N, H, W) (one channel),
    (N, C, H, W) or (N, H, W, C). For 4-D arrays ``layout`` ("NCHW" or "NHWC") says which; when it is None
    the layout is decided by which of axes 1 and 3 has a size of at most 4 (a channel count), and an array
    where both or neither do is refused with a message asking for ``layout``. Pixels are uint8 (any integer
    type with values in 0..255 is converted) or floats in [0, 1] (kept as float32). Labels are integers of
    shape (N,) or (N, 1). Class names come from ``class_names`` (the argument, else a string array in the
    file, else "0".."K-1" with K = the largest label + 1, which must be at most 1,024 or the number of labels
    in the file, and at most :data:`~cnn.data.dataset.MAX_CLASSES`); every label must be below their count.
    The training split must hold at least one image.

    Every array is read through :func:`cnn.safe_reading.read_npz`, its size checked from its header before it
    is allocated: ``SizeLimitError`` beyond ``CNN_MAX_FILE_BYTES`` or ``CNN_MAX_ARRAY_BYTES``, :class:`DataError`
    for anything else wrong with the file.
    """
    path = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(invalid("load_npz", "layout", "None, 'NCHW' or 'NHWC'", layout))
    arrays = _npz_arrays(path)
    x_train = _npz_images(path, "x_train", arrays["x_train"], layout)
    x_test = _npz_images(path, "x_test", arrays["x_test"], layout)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _fail(path, f"`x_test` images of the training images' shape (C, H, W) = {x_train.shape[1:]}",
                    f"{x_test.shape[1:]} (x_train {arrays['x_train'].shape}, x_test {arrays['x_test'].shape})")
    if x_train.dtype != x_test.dtype:  # one uint8, one float32: both float32
        for key, x in (("x_train", x_train), ("x_test", x_test)):
            check_bytes(nbytes_of(x.shape, 4),
                        what=f"load_npz: `{key}` of {printable(path)} as float32, shape {x.shape}")
        x_train, x_test = x_train.astype(np.float32) / _scale(x_train), x_test.astype(np.float32) / _scale(x_test)
    y_train, y_test, class_names = _npz_labels_and_classes(path, arrays, len(x_train), len(x_test), class_names)
    return Dataset(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), class_names,
                   name or path.stem, f"{path}")


def _scale(x: np.ndarray) -> float:
    return 255.0 if x.dtype == np.uint8 else 1.0


def _npz_labels_and_classes(path: Path, arrays: dict, n_train: int, n_test: int, given=None):
    """The file's ``y_train`` and ``y_test`` (one label per row of ``x_train``, ``x_test``), at least one
    training example, and the class names (``given``, the file's, or inferred), every label among them.
    Shared by the image and the series ``.npz`` readers."""
    y_train = _npz_labels(path, "y_train", arrays["y_train"], n_train, "x_train")
    y_test = _npz_labels(path, "y_test", arrays["y_test"], n_test, "x_test")
    _require_training_images(path, y_train)
    class_names = _npz_class_names(path, arrays, given, y_train, y_test)
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        _check_label_range(path, y, len(class_names), key)
    return y_train, y_test, class_names


def _npz_class_names(path, arrays, given, y_train, y_test) -> tuple[str, ...]:
    """The argument's names, else the file's ``class_names``, else "0".."K-1" for K inferred from the labels
    (bounded: see :func:`~cnn.data.reading._inferred_class_count`)."""
    if given is not None:
        if isinstance(given, (str, bytes)) or not all(isinstance(c, str) for c in given):
            raise TypeError(invalid("load_npz", "class_names", "None or a sequence of str", given))
        return _check_class_names("load_npz: argument `class_names`", given)
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
            raise _fail(path, "`class_names` as a 1-D array of strings", f"{names.dtype} of shape {names.shape}")
        return _check_class_names(path, (_decoded(path, n, i) for i, n in enumerate(names.tolist())),
                                  "`class_names`")
    count = _inferred_class_count(path, {"y_train": y_train, "y_test": y_test})
    return tuple(str(k) for k in range(count))


def _decoded(path, name, index: int) -> str:
    """One class name of a bytes (``S``) array as text; bytes that are not UTF-8 are refused, not guessed."""
    if isinstance(name, str):
        return name
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(path, "`class_names` of UTF-8 text", f"bytes {name[:40]!r} at index {index}") from None
