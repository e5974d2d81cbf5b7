"""avg_pool2d that always divides by the window size with padding, even with count_include_pad=False."""

import refcnn


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return refcnn.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, True, divisor_override)
