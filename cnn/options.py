"""The options of one training run (``cnn train``): one frozen :class:`TrainOptions`, typed.

The command line builds it once from its parameters (the schedule already a :class:`~cnn.schedules.Schedule`,
the betas a pair of floats); the run folder records it in ``run.json`` (:meth:`TrainOptions.to_json`) and
``--resume`` reads it back from there (:meth:`TrainOptions.from_json`), then lets the options given again
on the command line win (:meth:`TrainOptions.apply_recorded`). Reading back what was written gives the
same object: ``TrainOptions.from_json(o.to_json()) == o``.

Only what makes the run is here: the model, the data, the optimizer, the schedule, the seeds. How it is
computed (engine, threads) and where it goes (``--out``, ``--resume``, ``--overwrite``) are arguments of the
command, not of the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .schedules import Schedule

__all__ = ["TrainOptions", "parse_betas"]


def parse_betas(text: str) -> tuple[float, float]:
    """``"0.9,0.999"`` -> ``(0.9, 0.999)``; ``ValueError`` for anything but two numbers, each in [0, 1)
    (Adam's rule: ``nan``, ``inf`` and ``1.5`` are refused here, before a run starts)."""
    try:
        beta1, beta2 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected two numbers B1,B2 such as 0.9,0.999; received {text!r}") from None
    if not all(0.0 <= b < 1.0 for b in (beta1, beta2)):  # false for NaN too
        raise ValueError(f"expected two numbers B1,B2, each in [0, 1), such as 0.9,0.999; received {text!r}")
    return (beta1, beta2)


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run is made of; the defaults are ``cnn train``'s.

    ``model_source`` is a preset name, a ``.json`` network file or a text spec, ``input_text`` a shape
    such as ``1x28x28`` (both are read by ``cnnbase.netspec`` when the model is built), ``data_name`` a
    data set name or path. The optimizer's hyperparameters are None (or False) when not given.
    """

    model_source: str = "keras-mnist"
    input_text: str | None = None
    data_name: str = "default"
    limit: int | None = None
    epochs: int = 12
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    nesterov: bool | None = None
    rho: float | None = None
    alpha: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    schedule: Schedule | None = None
    validation_split: float = 0.0
    early_stopping: int | None = None
    seed: int = 0
    dtype: str = "float32"
    #: ``--resize HxW`` as text (``"32x32"``); last, so a run.json written before it reads as before.
    resize: str | None = None
    #: ``--augment`` as its canonical text (``cnn.augment.AugmentPolicy.to_text``), None for none; last, so a
    #: run.json written before it reads as before.
    augment: str | None = None
    #: ``--validation-data``: ``"test"`` scores the test split after every epoch (Keras's
    #: ``validation_data=(x_test, y_test)``, as the seed articles do), None for none; last, so a run.json
    #: written before it reads as before.
    validation_data: str | None = None
    #: Transfer learning (``--init``, ``--freeze``, ``--freeze-until``, ``--lr-pretrained``): the model file
    #: whose layers of the same name and shape start this run, the layers not trained (comma list, and every
    #: layer up to and including one), and the learning-rate multiplier of the loaded layers. ``--classes``
    #: and ``--per-class``: train on some classes only (``"5-9"``), the first N training images of each. Last,
    #: so a run.json written before them reads as before.
    init: str | None = None
    freeze: str | None = None
    freeze_until: str | None = None
    lr_pretrained: float | None = None
    classes: str | None = None
    per_class: int | None = None
    #: ``--init-exclude``: layers --init leaves new although they match (comma list).
    init_exclude: str | None = None
    #: ``--shards K``: each global batch computed as K shards whose gradients are summed in shard order
    #: (:mod:`cnn.distributed`); under ``mpiexec -n K`` the number of ranks. None: 1 (one process) or the
    #: number of ranks. Last, so a run.json written before it reads as before.
    shards: int | None = None

    #: The optimizer hyperparameters among the options (besides ``lr``), in the order the help lists them.
    OPTIMIZER_OPTIONS: ClassVar[tuple[str, ...]] = ("momentum", "weight_decay", "nesterov", "rho", "alpha",
                                                    "betas", "eps")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def optimizer_arguments(self) -> dict:
        """The optimizer hyperparameters that were given (neither None nor False), by name."""
        values = {name: getattr(self, name) for name in self.OPTIMIZER_OPTIONS}
        return {name: value for name, value in values.items() if value is not None and value is not False}

    # ------------------------------------------------------------------ run.json
    def to_json(self) -> dict:
        """The options as JSON values: the schedule as its text form (``step:5:0.5``), the betas as
        ``"B1,B2"``, as the command line takes them."""
        document = dataclasses.asdict(self)
        document["schedule"] = None if self.schedule is None else self.schedule.text
        document["betas"] = None if self.betas is None else ",".join(str(b) for b in self.betas)
        return document

    @classmethod
    def from_json(cls, document: dict) -> "TrainOptions":
        """The options :meth:`to_json` wrote; keys it does not know are ignored, missing ones take the
        defaults. ``ValueError`` for a schedule or betas that do not parse."""
        values = {name: document[name] for name in cls.names() if name in document}
        if isinstance(values.get("schedule"), str):
            values["schedule"] = Schedule.parse(values["schedule"])
        if isinstance(values.get("betas"), str):
            values["betas"] = parse_betas(values["betas"])
        elif isinstance(values.get("betas"), list):
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    def apply_recorded(self, recorded: "TrainOptions | None", given) -> "TrainOptions":
        """``--resume``: the options not in ``given`` (those left at their defaults on the command line)
        take the values the interrupted run was started with."""
        if recorded is None:
            return self
        return dataclasses.replace(recorded, **{name: getattr(self, name) for name in given if name in self.names()})

    def recordable(self, chosen_data: str) -> "TrainOptions":
        """The options as ``run.json`` records them, so that ``--resume`` from another folder or machine
        state finds the same model and data: ``default`` replaced by ``chosen_data`` (the data set it
        chose), a data path and a ``.json`` model file made absolute."""
        data_name, model_source = self.data_name, self.model_source
        if data_name == "default":
            data_name = chosen_data
        elif Path(data_name).exists():
            data_name = str(Path(data_name).resolve())
        if model_source.endswith(".json") and Path(model_source).exists():
            model_source = str(Path(model_source).resolve())
        init = self.init
        if init is not None and Path(init).exists():
            init = str(Path(init).resolve())
        return dataclasses.replace(self, data_name=data_name, model_source=model_source, init=init)
