"""Batch normalisation's arguments: the checks both engines run first, PyTorch's rules (``specs/norm.md``).

``x`` of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` is seen as ``(N, C, S)``, ``S`` the product of the
spatial sizes; :class:`BatchNormArgs` holds the resolved sizes and hyperparameters of one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .checks import (FORWARD, Verdicts, array_key, check_bool, check_float, check_float_array, check_same_shape,
                     check_shape, overlaps_itself)

__all__ = ["BatchNormArgs", "call_key", "check_batch_norm", "check_batch_norm_backward"]

_X_AXES = "(N, C), (N, C, L) or (N, C, H, W)"


@dataclass(frozen=True)
class BatchNormArgs:
    """Resolved sizes and hyperparameters of one batch-norm call, shared by refcnn and fastcnn."""

    n: int
    c: int
    s: int  # spatial positions per sample and channel: 1, L or H*W
    training: bool
    momentum: float
    eps: float
    has_running_stats: bool
    has_weight: bool
    has_bias: bool

    @property
    def m(self) -> int:
        """Number of values each channel's statistics are taken over: ``N*S``."""
        return self.n * self.s


def _check_channel_vector(v, name: str, c: int, x_shape: tuple, op: str) -> None:
    if v is None:
        return
    check_float_array(v, name, op, 1, shape_hint="(C,)")
    check_shape(v, (c,), name, op, context=f"C={c} from x.shape={x_shape}")


#: The checks' answers (cnnbase.checks.Verdicts): a layer calls with the same shapes and hyperparameters every step.
_CHECKED = Verdicts()


def call_key(op, x, running_mean, running_var, weight, bias, training, momentum, eps, grad_out=FORWARD):
    """Everything the checks below read: the arrays' types, dtypes and shapes, the running statistics' strides
    and writeability (they are updated in place), the hyperparameters with their types; None when an argument
    is of no kind a key holds."""
    arrays = (array_key(x), array_key(grad_out, (FORWARD,)),
              *(array_key(v, (None,)) for v in (running_mean, running_var, weight, bias)))
    if None in arrays:
        return None
    running = tuple((v.strides, v.flags.writeable) for v in (running_mean, running_var) if v is not None)
    return op, arrays, running, (type(training), training), (type(momentum), momentum), (type(eps), eps)


def check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps,
                     op: str = "batch_norm") -> BatchNormArgs:
    """Check the arguments of :func:`batch_norm` before any computation (PyTorch's rules); the answer is
    remembered by what the checks read (:func:`call_key`)."""
    return _CHECKED.get(call_key(op, x, running_mean, running_var, weight, bias, training, momentum, eps),
                        lambda: _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum,
                                                  eps, op))


def _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, op) -> BatchNormArgs:
    check_float_array(x, "x", op, (2, 3, 4), shape_hint=_X_AXES)
    if 0 in x.shape:
        raise ValueError(f"{op}: argument `x` must have no zero-sized axis {_X_AXES}; received shape {x.shape}.")
    training = check_bool(training, "training", op)
    momentum = check_float(momentum, "momentum", op, minimum=0.0, maximum=1.0)
    # PyTorch's rule: a zero eps is allowed only when the variance cannot be the batch's (possibly 0) one.
    eps = check_float(eps, "eps", op, minimum=0.0, min_open=training)
    n, c = x.shape[0], x.shape[1]
    s = math.prod(x.shape[2:])
    for v, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"), (bias, "bias")):
        _check_channel_vector(v, name, c, x.shape, op)
    if (running_mean is None) != (running_var is None):
        raise ValueError(
            f"{op}: arguments `running_mean` and `running_var` must both be None or both be arrays; received "
            f"running_mean={'None' if running_mean is None else 'an array'} and "
            f"running_var={'None' if running_var is None else 'an array'}."
        )
    has_running = running_mean is not None
    if not training and not has_running:
        raise ValueError(f"{op}: arguments `running_mean` and `running_var` are required when training=False; "
                         f"received None.")
    if training and has_running and not (running_mean.flags.writeable and running_var.flags.writeable):
        raise ValueError(f"{op}: arguments `running_mean` and `running_var` must be writable when training=True "
                         f"(they are updated in place); received a read-only array.")
    if training and has_running and (overlaps_itself(running_mean) or overlaps_itself(running_var)):
        raise ValueError(f"{op}: arguments `running_mean` and `running_var` must not hold one memory cell under "
                         f"two indices when training=True (they are updated in place); received strides "
                         f"{running_mean.strides} and {running_var.strides}.")
    if training and n * s < 2:
        # A variance of one value is 0 and its unbiased correction divides by m - 1 = 0.
        raise ValueError(f"{op}: expected more than 1 value per channel when training (m = N*S >= 2); "
                         f"received x.shape={x.shape}.")
    return BatchNormArgs(n, c, s, training, momentum, eps, has_running, weight is not None, bias is not None)


def check_batch_norm_backward(grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps,
                              op: str = "batch_norm_backward") -> BatchNormArgs:
    """The forward's checks, then a float ``grad_out`` of ``x``'s shape (remembered as the forward's are)."""
    def check():
        args = _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, op)
        check_float_array(grad_out, "grad_out", op)
        check_same_shape(grad_out, x, "grad_out", "x", op)
        return args

    return _CHECKED.get(call_key(op, x, running_mean, running_var, weight, bias, training, momentum, eps, grad_out),
                        check)
