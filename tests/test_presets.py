"""The seeds' architectures (cnnbase/netspec/zoo.py, presets.py): counts against independent figures.

Each network is built again here as a torch.nn module, written from the paper's table and the reference
implementation (torchvision's or Keras' model definitions; torchvision itself is not installed), on the
meta device (no memory, no initialisation), and counted: trainable = numel of ``parameters()``,
non-trainable = numel of the batch norms' ``running_mean`` and ``running_var`` (Keras' convention, which our
summary follows; torchvision's published figures leave the buffers out, so they equal our *trainable*).
Every torchvision figure is also compared with the number published in torchvision's model documentation
(https://pytorch.org/vision/stable/models.html, "Params"), every Keras one with keras.io/api/applications.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnn.cli.shape import list_presets
from cnn.model import Model
from cnnbase.netspec import PRESETS, Network

META = torch.device("meta")


def _torch_counts(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters())
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, stats


def _ours(name: str) -> tuple[int, int]:
    summary = PRESETS[name].summary()
    assert summary.total_params == summary.trainable_params + summary.non_trainable_params
    return summary.trainable_params, summary.non_trainable_params


# --------------------------------------------------------------------------------------------------
# torch modules, after torchvision's definitions


def _cbr(c_in, c_out, k, s=1, p=0, relu=True, bias=False, eps=1e-5):
    layers = [nn.Conv2d(c_in, c_out, k, s, p, bias=bias), nn.BatchNorm2d(c_out, eps=eps)]
    return layers + [nn.ReLU()] if relu else layers


class _Block(nn.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = nn.Sequential(*body), nn.Sequential(*shortcut)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def _torch_basic(c_in, c_out, stride):
    projection = stride != 1 or c_in != c_out
    return _Block(_cbr(c_in, c_out, 3, stride, 1) + _cbr(c_out, c_out, 3, 1, 1, relu=False),
                  _cbr(c_in, c_out, 1, stride, relu=False) if projection else [])


def _torch_bottleneck(c_in, width, stride, bias=False, eps=1e-5, stride_first=False, project=None):
    c_out = 4 * width
    s1, s3 = (stride, 1) if stride_first else (1, stride)
    projection = (stride != 1 or c_in != c_out) if project is None else project
    body = (_cbr(c_in, width, 1, s1, bias=bias, eps=eps) + _cbr(width, width, 3, s3, 1, bias=bias, eps=eps)
            + _cbr(width, c_out, 1, relu=False, bias=bias, eps=eps))
    return _Block(body, _cbr(c_in, c_out, 1, stride, relu=False, bias=bias, eps=eps) if projection else [])


def _torch_resnet(blocks, bottleneck, keras=False):
    layers = _cbr(3, 64, 7, 2, 3, bias=keras) + [nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for stage, count in enumerate(blocks):
        width = 64 * 2 ** stage
        for index in range(count):
            stride = 2 if stage and not index else 1
            if bottleneck:
                layers.append(_torch_bottleneck(c_in, width, stride, bias=keras, stride_first=keras,
                                                project=(index == 0) if keras else None))
                c_in = 4 * width
            else:
                layers.append(_torch_basic(c_in, width, stride))
                c_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1000))


# --------------------------------------------------------------------------------------------------
# ResNet


TORCHVISION_RESNETS = {  # torchvision docs, "Params"
    "resnet18": ((2, 2, 2, 2), False, 11_689_512),
    "resnet34": ((3, 4, 6, 3), False, 21_797_672),
    "resnet50": ((3, 4, 6, 3), True, 25_557_032),
    "resnet101": ((3, 4, 23, 3), True, 44_549_160),
    "resnet152": ((3, 8, 36, 3), True, 60_192_808),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_RESNETS))
def test_imagenet_resnets_match_torchvision(name):
    blocks, bottleneck, published = TORCHVISION_RESNETS[name]
    with META:
        module = _torch_resnet(blocks, bottleneck)
    assert _ours(name) == _torch_counts(module)
    assert _ours(name)[0] == published


def test_keras_resnet50_matches_keras_applications():
    # keras.io/api/applications ResNet50: model.summary() gives 25,636,712 total, 25,583,592 trainable, 53,120
    # non-trainable (the batch norms' moving mean and variance).
    summary = PRESETS["resnet50-keras"].summary()
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (
        25_636_712, 25_583_592, 53_120)
    with META:
        module = _torch_resnet((3, 4, 6, 3), True, keras=True)
    assert _ours("resnet50-keras") == _torch_counts(module)


def test_resnet50_macs_are_the_usual_4_1_giga():
    # Convention (specs/counting.md): multiply-accumulates of the convolutions and dense layers only.
    # torchvision's docs give ResNet50_Weights.IMAGENET1K_V1 4.09 "GFLOPS" (counted as MACs).
    assert round(PRESETS["resnet50"].summary().macs / 1e9, 2) == 4.09


# --------------------------------------------------------------------------------------------------
# CIFAR ResNets (He et al. 2015, section 4.2)


class _OptionA(nn.Module):
    """The paper's parameter-free shortcut: subsample by 2 and zero-pad the new channels."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


