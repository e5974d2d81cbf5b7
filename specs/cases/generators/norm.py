"""Write specs/cases/norm.json: the conformance cases of batch normalisation (specs/norm.md).

Run from anywhere: ``python specs/cases/generators/norm.py``. Needs PyTorch (2.13.0 was used) and NumPy;
never imports the engines under test.

* "hand": the working is in the case's ``doc``; the generator checks each against PyTorch too.
* "torch 2.13.0": ``torch.nn.functional.batch_norm`` in float64, gradients by autograd; running statistics
  after the call come from the tensors PyTorch updated in place.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from _common import array, case, torch_source, write_cases

TORCH = torch_source()
CASES: list[dict] = []
TOL = (1e-12, 1e-10)  # (atol, rtol) of every expected value

# Arrays or tensors, None for a missing weight, bias or running statistic; whole floats written as ints.
arr = partial(array, whole_as_int=True)


def t(values) -> torch.Tensor | None:
    return None if values is None else torch.tensor(np.asarray(values, dtype=np.float64))


def add(name, op, doc, args, kwargs=None, *, expected=None, raises=None, match=None, source=TORCH, **extra):
    """Append a case to CASES; PyTorch's unless another source is given, with the tolerance TOL."""
    CASES.append(case(name, op, doc, source, args, expected, kwargs=kwargs, raises=raises, match=match, tol=TOL,
                      **extra))


def sample(shape, seed: int, low=-2.0, high=2.0) -> np.ndarray:
    """Inputs rounded to 3 decimals so the JSON stays readable; the outputs are not rounded."""
    return np.round(np.random.default_rng(seed).uniform(low, high, size=shape), 3)


def torch_forward(x, rm, rv, w, b, training, momentum=0.1, eps=1e-5):
    """PyTorch's output and the running statistics after the call."""
    rm_t, rv_t = t(rm), t(rv)
    y = F.batch_norm(t(x), rm_t, rv_t, t(w), t(b), training=training, momentum=momentum, eps=eps)
    return y, rm_t, rv_t


def torch_backward(g, x, rm, rv, w, b, training, momentum=0.1, eps=1e-5):
    xt = t(x).requires_grad_(True)
    wt = None if w is None else t(w).requires_grad_(True)
    bt = None if b is None else t(b).requires_grad_(True)
    y = F.batch_norm(xt, t(rm), t(rv), wt, bt, training=training, momentum=momentum, eps=eps)
    y.backward(t(g))
    return [arr(xt.grad), None if wt is None else arr(wt.grad), None if bt is None else arr(bt.grad)]


def forward_case(name, doc, x, rm, rv, w=None, b=None, training=False, momentum=0.1, eps=1e-5):
    y, rm_after, rv_after = torch_forward(x, rm, rv, w, b, training, momentum, eps)
    kwargs = {"training": training}
    if momentum != 0.1:
        kwargs["momentum"] = momentum
    if eps != 1e-5:
        kwargs["eps"] = eps
    after = {} if rm is None else {"1": arr(rm_after), "2": arr(rv_after)}
    add(name, "batch_norm", doc, [arr(x), arr(rm), arr(rv), arr(w), arr(b)], kwargs, expected=arr(y),
        **({"after": after} if after else {}))


def backward_case(name, doc, x, rm, rv, w=None, b=None, training=False, momentum=0.1, eps=1e-5, seed=0):
    g = sample(x.shape, seed + 1000)
    kwargs = {"training": training, "momentum": momentum, "eps": eps}
    add(name, "batch_norm_backward", doc, [arr(g), arr(x), arr(rm), arr(rv), arr(w), arr(b)], kwargs,
        expected=torch_backward(g, x, rm, rv, w, b, training, momentum, eps),
        after={} if rm is None else {"2": arr(rm), "3": arr(rv)})


