"""Another tool's ONNX graph, node by node, onto our layers (the table in :mod:`cnn.interchange.onnx_import`).

:func:`from_graph` walks the paths from the graph's one input to its one output: each node becomes a layer record
(or joins the record before it, as an activation or a padding does), an ``Add`` that joins two paths from one
tensor a ``Residual`` block, a ``Concat`` along the channels a ``Concat`` block. What no layer expresses is refused
with one line naming the op type and the node.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cnnbase import netspec
from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError

from ..files import CheckpointError
from ..model import Model
from .onnx_read import fold_constants

__all__ = ["from_graph", "COVERED_OPS"]

#: The ONNX ops a plain graph may hold (besides Constant nodes feeding weights, pads and shapes).
COVERED_OPS = (
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape",
    "Squeeze", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Dropout", "Identity", "Pad", "Add", "Concat",
)

_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Elu": "elu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                "Softmax": "softmax", "LogSoftmax": "log_softmax"}
_PAD_MODES = {"edge": "replicate", "reflect": "reflect", "wrap": "circular"}


#: The layers whose record holds the activation after them.
_TAKE_ACTIVATION = (netspec.BaseConv, netspec.BaseConvTranspose, netspec.Dense, netspec.Residual)


class _Refused(Exception):
    """A problem found while mapping the graph; :func:`from_graph` adds the file's name."""


