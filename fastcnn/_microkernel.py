"""Register-blocked products for the dense layer's forward, ``x @ w.T`` with a long depth (:mod:`fastcnn.dense`).

The seeds' first dense layer multiplies 128 x 9216 by 9216 x 128. Single-threaded OpenBLAS 0.3.31 reaches only
100-115 GFLOP/s on that shape here (2-core Xeon, AVX-512; 181 on a 2048^3 product), whether ``w`` is used
transposed or was copied transposed beforehand. :func:`product_nt` does it in the textbook way instead:

* the depth is taken :data:`DEPTH_PANEL` terms at a time; those columns of ``w`` are transposed into a panel
  (``panel[k, n] = w[n, k]``) by :func:`_transpose_function`, a square block of ``lanes x lanes`` at a time in
  vector registers (0.33 ms for all of a 128 x 9216 weight, against 0.82 ms for the same loop in scalar code);
* each block of :data:`MR` rows of ``x`` by :data:`NV` vectors of panel columns is one loop over the panel's
  depth with its ``MR x NV`` sums held in vector registers (:func:`_product_function`): per term ``NV`` vector
  loads of a panel row, ``MR`` broadcasts of ``x``, ``MR x NV`` fused multiply-adds.

Numba cannot keep a SIMD vector in a variable, so both loops are written in LLVM IR; the vectors span 64 bytes
where the CPU has AVX-512 (6 x 4 sums in 32 registers), else 32 bytes (6 x 2 in 16).

**Order of the sums**: every element of the result is one chain of fused multiply-adds over the depth, in
order of ``k``, starting from the value already there (the caller starts from zero). That does not depend on
the vector width, the blocking or the threads. It is not OpenBLAS's order, so results differ from BLAS's in
their last bits, within the reduction's tolerance (``tests/test_fast_microkernel.py``); a chain of 2,048 terms
rounded more than BLAS on the same product (largest error 1.1e-6 of the largest element against 4.5e-7),
hence ``fastcnn.dense.PRODUCT_DEPTH_BLOCK``'s shorter parts (6.8e-7).

Measured (session 31, the 2-core Xeon with AVX-512, float32, medians, ``fastcnn.linear`` on the seeds' 128 x
9216 by 9216 -> 128, interleaved with the previous commit): 2 threads 1.96-2.02 ms through BLAS blocks,
1.46-1.57 ms here; 1 thread 3.42-3.47 against 2.56-2.60 ms. The backward's products (depth 128, 9216
columns) were slower this way than through BLAS (grad_x 1.74 against 1.52-1.61 ms on 2 threads), so they stay
with BLAS.
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._runtime import KERNEL_FLAGS

__all__ = ["MR", "NV", "VECTOR_BYTES", "PAYS", "DEPTH_PANEL", "lanes", "fits", "aligned_empty", "product_nt"]


def _vector_bytes() -> int:
    """64 where the CPU Numba compiles for has AVX-512 (``NUMBA_CPU_FEATURES`` when set, else the host's), else
    32: wider vectors on a narrower CPU would be split in two and the sums would spill out of the registers."""
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return 64 if "+avx512f" in features.split(",") else 32


#: Bytes per vector of the micro-kernels.
VECTOR_BYTES = _vector_bytes()
#: Rows of ``x`` per block, and vectors of result columns per block: MR x NV sums, plus NV vectors of the
#: panel and a broadcast, fill the 32 (AVX-512) or 16 vector registers.
MR = 6
NV = 4 if VECTOR_BYTES == 64 else 2
#: Whether :func:`fastcnn.dense` takes :func:`product_nt` for the products it fits: where vectors are 64 bytes.
#: With 32-byte vectors (this machine compiling for Haswell, ``NUMBA_CPU_NAME=haswell``, against OpenBLAS's
#: Haswell kernels, ``OPENBLAS_CORETYPE=Haswell``; no AVX2-only machine was at hand) the seeds' forward
#: product took 2.15-2.25 ms on 2 threads against BLAS blocks' 2.04-2.06, and 3.83-3.84 against 3.52-3.56 ms
#: on one.
PAYS = VECTOR_BYTES == 64
#: Terms of the depth per transposed panel of ``w``: 256 rows of 128 columns is 128 KB of float32, in L2.
#: 64, 128 and 256 measured within 5% of each other on 2 threads (256 best on 1: 2.34-2.42 against 2.44-2.57 ms).
DEPTH_PANEL = 256


def lanes(itemsize: int) -> int:
    """Floats of ``itemsize`` bytes per vector."""
    return VECTOR_BYTES // itemsize


def fits(columns: int, itemsize: int) -> bool:
    """Whether :func:`product_nt` takes a result of ``columns`` columns of ``itemsize``-byte floats: whole
    vectors of them (the panel's rows are loaded a vector at a time)."""
    return columns > 0 and columns % lanes(itemsize) == 0


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a vector boundary: a vector load that
    straddles two cache lines costs two (the products' result and panel rows; measured on a 128 x 2048 by
    2048 x 128 product, one thread: 145-155 GFLOP/s aligned, 124-141 offset by 4 bytes)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    spare = VECTOR_BYTES // dtype.itemsize
    buffer = np.empty(size + spare, dtype=dtype)
    start = (-buffer.ctypes.data % VECTOR_BYTES) // dtype.itemsize
    return buffer[start:start + size].reshape(shape)


def _float_name(fty) -> str:
    return "f32" if isinstance(fty, ir.FloatType) else "f64"


def _fma(module, fty, lanes_: int):
    name = f"llvm.fma.v{lanes_}{_float_name(fty)}"
    try:
        return module.get_global(name)
    except KeyError:
        vty = ir.VectorType(fty, lanes_)
        return ir.Function(module, ir.FunctionType(vty, [vty, vty, vty]), name=name)


def _new_function(module, name: str, arguments: list):
    """An internal ``void name(arguments)`` declared in ``module``, for the caller to define; None when the
    module defines it already (a kernel calls each function from several places)."""
    try:
        module.get_global(name)
        return None
    except KeyError:
        pass
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), arguments), name=name)
    fn.linkage = "internal"
    return fn


