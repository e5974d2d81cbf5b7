"""A convolution and the evaluation-mode batch norm after it (and that batch norm's ReLU), in one pass.

ResNet's layers run ``conv, bn[, relu]``. In evaluation the batch norm is a per-channel affine map of the
convolution's output, ``(y - running_mean) / sqrt(running_var + eps) * weight + bias``: as a layer of its own
it reads the whole output back and writes an array as large, a pass over memory for a few operations per
value (ResNet-20 on 28x28 images: 21 of them, 8.5 of the 45.5 ms of an inference pass at batch 64, and 3.5 ms
more in the residual blocks' sums). fastcnn's Winograd F(4x4, 3x3) convolution stores its output a chunk of
tile rows at a time, its im2row path (strided layers) a block of samples at a time and its im2col + GEMM path
a sample at a time, so the batch norm, a residual block's sum and the ReLU can be applied to what was just
stored, while it is in cache (``_conv_base.norm_span``):

* :func:`conv_batch_norm_forward` = ``batch_norm(conv_forward(...), ..., training=False)``, plus a residual
  when one is given (the shortcut of a residual block whose body ends with this batch norm), and with
  ``relu=True`` the ReLU of that; bit for bit (tests/test_fast_conv_norm.py): each output is rounded to the
  output's dtype as the convolution stores it, then goes through fastcnn.norm's float64 operations in the
  same order, NumPy's sum in that dtype, then fastcnn.relu's rule.

Through F(4x4, 3x3) it remembers each weight array's transformed weights and reuses them while the array holds
the same bits (``winograd4_weights.REMEMBERED_BYTES``): an inference pass calls every layer with the weights of
the last.

It is for passes that do not train: batch statistics need the whole output first. There is no fused
backward; a backward after such a pass computes the convolution's output again (``cnn.layers``). It is
fastcnn's alone (``FUSED_OPS``, outside the spec's ops; refcnn keeps the plain ops), and cnn's layers take it
where :func:`conv_batch_norm_pays` says the convolution is computed by F(4x4, 3x3), by im2row or by im2col +
GEMM (the last two apply the batch norm to each sample's output after its GEMM: ``im2row._forward_kernel``,
``conv._im2col_gemm``); elsewhere the op computes the plain ops one after the other, the same bits.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from cnnbase.checks import array_key, check_bool, check_float_array, check_shape
from cnnbase.conv import ConvGeometry
from cnnbase.norm import check_batch_norm

from . import _blas, _runtime, activations, conv, im2row, norm, winograd4

__all__ = ["FUSED_OPS", "conv_batch_norm_pays", "conv_batch_norm_forward"]

FUSED_OPS = ("conv_batch_norm_forward",)


def _fused_path(geom, dtype) -> str | None:
    """How ``conv_forward`` with ``algorithm="auto"`` computes this (checked) convolution, where the batch norm
    can go inside: ``"winograd4"`` (Winograd F(4x4, 3x3)), ``"im2row"`` (ResNet's stride-2 3x3 layers) or
    ``"gemm"`` (im2col + GEMM, ``conv.gemm_path``: ResNet's first layer and 1x1 projections); None elsewhere."""
    dtype = np.dtype(dtype)
    other = conv._other(geom, "auto", dtype)
    if other is not None:
        return "winograd4" if other is conv.ALGORITHMS.get("winograd4") else None
    if im2row.pays(geom, geom.as_2d(), dtype):
        return "im2row"
    return "gemm" if conv.gemm_path(geom, dtype) else None


def conv_batch_norm_pays(conv_geometry: ConvGeometry, dtype) -> bool:
    """Whether :func:`conv_batch_norm_forward` computes this convolution and its batch norm in one pass:
    ``conv_forward`` with ``algorithm="auto"`` computes it by Winograd F(4x4, 3x3), by im2row (ResNet's
    stride-2 3x3 layers) or by im2col + GEMM (``conv.gemm_path``: ResNet's first layer and 1x1 projections)."""
    if not isinstance(conv_geometry, ConvGeometry) or conv_geometry.transposed:
        return False
    try:
        return _pays(conv_geometry, dtype, _blas.CBLAS)
    except TypeError:  # a dtype no key holds: asked afresh, where NumPy says what is wrong with it
        return _fused_path(conv_geometry, dtype) is not None


@functools.lru_cache(maxsize=256)
def _pays(conv_geometry, dtype, cblas) -> bool:
    """:func:`conv_batch_norm_pays`'s answer, remembered per geometry, dtype and whether NumPy's CBLAS is taken
    (the rules read it): cnn's layers ask before every evaluation-mode call (15 us a question in an inference
    pass)."""
    return _fused_path(conv_geometry, dtype) is not None


def _norm_table(running_mean, running_var, weight, bias, eps, channels: int, native: bool) -> np.ndarray:
    """(K, 4) float64: each channel's running mean, ``1 / sqrt(running_var + eps)``, weight and bias, the
    values fastcnn.norm's evaluation pass computes with (correctly rounded square root and division, as
    there). ``native``: the four arrays are None or native float32/float64, which :func:`_fill_norm_table` takes
    (one call: the NumPy passes cost ~30 us a call in an inference pass, where the kernel before has left the
    caches cold)."""
    table = np.empty((channels, 4))
    if native:
        _fill_norm_table(running_mean, running_var, running_mean if weight is None else weight,
                         running_mean if bias is None else bias, weight is not None, bias is not None, eps, table)
        return table
    table[:, 0] = np.asarray(running_mean, dtype=np.float64)
    table[:, 1] = 1.0 / np.sqrt(np.asarray(running_var, dtype=np.float64) + eps)
    table[:, 2] = 1.0 if weight is None else np.asarray(weight, dtype=np.float64)
    table[:, 3] = 0.0 if bias is None else np.asarray(bias, dtype=np.float64)
    return table


@numba.njit(fastmath=False, error_model="numpy", **_runtime.KERNEL_FLAGS)
def _fill_norm_table(mean, var, weight, bias, has_weight, has_bias, eps, table):
    """:func:`_norm_table`'s NumPy passes, value by value: the same float64 operations (the square root is
    correctly rounded in both), the same bits."""
    for k in range(table.shape[0]):
        table[k, 0] = np.float64(mean[k])
        table[k, 1] = 1.0 / np.sqrt(np.float64(var[k]) + eps)
        table[k, 2] = np.float64(weight[k]) if has_weight else 1.0
        table[k, 3] = np.float64(bias[k]) if has_bias else 0.0


#: The dtypes :func:`_fill_norm_table` takes (not float16, nor a big-endian float, which Numba does not type).
_TABLE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@functools.lru_cache(maxsize=64)
def _stand_in(shape: tuple, dtype) -> np.ndarray:
    """A read-only view of one zero as an array of ``shape`` and ``dtype``, for checks that read only those (made
    once per shape: 10 us a call in an inference pass, where each layer asks for the same one every time)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape), writeable=False)


def _settle(caller, answer, x, weight, bias, running_mean, running_var, norm_weight, norm_bias, residual, eps, relu):
    """The checks of :func:`conv_batch_norm_forward` beyond the convolution's (``answer``: ``conv.settled``'s) and
    what they settle: ``(geom, relu, eps, out_dtype, dtype, fused, native)``, ``fused`` the fused path's name or None
    (the plain ops in turn), remembered by conv.settled per signature (issue 16: 156 us of Python a call in a
    ResNet-20 inference pass before)."""
    geom = answer[0]
    relu = check_bool(relu, "relu", caller)
    conv_dtype = _runtime.result_dtype(x, weight, bias)
    # The batch norm's checks see an array of the convolution's output shape (one sample at least) and dtype:
    # a view of one zero.
    output = _stand_in((max(geom.N, 1),) + tuple(geom.out_shape[1:]), conv_dtype)
    eps = check_batch_norm(output, running_mean, running_var, norm_weight, norm_bias, False, 0.1, eps, op=caller).eps
    inputs = (x, weight, bias, running_mean, running_var, norm_weight, norm_bias)
    if residual is not None:
        check_float_array(residual, "residual", caller)
        check_shape(residual, tuple(geom.out_shape), "residual", caller, context="the convolution's output")
        inputs += (residual,)
    out_dtype, dtype = _runtime.result_dtype(*inputs), _runtime.compute_dtype(*inputs)
    path = None if geom.transposed or geom.N == 0 else _fused_path(geom, dtype)
    native = all(a is None or a.dtype in _TABLE_FLOATS for a in (running_mean, running_var, norm_weight, norm_bias))
    return geom, relu, eps, out_dtype, dtype, path if dtype == out_dtype == conv_dtype else None, native


def conv_batch_norm_forward(conv_geometry: ConvGeometry, x, weight, bias, running_mean, running_var,
                            norm_weight=None, norm_bias=None, eps=1e-5, relu=False, residual=None):
    """``batch_norm(conv_forward(conv_geometry, x, weight, bias), running_mean, running_var, norm_weight,
    norm_bias, training=False, eps=eps)``, plus ``residual`` (an array of the convolution's output shape) when
    given, and the ReLU of that when ``relu``: bit for bit those ops in turn (NumPy's ``+`` for the residual,
    fastcnn.relu), in one pass where :func:`conv_batch_norm_pays`. The arrays are checked as those ops check
    them, the batch norm's and the residual against the convolution's output."""
    caller = "conv_batch_norm_forward"
    norm_arrays = (running_mean, running_var, norm_weight, norm_bias, residual)
    geom, relu, eps, out_dtype, dtype, path, native = conv.settled(
        caller, conv_geometry, "auto", x, weight, bias,
        extra=(*(array_key(a, (None,)) for a in norm_arrays), (type(relu), relu), (type(eps), eps)),
        settle=lambda answer: _settle(caller, answer, x, weight, bias, *norm_arrays, eps, relu))
    if geom.N == 0:  # an empty batch: an empty output, as conv_forward gives
        return np.zeros(geom.out_shape, dtype=out_dtype)
    if path is None:
        # The plain ops in turn: no fused kernel for this convolution, or a batch norm or a sum in another dtype
        # than the convolution's output (float16 inputs, float64 statistics with a float32 convolution).
        y = conv.conv_forward(geom, x, weight, bias)
        if residual is None:
            return norm.forward(y, running_mean, running_var, norm_weight, norm_bias, False, 0.1, eps, relu, caller)
        y = norm.forward(y, running_mean, running_var, norm_weight, norm_bias, False, 0.1, eps, False, caller)
        return activations.add_relu(y, residual) if relu else y + residual
    x4, w4, b = conv._compute([x, weight, bias], dtype)
    g2 = geom.as_2d()
    y = np.empty((geom.N, geom.C_out) + g2.out, dtype=dtype)
    table = _norm_table(running_mean, running_var, norm_weight, norm_bias, eps, geom.C_out, native)
    if path != "gemm":
        if residual is not None:
            residual = np.ascontiguousarray(residual).reshape(y.shape)
        if path == "winograd4":
            winograd4.forward(geom, x4, w4, b, y, norm=table, norm_relu=relu, residual=residual)
        else:
            im2row.forward(geom, g2, x4, w4, b, y, norm=table, norm_relu=relu, residual=residual)
        return y.reshape(geom.out_shape)
    # im2col + GEMM: the batch norm (and a ReLU with no residual) per sample; a residual's sum after, in one pass
    xp = conv._pad(x4, *conv._conv_maps(g2), "conv.xpad")
    conv._gemm_pass(xp, geom.G, g2.kernel, g2.stride, g2.dilation, g2.out, w2=w4.reshape(geom.C_out, -1), bias=b,
                    y3=y.reshape(geom.N, geom.C_out, -1), norm=table, norm_relu=relu and residual is None)
    y = y.reshape(geom.out_shape)
    if residual is None:
        return y
    return activations.add_relu(y, residual) if relu else y + residual
