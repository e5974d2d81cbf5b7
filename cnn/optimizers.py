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
from typing import NamedTuple

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
        self._laid: dict[tuple, _Laid] = {}  # see _step_group

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
        parameter's dtype (refcnn computes in float64).

        Parameters that share a rate, dtypes and a step count, and are not large (GROUP_MAX), are updated by
        one call of the step function on their values laid end to end (:func:`_group_key`): every rule is
        elementwise, each element's update reading only its own values and the hyperparameters, so the results
        are the same bits as one call per parameter (tests/test_optimizers_grouped.py), and a ResNet-20's 65
        parameters cost one call, not 65 (2.2 ms of a 90 ms step, session 33). The new parameters and state
        arrays are views of that call's results, so the next step finds them laid end to end already and reads
        them without a copy."""
        step_fn = getattr(engine, OPTIMIZERS[self.name])
        named_params = list(named_params)
        laid, self._laid = self._laid, {}  # only this step's groups are kept (a frozen layer's are let go)
        again = self._same_group_again(named_params, laid, lr)
        if again is not None:
            updated: dict = {}
            self._step_group(step_fn, again, updated, next(iter(laid.values())))
            return {key: updated[key] for key, _, _ in named_params}
        groups: dict = {}
        for key, param, grad in named_params:
            rate = lr * self.lr_multipliers[key] if key in self.lr_multipliers else lr
            state = self.state.get(key)
            group = _group_key(rate, param, grad, state)
            groups.setdefault(group if group is not None else ("alone", key), []).append((key, rate, param, grad,
                                                                                         state))
        updated = {}
        for members in groups.values():
            if len(members) > 1:
                self._step_group(step_fn, members, updated, laid.get(tuple(m[0] for m in members)))
                continue
            key, rate, param, grad, state = members[0]  # alone: the step function's own checks and errors
            new_param, self.state[key] = step_fn(param, grad, state, lr=rate, **self.hyperparameters)
            updated[key] = _as_dtype(new_param, param.dtype)
        return {key: updated[key] for key, _, _ in named_params}  # in the order given

    def _same_group_again(self, named_params: list, laid: dict, lr: float) -> "list | None":
        """The members ``(key, rate, param, grad, state)`` of last step's only group when this step passes the
        very parameters and states that step returned, in its order, with gradients of their shapes and of its
        gradients' dtype, and no rate multipliers: :func:`_group_key` would put them in one group again (the same
        shapes, dtypes and step counts, one rate), here without asking it per parameter (65 times, ~0.5 ms of a
        ResNet-20 step). None otherwise (the general grouping then)."""
        if len(laid) != 1 or self.lr_multipliers:
            return None
        (keys, last), = laid.items()
        if len(keys) != len(named_params):
            return None
        members = []
        for i, (key, param, grad) in enumerate(named_params):
            state = self.state.get(key)
            if (key != keys[i] or param is not last.params[i] or state is not last.states[i]
                    or type(grad) is not np.ndarray or grad.shape != param.shape or grad.dtype != last.grad_dtype):
                return None
            members.append((key, lr, param, grad, state))
        return members

    def _step_group(self, step_fn, members: list, updated: dict, laid: "_Laid | None") -> None:
        """One call of ``step_fn`` on the members' parameters, gradients and state arrays laid end to end; each
        member's results are views of the call's. The call's results are remembered (``_laid``): when the
        same members come back with the very parameters and states returned here (``laid``, the last step's),
        the call's arrays are passed on as they are, no copy."""
        keys = tuple(m[0] for m in members)
        rate, state0 = members[0][1], members[0][4]
        if laid is not None and laid.param is not None and all(m[2] is laid.params[i] for i, m in enumerate(members)):
            flat_param = laid.param
        else:
            flat_param = np.concatenate([m[2].reshape(-1) for m in members])
        flat_state = None
        if state0 is not None:
            if laid is not None and all(m[4] is laid.states[i] for i, m in enumerate(members)):
                flat_state = laid.state
            else:
                flat_state = {name: (np.concatenate([m[4][name].reshape(-1) for m in members])
                                     if isinstance(value, np.ndarray) else value) for name, value in state0.items()}
        new_flat, new_state = step_fn(flat_param, np.concatenate([m[3].reshape(-1) for m in members]), flat_state,
                                      lr=rate, **self.hyperparameters)
        params, states = [], []
        start = 0
        for key, _, param, _, _ in members:
            end = start + param.size
            updated[key] = _as_dtype(new_flat[start:end].reshape(param.shape), param.dtype)
            self.state[key] = {name: (value[start:end].reshape(param.shape) if isinstance(value, np.ndarray)
                                      else value) for name, value in new_state.items()}
            params.append(updated[key])
            states.append(self.state[key])
            start = end
        self._laid[keys] = _Laid(new_flat if new_flat.dtype == members[0][2].dtype else None, new_state, params,
                                 states, members[0][3].dtype)

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


#: Elements of a parameter above which it is updated alone: laying its gradient end to end with the others
#: copies it, which costs more than the call saved. The seeds' first dense weight (1.18 million elements) in the
#: group made the update 2.05 -> 2.55 ms (session 33); ResNet-20's largest parameter has 36,864.
GROUP_MAX = 65536


def _group_key(rate: float, param, grad, state):
    """What parameters updated together share, or None for one updated alone: float arrays of one shape (the
    grad's, and the state arrays', those of the param) of at most GROUP_MAX elements, the same rate, the
    param's, grad's and state arrays' dtypes, and the same state keys and scalar values (the step count).
    Anything else goes alone, to the step function's own checks and errors."""
    if not (isinstance(param, np.ndarray) and isinstance(grad, np.ndarray) and param.shape == grad.shape
            and param.dtype.kind == "f" and grad.dtype.kind == "f" and param.size <= GROUP_MAX):
        return None
    if state is None:
        return (rate, param.dtype.str, grad.dtype.str, None)
    if not isinstance(state, dict):
        return None
    signature = []
    for name in sorted(state):
        value = state[name]
        if isinstance(value, np.ndarray):
            if value.shape != param.shape or value.dtype.kind != "f":
                return None
            signature.append((name, value.dtype.str))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            signature.append((name, type(value).__name__, value))
        else:
            return None
    return (rate, param.dtype.str, grad.dtype.str, tuple(signature))


class _Laid(NamedTuple):
    """One group's last call (:meth:`Optimizer._step_group`): its flat new parameters (None when they were
    converted to the parameters' dtype) and state, and the per-member views handed out."""
    param: np.ndarray | None
    state: dict
    params: list
    states: list
    grad_dtype: np.dtype  # the members' gradients' (one, as _group_key grouped them)


def _as_dtype(a: np.ndarray, dtype) -> np.ndarray:
    return a if a.dtype == dtype else a.astype(dtype)


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
