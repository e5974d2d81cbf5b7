"""Write specs/cases/optim.json: the conformance cases of the optimizers (specs/optim.md).

Run from anywhere: ``python specs/cases/generators/optim.py``. Needs PyTorch (2.13.0 was used) and NumPy;
never imports the engines under test.

* "torch 2.13.0": ``torch.optim`` (``foreach=False``) run for a few steps on a small float64 tensor with
  given gradients. The case for step k passes the state PyTorch held after step k - 1 (``None`` at the
  first step) and expects the parameter and state after step k. PyTorch's tensor ``step`` becomes an int.
* "closed form": the Keras-form SGD momentum, which PyTorch does not offer, evaluated by the recurrence
  of the spec in plain Python floats, with a learning rate that changes between steps.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from _common import array, case, torch_source, write_cases

TORCH = torch_source()
CASES: list[dict] = []
TOL = (1e-12, 1e-10)  # (atol, rtol) of every expected value
SHAPE = (2, 3)

# Arrays or tensors (a parameter, its state); whole floats written as ints.
arr = partial(array, whole_as_int=True)


def add(name, op, doc, args, kwargs=None, *, expected=None, raises=None, match=None, source=TORCH):
    """Append a case to CASES; PyTorch's unless another source is given, with the tolerance TOL."""
    CASES.append(case(name, op, doc, source, args, expected, kwargs=kwargs, raises=raises, match=match, tol=TOL))


def sample(seed: int, low=-2.0, high=2.0) -> np.ndarray:
    return np.round(np.random.default_rng(seed).uniform(low, high, size=SHAPE), 3)


def encode_state(state: dict) -> dict | None:
    """PyTorch's per-parameter state as this spec's: arrays, an int ``step``, no ``None`` entries."""
    out = {}
    for key, value in state.items():
        if value is None:
            continue
        out[key] = int(value.item()) if key == "step" else arr(value)
    return out


OPTIMIZERS = {
    "sgd_step": torch.optim.SGD,
    "adam_step": torch.optim.Adam,
    "adadelta_step": torch.optim.Adadelta,
    "rmsprop_step": torch.optim.RMSprop,
}


def torch_cases(op: str, tag: str, doc: str, kwargs: dict, steps: tuple[int, ...], seed: int) -> None:
    """Run ``max(steps)`` steps of ``torch.optim`` and emit one case for each step listed in ``steps``."""
    param = torch.tensor(sample(seed), requires_grad=True)
    opt = OPTIMIZERS[op]([param], foreach=False, **kwargs)
    for k in range(1, max(steps) + 1):
        before = param.detach().clone()
        state_before = encode_state(opt.state[param]) if k > 1 else None
        grad = sample(seed + k)
        param.grad = torch.tensor(grad)
        opt.step()
        if k in steps:
            add(f"{op}/{tag}-step{k}", op, f"{doc}; step {k}", [arr(before), arr(grad), state_before], kwargs,
                expected=[arr(param), encode_state(opt.state[param])])


def keras_sgd_case(tag: str, doc: str, momentum: float, nesterov: bool, lrs: tuple[float, ...], seed: int) -> None:
    """The Keras recurrence, element by element: v <- mu v - lr g; p <- p + v (nesterov: p + mu v - lr g)."""
    p = sample(seed).reshape(-1).tolist()
    v = [0.0] * len(p)
    state = None
    for k, lr in enumerate(lrs, start=1):
        before = list(p)
        grad = sample(seed + k).reshape(-1).tolist()
        for i in range(len(p)):
            v[i] = momentum * v[i] - lr * grad[i]
            p[i] = p[i] + (momentum * v[i] - lr * grad[i] if nesterov else v[i])
        if k == len(lrs):
            kwargs = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "momentum_form": "keras"}
            add(f"sgd_step/{tag}-step{k}", "sgd_step", f"{doc}; step {k} with lr {lr} (lr changed)",
                [arr(np.reshape(before, SHAPE)), arr(np.reshape(grad, SHAPE)), state], kwargs,
                expected=[arr(np.reshape(p, SHAPE)), {"momentum_buffer": arr(np.reshape(v, SHAPE))}],
                source="closed form")
        state = {"momentum_buffer": arr(np.reshape(v, SHAPE))}


