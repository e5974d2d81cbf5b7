"""Presets: published networks with published parameter counts (tests check them).

``cnn shape keras-mnist`` reads one by name. Each is written in the text grammar, so that the text of a
preset reads like the network it reproduces.
"""

from __future__ import annotations

from . import zoo
from .text import parse_spec
from .network import Network


def _preset(text: str, input_shape, description: str) -> Network:
    return Network(tuple(input_shape), tuple(parse_spec(text)), description)


def _built(layers, input_shape, description: str) -> Network:
    """A preset built in Python from layer records (:mod:`cnnbase.netspec.zoo`): the residual and inception
    blocks have no text form yet."""
    return Network(tuple(input_shape), tuple(layers), description)


_IMAGENET = (3, 224, 224)
_TORCHVISION_RESNET = {18: "11,689,512", 34: "21,797,672", 50: "25,557,032", 101: "44,549,160", 152: "60,192,808"}
_CIFAR_RESNET = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M"}
_CIFAR_RESNET_A = {20: "269,722", 32: "464,154", 44: "658,586", 56: "853,018", 110: "1,727,962"}
_TORCHVISION_VGG = {(11, False): "132,863,336", (11, True): "132,868,840", (13, False): "133,047,848",
                    (13, True): "133,053,736", (16, False): "138,357,544", (16, True): "138,365,992",
                    (19, False): "143,667,240", (19, True): "143,678,248"}


def _architectures() -> dict:
    """The seeds' architectures (``specs/architectures.md``), each citing the paper and the reference
    implementation whose parameter count it reproduces."""
    out = {}
    for depth, count in _TORCHVISION_RESNET.items():
        out[f"resnet{depth}"] = _built(zoo.resnet(depth), _IMAGENET, (
            f"ResNet-{depth} (He et al. 2015, arXiv:1512.03385) as torchvision.models.resnet{depth} builds it: "
            f"{count} trainable params (torchvision's count; + batch-norm running stats as non-trainable)"))
    out["resnet50-keras"] = _built(zoo.resnet50_keras(), _IMAGENET, (
        "ResNet-50 as keras.applications.ResNet50 builds it (biased convs, stride on the first 1x1): "
        "25,636,712 params (25,583,592 trainable, 53,120 non-trainable)"))
    for depth, count in _CIFAR_RESNET.items():
        out[f"resnet{depth}"] = _built(zoo.cifar_resnet(depth), (3, 32, 32), (
            f"CIFAR-10 ResNet-{depth} (He et al. 2015, section 4.2; paper {count} with option A shortcuts), "
            "with projection (option B) shortcuts where the shape changes: +2,752 trainable params"))
        out[f"resnet{depth}-a"] = _built(zoo.cifar_resnet(depth, option="A"), (3, 32, 32), (
            f"CIFAR-10 ResNet-{depth} (He et al. 2015, section 4.2) with the paper's option A shortcuts (every "
            f"other pixel, zero-padded channels): {_CIFAR_RESNET_A[depth]} trainable params (paper {count}), "
            "as the common PyTorch CIFAR implementation"))
    for (depth, bn), count in _TORCHVISION_VGG.items():
        name = f"vgg{depth}" + ("-bn" if bn else "")
        out[name] = _built(zoo.vgg(depth, bn), _IMAGENET, (
            f"VGG-{depth}{' with batch norm' if bn else ''} (Simonyan & Zisserman 2014, arXiv:1409.1556) as "
            f"torchvision.models.{name.replace('-', '_')} builds it: {count} trainable params"))
    out["alexnet"] = _built(zoo.alexnet(), _IMAGENET, (
        "AlexNet as torchvision.models.alexnet builds it (one-device variant, arXiv:1404.5997): 61,100,840 params"))
    out["alexnet-2012"] = _built(zoo.alexnet_2012(), (3, 227, 227), (
        "AlexNet (Krizhevsky et al. 2012) in the paper's two-GPU layout (groups=2 in conv2/4/5, 227x227 "
        "as Caffe's bvlc_alexnet, no LRN): 60,965,224 params"))
    out["zfnet"] = _built(zoo.zfnet(), _IMAGENET, (
        "ZFNet (Zeiler & Fergus 2013, arXiv:1311.2901, Figure 3; no contrast normalisation): 62,357,608 params"))
    out["googlenet"] = _built(zoo.googlenet(), _IMAGENET, (
        "GoogLeNet (Szegedy et al. 2014, arXiv:1409.4842) as torchvision.models.googlenet builds it without "
        "aux heads (3x3 in the '5x5' branch): 6,624,904 trainable params"))
    out["inception-v3"] = _built(zoo.inception_v3(), (3, 299, 299), (
        "Inception v3 (Szegedy et al. 2015, arXiv:1512.00567) as torchvision.models.inception_v3 builds it "
        "without the aux head: 23,834,568 trainable params (torchvision's 27,161,264 less the head's 3,326,696)"))
    out["small-vgg"] = _built(zoo.small_vgg(), (1, 28, 28), (
        "a small VGG-style net for 28x28 (Fashion-)MNIST: 2x(2 conv3 + bn + relu, maxpool2), gap, dense: "
        "65,834 trainable params"))
    out["resnet20-28"] = _built(zoo.cifar_resnet(20), (1, 28, 28), (
        "the CIFAR ResNet-20 (option B shortcuts) on 1x28x28 for (Fashion-)MNIST: 272,186 trainable params"))
    return out


