"""The ``onnxruntime`` target of ``cnn conform``: each spec op as a one-node ONNX graph run by ONNX Runtime.

Each call builds (or takes from a cache) a small graph with ``onnx.helper``, opset :data:`OPSET`, and runs
it in an ``InferenceSession`` on the CPU execution provider. Sessions are cached per node (operator and
attributes), input dtypes and input ranks (dimensions are left symbolic), so a randomized run creates one
session per distinct attribute set, not one per call.

Mapping: ``Conv`` (per-side ``pads``; ``'same'``/``'same_lower'`` as ``auto_pad`` ``SAME_UPPER``/
``SAME_LOWER``, so the matrix checks ONNX Runtime's own reading of them; fills other than zeros as a
``Pad`` node with mode ``reflect``/``edge``/``wrap`` in front), ``ConvTranspose`` (per-side ``pads``,
``output_padding``), ``MaxPool`` (``ceil_mode``, ``dilations``; its ``Indices`` output counts over the whole
tensor and is taken modulo the plane size for the spec's per-plane index), ``AveragePool`` (with
``count_include_pad`` always set: ONNX's default is the opposite of the spec's), ``GlobalMaxPool``,
``GlobalAveragePool``, ``Relu``, ``LeakyRelu``, ``Elu``, ``Sigmoid``, ``Tanh``, ``Softmax``,
``LogSoftmax`` (opset 13+ semantics: one axis), ``Reshape`` (flatten), ``MatMul``/``Transpose``/``Add``
(linear), ``BatchNormalization`` (``training_mode`` and ONNX's momentum ``1 - momentum``; absent
``weight``/``bias`` are ones/zeros, ONNX requires both), ``SoftmaxCrossEntropyLoss``,
``NegativeLogLikelihoodLoss``.

Declined, each by a rule checked before ONNX Runtime runs: float64 for the operators whose CPU kernels are
float32 only (:data:`FLOAT32_ONLY`; ``cnn conform --matrix`` therefore runs this target in float32,
:data:`DTYPE`); pooling pads not smaller than the kernel (ONNX Runtime refuses them); ``divisor_override``;
``Pad`` ``reflect`` amounts ``>= n`` and ``wrap`` amounts ``> n``; ``label_smoothing`` (ONNX's loss operators
have none). Not offered (:data:`NOT_OFFERED`): every backward op (an inference session computes no
gradients), the optimizers, ``mse_loss``/``half_squared_error`` (no ONNX operator), dropout, augment and the
shape functions.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from cnnconform.adapters import _spec

NAME = f"onnxruntime {ort.__version__}"
CHECKS_ARGUMENTS = False  # ONNX Runtime raises its own errors (or none) for invalid attributes
SPEC_MESSAGES = False
#: The widest float dtype in which this target runs every op it offers (``cnn conform --matrix`` uses it).
DTYPE = "float32"
#: The ONNX opset of every graph (21: per-side pads, ``wrap`` padding, BatchNormalization-15, IR version 10).
OPSET = 21
_IR_VERSION = 10

#: Operators whose ONNX Runtime CPU kernels exist for float32 only (ONNX Runtime 1.32, checked at writing).
FLOAT32_ONLY = ("Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LeakyRelu", "Elu")

_NO_GRAD = "an ONNX Runtime inference session computes no gradients (ONNX has no backward operators)"
#: Spec functions this adapter does not offer, and why (read by ``cnn conform --matrix``).
NOT_OFFERED = {
    **{f"{op}_backward": _NO_GRAD for op in (
        "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
        "avg_pool2d", "global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d", "global_max_pool2d",
        "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax", "flatten", "linear",
        "dropout", "batch_norm", "cross_entropy", "nll_loss", "mse_loss", "half_squared_error")},
    "mse_loss": "no ONNX operator (MeanSquaredDistance existed only in the training preview domain)",
    "half_squared_error": "no ONNX operator",
    **{op: "ONNX's optimizer operators (ai.onnx.preview.training) are not in ONNX Runtime's inference build"
       for op in ("sgd_step", "adam_step", "adadelta_step", "rmsprop_step")},
    "dropout_mask": "the spec's dropout mask is counter-based; ONNX's Dropout draws from the runtime's RNG",
    "dropout": "the spec's dropout mask is counter-based; ONNX's Dropout draws from the runtime's RNG",
    "augment": "no ONNX counterpart of the spec's geometric augmentation",
    **_spec.not_offered_shapes(),
}

__all__: list[str] = []

_SESSIONS: dict = {}
_RUN_OPTIONS = ort.RunOptions()
_RUN_OPTIONS.log_severity_level = 4  # a failing call is reported by cnn conform, not logged to stderr
_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
         np.dtype(np.int64): TensorProto.INT64}


# ---------------------------------------------------------------------------------------------------
# Graphs and sessions


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _session(nodes, inputs, output_types):
    """The cached session of ``nodes`` (``(op_type, input names, output names, attributes)``), graph inputs
    ``(name, array)`` (dtype and rank matter, sizes stay symbolic) and the output element types."""
    key = (_freeze(nodes), tuple((name, a.dtype.str, a.ndim) for name, a in inputs), tuple(output_types))
    session = _SESSIONS.get(key)
    if session is None:
        graph = helper.make_graph(
            [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in nodes], "spec_op",
            [helper.make_tensor_value_info(name, _ELEM[a.dtype], [None] * a.ndim) for name, a in inputs],
            [helper.make_tensor_value_info(f"out{i}", t, None) for i, t in enumerate(output_types)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = _IR_VERSION
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a conformance run is many tiny calls
        options.log_severity_level = 3
        session = _SESSIONS[key] = ort.InferenceSession(model.SerializeToString(), options,
                                                        providers=["CPUExecutionProvider"])
    return session


def _run(nodes, inputs, output_types):
    for op_type, *_ in nodes:
        float64 = [name for name, a in inputs if a.dtype == np.float64]
        if op_type in FLOAT32_ONLY and float64:
            raise NotImplementedError(f"ONNX Runtime's CPU {op_type} kernel is float32 only (run with --dtype float32)")
    feeds = {name: np.ascontiguousarray(a) for name, a in inputs}
    return _session(nodes, inputs, output_types).run(None, feeds, _RUN_OPTIONS)


def _float_type(x: np.ndarray) -> int:
    return _ELEM[x.dtype]


def _one_node(op_type, arrays: list, attrs: dict, outputs=None):
    """Run one node on ``arrays`` (``None`` entries are omitted optional inputs); one output unless
    ``outputs`` lists the element types."""
    inputs = [(f"in{i}", a) for i, a in enumerate(arrays) if a is not None]
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    while names and names[-1] == "":
        names.pop()
    types = outputs or [_float_type(arrays[0])]
    results = _run([(op_type, names, [f"out{i}" for i in range(len(types))], attrs)], inputs, types)
    return results if outputs else results[0]


def spec_op(op: str):
    """Register ``fn(values)`` (the bound arguments) as the spec function ``op``."""

    def decorate(fn):
        globals()[op] = _spec.spec_function(op, fn)
        __all__.append(op)
        return fn

    return decorate


# ---------------------------------------------------------------------------------------------------
# Padding


def _onnx_pads(pairs) -> list[int]:
    """ONNX's pads: all begins, then all ends."""
    return [b for b, _ in pairs] + [e for _, e in pairs]


