"""Time series for 1-D networks: the UCR/UEA ``.ts`` format, the UCR tab-separated format and ``.npz`` of
(N, C, L) arrays, read into a :class:`~cnn.data.dataset.Dataset` whose ``x_*`` are float32 ``(N, C, L)``.

Formats, options and the z-normalisation formulas are written down in ``specs/timeseries.md``. In short:

* ``NAME_TRAIN.ts`` (Bagnall et al.'s format of the UEA & UCR archive, as ``aeon`` reads it): a header of
  ``@key value`` lines, then ``@data`` and one case per line, dimensions separated by ``:``, values by ``,``,
  the class label last; ``NAME_TEST.ts`` beside it is the test split;
* ``NAME_TRAIN.tsv`` (the UCR 2018 archive's files): one series per line, the label first, tab-separated;
  trailing ``NaN`` values pad a shorter series;
* an ``.npz`` with ``x_train, y_train, x_test, y_test``, ``x_*`` of shape (N, C, L) or (N, L);
* series values are real numbers (no [0, 1] rule); missing values (``?``, ``NaN`` inside a series) and
  infinite ones are refused with the line they are on;
* options: ``znorm`` (``series``, the default and the UCR convention; ``channel``; ``none``) and ``length``
  (series of unequal lengths are refused unless ``length=L`` truncates or zero-pads them to L).

Every file is read through :mod:`cnn.data.reading` (its size bounded, gunzipped when it is gzip), and the
(N, C, L) array is bounded by ``CNN_MAX_ARRAY_BYTES`` while it is being parsed, never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnbase.checks import invalid
from cnnbase.limits import check_bytes

from .dataset import Dataset, _check_class_names, _fail, _require_training_images
from .npz import _npz_labels_and_classes
from .reading import _read_bytes, _read_npz

__all__ = ["ZNORMS", "SeriesOptions", "load_series", "read_ts", "read_ucr_tsv", "znormalize", "is_series_file",
           "test_file_beside"]

#: The z-normalisations: per series and channel (UCR), per channel over the training split, none.
ZNORMS = ("series", "channel", "none")
#: A standard deviation at or below this counts as 0 (a constant series): the series is only centred.
STD_FLOOR = 1e-8
#: The header keys of the ``.ts`` format (compared in lower case).
_TS_KEYS = ("problemname", "timestamps", "missing", "univariate", "dimensions", "equallength", "serieslength",
            "classlabel", "targetlabel", "data")
_MAX_LINE_REPORT = 60
#: Bytes counted per series array while reading (a numpy array object and its list entry).
_ARRAY_OVERHEAD = 128


@dataclass(frozen=True)
class SeriesOptions:
    """How series are made ready for a model: ``znorm`` one of :data:`ZNORMS`, ``length`` None (all series
    must have one length) or the length every series is truncated or zero-padded to; ``npz`` reads an
    ``.npz`` as series (N, C, L) rather than images (N, H, W)."""

    znorm: str = "series"
    length: int | None = None
    npz: bool = False

    def __post_init__(self):
        if self.znorm not in ZNORMS:
            raise ValueError(invalid("SeriesOptions", "znorm", " or ".join(map(repr, ZNORMS)), self.znorm))
        if self.length is not None and (isinstance(self.length, bool) or not isinstance(self.length, int)
                                        or not 1 <= self.length <= 10**8):
            raise ValueError(invalid("SeriesOptions", "length", "None or an int from 1 to 10**8", self.length))

    def describe(self) -> str:
        norm = {"series": "z-normalised per series", "channel": "z-normalised per channel (training statistics)",
                "none": "not normalised"}[self.znorm]
        return norm + (f", length {self.length}" if self.length is not None else "")


def is_series_file(path: Path, head: bytes) -> bool:
    """A ``.ts`` or ``.tsv`` file (gzipped or not), by its name or, for ``.ts``, by a first byte ``@`` or ``#``."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".ts", ".tsv")) or head[:1] in (b"@", b"#")