def _product_function(module, fty, lanes_: int, mr: int, nv: int):
    """``void f(fty* a, i64 lda, fty* b, i64 ldb, fty* c, i64 ldc, i64 depth)``: ``c[r, j] += sum over k of
    a[r, k] b[k, j]`` for r < mr, j < nv * lanes, each sum one chain of fused multiply-adds in order of k that
    starts from c's value (row-major operands, leading dimensions in elements). Defined once per module."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    vty = ir.VectorType(fty, lanes_)
    ptr = fty.as_pointer()
    name = f"fastcnn_product_{_float_name(fty)}_{lanes_}x{nv}x{mr}"
    fn = _new_function(module, name, [ptr, i64, ptr, i64, ptr, i64, i64])
    if fn is None:
        return module.get_global(name)
    a, lda, b, ldb, c, ldc, depth = fn.args
    for p in (a, b, c):
        p.add_attribute("noalias")
    fma = _fma(module, fty, lanes_)
    item = 4 if isinstance(fty, ir.FloatType) else 8  # the alignment NumPy guarantees: one element's

    entry, body, done = (fn.append_basic_block(label) for label in ("entry", "body", "done"))
    builder = ir.IRBuilder(entry)

    def c_vector(r, j):
        at = builder.gep(c, [builder.add(builder.mul(ir.Constant(i64, r), ldc), ir.Constant(i64, j * lanes_))])
        return builder.bitcast(at, vty.as_pointer())

    starts = [[builder.load(c_vector(r, j), align=item) for j in range(nv)] for r in range(mr)]
    builder.cbranch(builder.icmp_signed(">", depth, ir.Constant(i64, 0)), body, done)

    builder.position_at_end(body)  # one term of the depth: k
    k = builder.phi(i64)
    k.add_incoming(ir.Constant(i64, 0), entry)
    sums = [[builder.phi(vty) for _ in range(nv)] for _ in range(mr)]
    b_row = builder.gep(b, [builder.mul(k, ldb)])
    b_vectors = [builder.load(builder.bitcast(builder.gep(b_row, [ir.Constant(i64, j * lanes_)]), vty.as_pointer()),
                              align=item) for j in range(nv)]
    undefined = ir.Constant(vty, ir.Undefined)
    splat = ir.Constant(ir.VectorType(i32, lanes_), [0] * lanes_)
    added = []
    for r in range(mr):
        a_rk = builder.load(builder.gep(a, [builder.add(builder.mul(ir.Constant(i64, r), lda), k)]))
        a_vector = builder.shuffle_vector(builder.insert_element(undefined, a_rk, ir.Constant(i32, 0)), undefined,
                                          splat)
        added.append([builder.call(fma, [a_vector, b_vectors[j], sums[r][j]]) for j in range(nv)])
    following = builder.add(k, ir.Constant(i64, 1))
    k.add_incoming(following, body)
    for r in range(mr):
        for j in range(nv):
            sums[r][j].add_incoming(starts[r][j], entry)
            sums[r][j].add_incoming(added[r][j], body)
    builder.cbranch(builder.icmp_signed("<", following, depth), body, done)

    builder.position_at_end(done)  # an LLVM block starts with its phis: all of them first, then the stores
    totals = [[builder.phi(vty) for _ in range(nv)] for _ in range(mr)]
    for r in range(mr):
        for j in range(nv):
            totals[r][j].add_incoming(starts[r][j], entry)
            totals[r][j].add_incoming(added[r][j], body)
    for r in range(mr):
        for j in range(nv):
            builder.store(totals[r][j], c_vector(r, j), align=item)
    builder.ret_void()
    return fn


def _transpose_function(module, fty, lanes_: int, add: bool = False):
    """``void f(fty* src, i64 lds, fty* dst, i64 ldd)``: ``dst[c, r] = src[r, c]`` for a square block of
    ``lanes x lanes`` (leading dimensions in elements): ``lanes`` vector loads, log2(lanes) rounds of
    two-source shuffles, ``lanes`` vector stores. Round ``bit`` swaps bit ``bit`` of the row index with bit
    ``bit`` of the column index, between the rows ``i`` and ``i | bit``; after all rounds every element sits at
    its transposed place. Values are moved, never computed on. With ``add``, a last argument ``fty* addend``:
    ``dst[c, r] = src[r, c] + addend[c]``, one rounded addition (a bias added as the channel-first copy is
    stored: fastcnn.winograd4_tiles.store_rows)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    vty = ir.VectorType(fty, lanes_)
    ptr = fty.as_pointer()
    name = f"fastcnn_transpose_{_float_name(fty)}_{lanes_}{'_add' if add else ''}"
    fn = _new_function(module, name, [ptr, i64, ptr, i64] + ([ptr] if add else []))
    if fn is None:
        return module.get_global(name)
    src, lds, dst, ldd = fn.args[:4]
    for pointer in [src, dst, *fn.args[4:]]:
        pointer.add_attribute("noalias")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    item = 4 if isinstance(fty, ir.FloatType) else 8

    def row(base, ld, r):
        return builder.bitcast(builder.gep(base, [builder.mul(ir.Constant(i64, r), ld)]), vty.as_pointer())

    rows = [builder.load(row(src, lds, r), align=item) for r in range(lanes_)]
    bit = 1
    while bit < lanes_:
        # Element c of rows[i | bit] is element lanes + c of the pair's concatenation.
        keep_low = [c if not c & bit else lanes_ + (c ^ bit) for c in range(lanes_)]
        keep_high = [c | bit if not c & bit else lanes_ + c for c in range(lanes_)]
        swapped = list(rows)
        for i in range(lanes_):
            if i & bit:
                continue
            pair = (rows[i], rows[i | bit])
            swapped[i] = builder.shuffle_vector(*pair, ir.Constant(ir.VectorType(i32, lanes_), keep_low))
            swapped[i | bit] = builder.shuffle_vector(*pair, ir.Constant(ir.VectorType(i32, lanes_), keep_high))
        rows = swapped
        bit <<= 1
    if add:
        undefined = ir.Constant(vty, ir.Undefined)
        splat = ir.Constant(ir.VectorType(i32, lanes_), [0] * lanes_)
        for r in range(lanes_):
            value = builder.load(builder.gep(fn.args[4], [ir.Constant(i64, r)]))
            vector = builder.shuffle_vector(builder.insert_element(undefined, value, ir.Constant(i32, 0)), undefined,
                                            splat)
            rows[r] = builder.fadd(rows[r], vector)
    for r in range(lanes_):
        builder.store(rows[r], row(dst, ldd, r), align=item)
    builder.ret_void()
    return fn


