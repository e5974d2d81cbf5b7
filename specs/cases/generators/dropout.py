"""Write specs/cases/dropout.json: the conformance cases of the dropout family (specs/dropout.md).

Run from anywhere: ``python specs/cases/generators/dropout.py``. Never imports the engines under test.

The mask is defined by a formula, not by a random stream, so every expected value here is "closed form":
the counter-based generator of specs/dropout.md evaluated with plain Python integers (arbitrary precision,
reduced modulo 2^64 after every multiply and add). ``python dropout.py --table`` prints the worked example
of the spec (the first ``u_i`` for seed 0).
"""

from __future__ import annotations

import math
import sys
from functools import partial

import numpy as np

from _common import array, case, write_cases

SOURCE = "closed form"
CASES: list[dict] = []

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------------------------------------
# The formula of specs/dropout.md, with Python integers
# ---------------------------------------------------------------------------------------------------------


def mix64(z: int) -> int:
    z = (z ^ (z >> 30)) & MASK64
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z = (z ^ (z >> 27)) & MASK64
    z = (z * 0x94D049BB133111EB) & MASK64
    return (z ^ (z >> 31)) & MASK64


def uniform(seed: int, i: int) -> float:
    key = mix64(seed % (1 << 64))
    counter = (key + (i + 1) * GAMMA) & MASK64
    bits = mix64(counter) >> 11
    return math.ldexp(bits, -53)  # exact: a 53-bit integer times a power of two


def mask(shape, p: float, seed: int) -> np.ndarray:
    size = math.prod(shape)
    return np.array([1.0 if uniform(seed, i) >= p else 0.0 for i in range(size)]).reshape(shape)


def dropped(x: np.ndarray, p: float, seed: int) -> np.ndarray:
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return x * (mask(x.shape, p, seed) * scale)


# ---------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------


# Whole floats are written as ints: inputs and masks are mostly whole numbers, and read shorter so.
arr = partial(array, whole_as_int=True)


def add(name, op, doc, args, kwargs=None, *, expected=None, raises=None, match=None, source=SOURCE, **extra):
    """Append a case to CASES; its source is the closed form unless given."""
    CASES.append(case(name, op, doc, source, args, expected, kwargs=kwargs, raises=raises, match=match, **extra))


def x_values(shape, start=1.0) -> np.ndarray:
    """Distinct, signed, exactly representable inputs: 1, -2, 3, -4, ..."""
    n = math.prod(shape)
    return np.array([(start + i) * (-1) ** i for i in range(n)], dtype=np.float64).reshape(shape)


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------


def mask_cases():
    add("dropout_mask/seed0-p0.5-first-8", "dropout_mask",
        "the first 8 mask bits for seed 0 (the worked example of the spec's u_i table)",
        [[8], 0.5, 0], expected=arr(mask((8,), 0.5, 0)))
    add("dropout_mask/seed42-p0.3-2x3", "dropout_mask", "row-major flat index i decides element [i // 3, i % 3]",
        [[2, 3], 0.3, 42], expected=arr(mask((2, 3), 0.3, 42)))
    add("dropout_mask/seed-minus-1-wraps", "dropout_mask", "seed -1 is used modulo 2^64 (same as 2^64 - 1)",
        [[2, 2, 2], 0.5, -1], expected=arr(mask((2, 2, 2), 0.5, (1 << 64) - 1)))
    add("dropout_mask/seed-2pow64-minus-1", "dropout_mask", "the largest unsigned 64-bit seed",
        [[2, 2, 2], 0.5, (1 << 64) - 1], expected=arr(mask((2, 2, 2), 0.5, (1 << 64) - 1)))
    add("dropout_mask/p0-keeps-all", "dropout_mask", "u_i >= 0 always holds", [[3, 2], 0.0, 5],
        expected=arr(np.ones((3, 2))))
    add("dropout_mask/p1-drops-all", "dropout_mask", "u_i < 1 always holds", [[3, 2], 1.0, 5],
        expected=arr(np.zeros((3, 2))))
    add("dropout_mask/seed123-p0.9-1x1x4x4", "dropout_mask", "high drop rate on an image-shaped mask",
        [[1, 1, 4, 4], 0.9, 123], expected=arr(mask((1, 1, 4, 4), 0.9, 123)))
    add("dropout_mask/error-negative-size", "dropout_mask", "a negative size is not a shape", [[2, -1], 0.5, 0],
        raises="ValueError", match="shape")
    add("dropout_mask/error-p-above-1", "dropout_mask", "p must lie in [0, 1]", [[2], 1.5, 0],
        raises="ValueError", match="`p`")