def test_file_beside(path: Path) -> Path | None:
    """``NAME_TEST.ts`` for ``NAME_TRAIN.ts`` (any suffix kept, ``_TRAIN`` matched in any case), when it exists."""
    stem, sep, rest = path.name.rpartition("_")
    if not sep or not rest.upper().startswith("TRAIN"):
        return None
    upper = rest[:5].isupper()
    other = path.with_name(f"{stem}_{'TEST' if upper else 'test'}{rest[5:]}")
    return other if other.is_file() else None


# ---------------------------------------------------------------------------------------------------
# One file: a list of cases, each a list of 1-D float arrays (one per channel), and their labels as text


@dataclass
class _Cases:
    values: list  # per case, a list of C float64 arrays (possibly of different lengths)
    labels: list  # per case, the label as written
    class_names: tuple | None  # declared in the file (.ts), or None (.tsv: taken from the labels)
    lines: list  # per case, its line number in the file (for messages)


class _Budget:
    """The memory the series read so far take while parsing (float64 values and about
    :data:`_ARRAY_OVERHEAD` bytes per series object), bounded by ``CNN_MAX_ARRAY_BYTES``, so a huge file (many
    values, or millions of one-value cases) fails on the line that crosses the limit, not after filling memory."""

    def __init__(self, path):
        self.path, self.nbytes = path, 0

    def add(self, series) -> None:
        self.nbytes += sum(8 * len(s) + _ARRAY_OVERHEAD for s in series)
        check_bytes(self.nbytes, what=f"the series of {self.path} while reading them (float64 and one array each)")


def _text(path: Path) -> str:
    raw = _read_bytes(path)
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise _fail(path, "a UTF-8 text file", f"bytes that are not UTF-8 at offset {error.start}") from None


def _values(path: Path, text: str, line: int, what: str, *, trailing_nan: bool = False) -> np.ndarray:
    """A comma- or tab-separated list of real numbers as float64; ``?``, NaN and infinities are refused
    naming the line (``trailing_nan``: NaNs at the end pad a shorter series, UCR's tsv, and are dropped)."""
    tokens = text.split("," if "\t" not in text else "\t")
    try:
        x = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        if bad.strip() == "?":
            raise _missing(path, line, what) from None
        raise _fail(path, f"real numbers in {what} (line {line})", f"{bad.strip()[:_MAX_LINE_REPORT]!r}") from None
    if trailing_nan and len(x) and np.isnan(x[-1]):
        kept = len(x) - int(np.argmin(np.isnan(x[::-1]))) if not np.isnan(x).all() else 0
        x = x[:kept]
    if np.isnan(x).any():
        raise _missing(path, line, what)
    if not np.isfinite(x).all():
        raise _fail(path, f"finite values in {what} (line {line})", "an infinite value")
    if len(x) == 0:
        raise _fail(path, f"at least one value in {what} (line {line})", "none")
    return x


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _missing(path, line: int, what: str):
    return _fail(path, f"no missing values in {what} (line {line}); fill or drop them first (this reader "
                       "does not impute)", "'?' or NaN")


def _header(path: Path, lines) -> tuple[dict, int]:
    """The ``@key value`` lines before ``@data`` (keys in lower case) and the position in ``lines`` (pairs of
    line index and text) of the first data line."""
    header = {}
    for position, (index, line) in enumerate(lines):
        if not line.startswith("@"):
            raise _fail(path, f"a header line starting with @ (line {index + 1}) before @data",
                        f"{line[:_MAX_LINE_REPORT]!r}")
        key, _, value = line[1:].partition(" ")
        key = key.strip().lower()
        if key not in _TS_KEYS:
            raise _fail(path, f"a header key among @{', @'.join(_TS_KEYS)} (line {index + 1})", f"@{key[:40]!r}")
        if key in header:
            raise _fail(path, f"@{key} once in the header", f"it again on line {index + 1}")
        header[key] = value.strip()
        if key == "data":
            return header, position + 1
    raise _fail(path, "an @data line after the header", "none")


def _flag(path, header: dict, key: str, default: bool | None) -> bool | None:
    if key not in header:
        return default
    value = header[key].lower()
    if value not in ("true", "false"):
        raise _fail(path, f"@{key} true or false", f"{header[key][:40]!r}")
    return value == "true"


