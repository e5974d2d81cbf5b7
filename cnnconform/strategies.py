"""Hypothesis strategies that draw valid calls of the spec's functions.

Each strategy draws a :class:`Call` (a function name, positional arrays and keyword hyperparameters)
that refcnn accepts: hyperparameters first, then sizes valid by construction, small sides (at most a few
cells per axis, so the reference engine stays fast), and bounded finite floats (no NaN, no inf). The
strategies are public so that tests reuse them::

    from hypothesis import given
    from cnnconform import strategies

    @given(strategies.calls("conv2d"))
    def test_fast_conv_agrees(call):
        np.testing.assert_allclose(call.run(fastcnn), call.run(refcnn))

``calls("<op>_backward")`` draws a forward call and then a ``grad_out`` of the forward output's shape
(computed by refcnn, the oracle). ``STRATEGIES`` lists every op that has a strategy.

What ``cnn conform`` draws is the default. The engines' own tests reach further into the spec's domain
through keyword options, all valid by construction and none changing the default draws: ``elements``
(the strategy of the float elements, e.g. wider, signed zeros or ties), ``shapes`` (the strategy of the
shape of free-shaped inputs, e.g. with empty axes or 0-d), and a few per family (a scalar hyperparameter's
range, batch and feature sizes, samples and eps of batch norm, probabilities and seeds of dropout).
``calls(op, **options)`` hands them to the family's strategy, and to ``grad_out`` the ``elements``.

Mind that Hypothesis also draws literal constants it finds in the project's (non-test) modules: a new
float literal here or in the engines shifts what a seeded ``cnn conform`` run draws. Ranges that only
tests use are therefore passed in by the tests (which Hypothesis does not scan), not written here.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import refcnn
import cnnbase.shapes
from cnnbase.padding import PADDING_MODES

__all__ = ["Call", "FLOAT_RANGE", "FLOATS", "float_arrays", "calls", "has_strategy", "STRATEGIES", "DIFFERENTIABLE",
           "PoolGeometry", "pool_geometries", "pool_fits"]

#: Elements of drawn arrays lie in [-FLOAT_RANGE, FLOAT_RANGE]: large enough to matter, small enough that
#: sums of a few products stay far from overflow and float32 keeps several significant digits.
FLOAT_RANGE = 10.0

#: The default elements of drawn arrays.
FLOATS = st.floats(-FLOAT_RANGE, FLOAT_RANGE, allow_nan=False, allow_infinity=False)


@dataclass
class Call:
    """One call of a spec function: ``op(*args, **kwargs)``."""

    op: str
    args: tuple
    kwargs: dict = field(default_factory=dict)

    def run(self, module):
        """Call ``module.<op>`` on fresh copies of the arguments (some ops update arrays in place)."""
        return getattr(module, self.op)(*copy.deepcopy(self.args), **copy.deepcopy(self.kwargs))

    def code(self, module: str = "impl") -> str:
        """Python source that rebuilds the arguments and makes the call, ready to paste into a test."""
        names = _positional_names(self.op, len(self.args))
        lines = ["import numpy as np", ""]
        for name, value in zip(names, self.args):
            lines.append(f"{name} = {_literal(value)}")
        call_args = list(names) + [f"{k}={_literal(v)}" for k, v in self.kwargs.items()]
        lines.append(f"result = {module}.{self.op}({', '.join(call_args)})")
        return "\n".join(lines)


def _positional_names(op: str, count: int) -> list[str]:
    """The spec's parameter names of the first ``count`` parameters (refcnn has the spec's signatures)."""
    fn = getattr(refcnn, op, None) or getattr(refcnn.shapes, op, None)
    params = list(inspect.signature(fn).parameters) if fn is not None else []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


def _literal(value) -> str:
    """Python source for a value: arrays as ``np.array(<nested list>, dtype=...)``, floats round-tripping."""
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


# ---------------------------------------------------------------------------------------------------
# Building blocks


def float_arrays(shape, elements: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """float64 arrays of ``shape`` with elements drawn from ``elements`` (default :data:`FLOATS`: finite, in
    [-FLOAT_RANGE, FLOAT_RANGE])."""
    return arrays(np.float64, tuple(shape), elements=FLOATS if elements is None else elements)


def _per_axis(draw, rank: int, values: st.SearchStrategy):
    """An int for every axis, or one per axis as a tuple (both forms are part of the spec)."""
    items = tuple(draw(values) for _ in range(rank))
    if len(set(items)) == 1 and draw(st.booleans()):
        return items[0], items
    return items, items


def _padding_amount(draw, rank: int, max_pad: int, strings=("valid", "same", "same_lower")):
    """A padding argument in one of its forms: int, per-axis ints, per-side pairs, or a name."""
    form = draw(st.sampled_from(("int", "per-axis", "per-side") + tuple(strings)))
    if form == "int":
        return draw(st.integers(0, max_pad))
    if form == "per-axis":
        return tuple(draw(st.integers(0, max_pad)) for _ in range(rank))
    if form == "per-side":
        return tuple((draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad))) for _ in range(rank))
    return form


def _resolve(padding, sizes, kernel, stride, dilation):
    return cnnbase.shapes.resolve_padding(padding, tuple(sizes), tuple(kernel), tuple(stride), tuple(dilation))


def _smallest_size(extent: int, pads: tuple[int, int] | None) -> int:
    """Smallest n whose padded length holds one window (names like 'same' always fit: 1)."""
    if pads is None:
        return 1
    return max(1, extent - pads[0] - pads[1])


def _sizes_for(draw, padding, kernel, dilation, rank, minimum=1):
    """Spatial sizes for which at least one window fits, whatever form ``padding`` has."""
    sizes = []
    for axis in range(rank):
        extent = cnnbase.shapes.kernel_extent(kernel[axis], dilation[axis])
        if isinstance(padding, str):
            pads = (0, 0) if padding == "valid" else None
        elif isinstance(padding, int):
            pads = (padding, padding)
        elif isinstance(padding[axis], int):
            pads = (padding[axis], padding[axis])
        else:
            pads = tuple(padding[axis])
        low = max(minimum, _smallest_size(extent, pads))
        sizes.append(draw(st.integers(low, low + 3)))
    return tuple(sizes)


# ---------------------------------------------------------------------------------------------------
# Convolution


@st.composite
def conv_calls(draw, rank: int, *, elements: st.SearchStrategy | None = None) -> Call:
    """conv1d / conv2d: groups, channels, kernel, stride, dilation, padding amount and fill, then sizes."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride_arg, stride = _per_axis(draw, rank, st.integers(1, 3))
    dilation_arg, dilation = _per_axis(draw, rank, st.integers(1, 2))
    padding = _padding_amount(draw, rank, max_pad=2)
    padding_mode = draw(st.sampled_from(PADDING_MODES))
    # 'reflect' mirrors at the edge cells and so needs two of them on every padded axis
    sizes = _sizes_for(draw, padding, kernel, dilation, rank, minimum=2 if padding_mode == "reflect" else 1)
    n = draw(st.integers(1, 2))
    x = draw(float_arrays((n, c_in) + sizes, elements))
    weight = draw(float_arrays((c_out, c_in // groups) + kernel, elements))
    bias = draw(st.one_of(st.none(), float_arrays((c_out,), elements)))
    kwargs = dict(bias=bias, stride=stride_arg, padding=padding, dilation=dilation_arg, groups=groups,
                  padding_mode=padding_mode)
    return Call(f"conv{rank}d", (x, weight), kwargs)


@st.composite
def conv_transpose_calls(draw, rank: int, *, elements: st.SearchStrategy | None = None) -> Call:
    """conv_transpose1d / 2d: padding as int, per-axis or per-side; output_padding < max(s, d)."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride_arg, stride = _per_axis(draw, rank, st.integers(1, 3))
    dilation_arg, dilation = _per_axis(draw, rank, st.integers(1, 2))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    sizes = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    # padding may crop at most what the full output has beyond one cell, split between the two sides
    pairs = []
    for axis in range(rank):
        full = (sizes[axis] - 1) * stride[axis] + cnnbase.shapes.kernel_extent(kernel[axis], dilation[axis])
        room = full + out_pad[axis] - 1
        begin = draw(st.integers(0, min(2, room)))
        pairs.append((begin, draw(st.integers(0, min(2, room - begin)))))
    form = draw(st.sampled_from(("per-side", "per-axis")))
    if form == "per-axis" and all(b == e for b, e in pairs):
        padding = tuple(b for b, _ in pairs)
    else:
        padding = tuple(pairs)
    n = draw(st.integers(1, 2))
    x = draw(float_arrays((n, c_in) + sizes, elements))
    weight = draw(float_arrays((c_in, c_out // groups) + kernel, elements))
    bias = draw(st.one_of(st.none(), float_arrays((c_out,), elements)))
    output_padding = out_pad if rank > 1 else out_pad[0]
    kwargs = dict(bias=bias, stride=stride_arg, padding=padding, output_padding=output_padding, groups=groups,
                  dilation=dilation_arg)
    return Call(f"conv_transpose{rank}d", (x, weight), kwargs)


# ---------------------------------------------------------------------------------------------------
# Pooling


class PoolGeometry(NamedTuple):
    """The window of a pooling call: each hyperparameter in the form passed (``*_arg``: an int or per-axis
    tuple, ``stride_arg`` may be None) and per axis (tuples of ints), then ``padding`` in any of its forms,
    ``ceil_mode`` and the spatial ``sizes`` of the input."""

    kernel_arg: int | tuple
    kernel: tuple
    stride_arg: int | tuple | None
    stride: tuple
    dilation_arg: int | tuple
    dilation: tuple
    padding: object
    ceil_mode: bool
    sizes: tuple


def pool_fits(geometry: PoolGeometry, allow_empty: bool) -> bool:
    """Whether every axis has an output size >= 1 and, unless allowed, no window of padding only."""
    g = geometry
    try:
        pairs = _resolve(g.padding, g.sizes, g.kernel, g.stride, g.dilation)
        for n, k, s, d, (pb, pe) in zip(g.sizes, g.kernel, g.stride, g.dilation, pairs):
            out = cnnbase.shapes.conv_output_size(n, k, s, pb, pe, d, g.ceil_mode)
            if not allow_empty and cnnbase.shapes.first_empty_window(n, k, s, pb, d, out) is not None:
                return False
    except ValueError:
        return False
    return True


@st.composite
def pool_geometries(draw, rank: int, dilated: bool) -> PoolGeometry:
    """kernel_size, stride (None or explicit), dilation, padding, ceil_mode, then sizes for which one window
    fits the padded input. The spec may still refuse the call (a window on padding only, or none left by
    ``ceil_mode``'s rule): the pooling strategies keep the geometries that pass :func:`pool_fits`."""
    kernel_arg, kernel = _per_axis(draw, rank, st.integers(1, 3))
    if draw(st.booleans()):
        stride_arg, stride = None, kernel
    else:
        stride_arg, stride = _per_axis(draw, rank, st.integers(1, 3))
    dilation_arg, dilation = _per_axis(draw, rank, st.integers(1, 2)) if dilated else (1, (1,) * rank)
    padding = _padding_amount(draw, rank, max_pad=2)
    ceil_mode = draw(st.booleans())
    sizes = _sizes_for(draw, padding, kernel, dilation, rank)
    return PoolGeometry(kernel_arg, kernel, stride_arg, stride, dilation_arg, dilation, padding, ceil_mode, sizes)


@st.composite
def max_pool_calls(draw, rank: int, *, elements: st.SearchStrategy | None = None) -> Call:
    """max_pool1d / 2d over every padding form, stride, dilation, ceil_mode and return_indices."""
    g = draw(pool_geometries(rank, dilated=True).filter(lambda g: pool_fits(g, allow_empty=False)))
    x = draw(float_arrays((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + g.sizes, elements))
    kwargs = dict(stride=g.stride_arg, padding=g.padding, dilation=g.dilation_arg, ceil_mode=g.ceil_mode,
                  return_indices=draw(st.booleans()))
    return Call(f"max_pool{rank}d", (x, g.kernel_arg), kwargs)


@st.composite
def avg_pool_calls(draw, rank: int, *, elements: st.SearchStrategy | None = None) -> Call:
    """avg_pool1d / 2d: count_include_pad, ceil_mode, every padding form; divisor_override in 2-D."""
    count_include_pad = draw(st.booleans())
    g = draw(pool_geometries(rank, dilated=False).filter(lambda g: pool_fits(g, allow_empty=count_include_pad)))
    x = draw(float_arrays((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + g.sizes, elements))
    kwargs = dict(stride=g.stride_arg, padding=g.padding, ceil_mode=g.ceil_mode, count_include_pad=count_include_pad)
    if rank == 2:
        kwargs["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    return Call(f"avg_pool{rank}d", (x, g.kernel_arg), kwargs)


@st.composite
def global_pool_calls(draw, op: str, *, elements: st.SearchStrategy | None = None) -> Call:
    rank = 2 if op.endswith("2d") else 1
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    x = draw(float_arrays((draw(st.integers(1, 2)), draw(st.integers(1, 3))) + sizes, elements))
    return Call(op, (x,))


# ---------------------------------------------------------------------------------------------------
# Activations, dense layers, normalisation


def _any_shape(max_dims: int = 3, min_dims: int = 1):
    return st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims).map(tuple)


def _array_of_any_shape(draw, shapes: st.SearchStrategy | None, elements, max_dims: int = 3) -> np.ndarray:
    shape = draw(_any_shape(max_dims=max_dims) if shapes is None else shapes)
    return draw(float_arrays(shape, elements))


@st.composite
def activation_calls(draw, op: str, *, shapes: st.SearchStrategy | None = None,
                     elements: st.SearchStrategy | None = None, parameters: st.SearchStrategy | None = None) -> Call:
    """An activation of any small shape (``shapes`` may include empty and 0-d ones: ``dim`` then counts a
    0-d input as one axis); ``parameters`` draws ``negative_slope`` or ``alpha`` (default: typical values)."""
    x = _array_of_any_shape(draw, shapes, elements)
    kwargs = {}
    if op == "leaky_relu":
        kwargs["negative_slope"] = draw(st.floats(0.0, 1.0) if parameters is None else parameters)
    elif op == "elu":
        kwargs["alpha"] = draw(st.floats(0.1, 2.0) if parameters is None else parameters)
    elif op in ("softmax", "log_softmax"):
        rank = max(x.ndim, 1)
        kwargs["dim"] = draw(st.integers(-rank, rank - 1))
    return Call(op, (x,), kwargs)


@st.composite
def flatten_calls(draw, *, shapes: st.SearchStrategy | None = None,
                  elements: st.SearchStrategy | None = None) -> Call:
    x = _array_of_any_shape(draw, shapes, elements, max_dims=4)
    rank = max(x.ndim, 1)  # a 0-d input flattens as one axis
    start = draw(st.integers(0, rank - 1))
    end = draw(st.integers(start, rank - 1))
    # each dim given either counted from the front or from the back
    start_arg = start if draw(st.booleans()) else start - rank
    end_arg = end if draw(st.booleans()) else end - rank
    return Call("flatten", (x,), dict(start_dim=start_arg, end_dim=end_arg))


@st.composite
def linear_calls(draw, *, batch_shapes: st.SearchStrategy | None = None, in_features: st.SearchStrategy | None = None,
                 out_features: st.SearchStrategy | None = None, elements: st.SearchStrategy | None = None) -> Call:
    """``x`` of shape ``batch + (in_features,)`` (default: one batch axis of 1 to 3, 1 to 4 features in and out;
    ``batch_shapes`` may give none or several axes, also empty ones)."""
    batch = (draw(st.integers(1, 3)),) if batch_shapes is None else tuple(draw(batch_shapes))
    f_in = draw(st.integers(1, 4) if in_features is None else in_features)
    f_out = draw(st.integers(1, 4) if out_features is None else out_features)
    x = draw(float_arrays(batch + (f_in,), elements))
    weight = draw(float_arrays((f_out, f_in), elements))
    bias = draw(st.one_of(st.none(), float_arrays((f_out,), elements)))
    return Call("linear", (x, weight), dict(bias=bias))


@st.composite
def batch_norm_calls(draw, *, samples: st.SearchStrategy | None = None, epsilons: st.SearchStrategy | None = None,
                     elements: st.SearchStrategy | None = None) -> Call:
    """Training (with or without running statistics) and evaluation; enough values per channel.
    ``samples`` draws the batch size (default 2 or 3), ``epsilons`` the ``eps`` (default 1e-5, 1e-3, 0.1)."""
    training = draw(st.booleans())
    c = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    n = draw(st.integers(2, 3) if samples is None else samples)
    if training and n * math.prod(spatial) < 2:
        n = 2  # training needs more than one value per channel
    x = draw(float_arrays((n, c) + spatial, elements))
    stats = draw(st.booleans()) if training else True
    running_mean = draw(float_arrays((c,), elements)) if stats else None
    variances = arrays(np.float64, (c,), elements=st.floats(0.1, 5.0))
    running_var = draw(variances) if stats else None
    weight = draw(st.one_of(st.none(), float_arrays((c,), elements)))
    bias = draw(st.one_of(st.none(), float_arrays((c,), elements)))
    momentum = draw(st.floats(0.0, 1.0))
    eps = draw(st.sampled_from((1e-5, 1e-3, 0.1)) if epsilons is None else epsilons)
    kwargs = dict(weight=weight, bias=bias, training=training, momentum=momentum, eps=eps)
    return Call("batch_norm", (x, running_mean, running_var), kwargs)


# ---------------------------------------------------------------------------------------------------
# Losses


@st.composite
def class_loss_calls(draw, op: str) -> Call:
    """cross_entropy / nll_loss: labels in [0, C), sometimes ignored; at least one sample counts."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    x = draw(float_arrays((n, c)))
    labels = [draw(st.integers(0, c - 1)) for _ in range(n)]
    ignore_index = draw(st.sampled_from((-100, 0, 1)))
    if all(label == ignore_index for label in labels):
        ignore_index = -100
    weight = draw(st.one_of(st.none(), arrays(np.float64, (c,), elements=st.floats(0.1, 2.0))))
    kwargs = dict(ignore_index=ignore_index, reduction=draw(st.sampled_from(("mean", "sum", "none"))))
    if op == "cross_entropy":
        kwargs["label_smoothing"] = draw(st.sampled_from((0.0, 0.1, 0.5)))
    return Call(op, (x, np.array(labels, dtype=np.int64), weight), kwargs)


@st.composite
def pointwise_loss_calls(draw, op: str, *, shapes: st.SearchStrategy | None = None,
                         elements: st.SearchStrategy | None = None) -> Call:
    shape = draw(_any_shape() if shapes is None else shapes)
    default = "sum" if op == "half_squared_error" else "mean"
    reduction = draw(st.sampled_from((default, "mean", "sum", "none")))
    return Call(op, (draw(float_arrays(shape, elements)), draw(float_arrays(shape, elements))),
                dict(reduction=reduction))


# ---------------------------------------------------------------------------------------------------
# Optimizers


def _optimizer_hyperparameters(draw, op: str) -> dict:
    lr = draw(st.sampled_from((1e-3, 0.01, 0.1, 1.0)))
    weight_decay = draw(st.sampled_from((0.0, 0.0, 0.01)))
    if op == "sgd_step":
        momentum = draw(st.sampled_from((0.0, 0.5, 0.9)))
        nesterov = momentum > 0 and draw(st.booleans())
        dampening = 0.0 if nesterov else draw(st.sampled_from((0.0, 0.3)))
        return dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    if op == "adam_step":
        return dict(lr=lr, betas=draw(st.sampled_from(((0.9, 0.999), (0.5, 0.9)))), weight_decay=weight_decay,
                    amsgrad=draw(st.booleans()), decoupled_weight_decay=draw(st.booleans()))
    if op == "adadelta_step":
        return dict(lr=lr, rho=draw(st.sampled_from((0.9, 0.95))), weight_decay=weight_decay)
    return dict(lr=lr, alpha=draw(st.sampled_from((0.99, 0.9))), weight_decay=weight_decay,
                momentum=draw(st.sampled_from((0.0, 0.5))), centered=draw(st.booleans()))


@st.composite
def optimizer_calls(draw, op: str) -> Call:
    """One step from a state reached by 0 to 2 earlier steps (run by refcnn on drawn gradients)."""
    shape = draw(_any_shape(max_dims=2))
    hyper = _optimizer_hyperparameters(draw, op)
    param, state = draw(float_arrays(shape)), None
    for _ in range(draw(st.integers(0, 2))):
        param, state = getattr(refcnn, op)(param, draw(float_arrays(shape)), state, **hyper)
    return Call(op, (param, draw(float_arrays(shape)), state), hyper)


# ---------------------------------------------------------------------------------------------------
# Dropout


_SEEDS = st.integers(0, 2**31 - 1)


@st.composite
def dropout_calls(draw, *, shapes: st.SearchStrategy | None = None, elements: st.SearchStrategy | None = None,
                  probabilities: st.SearchStrategy | None = None, seeds: st.SearchStrategy | None = None) -> Call:
    """``probabilities`` draws ``p`` (default 0, 0.25, 0.5, 1), ``seeds`` the seed (default [0, 2**31))."""
    x = _array_of_any_shape(draw, shapes, elements)
    p = draw(st.sampled_from((0.0, 0.25, 0.5, 1.0)) if probabilities is None else probabilities)
    kwargs = dict(p=p, training=draw(st.booleans()), seed=draw(_SEEDS if seeds is None else seeds))
    return Call("dropout", (x,), kwargs)


@st.composite
def dropout_mask_calls(draw, *, shapes: st.SearchStrategy | None = None, probabilities: st.SearchStrategy | None = None,
                       seeds: st.SearchStrategy | None = None) -> Call:
    shape = draw(_any_shape() if shapes is None else shapes)
    p = draw(st.sampled_from((0.0, 0.3, 0.5, 1.0)) if probabilities is None else probabilities)
    return Call("dropout_mask", (shape, p, draw(_SEEDS if seeds is None else seeds)))


# ---------------------------------------------------------------------------------------------------
# Augmentation


#: Transform entries: exact ones (identity, flips, quarter-turns, integer and half-pixel shifts: ties and
#: integer source positions) or any float in a range that keeps sources near a small image.
_TRANSFORM_ENTRIES = st.sampled_from((-1.0, -0.5, 0.0, 0.5, 1.0, 2.0)) | st.floats(-3.0, 3.0)


@st.composite
def augment_calls(draw, *, elements: st.SearchStrategy | None = None,
                  entries: st.SearchStrategy | None = None) -> Call:
    """``augment`` on a small batch (1x1 and non-square images included): a transform per image (``entries``
    draws its six numbers), with or without a pixel stage and erase boxes (which may overhang the image)."""
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = draw(float_arrays((n, c, h, w), elements))
    transform = draw(float_arrays((n, 6), _TRANSFORM_ENTRIES if entries is None else entries))
    kwargs = dict(fill_mode=draw(st.sampled_from(("constant", "nearest", "reflect", "wrap"))),
                  fill_value=draw(st.sampled_from((0.0, 1.0)) | st.floats(-FLOAT_RANGE, FLOAT_RANGE)),
                  interpolation=draw(st.sampled_from(("nearest", "bilinear"))))
    if draw(st.booleans()):
        kwargs["pixel"] = draw(float_arrays((n, 2), st.sampled_from((1.0, 0.0)) | st.floats(-2.0, 2.0)))
    if draw(st.booleans()):
        corners = draw(arrays(np.int64, (n, 2), elements=st.integers(-2, 6)))  # top, left
        sizes = draw(arrays(np.int64, (n, 2), elements=st.integers(0, 4)))  # height, width
        kwargs["erase"] = np.concatenate([corners, sizes], axis=1)
    return Call("augment", (x, transform), kwargs)


# ---------------------------------------------------------------------------------------------------
# The table and backward calls


#: Strategy factories of the forward ops, by name; each takes its family's keyword options.
STRATEGIES = {
    "conv1d": lambda **options: conv_calls(1, **options),
    "conv2d": lambda **options: conv_calls(2, **options),
    "conv_transpose1d": lambda **options: conv_transpose_calls(1, **options),
    "conv_transpose2d": lambda **options: conv_transpose_calls(2, **options),
    "max_pool1d": lambda **options: max_pool_calls(1, **options),
    "max_pool2d": lambda **options: max_pool_calls(2, **options),
    "avg_pool1d": lambda **options: avg_pool_calls(1, **options),
    "avg_pool2d": lambda **options: avg_pool_calls(2, **options),
    **{op: (lambda op=op, **options: global_pool_calls(op, **options)) for op in (
        "global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d", "global_max_pool2d")},
    **{op: (lambda op=op, **options: activation_calls(op, **options)) for op in (
        "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax")},
    "flatten": flatten_calls,
    "linear": linear_calls,
    "batch_norm": batch_norm_calls,
    "cross_entropy": lambda: class_loss_calls("cross_entropy"),
    "nll_loss": lambda: class_loss_calls("nll_loss"),
    "mse_loss": lambda **options: pointwise_loss_calls("mse_loss", **options),
    "half_squared_error": lambda **options: pointwise_loss_calls("half_squared_error", **options),
    **{op: (lambda op=op: optimizer_calls(op)) for op in ("sgd_step", "adam_step", "adadelta_step", "rmsprop_step")},
    "dropout": dropout_calls,
    "dropout_mask": dropout_mask_calls,
    "augment": augment_calls,
}

#: Forward ops whose backward has a strategy too (everything differentiable).
DIFFERENTIABLE = tuple(op for op in STRATEGIES if not op.endswith("_step") and op not in ("dropout_mask", "augment"))


def _values_of(result) -> np.ndarray:
    """The differentiable output: max pooling with indices returns (values, indices)."""
    return result[0] if isinstance(result, tuple) else result


@st.composite
def backward_calls(draw, op: str, **options) -> Call:
    """``<op>_backward(grad_out, <the forward call's arguments>)`` with a drawn ``grad_out`` (of the
    ``elements`` option too)."""
    forward = draw(STRATEGIES[op](**options))
    out = _values_of(forward.run(refcnn))
    grad_out = draw(float_arrays(out.shape, options.get("elements")))
    return Call(f"{op}_backward", (grad_out,) + forward.args, forward.kwargs)


def calls(op: str, **options) -> st.SearchStrategy:
    """The strategy of valid calls of ``op`` (a forward op or ``<op>_backward``); ``options`` are the
    keyword options of its family's strategy (none: what ``cnn conform`` draws)."""
    if op in STRATEGIES:
        return STRATEGIES[op](**options)
    if op.endswith("_backward") and op[: -len("_backward")] in DIFFERENTIABLE:
        return backward_calls(op[: -len("_backward")], **options)
    raise KeyError(f"no strategy draws calls of {op!r}")


def has_strategy(op: str) -> bool:
    return op in STRATEGIES or (op.endswith("_backward") and op[: -len("_backward")] in DIFFERENTIABLE)
