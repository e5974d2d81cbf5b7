"""The seeds' architectures as layer records: ResNet, VGG, AlexNet, ZFNet, GoogLeNet and small 28x28 nets.

Each builder returns a tuple of layer records written from the paper's table and the reference
implementation whose parameter counts it reproduces (named in each docstring and in
``specs/architectures.md``); :mod:`cnnbase.netspec.presets` names them. Counting convention
(``specs/counting.md``): trainable = weights, biases and batch-norm gamma/beta; non-trainable = batch-norm
running mean and variance, as Keras counts them. torchvision's published figure is the numel of
``parameters()``, which leaves the running statistics out: it equals our *trainable* count.
"""

from __future__ import annotations

from .blocks import Concat, Residual
from .layers import (Activation, AvgPool2D, BatchNorm, ChannelPad, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                     MaxPool2D)


# --------------------------------------------------------------------------------------------------
# ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition", arXiv:1512.03385)


def _conv_bn(filters, kernel, stride=1, padding=0, relu=True, bias=False, eps=1e-5):
    """conv -> batch norm (-> relu): the unit every ResNet is made of."""
    layers = [Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=bias), BatchNorm(eps=eps)]
    return layers + [Activation("relu")] if relu else layers


def _basic_block(filters, stride, projection):
    """Two 3x3 convolutions (the paper's Table 1, ResNet-18/34; torchvision ``BasicBlock``)."""
    body = _conv_bn(filters, 3, stride, 1) + _conv_bn(filters, 3, 1, 1, relu=False)
    shortcut = _conv_bn(filters, 1, stride, relu=False) if projection else []
    return Residual(body, shortcut, activation="relu")


def _bottleneck(filters, stride, projection):
    """1x1 -> 3x3 -> 1x1 (x4 channels), the stride on the 3x3 convolution: torchvision's ``Bottleneck``
    ("ResNet v1.5"); the counts are those of the paper's v1, which strides the first 1x1."""
    body = (_conv_bn(filters, 1) + _conv_bn(filters, 3, stride, 1)
            + _conv_bn(4 * filters, 1, relu=False))
    shortcut = _conv_bn(4 * filters, 1, stride, relu=False) if projection else []
    return Residual(body, shortcut, activation="relu")


#: Blocks per stage and block kind of the ImageNet ResNets (the paper's Table 1).
RESNET_STAGES = {
    18: ((2, 2, 2, 2), "basic"),
    34: ((3, 4, 6, 3), "basic"),
    50: ((3, 4, 6, 3), "bottleneck"),
    101: ((3, 4, 23, 3), "bottleneck"),
    152: ((3, 8, 36, 3), "bottleneck"),
}


def resnet(depth: int, classes: int = 1000) -> tuple:
    """ResNet-``depth`` for 224x224 images as torchvision builds it: a 7x7/2 stem without bias, 3x3/2 max
    pooling, four stages of 64-128-256-512 filters (x4 for bottlenecks), a projection shortcut (1x1
    conv + batch norm) where the shape changes, global average pooling and one dense layer."""
    counts, kind = RESNET_STAGES[depth]
    block, expansion = (_basic_block, 1) if kind == "basic" else (_bottleneck, 4)
    layers = _conv_bn(64, 7, 2, 3) + [MaxPool2D(3, strides=2, padding=1)]
    channels = 64
    for stage, count in enumerate(counts):
        filters = 64 * 2 ** stage
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            layers.append(block(filters, stride, stride != 1 or channels != filters * expansion))
            channels = filters * expansion
    return tuple(layers + [GlobalAvgPool2D(), Dense(classes, activation="softmax")])


def _keras_conv_bn(filters, kernel, stride=1, padding=0, relu=True):
    return _conv_bn(filters, kernel, stride, padding, relu=relu, bias=True, eps=1.001e-5)


def _keras_bottleneck(filters, stride, projection):
    """keras.applications ``block1``: biased convolutions, the stride on the first 1x1 (ResNet v1)."""
    body = (_keras_conv_bn(filters, 1, stride) + _keras_conv_bn(filters, 3, 1, 1)
            + _keras_conv_bn(4 * filters, 1, relu=False))
    shortcut = _keras_conv_bn(4 * filters, 1, stride, relu=False) if projection else []
    return Residual(body, shortcut, activation="relu")


