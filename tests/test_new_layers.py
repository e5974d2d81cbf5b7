"""The layers of issue 11 item 5: ChannelPad (the CIFAR ResNets' option A shortcut), ZeroPadding1D/2D,
Conv1DTranspose/Conv2DTranspose, and the option A presets' counts against a PyTorch module built here."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

import refcnn
from cnnbase import netspec
from cnnbase.netspec import (ChannelPad, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Dense, Flatten, MaxPool2D,
                             Residual, ZeroPadding1D, ZeroPadding2D)
from cnn.model import Model
from tests.gradcheck import assert_close


def layer_round_trips(layer, text):
    """The layer reads from ``text``, writes back to it, and survives JSON."""
    assert netspec.parse_spec(text) == [layer]
    assert netspec.to_spec([layer]) == text
    assert netspec.layer_from_dict(layer.to_dict()) == layer


def input_gradient_by_finite_differences(model, x, y, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = float(refcnn.cross_entropy(model.forward(x, training=True), y))
        x[idx] = old - eps
        down = float(refcnn.cross_entropy(model.forward(x, training=True), y))
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def check_model_gradients(layers, shape, classes=3):
    """Input and parameter gradients of a tiny float64 model against central differences."""
    rng = np.random.default_rng(5)
    model = Model(layers, shape, engine="refcnn", seed=2, dtype="float64")
    x = rng.normal(size=(2,) + shape)
    y = np.arange(2) % classes
    grad_x = model.backward(refcnn.cross_entropy_backward(1.0, model.forward(x, training=True), y))
    analytic = {key: layer.grads[name].copy() for key, layer, name in model.parameters()}
    assert_close(grad_x, input_gradient_by_finite_differences(model, x, y), atol=1e-7, rtol=1e-6, what="grad x")
    for key, layer, name in model.parameters():
        param = layer.params[name]
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + 1e-6
            up = float(refcnn.cross_entropy(model.forward(x, training=True), y))
            param[idx] = old - 1e-6
            down = float(refcnn.cross_entropy(model.forward(x, training=True), y))
            param[idx] = old
            numeric[idx] = (up - down) / 2e-6
        assert_close(analytic[key], numeric, atol=1e-7, rtol=1e-6, what=key)


# --------------------------------------------------------------------------------------------------
# ChannelPad


def test_channel_pad_text_json_and_shape():
    layer_round_trips(ChannelPad(8), "chpad8")
    layer_round_trips(ChannelPad((4, 12)), "chpad4:12")
    assert ChannelPad((3, 3)) == ChannelPad(3) and ChannelPad([0, 2]).pads == (0, 2)
    rows = netspec.summarize([ChannelPad(8)], (16, 5, 7)).rows
    assert rows[-1].output_shape == (32, 5, 7) and rows[-1].params == 0
    assert netspec.summarize([ChannelPad((1, 0))], (4, 9)).rows[-1].output_shape == (5, 9)
    assert netspec.summarize([ChannelPad(2)], (6,)).rows[-1].output_shape == (10,)


@pytest.mark.parametrize("bad", [-1, (1, -2), (1, 2, 3), 1.5])
def test_channel_pad_refuses_bad_padding(bad):
    with pytest.raises((ValueError, TypeError), match="ChannelPad"):
        ChannelPad(bad)


def test_channel_pad_forward_and_backward_agree_with_torch_pad():
    """y = F.pad(x, (0, 0, 0, 0, before, after)), the zero channels of the common PyTorch CIFAR shortcut."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 5))
    layer = Model([ChannelPad((2, 1))], (3, 4, 5), engine="refcnn", dtype="float64").layers[0]
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.pad(tx, (0, 0, 0, 0, 2, 1))
    grad_out = rng.normal(size=tuple(ty.shape))
    ty.backward(torch.tensor(grad_out))
    y, grad_x = layer._forward(x, None), layer._backward(grad_out)
    assert_close(y, ty.detach().numpy(), atol=0, rtol=0, what="forward")
    assert_close(grad_x, tx.grad.numpy(), atol=0, rtol=0, what="backward")


