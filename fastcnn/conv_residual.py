"""A residual block's convolutions' backward with the other branch's input gradient added in (issue 16).

A residual block ``y = relu(body(x) + x)`` sends the gradient ``g`` of ``y`` through the ReLU's mask into both
branches, so its input gradient is the body's plus the identity shortcut's, ``grad_x + relu_backward(g, y)``:
as an op of its own (``fastcnn.relu_backward_add``) a pass that reads three arrays as large as x and writes a
fourth. ``grad_x`` is the backward of the body's first convolution; Winograd F(4x4, 3x3) writes it a sample
at a time, folding a channel-last plane onto ``grad_x[n]`` (``winograd4``), so the shortcut's gradient is added
to each sample there, while it is in cache (``winograd4_tiles.add_masked``):

* :func:`conv_backward_add` = ``conv_backward(...)`` with ``relu_backward_add(shortcut_grad, y, grad_x)`` for
  ``grad_x``: bit for bit (tests/test_fast_conv_residual.py), the fold's value rounded to the dtype, then
  relu_backward's product and the sum in that dtype, as relu_backward_add forms them.

Where ``conv_backward`` does not compute the convolution by F(4x4, 3x3) (or the arrays have mixed dtypes), the
op computes the two plain ops in turn: the same bits. cnn's residual blocks take it for their first convolution
(``cnn.blocks.ResidualBlock``).

A block whose shortcut is a convolution (ResNet's projection: a strided 1x1 convolution and its batch norm)
sums two input gradients, the body's and the shortcut's, each as large as the block's input:

* :func:`conv_backward_sum` = ``conv_backward(...)`` with ``grad_x + addend`` for ``grad_x``: bit for bit
  (tests/test_fast_conv_residual.py). Where im2row computes the convolution (fastcnn.im2row: strided layers)
  the addend is added to each sample as its gradient is folded out of the channel-last plane, while it is in
  cache: the shortcut's gradient, three quarters zeros for a stride of 2, is never a whole array of its own,
  and the sum no pass of its own. ResNet-20's first projection (16 -> 32 channels, 28x28, batch 64), in a
  training step: the projection's backward 1.26 ms and the block's sum 1.76 ms before, 1.37 ms together now
  (session 37, the 2-core Xeon).
  Elsewhere the two plain ops in turn, the same bits.

Both are fastcnn's alone (``FUSED_OPS``, outside the spec's ops; refcnn keeps the plain ops).
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import array_key, check_bool, invalid
from cnnbase.conv import ConvGeometry

from . import activations, conv, im2row, winograd4

__all__ = ["FUSED_OPS", "conv_backward_add", "conv_backward_sum"]

FUSED_OPS = ("conv_backward_add", "conv_backward_sum")


def _check_same(caller, name, a, x_shape):
    if not isinstance(a, np.ndarray) or a.shape != x_shape:
        raise ValueError(invalid(caller, name, f"an array of x's shape {x_shape}",
                                 getattr(a, "shape", type(a).__name__)))
    if a.dtype.kind != "f":
        raise TypeError(invalid(caller, name, "a float array", a.dtype))


def _settle(caller, answer, input_grad, fuses, inputs, **others):
    """What a fused op's call settles beyond conv_backward's ``answer`` (see ``conv.settled``): its own checks
    (input_grad; ``others``, arrays of x's shape), then ``(geom, input_grad, fused, dtype)``: ``fused`` whether
    ``fuses(geom, name, dtype)`` (``name``: the registered algorithm's, or None) and every array (``inputs``:
    conv_backward's) has the compute dtype."""
    geom, _, (_, dtype, name) = answer
    input_grad = check_bool(input_grad, "input_grad", caller)
    for what, a in others.items():
        _check_same(caller, what, a, geom.x_shape)
    arrays = [a for a in (*inputs, *others.values()) if a is not None]
    fused = (input_grad and geom.N > 0 and not geom.transposed and fuses(geom, name, dtype)
             and all(a.dtype == dtype for a in arrays))
    return geom, input_grad, fused, dtype


def winograd4_fuses(geom, name, dtype) -> bool:
    """Whether conv_backward computes ``geom`` by F(4x4, 3x3) (conv_backward_add's fused pass)."""
    return name == "winograd4"


def im2row_fuses(geom, name, dtype) -> bool:
    """Whether conv_backward computes ``geom`` by im2row (conv_backward_sum's fused pass)."""
    g2 = geom.as_2d()
    return name is None and not conv._taps_1d_pays(geom, g2) and im2row.pays(geom, g2, dtype, backward=True)


def conv_backward_add(conv_geometry: ConvGeometry, grad_out, x, weight, bias, shortcut_grad, y, *, input_grad=True):
    """``conv_backward(conv_geometry, grad_out, x, weight, bias)`` with ``relu_backward_add(shortcut_grad, y,
    grad_x)`` in place of ``grad_x``: the input gradient of a residual block whose output ``y = relu(body(x) +
    x)`` has the gradient ``shortcut_grad``, the body starting with this convolution. Bit for bit those ops in
    turn. ``input_grad=False``: ``grad_x`` is None, as conv_backward gives it (nothing is added)."""
    caller = "conv_backward_add"
    geom, input_grad, fused, dtype = conv.settled(
        caller, conv_geometry, "auto", x, weight, bias, grad_out,
        (array_key(shortcut_grad), array_key(y), (type(input_grad), input_grad)),
        lambda answer: _settle(caller, answer, input_grad, winograd4_fuses, (grad_out, x, weight, bias),
                               shortcut_grad=shortcut_grad, y=y))
    if not fused:
        gx, gw, gb = conv.conv_backward(geom, grad_out, x, weight, bias, input_grad=input_grad)
        return (None if gx is None else activations.relu_backward_add(shortcut_grad, y, gx)), gw, gb
    go4, x4, w4 = conv._compute([grad_out, x, weight], dtype)
    g4, y4 = (np.ascontiguousarray(a).reshape(x4.shape) for a in (shortcut_grad, y))
    grad_x = np.empty(x4.shape, dtype=dtype)
    grad_w = winograd4.backward(geom, go4, x4, w4, grad_x, addend=(g4, y4))
    grad_b = None if bias is None else conv._grad_bias(go4.reshape(geom.N, geom.C_out, -1))
    return conv._results(dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)


def conv_backward_sum(conv_geometry: ConvGeometry, grad_out, x, weight, bias, addend, *, input_grad=True):
    """``conv_backward(conv_geometry, grad_out, x, weight, bias)`` with ``grad_x + addend`` in place of
    ``grad_x`` (NumPy's sum and promotion): the input gradient of a residual block whose shortcut starts with
    this convolution, ``addend`` the body's input gradient. Bit for bit those ops in turn. ``input_grad=False``:
    ``grad_x`` is None, as conv_backward gives it (nothing is added)."""
    caller = "conv_backward_sum"
    geom, input_grad, fused, dtype = conv.settled(
        caller, conv_geometry, "auto", x, weight, bias, grad_out, (array_key(addend), (type(input_grad), input_grad)),
        lambda answer: _settle(caller, answer, input_grad, im2row_fuses, (grad_out, x, weight, bias), addend=addend))
    if not fused:
        gx, gw, gb = conv.conv_backward(geom, grad_out, x, weight, bias, input_grad=input_grad)
        return (None if gx is None else gx + addend), gw, gb
    g2 = geom.as_2d()
    go4, x4, w4 = conv._compute([grad_out, x, weight], dtype)
    grad_x = np.empty(x4.shape, dtype=dtype)
    grad_w = im2row.backward(geom, g2, go4, x4, w4, grad_x, True, addend=np.ascontiguousarray(addend).reshape(x4.shape))
    grad_b = None if bias is None else conv._grad_bias(go4.reshape(geom.N, geom.C_out, -1))
    return conv._results(dtype, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b)
