"""Winograd convolution F(2x2, 3x3): stride-1 3x3 convolutions with 2.25x fewer multiplications.

Lavin, A. and Gray, S. (2015), "Fast Algorithms for Convolutional Neural Networks", arXiv:1509.09308 (CVPR
2016). Output tile ``Y`` (2x2) of input tile ``d`` (4x4, the tile's receptive field) and kernel ``g`` (3x3)::

    Y = A^T [ (G g G^T) * (B^T d B) ] A            (* : element by element, 16 products for 36)

**The matrices**, derived here from the 1-D F(2, 3) by the Toom-Cook construction on the points 0, 1, -1 and
infinity: with ``m0 = (d0 - d2) g0``, ``m1 = (d1 + d2)(g0 + g1 + g2)/2``, ``m2 = (d2 - d1)(g0 - g1 + g2)/2``,
``m3 = (d1 - d3) g2``, the two outputs are ``y0 = d0 g0 + d1 g1 + d2 g2 = m0 + m1 + m2`` and
``y1 = d1 g0 + d2 g1 + d3 g2 = m1 - m2 - m3`` (expand: every cross term cancels). So::

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

and the 2-D algorithm nests the 1-D one along both axes. ``B`` and ``A`` hold only 0 and +-1 (the transforms
are additions), ``G`` halves: in float32 the error stays at the direct convolution's level (measured in
``tests/test_winograd.py``: see ``specs/conv.md``, "Algorithms").

**Summing over channels**: with ``U[xi, k, c] = (G g[k, c] G^T)[xi]`` (once per call) and ``V[xi, c, t] =
(B^T d[c, t] B)[xi]`` for every tile ``t``, the 16 positions ``xi`` are 16 independent GEMMs
``M[xi] = U[xi] @ V[xi]`` (K x C by C x T), and tile ``t`` of output channel ``k`` is ``A^T M[:, k, t] A``.

**Backward**, by the chain rule through that same forward (the adjoints of linear maps, not separate
Winograd algorithms; the sums are the same numbers up to rounding): with ``dM[xi, k, t] = (A dY[k, t] A^T)[xi]``

* weight gradient: ``dU[xi] = sum over tiles of dM[xi] @ V[xi]^T`` and ``dg = G^T dU G``;
* input gradient: ``dV[xi] = U[xi]^T @ dM[xi]``, and ``B dV[c, t] B^T`` is added onto the 4x4 input cells of
  tile ``t`` (neighbouring tiles overlap by 2 cells).

One pass computes both and shares ``V`` and ``dM`` (the weight gradient by F(3x3, 2x2) would transform ``x``
and ``dY`` again). The multiplications: 16 x K x C per tile for each GEMM against the direct path's 36.

**Blocks that stay in cache**: the full transformed tensors for a batch would be 4x the input and the output,
written and read back from memory. Here one task takes one sample (forward) or a block of ``GW_BLOCK``
samples (backward), and inside it goes through *chunks* of tile rows sized so that ``V`` and ``M`` together
stay under ``CHUNK_BYTES`` (L2): transform the chunk, 16 single-threaded BLAS GEMMs on it, transform back.

**Padding**: the input is padded once by conv.py's index maps (every ``padding_mode``), with one more zero row
(column) when the output height (width) is odd, so the last tile reads whole 4x4 windows; that tile's
extra output row (column) is dropped and its output gradient taken as 0. The input gradient is gathered on
a padded plane and folded back through the same maps (``_conv_base.fold``).

**Determinism**: the weight gradient of a block of ``GW_BLOCK`` samples is summed sample by sample and
chunk by chunk in order, and the blocks in order afterwards (``_conv_base.sum_blocks``); every other value is
computed by one task. Results are bit-identical for any thread count.

**When "auto" takes it** (``pays``): see ``MIN_CHANNELS`` for the measurement.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from cnnbase.conv_algorithm import winograd_obstacle

from . import _blas, _runtime, conv
from ._blas import gemm, single_threaded
from ._conv_base import (GW_BLOCK, SCRATCH, buffers, conv_maps, fold, matrix, none, pad, positions, row_cells,
                         sum_blocks)

__all__: list[str] = []

#: The Winograd matrices (see the module docstring).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

#: Bytes of one chunk's transformed input and GEMM result (V and M) together: about half of this machine's
#: 2 MB L2 per core, so that the output transform reads M from cache.
CHUNK_BYTES = 1 << 20

#: Input and output channels from which ``algorithm="auto"`` takes Winograd (float32 and float64). Measured
#: here, 1 thread, float32, batch 32, 3x3, interleaved medians of direct / Winograd time (above 1: Winograd
#: faster), with the machine heavily loaded (load average 6-10 on 2 cores), so +-20% noise:
#: C=K=8: forward 0.5-0.6, backward 0.8-0.9; C=K=16: 0.9-1.2 and 1.0-1.4; C=16, K=32: 0.9-1.4 and 1.2-1.9;
#: C=K=32: 1.0-1.1 and 1.5-1.6; the big layers (benchmarks/winograd_bench.py): 32 -> 64 on 26x26 1.3 and 1.3,
#: 64 -> 64 on 56x56 (padding 1) 1.2-1.3 and 1.3-1.4; 3 -> 32 channels 0.6-0.7 and 0.5-1.0. Below 32 channels
#: the gain is within the noise, so the rule starts at 32, where both directions won in every run.
MIN_CHANNELS = 32

# ---------------------------------------------------------------------------------------------------
# Kernels: arrays and ints only
# ---------------------------------------------------------------------------------------------------

_FM = _runtime.FASTMATH


@numba.njit(inline="always", **_runtime.KERNEL_FLAGS)
def _bt(r, s):
    """B^T applied to the 4 cells r[s:s+4]: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    return r[s] - r[s + 2], r[s + 1] + r[s + 2], r[s + 2] - r[s + 1], r[s + 1] - r[s + 3]


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_transform(planes, i0, i1, tw, V):
    """V[a*4 + b, c, t] = (B^T d B)[a, b] for the 4x4 window d = planes[c, 2i:2i+4, 2j:2j+4] of tile t =
    (i - i0)*tw + j, i0 <= i < i1. Each row of the window is transformed along the width, then the four
    rows are combined (the same 1-D transform); additions only, in a fixed order."""
    T = (i1 - i0) * tw
    C = planes.shape[0]
    for c in range(C):
        for i in range(i0, i1):
            r0, r1, r2, r3 = planes[c, 2 * i], planes[c, 2 * i + 1], planes[c, 2 * i + 2], planes[c, 2 * i + 3]
            t0 = (i - i0) * tw
            for j in range(tw):
                s = 2 * j
                a00, a01, a02, a03 = _bt(r0, s)
                a10, a11, a12, a13 = _bt(r1, s)
                a20, a21, a22, a23 = _bt(r2, s)
                a30, a31, a32, a33 = _bt(r3, s)
                ct = c * T + t0 + j
                V[0, ct], V[1, ct], V[2, ct], V[3, ct] = a00 - a20, a01 - a21, a02 - a22, a03 - a23
                V[4, ct], V[5, ct], V[6, ct], V[7, ct] = a10 + a20, a11 + a21, a12 + a22, a13 + a23
                V[8, ct], V[9, ct], V[10, ct], V[11, ct] = a20 - a10, a21 - a11, a22 - a12, a23 - a13
                V[12, ct], V[13, ct], V[14, ct], V[15, ct] = a10 - a30, a11 - a31, a12 - a32, a13 - a33


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _output_transform(M, i0, i1, tw, bias, want_bias, H_out, W_out, y):
    """y[k, 2i + p, 2j + q] = (A^T M[:, k, t] A)[p, q] (+ bias[k]) for the tiles t of rows i0 <= i < i1,
    the cells inside H_out x W_out only. y (K, H_out, W_out)."""
    T = (i1 - i0) * tw
    K = y.shape[0]
    for k in range(K):
        b = bias[k] if want_bias else 0.0
        for i in range(i0, i1):
            t0 = (i - i0) * tw
            two_rows = 2 * i + 1 < H_out
            for j in range(tw):
                kt = k * T + t0 + j
                # columns: o_a0 = m_a0 + m_a1 + m_a2, o_a1 = m_a1 - m_a2 - m_a3 for each row a
                c00 = M[0, kt] + M[1, kt] + M[2, kt]
                c01 = M[1, kt] - M[2, kt] - M[3, kt]
                c10 = M[4, kt] + M[5, kt] + M[6, kt]
                c11 = M[5, kt] - M[6, kt] - M[7, kt]
                c20 = M[8, kt] + M[9, kt] + M[10, kt]
                c21 = M[9, kt] - M[10, kt] - M[11, kt]
                c30 = M[12, kt] + M[13, kt] + M[14, kt]
                c31 = M[13, kt] - M[14, kt] - M[15, kt]
                oh, ow = 2 * i, 2 * j
                y[k, oh, ow] = c00 + c10 + c20 + b
                if ow + 1 < W_out:
                    y[k, oh, ow + 1] = c01 + c11 + c21 + b
                if two_rows:
                    y[k, oh + 1, ow] = c10 - c20 - c30 + b
                    if ow + 1 < W_out:
                        y[k, oh + 1, ow + 1] = c11 - c21 - c31 + b


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _grad_out_transform(go, i0, i1, tw, H_out, W_out, dM):
    """dM[a*4 + b, k, t] = (A dY A^T)[a, b] with dY the 2x2 output gradient of tile t (0 past H_out, W_out):
    the adjoint of :func:`_output_transform`. In 1-D, (o0, o1) -> (o0, o0 + o1, o0 - o1, -o1)."""
    T = (i1 - i0) * tw
    K = go.shape[0]
    for k in range(K):
        for i in range(i0, i1):
            t0 = (i - i0) * tw
            oh = 2 * i
            two_rows = oh + 1 < H_out
            for j in range(tw):
                ow = 2 * j
                two_cols = ow + 1 < W_out
                y00 = go[k, oh, ow]
                y01 = go[k, oh, ow + 1] if two_cols else 0.0
                y10 = go[k, oh + 1, ow] if two_rows else 0.0
                y11 = go[k, oh + 1, ow + 1] if two_rows and two_cols else 0.0
                # rows: r0 = y0, r1 = y0 + y1, r2 = y0 - y1, r3 = -y1 (for each column)
                r00, r01 = y00, y01
                r10, r11 = y00 + y10, y01 + y11
                r20, r21 = y00 - y10, y01 - y11
                r30, r31 = -y10, -y11
                kt = k * T + t0 + j
                dM[0, kt], dM[1, kt], dM[2, kt], dM[3, kt] = r00, r00 + r01, r00 - r01, -r01
                dM[4, kt], dM[5, kt], dM[6, kt], dM[7, kt] = r10, r10 + r11, r10 - r11, -r11
                dM[8, kt], dM[9, kt], dM[10, kt], dM[11, kt] = r20, r20 + r21, r20 - r21, -r21
                dM[12, kt], dM[13, kt], dM[14, kt], dM[15, kt] = r30, r30 + r31, r30 - r31, -r31


