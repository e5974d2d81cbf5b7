"""Losses: cross-entropy from logits, negative log-likelihood, mean squared error and the half squared error
(``specs/losses.md``), in Numba.

Each loss is computed as refcnn computes it: one term per sample (class losses) or per element (squared
errors), then one reduction. Class losses sum their per-sample terms sequentially, in refcnn's order. The
squared errors sum in parallel over blocks of a fixed number of elements (``_SUM_BLOCK``, independent of
the thread count), each block sequentially, then the block sums in block order; up to ``_SUM_BLOCK``
elements that is exactly refcnn's sequential order. Either way the result never depends on the threads.

All arithmetic is in float64 (inputs are read in their compute dtype and widened), so float32 results
differ from refcnn's only by the final rounding; results come back in the NumPy promotion of the float
inputs (``input``, ``weight``, ``target`` for the squared errors, and ``grad_out`` when it is an array).
``'mean'`` and ``'sum'`` return 0-d arrays of that dtype. Labels are converted to int64 with ignored
samples marked -1, so the kernels never see ``ignore_index`` (which may be any Python int).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cnnbase.losses import check_class_loss, check_loss_grad_out, check_pointwise_loss, ieee_divide

from . import _runtime

__all__ = [
    "cross_entropy", "cross_entropy_backward",
    "nll_loss", "nll_loss_backward",
    "mse_loss", "mse_loss_backward",
    "half_squared_error", "half_squared_error_backward",
]

#: Elements per block of the squared errors' parallel sum. Fixed, so the result never depends on the
#: thread count.
_SUM_BLOCK = 1 << 13


# ----------------------------------------------------------------------------------------------------------
# Kernels. fastmath is off everywhere: the sums must keep their fixed order, and the per-element arithmetic
# is written in refcnn's order so that float64 results match it to the last bit where no sum is split.
# The class-loss kernels are serial: a batch of (N, C) logits is a few microseconds of work, less than
# waking the thread pool, and a serial kernel compiles several times faster. The squared errors, whose
# arrays can be whole images, run in parallel.


@numba.njit(parallel=False, fastmath=False, **_runtime.KERNEL_FLAGS)
def _sequential_sum(values):
    """``sum(values)`` in float64, first to last: refcnn's order."""
    total = 0.0
    for i in range(values.size):
        total += values[i]
    return total


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _row_max_and_log_total(x, i):
    """``m = max_c x[i, c]`` and ``log(sum_c exp(x[i, c] - m))``: a NaN or an infinite maximum makes the
    log-sum NaN, so the whole row becomes NaN, as in refcnn."""
    c_count = x.shape[1]
    m = np.float64(x[i, 0])
    for c in range(1, c_count):
        v = np.float64(x[i, c])
        if v > m or v != v:  # a NaN wins, like Python's max() when it is first; either way the row is NaN
            m = v
    total = 0.0
    for c in range(c_count):
        total += math.exp(np.float64(x[i, c]) - m)
    return m, math.log(total)


@numba.njit(parallel=False, fastmath=False, **_runtime.KERNEL_FLAGS)
def _cross_entropy_terms(x, labels, w, e, terms, target_weights):
    """``terms[i] = (1 - e)(-w[y] q[i, y]) + (e / C)(-sum_c w[c] q[i, c])`` with ``q = log_softmax(x)``;
    ``target_weights[i] = w[y]``; both 0 for ignored samples (label -1)."""
    n_count, c_count = x.shape
    for i in range(n_count):
        y = labels[i]
        if y < 0:
            terms[i] = 0.0
            target_weights[i] = 0.0
            continue
        m, log_total = _row_max_and_log_total(x, i)
        smooth = 0.0
        for c in range(c_count):
            smooth -= w[c] * ((np.float64(x[i, c]) - m) - log_total)
        q_y = (np.float64(x[i, y]) - m) - log_total
        terms[i] = (1.0 - e) * (-w[y] * q_y) + (e / c_count) * smooth
        target_weights[i] = w[y]


@numba.njit(parallel=False, fastmath=False, **_runtime.KERNEL_FLAGS)
def _cross_entropy_grad(x, labels, w, e, scale, scale_step, grad):
    """``dL/dq[i, c] = -s_i ((1 - e) w[y] [c = y] + (e / C) w[c])`` (0 for ignored rows), then the
    log-softmax backward ``grad[i, c] = dq[i, c] - p[i, c] sum_k dq[i, k]`` on every row (an ignored row
    with a NaN logit is NaN, as in refcnn). ``s_i = scale[i * scale_step]``."""
    n_count, c_count = x.shape
    for i in range(n_count):
        y = labels[i]
        s = scale[i * scale_step]
        total = 0.0
        for c in range(c_count):
            dq = 0.0
            if y >= 0:
                one_hot = (1.0 - e) * w[y] if c == y else 0.0
                dq = -s * (one_hot + (e / c_count) * w[c])
            grad[i, c] = dq
            total += dq
        m, log_total = _row_max_and_log_total(x, i)
        exp_total = 0.0
        for c in range(c_count):
            exp_total += math.exp(np.float64(x[i, c]) - m)
        for c in range(c_count):
            p = math.exp(np.float64(x[i, c]) - m) / exp_total
            grad[i, c] = grad[i, c] - p * total


