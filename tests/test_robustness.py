"""Hostile arguments at every public function of both engines: the result, or the same documented error.

For each function of ``refcnn.OPS`` and ``refcnn.GEOMETRY_OPS`` (fastcnn has the same names), Hypothesis
draws a plausible call (shapes that fit together, as a user would write it) and then spoils some of its
arguments: wrong types, dtypes (int, bool, object, complex, big-endian, float16), ndim, layouts
(non-contiguous, negative strides, Fortran order, 0-stride broadcasts, read-only), NaN and infinity in values
and hyperparameters, huge and negative sizes, ints beyond int64, empty axes. Both engines get their own fresh
copy of the same arguments, built from one recipe. The property (``specs/errors.md``):

* either both return, and their results agree (same structure and shapes; values within a tolerance of the
  narrowest float dtype given, compared where both are finite),
* or both raise the same exception type, a ``TypeError`` or a ``ValueError`` (``SizeLimitError``,
  ``ShapeError`` included), with the same message;
* never anything else: no Numba typing error, ``IndexError``, ``OverflowError``, ``ZeroDivisionError``,
  ``MemoryError`` or ``SystemError``, and no crash.

``CNN_MAX_ARRAY_BYTES`` is lowered to 1 MiB while the calls run, so that a huge size is refused at once
and a large-but-allowed one still costs refcnn's Python loops little.

CI runs the profile's examples per function (``MAX_EXAMPLES``); a long exploratory run is::

    CNN_ROBUSTNESS_EXAMPLES=300 CNN_ROBUSTNESS_LOG=/tmp/robust.txt python -m pytest -q tests/test_robustness.py

which appends one line per function to the log: calls tried, clean (the property held), bad, and how many of
the clean ones returned and raised.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastcnn
import refcnn
from cnnbase.conv import conv_geometry, conv_transpose_geometry
from cnnbase.limits import SizeLimitError, check_arrays
from cnnbase.pool import pool_geometry

NAMES = [name for names in refcnn.OPS.values() for name in names] + list(refcnn.GEOMETRY_OPS)
ALLOWED = (TypeError, ValueError)
LIMIT = "1M"  # CNN_MAX_ARRAY_BYTES while the calls run
MAX_EXAMPLES = int(os.environ.get("CNN_ROBUSTNESS_EXAMPLES", "10"))
COUNTS: Counter = Counter()


# ---------------------------------------------------------------------------------------------------------
# Recipes: what to build, built afresh for each engine (dropout(inplace=True) writes into its x)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arr:
    """An array to build: ``kind`` of values, then ``layout`` (how it sits in memory)."""

    shape: tuple
    dtype: Any = "float64"
    seed: int = 0
    fill: str = "normal"  # normal, nan, inf, zero, huge, labels:<C>
    layout: str = "c"  # c, f, strided, reversed, readonly, broadcast, bigendian, zero_stride_writable


@dataclass(frozen=True)
class Geo:
    """A geometry from cnnbase's resolvers, or one of them spoiled field by field."""

    kind: str  # conv, conv_transpose, pool
    args: tuple
    kwargs: tuple = ()
    spoil: tuple = ()  # (field, value) pairs replaced after resolving


@dataclass(frozen=True)
class State:
    """An optimizer's state: the one its first step returns (``step=None``: no step yet), then spoiled."""

    op: str
    param: Arr
    spoil: tuple = ()  # (key, value) pairs; value DROP removes the key


DROP = "<drop>"


def build(value):
    """The argument a recipe describes (other values as they are; tuples and lists item by item)."""
    if isinstance(value, Arr):
        return _array(value)
    if isinstance(value, Geo):
        return _geometry(value)
    if isinstance(value, State):
        return _state(value)
    if isinstance(value, tuple) and any(isinstance(v, (Arr, Geo, State)) for v in value):
        return tuple(build(v) for v in value)
    return value