@numba.njit(fastmath=False, **_runtime.KERNEL_FLAGS)
def _input_adjoint(dV, i0, i1, tw, plane):
    """plane[c, 2i:2i+4, 2j:2j+4] += B dV[:, c, t] B^T for the tiles t of rows i0 <= i < i1, in order: the
    adjoint of :func:`_input_transform`. In 1-D, (v0, v1, v2, v3) -> (v0, v1 - v2 + v3, v1 + v2 - v0, -v3)."""
    T = (i1 - i0) * tw
    C = plane.shape[0]
    for c in range(C):
        for i in range(i0, i1):
            t0 = (i - i0) * tw
            p0, p1, p2, p3 = plane[c, 2 * i], plane[c, 2 * i + 1], plane[c, 2 * i + 2], plane[c, 2 * i + 3]
            for j in range(tw):
                ct = c * T + t0 + j
                s = 2 * j
                e00, e01, e02, e03 = dV[0, ct], dV[1, ct], dV[2, ct], dV[3, ct]
                f0, f1, f2, f3 = dV[4, ct], dV[5, ct], dV[6, ct], dV[7, ct]
                g0, g1, g2, g3 = dV[8, ct], dV[9, ct], dV[10, ct], dV[11, ct]
                h0, h1, h2, h3 = dV[12, ct], dV[13, ct], dV[14, ct], dV[15, ct]
                # row r of the cell block: R0 = v0, R1 = v1 - v2 + v3, R2 = v1 + v2 - v0, R3 = -v3 (per column)
                q00, q01, q02, q03 = e00, e01, e02, e03
                q10, q11, q12, q13 = f0 - g0 + h0, f1 - g1 + h1, f2 - g2 + h2, f3 - g3 + h3
                q20, q21, q22, q23 = f0 + g0 - e00, f1 + g1 - e01, f2 + g2 - e02, f3 + g3 - e03
                q30, q31, q32, q33 = -h0, -h1, -h2, -h3
                # then the columns, the same map, added onto the plane
                p0[s] += q00
                p0[s + 1] += q01 - q02 + q03
                p0[s + 2] += q01 + q02 - q00
                p0[s + 3] -= q03
                p1[s] += q10
                p1[s + 1] += q11 - q12 + q13
                p1[s + 2] += q11 + q12 - q10
                p1[s + 3] -= q13
                p2[s] += q20
                p2[s + 1] += q21 - q22 + q23
                p2[s + 2] += q21 + q22 - q20
                p2[s + 3] -= q23
                p3[s] += q30
                p3[s + 1] += q31 - q32 + q33
                p3[s + 2] += q31 + q32 - q30
                p3[s + 3] -= q33


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _forward_kernel(xp, U, bias, want_bias, H_out, W_out, rows, cblas, y, V_bufs, M_bufs):
    """y[n] = the convolution of the padded sample xp[n] by the transformed weights U (16, K, C), tile-row
    chunk by chunk (``rows`` tile rows at a time): input transform, ``M[xi] = U[xi] @ V[xi]`` for the 16
    positions (one single-threaded BLAS call each), output transform (+ bias). One task per sample.

    xp (N, C, Hp, Wp) with Hp >= 2*ceil(H_out/2) + 2 (likewise Wp); y (N, K, H_out, W_out);
    V_bufs (threads, 16*C*rows*tw), M_bufs (threads, 16*K*rows*tw).
    """
    N, C = xp.shape[0], xp.shape[1]
    K = U.shape[1]
    th, tw = (H_out + 1) // 2, (W_out + 1) // 2
    SV, SM = V_bufs.shape[1] // 16, M_bufs.shape[1] // 16
    for n in prange(N):
        tid = numba.get_thread_id()
        for i0 in range(0, th, rows):
            i1 = min(th, i0 + rows)
            T = (i1 - i0) * tw
            _input_transform(xp[n], i0, i1, tw, positions(V_bufs[tid], 16, SV))
            for xi in range(16):
                gemm(False, False, U[xi], matrix(V_bufs[tid], SV, xi, C, T), matrix(M_bufs[tid], SM, xi, K, T),
                     False, cblas)
            _output_transform(positions(M_bufs[tid], 16, SM), i0, i1, tw, bias, want_bias, H_out, W_out, y[n])


