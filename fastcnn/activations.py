"""Activations, fast: ReLU, leaky ReLU, ELU, sigmoid, tanh, softmax and log-softmax (``specs/activations.md``).

Same names, arguments, defaults and docstrings as :mod:`refcnn.activations`, and the same checks
(:mod:`cnnbase.activations`) before any kernel runs. The kernels are parallel loops (``prange``) over disjoint elements or lines, with
``fastmath`` limited to ``_runtime.FASTMATH`` (NaN and infinity keep their meaning), so results do not depend
on the thread count.

The elementwise kernels work on the flattened array. Softmax and log-softmax see ``x`` as
``(outer, L, inner)`` with ``L`` the length along ``dim``: a line is ``x[o, :, i]``, read with stride
``inner`` (1 when ``dim`` is the last axis), so no transposed copy is made for any ``dim``.

Kinks and special values are those of refcnn, written with the same comparisons so that NaN takes the same
branch: ReLU'(0) = 0, leaky_relu'(0) = negative_slope, ELU'(0) = alpha; a softmax line holding NaN or
``+inf``, or only ``-inf``, is NaN.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from cnnbase.activations import (
    check_activation_input, check_alpha, check_grad_out, check_negative_slope, resolve_dim,
)
from cnnbase.checks import check_float_array, check_same_shape

from . import _runtime
from ._runtime import FASTMATH, KERNEL_FLAGS

__all__ = [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward",
    "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
]


# ----------------------------------------------------------------------------------------------------------
# Elementwise kernels: x and the outputs are flat, C-contiguous, of one dtype


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _relu_kernel(x, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = 0.0 if v <= 0.0 else v  # NaN fails `<=` and passes through


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _relu_backward_kernel(grad_out, x, grad_x):
    for i in prange(x.size):
        # a product, not a select, so a NaN or infinite grad_out at x <= 0 gives NaN as in refcnn
        grad_x[i] = grad_out[i] * (0.0 if x[i] <= 0.0 else 1.0)


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _add_relu_kernel(a, b, y):
    for i in prange(a.size):
        v = a[i] + b[i]  # rounded to the dtype first, as NumPy's a + b
        y[i] = 0.0 if v <= 0.0 else v


@numba.njit(parallel=True, fastmath=False, **KERNEL_FLAGS)
def _relu_backward_add_kernel(grad_out, x, addend, out):
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for i in prange(x.size):
        masked = grad_out[i] * (zero if x[i] <= zero else one)  # relu_backward's product, in the dtype
        out[i] = addend[i] + masked  # then NumPy's sum, in the dtype too (no float64 in between)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _leaky_relu_kernel(x, slope, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0.0 else slope * v


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _leaky_relu_backward_kernel(grad_out, x, slope, grad_x):
    for i in prange(x.size):
        grad_x[i] = grad_out[i] * (1.0 if x[i] > 0.0 else slope)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _elu_kernel(x, alpha, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0.0 else alpha * math.expm1(v)  # expm1: exp(v) - 1 without cancellation near 0


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _elu_backward_kernel(grad_out, x, alpha, grad_x):
    for i in prange(x.size):
        v = x[i]
        grad_x[i] = grad_out[i] * (alpha * math.exp(v) if v <= 0.0 else 1.0)


@numba.njit(inline="always", **KERNEL_FLAGS)
def _sigmoid(v):
    """Two branches so exp never overflows: exp of a non-positive number is at most 1 (as refcnn)."""
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _sigmoid_kernel(x, y):
    for i in prange(x.size):
        y[i] = _sigmoid(x[i])


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _sigmoid_backward_kernel(grad_out, x, grad_x):
    for i in prange(x.size):
        s = _sigmoid(x[i])
        grad_x[i] = grad_out[i] * (s * (1.0 - s))


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _tanh_kernel(x, y):
    for i in prange(x.size):
        y[i] = math.tanh(x[i])


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _tanh_backward_kernel(grad_out, x, grad_x):
    for i in prange(x.size):
        t = math.tanh(x[i])
        grad_x[i] = grad_out[i] * (1.0 - t * t)


# ----------------------------------------------------------------------------------------------------------
# Softmax kernels: arrays (outer, L, inner); one prange iteration per line (o, i)


@numba.njit(inline="always", **KERNEL_FLAGS)
def _line_max_and_sum(x, o, i):
    """``m = max_k x[o, k, i]`` and ``S = sum_k exp(x[o, k, i] - m)`` (refcnn's shifted exponentials).

    The maximum is a plain ``>`` scan as Python's ``max``; any NaN or an infinite maximum still makes ``S``
    NaN, so the whole line is NaN as in refcnn."""
    m = x[o, 0, i]
    for k in range(1, x.shape[1]):
        if x[o, k, i] > m:
            m = x[o, k, i]
    total = 0.0
    for k in range(x.shape[1]):
        total += math.exp(x[o, k, i] - m)
    return m, total


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _softmax_kernel(x, y):
    outer, length, inner = x.shape
    if length == 0:  # an axis of size 0 has nothing to normalise
        return
    for line in prange(outer * inner):
        o, i = line // inner, line % inner
        m, total = _line_max_and_sum(x, o, i)
        for k in range(length):
            y[o, k, i] = math.exp(x[o, k, i] - m) / total


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _log_softmax_kernel(x, y):
    outer, length, inner = x.shape
    if length == 0:
        return
    for line in prange(outer * inner):
        o, i = line // inner, line % inner
        m, total = _line_max_and_sum(x, o, i)
        log_total = math.log(total)
        for k in range(length):
            y[o, k, i] = (x[o, k, i] - m) - log_total


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _softmax_backward_kernel(grad_out, x, grad_x):
    """``grad_x_k = p_k (g_k - sum_j g_j p_j)``; ``p`` is recomputed per line, as refcnn's softmax."""
    outer, length, inner = x.shape
    if length == 0:
        return
    for line in prange(outer * inner):
        o, i = line // inner, line % inner
        m, total = _line_max_and_sum(x, o, i)
        dot = 0.0
        for k in range(length):
            dot += grad_out[o, k, i] * (math.exp(x[o, k, i] - m) / total)
        for k in range(length):
            p = math.exp(x[o, k, i] - m) / total
            grad_x[o, k, i] = p * (grad_out[o, k, i] - dot)


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_FLAGS)
def _log_softmax_backward_kernel(grad_out, x, grad_x):
    """``grad_x_k = g_k - p_k sum_j g_j``, ``p = softmax(x)`` along the line."""
    outer, length, inner = x.shape
    if length == 0:
        return
    for line in prange(outer * inner):
        o, i = line // inner, line % inner
        m, total = _line_max_and_sum(x, o, i)
        g_sum = 0.0
        for k in range(length):
            g_sum += grad_out[o, k, i]
        for k in range(length):
            p = math.exp(x[o, k, i] - m) / total
            grad_x[o, k, i] = grad_out[o, k, i] - p * g_sum