def test_option_a_residual_block_gradients_match_finite_differences():
    block = Residual([Conv2D(4, 3, strides=2, padding=1, activation="relu"), Conv2D(4, 3, padding=1)],
                     [MaxPool2D(1, strides=2), ChannelPad(1)], activation="relu")
    check_model_gradients([block, Flatten(), Dense(3)], (2, 3, 3))


# --------------------------------------------------------------------------------------------------
# The CIFAR ResNets with option A shortcuts, against a PyTorch module built here


def torch_cifar_resnet_a(depth, torch):
    """He et al. 2015 section 4.2 in PyTorch: 3x3 conv (16) + bn + relu, 3 stages of (depth - 2) / 6 basic
    blocks of 16, 32, 64 filters, option A shortcuts (every other pixel, half the new channels as zeros on
    each side, no parameters), global average pooling, a 10-way linear layer."""
    nn, f = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
            self.c2, self.b2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
            self.pad = (c_out - c_in) // 2

        def forward(self, x):
            shortcut = x if self.pad == 0 else f.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
            return f.relu(self.b2(self.c2(f.relu(self.b1(self.c1(x))))) + shortcut)

    layers, c_in = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage in range(3):
        for index in range((depth - 2) // 6):
            c_out = 16 * 2 ** stage
            layers.append(Block(c_in, c_out, 2 if stage and not index else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("depth, published", [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018),
                                              (110, 1_727_962)])
def test_cifar_resnet_option_a_counts_match_torch(depth, published):
    torch = pytest.importorskip("torch")
    module = torch_cifar_resnet_a(depth, torch)
    trainable = sum(p.numel() for p in module.parameters())
    running = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    network = netspec.PRESETS[f"resnet{depth}-a"]
    summary = netspec.summarize(network.layers, network.input_shape)
    assert trainable == published  # the count of the paper's Table 6 (0.27M ... 1.7M), exactly
    assert (summary.trainable_params, summary.non_trainable_params) == (trainable, running)
    assert module(torch.zeros((1,) + network.input_shape)).shape == (1, 10)


def test_resnet20_a_agrees_with_torch_on_the_forward_pass():
    """Same weights, same output: the preset computes the option A shortcut the torch module computes."""
    torch = pytest.importorskip("torch")
    module = torch_cifar_resnet_a(20, torch).double().eval()
    model = Model("resnet20-a", (3, 8, 8), engine="fastcnn", dtype="float64")
    ours = [p for _, layer, name in model.parameters() for p in [layer.params[name]]]
    theirs = [p for p in module.parameters()]
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
    with torch.no_grad():
        for mine, param in zip(ours, theirs):
            param.copy_(torch.tensor(mine))
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    logits = model.forward(x, training=False)
    expected = module(torch.tensor(x)).detach().numpy()
    assert_close(logits, expected, atol=1e-10, rtol=1e-8, what="resnet20-a logits")


# --------------------------------------------------------------------------------------------------
# ZeroPadding1D / ZeroPadding2D (Keras' semantics)


@pytest.mark.parametrize("layer, text", [
    (ZeroPadding2D(), "zeropad1"),
    (ZeroPadding2D((1, 2)), "zeropad1x2"),
    (ZeroPadding2D(((1, 2), (0, 1))), "zeropad1:2x0:1"),
    (ZeroPadding1D(3), "zeropad1d3"),
    (ZeroPadding1D((1, 2)), "zeropad1d1:2"),
])
def test_zero_padding_text_and_json(layer, text):
    layer_round_trips(layer, text)


def test_zero_padding_reads_every_keras_form():
    """Keras: 2-D int, (symmetric_h, symmetric_w) or ((top, bottom), (left, right)); 1-D int or (left, right)."""
    assert ZeroPadding2D(((2, 2), (3, 3))) == ZeroPadding2D((2, 3)) and ZeroPadding2D((4, 4)) == ZeroPadding2D(4)
    assert ZeroPadding2D(((1, 2), (0, 1))).pairs == ((1, 2), (0, 1))
    assert ZeroPadding1D([1, 2]).pairs == ((1, 2),) and ZeroPadding1D(((1, 2),)) == ZeroPadding1D((1, 2))
    assert netspec.summarize([ZeroPadding2D(((1, 2), (0, 1)))], (3, 5, 5)).rows[-1].output_shape == (3, 8, 6)
    assert netspec.summarize([ZeroPadding1D((1, 2))], (3, 5)).rows[-1].output_shape == (3, 8)
    assert netspec.parse_spec("zeropad2d3") == [ZeroPadding2D(3)]


@pytest.mark.parametrize("bad", [-1, (1, 2, 3), "same", 1.5, ((1, 2), (3,))])
def test_zero_padding_refuses_bad_padding(bad):
    with pytest.raises(ValueError, match="ZeroPadding2D: invalid value for argument `padding`"):
        ZeroPadding2D(bad)


def test_zero_padding_needs_a_map():
    with pytest.raises(netspec.NetSpecError, match="ZeroPadding2D"):
        netspec.summarize([ZeroPadding2D(1)], (4,))


def test_zero_padding_keeps_the_receptive_field_of_a_padded_convolution():
    """zeropad1, conv k3 (Keras' way of writing a padded convolution) sees what conv k3p1 sees."""
    apart = netspec.summarize(netspec.parse_spec("zeropad1, conv4k3"), (3, 8, 8)).rows[-1]
    joined = netspec.summarize(netspec.parse_spec("conv4k3p1"), (3, 8, 8)).rows[-1]
    assert (apart.output_shape, apart.params, apart.macs) == (joined.output_shape, joined.params, joined.macs)


@pytest.mark.parametrize("layer, shape, torch_pad", [
    (ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 4), (0, 3, 1, 2)),
    (ZeroPadding1D((2, 1)), (3, 5), (2, 1)),
])
def test_zero_padding_forward_and_backward_agree_with_torch_pad(layer, shape, torch_pad):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2,) + shape)
    runtime = Model([layer], shape, engine="refcnn", dtype="float64").layers[0]
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.pad(tx, torch_pad)
    grad_out = rng.normal(size=tuple(ty.shape))
    ty.backward(torch.tensor(grad_out))
    assert_close(runtime._forward(x, None), ty.detach().numpy(), atol=0, rtol=0, what="forward")
    assert_close(runtime._backward(grad_out), tx.grad.numpy(), atol=0, rtol=0, what="backward")