@numba.njit(parallel=True, fastmath=False, **_runtime.KERNEL_FLAGS)
def _backward_kernel(xp, go, U, H_out, W_out, rows, block, input_grad, cblas, src_h, src_w, dU_blocks, gx, V_bufs,
                     M_bufs, plane_bufs):
    """Both gradients of :func:`_forward_kernel`'s convolution, chunk by chunk as there:

    * ``dU_blocks[b, xi] = sum over the samples of block b and their chunks, in order, of dM[xi] @ V[xi]^T``
      (the first product writes, the next ones add: beta = 1);
    * when ``input_grad``: ``dV[xi] = U[xi]^T @ dM[xi]`` (written over V[xi], whose last use was the product
      above), its adjoint input transform added onto the sample's zeroed padded plane, which is then folded onto gx[n] through
      the fill's index maps ``src_h``, ``src_w``.

    go (N, K, H_out, W_out); dU_blocks (B, 16, K, C) with B = ceil(N / block); gx (N, C, H, W); plane_bufs
    (threads, C, Hp, Wp).
    """
    N, C = xp.shape[0], xp.shape[1]
    K = U.shape[1]
    th, tw = (H_out + 1) // 2, (W_out + 1) // 2
    SV, SM = V_bufs.shape[1] // 16, M_bufs.shape[1] // 16
    for b in prange((N + block - 1) // block):
        tid = numba.get_thread_id()
        plane = plane_bufs[tid]
        for n in range(b * block, min(N, (b + 1) * block)):
            if input_grad:
                plane[:, :, :] = 0
            for i0 in range(0, th, rows):
                i1 = min(th, i0 + rows)
                T = (i1 - i0) * tw
                _input_transform(xp[n], i0, i1, tw, positions(V_bufs[tid], 16, SV))
                _grad_out_transform(go[n], i0, i1, tw, H_out, W_out, positions(M_bufs[tid], 16, SM))
                first = n == b * block and i0 == 0
                for xi in range(16):
                    V = matrix(V_bufs[tid], SV, xi, C, T)
                    dM = matrix(M_bufs[tid], SM, xi, K, T)
                    gemm(False, True, dM, V, dU_blocks[b, xi], not first, cblas)
                    if input_grad:
                        gemm(True, False, U[xi], dM, V, False, cblas)
                if input_grad:
                    _input_adjoint(positions(V_bufs[tid], 16, SV), i0, i1, tw, plane)
            if input_grad:
                fold(plane, src_h, src_w, gx[n])


# ---------------------------------------------------------------------------------------------------
# The passes: transforms of the weights, buffers, index maps
# ---------------------------------------------------------------------------------------------------


def pays(geom, dtype) -> bool:
    """``algorithm="auto"``'s rule: Winograd when it can compute ``geom`` (``winograd_obstacle``), NumPy ships
    a CBLAS, and both channel counts reach :data:`MIN_CHANNELS`."""
    return (winograd_obstacle(geom) is None and _blas.CBLAS and geom.C_in >= MIN_CHANNELS
            and geom.C_out >= MIN_CHANNELS)


def _weight_transform(w4, dtype):
    """U (16, K, C): U[a*4 + b, k, c] = (G w[k, c] G^T)[a, b], computed in float64, stored in ``dtype``."""
    K, C = w4.shape[:2]
    with np.errstate(all="ignore"):  # NaN and infinities propagate silently, as in the Numba kernels
        U = np.einsum("ai,kcij,bj->abkc", G, w4.astype(np.float64, copy=False), G, optimize=False)
    return np.ascontiguousarray(U.reshape(16, K, C), dtype=dtype)


def _weight_grad(dU, dtype):
    """dg (K, C, 3, 3) = G^T dU G per (k, c): the adjoint of :func:`_weight_transform`."""
    K, C = dU.shape[1:]
    with np.errstate(all="ignore"):
        dg = np.einsum("ai,abkc,bj->kcij", G, dU.reshape(4, 4, K, C).astype(np.float64), G, optimize=False)
    return dg.astype(dtype)


def _tile_maps(g2):
    """conv.py's index maps of the padded input, one zero row (column) longer when the output height (width)
    is odd, so that every tile's 4x4 window lies inside the padded planes."""
    src_h, src_w = conv_maps(g2)
    H_out, W_out = g2.out
    if H_out % 2:
        src_h = np.append(src_h, -1)
    if W_out % 2:
        src_w = np.append(src_w, -1)
    return src_h, src_w


def _chunk_rows(C, K, tw, th, itemsize) -> int:
    """Tile rows per chunk: as many as keep V and M under CHUNK_BYTES, at least one, at most all."""
    return int(min(th, max(1, CHUNK_BYTES // (16 * (C + K) * tw * itemsize))))


def _plan(geom, dtype):
    """(tile rows per chunk, V buffers, M buffers): per thread, 16 rows of ``_conv_base.row_cells`` cells each."""
    (H_out, W_out) = geom.out
    th, tw = (H_out + 1) // 2, (W_out + 1) // 2
    itemsize = np.dtype(dtype).itemsize
    rows = _chunk_rows(geom.C_in, geom.C_out, tw, th, itemsize)
    V = buffers("winograd.V", (16 * row_cells(geom.C_in * rows * tw, itemsize),), dtype)
    M = buffers("winograd.M", (16 * row_cells(geom.C_out * rows * tw, itemsize),), dtype)
    return rows, V, M


def forward(geom, x4, w4, bias, y):
    """y (N, K, H_out, W_out), overwritten: the convolution ``geom`` (2-D, 3x3, stride 1, groups 1) of x4 by
    w4 (+ bias), by F(2x2, 3x3)."""
    dtype = x4.dtype
    src_h, src_w = _tile_maps(geom)
    xp = pad(x4, src_h, src_w, "conv.xpad")
    U = _weight_transform(w4, dtype)
    rows, V, M = _plan(geom, dtype)
    b = none(1, dtype) if bias is None else bias
    with single_threaded(_blas.CBLAS):
        _forward_kernel(xp, U, b, bias is not None, geom.out[0], geom.out[1], rows, _blas.CBLAS, y, V, M)


def backward(geom, go4, x4, w4, gx, input_grad=True):
    """gx (N, C, H, W), overwritten when ``input_grad``, and the returned weight gradient (K, C, 3, 3) of
    :func:`forward`'s convolution, by the adjoint of F(2x2, 3x3)."""
    dtype = x4.dtype
    N, C = x4.shape[:2]
    K = w4.shape[0]
    src_h, src_w = _tile_maps(geom)
    xp = pad(x4, src_h, src_w, "conv.xpad")
    U = _weight_transform(w4, dtype)
    rows, V, M = _plan(geom, dtype)
    n_blocks = -(-N // GW_BLOCK)
    dU_blocks = SCRATCH.get("winograd.dU", n_blocks * 16 * K * C, dtype).reshape(n_blocks, 16, K, C)
    planes = buffers("conv.planes", (C, src_h.size, src_w.size), dtype)
    with single_threaded(_blas.CBLAS):
        _backward_kernel(xp, go4, U, geom.out[0], geom.out[1], rows, GW_BLOCK, input_grad, _blas.CBLAS, src_h, src_w,
                         dU_blocks, gx, V, M, planes)
        dU = np.empty((16, K * C), dtype=dtype)
        sum_blocks(dU_blocks.reshape(n_blocks, 16, K * C), dU)
    return _weight_grad(dU.reshape(16, K, C), dtype)


conv.ALGORITHMS["winograd"] = (pays, forward, backward)
