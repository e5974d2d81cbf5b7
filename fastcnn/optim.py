"""Optimizer update rules as pure functions (``specs/optim.md``), in Numba.

Each ``*_step(param, grad, state=None, **hyperparameters)`` returns ``(new_param, new_state)`` with the
keys, arguments and defaults of :mod:`refcnn.optim`, and never changes its inputs. Every rule is one
parallel elementwise kernel: each element's update reads its own ``param``, ``grad`` and state values and
writes fresh arrays, so the result cannot depend on the thread count. A small parameter (under
``_runtime.SERIAL_BELOW`` elements) is updated on the calling thread alone (``_runtime.launch``): waking the
other threads would cost more than its update.

Dtypes: ``new_param`` and every state array have ``param``'s dtype (a parameter keeps its dtype from step to
step, as in ``torch.optim``; float16 is computed in float32). Each element's arithmetic is done in float64,
in refcnn's order, and rounded once when stored: float64 results equal refcnn's bit for bit, float32
results are refcnn's rounded to float32 (for the same float32 inputs).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cnnbase.optim import (
    adam_state_keys, check_adadelta, check_adam, check_rmsprop, check_sgd, rmsprop_state_keys, step_count,
)

from . import _runtime

__all__ = ["sgd_step", "adam_step", "adadelta_step", "rmsprop_step"]

# Kernel flags: fastmath off, so each element follows refcnn's arithmetic exactly (there is no reduction to
# speed up); error_model "numpy", so a division by zero (possible with eps = 0) gives inf or NaN as in
# refcnn and PyTorch instead of raising ZeroDivisionError.
_ELEMENTWISE = dict(parallel=True, fastmath=False, error_model="numpy", **_runtime.KERNEL_FLAGS)


# ----------------------------------------------------------------------------------------------------------
# Kernels: one iteration per flat element; arrays of state a rule does not use are 1-element dummies.


@numba.njit(**_ELEMENTWISE)
def _sgd_kernel(param, grad, buf, lr, momentum, dampening, weight_decay, use_momentum, first, nesterov, keras,
                new_param, new_buf):
    for i in numba.prange(param.size):
        p = np.float64(param[i])
        g = np.float64(grad[i])
        if weight_decay != 0.0:
            g = g + weight_decay * p
        if not use_momentum:
            p = p - lr * g
        elif not keras:
            b = g if first else momentum * np.float64(buf[i]) + (1.0 - dampening) * g
            direction = g + momentum * b if nesterov else b
            p = p - lr * direction
            new_buf[i] = b
        else:
            b = momentum * np.float64(buf[i]) - lr * g
            p = p + (momentum * b - lr * g if nesterov else b)
            new_buf[i] = b
        new_param[i] = p


@numba.njit(**_ELEMENTWISE)
def _adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                 amsgrad, decoupled, step_size, bias_correction2_sqrt,
                 new_param, new_exp_avg, new_exp_avg_sq, new_max_exp_avg_sq):
    for i in numba.prange(param.size):
        p = np.float64(param[i])
        g = np.float64(grad[i])
        if weight_decay != 0.0:
            if decoupled:
                p = p * (1.0 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = beta1 * np.float64(exp_avg[i]) + (1.0 - beta1) * g
        v = beta2 * np.float64(exp_avg_sq[i]) + (1.0 - beta2) * g * g
        second = v
        if amsgrad:
            v_max = np.float64(max_exp_avg_sq[i])
            if v > v_max:  # Python's max(v_max, v): keeps v_max unless v is larger (so a NaN v_max stays)
                v_max = v
            second = v_max
            new_max_exp_avg_sq[i] = v_max
        denom = np.sqrt(second) / bias_correction2_sqrt + eps
        new_param[i] = p - step_size * (m / denom)
        new_exp_avg[i] = m
        new_exp_avg_sq[i] = v


@numba.njit(**_ELEMENTWISE)
def _adadelta_kernel(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay,
                     new_param, new_square_avg, new_acc_delta):
    for i in numba.prange(param.size):
        p = np.float64(param[i])
        g = np.float64(grad[i])
        if weight_decay != 0.0:
            g = g + weight_decay * p
        s = rho * np.float64(square_avg[i]) + (1.0 - rho) * g * g
        a = np.float64(acc_delta[i])
        delta = np.sqrt(a + eps) / np.sqrt(s + eps) * g
        new_acc_delta[i] = rho * a + (1.0 - rho) * delta * delta
        new_square_avg[i] = s
        new_param[i] = p - lr * delta


@numba.njit(**_ELEMENTWISE)
def _rmsprop_kernel(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps, weight_decay, momentum,
                    centered, new_param, new_square_avg, new_momentum_buffer, new_grad_avg):
    for i in numba.prange(param.size):
        p = np.float64(param[i])
        g = np.float64(grad[i])
        if weight_decay != 0.0:
            g = g + weight_decay * p
        s = alpha * np.float64(square_avg[i]) + (1.0 - alpha) * g * g
        new_square_avg[i] = s
        if centered:
            avg = alpha * np.float64(grad_avg[i]) + (1.0 - alpha) * g
            new_grad_avg[i] = avg
            denom = np.sqrt(s - avg * avg) + eps
        else:
            denom = np.sqrt(s) + eps
        if momentum > 0.0:
            b = momentum * np.float64(momentum_buffer[i]) + g / denom
            new_momentum_buffer[i] = b
            p = p - lr * b
        else:
            p = p - lr * (g / denom)
        new_param[i] = p


# ----------------------------------------------------------------------------------------------------------
# Helpers of the wrappers


class _Arrays:
    """The flat compute-dtype views of one call's inputs and the fresh arrays it returns."""

    def __init__(self, param: np.ndarray, grad: np.ndarray, state, keys: tuple[str, ...]):
        given = [state[k] for k in keys if state is not None and k in state]
        self.dtype = _runtime.compute_dtype(param, grad, *given)
        self.shape = param.shape
        self.result_dtype = param.dtype
        self.size = param.size
        self.param = self.flat(param)
        self.grad = self.flat(grad)
        self._state = state

    def flat(self, a: np.ndarray) -> np.ndarray:
        return _runtime.as_compute(a, self.dtype).reshape(-1)

    def state(self, key: str, used: bool = True) -> np.ndarray:
        """The state array ``key`` (zeros when absent); a 1-element dummy when the rule does not use it."""
        if not used:
            return np.zeros(1, dtype=self.dtype)
        if self._state is None or key not in self._state:
            return np.zeros(self.size, dtype=self.dtype)
        return self.flat(self._state[key])

    def new(self, used: bool = True) -> np.ndarray:
        """A fresh flat output array (a 1-element dummy when unused)."""
        return np.empty(self.size if used else 1, dtype=self.dtype)

    def out(self, flat: np.ndarray) -> np.ndarray:
        """A kernel output in ``param``'s shape and dtype."""
        return flat.reshape(self.shape).astype(self.result_dtype, copy=False)