def hand_cases():
    # x = [1, 3] in one channel: mean 2, biased var 1, unbiased var 2 (m = 2); eps = 3 makes sqrt(var + eps) = 2.
    x = np.array([[1.0], [3.0]])
    y, rm_after, rv_after = torch_forward(x, [0.0], [1.0], None, None, True, momentum=0.5, eps=3.0)
    assert np.allclose(y.numpy(), [[-0.5], [0.5]]) and np.allclose(rm_after.numpy(), [1.0])
    assert np.allclose(rv_after.numpy(), [1.5])
    add("batch_norm/hand-train-two-values", "batch_norm",
        "x=[1,3], eps=3: mean 2, biased var 1 -> y=(x-2)/sqrt(1+3)=[-0.5,0.5]; running mean 0.5*0+0.5*2=1, "
        "running var 0.5*1+0.5*2=1.5 (unbiased var 2)", [arr(x), arr([0.0]), arr([1.0])],
        {"training": True, "momentum": 0.5, "eps": 3.0}, expected=arr([[-0.5], [0.5]]), source="hand",
        after={"1": arr([1.0]), "2": arr([1.5])})
    y, _, _ = torch_forward(x, [2.0], [4.0], [3.0], [10.0], False, eps=0.0)
    assert np.allclose(y.numpy(), [[8.5], [11.5]])
    add("batch_norm/hand-eval-affine", "batch_norm",
        "eval, eps=0: (x - 2) / sqrt(4) * 3 + 10 for x=[1,3] gives [-0.5, 0.5] * 3 + 10 = [8.5, 11.5]",
        [arr(x), arr([2.0]), arr([4.0]), arr([3.0]), arr([10.0])], {"training": False, "eps": 0.0},
        expected=arr([[8.5], [11.5]]), source="hand", after={"1": arr([2.0]), "2": arr([4.0])})


def torch_cases():
    c = 3
    rm, rv = sample((c,), 1, -0.5, 0.5), sample((c,), 2, 0.5, 1.5)
    w, b = sample((c,), 3, 0.5, 1.5), sample((c,), 4)
    forward_case("batch_norm/train-NC-4x3", "training on (N, C): statistics over N; running stats updated in place",
                 sample((4, c), 10), rm, rv, training=True)
    forward_case("batch_norm/train-NCL-2x3x4-affine", "training on (N, C, L) with weight and bias, momentum 0.2",
                 sample((2, c, 4), 11), rm, rv, w, b, training=True, momentum=0.2)
    forward_case("batch_norm/train-NCHW-2x3x2x2-affine", "training on (N, C, H, W): m = N*H*W = 8 per channel",
                 sample((2, c, 2, 2), 12), rm, rv, w, b, training=True)
    forward_case("batch_norm/train-N1-CHW-1x3x2x3", "N = 1 is fine in training when H*W > 1",
                 sample((1, c, 2, 3), 13), rm, rv, w, None, training=True, eps=1e-3)
    forward_case("batch_norm/train-no-running-stats", "training without running statistics (both None)",
                 sample((3, c, 2), 14), None, None, w, b, training=True)
    forward_case("batch_norm/train-momentum-0", "momentum 0 leaves the running statistics unchanged",
                 sample((2, c, 3), 15), rm, rv, training=True, momentum=0.0)
    forward_case("batch_norm/train-momentum-1", "momentum 1 replaces them by the batch mean and unbiased variance",
                 sample((2, c, 3), 16), rm, rv, training=True, momentum=1.0)
    forward_case("batch_norm/eval-NCHW-affine", "evaluation uses the running statistics and leaves them unchanged",
                 sample((2, c, 2, 2), 17), rm, rv, w, b, training=False)
    forward_case("batch_norm/eval-NC-no-affine", "evaluation on (N, C) without weight and bias",
                 sample((2, c), 18), rm, rv, training=False)
    forward_case("batch_norm/eval-N1-NC", "a single value per channel is fine in evaluation",
                 sample((1, c), 19), rm, rv, w, b, training=False)

    backward_case("batch_norm_backward/train-NC-affine", "through the batch statistics, (N, C)",
                  sample((4, c), 20), rm, rv, w, b, training=True, seed=20)
    backward_case("batch_norm_backward/train-NCL-affine", "through the batch statistics, (N, C, L)",
                  sample((2, c, 3), 21), rm, rv, w, b, training=True, seed=21)
    backward_case("batch_norm_backward/train-NCHW-affine", "through the batch statistics, (N, C, H, W)",
                  sample((2, c, 2, 2), 22), rm, rv, w, b, training=True, seed=22)
    backward_case("batch_norm_backward/train-no-affine-no-stats", "weight and bias None give None gradients",
                  sample((3, c, 2), 23), None, None, training=True, seed=23)
    backward_case("batch_norm_backward/eval-NCHW-affine", "running statistics are constants in evaluation",
                  sample((2, c, 2, 2), 24), rm, rv, w, b, training=False, seed=24)
    backward_case("batch_norm_backward/eval-NC-bias-only", "weight None (gradient None), bias given",
                  sample((2, c), 25), rm, rv, None, b, training=False, seed=25)