def test_zero_padding_in_a_model_gradients_match_finite_differences():
    check_model_gradients([ZeroPadding2D(((1, 0), (0, 2))), Conv2D(2, 2, activation="tanh"), Flatten(), Dense(3)],
                          (1, 3, 2))
    check_model_gradients([ZeroPadding1D((0, 1)), Conv1D(2, 2), Flatten(), Dense(3)], (2, 3))


# --------------------------------------------------------------------------------------------------
# Conv1DTranspose / Conv2DTranspose (Keras' arguments, PyTorch's weight layout)


@pytest.mark.parametrize("layer, text", [
    (Conv2DTranspose(8, 3, strides=2), "deconv8k3s2"),
    (Conv2DTranspose(8, 3, strides=2, padding="same", output_padding=1), "deconv8k3s2 same op1"),
    (Conv2DTranspose(8, 4, strides=2, padding=1, use_bias=False, activation="relu"), "deconv8k4s2p1 nobias relu"),
    (Conv2DTranspose(8, (3, 5), dilation=2), "deconv8k3x5d2"),
    (Conv1DTranspose(4, 3, strides=2, output_padding=1), "deconv1d4k3s2 op1"),
])
def test_conv_transpose_text_and_json(layer, text):
    layer_round_trips(layer, text)


@pytest.mark.parametrize("c_in, filters, kernel, bias", [(3, 8, 3, True), (16, 4, (2, 5), False), (1, 1, 1, True)])
def test_conv_transpose_params_match_torch(c_in, filters, kernel, bias):
    torch = pytest.importorskip("torch")
    module = torch.nn.ConvTranspose2d(c_in, filters, kernel, stride=2, bias=bias)
    expected = sum(p.numel() for p in module.parameters())
    # output_padding=0 given: Keras' size (n - 1)*s + k, PyTorch's (without it Keras pads a 1x1 to n*s)
    layer = Conv2DTranspose(filters, kernel, strides=2, output_padding=0, use_bias=bias)
    row = netspec.summarize([layer], (c_in, 6, 7)).rows[-1]
    assert row.params == expected
    assert row.output_shape == tuple(module(torch.zeros(1, c_in, 6, 7)).shape[1:])