def _torch_cifar_resnet(depth, option, c_in=3):
    layers, channels = _cbr(c_in, 16, 3, 1, 1), 16
    for stage in range(3):
        width = 16 * 2 ** stage
        for index in range((depth - 2) // 6):
            stride = 2 if stage and not index else 1
            block = _torch_basic(channels, width, stride)
            if option == "A" and stride == 2:
                block.shortcut = _OptionA(width - channels)
            layers.append(block)
            channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


PAPER_CIFAR = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}  # Table 6, "# params" (millions)


@pytest.mark.parametrize("depth", sorted(PAPER_CIFAR))
def test_cifar_resnets_use_projection_shortcuts_and_match_the_paper_with_option_a(depth):
    with META:
        option_b, option_a = _torch_cifar_resnet(depth, "B"), _torch_cifar_resnet(depth, "A")
    assert _ours(f"resnet{depth}") == _torch_counts(option_b)
    trainable_a = _torch_counts(option_a)[0]
    # The two projections (16->32, 32->64, 1x1 conv without bias + batch norm): hand count 512+64 + 2048+128.
    assert _ours(f"resnet{depth}")[0] - trainable_a == 2_752
    assert round(trainable_a / 1e6, 2 if depth < 100 else 1) == PAPER_CIFAR[depth]
    if depth == 20:
        x = torch.zeros(1, 3, 32, 32)
        assert tuple(_torch_cifar_resnet(20, "A")(x).shape) == (1, 10)  # the option A module is well formed


def test_resnet20_macs_match_torch_hooks():
    module, macs = _torch_cifar_resnet(20, "B"), []

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            macs.append(output[0].numel() * layer.in_channels // layer.groups * k)
        elif isinstance(layer, nn.Linear):
            macs.append(layer.in_features * layer.out_features)

    for layer in module.modules():
        layer.register_forward_hook(hook)
    module(torch.zeros(1, 3, 32, 32))
    assert PRESETS["resnet20"].summary().macs == sum(macs)


# --------------------------------------------------------------------------------------------------
# VGG, AlexNet, ZFNet


VGG = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
TORCHVISION_VGG = {  # torchvision docs, "Params"
    "vgg11": 132_863_336, "vgg11-bn": 132_868_840, "vgg13": 133_047_848, "vgg13-bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16-bn": 138_365_992, "vgg19": 143_667_240, "vgg19-bn": 143_678_248,
}


def _head(features, dropout_first):
    out = []
    for c_in in (features, 4096):
        pair = [nn.Dropout(0.5), nn.Linear(c_in, 4096), nn.ReLU()]
        out += pair if dropout_first else pair[1:] + pair[:1]
    return out + [nn.Linear(4096, 1000)]


@pytest.mark.parametrize("name", sorted(TORCHVISION_VGG))
def test_vggs_match_torchvision(name):
    depth, bn = int(name[3:5]), name.endswith("-bn")
    layers, c_in = [], 3
    with META:
        for item in VGG[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c_in, item, 3, padding=1)] + ([nn.BatchNorm2d(item)] if bn else []) + [nn.ReLU()]
                c_in = item
        module = nn.Sequential(*layers, nn.Flatten(), *_head(512 * 7 * 7, dropout_first=False))
    assert _ours(name) == _torch_counts(module)
    assert _ours(name)[0] == TORCHVISION_VGG[name]


def test_alexnet_matches_torchvision():
    with META:
        module = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.Conv2d(64, 192, 5, padding=2), nn.Conv2d(192, 384, 3, padding=1),
            nn.Conv2d(384, 256, 3, padding=1), nn.Conv2d(256, 256, 3, padding=1), *_head(256 * 6 * 6, True))
    assert _ours("alexnet") == _torch_counts(module) == (61_100_840, 0)  # torchvision docs: 61,100,840


