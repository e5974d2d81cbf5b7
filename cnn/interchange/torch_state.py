"""A PyTorch ``state_dict`` mapped onto a network given by our description.

Where the arrays come from:

* a ``.safetensors`` file, as ``safetensors.torch.save_file(module.state_dict(), path)`` writes it, read by
  :mod:`cnn.interchange.safetensors` (no torch needed);
* a ``.pt``/``.pth`` file, only through ``torch.load(path, weights_only=True)`` when PyTorch is installed:
  PyTorch's restricted unpickler, which builds tensors and plain containers and refuses every other class
  (https://pytorch.org/docs/stable/generated/torch.load.html). Nothing is ever unpickled without it: without
  torch, a ``.pt`` file is one line saying to install it. The file's size and its zip members' declared sizes
  are checked against the limits before torch reads it.

How the arrays are mapped: layer by layer. Our layers with arrays, depth first (a block's body before its
shortcut, as :meth:`cnn.Model.all_layers` walks them), take the ``state_dict``'s modules (keys grouped by
their prefix: ``features.0.weight`` and ``features.0.bias`` are module ``features.0``) one after another.
The tensor names and layouts are the same on both sides, so nothing is transposed (evidence: ``cnn/layers.py``):

==================  ===========================================  ==========================================
layer               ours                                         PyTorch
==================  ===========================================  ==========================================
Conv1D / Conv2D     weight ``(C_out, C_in/groups, *k)``, bias    ``nn.Conv1d``/``nn.Conv2d``: the same
Dense               weight ``(units, in_features)``, bias        ``nn.Linear``: weight ``(out, in)``
BatchNorm           weight, bias, running_mean, running_var      ``nn.BatchNorm1d/2d`` (``num_batches_tracked``
                                                                 ignored: it only matters for momentum=None)
Conv*Transpose      weight ``(C_in, C_out/groups, *k)``, bias    ``nn.ConvTranspose1d/2d``: the same
Flatten             C, H, W order                                ``torch.flatten(x, 1)`` on NCHW: the same
==================  ===========================================  ==========================================

The order of the modules: a ``.pt`` file keeps ``state_dict``'s order, which is the order the modules were
registered: the modules are taken strictly in that order. A safetensors file does not keep it (the reference
writer stores tensors sorted by dtype and name), so its modules are taken in *natural* order of their names
(``features.10`` after ``features.9``), and each of our layers takes the first module not yet taken whose
tensors have its names and shapes: torchvision's ResNet names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer1.0.downsample.0``, ``fc``) map rightly so. Every mapping is listed (:attr:`Mapped.pairs`) so it can
be checked; a layer no module fits is one error naming the layer, its shapes and the module's.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from cnnbase import netspec
from cnnbase.checks import printable
from cnnbase.limits import check_bytes

from ..files import CheckpointError
from ._source import open_source
from . import safetensors as st

__all__ = ["TORCH_MISSING", "IGNORED", "Mapped", "read_state_dict", "map_state_dict", "load_state_dict",
           "build_network"]

#: The one line a ``.pt`` file gets when PyTorch is not installed.
TORCH_MISSING = ("reading a PyTorch .pt/.pth file needs PyTorch, which is not installed (pip install "
                 "torch==2.13.0, the torch extra); it is never unpickled without torch.load(weights_only=True). "
                 "Or save the state_dict with safetensors.torch.save_file and import the .safetensors file")

#: State-dict entries that have no counterpart here and are skipped.
IGNORED = ("num_batches_tracked",)


@dataclass(frozen=True)
class Mapped:
    """What :func:`map_state_dict` did: ``pairs`` of (our layer's name, the state_dict module's prefix), in
    our order, and the ``ignored`` keys (``num_batches_tracked``)."""

    pairs: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------------
# Reading the state_dict


def _check_zip_members(path, shown: str) -> None:
    """A ``.pt`` file is a zip (PyTorch >= 1.6): every member's declared size within the limits before torch
    reads it (a tensor's storage is one member)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # the legacy format, or not a torch file: torch.load says which
    for info in infos:
        check_bytes(info.file_size, what=f"{shown}: member {printable(info.filename)!r} (its declared size)")
    check_bytes(sum(info.file_size for info in infos), what=f"{shown}: its members together (declared sizes)",
                name="CNN_MAX_FILE_BYTES")


def _tensors_to_arrays(state, shown: str) -> dict[str, np.ndarray]:
    import torch

    if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model_state_dict", "model"):  # a training checkpoint holding one
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise CheckpointError(f"{shown} holds a {type(state).__name__}, not a state_dict (a dict of tensors)")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{shown}: entry {printable(str(key))!r} is a {type(value).__name__}, not a "
                                  "tensor; a state_dict maps names to tensors")
        tensor = value.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        arrays[key] = tensor.numpy().copy()
    return arrays