@pytest.mark.parametrize("n, kernel, stride, padding, output_padding, expected", [
    # Keras' documented output length: n*s + max(k - s, 0) (valid), n*s (same), and with output_padding
    # (n - 1)*s + k - 2*(k // 2 if same else 0) + output_padding.
    (5, 3, 2, "valid", None, 11), (5, 1, 3, "valid", None, 15), (5, 3, 2, "same", None, 10),
    (5, 4, 2, "same", None, 10), (5, 3, 2, "same", 1, 10), (5, 3, 2, "valid", 1, 12), (5, 5, 3, "same", 0, 13),
])
def test_conv_transpose_output_sizes_follow_keras(n, kernel, stride, padding, output_padding, expected):
    layer = Conv1DTranspose(2, kernel, strides=stride, padding=padding, output_padding=output_padding)
    assert netspec.summarize([layer], (1, n)).rows[-1].output_shape == (2, expected)


def run_layer(layer, shape, x, engine="refcnn"):
    """The runtime layer of ``layer`` built for ``shape`` in float64, and its output for ``x``."""
    model = Model([layer], shape, engine=engine, dtype="float64")
    runtime = model.layers[0]
    return runtime, runtime._forward(x, SimpleNamespace(engine=model.engine))


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
def test_conv_transpose_with_an_amount_is_torch_conv_transpose(engine):
    """padding as an amount means PyTorch's padding: the same output as torch's conv_transpose2d."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 3, 4, 5))
    runtime, y = run_layer(Conv2DTranspose(2, (3, 2), strides=(2, 3), padding=1, output_padding=(1, 0),
                                           dilation=(1, 2)), (3, 4, 5), x, engine)
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(runtime.params["weight"]), torch.tensor(runtime.params["bias"]),
        stride=(2, 3), padding=1, output_padding=(1, 0), dilation=(1, 2))
    assert_close(y, expected.numpy(), atol=1e-12, rtol=1e-10, what="conv_transpose2d")


@pytest.mark.parametrize("n, kernel, stride, output_padding", [(4, 3, 2, None), (4, 4, 2, None), (3, 1, 3, None),
                                                               (4, 3, 2, 1), (3, 5, 3, 0)])
def test_conv_transpose_same_is_the_adjoint_of_a_tensorflow_same_convolution(n, kernel, stride, output_padding):
    """Keras' Conv1DTranspose(padding='same') is the gradient, with respect to its input, of TensorFlow's SAME
    convolution of an input of the transposed output's size (pad_total = max((n - 1)*s + k - size, 0), of
    which pad_total // 2 at the beginning): computed here with torch's autograd."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 3, n))
    layer = Conv1DTranspose(2, kernel, strides=stride, padding="same", output_padding=output_padding,
                            use_bias=False)
    runtime, y = run_layer(layer, (3, n), x)
    size = y.shape[-1]
    total = max((n - 1) * stride + kernel - size, 0)
    z = torch.zeros((2, 2, size), dtype=torch.float64, requires_grad=True)
    padded = torch.nn.functional.pad(z, (total // 2, total - total // 2))
    conv = torch.nn.functional.conv1d(padded, torch.tensor(runtime.params["weight"]), stride=stride)
    assert conv.shape[-1] == n
    (grad,) = torch.autograd.grad(conv, z, torch.tensor(x))
    assert_close(y, grad.numpy(), atol=1e-12, rtol=1e-10, what="same")


def test_conv_transpose_in_a_model_gradients_match_finite_differences():
    check_model_gradients([Conv2DTranspose(2, 2, strides=2, padding="same", activation="tanh"), Flatten(), Dense(3)],
                          (2, 2, 2))
    check_model_gradients([Conv1DTranspose(2, 3, strides=2, output_padding=1), Flatten(), Dense(3)], (2, 3))


@pytest.mark.parametrize("layer, text", [
    (Conv2DTranspose(32, 3, strides=2, groups=2), "deconv32k3s2g2"),
    (Conv1DTranspose(4, 4, strides=2, padding=1, groups=4, use_bias=False), "deconv1d4k4s2g4p1 nobias"),
])
def test_grouped_conv_transpose_text_and_json(layer, text):
    layer_round_trips(layer, text)


@pytest.mark.parametrize("c_in, filters, groups, kernel, bias", [(4, 6, 2, 3, True), (6, 3, 3, (2, 5), False),
                                                                 (8, 8, 8, 1, True)])
def test_grouped_conv_transpose_params_and_macs_match_torch(c_in, filters, groups, kernel, bias):
    torch = pytest.importorskip("torch")
    module = torch.nn.ConvTranspose2d(c_in, filters, kernel, stride=2, groups=groups, bias=bias)
    layer = Conv2DTranspose(filters, kernel, strides=2, output_padding=0, groups=groups, use_bias=bias)
    row = netspec.summarize([layer], (c_in, 5, 6)).rows[-1]
    assert row.params == sum(p.numel() for p in module.parameters())
    assert row.output_shape == tuple(module(torch.zeros(1, c_in, 5, 6)).shape[1:])
    # every product of the op: each input cell times each tap of the weight slice of its group
    assert row.macs == 5 * 6 * module.weight.numel()


def test_grouped_conv_transpose_refuses_channels_groups_do_not_divide():
    with pytest.raises(netspec.NetSpecError, match="groups=2 must divide both the input channels C_in=3"):
        netspec.summarize([Conv2DTranspose(4, 3, groups=2)], (3, 4, 4))
    with pytest.raises(ValueError, match="`groups`"):
        Conv2DTranspose(4, 3, groups=0)


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
def test_grouped_conv_transpose_is_torch_conv_transpose(engine):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 4, 3, 5))
    runtime, y = run_layer(Conv2DTranspose(6, (3, 2), strides=2, padding=1, output_padding=1, groups=2),
                           (4, 3, 5), x, engine)
    assert runtime.params["weight"].shape == (4, 3, 3, 2)
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(runtime.params["weight"]), torch.tensor(runtime.params["bias"]),
        stride=2, padding=1, output_padding=1, groups=2)
    assert_close(y, expected.numpy(), atol=1e-12, rtol=1e-10, what="grouped conv_transpose2d")