def _attributes(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _pairs(pads, rank: int) -> tuple[tuple[int, int], ...]:
    """ONNX's ``[b0, b1, e0, e1]`` -> ``((b0, e0), (b1, e1))``."""
    pads = _ints(pads) if pads else (0,) * (2 * rank)
    return tuple((pads[a], pads[a + rank]) for a in range(rank))


def _label(node) -> str:
    """A node as messages name it: its name, or the tensor it computes when it has none (onnx.helper's)."""
    if node.name:
        return repr(printable(node.name))
    return f"without a name, computing {printable(node.output[0])!r}" if node.output else "without a name"


def _float32_value(value) -> float:
    """An attribute ONNX stores as float32, as the shortest decimal that float32 value prints as (1e-05, not
    9.99999974737875e-06), so that a record reads as it was written."""
    return float(str(np.float32(value)))


class _Mapper:
    """Walks the graph from its input to its output, one path at a time, building layer records and the
    weights of each (by the record's identity, read back once the model is built)."""

    def __init__(self, onnx, proto, values: dict, folded: set[int]):
        self.onnx, self.graph, self.values = onnx, proto.graph, values
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.nodes = [n for position, n in enumerate(self.graph.node) if position not in folded
                      and not (n.op_type == "Constant" and n.domain in ("", "ai.onnx"))]
        self.order = {id(n): i for i, n in enumerate(self.nodes)}
        self.producer = {out: n for n in self.nodes for out in n.output if out}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for name in dict.fromkeys(i for i in n.input if i and i not in values):
                self.consumers.setdefault(name, []).append(n)
        self.visited: set[int] = set()
        self.depth = 0  # blocks open around the path being walked
        self.weights: dict[int, dict] = {}
        self.records: list = []  # every record made, kept alive so that the ids above stay theirs

    # -------------------------------------------------------------- helpers
    def refuse(self, node, why: str):
        raise _Refused(f"ONNX node {_label(node)} ({printable(node.op_type)}): {why}")

    def visit(self, node):
        if id(node) in self.visited:
            self.refuse(node, "is reached by two paths of the graph; only paths that fork at one tensor and join "
                              "at one Add or Concat (our Residual and Concat blocks) are expressed")
        if node.domain not in ("", "ai.onnx") or node.op_type not in COVERED_OPS:
            domain = f" of domain {printable(node.domain)!r}" if node.domain not in ("", "ai.onnx") else ""
            raise _Refused(f"ONNX op {printable(node.op_type)!r}{domain} (node {_label(node)}) is not one our "
                           f"layers cover; covered: {', '.join(COVERED_OPS)}")
        self.visited.add(id(node))

    def const(self, node, index: int, what: str, required: bool = True):
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            if required:
                self.refuse(node, f"has no {what}")
            return None
        value = self.values.get(name)
        if not isinstance(value, np.ndarray):
            self.refuse(node, f"its {what} ({printable(name)!r}) is not a constant of a numeric type: weights, "
                              "pads and shapes must be initializers or Constant nodes")
        return value

    def only_consumer(self, tensor: str):
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 else None

    def record(self, record, **arrays):
        self.records.append(record)
        if arrays:
            self.weights[id(record)] = {k: v for k, v in arrays.items() if v is not None}
        return record

    def infer(self, record, shape, node):
        try:
            return tuple(record.infer(tuple(shape)).shape)
        except (netspec.NetSpecError, ValueError) as error:
            self.refuse(node, f"does not fit its input of shape {tuple(shape)}: {error}")

    def build(self, node, make):
        try:
            return make()
        except (TypeError, ValueError) as error:
            self.refuse(node, f"has arguments no layer of ours takes: {error}")

    # -------------------------------------------------------------- activations back into their layers
    def merged(self, records) -> list:
        """``records`` with every Activation that follows a convolution, a Dense layer or a Residual block
        (without an activation of its own) made that layer's ``activation``, as our networks are written
        (``conv32k3 relu``): the same computation, and a file exported by us reads back as its network."""
        out = []
        for record in records:
            if isinstance(record, netspec.Residual):
                record = self.replaced(record, body=tuple(self.merged(record.body)),
                                       shortcut=tuple(self.merged(record.shortcut)))
            elif isinstance(record, netspec.Concat):
                record = self.replaced(record, branches=tuple(tuple(self.merged(b)) for b in record.branches))
            if (isinstance(record, netspec.Activation) and out and isinstance(out[-1], _TAKE_ACTIVATION)
                    and out[-1].activation is None):
                record = self.replaced(out.pop(), activation=record.activation)
            out.append(record)
        return out

    def replaced(self, record, **changes):
        new = dataclasses.replace(record, **changes)
        self.records.append(new)
        if id(record) in self.weights:
            self.weights[id(new)] = self.weights.pop(id(record))
        return new

    # -------------------------------------------------------------- paths and blocks
    def path(self, tensor: str, stop: str, shape, first=None):
        """The records from ``tensor`` to ``stop``; ``first`` restricts the consumers taken at ``tensor``."""
        records = []
        while tensor != stop:
            users = first if first is not None else self.consumers.get(tensor, [])
            first = None
            if not users:
                raise _Refused(f"the graph's path from its input stops at tensor {printable(tensor)!r}, which no "
                               "node reads, before its output")
            if len(users) > 1:
                block, tensor, shape = self.block(tensor, users, shape)
                records.append(block)
                continue
            made, tensor, shape = self.node(users[0], tensor, shape)
            records.extend(made)
        return records, shape

    def join_of(self, users):
        """The first node, in graph order, that every one of ``users`` (the readers of one tensor) reaches, and
        for each node up to it a bit mask of the users that reach it. One pass over the nodes between the fork
        and the join (graph order is topological: the checker saw to it), so a long graph costs no more per
        fork than the fork's own span."""
        masks = {id(user): 1 << i for i, user in enumerate(users)}
        full = (1 << len(users)) - 1
        for node in self.nodes[min(self.order[id(user)] for user in users):]:
            mask = masks.get(id(node), 0)
            for name in node.input:
                producer = self.producer.get(name)
                if producer is not None:
                    mask |= masks.get(id(producer), 0)
            if mask:
                masks[id(node)] = mask
            if mask == full:
                return node, masks
        return None, masks

    def block(self, tensor: str, users, shape):
        self.depth += 1
        if self.depth > netspec.MAX_NESTING:
            raise _Refused(f"blocks nest more than {netspec.MAX_NESTING} deep at tensor {printable(tensor)!r}; a "
                           "network needs far fewer")
        join, masks = self.join_of(users)
        if join is None or join.op_type not in ("Add", "Concat"):
            what = f"at node {_label(join)} ({printable(join.op_type)})" if join is not None else "nowhere"
            raise _Refused(f"tensor {printable(tensor)!r} feeds {len(users)} nodes whose paths join {what}; a fork "
                           "must join at an Add (Residual) or a Concat along the channels (Concat)")
        self.visit(join)
        branches = []
        for end in join.input:
            if end == tensor:
                branches.append(([], tuple(shape)))
                continue
            producer = self.producer.get(end)
            if producer is None:
                self.refuse(join, f"adds or joins {printable(end)!r}, which is not computed from the fork at "
                                  f"{printable(tensor)!r}")
            reached = masks.get(id(producer), 0)
            starts = [user for i, user in enumerate(users) if reached >> i & 1]
            branches.append(self.path(tensor, end, shape, first=starts))
        shapes = [s for _, s in branches]
        if join.op_type == "Add":
            if len(branches) != 2 or not branches[0][0] and not branches[1][0]:
                self.refuse(join, "a residual join adds exactly two paths, at least one of them with layers")
            (body, body_shape), (shortcut, _) = sorted(branches, key=lambda b: not b[0])
            if shapes[0] != shapes[1]:
                self.refuse(join, f"adds tensors of shapes {shapes[0]} and {shapes[1]}")
            record = self.build(join, lambda: netspec.Residual(list(body), list(shortcut)))
            self.depth -= 1
            return self.record(record), join.output[0], body_shape
        axis = int(_attributes(self.onnx, join).get("axis", 1))
        if axis not in (1, 1 - len(shape) - 1) or len(branches) < 2:
            self.refuse(join, f"concatenates along axis {axis}; our Concat block joins the channel axis 1")
        record = self.build(join, lambda: netspec.Concat([list(b) for b, _ in branches]))
        self.depth -= 1
        return self.record(record), join.output[0], self.infer(record, shape, join)

    # -------------------------------------------------------------- one node (and the ones it takes along)
    def node(self, node, tensor: str, shape):
        if node.op_type in ("Add", "Concat"):
            self.refuse(node, "joins this path with a tensor computed elsewhere; only a fork from one tensor "
                              "that joins again is expressed (our Residual and Concat blocks)")
        self.visit(node)
        if node.input[0] != tensor:
            self.refuse(node, f"reads the path's tensor {printable(tensor)!r} as an input other than its first")
        if len(node.output) > 1 and any(self.consumers.get(o) for o in node.output[1:]):
            self.refuse(node, "a second output (indices, a mask, batch statistics) is used; inference has none")
        method = getattr(self, "_" + node.op_type)
        records, out, shape = method(node, _attributes(self.onnx, node), shape)
        return records, out, shape

    def _rank(self, node, shape, weight=None) -> int:
        rank = len(shape) - 1
        if rank not in (1, 2):
            self.refuse(node, f"needs a (C, L) or (C, H, W) map per sample; its input has shape {tuple(shape)}")
        if weight is not None and weight.ndim != rank + 2:
            self.refuse(node, f"has a weight of shape {weight.shape} for an input map of rank {rank}")
        return rank

    def _padding(self, node, attrs, rank):
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return "same" if auto == "SAME_UPPER" else "same_lower"
        if auto == "VALID":
            return "valid"
        if auto != "NOTSET":
            self.refuse(node, f"auto_pad={auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        return _pairs(attrs.get("pads"), rank)

    def _Conv(self, node, attrs, shape, folded=None):
        weight = self.const(node, 1, "weight")
        bias = self.const(node, 2, "bias", required=False)
        rank = self._rank(node, shape, weight)
        padding, mode = self._padding(node, attrs, rank), "zeros"
        if folded is not None:
            padding, mode = folded
        group = int(attrs.get("group", 1))
        if weight.shape[1] * group != shape[0]:
            self.refuse(node, f"has a weight of shape {weight.shape} and group={group} for {shape[0]} input channels")
        kind = netspec.Conv1D if rank == 1 else netspec.Conv2D
        record = self.build(node, lambda: kind(
            int(weight.shape[0]), tuple(weight.shape[2:]), strides=_ints(attrs.get("strides", (1,) * rank)),
            padding=padding, padding_mode=mode, dilation=_ints(attrs.get("dilations", (1,) * rank)), groups=group,
            use_bias=bias is not None))
        self._check_kernel(node, attrs, weight)
        self.record(record, weight=weight, bias=bias)
        return [record], node.output[0], self.infer(record, shape, node)

    def _check_kernel(self, node, attrs, weight):
        if "kernel_shape" in attrs and _ints(attrs["kernel_shape"]) != tuple(weight.shape[2:]):
            self.refuse(node, f"kernel_shape {list(attrs['kernel_shape'])} differs from its weight's {weight.shape}")

    def _ConvTranspose(self, node, attrs, shape):
        weight = self.const(node, 1, "weight")
        bias = self.const(node, 2, "bias", required=False)
        rank = self._rank(node, shape, weight)
        if "output_shape" in attrs or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            self.refuse(node, "output_shape and auto_pad SAME are not read; give the amounts in pads")
        group = int(attrs.get("group", 1))
        if weight.shape[0] != shape[0]:
            self.refuse(node, f"has a weight of shape {weight.shape} for {shape[0]} input channels")
        kind = netspec.Conv1DTranspose if rank == 1 else netspec.Conv2DTranspose
        record = self.build(node, lambda: kind(
            int(weight.shape[1]) * group, tuple(weight.shape[2:]), strides=_ints(attrs.get("strides", (1,) * rank)),
            padding=_pairs(attrs.get("pads"), rank), output_padding=_ints(attrs.get("output_padding", (0,) * rank)),
            dilation=_ints(attrs.get("dilations", (1,) * rank)), groups=group, use_bias=bias is not None))
        self._check_kernel(node, attrs, weight)
        self.record(record, weight=weight, bias=bias)
        return [record], node.output[0], self.infer(record, shape, node)

    def _pool(self, node, attrs, shape, kind: str, folded=None):
        rank = self._rank(node, shape)
        if any(d != 1 for d in _ints(attrs.get("dilations", ()))):
            self.refuse(node, f"dilations={list(attrs['dilations'])}: our pooling layers have no dilation")
        kernel = _ints(attrs["kernel_shape"]) if "kernel_shape" in attrs else self.refuse(node, "has no kernel_shape")
        padding = self._padding(node, attrs, rank) if folded is None else folded
        arguments = dict(strides=_ints(attrs.get("strides", (1,) * rank)), padding=padding,
                         ceil_mode=bool(attrs.get("ceil_mode", 0)))
        if kind == "avg":
            classes = (netspec.AvgPool1D, netspec.AvgPool2D)
            arguments["count_include_pad"] = bool(attrs.get("count_include_pad", 0))  # ONNX's default: 0
        else:
            classes = (netspec.MaxPool1D, netspec.MaxPool2D)
        record = self.build(node, lambda: classes[rank - 1](kernel, **arguments))
        self.record(record)
        return [record], node.output[0], self.infer(record, shape, node)

    def _MaxPool(self, node, attrs, shape, folded=None):
        return self._pool(node, attrs, shape, "max", folded)

    def _AveragePool(self, node, attrs, shape):
        return self._pool(node, attrs, shape, "avg")

    def _global(self, node, shape, kind: str):
        rank = self._rank(node, shape)
        after = self.only_consumer(node.output[0])
        if after is not None and self._flattens(after, (shape[0],) + (1,) * rank):
            self.visit(after)
            classes = {"avg": (netspec.GlobalAvgPool1D, netspec.GlobalAvgPool2D),
                       "max": (netspec.GlobalMaxPool1D, netspec.GlobalMaxPool2D)}[kind]
            record = self.record(classes[rank - 1]())
            return [record], after.output[0], (shape[0],)
        classes = {"avg": (netspec.AvgPool1D, netspec.AvgPool2D), "max": (netspec.MaxPool1D, netspec.MaxPool2D)}[kind]
        record = self.record(classes[rank - 1](tuple(shape[1:])))  # the whole map as one window: (C, 1, ...)
        return [record], node.output[0], self.infer(record, shape, node)

    def _GlobalAveragePool(self, node, attrs, shape):
        return self._global(node, shape, "avg")

    def _GlobalMaxPool(self, node, attrs, shape):
        return self._global(node, shape, "max")

    def _flattens(self, node, shape) -> bool:
        """Whether ``node`` turns (N, *shape) into (N, prod(shape)) as our Flatten does (C, H, W order)."""
        if node.domain not in ("", "ai.onnx"):
            return False
        attrs = _attributes(self.onnx, node)
        if node.op_type == "Flatten":
            return int(attrs.get("axis", 1)) in (1, -len(shape))
        if node.op_type == "Reshape" and len(node.input) > 1:
            target = self.values.get(node.input[1])
            if not isinstance(target, np.ndarray) or target.shape != (2,):
                return False
            first, second = (int(v) for v in target)
            return first in (0, -1) and second in (-1, math.prod(shape)) and (first, second) != (-1, -1)
        if node.op_type == "Squeeze":
            axes = attrs.get("axes") if self.opset < 13 else (
                self.values.get(node.input[1]) if len(node.input) > 1 else None)
            if axes is None:
                return all(n == 1 for n in shape[1:])
            axes = sorted(int(a) % (len(shape) + 1) for a in np.asarray(axes).ravel())
            return all(n == 1 for n in shape[1:]) and axes == list(range(2, len(shape) + 1))
        return False

    def _Flatten(self, node, attrs, shape):
        if not self._flattens(node, shape):
            self.refuse(node, f"axis={attrs.get('axis', 1)}: our Flatten keeps the batch axis (axis 1)")
        if len(shape) == 1:
            return [], node.output[0], shape  # already (N, features): the identity
        record = self.record(netspec.Flatten())
        return [record], node.output[0], (math.prod(shape),)

    def _Reshape(self, node, attrs, shape):
        self.const(node, 1, "target shape")
        if not self._flattens(node, shape):
            self.refuse(node, f"reshapes to {self.values[node.input[1]].tolist()}; only a flatten to (N, "
                              f"{math.prod(shape)}) is expressed")
        return self._Flatten(node, {}, shape)

    def _Squeeze(self, node, attrs, shape):
        if not self._flattens(node, shape):
            self.refuse(node, "only a Squeeze of size-1 spatial axes to (N, C) is expressed")
        return self._Flatten(node, {}, shape)

    def _dense(self, node, shape, weight, bias):
        if len(shape) != 1:
            self.refuse(node, f"needs a feature vector per sample; its input has shape {tuple(shape)} (a Flatten "
                              "first)")
        if weight.ndim != 2 or weight.shape[1] != shape[0]:
            self.refuse(node, f"has a weight of shape {weight.shape} for {shape[0]} input features")
        units = int(weight.shape[0])
        if bias is not None:
            if bias.size != units:
                self.refuse(node, f"has a bias of shape {bias.shape} for {units} units")
            bias = bias.reshape(units)
        record = self.record(netspec.Dense(units, use_bias=bias is not None), weight=weight, bias=bias)
        return record, (units,)

    def _Gemm(self, node, attrs, shape):
        if int(attrs.get("transA", 0)):
            self.refuse(node, "transA=1: the path's tensor must be the left factor as it is")
        b = self.const(node, 1, "weight B")
        c = self.const(node, 2, "bias C", required=False)
        weight = b if int(attrs.get("transB", 0)) else b.T
        weight = weight * float(attrs.get("alpha", 1.0))
        bias = None if c is None else c * float(attrs.get("beta", 1.0))
        record, shape = self._dense(node, shape, weight, bias)
        return [record], node.output[0], shape

    def _MatMul(self, node, attrs, shape):
        b = self.const(node, 1, "weight")
        out, bias = node.output[0], None
        after = self.only_consumer(out)
        if after is not None and after.op_type == "Add" and after.domain in ("", "ai.onnx"):
            other = [i for i in after.input if i != out]
            if len(other) == 1 and isinstance(self.values.get(other[0]), np.ndarray):
                self.visit(after)
                bias, out = self.values[other[0]], after.output[0]
        record, shape = self._dense(node, shape, b.T if b.ndim == 2 else b, bias)
        return [record], out, shape

    def _BatchNormalization(self, node, attrs, shape):
        if int(attrs.get("training_mode", 0)):
            self.refuse(node, "training_mode=1; an imported graph is run for inference")
        scale, bias, mean, var = (self.const(node, i, what) for i, what in
                                  ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        channels = shape[0]
        if any(a.shape != (channels,) for a in (scale, bias, mean, var)):
            self.refuse(node, f"has statistics of shapes {[a.shape for a in (scale, bias, mean, var)]} for "
                              f"{channels} channels")
        eps, momentum = (_float32_value(attrs.get(key, default)) for key, default in (("epsilon", 1e-5),
                                                                                        ("momentum", 0.9)))
        record = self.build(node, lambda: netspec.BatchNorm(eps=eps, momentum=float(f"{1.0 - momentum:.7g}")))
        self.record(record, weight=scale, bias=bias, running_mean=mean, running_var=var)
        return [record], node.output[0], shape

    def _activation(self, node, attrs, shape):
        name = _ACTIVATIONS[node.op_type]
        if node.op_type == "LeakyRelu" and not math.isclose(float(attrs.get("alpha", 0.01)), 0.01, rel_tol=1e-6):
            self.refuse(node, f"alpha={attrs['alpha']}: our leaky_relu has the slope 0.01 (PyTorch's default)")
        if node.op_type == "Elu" and not math.isclose(float(attrs.get("alpha", 1.0)), 1.0, rel_tol=1e-6):
            self.refuse(node, f"alpha={attrs['alpha']}: our elu has alpha 1.0")
        if node.op_type in ("Softmax", "LogSoftmax"):
            ndim = len(shape) + 1
            axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1))
            if axis % ndim != 1 or (self.opset < 13 and ndim > 2):
                self.refuse(node, f"axis={axis} on a tensor of rank {ndim}: ours normalises over the channel axis 1 "
                                  "alone")
        record = self.record(netspec.Activation(name))
        return [record], node.output[0], shape

    _Relu = _LeakyRelu = _Elu = _Sigmoid = _Tanh = _Softmax = _LogSoftmax = _activation

    def _Dropout(self, node, attrs, shape):
        if len(node.input) > 2 and node.input[2]:
            mode = self.const(node, 2, "training_mode")
            if bool(np.asarray(mode).ravel()[0]):
                self.refuse(node, "training_mode is true; an imported graph is run for inference")
        ratio = self.const(node, 1, "ratio", required=False)
        rate = float(np.asarray(ratio).ravel()[0]) if ratio is not None else float(attrs.get("ratio", 0.5))
        record = self.build(node, lambda: netspec.Dropout(rate))
        return [self.record(record)], node.output[0], shape

    def _Identity(self, node, attrs, shape):
        return [], node.output[0], shape

    def _pad_amounts(self, node, attrs, shape):
        """``(mode, value, pairs)`` over every axis (N, C, *spatial) of a Pad node."""
        ndim = len(shape) + 1
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if self.opset < 11:
            pads, value = attrs.get("pads", ()), float(attrs.get("value", 0.0))
        else:
            pads = self.const(node, 1, "pads")
            value = self.const(node, 2, "constant value", required=False)
            value = 0.0 if value is None else float(np.asarray(value).ravel()[0])
        pads = [int(p) for p in np.asarray(pads).ravel()]
        axes = list(range(ndim))
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) % ndim for a in np.asarray(self.const(node, 3, "axes")).ravel()]
        if len(pads) != 2 * len(axes):
            self.refuse(node, f"has {len(pads)} pads for {len(axes)} axes")
        pairs = [(0, 0)] * ndim
        for i, axis in enumerate(axes):
            pairs[axis] = (pads[i], pads[i + len(axes)])
        if any(p < 0 for pair in pairs for p in pair):
            self.refuse(node, f"crops (negative pads {pads}); only padding is expressed")
        if pairs[0] != (0, 0):
            self.refuse(node, "pads the batch axis")
        return mode, value, pairs

    def _Pad(self, node, attrs, shape):
        mode, value, pairs = self._pad_amounts(node, attrs, shape)
        channel, spatial = pairs[1], tuple(pairs[2:])
        after = self.only_consumer(node.output[0])
        fold_into = after is not None and after.domain in ("", "ai.onnx") and channel == (0, 0) and spatial
        if fold_into and mode in _PAD_MODES and after.op_type == "Conv":
            conv_attrs = _attributes(self.onnx, after)
            if all(p == 0 for p in conv_attrs.get("pads", ())) and conv_attrs.get("auto_pad", b"NOTSET") in (
                    b"NOTSET", "NOTSET", b"VALID", "VALID"):
                self.visit(after)
                return self._Conv(after, conv_attrs, shape, folded=(spatial, _PAD_MODES[mode]))
        if fold_into and mode == "constant" and value == -math.inf and after.op_type == "MaxPool":
            pool_attrs = _attributes(self.onnx, after)
            if all(p == 0 for p in pool_attrs.get("pads", ())) and pool_attrs.get("auto_pad", b"NOTSET") in (
                    b"NOTSET", "NOTSET", b"VALID", "VALID"):
                self.visit(after)
                return self._MaxPool(after, pool_attrs, shape, folded=spatial)
        if mode != "constant" or value != 0.0:
            self.refuse(node, f"mode={mode!r} value={value}: only zero padding is a layer of its own (a Pad of mode "
                              "edge, reflect or wrap is read only right before a Conv)")
        records = []
        rank = len(shape) - 1
        if channel != (0, 0):
            records.append(self.record(netspec.ChannelPad(channel)))
        if any(p for pair in spatial for p in pair):
            if rank not in (1, 2):
                self.refuse(node, f"pads spatial axes of a tensor of shape {tuple(shape)}")
            kind = netspec.ZeroPadding1D if rank == 1 else netspec.ZeroPadding2D
            records.append(self.record(kind(spatial if rank == 2 else spatial[0])))
        for record in records:
            shape = self.infer(record, shape, node)
        return records, node.output[0], shape


