"""Write specs/cases/conv.json: the conformance cases of the convolution family (specs/conv.md).

Run from the repository root:  python specs/cases/generators/conv.py

Expected values come from two independent places, never from the engines under test:

* "seed" / "hand": the worked examples of specs/conv.md, typed in here as literal numbers; the script also
  checks each against PyTorch, so a typo in a hand-worked number stops the script.
* "torch 2.13.0": PyTorch in float64. PyTorch's conv takes only symmetric zero padding, so every other
  padding amount or fill is applied first with F.pad and the convolution then runs unpadded; 'same' amounts
  come from the small integer formula `same_pads` below (specs/shapes-and-padding.md, section 3).
  PyTorch's transposed convolution crops symmetrically, so per-side crops are done here on the uncropped
  output.

Imports only torch, numpy, the standard library and the shared helpers of _common.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from _common import array as arr, case, torch_source, write_cases

TORCH = torch_source()
RNG = np.random.default_rng(2026)

# F.pad's names for the fills of specs/shapes-and-padding.md section 4.
TORCH_PAD_MODE = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect", "circular": "circular"}


# --- values ------------------------------------------------------------------------------------------


def small(*shape) -> np.ndarray:
    """Values in quarters between -2 and 2: exact in binary, short in JSON."""
    return RNG.integers(-8, 9, size=shape) / 4.0


def encode(value):
    """Arguments as JSON: arrays anywhere inside tuples and lists become array values."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return arr(value)
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    return value


# --- the oracle --------------------------------------------------------------------------------------


def same_pads(n: int, k: int, s: int, d: int, lower: bool) -> tuple[int, int]:
    """'same' / 'same_lower' along one axis: output ceil(n/s), odd extra cell at the end / beginning."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    small_half, big_half = total // 2, total - total // 2
    return (big_half, small_half) if lower else (small_half, big_half)


def per_axis(value, rank):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def side_pairs(padding, sizes, kernel, stride, dilation):
    """Every padding form as one (begin, end) pair per axis."""
    rank = len(sizes)
    if padding == "valid":
        return [(0, 0)] * rank
    if padding in ("same", "same_lower"):
        return [same_pads(sizes[i], kernel[i], stride[i], dilation[i], padding == "same_lower") for i in range(rank)]
    return [tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in per_axis(padding, rank)]


def torch_conv(x, w, b, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", grad_out=None):
    """Forward (grad_out None) or (grad_x, grad_w, grad_b) of conv1d/conv2d through F.pad + F.convNd."""
    rank = x.ndim - 2
    stride, dilation = per_axis(stride, rank), per_axis(dilation, rank)
    pairs = side_pairs(padding, x.shape[2:], w.shape[2:], stride, dilation)
    flat = [v for pair in reversed(pairs) for v in pair]  # F.pad starts with the last axis
    X = torch.tensor(x, requires_grad=True)
    W = torch.tensor(w, requires_grad=True)
    B = None if b is None else torch.tensor(b, requires_grad=True)
    conv = F.conv1d if rank == 1 else F.conv2d
    Y = conv(F.pad(X, flat, mode=TORCH_PAD_MODE[padding_mode]), W, B, stride=stride, dilation=dilation, groups=groups)
    if grad_out is None:
        return Y.detach().numpy()
    Y.backward(torch.tensor(grad_out))
    return X.grad.numpy(), W.grad.numpy(), None if B is None else B.grad.numpy()


def torch_conv_transpose(x, w, b, stride=1, padding=0, output_padding=0, groups=1, dilation=1, grad_out=None):
    """Forward or gradients of conv_transpose1d/2d: PyTorch's uncropped output, then the per-side crop."""
    rank = x.ndim - 2
    stride, dilation = per_axis(stride, rank), per_axis(dilation, rank)
    output_padding = per_axis(output_padding, rank)
    pairs = side_pairs(padding, x.shape[2:], w.shape[2:], stride, dilation)
    X = torch.tensor(x, requires_grad=True)
    W = torch.tensor(w, requires_grad=True)
    B = None if b is None else torch.tensor(b, requires_grad=True)
    conv_t = F.conv_transpose1d if rank == 1 else F.conv_transpose2d
    full = conv_t(X, W, None, stride=stride, groups=groups, dilation=dilation)
    # output size (n-1)s - p_b - p_e + d(k-1) + output_padding + 1: crop p_b at the start, then keep
    # that many cells, past the end of `full` only when output_padding exceeds p_e (those hold zeros).
    for axis, ((begin, end), extra) in enumerate(zip(pairs, output_padding), start=2):
        size = full.shape[axis]
        keep = size - begin - end + extra
        full = full.narrow(axis, min(begin, size), max(0, min(keep, size - begin)))
        full = F.pad(full, [0, 0] * (x.ndim - axis - 1) + [0, keep - full.shape[axis]])
    Y = full if B is None else full + B.reshape((1, -1) + (1,) * rank)
    if grad_out is None:
        return Y.detach().numpy()
    Y.backward(torch.tensor(grad_out))
    return X.grad.numpy(), W.grad.numpy(), None if B is None else B.grad.numpy()


