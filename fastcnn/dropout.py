"""Inverted dropout with the counter-based SplitMix64 keep-mask of ``specs/dropout.md``, in Numba.

The mask bit of element ``i`` is a pure function of ``(seed, i)``, so each element is computed on its own:
the kernels are one parallel loop over the flat elements, vectorised by LLVM (64-bit multiplies, shifts,
xors and a compare), and the mask is bit-identical to refcnn's whatever the thread count.

``u_i >= p`` is decided on integers: ``u_i = k_i * 2^-53`` with ``k_i = mix64(...) >> 11`` an integer
below 2^53, and ``p * 2^53`` is exact (a power-of-two scaling), so ``u_i >= p`` exactly when
``k_i >= ceil(p * 2^53)``. No float conversion of ``k_i`` is needed, and the test is the spec's bit for bit.

Differences from refcnn, by design: the result has the input's dtype (float16 computed in float32), and
with ``inplace=True`` the returned array is ``x`` itself for every dtype (refcnn returns ``x`` only for
float64, because its result is always float64). Each product ``x_i * (m_i * s)`` is formed in float64 and
rounded once, so a float32 result equals refcnn's float64 result rounded to float32.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cnnbase import dropout as spec
from cnnbase.dropout import check_dropout, check_dropout_backward, check_mask_shape, check_probability, check_seed

from . import _runtime

__all__ = ["dropout_mask", "dropout", "dropout_backward"]

# The spec's constants as uint64, so the kernels' arithmetic wraps around modulo 2^64.
_GOLDEN_GAMMA = np.uint64(spec.GOLDEN_GAMMA)
_MIX_1 = np.uint64(spec.MIX_1)
_MIX_2 = np.uint64(spec.MIX_2)
# Typed shift amounts: in Numba a uint64 shifted by an int64 is promoted to float64, so every operand of the
# mask arithmetic is a uint64.
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_ONE = np.uint64(1)

#: Elements per parallel work item: big enough to amortise scheduling, small enough to balance 2-16
#: threads on a (128, 64, 12, 12) activation. The result does not depend on it (each element is independent).
_BLOCK = 1 << 14


# ----------------------------------------------------------------------------------------------------------
# Kernels


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _mix64(z):
    """SplitMix64's finaliser; uint64 arithmetic wraps around modulo 2^64 as the spec requires."""
    z = z ^ (z >> _S30)
    z = z * _MIX_1
    z = z ^ (z >> _S27)
    z = z * _MIX_2
    z = z ^ (z >> _S31)
    return z


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _counter(key, i):
    """SplitMix64's state before element ``i``'s output: ``key + (i + 1) * gamma`` (mod 2^64)."""
    return key + (np.uint64(i) + _ONE) * _GOLDEN_GAMMA


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _kept(counter, threshold):
    """``u_i >= p`` as ``(mix64(counter) >> 11) >= ceil(p * 2^53)``. Both sides are at most 2^53, so the
    comparison is done on int64 (AVX2 has a signed 64-bit compare, not an unsigned one)."""
    return np.int64(_mix64(counter) >> _S11) >= threshold


