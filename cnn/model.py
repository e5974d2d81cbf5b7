"""A sequential model: netspec layer records, built into runtime layers, run over one engine.

>>> from cnnbase.netspec import Conv2D, MaxPool2D, Flatten, Dense
>>> model = Model([Conv2D(4, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(10, activation="softmax")],
...               (1, 8, 8), engine="refcnn", seed=0)
>>> [row.output_shape for row in model.summary().rows]
[(4, 6, 6), (4, 3, 3), (36,), (10,)]

The model is a classifier trained with cross-entropy. A final ``softmax`` (a Dense layer's activation or
an Activation layer) is not applied while training: :meth:`Model.forward` returns the *logits* and the
loss is ``cross_entropy(logits, y)``, which is the same number as the log-loss of the softmax output but
computed stably. :meth:`Model.predict` returns ``softmax(logits)`` (``specs/training.md``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cnnbase import netspec
from cnnbase.checks import check_bool, check_int, invalid, is_int, printable
from cnnbase.limits import SizeLimitError, check_bytes, nbytes_of
from cnnbase.netspec import brief_value, format_value

from . import layers as L
from .files import CheckpointError, load_archive, save_archive

__all__ = ["ENGINES", "get_engine", "Model", "LoadReport", "load_model"]

#: Engine modules a model can run on.
ENGINES = ("fastcnn", "refcnn")

#: The float types a model computes in.
DTYPES = ("float32", "float64")

#: Seeds are 64-bit (:func:`cnn.layers.derive_seed` works modulo 2**64): a larger one would only alias a
#: smaller one, and one of thousands of digits could not even be written to the model file.
SEED_LIMIT = 2**64

_LOSS_OPS = ("cross_entropy", "cross_entropy_backward", "softmax")
_FORMAT = "cnn-model-1"

#: The keys of a model configuration (:meth:`Model.config`): required, then optional.
_CONFIG_KEYS = ("format", "input_shape", "layers", "dtype", "seed")
_OPTIONAL_CONFIG_KEYS = ("name", "frozen")


def get_engine(engine="fastcnn"):
    """The engine module for a name (``'fastcnn'`` or ``'refcnn'``), or an engine module given as is (anything
    with the engines' ``softmax``; tests pass stand-ins)."""
    if isinstance(engine, str):
        if engine not in ENGINES:
            raise ValueError(invalid("Model", "engine", f"one of {ENGINES}", brief_value(engine)))
        return importlib.import_module(engine)
    if not callable(getattr(engine, "softmax", None)):
        raise TypeError(invalid("Model", "engine", f"one of {ENGINES} or an engine module", brief_value(engine)))
    return engine


def _check_seed(seed) -> int:
    """A seed is an int in [0, 2**64): 1.5 is not silently 1, and True is not 1."""
    expected = "a non-negative int below 2**64"
    if not is_int(seed):
        raise TypeError(invalid("Model", "seed", expected, brief_value(seed)))
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(invalid("Model", "seed", expected, brief_value(seed)))
    return int(seed)


def _check_dtype(dtype) -> np.dtype:
    """``'float32'``/``'float64'`` or their NumPy types; ``None`` is refused (NumPy would read it as float64)."""
    expected = "'float32' or 'float64'"
    try:
        resolved = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        error = ValueError if isinstance(dtype, str) else TypeError
        raise error(invalid("Model", "dtype", expected, brief_value(dtype)))
    return resolved


def _check_model_name(name) -> str:
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 200:
        raise (ValueError if isinstance(name, str) else TypeError)(
            invalid("Model", "name", "a non-empty printable str of at most 200 characters", brief_value(name)))
    return name


def _layer_records(layers):
    """The layer records of what :class:`Model` is given, refusing anything that is none (before any work)."""
    if isinstance(layers, str):
        return netspec.parse_spec(layers)
    if not isinstance(layers, (list, tuple)):
        raise TypeError(invalid("Model", "layers", "a list of layer records, a text spec or a Network",
                                brief_value(layers)))
    if not layers:
        raise netspec.NetSpecError("Model: the network has no layers; a classifier needs at least one "
                                   "(for example [Flatten(), Dense(10)])")
    return list(layers)


def _engine_name(engine) -> str:
    return getattr(engine, "__name__", str(engine))


class Model:
    """Layers and their arrays, over one engine.

    Parameters
    ----------
    layers : list of layer records, a text spec (``"conv32k3 relu, flatten, dense10"``) or a
        :class:`cnnbase.netspec.Network`
    input_shape : tuple
        One sample: ``(C, H, W)``, ``(C, L)`` or ``(features,)``; may be None for a Network that has one.
    engine : 'fastcnn', 'refcnn' or an engine module
    seed : int
        Seeds the initial weights and, through :func:`cnn.layers.derive_seed`, every dropout mask.
    dtype : 'float32' or 'float64'
        The float type of the weights and activations.
    """

    def __init__(self, layers, input_shape=None, *, engine="fastcnn", seed: int = 0, dtype="float32",
                 name: str = "sequential"):
        if isinstance(layers, str) and layers in netspec.PRESETS:  # one word: Model("resnet20")
            layers = netspec.PRESETS[layers]
        if isinstance(layers, netspec.Network):
            input_shape = input_shape if input_shape is not None else layers.input_shape
            layers = layers.layers
        self.configs = _layer_records(layers)
        if input_shape is None:
            raise netspec.NetSpecError("Model: the network has no input shape; give one, e.g. input_shape=(1, 28, 28)")
        # Every argument is checked before any work, and every array's size before any is allocated.
        self.dtype = _check_dtype(dtype)
        self.engine = get_engine(engine)
        self.seed = _check_seed(seed)
        self.name = _check_model_name(name)
        self.input_shape = tuple(int(n) for n in netspec.summarize(self.configs, input_shape).input_shape)
        L.check_sizes(self.configs, self.input_shape, self.dtype)
        self._largest_output = max(
            ((L._layer_label("Model.forward", number, config, name), out)
             for number, config, name, _, out in L.walk_layers(self.configs, self.input_shape)),
            key=lambda item: math.prod(item[1]))
        self.layers, _ = L.build_layers(self.configs, self.input_shape, self.seed, self.dtype)
        self.output_activation = self._take_final_softmax()
        self._last_logits_shape = None  # the shape of the last forward pass's logits; backward goes back through it
        self._last_pass_kept = True  # whether that pass kept what a backward needs (forward's `backward`)

    def _take_final_softmax(self) -> str | None:
        last = self.layers[-1]
        if last.activation == "softmax":
            last.activation = None
            return "softmax"
        return None

    # ------------------------------------------------------------------ structure
    def all_layers(self) -> list[L.Layer]:
        """Every runtime layer, depth first: a block, then the layers inside it."""
        out = []
        for layer in self.layers:
            out.append(layer)
            out.extend(layer.sublayers())
        return out

    def get_layer(self, name: str) -> L.Layer:
        """The runtime layer named ``name`` (a block's inner layers as ``residual/body/conv2d``); ``KeyError``
        naming the layers when there is none."""
        for layer in self.all_layers():
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.all_layers())
        raise KeyError(f"no layer named {format_value(name)}; layers: {names}")

    def freeze(self, *names: str) -> None:
        """Mark layers not trainable: no updates, and their batch norm uses its running statistics."""
        for name in names:
            self.get_layer(name).trainable = False

    def freeze_until(self, name: str) -> list[str]:
        """Freeze every top-level layer from the first up to and including ``name`` (a block with the layers
        inside it), as Keras users write ``for layer in base.layers[:k]: layer.trainable = False``: the
        layers that detect edges and shapes keep their pretrained weights, the later ones learn. Returns the
        names frozen; a name that is no top-level layer is a ``ValueError`` listing them."""
        names = [layer.name for layer in self.layers]
        if not isinstance(name, str) or name not in names:
            raise ValueError(invalid("Model.freeze_until", "name", f"a layer of the model ({', '.join(names)})",
                                     brief_value(name)))
        frozen = names[:names.index(name) + 1]
        for layer in self.layers[:len(frozen)]:
            layer.trainable = False
        return frozen

    def frozen_params(self) -> int:
        """The parameters of frozen layers (``trainable = False``): Keras counts them as Non-trainable, with
        batch norm's running statistics; ``cnn train`` prints them so."""
        return sum(layer.count_params() - sum(b.size for b in layer.buffers.values())
                   for layer in self.all_layers() if not layer.trainable and not layer.sublayers())

    def unfreeze(self, *names: str) -> None:
        for name in names:
            self.get_layer(name).trainable = True

    def summary(self, batch_size: int = 1) -> netspec.Summary:
        """The rows ``cnn shape`` prints (netspec's summary), memory counted in this model's dtype.

        ``print(model.summary())`` prints the table (``summary.print(depth=-1)`` with the layers inside blocks);
        its ``total_params``, ``trainable_params`` and ``non_trainable_params`` are the figures ``cnn train``
        prints."""
        return netspec.summarize(self.configs, self.input_shape, batch_size=batch_size,
                                 dtype_bytes=self.dtype.itemsize)

    def required_ops(self) -> set[str]:
        ops = set(_LOSS_OPS)
        for layer in self.all_layers():
            ops.update(layer.ops)
        return ops

    def check_engine(self) -> None:
        """Refuse an engine that lacks an op this model calls (fastcnn while it is being written)."""
        missing = sorted(op for op in self.required_ops() if not hasattr(self.engine, op))
        if missing:
            raise RuntimeError(
                f"engine {_engine_name(self.engine)!r} has no {', '.join(missing)}; use engine='refcnn' for this model"
            )

    # ------------------------------------------------------------------ computation
    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a batch for which an activation of this model would exceed ``CNN_MAX_ARRAY_BYTES``
        (:class:`~cnnbase.limits.SizeLimitError` naming the layer); :meth:`forward` checks every batch."""
        n = check_int(batch_size, "batch_size", "Model.check_batch_size", minimum=0)
        shape = (n,) + self.input_shape
        check_bytes(nbytes_of(shape, self.dtype.itemsize), what=f"Model.forward: the input as {self.dtype}, {shape}")
        label, out = self._largest_output
        shape = (n,) + out
        check_bytes(nbytes_of(shape, self.dtype.itemsize), what=f"{label}: its output for a batch of {n}, {shape}")

    def _check_input(self, x, op: str, batch_size: int | None = None) -> np.ndarray:
        """``x`` as this model's contiguous input array; ``batch_size``: ``x`` is run in batches of at most
        that many rows (``fit``, ``evaluate``), so the size limit applies to one such batch, not to ``x``."""
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            kind = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{op}: argument `x` must be a numpy.ndarray of floats; received {kind}.")
        if x.shape[1:] != self.input_shape or x.ndim != len(self.input_shape) + 1:
            expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            raise ValueError(f"{op}: argument `x` must have shape {expected} for this model; received shape {x.shape}.")
        n = len(x)
        if batch_size is not None and n > batch_size:
            shape = (n,) + self.input_shape  # the copy below: the data as this model's dtype
            check_bytes(nbytes_of(shape, self.dtype.itemsize), what=f"{op}: argument `x` as {self.dtype}, {shape}")
            n = batch_size
        self.check_batch_size(n)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def forward(self, x: np.ndarray, *, training: bool = False, step: int = 0, shard: int | None = None,
                backward: bool = True) -> np.ndarray:
        """Logits ``(N, classes)``: every layer in order, without a final softmax. ``N = 0`` gives ``(0, classes)``.

        ``training`` turns on dropout and batch statistics; ``step`` (the global step, a non-negative int)
        seeds dropout, and so does ``shard`` (None, or the index of this batch's shard in a sharded step,
        :mod:`cnn.distributed`). NaN or inf in ``x`` are computed with, not refused: they show in the logits.
        ``backward``: whether :meth:`backward` may follow this pass. False (what :func:`cnn.train.evaluate` and
        ``predict`` pass, as PyTorch's ``torch.inference_mode``) keeps no activation for it: each is freed once
        the next layer has read it, which makes an inference pass faster (the memory just read is written
        again while it is in cache) and smaller; the logits are the same.
        """
        x = self._check_input(x, "Model.forward")
        step = check_int(step, "step", "Model.forward", minimum=0)
        if shard is not None:
            shard = check_int(shard, "shard", "Model.forward", minimum=0)
        keep = check_bool(backward, "backward", "Model.forward")
        ctx = L.Pass(self.engine, bool(training), self.dtype, self.seed, step, shard, fuse=True, keep=keep)
        self._last_logits_shape = None  # until this pass is done: no backward through a pass that failed
        for layer in self.layers:
            x = layer.forward(x, ctx)
        self._last_logits_shape = x.shape if keep else None
        self._last_pass_kept = keep
        return x

    def backward(self, grad_logits: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate the gradient of the loss with respect to the logits of the last forward pass;
        fills every layer's ``grads`` and returns the gradient with respect to the input, or ``None`` with
        ``input_grad=False`` (a training step: the first layer then skips what only that gradient needs)."""
        if self._last_logits_shape is None:
            if not self._last_pass_kept:
                raise RuntimeError("Model.backward: the last forward pass was run with backward=False and kept "
                                   "nothing to go back through; call forward(x) without it first")
            raise RuntimeError("Model.backward: there is no forward pass to go back through; call forward(x) first")
        if not isinstance(grad_logits, np.ndarray) or grad_logits.dtype.kind != "f":
            kind = f"dtype {grad_logits.dtype}" if isinstance(grad_logits, np.ndarray) else type(grad_logits).__name__
            raise TypeError(
                f"Model.backward: argument `grad_logits` must be a numpy.ndarray of floats; received {kind}.")
        if grad_logits.shape != self._last_logits_shape:
            raise ValueError(f"Model.backward: argument `grad_logits` must have the shape of the last forward pass's "
                             f"logits, {self._last_logits_shape}; received shape {grad_logits.shape}.")
        grad = np.ascontiguousarray(grad_logits, dtype=self.dtype)
        first = self.layers[0]
        first.input_grad = check_bool(input_grad, "input_grad", "Model.backward")
        try:
            for layer in reversed(self.layers):
                grad = layer.backward(grad)
        finally:
            first.input_grad = True
        return grad if input_grad else None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """``softmax(logits)`` over the classes."""
        return self.engine.softmax(logits, dim=1).astype(self.dtype, copy=False)

    # ------------------------------------------------------------------ arrays
    def parameters(self, *, trainable_only: bool = False) -> list[tuple[str, L.Layer, str]]:
        """``(key, layer, name)`` of every parameter in a fixed order; key is ``"<layer>/<name>"``."""
        out = []
        for layer in self.all_layers():
            if trainable_only and not layer.trainable:
                continue
            out.extend((f"{layer.name}/{p}", layer, p) for p in layer.params)
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter (``param/<layer>/<name>``) and buffer (``buffer/<layer>/<name>``)."""
        arrays = {}
        for layer in self.all_layers():
            for kind, store in (("param", layer.params), ("buffer", layer.buffers)):
                for name, value in store.items():
                    arrays[f"{kind}/{layer.name}/{name}"] = value
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], source: str = "the file") -> None:
        """Copy arrays into the model after checking that every name, shape and dtype matches and every value
        is finite; the :class:`CheckpointError` names ``source`` and the layer (with its type) that differs.
        Nothing is changed unless everything matches.

        Refused: a missing or an extra ``param/``/``buffer/`` array, a shape other than the model's, a dtype that
        is not a float (int, bool, complex, object, strings), and NaN or inf (a model file holds the weights of
        a run that had not diverged; loading NaN would only make every later prediction NaN)."""
        if not isinstance(arrays, Mapping):
            raise TypeError(f"load_state_arrays: argument `arrays` must be a dict of numpy arrays by name; "
                            f"received {type(arrays).__name__}.")
        expected = self.state_arrays()
        by_layer = {layer.name: layer for layer in self.all_layers()}
        converted = {}
        for key, value in expected.items():
            kind, _, rest = key.partition("/")
            layer_name, _, array_name = rest.rpartition("/")
            where = f"layer {layer_name!r} ({by_layer[layer_name].config.type})"
            if key not in arrays:
                raise CheckpointError(f"{source} has no {kind} {array_name!r} for {where}")
            converted[key] = _state_array(arrays[key], value.shape, self.dtype, f"{where}: {kind} {array_name!r}",
                                          source)
        extra = sorted(set(arrays) - set(expected))
        if extra:
            listing = ", ".join(format_value(key) for key in extra[:5])
            raise CheckpointError(f"{source} has arrays this model lacks: {listing}")
        for layer in self.all_layers():
            for kind, store in (("param", layer.params), ("buffer", layer.buffers)):
                for name in store:
                    store[name] = converted[f"{kind}/{layer.name}/{name}"]

    # ------------------------------------------------------------------ configuration and files
    def config(self) -> dict:
        """JSON form: netspec's network document plus the model's dtype, seed and frozen layers."""
        return {
            "format": _FORMAT,
            "input_shape": list(self.input_shape),
            "layers": [config.to_dict() for config in self.configs],
            "dtype": self.dtype.name,
            "seed": self.seed,
            "name": self.name,
            "frozen": [layer.name for layer in self.all_layers() if not layer.trainable],
        }

    @classmethod
    def from_config(cls, config: dict, *, engine="fastcnn") -> "Model":
        """The model of a configuration written by :meth:`config`. A configuration that is not one (not a
        dict, another format, a missing or unknown key, a value of the wrong type, a ``frozen`` name that is
        no layer) raises :class:`CheckpointError` naming the key; a value the model refuses raises the error
        of :class:`Model` (``NetSpecError``, ``TypeError``/``ValueError``, ``SizeLimitError``)."""
        engine = get_engine(engine)
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            got = (f"keys {format_value(sorted(map(str, config))[:6])}" if isinstance(config, dict)
                   else _json_kind(config))
            raise CheckpointError(f"not a model configuration (format {_FORMAT!r}); received {got}")
        missing = [key for key in _CONFIG_KEYS if key not in config]
        unknown = sorted(map(str, set(config) - set(_CONFIG_KEYS) - set(_OPTIONAL_CONFIG_KEYS)))
        if missing or unknown:
            problem = (f"lacks the key(s) {', '.join(missing)}" if missing
                       else f"has unknown key(s) {format_value(unknown)}")
            raise CheckpointError(f"the model configuration {problem}; its keys are {', '.join(_CONFIG_KEYS)} "
                                  f"and optionally {', '.join(_OPTIONAL_CONFIG_KEYS)}")
        netspec.check_json_depth(config, "the model configuration")
        layers, frozen = config["layers"], config.get("frozen", [])
        for key, value in (("layers", layers), ("input_shape", config["input_shape"]), ("frozen", frozen)):
            if not isinstance(value, list):
                raise CheckpointError(
                    f"the model configuration's `{key}` must be a list; received {format_value(value)}")
        records = []
        for index, item in enumerate(layers, start=1):
            try:
                records.append(L.layer_from_dict(item))
            except (ValueError, TypeError) as error:
                raise CheckpointError(f"layer {index} of the model configuration: {error}") from None
        model = cls(records, tuple(config["input_shape"]), engine=engine, seed=config["seed"], dtype=config["dtype"],
                    name=config.get("name", "sequential"))
        names = {layer.name for layer in model.all_layers()}
        strange = [name for name in frozen if name not in names]
        if strange:
            raise CheckpointError(f"the model configuration's `frozen` names {format_value(strange[0])}, which is "
                                  f"no layer of the model (layers: {', '.join(sorted(names))})")
        model.freeze(*frozen)
        return model

    def save(self, path) -> None:
        """Weights, buffers and configuration in one ``.npz``, written atomically."""
        save_archive(path, self.state_arrays(), {"model": self.config()})

    def load_weights(self, path, *, by_name: bool = False, skip_mismatch: bool = False,
                     exclude=()) -> "LoadReport":
        """Load the arrays of a file written by :meth:`save` (or a checkpoint) into this model; returns a
        :class:`LoadReport` (which layers were loaded, left new, or skipped and why).

        As Keras's ``Model.load_weights``: by default the file must hold exactly this model's arrays
        (:meth:`load_state_arrays`; any difference is a :class:`CheckpointError` naming the layer). With
        ``by_name=True`` every layer of this model whose *name* is in the file and whose arrays (parameters
        and buffers) have the same names and shapes is loaded; a layer the file lacks stays as initialised
        ("new": a fresh head for another class count). A layer present in both with other shapes is an error
        naming the layer and both shapes, unless ``skip_mismatch=True``, which leaves it new and reports it as
        skipped. ``skip_mismatch`` without ``by_name`` is refused, as in Keras. ``exclude`` (by name only):
        layers not loaded even when they match, left new (a classifier for other classes that happen to be
        as many). Nothing is changed unless the whole load succeeds. Transfer learning: ``cnn train --init``."""
        if not isinstance(by_name, bool) or not isinstance(skip_mismatch, bool):
            bad, value = ("by_name", by_name) if not isinstance(by_name, bool) else ("skip_mismatch", skip_mismatch)
            raise TypeError(invalid("Model.load_weights", bad, "True or False", brief_value(value)))
        if skip_mismatch and not by_name:
            raise ValueError(invalid("Model.load_weights", "skip_mismatch",
                                     "False unless by_name=True (as Keras)", "True"))
        exclude = self._layer_names(exclude, "exclude", "Model.load_weights")
        if exclude and not by_name:
            raise ValueError(invalid("Model.load_weights", "exclude", "empty unless by_name=True", exclude))
        source = printable(path)
        arrays, _ = load_archive(path)
        arrays = _state_arrays_of(arrays)
        if not by_name:
            self.load_state_arrays(arrays, source)
            names = tuple(layer.name for layer in self.all_layers() if layer.params or layer.buffers)
            return LoadReport(source, loaded=names, new=(), skipped=())
        return self._load_by_name(arrays, source, skip_mismatch, exclude)

    def _layer_names(self, names, what: str, op: str) -> tuple[str, ...]:
        """``names`` (a list of layer names) checked: each a layer of this model, else a ValueError listing them."""
        known = [layer.name for layer in self.all_layers()]
        names = (names,) if isinstance(names, str) else tuple(names)
        for name in names:
            if name not in known:
                raise ValueError(invalid(op, what, f"names of layers of the model ({', '.join(known)})",
                                         brief_value(name)))
        return names

    def _load_by_name(self, arrays: dict, source: str, skip_mismatch: bool, exclude=()) -> "LoadReport":
        """:meth:`load_weights` with ``by_name=True``: match layer by layer, convert all, then assign."""
        in_file = _arrays_by_layer(arrays)
        loaded, new, skipped, converted = [], [], [], {}
        for layer in self.all_layers():
            ours = {f"{kind}/{name}": value for kind, store in (("param", layer.params), ("buffer", layer.buffers))
                    for name, value in store.items()}
            if not ours:
                continue
            theirs = in_file.pop(layer.name, None)
            if theirs is None or layer.name in exclude:
                new.append(layer.name)
                continue
            where = f"layer {layer.name!r} ({layer.config.type})"
            problem = _layer_mismatch(ours, theirs)
            if problem is not None:
                if not skip_mismatch:
                    raise CheckpointError(f"{where}: {problem} (load with skip_mismatch=True to leave it "
                                          f"initialised anew)")
                skipped.append((layer.name, problem))
                continue
            for key, value in ours.items():
                kind, _, name = key.partition("/")
                converted[(layer, kind, name)] = _state_array(theirs[key], value.shape, self.dtype,
                                                              f"{where}: {kind} {name!r}", source)
            loaded.append(layer.name)
        skipped.extend((name, "no layer of that name in this model") for name in sorted(in_file))
        for (layer, kind, name), value in converted.items():
            (layer.params if kind == "param" else layer.buffers)[name] = value
        return LoadReport(source, tuple(loaded), tuple(new), tuple(skipped))

    def features(self, x, layer: str = "flatten", *, batch_size: int = 256) -> np.ndarray:
        """The output of the layer named ``layer`` for every row of ``x``: the layers up to and including it,
        in inference mode (dropout off, batch norm on its running statistics), ``batch_size`` rows at a time.

        Keras's bottleneck features (``Model(inputs, base.get_layer(name).output).predict(x)``): the output of
        ``flatten`` is one vector per image, to train a small classifier on (``cnn features`` writes such a
        file). ``layer`` is one of the model's top-level layers (:attr:`layers`); another name is a
        ``ValueError`` listing them. The last layer gives the logits (the final softmax is not applied).
        Shape: ``(N,) + input_shape`` -> ``(N,) + the layer's output shape``, in the model's dtype."""
        names = [item.name for item in self.layers]
        if not isinstance(layer, str) or layer not in names:
            raise ValueError(invalid("Model.features", "layer", f"a layer of the model ({', '.join(names)})",
                                     brief_value(layer)))
        batch_size = check_int(batch_size, "batch_size", "Model.features", minimum=1)
        x = self._check_input(x, "Model.features", batch_size)
        prefix = self.layers[:names.index(layer) + 1]
        ctx = L.Pass(self.engine, False, self.dtype, self.seed, 0)
        outputs = []
        for start in range(0, max(len(x), 1), batch_size):  # one pass over 0 rows gives the shape (0, ...)
            h = x[start:start + batch_size]
            for item in prefix:
                h = item.forward(h, ctx)
            outputs.append(np.asarray(h, dtype=self.dtype))
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    # ------------------------------------------------------------------ training front end
    def fit(self, x, y, **kwargs):
        """:func:`cnn.train.fit` on this model."""
        from . import train

        return train.fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs) -> dict:
        from . import train

        return train.evaluate(self, x, y, **kwargs)

    def predict(self, x, **kwargs) -> np.ndarray:
        from . import train

        return train.predict(self, x, **kwargs)

    def count_params(self) -> int:
        """Every number the model holds, trainable or not (batch norm's running statistics included), as Keras's
        ``model.count_params()`` counts and ``summary().total_params`` prints; the trainable part alone is
        ``summary().trainable_params``."""
        return sum(layer.count_params() for layer in self.all_layers())


@dataclass(frozen=True)
class LoadReport:
    """What :meth:`Model.load_weights` did: the layers ``loaded`` from ``source``, the layers left ``new``
    (as initialised: the file has no layer of their name), and ``skipped`` ``(name, why)`` pairs: a layer of
    both with other shapes (``skip_mismatch=True``) or one of the file that this model lacks."""

    source: str
    loaded: tuple[str, ...]
    new: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """The table ``cnn train --init`` prints: one line per layer with arrays, what happened to it."""
        rows = [(name, "loaded", "") for name in self.loaded] + [(name, "new", "") for name in self.new]
        rows += [(name, "skipped", why) for name, why in self.skipped]
        width = max((len(name) for name, _, _ in rows), default=5)
        return [f"{name:<{width}}  {what:<7}  {why}".rstrip() for name, what, why in rows]


def _arrays_by_layer(arrays: dict) -> dict[str, dict[str, np.ndarray]]:
    """``{"param/dense/weight": a}`` -> ``{"dense": {"param/weight": a}}`` (a block's inner layers keep their
    path: ``residual/body/conv2d``)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        kind, _, rest = key.partition("/")
        layer_name, _, array_name = rest.rpartition("/")
        out.setdefault(layer_name, {})[f"{kind}/{array_name}"] = value
    return out


def _shapes_text(arrays: dict) -> str:
    return ", ".join(f"{key.partition('/')[2]} {tuple(getattr(v, 'shape', ()))}" for key, v in sorted(arrays.items()))


def _layer_mismatch(ours: dict, theirs: dict) -> str | None:
    """Why a layer of the file does not fit the layer of the same name here (None when it does)."""
    if set(ours) != set(theirs):
        return f"the file holds {', '.join(sorted(theirs))}, this model needs {', '.join(sorted(ours))}"
    if any(getattr(theirs[key], "shape", None) != value.shape for key, value in ours.items()):
        return f"shapes in the file: {_shapes_text(theirs)}; in this model: {_shapes_text(ours)}"
    return None


def _state_array(value, shape: tuple, dtype: np.dtype, what: str, source: str) -> np.ndarray:
    """One parameter or buffer read from ``source`` as a new array of the model's ``dtype``: it must be an array
    of ``shape``, of floats, and every value finite once converted (1e300 is inf as float32)."""
    if not isinstance(value, np.ndarray):
        raise CheckpointError(f"{what} in {source} is of type {type(value).__name__}, not an array")
    if value.shape != shape:
        raise CheckpointError(f"{what} has shape {value.shape} in {source}; this model needs {shape}")
    if value.dtype.kind != "f":
        raise CheckpointError(f"{what} in {source} has dtype {value.dtype}, not float")
    with np.errstate(over="ignore"):
        array = np.array(value, dtype=dtype)
    finite = np.isfinite(array)
    if not finite.all():
        bad = array.size - int(np.count_nonzero(finite))
        raise CheckpointError(f"{what} in {source} holds {bad} NaN or infinite value(s) as {dtype}; a model's "
                              "weights are finite (was it saved after training diverged?)")
    return array


def _json_kind(value) -> str:
    """How a JSON value that should have been an object is named in a message: ``a list``, ``null``, ..."""
    if value is None:
        return "null"
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}")


def _state_arrays_of(arrays: dict) -> dict:
    """The model's arrays among an archive's (a checkpoint also holds the optimizer's)."""
    return {k: v for k, v in arrays.items() if k.startswith(("param/", "buffer/"))}


def load_model(path, *, engine="fastcnn") -> Model:
    """A model from a file written by :meth:`Model.save` (or a training checkpoint).

    Every problem with the file raises :class:`CheckpointError` naming it and what is wrong (not an archive,
    no model configuration, a configuration the model refuses, arrays that do not match or are not finite);
    a model whose arrays would exceed ``CNN_MAX_ARRAY_BYTES`` raises :class:`~cnnbase.limits.SizeLimitError`
    naming the file and the layer. A bad ``engine`` is the caller's mistake: ``TypeError``/``ValueError``.
    """
    engine = get_engine(engine)  # before the file, so that the caller's mistake is not reported as the file's
    source = printable(path)
    arrays, document = load_archive(path)
    if not isinstance(document, dict) or "model" not in document:
        got = f"has keys {format_value(sorted(map(str, document))[:6])}" if isinstance(document, dict) else \
            f"is {_json_kind(document)}"
        raise CheckpointError(f"{source} holds no model configuration (its JSON document {got})")
    try:
        model = Model.from_config(document["model"], engine=engine)
    except SizeLimitError as error:
        raise SizeLimitError(f"{source}: {error}") from None
    except (netspec.NetSpecError, CheckpointError, TypeError, ValueError, KeyError, RecursionError) as error:
        raise CheckpointError(f"{source}: its model configuration cannot be built: {error}") from None
    model.load_state_arrays(_state_arrays_of(arrays), source)
    return model