def test_grouped_conv_transpose_gradients_match_finite_differences():
    check_model_gradients([Conv2DTranspose(4, 2, strides=2, groups=2, activation="tanh"), Flatten(), Dense(3)],
                          (2, 2, 2))


# --------------------------------------------------------------------------------------------------
# Convolution with a connection table (LeNet-5's C3)

# LeCun et al. 1998, Table I, as printed: one row per S2 map (0-5), one column per C3 map (0-15), X where the
# C3 map reads the S2 map. Written here from the table, independently of the record's per-filter tuples.
TABLE_I = [
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
]


def table_i_columns():
    return tuple(tuple(row for row in range(6) if TABLE_I[row][col] == "X") for col in range(16))


def test_table_i_is_the_lenet5_table_and_reads_as_the_paper_says():
    columns = table_i_columns()
    # the paper's text: 0-5 contiguous threes, 6-11 contiguous fours, 12-14 discontinuous fours, 15 all six
    assert [len(c) for c in columns] == [3] * 6 + [4] * 9 + [6] and sum(map(len, columns)) == 60
    for first, size in ((0, 3), (6, 4)):
        for i in range(6):
            assert columns[first + i] == tuple(sorted((i + j) % 6 for j in range(size)))
    assert Conv2D(16, 5, connections=columns) == Conv2D(16, 5, connections="lenet5")
    assert Conv2D(16, 5, connections=columns).connections == "lenet5"