def _count(path, header: dict, key: str) -> int | None:
    if key not in header:
        return None
    value = header[key]
    if not value.isdigit() or not 1 <= int(value) <= 10**8:
        raise _fail(path, f"@{key} as a positive integer", f"{value[:40]!r}")
    return int(value)


def _ts_classes(path, header: dict) -> tuple[str, ...]:
    if "targetlabel" in header:
        raise _fail(path, "a classification problem (@classLabel true ...)", "@targetLabel (a regression problem)")
    words = header.get("classlabel", "").split()
    if not words or words[0].lower() != "true" or len(words) < 2:
        raise _fail(path, "@classLabel true followed by the class labels", f"@classLabel {' '.join(words)[:60]!r}")
    return _check_class_names(path, words[1:], "class labels")


def read_ts(path) -> _Cases:
    """The cases of one ``.ts`` file (header checked, every line parsed and counted)."""
    path = Path(path)
    lines = [(i, line.strip()) for i, line in enumerate(_text(path).splitlines())]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    header, start = _header(path, lines)
    if _flag(path, header, "timestamps", False):
        raise _fail(path, "@timeStamps false (values only)", "@timeStamps true (timestamped series are not read)")
    classes = _ts_classes(path, header)
    univariate = _flag(path, header, "univariate", None)
    dimensions = _count(path, header, "dimensions")
    if univariate and dimensions not in (None, 1):
        raise _fail(path, "@dimensions 1 with @univariate true", f"@dimensions {dimensions}")
    channels = 1 if univariate else dimensions
    equal = _flag(path, header, "equallength", None)
    declared_length = _count(path, header, "serieslength")
    cases, budget = _Cases([], [], classes, []), _Budget(path)
    for index, line in lines[start:]:
        number = index + 1
        *fields, label = line.split(":")
        if not fields:
            raise _fail(path, f"values, ':', then the class label (line {number})", f"{line[:_MAX_LINE_REPORT]!r}")
        label = label.strip()
        if channels is None:
            channels = len(fields)
        if len(fields) != channels:
            raise _fail(path, f"{channels} dimension(s) separated by ':' then the label (line {number})",
                        f"{len(fields)} dimension(s)")
        if label not in classes:
            raise _fail(path, f"a class label among those of @classLabel (line {number})", f"{label[:40]!r}")
        series = [_values(path, f, number, f"dimension {d}") for d, f in enumerate(fields)]
        budget.add(series)
        if equal and declared_length is not None and any(len(s) != declared_length for s in series):
            found = next(len(s) for s in series if len(s) != declared_length)
            raise _fail(path, f"series of @seriesLength {declared_length} (line {number})", f"{found} values")
        cases.values.append(series)
        cases.labels.append(label)
        cases.lines.append(number)
    return cases


def read_ucr_tsv(path) -> _Cases:
    """The cases of one UCR ``.tsv`` file: per line the label, a tab, the values (trailing NaNs dropped)."""
    path = Path(path)
    cases, budget = _Cases([], [], None, []), _Budget(path)
    for index, line in enumerate(_text(path).splitlines()):
        if not line.strip():
            continue
        label, sep, rest = line.strip().partition("\t")
        if not sep:
            raise _fail(path, f"the label, a tab, then tab-separated values (line {index + 1})",
                        f"{line[:_MAX_LINE_REPORT]!r}")
        series = _values(path, rest, index + 1, "the series", trailing_nan=True)
        budget.add([series])
        cases.values.append([series])
        cases.labels.append(_label_text(label.strip()))
        cases.lines.append(index + 1)
    return cases


def _label_text(label: str) -> str:
    """UCR tsv labels are numbers (``1``, ``-1``, ``1.0000000e+00`` in some sets): written as ints when whole."""
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if value.is_integer() else label


def _tsv_classes(train: _Cases, test: _Cases | None) -> tuple[str, ...]:
    labels = set(train.labels) | set(test.labels if test else ())
    numeric = all(_is_number(x) for x in labels)
    return tuple(sorted(labels, key=(lambda x: float(x)) if numeric else None))


# ---------------------------------------------------------------------------------------------------
# Cases to arrays


