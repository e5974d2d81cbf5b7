"""The data sets known by name, and choosing a reader for a path by what it holds: :func:`load_dataset`.

Names: ``"fashion-mnist"`` (the full set, found with :func:`find_fashion_mnist`), ``"fashion-mnist-small"``
(the sample shipped in the package, :func:`load_embedded_sample`) and ``"default"`` (the first when found,
else the second). Any other name is a path, recognised by content by the format modules' own tests.
This is the one module that knows every format; the format modules know nothing of each other.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from pathlib import Path

from .cifar import _cifar_folder, _cifar_layout, load_cifar10
from .dataset import FASHION_MNIST_CLASSES, Dataset, DataError, _fail
from .idx import _is_idx_folder, load_idx_folder
from .images import _class_folders, _png_files, load_image_folder
from ..safe_reading import file_type
from .npz import load_npz
from .reading import _entries, _open_regular
from .timeseries import SeriesOptions, is_series_file, load_series

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DATA_DIR_ENV = "CNN_DATA_DIR"
# cnn/datasets/, beside this package; pyproject's package-data ships it with the cnn package.
EMBEDDED_SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "fashion-mnist-small.npz"
#: The UCR/UEA time-series sets shipped in cnn/datasets/ (gzipped .ts, from the aeon wheel; licence and
#: citations in cnn/datasets/ucr-uea-LICENSE.txt), by their --data name.
EMBEDDED_SERIES = {name.lower(): Path(__file__).resolve().parent.parent / "datasets" / f"{name}_TRAIN.ts.gz"
                   for name in ("GunPoint", "ItalyPowerDemand", "BasicMotions")}


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


def _kind(path: Path) -> str:
    """'folder', 'file' or a DataError: what ``--data PATH`` names, told apart before anything is opened."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if not os.path.lexists(path):
            raise _fail(path, "a data set name (fashion-mnist, fashion-mnist-small, default, gunpoint, "
                              "italypowerdemand, basicmotions) or an existing "
                              "file or folder", "neither") from None
        reason = "a loop of symbolic links" if error.errno == errno.ELOOP else (error.strerror or type(error).__name__)
        raise _fail(path, "a readable file or folder", reason) from None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    raise _fail(path, "a regular file or a folder", file_type(mode))


def _series_options(key: str) -> tuple[str, SeriesOptions | None]:
    """``"gunpoint:znorm=channel,length=200"`` -> ``("gunpoint", SeriesOptions(...))``; a name or path without
    options -> ``(key, None)``. The options (specs/timeseries.md): ``series`` (an .npz of (N, C, L) series),
    ``znorm=series|channel|none``, ``length=L``."""
    base, sep, text = key.rpartition(":")
    if not sep or os.path.lexists(key) or not base:
        return key, None
    fields = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, eq, value = item.partition("=")
        if name not in ("series", "znorm", "length") or (name == "series") == bool(eq) or name in fields:
            raise DataError(f"{key}: expected series options after ':' (series, znorm=series|channel|none, "
                            f"length=L, each once); found {item!r}.")
        fields[name] = value
    try:
        length = int(fields["length"]) if "length" in fields else None
        return base, SeriesOptions(fields.get("znorm", "series"), length, "series" in fields)
    except ValueError as error:
        raise DataError(f"{key}: {error}") from None


def _load_path(path: Path, *, layout, test_fraction, seed, series: SeriesOptions | None = None) -> Dataset:
    """Choose a loader by what the path holds, not by what it is called (series text files by their name or
    their first byte: a .ts, .tsv; an .npz is read as series when the options say so)."""
    if _kind(path) == "file":
        with _open_regular(path) as f:
            head = f.read(4)
        if head[:2] == b"\x1f\x8b" and is_series_file(path, b""):
            return load_series(path, series)
        if head[:2] == b"PK" and series is not None and series.npz:
            return load_series(path, series)
        if is_series_file(path, head):
            return load_series(path, series)
        if series is not None:
            raise _fail(path, "a time-series file (.ts, .tsv, or an .npz with the option series) for series "
                              "options", "another kind of file")
        if head[:2] == b"PK":
            return load_npz(path, layout=layout)
        raise _fail(path, "a .npz file (a zip archive) or a folder",
                    f"a file starting with bytes {head.hex()}" if head else "an empty file")
    _entries(path)  # a folder that cannot be listed says so first
    if _is_idx_folder(path):
        return load_idx_folder(path)
    if _cifar_layout(_cifar_folder(path)) is not None:
        return load_cifar10(path)
    if any(_png_files(f) for f in _class_folders(path)) or (path / "train").is_dir():
        return load_image_folder(path, test_fraction=test_fraction, seed=seed)
    held = ", ".join(p.name for p in _entries(path)[:8]) or "nothing"
    raise _fail(path, "a folder of MNIST/Fashion-MNIST IDX files, CIFAR-10 batches, or class folders of PNGs",
                f"none of these (it holds {held})")


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

    * ``"gunpoint"``, ``"italypowerdemand"``, ``"basicmotions"``: UCR/UEA time series shipped in the package
      (``specs/timeseries.md``), float32 (N, C, L).

    A name or a path may end in time-series options: ``gunpoint:znorm=channel``, ``X_TRAIN.ts:length=200``,
    ``series.npz:series`` (:class:`~cnn.data.timeseries.SeriesOptions`).

    Anything else is a path: a ``.ts`` or ``.tsv`` file (series), a ``.npz`` file, or a folder of IDX files, of
    CIFAR-10 batches, or of class folders of PNGs, recognised by content. ``layout`` goes to
    :func:`load_npz`, ``test_fraction`` and
    ``seed`` to :func:`load_image_folder`.
    """
    key, series = _series_options(str(name_or_path))
    if key.lower() in EMBEDDED_SERIES:
        train = EMBEDDED_SERIES[key.lower()]
        ds = load_series(train, series, name=key.lower())
        ds = dataclasses.replace(ds, source=f"shipped UCR/UEA set, {ds.source}")
    elif series is not None and not os.path.lexists(key):
        raise _fail(key, "a series set name (gunpoint, italypowerdemand, basicmotions) or an existing file "
                         "before the series options", "neither")
    elif series is not None:
        ds = _load_path(Path(key), layout=layout, test_fraction=test_fraction, seed=seed, series=series)
    elif key == "fashion-mnist-small":
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
