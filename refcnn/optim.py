"""Optimizer update rules as pure functions (``specs/optim.md``).

Each ``*_step(param, grad, state=None, **hyperparameters)`` returns ``(new_param, new_state)`` and never
changes its inputs. ``state`` is ``None`` at the first step and afterwards the dict the previous call
returned: float64 arrays of ``param``'s shape and the int ``step``, under PyTorch's state names. The
learning rate is an argument of every call, not part of the state, so a schedule is just a different
``lr`` at each call.

Every rule is one loop over the flat elements, in the order PyTorch's ``torch.optim`` applies the
operations (``foreach=False``), so each element's arithmetic can be followed line by line in the spec.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase.checks import as_float64
from cnnbase.optim import (
    check_adadelta, check_adam, check_rmsprop, check_sgd, step_count,
)

__all__ = ["sgd_step", "adam_step", "adadelta_step", "rmsprop_step"]

# ---------------------------------------------------------------------------------------------------------
# Element access
# ---------------------------------------------------------------------------------------------------------

def _flat(a: np.ndarray) -> np.ndarray:
    """A float64 row-major copy, so that writing to it can never reach the caller's array."""
    return np.array(np.ravel(as_float64(a), order="C"), dtype=np.float64)


def _flat_state(state, key: str, size: int, *, used: bool = True) -> np.ndarray:
    """The state array ``key`` as a fresh flat float64 copy, zeros at the first step. A key this configuration
    does not use (``used=False``: a momentum buffer with ``momentum=0``) is never read, as in fastcnn and
    ``torch.optim``, whatever it holds."""
    if not used or state is None or key not in state:
        return np.zeros(size, dtype=np.float64)
    return _flat(state[key])