# fastmath off: the only float work is one multiply per element, and x * 0.0 must stay NaN for NaN/inf x
# and -0.0 for negative x (the spec's "p = 1 gives x * 0").
@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _mask_kernel(key, threshold, out):
    """``out[i] = 1.0 if kept else 0.0`` over the flat float64 ``out``."""
    n = out.size
    for b in numba.prange((n + _BLOCK - 1) // _BLOCK):
        start = b * _BLOCK
        counter = _counter(key, start)
        o = out[start:min(n, start + _BLOCK)]  # indexed from 0: see _scaled_mask_kernel
        for i in range(o.size):
            o[i] = 1.0 if _kept(counter, threshold) else 0.0
            counter += _GOLDEN_GAMMA  # an induction variable: cheaper than a 64-bit multiply per element


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _scaled_mask_kernel(src, key, threshold, scale, out):
    """``out[i] = src[i] * (m_i * scale)`` over flat arrays; ``out`` may be ``src`` (each element is read
    before it is written, by the same iteration)."""
    n = src.size
    for b in numba.prange((n + _BLOCK - 1) // _BLOCK):
        start = b * _BLOCK
        counter = _counter(key, start)
        # views indexed from 0, which LLVM vectorises with plain loads and stores: indexed from ``start`` it
        # emitted gathers and scatters (128x64x12x12 float32 on one thread: 1.08 -> 0.61 ms)
        s, o = src[start:min(n, start + _BLOCK)], out[start:min(n, start + _BLOCK)]
        for i in range(s.size):
            factor = scale if _kept(counter, threshold) else 0.0
            o[i] = np.float64(s[i]) * factor  # float64 product, rounded once when stored
            counter += _GOLDEN_GAMMA


# ----------------------------------------------------------------------------------------------------------
# Helpers of the wrappers


def _threshold(p: float) -> np.int64:
    """``ceil(p * 2^53)``: element ``i`` is kept when its 53-bit integer ``k_i`` is at least this."""
    return np.int64(math.ceil(p * 2.0 ** 53))


def _key(seed: int) -> np.uint64:
    """``mix64(seed mod 2^64)``, computed with Python integers (once per call)."""
    return np.uint64(spec.mix64(seed))


def _apply(values: np.ndarray, args, dtype: np.dtype, out: np.ndarray | None = None) -> np.ndarray:
    """``values * m / (1 - p)`` computed in ``dtype`` (float32 or float64); into ``out`` when given (a
    C-contiguous array of ``dtype`` and ``values``' shape, possibly ``values`` itself)."""
    src = _runtime.as_compute(values, dtype)
    if out is None:
        out = np.empty(values.shape, dtype=dtype)
    if not args.training:
        out[...] = src
    else:
        # a hash per element: 200,704 elements 166 us on 2 threads, 213 on 1 (the wake of the sleeping thread
        # costs ~90 us); so its elements weigh 1/2 of _runtime.launch's
        _runtime.launch(_scaled_mask_kernel, src.size // 2, src.reshape(-1), _key(args.seed), _threshold(args.p),
                        spec.keep_scale(args.p), out.reshape(-1))
    return out


# ----------------------------------------------------------------------------------------------------------
# Public functions


def _store_dtype(*arrays) -> np.dtype:
    """Where the kernel stores its float64 products: the compute dtype, but float64 for float16 inputs,
    whose result is then rounded once to float16 (through float32 it would be rounded twice, and a tie
    of the second rounding can differ from refcnn's float64 result rounded once)."""
    if any(a.dtype == np.float16 for a in arrays):
        return np.dtype(np.float64)
    return _runtime.compute_dtype(*arrays)


def dropout_mask(shape, p, seed) -> np.ndarray:
    op = "dropout_mask"
    dims = check_mask_shape(shape, op)
    p = check_probability(p, op)
    seed = check_seed(seed, op)
    mask = np.empty(dims, dtype=np.float64)
    _mask_kernel(_key(seed), _threshold(p), mask.reshape(-1))
    return mask


def dropout(x, p=0.5, training=True, inplace=False, *, seed=0) -> np.ndarray:
    args = check_dropout(x, p, training, inplace, seed)
    dtype = _store_dtype(x)
    if not args.inplace:
        return _apply(x, args, dtype).astype(x.dtype, copy=False)
    if x.flags.c_contiguous and x.dtype == dtype:
        _apply(x, args, dtype, out=x)  # the kernel reads and writes each element in one iteration
    else:
        x[...] = _apply(x, args, dtype)
    return x


def dropout_backward(grad_out, x, p=0.5, training=True, inplace=False, *, seed=0) -> np.ndarray:
    args = check_dropout_backward(grad_out, x, p, training, inplace, seed)
    grad_x = _apply(grad_out, args, _store_dtype(grad_out, x))
    return grad_x.astype(_runtime.result_dtype(grad_out, x), copy=False)


_runtime.share_docstrings(globals(), __all__, notes={
    "dropout_mask": "fastcnn: the same float64 mask as refcnn, bit for bit, whatever the thread count.",
    "dropout": _runtime.DTYPE_NOTE + " Dropout stores float16 results in float64 first, so they are refcnn's "
               "rounded once." + " With inplace=True the returned array is x itself for every dtype (refcnn "
               "returns x itself only for float64, its result dtype).",
})
