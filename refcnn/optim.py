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
from dataclasses import dataclass

import numpy as np

from cnnbase.checks import (
    as_float64, check_bool, check_choice, check_float, check_float_array, check_same_shape, invalid, is_int,
)

__all__ = ["sgd_step", "adam_step", "adadelta_step", "rmsprop_step"]

MOMENTUM_FORMS = ("pytorch", "keras")


# ---------------------------------------------------------------------------------------------------------
# Validation shared by refcnn and fastcnn
# ---------------------------------------------------------------------------------------------------------

def _check_param_grad(param, grad, op: str) -> None:
    check_float_array(param, "param", op)
    check_float_array(grad, "grad", op)
    check_same_shape(param, grad, "param", "grad", op)


def _check_state(state, param: np.ndarray, arrays: tuple[str, ...], op: str, *, has_step: bool = True) -> None:
    """``state`` is None (first step) or a dict with ``step`` (an int >= 0) and the named arrays of
    ``param``'s shape."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise TypeError(invalid(op, "state", "None or a dict returned by the previous step", type(state).__name__))
    required = (("step",) if has_step else ()) + arrays
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(
            f"{op}: invalid value for argument `state`. Expected a dict with the keys {list(required)}. "
            f"Received a dict without {missing} (keys {sorted(state)})."
        )
    if has_step and (not is_int(state["step"]) or state["step"] < 0):
        raise ValueError(invalid(op, "state['step']", "an int >= 0", state["step"]))
    for key in arrays:
        check_float_array(state[key], f"state['{key}']", op)
        if state[key].shape != param.shape:
            raise ValueError(
                f"{op}: argument `state['{key}']` must have param's shape {param.shape}; "
                f"received shape {state[key].shape}."
            )


def _check_lr(lr, op: str) -> float:
    return check_float(lr, "lr", op, minimum=0.0)


def _check_betas(betas, op: str) -> tuple[float, float]:
    expected = "a tuple of 2 numbers, each in [0.0, 1.0)"
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise (ValueError if isinstance(betas, (tuple, list)) else TypeError)(invalid(op, "betas", expected, betas))
    for b in betas:
        try:
            check_float(b, "betas", op, minimum=0.0, maximum=1.0, max_open=True)
        except (TypeError, ValueError) as exc:
            raise type(exc)(invalid(op, "betas", expected, betas)) from None
    return float(betas[0]), float(betas[1])


@dataclass(frozen=True)
class SGDConfig:
    lr: float
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    momentum_form: str


def check_sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov, momentum_form,
              op: str = "sgd_step") -> SGDConfig:
    """Check the arguments of :func:`sgd_step` (PyTorch's rules, plus the Keras form's)."""
    _check_param_grad(param, grad, op)
    cfg = SGDConfig(
        lr=_check_lr(lr, op),
        momentum=check_float(momentum, "momentum", op, minimum=0.0),
        dampening=check_float(dampening, "dampening", op),
        weight_decay=check_float(weight_decay, "weight_decay", op, minimum=0.0),
        nesterov=check_bool(nesterov, "nesterov", op),
        momentum_form=check_choice(momentum_form, "momentum_form", op, MOMENTUM_FORMS),
    )
    if cfg.nesterov and (cfg.momentum <= 0.0 or cfg.dampening != 0.0):
        raise ValueError(invalid(op, "nesterov", "False unless momentum > 0 and dampening == 0", nesterov,
                                 extra=f"(momentum={momentum!r}, dampening={dampening!r})"))
    if cfg.momentum_form == "keras" and cfg.dampening != 0.0:
        raise ValueError(invalid(op, "dampening", "0.0 with momentum_form='keras' (Keras has no dampening)",
                                 dampening))
    # A missing momentum_buffer means the first step, as in torch.optim.SGD.
    _check_state(state, param, (), op, has_step=False)
    if state is not None and "momentum_buffer" in state and cfg.momentum != 0.0:
        _check_state(state, param, ("momentum_buffer",), op, has_step=False)
    return cfg


@dataclass(frozen=True)
class AdamConfig:
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    amsgrad: bool
    decoupled_weight_decay: bool


def adam_state_keys(amsgrad: bool) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())


def check_adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay,
               op: str = "adam_step") -> AdamConfig:
    """Check the arguments of :func:`adam_step` (PyTorch's rules)."""
    _check_param_grad(param, grad, op)
    beta1, beta2 = _check_betas(betas, op)
    cfg = AdamConfig(
        lr=_check_lr(lr, op),
        beta1=beta1,
        beta2=beta2,
        eps=check_float(eps, "eps", op, minimum=0.0),
        weight_decay=check_float(weight_decay, "weight_decay", op, minimum=0.0),
        amsgrad=check_bool(amsgrad, "amsgrad", op),
        decoupled_weight_decay=check_bool(decoupled_weight_decay, "decoupled_weight_decay", op),
    )
    _check_state(state, param, adam_state_keys(cfg.amsgrad), op)
    return cfg


@dataclass(frozen=True)
class AdadeltaConfig:
    lr: float
    rho: float
    eps: float
    weight_decay: float


def check_adadelta(param, grad, state, lr, rho, eps, weight_decay, op: str = "adadelta_step") -> AdadeltaConfig:
    """Check the arguments of :func:`adadelta_step` (PyTorch's rules)."""
    _check_param_grad(param, grad, op)
    cfg = AdadeltaConfig(
        lr=_check_lr(lr, op),
        rho=check_float(rho, "rho", op, minimum=0.0, maximum=1.0),
        eps=check_float(eps, "eps", op, minimum=0.0),
        weight_decay=check_float(weight_decay, "weight_decay", op, minimum=0.0),
    )
    _check_state(state, param, ("square_avg", "acc_delta"), op)
    return cfg


@dataclass(frozen=True)
class RMSpropConfig:
    lr: float
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool


def rmsprop_state_keys(momentum: float, centered: bool) -> tuple[str, ...]:
    return ("square_avg",) + (("momentum_buffer",) if momentum > 0 else ()) + (("grad_avg",) if centered else ())


def check_rmsprop(param, grad, state, lr, alpha, eps, weight_decay, momentum, centered,
                  op: str = "rmsprop_step") -> RMSpropConfig:
    """Check the arguments of :func:`rmsprop_step` (PyTorch's rules)."""
    _check_param_grad(param, grad, op)
    cfg = RMSpropConfig(
        lr=_check_lr(lr, op),
        alpha=check_float(alpha, "alpha", op, minimum=0.0),
        eps=check_float(eps, "eps", op, minimum=0.0),
        weight_decay=check_float(weight_decay, "weight_decay", op, minimum=0.0),
        momentum=check_float(momentum, "momentum", op, minimum=0.0),
        centered=check_bool(centered, "centered", op),
    )
    _check_state(state, param, rmsprop_state_keys(cfg.momentum, cfg.centered), op)
    return cfg


# ---------------------------------------------------------------------------------------------------------
# Element access
# ---------------------------------------------------------------------------------------------------------

def _flat(a: np.ndarray) -> np.ndarray:
    """A float64 row-major copy, so that writing to it can never reach the caller's array."""
    return np.array(np.ravel(as_float64(a), order="C"), dtype=np.float64)


def _flat_state(state, key: str, size: int) -> np.ndarray:
    """The state array ``key`` as a fresh flat float64 copy, zeros at the first step."""
    if state is None or key not in state:
        return np.zeros(size, dtype=np.float64)
    return _flat(state[key])


def _sqrt(x) -> np.float64:
    """Square root with IEEE results (NaN below 0, as PyTorch) instead of a Python exception; the result is a
    NumPy float so that a later division by 0 gives inf or NaN, as in PyTorch, rather than raising."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.float64(x))


def _step_count(state) -> int:
    return 0 if state is None else int(state["step"])


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
    buf = _flat_state(state, "momentum_buffer", p.size)
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
    v_max = _flat_state(state, "max_exp_avg_sq", p.size)
    t = _step_count(state) + 1
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
    new_state = {"step": _step_count(state) + 1, "square_avg": s.reshape(param.shape),
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
    buf, avg = _flat_state(state, "momentum_buffer", p.size), _flat_state(state, "grad_avg", p.size)
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
    new_state = {"step": _step_count(state) + 1, "square_avg": s.reshape(param.shape)}
    if cfg.momentum > 0.0:
        new_state["momentum_buffer"] = buf.reshape(param.shape)
    if cfg.centered:
        new_state["grad_avg"] = avg.reshape(param.shape)
    return p.reshape(param.shape), new_state
