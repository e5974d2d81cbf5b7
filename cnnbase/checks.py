"""Argument checks shared by every public function of both engines.

One message template everywhere (after Keras)::

    conv2d: invalid value for argument `stride`. Expected a positive int or a tuple of 2 positive ints.
    Received stride=0.

Checks raise ``TypeError`` for a wrong kind of thing (a list where an array is needed, an int array
where floats are needed) and ``ValueError`` for a right kind with a wrong value or shape. They run in
Python before any computation, so refcnn and fastcnn raise the same errors for the same bad input.
"""

from __future__ import annotations

import numbers

import numpy as np

from .limits import COMPUTE_ITEMSIZE, FLOOR_BYTES, LIMITS, check_array_bytes, environment_value

FLOAT_DTYPES = (np.float16, np.float32, np.float64)

class _Forward:
    """The type of :data:`FORWARD`."""

    def __repr__(self) -> str:
        return "FORWARD"


#: The default of a check's ``grad_out`` parameter: "this is the forward call". Not ``None``, which a caller
#: may pass as a (wrong) ``grad_out`` to a backward and must hear about (a TypeError naming it).
FORWARD = _Forward()

class Verdicts:
    """The answers of a check, remembered by a key of everything it reads (issue 16).

    A network's layers call the engines with the same few shapes for their whole life, and checking them again
    took a convolution's ``fit_geometry`` 8.9 us a call and a batch norm's checks 15.8 (2.9 and 4.6 remembered;
    84 such calls in a ResNet-20 training step, each after a kernel has left the caches cold). A check given
    only what the key holds returns the same answer every time, so the first answer stands for the rest; a
    refusal raises and is never kept. Every key gets ``CNN_MAX_ARRAY_BYTES`` as set at the call and its default
    (the size checks read them). Keys from :func:`array_key`, which holds what the checks read of an array: its type,
    dtype and shape (strides and writeability, where a check reads them, go into the key beside it)."""

    def __init__(self, most: int = 1024) -> None:
        self._answers: dict = {}
        self._most = most

    def get(self, key, check):
        """``check()``'s answer for ``key``, remembered; with ``key`` None (an argument the key cannot describe)
        or unhashable (a list where a number belongs), ``check()`` alone, which then says what is wrong."""
        if key is None:
            return check()
        key = (key, environment_value("CNN_MAX_ARRAY_BYTES"), LIMITS["CNN_MAX_ARRAY_BYTES"])
        try:
            answer = self._answers.get(key)
        except TypeError:
            return check()
        if answer is None:
            answer = check()
            if len(self._answers) >= self._most:
                self._answers.clear()
            self._answers[key] = answer
        return answer


def array_key(a, may_be=()):
    """What the checks read of an array argument (its type, dtype and shape), ``("is", v)`` when ``a`` is one of
    the non-arrays ``may_be`` allows (None, FORWARD), else None: no key (``Verdicts.get`` then checks)."""
    if isinstance(a, np.ndarray):
        return type(a), a.dtype, a.shape
    for allowed in may_be:
        if a is allowed:
            return "is", repr(allowed)
    return None


#: The largest int a hyperparameter may have: the engines' kernels take int64. A larger one (``stride=2**64``)
#: is refused by the checks, in both engines alike, rather than overflow in a kernel's dispatcher.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: What a message adds to its ``expected`` text when an int is out of that range.
INT64_WORDS = "within the 64-bit range [-2**63, 2**63 - 1]"


def invalid(op: str, name: str, expected: str, value, *, extra: str = "") -> str:
    """The one message template: what was invalid, what was expected, what was received."""
    tail = f" {extra}" if extra else ""
    return f"{op}: invalid value for argument `{name}`. Expected {expected}. Received {name}={shown(value)}.{tail}"


#: The longest ``repr`` a message quotes; a longer one is cut in the middle.
SHOWN_CHARS = 200


def shown(value) -> str:
    """``repr(value)`` for a message, at most :data:`SHOWN_CHARS` long: a hostile argument (a list of a
    million items, ``10**5000``, whose repr Python itself refuses) must not turn an error into a flood or
    into another error."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return f"<an int of {value.bit_length()} bits>" if isinstance(value, int) else f"<a {type(value).__name__}>"
    if len(text) > SHOWN_CHARS:
        half = SHOWN_CHARS // 2 - 3
        text = f"{text[:half]} ... {text[-half:]}"
    return text


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a stride)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def in_int64(value) -> bool:
    """True when an int fits the engines' int64 (every int hyperparameter must)."""
    return INT64_MIN <= value <= INT64_MAX


def check_int64(value, name: str, op: str, expected: str, shown=None) -> None:
    """Refuse an int outside int64 (``ValueError``); ``shown`` is the argument as received, when ``value`` is
    one item of it."""
    if not in_int64(value):
        raise ValueError(invalid(op, name, f"{expected}, {INT64_WORDS}", value if shown is None else shown))


