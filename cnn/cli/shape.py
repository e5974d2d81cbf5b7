"""``cnn shape``: shapes, parameters, MACs, receptive fields and memory of a network, layer by layer.

Everything it prints is computed by ``cnnbase.netspec``; this module reads the options and picks a renderer.
"""

from __future__ import annotations

import click

from cnnbase import netspec

from .common import fail

RENDERERS = {
    "table": netspec.render_table,
    "keras": netspec.render_keras,
    "connected": netspec.render_connected,
    "json": netspec.render_json,
    "csv": netspec.render_csv,
}
#: The layouts that open blocks (``--expand``/``--depth``); json and csv hold the block rows only.
OPENING = {"table", "connected"}


def list_presets() -> str:
    width = max(len(name) for name in netspec.PRESETS)
    lines = []
    for name, network in netspec.PRESETS.items():
        shape = "x".join(map(str, network.input_shape))
        lines.append(f"{name.ljust(width)}  {shape:<9}  {network.description}")
        lines.append(f"{' ' * width}  {'':<9}  {netspec.to_spec(network.layers)}")
    return "\n".join(lines)


def build_summary(network: str, input_text: str | None, batch_size: int, dtype_bytes: int) -> netspec.Summary:
    """Everything ``cnn shape`` computes, without click: raises NetSpecError for any bad input."""
    loaded = netspec.load_network(network)
    input_shape = netspec.parse_shape(input_text) if input_text is not None else loaded.input_shape
    if input_shape is None:
        raise netspec.SpecParseError("a text spec carries no input shape; give one with --input (e.g. --input 1x28x28)")
    return netspec.summarize(loaded.layers, input_shape, batch_size=batch_size, dtype_bytes=dtype_bytes)


@click.command()
@click.argument("network", required=False)
@click.option(
    "--input", "input_text", metavar="CxHxW",
    help="Sample shape, e.g. 1x28x28, 3x100 or 784 (default: the preset's or the file's).",
)
# Not COUNT: shape is arithmetic only, and summarize refuses a size beyond int64 in one line that shows the number cut
# short (click's own range error would echo all 400 digits of a hostile one).
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1), help="Samples per batch.")
@click.option(
    "--format", "fmt", default="table", show_default=True, type=click.Choice(list(RENDERERS)), help="Output layout."
)
@click.option(
    "--dtype-bytes", default=4, show_default=True, type=click.IntRange(min=1), help="Bytes per number (4: float32)."
)
@click.option("--expand", is_flag=True, help="Show the layers inside every block (residual, concat), at every level.")
@click.option("--depth", type=click.IntRange(0, None), metavar="N",
              help="Show the layers inside blocks N levels deep (0: one row per block, the table's default; "
                   "the connected view opens every level unless given).")
@click.option("--list", "list_only", is_flag=True, help="List the presets and exit.")
def shape(network, input_text, batch_size, fmt, dtype_bytes, expand, depth, list_only):
    """Shapes, parameters, MACs, receptive fields and memory of NETWORK, layer by layer.

    NETWORK is a preset name (see --list), a path to a .json network file, or a text spec such as
    "conv32k3 relu, maxpool2, flatten, dense10 softmax" (grammar: specs/netspec.md).

    A block (residual, concat) is one row; --expand or --depth N lists the layers inside it, named by their
    path (residual/body/conv2d). --format connected is Keras' functional summary: each layer with the layers
    that feed it, so the branches of a block and their join show.
    """
    if list_only:
        click.echo(list_presets())
        return
    if network is None:
        fail("missing NETWORK: give a preset name (cnn shape --list), a .json file or a text spec")
    if expand and depth is not None:
        fail("--expand opens every level; give it or --depth N, not both")
    if (expand or depth is not None) and fmt not in OPENING:
        fail(f"--expand and --depth apply to --format table and connected, not {fmt} (which lists the block rows)")
    try:
        summary = build_summary(network, input_text, batch_size, dtype_bytes)
    except netspec.NetSpecError as error:
        fail(str(error))
    levels = -1 if expand else depth
    if fmt == "table":
        text = netspec.render_table(summary, depth=levels or 0)
    elif fmt == "connected":
        text = netspec.render_connected(summary, depth=-1 if levels is None else levels)
    else:
        text = RENDERERS[fmt](summary)
    click.echo(text.rstrip("\n"))
