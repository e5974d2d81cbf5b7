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

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def invalid(op: str, name: str, expected: str, value, *, extra: str = "") -> str:
    """The one message template: what was invalid, what was expected, what was received."""
    tail = f" {extra}" if extra else ""
    return f"{op}: invalid value for argument `{name}`. Expected {expected}. Received {name}={value!r}.{tail}"


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a stride)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_float_array(x, name: str, op: str, ndim=None, *, shape_hint: str = "") -> np.ndarray:
    """Require a floating-point ``numpy.ndarray`` with ``ndim`` dimensions (an int or a tuple of ints).

    ``shape_hint`` names the expected axes, e.g. ``"(N, C_in, H, W)"``.
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
    return x


def check_int_array(x, name: str, op: str, ndim=None) -> np.ndarray:
    """Require an integer ``numpy.ndarray`` (class labels)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: argument `{name}` must be a numpy.ndarray of ints; received {type(x).__name__}.")
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{op}: argument `{name}` must have an integer dtype; received dtype {x.dtype}.")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{op}: argument `{name}` must have {ndim} dimensions; received shape {x.shape}.")
    return x


def check_int(value, name: str, op: str, *, minimum: int | None = None) -> int:
    """Require an int, at least ``minimum`` when given."""
    if not is_int(value) or (minimum is not None and value < minimum):
        what = "an int" if minimum is None else ("a positive int" if minimum == 1 else f"an int >= {minimum}")
        error = ValueError if is_int(value) else TypeError
        raise error(invalid(op, name, what, value))
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
    return tuple(int(v) for v in items)


def check_float(
    value, name: str, op: str, *, minimum: float | None = None, maximum: float | None = None,
    min_open: bool = False, max_open: bool = False,
) -> float:
    """Require a real number in an interval; ``min_open``/``max_open`` exclude the end points."""
    lo = "" if minimum is None else ("(" if min_open else "[") + repr(minimum)
    hi = "" if maximum is None else repr(maximum) + (")" if max_open else "]")
    if lo and hi:
        expected = f"a number in {lo}, {hi}"
    elif lo:
        expected = f"a number {'>' if min_open else '>='} {minimum}"
    elif hi:
        expected = f"a number {'<' if max_open else '<='} {maximum}"
    else:
        expected = "a number"
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(op, name, expected, value))
    if value != value:  # NaN compares unequal to itself and passes every interval test below
        raise ValueError(invalid(op, name, expected, value))
    if minimum is not None and (value < minimum or (min_open and value == minimum)):
        raise ValueError(invalid(op, name, expected, value))
    if maximum is not None and (value > maximum or (max_open and value == maximum)):
        raise ValueError(invalid(op, name, expected, value))
    return float(value)


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
