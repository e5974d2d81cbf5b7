"""Write specs/cases/losses.json: the conformance cases of the losses family.

Expected values come from worked examples (source "hand"/"seed"), from formulas evaluated here with the
math module ("closed form"), or from PyTorch in float64 ("torch 2.13.0"; half_squared_error is PyTorch's
sum-reduced mse_loss / 2). This script never imports the engines. Re-run it from the repository root:

    .venv/bin/python specs/cases/generators/losses.py
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from _common import array as arr, case, torch_source, write_cases

TORCH = torch_source()
rng = np.random.default_rng(13)


def values(*shape) -> np.ndarray:
    return np.round(rng.uniform(-2, 2, size=shape), 3)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def upstream(reduction, n_shape):
    """A grad_out for the loss's output: a number for 'mean'/'sum', an array for 'none'."""
    if reduction == "none":
        g = np.round(rng.standard_normal(n_shape), 3)
        return arr(g), t64(g)
    g = 0.75
    return g, torch.tensor(g, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------------


def hand_cases() -> list[dict]:
    logp = arr([[-1.0, -2.0], [-3.0, -4.0]])
    labels = arr([1, 0], dtype=np.int64)
    return [
        case("cross_entropy/closed-form-uniform-logits", "cross_entropy",
             "equal logits over C = 4 classes: every sample loses log 4", "closed form",
             [arr(np.zeros((2, 4))), arr([0, 3], dtype=np.int64)], arr(math.log(4.0))),
        case("cross_entropy_backward/hand-uniform-sum", "cross_entropy_backward",
             "equal logits, C = 2, sum: grad = softmax - onehot = [-1/2, 1/2]", "hand",
             [1.0, arr([[0.0, 0.0]]), arr([0], dtype=np.int64)], arr([[-0.5, 0.5]]), kwargs={"reduction": "sum"}),
        case("nll_loss/hand-mean", "nll_loss", "-(-2) and -(-3), mean 2.5", "hand", [logp, labels], arr(2.5)),
        case("nll_loss/hand-weighted-mean", "nll_loss",
             "weights [1, 3]: (3*2 + 1*3) / (3 + 1) = 2.25: the mean divides by the summed target weights",
             "hand", [logp, labels, arr([1.0, 3.0])], arr(2.25)),
        case("nll_loss/hand-ignore-index", "nll_loss", "label 0 ignored (ignore_index=0): only sample 0 counts, "
             "mean = 2 / 1", "hand", [logp, labels], arr(2.0), kwargs={"ignore_index": 0}),
        case("nll_loss/hand-all-ignored-mean-is-nan", "nll_loss",
             "every sample ignored: 'mean' is 0 / 0 = nan (as in PyTorch)", "hand",
             [logp, arr([-100, -100], dtype=np.int64)], arr(math.nan)),
        case("cross_entropy/hand-all-ignored-sum-is-0", "cross_entropy", "every sample ignored: 'sum' is 0",
             "hand", [logp, arr([-100, -100], dtype=np.int64)], arr(0.0), kwargs={"reduction": "sum"}),
        case("half_squared_error/seed-total-error", "half_squared_error",
             "Mazur's backpropagation walkthrough: outputs 0.75136507, 0.772928465 against targets 0.01, 0.99 "
             "give E_total = 0.274811083 + 0.023560026 = 0.298371109 (published to 9 decimals)", "seed",
             [arr([0.75136507, 0.772928465]), arr([0.01, 0.99])], arr(0.298371109), tol=1e-9),
        case("half_squared_error/seed-per-output", "half_squared_error",
             "Mazur's walkthrough: E_o1 = 0.274811083, E_o2 = 0.023560026", "seed",
             [arr([0.75136507, 0.772928465]), arr([0.01, 0.99])], arr([0.274811083, 0.023560026]),
             kwargs={"reduction": "none"}, tol=1e-9),
        case("half_squared_error_backward/seed-dE-dout", "half_squared_error_backward",
             "Mazur's walkthrough: dE/dout_o1 = out_o1 - target_o1 = 0.74136507; dE/dtarget is its negative",
             "seed", [1.0, arr([0.75136507, 0.772928465]), arr([0.01, 0.99])],
             [arr([0.74136507, 0.772928465 - 0.99]), arr([-0.74136507, 0.99 - 0.772928465])], tol=1e-9),
        case("mse_loss/hand-mean", "mse_loss", "errors 1 and 3: (1 + 9) / 2 = 5", "hand",
             [arr([1.0, 3.0]), arr([0.0, 0.0])], arr(5.0)),
    ]


def torch_class_cases() -> list[dict]:
    cases = []
    n, c = 4, 3
    weight = np.round(rng.uniform(0.2, 2.0, size=c), 3)
    variants = [
        ("mean", {}),
        ("sum", {}),
        ("none", {}),
        ("mean-weight-ignore", {"weight": True, "ignore_index": 1}),
        ("none-weight-smoothing", {"weight": True, "label_smoothing": 0.2}),
        ("mean-weight-ignore-smoothing", {"weight": True, "ignore_index": -100, "label_smoothing": 0.3,
                                          "ignored_sample": True}),
        ("sum-smoothing-ignore", {"label_smoothing": 0.1, "ignored_sample": True}),
    ]
    for label, opts in variants:
        reduction = label.split("-")[0]
        x = values(n, c)
        target = rng.integers(0, c, size=n)
        if opts.get("ignored_sample"):
            target[2] = -100
        kwargs = {"reduction": reduction}
        for key in ("ignore_index", "label_smoothing"):
            if key in opts:
                kwargs[key] = opts[key]
        args = [arr(x), arr(target, dtype=np.int64)] + ([arr(weight)] if opts.get("weight") else [])
        for op, fn in (("cross_entropy", F.cross_entropy), ("nll_loss", F.nll_loss)):
            if op == "nll_loss":
                if "label_smoothing" in kwargs:
                    continue
                # nll_loss takes log-probabilities: feed it PyTorch's log_softmax of the same logits
                x_in = F.log_softmax(t64(x), dim=1).numpy()
                args = [arr(x_in)] + args[1:]
            else:
                x_in = x
            xt = t64(x_in, True)
            wt = t64(weight) if opts.get("weight") else None
            loss = fn(xt, torch.tensor(target), wt, **kwargs)
            g_json, g_t = upstream(reduction, (n,))
            loss.backward(g_t)
            what = ", ".join(f"{k}={v}" for k, v in kwargs.items()) + (", class weights" if wt is not None else "")
            if opts.get("ignored_sample"):
                what += ", sample 2 ignored"
            cases.append(case(f"{op}/torch-{label}", op, f"{op} of a random (4, 3) batch: {what}", TORCH,
                              args, arr(loss.detach().numpy()), kwargs=kwargs))
            cases.append(case(f"{op}_backward/torch-{label}", f"{op}_backward",
                              f"gradient of {op}: {what}", TORCH, [g_json] + args, arr(xt.grad.numpy()),
                              kwargs=kwargs))
    return cases


def torch_pointwise_cases() -> list[dict]:
    cases = []
    for reduction in ("mean", "sum", "none"):
        x, t = values(2, 3), values(2, 3)
        for op in ("mse_loss", "half_squared_error"):
            xt, tt = t64(x, True), t64(t, True)
            if op == "mse_loss":
                loss = F.mse_loss(xt, tt, reduction=reduction)
            else:  # half_squared_error is not in PyTorch: it is half of mse_loss with the same reduction
                loss = 0.5 * F.mse_loss(xt, tt, reduction=reduction)
            g_json, g_t = upstream(reduction, (2, 3))
            loss.backward(g_t)
            kwargs = {"reduction": reduction}
            cases.append(case(f"{op}/torch-2x3-{reduction}", op, f"{op} of random (2, 3) arrays, {reduction}",
                              TORCH, [arr(x), arr(t)], arr(loss.detach().numpy()), kwargs=kwargs))
            cases.append(case(f"{op}_backward/torch-2x3-{reduction}", f"{op}_backward",
                              f"(grad_input, grad_target) of {op}, {reduction}", TORCH,
                              [g_json, arr(x), arr(t)], [arr(xt.grad.numpy()), arr(tt.grad.numpy())],
                              kwargs=kwargs))
    return cases


def error_cases() -> list[dict]:
    x = arr(np.zeros((2, 3)))
    labels = arr([0, 2], dtype=np.int64)
    return [
        case("cross_entropy/error-float-target", "cross_entropy", "class labels must be integers", "hand",
             [x, arr([0.0, 2.0])], raises="TypeError", match="target"),
        case("cross_entropy/error-label-out-of-range", "cross_entropy", "label 5 with C = 3", "hand",
             [x, arr([0, 5], dtype=np.int64)], raises="ValueError", match="label 5"),
        case("cross_entropy/error-negative-label", "cross_entropy", "label -1 is not ignore_index (-100)", "hand",
             [x, arr([-1, 0], dtype=np.int64)], raises="ValueError", match="label -1"),
        case("cross_entropy/error-bad-reduction", "cross_entropy", "reduction 'avg'", "hand",
             [x, labels], kwargs={"reduction": "avg"}, raises="ValueError", match="reduction"),
        case("cross_entropy/error-label-smoothing-above-1", "cross_entropy", "label_smoothing 1.5", "hand",
             [x, labels], kwargs={"label_smoothing": 1.5}, raises="ValueError", match="label_smoothing"),
        case("cross_entropy/error-weight-shape", "cross_entropy", "weight (2,) for C = 3", "hand",
             [x, labels, arr([1.0, 1.0])], raises="ValueError", match="weight"),
        case("nll_loss/error-target-length", "nll_loss", "target (3,) for N = 2", "hand",
             [x, arr([0, 1, 2], dtype=np.int64)], raises="ValueError", match="target"),
        case("nll_loss_backward/error-grad-out-shape", "nll_loss_backward",
             "reduction 'none' needs grad_out (N,) = (2,)", "hand",
             [arr([1.0, 1.0, 1.0]), x, labels], kwargs={"reduction": "none"}, raises="ValueError", match="grad_out"),
        case("mse_loss/error-shape-mismatch", "mse_loss", "input (2, 3) against target (3,): no broadcasting",
             "hand", [x, arr([0.0, 0.0, 0.0])], raises="ValueError", match="target.shape=(3,)"),
        case("half_squared_error/error-bad-reduction", "half_squared_error", "reduction 'total'", "hand",
             [x, x], kwargs={"reduction": "total"}, raises="ValueError", match="reduction"),
    ]


def main() -> None:
    cases = hand_cases() + torch_class_cases() + torch_pointwise_cases() + error_cases()
    write_cases("losses", cases)


if __name__ == "__main__":
    main()
