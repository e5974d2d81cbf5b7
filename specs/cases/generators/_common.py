"""What the conformance-case generators share: JSON values, case dicts and the layout of the file.

Each generator in this folder writes one ``specs/cases/<family>.json`` in the format of
specs/cases/README.md. The format is spelled here once, so that the families cannot drift apart: how a
float and an array are written, which keys a case has and in which order, and how the file is laid out.
What stays in a generator is what belongs to its family: its inputs, its oracle and its cases.

A generator runs as a script (``python specs/cases/generators/<family>.py``), so Python puts this folder
first on ``sys.path`` and ``import _common`` finds this file from any working directory.

This module imports only NumPy and the standard library. Like the generators, it must never import the
engines under test (refcnn, fastcnn): the expected values are to be independent of them. It does not import
PyTorch either, because dropout.py needs none.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

FORMAT = "cnn-conformance-cases/1"
CASES_DIR = Path(__file__).resolve().parent.parent  # specs/cases/, where the JSON files live


def torch_source() -> str:
    """The ``source`` of a case that PyTorch computed, e.g. "torch 2.13.0" (no local tag such as "+cpu")."""
    import torch  # here rather than at the top: only the generators that use PyTorch call this

    return f"torch {torch.__version__.split('+')[0]}"


# ---------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------


def number(v, *, whole_as_int: bool = False):
    """One array element as a JSON scalar.

    NaN and the infinities become the strings "nan", "inf" and "-inf" of the README: JSON has no spelling
    for them, and json.dumps would write NaN and Infinity, which strict JSON readers refuse. Integers stay
    ints. With ``whole_as_int`` a float without a fraction is written as an int (``3`` for ``3.0``), which
    keeps hand-written values short; only below 2**53, where every integer is exactly a float64, so that
    reading the int back gives the same float.
    """
    if isinstance(v, (int, np.integer)):  # bool too: True is written as 1
        return int(v)
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if whole_as_int and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _as_numpy(values) -> np.ndarray:
    # A tensor can exist only if the generator imported torch, so look the module up rather than import it.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(values, torch.Tensor):
        return values.detach().numpy()
    return np.asarray(values)


def array(values, dtype=None, *, whole_as_int: bool = False) -> dict | None:
    """An array value of the README: ``{"shape": [...], "data": [...]}``, ``data`` in row-major order.

    ``values`` is anything ``np.asarray`` takes, or a torch tensor; ``None`` (a missing bias, a gradient
    that is None) stays ``None`` and is written as null. ``dtype`` ("int64" or ``np.int64``: class labels,
    pooling indices) converts the values and is written as the "dtype" key. Without it the key is left out,
    which the README reads as float64, even where the values are written as ints: a hand-typed ``[[1, 3]]``
    is a float map. ``whole_as_int`` is passed on to `number`.
    """
    if values is None:
        return None
    a = _as_numpy(values)
    if dtype is not None:
        a = np.asarray(a, dtype=dtype)
    out = {"shape": list(a.shape), "data": [number(v, whole_as_int=whole_as_int) for v in a.reshape(-1).tolist()]}
    if dtype is not None:
        out["dtype"] = np.dtype(dtype).name
    return out


# ---------------------------------------------------------------------------------------------------------
# Cases and the file
# ---------------------------------------------------------------------------------------------------------


def case(name, op, doc, source, args, expected=None, *, kwargs=None, raises=None, match=None, tol=None,
         **extra) -> dict:
    """One case as a dict, its fields always in the README's order, so re-runs and diffs stay stable.

    A case either expects a value (``expected``, which may legitimately be None) or raises an error
    (``raises``, with an optional ``match``); ``raises`` decides which. Empty ``kwargs`` are left out.
    ``tol`` is the comparison tolerance: one number for both ``atol`` and ``rtol``, or an ``(atol, rtol)``
    pair; it is written only with ``expected``, since an error case compares no numbers. ``extra`` fields
    (such as ``after``) come last, in the order given.
    """
    c = {"name": name, "op": op, "doc": doc, "source": source, "args": args}
    if kwargs:
        c["kwargs"] = kwargs
    if raises:
        c["raises"] = raises
        if match:
            c["match"] = match
    else:
        c["expected"] = expected
        if tol is not None:
            atol, rtol = (tol, tol) if isinstance(tol, (int, float)) else tol
            c["atol"] = atol
            c["rtol"] = rtol
    c.update(extra)
    return c


_INNERMOST_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)


def dumps(doc: dict, *, one_line_lists: bool = False) -> str:
    """The file's text: JSON indented by 1, ending in a newline.

    Indent 1 keeps the nesting visible without making the files much larger. With ``one_line_lists``
    every innermost list (an array's data, a shape, a padding pair) is put back on one line, as conv.json
    has it; the other files keep json.dumps's one element per line. Either way the text depends only on
    the cases, so re-running a generator reproduces its file byte for byte.
    """
    text = json.dumps(doc, indent=1)
    if one_line_lists:
        text = _INNERMOST_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    return text + "\n"


def write_cases(family: str, cases: list[dict], *, one_line_lists: bool = False) -> Path:
    """Write ``specs/cases/<family>.json`` (its spec is ``specs/<family>.md``) and say so; return the path.

    Stops first if two cases share a name: the README wants names unique, and a test runner keyed by name
    would silently run only one of them.
    """
    repeated = sorted(name for name, count in Counter(c["name"] for c in cases).items() if count > 1)
    if repeated:
        raise SystemExit(f"{family}: case names must be unique, repeated: {repeated}")
    doc = {"format": FORMAT, "family": family, "spec": f"{family}.md", "cases": cases}
    path = CASES_DIR / f"{family}.json"
    path.write_text(dumps(doc, one_line_lists=one_line_lists))
    print(f"wrote {len(cases)} cases to {path}")
    return path