def _lengths(cases: _Cases) -> list[int]:
    return [len(s) for series in cases.values for s in series]


def _check_lengths(path, cases: _Cases, length: int | None, other: _Cases | None) -> int:
    """The common length L of every series (both splits), or ``length`` when given; unequal lengths without it
    are refused in one line saying how to fix it."""
    if length is not None:
        return length
    lengths = _lengths(cases) + (_lengths(other) if other else [])
    if min(lengths) != max(lengths):
        raise _fail(path, "series of one length (or the option length=L to truncate and zero-pad them to L, e.g. "
                          f"--data '{path}:length={max(lengths)}')",
                    f"lengths from {min(lengths)} to {max(lengths)}")
    return lengths[0]


def znormalize(x: np.ndarray, mode: str, stats=None):
    """``(x - mean) / std`` of an (N, C, L) float array: per series and channel over L (``"series"``), per
    channel over N and L with ``stats`` = (mean, std) of shape (C,) given or computed here (``"channel"``), or
    ``x`` unchanged (``"none"``). Population std (ddof 0); a std <= :data:`STD_FLOOR` (a constant series)
    only centres. Returns ``(x_normalised, stats)``, ``stats`` None except for ``"channel"``."""
    if mode == "none":
        return x, None
    if mode == "series":
        mean = x.mean(axis=2, keepdims=True)
        std = x.std(axis=2, keepdims=True)
        return (x - mean) / np.where(std > STD_FLOOR, std, 1.0), None
    if mode != "channel":
        raise ValueError(invalid("znormalize", "mode", " or ".join(map(repr, ZNORMS)), mode))
    if stats is None:
        stats = (x.mean(axis=(0, 2)), x.std(axis=(0, 2)))
    mean, std = stats
    return (x - mean[None, :, None]) / np.where(std > STD_FLOOR, std, 1.0)[None, :, None], stats


def _to_array(cases: _Cases, length: int, znorm: str, stats):
    """(N, C, L) float32: each series normalised over its own values (``series``) or with the training
    statistics (``channel``), truncated to ``length`` or zero-padded at its end."""
    n, c = len(cases.values), len(cases.values[0]) if cases.values else 1
    out = np.zeros((n, c, length), dtype=np.float64)
    if znorm == "channel" and stats is None:  # statistics of the training values as read, before padding
        flat = [np.concatenate([series[ch][:length] for series in cases.values]) for ch in range(c)]
        stats = (np.array([v.mean() for v in flat]), np.array([v.std() for v in flat]))
    for i, series in enumerate(cases.values):
        for ch, values in enumerate(series):
            v = values[:length]
            if znorm == "series":
                v = znormalize(v[None, None, :], "series")[0][0, 0]
            elif znorm == "channel":
                v = znormalize(v[None, None, :], "channel", (stats[0][ch:ch + 1], stats[1][ch:ch + 1]))[0][0, 0]
            out[i, ch, :len(v)] = v
    return out.astype(np.float32), stats


def _labels(path, cases: _Cases, classes: tuple) -> np.ndarray:
    index = {name: k for k, name in enumerate(classes)}
    for label, line in zip(cases.labels, cases.lines):
        if label not in index:
            raise _fail(path, f"a label among {', '.join(classes)[:80]} (line {line})", f"{label[:40]!r}")
    return np.array([index[label] for label in cases.labels], dtype=np.int64)


def _check_channels(path, train: _Cases, test: _Cases | None, test_path) -> None:
    if test and train.values and test.values and len(train.values[0]) != len(test.values[0]):
        raise _fail(test_path, f"{len(train.values[0])} dimension(s) as the training file {path}",
                    f"{len(test.values[0])}")


