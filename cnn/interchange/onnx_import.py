"""An ONNX file back to a :class:`cnn.Model`: ours exactly, another tool's when its ops are ones our layers cover.

``import_onnx(path)`` reads a file written by :func:`cnn.interchange.onnx_export.export_onnx` from the model
description in its metadata (layer names, dtype and every argument as they were) and the weights from the
initializers of the same names. Any other ONNX file (``torch.onnx.export``, ``onnx.helper``, an exporter whose
metadata no longer fits the graph) is mapped node by node onto a sequential model, with a ``Residual`` block
for an ``Add`` that joins two paths from one tensor and a ``Concat`` block for a ``Concat`` along the channels:

=======================================  ==============================================================
ONNX                                     our layer
=======================================  ==============================================================
Conv (pads, auto_pad, strides,           Conv1D / Conv2D (``'same'`` for SAME_UPPER, ``'same_lower'``);
dilations, group), a Pad before it       a Pad of mode edge / reflect / wrap before it becomes its
                                         padding with padding_mode replicate / reflect / circular
ConvTranspose (pads, output_padding,     Conv1DTranspose / Conv2DTranspose (PyTorch's amounts)
strides, dilations, group)
MaxPool / AveragePool                    MaxPool / AvgPool (ceil_mode, count_include_pad kept; a Pad of
                                         -inf before a MaxPool becomes its padding)
GlobalAveragePool / GlobalMaxPool        GlobalAvgPool / GlobalMaxPool when a Flatten, Reshape or Squeeze
                                         to (N, C) follows; else AvgPool / MaxPool over the whole map
Flatten (axis 1), Reshape to (N, -1)     Flatten
Gemm, MatMul (+ Add of a constant)       Dense (the weight transposed to (units, in_features))
BatchNormalization (inference)           BatchNorm (momentum 1 - ONNX's)
Relu, LeakyRelu (alpha 0.01), Elu        Activation
(alpha 1), Sigmoid, Tanh, Softmax,
LogSoftmax (over the channels)
Dropout, Identity                        Dropout, nothing
Pad (constant 0)                         ZeroPadding (spatial axes), ChannelPad (channel axis)
Add of two paths, Concat (axis 1)        Residual, Concat
=======================================  ==============================================================

Anything else is one :class:`~cnn.files.CheckpointError` line naming the op type and the node; so is a graph
whose shape no block of ours expresses, a weight that is not a constant, or an attribute we compute otherwise
(a LeakyRelu slope other than 0.01, a dilated pooling).

The file is untrusted: it is read only when it is a regular file within ``CNN_MAX_FILE_BYTES``, parsed as a
protobuf (never unpickled), and every initializer's byte size is computed from its shape and checked against
``CNN_MAX_ARRAY_BYTES`` and against the bytes the file holds for it before any array is made; then
``onnx.checker.check_model`` must accept it (nodes in topological order, every tensor defined). Initializers
stored as external data (in other files) are refused: a file could name any path on the disk.
"""

from __future__ import annotations

import json

import numpy as np

from cnnbase import netspec
from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError

from ..files import CheckpointError
from ..model import Model, get_engine
from .onnx_export import METADATA_KEY, require_onnx, weight_names
from .onnx_graph import COVERED_OPS, from_graph
from .onnx_read import constants, read_proto

__all__ = ["import_onnx", "COVERED_OPS"]


# --------------------------------------------------------------------------------------------------
# Our own files: the description in the metadata


def _from_metadata(text: str, values: dict, shown: str, engine):
    """The model of our description and the initializers of its weights' names; ``None`` when the graph no
    longer holds those weights (another tool rewrote it), so that the graph is read instead."""
    try:
        config = json.loads(text)
        model = Model.from_config(config, engine=engine)
    except SizeLimitError as error:
        raise SizeLimitError(f"{shown}: {error}") from None
    except (netspec.NetSpecError, CheckpointError, TypeError, ValueError, KeyError, RecursionError) as error:
        raise CheckpointError(f"{shown}: its cnn model description ({METADATA_KEY}) cannot be built: "
                              f"{error}") from None
    names = weight_names(model)
    if not all(isinstance(values.get(name), np.ndarray) for name in names):
        return None
    model.load_state_arrays({key: values[name] for name, key in names.items()}, shown)
    return model


def import_onnx(path, *, engine="fastcnn") -> Model:
    """The :class:`cnn.Model` of the ONNX file ``path`` (module docstring: what is read and how).

    Raises :class:`~cnn.files.CheckpointError` (a ``ValueError``) of one line for a file that is not ONNX, an op
    or a graph shape our layers do not express (naming the op type and the node), external or inconsistent
    initializers; :class:`~cnnbase.limits.SizeLimitError` for a file or an initializer beyond the limits; an
    ``ImportError`` of one line when the optional ``onnx`` package is missing."""
    engine = get_engine(engine)  # the caller's mistake before the file's
    onnx = require_onnx()
    shown = printable(str(path))
    proto = read_proto(onnx, path, shown)
    values = constants(onnx, proto.graph, shown)
    try:  # after the sizes: the checker reads every tensor, so a lying shape must be refused first
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{shown} is not a valid ONNX model: {printable(first)}") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY in meta:
        model = _from_metadata(meta[METADATA_KEY], values, shown, engine)
        if model is not None:
            return model
    return from_graph(onnx, proto, values, shown, engine)
