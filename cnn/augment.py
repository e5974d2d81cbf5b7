"""Data augmentation in training: a policy's parameters through an engine's ``augment`` op (``specs/augment.md``).

:func:`augment_batch` is what :func:`cnn.train.fit` runs on each training batch: the parameters of each
image are drawn from ``(seed, epoch, the image's index in the training set)``
(:mod:`cnnbase.augment_policy`), so they do not depend on the batch size, the batch order, the thread count
or a ``--resume``; one engine call resamples the batch, applies contrast and brightness and erases; the
result is clipped to [0, 1] when contrast or brightness is on. :func:`preview` is ``cnn augment``'s grid.
"""

from __future__ import annotations

import io

import numpy as np

from cnnbase.augment_policy import VALUE_RANGE, AugmentError, AugmentPolicy, parameters

from .files import atomic_write

__all__ = ["AugmentPolicy", "AugmentError", "make_policy", "augment_batch", "preview_images", "write_preview"]


def make_policy(value) -> AugmentPolicy:
    """None, a description text, a dict or an :class:`AugmentPolicy` -> the policy."""
    return AugmentPolicy.make(value)


def augment_batch(engine, x: np.ndarray, policy: AugmentPolicy, *, seed: int, epoch: int, index) -> np.ndarray:
    """The images ``x`` (N, C, H, W), the training set's images ``index``, as epoch ``epoch`` of a run seeded
    ``seed`` sees them; ``x`` itself when the policy changes nothing. ``engine`` is refcnn or fastcnn."""
    if not policy.active:
        return x
    op = getattr(engine, "augment", None)
    if op is None:
        raise AugmentError(f"augment: the engine {getattr(engine, '__name__', engine)} has no augment op")
    index = np.asarray(index, dtype=np.int64)
    if index.shape != (len(x),):
        raise AugmentError(f"augment: expected one index per image ({len(x)}); received shape {index.shape}")
    transform, pixel, erase = parameters(policy, seed, epoch, index, x.shape[2], x.shape[3])
    y = op(x, transform, pixel, erase, fill_mode=policy.fill, fill_value=policy.fill_value,
           interpolation=policy.interpolation)
    if policy.photometric:
        np.clip(y, *VALUE_RANGE, out=y)
    return y


def preview_images(engine, x: np.ndarray, policy: AugmentPolicy, *, seed: int = 0, variants: int = 7,
                   index=None) -> np.ndarray:
    """(N, 1 + variants, C, H, W): each image, then what epochs 0 .. variants-1 of a run seeded ``seed``
    make of it (the image's index in the training set is ``index``, by default 0..N-1)."""
    index = np.arange(len(x)) if index is None else np.asarray(index, dtype=np.int64)
    columns = [x] + [augment_batch(engine, x, policy, seed=seed, epoch=e, index=index) for e in range(variants)]
    return np.stack(columns, axis=1)


def write_preview(path, grid: np.ndarray, *, title: str = "", row_labels=(), column_labels=()) -> None:
    """The grid of :func:`preview_images` as a PNG (matplotlib's Agg canvas), written atomically: one row per
    image, gray for 1 channel, RGB for 3 (other channel counts: the first channel), values shown on [0, 1]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = grid.shape[:2]
    size = 1.1
    figure = Figure(figsize=(cols * size + 0.6, rows * size + (0.5 if title else 0.2)))
    FigureCanvasAgg(figure)
    for r in range(rows):
        for c in range(cols):
            axes = figure.add_subplot(rows, cols, r * cols + c + 1)
            image = np.asarray(grid[r, c], dtype=np.float64)
            if image.shape[0] == 3:
                axes.imshow(np.clip(image.transpose(1, 2, 0), 0.0, 1.0), interpolation="nearest")
            else:
                axes.imshow(image[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0 and c < len(column_labels):
                axes.set_title(column_labels[c], fontsize=7)
            if c == 0 and r < len(row_labels):
                axes.set_ylabel(row_labels[r], fontsize=7)
    if title:
        figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())
