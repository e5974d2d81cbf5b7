"""Write specs/cases/dense.json: the conformance cases of flatten and the dense (linear) layer.

Expected values come from worked examples (source "hand"/"seed") or from PyTorch in float64
("torch 2.13.0"). This script never imports the engines. Re-run it from the repository root:

    .venv/bin/python specs/cases/generators/dense.py
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from _common import array as arr, case, torch_source, write_cases

TORCH = torch_source()
rng = np.random.default_rng(11)


def values(*shape) -> np.ndarray:
    return np.round(rng.uniform(-2, 2, size=shape), 3)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def hand_cases() -> list[dict]:
    # Mazur, "A Step by Step Backpropagation Example" (2015): inputs 0.05, 0.10; hidden layer w1..w4 =
    # 0.15, 0.20, 0.25, 0.30, b1 = 0.35; output layer w5..w8 = 0.40, 0.45, 0.50, 0.55 on the published
    # hidden outputs 0.593269992, 0.596884378. The output deltas (out - target) * out * (1 - out) are
    # 0.138498562 (published) and -0.0380982366 (from the published out_o2 = 0.772928465); the published
    # weight updates with learning rate 0.5 give dE/dw5..dw8 = 0.082167041, 0.082667628, -0.02260254,
    # -0.022740242.
    out_h = [[0.593269992, 0.596884378]]
    return [
        case("flatten/hand-2x2x2", "flatten", "(2, 2, 2) -> (2, 4), rows kept in row-major order", "hand",
             [arr(np.arange(8.0).reshape(2, 2, 2))], arr(np.arange(8.0).reshape(2, 4))),
        case("linear/hand-identity-plus-sum", "linear",
             "weight rows [1,0], [0,1], [1,1] and bias [0,0,1] map [1, 2] to [1, 2, 1+2+1]", "hand",
             [arr([[1.0, 2.0]]), arr([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), arr([0.0, 0.0, 1.0])],
             arr([[1.0, 2.0, 4.0]])),
        case("linear_backward/hand-no-bias", "linear_backward",
             "grad_out [1, 1] through weight [[1, 2], [3, 4]] at x = [5, 6]: grad_x = [4, 6], "
             "grad_weight = [[5, 6], [5, 6]], no bias gradient", "hand",
             [arr([[1.0, 1.0]]), arr([[5.0, 6.0]]), arr([[1.0, 2.0], [3.0, 4.0]])],
             [arr([[4.0, 6.0]]), arr([[5.0, 6.0], [5.0, 6.0]]), None]),
        case("linear/seed-hidden-net", "linear",
             "Mazur's walkthrough: net_h1 = 0.15*0.05 + 0.2*0.1 + 0.35 = 0.3775, net_h2 = 0.3925", "seed",
             [arr([[0.05, 0.10]]), arr([[0.15, 0.20], [0.25, 0.30]]), arr([0.35, 0.35])],
             arr([[0.3775, 0.3925]]), tol=1e-12),
        case("linear/seed-output-net", "linear",
             "Mazur's walkthrough: net_o1 = 0.4*out_h1 + 0.45*out_h2 + 0.6 = 1.105905967", "seed",
             [arr(out_h), arr([[0.40, 0.45], [0.50, 0.55]]), arr([0.60, 0.60])],
             arr([[1.105905967, 0.5 * 0.593269992 + 0.55 * 0.596884378 + 0.6]]), tol=1e-9),
        case("linear_backward/seed-output-weights", "linear_backward",
             "Mazur's walkthrough: the output deltas give dE/dw5..w8 = 0.082167041, 0.082667628, -0.02260254, "
             "-0.022740242 (from the published updates) and dE/db = the deltas", "seed",
             [arr([[0.138498562, -0.0380982366]]), arr(out_h), arr([[0.40, 0.45], [0.50, 0.55]]),
              arr([0.60, 0.60])],
             [arr([[0.4*0.138498562 - 0.5*0.0380982366, 0.45*0.138498562 - 0.55*0.0380982366]]),
              arr([[0.082167041, 0.082667628], [-0.02260254, -0.022740242]]),
              arr([0.138498562, -0.0380982366])], tol=1e-8),
    ]


def torch_linear_cases() -> list[dict]:
    cases = []
    for label, x_shape, out_f, bias in [("2x3-to-4-bias", (2, 3), 4, True), ("2x3-to-2-no-bias", (2, 3), 2, False),
                                        ("2x2x3-to-2-bias", (2, 2, 3), 2, True), ("1d-3-to-2-bias", (3,), 2, True)]:
        in_f = x_shape[-1]
        x, w = values(*x_shape), values(out_f, in_f)
        b = values(out_f) if bias else None
        g = np.round(rng.standard_normal(x_shape[:-1] + (out_f,)), 3)
        xt, wt = t64(x, True), t64(w, True)
        bt = t64(b, True) if bias else None
        y = F.linear(xt, wt, bt)
        y.backward(t64(g))
        args = [arr(x), arr(w)] + ([arr(b)] if bias else [])
        cases.append(case(f"linear/torch-{label}", "linear", f"x {x_shape}, weight ({out_f}, {in_f}), "
                          f"{'a' if bias else 'no'} bias", TORCH, args, arr(y.detach().numpy())))
        grads = [arr(xt.grad.numpy()), arr(wt.grad.numpy()), arr(bt.grad.numpy()) if bias else None]
        cases.append(case(f"linear_backward/torch-{label}", "linear_backward",
                          f"gradients of linear, x {x_shape}, weight ({out_f}, {in_f}), "
                          f"{'a bias' if bias else 'no bias (grad_bias None)'}", TORCH, [arr(g)] + args, grads))
    return cases


def torch_flatten_cases() -> list[dict]:
    cases = []
    for shape, start, end in [((2, 3, 2, 2), 1, -1), ((2, 3, 2, 2), 1, 2), ((2, 3, 2), 0, -1), ((2, 3, 2), -2, -2)]:
        x = values(*shape)
        xt = t64(x, True)
        y = torch.flatten(xt, start, end)
        g = np.round(rng.standard_normal(tuple(y.shape)), 3)
        y.backward(t64(g))
        label = f"{'x'.join(map(str, shape))}-{start}-{end}"
        kwargs = {"start_dim": start, "end_dim": end}
        cases.append(case(f"flatten/torch-{label}", "flatten", f"x {shape}: merge axes {start}..{end} into "
                          f"{tuple(y.shape)}", TORCH, [arr(x)], arr(y.detach().numpy()), kwargs=kwargs))
        cases.append(case(f"flatten_backward/torch-{label}", "flatten_backward",
                          f"grad_out {tuple(y.shape)} back to {shape}", TORCH, [arr(g), arr(x)],
                          arr(xt.grad.numpy()), kwargs=kwargs))
    return cases


def error_cases() -> list[dict]:
    x = arr([[1.0, 2.0, 3.0]])
    return [
        case("linear/error-in-features-mismatch", "linear", "x (1, 3) against weight (2, 4)", "hand",
             [x, arr(np.zeros((2, 4)))], raises="ValueError", match="weight.shape=(2, 4)"),
        case("linear/error-bias-shape", "linear", "bias (3,) for out_features 2", "hand",
             [x, arr(np.zeros((2, 3))), arr([0.0, 0.0, 0.0])], raises="ValueError", match="bias"),
        case("linear/error-int-weight", "linear", "an integer weight array", "hand",
             [x, arr(np.zeros((2, 3)), dtype=np.int64)], raises="TypeError", match="weight"),
        case("linear_backward/error-grad-out-shape", "linear_backward", "grad_out (1, 3) for an output (1, 2)",
             "hand", [x, x, arr(np.zeros((2, 3)))], raises="ValueError", match="grad_out"),
        case("flatten/error-start-after-end", "flatten", "start_dim 2 after end_dim 1", "hand",
             [arr(np.zeros((2, 2, 2)))], kwargs={"start_dim": 2, "end_dim": 1}, raises="ValueError",
             match="end_dim"),
        case("flatten/error-dim-out-of-range", "flatten", "start_dim 1 of a 1-d array (torch.nn.Flatten's "
             "default needs a batch axis)", "hand", [arr([1.0, 2.0])], raises="ValueError", match="start_dim"),
    ]


def main() -> None:
    cases = hand_cases() + torch_linear_cases() + torch_flatten_cases() + error_cases()
    write_cases("dense", cases)


if __name__ == "__main__":
    main()
