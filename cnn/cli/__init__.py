"""The ``cnn`` command line: the click group :data:`cnn` and :func:`main`, with one module per command.

    shape     cnn/cli/shape.py      demo      cnn/cli/demo.py      conform   cnn/cli/conform.py
    train     cnn/cli/train.py      evaluate  cnn/cli/evaluate.py  predict   cnn/cli/predict.py
    bench     cnn/cli/bench.py      (the measuring itself is cnn.bench)
    augment   cnn/cli/augment.py    (the augmentation preview; the drawing is cnn.augment)
    show      cnn/cli/show.py       (filters, feature maps, Grad-CAM, Sobel as PNG; the drawing is cnn.pictures)
    features  cnn/cli/features.py   (bottleneck features; the computing is cnn.transfer)
    export    cnn/cli/interchange.py  import  cnn/cli/interchange.py  (the formats are cnn.interchange)

What every command shares (exit statuses, the one-line error, ``--threads``, ``--engine``) is
:mod:`cnn.cli.common`. Installed, ``cnn`` runs :func:`main`; from a checkout, ``python cli.py ...`` does
the same. Everything the commands print is computed by the library below; nothing in it imports this
package. To add a command: write ``cnn/cli/<name>.py`` holding a ``click.command`` and add it below.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import click

from . import augment, bench, conform, demo, evaluate, predict, shape, show, train
from .common import CONTEXT, EXIT_INTERRUPTED, fail
from .features import features as features_command
from .interchange import export as export_command, import_ as import_command

__all__ = ["cnn", "main", "version", "DISTRIBUTION"]

#: The distribution ``pip install`` knows this package by (``pyproject.toml``'s ``[project] name``).
DISTRIBUTION = "cnn-ref-fast"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, ``pyproject.toml``'s."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        text = _PYPROJECT.read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "unknown"


class _Group(click.Group):
    """The ``cnn`` group: Ctrl-C anywhere is one line and exit status 130 (click's own says "Aborted!", 1)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(version(), "--version", "-V", prog_name="cnn", message="%(prog)s %(version)s")
def cnn() -> None:
    """Convolutional neural networks to learn, check and run."""


for command in (shape.shape, demo.demo, conform.conform, conform.conform_matrix, train.train, evaluate.evaluate,
                predict.predict, bench.bench, augment.augment, show.show):
    cnn.add_command(command)
cnn.add_command(features_command)
cnn.add_command(export_command)
cnn.add_command(import_command)


def main() -> None:
    """Console-script entry point (``cnn = "cnn.cli:main"``)."""
    cnn()
