"""Padded planes, shared by the convolution modules: the adjoint of the padding (:func:`fold`).

An input is padded by reading it through one index map per axis (``src[j]``: the input cell that padded cell
``j`` copies, ``-1`` for a zero cell; :func:`fastcnn.conv._src_map`). A gradient computed on the padded plane
goes back to the input by adding each cell onto the cell it copied: that is :func:`fold`.
"""

from __future__ import annotations

import numba

from . import _runtime

__all__ = ["identity_run", "fold"]

_FM = _runtime.FASTMATH


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def identity_run(src):
    """(lo, hi): the cells lo <= j < hi of a padded axis that read the input in order (src[j] = j - lo)."""
    n = src.size
    lo = 0
    while lo < n and src[lo] != 0:
        lo += 1
    hi = lo
    while hi < n and src[hi] == hi - lo:
        hi += 1
    return lo, hi


@numba.njit(fastmath=_FM, **_runtime.KERNEL_FLAGS)
def fold(planes, src_h, src_w, gx):
    """gx = 0, then each padded cell's value is added onto the input cell it was copied from (the adjoint of
    the padding; index -1, a zero-filled cell, gives nothing). Rows in order, cells in order: a fixed order.
    The in-order run of each row is a vectorised add; only the fill's cells are looked up one by one."""
    C, Hp, Wp = planes.shape
    lo, hi = identity_run(src_w)
    gx[:] = 0
    for c in range(C):
        for i in range(Hp):
            sh = src_h[i]
            if sh < 0:
                continue
            dst = gx[c, sh]
            src = planes[c, i]
            for j in range(lo):
                if src_w[j] >= 0:
                    dst[src_w[j]] += src[j]
            for j in range(hi - lo):
                dst[j] += src[lo + j]
            for j in range(hi, Wp):
                if src_w[j] >= 0:
                    dst[src_w[j]] += src[j]
