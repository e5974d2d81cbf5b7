"""The optimizer steps' arguments: the checks both engines run first, PyTorch's rules (``specs/optim.md``).

Each ``check_<rule>`` validates one ``<rule>_step`` call and returns its hyperparameters as a frozen config;
the ``*_state_keys`` functions name the state arrays a rule keeps, under PyTorch's names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_bool, check_choice, check_float, check_float_array, check_same_shape, invalid, is_int

__all__ = [
    "MOMENTUM_FORMS", "SGDConfig", "check_sgd", "AdamConfig", "adam_state_keys", "check_adam", "AdadeltaConfig",
    "check_adadelta", "RMSpropConfig", "rmsprop_state_keys", "check_rmsprop", "step_count",
]

MOMENTUM_FORMS = ("pytorch", "keras")



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


def step_count(state) -> int:
    """Steps taken before this one: 0 at the first step (``state`` is None), else ``state["step"]``."""
    return 0 if state is None else int(state["step"])