def resnet50_keras(classes: int = 1000) -> tuple:
    """ResNet-50 as ``keras.applications.ResNet50`` builds it: convolutions with biases, batch norm eps
    1.001e-5, the stride on the first 1x1 of a block, and a projection shortcut in the first block of every
    stage (the first included). Keras' ``ZeroPadding2D(3)`` + valid 7x7 conv is our conv with padding 3,
    and its ``ZeroPadding2D(1)`` + valid max pooling is our max pooling with padding 1 (it follows a ReLU,
    so padding with zeros or with -inf gives the same maximum)."""
    layers = _keras_conv_bn(64, 7, 2, 3) + [MaxPool2D(3, strides=2, padding=1)]
    for stage, count in enumerate((3, 4, 6, 3)):
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            layers.append(_keras_bottleneck(64 * 2 ** stage, stride, index == 0))
    return tuple(layers + [GlobalAvgPool2D(), Dense(classes, activation="softmax")])


def _option_a_block(filters, stride):
    """A CIFAR basic block whose shortcut is the paper's option A where the shape changes: identity on every
    other pixel (``MaxPool2D(1, strides=2)``) with ``filters // 4`` zero channels on each side (16 -> 32 ->
    64 filters: the new half of the channels, split as the common PyTorch CIFAR code splits it)."""
    body = _conv_bn(filters, 3, stride, 1) + _conv_bn(filters, 3, 1, 1, relu=False)
    shortcut = [MaxPool2D(1, strides=stride), ChannelPad(filters // 4)] if stride != 1 else []
    return Residual(body, shortcut, activation="relu")


def cifar_resnet(depth: int, classes: int = 10, option: str = "B") -> tuple:
    """The CIFAR-10 ResNet-``depth`` of the paper's section 4.2: a 3x3 conv of 16 filters, three stages of
    n = (depth - 2) / 6 basic blocks with 16-32-64 filters (stride 2 entering stages 2 and 3), global
    average pooling and a dense layer.

    ``option`` is the shortcut where the shape changes (the paper's section 3.3): ``"A"``, the paper's
    choice for CIFAR, identity with zero-padded channels (no parameters: 0.27M for ResNet-20, as the
    paper's Table 6); ``"B"``, a projection (1x1 conv + batch norm), which adds 2,752 trainable parameters
    and 192 running statistics to every depth (``specs/architectures.md`` gives both counts)."""
    if (depth - 2) % 6:
        raise ValueError(f"cifar_resnet: depth must be 6n + 2; received {depth}")
    if option not in ("A", "B"):
        raise ValueError(f"cifar_resnet: option must be 'A' or 'B'; received {option!r}")
    layers = _conv_bn(16, 3, 1, 1)
    channels = 16
    for stage in range(3):
        filters = 16 * 2 ** stage
        for index in range((depth - 2) // 6):
            stride = 2 if stage > 0 and index == 0 else 1
            if option == "A":
                layers.append(_option_a_block(filters, stride))
            else:
                layers.append(_basic_block(filters, stride, stride != 1 or channels != filters))
            channels = filters
    return tuple(layers + [GlobalAvgPool2D(), Dense(classes, activation="softmax")])


# --------------------------------------------------------------------------------------------------
# VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks", arXiv:1409.1556, Table 1)

#: Filters per 3x3 convolution, "M" for 2x2 max pooling: configurations A, B, D and E of Table 1.
VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def vgg(depth: int, batch_norm: bool = False, classes: int = 1000) -> tuple:
    """VGG-``depth`` as torchvision builds it: biased 3x3 convolutions (padding 1), each followed by batch
    norm when ``batch_norm`` (torchvision's ``vgg*_bn``), then ReLU; the classifier 4096-4096-classes with
    dropout 0.5 after each hidden layer. torchvision's ``AdaptiveAvgPool2d((7, 7))`` is the identity at
    224x224 and is left out."""
    layers = []
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            layers.append(MaxPool2D(2))
        elif batch_norm:
            layers += [Conv2D(item, 3, padding=1), BatchNorm(), Activation("relu")]
        else:
            layers.append(Conv2D(item, 3, padding=1, activation="relu"))
    return tuple(layers + _classifier(classes, dropout_first=False))


def _classifier(classes, dropout_first):
    """The 4096-4096 head of AlexNet, ZFNet and VGG; AlexNet (torchvision) puts dropout before each hidden
    layer, VGG after."""
    hidden = []
    for _ in range(2):
        pair = [Dropout(0.5), Dense(4096, activation="relu")]
        hidden += pair if dropout_first else pair[::-1]
    return [Flatten()] + hidden + [Dense(classes, activation="softmax")]


# --------------------------------------------------------------------------------------------------
# AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013, arXiv:1311.2901)


def alexnet(classes: int = 1000) -> tuple:
    """AlexNet as torchvision builds it (after Krizhevsky's "one weird trick", arXiv:1404.5997): 64-192-
    384-256-256 filters on one device, no local response normalisation. Its ``AdaptiveAvgPool2d((6, 6))``
    is the identity at 224x224 and is left out."""
    return (Conv2D(64, 11, strides=4, padding=2, activation="relu"), MaxPool2D(3, strides=2),
            Conv2D(192, 5, padding=2, activation="relu"), MaxPool2D(3, strides=2),
            Conv2D(384, 3, padding=1, activation="relu"), Conv2D(256, 3, padding=1, activation="relu"),
            Conv2D(256, 3, padding=1, activation="relu"), MaxPool2D(3, strides=2),
            *_classifier(classes, dropout_first=True))


def alexnet_2012(classes: int = 1000) -> tuple:
    """The 2012 paper's two-GPU layout on 227x227 inputs (the size that makes its 55x55 first map, as
    Caffe's ``bvlc_alexnet``): 96-256-384-384-256 filters, conv2, conv4 and conv5 seeing only their own
    GPU's half of the channels (``groups=2``). Local response normalisation (no parameters) is left out."""
    return (Conv2D(96, 11, strides=4, activation="relu"), MaxPool2D(3, strides=2),
            Conv2D(256, 5, padding=2, groups=2, activation="relu"), MaxPool2D(3, strides=2),
            Conv2D(384, 3, padding=1, activation="relu"), Conv2D(384, 3, padding=1, groups=2, activation="relu"),
            Conv2D(256, 3, padding=1, groups=2, activation="relu"), MaxPool2D(3, strides=2),
            *_classifier(classes, dropout_first=True))


def zfnet(classes: int = 1000) -> tuple:
    """ZFNet (Zeiler & Fergus 2013, Figure 3) on 224x224: 7x7/2 conv of 96 filters, 5x5/2 of 256, then
    384-384-256 3x3 convolutions, 3x3/2 max pooling (rounded up, which gives the figure's 55-13-6 maps),
    and the 4096-4096 head. Contrast normalisation (no parameters) is left out."""
    return (Conv2D(96, 7, strides=2, padding=1, activation="relu"), MaxPool2D(3, strides=2, ceil_mode=True),
            Conv2D(256, 5, strides=2, activation="relu"), MaxPool2D(3, strides=2, ceil_mode=True),
            Conv2D(384, 3, padding=1, activation="relu"), Conv2D(384, 3, padding=1, activation="relu"),
            Conv2D(256, 3, padding=1, activation="relu"), MaxPool2D(3, strides=2, ceil_mode=True),
            *_classifier(classes, dropout_first=True))


# --------------------------------------------------------------------------------------------------
# GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv:1409.4842, Table 1)


def _basic_conv(filters, kernel, stride=1, padding=0):
    """torchvision's ``BasicConv2d``: conv without bias, batch norm (eps 0.001), ReLU."""
    return _conv_bn(filters, kernel, stride, padding, eps=1e-3)


#: Table 1's inception modules: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _inception(c1, r3, c3, r5, c5, pool):
    """One inception module; its "5x5" branch is a 3x3 convolution, as in torchvision (kept there for its
    published weights; the paper's 5x5 has more parameters)."""
    return Concat([
        _basic_conv(c1, 1),
        _basic_conv(r3, 1) + _basic_conv(c3, 3, padding=1),
        _basic_conv(r5, 1) + _basic_conv(c5, 3, padding=1),
        [MaxPool2D(3, strides=1, padding=1, ceil_mode=True)] + _basic_conv(pool, 1),
    ])


def googlenet(classes: int = 1000) -> tuple:
    """GoogLeNet as torchvision builds it without the auxiliary heads (``aux_logits=False``)."""
    pool = MaxPool2D(3, strides=2, ceil_mode=True)
    layers = _basic_conv(64, 7, 2, 3) + [pool] + _basic_conv(64, 1) + _basic_conv(192, 3, padding=1) + [pool]
    for name, config in GOOGLENET_MODULES.items():
        if name in ("4a", "5a"):
            layers.append(pool if name == "4a" else MaxPool2D(2, strides=2, ceil_mode=True))
        layers.append(_inception(*config))
    return tuple(layers + [GlobalAvgPool2D(), Dropout(0.2), Dense(classes, activation="softmax")])


# --------------------------------------------------------------------------------------------------
# Inception v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture", arXiv:1512.00567)


def _avg_pool_branch(filters):
    return [AvgPool2D(3, strides=1, padding=1)] + _basic_conv(filters, 1)


def _split(filters):
    """Inception v3's expanded 3x3: a 1x3 and a 3x1 convolution side by side (figure 7 of the paper)."""
    return Concat([_basic_conv(filters, (1, 3), padding=(0, 1)), _basic_conv(filters, (3, 1), padding=(1, 0))])


def _inception_a(pool):
    return Concat([_basic_conv(64, 1), _basic_conv(48, 1) + _basic_conv(64, 5, padding=2),
                   _basic_conv(64, 1) + _basic_conv(96, 3, padding=1) + _basic_conv(96, 3, padding=1),
                   _avg_pool_branch(pool)])


def _inception_b():
    return Concat([_basic_conv(384, 3, 2),
                   _basic_conv(64, 1) + _basic_conv(96, 3, padding=1) + _basic_conv(96, 3, 2),
                   [MaxPool2D(3, strides=2)]])


def _seven(filters, out, steps):
    """Factorised 7x7 (figure 6 of the paper): 1x7 then 7x1 (``steps`` 2), or 7x1, 1x7, 7x1, 1x7 (``steps``
    4), as torchvision orders them; ``filters`` each but the last, which has ``out``."""
    kernels = [((1, 7), (0, 3)), ((7, 1), (3, 0))]
    order = kernels if steps == 2 else kernels[::-1] * 2
    layers = []
    for index, (kernel, padding) in enumerate(order):
        layers += _basic_conv(out if index == len(order) - 1 else filters, kernel, padding=padding)
    return layers


def _inception_c(c7):
    return Concat([_basic_conv(192, 1), _basic_conv(c7, 1) + _seven(c7, 192, 2),
                   _basic_conv(c7, 1) + _seven(c7, 192, 4), _avg_pool_branch(192)])


def _inception_d():
    return Concat([_basic_conv(192, 1) + _basic_conv(320, 3, 2),
                   _basic_conv(192, 1) + _seven(192, 192, 2) + _basic_conv(192, 3, 2),
                   [MaxPool2D(3, strides=2)]])


def _inception_e():
    return Concat([_basic_conv(320, 1), _basic_conv(384, 1) + [_split(384)],
                   _basic_conv(448, 1) + _basic_conv(384, 3, padding=1) + [_split(384)], _avg_pool_branch(192)])


def inception_v3(classes: int = 1000) -> tuple:
    """Inception v3 on 299x299 as torchvision builds it, without the auxiliary head (a sequential network
    has one output): torchvision's 27,161,264 less the head's 3,326,696 (1x1 conv of 128 + batch norm,
    5x5 conv of 768 + batch norm, dense 768 -> 1000) = 23,834,568 trainable."""
    layers = (_basic_conv(32, 3, 2) + _basic_conv(32, 3) + _basic_conv(64, 3, padding=1)
              + [MaxPool2D(3, strides=2)] + _basic_conv(80, 1) + _basic_conv(192, 3) + [MaxPool2D(3, strides=2)])
    layers += [_inception_a(32), _inception_a(64), _inception_a(64), _inception_b()]
    layers += [_inception_c(c7) for c7 in (128, 160, 160, 192)]
    layers += [_inception_d(), _inception_e(), _inception_e()]
    return tuple(layers + [GlobalAvgPool2D(), Dropout(0.5), Dense(classes, activation="softmax")])


# --------------------------------------------------------------------------------------------------
# Small networks for 28x28 images (MNIST, Fashion-MNIST)


def small_vgg(classes: int = 10) -> tuple:
    """A VGG-style net for 28x28: two stages of two 3x3 convolutions (32, then 64 filters) with batch norm,
    each ending in 2x2 max pooling (28 -> 14 -> 7), then global average pooling, dropout and a dense layer."""
    layers = []
    for filters in (32, 64):
        for _ in range(2):
            layers += [Conv2D(filters, 3, padding=1, use_bias=False), BatchNorm(), Activation("relu")]
        layers.append(MaxPool2D(2))
    return tuple(layers + [GlobalAvgPool2D(), Dropout(0.3), Dense(classes, activation="softmax")])
