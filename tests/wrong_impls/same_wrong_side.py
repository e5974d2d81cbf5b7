"""conv2d whose 'same' puts the odd extra padding cell at the beginning (and 'same_lower' at the end)."""

import refcnn

SWAPPED = {"same": "same_lower", "same_lower": "same"}


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    if isinstance(padding, str):
        padding = SWAPPED.get(padding, padding)
    return refcnn.conv2d(x, weight, bias, stride, padding, dilation, groups, padding_mode)