def test_alexnet_2012_two_gpu_layout_counted_by_hand():
    # Krizhevsky et al. 2012, section 3.5 and Figure 2: conv2, conv4 and conv5 see only their GPU's half.
    conv = [96 * 3 * 11 * 11 + 96, 256 * 48 * 5 * 5 + 256, 384 * 256 * 3 * 3 + 384, 384 * 192 * 3 * 3 + 384,
            256 * 192 * 3 * 3 + 256]
    dense = [256 * 6 * 6 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000]
    assert sum(conv + dense) == 60_965_224  # the figure usually quoted for the paper's (and Caffe's) AlexNet
    assert _ours("alexnet-2012") == (60_965_224, 0)
    assert PRESETS["alexnet-2012"].summary().rows[7].output_shape == (256, 6, 6)


def test_zfnet_matches_torch_and_the_paper_maps():
    with META:
        module = nn.Sequential(
            nn.Conv2d(3, 96, 7, 2, 1), nn.Conv2d(96, 256, 5, 2), nn.Conv2d(256, 384, 3, padding=1),
            nn.Conv2d(384, 384, 3, padding=1), nn.Conv2d(384, 256, 3, padding=1), *_head(256 * 6 * 6, True))
    assert _ours("zfnet") == _torch_counts(module) == (62_357_608, 0)
    # Zeiler & Fergus 2013, Figure 3: maps 110, 55, 26, 13, 13, 13, 13, 6.
    sizes = [row.output_shape[1] for row in PRESETS["zfnet"].summary().rows[:8]]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]


# --------------------------------------------------------------------------------------------------
# GoogLeNet


class _Inception(nn.Module):
    def __init__(self, c_in, c1, r3, c3, r5, c5, pool):
        super().__init__()
        eps = 1e-3  # torchvision's BasicConv2d
        self.branches = nn.ModuleList([
            nn.Sequential(*_cbr(c_in, c1, 1, eps=eps)),
            nn.Sequential(*_cbr(c_in, r3, 1, eps=eps), *_cbr(r3, c3, 3, 1, 1, eps=eps)),
            nn.Sequential(*_cbr(c_in, r5, 1, eps=eps), *_cbr(r5, c5, 3, 1, 1, eps=eps)),  # torchvision's 3x3
            nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), *_cbr(c_in, pool, 1, eps=eps)),
        ])


