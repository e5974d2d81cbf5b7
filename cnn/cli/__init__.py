"""The ``cnn`` command line: the click group :data:`cnn` and :func:`main`, with one module per command.

    shape     cnn/cli/shape.py      demo      cnn/cli/demo.py      conform   cnn/cli/conform.py
    train     cnn/cli/train.py      evaluate  cnn/cli/evaluate.py  predict   cnn/cli/predict.py
    bench     cnn/cli/bench.py      (the measuring itself is cnn.bench)

What every command shares (exit statuses, the one-line error, ``--threads``, ``--engine``) is
:mod:`cnn.cli.common`. Installed, ``cnn`` runs :func:`main`; from a checkout, ``python cli.py ...`` does
the same. Everything the commands print is computed by the library below; nothing in it imports this
package. To add a command: write ``cnn/cli/<name>.py`` holding a ``click.command`` and add it below.
"""

from __future__ import annotations

import click

from . import bench, conform, demo, evaluate, predict, shape, train
from .common import CONTEXT

__all__ = ["cnn", "main"]


@click.group(context_settings=CONTEXT)
def cnn() -> None:
    """Convolutional neural networks to learn, check and run."""


for command in (shape.shape, demo.demo, conform.conform, train.train, evaluate.evaluate, predict.predict,
                bench.bench):
    cnn.add_command(command)


def main() -> None:
    """Console-script entry point (``cnn = "cnn.cli:main"``)."""
    cnn()
