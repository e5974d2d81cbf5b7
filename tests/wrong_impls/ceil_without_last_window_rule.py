"""max_pool1d whose ceil_mode takes the ceiling and stops there: it keeps the extra window even when that
window starts in the end padding (the spec, PyTorch and ONNX drop it)."""

import math

import numpy as np

import refcnn


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if not ceil_mode:
        return refcnn.max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    if not isinstance(padding, int) or return_indices:
        raise NotImplementedError("only int padding, without indices")
    k, s, d = kernel_size, stride or kernel_size, dilation
    n = x.shape[2]
    out = math.ceil((n + 2 * padding - d * (k - 1) - 1) / s) + 1  # no last-window rule
    y = np.full(x.shape[:2] + (out,), -np.inf)
    for o in range(out):
        for j in range(k):
            i = o * s - padding + j * d
            if 0 <= i < n:
                y[:, :, o] = np.maximum(y[:, :, o], x[:, :, i])
    return y
