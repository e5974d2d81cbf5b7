"""Size limits: every size the library would allocate or decompress is computed from shapes first and checked
here, so that a huge or hostile input fails at once with one line instead of swapping for minutes.

Three limits, each overridable by an environment variable read at every check (so a test or a user can raise
it for one command: ``CNN_MAX_ARRAY_BYTES=32G cnn train ...``); ``specs/errors.md`` documents them:

============================  =======================  ============================================================
limit                         default                  what it bounds
============================  =======================  ============================================================
``CNN_MAX_ARRAY_BYTES``       4 GiB                    one array an op, a layer or a model allocates: an output, a
                                                       workspace, an index map, a weight tensor
``CNN_MAX_FILE_BYTES``        2 GiB                    what one file expands to when read: a decompressed gzip
                                                       stream, one member of a zip/npz archive, an ``.npy`` payload
``CNN_MAX_IMAGE_PIXELS``      67,108,864 (8192^2)      the pixels of one image file, checked from its header before
                                                       it is decoded
============================  =======================  ============================================================

A value is a plain count or one with a binary suffix: ``K``, ``M``, ``G``, ``T`` (powers of 1024), e.g.
``8G``. A check that fails raises :class:`SizeLimitError`, a ``ValueError`` whose message names the parameter
that asked for the size, the size needed and the limit, and the variable that raises it.
"""

from __future__ import annotations

import math
import os
import re

__all__ = [
    "SizeLimitError", "LIMITS", "limit", "check_bytes", "check_count", "nbytes_of", "format_bytes",
    "COMPUTE_ITEMSIZE", "FLOOR_BYTES", "check_array_bytes", "check_arrays", "environment_value",
]

#: The bytes per element the engines' checks count for every array, whatever its dtype: float64, the widest
#: type either engine computes in (refcnn always does). One count for both engines, so that refcnn and
#: fastcnn refuse the same calls with the same message.
COMPUTE_ITEMSIZE = 8

#: The limits and their defaults, by environment variable.
LIMITS = {
    "CNN_MAX_ARRAY_BYTES": 4 * 1024**3,
    "CNN_MAX_FILE_BYTES": 2 * 1024**3,
    "CNN_MAX_IMAGE_PIXELS": 8192 * 8192,
}

_SUFFIX = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_VALUE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)


def _environment_reader():
    """A function ``name -> str or None`` equal to ``os.environ.get``. The checks read a limit at every call, and in a
    training step, where a kernel has just left the caches cold, ``os.environ.get`` cost about 10 us (it goes
    through os's and collections.abc's Python methods); CPython's ``os.environ`` keeps its values in a dict of
    its own, updated in place by every change made through ``os.environ``, which is read here directly (about
    2 us). Where that dict is not at hand (another interpreter), ``os.environ.get`` itself."""
    data, encode, decode = (getattr(os.environ, name, None) for name in ("_data", "encodekey", "decodevalue"))
    if not (isinstance(data, dict) and callable(encode) and callable(decode)):
        return os.environ.get
    keys = {name: encode(name) for name in LIMITS}

    def get(name: str):
        value = data.get(keys[name] if name in keys else encode(name))
        return None if value is None else decode(value)

    return get


#: ``os.environ.get``, for the limits' variables at every check (:func:`_environment_reader`).
environment_value = _environment_reader()


class SizeLimitError(ValueError):
    """A size larger than one of the :data:`LIMITS`; the message names the parameter, the size and the limit."""


def limit(name: str) -> int:
    """The limit ``name`` (one of :data:`LIMITS`): the environment's value when set, else the default.

    A set but unreadable value raises :class:`SizeLimitError` naming the variable (it is never ignored: a user
    who raised a limit and mistyped it should hear about it, not get the default)."""
    if name not in LIMITS:
        raise KeyError(f"no size limit named {name!r}; the limits are {', '.join(LIMITS)}")
    text = environment_value(name)
    if text is None or text.strip() == "":
        return LIMITS[name]
    match = _VALUE.fullmatch(text)
    if match is None:
        raise SizeLimitError(
            f"environment variable {name}: expected a size such as 4294967296 or 4G; received {text!r}")
    return int(match.group(1)) * _SUFFIX[match.group(2).upper()]


def format_bytes(n: int) -> str:
    """Binary units, as every table and message of the project writes bytes: ``900136`` -> ``'879.04 KiB'``;
    past a million EiB in scientific form (``'3.4e+09 EiB'``), and past what a float divides as a power of
    two (``'about 2**1329 bytes'``), so that the size of an absurd request stays short."""
    n = int(n)
    if n < 1024:
        return f"{n} B"
    if n.bit_length() > 1000:  # 10**400 / 1024**6 would overflow a float
        return f"about 2**{n.bit_length() - 1} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    exponent = min(len(units), (n.bit_length() - 1) // 10)  # the largest unit not above n
    value = n / 1024**exponent
    unit = units[exponent - 1]
    return f"{value:.2f} {unit}" if value < 1e6 else f"{value:.2g} {unit}"