def _sqrt(x) -> np.float64:
    """Square root with IEEE results (NaN below 0, as PyTorch) instead of a Python exception; the result is a
    NumPy float so that a later division by 0 gives inf or NaN, as in PyTorch, rather than raising."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.float64(x))


# ---------------------------------------------------------------------------------------------------------
# The update rules
# ---------------------------------------------------------------------------------------------------------

def sgd_step(param, grad, state=None, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             momentum_form="pytorch"):
    """One step of stochastic gradient descent with optional momentum.

    ``g = grad + weight_decay * param``; with ``momentum = 0``: ``param <- param - lr g``.
    ``momentum_form="pytorch"``: ``b <- g`` at the first step, else ``b <- momentum b + (1 - dampening) g``;
    ``param <- param - lr b`` (nesterov: ``param <- param - lr (g + momentum b)``).
    ``momentum_form="keras"``: ``v <- momentum v - lr g`` (``v = 0`` before the first step);
    ``param <- param + v`` (nesterov: ``param <- param + momentum v - lr g``).
    ``b`` or ``v`` is ``state["momentum_buffer"]``; for a constant ``lr`` the forms agree with ``v = -lr b``.

    Shape: ``param`` and ``grad`` of one shape -> ``new_param`` of that shape; ``new_state`` is ``{}`` when
    ``momentum = 0``, else ``{"momentum_buffer": array of param's shape}``.
    """
    cfg = check_sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov, momentum_form)
    p, g_in = _flat(param), _flat(grad)
    use_momentum = cfg.momentum != 0.0
    first = state is None or "momentum_buffer" not in state
    buf = _flat_state(state, "momentum_buffer", p.size, used=use_momentum)
    for i in range(p.size):
        g = g_in[i]
        if cfg.weight_decay != 0.0:
            g = g + cfg.weight_decay * p[i]
        if not use_momentum:
            p[i] = p[i] - cfg.lr * g
        elif cfg.momentum_form == "pytorch":
            buf[i] = g if first else cfg.momentum * buf[i] + (1.0 - cfg.dampening) * g
            direction = g + cfg.momentum * buf[i] if cfg.nesterov else buf[i]
            p[i] = p[i] - cfg.lr * direction
        else:
            buf[i] = cfg.momentum * buf[i] - cfg.lr * g
            p[i] = p[i] + (cfg.momentum * buf[i] - cfg.lr * g if cfg.nesterov else buf[i])
    new_state = {"momentum_buffer": buf.reshape(param.shape)} if use_momentum else {}
    return p.reshape(param.shape), new_state


def adam_step(param, grad, state=None, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
              decoupled_weight_decay=False):
    """One step of Adam (AdamW with ``decoupled_weight_decay``; AMSGrad with ``amsgrad``).

    ``t <- t + 1``; weight decay: ``param <- param (1 - lr weight_decay)`` when decoupled, else
    ``g = grad + weight_decay param``; ``m <- beta1 m + (1 - beta1) g``; ``v <- beta2 v + (1 - beta2) g^2``;
    AMSGrad: ``v_max <- max(v_max, v)`` and ``v_max`` replaces ``v`` below;
    ``param <- param - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
    State: ``step = t``, ``exp_avg = m``, ``exp_avg_sq = v``, ``max_exp_avg_sq = v_max`` (AMSGrad only).

    Shape: ``param`` and ``grad`` of one shape -> ``new_param`` of that shape, state arrays of that shape.
    """
    cfg = check_adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay)
    p, g_in = _flat(param), _flat(grad)
    m, v = _flat_state(state, "exp_avg", p.size), _flat_state(state, "exp_avg_sq", p.size)
    v_max = _flat_state(state, "max_exp_avg_sq", p.size, used=cfg.amsgrad)
    t = step_count(state) + 1
    step_size = cfg.lr / (1.0 - cfg.beta1 ** t)
    bias_correction2_sqrt = math.sqrt(1.0 - cfg.beta2 ** t)
    for i in range(p.size):
        g = g_in[i]
        if cfg.weight_decay != 0.0:
            if cfg.decoupled_weight_decay:
                p[i] = p[i] * (1.0 - cfg.lr * cfg.weight_decay)
            else:
                g = g + cfg.weight_decay * p[i]
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g
        second = v[i]
        if cfg.amsgrad:
            v_max[i] = max(v_max[i], v[i])
            second = v_max[i]
        denom = _sqrt(second) / bias_correction2_sqrt + cfg.eps
        p[i] = p[i] - step_size * (m[i] / denom)
    new_state = {"step": t, "exp_avg": m.reshape(param.shape), "exp_avg_sq": v.reshape(param.shape)}
    if cfg.amsgrad:
        new_state["max_exp_avg_sq"] = v_max.reshape(param.shape)
    return p.reshape(param.shape), new_state


def adadelta_step(param, grad, state=None, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    """One step of Adadelta.

    ``t <- t + 1``; ``g = grad + weight_decay param``; ``s <- rho s + (1 - rho) g^2``;
    ``delta = sqrt(a + eps) / sqrt(s + eps) g``; ``a <- rho a + (1 - rho) delta^2``;
    ``param <- param - lr delta``. State: ``step = t``, ``square_avg = s``, ``acc_delta = a``.

    Shape: ``param`` and ``grad`` of one shape -> ``new_param`` of that shape, state arrays of that shape.
    """
    cfg = check_adadelta(param, grad, state, lr, rho, eps, weight_decay)
    p, g_in = _flat(param), _flat(grad)
    s, a = _flat_state(state, "square_avg", p.size), _flat_state(state, "acc_delta", p.size)
    for i in range(p.size):
        g = g_in[i]
        if cfg.weight_decay != 0.0:
            g = g + cfg.weight_decay * p[i]
        s[i] = cfg.rho * s[i] + (1.0 - cfg.rho) * g * g
        delta = _sqrt(a[i] + cfg.eps) / _sqrt(s[i] + cfg.eps) * g
        a[i] = cfg.rho * a[i] + (1.0 - cfg.rho) * delta * delta
        p[i] = p[i] - cfg.lr * delta
    new_state = {"step": step_count(state) + 1, "square_avg": s.reshape(param.shape),
                 "acc_delta": a.reshape(param.shape)}
    return p.reshape(param.shape), new_state


def rmsprop_step(param, grad, state=None, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
    """One step of RMSprop (eps added outside the square root, as in PyTorch).

    ``t <- t + 1``; ``g = grad + weight_decay param``; ``s <- alpha s + (1 - alpha) g^2``;
    centered: ``a <- alpha a + (1 - alpha) g`` and ``d = sqrt(s - a^2) + eps``, else ``d = sqrt(s) + eps``;
    momentum > 0: ``b <- momentum b + g / d`` (``b = 0`` before the first step), ``param <- param - lr b``;
    else ``param <- param - lr g / d``.
    State: ``step = t``, ``square_avg = s``, ``momentum_buffer = b`` (momentum > 0), ``grad_avg = a`` (centered).

    Shape: ``param`` and ``grad`` of one shape -> ``new_param`` of that shape, state arrays of that shape.
    """
    cfg = check_rmsprop(param, grad, state, lr, alpha, eps, weight_decay, momentum, centered)
    p, g_in = _flat(param), _flat(grad)
    s = _flat_state(state, "square_avg", p.size)
    buf = _flat_state(state, "momentum_buffer", p.size, used=cfg.momentum > 0)
    avg = _flat_state(state, "grad_avg", p.size, used=cfg.centered)
    for i in range(p.size):
        g = g_in[i]
        if cfg.weight_decay != 0.0:
            g = g + cfg.weight_decay * p[i]
        s[i] = cfg.alpha * s[i] + (1.0 - cfg.alpha) * g * g
        if cfg.centered:
            avg[i] = cfg.alpha * avg[i] + (1.0 - cfg.alpha) * g
            denom = _sqrt(s[i] - avg[i] * avg[i]) + cfg.eps
        else:
            denom = _sqrt(s[i]) + cfg.eps
        if cfg.momentum > 0.0:
            buf[i] = cfg.momentum * buf[i] + g / denom
            p[i] = p[i] - cfg.lr * buf[i]
        else:
            p[i] = p[i] - cfg.lr * (g / denom)
    new_state = {"step": step_count(state) + 1, "square_avg": s.reshape(param.shape)}
    if cfg.momentum > 0.0:
        new_state["momentum_buffer"] = buf.reshape(param.shape)
    if cfg.centered:
        new_state["grad_avg"] = avg.reshape(param.shape)
    return p.reshape(param.shape), new_state
