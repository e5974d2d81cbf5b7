"""A third-party implementation checked by ``cnn conform``: a student's plain-NumPy conv2d, relu and
max_pool2d, written from the spec (``specs/``) without refcnn.

It follows the adapter protocol (``specs/adapter.md``): functions with the spec's names and signatures
at module level, arrays in and out. What it does not implement it declines with ``NotImplementedError``,
which conform counts as skipped rather than failed. Run it with::

    cnn conform examples/numpy_student.py
"""

import numpy as np

NAME = "numpy-student"
CHECKS_ARGUMENTS = False  # no argument validation: conform skips the spec's error cases


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _symmetric_padding(padding):
    """Only ints (or one int per axis) are implemented; 'same' and per-side pairs are declined."""
    if padding == "valid":
        return (0, 0)
    if isinstance(padding, str) or any(isinstance(p, (tuple, list)) for p in _pair(padding)):
        raise NotImplementedError(f"padding={padding!r}")
    return _pair(padding)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """y[n, co, i, j] = b[co] + sum_{ci, a, b} w[co, ci, a, b] * x_pad[n, ci, i*SH + a*DH, j*SW + b*DW]."""
    if groups != 1 or padding_mode != "zeros":
        raise NotImplementedError("groups and fills other than zeros")
    (sh, sw), (dh, dw), (ph, pw) = _pair(stride), _pair(dilation), _symmetric_padding(padding)
    c_out, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    h_out = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    w_out = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], c_out, h_out, w_out))
    for a in range(kh):
        for b in range(kw):
            # the input cells that kernel tap (a, b) meets, one per output position
            patch = xp[:, :, a * dh: a * dh + sh * (h_out - 1) + 1: sh, b * dw: b * dw + sw * (w_out - 1) + 1: sw]
            y += np.einsum("nchw,oc->nohw", patch, weight[:, :, a, b])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def relu(x):
    """y = max(x, 0)."""
    return np.maximum(x, 0.0)


def relu_backward(grad_out, x):
    """dL/dx = grad_out where x > 0, else 0 (ReLU'(0) = 0)."""
    return np.where(x > 0, grad_out, 0.0)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """y[n, c, i, j] = max over the window's cells inside the input (padding never wins)."""
    if ceil_mode or return_indices:
        raise NotImplementedError("ceil_mode and return_indices")
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    (dh, dw), (ph, pw) = _pair(dilation), _symmetric_padding(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    h_out = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    w_out = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.full(x.shape[:2] + (h_out, w_out), -np.inf)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a * dh: a * dh + sh * (h_out - 1) + 1: sh, b * dw: b * dw + sw * (w_out - 1) + 1: sw]
            y = np.maximum(y, patch)
    return y