def check_float_array(x, name: str, op: str, ndim=None, *, shape_hint: str = "") -> np.ndarray:
    """Require a floating-point ``numpy.ndarray`` with ``ndim`` dimensions (an int or a tuple of ints).

    ``shape_hint`` names the expected axes, e.g. ``"(N, C_in, H, W)"``. The array's shape counted in float64
    must fit ``CNN_MAX_ARRAY_BYTES`` (:func:`check_array_size`): the engines copy or convert their inputs.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{op}: argument `{name}` must be a numpy.ndarray of floats; received {type(x).__name__}."
        )
    if x.dtype.type not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: argument `{name}` must have a floating-point dtype (float16, float32 or float64); "
            f"received dtype {x.dtype}."
        )
    if ndim is not None:
        allowed = (ndim,) if is_int(ndim) else tuple(ndim)
        if x.ndim not in allowed:
            words = " or ".join(str(a) for a in allowed)
            hint = f" {shape_hint}" if shape_hint else ""
            raise ValueError(
                f"{op}: argument `{name}` must have {words} dimensions{hint}; received shape {x.shape}."
            )
    check_array_size(x, name, op)
    return x


def check_array_size(x: np.ndarray, name: str, op: str) -> None:
    """An argument's shape counted in float64 must fit ``CNN_MAX_ARRAY_BYTES``.

    An array in memory can still be too large to copy: a 0-stride view (``np.broadcast_to(1.0, (10**6,
    10**6))``) holds one number but has 10^12 elements, and every engine converts, copies or allocates an
    output of its arguments' shape. So both engines count each array argument as float64 (8 bytes per
    element), the widest type either computes in, and refuse the same calls with the same message."""
    if x.size * COMPUTE_ITEMSIZE > FLOOR_BYTES:  # the argument's words only for an array that may be too large
        check_array_bytes(x.size, f"{op}: argument `{name}`", x.shape)


def check_int_array(x, name: str, op: str, ndim=None) -> np.ndarray:
    """Require an integer ``numpy.ndarray`` (class labels)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: argument `{name}` must be a numpy.ndarray of ints; received {type(x).__name__}.")
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{op}: argument `{name}` must have an integer dtype; received dtype {x.dtype}.")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{op}: argument `{name}` must have {ndim} dimensions; received shape {x.shape}.")
    check_array_size(x, name, op)
    return x


def check_writable(x: np.ndarray, name: str, op: str, why: str) -> None:
    """An array an op writes into (``inplace=True``, running statistics) must be writable and must not have
    two elements in one memory cell (a 0-stride view from ``np.broadcast_to`` or ``as_strided``): writing
    through such a view would lose all but one of the values written there. ``why`` says when it is written,
    e.g. ``"inplace=True writes the result into it"``. Raises ``ValueError`` before anything is computed."""
    if not x.flags.writeable:
        raise ValueError(f"{op}: argument `{name}` must be a writable array ({why}); received a read-only array "
                         f"of shape {x.shape}.")
    if overlaps_itself(x):
        raise ValueError(f"{op}: argument `{name}` must not hold one memory cell under two indices ({why}); "
                         f"received a view of shape {x.shape} with strides {x.strides}.")


def overlaps_itself(x: np.ndarray) -> bool:
    """True when some memory cell is two elements of ``x``: an axis of stride 0, or axes whose strides make
    the elements overlap. Exact for the layouts NumPy creates (slices, transposes, broadcasts); for a
    hand-made ``as_strided`` view it is exact when the strides sorted by size each pass the previous axes'
    span (the usual case), and otherwise says True, which errs on the safe side (a refusal, not a race)."""
    if x.size <= 1:
        return False
    span = x.itemsize
    for stride, size in sorted((abs(s), n) for s, n in zip(x.strides, x.shape) if n > 1):
        if stride < span:
            return True
        span = stride * (size - 1) + span
    return False


def check_int(value, name: str, op: str, *, minimum: int | None = None, int64: bool = True) -> int:
    """Require an int, at least ``minimum`` when given, and within int64 unless ``int64=False`` (for an int
    that is only compared, never handed to a kernel as one: a loss's ``ignore_index``)."""
    what = "an int" if minimum is None else ("a positive int" if minimum == 1 else f"an int >= {minimum}")
    if not is_int(value) or (minimum is not None and value < minimum):
        error = ValueError if is_int(value) else TypeError
        raise error(invalid(op, name, what, value))
    if int64:
        check_int64(value, name, op, what)
    return int(value)


