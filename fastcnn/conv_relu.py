"""A convolution computed by im2col + GEMM and the ReLU after it, in the same pass (issue 16, items 2 and 3).

The seeds' first layer (``conv32k3 relu`` on 1x28x28) writes the largest array of the network, then reads it
back to write its ReLU; its backward writes the ReLU's input gradient, as large, for the convolution's
backward to read. Each pass over 11 MB costs more than the convolution's arithmetic (9 terms per output), and
each new array faults its pages in. fastcnn.conv's im2col + GEMM path computes a layer sample by sample, so
the ReLU can be done there while the sample's output is still in cache, and its mask applied to each sample's
gradient in a buffer just before the GEMMs that read it (``relu``, ``ym3`` in ``conv._im2col_gemm`` and
``conv._gemm_col2im``):

* :func:`conv_relu_forward` = ``relu(conv_forward(...))``;
* :func:`conv_relu_backward` = ``conv_backward(relu_backward(grad_out, pre), ...)``, given the forward's
  output ``y`` (``y <= 0`` exactly where the pre-activation is, NaN included).

Both bit for bit (tests/test_fast_conv_relu.py): the same GEMMs read the same values, the mask is
fastcnn.relu_backward's product, the bias gradient conv.py's float64 lane order. They are fastcnn's alone
(``FUSED_OPS``, outside the spec's ops; refcnn keeps the plain ops), and cnn's layers take them when
:func:`conv_relu_pays` says that ``conv_forward`` computes the layer by im2col + GEMM (a first layer with few
channels, most layers that Winograd does not take); a ReLU followed by a max pooling goes into the pooling
instead (fastcnn.relu_pool_forward, fastcnn.conv_pool).
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import check_bool, invalid
from cnnbase.conv import ConvGeometry, fit_geometry as fit_conv

from . import _runtime, conv

__all__ = ["FUSED_OPS", "conv_relu_pays", "conv_relu_forward", "conv_relu_backward"]

FUSED_OPS = ("conv_relu_forward", "conv_relu_backward")


def conv_relu_pays(conv_geometry: ConvGeometry, dtype) -> bool:
    """Whether the fused ops compute this convolution: ``conv_forward`` with ``algorithm="auto"`` computes it
    by im2col + GEMM (``conv.gemm_path``)."""
    return isinstance(conv_geometry, ConvGeometry) and conv.gemm_path(conv_geometry, np.dtype(dtype))


def _checked(caller, conv_geometry, x, weight, bias):
    """The geometry fitted to the arrays, after the checks: a convolution the fused ops compute."""
    geom = fit_conv(conv_geometry, x, weight, bias, caller=caller)
    if not conv_relu_pays(geom, _runtime.compute_dtype(x, weight, bias)):
        g2 = geom.as_2d()
        raise ValueError(invalid(caller, "conv_geometry", "a convolution conv_relu_pays accepts (one that "
                                 "conv_forward computes by im2col + GEMM)",
                                 f"{geom.op} of {geom.C_in} -> {geom.C_out} channels, kernel {g2.kernel}, "
                                 f"stride {g2.stride}, groups {geom.G}"))
    return geom


def _padded(geom, x4):
    return conv._pad(x4, *conv._conv_maps(geom.as_2d()), "conv.xpad")


def conv_relu_forward(conv_geometry: ConvGeometry, x, weight, bias=None):
    """``relu(conv_forward(conv_geometry, x, weight, bias))``, bit for bit, in one pass."""
    geom = _checked("conv_relu_forward", conv_geometry, x, weight, bias)
    out_dtype = _runtime.result_dtype(x, weight, bias)
    if geom.N == 0:
        return np.zeros(geom.out_shape, dtype=out_dtype)
    dtype = _runtime.compute_dtype(x, weight, bias)
    x4, w4, b = conv._compute([x, weight, bias], dtype)
    g2 = geom.as_2d()
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    conv._gemm_pass(_padded(geom, x4), geom.G, g2.kernel, g2.stride, g2.dilation, g2.out,
                    w2=w4.reshape(geom.C_out, -1), bias=b, y3=y.reshape(geom.N, geom.C_out, -1), relu=True)
    return y.reshape(geom.out_shape).astype(out_dtype, copy=False)


def conv_relu_backward(conv_geometry: ConvGeometry, grad_out, x, weight, bias, y, *, input_grad=True):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv_relu_forward`'s output ``y`` for ``grad_out`` (y's
    shape): bit for bit ``conv_backward`` of ``relu_backward(grad_out, pre)``. ``input_grad=False``: grad_x is
    None (as ``conv_backward``)."""
    caller = "conv_relu_backward"
    geom = _checked(caller, conv_geometry, x, weight, bias)
    input_grad = check_bool(input_grad, "input_grad", caller)
    for name, a in (("grad_out", grad_out), ("y", y)):
        if not isinstance(a, np.ndarray) or a.shape != tuple(geom.out_shape):
            raise ValueError(invalid(caller, name, f"an array of the convolution's output shape {geom.out_shape}",
                                     getattr(a, "shape", type(a).__name__)))
        if a.dtype.kind != "f":
            raise TypeError(invalid(caller, name, "a float array", a.dtype))
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    if geom.N == 0:
        return (np.zeros(x.shape, dtype=out_dtype) if input_grad else None, np.zeros(weight.shape, dtype=out_dtype),
                None if bias is None else np.zeros(bias.shape, dtype=out_dtype))
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    go4, x4, w4, y4 = conv._compute([grad_out, x, weight, y], dtype)
    g2 = geom.as_2d()
    go3, ym3 = go4.reshape(geom.N, geom.C_out, -1), y4.reshape(geom.N, geom.C_out, -1)
    grad_w = conv._gemm_pass(_padded(geom, x4), geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, go3=go3, ym3=ym3)
    grad_x = None
    if input_grad:
        src_h, src_w = conv._conv_maps(g2)
        grad_x = np.empty(x4.shape, dtype=dtype)
        conv._col2im_pass(go3, w4.reshape(geom.C_out, -1), None, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out,
                          src_h, src_w, grad_x, ym3=ym3)
        grad_x = grad_x.reshape(x.shape)
    grad_b = None if bias is None else conv._grad_bias(go3, ym3)
    return conv._results(out_dtype, grad_x, grad_w.reshape(weight.shape), grad_b)