def _padding_attrs(padding, sizes, kernel, stride, dilation) -> dict:
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "same_lower":
        return {"auto_pad": "SAME_LOWER"}
    return {"pads": _onnx_pads(_spec.pads(padding, sizes, kernel, stride, dilation))}


_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# ---------------------------------------------------------------------------------------------------
# Convolution


def _conv(v, rank):
    x, weight, bias = v["x"], v["weight"], v["bias"]
    s, d = _spec.as_tuple(v["stride"], rank), _spec.as_tuple(v["dilation"], rank)
    k = weight.shape[2:]
    attrs = {"strides": list(s), "dilations": list(d), "group": v["groups"], "kernel_shape": list(k)}
    mode = v["padding_mode"]
    pairs = _spec.pads(v["padding"], x.shape[2:], k, s, d)
    if isinstance(v["padding"], str) and v["padding"].startswith("same") and any(dd != 1 for dd in d):
        raise NotImplementedError("ONNX Runtime's Conv refuses dilation with auto_pad SAME_UPPER/SAME_LOWER")
    if mode == "zeros" or not any(b or e for b, e in pairs):
        attrs.update(_padding_attrs(v["padding"], x.shape[2:], k, s, d))
        return _one_node("Conv", [x, weight, bias], attrs)
    for n, (b, e) in zip(x.shape[2:], pairs):
        if (mode == "reflect" and max(b, e) >= n) or (mode == "circular" and max(b, e) > n):
            raise NotImplementedError(f"ONNX Runtime's Pad {_PAD_MODE[mode]!r} refuses amounts {(b, e)} for n={n}")
    amounts = np.array([0, 0] + [b for b, _ in pairs] + [0, 0] + [e for _, e in pairs], dtype=np.int64)
    arrays = [("x", x), ("pads", amounts), ("w", weight)] + ([("b", bias)] if bias is not None else [])
    nodes = [("Pad", ["x", "pads"], ["padded"], {"mode": _PAD_MODE[mode]}),
             ("Conv", ["padded", "w"] + (["b"] if bias is not None else []), ["out0"], attrs)]
    return _run(nodes, arrays, [_float_type(x)])[0]


