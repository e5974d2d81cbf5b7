"""Learning-rate schedules: the learning rate of each epoch as a pure function of the epoch number.

A schedule holds no state, so a run resumed at epoch ``e`` uses exactly the rate an uninterrupted run
uses there. Epochs count from 0; the rate is constant within an epoch (``specs/training.md``). The forms
are the closed forms of PyTorch's ``StepLR``, ``ExponentialLR`` and ``CosineAnnealingLR``.

A schedule has a text form, the one ``cnn train --schedule`` takes and ``run.json`` records::

    none | step[:STEP_SIZE[:GAMMA]] | exp[:GAMMA] | cosine[:T_MAX[:ETA_MIN]]

:meth:`Schedule.parse` reads it once into a schedule and :attr:`Schedule.text` writes it back. An argument
the text leaves out is left unset (None) on the schedule; :meth:`Schedule.for_run`, which ``fit`` calls,
gives it its default when the run starts: cosine's ``t_max`` becomes the run's epoch count (one half
cosine over the run), every other argument its default below.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from cnnbase.checks import check_float, check_int, invalid


def _check_rate(value, name: str, op: str) -> None:
    """A finite number >= 0: an infinite ``gamma`` or ``eta_min`` makes every rate after it inf or NaN."""
    check_float(value, name, op, minimum=0.0)
    if not math.isfinite(value):
        raise ValueError(invalid(op, name, "a finite number >= 0.0", value))

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "SCHEDULES", "make_schedule"]


@dataclass(frozen=True)
class Schedule:
    """Base of every schedule: ``lr(base_lr, epoch)``, a JSON form ``{"name": ..., <arguments>}`` and a
    text form (``step:5:0.5``). ``lr`` needs every argument set: call it on :meth:`for_run`'s result."""

    name: ClassVar[str] = "constant"
    #: The schedule's name in the text form.
    form: ClassVar[str] = "none"

    def lr(self, base_lr: float, epoch: int) -> float:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    def to_dict(self) -> dict:
        """``{"name": ..., <arguments>}``, leaving out the arguments left unset (as :func:`make_schedule` takes it)."""
        return {"name": self.name, **{k: v for k, v in dataclasses.asdict(self).items() if v is not None}}

    def for_run(self, epochs: int | None = None) -> "Schedule":
        """This schedule with every unset argument given its default; a run of ``epochs`` epochs sets
        cosine's ``t_max``. The schedule itself when nothing is unset."""
        unset = {f.name: self._default(f.name, epochs) for f in dataclasses.fields(self) if getattr(self, f.name) is None}
        return dataclasses.replace(self, **unset) if unset else self

    def _default(self, argument: str, epochs: int | None):
        return next(f.default for f in dataclasses.fields(self) if f.name == argument)

    @property
    def text(self) -> str:
        """The text form; arguments left unset are left out (only trailing ones can be)."""
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        while values and values[-1] is None:
            values.pop()
        if None in values:
            raise ValueError(f"{self!r} has no text form: the text gives arguments in order "
                             f"({_FORM_HELP[self.form]}), so only trailing ones can be left unset")
        return ":".join([self.form, *(str(v) for v in values)])

    @staticmethod
    def parse(text: str) -> "Schedule":
        """The schedule of a text form such as ``step:5:0.5`` (case and surrounding spaces do not matter).

        Raises ``ValueError`` with a one-line message naming the text for an unknown form, too many values,
        a value that is not a number, or a value the schedule refuses (``step:0``).
        """
        form, *values = text.strip().lower().split(":")
        if form not in _FORMS:
            raise ValueError(f"expected none, step:SIZE:GAMMA, exp:GAMMA or cosine; received {text!r}")
        cls = _FORMS[form]
        fields = dataclasses.fields(cls)
        if len(values) > len(fields):
            raise ValueError(f"{form} takes at most {len(fields)} value(s) after the name; received {text!r}")
        arguments = {f.name: None for f in fields}
        for f, value in zip(fields, values):
            kind = type(f.default)  # each default is an int or a float, as the value in the text must be
            try:
                arguments[f.name] = kind(value)
            except ValueError:
                raise ValueError(f"{f.name} must be {'an int' if kind is int else 'a number'}; "
                                 f"received {value!r} in {text!r}") from None
        try:
            return cls(**arguments)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{text!r}: {error}") from None


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr_e = base_lr``."""

    name: ClassVar[str] = "constant"
    form: ClassVar[str] = "none"

    def lr(self, base_lr, epoch):
        return float(base_lr)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr_e = base_lr * gamma ** floor(e / step_size)`` (PyTorch's ``StepLR``)."""

    step_size: int | None = 10
    gamma: float | None = 0.1

    name: ClassVar[str] = "step"
    form: ClassVar[str] = "step"

    def __post_init__(self):
        if self.step_size is not None:
            check_int(self.step_size, "step_size", "StepDecay", minimum=1)
        if self.gamma is not None:
            _check_rate(self.gamma, "gamma", "StepDecay")

    def lr(self, base_lr, epoch):
        return float(base_lr) * float(self.gamma) ** (epoch // self.step_size)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``lr_e = base_lr * gamma ** e`` (PyTorch's ``ExponentialLR``)."""

    gamma: float | None = 0.9

    name: ClassVar[str] = "exponential"
    form: ClassVar[str] = "exp"

    def __post_init__(self):
        if self.gamma is not None:
            _check_rate(self.gamma, "gamma", "ExponentialDecay")

    def lr(self, base_lr, epoch):
        return float(base_lr) * float(self.gamma) ** epoch


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """``lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t_max)) / 2`` (the closed form of
    PyTorch's ``CosineAnnealingLR``; after ``t_max`` epochs the rate rises again, as there).

    ``t_max`` left unset (None) becomes the run's epoch count (:meth:`for_run`)."""

    t_max: int | None = 10
    eta_min: float | None = 0.0

    name: ClassVar[str] = "cosine"
    form: ClassVar[str] = "cosine"

    def __post_init__(self):
        if self.t_max is not None:
            check_int(self.t_max, "t_max", "CosineDecay", minimum=1)
        if self.eta_min is not None:
            _check_rate(self.eta_min, "eta_min", "CosineDecay")

    def _default(self, argument, epochs):
        if argument == "t_max" and epochs:
            return epochs
        return super()._default(argument, epochs)

    def lr(self, base_lr, epoch):
        return self.eta_min + (float(base_lr) - self.eta_min) * (1.0 + math.cos(math.pi * epoch / self.t_max)) / 2.0


#: Every schedule by its name.
SCHEDULES = {cls.name: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay)}
#: Every schedule by its name in the text form.
_FORMS = {cls.form: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay)}
_FORM_HELP = {"none": "none", "step": "step:SIZE:GAMMA", "exp": "exp:GAMMA", "cosine": "cosine:T_MAX:ETA_MIN"}


def make_schedule(spec=None, epochs: int | None = None) -> Schedule:
    """The schedule a run of ``epochs`` epochs follows, from ``None`` (constant), a :class:`Schedule`, a
    name, or ``{"name": ..., **arguments}``.

    Arguments left out (or unset on a Schedule) take their defaults; when ``epochs`` is given, cosine's
    ``t_max`` defaults to it: one half cosine over the run.
    """
    if spec is None:
        return Constant()
    if isinstance(spec, Schedule):
        return spec.for_run(epochs)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or spec.get("name") not in SCHEDULES:
        expected = f"None, a name among {', '.join(SCHEDULES)} or a dict {{'name': ..., ...}}"
        raise ValueError(invalid("fit", "schedule", expected, spec))
    cls = SCHEDULES[spec["name"]]
    arguments = {k: v for k, v in spec.items() if k != "name"}
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(arguments) - set(allowed))
    if unknown:
        raise ValueError(f"schedule {spec['name']!r}: unknown argument(s) {unknown}; allowed: {allowed}")
    return cls(**{**dict.fromkeys(allowed), **arguments}).for_run(epochs)
