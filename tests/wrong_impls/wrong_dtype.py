"""A relu that always returns float32, also for float64 input."""

import numpy as np


def relu(x):
    return np.maximum(x, 0.0).astype(np.float32)