# --- cases -------------------------------------------------------------------------------------------

CASES: list[dict] = []


def add(name, op, doc, source, args, kwargs=None, expected=None, raises=None, match=None):
    """Append a case, taking NumPy arrays (not yet encoded) in args, kwargs and expected."""
    kwargs = kwargs and {k: encode(v) for k, v in kwargs.items()}
    CASES.append(case(name, op, doc, source, [encode(a) for a in args], encode(expected), kwargs=kwargs,
                      raises=raises, match=match))


def torch_forward_case(name, op, doc, x, w, b=None, **kwargs):
    transposed = op.startswith("conv_transpose")
    y = (torch_conv_transpose if transposed else torch_conv)(x, w, b, **kwargs)
    add(name, op, doc, TORCH, [x, w, b], kwargs, expected=y)


def torch_backward_case(name, op, doc, x, w, b=None, **kwargs):
    transposed = op.startswith("conv_transpose")
    oracle = torch_conv_transpose if transposed else torch_conv
    y = oracle(x, w, b, **kwargs)
    grad_out = small(*y.shape)
    grads = oracle(x, w, b, grad_out=grad_out, **kwargs)
    add(name, op + "_backward", doc, TORCH, [grad_out, x, w, b], kwargs, expected=list(grads))


def hand_case(name, doc, source, x, w, b, expected, **kwargs):
    """A worked example; PyTorch must agree with the typed-in numbers."""
    expected = np.asarray(expected, dtype=np.float64)
    oracle = torch_conv(x, w, b, **kwargs)
    assert np.array_equal(oracle, expected), f"{name}: torch gives\n{oracle}\nnot\n{expected}"
    add(name, "conv2d", doc, source, [x, w, b], kwargs, expected=expected)


def hand_1d_cases():
    """The 1-D worked examples of conv.md: a gradient through 'replicate' and a transposed overlap."""
    x, w, b = np.array([[[1.0, 2.0, 3.0]]]), np.array([[[1.0, -1.0]]]), np.array([0.5])
    grad_out = np.ones((1, 1, 4))
    expected = ([[[1.0, 0.0, -1.0]]], [[[7.0, 9.0]]], [4.0])
    oracle = torch_conv(x, w, b, padding=1, padding_mode="replicate", grad_out=grad_out)
    for got, want in zip(oracle, expected):
        assert np.array_equal(got, want), f"conv1d_backward/hand-replicate: torch gives {oracle}"
    add("conv1d_backward/hand-replicate", "conv1d_backward",
        "x = [1, 2, 3], w = [1, -1], padding 1 'replicate', grad_out ones: the padded cells copy x[0] and "
        "x[2] and hand their gradient back to them (worked in conv.md)", "hand",
        [grad_out, x, w, b], {"padding": 1, "padding_mode": "replicate"}, expected=[np.array(e) for e in expected])

    x, w = np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]])
    expected = np.array([[[1.0, 1.0, 3.0, 2.0, 2.0]]])
    oracle = torch_conv_transpose(x, w, None, stride=2)
    assert np.array_equal(oracle, expected), f"conv_transpose1d/hand-stride2-overlap: torch gives {oracle}"
    add("conv_transpose1d/hand-stride2-overlap", "conv_transpose1d",
        "x = [1, 2], w = [1, 1, 1], stride 2: x[0] lands on 0..2, x[1] on 2..4, they overlap at 2: "
        "[1, 1, 3, 2, 2] (worked in conv.md)", "hand", [x, w, None], {"stride": 2}, expected=expected)