def _values(a: Arr) -> np.ndarray:
    rng = np.random.default_rng(a.seed)
    shape = a.shape
    if a.fill.startswith("labels:"):
        c = int(a.fill.split(":")[1])
        return rng.integers(0, max(c, 1), size=shape)
    v = rng.standard_normal(shape)
    if a.fill == "zero":
        v = np.zeros(shape)
    elif a.fill in ("nan", "inf") and v.size:
        v.reshape(-1)[rng.integers(0, v.size, size=max(1, v.size // 3))] = np.nan if a.fill == "nan" else np.inf
    elif a.fill == "huge":
        v = v * 1e300
    return v


def _array(a: Arr) -> np.ndarray:
    with np.errstate(all="ignore"):  # NaN and 1e300 cast to ints or float16
        return _layout(a, _values(a))


def _layout(a: Arr, v: np.ndarray) -> np.ndarray:
    dtype = np.dtype(a.dtype)
    if dtype.kind == "c":
        v = v + 1j
    base = np.asarray(v).astype(dtype)
    if a.layout == "f":
        return np.asfortranarray(base)
    if a.layout == "strided" and base.ndim:
        wide = np.zeros(base.shape[:-1] + (2 * base.shape[-1],), dtype=base.dtype)
        wide[..., ::2] = base
        return wide[..., ::2]
    if a.layout == "reversed" and base.ndim:
        return np.ascontiguousarray(base[::-1])[::-1]
    if a.layout == "readonly":
        base.setflags(write=False)
        return base
    if a.layout == "broadcast" and base.ndim and base.size:
        return np.broadcast_to(base[(slice(0, 1),) * base.ndim], base.shape)
    if a.layout == "zero_stride_writable" and base.ndim and base.size:
        return np.lib.stride_tricks.as_strided(base[(slice(0, 1),) * base.ndim].copy(), base.shape,
                                               (0,) * base.ndim, writeable=True)
    if a.layout == "bigendian" and dtype.kind in "fiu" and dtype.itemsize > 1:
        return base.astype(base.dtype.newbyteorder(">"))
    return base


def _geometry(g: Geo):
    resolver = {"conv": conv_geometry, "conv_transpose": conv_transpose_geometry, "pool": pool_geometry}[g.kind]
    geom = resolver(*g.args, **dict(g.kwargs))
    return dataclasses.replace(geom, **dict(g.spoil)) if g.spoil else geom


def _state(s: State):
    param = _array(s.param)
    _, state = getattr(refcnn, s.op)(param, np.ones_like(param, dtype=np.float64))
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    for key, value in s.spoil:
        if value == DROP:
            state.pop(key, None)
        else:
            state[key] = build(value)
    return state


# ---------------------------------------------------------------------------------------------------------
# Plausible calls, family by family: (args, kwargs) of recipes
# ---------------------------------------------------------------------------------------------------------

FLOATS = ("float64", "float32")


def arr(draw, shape, dtype=None, fill="normal"):
    return Arr(tuple(shape), dtype or draw(st.sampled_from(FLOATS)), draw(st.integers(0, 2**16)), fill)


def forward_name(name: str) -> str:
    return name[: -len("_backward")] if name.endswith("_backward") else name


def _conv(draw, op):
    rank = 2 if op.endswith("2d") else 1
    transposed = "transpose" in op
    G = draw(st.integers(1, 2))
    c_in, c_out = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    n = draw(st.integers(0, 2))
    sizes = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    x = arr(draw, (n, c_in) + sizes)
    w = arr(draw, ((c_in, c_out // G) if transposed else (c_out, c_in // G)) + kernel)
    kwargs = dict(bias=draw(st.none() | st.just(arr(draw, (c_out,)))), stride=draw(st.integers(1, 2)),
                  padding=draw(st.sampled_from([0, 1, 2] if transposed else [0, 1, 2, "same", "valid"])),
                  dilation=draw(st.integers(1, 2)), groups=G)
    if transposed:
        kwargs["output_padding"] = draw(st.integers(0, 1))
    else:
        kwargs["padding_mode"] = draw(st.sampled_from(["zeros", "replicate", "reflect", "circular"]))
    return [x, w], kwargs


def _pool(draw, op):
    rank = 2 if op.endswith("2d") else 1
    x = arr(draw, (draw(st.integers(0, 2)), draw(st.integers(1, 2))) + tuple(draw(st.integers(1, 6)) for _ in range(rank)))
    if op.startswith("global"):
        return [x], {}
    kwargs = dict(stride=draw(st.none() | st.integers(1, 3)), padding=draw(st.integers(0, 1)),
                  ceil_mode=draw(st.booleans()))
    if op.startswith("max"):
        kwargs.update(dilation=draw(st.integers(1, 2)), return_indices=draw(st.booleans()))
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if rank == 2:
            kwargs["divisor_override"] = draw(st.none() | st.integers(1, 4))
    return [x, draw(st.integers(1, 3))], kwargs


def _any_shape(draw, min_dims=0):
    return tuple(draw(st.integers(0, 4)) for _ in range(draw(st.integers(min_dims, 3))))


def _activation(draw, op):
    x = arr(draw, _any_shape(draw))
    kwargs = {}
    if op == "leaky_relu":
        kwargs["negative_slope"] = draw(st.floats(-2, 2))
    elif op == "elu":
        kwargs["alpha"] = draw(st.floats(-2, 2))
    elif op in ("softmax", "log_softmax"):
        kwargs["dim"] = draw(st.integers(-3, 2))
    return [x], kwargs


def _dense(draw, op):
    if op == "flatten":
        return [arr(draw, _any_shape(draw))], dict(start_dim=draw(st.integers(-3, 2)), end_dim=draw(st.integers(-3, 2)))
    f_in, f_out = draw(st.integers(0, 4)), draw(st.integers(1, 4))
    batch = _any_shape(draw)[:2]
    return [arr(draw, batch + (f_in,)), arr(draw, (f_out, f_in))], dict(bias=draw(st.none() | st.just(arr(draw, (f_out,)))))


def _dropout(draw, op):
    if op == "dropout_mask":
        return [_any_shape(draw), draw(st.floats(0, 1)), draw(st.integers(-(2**70), 2**70))], {}
    return [arr(draw, _any_shape(draw))], dict(p=draw(st.floats(0, 1)), training=draw(st.booleans()),
                                               inplace=draw(st.booleans()), seed=draw(st.integers(0, 2**64)))


def _norm(draw, op):
    c = draw(st.integers(1, 3))
    x = arr(draw, (draw(st.integers(1, 3)), c) + _any_shape(draw)[:2])
    stats = draw(st.booleans())
    kwargs = dict(weight=draw(st.none() | st.just(arr(draw, (c,)))), bias=draw(st.none() | st.just(arr(draw, (c,)))),
                  training=draw(st.booleans()), momentum=draw(st.floats(0, 1)), eps=draw(st.sampled_from([1e-5, 0.1])))
    return [x, arr(draw, (c,), fill="zero") if stats else None, Arr((c,), "float64", 0, "zero") if stats else None], kwargs


def _loss(draw, op):
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    if op in ("cross_entropy", "nll_loss"):
        n, c = draw(st.integers(0, 3)), draw(st.integers(1, 4))
        target = Arr((n,), draw(st.sampled_from(["int64", "int32", "uint8"])), draw(st.integers(0, 99)), f"labels:{c}")
        kwargs = dict(weight=draw(st.none() | st.just(arr(draw, (c,)))), ignore_index=draw(st.sampled_from([-100, 0])),
                      reduction=reduction)
        if op == "cross_entropy":
            kwargs["label_smoothing"] = draw(st.floats(0, 1))
        return [arr(draw, (n, c)), target], kwargs
    shape = _any_shape(draw)
    return [arr(draw, shape), arr(draw, shape)], dict(reduction=reduction)


def _optim(draw, op):
    param = arr(draw, _any_shape(draw))
    state = draw(st.none() | st.just(State(op, param)))
    return [param, arr(draw, param.shape), state], {}


def _augment(draw, op):
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 2))
    x = arr(draw, (n, c, draw(st.integers(1, 5)), draw(st.integers(1, 5))))
    kwargs = dict(pixel=draw(st.none() | st.just(arr(draw, (n, 2), "float64"))),
                  erase=draw(st.none() | st.just(Arr((n, 4), "int64", draw(st.integers(0, 99)), "labels:4"))),
                  fill_mode=draw(st.sampled_from(["constant", "nearest", "reflect", "wrap"])),
                  fill_value=draw(st.floats(-2, 2)), interpolation=draw(st.sampled_from(["nearest", "bilinear"])))
    return [x, arr(draw, (n, 6), "float64")], kwargs


def _geometry_op(draw, op):
    if op.startswith("conv"):
        fwd = draw(st.sampled_from(["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]))
        (x, w), kwargs = _conv(draw, fwd)
        rank = 2 if fwd.endswith("2d") else 1
        bias = kwargs.pop("bias")
        bshape = None if bias is None else bias.shape
        if "transpose" in fwd:
            names = ("stride", "padding", "output_padding", "groups", "dilation")
            geo = Geo("conv_transpose", (fwd, x.shape, w.shape, bshape) + tuple(kwargs[k] for k in names) + (rank,))
        else:
            names = ("stride", "padding", "dilation", "groups", "padding_mode")
            geo = Geo("conv", (fwd, x.shape, w.shape, bshape) + tuple(kwargs[k] for k in names) + (rank,))
        return [geo, x, w], dict(bias=bias)
    fwd = draw(st.sampled_from(["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"]))
    (x, k), kwargs = _pool(draw, fwd)
    rank = 2 if fwd.endswith("2d") else 1
    kind = fwd[:3]
    extra = dict(kind=kind, return_indices=kwargs.get("return_indices", False),
                 count_include_pad=kwargs.get("count_include_pad", True),
                 divisor_override=kwargs.get("divisor_override"))
    geo = Geo("pool", (fwd, x.shape, k, kwargs["stride"], kwargs["padding"], kwargs.get("dilation", 1),
                       kwargs["ceil_mode"], rank), tuple(extra.items()))
    return [geo, x], {}


FAMILY = {"conv": _conv, "pool": _pool, "activations": _activation, "dense": _dense, "dropout": _dropout,
          "norm": _norm, "losses": _loss, "optim": _optim, "augment": _augment}


def _family(name: str) -> str:
    for family, names in refcnn.OPS.items():
        if name in names:
            return family
    return "geometry"


# ---------------------------------------------------------------------------------------------------------
# Spoiling
# ---------------------------------------------------------------------------------------------------------

HOSTILE_SCALARS = [
    None, True, False, 0, -1, 1, 3, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**12, 10**400, 1.5, -0.0,
    float("nan"), float("inf"), -float("inf"), 1e308, "", "abc", "same", "valid", "zeros", "reflect", (), (1,),
    (1, 2), (1, 2, 3), [2, 2], ((1, 2), (3, 4)), (0, 0), (-1, 1), (2**64, 1), (1.5, 2), np.int64(2),
    np.uint64(2**64 - 1), np.float32(0.5), np.bool_(True), np.float64("nan"), complex(1, 2), b"x", {}, [],
    object(), ("a", "b"), 10**6, -(10**6), np.int8(-3),
]
LAYOUTS = ["f", "strided", "reversed", "readonly", "broadcast", "bigendian", "zero_stride_writable"]
DTYPES = ["float16", "float32", "float64", "int64", "int32", "bool", "complex128", "object", "uint64", ">f8", ">f4"]
FILLS = ["nan", "inf", "zero", "huge"]


@st.composite
def spoiled_array(draw, a: Arr):
    """``a`` with one thing changed: dtype, layout, values, or shape (ndim, empty or large axes)."""
    what = draw(st.sampled_from(["dtype", "layout", "layout", "fill", "shape", "shape"]))
    if what == "dtype":
        return dataclasses.replace(a, dtype=draw(st.sampled_from(DTYPES)))
    if what == "layout":
        return dataclasses.replace(a, layout=draw(st.sampled_from(LAYOUTS)))
    if what == "fill":
        return dataclasses.replace(a, fill=draw(st.sampled_from(FILLS)))
    shape = list(a.shape)
    how = draw(st.sampled_from(["add", "drop", "zero", "big", "one"]))
    if how == "add":
        shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(1, 3)))
    elif how == "drop" and shape:
        shape.pop(draw(st.integers(0, len(shape) - 1)))
    elif shape:
        i = draw(st.integers(0, len(shape) - 1))
        shape[i] = {"zero": 0, "big": draw(st.sampled_from([7, 50, 3000])), "one": 1}[how]
    if math.prod(shape) > 6000:  # the arrays stay small (refcnn loops in Python); huge sizes come from
        shape = [min(n, 4) for n in shape]  # hyperparameters and 0-stride views
    return dataclasses.replace(a, shape=tuple(shape))


def spoiled_geometry(draw, g: Geo):
    field = draw(st.sampled_from(["N", "sizes", "out", "stride", "pads", "kernel", "op", "G", "out_sizes",
                                  "batch", "channels", "dilation", "transposed"]))
    value = draw(st.sampled_from([-1, 0, 10**9, (2, 2), (0,), (99, 99), "conv9d", [1], None, 2**64, True]))
    return dataclasses.replace(g, spoil=((field, value),))


def spoiled_state(draw, s: State):
    key = draw(st.sampled_from(["step", "exp_avg", "exp_avg_sq", "square_avg", "acc_delta", "momentum_buffer"]))
    value = draw(st.sampled_from([DROP, -1, 2**64, 1.5, None, "x", Arr((7,)), Arr((), "int64"),
                                  dataclasses.replace(s.param, layout="broadcast")]))
    return dataclasses.replace(s, spoil=((key, value),))


@st.composite
def spoiled(draw, value):
    """One argument made hostile, often from its own plausible value."""
    if isinstance(value, Arr) and draw(st.integers(0, 3)):
        return draw(spoiled_array(value))
    if isinstance(value, Geo) and draw(st.booleans()):
        return spoiled_geometry(draw, value)
    if isinstance(value, State) and draw(st.booleans()):
        return spoiled_state(draw, value)
    if draw(st.integers(0, 4)) == 0:
        return arr(draw, _any_shape(draw))
    return draw(st.sampled_from(HOSTILE_SCALARS))


@st.composite
def hostile_calls(draw, name: str):
    """(name, args, kwargs) recipes: a plausible call of ``name`` with 0 to 3 arguments spoiled (and a
    ``grad_out`` of the forward's output shape for a backward)."""
    fwd = forward_name(name)
    family = _family(fwd)
    args, kwargs = (_geometry_op if family == "geometry" else FAMILY[family])(draw, fwd)
    if name.endswith("_backward"):
        args = [_grad_out(draw, fwd, args, kwargs)] + list(args)
    names = [("args", i) for i in range(len(args))] + [("kwargs", k) for k in kwargs]
    for _ in range(draw(st.integers(0, 3))):
        where, key = draw(st.sampled_from(names))
        target = args if where == "args" else kwargs
        target[key] = draw(spoiled(target[key]))
    return name, tuple(args), kwargs


def _grad_out(draw, fwd, args, kwargs):
    """A plausible ``grad_out``: of the shape refcnn's forward returns (a float for a reduced loss)."""
    if kwargs.get("reduction", "none") != "none":
        return draw(st.sampled_from([1.0, 0.5, -2.0, Arr((), "float64")]))
    outcome = _run(refcnn, fwd.replace("conv_backward", "conv_forward").replace("pool_backward", "pool_forward"),
                   args, kwargs)
    shape = (3,)
    if outcome[0] == "ok":
        first = outcome[1][0] if isinstance(outcome[1], tuple) else outcome[1]
        shape = getattr(first, "shape", shape)
    return arr(draw, shape)


# ---------------------------------------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------------------------------------


def _run(engine, name, args, kwargs):
    """``('ok', result)`` or ``('error', exception)`` of one call on freshly built arguments."""
    try:
        built_args = [build(a) for a in args]
        built_kwargs = {k: build(v) for k, v in kwargs.items()}
    except Exception as exc:  # noqa: BLE001 - a recipe the resolvers refuse: pass that error as the argument
        return "error", exc
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return "ok", getattr(engine, name)(*built_args, **built_kwargs)
        except Exception as exc:  # noqa: BLE001 - what is raised is the point
            return "error", exc


def _leaves(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [("key", k) for k in sorted(value)] + [leaf for k in sorted(value) for leaf in _leaves(value[k])]
    return [value]


def _tolerance(args, kwargs) -> float:
    """Relative tolerance for the narrowest float dtype among the arguments (fastcnn computes in it)."""
    dtypes = [np.dtype(v.dtype) for v in _leaves([list(args), kwargs]) if isinstance(v, Arr)]
    sizes = [d.itemsize for d in dtypes if d.kind == "f"]
    narrowest = min(sizes, default=8)
    return {2: 2e-2, 4: 2e-4}.get(narrowest, 1e-9)


def assert_results_agree(ref, fast, tol, what):
    ref_leaves, fast_leaves = _leaves(ref), _leaves(fast)
    assert len(ref_leaves) == len(fast_leaves), f"{what}: results of different structure {ref!r} {fast!r}"
    for r, f in zip(ref_leaves, fast_leaves):
        if r is None or f is None or isinstance(r, (tuple, str)):
            assert r == f if not isinstance(r, float) else True, f"{what}: {r!r} != {f!r}"
            continue
        r, f = np.asarray(r), np.asarray(f)
        assert r.shape == f.shape, f"{what}: shape {f.shape} != {r.shape}"
        if r.dtype.kind in "iu" or f.dtype.kind in "iu":
            np.testing.assert_array_equal(f, r, err_msg=what)
            continue
        r, f = r.astype(np.float64), f.astype(np.float64)
        both = np.isfinite(r) & np.isfinite(f)
        if both.any():
            scale = max(1.0, float(np.max(np.abs(r[both]))))
            err = float(np.max(np.abs(r[both] - f[both])))
            assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol * scale:.3g}"


def check_call(name, args, kwargs) -> str:
    """Run ``name`` in both engines and assert the property; returns 'ok' or 'error' (both raised)."""
    with mock.patch.dict(os.environ, {"CNN_MAX_ARRAY_BYTES": LIMIT}):
        ref = _run(refcnn, name, args, kwargs)
        fast = _run(fastcnn, name, args, kwargs)
    what = f"{name}(*{args!r}, **{kwargs!r})"
    for engine, (kind, value) in (("refcnn", ref), ("fastcnn", fast)):
        if kind == "error":
            assert isinstance(value, ALLOWED), f"{engine} raised {type(value).__module__}.{type(value).__name__}: {value} in {what}"
    assert ref[0] == fast[0], f"refcnn: {ref[0]} {ref[1]!r}; fastcnn: {fast[0]} {fast[1]!r} in {what}"
    if ref[0] == "error":
        assert (type(ref[1]), str(ref[1])) == (type(fast[1]), str(fast[1])), f"{ref[1]!r} != {fast[1]!r} in {what}"
    else:
        assert_results_agree(ref[1], fast[1], _tolerance(args, kwargs), what)
    return ref[0]


@pytest.fixture(scope="module", autouse=True)
def _log_counts():
    yield
    path = os.environ.get("CNN_ROBUSTNESS_LOG")
    if path:
        with open(path, "a") as log:
            for name in NAMES:
                tried = COUNTS[name, "tried"]
                log.write(f"{name} tried={tried} clean={COUNTS[name, 'clean']} bad={tried - COUNTS[name, 'clean']} "
                          f"returned={COUNTS[name, 'ok']} raised={COUNTS[name, 'error']}\n")


@pytest.mark.parametrize("name", NAMES)
def test_hostile_arguments_give_the_result_or_the_same_documented_error(name):
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile_calls(name))
    def run(call):
        COUNTS[name, "tried"] += 1
        COUNTS[name, check_call(*call)] += 1
        COUNTS[name, "clean"] += 1

    run()


# ---------------------------------------------------------------------------------------------------------
# The defects of issue 10, one by one (each failed before the fix)
# ---------------------------------------------------------------------------------------------------------


def _same_error(name, *args, **kwargs):
    """Both engines raise the same allowed error for the call; returns it."""
    errors = []
    for engine in (refcnn, fastcnn):
        with pytest.raises(ALLOWED) as info:
            getattr(engine, name)(*args, **kwargs)
        errors.append(info.value)
    assert (type(errors[0]), str(errors[0])) == (type(errors[1]), str(errors[1]))
    return errors[0]


F32 = np.float32


def _ones(*shape):
    return np.ones(shape, F32)


@pytest.mark.parametrize("name, args, kwargs, words", [
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(padding=10**8), "padding=100000000"),
    ("conv1d", (_ones(1, 1, 7), _ones(1, 1, 3)), dict(padding=10**8), "padding=100000000"),
    ("conv2d_backward", (_ones(1, 1, 5, 5), _ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(padding=10**8), "padding="),
    ("conv_transpose2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(stride=10**6), "stride=1000000"),
    ("conv_transpose1d", (_ones(1, 1, 7), _ones(1, 1, 3)), dict(dilation=10**9), "dilation=1000000000"),
    ("conv_transpose2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(stride=2**40, padding=3 * 2**40 - 1),
     "uncropped output"),
    ("max_pool2d", (_ones(1, 1, 7, 7), 3), dict(padding=10**8, stride=1), "padding=100000000"),
    ("avg_pool1d", (_ones(1, 1, 7), 3), dict(padding=10**9, stride=1), "padding=1000000000"),
    ("dropout_mask", ((10**12,), 0.5, 0), {}, "shape=(1000000000000,)"),
    ("linear", (_ones(10**5, 1), _ones(10**5, 1)), {}, "weight.shape=(100000, 1)"),
    ("relu", (np.broadcast_to(F32(1), (10**6, 10**6)),), {}, "argument `x` of shape (1000000, 1000000)"),
    ("global_avg_pool2d", (np.broadcast_to(F32(1), (10**4, 10**4, 10, 10)),), {}, "argument `x`"),
])
def test_sizes_are_checked_before_anything_is_allocated(name, args, kwargs, words):
    """Issue 10, defect 1: fastcnn.conv2d(padding=10**8) grew to 3.2 GB before a MemoryError, refcnn said
    "array is too big". Now both raise the same SizeLimitError at once, naming the op, the array and the
    argument, the size and the limit."""
    error = _same_error(name, *args, **kwargs)
    assert isinstance(error, SizeLimitError)
    text = str(error)
    assert text.startswith(f"{name}: ") and words in text and "CNN_MAX_ARRAY_BYTES" in text, text


def test_sizes_beyond_any_float_are_reported_not_overflowed():
    """Found by the property: a size of 10**400 bytes made the message's float division overflow (an
    OverflowError instead of the SizeLimitError), and one of 10**5000 cannot even be printed in decimal."""
    for size, words in ((10**400, "needs about 2**"), (10**5000, "<an int of 16610 bits>")):
        with pytest.raises(SizeLimitError, match=words.replace("*", r"\*")):
            check_arrays("op", [("the output", (size,))], "a hostile shape")


def test_the_limit_is_read_at_every_call(monkeypatch):
    """A conv2d that fits the default limit is refused under a lower CNN_MAX_ARRAY_BYTES, and back again."""
    x, w = _ones(2, 3, 64, 64), _ones(4, 3, 3, 3)
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "200K")
    assert "the limit is 200.00 KiB" in str(_same_error("conv2d", x, w, padding=1))
    monkeypatch.delenv("CNN_MAX_ARRAY_BYTES")
    assert fastcnn.conv2d(x, w, padding=1).shape == (2, 4, 64, 64)


def test_resolved_geometries_are_checked_for_the_batch_they_run_on(monkeypatch):
    """A geometry resolved for one sample (as a cnn layer does) is checked again for each batch: conv_forward
    and pool_forward refuse a batch whose arrays do not fit, in both engines, with the same message; and a
    geometry resolved for a huge batch is refused when it is resolved."""
    geom = conv_geometry("conv2d", (1, 1, 8, 8), (64, 1, 3, 3), None, 1, 1, 1, 1, "zeros", 2)
    pool = pool_geometry("avg_pool2d", (1, 1, 8, 8), 1, 1, 4, 1, False, 2, kind="avg")
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "64K")
    x = _ones(40, 1, 8, 8)
    assert "conv2d: the output of shape (40, 64, 8, 8)" in str(_same_error("conv_forward", geom, x, _ones(64, 1, 3, 3)))
    assert "avg_pool2d: the output of shape (100, 1, 16, 16)" in str(_same_error("pool_forward", pool, _ones(100, 1, 8, 8)))
    with pytest.raises(SizeLimitError, match=r"conv2d: the output of shape \(1000000000000, 64, 8, 8\)"):
        conv_geometry("conv2d", (10**12, 1, 8, 8), (64, 1, 3, 3), None, 1, 1, 1, 1, "zeros", 2)


@pytest.mark.parametrize("name, shapes", [
    ("conv2d", [(0, 4, 7, 7), (6, 4, 3, 3)]),
    ("conv1d", [(0, 4, 7), (6, 2, 3)]),
    ("conv_transpose2d", [(0, 4, 7, 7), (4, 3, 3, 3)]),
    ("conv_transpose1d", [(0, 4, 7), (4, 3, 3)]),
])
@pytest.mark.parametrize("bias", [False, True])
def test_empty_batches_work_in_every_convolution(name, shapes, bias):
    """Issue 10, defect 3: fastcnn raised "cannot reshape array of size 0" on N = 0, forward and backward;
    refcnn returned (0, C_out, ...). Both now agree: an empty output, zero weight and bias gradients."""
    x, w = (np.zeros(s, F32) for s in shapes)
    groups = 2 if name == "conv1d" else 1
    c_out = getattr(refcnn, name)(x, w, groups=groups).shape[1]
    b = np.ones(c_out, F32) if bias else None
    y_ref = getattr(refcnn, name)(x, w, b, groups=groups)
    y_fast = getattr(fastcnn, name)(x, w, b, groups=groups)
    assert y_fast.shape == y_ref.shape and y_ref.shape[0] == 0
    g = np.zeros(y_ref.shape, F32)
    for ref_grad, fast_grad in zip(getattr(refcnn, name + "_backward")(g, x, w, b, groups=groups),
                                   getattr(fastcnn, name + "_backward")(g, x, w, b, groups=groups)):
        if ref_grad is None:
            assert fast_grad is None
            continue
        assert fast_grad.shape == ref_grad.shape and not fast_grad.any()


@pytest.mark.parametrize("make", [
    lambda: _read_only(_ones(3, 4)),
    lambda: np.broadcast_to(_ones(4), (3, 4)),
    lambda: np.lib.stride_tricks.as_strided(_ones(1), (3, 4), (0, 0), writeable=True),
])
def test_inplace_needs_a_writable_array_of_distinct_cells(make):
    """Issue 10, defect 4: dropout(x, inplace=True) on a read-only x gave 27 lines of Numba TypingError in
    fastcnn and numpy's bare message in refcnn; a 0-stride view gave numpy's message or silently wrong
    values. Both engines now raise one ValueError naming `x`, before any kernel."""
    error = _same_error("dropout", make(), inplace=True)
    assert type(error) is ValueError and str(error).startswith("dropout: argument `x` must ")


def _read_only(a):
    a.setflags(write=False)
    return a


def test_batch_norm_refuses_running_statistics_it_cannot_update():
    x = np.random.default_rng(0).standard_normal((4, 3))
    shared = np.lib.stride_tricks.as_strided(np.zeros(1), (3,), (0,), writeable=True)
    error = _same_error("batch_norm", x, shared, np.ones(3), training=True)
    assert "must not hold one memory cell under two indices" in str(error)


@pytest.mark.parametrize("layout", ["bigendian", "reversed", "strided", "f"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_inplace_dropout_on_odd_layouts_writes_what_it_returns(layout, dtype):
    """Big-endian, negative-stride, non-contiguous and Fortran arrays of every float dtype: inplace=True
    writes the same values into x in both engines, and returns them."""
    results = []
    for engine in (refcnn, fastcnn):
        x = _array(Arr((3, 4), dtype, 1, layout=layout))
        y = engine.dropout(x, 0.5, inplace=True, seed=3)
        np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        results.append(np.asarray(x, dtype=np.float64))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-3)


@pytest.mark.parametrize("name, args, kwargs, argument", [
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(stride=2**64), "stride"),
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(dilation=(1, 2**63)), "dilation"),
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(padding=((0, 2**64), (0, 0))), "padding"),
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(groups=2**64), "groups"),
    ("conv_transpose2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(output_padding=2**64), "output_padding"),
    ("max_pool1d", (_ones(1, 1, 7), 2**64), {}, "kernel_size"),
    ("avg_pool2d", (_ones(1, 1, 7, 7), 2), dict(divisor_override=2**64), "divisor_override"),
    ("sgd_step", (np.ones(3), np.ones(3)), dict(lr=10**400), "lr"),
    ("mse_loss_backward", (10**400, np.ones(3), np.ones(3)), {}, "grad_out"),
    ("conv2d", (_ones(1, 1, 7, 7), _ones(1, 1, 3, 3)), dict(stride=10**5000), "stride"),
    ("dropout_mask", ((0, 2**64), 0.5, 0), {}, "shape"),
    ("dropout_mask", (10**400, 0.5, 0), {}, "shape"),
    ("dropout_mask", ((10**5000, 2), 0.5, 0), {}, "shape"),
])
def test_ints_beyond_int64_are_refused_alike(name, args, kwargs, argument):
    """Issue 10, defect 10: stride=2**64 gave an OverflowError from fastcnn's kernel dispatcher while refcnn
    computed. Every int hyperparameter must fit int64 (and a float one a float64): one ValueError, the same
    in both engines, naming the argument (a 5000-digit int is shown by its size)."""
    error = _same_error(name, *args, **kwargs)
    assert type(error) is ValueError and f"argument `{argument}`" in str(error) and len(str(error)) < 600


def test_hand_made_geometries_are_refused_not_trusted():
    """The kernels index arrays with a geometry's sizes: one whose fields were changed after resolving (or
    that is no geometry) is refused with the same error by both engines, never read out of bounds."""
    geom = conv_geometry("conv2d", (1, 1, 8, 8), (2, 1, 3, 3), None, 1, 1, 1, 1, "zeros", 2)
    x, w = _ones(1, 1, 8, 8), _ones(2, 1, 3, 3)
    for bad in (dataclasses.replace(geom, out=(99, 99)), dataclasses.replace(geom, pads=((9, 9), (0, 0))),
                dataclasses.replace(geom, sizes=[8, 8])):
        assert "Expected a ConvGeometry" in str(_same_error("conv_forward", bad, x, w))
    assert type(_same_error("conv_forward", "conv2d", x, w)) is TypeError
    pool = pool_geometry("max_pool2d", (1, 1, 8, 8), 2, None, 0, 1, False, 2)
    assert "Expected a PoolGeometry" in str(_same_error("pool_backward", dataclasses.replace(pool, out_sizes=(9, 9)),
                                                        _ones(1, 1, 9, 9), x))


def test_windows_of_many_taps_cost_what_their_cells_cost():
    """A window's cells inside the input are computed, not searched tap by tap: a 10^8-tap window over 5
    cells pooled in both engines (refcnn looped 10^8 times)."""
    x = np.arange(5.0).reshape(1, 1, 5)
    for engine in (refcnn, fastcnn):
        np.testing.assert_allclose(engine.avg_pool1d(x, 10**8, padding=5 * 10**7, count_include_pad=False), [[[2.0]]])


@pytest.mark.parametrize("name", [n for n in NAMES if n.endswith("_backward") and ("pool" in n or "conv" in n)])
def test_a_missing_grad_out_is_named(name):
    """Found by the property above: the convolutions' and pools' backward took ``grad_out=None`` for "no
    grad_out, a forward call", so fastcnn failed with an AttributeError on an empty batch and refcnn with
    numpy's message. Now None is a grad_out like any other non-array: a TypeError naming it."""
    x = np.zeros((0, 2, 4, 4) if "2d" in name or "conv_backward" in name or "pool_backward" in name else (0, 2, 4))
    if name in ("conv_backward", "pool_backward"):
        geom = (conv_geometry("conv2d", x.shape, (2, 2, 3, 3), None, 1, 0, 1, 1, "zeros", 2) if name == "conv_backward"
                else pool_geometry("max_pool2d", x.shape, 2, None, 0, 1, False, 2))
        args = (geom, None, x) + ((np.ones((2, 2, 3, 3)),) if name == "conv_backward" else ())
    elif "conv" in name:
        args = (None, x, np.ones((2, 2, 3, 3) if x.ndim == 4 else (2, 2, 3)))
    elif "global" in name:
        args = (None, x)
    else:
        args = (None, x, 2)
    error = _same_error(name, *args)
    assert type(error) is TypeError and "argument `grad_out`" in str(error), error
