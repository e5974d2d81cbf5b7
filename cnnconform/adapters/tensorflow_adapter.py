"""The ``tensorflow`` target of ``cnn conform``: plain TensorFlow ops (``tf.nn``, ``tf.math``) under the
spec's names, no Keras.

The spec is channels-first (``(N, C, H, W)``); TensorFlow's CPU kernels are channels-last only, so every
convolution and pool transposes to ``NHWC`` and back, and 1-D ops run as 2-D ops on a map of height 1 (what
``tf.nn.conv1d`` does itself). Forward ops: ``tf.nn.conv2d`` (explicit per-side padding, dilation with
stride, groups), ``tf.nn.conv2d_transpose`` (``VALID``, then cropped per side), ``tf.nn.max_pool2d``
(explicit padding), ``tf.nn.pool`` (dilated max pooling), ``tf.nn.avg_pool2d``, ``tf.reduce_max``/
``tf.reduce_mean``, ``tf.nn`` activations, ``tf.reshape``/``tf.tensordot``, ``tf.nn.batch_normalization``,
``tf.nn.sparse_softmax_cross_entropy_with_logits``, ``tf.math.squared_difference``, ``tf.nn.l2_loss``.
Every ``<op>_backward`` is ``tf.GradientTape`` over the same forward.

The spec's ``'same'`` is handed to TensorFlow as ``'SAME'``, so the matrix checks TensorFlow's own reading
of it (odd cell at the end; average pooling divides by the input cells only). ``'same_lower'`` and per-side
amounts are TensorFlow's explicit padding.

Declined (``NotImplementedError``, counted as skipped), each for a reason TensorFlow states in its API:
``ceil_mode`` and ``return_indices`` of the pools; ``divisor_override``; average pooling with per-side or
symmetric padding and ``count_include_pad=False`` (TensorFlow's average pool takes only ``SAME``/``VALID``)
and ``'same'`` with ``count_include_pad=True`` (its ``SAME`` excludes padding); dilated pooling with a
stride above 1 or any padding (``tf.nn.pool``); the ``'replicate'`` and ``'circular'`` convolution
fills (``tf.pad`` has no edge or wrap mode) and ``'reflect'`` amounts ``>= n``; the gradients of grouped
or dilated convolutions (TensorFlow's CPU gradient kernels refuse both); transposed convolutions
with groups or dilation (no ``groups`` argument; the CPU kernel refuses dilation); ``elu`` with
``alpha != 1``; batch norm in training (``FusedBatchNormV3``, the only op that keeps running statistics,
takes float32 only; not mapped); class weights, ignored targets
and label smoothing of ``cross_entropy``; ``half_squared_error`` other than summed.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices, unless the user set it
import tensorflow as tf  # noqa: E402

from cnnconform.adapters import _spec

NAME = f"tensorflow {tf.__version__}"
CHECKS_ARGUMENTS = False  # TensorFlow raises its own InvalidArgumentError for most invalid values
SPEC_MESSAGES = False

_OPTIM = "not mapped: TensorFlow's optimizers are Keras objects, outside this plain-tf adapter"
#: Spec functions this adapter does not offer, and why (read by ``cnn conform --matrix``).
NOT_OFFERED = {
    "nll_loss": "TensorFlow has no negative log-likelihood op on log-probabilities",
    "nll_loss_backward": "TensorFlow has no negative log-likelihood op on log-probabilities",
    **{op: _OPTIM for op in ("sgd_step", "adam_step", "adadelta_step", "rmsprop_step")},
    "dropout_mask": "the spec's dropout mask is counter-based; tf.nn.dropout draws from TensorFlow's RNG",
    "dropout": "the spec's dropout mask is counter-based; tf.nn.dropout draws from TensorFlow's RNG",
    "dropout_backward": "the spec's dropout mask is counter-based; tf.nn.dropout draws from TensorFlow's RNG",
    "augment": "no tf.nn counterpart of the spec's geometric augmentation",
    **_spec.not_offered_shapes(),
}

__all__: list[str] = []


def _to_numpy(out):
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return None if out is None else np.array(out.numpy() if hasattr(out, "numpy") else out)


def _tensors(values: dict, arrays: tuple[str, ...]) -> dict:
    return {name: None if values[name] is None else tf.constant(values[name]) for name in arrays}


def spec_op(op: str, arrays: tuple[str, ...], differentiable: tuple[str, ...], backward_refuses=None):
    """Make ``op`` and ``op_backward`` from a function of tensors taking the spec's arguments by name; the
    backward is ``tf.GradientTape`` over ``differentiable`` (``None`` for an absent argument).
    ``backward_refuses(values)`` gives the reason TensorFlow has no gradient kernel for a call, or None."""

    def decorate(fn):
        def forward(values):
            return _to_numpy(fn(**{**values, **_tensors(values, arrays)}))

        def backward(values):
            grad_out = values.pop("grad_out")
            reason = backward_refuses(values) if backward_refuses else None
            if reason:
                raise NotImplementedError(reason)
            tensors = _tensors(values, arrays)
            present = [name for name in differentiable if tensors[name] is not None]
            with tf.GradientTape() as tape:
                for name in present:
                    tape.watch(tensors[name])
                out = fn(**{**values, **tensors})
            grads = tape.gradient(out, [tensors[name] for name in present],
                                  output_gradients=tf.constant(grad_out, dtype=out.dtype))
            by_name = {name: (np.zeros(tensors[name].shape, dtype=values[name].dtype) if g is None else g.numpy())
                       for name, g in zip(present, grads)}
            result = tuple(by_name.get(name) for name in differentiable)
            return result[0] if len(result) == 1 else result

        globals()[op] = _spec.spec_function(op, forward)
        globals()[f"{op}_backward"] = _spec.spec_function(f"{op}_backward", backward)
        __all__.extend([op, f"{op}_backward"])
        return fn

    return decorate


# ---------------------------------------------------------------------------------------------------
# Layouts and padding


def _to_nhwc(x, rank: int):
    """(N, C, L) -> (N, 1, L, C); (N, C, H, W) -> (N, H, W, C)."""
    if rank == 1:
        x = tf.expand_dims(x, 2)
    return tf.transpose(x, (0, 2, 3, 1))


def _from_nhwc(y, rank: int):
    y = tf.transpose(y, (0, 3, 1, 2))
    return y[:, :, 0, :] if rank == 1 else y


def _as_2d(value, rank: int) -> tuple[int, int]:
    t = _spec.as_tuple(value, rank)
    return (1,) + t if rank == 1 else t


def _explicit(pairs, rank: int) -> list[list[int]]:
    """TensorFlow's explicit NHWC padding: [[0, 0], [top, bottom], [left, right], [0, 0]]."""
    rows = [[0, 0]] + [list(p) for p in pairs]
    return [[0, 0]] + rows[-2:] + [[0, 0]] if rank == 2 else [[0, 0], [0, 0], list(pairs[0]), [0, 0]]