def seed_cases():
    image = np.zeros((1, 1, 6, 6))
    image[..., 3:] = 255.0
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64).reshape(1, 1, 3, 3)
    hand_case("conv2d/seed-sobel-6x6",
              "6x6 image, left 3 columns 0 and right 3 columns 255, vertical Sobel kernel: the two middle "
              "output columns are 1*(0-255) + 2*(0-255) + 1*(0-255) = -1020, the outer ones 0",
              "seed", image, sobel, None, [[[[0, -1020, -1020, 0]] * 4]])

    picture = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
                       dtype=np.float64).reshape(1, 1, 5, 5)
    x_kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64).reshape(1, 1, 3, 3)
    hand_case("conv2d/seed-5x5-x-kernel",
              "the classic 5x5 binary image and 3x3 'X' kernel: each output counts the ones under the X",
              "seed", picture, x_kernel, None, [[[[4, 3, 4], [2, 4, 3], [2, 3, 4]]]])

    rgb = np.array([[[1, 2, 0], [0, 1, 3], [2, 1, 0]],
                    [[0, 1, 1], [1, 0, 2], [1, 1, 1]],
                    [[2, 0, 1], [1, 1, 0], [0, 2, 1]]], dtype=np.float64).reshape(1, 3, 3, 3)
    rgb_kernel = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[1, 1], [0, 0]]],
                          dtype=np.float64).reshape(1, 3, 2, 2)
    hand_case("conv2d/seed-rgb",
              "(3,3,3) RGB image * (2,2,3) kernel + bias 1 -> 2x2 = N-K+1: the three channel maps "
              "[[2,5],[1,1]] + [[2,1],[1,3]] + [[2,1],[2,1]] + 1 (worked in conv.md)",
              "hand", rgb, rgb_kernel, np.array([1.0]), [[[[7, 8], [5, 6]]]])

    ones_image, ones_kernel = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    hand_case("conv2d/seed-same-5x5",
              "'same' padding keeps 5x5 with a 3x3 kernel; with ones everywhere each output counts the "
              "input cells under its window: 4 at corners, 6 on edges, 9 inside",
              "seed", ones_image, ones_kernel, None,
              [[[[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]]]],
              padding="same")
    hand_case("conv2d/seed-valid-5x5", "'valid' padding of 5x5 with a 3x3 kernel gives 3x3 (5 - 3 + 1)",
              "seed", ones_image, ones_kernel, None, [[[[9, 9, 9]] * 3]], padding="valid")


def fill_cases():
    x, w = small(1, 2, 4, 5), small(2, 2, 3, 3)
    for mode in ("zeros", "replicate", "reflect", "circular"):
        torch_forward_case(f"conv2d/padding-{mode}", "conv2d",
                           f"padding 1 (PH = PW = 1) filled by '{mode}'", x, w, small(2),
                           padding=1, padding_mode=mode)
    x, w = small(1, 1, 4, 4), small(1, 1, 2, 3)
    torch_forward_case("conv2d/per-side-zeros", "conv2d",
                       "per-side padding ((top 1, bottom 0), (left 0, right 2)) with zeros", x, w,
                       padding=[[1, 0], [0, 2]])
    torch_forward_case("conv2d/per-side-reflect", "conv2d",
                       "per-side padding ((0, 2), (3, 1)) filled by 'reflect'", x, w,
                       padding=[[0, 2], [3, 1]], padding_mode="reflect")
    torch_forward_case("conv2d/per-side-circular-stride2", "conv2d",
                       "per-side padding ((2, 1), (1, 0)), 'circular' fill, stride 2", small(1, 2, 5, 4),
                       small(3, 2, 3, 2), small(3), stride=2, padding=[[2, 1], [1, 0]], padding_mode="circular")