# ----------------------------------------------------------------------------------------------------------
# Public functions


def sgd_step(param, grad, state=None, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             momentum_form="pytorch"):
    cfg = check_sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov, momentum_form)
    use_momentum = cfg.momentum != 0.0
    a = _Arrays(param, grad, state, ("momentum_buffer",) if use_momentum else ())
    first = state is None or "momentum_buffer" not in state
    buf = a.state("momentum_buffer", used=use_momentum)  # zeros at the first step (Keras's v = 0)
    new_param, new_buf = a.new(), a.new(used=use_momentum)
    _runtime.launch(_sgd_kernel, a.param.size, a.param, a.grad, buf, cfg.lr, cfg.momentum, cfg.dampening,
                    cfg.weight_decay, use_momentum, first, cfg.nesterov, cfg.momentum_form == "keras", new_param,
                    new_buf)
    new_state = {"momentum_buffer": a.out(new_buf)} if use_momentum else {}
    return a.out(new_param), new_state


def adam_step(param, grad, state=None, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
              decoupled_weight_decay=False):
    cfg = check_adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay)
    a = _Arrays(param, grad, state, adam_state_keys(cfg.amsgrad))
    t = step_count(state) + 1
    # The same scalar expressions as refcnn, evaluated once in Python.
    step_size = cfg.lr / (1.0 - cfg.beta1 ** t)
    bias_correction2_sqrt = math.sqrt(1.0 - cfg.beta2 ** t)
    new_param, new_m, new_v, new_v_max = a.new(), a.new(), a.new(), a.new(used=cfg.amsgrad)
    _runtime.launch(_adam_kernel, a.param.size, a.param, a.grad, a.state("exp_avg"), a.state("exp_avg_sq"),
                    a.state("max_exp_avg_sq", used=cfg.amsgrad), cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
                    cfg.weight_decay, cfg.amsgrad, cfg.decoupled_weight_decay, step_size, bias_correction2_sqrt,
                    new_param, new_m, new_v, new_v_max)
    new_state = {"step": t, "exp_avg": a.out(new_m), "exp_avg_sq": a.out(new_v)}
    if cfg.amsgrad:
        new_state["max_exp_avg_sq"] = a.out(new_v_max)
    return a.out(new_param), new_state


def adadelta_step(param, grad, state=None, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    cfg = check_adadelta(param, grad, state, lr, rho, eps, weight_decay)
    a = _Arrays(param, grad, state, ("square_avg", "acc_delta"))
    new_param, new_s, new_acc = a.new(), a.new(), a.new()
    _runtime.launch(_adadelta_kernel, a.param.size, a.param, a.grad, a.state("square_avg"), a.state("acc_delta"),
                    cfg.lr, cfg.rho, cfg.eps, cfg.weight_decay, new_param, new_s, new_acc)
    new_state = {"step": step_count(state) + 1, "square_avg": a.out(new_s), "acc_delta": a.out(new_acc)}
    return a.out(new_param), new_state


def rmsprop_step(param, grad, state=None, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
    cfg = check_rmsprop(param, grad, state, lr, alpha, eps, weight_decay, momentum, centered)
    a = _Arrays(param, grad, state, rmsprop_state_keys(cfg.momentum, cfg.centered))
    use_momentum = cfg.momentum > 0.0
    new_param, new_s = a.new(), a.new()
    new_buf, new_avg = a.new(used=use_momentum), a.new(used=cfg.centered)
    _runtime.launch(_rmsprop_kernel, a.param.size, a.param, a.grad, a.state("square_avg"),
                    a.state("momentum_buffer", used=use_momentum), a.state("grad_avg", used=cfg.centered), cfg.lr,
                    cfg.alpha, cfg.eps, cfg.weight_decay, cfg.momentum, cfg.centered, new_param, new_s, new_buf,
                    new_avg)
    new_state = {"step": step_count(state) + 1, "square_avg": a.out(new_s)}
    if use_momentum:
        new_state["momentum_buffer"] = a.out(new_buf)
    if cfg.centered:
        new_state["grad_avg"] = a.out(new_avg)
    return a.out(new_param), new_state


#: Where fastcnn's steps differ from refcnn's (module docstring): only in the dtype of what they return.
_NOTE = ("fastcnn: each element is computed in float64 in refcnn's order and rounded once; new_param and the "
         "state arrays keep param's dtype (float16 is computed in float32), where refcnn returns float64.")
_runtime.share_docstrings(globals(), __all__, notes=dict.fromkeys(__all__, _NOTE))
