"""Which examples go together: the mini-batches of an epoch (:func:`batches`) and a held-out part
(:func:`validation_split`), both as index arrays.

Both are pure functions of their integer arguments (the batch order of epoch ``e`` depends only on the seed
and ``e``), so a resumed run sees the same batches as one that never stopped; :mod:`cnn.train` relies on it.
"""

from __future__ import annotations

import math

import numpy as np

from cnnbase.checks import check_int, invalid


def batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True, *, drop_last: bool = False):
    """Yield the index arrays (int64) of the mini-batches of one epoch over ``n`` examples.

    With ``shuffle`` the order is a permutation drawn from ``numpy.random.default_rng([seed, epoch])``, a
    pure function of ``(seed, epoch)``, so a run resumed at epoch e sees the same batches as one that was
    never stopped; without it the order is 0..n-1. Every batch has ``batch_size`` indices except the last,
    which has the rest (dropped when ``drop_last``).
    """
    n = check_int(n, "n", "batches", minimum=0)
    batch_size = check_int(batch_size, "batch_size", "batches", minimum=1)
    seed = check_int(seed, "seed", "batches", minimum=0)
    epoch = check_int(epoch, "epoch", "batches", minimum=0)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size].astype(np.int64)


def validation_split(n: int, fraction: float, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train indices, validation indices), both sorted int64 arrays.

    The validation part has ``n - floor(n * (1 - fraction))`` examples (Keras's ``validation_split``
    count). With ``seed=None`` it is the last ones, as in Keras (taken before any shuffling); with a seed it
    is the last part of ``numpy.random.default_rng(seed).permutation(n)``. Both parts must be non-empty.
    """
    n = check_int(n, "n", "validation_split", minimum=2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise ValueError(invalid("validation_split", "fraction", "a number strictly between 0 and 1", fraction))
    n_val = n - int(math.floor(n * (1 - fraction)))
    if not 0 < n_val < n:
        raise ValueError(f"validation_split: fraction={fraction!r} of n={n} examples leaves "
                         f"{n_val} for validation and {n - n_val} for training; both must be at least 1.")
    if seed is None:
        order = np.arange(n)
    else:
        order = np.random.default_rng(check_int(seed, "seed", "validation_split", minimum=0)).permutation(n)
    return np.sort(order[: n - n_val]).astype(np.int64), np.sort(order[n - n_val:]).astype(np.int64)