def error_cases():
    c = 2
    x = arr(sample((2, c, 2), 30))
    rm, rv = arr([0.0, 0.0]), arr([1.0, 1.0])
    add("batch_norm/error-one-value-per-channel", "batch_norm", "training with m = N*S = 1 (PyTorch raises too)",
        [arr(sample((1, c), 31)), rm, rv], {"training": True}, raises="ValueError", match="more than 1 value")
    add("batch_norm/error-eval-without-stats", "batch_norm", "evaluation needs the running statistics",
        [x, None, None], {"training": False}, raises="ValueError", match="running_mean")
    add("batch_norm/error-only-running-mean", "batch_norm", "running_mean and running_var come together",
        [x, rm, None], {"training": True}, raises="ValueError", match="running_var")
    add("batch_norm/error-weight-shape", "batch_norm", "weight must have shape (C,)",
        [x, rm, rv, arr([1.0, 1.0, 1.0])], raises="ValueError", match="weight")
    add("batch_norm/error-running-var-shape", "batch_norm", "running_var must have shape (C,)",
        [x, rm, arr([[1.0, 1.0]])], raises="ValueError", match="running_var")
    add("batch_norm/error-x-1d", "batch_norm", "x must be (N, C), (N, C, L) or (N, C, H, W)",
        [arr([1.0, 2.0]), rm, rv], raises="ValueError", match="`x`")
    add("batch_norm/error-x-5d", "batch_norm", "5-D input is not supported",
        [arr(np.zeros((1, c, 1, 1, 2))), rm, rv], raises="ValueError", match="`x`")
    add("batch_norm/error-momentum", "batch_norm", "momentum must lie in [0, 1]",
        [x, rm, rv], {"training": True, "momentum": 1.5}, raises="ValueError", match="momentum")
    add("batch_norm/error-eps-negative", "batch_norm", "eps must be >= 0", [x, rm, rv], {"eps": -1e-5},
        raises="ValueError", match="eps")
    add("batch_norm/error-eps-zero-training", "batch_norm", "eps must be > 0 in training (PyTorch's rule)",
        [x, rm, rv], {"training": True, "eps": 0.0}, raises="ValueError", match="eps")
    add("batch_norm/error-int-x", "batch_norm", "integer arrays are rejected",
        [arr([[1, 2], [3, 4]], "int64"), rm, rv], raises="TypeError", match="`x`")
    add("batch_norm_backward/error-grad-shape", "batch_norm_backward", "grad_out must have x's shape",
        [arr(np.zeros((2, c))), x, rm, rv], raises="ValueError", match="grad_out")


def main() -> None:
    hand_cases()
    torch_cases()
    error_cases()
    write_cases("norm", CASES)


if __name__ == "__main__":
    main()