def read_state_dict(path) -> tuple[dict[str, np.ndarray], bool]:
    """``(arrays by state_dict key, ordered)`` from a ``.safetensors`` or ``.pt``/``.pth`` file; ``ordered``
    says whether the keys are in the module registration order (a ``.pt`` file) or not (safetensors)."""
    shown = printable(os.fspath(path))
    if os.fspath(path).endswith(".safetensors"):
        arrays, _ = st.read_safetensors(path)
        return arrays, False
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{shown}: {TORCH_MISSING}") from None
    handle, _ = open_source(path, shown)  # a regular file within the size limit, before torch opens it
    handle.close()
    _check_zip_members(path, shown)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch's unpickler raises many types; one line names the file
        first = printable(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        raise CheckpointError(f"{shown}: torch.load(weights_only=True) refused it: {first[:300]}") from None
    return _tensors_to_arrays(state, shown), True


# ---------------------------------------------------------------------------------------------------------------
# Mapping


def _natural_key(name: str):
    """``features.10`` after ``features.9``: digit runs compared as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _modules(arrays: dict, ordered: bool) -> tuple[list[tuple[str, dict]], list[str]]:
    """``[(prefix, {leaf: array})]`` in file order (``ordered``) or natural order, and the ignored keys."""
    groups: dict[str, dict] = {}
    ignored = []
    keys = list(arrays) if ordered else sorted(arrays, key=_natural_key)
    for key in keys:
        prefix, _, leaf = key.rpartition(".")
        if leaf in IGNORED:
            ignored.append(key)
            continue
        groups.setdefault(prefix, {})[leaf] = arrays[key]
    return list(groups.items()), ignored


def _ours(layer) -> dict:
    return {**layer.params, **layer.buffers}


def _shapes(arrays: dict) -> str:
    return ", ".join(f"{name} {tuple(np.shape(value))}" for name, value in arrays.items())


def _fits(ours: dict, theirs: dict) -> bool:
    return set(ours) == set(theirs) and all(np.shape(theirs[k]) == v.shape for k, v in ours.items())


def _where(layer) -> str:
    return f"layer {printable(layer.name)!r} ({layer.config.type})"


def _module_label(prefix: str) -> str:
    return f"module {printable(prefix)!r}" if prefix else "the top-level module"


def map_state_dict(model, arrays: dict, source: str = "the state_dict", *, ordered: bool = True) -> Mapped:
    """Copy a PyTorch ``state_dict``'s arrays into ``model`` (see the module's docstring for the order);
    nothing is changed unless every layer is matched. Raises :class:`~cnn.files.CheckpointError` naming the
    first of our layers that no module fits, with both shapes, or the modules left over."""
    modules, ignored = _modules(arrays, ordered)
    layers = [layer for layer in model.all_layers() if layer.params or layer.buffers]
    used = [False] * len(modules)
    pairs, found = [], {}
    for number, layer in enumerate(layers):
        ours = _ours(layer)
        if ordered:
            index = number if number < len(modules) else None
            if index is not None and not _fits(ours, modules[index][1]):
                prefix, theirs = modules[index]
                raise CheckpointError(f"{source}: {_where(layer)} needs {_shapes(ours)}; the state_dict's "
                                      f"{_module_label(prefix)} in its place has {_shapes(theirs)}")
        else:
            index = next((i for i, (_, theirs) in enumerate(modules) if not used[i] and _fits(ours, theirs)), None)
            if index is None and not all(used):
                prefix, theirs = modules[used.index(False)]
                raise CheckpointError(f"{source}: {_where(layer)} needs {_shapes(ours)}; no module left fits it "
                                      f"(the next in order, {_module_label(prefix)}, has {_shapes(theirs)})")
        if index is None:
            raise CheckpointError(f"{source}: {_where(layer)} needs {_shapes(ours)}; the state_dict has only "
                                  f"{len(modules)} modules with arrays for the network's {len(layers)} layers")
        used[index] = True
        found[layer.name] = modules[index][1]
        pairs.append((layer.name, modules[index][0]))
    left = [prefix for (prefix, _), taken in zip(modules, used) if not taken]
    if left:
        raise CheckpointError(f"{source}: the state_dict has {len(left)} module(s) with no layer of the network "
                              f"to take them ({', '.join(printable(p) for p in left[:5])}); the network has "
                              f"{len(layers)} layers with arrays")
    converted = {}
    for layer in layers:
        for kind, store in (("param", layer.params), ("buffer", layer.buffers)):
            for name in store:
                converted[f"{kind}/{layer.name}/{name}"] = found[layer.name][name]
    model.load_state_arrays(converted, source)
    return Mapped(tuple(pairs), tuple(ignored))


def build_network(description: str, input_shape=None, *, engine="fastcnn", seed: int = 0):
    """Our model of a description (a preset, a ``.json`` file or a text spec: ``--model``) for ``input_shape``
    (a tuple, or text such as ``1x28x28``; by default the preset's own)."""
    from ..model import Model

    network = netspec.load_network(description)
    if isinstance(input_shape, str):
        input_shape = netspec.parse_shape(input_shape)
    shape = input_shape if input_shape is not None else network.input_shape
    if shape is None:
        raise netspec.NetSpecError("the network has no input shape of its own: give one (--input-shape CxHxW, "
                                   "e.g. 1x28x28, or CxL for series)")
    return Model(network.layers, tuple(shape), engine=engine, seed=seed)


def load_state_dict(path, description: str, input_shape=None, *, engine="fastcnn") -> tuple[object, Mapped]:
    """``(model, mapping)``: the network of ``description`` (:func:`build_network`) with the arrays of the
    PyTorch ``state_dict`` in ``path`` (``.safetensors``, ``.pt`` or ``.pth``)."""
    model = build_network(description, input_shape, engine=engine)
    arrays, ordered = read_state_dict(path)
    mapped = map_state_dict(model, arrays, printable(os.fspath(path)), ordered=ordered)
    return model, mapped