def expand_ints(value, rank: int, name: str, op: str, *, minimum: int = 1) -> tuple[int, ...]:
    """An int or a tuple/list of ``rank`` ints, each at least ``minimum``, as a tuple of ``rank`` ints."""
    word = "positive int" if minimum == 1 else f"int >= {minimum}"
    expected = f"a {word}" if rank == 1 else f"a {word} or a tuple of {rank} {word}s"
    if is_int(value):
        items = (value,) * rank
    elif isinstance(value, (tuple, list)) and len(value) == rank and all(is_int(v) for v in value):
        items = tuple(value)
    else:
        raise (TypeError if not isinstance(value, (tuple, list)) else ValueError)(invalid(op, name, expected, value))
    if any(v < minimum for v in items):
        raise ValueError(invalid(op, name, expected, value))
    if not all(INT64_MIN <= v <= INT64_MAX for v in items):
        for v in items:
            check_int64(v, name, op, expected, shown=value)
    return tuple(int(v) for v in items)


def check_float(
    value, name: str, op: str, *, minimum: float | None = None, maximum: float | None = None,
    min_open: bool = False, max_open: bool = False,
) -> float:
    """Require a real number in an interval; ``min_open``/``max_open`` exclude the end points."""
    if (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and value == value
            and (minimum is None or value > minimum or (not min_open and value == minimum))
            and (maximum is None or value < maximum or (not max_open and value == maximum))):
        try:  # the usual case first: the message below is written only for a refusal (an optimizer step
            return float(value)  # checks five numbers per parameter)
        except OverflowError:
            pass  # a Python int too large for a float (10**400): refused below
    expected = _interval_words(minimum, maximum, min_open, max_open)
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(op, name, expected, value))
    if value != value:  # NaN compares unequal to itself and passes every interval test below
        raise ValueError(invalid(op, name, expected, value))
    if minimum is not None and (value < minimum or (min_open and value == minimum)):
        raise ValueError(invalid(op, name, expected, value))
    if maximum is not None and (value > maximum or (max_open and value == maximum)):
        raise ValueError(invalid(op, name, expected, value))
    return as_float(value, name, op, expected)


def _interval_words(minimum, maximum, min_open: bool, max_open: bool) -> str:
    """What :func:`check_float` expects, as its messages say it."""
    lo = "" if minimum is None else ("(" if min_open else "[") + repr(minimum)
    hi = "" if maximum is None else repr(maximum) + (")" if max_open else "]")
    if lo and hi:
        return f"a number in {lo}, {hi}"
    if lo:
        return f"a number {'>' if min_open else '>='} {minimum}"
    if hi:
        return f"a number {'<' if max_open else '<='} {maximum}"
    return "a number"


def as_float(value, name: str, op: str, expected: str) -> float:
    """``float(value)``, with a Python int too large for a float (``10**400``) refused as a ValueError."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(invalid(op, name, f"{expected} (a finite float64)", value)) from None


def check_bool(value, name: str, op: str) -> bool:
    """Require ``True`` or ``False`` (NumPy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(op, name, "True or False", value))
    return bool(value)


def check_choice(value, name: str, op: str, choices: tuple) -> str:
    """Require one of a few strings."""
    if not isinstance(value, str) or value not in choices:
        expected = "one of " + ", ".join(repr(c) for c in choices)
        raise ValueError(invalid(op, name, expected, value))
    return value


def check_dim(dim, ndim: int, name: str, op: str) -> int:
    """Normalise an axis index in ``[-ndim, ndim)`` to ``[0, ndim)``."""
    if not is_int(dim) or not -ndim <= dim < ndim:
        raise ValueError(invalid(op, name, f"an int in [{-ndim}, {ndim}) for an array of {ndim} dimensions", dim))
    return int(dim) % ndim


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, op: str) -> None:
    """Require two arrays of one shape, naming both shapes when they differ."""
    if a.shape != b.shape:
        raise ValueError(
            f"{op}: arguments `{name_a}` and `{name_b}` must have the same shape; "
            f"received {name_a}.shape={a.shape} and {name_b}.shape={b.shape}."
        )


def check_shape(x: np.ndarray, expected: tuple, name: str, op: str, *, context: str = "") -> None:
    """Require ``x.shape == expected``; ``context`` names the other shapes that decided ``expected``."""
    if x.shape != tuple(expected):
        tail = f" ({context})" if context else ""
        raise ValueError(
            f"{op}: argument `{name}` must have shape {tuple(expected)}{tail}; received shape {x.shape}."
        )


def as_float64(x: np.ndarray) -> np.ndarray:
    """refcnn computes in float64 whatever float dtype it was given."""
    return np.asarray(x, dtype=np.float64)


def printable(text) -> str:
    """``text`` safe to print on one terminal line: control characters (newlines, ANSI escapes) and other
    unprintable ones as Python escapes (``'a\\nb'`` -> ``'a\\\\nb'``), everything printable unchanged. Names that
    come from files (class names, layer names) go through this before they reach a terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
