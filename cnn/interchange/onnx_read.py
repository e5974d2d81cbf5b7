"""Reading an ONNX file for :mod:`cnn.interchange.onnx_import`: the protobuf, its initializers and constants
within the limits, and the constant subgraphs (shapes, pads) folded to arrays.

Every size is checked before an array is made (``CNN_MAX_FILE_BYTES``, ``CNN_MAX_ARRAY_BYTES``, the bytes the file
holds for a tensor); external data is refused. Nothing here builds a layer.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError, check_bytes

from ..files import CheckpointError
from ..safe_reading import FileProblem, read_file

__all__ = ["read_proto", "constants", "fold_constants"]


def read_proto(onnx, path, shown: str):
    try:
        raw = read_file(path, gunzipped=False)
    except FileProblem as problem:
        raise CheckpointError(f"{shown} is not a readable ONNX file: expected {problem.expected}; found "
                              f"{problem.found}") from None
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(bytes(raw))
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError, or anything a hostile file provokes
        raise CheckpointError(f"{shown} is not an ONNX file: it does not parse as an ONNX model "
                              f"({type(error).__name__})") from None
    if not proto.HasField("graph") or not proto.graph.node or proto.ir_version <= 0:
        raise CheckpointError(f"{shown} is not an ONNX file: it holds no graph of nodes")
    return proto


def _tensor_array(onnx, tensor, shown: str, what: str):
    """A TensorProto as a NumPy array, after its size is checked: never external, never larger than the limit,
    and its bytes in the file as many as its shape says. ``None`` for a type no layer uses (strings...)."""
    label = f"{shown}: {what} {printable(tensor.name)!r}"
    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
        raise CheckpointError(f"{label} is stored as external data (another file); this reader reads only "
                              "self-contained ONNX files")
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise CheckpointError(f"{label} has a negative dimension in its shape {dims}")
    kinds = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
             onnx.TensorProto.INT64: np.int64, onnx.TensorProto.INT32: np.int32}
    dtype = kinds.get(tensor.data_type)
    if dtype is None:
        return None
    count = math.prod(dims)
    check_bytes(count * np.dtype(dtype).itemsize, what=f"{label} of shape {tuple(dims)}")
    held = {np.float32: len(tensor.float_data), np.float64: len(tensor.double_data),
            np.int64: len(tensor.int64_data), np.int32: len(tensor.int32_data)}[dtype]
    if tensor.HasField("raw_data"):
        held = len(tensor.raw_data) // np.dtype(dtype).itemsize
        if len(tensor.raw_data) % np.dtype(dtype).itemsize:
            held = -1
    if held != count:
        raise CheckpointError(f"{label} of shape {tuple(dims)} needs {count} values; the file holds "
                              f"{max(held, 0)} for it")
    return onnx.numpy_helper.to_array(tensor)


def constants(onnx, graph, shown: str) -> dict:
    """Every initializer and Constant node's value by tensor name, each checked before it is made."""
    if len(graph.sparse_initializer):
        raise CheckpointError(f"{shown}: sparse initializers are not read here")
    values = {}
    for tensor in graph.initializer:
        values[tensor.name] = _tensor_array(onnx, tensor, shown, "initializer")
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attribute = next((a for a in node.attribute if a.name == "value"), None)
            if attribute is None or len(node.output) != 1:
                raise CheckpointError(f"{shown}: Constant node {printable(node.name)!r} has no tensor `value`; "
                                      "only tensor constants are read")
            values[node.output[0]] = _tensor_array(onnx, attribute.t, shown, "constant")
    return values


def _fold(onnx, node, inputs: list, attrs: dict, shown: str):
    """The value of one node whose inputs are all constants, for the ops exporters use to compute pads and shapes
    (torch.onnx writes a reflect padding's amounts as ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast);
    ``None`` for any other op. Sizes are checked before anything is made."""
    op = node.op_type
    if op == "ConstantOfShape":
        shape = [int(n) for n in inputs[0].ravel()]
        fill = onnx.numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        if any(n < 0 for n in shape) or fill.size != 1:
            return None
        check_bytes(math.prod(shape) * fill.itemsize, what=f"{shown}: ConstantOfShape {printable(node.name)!r}")
        return np.full(shape, fill.ravel()[0], dtype=fill.dtype)
    if op == "Concat":
        return np.concatenate(inputs, axis=int(attrs["axis"]))
    if op == "Reshape":
        data, target = inputs[0], [int(n) for n in inputs[1].ravel()]
        if not attrs.get("allowzero", 0):
            target = [data.shape[i] if n == 0 else n for i, n in enumerate(target)]
        return data.reshape(target)
    if op == "Slice":
        data = inputs[0]
        starts, ends = inputs[1].ravel(), inputs[2].ravel()
        axes = inputs[3].ravel() if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4].ravel() if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            index[int(axis)] = slice(int(start), int(end), int(step))
        return data[tuple(index)]
    if op == "Transpose":
        return np.transpose(inputs[0], attrs.get("perm"))
    if op == "Cast":
        return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
    if op == "Unsqueeze":
        out = inputs[0]
        axes = attrs["axes"] if "axes" in attrs else inputs[1].ravel()
        rank = out.ndim + len(axes)
        for axis in sorted(int(a) % rank for a in axes):
            out = np.expand_dims(out, axis)
        return out
    if op == "Gather":
        return np.take(inputs[0], inputs[1], axis=int(attrs.get("axis", 0)))
    return None


def fold_constants(onnx, graph, values: dict, shown: str) -> set[int]:
    """Compute, in graph order, every node of :func:`_fold`'s ops whose inputs are all constants; adds their
    outputs to ``values`` and returns the positions of the nodes folded (they are no layers)."""
    folded = set()
    for position, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            continue
        names = list(node.input)
        if not names or not all(name == "" or isinstance(values.get(name), np.ndarray) for name in names):
            continue
        inputs = [values.get(name) if name else None for name in names]
        try:
            value = _fold(onnx, node, inputs, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute},
                          shown)
        except (ValueError, IndexError, TypeError, KeyError) as error:
            if isinstance(error, SizeLimitError):
                raise
            continue  # left as it is: the node is then named as one no layer covers
        if value is not None:
            values[node.output[0]] = np.asarray(value)
            folded.add(position)
    return folded