@numba.njit(parallel=False, fastmath=False, **_runtime.KERNEL_FLAGS)
def _nll_terms(x, labels, w, terms, target_weights):
    """``terms[i] = -w[y] x[i, y]``, ``target_weights[i] = w[y]``; 0 for ignored samples."""
    for i in range(x.shape[0]):
        y = labels[i]
        if y < 0:
            terms[i] = 0.0
            target_weights[i] = 0.0
        else:
            terms[i] = -w[y] * np.float64(x[i, y])
            target_weights[i] = w[y]


@numba.njit(parallel=False, fastmath=False, **_runtime.KERNEL_FLAGS)
def _nll_grad(labels, w, scale, scale_step, grad):
    """``grad[i, y] = -w[y] s_i`` for kept samples, 0 elsewhere."""
    n_count, c_count = grad.shape
    for i in range(n_count):
        for c in range(c_count):
            grad[i, c] = 0.0
        y = labels[i]
        if y >= 0:
            grad[i, y] = -w[y] * scale[i * scale_step]


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _squared_terms(x, t, k, terms):
    """``terms[j] = k (x[j] - t[j])^2`` over flat arrays."""
    for j in numba.prange(x.size):
        diff = np.float64(x[j]) - np.float64(t[j])
        terms[j] = k * diff * diff


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _squared_sum(x, t, k):
    """``sum_j k (x[j] - t[j])^2``: blocks of ``_SUM_BLOCK`` summed in parallel, then the block sums in order."""
    n = x.size
    blocks = (n + _SUM_BLOCK - 1) // _SUM_BLOCK
    partial = np.zeros(blocks, dtype=np.float64)
    for b in numba.prange(blocks):
        total = 0.0
        for j in range(b * _SUM_BLOCK, min(n, (b + 1) * _SUM_BLOCK)):
            diff = np.float64(x[j]) - np.float64(t[j])
            total += k * diff * diff
        partial[b] = total
    total = 0.0
    for b in range(blocks):
        total += partial[b]
    return total


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _squared_grad(x, t, k, scale, scale_step, grad_input, grad_target):
    """``grad_input[j] = 2k (x[j] - t[j]) s_j``, ``grad_target[j] = -grad_input[j]``."""
    for j in numba.prange(x.size):
        d = 2.0 * k * (np.float64(x[j]) - np.float64(t[j])) * scale[j * scale_step]
        grad_input[j] = d
        grad_target[j] = -d


# ----------------------------------------------------------------------------------------------------------
# Helpers of the wrappers


def _labels(target: np.ndarray, ignore_index: int) -> np.ndarray:
    """``target`` as int64 with every ignored sample marked -1 (the checks guarantee the others lie in
    ``[0, C)``). ``ignore_index`` can be out of the dtype's range, in which case nothing is ignored."""
    info = np.iinfo(target.dtype)
    labels = target.astype(np.int64)  # an ignored uint64 label above 2^63 wraps here, and is replaced below
    if info.min <= ignore_index <= info.max:
        labels[target == ignore_index] = -1  # not np.where(..., -1, target): -1 would wrap in an unsigned dtype
    return labels


def _class_weights(weight, c: int) -> np.ndarray:
    return np.ones(c, dtype=np.float64) if weight is None else np.ascontiguousarray(weight, dtype=np.float64)


def _reduce(terms: np.ndarray, reduction: str, denominator: float, dtype, shape) -> np.ndarray:
    """``'none'``: the terms in ``shape``; ``'sum'``: their fixed-order sum; ``'mean'``: that sum divided by
    ``denominator``. Always an array of ``dtype``."""
    if reduction == "none":
        return terms.reshape(shape).astype(dtype, copy=False)
    return _scalar(_sequential_sum(terms), reduction, denominator, dtype)


def _scalar(total: float, reduction: str, denominator: float, dtype) -> np.ndarray:
    if reduction == "mean":
        total = ieee_divide(total, denominator)
    return np.array(total, dtype=dtype)


def _grad_scale(g, reduction: str, denominator: float) -> tuple[np.ndarray, int]:
    """Each term's share of ``grad_out`` as ``(array, step)``: term ``j`` reads ``array[j * step]``."""
    if reduction == "none":
        return np.ascontiguousarray(g, dtype=np.float64).reshape(-1), 1
    share = ieee_divide(g, denominator) if reduction == "mean" else g
    return np.array([share], dtype=np.float64), 0


def _float_arrays(*values) -> list:
    """The arguments that are arrays (``grad_out`` may be a Python number), for the dtype rules."""
    return [v for v in values if isinstance(v, np.ndarray)]


