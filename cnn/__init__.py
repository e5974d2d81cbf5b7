"""cnn: models, data and training over either engine (fastcnn by default, refcnn for checking).

    import cnn
    data = cnn.load_dataset("default")                  # full Fashion-MNIST if installed, else the sample
    model = cnn.Model(cnn.netspec.PRESETS["keras-mnist"].layers, (1, 28, 28), seed=0)
    history = cnn.fit(model, cnn.to_float(data.x_train), data.y_train, epochs=2, batch_size=128)

Layers are described by ``cnnbase.netspec`` (the same descriptions ``cnn shape`` reads); ``specs/training.md``
states initialisation, step order, seeds and the checkpoint format.
"""

from cnnbase import netspec

from .files import CheckpointError
from .data import DataError, Dataset, batches, load_dataset, to_float, validation_split
from .layers import Concat, Residual
from . import blocks  # noqa: F401  (the blocks' runtime classes register themselves: Layer.__init_subclass__)
from .model import ENGINES, Model, get_engine, load_model
from .optimizers import OPTIMIZERS, Optimizer
from .schedules import Constant, CosineDecay, ExponentialDecay, StepDecay, make_schedule
from .train import EarlyStopping, History, NonFiniteLossError, evaluate, fit, plot_history, predict, top_k, write_log

__all__ = [
    "netspec", "CheckpointError", "DataError", "Dataset", "batches", "load_dataset", "to_float",
    "validation_split", "Concat", "Residual", "ENGINES", "Model", "get_engine", "load_model", "OPTIMIZERS",
    "Optimizer", "Constant", "CosineDecay", "ExponentialDecay", "StepDecay", "make_schedule", "EarlyStopping",
    "History", "NonFiniteLossError", "evaluate", "fit", "plot_history", "predict", "top_k", "write_log",
]