@pytest.mark.parametrize("layer, text", [
    (Conv2D(16, 5, activation="tanh", connections="lenet5"), "conv16k5 tanh table=lenet5"),
    (Conv2D(3, 3, connections=((2, 0, 1), (1, 3), (0, 1, 2, 5))), "conv3k3 table=0-2/1.3/0-2.5"),
    (Conv1D(2, 3, padding=1, connections=((0,), (1,))), "conv1d2k3p1 table=0/1"),
])
def test_connections_text_and_json(layer, text):
    layer_round_trips(layer, text)


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"connections": "lenet4"}, ValueError, "a table name (lenet5)"),
    ({"connections": 5}, TypeError, "connections=5"),
    ({"connections": ((0,),)}, ValueError, "one entry per filter (2 entries)"),
    ({"connections": ((0,), ())}, ValueError, "at least one"),
    ({"connections": ((0,), (1, 1))}, ValueError, "Filter 1 names an input channel twice"),
    ({"connections": ((0,), (-1,))}, ValueError, "ints >= 0"),
    ({"connections": ((0,), (1,)), "groups": 2}, ValueError, "`groups`"),
])
def test_connections_refuse_bad_tables(kwargs, error, fragment):
    with pytest.raises(error, match=None) as caught:
        Conv2D(2, 3, **kwargs)
    assert fragment in str(caught.value)


def test_connections_beyond_the_input_channels_do_not_fit():
    with pytest.raises(netspec.NetSpecError, match="connections read input channel 5, but the input has C_in=4"):
        netspec.summarize([Conv2D(16, 5, connections="lenet5")], (4, 14, 14))
    with pytest.raises(netspec.SpecParseError, match="column 9"):
        netspec.parse_spec("conv2k3 table=0/x")
    with pytest.raises(netspec.SpecParseError, match="runs? upwards"):
        netspec.parse_spec("conv2k3 table=3-1/0")
    # a short text cannot ask for billions of pairs: the reader stops at 2**20 before building them
    with pytest.raises(netspec.SpecParseError, match="at most 1,048,576"):
        netspec.parse_spec("conv2k3 table=" + "/".join(["0-999999999"] * 2))


def torch_table_conv(table, weight, bias, torch, conv):
    """A convolution with a connection table as PyTorch can write it: one small convolution per filter over the
    channels that filter reads (``x[:, channels]``), outputs stacked."""
    def forward(x):
        outs = [conv(x[:, list(channels)], weight[co:co + 1, list(channels)], bias[co:co + 1])
                for co, channels in enumerate(table)]
        return torch.cat(outs, dim=1)
    return forward


