"""max_pool2d_backward that routes a window's gradient to its *last* maximum (the spec: the first)."""

import numpy as np

from cnnbase import shapes


def _as_pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    k = _as_pair(kernel_size)
    s = k if stride is None else _as_pair(stride)
    d = _as_pair(dilation)
    pads = shapes.resolve_padding(padding, x.shape[2:], k, s, d)
    outs = [shapes.conv_output_size(n, kk, ss, pb, pe, dd, ceil_mode)
            for n, kk, ss, (pb, pe), dd in zip(x.shape[2:], k, s, pads, d)]
    grad_x = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oh in range(outs[0]):
                for ow in range(outs[1]):
                    best, where = -np.inf, None
                    for kh in range(k[0]):
                        for kw in range(k[1]):
                            ih = oh * s[0] - pads[0][0] + kh * d[0]
                            iw = ow * s[1] - pads[1][0] + kw * d[1]
                            if 0 <= ih < x.shape[2] and 0 <= iw < x.shape[3] and x[n, c, ih, iw] >= best:
                                best, where = x[n, c, ih, iw], (ih, iw)  # >=: a later tie wins
                    grad_x[n, c, where[0], where[1]] += grad_out[n, c, oh, ow]
    return grad_x
