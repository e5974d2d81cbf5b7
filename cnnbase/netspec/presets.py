"""Presets: published networks with published parameter counts (tests check them).

``cnn shape keras-mnist`` reads one by name. Each is written in the text grammar, so that the text of a
preset reads like the network it reproduces.
"""

from __future__ import annotations

from .grammar import parse_spec
from .network import Network


def _preset(text: str, input_shape, description: str) -> Network:
    return Network(tuple(input_shape), tuple(parse_spec(text)), description)


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
}