# ----------------------------------------------------------------------------------------------------------
# Wrappers: validate with refcnn's checks, convert, run a kernel, return the input's dtype


def _scalar(value: float, dtype):
    """A hyperparameter in the compute dtype, so float32 kernels stay in float32."""
    return dtype.type(value)


def _work(kernel, size: int) -> int:
    """The work of an elementwise kernel on ``size`` elements, in ``_runtime.launch``'s units: a kernel of a
    compare or two per element (ReLU, leaky ReLU) weighs 1/8 of an element (ReLU on 401,408 float32 elements:
    199 us on 2 threads, 156 on 1; 802,816: 276 against 275; session 27, 2-core Xeon); exp and tanh count
    whole ones."""
    return size // 8 if kernel in _CHEAP else size


def _elementwise(kernel, x, *params):
    """``kernel(flat x, *params, flat y)`` and ``y`` in ``x``'s shape and dtype."""
    dtype = _runtime.compute_dtype(x)
    xc = _runtime.as_compute(x, dtype)
    y = np.empty(x.shape, dtype=dtype)  # x.shape: as_compute makes a 0-d array 1-d
    _runtime.launch(kernel, _work(kernel, x.size), xc.reshape(-1), *[_scalar(p, dtype) for p in params],
                    y.reshape(-1))
    return y.astype(_runtime.result_dtype(x), copy=False)


