"""Inverted dropout with a reproducible, counter-based keep-mask (``specs/dropout.md``).

The mask is not drawn from a stateful random stream: element ``i`` (row-major flat index) is kept when
``u_i >= p``, where ``u_i`` is a pure function of ``(seed, i)``. Any implementation, in any language, on
any number of threads, in any order, gets the same mask bit for bit, and the backward pass recomputes
the mask from the seed instead of storing it.
"""

from __future__ import annotations

import numpy as np

from cnnbase.checks import as_float64
from cnnbase.dropout import (
    GOLDEN_GAMMA, MASK64, DropoutArgs, check_dropout, check_dropout_backward, check_mask_shape, check_probability,
    check_seed, keep_scale, mix64,
)

__all__ = ["dropout_mask", "dropout", "dropout_backward"]

_TWO_POW_MINUS_53 = 2.0 ** -53


def _uniform(key: int, i: int) -> float:
    """``u_i = (mix64(key + (i + 1) * gamma) >> 11) * 2^-53``, exactly representable in [0, 1)."""
    counter = (key + ((i + 1) * GOLDEN_GAMMA & MASK64)) & MASK64
    return (mix64(counter) >> 11) * _TWO_POW_MINUS_53


def dropout_mask(shape, p, seed) -> np.ndarray:
    """Keep-mask of inverted dropout: ``m_i = 1 if u_i >= p else 0``.

    ``key = mix64(seed mod 2^64)``, ``u_i = (mix64(key + (i + 1) * 0x9E3779B97F4A7C15) >> 11) * 2^-53`` for
    the row-major flat index ``i``, all arithmetic modulo 2^64 (``specs/dropout.md``).

    Shape: ``shape`` (any rank) -> ``shape``.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the mask (the shape of ``x``).
    p : float
        Drop probability in ``[0, 1]``; ``p = 0`` keeps everything, ``p = 1`` drops everything.
    seed : int
        Any int, used modulo 2^64.

    Returns
    -------
    numpy.ndarray
        float64 array of 0.0 and 1.0.
    """
    op = "dropout_mask"
    dims = check_mask_shape(shape, op)
    p = check_probability(p, op)
    key = mix64(check_seed(seed, op))
    mask = np.empty(dims, dtype=np.float64)
    flat = mask.reshape(-1)
    for i in range(flat.size):
        flat[i] = 1.0 if _uniform(key, i) >= p else 0.0
    return mask


def _scaled_mask_product(values: np.ndarray, args: DropoutArgs) -> np.ndarray:
    """``values * m / (1 - p)`` elementwise in float64 (the forward on ``x``, the backward on ``grad_out``)."""
    out = np.empty(values.shape, dtype=np.float64)
    if not args.training:
        out[...] = values
        return out
    mask = dropout_mask(values.shape, args.p, args.seed).reshape(-1)
    scale = keep_scale(args.p)
    src = np.ravel(as_float64(values), order="C")
    dst = out.reshape(-1)
    for i in range(src.size):
        dst[i] = src[i] * (mask[i] * scale)
    return out


def dropout(x, p=0.5, training=True, inplace=False, *, seed=0) -> np.ndarray:
    """Inverted dropout: ``y_i = x_i * m_i / (1 - p)`` in training, ``y = x`` otherwise.

    ``m = dropout_mask(x.shape, p, seed)``; ``p = 1`` gives ``y = x * 0``; ``training=False`` or ``p = 0``
    gives a float64 copy of ``x``.

    Shape: ``x`` any shape, e.g. ``(N, C, H, W)`` -> ``y`` of the same shape.

    Parameters
    ----------
    x : numpy.ndarray
        Input of any float dtype.
    p : float
        Drop probability in ``[0, 1]``.
    training : bool
        Apply the mask (True) or return ``x`` unchanged (False).
    inplace : bool
        Also write the result into ``x`` (in ``x``'s dtype), as PyTorch does; when ``x`` is float64 the
        returned array is ``x`` itself.
    seed : int
        Seed of the counter-based mask (keyword only; PyTorch uses its global generator instead).

    Returns
    -------
    numpy.ndarray
        float64 array of ``x``'s shape.
    """
    args = check_dropout(x, p, training, inplace, seed)
    y = _scaled_mask_product(x, args)
    if args.inplace:
        x[...] = y
        if x.dtype == np.float64:
            return x
    return y


def dropout_backward(grad_out, x, p=0.5, training=True, inplace=False, *, seed=0) -> np.ndarray:
    """Gradient of dropout: ``dL/dx_i = g_i * m_i / (1 - p)`` in training, ``g`` otherwise.

    The mask is recomputed from ``seed``; ``inplace`` does not change the gradient and nothing is written.

    Shape: ``grad_out`` and ``x`` of one shape -> ``grad_x`` of that shape.
    """
    args = check_dropout_backward(grad_out, x, p, training, inplace, seed)
    return _scaled_mask_product(grad_out, args)
