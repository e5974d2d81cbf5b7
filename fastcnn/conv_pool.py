"""A 3x3 convolution, its ReLU and the 2x2 max pooling after it, in one pass (issue 16, item 2).

The seeds' block ``conv64k3 relu, maxpool2`` writes its largest activation, the convolution's output, only
to read it back for the pooling, and its backward writes the full-size output gradient, three quarters
zeros, only for the convolution's backward to read it. When fastcnn computes the convolution by Winograd
F(4x4, 3x3) (``algorithm="auto"`` takes it for such layers: fastcnn.winograd4), each 4x4 output tile holds
four whole 2x2 pooling windows: the output transform pools as it goes, and the backward's first transform
reads the pooled gradient and the window winners instead of the full one. Neither full-size array exists.

The two functions here are fastcnn's alone (``FUSED_OPS``, outside the spec's ops; refcnn keeps only the
plain ops): each equals the composition of fastcnn's ``conv_forward`` (``algorithm="auto"``) and
``relu_pool_forward`` (their backwards) bit for bit, tests/test_fast_conv_pool.py checks it, and cnn's layers
take them when :func:`conv_relu_pool_pays` says so. The forward returns the winners of the windows (int8,
the pooled shape) for the backward: its input, like the convolution's ``x``.

**The layer before** (``producer=``): in the seeds' ``conv32k3 relu, conv64k3 relu, maxpool2`` the block's
input gradient (11 MB at batch 128) was written channel-first only for the first layer's backward to read it
back for its weight and bias gradients. With ``producer``, each sample's gradient goes from F(4x4, 3x3)'s
channel-last plane, through the ReLU's mask, into a GEMM with the sample's im2col of the first layer's input
(a few rows: ``winograd4.MAX_PRODUCER_TAPS``), and the full-size gradient is never written. Those two gradients
are then the composition's up to the order of the sums, not bit for bit; the block's own are unchanged.
Measured (session 29, 2-core AVX-512 VM, float32, batch 128, medians of 21): the seeds' conv2 backward plus
conv1's, 16.2-16.7 ms -> 13.9-14.5 ms on 2 threads, 34.0-34.4 -> 27.3-29.2 ms on one
(``benchmarks/producer_bench.py``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from dataclasses import replace

from cnnbase.checks import check_bool, check_float_array, invalid
from cnnbase.conv import ConvGeometry, check_resolved, fit_geometry as fit_conv
from cnnbase.pool import PoolGeometry

from . import _runtime, conv, winograd4, winograd4_producer
from ._conv_base import SUM_LANES, add_to_lanes
from .pool import _is_plain_2x2

__all__ = ["FUSED_OPS", "conv_relu_pool_pays", "conv_relu_pool_forward", "conv_relu_pool_backward",
           "conv_relu_pool_producer_fits"]

FUSED_OPS = ("conv_relu_pool_forward", "conv_relu_pool_backward")


def conv_relu_pool_pays(conv_geometry: ConvGeometry, pool_geometry: PoolGeometry, dtype) -> bool:
    """Whether the fused ops compute this block: fastcnn's ``algorithm="auto"`` takes F(4x4, 3x3) for the
    convolution (``winograd4.pays``), and the pooling is a max pooling without indices, 2x2 windows with
    stride 2, no padding or dilation, floor mode, of the convolution's output."""
    return (isinstance(conv_geometry, ConvGeometry) and isinstance(pool_geometry, PoolGeometry)
            and conv.ALGORITHMS.get("winograd4") is not None and winograd4.pays(conv_geometry, dtype)
            and pool_geometry.kind == "max" and not pool_geometry.return_indices
            and pool_geometry.rank == 2 and _is_plain_2x2(pool_geometry.as_2d())
            and tuple(pool_geometry.in_shape[1:]) == tuple(conv_geometry.out_shape[1:]))


def _checked(caller, conv_geometry, pool_geometry, x, weight, bias):
    """The conv geometry fitted to the arrays, after the checks: the block is one the fused ops compute."""
    geom = fit_conv(conv_geometry, x, weight, bias, caller=caller)
    dtype = _runtime.compute_dtype(x, weight, bias)
    if not conv_relu_pool_pays(geom, pool_geometry, dtype):
        raise ValueError(invalid(caller, "pool_geometry", "a block conv_relu_pool_pays accepts (a 3x3, stride-1 "
                                 "convolution fastcnn computes by F(4x4, 3x3), then a plain 2x2 max pooling of "
                                 "its output)", f"{geom.op} with {pool_geometry!r}"))
    return geom


