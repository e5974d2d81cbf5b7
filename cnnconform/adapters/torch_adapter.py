"""The ``torch`` target of ``cnn conform``: PyTorch presented under the spec's names and signatures.

Forward ops map to ``torch.nn.functional``; every ``<op>_backward`` runs the same forward under autograd
and returns the gradients of the spec's differentiable arguments; optimizer steps run ``torch.optim``
(single-tensor path, ``foreach=False``) with the spec's state dict loaded into and read back from the
optimizer's state. What PyTorch lacks is built from what it has, the way ``specs/`` describes it:

* per-side, ``'same'`` and ``'same_lower'`` padding amounts: ``F.pad`` first, then an unpadded op;
* ``padding_mode`` fills of convolutions: ``F.pad`` with the mode (PyTorch's modules do the same);
* pooling padding above half the kernel: ``F.pad`` with ``-inf`` (max) or zeros (average); average pooling
  with ``count_include_pad=False`` over such padding divides window sums by window counts of a mask;
* per-side padding of transposed convolutions: the uncropped output, cropped per side.

Calls PyTorch cannot express raise ``NotImplementedError``, which ``cnn conform`` counts as skipped:
``'reflect'`` amounts ``>= n`` and ``'circular'`` amounts ``> n`` (``F.pad`` refuses them), pooling with
``ceil_mode=True`` and padding that is per-side or above half the kernel (pre-padding changes where the
ceil-mode rule looks), SGD's ``momentum_form='keras'``, the spec's counter-based dropout and
``half_squared_error`` (not PyTorch functions). PyTorch's argument checks differ from the spec's (a
``RuntimeError`` for most bad values; it accepts some inputs the spec refuses), so this target declares
``CHECKS_ARGUMENTS = False`` and the named error cases are skipped (``specs/adapter.md``).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F

import refcnn

NAME = f"torch {torch.__version__}"
CHECKS_ARGUMENTS = False
SPEC_MESSAGES = False


# ---------------------------------------------------------------------------------------------------
# numpy <-> torch and the spec's signatures


def _spec_signature(op: str) -> inspect.Signature:
    return inspect.signature(getattr(refcnn, op))


def _to_tensor(value, name: str, op: str, share: bool = False):
    """A tensor of the array's dtype; a copy (nothing handed in is changed) unless ``share``."""
    if value is None:
        return None
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{op}: argument `{name}` must be a numpy.ndarray; received {type(value).__name__}.")
    if share and value.flags.writeable and value.flags.c_contiguous:
        return torch.from_numpy(value)
    return torch.from_numpy(np.array(value, copy=True))


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, tuple):
        return tuple(_to_numpy(v) for v in value)
    return value


