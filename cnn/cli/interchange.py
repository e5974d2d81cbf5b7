"""``cnn export`` and ``cnn import``: a model file to and from other formats (:mod:`cnn.interchange`).

    cnn export MODEL.npz OUT.safetensors|OUT.onnx [--overwrite]
    cnn import SRC OUT.npz [--model TEXT] [--input-shape CxHxW | --data NAME] [--overwrite]

``cnn import`` goes by SRC's suffix: ``.onnx`` (an ONNX graph of the ops our layers cover), ``.safetensors``
(ours, which carries its network in its metadata, or a PyTorch state_dict, mapped onto ``--model``),
``.pt``/``.pth`` (a PyTorch state_dict, through ``torch.load(weights_only=True)`` only, onto ``--model``) and
``.keras`` (Keras 3: its configuration and weights, layouts converted, Keras's layer names kept). The file
written is a model file as ``cnn train`` writes one, which ``cnn evaluate``, ``cnn predict`` and
``cnn train --init`` read. As with ``cnn train``'s run folder, an existing OUT is replaced only with
``--overwrite``; every file is written atomically.
"""

from __future__ import annotations

import json
import os

import click

from cnnbase import netspec

from .. import pretrained
from ..model import load_model
from ..run import read_class_names, save_model
from .common import CONTEXT, UsageProblem, engine_option, printable, reported, shape_text
from .inputs import load_data

__all__ = ["export", "import_", "EXPORT_SUFFIXES", "IMPORT_SUFFIXES"]

EXPORT_SUFFIXES = (".safetensors", ".onnx")
IMPORT_SUFFIXES = (".onnx", ".safetensors", ".pt", ".pth", ".keras")

#: The metadata key of the class names ``cnn train`` stored in the model file (a JSON list), beside the network.
CLASS_NAMES_KEY = "cnn_class_names"

_overwrite_option = click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _check_out(out: str, overwrite: bool, suffixes: tuple[str, ...], option: str) -> None:
    """OUT has one of ``suffixes``, is not a folder, and exists only with ``--overwrite``."""
    if _suffix(out) not in suffixes:
        raise UsageProblem(f"{option} {out}: expected a file name ending in {' or '.join(suffixes)}")
    if os.path.isdir(out):
        raise UsageProblem(f"{option} {out}: is a folder; give a file name")
    if os.path.exists(out) and not overwrite:
        raise UsageProblem(f"{out} exists; replace it with --overwrite or choose another name")


def _counts(model) -> str:
    summary = model.summary()
    return (f"{len(model.layers)} layers ({len(model.all_layers())} with those inside blocks), "
            f"{summary.total_params:,} parameters, input {shape_text(model.input_shape)}")


@click.command(context_settings=CONTEXT)
@click.argument("model_path", metavar="MODEL.npz")  # or pretrained:fashion-mnist
@click.argument("out", metavar="OUT")
@_overwrite_option
def export(model_path, out, overwrite):
    """Write the model in MODEL.npz as OUT: .safetensors (its arrays, with the network description and class
    names in the metadata) or .onnx (an ONNX graph, checked with onnx.checker).

    \b
    Examples:
      cnn export runs/sample/model.npz model.safetensors
      cnn export runs/sample/model.npz model.onnx
    """
    with reported(ImportError):  # an optional package (onnx, torch, h5py) missing: one line naming it
        _check_out(out, overwrite, EXPORT_SUFFIXES, "OUT")
        model = load_model(pretrained.resolve(model_path))
        if _suffix(out) == ".onnx":
            from ..interchange.onnx_export import export_onnx

            export_onnx(model, out)
            kind = "ONNX"
        else:
            from ..interchange import safetensors as st

            metadata = {st.MODEL_KEY: json.dumps(model.config())}
            names = read_class_names(pretrained.resolve(model_path))
            if names:
                metadata[CLASS_NAMES_KEY] = json.dumps(names)
            st.write_safetensors(out, model.state_arrays(), metadata)
            kind = f"safetensors, {len(model.state_arrays())} arrays named as in the .npz, the network in the " \
                   f"metadata ({st.MODEL_KEY})"
    click.echo(f"model: {printable(model_path)}: {_counts(model)}")
    click.echo(f"wrote {printable(out)} ({kind})")


@click.command("import", context_settings=CONTEXT)
@click.argument("source", metavar="SRC")
@click.argument("out", metavar="OUT.npz")
@click.option("--model", "description", metavar="TEXT|PRESET|FILE.json",
              help="The network a PyTorch state_dict (.pt, .pth, or .safetensors without our description) fills, "
                   "as cnn train --model; its layers with arrays take the state_dict's modules in order.")