def _pooled_shape(geom):
    H_out, W_out = geom.out
    return (geom.N, geom.C_out, H_out // 2, W_out // 2)


def conv_relu_pool_forward(conv_geometry: ConvGeometry, pool_geometry: PoolGeometry, x, weight, bias=None, *,
                           producer=None, winners=True):
    """``(y, winners)``: ``y = pool_forward(pool_geometry, relu(conv_forward(conv_geometry, x, weight, bias)))``
    bit for bit, without the convolution's output, and the windows' winners (int8, y's shape: the winner's
    position 0..3 in its window, plus 4 where ReLU stops its gradient) for :func:`conv_relu_pool_backward`.

    ``producer=(producer_geometry, x0, w0, b0)`` with ``x=None``: the block's input is
    ``conv_relu_forward(producer_geometry, x0, w0, b0)``, a convolution :func:`conv_relu_pool_producer_fits`
    accepts, computed sample by sample as that function computes it (the same bits) and never stored whole.

    ``winners=False``: the winners are not computed (a pass with no backward: inference), and None comes in
    their place; y is the same."""
    caller = "conv_relu_pool_forward"
    want_winners = check_bool(winners, "winners", caller)
    if producer is not None and x is not None:
        raise TypeError(invalid(caller, "x", "None with producer (the producer computes the input)",
                                type(x).__name__))
    geom, pgeom, x0, w0, b0 = _checked_block(caller, conv_geometry, pool_geometry, x, weight, bias, producer, 4)
    out_dtype = _runtime.result_dtype(x, weight, bias, x0, w0, b0)
    shape = _pooled_shape(geom)
    winners = np.empty(shape, dtype=np.int8) if want_winners else None
    if geom.N == 0:
        return np.zeros(shape, dtype=out_dtype), winners
    dtype = _runtime.compute_dtype(x, weight, bias, x0, w0, b0)
    x4, w4, b, x04, w04, b04 = conv._compute([x, weight, bias, x0, w0, b0], dtype)
    y = np.empty(shape, dtype=dtype)
    made = None if pgeom is None else winograd4_producer.producer_args(pgeom, x04, w04, b04)
    winograd4.forward(geom, x4, w4, b, y, winners, producer=made, pool=True)
    return y.astype(out_dtype, copy=False), winners


def _checked_block(caller, conv_geometry, pool_geometry, x, weight, bias, producer, forms):
    """(the block's geometry fitted to the batch, then producer_geometry fitted to it, x0, w0, b0: Nones without
    ``producer``) after the checks. ``producer``: (producer_geometry, x0, w0, b0), or in a backward with x
    also (producer_geometry, x0) (``forms``: the tuple lengths taken); x may be None with the four."""
    if producer is None:
        return _checked(caller, conv_geometry, pool_geometry, x, weight, bias), None, None, None, None
    lengths = (2, 4) if forms == 2 else (4,)
    if not (isinstance(producer, tuple) and len(producer) in lengths and isinstance(producer[0], ConvGeometry)
            and isinstance(producer[1], np.ndarray)):
        got = (f"a tuple of {', '.join(type(p).__name__ for p in producer)}" if isinstance(producer, tuple)
               else type(producer).__name__)
        want = " or ".join({2: "(producer_geometry, x0)", 4: "(producer_geometry, x0, w0, b0)"}[n] for n in lengths)
        raise TypeError(invalid(caller, "producer", f"a tuple {want}: a ConvGeometry, then arrays", got))
    pgeom, x0 = producer[:2]
    w0, b0 = producer[2:] if len(producer) == 4 else (None, None)
    if x is None and w0 is None:
        raise TypeError(invalid(caller, "x", "an array (producer=(producer_geometry, x0) computes no input)", None))
    if w0 is not None:
        pgeom = fit_conv(pgeom, x0, w0, b0, caller=caller)
    else:
        check_resolved(pgeom, caller)
        check_float_array(x0, "producer", caller)
        if x0.shape[1:] != tuple(pgeom.x_shape[1:]):
            raise ValueError(invalid(caller, "producer", f"x0 of the producer geometry's sample shape "
                                     f"{tuple(pgeom.x_shape[1:])}", x0.shape[1:]))
        pgeom = replace(pgeom, N=x0.shape[0])
    made = (pgeom.C_out,) + tuple(pgeom.out)
    if isinstance(conv_geometry, ConvGeometry) and made != tuple(conv_geometry.x_shape[1:]):
        raise ValueError(invalid(caller, "producer", "a convolution whose output is the block's input sample "
                                 f"{tuple(conv_geometry.x_shape[1:])}", made))
    if x is None:  # a stand-in of the input's shape, no memory: the checks read shapes and dtypes only
        x_like = np.broadcast_to(np.zeros((), dtype=_runtime.compute_dtype(x0, w0, b0)),
                                 (x0.shape[0], pgeom.C_out) + tuple(pgeom.out))
        geom = _checked(caller, conv_geometry, pool_geometry, x_like, weight, bias)
    else:
        geom = _checked(caller, conv_geometry, pool_geometry, x, weight, bias)
        if x.shape[0] != x0.shape[0]:
            raise ValueError(invalid(caller, "producer", f"x0 of x's batch, {x.shape[0]} samples", x0.shape[0]))
    dtype = _runtime.compute_dtype(x, weight, bias, x0, w0, b0)
    if not conv_relu_pool_producer_fits(geom, pgeom, dtype):
        raise ValueError(invalid(caller, "producer", "a convolution conv_relu_pool_producer_fits accepts (2-D, "
                                 "stride 1, one group, zero padding, few input channels, its output the block's "
                                 f"input {tuple(geom.x_shape[1:])})", f"{pgeom.op} with {pgeom!r}"))
    return geom, pgeom, x0, w0, b0


def conv_relu_pool_producer_fits(conv_geometry: ConvGeometry, producer_geometry: ConvGeometry, dtype) -> bool:
    """Whether :func:`conv_relu_pool_backward` takes ``producer=(producer_geometry, x0)`` for a block of
    ``conv_geometry`` (one :func:`conv_relu_pool_pays` accepts): the producer is a 2-D convolution with stride
    1, one group and zero padding whose output is the block's input, with few input channels (a first layer:
    ``winograd4.MAX_PRODUCER_TAPS`` channels times taps at most), and F(4x4, 3x3) holds a whole sample at a
    time (``winograd4.producer_fits``)."""
    return (isinstance(conv_geometry, ConvGeometry) and isinstance(producer_geometry, ConvGeometry)
            and winograd4.producer_fits(conv_geometry, producer_geometry, np.dtype(dtype)))


def conv_relu_pool_backward(conv_geometry: ConvGeometry, pool_geometry: PoolGeometry, grad_out, x, weight, bias,
                            winners, *, input_grad=True, input_relu=False, producer=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv_relu_pool_forward`'s ``y`` for ``grad_out`` (y's
    shape), given that call's ``winners``: bit for bit ``conv_backward`` of ``relu_pool_backward``'s result.
    ``input_grad=False``: grad_x is None (as ``conv_backward``). ``input_relu=True``: ``x`` is the output of a
    ReLU, and grad_x is the gradient with respect to that ReLU's input, bit for bit ``relu_backward(grad_x,
    x)``, applied while each sample's grad_x is in cache (cnn's layers take it when the layer before applied
    its ReLU inside its own op: the seeds' conv32k3 relu, conv64k3 relu, maxpool2).

    ``producer=(producer_geometry, x0)``: ``x`` is ``relu(conv_forward(producer_geometry, x0, w0, b0))``, a
    convolution :func:`conv_relu_pool_producer_fits` accepts, whose input gradient nobody needs (a first
    layer). The result is then ``(None, grad_weight, grad_bias, grad_w0, grad_b0)``: grad_weight and grad_bias
    as above, bit for bit, and that convolution's parameter gradients (grad_b0 whether it has a bias or not),
    ``conv_backward(producer_geometry, relu_backward(grad_x, x), x0, w0, b0, input_grad=False)[1:]`` up to the
    order of the sums: each sample's ReLU gradient goes into them channel-last, straight from F(4x4)'s adjoint,
    and the full-size grad_x is never written (the seeds' conv1 no longer reads it back either)."""
    caller = "conv_relu_pool_backward"
    geom, pgeom, x0, w0, b0 = _checked_block(caller, conv_geometry, pool_geometry, x, weight, bias, producer, 2)
    input_grad = check_bool(input_grad, "input_grad", caller)
    input_relu = check_bool(input_relu, "input_relu", caller)
    if producer is not None:
        return _backward_to_producer(geom, pgeom, grad_out, x, weight, bias, winners, x0, w0, b0)
    _checked_backward_arrays(caller, geom, grad_out, winners)
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias)
    if geom.N == 0:
        return (np.zeros(x.shape, dtype=out_dtype) if input_grad else None, np.zeros(weight.shape, dtype=out_dtype),
                None if bias is None else np.zeros(bias.shape, dtype=out_dtype))
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias)
    gq, x4, w4 = conv._compute([grad_out, x, weight], dtype)
    codes = np.ascontiguousarray(winners)
    grad_x = np.empty(x4.shape, dtype=dtype) if input_grad else np.empty((1, 1, 1, 1), dtype=dtype)
    grad_w = winograd4.backward(geom, gq, x4, w4, grad_x, input_grad, codes, input_relu and input_grad)
    grad_b = None
    if bias is not None:
        grad_b = np.empty(geom.C_out, dtype=dtype)
        _pooled_bias_grad(gq, codes, geom.out[0], geom.out[1], grad_b)
    return conv._results(out_dtype, grad_x if input_grad else None, grad_w, grad_b)


def _checked_backward_arrays(caller, geom, grad_out, winners):
    shape = _pooled_shape(geom)
    for name, a in (("grad_out", grad_out), ("winners", winners)):
        if not isinstance(a, np.ndarray) or a.shape != shape:
            raise ValueError(invalid(caller, name, f"an array of the pooled shape {shape}",
                                     getattr(a, "shape", type(a).__name__)))
    if winners.dtype != np.int8:
        raise TypeError(invalid(caller, "winners", "the int8 array conv_relu_pool_forward returned", winners.dtype))


def _backward_to_producer(geom, pgeom, grad_out, x, weight, bias, winners, x0, w0, b0):
    """:func:`conv_relu_pool_backward` with ``producer`` (checked)."""
    _checked_backward_arrays("conv_relu_pool_backward", geom, grad_out, winners)
    out_dtype = _runtime.result_dtype(grad_out, x, weight, bias, x0, w0, b0)
    C0, (KH, KW) = pgeom.C_in, pgeom.kernel
    if geom.N == 0:
        return (None, np.zeros(weight.shape, dtype=out_dtype),
                None if bias is None else np.zeros(bias.shape, dtype=out_dtype),
                np.zeros((pgeom.C_out, C0, KH, KW), dtype=out_dtype), np.zeros(pgeom.C_out, dtype=out_dtype))
    dtype = _runtime.compute_dtype(grad_out, x, weight, bias, x0, w0, b0)
    gq, x4, w4, x04, w04, b04 = conv._compute([grad_out, x, weight, x0, w0, b0], dtype)
    if w04 is None:  # x given: the producer's weights are not needed, only its taps
        w04 = np.empty((pgeom.C_out, C0, KH, KW), dtype=dtype)
    codes = np.ascontiguousarray(winners)
    sums = np.empty((C0 * KH * KW + 1, pgeom.C_out), dtype=dtype)  # the weight gradient's rows, then the bias's
    grad_w = winograd4.backward(geom, gq, x4, w4, np.empty((1, 1, 1, 1), dtype=dtype), False, codes, False,
                                winograd4_producer.producer_args(pgeom, x04, w04, b04), sums)
    grad_b = None
    if bias is not None:
        grad_b = np.empty(geom.C_out, dtype=dtype)
        _pooled_bias_grad(gq, codes, geom.out[0], geom.out[1], grad_b)
    grad_w0 = np.ascontiguousarray(sums[:-1].T).reshape(pgeom.C_out, C0, KH, KW)
    return (None, *conv._results(out_dtype, grad_w, grad_b, grad_w0, sums[-1].copy()))


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _pooled_bias_grad(gq, winners, H_out, W_out, out):
    """out[k] = the sum of the convolution's output gradient over samples and positions, as fastcnn.conv's
    ``_bias_grad`` sums it (``_conv_base.add_to_lanes``: float64 lanes, samples in order, the lanes added in
    order at the end): each sample's (H_out, W_out) gradient plane is rebuilt from the pooled gradient and
    the winners in a small buffer (as fastcnn.relu_pool_backward writes it: the winner's cell, 0
    elsewhere), then summed the same way, so the result is conv_backward's bit for bit."""
    N, K, Hq, Wq = gq.shape
    L = H_out * W_out
    zero, one = gq.dtype.type(0), gq.dtype.type(1)
    for k in prange(K):
        lanes = np.zeros(SUM_LANES)
        tail = 0.0
        plane = np.empty(L, dtype=gq.dtype)
        for n in range(N):
            plane[:] = 0
            for qh in range(Hq):
                g, w = gq[n, k, qh], winners[n, k, qh]
                base = 2 * qh * W_out
                for q in range(Wq):
                    # one store at the winner's cell (a select per cell was 6x slower: it compiled to branches)
                    code = np.int32(w[q])
                    plane[base + ((code >> 1) & 1) * W_out + 2 * q + (code & 1)] = g[q] * (one if code < 4 else zero)
            tail = add_to_lanes(plane, lanes, tail)
        total = tail
        for j in range(SUM_LANES):
            total += lanes[j]
        out[k] = total
