"""Transfer learning for ``cnn train``: start from another model's layers (``--init``), freeze some
(``--freeze``, ``--freeze-until``) and let the loaded ones learn more slowly (``--lr-pretrained``).

The three ways of reusing a trained network (Yosinski et al. 2014, "How transferable are features in deep
neural networks?"; Keras's transfer-learning guide): its features as input to a new classifier (bottleneck
features: :meth:`cnn.model.Model.features`, ``cnn features``), its first layers frozen under a new head, or
all of it fine-tuned from the pretrained weights, usually at a lower rate for the pretrained layers.
"""

from __future__ import annotations

import io

import numpy as np

from . import pretrained
from .files import atomic_write
from .model import LoadReport, Model

__all__ = ["TransferError", "init_from", "freeze_layers", "pretrained_multipliers", "bottleneck_features",
           "save_dataset"]


class TransferError(ValueError):
    """A transfer option that does not fit the model: a layer name it lacks, a file with no matching layer."""


def _layer_list(model: Model) -> str:
    return ", ".join(layer.name for layer in model.all_layers())


def init_from(model: Model, source: str, exclude: str | None = None) -> LoadReport:
    """Load into ``model`` every layer of ``source`` (a model file, or ``pretrained:NAME``) whose name and
    shapes match (``load_weights(by_name=True, skip_mismatch=True)``, as Keras); the rest stay as
    initialised. ``exclude`` (``--init-exclude a,b``): layers left new even when they match (the classifier,
    when the new data has as many classes as the old: its weights score the old classes). A file of which no
    layer matches is a :class:`TransferError`: the run would silently be a fresh start."""
    names = [] if exclude is None else [n.strip() for n in exclude.split(",")]
    try:
        report = model.load_weights(pretrained.resolve(source), by_name=True, skip_mismatch=True, exclude=names)
    except ValueError as error:
        if "exclude" not in str(error):
            raise
        bad = next(n for n in names if n not in {layer.name for layer in model.all_layers()})
        raise TransferError(f"--init-exclude: the model has no layer named {bad!r}; its layers: "
                            f"{_layer_list(model)}") from None
    if not report.loaded:
        skipped = "; ".join(f"{name}: {why}" for name, why in report.skipped) or "it holds no layer arrays"
        raise TransferError(f"--init {source}: no layer of it matches this model by name and shape, so nothing "
                            f"would be loaded ({skipped}); this model's layers: {_layer_list(model)}")
    return report


def freeze_layers(model: Model, names: str | None, until: str | None) -> list[str]:
    """``--freeze a,b`` and ``--freeze-until c``: mark those layers not trainable (``Model.freeze``: no updates,
    batch norm on its running statistics, as Keras's ``trainable = False``). Returns the names frozen; an
    unknown name is a :class:`TransferError` listing the model's layers."""
    frozen = []
    if until is not None:
        try:
            frozen.extend(model.freeze_until(until))
        except ValueError:
            top = ", ".join(layer.name for layer in model.layers)
            raise TransferError(f"--freeze-until {until}: the model has no top-level layer of that name; its "
                                f"layers: {top}") from None
    for name in [] if names is None else [n.strip() for n in names.split(",")]:
        try:
            model.freeze(name)
        except KeyError:
            raise TransferError(f"--freeze: the model has no layer named {name!r}; its layers: "
                                f"{_layer_list(model)}") from None
        frozen.append(name)
    return frozen


def pretrained_multipliers(model: Model, report: LoadReport, factor: float | None) -> dict[str, float]:
    """``--lr-pretrained F``: the learning rate of every parameter of a loaded layer is F times the run's
    (``--lr`` and its schedule), the new layers' stays 1 times (torch.optim's parameter groups; discriminative
    fine-tuning, Howard & Ruder 2018). Empty without ``F``."""
    if factor is None:
        return {}
    loaded = set(report.loaded)
    return {key: float(factor) for key, layer, _ in model.parameters() if layer.name in loaded}


def bottleneck_features(model: Model, ds, layer: str = "flatten", *, batch_size: int = 256):
    """The data set ``ds`` as the output of ``model``'s ``layer`` (:meth:`Model.features`), one flat vector per
    image (``(N, F)``, ``F`` = the layer's output size): a :class:`~cnn.data.Dataset` of feature vectors with
    the same labels and class names, for a small classifier (``cnn train --data features.npz --model
    "dense10 softmax"``)."""
    from . import data

    def flat(x):
        out = model.features(data.to_float(x), layer, batch_size=batch_size)
        return out.reshape(len(out), -1).astype(np.float32, copy=False)

    return data.Dataset(flat(ds.x_train), ds.y_train, flat(ds.x_test), ds.y_test, ds.class_names,
                        f"{ds.name}-{layer}", f"{ds.source}, {layer} features of {model.name}")


def save_dataset(path, ds) -> None:
    """Write ``ds`` atomically as the ``.npz`` the loaders read (:func:`cnn.data.load_npz`): ``x_train``,
    ``y_train``, ``x_test``, ``y_test`` and ``class_names`` (a string array: no pickle needed to read it)."""
    buffer = io.BytesIO()
    np.savez(buffer, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
             class_names=np.array(ds.class_names, dtype=str))
    atomic_write(path, buffer.getvalue())