@spec_op("conv1d")
def _conv1d(v):
    return _conv(v, 1)


@spec_op("conv2d")
def _conv2d(v):
    return _conv(v, 2)


def _conv_transpose(v, rank):
    x, weight = v["x"], v["weight"]
    s, d, extra = (_spec.as_tuple(v[name], rank) for name in ("stride", "dilation", "output_padding"))
    k = weight.shape[2:]
    pairs = _spec.pads(v["padding"], x.shape[2:], k, s, d)
    if any(o >= ss for o, ss in zip(extra, s)):
        raise NotImplementedError(f"ONNX Runtime's ConvTranspose requires output_padding < stride (the spec, "
                                  f"like PyTorch, allows < max(stride, dilation)); got {extra} for stride {s}")
    attrs = {"strides": list(s), "dilations": list(d), "group": v["groups"], "kernel_shape": list(k),
             "output_padding": list(extra), "pads": _onnx_pads(pairs)}
    return _one_node("ConvTranspose", [x, weight, v["bias"]], attrs)


@spec_op("conv_transpose1d")
def _conv_transpose1d(v):
    return _conv_transpose(v, 1)


@spec_op("conv_transpose2d")
def _conv_transpose2d(v):
    return _conv_transpose(v, 2)


# ---------------------------------------------------------------------------------------------------
# Pooling


def _pool_attrs(v, rank, dilation=1) -> dict:
    x = v["x"]
    k = _spec.as_tuple(v["kernel_size"], rank)
    s = k if v["stride"] is None else _spec.as_tuple(v["stride"], rank)
    d = _spec.as_tuple(dilation, rank)
    pairs = _spec.pads(v["padding"], x.shape[2:], k, s, d)
    if any(max(b, e) >= kk for (b, e), kk in zip(pairs, k)):
        raise NotImplementedError(f"ONNX Runtime's pools require pads smaller than the kernel; got {pairs} "
                                  f"for kernel {k}")
    attrs = {"kernel_shape": list(k), "strides": list(s), "ceil_mode": int(v["ceil_mode"])}
    attrs.update(_padding_attrs(v["padding"], x.shape[2:], k, s, d))
    return attrs


def _max_pool(v, rank):
    attrs = _pool_attrs(v, rank, v["dilation"])
    attrs["dilations"] = list(_spec.as_tuple(v["dilation"], rank))
    x = v["x"]
    if not v["return_indices"]:
        return _one_node("MaxPool", [x], attrs)
    values, indices = _one_node("MaxPool", [x], attrs, outputs=[_float_type(x), TensorProto.INT64])
    return values, indices % int(np.prod(x.shape[2:]))  # whole-tensor flat index -> index in its plane


@spec_op("max_pool1d")
def _max_pool1d(v):
    return _max_pool(v, 1)


@spec_op("max_pool2d")
def _max_pool2d(v):
    return _max_pool(v, 2)


def _avg_pool(v, rank):
    if v.get("divisor_override") is not None:
        raise NotImplementedError("ONNX's AveragePool has no divisor_override attribute")
    attrs = _pool_attrs(v, rank)
    attrs["count_include_pad"] = int(v["count_include_pad"])
    return _one_node("AveragePool", [v["x"]], attrs)