@click.option("--input-shape", metavar="CxHxW",
              help="The input of one sample for --model (e.g. 1x28x28, or CxL); by default the preset's own.")
@click.option("--data", "data_name", metavar="NAME|PATH",
              help="With --model: take the input shape from this data set's images (as cnn train --data).")
@_overwrite_option
@engine_option()
def import_(source, out, description, input_shape, data_name, overwrite, engine):
    """Read SRC (.onnx, .safetensors, .pt/.pth or .keras) and write it as the model file OUT.npz, which cnn
    evaluate, cnn predict and cnn train --init read.

    \b
    Examples:
      cnn import model.keras model.npz                                # Keras 3: layer names kept
      cnn import resnet.pt model.npz --model "conv16k3 same, bn, relu, ..." --input-shape 3x32x32
      cnn import state.safetensors model.npz --model keras-mnist       # safetensors.torch.save_file output
      cnn import model.onnx model.npz
    """
    with reported(ImportError):  # an optional package (onnx, torch, h5py) missing: one line naming it
        kind = _suffix(source)
        if kind not in IMPORT_SUFFIXES:
            raise UsageProblem(f"SRC {source}: expected a file ending in {', '.join(IMPORT_SUFFIXES)}")
        _check_out(out, overwrite, (".npz",), "OUT.npz")
        for option, value in (("--input-shape", input_shape), ("--data", data_name)):
            if value is not None and description is None:
                raise UsageProblem(f"{option} goes with --model (the network of a PyTorch state_dict)")
        if input_shape is not None and data_name is not None:
            raise UsageProblem("--input-shape and --data both give the input shape: give one of them")
        if data_name is not None:
            input_shape = shape_text(load_data(data_name).image_shape)
        model, lines, class_names = _import(source, kind, description, input_shape, engine)
        save_model(model, out, class_names, f"imported from {source}")
    click.echo(f"imported {printable(source)}: {_counts(model)}")
    for line in lines:
        click.echo(f"  {printable(line)}")
    click.echo(f"wrote {printable(out)}")


def _refuse_model(description, what: str) -> None:
    if description is not None:
        raise UsageProblem(f"--model: {what} carries its own network; --model is for PyTorch state_dicts")


def _import(source: str, kind: str, description, input_shape, engine) -> tuple[object, list[str], list[str]]:
    """``(model, summary lines, class names)`` of SRC."""
    if kind == ".onnx":
        _refuse_model(description, "an ONNX file")
        from ..interchange.onnx_import import import_onnx

        return import_onnx(source, engine=engine), [], []
    if kind == ".keras":
        _refuse_model(description, "a .keras file")
        from ..interchange.keras_file import load_keras

        model, report = load_keras(source, engine=engine)
        renamed = [f"{keras} -> {ours}" for keras, ours in report.names if keras != ours]
        lines = [f"Keras layer names kept; inside blocks: {', '.join(renamed)}" if renamed
                 else "Keras layer names kept"]
        return model, lines + list(report.notes), []
    from ..interchange import safetensors as st
    from ..interchange import torch_state

    if kind == ".safetensors":
        arrays, metadata = st.read_safetensors(source)
        if st.MODEL_KEY in metadata:
            _refuse_model(description, "this safetensors file (written by cnn export)")
            model = st.load_model(source, engine=engine, arrays_and_metadata=(arrays, metadata))
            return model, ["the network from its metadata"], _class_names(metadata.get(CLASS_NAMES_KEY))
        ordered = False
    else:
        arrays = ordered = None
    if description is None:
        raise UsageProblem(f"{source} holds a PyTorch state_dict without a network: give the network it fits with "
                           "--model (a preset, a .json file or a text spec) and --input-shape CxHxW")
    model = torch_state.build_network(description, _shape(input_shape), engine=engine)
    if arrays is None:
        arrays, ordered = torch_state.read_state_dict(source)
    mapped = torch_state.map_state_dict(model, arrays, printable(source), ordered=ordered)
    order = "state_dict order" if ordered else "natural order of the names, first that fits"
    lines = [f"state_dict modules mapped ({order}): "
             + ", ".join(f"{ours} <- {theirs or '(top level)'}" for ours, theirs in mapped.pairs)]
    if mapped.ignored:
        lines.append(f"ignored: {len(mapped.ignored)} num_batches_tracked")
    return model, lines, []


def _shape(text):
    if text is None:
        return None
    try:
        return netspec.parse_shape(text)
    except netspec.NetSpecError as error:
        raise UsageProblem(f"--input-shape: {error}") from None


def _class_names(text) -> list[str]:
    try:
        names = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(name) for name in names] if isinstance(names, list) else []
