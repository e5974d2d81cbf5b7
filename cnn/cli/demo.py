"""``cnn demo``: the reference engine at work on the classic worked examples, then a model summary.

The numbers come from refcnn, the summary from ``cnnbase.netspec``; this module only lays them out.
"""

from __future__ import annotations

import click

from cnnbase import netspec


def grid(rows) -> str:
    """A small 2-D array as right-aligned columns; whole numbers without a decimal point."""
    cells = [[_number(v) for v in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    return "\n".join("    " + " ".join(c.rjust(width) for c in row) for row in cells)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def nested(rows) -> str:
    """``[[4, 3, 4], [2, 4, 3]]``: the literal form the seed examples are quoted in."""
    return "[" + ", ".join("[" + ", ".join(_number(v) for v in row) + "]" for row in rows) + "]"


def demo_lines():
    """The seed examples, computed by refcnn, as lines of text (a generator, so output streams)."""
    import numpy as np

    import refcnn

    def image(rows):
        return np.array(rows, dtype=np.float64)[None, None]  # one sample, one channel: (1, 1, H, W)

    edge = image([[0, 0, 0, 255, 255, 255]] * 6)
    sobel = image([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    edges = refcnn.conv2d(edge, sobel)[0, 0]
    yield "1. Edge detection: a 6x6 image, left half 0 and right half 255, cross-correlated with the"
    yield "   vertical Sobel kernel [[1, 0, -1], [2, 0, -2], [1, 0, -1]] (stride 1, no padding):"
    yield grid(edge[0, 0])
    yield f"   -> a {edges.shape[0]}x{edges.shape[1]} map where the vertical edge lights up (-1020 = -4 x 255):"
    yield grid(edges)
    yield ""

    binary = image([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
    cross = image([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    feature = refcnn.conv2d(binary, cross)[0, 0]
    yield "2. A 5x5 binary image with the kernel [[1, 0, 1], [0, 1, 0], [1, 0, 1]]: each output is the sum"
    yield "   of the image cells under the kernel's ones."
    yield grid(binary[0, 0])
    yield f"   -> {nested(feature)}"
    yield ""

    activations = image([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    pooled = refcnn.max_pool2d(activations, 2, 2)[0, 0]
    kept = pooled.size / activations[0, 0].size
    yield "3. Max pooling 2x2 with stride 2 keeps the largest value of each window:"
    yield grid(activations[0, 0])
    yield f"   -> {nested(pooled)}: {pooled.size} of {activations[0, 0].size} activations kept ({kept:.0%})"
    yield ""

    same = refcnn.conv2d(binary, cross, padding="same")[0, 0]
    valid = refcnn.conv2d(binary, cross, padding="valid")[0, 0]
    yield "4. Padding: the same 5x5 image and 3x3 kernel"
    yield f"   'valid' (no padding)             -> {valid.shape[0]}x{valid.shape[1]}"
    yield f"   'same'  (a ring of zero cells)   -> {same.shape[0]}x{same.shape[1]}:"
    yield grid(same)
    yield ""

    logits = np.array([[2.0, 1.0, 0.1]])
    probabilities = refcnn.softmax(logits)[0]
    yield "5. Softmax turns scores into probabilities that sum to 1:"
    shown = ", ".join(f"{p:.3f}" for p in probabilities)
    yield f"   softmax([2.0, 1.0, 0.1]) = [{shown}] (sum {probabilities.sum():.3f})"
    yield ""

    yield "6. A network for MNIST, the keras-summary preset (cnn shape keras-summary):"
    yield netspec.render_table(netspec.PRESETS["keras-summary"].summary())


@click.command()
def demo():
    """The reference engine at work on the classic worked examples, then a model summary."""
    for line in demo_lines():
        click.echo(line)