def nbytes_of(shape, itemsize: int) -> int:
    """The bytes of an array of ``shape`` and ``itemsize``, as an exact Python int (never overflows)."""
    return math.prod(int(n) for n in shape) * int(itemsize)


def check_bytes(nbytes: int, *, what: str, name: str = "CNN_MAX_ARRAY_BYTES") -> int:
    """Require ``nbytes <= limit(name)``; ``what`` says who asks, e.g. ``"conv2d: the output for padding=10**8"``.

    Returns ``nbytes``. The message reads::

        dropout_mask: the mask of shape (1000000000000,) for shape=(1000000000000,) needs 7.28 TiB
        (8000000000000 bytes); the limit is 4.00 GiB (set CNN_MAX_ARRAY_BYTES to raise it)
    """
    nbytes = int(nbytes)
    bound = limit(name)
    if nbytes > bound:
        exact = f" ({nbytes} bytes)" if nbytes < 10**30 else ""
        raise SizeLimitError(
            f"{what} needs {format_bytes(nbytes)}{exact}; the limit is {format_bytes(bound)} "
            f"(set {name} to raise it)")
    return nbytes


def check_count(count: int, *, what: str, name: str = "CNN_MAX_IMAGE_PIXELS") -> int:
    """Require ``count <= limit(name)`` for a limit that counts things (pixels), not bytes."""
    count = int(count)
    bound = limit(name)
    if count > bound:
        raise SizeLimitError(f"{what} has {count:,} pixels; the limit is {bound:,} (set {name} to raise it)")
    return count


#: The engines never refuse an array of at most this many bytes (as float64), whatever CNN_MAX_ARRAY_BYTES
#: says: a limit that low protects nothing, and not reading the environment (about 1.5 us, a third of a small
#: op's whole cost) keeps small calls as fast as they were before there were limits.
FLOOR_BYTES = 64 * 1024


def check_array_bytes(count: int, what: str, shape) -> None:
    """An array argument of ``count`` elements of ``shape``, counted as float64 (:data:`COMPUTE_ITEMSIZE`),
    must fit ``CNN_MAX_ARRAY_BYTES`` (unless it is at most :data:`FLOOR_BYTES`); ``what`` names the op and
    the argument, e.g. ``"relu: argument `x`"``."""
    nbytes = count * COMPUTE_ITEMSIZE
    # the message only when it is needed: writing it for every array of a training step cost more than the op's
    # other checks together (a 3 MB activation: 4.0 -> 1.3 us a check)
    if nbytes > FLOOR_BYTES and nbytes > limit("CNN_MAX_ARRAY_BYTES"):
        check_bytes(nbytes, what=f"{what} of shape {shape_text(shape)} (as float64)")


def check_arrays(op: str, arrays, cause) -> None:
    """Every array an op is about to allocate, ``(label, shape)`` pairs of ints computed from shapes and
    hyperparameters alone, counted as float64 against ``CNN_MAX_ARRAY_BYTES`` (none of them is refused when
    all are at most :data:`FLOOR_BYTES`); the first one too large raises
    :class:`SizeLimitError`. ``cause`` (a string, or a function returning one, called only then) names the
    arguments that decided the sizes, e.g. ``"x.shape=(1, 1, 7, 7), padding=100000000"``. The message reads::

        conv2d: the padded input (N, C_in, H + p_b + p_e, W + p_b + p_e) of shape (1, 1, 200000007, 200000007)
        for x.shape=(1, 1, 7, 7), weight.shape=(1, 1, 3, 3), stride=1, padding=100000000, dilation=1 needs
        ...; the limit is 4.00 GiB (set CNN_MAX_ARRAY_BYTES to raise it)
    """
    arrays = [(label, shape, math.prod(shape) * COMPUTE_ITEMSIZE) for label, shape in arrays]
    if all(nbytes <= FLOOR_BYTES for _, _, nbytes in arrays):
        return
    bound = limit("CNN_MAX_ARRAY_BYTES")
    for label, shape, nbytes in arrays:
        if nbytes > bound:
            text = cause() if callable(cause) else cause
            tail = f" for {text}" if text else ""
            check_bytes(nbytes, what=f"{op}: {label} of shape {shape_text(shape)}{tail}")


def shape_text(shape) -> str:
    """A shape as a message shows it, ``(2, 3)``; a size too long to print (10**5000, whose decimal digits
    Python refuses to write) as its bit length."""
    items = [repr(int(n)) if abs(int(n)) < 10**100 else f"<an int of {int(n).bit_length()} bits>" for n in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
