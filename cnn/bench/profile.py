"""``cnn bench train --profile``: fastcnn's step time per layer type, forward and backward.

Each runtime layer of the model gets, on the instance only, a ``forward`` and ``backward`` that time the
original with ``time.perf_counter``; nothing changes in :mod:`cnn.layers`, so a model that is not profiled
pays nothing. A block's time is its *own* (its inner layers' time subtracted): for a Residual block that is
the sum of body and shortcut, the block's activation, and in backward the sum of the two gradients, which is
what answers "is the residual add slow". What no layer accounts for (loss, optimizer update, accuracy
count, the calls themselves) is the row ``(rest of the step)``.
"""

from __future__ import annotations

import time
from collections import defaultdict


class LayerProfile:
    """Seconds of exclusive time per (layer type, forward|backward), summed over every timed call."""

    def __init__(self):
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self._stack: list[float] = []  # per open call: the time its inner layers took so far

    def wrap(self, layer) -> None:
        """Time ``layer.forward`` and ``layer.backward`` from now on (instance attributes shadow the methods)."""
        for phase in ("forward", "backward"):
            setattr(layer, phase, self._timed(getattr(layer, phase), layer.config.type, phase))

    def _timed(self, call, kind: str, phase: str):
        def timed(*args):
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                return call(*args)
            finally:
                total = time.perf_counter() - start
                inner = self._stack.pop()
                self.seconds[(kind, phase)] += total - inner
                if self._stack:
                    self._stack[-1] += total
        return timed

    def reset(self) -> None:
        self.seconds.clear()


def profile_model(model) -> LayerProfile:
    """A :class:`LayerProfile` wrapped around every layer of ``model``, blocks and their inner layers."""
    profile = LayerProfile()
    for layer in model.all_layers():
        profile.wrap(layer)
    return profile


def profile_rows(seconds: dict, step_seconds: float) -> list[dict]:
    """One row per layer type: forward and backward seconds and their shares of ``step_seconds``, largest
    first, then ``(rest of the step)``: the step's time outside every layer."""
    kinds = sorted({k for k, _ in seconds}, key=lambda k: -(seconds.get((k, "forward"), 0.0)
                                                             + seconds.get((k, "backward"), 0.0)))
    rows = []
    for kind in kinds:
        fwd, bwd = seconds.get((kind, "forward"), 0.0), seconds.get((kind, "backward"), 0.0)
        rows.append({"layer": kind, "forward_s": fwd, "backward_s": bwd,
                     "forward_share": fwd / step_seconds, "backward_share": bwd / step_seconds})
    rest = step_seconds - sum(seconds.values())
    rows.append({"layer": "(rest of the step)", "forward_s": None, "backward_s": None,
                 "forward_share": None, "backward_share": None, "other_s": rest, "other_share": rest / step_seconds})
    return rows