def _pointers(context, builder, sig, args, positions):
    """Data pointers of the array arguments at ``positions``, each moved by the element offset after it."""
    return [builder.gep(context.make_array(sig.args[p])(context, builder, args[p]).data, [args[p + 1]])
            for p in positions]


def _same_float_arrays(*arrays) -> bool:
    return (all(isinstance(t, types.Array) and t.layout == "C" for t in arrays)
            and len({t.dtype for t in arrays}) == 1 and arrays[0].dtype in (types.float32, types.float64))


@intrinsic
def _product_block(typingctx, a, a0, lda, b, b0, ldb, c, c0, ldc, depth, mr, nv):
    """``c[c0 + r*ldc + j] += sum over k < depth of a[a0 + r*lda + k] * b[b0 + k*ldb + j]`` for r < mr and
    j < nv * lanes (offsets and leading dimensions in elements of the flat C-contiguous arrays), through
    :func:`_product_function`'s function for this (mr, nv), 1 <= mr <= MR and 1 <= nv <= NV. The caller checks
    the bounds."""
    if not _same_float_arrays(a, b, c):
        return None
    i64 = types.int64
    signature = types.void(a, i64, i64, b, i64, i64, c, i64, i64, i64, i64, i64)

    def codegen(context, builder, sig, args):
        fty = context.get_value_type(sig.args[0].dtype)
        lanes_ = VECTOR_BYTES // context.get_abi_sizeof(fty)
        a_ptr, b_ptr, c_ptr = _pointers(context, builder, sig, args, (0, 3, 6))
        lda_, ldb_, ldc_, depth_, mr_, nv_ = args[2], args[5], args[8], args[9], args[10], args[11]
        end = builder.append_basic_block("product_end")
        ir64 = ir.IntType(64)
        switch = builder.switch(builder.add(builder.mul(mr_, ir.Constant(ir64, NV + 1)), nv_), end)
        for mr_value in range(1, MR + 1):
            for nv_value in range(1, NV + 1):
                case = builder.append_basic_block(f"product_{mr_value}x{nv_value}")
                switch.add_case(ir.Constant(ir64, mr_value * (NV + 1) + nv_value), case)
                builder.position_at_end(case)
                fn = _product_function(builder.module, fty, lanes_, mr_value, nv_value)
                builder.call(fn, [a_ptr, lda_, b_ptr, ldb_, c_ptr, ldc_, depth_])
                builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()

    return signature, codegen