def forward_cases():
    x = x_values((2, 4))
    add("dropout/train-p0.5-2x4-seed7", "dropout", "kept elements are doubled (1 / (1 - 0.5)), dropped ones are 0",
        [arr(x), 0.5], {"training": True, "seed": 7}, expected=arr(dropped(x, 0.5, 7)))
    x3 = x_values((2, 2, 3), start=0.5)
    add("dropout/train-p0.25-2x2x3-seed3", "dropout", "kept elements scaled by 1 / 0.75",
        [arr(x3)], {"p": 0.25, "seed": 3}, expected=arr(dropped(x3, 0.25, 3)))
    x4 = x_values((1, 2, 2, 2))
    add("dropout/train-p0.8-1x2x2x2-seed2024", "dropout", "scale 1 / 0.2 = 5 on the few kept elements",
        [arr(x4), 0.8, True, False], {"seed": 2024}, expected=arr(dropped(x4, 0.8, 2024)))
    add("dropout/default-p-and-seed", "dropout", "defaults p=0.5, training=True, seed=0",
        [arr(x)], expected=arr(dropped(x, 0.5, 0)))
    add("dropout/p0-identity", "dropout", "p = 0 keeps every element with scale 1", [arr(x), 0.0],
        {"seed": 9}, expected=arr(x))
    add("dropout/p1-zeros", "dropout", "p = 1 drops every element (PyTorch: x * 0)", [arr(x), 1.0],
        {"seed": 9}, expected=arr(np.zeros_like(x)))
    add("dropout/eval-identity", "dropout", "training=False returns x unchanged whatever p", [arr(x), 0.7, False],
        {"seed": 1}, expected=arr(x))
    add("dropout/inplace-writes-x", "dropout", "inplace=True also writes the result into x (argument 0)",
        [arr(x), 0.5, True, True], {"seed": 7}, expected=arr(dropped(x, 0.5, 7)),
        after={"0": arr(dropped(x, 0.5, 7))})
    add("dropout/error-p-negative", "dropout", "p must lie in [0, 1]", [arr(x), -0.1], raises="ValueError",
        match="`p`")
    add("dropout/error-seed-float", "dropout", "the seed must be an int", [arr(x), 0.5], {"seed": 1.5},
        raises="TypeError", match="seed")
    add("dropout/error-int-array", "dropout", "integer arrays are rejected", [arr([[1, 2]], "int64"), 0.5],
        raises="TypeError", match="`x`")
    add("dropout/error-training-not-bool", "dropout", "training must be True or False", [arr(x), 0.5, "yes"],
        raises="TypeError", match="training")


def backward_cases():
    x = x_values((2, 3))
    g = np.array([[0.5, -1.0, 2.0], [1.5, -0.25, 3.0]])
    add("dropout_backward/train-p0.5-seed11", "dropout_backward",
        "grad_x = grad_out * m / (1 - p), the mask recomputed from the seed",
        [arr(g), arr(x), 0.5], {"seed": 11}, expected=arr(dropped(g, 0.5, 11)))
    add("dropout_backward/train-p0.4-seed0", "dropout_backward", "scale 1 / 0.6", [arr(g), arr(x), 0.4, True],
        expected=arr(dropped(g, 0.4, 0)))
    add("dropout_backward/eval-passes-grad", "dropout_backward", "training=False: grad_x = grad_out",
        [arr(g), arr(x), 0.5, False], expected=arr(g))
    add("dropout_backward/p1-zeros", "dropout_backward", "p = 1: no gradient flows", [arr(g), arr(x), 1.0],
        expected=arr(np.zeros_like(g)))
    add("dropout_backward/error-shape-mismatch", "dropout_backward", "grad_out must have x's shape",
        [arr(g.T), arr(x), 0.5], raises="ValueError", match="grad_out")


def print_table(seed: int = 0, count: int = 6) -> None:
    key = mix64(seed)
    print(f"seed {seed}: key = mix64({seed}) = 0x{key:016X}")
    for i in range(count):
        counter = (key + (i + 1) * GAMMA) & MASK64
        z = mix64(counter)
        print(f"i={i}: counter=0x{counter:016X} mix64=0x{z:016X} bits>>11={z >> 11} u={math.ldexp(z >> 11, -53)!r}")


def main() -> None:
    if "--table" in sys.argv:
        print_table()
        return
    mask_cases()
    forward_cases()
    backward_cases()
    write_cases("dropout", CASES)


if __name__ == "__main__":
    main()