def _elementwise_backward(kernel, grad_out, x, *params):
    """``kernel(flat grad_out, flat x, *params, flat grad_x)`` in the compute dtype of both arrays."""
    dtype = _runtime.compute_dtype(grad_out, x)
    gc, xc = _runtime.as_compute(grad_out, dtype), _runtime.as_compute(x, dtype)
    grad_x = np.empty(x.shape, dtype=dtype)
    _runtime.launch(kernel, _work(kernel, x.size), gc.reshape(-1), xc.reshape(-1),
                    *[_scalar(p, dtype) for p in params], grad_x.reshape(-1))
    return grad_x.astype(_runtime.result_dtype(grad_out, x), copy=False)


_CHEAP = (_relu_kernel, _relu_backward_kernel, _leaky_relu_kernel, _leaky_relu_backward_kernel, _add_relu_kernel,
          _relu_backward_add_kernel)


def _lines_view(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` (C-contiguous) as ``(outer, L, inner)`` with ``L`` its length along ``axis``; 0-d is one line."""
    shape = a.shape if a.ndim else (1,)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return a.reshape(outer, shape[axis], inner)


def _along_lines(kernel, x, axis):
    dtype = _runtime.compute_dtype(x)
    xc = _runtime.as_compute(x, dtype)
    y = np.empty(x.shape, dtype=dtype)
    kernel(_lines_view(xc, axis), _lines_view(y, axis))
    return y.astype(_runtime.result_dtype(x), copy=False)


def _along_lines_backward(kernel, grad_out, x, axis):
    dtype = _runtime.compute_dtype(grad_out, x)
    gc, xc = _runtime.as_compute(grad_out, dtype), _runtime.as_compute(x, dtype)
    grad_x = np.empty(x.shape, dtype=dtype)
    kernel(_lines_view(gc, axis), _lines_view(xc, axis), _lines_view(grad_x, axis))
    return grad_x.astype(_runtime.result_dtype(grad_out, x), copy=False)


def relu(x):
    check_activation_input(x, "relu")
    return _elementwise(_relu_kernel, x)


def relu_backward(grad_out, x):
    op = "relu_backward"
    check_activation_input(x, op)
    check_grad_out(grad_out, x, op)
    return _elementwise_backward(_relu_backward_kernel, grad_out, x)


def leaky_relu(x, negative_slope=0.01):
    op = "leaky_relu"
    check_activation_input(x, op)
    slope = check_negative_slope(negative_slope, op)
    return _elementwise(_leaky_relu_kernel, x, slope)


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    op = "leaky_relu_backward"
    check_activation_input(x, op)
    slope = check_negative_slope(negative_slope, op)
    check_grad_out(grad_out, x, op)
    return _elementwise_backward(_leaky_relu_backward_kernel, grad_out, x, slope)


def elu(x, alpha=1.0):
    op = "elu"
    check_activation_input(x, op)
    a = check_alpha(alpha, op)
    return _elementwise(_elu_kernel, x, a)


def elu_backward(grad_out, x, alpha=1.0):
    op = "elu_backward"
    check_activation_input(x, op)
    a = check_alpha(alpha, op)
    check_grad_out(grad_out, x, op)
    return _elementwise_backward(_elu_backward_kernel, grad_out, x, a)


def sigmoid(x):
    check_activation_input(x, "sigmoid")
    return _elementwise(_sigmoid_kernel, x)


def sigmoid_backward(grad_out, x):
    op = "sigmoid_backward"
    check_activation_input(x, op)
    check_grad_out(grad_out, x, op)
    return _elementwise_backward(_sigmoid_backward_kernel, grad_out, x)


def tanh(x):
    check_activation_input(x, "tanh")
    return _elementwise(_tanh_kernel, x)


def tanh_backward(grad_out, x):
    op = "tanh_backward"
    check_activation_input(x, op)
    check_grad_out(grad_out, x, op)
    return _elementwise_backward(_tanh_backward_kernel, grad_out, x)


def softmax(x, dim=-1):
    op = "softmax"
    check_activation_input(x, op)
    axis = resolve_dim(x.shape, dim, op)
    return _along_lines(_softmax_kernel, x, axis)


def softmax_backward(grad_out, x, dim=-1):
    op = "softmax_backward"
    check_activation_input(x, op)
    axis = resolve_dim(x.shape, dim, op)
    check_grad_out(grad_out, x, op)
    return _along_lines_backward(_softmax_backward_kernel, grad_out, x, axis)


def log_softmax(x, dim=-1):
    op = "log_softmax"
    check_activation_input(x, op)
    axis = resolve_dim(x.shape, dim, op)
    return _along_lines(_log_softmax_kernel, x, axis)


def log_softmax_backward(grad_out, x, dim=-1):
    op = "log_softmax_backward"
    check_activation_input(x, op)
    axis = resolve_dim(x.shape, dim, op)
    check_grad_out(grad_out, x, op)
    return _along_lines_backward(_log_softmax_backward_kernel, grad_out, x, axis)


# ----------------------------------------------------------------------------------------------------------
# Fused (fastcnn only, outside the spec's ops): cnn's residual blocks take it when the engine has it


FUSED_OPS = ("add_relu", "relu_backward_add")


def add_relu(a, b):
    """``relu(a + b)``, bit for bit NumPy's ``a + b`` then :func:`relu`, in one pass: the sum of a residual
    block's branches and the block's ReLU (``cnn.layers``). ``a`` and ``b``: float arrays of one shape. Its
    gradient is ``relu_backward(grad, y)`` with this output ``y`` (``y <= 0`` exactly where ``a + b`` is)."""
    op = "add_relu"
    check_float_array(a, "a", op)
    check_float_array(b, "b", op)
    check_same_shape(b, a, "b", "a", op)
    dtype = _runtime.compute_dtype(a, b)
    ac, bc = _runtime.as_compute(a, dtype), _runtime.as_compute(b, dtype)
    y = np.empty(a.shape, dtype=dtype)
    _runtime.launch(_add_relu_kernel, _work(_add_relu_kernel, a.size), ac.reshape(-1), bc.reshape(-1),
                    y.reshape(-1))
    return y.astype(_runtime.result_dtype(a, b), copy=False)


def relu_backward_add(grad_out, x, addend):
    """``addend + relu_backward(grad_out, x)``, bit for bit NumPy's sum of ``addend`` and :func:`relu_backward`,
    in one pass where the three arrays have one dtype (the plain ops in turn otherwise): a residual block's
    input gradient, its body's plus its identity shortcut's (the block's ReLU's mask; ``x`` may be that ReLU's
    output, :func:`add_relu`'s). ``addend``: a float array of x's shape."""
    op = "relu_backward_add"
    check_activation_input(x, op)
    check_grad_out(grad_out, x, op)
    check_float_array(addend, "addend", op)
    check_same_shape(addend, x, "addend", "x", op)
    dtype = _runtime.compute_dtype(grad_out, x)
    if not (grad_out.dtype == x.dtype == addend.dtype == dtype):
        return addend + relu_backward(grad_out, x)
    out = np.empty(x.shape, dtype=dtype)
    _runtime.launch(_relu_backward_add_kernel, _work(_relu_backward_add_kernel, x.size), grad_out.reshape(-1),
                    x.reshape(-1), np.ascontiguousarray(addend).reshape(-1), out.reshape(-1))
    return out


_runtime.share_docstrings(globals(), __all__)