def _transposer(add: bool, part: int):
    """The intrinsic ``f(src, s0, lds, dst, d0, ldd)``, or with ``add`` ``f(src, s0, lds, dst, d0, ldd, addend,
    a0)``: ``dst[d0 + c*ldd + r] = src[s0 + r*lds + c] (+ addend[a0 + c])`` for r, c < n, n the lanes of a vector
    divided by ``part`` (1, 2 or 4: smaller blocks for runs of cells too short for a whole one), on flat
    C-contiguous arrays of one float dtype; the caller checks the bounds."""
    def codegen(context, builder, sig, args):
        fty = context.get_value_type(sig.args[0].dtype)
        lanes_ = VECTOR_BYTES // context.get_abi_sizeof(fty) // part
        pointers = _pointers(context, builder, sig, args, (0, 3, 6) if add else (0, 3))
        fn = _transpose_function(builder.module, fty, lanes_, add=add)
        builder.call(fn, [pointers[0], args[2], pointers[1], args[5]] + pointers[2:])
        return context.get_dummy_value()

    i64 = types.int64
    if add:
        def typer(typingctx, src, s0, lds, dst, d0, ldd, addend, a0):
            if not _same_float_arrays(src, dst, addend):
                return None
            return types.void(src, i64, i64, dst, i64, i64, addend, i64), codegen
    else:
        def typer(typingctx, src, s0, lds, dst, d0, ldd):
            if not _same_float_arrays(src, dst):
                return None
            return types.void(src, i64, i64, dst, i64, i64), codegen
    return intrinsic(typer)