def _tf_padding(padding, sizes, kernel, stride, dilation, rank: int):
    """'same' -> TensorFlow's 'SAME', 'valid' -> 'VALID', anything else -> explicit amounts."""
    if padding == "same":
        return "SAME"
    pairs = _spec.pads(padding, sizes, kernel, stride, dilation)
    if not any(b or e for b, e in pairs):
        return "VALID"
    return _explicit(pairs, rank)


# ---------------------------------------------------------------------------------------------------
# Convolution


def _fill(x, pairs, mode: str, sizes):
    """tf.pad of an NCHW tensor: REFLECT only (there is no edge or wrap mode)."""
    if mode == "replicate" or mode == "circular":
        raise NotImplementedError(f"tf.pad has no {mode!r} fill (its modes: CONSTANT, REFLECT, SYMMETRIC)")
    for n, (b, e) in zip(sizes, pairs):
        if max(b, e) >= n:
            raise NotImplementedError(f"tf.pad REFLECT needs amounts < n; got {(b, e)} for n={n}")
    return tf.pad(x, [[0, 0], [0, 0]] + [list(p) for p in pairs], mode="REFLECT")


def _conv(rank, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    s, d = _spec.as_tuple(stride, rank), _spec.as_tuple(dilation, rank)
    k = tuple(weight.shape[2:])
    if padding_mode != "zeros":
        pairs = _spec.pads(padding, tuple(x.shape[2:]), k, s, d)
        if any(b or e for b, e in pairs):
            x = _fill(x, pairs, padding_mode, tuple(x.shape[2:]))
        padding = 0
    tf_padding = _tf_padding(padding, tuple(x.shape[2:]), k, s, d, rank)
    w = tf.transpose(weight, (2, 3, 1, 0) if rank == 2 else (2, 1, 0))  # OIHW -> HWIO
    if rank == 1:
        w = tf.expand_dims(w, 0)
    y = tf.nn.conv2d(_to_nhwc(x, rank), w, strides=(1,) + _as_2d(s, rank) + (1,), padding=tf_padding,
                     dilations=(1,) + _as_2d(d, rank) + (1,))
    y = _from_nhwc(y, rank)
    return y if bias is None else y + tf.reshape(bias, (1, -1) + (1,) * rank)


def _conv_gradient_refused(values) -> str | None:
    """TensorFlow's CPU gradient kernels (Conv2DBackpropInput/Filter) refuse groups and dilation."""
    if values["groups"] != 1:
        return "TensorFlow's CPU convolution gradient kernels refuse grouped convolutions"
    if any(d != 1 for d in _spec.as_tuple(values["dilation"], 2)):
        return "TensorFlow's CPU convolution gradient kernels refuse dilation rates above 1"
    return None


@spec_op("conv1d", ("x", "weight", "bias"), ("x", "weight", "bias"), _conv_gradient_refused)
def _conv1d(x, weight, bias, stride, padding, dilation, groups, padding_mode):
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


@spec_op("conv2d", ("x", "weight", "bias"), ("x", "weight", "bias"), _conv_gradient_refused)
def _conv2d(x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm="auto"):
    # ``algorithm`` is an implementation choice (specs/conv.md section 8): the library picks its own
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def _conv_transpose(rank, x, weight, bias, stride, padding, output_padding, groups, dilation):
    if groups != 1:
        raise NotImplementedError("tf.nn.conv2d_transpose has no groups")
    s, d, extra = (_spec.as_tuple(v, rank) for v in (stride, dilation, output_padding))
    if any(dd != 1 for dd in d):
        raise NotImplementedError("TensorFlow's CPU conv2d_transpose refuses dilation rates above 1")
    k = tuple(weight.shape[2:])
    pairs = _spec.pads(padding, tuple(x.shape[2:]), k, s, d)
    # VALID: the uncropped output, (n - 1) s + k cells, and output_padding more at the end (TensorFlow
    # accepts any output size whose VALID convolution gives back n), then cropped per side
    full = [(n - 1) * ss + kk + o for n, ss, kk, o in zip(x.shape[2:], s, k, extra)]
    w = tf.transpose(weight, (2, 3, 1, 0) if rank == 2 else (2, 1, 0))  # (C_in, C_out, kh, kw) -> (kh, kw, out, in)
    if rank == 1:
        w = tf.expand_dims(w, 0)
    out_shape = [x.shape[0]] + ([1] if rank == 1 else []) + full + [weight.shape[1]]
    y = tf.nn.conv2d_transpose(_to_nhwc(x, rank), w, out_shape, strides=(1,) + _as_2d(s, rank) + (1,),
                               padding="VALID")
    y = _from_nhwc(y, rank)
    for axis, (b, e) in enumerate(pairs):
        size = y.shape[2 + axis]
        y = y[:, :, b:size - e] if rank == 1 else (y[:, :, b:size - e, :] if axis == 0 else y[:, :, :, b:size - e])
    return y if bias is None else y + tf.reshape(bias, (1, -1) + (1,) * rank)


@spec_op("conv_transpose1d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(1, x, weight, bias, stride, padding, output_padding, groups, dilation)


@spec_op("conv_transpose2d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(2, x, weight, bias, stride, padding, output_padding, groups, dilation)


# ---------------------------------------------------------------------------------------------------
# Pooling


def _pool_geometry(rank, x, kernel_size, stride, padding, dilation, ceil_mode):
    if ceil_mode:
        raise NotImplementedError("TensorFlow pools have no ceil mode")
    k = _spec.as_tuple(kernel_size, rank)
    s = k if stride is None else _spec.as_tuple(stride, rank)
    d = _spec.as_tuple(dilation, rank)
    return k, s, d, _tf_padding(padding, tuple(x.shape[2:]), k, s, d, rank)


def _max_pool(rank, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if return_indices:
        raise NotImplementedError("tf.nn.max_pool_with_argmax takes only SAME/VALID and flattens indices "
                                  "channels-last; not mapped")
    k, s, d, tf_padding = _pool_geometry(rank, x, kernel_size, stride, padding, dilation, ceil_mode)
    if any(dd != 1 for dd in d):
        if any(ss != 1 for ss in s) or tf_padding != "VALID":
            raise NotImplementedError("tf.nn.pool refuses dilation above 1 with a stride above 1, with SAME or "
                                      "with explicit padding")
        y = tf.nn.pool(_to_nhwc(x, rank), _as_2d(k, rank), "MAX", strides=(1, 1), padding=tf_padding,
                       dilations=_as_2d(d, rank))
    else:
        y = tf.nn.max_pool2d(_to_nhwc(x, rank), _as_2d(k, rank), _as_2d(s, rank), padding=tf_padding)
    return _from_nhwc(y, rank)


@spec_op("max_pool1d", ("x",), ("x",))
def _max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@spec_op("max_pool2d", ("x",), ("x",))
def _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(rank, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    if divisor_override is not None:
        raise NotImplementedError("TensorFlow's average pool has no divisor option")
    k, s, _, tf_padding = _pool_geometry(rank, x, kernel_size, stride, padding, 1, ceil_mode)
    padded_same = tf_padding == "SAME" and any(b or e for b, e in _spec.pads("same", tuple(x.shape[2:]), k, s, 1))
    if padded_same and count_include_pad:
        raise NotImplementedError("TensorFlow's SAME average pool divides by the input cells only "
                                  "(count_include_pad=False); it has no count_include_pad")
    xs = _to_nhwc(x, rank)
    if not isinstance(tf_padding, str):
        if not count_include_pad:
            raise NotImplementedError("TensorFlow's average pool takes only SAME or VALID padding; explicit "
                                      "padding excluded from the divisor cannot be expressed")
        xs, tf_padding = tf.pad(xs, tf_padding), "VALID"  # zeros that count: PyTorch's count_include_pad
    return _from_nhwc(tf.nn.avg_pool2d(xs, _as_2d(k, rank), _as_2d(s, rank), padding=tf_padding), rank)


@spec_op("avg_pool1d", ("x",), ("x",))
def _avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


@spec_op("avg_pool2d", ("x",), ("x",))
def _avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _spatial(x):
    return list(range(2, len(x.shape)))


@spec_op("global_avg_pool1d", ("x",), ("x",))
def _global_avg_pool1d(x):
    return tf.reduce_mean(x, axis=_spatial(x), keepdims=True)


@spec_op("global_avg_pool2d", ("x",), ("x",))
def _global_avg_pool2d(x):
    return tf.reduce_mean(x, axis=_spatial(x), keepdims=True)


@spec_op("global_max_pool1d", ("x",), ("x",))
def _global_max_pool1d(x):
    return tf.reduce_max(x, axis=_spatial(x), keepdims=True)


@spec_op("global_max_pool2d", ("x",), ("x",))
def _global_max_pool2d(x):
    return tf.reduce_max(x, axis=_spatial(x), keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Activations, dense, normalisation, losses


@spec_op("relu", ("x",), ("x",))
def _relu(x):
    return tf.nn.relu(x)


@spec_op("leaky_relu", ("x",), ("x",))
def _leaky_relu(x, negative_slope):
    return tf.nn.leaky_relu(x, alpha=negative_slope)


@spec_op("elu", ("x",), ("x",))
def _elu(x, alpha):
    if alpha != 1:
        raise NotImplementedError("tf.nn.elu has no alpha (it is ELU with alpha = 1)")
    return tf.nn.elu(x)


@spec_op("sigmoid", ("x",), ("x",))
def _sigmoid(x):
    return tf.math.sigmoid(x)


@spec_op("tanh", ("x",), ("x",))
def _tanh(x):
    return tf.math.tanh(x)


@spec_op("softmax", ("x",), ("x",))
def _softmax(x, dim):
    return tf.nn.softmax(x, axis=dim)


@spec_op("log_softmax", ("x",), ("x",))
def _log_softmax(x, dim):
    return tf.nn.log_softmax(x, axis=dim)


@spec_op("flatten", ("x",), ("x",))
def _flatten(x, start_dim, end_dim):
    shape = list(x.shape)
    if not shape:
        return tf.reshape(x, (1,))
    start, end = start_dim % len(shape), end_dim % len(shape)
    return tf.reshape(x, shape[:start] + [-1] + shape[end + 1:])


@spec_op("linear", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _linear(x, weight, bias):
    y = tf.tensordot(x, weight, axes=[[len(x.shape) - 1], [1]])
    return y if bias is None else y + bias


@spec_op("batch_norm", ("x", "running_mean", "running_var", "weight", "bias"), ("x", "weight", "bias"))
def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    if training:
        raise NotImplementedError("TensorFlow's only batch norm with running statistics (FusedBatchNormV3) "
                                  "takes float32 only; tf.nn.batch_normalization is the inference form")
    shape = (1, -1) + (1,) * (len(x.shape) - 2)
    return tf.nn.batch_normalization(x, tf.reshape(running_mean, shape), tf.reshape(running_var, shape),
                                     None if bias is None else tf.reshape(bias, shape),
                                     None if weight is None else tf.reshape(weight, shape), eps)


def _reduce(losses, reduction: str):
    if reduction == "mean":
        return tf.reduce_mean(losses)
    return tf.reduce_sum(losses) if reduction == "sum" else losses


@spec_op("cross_entropy", ("input", "target", "weight"), ("input",))
def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    if weight is not None:
        raise NotImplementedError("tf.nn.sparse_softmax_cross_entropy_with_logits has no class weights")
    if label_smoothing:
        raise NotImplementedError("tf.nn's softmax cross entropy has no label smoothing")
    if bool(tf.reduce_any(tf.equal(target, ignore_index))):
        raise NotImplementedError("tf.nn.sparse_softmax_cross_entropy_with_logits has no ignore index")
    logits = tf.transpose(input, [0] + list(range(2, len(input.shape))) + [1])  # classes last
    return _reduce(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits), reduction)


@spec_op("mse_loss", ("input", "target"), ("input", "target"))
def _mse_loss(input, target, reduction):
    return _reduce(tf.math.squared_difference(input, target), reduction)


@spec_op("half_squared_error", ("input", "target"), ("input", "target"))
def _half_squared_error(input, target, reduction):
    if reduction != "sum":
        raise NotImplementedError("tf.nn.l2_loss only sums")
    return tf.nn.l2_loss(input - target)