def _as_tuple(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def spec_op(op: str, arrays: tuple[str, ...], differentiable: tuple[str, ...], updated_in_place=()):
    """Make ``op`` and ``op_backward`` from a function of tensors taking the spec's arguments by name.

    ``arrays`` names the array arguments (turned into tensors); ``differentiable`` those whose gradients
    ``op_backward`` returns, in order (one array, or a tuple when several; ``None`` for an absent one).
    ``updated_in_place`` names arrays the forward changes in place (batch norm's running statistics): their
    tensors share memory with the caller's arrays in the forward only.
    """

    def decorate(torch_fn):
        signature = _spec_signature(op)

        def bind(args, kwargs, shared=()):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            tensors = {name: _to_tensor(values[name], name, op, share=name in shared) for name in arrays}
            return values, tensors

        def forward(*args, **kwargs):
            values, tensors = bind(args, kwargs, shared=updated_in_place)
            with torch.no_grad():
                return _to_numpy(torch_fn(**{**values, **tensors}))

        def backward(grad_out, *args, **kwargs):
            values, tensors = bind(args, kwargs)
            for name in differentiable:
                if tensors[name] is not None:
                    tensors[name].requires_grad_(True)
            out = torch_fn(**{**values, **tensors})
            out = out[0] if isinstance(out, tuple) else out
            grad = torch.as_tensor(np.asarray(grad_out), dtype=out.dtype)
            torch.autograd.backward(out, grad)
            grads = tuple(_gradient(tensors[name]) for name in differentiable)
            return grads[0] if len(grads) == 1 else grads

        forward.__signature__ = signature
        forward.__name__ = op
        backward.__signature__ = _spec_signature(f"{op}_backward")
        backward.__name__ = f"{op}_backward"
        globals()[op], globals()[f"{op}_backward"] = forward, backward
        __all__.extend([op, f"{op}_backward"])
        return torch_fn

    return decorate


def _gradient(tensor):
    if tensor is None:
        return None
    if tensor.grad is None:  # an input the output does not depend on
        return np.zeros(tuple(tensor.shape), dtype=tensor.detach().numpy().dtype)
    return tensor.grad.numpy().copy()


__all__: list[str] = []


# ---------------------------------------------------------------------------------------------------
# Padding amounts and fills


def _same_pads(n: int, k: int, s: int, d: int, lower: bool) -> tuple[int, int]:
    """'same': output ceil(n/s); the odd cell at the end ('same') or the beginning ('same_lower')."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _pads(padding, sizes, kernel, stride, dilation) -> list[tuple[int, int]]:
    """Any padding form of the spec as one (p_b, p_e) pair per spatial axis."""
    rank = len(sizes)
    if padding == "valid":
        return [(0, 0)] * rank
    if padding in ("same", "same_lower"):
        return [_same_pads(sizes[i], kernel[i], stride[i], dilation[i], padding == "same_lower") for i in range(rank)]
    if isinstance(padding, str):
        raise ValueError(f"unknown padding {padding!r}")
    items = _as_tuple(padding, rank)
    return [tuple(item) if isinstance(item, (tuple, list)) else (item, item) for item in items]


def _f_pad_order(pads) -> tuple[int, ...]:
    """F.pad lists the last axis first: (left, right, top, bottom)."""
    return tuple(amount for pair in reversed(pads) for amount in pair)


def _fill(x, pads, mode: str, value: float = 0.0):
    if not any(b or e for b, e in pads):
        return x
    if mode == "zeros":
        return F.pad(x, _f_pad_order(pads), mode="constant", value=value)
    sizes = x.shape[2:]
    for n, (b, e) in zip(sizes, pads):
        if mode == "reflect" and max(b, e) >= n:
            raise NotImplementedError(f"F.pad 'reflect' needs amounts < n; got {(b, e)} for n={n}")
        if mode == "circular" and max(b, e) > n:
            raise NotImplementedError(f"F.pad 'circular' needs amounts <= n; got {(b, e)} for n={n}")
    return F.pad(x, _f_pad_order(pads), mode=mode)


# ---------------------------------------------------------------------------------------------------
# Convolution

_CONV = {1: F.conv1d, 2: F.conv2d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d}


def _conv(rank, x, weight, bias, stride, padding, dilation, groups, padding_mode):
    s, d = _as_tuple(stride, rank), _as_tuple(dilation, rank)
    pads = _pads(padding, tuple(x.shape[2:]), tuple(weight.shape[2:]), s, d)
    return _CONV[rank](_fill(x, pads, padding_mode), weight, bias, stride=s, padding=0, dilation=d, groups=groups)


@spec_op("conv1d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv1d(x, weight, bias, stride, padding, dilation, groups, padding_mode):
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


@spec_op("conv2d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv2d(x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm="auto"):
    # ``algorithm`` is an implementation choice (specs/conv.md section 8): the library picks its own
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def _conv_transpose(rank, x, weight, bias, stride, padding, output_padding, groups, dilation):
    s, d, op = _as_tuple(stride, rank), _as_tuple(dilation, rank), _as_tuple(output_padding, rank)
    if isinstance(padding, str) and padding != "valid":
        raise ValueError(f"conv_transpose{rank}d: padding {padding!r} is not allowed")
    pads = _pads(padding, tuple(x.shape[2:]), tuple(weight.shape[2:]), s, d)
    if all(b == e for b, e in pads):
        return _CONV_T[rank](x, weight, bias, stride=s, padding=tuple(b for b, _ in pads), output_padding=op,
                             groups=groups, dilation=d)
    # Output cell o is cell o + p_b of the uncropped output (extended by output_padding cells at its end)
    full = _CONV_T[rank](x, weight, bias, stride=s, padding=0, output_padding=op, groups=groups, dilation=d)
    for axis, (b, e) in enumerate(pads):
        full = full.narrow(2 + axis, b, full.shape[2 + axis] - b - e)
    return full


@spec_op("conv_transpose1d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(1, x, weight, bias, stride, padding, output_padding, groups, dilation)


@spec_op("conv_transpose2d", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    return _conv_transpose(2, x, weight, bias, stride, padding, output_padding, groups, dilation)


# ---------------------------------------------------------------------------------------------------
# Pooling

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d}


def _pool_geometry(rank, x, kernel_size, stride, padding, dilation):
    k = _as_tuple(kernel_size, rank)
    s = k if stride is None else _as_tuple(stride, rank)
    d = _as_tuple(dilation, rank)
    pads = _pads(padding, tuple(x.shape[2:]), k, s, d)
    # PyTorch pads inside the op only symmetrically and by at most half the kernel
    native = all(b == e and 2 * b <= kk for (b, e), kk in zip(pads, k))
    return k, s, d, pads, native


def _prepad_refusing_ceil(ceil_mode: bool, pads) -> None:
    if ceil_mode:
        raise NotImplementedError(
            f"PyTorch pools pad only symmetrically by at most half the kernel; padding {pads} would be applied "
            "by F.pad first, which moves where the ceil-mode rule drops the last window"
        )


def _max_pool(rank, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    k, s, d, pads, native = _pool_geometry(rank, x, kernel_size, stride, padding, dilation)
    pool = _MAX_POOL[rank]
    if native:
        return pool(x, k, s, tuple(b for b, _ in pads), d, ceil_mode=ceil_mode, return_indices=return_indices)
    _prepad_refusing_ceil(ceil_mode, pads)
    padded = _fill(x, pads, "zeros", value=-math.inf)  # padding never wins a maximum
    result = pool(padded, k, s, 0, d, ceil_mode=False, return_indices=return_indices)
    if not return_indices:
        return result
    values, flat = result
    return values, _unpadded_indices(flat, pads, tuple(padded.shape[2:]), tuple(x.shape[2:]))


def _unpadded_indices(flat, pads, padded_sizes, sizes):
    """Flat indices into the padded plane -> flat indices into the input plane."""
    if len(sizes) == 1:
        return flat - pads[0][0]
    row, col = flat // padded_sizes[1], flat % padded_sizes[1]
    return (row - pads[0][0]) * sizes[1] + (col - pads[1][0])


@spec_op("max_pool1d", ("x",), ("x",))
def _max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@spec_op("max_pool2d", ("x",), ("x",))
def _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(rank, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    k, s, _, pads, native = _pool_geometry(rank, x, kernel_size, stride, padding, 1)
    pool = _AVG_POOL[rank]
    extra = {"divisor_override": divisor_override} if rank == 2 else {}
    if native:
        return pool(x, k, s, tuple(b for b, _ in pads), ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                    **extra)
    _prepad_refusing_ceil(ceil_mode, pads)
    padded = _fill(x, pads, "zeros")
    if count_include_pad or divisor_override is not None:
        return pool(padded, k, s, 0, **extra)
    # PyTorch would count the pre-padded cells: divide window sums by window counts of a mask instead
    cells = math.prod(k)
    sums = pool(padded, k, s, 0) * cells
    counts = pool(_fill(torch.ones_like(x), pads, "zeros"), k, s, 0) * cells
    return sums / counts


@spec_op("avg_pool1d", ("x",), ("x",))
def _avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


@spec_op("avg_pool2d", ("x",), ("x",))
def _avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


@spec_op("global_avg_pool1d", ("x",), ("x",))
def _global_avg_pool1d(x):
    return F.adaptive_avg_pool1d(x, 1)


@spec_op("global_avg_pool2d", ("x",), ("x",))
def _global_avg_pool2d(x):
    return F.adaptive_avg_pool2d(x, 1)


@spec_op("global_max_pool1d", ("x",), ("x",))
def _global_max_pool1d(x):
    return F.adaptive_max_pool1d(x, 1)


@spec_op("global_max_pool2d", ("x",), ("x",))
def _global_max_pool2d(x):
    return F.adaptive_max_pool2d(x, 1)


# ---------------------------------------------------------------------------------------------------
# Activations, dense, normalisation, losses


@spec_op("relu", ("x",), ("x",))
def _relu(x):
    return F.relu(x)


@spec_op("leaky_relu", ("x",), ("x",))
def _leaky_relu(x, negative_slope):
    return F.leaky_relu(x, negative_slope)


@spec_op("elu", ("x",), ("x",))
def _elu(x, alpha):
    return F.elu(x, alpha)


@spec_op("sigmoid", ("x",), ("x",))
def _sigmoid(x):
    return torch.sigmoid(x)


@spec_op("tanh", ("x",), ("x",))
def _tanh(x):
    return torch.tanh(x)


@spec_op("softmax", ("x",), ("x",))
def _softmax(x, dim):
    return F.softmax(x, dim)


@spec_op("log_softmax", ("x",), ("x",))
def _log_softmax(x, dim):
    return F.log_softmax(x, dim)


@spec_op("flatten", ("x",), ("x",))
def _flatten(x, start_dim, end_dim):
    return torch.flatten(x, start_dim, end_dim)


@spec_op("linear", ("x", "weight", "bias"), ("x", "weight", "bias"))
def _linear(x, weight, bias):
    return F.linear(x, weight, bias)


@spec_op("batch_norm", ("x", "running_mean", "running_var", "weight", "bias"), ("x", "weight", "bias"),
         updated_in_place=("running_mean", "running_var"))
def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


@spec_op("cross_entropy", ("input", "target", "weight"), ("input",))
def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    return F.cross_entropy(input, target, weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


@spec_op("nll_loss", ("input", "target", "weight"), ("input",))
def _nll_loss(input, target, weight, ignore_index, reduction):
    return F.nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)


@spec_op("mse_loss", ("input", "target"), ("input", "target"))
def _mse_loss(input, target, reduction):
    return F.mse_loss(input, target, reduction=reduction)


# ---------------------------------------------------------------------------------------------------
# Optimizers: one torch.optim step with the spec's state loaded into the optimizer

_OPTIMIZERS = {
    "sgd_step": (torch.optim.SGD, ("momentum_buffer",)),
    "adam_step": (torch.optim.Adam, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "adadelta_step": (torch.optim.Adadelta, ("square_avg", "acc_delta")),
    "rmsprop_step": (torch.optim.RMSprop, ("square_avg", "momentum_buffer", "grad_avg")),
}


def _optimizer_step(op: str, param, grad, state, hyper: dict):
    cls, buffers = _OPTIMIZERS[op]
    if hyper.pop("momentum_form", "pytorch") != "pytorch":
        raise NotImplementedError("torch.optim.SGD has only the PyTorch momentum form")
    p = _to_tensor(param, "param", op)
    p.grad = _to_tensor(grad, "grad", op)
    optimizer = cls([p], foreach=False, **hyper)
    if state:
        loaded = {k: _to_tensor(state[k], k, op) for k in buffers if k in state}
        if "step" in state:
            loaded["step"] = torch.tensor(float(state["step"]))
        optimizer.state[p] = loaded
    optimizer.step()
    new_state = {}
    for key, value in optimizer.state[p].items():
        if key == "step":
            new_state[key] = int(value)
        elif isinstance(value, torch.Tensor):
            new_state[key] = value.numpy().copy()
    return p.detach().numpy().copy(), new_state


def _make_step(op: str):
    signature = _spec_signature(op)

    def step(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        param, grad, state = values.pop("param"), values.pop("grad"), values.pop("state")
        return _optimizer_step(op, param, grad, state, values)

    step.__signature__ = signature
    step.__name__ = op
    return step


for _op in _OPTIMIZERS:
    globals()[_op] = _make_step(_op)
    __all__.append(_op)
