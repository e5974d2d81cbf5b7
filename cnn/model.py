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

import numpy as np

from cnnbase import netspec
from cnnbase.checks import invalid

from . import layers as L
from .files import CheckpointError, load_archive, save_archive

__all__ = ["ENGINES", "get_engine", "Model", "load_model"]

#: Engine modules a model can run on.
ENGINES = ("fastcnn", "refcnn")

_LOSS_OPS = ("cross_entropy", "cross_entropy_backward", "softmax")
_FORMAT = "cnn-model-1"


def get_engine(engine="fastcnn"):
    """The engine module for a name (``'fastcnn'`` or ``'refcnn'``), or a module given as is."""
    if not isinstance(engine, str):
        return engine
    if engine not in ENGINES:
        raise ValueError(invalid("Model", "engine", f"one of {ENGINES}", engine))
    return importlib.import_module(engine)


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
        if isinstance(layers, str):
            layers = netspec.parse_spec(layers)
        if isinstance(layers, netspec.Network):
            input_shape = input_shape if input_shape is not None else layers.input_shape
            layers = layers.layers
        if input_shape is None:
            raise netspec.NetSpecError("Model: the network has no input shape; give one, e.g. input_shape=(1, 28, 28)")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(invalid("Model", "dtype", "'float32' or 'float64'", dtype))
        self.engine = get_engine(engine)
        self.seed = int(seed)
        self.name = name
        self.configs = list(layers)
        self.input_shape = tuple(int(n) for n in netspec.summarize(self.configs, input_shape).input_shape)
        self.layers, _ = L.build_layers(self.configs, self.input_shape, self.seed, self.dtype)
        self.output_activation = self._take_final_softmax()

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
        for layer in self.all_layers():
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.all_layers())
        raise KeyError(f"no layer named {name!r}; layers: {names}")

    def freeze(self, *names: str) -> None:
        """Mark layers not trainable: no updates, and their batch norm uses its running statistics."""
        for name in names:
            self.get_layer(name).trainable = False

    def unfreeze(self, *names: str) -> None:
        for name in names:
            self.get_layer(name).trainable = True

    def summary(self, batch_size: int = 1) -> netspec.Summary:
        """The rows ``cnn shape`` prints (netspec's summary), memory counted in this model's dtype."""
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
    def _check_input(self, x, op: str) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            kind = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{op}: argument `x` must be a numpy.ndarray of floats; received {kind}.")
        if x.shape[1:] != self.input_shape or x.ndim != len(self.input_shape) + 1:
            expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            raise ValueError(f"{op}: argument `x` must have shape {expected} for this model; received shape {x.shape}.")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def forward(self, x: np.ndarray, *, training: bool = False, step: int = 0) -> np.ndarray:
        """Logits ``(N, classes)``: every layer in order, without a final softmax.

        ``training`` turns on dropout and batch statistics; ``step`` (the global step) seeds dropout.
        """
        x = self._check_input(x, "Model.forward")
        ctx = L.Pass(self.engine, bool(training), self.dtype, self.seed, int(step))
        for layer in self.layers:
            x = layer.forward(x, ctx)
        return x

    def backward(self, grad_logits: np.ndarray) -> np.ndarray:
        """Back-propagate the gradient of the loss with respect to the logits of the last forward pass;
        fills every layer's ``grads`` and returns the gradient with respect to the input."""
        grad = grad_logits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

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
        """Copy arrays into the model after checking that every name and shape matches; the error names
        the layer (with its type) that differs. Nothing is changed unless everything matches."""
        expected = self.state_arrays()
        by_layer = {layer.name: layer for layer in self.all_layers()}
        for key, value in expected.items():
            kind, _, rest = key.partition("/")
            layer_name, _, array_name = rest.rpartition("/")
            layer = by_layer[layer_name]
            where = f"layer {layer_name!r} ({layer.config.type})"
            if key not in arrays:
                raise CheckpointError(f"{source} has no {kind} {array_name!r} for {where}")
            if arrays[key].shape != value.shape:
                raise CheckpointError(
                    f"{where}: {kind} {array_name!r} has shape {arrays[key].shape} in {source}; "
                    f"this model needs {value.shape}"
                )
            if arrays[key].dtype.kind != "f":
                raise CheckpointError(f"{where}: {kind} {array_name!r} in {source} has dtype {arrays[key].dtype}, not float")
        extra = sorted(set(arrays) - set(expected))
        if extra:
            raise CheckpointError(f"{source} has arrays this model lacks: {', '.join(extra[:5])}")
        for layer in self.all_layers():
            for kind, store in (("param", layer.params), ("buffer", layer.buffers)):
                for name in store:
                    store[name] = np.array(arrays[f"{kind}/{layer.name}/{name}"], dtype=self.dtype)

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
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            raise CheckpointError(f"not a model configuration (format {_FORMAT!r}); received keys {sorted(config)[:6]}")
        layers = [L.layer_from_dict(item) for item in config["layers"]]
        model = cls(layers, tuple(config["input_shape"]), engine=engine, seed=config["seed"], dtype=config["dtype"],
                    name=config.get("name", "sequential"))
        model.freeze(*config.get("frozen", []))
        return model

    def save(self, path) -> None:
        """Weights, buffers and configuration in one ``.npz``, written atomically."""
        save_archive(path, self.state_arrays(), {"model": self.config()})

    def load_weights(self, path) -> None:
        """Load the arrays of a file written by :meth:`save` (or a checkpoint) into this model."""
        arrays, document = load_archive(path)
        self.load_state_arrays({k: v for k, v in arrays.items() if k.startswith(("param/", "buffer/"))}, str(path))

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
        return sum(math.prod(layer.params[p].shape) for _, layer, p in self.parameters())


def load_model(path, *, engine="fastcnn") -> Model:
    """A model from a file written by :meth:`Model.save` (or a training checkpoint)."""
    arrays, document = load_archive(path)
    if "model" not in document:
        raise CheckpointError(f"{path} holds no model configuration (JSON keys: {sorted(document)})")
    try:
        model = Model.from_config(document["model"], engine=engine)
    except (netspec.NetSpecError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: its model configuration cannot be built: {error}") from None
    model.load_state_arrays({k: v for k, v in arrays.items() if k.startswith(("param/", "buffer/"))}, str(path))
    return model
