"""A relu that returns its result with an extra leading axis."""

import numpy as np


def relu(x):
    return np.maximum(x, 0.0)[np.newaxis]