def geometry_cases():
    torch_forward_case("conv2d/stride2-bias", "conv2d", "stride 2, padding 1, bias: 5x5 -> 3x3",
                       small(2, 1, 5, 5), small(2, 1, 3, 3), small(2), stride=2, padding=1)
    torch_forward_case("conv2d/same-stride2-even-kernel", "conv2d",
                       "'same' with stride 2 and a 2x4 kernel on 5x6: output ceil(5/2) x ceil(6/2) = 3x3; pads "
                       "H (0, 1), W (1, 1) (odd extra cell at the end)",
                       small(1, 1, 5, 6), small(1, 1, 2, 4), stride=2, padding="same")
    torch_forward_case("conv2d/same-lower-even-kernel", "conv2d",
                       "'same_lower' with a 2x2 kernel on 3x4: pads (1, 0) on both axes, output 3x4",
                       small(1, 1, 3, 4), small(1, 1, 2, 2), padding="same_lower")
    torch_forward_case("conv2d/same-replicate-dilation2", "conv2d",
                       "'same' with dilation 2 (extent 5) filled by 'replicate': pads (2, 2), output 4x4",
                       small(1, 1, 4, 4), small(1, 1, 3, 3), dilation=2, padding="same", padding_mode="replicate")
    torch_forward_case("conv2d/dilation2", "conv2d", "dilation 2: a 2x2 kernel spans 3x3 cells; 4x5 -> 2x3",
                       small(1, 2, 4, 5), small(1, 2, 2, 2), dilation=2)
    torch_forward_case("conv2d/per-axis-hyperparameters", "conv2d",
                       "stride (2, 1), padding (1, 2), dilation (1, 2) given per axis",
                       small(1, 1, 5, 4), small(2, 1, 3, 2), small(2), stride=[2, 1], padding=[1, 2],
                       dilation=[1, 2])
    torch_forward_case("conv2d/groups2", "conv2d",
                       "groups 2: outputs 0-1 read inputs 0-1, outputs 2-3 read inputs 2-3",
                       small(1, 4, 3, 3), small(4, 2, 2, 2), small(4), groups=2)
    torch_forward_case("conv2d/depthwise-multiplier2", "conv2d",
                       "depthwise: groups = C_in = 2, two filters per input channel (C_out = 4)",
                       small(1, 2, 4, 4), small(4, 1, 3, 3), groups=2, padding=1)
    torch_forward_case("conv1d/bias-stride2-padding1", "conv1d", "conv1d with bias, stride 2, padding 1: L 7 -> 4",
                       small(2, 2, 7), small(3, 2, 3), small(3), stride=2, padding=1)
    torch_forward_case("conv1d/same-stride2-even-kernel", "conv1d",
                       "conv1d 'same' with stride 2 and K = 4 on L = 7: pads (1, 2), L_out = 4",
                       small(1, 1, 7), small(2, 1, 4), stride=2, padding="same")
    torch_forward_case("conv1d/reflect-per-side-groups-dilation", "conv1d",
                       "conv1d padding ((2, 1),) filled by 'reflect', groups 2, dilation 2",
                       small(1, 2, 6), small(2, 1, 2), padding=[[2, 1]], groups=2, dilation=2,
                       padding_mode="reflect")
    torch_forward_case("conv_transpose2d/stride2-output-padding", "conv_transpose2d",
                       "stride 2, padding 1, output_padding 1: 3x3 -> (3-1)*2 - 2 + 2 + 1 + 1 = 6x6",
                       small(1, 2, 3, 3), small(2, 1, 3, 3), small(1), stride=2, padding=1, output_padding=1)
    torch_forward_case("conv_transpose2d/groups-dilation", "conv_transpose2d",
                       "groups 2, dilation (1, 2), stride (1, 2), padding (0, 1)",
                       small(1, 2, 2, 3), small(2, 2, 2, 2), small(4), stride=[1, 2], padding=[0, 1], groups=2,
                       dilation=[1, 2])
    torch_forward_case("conv_transpose2d/per-side-padding", "conv_transpose2d",
                       "per-side crop ((1, 0), (0, 2)) with stride 2 and output_padding (0, 1)",
                       small(1, 1, 2, 3), small(1, 2, 3, 3), stride=2, padding=[[1, 0], [0, 2]],
                       output_padding=[0, 1])
    torch_forward_case("conv_transpose1d/stride3-output-padding2", "conv_transpose1d",
                       "stride 3, padding 1, output_padding 2: L 4 -> (4-1)*3 - 2 + 2 + 2 + 1 = 12",
                       small(2, 2, 4), small(2, 3, 3), small(3), stride=3, padding=1, output_padding=2)


