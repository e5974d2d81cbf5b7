"""The ``cnn`` command line: ``cnn demo``, ``cnn shape``, ``cnn conform``, ``cnn train``, ``cnn evaluate``,
``cnn predict`` and ``cnn bench``.

Installed, ``cnn`` runs :func:`main`; from a checkout, ``python cli.py ...`` does the same. Everything
the commands print comes from data built elsewhere (``cnnbase.netspec`` for shapes and costs, refcnn for
the numbers of the demo); this file only reads options and chooses a renderer.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # `python cli.py` from a checkout: make `import refcnn` find the package beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import click

from cnnbase import netspec

#: Exit status for bad usage and for a network that cannot be built (click uses 2 for usage errors too).
EXIT_USAGE = 2

RENDERERS = {
    "table": netspec.render_table,
    "keras": netspec.render_keras,
    "json": netspec.render_json,
    "csv": netspec.render_csv,
}


def fail(message: str) -> None:
    """One line on stderr and exit status 2: no traceback for a mistake in the input."""
    click.echo(f"cnn: error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cnn() -> None:
    """Convolutional neural networks to learn, check and run."""


# ---------------------------------------------------------------------------------------------------
# cnn shape


def list_presets() -> str:
    width = max(len(name) for name in netspec.PRESETS)
    lines = []
    for name, network in netspec.PRESETS.items():
        shape = "x".join(map(str, network.input_shape))
        lines.append(f"{name.ljust(width)}  {shape:<8}  {network.description}")
        lines.append(f"{' ' * width}  {'':<8}  {netspec.to_spec(network.layers)}")
    return "\n".join(lines)


def build_summary(network: str, input_text: str | None, batch_size: int, dtype_bytes: int) -> netspec.Summary:
    """Everything ``cnn shape`` computes, without click: raises NetSpecError for any bad input."""
    loaded = netspec.load_network(network)
    input_shape = netspec.parse_shape(input_text) if input_text is not None else loaded.input_shape
    if input_shape is None:
        raise netspec.SpecParseError("a text spec carries no input shape; give one with --input (e.g. --input 1x28x28)")
    return netspec.summarize(loaded.layers, input_shape, batch_size=batch_size, dtype_bytes=dtype_bytes)


@cnn.command()
@click.argument("network", required=False)
@click.option(
    "--input", "input_text", metavar="CxHxW",
    help="Sample shape, e.g. 1x28x28, 3x100 or 784 (default: the preset's or the file's).",
)
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1), help="Samples per batch.")
@click.option(
    "--format", "fmt", default="table", show_default=True, type=click.Choice(list(RENDERERS)), help="Output layout."
)
@click.option(
    "--dtype-bytes", default=4, show_default=True, type=click.IntRange(min=1), help="Bytes per number (4: float32)."
)
@click.option("--list", "list_only", is_flag=True, help="List the presets and exit.")
def shape(network, input_text, batch_size, fmt, dtype_bytes, list_only):
    """Shapes, parameters, MACs, receptive fields and memory of NETWORK, layer by layer.

    NETWORK is a preset name (see --list), a path to a .json network file, or a text spec such as
    "conv32k3 relu, maxpool2, flatten, dense10 softmax" (grammar: specs/netspec.md).
    """
    if list_only:
        click.echo(list_presets())
        return
    if network is None:
        fail("missing NETWORK: give a preset name (cnn shape --list), a .json file or a text spec")
    try:
        summary = build_summary(network, input_text, batch_size, dtype_bytes)
    except netspec.NetSpecError as error:
        fail(str(error))
    click.echo(RENDERERS[fmt](summary).rstrip("\n"))


# ---------------------------------------------------------------------------------------------------
# cnn demo


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


@cnn.command()
def demo():
    """The reference engine at work on the classic worked examples, then a model summary."""
    for line in demo_lines():
        click.echo(line)


# ---------------------------------------------------------------------------------------------------
# cnn conform


@cnn.command()
@click.argument("target")
@click.option("--ops", "ops_text", metavar="OP[,OP...]",
              help="Only these ops (a forward op brings its backward along), e.g. conv2d,max_pool2d.")
@click.option("--dtype", default="float64", show_default=True, type=click.Choice(["float64", "float32"]),
              help="Dtype of the float arrays handed to the target.")
@click.option("--tolerance", type=click.FloatRange(min=0.0), default=None,
              help="atol = rtol for every comparison (default: 1e-9 for float64, 1e-4 for float32).")
@click.option("--examples", default=25, show_default=True, type=click.IntRange(min=0),
              help="Randomized calls per op (0: named cases only).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the randomized calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List the ops the target does not offer as rows too.")
def conform(target, ops_text, dtype, tolerance, examples, seed, as_json, show_all):
    """Check TARGET against the specification, op by op.

    TARGET is refcnn, fastcnn, torch, a path to a .py file, or an importable module (package.module, or
    package.module:attribute) exposing some of the spec's functions (specs/adapter.md). Exit status: 0 when
    everything run passed, 1 when anything failed, 2 for a usage error.
    """
    import cnnconform as checker

    try:
        ops = checker.select_ops(ops_text)
    except ValueError as error:
        fail(f"--ops: {error}")
    try:
        loaded = checker.load_target(target)
    except checker.TargetError as error:
        fail(str(error))
    options = checker.Options(dtype=dtype, tolerance=tolerance, examples=examples, seed=seed, ops=ops)
    report = checker.conform(loaded, options)
    rendered = checker.render_json(report) if as_json else checker.render_text(report, show_all=show_all)
    click.echo(rendered.rstrip("\n"))
    raise SystemExit(0 if report.passed else 1)


# ---------------------------------------------------------------------------------------------------
# cnn train, cnn evaluate, cnn predict (cnn/commands.py)

from cnn.commands import evaluate, predict, train  # noqa: E402  after the group, beside the other commands

cnn.add_command(train)
cnn.add_command(evaluate)
cnn.add_command(predict)

from cnn.bench import bench  # noqa: E402

cnn.add_command(bench)


def main() -> None:
    """Console-script entry point (``cnn = "cli:main"``)."""
    cnn()


if __name__ == "__main__":
    main()
