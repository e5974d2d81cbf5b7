"""Batch normalisation and the ReLU after it, in the same pass (issue 16, item 2).

ResNet's blocks run ``conv, bn, relu``: the ReLU reads the batch norm's output and writes an array as large,
and its backward writes one more for the batch norm's backward to read. fastcnn's batch norm computes a
channel at a time in one parallel kernel (fastcnn.norm), so the ReLU can be applied to each row as it is
stored, and its mask to each channel's gradient as the backward reads it:

* :func:`batch_norm_relu` = ``relu(batch_norm(...))``;
* :func:`batch_norm_relu_backward` = ``batch_norm_backward(relu_backward(grad_out, pre), ...)``, given the
  forward's output ``y`` (``y <= 0`` exactly where the pre-activation is, NaN included);
* :func:`batch_norm_add_relu` = ``add_relu(batch_norm(...), residual)``: the end of a residual block whose
  body ends with a batch norm, in training too (the batch norm's output, the sum and the ReLU in one pass);
  its backward is :func:`batch_norm_relu_backward` with that output as ``y`` (the block's ReLU's mask), and
  the shortcut's gradient ``fastcnn.relu_backward_add``.

Each takes ``saved_stats``, keyword only: None, or a (2, C) float64 array (C-contiguous) into which the forward
writes the means and variances it normalised with (in training the batch's, biased; otherwise the running
ones), and which the backward, given it, uses instead of taking them from x again (PyTorch's
``native_batch_norm_backward`` takes its ``save_mean`` and ``save_invstd`` so): two passes over x fewer, the
same bits, as the forward computes them from the same x. Given other values, the backward uses them.

Both bit for bit (tests/test_fast_norm_relu.py): the rows are rounded to the output's dtype before the ReLU,
and the mask is fastcnn.relu_backward's product in the gradient's dtype. fastcnn's alone (``FUSED_OPS``,
outside the spec's ops; refcnn keeps the plain ops); cnn's layers take them for a batch norm followed by a
ReLU layer (``cnn.layers._pair_norm_relus``) and for a residual block's last batch norm, sum and ReLU.
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import Verdicts, array_key, check_float_array, check_same_shape, invalid

from . import _runtime, activations, norm

__all__ = ["FUSED_OPS", "batch_norm_relu", "batch_norm_relu_backward", "batch_norm_add_relu"]

FUSED_OPS = ("batch_norm_relu", "batch_norm_relu_backward", "batch_norm_add_relu")


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                    eps=1e-5, *, saved_stats=None):
    """``relu(batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps))``, bit for bit,
    in one pass; the running statistics are updated as batch_norm updates them. ``saved_stats``: see the
    module."""
    return norm.forward(x, running_mean, running_var, weight, bias, training, momentum, eps, True,
                        "batch_norm_relu", saved_stats=saved_stats)


def batch_norm_relu_backward(grad_out, x, y, running_mean, running_var, weight=None, bias=None, training=False,
                             momentum=0.1, eps=1e-5, *, saved_stats=None):
    """``batch_norm_backward(relu_backward(grad_out, pre), x, ...)`` bit for bit, where ``pre`` is the batch
    norm's output and ``y = relu(pre)`` the forward's (:func:`batch_norm_relu`): ``(grad_x, grad_weight,
    grad_bias)``. ``saved_stats``: the forward's (see the module), or None."""
    caller = "batch_norm_relu_backward"
    if not isinstance(y, np.ndarray) or y.dtype.kind != "f" or y.shape != getattr(x, "shape", None):
        what = f"array of dtype {y.dtype}, shape {y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
        raise ValueError(invalid(caller, "y", "the float array batch_norm_relu returned, of x's shape "
                                 f"{getattr(x, 'shape', None)}", what))
    return norm.backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps, y, caller,
                         saved_stats)


def batch_norm_add_relu(x, residual, running_mean, running_var, weight=None, bias=None, training=False,
                        momentum=0.1, eps=1e-5, *, saved_stats=None):
    """``add_relu(batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps), residual)``,
    bit for bit, in one pass where the batch norm's result has ``residual``'s dtype (the plain ops in turn
    otherwise); the running statistics are updated as batch_norm updates them. ``residual``: a float array of
    x's shape. ``saved_stats``: see the module."""
    caller = "batch_norm_add_relu"
    keys = tuple(array_key(v, (None,)) for v in (x, residual, running_mean, running_var, weight, bias))
    one_pass = _ONE_PASS.get(None if None in keys else keys,
                             lambda: _takes_one_pass(caller, x, residual, running_mean, running_var, weight, bias))
    if not one_pass:
        y = norm.forward(x, running_mean, running_var, weight, bias, training, momentum, eps, False, caller,
                         saved_stats=saved_stats)
        return activations.add_relu(y, residual)
    return norm.forward(x, running_mean, running_var, weight, bias, training, momentum, eps, True, caller,
                        residual=residual, saved_stats=saved_stats)


#: :func:`batch_norm_add_relu`'s checks of x and residual and its choice of pass, remembered per the arrays' types,
#: dtypes and shapes (issue 16; as fastcnn.norm remembers its checks).
_ONE_PASS = Verdicts()


def _takes_one_pass(caller, x, residual, *others) -> bool:
    """Check x and residual; then whether the batch norm's result has residual's dtype (one pass)."""
    check_float_array(x, "x", caller)
    check_float_array(residual, "residual", caller)
    check_same_shape(residual, x, "residual", "x", caller)
    return _runtime.result_dtype(x, *others) == residual.dtype == _runtime.compute_dtype(x, *others)
