"""Where a training step's time goes: per layer type, forward and backward, and the parts around the layers.

Used by ``cnn train --profile`` (:func:`cnn.train.fit`'s ``profile`` argument, over the run's training
epochs) and by ``cnn bench train --profile`` (over the benchmark's timed steps). It lives here, beside
:mod:`cnn.train`, rather than in :mod:`cnn.bench`, so that the training loop does not depend on the
benchmarks.

Each runtime layer gets, on the instance only, a ``forward`` and ``backward`` that time the original with
``time.perf_counter``; nothing changes in :mod:`cnn.layers`, so a model that is not profiled pays nothing,
and a profiled one computes exactly what it would otherwise (the wrappers pass arguments and results
through untouched). A block's time is its *own* (its inner layers' time subtracted): for a Residual block
that is the sum of body and shortcut, the block's activation, and in backward the sum of the two gradients,
which is what answers "is the residual add slow". The optimizer's update and the gathering of each batch
are rows of their own when the caller times them (:meth:`LayerProfile.wrap_call`, :meth:`LayerProfile.add`);
what no row accounts for (loss and its gradient, the accuracy count, the calls themselves) is the row
``(rest of the step)``. When fastcnn fuses a convolution's ReLU with the max pooling after it
(``fastcnn.relu_pool_forward``), that ReLU's time is counted in the pooling layer's row; when it fuses the
convolution, its ReLU and the pooling (``fastcnn.conv_relu_pool_forward``), all three are in the
convolution's row and the pooling's row is about 0; and when that convolution also computes the one before it
(the seeds' conv1: ``producer=``, its output never stored whole, its gradients taken in the pooled backward),
the first convolution's rows are about 0 and its work is in the second's.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

__all__ = ["LayerProfile", "profile_model", "profile_rows", "render_profile", "OTHER", "OPTIMIZER_ROW",
           "DATA_ROW", "REST_ROW"]

#: The phase of a row that is not a layer's forward or backward (the optimizer update, the batch gather).
OTHER = "other"
OPTIMIZER_ROW = "(optimizer update)"
DATA_ROW = "(data: batch gather)"
REST_ROW = "(rest of the step)"


class LayerProfile:
    """Seconds of exclusive time per (layer type, ``forward`` | ``backward`` | ``other``), summed over every
    timed call, and the steps and step seconds they are shares of (:meth:`add_steps`)."""

    def __init__(self):
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.steps = 0
        self.step_seconds = 0.0
        self._stack: list[float] = []  # per open call: the time its inner layers took so far
        self._wrapped: list[tuple[object, str]] = []
        self._paused = False

    def wrap(self, layer, label: str | None = None) -> None:
        """Time ``layer.forward`` and ``layer.backward`` from now on (instance attributes shadow the methods),
        as the row ``label`` (default: the layer's type)."""
        for phase in ("forward", "backward"):
            self._shadow(layer, phase, label or layer.config.type, phase)

    def wrap_call(self, obj, method: str, label: str) -> None:
        """Time ``obj.<method>`` as the row ``label`` (e.g. an optimizer's ``step``)."""
        self._shadow(obj, method, label, OTHER)

    def _shadow(self, obj, method: str, kind: str, phase: str) -> None:
        setattr(obj, method, self._timed(getattr(obj, method), kind, phase))
        self._wrapped.append((obj, method))

    def detach(self) -> None:
        """Remove every wrapper this profile set: the objects call their own methods again."""
        for obj, method in reversed(self._wrapped):
            obj.__dict__.pop(method, None)
        self._wrapped.clear()

    def _timed(self, call, kind: str, phase: str):
        def timed(*args, **kwargs):
            if self._paused:
                return call(*args, **kwargs)
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                inner = self._stack.pop()
                self.seconds[(kind, phase)] += total - inner
                if self._stack:
                    self._stack[-1] += total
        return timed

    @contextmanager
    def paused(self):
        """Calls made inside are not counted (a validation pass inside a training epoch)."""
        before, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = before

    def add(self, label: str, seconds: float) -> None:
        """``seconds`` more for the row ``label``, timed by the caller."""
        self.seconds[(label, OTHER)] += seconds

    def add_steps(self, steps: int, seconds: float) -> None:
        """``steps`` more steps that took ``seconds`` in all, every timed call included."""
        self.steps += steps
        self.step_seconds += seconds

    def reset(self) -> None:
        self.seconds.clear()
        self.steps, self.step_seconds = 0, 0.0

    def rows(self) -> list[dict]:
        """:func:`profile_rows` per step, over the steps counted by :meth:`add_steps` (none: no rows)."""
        if not self.steps or self.step_seconds <= 0:
            return []
        return profile_rows({k: v / self.steps for k, v in self.seconds.items()}, self.step_seconds / self.steps)

    @contextmanager
    def attached(self, model, optimizer=None):
        """:meth:`attach` for the body of a ``with``, then :meth:`detach`, even when the body raises."""
        self.attach(model, optimizer)
        try:
            yield self
        finally:
            self.detach()

    def attach(self, model, optimizer=None, by_layer: bool = False) -> None:
        """Wrap every layer of ``model`` (blocks and their inner layers), and ``optimizer.step`` when given.
        ``by_layer``: one row per layer, ``"<position> <type>"`` in :meth:`Model.all_layers` order, instead of
        one per layer type."""
        for position, layer in enumerate(model.all_layers()):
            self.wrap(layer, f"{position:02d} {layer.config.type}" if by_layer else None)
        if optimizer is not None:
            self.wrap_call(optimizer, "step", OPTIMIZER_ROW)


def profile_model(model, optimizer=None) -> LayerProfile:
    """A :class:`LayerProfile` wrapped around every layer of ``model`` (and ``optimizer.step`` when given)."""
    profile = LayerProfile()
    profile.attach(model, optimizer)
    return profile


def profile_rows(seconds: dict, step_seconds: float) -> list[dict]:
    """One row per layer type: forward and backward seconds and their shares of ``step_seconds``, largest
    first; then each ``other`` row (optimizer update, batch gather), then ``(rest of the step)``: the step's
    time outside every timed call."""
    kinds = sorted({k for k, phase in seconds if phase != OTHER},
                   key=lambda k: -(seconds.get((k, "forward"), 0.0) + seconds.get((k, "backward"), 0.0)))
    rows = []
    for kind in kinds:
        fwd, bwd = seconds.get((kind, "forward"), 0.0), seconds.get((kind, "backward"), 0.0)
        rows.append({"layer": kind, "forward_s": fwd, "backward_s": bwd,
                     "forward_share": fwd / step_seconds, "backward_share": bwd / step_seconds})
    others = sorted(k for k, phase in seconds if phase == OTHER)
    rest = step_seconds - sum(seconds.values())
    for label, value in [(k, seconds[(k, OTHER)]) for k in others] + [(REST_ROW, rest)]:
        rows.append({"layer": label, "forward_s": None, "backward_s": None, "forward_share": None,
                     "backward_share": None, "other_s": value, "other_share": value / step_seconds})
    return rows


def render_profile(rows: list[dict], engine: str = "fastcnn") -> list[str]:
    """The rows as a text table of ms per step and % of the step (no rows: no lines). A row that is not a
    layer's (optimizer, batch gather, rest) puts its time in the forward columns."""
    if not rows:
        return []

    def ms(value):
        return "n/a" if value is None else format(1e3 * value, ",.2f")

    def pct(value):
        return "n/a" if value is None else format(100 * value, ".1f")

    headers = [f"layer type ({engine})", "forward ms/step", "backward ms/step", "forward %", "backward %"]
    lines = [[r["layer"], ms(r["forward_s"]), ms(r["backward_s"]), pct(r["forward_share"]), pct(r["backward_share"])]
             for r in rows if "other_s" not in r]
    lines += [[r["layer"], ms(r["other_s"]), "", pct(r["other_share"]), ""] for r in rows if "other_s" in r]
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(headers)]

    def render(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [render(headers), render(["-" * w for w in widths])] + [render(line) for line in lines]