#: LeNet-5 of the 1998 paper (``specs/architectures.md``, "LeNet-5 as in the 1998 paper"): S2 and S4 (sum of 4
#: inputs x one trainable coefficient + one trainable bias per map, then the squashing) are an average pooling
#: then a depthwise 1x1 convolution, whose weight absorbs the factor 4 between a sum and a mean; C3 reads the
#: S2 maps of the paper's Table I (``table=lenet5``). The paper's squashing, 1.7159 tanh(2a/3), is ``tanh``:
#: the 2/3 and 1.7159 are scales that the neighbouring weights can absorb (same functions, same counts), only
#: the initial scale differs. Per layer: 156, 12, 1,516, 32, 48,120, 10,164 (the paper's figures), 850.
LENET5_1998 = ("conv6k5 tanh @C1, avgpool2 @S2_mean, conv6k1g6 tanh @S2, conv16k5 tanh table=lenet5 @C3, "
               "avgpool2 @S4_mean, conv16k1g16 tanh @S4, conv120k5 tanh @C5, flatten, dense84 tanh @F6, "
               "dense10 softmax @output")

PRESETS = {
    "keras-summary": _preset(
        "conv32k3 relu, maxpool2, conv64k3 relu, maxpool2, flatten, dense128 relu, dense10 softmax",
        (1, 28, 28),
        "the model.summary() example of the Keras documentation: 225,034 params",
    ),
    "keras-mnist": _preset(
        "conv32k3 relu, conv64k3 relu, maxpool2, dropout0.25, flatten, dense128 relu, dropout0.5, dense10 softmax",
        (1, 28, 28),
        "Keras' mnist_cnn.py example (12 epochs, about 99.25% test accuracy): 1,199,882 params",
    ),
    "tf-mnist-5x5": _preset(
        "conv32k5 same relu, maxpool2, conv64k5 same relu, maxpool2, flatten, dense1024 relu, dropout0.4, dense10",
        (1, 28, 28),
        "the TensorFlow layers tutorial's MNIST network (two 5x5 'same' convolutions): 3,274,634 params",
    ),
    "lenet5": _preset(
        "conv6k5 tanh, avgpool2, conv16k5 tanh, avgpool2, flatten, dense120 tanh, dense84 tanh, dense10 softmax",
        (1, 32, 32),
        "LeNet-5 (LeCun et al. 1998) as commonly implemented: 61,706 params",
    ),
    "lenet5-1998": _preset(LENET5_1998, (1, 32, 32), (
        "LeNet-5 as in LeCun, Bottou, Bengio & Haffner 1998 (Proc. IEEE, sec. II.B, Table I): C1, trainable "
        "subsampling S2/S4 (avgpool2 + per-map coefficient and bias), C3 with the partial connection table, C5, "
        "F6 84; tanh for the paper's 1.7159 tanh(2a/3); the paper's fixed Euclidean RBF output (840 fixed "
        "params) is a dense10 softmax head here: 60,850 params (the paper's 60,000 trainable + 850)")),
}

PRESETS.update(_architectures())


# ---------------------------------------------------------------------------------------------------
# Time series (1-D): specs/timeseries.md, "Presets"

_SERIES_INPUT = (1, 150)  # GunPoint's univariate series of 150 values; cnn train fits C, L and the classes