def _from_cases(path: Path, train: _Cases, test: _Cases | None, test_path, options: SeriesOptions, name: str,
                source: str) -> Dataset:
    if not train.values:
        _require_training_images(path, np.zeros(0))
    _check_channels(path, train, test, test_path)
    if train.class_names is not None:
        classes = train.class_names
        if test is not None and test.class_names != classes:
            raise _fail(test_path, f"the training file's class labels {' '.join(classes)[:80]}",
                        f"{' '.join(test.class_names)[:80]}")
    else:
        classes = _tsv_classes(train, test)
    length = _check_lengths(path, train, options.length, test)
    x_train, stats = _to_array(train, length, options.znorm, None)
    y_train = _labels(path, train, classes)
    if test is not None and test.values:
        x_test, _ = _to_array(test, length, options.znorm, stats)
        y_test = _labels(test_path, test, classes)
    else:
        x_test, y_test = np.zeros((0, *x_train.shape[1:]), np.float32), np.zeros(0, np.int64)
    return Dataset(x_train, y_train, x_test, y_test, classes, name, f"{source}, {options.describe()}")


def _split_name(path: Path) -> str:
    """``GunPoint`` for ``GunPoint_TRAIN.ts.gz``."""
    name = path.name
    for suffix in (".gz", ".tsv", ".ts", ".npz"):
        name = name.removesuffix(suffix) if name.lower().endswith(suffix) else name
    stem, sep, rest = name.rpartition("_")
    return stem if sep and rest.upper() == "TRAIN" else name


def _load_text_series(path: Path, options: SeriesOptions, name: str | None) -> Dataset:
    tsv = path.name.lower().removesuffix(".gz").endswith(".tsv")
    reader = read_ucr_tsv if tsv else read_ts
    train = reader(path)
    test_path = test_file_beside(path)
    test = reader(test_path) if test_path is not None else None
    source = f"{path}" + (f" and {test_path.name}" if test_path is not None else " (no _TEST file beside it)")
    return _from_cases(path, train, test, test_path, options, name or _split_name(path), source)


def _npz_series(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or 0 in x.shape[1:]:
        raise _fail(path, f"`{key}` of shape (N, L) or (N, C, L) with C, L >= 1", f"shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise _fail(path, f"`{key}` of real numbers", f"dtype {x.dtype}")
    check_bytes(x.size * 8, what=f"`{key}` of {path} as float64, shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise _fail(path, f"`{key}` without missing or infinite values", "NaN or infinite values")
    return x


def _load_npz_series(path: Path, options: SeriesOptions, name: str | None) -> Dataset:
    arrays = _read_npz(path, ("x_train", "y_train", "x_test", "y_test", "class_names"))
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise _fail(path, "arrays named x_train, y_train, x_test, y_test", f"no {', '.join(missing)}")
    x_train = _npz_series(path, "x_train", arrays["x_train"])
    x_test = _npz_series(path, "x_test", arrays["x_test"])
    if x_train.shape[1:] != x_test.shape[1:] and options.length is None:
        raise _fail(path, f"`x_test` series of the training series' (C, L) = {x_train.shape[1:]}",
                    f"{x_test.shape[1:]}")
    if x_train.shape[1] != x_test.shape[1]:
        raise _fail(path, f"`x_test` series of {x_train.shape[1]} channel(s) as `x_train`", f"{x_test.shape[1]}")
    y_train, y_test, classes = _npz_labels_and_classes(path, arrays, len(x_train), len(x_test))
    train = _Cases([list(s) for s in x_train], [classes[k] for k in y_train], classes, [0] * len(y_train))
    test = _Cases([list(s) for s in x_test], [classes[k] for k in y_test], classes, [0] * len(y_test))
    return _from_cases(path, train, test, path, options, name or _split_name(path), f"{path}")


def load_series(path, options: SeriesOptions | None = None, *, name: str | None = None) -> Dataset:
    """A time-series data set from ``NAME_TRAIN.ts`` (with ``NAME_TEST.ts`` beside it as the test split),
    ``NAME_TRAIN.tsv`` (likewise) or an ``.npz`` of (N, C, L) arrays: float32 ``(N, C, L)`` series,
    normalised as ``options`` say (default: z-normalised per series and channel, the UCR convention).
    :class:`~cnn.data.dataset.DataError` for anything wrong in a file (one line naming the file, the line,
    what was expected and what was found); ``SizeLimitError`` beyond the size limits."""
    path = Path(path)
    options = options or SeriesOptions()
    if path.name.lower().endswith(".npz"):
        return _load_npz_series(path, options, name)
    return _load_text_series(path, options, name)
