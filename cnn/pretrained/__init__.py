"""Pretrained models shipped in the package, so that transfer learning runs on a fresh machine with no download.

>>> from cnn import pretrained
>>> pretrained.NAMES
('fashion-mnist',)

``cnn train --init pretrained:fashion-mnist`` (or ``--init`` with :func:`path`'s file) starts a run from one.
How each file was made, its test accuracy and its training time: ``cnn/pretrained/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from cnnbase.checks import invalid

__all__ = ["NAMES", "SPECS", "PREFIX", "path", "resolve"]

_FOLDER = Path(__file__).resolve().parent

#: Shipped models by name: a small CNN trained on the full Fashion-MNIST (README.md: the command, 5 epochs).
_FILES = {"fashion-mnist": "fmnist-small-cnn.npz"}
NAMES = tuple(_FILES)

#: The network of each shipped model, as ``cnn train --model`` takes it: ``--init`` loads by layer name and
#: shape, so a run that starts from a shipped model builds this network (its head adapted to the data).
SPECS = {"fashion-mnist": "conv16k3 relu, maxpool2, conv32k3 relu, maxpool2, flatten, dense64 relu, dropout0.5, "
                          "dense10 softmax"}

#: How the command line names a shipped model where it takes a model file: ``pretrained:fashion-mnist``.
PREFIX = "pretrained:"


def path(name: str) -> Path:
    """The file of the shipped model ``name`` (one of :data:`NAMES`); ``ValueError`` listing them otherwise."""
    if name not in _FILES:
        raise ValueError(invalid("cnn.pretrained.path", "name", f"one of {', '.join(NAMES)}", repr(name)))
    return _FOLDER / _FILES[name]


def resolve(text: str) -> str:
    """A model file as the command line names it: ``pretrained:NAME`` -> the shipped file's path; anything
    else is a path, returned as given."""
    if isinstance(text, str) and text.startswith(PREFIX):
        return str(path(text[len(PREFIX):]))
    return text
