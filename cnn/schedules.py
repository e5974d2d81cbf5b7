"""Learning-rate schedules: the learning rate of each epoch as a pure function of the epoch number.

A schedule holds no state, so a run resumed at epoch ``e`` uses exactly the rate an uninterrupted run
uses there. Epochs count from 0; the rate is constant within an epoch (``specs/training.md``). The forms
are the closed forms of PyTorch's ``StepLR``, ``ExponentialLR`` and ``CosineAnnealingLR``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from cnnbase.checks import check_float, check_int

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "SCHEDULES", "make_schedule"]


@dataclass(frozen=True)
class Schedule:
    """Base of every schedule: ``lr(base_lr, epoch)`` and a JSON form ``{"name": ..., <arguments>}``."""

    name: ClassVar[str] = "constant"

    def lr(self, base_lr: float, epoch: int) -> float:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr_e = base_lr``."""

    name: ClassVar[str] = "constant"

    def lr(self, base_lr, epoch):
        return float(base_lr)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr_e = base_lr * gamma ** floor(e / step_size)`` (PyTorch's ``StepLR``)."""

    step_size: int = 10
    gamma: float = 0.1

    name: ClassVar[str] = "step"

    def __post_init__(self):
        check_int(self.step_size, "step_size", "StepDecay", minimum=1)
        check_float(self.gamma, "gamma", "StepDecay", minimum=0.0)

    def lr(self, base_lr, epoch):
        return float(base_lr) * float(self.gamma) ** (epoch // self.step_size)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``lr_e = base_lr * gamma ** e`` (PyTorch's ``ExponentialLR``)."""

    gamma: float = 0.9

    name: ClassVar[str] = "exponential"

    def __post_init__(self):
        check_float(self.gamma, "gamma", "ExponentialDecay", minimum=0.0)

    def lr(self, base_lr, epoch):
        return float(base_lr) * float(self.gamma) ** epoch


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """``lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t_max)) / 2`` (the closed form of
    PyTorch's ``CosineAnnealingLR``; after ``t_max`` epochs the rate rises again, as there)."""

    t_max: int = 10
    eta_min: float = 0.0

    name: ClassVar[str] = "cosine"

    def __post_init__(self):
        check_int(self.t_max, "t_max", "CosineDecay", minimum=1)
        check_float(self.eta_min, "eta_min", "CosineDecay", minimum=0.0)

    def lr(self, base_lr, epoch):
        return self.eta_min + (float(base_lr) - self.eta_min) * (1.0 + math.cos(math.pi * epoch / self.t_max)) / 2.0


#: Every schedule by its name.
SCHEDULES = {cls.name: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay)}


def make_schedule(spec=None, epochs: int | None = None) -> Schedule:
    """A schedule from ``None`` (constant), a :class:`Schedule`, a name, or ``{"name": ..., **arguments}``.

    ``epochs``, when given, is the default ``t_max`` of a cosine schedule: one half cosine over the run.
    """
    if spec is None:
        return Constant()
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or spec.get("name") not in SCHEDULES:
        raise ValueError(
            f"fit: invalid value for argument `schedule`. Expected None, a name among {', '.join(SCHEDULES)} or a "
            f"dict {{'name': ..., ...}}. Received schedule={spec!r}."
        )
    cls = SCHEDULES[spec["name"]]
    arguments = {k: v for k, v in spec.items() if k != "name"}
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(arguments) - set(allowed))
    if unknown:
        raise ValueError(f"schedule {spec['name']!r}: unknown argument(s) {unknown}; allowed: {allowed}")
    if cls is CosineDecay and "t_max" not in arguments and epochs:
        arguments["t_max"] = epochs
    return cls(**arguments)