def update_cases() -> None:
    torch_cases("sgd_step", "plain", "no momentum: p - lr g", {"lr": 0.1}, (1, 2), 100)
    torch_cases("sgd_step", "momentum", "momentum 0.9: the buffer starts as g", {"lr": 0.1, "momentum": 0.9},
                (1, 3), 110)
    torch_cases("sgd_step", "dampening", "momentum 0.9, dampening 0.5",
                {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}, (1, 3), 120)
    torch_cases("sgd_step", "nesterov", "Nesterov momentum 0.9", {"lr": 0.1, "momentum": 0.9, "nesterov": True},
                (3,), 130)
    torch_cases("sgd_step", "weight-decay", "L2 weight decay 0.1 added to g, momentum 0.5",
                {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}, (2,), 140)
    keras_sgd_case("keras-momentum", "Keras form v = mu v - lr g, p + v", 0.9, False, (0.1, 0.1, 0.05), 150)
    keras_sgd_case("keras-nesterov", "Keras form with Nesterov: p + mu v - lr g", 0.8, True, (0.1, 0.2), 160)

    torch_cases("adam_step", "defaults", "lr 1e-3, betas (0.9, 0.999), eps 1e-8", {}, (1, 3), 200)
    torch_cases("adam_step", "lr0.1", "lr 0.1", {"lr": 0.1, "betas": (0.8, 0.99)}, (2,), 210)
    torch_cases("adam_step", "amsgrad", "AMSGrad keeps the running maximum of v",
                {"lr": 0.1, "amsgrad": True}, (3,), 220)
    torch_cases("adam_step", "weight-decay", "L2 weight decay added to g", {"lr": 0.1, "weight_decay": 0.1}, (3,), 230)
    torch_cases("adam_step", "adamw", "decoupled weight decay (AdamW form): p (1 - lr wd) first",
                {"lr": 0.1, "weight_decay": 0.1, "decoupled_weight_decay": True}, (1, 3), 240)
    torch_cases("adam_step", "adamw-amsgrad", "AdamW with AMSGrad",
                {"lr": 0.01, "weight_decay": 0.5, "decoupled_weight_decay": True, "amsgrad": True}, (2,), 250)

    torch_cases("adadelta_step", "defaults", "lr 1, rho 0.9, eps 1e-6", {}, (1, 3), 300)
    torch_cases("adadelta_step", "keras-defaults", "Keras's defaults: lr 0.001, rho 0.95, eps 1e-7",
                {"lr": 0.001, "rho": 0.95, "eps": 1e-7}, (2,), 310)
    torch_cases("adadelta_step", "weight-decay", "L2 weight decay 0.1", {"lr": 1.0, "weight_decay": 0.1}, (2,), 320)

    torch_cases("rmsprop_step", "defaults", "lr 1e-2, alpha 0.99, eps 1e-8", {}, (1, 3), 400)
    torch_cases("rmsprop_step", "centered", "centered: sqrt(s - a^2) + eps", {"lr": 0.01, "centered": True}, (3,), 410)
    torch_cases("rmsprop_step", "momentum", "momentum 0.9 buffer of g / d", {"lr": 0.01, "momentum": 0.9}, (1, 3), 420)
    torch_cases("rmsprop_step", "all-options", "centered, momentum 0.5, weight decay 0.1, alpha 0.9",
                {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1}, (2,), 430)


def error_cases() -> None:
    p, g = arr(sample(500)), arr(sample(501))
    add("sgd_step/error-negative-lr", "sgd_step", "lr must be >= 0", [p, g], {"lr": -0.1},
        raises="ValueError", match="`lr`")
    add("sgd_step/error-nesterov-without-momentum", "sgd_step", "Nesterov needs momentum > 0 (PyTorch's rule)",
        [p, g], {"nesterov": True}, raises="ValueError", match="nesterov")
    add("sgd_step/error-nesterov-with-dampening", "sgd_step", "Nesterov needs zero dampening (PyTorch's rule)",
        [p, g], {"momentum": 0.9, "dampening": 0.1, "nesterov": True}, raises="ValueError", match="nesterov")
    add("sgd_step/error-unknown-momentum-form", "sgd_step", "momentum_form is 'pytorch' or 'keras'",
        [p, g], {"momentum": 0.9, "momentum_form": "tensorflow"}, raises="ValueError", match="momentum_form")
    add("sgd_step/error-keras-dampening", "sgd_step", "the Keras form has no dampening",
        [p, g], {"momentum": 0.9, "dampening": 0.5, "momentum_form": "keras"}, raises="ValueError",
        match="dampening")
    add("sgd_step/error-grad-shape", "sgd_step", "grad must have param's shape", [p, arr([1.0, 2.0])],
        raises="ValueError", match="grad")
    add("adam_step/error-beta1-is-1", "adam_step", "each beta must lie in [0, 1)", [p, g], {"betas": [1.0, 0.999]},
        raises="ValueError", match="betas")
    add("adam_step/error-beta2-negative", "adam_step", "each beta must lie in [0, 1)", [p, g],
        {"betas": [0.9, -0.1]}, raises="ValueError", match="betas")
    add("adam_step/error-one-beta", "adam_step", "betas is a pair", [p, g], {"betas": [0.9]},
        raises="ValueError", match="betas")
    add("adam_step/error-negative-eps", "adam_step", "eps must be >= 0", [p, g], {"eps": -1e-8},
        raises="ValueError", match="eps")
    add("adam_step/error-state-missing-key", "adam_step", "a state without exp_avg_sq is not Adam's state",
        [p, g, {"step": 1, "exp_avg": p}], raises="ValueError", match="exp_avg_sq")
    add("adam_step/error-int-param", "adam_step", "integer arrays are rejected",
        [arr([[1, 2]], "int64"), arr([[1.0, 2.0]])], raises="TypeError", match="param")
    add("adadelta_step/error-rho-above-1", "adadelta_step", "rho must lie in [0, 1]", [p, g], {"rho": 1.5},
        raises="ValueError", match="rho")
    add("rmsprop_step/error-negative-alpha", "rmsprop_step", "alpha must be >= 0", [p, g], {"alpha": -0.1},
        raises="ValueError", match="alpha")
    add("rmsprop_step/error-negative-momentum", "rmsprop_step", "momentum must be >= 0", [p, g],
        {"momentum": -0.5}, raises="ValueError", match="momentum")


def main() -> None:
    torch.set_default_dtype(torch.float64)
    update_cases()
    error_cases()
    write_cases("optim", CASES)


if __name__ == "__main__":
    main()