def test_googlenet_matches_torchvision_without_aux_heads():
    table = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
             (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
             (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
             (832, 384, 192, 384, 48, 128, 128)]  # Szegedy et al. 2014, Table 1
    with META:
        module = nn.Sequential(*_cbr(3, 64, 7, 2, 3), *_cbr(64, 64, 1), *_cbr(64, 192, 3, 1, 1),
                               *[_Inception(*row) for row in table], nn.Linear(1024, 1000))
    assert _ours("googlenet") == _torch_counts(module)
    assert _ours("googlenet")[0] == 6_624_904  # torchvision docs, "Params"
    assert PRESETS["googlenet"].summary().rows[-4].output_shape == (1024, 7, 7)


def _bc(c_in, c_out, k, s=1, p=0):
    return _cbr(c_in, c_out, k, s, p, eps=1e-3)  # torchvision's BasicConv2d


def _v3_modules():
    """The parameterised layers of torchvision's Inception3, module by module (Mixed_5b .. Mixed_7c)."""
    def seq(*convs):
        return [layer for conv in convs for layer in conv]
    mods = seq(_bc(3, 32, 3, 2), _bc(32, 32, 3), _bc(32, 64, 3, 1, 1), _bc(64, 80, 1), _bc(80, 192, 3))
    for c_in, pool in ((192, 32), (256, 64), (288, 64)):  # InceptionA
        mods += seq(_bc(c_in, 64, 1), _bc(c_in, 48, 1), _bc(48, 64, 5, 1, 2), _bc(c_in, 64, 1),
                    _bc(64, 96, 3, 1, 1), _bc(96, 96, 3, 1, 1), _bc(c_in, pool, 1))
    mods += seq(_bc(288, 384, 3, 2), _bc(288, 64, 1), _bc(64, 96, 3, 1, 1), _bc(96, 96, 3, 2))  # InceptionB
    for c7 in (128, 160, 160, 192):  # InceptionC
        mods += seq(_bc(768, 192, 1), _bc(768, c7, 1), _bc(c7, c7, (1, 7), 1, (0, 3)), _bc(c7, 192, (7, 1), 1, (3, 0)),
                    _bc(768, c7, 1), _bc(c7, c7, (7, 1), 1, (3, 0)), _bc(c7, c7, (1, 7), 1, (0, 3)),
                    _bc(c7, c7, (7, 1), 1, (3, 0)), _bc(c7, 192, (1, 7), 1, (0, 3)), _bc(768, 192, 1))
    mods += seq(_bc(768, 192, 1), _bc(192, 320, 3, 2), _bc(768, 192, 1), _bc(192, 192, (1, 7), 1, (0, 3)),
                _bc(192, 192, (7, 1), 1, (3, 0)), _bc(192, 192, 3, 2))  # InceptionD
    for c_in in (1280, 2048):  # InceptionE
        mods += seq(_bc(c_in, 320, 1), _bc(c_in, 384, 1), _bc(384, 384, (1, 3), 1, (0, 1)),
                    _bc(384, 384, (3, 1), 1, (1, 0)), _bc(c_in, 448, 1), _bc(448, 384, 3, 1, 1),
                    _bc(384, 384, (1, 3), 1, (0, 1)), _bc(384, 384, (3, 1), 1, (1, 0)), _bc(c_in, 192, 1))
    return mods + [nn.Linear(2048, 1000)]


def test_inception_v3_matches_torchvision_without_the_aux_head():
    with META:
        module = nn.Sequential(*_v3_modules())
        aux = nn.Sequential(*_bc(768, 128, 1), *_bc(128, 768, 5), nn.Linear(768, 1000))  # torchvision InceptionAux
    assert _ours("inception-v3") == _torch_counts(module)
    # torchvision docs, "Params" of inception_v3 (the aux head included): 27,161,264.
    assert _ours("inception-v3")[0] + _torch_counts(aux)[0] == 27_161_264
    assert PRESETS["inception-v3"].summary().rows[-4].output_shape == (2048, 8, 8)
    assert round(PRESETS["inception-v3"].summary().macs / 1e9, 2) == 5.71  # torchvision docs: 5.71 GFLOPS


# --------------------------------------------------------------------------------------------------
# Small networks for 28x28


def test_small_networks_match_torch():
    with META:
        vgg = nn.Sequential(*_cbr(1, 32, 3, 1, 1), *_cbr(32, 32, 3, 1, 1), *_cbr(32, 64, 3, 1, 1),
                            *_cbr(64, 64, 3, 1, 1), nn.Linear(64, 10))
        resnet = _torch_cifar_resnet(20, "B", c_in=1)
    assert _ours("small-vgg") == _torch_counts(vgg) == (65_834, 384)
    assert _ours("resnet20-28") == _torch_counts(resnet) == (272_186, 1_568)


@pytest.mark.parametrize("name", ["small-vgg", "resnet20-28"])
def test_small_presets_run_forward_on_both_engines(name):
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    model = Model(PRESETS[name], engine="fastcnn", seed=0)
    assert model.forward(x).shape == (2, 10)
    # Keras's count_params(): every weight, running statistics included (torch's counts above: 65,834 + 384 and
    # 272,186 + 1,568)
    assert model.count_params() == {"small-vgg": 66_218, "resnet20-28": 273_754}[name]
    # refcnn is the slow reference: the same layers on 8x8 inputs (8 -> 4 -> 2 still fits), both engines agree.
    small = x[:1, :, :8, :8]
    ref, fast = (Model(PRESETS[name].layers, (1, 8, 8), engine=engine, seed=0).forward(small)
                 for engine in ("refcnn", "fastcnn"))
    assert ref.shape == (1, 10) and np.allclose(ref, fast, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# LeNet-5 as in the 1998 paper

# LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document recognition", section II.B:
# trainable parameters and connections of each layer as the paper states them.
LENET5_PAPER_PARAMS = {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}
LENET5_PAPER_CONNECTIONS = {"C1": 122_304, "C3": 151_600, "C5": 48_120}
# Table I, one row per S2 map, one column per C3 map (as printed in the paper)
LENET5_TABLE_I = ["X   XXX  XXXX XX", "XX   XXX  XXXX X", "XXX   XXX  X XXX",
                  " XXX  XXXX  X XX", "  XXX  XXXX XX X", "   XXX  XXXX XXX"]


class _TableConv(nn.Module):
    """C3 as PyTorch writes a partial connection table: one small convolution per C3 map over the S2 maps it
    reads."""

    def __init__(self, table, kernel):
        super().__init__()
        self.table = table
        self.convs = nn.ModuleList(nn.Conv2d(len(channels), 1, kernel) for channels in table)

    def forward(self, x):
        return torch.cat([conv(x[:, list(c)]) for conv, c in zip(self.convs, self.table)], dim=1)


class _Subsampling(nn.Module):
    """S2/S4: the sum of each 2x2 window times one trainable coefficient plus one trainable bias, per map."""

    def __init__(self, maps):
        super().__init__()
        self.coefficient, self.bias = nn.Parameter(torch.ones(maps)), nn.Parameter(torch.zeros(maps))

    def forward(self, x):
        summed = nn.functional.avg_pool2d(x, 2) * 4
        return summed * self.coefficient[:, None, None] + self.bias[:, None, None]


def test_lenet5_1998_matches_the_paper_layer_by_layer_and_a_torch_module():
    table = tuple(tuple(r for r in range(6) if LENET5_TABLE_I[r][c] == "X") for c in range(16))
    layers = {"C1": nn.Conv2d(1, 6, 5), "S2": _Subsampling(6), "C3": _TableConv(table, 5), "S4": _Subsampling(16),
              "C5": nn.Conv2d(16, 120, 5), "F6": nn.Linear(120, 84)}
    head = nn.Linear(84, 10)  # the paper's output is 10 RBF units with 84 fixed (not trained) parameters each
    summary = PRESETS["lenet5-1998"].summary()
    rows = {row.name: row for row in summary.rows}
    for name, module in layers.items():
        assert rows[name].trainable_params == _torch_counts(module)[0] == LENET5_PAPER_PARAMS[name], name
    assert sum(LENET5_PAPER_PARAMS.values()) == 60_000  # the paper's total of trainable parameters
    assert rows["output"].trainable_params == _torch_counts(head)[0] == 850
    assert summary.total_params == summary.trainable_params == 60_850
    # the paper's connections count the bias once per output unit; a MAC is a connection without it
    assert rows["C1"].macs == LENET5_PAPER_CONNECTIONS["C1"] - 6 * 28 * 28
    assert rows["C3"].macs == LENET5_PAPER_CONNECTIONS["C3"] - 16 * 10 * 10
    assert rows["C5"].macs == LENET5_PAPER_CONNECTIONS["C5"] - 120
    # the maps of the paper's Figure 2: 28x28, 14x14, 10x10, 5x5, 120, 84
    assert [rows[n].output_shape for n in ("C1", "S2", "C3", "S4", "C5")] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert PRESETS["lenet5-1998"].layers[3].table == table


def test_lenet5_1998_computes_what_the_torch_module_computes():
    """Our subsampling (average pooling, then a depthwise 1x1 convolution) is the paper's (sum times a
    coefficient, plus a bias) with the coefficient divided by 4; C3 is the per-map torch convolutions."""
    rng = np.random.default_rng(4)
    model = Model(PRESETS["lenet5-1998"], engine="fastcnn", dtype="float64", seed=3)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"] = rng.normal(size=layer.params["bias"].shape) * 0.1
    p = {layer.name: layer.params for layer in model.layers}
    t = lambda a: torch.tensor(a)  # noqa: E731
    table = PRESETS["lenet5-1998"].layers[3].table
    c3 = _TableConv(table, 5).double()
    s2, s4 = _Subsampling(6).double(), _Subsampling(16).double()
    with torch.no_grad():
        for co, (conv, channels) in enumerate(zip(c3.convs, table)):
            conv.weight.copy_(t(p["C3"]["weight"][co:co + 1, list(channels)]))
            conv.bias.copy_(t(p["C3"]["bias"][co:co + 1]))
        for sub, name in ((s2, "S2"), (s4, "S4")):
            sub.coefficient.copy_(t(p[name]["weight"].reshape(-1) / 4))
            sub.bias.copy_(t(p[name]["bias"]))
    x = rng.normal(size=(2, 1, 32, 32))
    fn = nn.functional
    with torch.no_grad():
        h = torch.tanh(fn.conv2d(t(x), t(p["C1"]["weight"]), t(p["C1"]["bias"])))
        h = torch.tanh(c3(torch.tanh(s2(h))))
        h = torch.tanh(fn.conv2d(torch.tanh(s4(h)), t(p["C5"]["weight"]), t(p["C5"]["bias"]))).flatten(1)
        h = torch.tanh(fn.linear(h, t(p["F6"]["weight"]), t(p["F6"]["bias"])))
        logits = fn.linear(h, t(p["output"]["weight"]), t(p["output"]["bias"]))
    # the model takes the final softmax as its output activation: forward gives the logits
    assert np.allclose(model.forward(x), logits.numpy(), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Listing and files


def test_every_preset_is_listed_with_its_description_and_round_trips_through_json():
    listing = list_presets()
    for name, network in PRESETS.items():
        assert f"{name} " in listing and network.description in listing
        assert Network.from_dict(network.to_dict()) == network
    assert Model("resnet20", seed=0).input_shape == (3, 32, 32)  # one word for cnn.Model
