"""``cnn shape``: shapes, parameters, MACs, receptive fields and memory of a network, layer by layer.

Everything it prints is computed by ``cnnbase.netspec``; this module reads the options and picks a renderer.
"""

from __future__ import annotations

import click

from cnnbase import netspec

from .common import COUNT, fail

RENDERERS = {
    "table": netspec.render_table,
    "keras": netspec.render_keras,
    "json": netspec.render_json,
    "csv": netspec.render_csv,
}


def list_presets() -> str:
    width = max(len(name) for name in netspec.PRESETS)
    lines = []
    for name, network in netspec.PRESETS.items():
        shape = "x".join(map(str, network.input_shape))
        lines.append(f"{name.ljust(width)}  {shape:<8}  {network.description}")
        try:
            text = netspec.to_spec(network.layers)
        except netspec.NetSpecError:  # a preset with blocks, which have no text form yet
            text = f"{len(network.layers)} layers, with residual/concat blocks (written in Python: netspec/zoo.py)"
        lines.append(f"{' ' * width}  {'':<8}  {text}")
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
@click.option("--batch-size", default=1, show_default=True, type=COUNT, help="Samples per batch.")
@click.option(
    "--format", "fmt", default="table", show_default=True, type=click.Choice(list(RENDERERS)), help="Output layout."
)
@click.option(
    "--dtype-bytes", default=4, show_default=True, type=COUNT, help="Bytes per number (4: float32)."
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