@pytest.mark.parametrize("engine", ["refcnn", "fastcnn"])
@pytest.mark.parametrize("layer, shape", [
    (Conv2D(16, 5, connections="lenet5"), (6, 9, 8)),
    (Conv2D(3, (2, 3), strides=2, padding=1, connections=((2,), (0, 1), (0, 2))), (3, 5, 6)),
    (Conv1D(2, 3, dilation=2, connections=((1,), (0, 1))), (2, 9)),
])
def test_connections_forward_and_backward_equal_per_filter_torch_convolutions(layer, shape, engine):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2,) + shape)
    model = Model([layer], shape, engine=engine, dtype="float64")
    runtime = model.layers[0]
    runtime.params["bias"] = rng.normal(size=runtime.params["bias"].shape)
    y = model.forward(x)
    conv = torch.nn.functional.conv2d if layer.rank == 2 else torch.nn.functional.conv1d
    weight = torch.tensor(runtime.params["weight"], requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    kwargs = {"stride": layer.strides, "dilation": layer.dilation,
              "padding": layer.padding if layer.padding != "valid" else 0}
    twin = torch_table_conv(layer.table, weight, torch.tensor(runtime.params["bias"]), torch,
                            lambda a, w, b: conv(a, w, b, **kwargs))
    expected = twin(xt)
    assert_close(y, expected.detach().numpy(), atol=1e-12, rtol=1e-10, what="forward")
    grad_out = rng.normal(size=y.shape)
    grad_x = model.backward(grad_out)
    expected.backward(torch.tensor(grad_out))
    assert_close(grad_x, xt.grad.numpy(), atol=1e-12, rtol=1e-10, what="grad x")
    # the twin only ever reads connected weights: its gradient is 0 elsewhere, as ours must be
    assert_close(runtime.grads["weight"], weight.grad.numpy(), atol=1e-12, rtol=1e-10, what="grad weight")


def test_connections_gradients_match_finite_differences():
    check_model_gradients([Conv2D(3, 2, activation="tanh", connections=((0,), (1, 2), (0, 2))), Flatten(), Dense(3)],
                          (3, 3, 3))


@pytest.mark.parametrize("optimizer", [
    {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"name": "adam", "lr": 0.01, "weight_decay": 0.01},
    {"name": "adam", "lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True},
    {"name": "rmsprop", "lr": 0.01, "momentum": 0.5, "weight_decay": 0.01},
    {"name": "adadelta", "weight_decay": 0.01},
])
def test_unconnected_weights_stay_zero_while_training(optimizer):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 6, 8, 8)).astype(np.float32)
    y = np.arange(16) % 4
    model = Model([Conv2D(16, 5, activation="tanh", connections="lenet5"), Flatten(), Dense(4)], (6, 8, 8), seed=1)
    conv = model.layers[0]
    connected = np.zeros((16, 6), dtype=bool)
    for co, channels in enumerate(table_i_columns()):
        connected[co, list(channels)] = True
    before = conv.params["weight"].copy()
    assert np.all(before[~connected] == 0) and np.all(before[connected] != 0)
    model.fit(x, y, epochs=2, batch_size=8, optimizer=optimizer, verbose=0)
    after = conv.params["weight"]
    assert np.all(after[~connected] == 0)
    assert np.all(after[connected] != before[connected])
    # Keras' count_params and the summary count the 60 connected 5x5 kernels only
    assert model.count_params() == model.summary().total_params == 1_516 + (16 * 4 * 4) * 4 + 4  # 2,544


# --------------------------------------------------------------------------------------------------
# Receptive field through a transposed convolution, against a brute-force count

from hypothesis import assume, given, settings, strategies as st  # noqa: E402