def backward_cases():
    torch_backward_case("conv2d_backward/stride2-padding1-bias", "conv2d",
                        "gradients of x, weight and bias for stride 2, padding 1",
                        small(2, 2, 4, 4), small(2, 2, 3, 3), small(2), stride=2, padding=1)
    torch_backward_case("conv2d_backward/replicate-groups2", "conv2d",
                        "'replicate' fill: a border cell collects the gradient of the padded cells that copy it",
                        small(1, 2, 3, 4), small(4, 1, 2, 2), small(4), padding=1, groups=2,
                        padding_mode="replicate")
    torch_backward_case("conv2d_backward/circular-per-side-no-bias", "conv2d",
                        "'circular' per-side padding ((1, 0), (2, 1)); no bias, so grad_bias is null",
                        small(1, 1, 3, 3), small(2, 1, 2, 3), None, padding=[[1, 0], [2, 1]],
                        padding_mode="circular")
    torch_backward_case("conv2d_backward/reflect-same-stride2-dilation", "conv2d",
                        "'reflect' fill with 'same' amounts, stride 2, dilation (2, 1)",
                        small(1, 1, 5, 5), small(1, 1, 2, 3), small(1), stride=2, padding="same",
                        dilation=[2, 1], padding_mode="reflect")
    torch_backward_case("conv1d_backward/reflect-dilation2", "conv1d",
                        "conv1d gradients with 'reflect' padding 2 and dilation 2",
                        small(2, 1, 5), small(2, 1, 3), small(2), padding=2, dilation=2, padding_mode="reflect")
    torch_backward_case("conv_transpose2d_backward/stride2-output-padding", "conv_transpose2d",
                        "transposed gradients, stride 2, padding 1, output_padding 1",
                        small(1, 2, 2, 3), small(2, 2, 3, 2), small(2), stride=2, padding=1, output_padding=1)
    torch_backward_case("conv_transpose1d_backward/groups2-per-side", "conv_transpose1d",
                        "transposed 1-D gradients with groups 2 and per-side crop ((0, 2),)",
                        small(1, 4, 3), small(4, 1, 3), small(2), stride=2, padding=[[0, 2]], groups=2)


def error_cases():
    x, w = small(1, 2, 4, 4), small(1, 2, 3, 3)
    add("conv2d/error-wrong-channels", "conv2d",
        "weight expects 3 input channels per group but x has C_in = 2", "hand",
        [x, small(1, 3, 3, 3)], raises="ValueError", match="weight.shape=(1, 3, 3, 3)")
    add("conv2d/error-groups-not-dividing", "conv2d", "groups 2 does not divide C_out = 3", "hand",
        [small(1, 2, 4, 4), small(3, 1, 3, 3)], {"groups": 2}, raises="ValueError", match="groups")
    add("conv2d/error-kernel-larger-than-padded-input", "conv2d",
        "a 3x3 window does not fit a 4x2 input with padding 0: an error, not an empty output", "hand",
        [small(1, 2, 4, 2), w], raises="ValueError", match="axis W")
    add("conv2d/error-bad-padding-mode", "conv2d", "padding_mode 'edge' is not one of the four fills", "hand",
        [x, w], {"padding": 1, "padding_mode": "edge"}, raises="ValueError", match="padding_mode")
    add("conv2d/error-int-dtype", "conv2d", "an integer x is a TypeError", "hand",
        [arr(np.ones((1, 2, 4, 4), dtype=np.int64), "int64"), w], raises="TypeError", match="dtype")
    add("conv2d/error-stride-zero", "conv2d", "stride 0 is not a positive int", "hand",
        [x, w], {"stride": 0}, raises="ValueError", match="stride")
    add("conv1d/error-bias-shape", "conv1d", "bias must have shape (C_out,) = (2,)", "hand",
        [small(1, 1, 5), small(2, 1, 3), small(3)], raises="ValueError", match="bias")
    add("conv_transpose2d/error-same-padding", "conv_transpose2d",
        "'same' is refused for a transposed convolution", "hand",
        [small(1, 1, 3, 3), small(1, 1, 3, 3)], {"padding": "same"}, raises="ValueError", match="padding")
    add("conv_transpose2d/error-output-padding-too-large", "conv_transpose2d",
        "output_padding 2 is not smaller than stride 2 or dilation 1", "hand",
        [small(1, 1, 3, 3), small(1, 1, 3, 3)], {"stride": 2, "output_padding": 2}, raises="ValueError",
        match="output_padding")


def main():
    torch.set_default_dtype(torch.float64)
    seed_cases()
    hand_1d_cases()
    fill_cases()
    geometry_cases()
    backward_cases()
    error_cases()
    write_cases("conv", CASES, one_line_lists=True)


if __name__ == "__main__":
    main()
