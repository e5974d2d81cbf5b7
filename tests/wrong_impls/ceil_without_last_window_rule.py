"""max_pool1d whose ceil_mode takes the ceiling and stops there: it keeps the extra window even when that
window starts in the end padding (the spec, PyTorch and ONNX drop it)."""

import math

import numpy as np

import refcnn
from cnnbase.shapes import resolve_padding


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if not ceil_mode or return_indices:
        return refcnn.max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    k = kernel_size[0] if isinstance(kernel_size, tuple) else kernel_size
    s = k if stride is None else (stride[0] if isinstance(stride, tuple) else stride)
    d = dilation[0] if isinstance(dilation, tuple) else dilation
    n = x.shape[2]
    ((begin, end),) = resolve_padding(padding, (n,), (k,), (s,), (d,))
    out = math.ceil((n + begin + end - d * (k - 1) - 1) / s) + 1  # no last-window rule
    y = np.full(x.shape[:2] + (out,), -np.inf)
    for o in range(out):
        for j in range(k):
            i = o * s - begin + j * d
            if 0 <= i < n:
                y[:, :, o] = np.maximum(y[:, :, o], x[:, :, i])
    return y
