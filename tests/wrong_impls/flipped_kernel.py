"""conv2d as textbook convolution: the kernel is flipped (the spec cross-correlates)."""

import refcnn


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    flipped = weight[:, :, ::-1, ::-1].copy()
    return refcnn.conv2d(x, flipped, bias, stride, padding, dilation, groups, padding_mode)