def _bn_relu_conv1d(filters: int, kernel: int) -> str:
    return f"conv1d{filters}k{kernel} same, bn, relu"


#: Wang, Yan & Oates 2017 ("Time series classification from scratch with deep neural networks: a strong
#: baseline", IJCNN), FCN: three convolutions (128 k8, 256 k5, 128 k3, stride 1, 'same'), each followed by
#: batch norm and ReLU, then global average pooling and softmax. Biased convolutions as their Keras code.
FCN1D = ", ".join([_bn_relu_conv1d(128, 8), _bn_relu_conv1d(256, 5), _bn_relu_conv1d(128, 3),
                   "gap1d", "dense2 softmax"])


def _wang_resnet_block(filters: int, expand: bool) -> str:
    """One residual block of Wang et al.'s ResNet: conv k8, k5, k3 (each BN, the first two ReLU), added to the
    shortcut, then ReLU. The shortcut is conv1x1 + BN where the channels change and BN alone where they do
    not, as in the authors' Keras code (and Ismail Fawaz et al.'s dl-4-tsc)."""
    shortcut = f"conv1d{filters}k1, bn" if expand else "bn"
    return (f"residual({_bn_relu_conv1d(filters, 8)}, {_bn_relu_conv1d(filters, 5)}, "
            f"conv1d{filters}k3 same, bn | shortcut: {shortcut}) relu")


RESNET1D = ", ".join([_wang_resnet_block(64, True), _wang_resnet_block(128, True), _wang_resnet_block(128, False),
                      "gap1d", "dense2 softmax"])

#: InceptionTime's kernel sizes: the original Keras code (github.com/hfawaz/InceptionTime) takes
#: kernel_size 41 - 1 = 40 and halves it, 40, 20, 10 with Keras 'same' padding (the extra cell of an even
#: kernel at the end); PyTorch ports use 39, 19, 9 for symmetric padding. We follow the authors' code.
INCEPTION_KERNELS = (40, 20, 10)


def _inception_module(bottleneck: bool) -> str:
    """One Inception module (Ismail Fawaz et al. 2020, Fig. 1): a 1x1 bottleneck of 32 filters, then three
    convolutions of 32 filters (kernels :data:`INCEPTION_KERNELS`), beside max-pool 3 (stride 1) + conv1x1 of
    32 filters on the module's input; concatenated (128 channels), BN, ReLU. No biases, as their code. The
    authors skip the bottleneck when the input has one channel (the first module on univariate series)."""
    convs = " ; ".join(f"conv1d32k{k} same nobias" for k in INCEPTION_KERNELS)
    head = "conv1d32k1 nobias, " if bottleneck else ""
    return f"concat({head}concat({convs}) ; maxpool1d3s1 same, conv1d32k1 nobias), bn, relu"


def _inception_residual(first: bool) -> str:
    """Three modules with a residual connection around them: conv1x1 (128, no bias) + BN, add, ReLU."""
    modules = ", ".join(_inception_module(bottleneck=not (first and i == 0)) for i in range(3))
    return f"residual({modules} | shortcut: conv1d128k1 nobias, bn) relu"


INCEPTIONTIME = ", ".join([_inception_residual(True), _inception_residual(False), "gap1d", "dense2 softmax"])


def _series_presets() -> dict:
    return {
        "fcn1d": _preset(FCN1D, _SERIES_INPUT, (
            "FCN for time series (Wang, Yan & Oates 2017, arXiv:1611.06455): conv1d 128 k8, 256 k5, 128 k3 "
            "'same', each BN + ReLU, GAP, softmax: 264,962 trainable params on 1x150, 2 classes")),
        "resnet1d": _preset(RESNET1D, _SERIES_INPUT, (
            "ResNet for time series (Wang, Yan & Oates 2017): 3 residual blocks of 64, 128, 128 filters, each conv "
            "k8, k5, k3 + BN + ReLU, shortcut conv1x1 + BN (BN alone when the channels agree), GAP, softmax")),
        "inceptiontime": _preset(INCEPTIONTIME, _SERIES_INPUT, (
            "one InceptionTime network (Ismail Fawaz et al. 2020, arXiv:1909.04939): depth 6, bottleneck 32, "
            "kernels 40/20/10, max-pool 3 + conv1x1 branch, 4x32 = 128 channels, BN + ReLU, a residual every 3 "
            "modules, GAP, softmax (the paper's ensemble averages five of these)")),
    }


PRESETS.update(_series_presets())