#: The square transposes (:func:`_transposer`): a whole vector's lanes on a side, half or a quarter of them;
#: plain, or adding a value per destination row.
_transpose_block = _transposer(add=False, part=1)
_transpose_add_block = _transposer(add=True, part=1)
_transpose_half_block = _transposer(add=False, part=2)
_transpose_add_half_block = _transposer(add=True, part=2)
_transpose_quarter_block = _transposer(add=False, part=4)
_transpose_add_quarter_block = _transposer(add=True, part=4)


@numba.njit(fastmath=False, **KERNEL_FLAGS)
def _pack_transposed(w, k0, depth, panel):
    """``panel[k, n] = w[n, k0 + k]`` for k < depth and every row n of ``w`` (whose count is a whole number of
    vectors): square blocks in registers, the last ``depth % lanes`` terms one by one."""
    N, K = w.shape
    width = panel.shape[1]
    step = VECTOR_BYTES // w.itemsize
    whole = depth - depth % step
    for n0 in range(0, N, step):
        for k in range(0, whole, step):
            _transpose_block(w, n0 * K + k0 + k, K, panel, k * width + n0, width)
    for n in range(N):
        for k in range(whole, depth):
            panel[k, n] = w[n, k0 + k]


@numba.njit(fastmath=False, **KERNEL_FLAGS)
def product_nt(x, w, out, k0, k1, panel):
    """``out += x[:, k0:k1] @ w[:, k0:k1].T``, each element one chain of fused multiply-adds in order of the
    depth. ``x`` (M, K), ``w`` (N, K), ``out`` (M, N) and ``panel`` (at least DEPTH_PANEL, N) C-contiguous of
    one float dtype, N a whole number of vectors (:func:`fits`), 0 <= k0 <= k1 <= K."""
    M, K = x.shape
    N = w.shape[0]
    step = VECTOR_BYTES // x.itemsize
    if (w.shape[1] != K or out.shape[0] != M or out.shape[1] != N or N % step or not 0 <= k0 <= k1 <= K
            or panel.shape[0] < DEPTH_PANEL or panel.shape[1] != N):
        raise ValueError("fastcnn._microkernel.product_nt: arrays that do not fit")
    for p0 in range(k0, k1, DEPTH_PANEL):
        depth = min(DEPTH_PANEL, k1 - p0)
        _pack_transposed(w, p0, depth, panel)
        for n0 in range(0, N, NV * step):  # a panel sliver of NV vectors, kept in L1 across the row blocks
            nv = min(NV, (N - n0) // step)
            for m0 in range(0, M, MR):
                _product_block(x, m0 * K + p0, K, panel, n0, N, out, m0 * N + n0, N, depth, min(MR, M - m0), nv)