# ----------------------------------------------------------------------------------------------------------
# Negative log-likelihood and cross-entropy


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    args, _ = check_class_loss("nll_loss", input, target, weight, ignore_index, reduction)
    x = _runtime.as_compute(input, _runtime.compute_dtype(input, weight))
    terms, target_weights = np.empty(args.n), np.empty(args.n)
    _nll_terms(x, _labels(target, args.ignore_index), _class_weights(weight, args.c), terms, target_weights)
    dtype = _runtime.result_dtype(input, weight)
    return _reduce(terms, args.reduction, _sequential_sum(target_weights), dtype, (args.n,))


def nll_loss_backward(grad_out, input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    op = "nll_loss_backward"
    args, _ = check_class_loss(op, input, target, weight, ignore_index, reduction)
    g = check_loss_grad_out(op, grad_out, args.reduction, (args.n,))
    labels, w = _labels(target, args.ignore_index), _class_weights(weight, args.c)
    total_weight = _sequential_sum(np.where(labels >= 0, w[np.maximum(labels, 0)], 0.0))
    scale, step = _grad_scale(g, args.reduction, total_weight)
    grad = np.empty((args.n, args.c), dtype=np.float64)
    _nll_grad(labels, w, scale, step, grad)
    return grad.astype(_runtime.result_dtype(*_float_arrays(grad_out, input, weight)), copy=False)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    args, _ = check_class_loss("cross_entropy", input, target, weight, ignore_index, reduction, label_smoothing)
    x = _runtime.as_compute(input, _runtime.compute_dtype(input, weight))
    terms, target_weights = np.empty(args.n), np.empty(args.n)
    _cross_entropy_terms(x, _labels(target, args.ignore_index), _class_weights(weight, args.c),
                         args.label_smoothing, terms, target_weights)
    dtype = _runtime.result_dtype(input, weight)
    return _reduce(terms, args.reduction, _sequential_sum(target_weights), dtype, (args.n,))


def cross_entropy_backward(grad_out, input, target, weight=None, *, ignore_index=-100, reduction="mean",
                           label_smoothing=0.0):
    op = "cross_entropy_backward"
    args, _ = check_class_loss(op, input, target, weight, ignore_index, reduction, label_smoothing)
    g = check_loss_grad_out(op, grad_out, args.reduction, (args.n,))
    labels, w = _labels(target, args.ignore_index), _class_weights(weight, args.c)
    total_weight = _sequential_sum(np.where(labels >= 0, w[np.maximum(labels, 0)], 0.0))
    scale, step = _grad_scale(g, args.reduction, total_weight)
    x = _runtime.as_compute(input, _runtime.compute_dtype(*_float_arrays(grad_out, input, weight)))
    grad = np.empty((args.n, args.c), dtype=np.float64)
    _cross_entropy_grad(x, labels, w, args.label_smoothing, scale, step, grad)
    return grad.astype(_runtime.result_dtype(*_float_arrays(grad_out, input, weight)), copy=False)


# ----------------------------------------------------------------------------------------------------------
# Squared errors: one pointwise term k * (input - target)^2, reduced


def _squared_error(op: str, input, target, reduction, k: float) -> np.ndarray:
    args = check_pointwise_loss(op, input, target, reduction)
    dtype = _runtime.compute_dtype(input, target)
    x = _runtime.as_compute(input, dtype).reshape(-1)
    t = _runtime.as_compute(target, dtype).reshape(-1)
    out = _runtime.result_dtype(input, target)
    if args.reduction == "none":
        terms = np.empty(x.size, dtype=np.float64)
        _squared_terms(x, t, k, terms)
        return terms.reshape(args.shape).astype(out, copy=False)
    return _scalar(_squared_sum(x, t, k), args.reduction, float(x.size), out)


def _squared_error_backward(op: str, grad_out, input, target, reduction, k: float):
    args = check_pointwise_loss(op, input, target, reduction)
    g = check_loss_grad_out(op, grad_out, args.reduction, args.shape)
    dtype = _runtime.compute_dtype(input, target)
    x = _runtime.as_compute(input, dtype).reshape(-1)
    t = _runtime.as_compute(target, dtype).reshape(-1)
    scale, step = _grad_scale(g, args.reduction, float(x.size))
    grad_input = np.empty(x.size, dtype=np.float64)
    grad_target = np.empty(x.size, dtype=np.float64)
    _squared_grad(x, t, k, scale, step, grad_input, grad_target)
    out = _runtime.result_dtype(*_float_arrays(grad_out, input, target))
    return (grad_input.reshape(args.shape).astype(out, copy=False),
            grad_target.reshape(args.shape).astype(out, copy=False))


def mse_loss(input, target, *, reduction="mean"):
    return _squared_error("mse_loss", input, target, reduction, 1.0)


def mse_loss_backward(grad_out, input, target, *, reduction="mean"):
    return _squared_error_backward("mse_loss_backward", grad_out, input, target, reduction, 1.0)


def half_squared_error(input, target, *, reduction="sum"):
    return _squared_error("half_squared_error", input, target, reduction, 0.5)


def half_squared_error_backward(grad_out, input, target, *, reduction="sum"):
    return _squared_error_backward("half_squared_error_backward", grad_out, input, target, reduction, 0.5)


_runtime.share_docstrings(globals(), __all__)
