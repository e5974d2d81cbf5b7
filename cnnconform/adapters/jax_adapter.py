"""The ``jax`` target of ``cnn conform``: JAX (``jax.lax``, ``jax.numpy``, ``jax.nn``) under the spec's names.

Forward ops: ``lax.conv_general_dilated`` with explicit ``(p_b, p_e)`` pads, rhs (kernel) dilation and
``feature_group_count`` for the convolutions; transposed convolutions as the same primitive with
``lhs_dilation = stride``, the kernel flipped and regrouped, and pads ``d(k-1) - p`` (negative pads crop:
this is how JAX's own ``lax.conv_transpose`` works); ``jnp.pad`` (``reflect``, ``edge``, ``wrap``) for the
convolution fills; ``lax.reduce_window`` with ``-inf`` (max) or ``0`` (sum) for the pools, dividing the sums
by the window size, by ``reduce_window`` of a padded mask of ones (``count_include_pad=False``) or by
``divisor_override``; ``jnp.max``/``jnp.mean`` for the global pools; ``jax.nn`` activations; ``jnp.reshape``
and ``jnp.matmul`` for flatten and linear; ``jax.nn.standardize`` for batch norm in inference.
Every ``<op>_backward`` is ``jax.vjp`` of the same forward. Each op runs under ``jax.jit`` (one compilation per
op, shape and static hyperparameters; compiled functions are cached).

float64: each call runs inside ``with jax.enable_x64(True):``, a context manager scoped to the call (and
thread), so importing this adapter leaves JAX's global configuration as it was.

Not expressible, declined with ``NotImplementedError`` (counted as skipped): ``ceil_mode=True`` and
``return_indices=True`` of the pools (``reduce_window`` has neither), the gradient of dilated max pooling
(JAX has no VJP for it), batch norm in training (JAX keeps no
running statistics). Not offered (:data:`NOT_OFFERED`): losses and optimizers (they live in optax, not in
JAX), the counter-based dropout, augment, and the shape functions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnconform.adapters import _spec

NAME = f"jax {jax.__version__}"
CHECKS_ARGUMENTS = False  # JAX checks arguments its own way (TypeError/ValueError of its own, or none)
SPEC_MESSAGES = False

#: Spec functions this adapter does not offer, and why (read by ``cnn conform --matrix``).
NOT_OFFERED = {
    **{op: "JAX has no loss functions (they are in optax, not a JAX module)"
       for op in ("cross_entropy", "nll_loss", "mse_loss", "half_squared_error")},
    **{f"{op}_backward": "JAX has no loss functions (they are in optax, not a JAX module)"
       for op in ("cross_entropy", "nll_loss", "mse_loss", "half_squared_error")},
    **{op: "JAX has no optimizers (they are in optax, not a JAX module)"
       for op in ("sgd_step", "adam_step", "adadelta_step", "rmsprop_step")},
    "dropout_mask": "the spec's dropout mask is counter-based; JAX draws masks from its own PRNG",
    "dropout": "the spec's dropout mask is counter-based; JAX draws masks from its own PRNG",
    "dropout_backward": "the spec's dropout mask is counter-based; JAX draws masks from its own PRNG",
    "augment": "no JAX counterpart of the spec's geometric augmentation",
    **_spec.not_offered_shapes(),
}

__all__: list[str] = []


def _to_numpy(out):
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return None if out is None else np.array(out)


#: Compiled forwards and backwards by (op, direction, static arguments). Each op runs under ``jax.jit``:
#: one XLA compilation per op, shape and static arguments instead of one per primitive, which is what
#: makes a randomized run (and Hypothesis's shrinking) affordable. Float hyperparameters are traced,
#: not static, so a new slope or epsilon does not recompile.
_COMPILED: dict = {}
_MAX_COMPILED = 512


def _split(values: dict, arrays: tuple[str, ...]):
    """(static arguments, traced arguments): the arrays and float hyperparameters are traced."""
    static, traced = {}, {}
    for name, value in values.items():
        if name in arrays or (isinstance(value, float) and name != "padding"):
            traced[name] = value
        else:
            static[name] = value
    return static, traced


def _key(value):
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    return value


def _compiled(key, make):
    function = _COMPILED.get(key)
    if function is None:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        function = _COMPILED[key] = jax.jit(make())
    return function


def _traced_inputs(traced: dict, arrays: tuple[str, ...]) -> dict:
    return {name: (None if value is None else jnp.asarray(value)) if name in arrays else value
            for name, value in traced.items()}


def spec_op(op: str, arrays: tuple[str, ...], differentiable: tuple[str, ...], backward_refuses=None):
    """Make ``op`` and ``op_backward`` from a function of jax arrays taking the spec's arguments by name;
    the backward is ``jax.vjp`` over ``differentiable`` (gradients in that order, ``None`` when absent).
    ``backward_refuses(values)`` gives the reason JAX has no gradient for a call, or None."""

    def decorate(fn):
        def forward(values):
            static, traced = _split(values, arrays)
            run = _compiled((op, "forward", _key(sorted(static.items()))),
                            lambda: lambda inputs: fn(**static, **inputs))
            with jax.enable_x64(True):
                return _to_numpy(run(_traced_inputs(traced, arrays)))

        def backward(values):
            grad_out = values.pop("grad_out")
            reason = backward_refuses(values) if backward_refuses else None
            if reason:
                raise NotImplementedError(reason)
            static, traced = _split(values, arrays)
            present = tuple(name for name in differentiable if values[name] is not None)

            def make():
                def gradients(inputs, g):
                    def of(*diff):
                        return fn(**static, **{**inputs, **dict(zip(present, diff))})

                    out, vjp = jax.vjp(of, *(inputs[name] for name in present))
                    return vjp(g.astype(out.dtype))

                return gradients

            run = _compiled((op, "backward", _key(sorted(static.items())), present), make)
            with jax.enable_x64(True):
                grads = dict(zip(present, run(_traced_inputs(traced, arrays), jnp.asarray(grad_out))))
                result = tuple(None if name not in grads else np.array(grads[name]) for name in differentiable)
            return result[0] if len(result) == 1 else result

        globals()[op] = _spec.spec_function(op, forward)
        globals()[f"{op}_backward"] = _spec.spec_function(f"{op}_backward", backward)
        __all__.extend([op, f"{op}_backward"])
        return fn

    return decorate


# ---------------------------------------------------------------------------------------------------
# Convolution

_FILL = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _dimension_numbers(rank: int):
    return ("NCH", "OIH", "NCH") if rank == 1 else ("NCHW", "OIHW", "NCHW")


def _conv(rank, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    s, d = _spec.as_tuple(stride, rank), _spec.as_tuple(dilation, rank)
    pairs = _spec.pads(padding, x.shape[2:], weight.shape[2:], s, d)
    if padding_mode != "zeros" and any(b or e for b, e in pairs):
        x = jnp.pad(x, ((0, 0), (0, 0), *pairs), mode=_FILL[padding_mode])
        pairs = ((0, 0),) * rank
    y = lax.conv_general_dilated(x, weight, s, pairs, rhs_dilation=d, dimension_numbers=_dimension_numbers(rank),
                                 feature_group_count=groups, precision=lax.Precision.HIGHEST)
    return y if bias is None else y + bias.reshape((1, -1) + (1,) * rank)


@spec_op("conv1d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv1d(x, weight, bias, stride, padding, dilation, groups, padding_mode):
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


@spec_op("conv2d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv2d(x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm="auto"):
    # ``algorithm`` is an implementation choice (specs/conv.md section 8): the library picks its own
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def _conv_transpose(rank, x, weight, bias, stride, padding, output_padding, groups, dilation):
    s, d, extra = (_spec.as_tuple(v, rank) for v in (stride, dilation, output_padding))
    k = weight.shape[2:]
    pairs = _spec.pads(padding, x.shape[2:], k, s, d)
    # (C_in, C_out/g, k...) -> (C_out, C_in/g, k...), flipped: the transposed convolution as a convolution
    c_in, c_out_g = weight.shape[:2]
    w = weight.reshape((groups, c_in // groups, c_out_g) + k)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * c_out_g, c_in // groups) + k)
    w = jnp.flip(w, axis=tuple(range(2, 2 + rank)))
    full = [(dd * (kk - 1) - b, dd * (kk - 1) - e + o) for dd, kk, (b, e), o in zip(d, k, pairs, extra)]
    y = lax.conv_general_dilated(x, w, (1,) * rank, full, lhs_dilation=s, rhs_dilation=d,
                                 dimension_numbers=_dimension_numbers(rank), feature_group_count=groups,
                                 precision=lax.Precision.HIGHEST)
    return y if bias is None else y + bias.reshape((1, -1) + (1,) * rank)


@spec_op("conv_transpose1d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(1, x, weight, bias, stride, padding, output_padding, groups, dilation)


@spec_op("conv_transpose2d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(2, x, weight, bias, stride, padding, output_padding, groups, dilation)


# ---------------------------------------------------------------------------------------------------
# Pooling


def _window(rank, x, kernel_size, stride, padding, dilation, ceil_mode):
    if ceil_mode:
        raise NotImplementedError("lax.reduce_window has no ceil mode (its output size is the floor)")
    k = _spec.as_tuple(kernel_size, rank)
    s = k if stride is None else _spec.as_tuple(stride, rank)
    d = _spec.as_tuple(dilation, rank)
    pairs = _spec.pads(padding, x.shape[2:], k, s, d)
    lead = (1, 1)
    return dict(window_dimensions=lead + k, window_strides=lead + s, padding=((0, 0), (0, 0)) + tuple(pairs),
                window_dilation=lead + d)


def _max_pool(rank, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if return_indices:
        raise NotImplementedError("lax.reduce_window returns no indices of the maxima")
    geometry = _window(rank, x, kernel_size, stride, padding, dilation, ceil_mode)
    return lax.reduce_window(x, -jnp.inf, lax.max, **geometry)


def _dilated_max_gradient_refused(values) -> str | None:
    """JAX raises NotImplementedError for the VJP of a dilated max ``reduce_window``: said before calling."""
    if any(d != 1 for d in _spec.as_tuple(values["dilation"], 2)):
        return "JAX has no gradient for max reduce_window with window dilation (select_and_gather)"
    return None


@spec_op("max_pool1d", ("x",), ("x",), _dilated_max_gradient_refused)
def _max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@spec_op("max_pool2d", ("x",), ("x",), _dilated_max_gradient_refused)
def _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(rank, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    geometry = _window(rank, x, kernel_size, stride, padding, 1, ceil_mode)
    sums = lax.reduce_window(x, 0.0, lax.add, **geometry)
    if divisor_override is not None:
        return sums / divisor_override
    if count_include_pad:  # no ceil mode: every window lies inside the padded extent
        return sums / math.prod(geometry["window_dimensions"])
    ones = jnp.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    return sums / lax.reduce_window(ones, 0.0, lax.add, **geometry)


@spec_op("avg_pool1d", ("x",), ("x",))
def _avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


@spec_op("avg_pool2d", ("x",), ("x",))
def _avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _spatial(x):
    return tuple(range(2, x.ndim))


@spec_op("global_avg_pool1d", ("x",), ("x",))
def _global_avg_pool1d(x):
    return jnp.mean(x, axis=_spatial(x), keepdims=True)


@spec_op("global_avg_pool2d", ("x",), ("x",))
def _global_avg_pool2d(x):
    return jnp.mean(x, axis=_spatial(x), keepdims=True)


@spec_op("global_max_pool1d", ("x",), ("x",))
def _global_max_pool1d(x):
    return jnp.max(x, axis=_spatial(x), keepdims=True)


@spec_op("global_max_pool2d", ("x",), ("x",))
def _global_max_pool2d(x):
    return jnp.max(x, axis=_spatial(x), keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Activations, dense, normalisation


@spec_op("relu", ("x",), ("x",))
def _relu(x):
    return jax.nn.relu(x)


@spec_op("leaky_relu", ("x",), ("x",))
def _leaky_relu(x, negative_slope):
    return jax.nn.leaky_relu(x, negative_slope)


@spec_op("elu", ("x",), ("x",))
def _elu(x, alpha):
    return jax.nn.elu(x, alpha)


@spec_op("sigmoid", ("x",), ("x",))
def _sigmoid(x):
    return jax.nn.sigmoid(x)


@spec_op("tanh", ("x",), ("x",))
def _tanh(x):
    return jnp.tanh(x)


@spec_op("softmax", ("x",), ("x",))
def _softmax(x, dim):
    return jax.nn.softmax(x, axis=dim)


@spec_op("log_softmax", ("x",), ("x",))
def _log_softmax(x, dim):
    return jax.nn.log_softmax(x, axis=dim)


@spec_op("flatten", ("x",), ("x",))
def _flatten(x, start_dim, end_dim):
    start, end = start_dim % max(x.ndim, 1), end_dim % max(x.ndim, 1)
    if x.ndim == 0:
        return jnp.reshape(x, (1,))
    return jnp.reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


@spec_op("linear", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _linear(x, weight, bias):
    y = jnp.matmul(x, weight.T, precision=lax.Precision.HIGHEST)
    return y if bias is None else y + bias


@spec_op("batch_norm", ("x", "running_mean", "running_var", "weight", "bias"), ("x", "weight", "bias"))
def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    if training:
        raise NotImplementedError("JAX keeps no running statistics (batch norm in training lives in Flax)")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = jax.nn.standardize(x, axis=(), mean=running_mean.reshape(shape), variance=running_var.reshape(shape),
                           epsilon=eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)
