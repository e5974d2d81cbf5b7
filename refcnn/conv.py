"""Convolution: conv1d, conv2d, their transposes, and the backward of each (``specs/conv.md``).

Layout NCHW; cross-correlation (the kernel is not flipped); weights ``(C_out, C_in/G, KH, KW)`` for a
convolution and ``(C_in, C_out/G, KH, KW)`` for a transposed one. Channel ``c`` belongs to group
``g = c // (C/G)`` and a group's outputs read only that group's inputs.

The loops are written once, for 2-D. A 1-D op is the 2-D op on an input of height 1 with a kernel of
height 1 (:meth:`cnnbase.conv.ConvGeometry.as_2d` adds that unit axis to the geometry, the arrays are reshaped).
All checking happens first, on the ground floor (:func:`cnnbase.conv.conv_geometry` and
:func:`cnnbase.conv.conv_transpose_geometry`), from shapes and hyperparameters alone, so both engines raise the
same errors. :func:`conv_forward` and :func:`conv_backward` run on a geometry resolved once by their caller.
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import as_float64, check_bool
from cnnbase.conv import (
    ConvGeometry, as_2d, conv_geometry_of, conv_transpose_geometry_of, fit_geometry,
)
from cnnbase.conv_algorithm import check_algorithm
from cnnbase.padding import source_index

__all__ = [
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
]


# ---------------------------------------------------------------------------------------------------
# The loops (2-D, float64)
# ---------------------------------------------------------------------------------------------------


def _conv2d_loop(x, weight, bias, geom: ConvGeometry) -> np.ndarray:
    """y[n, co, oh, ow] = b[co] + sum_{ci, kh, kw} w[co, ci, kh, kw] * x_pad[n, g*C_in/G + ci, ih, iw]."""
    N, C_out = geom.N, geom.C_out
    H, W = geom.sizes
    KH, KW = geom.kernel
    SH, SW = geom.stride
    DH, DW = geom.dilation
    # Only the leading pads place the windows; the trailing pads only decided how many windows there are.
    (PH, _), (PW, _) = geom.pads
    H_out, W_out = geom.out
    C_in_g, C_out_g, mode = geom.C_in_per_group, geom.C_out_per_group, geom.padding_mode
    y = np.zeros((N, C_out, H_out, W_out), dtype=np.float64)
    for n in range(N):
        for co in range(C_out):
            g = co // C_out_g
            for oh in range(H_out):
                for ow in range(W_out):
                    acc = 0.0 if bias is None else bias[co]
                    for ci in range(C_in_g):
                        c = g * C_in_g + ci
                        for kh in range(KH):
                            ih = source_index(oh * SH - PH + kh * DH, H, mode)
                            if ih < 0:  # a zero-filled padding row adds nothing
                                continue
                            for kw in range(KW):
                                iw = source_index(ow * SW - PW + kw * DW, W, mode)
                                if iw < 0:
                                    continue
                                acc += weight[co, ci, kh, kw] * x[n, c, ih, iw]
                    y[n, co, oh, ow] = acc
    return y


def _conv2d_backward_loop(grad_out, x, weight, has_bias: bool, geom: ConvGeometry):
    """The three partial derivatives of the forward sum, accumulated term by term.

    Each product ``w[co, ci, kh, kw] * x[n, c, ih, iw]`` sends ``g * x`` to the weight and ``g * w`` to the
    input cell it read; a padded cell read through 'replicate', 'reflect' or 'circular' is that input cell,
    so its gradient lands there, and a zero-filled one was skipped in the forward and receives nothing.
    """
    N, C_out = geom.N, geom.C_out
    H, W = geom.sizes
    KH, KW = geom.kernel
    SH, SW = geom.stride
    DH, DW = geom.dilation
    (PH, _), (PW, _) = geom.pads
    H_out, W_out = geom.out
    C_in_g, C_out_g, mode = geom.C_in_per_group, geom.C_out_per_group, geom.padding_mode
    grad_x = np.zeros(x.shape, dtype=np.float64)
    grad_w = np.zeros(weight.shape, dtype=np.float64)
    grad_b = np.zeros(C_out, dtype=np.float64) if has_bias else None
    for n in range(N):
        for co in range(C_out):
            g = co // C_out_g
            for oh in range(H_out):
                for ow in range(W_out):
                    go = grad_out[n, co, oh, ow]
                    if has_bias:
                        grad_b[co] += go
                    for ci in range(C_in_g):
                        c = g * C_in_g + ci
                        for kh in range(KH):
                            ih = source_index(oh * SH - PH + kh * DH, H, mode)
                            if ih < 0:
                                continue
                            for kw in range(KW):
                                iw = source_index(ow * SW - PW + kw * DW, W, mode)
                                if iw < 0:
                                    continue
                                grad_w[co, ci, kh, kw] += go * x[n, c, ih, iw]
                                grad_x[n, c, ih, iw] += go * weight[co, ci, kh, kw]
    return grad_x, grad_w, grad_b


def _conv_transpose2d_loop(x, weight, bias, geom: ConvGeometry) -> np.ndarray:
    """Every input cell x[n, ci, ih, iw] adds x * w[ci, co_l, kh, kw] to y[n, g*C_out/G + co_l, oh, ow] at
    oh = ih*SH - p_b + kh*DH, ow = iw*SW - p_b + kw*DW, when that lies inside the output."""
    N, C_in = geom.N, geom.C_in
    H, W = geom.sizes
    KH, KW = geom.kernel
    SH, SW = geom.stride
    DH, DW = geom.dilation
    # The leading pads are cropped from the full output; the trailing ones only shortened it.
    (PH, _), (PW, _) = geom.pads
    H_out, W_out = geom.out
    C_in_g, C_out_g = geom.C_in_per_group, geom.C_out_per_group
    y = np.zeros(geom.out_shape, dtype=np.float64)
    for n in range(N):
        for ci in range(C_in):
            g = ci // C_in_g
            for ih in range(H):
                for iw in range(W):
                    value = x[n, ci, ih, iw]
                    for co_l in range(C_out_g):
                        co = g * C_out_g + co_l
                        for kh in range(KH):
                            oh = ih * SH - PH + kh * DH
                            if not 0 <= oh < H_out:  # cropped by the padding
                                continue
                            for kw in range(KW):
                                ow = iw * SW - PW + kw * DW
                                if not 0 <= ow < W_out:
                                    continue
                                y[n, co, oh, ow] += value * weight[ci, co_l, kh, kw]
    if bias is not None:
        for n in range(N):
            for co in range(geom.C_out):
                for oh in range(H_out):
                    for ow in range(W_out):
                        y[n, co, oh, ow] += bias[co]
    return y


def _conv_transpose2d_backward_loop(grad_out, x, weight, has_bias: bool, geom: ConvGeometry):
    """The partial derivatives of the transposed sum: each term ``x * w`` that reached ``y[n, co, oh, ow]``
    gives ``g * w`` to the input cell and ``g * x`` to the weight; the bias gets the sum of ``g``."""
    N, C_in, C_out = geom.N, geom.C_in, geom.C_out
    H, W = geom.sizes
    KH, KW = geom.kernel
    SH, SW = geom.stride
    DH, DW = geom.dilation
    (PH, _), (PW, _) = geom.pads
    H_out, W_out = geom.out
    C_in_g, C_out_g = geom.C_in_per_group, geom.C_out_per_group
    grad_x = np.zeros(x.shape, dtype=np.float64)
    grad_w = np.zeros(weight.shape, dtype=np.float64)
    for n in range(N):
        for ci in range(C_in):
            g = ci // C_in_g
            for ih in range(H):
                for iw in range(W):
                    value = x[n, ci, ih, iw]
                    acc = 0.0
                    for co_l in range(C_out_g):
                        co = g * C_out_g + co_l
                        for kh in range(KH):
                            oh = ih * SH - PH + kh * DH
                            if not 0 <= oh < H_out:
                                continue
                            for kw in range(KW):
                                ow = iw * SW - PW + kw * DW
                                if not 0 <= ow < W_out:
                                    continue
                                go = grad_out[n, co, oh, ow]
                                acc += go * weight[ci, co_l, kh, kw]
                                grad_w[ci, co_l, kh, kw] += go * value
                    grad_x[n, ci, ih, iw] = acc
    grad_b = None
    if has_bias:
        grad_b = np.zeros(C_out, dtype=np.float64)
        for n in range(N):
            for co in range(C_out):
                for oh in range(H_out):
                    for ow in range(W_out):
                        grad_b[co] += grad_out[n, co, oh, ow]
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------------------------------
# One body per direction, for both ranks and both kinds, on a resolved geometry
# ---------------------------------------------------------------------------------------------------


def _forward(geom: ConvGeometry, x, weight, bias) -> np.ndarray:
    loop = _conv_transpose2d_loop if geom.transposed else _conv2d_loop
    x, weight = as_float64(x), as_float64(weight)
    bias = None if bias is None else as_float64(bias)
    return loop(as_2d(x), as_2d(weight), bias, geom.as_2d()).reshape(geom.out_shape)


def _backward(geom: ConvGeometry, grad_out, x, weight, bias):
    loop = _conv_transpose2d_backward_loop if geom.transposed else _conv2d_backward_loop
    grad_out, x, weight = as_float64(grad_out), as_float64(x), as_float64(weight)
    grad_x, grad_w, grad_b = loop(as_2d(grad_out), as_2d(x), as_2d(weight), bias is not None, geom.as_2d())
    return grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b


def conv_forward(geometry: ConvGeometry, x, weight, bias=None, *, algorithm="auto") -> np.ndarray:
    """The convolution (or transposed convolution) that ``geometry`` describes, applied to ``x``.

    ``geometry`` comes from :func:`cnnbase.conv.conv_geometry` or :func:`cnnbase.conv.conv_transpose_geometry`,
    resolved once (a ``cnn`` layer does it when it is built); the arrays are only checked to fit it, for any
    batch size. Computes exactly what the op named by ``geometry.op`` computes. ``algorithm``: as in
    :func:`conv2d`.
    """
    geometry = fit_geometry(geometry, x, weight, bias)
    check_algorithm("conv_forward", algorithm, geometry)
    return _forward(geometry, x, weight, bias)


def conv_backward(geometry: ConvGeometry, grad_out, x, weight, bias=None, *, algorithm="auto", input_grad=True):
    """The gradients ``(grad_x, grad_weight, grad_bias)`` of :func:`conv_forward` on a resolved geometry.

    ``input_grad=False``: ``grad_x`` is ``None`` (a network's first layer, whose input is the data, needs
    none; fastcnn then skips its computation). The other two are the same numbers either way."""
    geometry = fit_geometry(geometry, x, weight, bias, grad_out, caller="conv_backward")
    check_algorithm("conv_backward", algorithm, geometry)
    input_grad = check_bool(input_grad, "input_grad", "conv_backward")
    grad_x, grad_w, grad_b = _backward(geometry, grad_out, x, weight, bias)
    return (grad_x if input_grad else None), grad_w, grad_b


# ---------------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", *,
           algorithm="auto"):
    r"""2-D convolution (cross-correlation) with groups, dilation, any padding amount and fill.

    ``y[n, co, oh, ow] = b[co] + sum_{ci < C_in/G} sum_{kh < KH} sum_{kw < KW}
    w[co, ci, kh, kw] * x_pad[n, g*C_in/G + ci, oh*SH - p_b(H) + kh*DH, ow*SW - p_b(W) + kw*DW]``
    with ``g = co // (C_out/G)``, where ``x_pad`` reads a padded coordinate through ``padding_mode``.

    Shapes: x (N, C_in, H, W), weight (C_out, C_in/G, KH, KW), bias (C_out,) -> (N, C_out, H_out, W_out),
    ``H_out = floor((H + p_b + p_e - DH*(KH-1) - 1) / SH) + 1`` and likewise ``W_out``.

    Parameters
    ----------
    x, weight, bias : numpy.ndarray
        Any float dtype; computed in float64. ``bias`` may be ``None``.
    stride, dilation : int or tuple of 2 ints
        ``(SH, SW)`` and ``(DH, DW)``, each >= 1; dilation 1 means none.
    padding : int, tuple of 2 ints, tuple of 2 (begin, end) pairs, 'valid', 'same' or 'same_lower'
        The amount, resolved by :func:`cnnbase.shapes.resolve_padding`; 'same' works for any stride and
        dilation and puts an odd extra cell at the end, 'same_lower' at the beginning.
    groups : int
        ``G``; divides ``C_in`` and ``C_out``. ``G = C_in`` is depthwise.
    padding_mode : {'zeros', 'replicate', 'reflect', 'circular'}
        The fill (``cnnbase.padding.source_index``).
    algorithm : {'auto', 'direct', 'winograd', 'winograd4'}, keyword only
        How to compute it, an implementation choice (``cnnbase.conv_algorithm``, ``specs/conv.md``
        "Algorithms"): the same formula, another rounding. refcnn has one algorithm, this formula's loops;
        it checks the keyword as fastcnn does (``'winograd'``, F(2x2, 3x3), and ``'winograd4'``, F(4x4,
        3x3), only for 2-D, groups 1, 3x3, stride 1, dilation 1) so code runs unchanged on both engines.
        fastcnn's ``'auto'`` picks by measured rules.

    Returns
    -------
    numpy.ndarray, float64, shape (N, C_out, H_out, W_out)

    Raises
    ------
    TypeError
        A non-array or a non-float array.
    ValueError
        Wrong dimensions or channels, ``groups`` not dividing the channels, bad hyperparameters (an int
        beyond int64 included); :class:`cnnbase.shapes.ShapeError` when the window does not fit the padded
        input; :class:`cnnbase.limits.SizeLimitError` when the output, the padded input or a workspace would
        exceed ``CNN_MAX_ARRAY_BYTES`` (``specs/errors.md``); a ValueError naming ``algorithm`` for another
        value than those four, or a Winograd one on a convolution it does not compute.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d(x, np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    geom = conv_geometry_of("conv2d", 2, x, weight, bias, stride, padding, dilation, groups, padding_mode)
    check_algorithm("conv2d", algorithm, geom)
    return _forward(geom, x, weight, bias)


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", *, algorithm="auto"):
    """Gradients of :func:`conv2d` with respect to x, weight and bias.

    With ``G_o = grad_out`` and the forward's index map ``ih = src(oh*SH - p_b + kh*DH)``,
    ``iw = src(ow*SW - p_b + kw*DW)``:

    ``dL/dw[co, ci, kh, kw] = sum_{n, oh, ow} G_o[n, co, oh, ow] * x_pad[n, g*C_in/G + ci, ih, iw]``,
    ``dL/dx[n, c, i, j] = sum of G_o[n, co, oh, ow] * w[co, ci, kh, kw]`` over every term whose read cell
    ``(ih, iw)`` is ``(i, j)`` (padded cells included, through their fill; zero fill contributes nothing),
    ``dL/db[co] = sum_{n, oh, ow} G_o[n, co, oh, ow]``.

    Shapes: grad_out (N, C_out, H_out, W_out) -> (x's shape, weight's shape, (C_out,) or None).
    ``algorithm``: as in :func:`conv2d`.

    Returns
    -------
    tuple (grad_x, grad_weight, grad_bias)
        float64; ``grad_bias`` is ``None`` when ``bias`` is ``None``.
    """
    geom = conv_geometry_of("conv2d_backward", 2, x, weight, bias, stride, padding, dilation, groups,
                            padding_mode, grad_out)
    check_algorithm("conv2d_backward", algorithm, geom)
    return _backward(geom, grad_out, x, weight, bias)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """1-D convolution (cross-correlation): :func:`conv2d` on one spatial axis.

    ``y[n, co, l] = b[co] + sum_{ci < C_in/G} sum_{k < K} w[co, ci, k] * x_pad[n, g*C_in/G + ci, l*S - p_b + k*D]``
    with ``g = co // (C_out/G)``.

    Shapes: x (N, C_in, L), weight (C_out, C_in/G, K), bias (C_out,) -> (N, C_out, L_out),
    ``L_out = floor((L + p_b + p_e - D*(K-1) - 1) / S) + 1``.

    ``stride``, ``dilation``: int (or a 1-tuple); ``padding``: int, a 1-tuple of an int or of a
    ``(p_b, p_e)`` pair, 'valid', 'same' or 'same_lower'; ``groups`` and ``padding_mode`` as in
    :func:`conv2d`. Returns float64.
    """
    geom = conv_geometry_of("conv1d", 1, x, weight, bias, stride, padding, dilation, groups, padding_mode)
    return _forward(geom, x, weight, bias)


def conv1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    """Gradients of :func:`conv1d` with respect to x, weight and bias.

    ``dL/dw[co, ci, k] = sum_{n, l} G_o[n, co, l] * x_pad[n, g*C_in/G + ci, l*S - p_b + k*D]``,
    ``dL/dx[n, c, i]`` = sum of ``G_o[n, co, l] * w[co, ci, k]`` over the terms that read cell ``i``,
    ``dL/db[co] = sum_{n, l} G_o[n, co, l]``.

    Shapes: grad_out (N, C_out, L_out) -> ((N, C_in, L), (C_out, C_in/G, K), (C_out,) or None).
    """
    geom = conv_geometry_of("conv1d_backward", 1, x, weight, bias, stride, padding, dilation, groups,
                            padding_mode, grad_out)
    return _backward(geom, grad_out, x, weight, bias)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution: the gradient of :func:`conv2d` with respect to its input, as a layer.

    ``y[n, co, oh, ow] = b[co] + sum x[n, ci, ih, iw] * w[ci, co - g*C_out/G, kh, kw]`` over ``ci`` in
    group ``g = co // (C_out/G)`` and all ``ih, iw, kh, kw`` with ``ih*SH - p_b(H) + kh*DH = oh`` and
    ``iw*SW - p_b(W) + kw*DW = ow``.

    Shapes: x (N, C_in, H, W), weight (C_in, C_out/G, KH, KW), bias (C_out,) -> (N, C_out, H_out, W_out),
    ``H_out = (H-1)*SH - p_b - p_e + DH*(KH-1) + output_padding + 1`` and likewise ``W_out``.

    Arguments in PyTorch's order: ``groups`` comes before ``dilation``. ``padding`` (int, 2 ints, 2
    ``(p_b, p_e)`` pairs or 'valid') is cropped from the full output; ``output_padding`` (int or 2 ints,
    each ``< max(stride, dilation)``) adds cells at the end. Zero fill only. Returns float64.
    """
    geom = conv_transpose_geometry_of("conv_transpose2d", 2, x, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    return _forward(geom, x, weight, bias)


def conv_transpose2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    """Gradients of :func:`conv_transpose2d` with respect to x, weight and bias.

    Over the same index relation ``oh = ih*SH - p_b + kh*DH``, ``ow = iw*SW - p_b + kw*DW`` (``0 <= oh < H_out``,
    ``0 <= ow < W_out``):
    ``dL/dx[n, ci, ih, iw] = sum_{co_l, kh, kw} G_o[n, g*C_out/G + co_l, oh, ow] * w[ci, co_l, kh, kw]``
    (this is :func:`conv2d` of ``G_o``),
    ``dL/dw[ci, co_l, kh, kw] = sum_{n, ih, iw} x[n, ci, ih, iw] * G_o[n, g*C_out/G + co_l, oh, ow]``,
    ``dL/db[co] = sum_{n, oh, ow} G_o[n, co, oh, ow]``.

    Shapes: grad_out (N, C_out, H_out, W_out) -> ((N, C_in, H, W), (C_in, C_out/G, KH, KW), (C_out,) or None).
    """
    geom = conv_transpose_geometry_of("conv_transpose2d_backward", 2, x, weight, bias, stride, padding,
                                      output_padding, groups, dilation, grad_out)
    return _backward(geom, grad_out, x, weight, bias)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution: :func:`conv_transpose2d` on one spatial axis.

    ``y[n, co, o] = b[co] + sum x[n, ci, i] * w[ci, co - g*C_out/G, k]`` over ``ci`` in group
    ``g = co // (C_out/G)`` and all ``i, k`` with ``i*S - p_b + k*D = o``.

    Shapes: x (N, C_in, L), weight (C_in, C_out/G, K), bias (C_out,) -> (N, C_out, L_out),
    ``L_out = (L-1)*S - p_b - p_e + D*(K-1) + output_padding + 1``. Returns float64.
    """
    geom = conv_transpose_geometry_of("conv_transpose1d", 1, x, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    return _forward(geom, x, weight, bias)


def conv_transpose1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    """Gradients of :func:`conv_transpose1d` with respect to x, weight and bias.

    With ``o = i*S - p_b + k*D`` inside ``[0, L_out)``:
    ``dL/dx[n, ci, i] = sum_{co_l, k} G_o[n, g*C_out/G + co_l, o] * w[ci, co_l, k]``,
    ``dL/dw[ci, co_l, k] = sum_{n, i} x[n, ci, i] * G_o[n, g*C_out/G + co_l, o]``,
    ``dL/db[co] = sum_{n, o} G_o[n, co, o]``.

    Shapes: grad_out (N, C_out, L_out) -> ((N, C_in, L), (C_in, C_out/G, K), (C_out,) or None).
    """
    geom = conv_transpose_geometry_of("conv_transpose1d_backward", 1, x, weight, bias, stride, padding,
                                      output_padding, groups, dilation, grad_out)
    return _backward(geom, grad_out, x, weight, bias)
