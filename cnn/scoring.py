"""Per-class scores of a classifier: loss, accuracy and, for each class, how many images it has and how many
of them the model got right, in one pass over the data (what ``cnn evaluate`` prints).

:func:`cnn.train.evaluate` gives the first two; the per-class counts need the predictions too, and a second
pass would double the time on the reference engine.
"""

from __future__ import annotations

import numpy as np

from .data import to_float

__all__ = ["score", "class_rows"]


def score(model, x: np.ndarray, y: np.ndarray, outputs: int, batch_size: int) -> dict:
    """Mean cross-entropy, accuracy and per class (``images``, ``correct``: arrays of ``outputs`` counts) of
    ``model`` on the uint8 images ``x`` and labels ``y``, scored ``batch_size`` images at a time."""
    total, images, correct = 0.0, np.zeros(outputs, np.int64), np.zeros(outputs, np.int64)
    for start in range(0, len(y), batch_size):
        xb, yb = to_float(x[start:start + batch_size]), y[start:start + batch_size]
        logits = model.forward(xb, training=False, backward=False)
        total += float(model.engine.cross_entropy(logits, yb, reduction="sum"))
        hit = np.argmax(logits, axis=1) == yb
        np.add.at(images, yb, 1)
        np.add.at(correct, yb[hit], 1)
    return {"loss": total / len(y), "accuracy": int(correct.sum()) / len(y), "images": images, "correct": correct}


def class_rows(scores: dict, names: list[str]) -> list[dict]:
    """One row per named class: ``class``, ``name``, ``images``, ``correct`` and ``accuracy`` (None without images)."""
    rows = []
    for k, name in enumerate(names):
        n, c = int(scores["images"][k]), int(scores["correct"][k])
        rows.append({"class": k, "name": name, "images": n, "correct": c, "accuracy": c / n if n else None})
    return rows
