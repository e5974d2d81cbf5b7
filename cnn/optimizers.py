"""Optimizers over a model's parameters, built on the engines' pure step functions.

``engine.<name>_step(param, grad, state, lr=..., **hyperparameters)`` returns ``(new_param, new_state)``
(``specs/optim.md``). An :class:`Optimizer` keeps one state per parameter, keyed by the parameter's name
(``"conv2d/weight"``), calls the step with the learning rate of the current epoch, and can write its state
to flat arrays plus JSON for a checkpoint and read it back, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from cnnbase import optim as rules
from cnnbase.checks import invalid
import refcnn

__all__ = ["OPTIMIZERS", "Optimizer", "make_optimizer"]

#: Optimizer names and the engine function each one calls.
OPTIMIZERS = {"sgd": "sgd_step", "adam": "adam_step", "adadelta": "adadelta_step", "rmsprop": "rmsprop_step"}


#: The argument checks each step function runs first (``cnnbase.optim``): an optimizer runs them when it is
#: made, so a bad hyperparameter fails there (``cnn train`` before it writes anything), not at the first step.
_CHECKS = {"sgd": rules.check_sgd, "adam": rules.check_adam, "adadelta": rules.check_adadelta,
           "rmsprop": rules.check_rmsprop}


def _check_hyperparameters(name: str, lr, hyperparameters: dict) -> None:
    """The step function's own checks on one-element arrays, plus: every number finite (an infinite rate or
    decay turns every weight into NaN at the first step)."""
    probe = np.zeros(1)
    # The step's checks first: they refuse what is no number at all, and ints too large for a float (10**400).
    _CHECKS[name](param=probe, grad=probe, state=None, lr=lr, **hyperparameters)
    op = f"optimizer {name!r}"
    for key, value in {"lr": lr, **hyperparameters}.items():
        numbers_in = value if isinstance(value, (tuple, list)) else (value,)
        for number in numbers_in:
            if isinstance(number, numbers.Real) and not isinstance(number, (bool, np.bool_)) \
                    and not math.isfinite(number):
                raise ValueError(invalid(op, key, "a finite number", value))


def _defaults(name: str) -> dict:
    """The keyword defaults of the step function (the spec's and torch.optim's), lr included."""
    signature = inspect.signature(getattr(refcnn, OPTIMIZERS[name]))
    return {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


class Optimizer:
    """One optimizer for a whole model.

    Parameters
    ----------
    name : {'sgd', 'adam', 'adadelta', 'rmsprop'}
    lr : float or None
        Base learning rate; None means the step function's default (adam 1e-3, adadelta 1.0, ...).
    **hyperparameters
        Any other keyword of the step function (``momentum``, ``betas``, ``rho``, ``weight_decay``, ...).

    Every value is checked here, by the step function's own rules (``specs/optim.md``) and finite: a
    ``TypeError`` or ``ValueError`` names the argument.
    """

    def __init__(self, name: str = "adam", lr: float | None = None, *, lr_multipliers: dict | None = None,
                 **hyperparameters):
        if name not in OPTIMIZERS:
            raise ValueError(invalid("optimizer", "name", f"one of {', '.join(OPTIMIZERS)}", name))
        defaults = _defaults(name)
        unknown = sorted(set(hyperparameters) - set(defaults) - {"lr"})
        if unknown:
            allowed = ", ".join(k for k in defaults if k != "lr")
            raise ValueError(f"optimizer {name!r}: unknown argument(s) {', '.join(unknown)}; allowed: {allowed}")
        self.name = name
        lr = defaults["lr"] if lr is None else lr
        self.hyperparameters = {k: v for k, v in defaults.items() if k != "lr"}
        self.hyperparameters.update(hyperparameters)
        _check_hyperparameters(name, lr, self.hyperparameters)
        self.lr = float(lr)
        self.lr_multipliers = _check_multipliers(lr_multipliers)
        self.state: dict[str, dict] = {}

    def config(self) -> dict:
        """JSON form: ``{"name": ..., "lr": ..., <every hyperparameter>}`` (tuples as lists)."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hyperparameters.items()}
        if self.lr_multipliers:  # only when set, so that a checkpoint written before them compares equal
            values["lr_multipliers"] = dict(sorted(self.lr_multipliers.items()))
        return {"name": self.name, "lr": self.lr, **values}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        values = dict(config)
        name = values.pop("name")
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(name, **values)

    def step(self, engine, named_params, lr: float) -> dict[str, np.ndarray]:
        """Update every ``(key, param, grad)`` with learning rate ``lr`` times the key's multiplier
        (:attr:`lr_multipliers`, 1 for a key it does not name); returns the new parameters by key, each in its
        parameter's dtype (refcnn computes in float64)."""
        step_fn = getattr(engine, OPTIMIZERS[self.name])
        updated = {}
        for key, param, grad in named_params:
            rate = lr * self.lr_multipliers[key] if key in self.lr_multipliers else lr
            new_param, self.state[key] = step_fn(param, grad, self.state.get(key), lr=rate, **self.hyperparameters)
            updated[key] = new_param if new_param.dtype == param.dtype else new_param.astype(param.dtype)
        return updated

    # Checkpoints: arrays by "<param key>/<state key>", every non-array (the step count) in JSON.
    def state_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, scalars = {}, {}
        for key, state in self.state.items():
            for name, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays[f"{key}/{name}"] = value
                else:
                    scalars.setdefault(key, {})[name] = int(value) if isinstance(value, (int, np.integer)) else value
        return arrays, {"keys": sorted(self.state), "scalars": scalars}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        state: dict[str, dict] = {key: dict(meta["scalars"].get(key, {})) for key in meta["keys"]}
        for full, value in arrays.items():
            key, _, name = full.rpartition("/")
            if key not in state:
                raise ValueError(f"optimizer state: array {full!r} belongs to no parameter of the checkpoint")
            state[key][name] = value
        self.state = state


def _check_multipliers(multipliers) -> dict[str, float]:
    """Per-parameter learning-rate multipliers (``{"conv2d/weight": 0.1}``): parameter groups as torch.optim's
    ``param_groups`` and discriminative fine-tuning (Howard & Ruder 2018, ULMFiT), where a pretrained layer
    learns at a fraction of the new head's rate. Each is a finite number >= 0 (0 freezes the parameter's
    values, though its optimizer state still advances)."""
    if multipliers is None:
        return {}
    if not isinstance(multipliers, dict) or not all(isinstance(k, str) for k in multipliers):
        raise TypeError(invalid("optimizer", "lr_multipliers", "a dict of numbers by parameter key",
                                type(multipliers).__name__))
    out = {}
    for key, value in multipliers.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(invalid("optimizer", f"lr_multipliers[{key!r}]", "a finite number >= 0", value))
        out[key] = float(value)
    return out


def make_optimizer(spec="adam", lr: float | None = None) -> Optimizer:
    """An :class:`Optimizer` from a name, a config dict or an existing optimizer (returned as is)."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, dict):
        return Optimizer.from_config({**spec, **({"lr": lr} if lr is not None else {})})
    return Optimizer(spec, lr)