def cells_seen(stack, count, unit):
    """Network-input cells unit ``unit`` of layer ``count`` depends on, following every tap back with plain loops
    on the infinite lattice (as specs/counting.md counts padding): a convolution's unit o reads o*s - p_b + j*d;
    a transposed one's unit o is written by every input i with i*s + j*d = o + p_b (PyTorch's definition)."""
    if count == 0:
        return {unit}
    kind, k, s, d, p_b = stack[count - 1]
    if kind == "conv":
        sources = [unit * s - p_b + j * d for j in range(k)]
    else:
        sources = [(unit + p_b - j * d) // s for j in range(k) if (unit + p_b - j * d) % s == 0]
    cells = set()
    for i in sources:
        cells |= cells_seen(stack, count - 1, i)
    return cells


@st.composite
def stacks_with_transposed(draw):
    stack = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "deconv"]))
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p_b = draw(st.integers(0, 2))
        stack.append((kind, k, s, d, min(p_b, d * (k - 1)) if kind == "deconv" else p_b))
    return stack


def as_layers(stack):
    return [Conv1D(1, k, strides=s, dilation=d, padding=((p, 0),)) if kind == "conv" else
            Conv1DTranspose(1, k, strides=s, dilation=d, padding=((p, 0),), output_padding=0)
            for kind, k, s, d, p in stack]


@settings(max_examples=40, deadline=None)
@given(stacks_with_transposed())
def test_transposed_receptive_field_holds_every_units_field(stack):
    """Unit o's cells lie in start + o*jump .. start + o*jump + rf - 1 for every layer; where no transposed
    convolution has a stride > 1 before it the band is the field itself (the convolution recurrence); right after
    the first such layer each edge of the band is reached by some unit."""
    try:
        summary = netspec.summarize(as_layers(stack), (1, 60))
    except netspec.NetSpecError:  # e.g. three stride-3 convolutions leave too few cells for a dilated kernel
        assume(False)
    for count, row in enumerate(summary.rows, start=1):
        (rf,), (jump,), (start,) = row.receptive_field, row.jump, row.start
        fields = [cells_seen(stack, count, o) for o in range(6 * max(s for _, _, s, _, _ in stack))]
        fields = [(o, cells) for o, cells in enumerate(fields) if cells]  # k*d < s: some units see no input
        for o, cells in fields:
            assert start + o * jump <= min(cells) and max(cells) <= start + o * jump + rf - 1, (stack[:count], o)
        fractional = [s > 1 for kind, _, s, _, _ in stack[:count] if kind == "deconv"]
        if not any(fractional):
            assert all((min(c), max(c) - min(c) + 1) == (start + o * jump, rf) for o, c in fields)
        elif fractional == [True] and stack[count - 1][0] == "deconv":
            assert any(min(c) == start + o * jump for o, c in fields)
            assert any(max(c) == start + o * jump + rf - 1 for o, c in fields)


def test_transposed_receptive_field_worked_example():
    """conv k3 s2 p1 then deconv k4 s2 p1 (a U-Net step down and up): the band is 6 cells wide from -3, one per
    unit, though each unit sees 5 cells: unit 0 reads conv units -1 and 0, cells -3..1; unit 1 units 0 and 1,
    cells -1..3. A stride-3 transposed convolution after it gives thirds: jump 1/3, written "1/3" in JSON."""
    summary = netspec.summarize(netspec.parse_spec("conv1d1k3s2p1, deconv1d1k4s2p1, deconv1d1k3s3"), (1, 16))
    fields = [(r.receptive_field, r.jump, r.start) for r in summary.rows[:2]]
    assert fields == [((3,), (2,), (-1,)), ((6,), (1,), (-3,))]
    last = summary.rows[2]
    assert last.jump[0] == Fraction(1, 3) and last.receptive_field[0] == Fraction(20, 3)
    assert last.to_dict()["jump"] == ["1/3"] and last.to_dict()["receptive_field"] == ["20/3"]


def test_the_bench_torch_twin_refuses_a_connection_table():
    """nn.Conv2d reads every channel: a twin built from it would train another network."""
    torch = pytest.importorskip("torch")
    from cnn import bench

    with pytest.raises(bench.TorchTwinError, match="connection table"):
        bench.torch_model(torch, netspec.parse_spec("conv3k1 table=0/1/0.1, flatten, dense2"), (2, 4, 4))