def _input_of(onnx, graph, values: dict, shown: str):
    """The graph's one input (not an initializer listed as an input): its name, sample shape and dtype."""
    inputs = [v for v in graph.input if v.name not in values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise CheckpointError(f"{shown}: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; a "
                              "model of ours has one of each")
    value = inputs[0]
    kinds = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}
    tensor = value.type.tensor_type
    if tensor.elem_type not in kinds:
        raise CheckpointError(f"{shown}: the input {printable(value.name)!r} is of ONNX type {tensor.elem_type}; "
                              "a model of ours reads float32 or float64")
    dims = list(tensor.shape.dim)
    sample = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
    if len(dims) < 2 or any(n is None or n <= 0 for n in sample):
        raise CheckpointError(f"{shown}: the input {printable(value.name)!r} must have a fixed sample shape (N, C, "
                              f"H, W), (N, C, L) or (N, features), only N free")
    return value.name, tuple(int(n) for n in sample), kinds[tensor.elem_type]


def from_graph(onnx, proto, values: dict, shown: str, engine) -> Model:
    graph = proto.graph
    name, input_shape, dtype = _input_of(onnx, graph, values, shown)
    folded = fold_constants(onnx, graph, values, shown)
    mapper = _Mapper(onnx, proto, values, folded)
    try:
        records, _ = mapper.path(name, graph.output[0].name, input_shape)
        left = [n for n in mapper.nodes if id(n) not in mapper.visited]
        if left:
            mapper.refuse(left[0], "is on no path from the input to the output that our layers express")
        if not records:
            raise _Refused("the graph computes nothing our layers express (no layer between input and output)")
        records = mapper.merged(records)
    except _Refused as error:
        raise CheckpointError(f"{shown}: {error}") from None
    model_name = graph.name if graph.name and graph.name.isprintable() and len(graph.name) <= 200 else "sequential"
    try:
        model = Model(records, input_shape, engine=engine, dtype=dtype, name=model_name)
    except SizeLimitError as error:
        raise SizeLimitError(f"{shown}: {error}") from None
    except (netspec.NetSpecError, TypeError, ValueError) as error:
        raise CheckpointError(f"{shown}: the layers read from the graph do not make a model: {error}") from None
    state = {}
    for layer in model.all_layers():
        for key, array in mapper.weights.get(id(layer.config), {}).items():
            kind = "buffer" if key.startswith("running_") else "param"
            state[f"{kind}/{layer.name}/{key}"] = np.asarray(array)
    model.load_state_arrays(state, shown)
    return model