@spec_op("avg_pool1d")
def _avg_pool1d(v):
    return _avg_pool(v, 1)


@spec_op("avg_pool2d")
def _avg_pool2d(v):
    return _avg_pool(v, 2)


for _op, _onnx in (("global_avg_pool1d", "GlobalAveragePool"), ("global_avg_pool2d", "GlobalAveragePool"),
                   ("global_max_pool1d", "GlobalMaxPool"), ("global_max_pool2d", "GlobalMaxPool"),
                   ("relu", "Relu"), ("sigmoid", "Sigmoid"), ("tanh", "Tanh")):
    spec_op(_op)(lambda v, _onnx=_onnx: _one_node(_onnx, [v["x"]], {}))


# ---------------------------------------------------------------------------------------------------
# Activations, dense, normalisation, losses


@spec_op("leaky_relu")
def _leaky_relu(v):
    return _one_node("LeakyRelu", [v["x"]], {"alpha": float(v["negative_slope"])})


@spec_op("elu")
def _elu(v):
    return _one_node("Elu", [v["x"]], {"alpha": float(v["alpha"])})


@spec_op("softmax")
def _softmax(v):
    return _one_node("Softmax", [v["x"]], {"axis": v["dim"]})


@spec_op("log_softmax")
def _log_softmax(v):
    return _one_node("LogSoftmax", [v["x"]], {"axis": v["dim"]})


@spec_op("flatten")
def _flatten(v):
    x = v["x"]
    if x.ndim == 0:
        shape = [1]
    else:
        start, end = v["start_dim"] % x.ndim, v["end_dim"] % x.ndim
        shape = list(x.shape[:start]) + [-1] + list(x.shape[end + 1:])
    return _run([("Reshape", ["x", "shape"], ["out0"], {})],
                [("x", x), ("shape", np.array(shape, dtype=np.int64))], [_float_type(x)])[0]


@spec_op("linear")
def _linear(v):
    x, weight, bias = v["x"], v["weight"], v["bias"]
    nodes = [("Transpose", ["w"], ["wt"], {"perm": [1, 0]}),
             ("MatMul", ["x", "wt"], ["out0" if bias is None else "xw"], {})]
    inputs = [("x", x), ("w", weight)]
    if bias is not None:
        nodes.append(("Add", ["xw", "b"], ["out0"], {}))
        inputs.append(("b", bias))
    return _run(nodes, inputs, [_float_type(x)])[0]


@spec_op("batch_norm")
def _batch_norm(v):
    x, mean, var = v["x"], v["running_mean"], v["running_var"]
    c = x.shape[1]
    scale = np.ones(c, x.dtype) if v["weight"] is None else v["weight"]
    shift = np.zeros(c, x.dtype) if v["bias"] is None else v["bias"]
    attrs = {"epsilon": float(v["eps"])}
    if not v["training"]:
        return _one_node("BatchNormalization", [x, scale, shift, mean, var], attrs)
    if mean is None:  # no running statistics to update: the inputs are still required
        mean, var = np.zeros(c, x.dtype), np.ones(c, x.dtype)
        update = False
    else:
        update = True
    attrs.update(training_mode=1, momentum=1.0 - float(v["momentum"]))  # ONNX weighs the old value
    t = _float_type(x)
    y, new_mean, new_var = _one_node("BatchNormalization", [x, scale, shift, mean, var], attrs, outputs=[t, t, t])
    if update:  # the spec updates the running statistics in place; ONNX returns them
        v["running_mean"][...] = new_mean
        v["running_var"][...] = new_var
    return y


def _class_loss(v, op_type):
    if v.get("label_smoothing"):
        raise NotImplementedError("ONNX's SoftmaxCrossEntropyLoss has no label smoothing")
    attrs = {"reduction": v["reduction"], "ignore_index": int(v["ignore_index"])}
    return _one_node(op_type, [v["input"], v["target"], v["weight"]], attrs)


@spec_op("cross_entropy")
def _cross_entropy(v):
    return _class_loss(v, "SoftmaxCrossEntropyLoss")


@spec_op("nll_loss")
def _nll_loss(v):
    return _class_loss(v, "NegativeLogLikelihoodLoss")
