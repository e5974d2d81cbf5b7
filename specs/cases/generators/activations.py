"""Write specs/cases/activations.json: the conformance cases of the activations family.

Expected values come from worked examples (source "hand"/"seed"), from formulas evaluated here with the
math module ("closed form"), or from PyTorch in float64 ("torch 2.13.0"). This script never imports the
engines. Re-run it from the repository root:

    .venv/bin/python specs/cases/generators/activations.py
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from _common import array as arr, case, torch_source, write_cases

TORCH = torch_source()
rng = np.random.default_rng(7)


def values(shape) -> np.ndarray:
    """Small random inputs, rounded so the JSON stays readable; a 0 is planted to exercise the kinks."""
    x = np.round(rng.uniform(-3, 3, size=shape), 3)
    x.flat[0] = 0.0
    return x


# name -> (torch function of x and keywords, keywords of the case)
TORCH_OPS = {
    "relu": (lambda x: F.relu(x), {}),
    "leaky_relu": (lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope), {"negative_slope": 0.2}),
    "elu": (lambda x, alpha=1.0: F.elu(x, alpha), {"alpha": 1.5}),
    "sigmoid": (lambda x: torch.sigmoid(x), {}),
    "tanh": (lambda x: torch.tanh(x), {}),
    "softmax": (lambda x, dim=-1: F.softmax(x, dim=dim), {"dim": 1}),
    "log_softmax": (lambda x, dim=-1: F.log_softmax(x, dim=dim), {"dim": 0}),
}


def torch_forward_and_backward(op, fn, kwargs, shape):
    x = values(shape)
    g = np.round(rng.standard_normal(shape), 3)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(xt, **kwargs)
    y.backward(torch.tensor(g, dtype=torch.float64))
    what = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
    fwd = case(f"{op}/torch-{'x'.join(map(str, shape))}", op, f"{op} of a random {shape} array ({what})",
               TORCH, [arr(x)], arr(y.detach().numpy()), kwargs=kwargs)
    bwd = case(f"{op}_backward/torch-{'x'.join(map(str, shape))}", f"{op}_backward",
               f"gradient of {op} for a random grad_out, {shape} ({what})",
               TORCH, [arr(g), arr(x)], arr(xt.grad.numpy()), kwargs=kwargs)
    return [fwd, bwd]


def hand_cases() -> list[dict]:
    e = [math.exp(1), math.exp(2), math.exp(3)]
    soft = [v / sum(e) for v in e]
    return [
        case("relu/hand-[-2,0,3]", "relu", "max(0, x): [-2, 0, 3] -> [0, 0, 3]", "hand",
             [arr([-2.0, 0.0, 3.0])], arr([0.0, 0.0, 3.0])),
        case("relu_backward/hand-kink-at-0", "relu_backward", "ReLU'(0) = 0: the gradient passes only where x > 0",
             "hand", [arr([1.0, 1.0, 1.0]), arr([-1.0, 0.0, 2.0])], arr([0.0, 0.0, 1.0])),
        case("leaky_relu/hand-slope-0.1", "leaky_relu", "[-2, 0, 3] with slope 0.1 -> [-0.2, 0, 3]", "hand",
             [arr([-2.0, 0.0, 3.0])], arr([-0.2, 0.0, 3.0]), kwargs={"negative_slope": 0.1}),
        case("leaky_relu_backward/hand-kink-at-0", "leaky_relu_backward",
             "leaky_relu'(0) = negative_slope (PyTorch): grads at x = -1, 0, 2 are 0.2, 0.2, 1", "hand",
             [arr([1.0, 1.0, 1.0]), arr([-1.0, 0.0, 2.0])], arr([0.2, 0.2, 1.0]), kwargs={"negative_slope": 0.2}),
        case("elu/closed-form-alpha-2", "elu", "x = -1, 0, 1 with alpha 2: 2(e^-1 - 1), 0, 1", "closed form",
             [arr([-1.0, 0.0, 1.0])], arr([2.0 * math.expm1(-1.0), 0.0, 1.0]), kwargs={"alpha": 2.0}),
        case("elu_backward/hand-kink-at-0", "elu_backward", "ELU'(0) = alpha * e^0 = alpha (PyTorch)", "hand",
             [arr([3.0]), arr([0.0])], arr([6.0]), kwargs={"alpha": 2.0}),
        case("sigmoid/hand-0", "sigmoid", "sigmoid(0) = 1/2", "hand", [arr([0.0])], arr([0.5])),
        case("sigmoid_backward/hand-0", "sigmoid_backward", "sigmoid'(0) = 1/2 * 1/2 = 1/4", "hand",
             [arr([1.0]), arr([0.0])], arr([0.25])),
        case("sigmoid/seed-hidden-layer", "sigmoid",
             "Mazur's backpropagation walkthrough: net_h1 = 0.3775, net_h2 = 0.3925 give out_h = 0.593269992, "
             "0.596884378 (published to 9 decimals)", "seed",
             [arr([[0.3775, 0.3925]])], arr([[0.593269992, 0.596884378]]), tol=1e-9),
        case("sigmoid_backward/seed-output-layer", "sigmoid_backward",
             "Mazur's walkthrough: d out_o1 / d net_o1 = out_o1 (1 - out_o1) = 0.186815602 at net_o1 = 1.105905967",
             "seed", [arr([1.0]), arr([1.105905967])], arr([0.186815602]), tol=1e-9),
        case("tanh/hand-0", "tanh", "tanh(0) = 0 and tanh'(0) = 1", "hand", [arr([0.0])], arr([0.0])),
        case("tanh_backward/hand-0", "tanh_backward", "tanh'(0) = 1 - 0^2 = 1", "hand",
             [arr([2.0]), arr([0.0])], arr([2.0])),
        case("softmax/closed-form-[1,2,3]", "softmax", "e^k / (e + e^2 + e^3) for k = 1, 2, 3", "closed form",
             [arr([1.0, 2.0, 3.0])], arr(soft)),
        case("softmax/closed-form-shift-invariant", "softmax",
             "[1001, 1002, 1003] gives the softmax of [1, 2, 3]: the max is subtracted, nothing overflows",
             "closed form", [arr([1001.0, 1002.0, 1003.0])], arr(soft)),
        case("log_softmax/hand-no-underflow", "log_softmax",
             "[0, -1000]: log(1 + e^-1000) rounds to 0, so [0, -1000]; log(softmax) would give -inf", "hand",
             [arr([0.0, -1000.0])], arr([0.0, -1000.0])),
        case("softmax_backward/hand-uniform-grad", "softmax_backward",
             "a grad_out equal along the line gives 0: softmax is invariant to adding a constant", "hand",
             [arr([[5.0, 5.0, 5.0]]), arr([[0.3, -1.0, 2.0]])], arr([[0.0, 0.0, 0.0]]), tol=1e-12),
    ]


def error_cases() -> list[dict]:
    x = arr([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    return [
        case("relu/error-int-input", "relu", "an integer array is not accepted", "hand",
             [arr([1, 2, 3], dtype=np.int64)], raises="TypeError", match="dtype"),
        case("sigmoid/error-not-an-array", "sigmoid", "a list (tuple) is not an array", "hand",
             [[1.0, 2.0]], raises="TypeError", match="numpy.ndarray"),
        case("softmax/error-dim-out-of-range", "softmax", "dim = 2 of a 2-d array", "hand",
             [x], kwargs={"dim": 2}, raises="ValueError", match="dim"),
        case("log_softmax/error-dim-negative-out-of-range", "log_softmax", "dim = -3 of a 2-d array", "hand",
             [x], kwargs={"dim": -3}, raises="ValueError", match="dim"),
        case("relu_backward/error-shape-mismatch", "relu_backward", "grad_out (3,) for x (2, 3)", "hand",
             [arr([1.0, 1.0, 1.0]), x], raises="ValueError", match="grad_out"),
        case("leaky_relu/error-slope-not-a-number", "leaky_relu", "negative_slope = 'a'", "hand",
             [x], kwargs={"negative_slope": "a"}, raises="TypeError", match="negative_slope"),
    ]


def main() -> None:
    cases = hand_cases()
    shapes = {"relu": (2, 3), "leaky_relu": (2, 3), "elu": (2, 3), "sigmoid": (2, 3), "tanh": (3,),
              "softmax": (2, 3, 2), "log_softmax": (3, 2)}
    for op, (fn, kwargs) in TORCH_OPS.items():
        cases += torch_forward_and_backward(op, fn, kwargs, shapes[op])
    # default dim (last axis) on a 3-d array, against PyTorch's explicit dim=-1
    cases += [dict(c, name=c["name"] + "-dim-last") for c in
              torch_forward_and_backward("softmax", lambda x: F.softmax(x, dim=-1), {}, (2, 2, 3))]
    cases += [dict(c, name=c["name"] + "-dim-last") for c in
              torch_forward_and_backward("log_softmax", lambda x: F.log_softmax(x, dim=-1), {}, (2, 4))]
    cases += error_cases()
    write_cases("activations", cases)


if __name__ == "__main__":
    main()
