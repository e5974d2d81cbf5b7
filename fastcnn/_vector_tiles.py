"""Winograd tile transforms with a whole tile in vector registers (:mod:`fastcnn.winograd4_tiles`).

A 2-D Winograd transform of one tile is a 1-D transform ``f`` along one axis of the tile, then ``f`` along the
other: ``h[i] = f(src[i, :])`` for each row ``i``, then ``dst[:, p] = f(h[:, p])`` for each column ``p`` of ``h``.
F(4x4, 3x3)'s tiles are channel-last, so each cell of a tile is a run of channels, and :func:`tile_transform`
does the transform for ``lanes`` channels at once: it loads every cell of the tile as one vector, computes both
passes on vectors and stores every result cell as one vector, then moves on to the next ``lanes`` channels.

Why not the loops over channels that winograd4_tiles writes in Numba: each of them is one 1-D transform over
all channels (six input rows, six output rows), so a tile takes twelve loops, and before each vectorised loop
LLVM compares every store's range with every other row's, because it cannot tell that the rows do not overlap.
With 16 channels (ResNet-20's first stage) a loop is a single vector iteration behind those checks. Measured
(session 32, 2-core Xeon with AVX-512, one thread, float32, ResNet-20's 16 -> 16 layer on 28x28, batch 64, the
whole forward of F(4x4) one phase at a time): input transform 0.61 -> 0.30 ms, output transform 0.42 -> 0.10 ms;
the forward 2.20 -> 1.53 ms. (Session 30 tried these loops alone as ``noalias`` LLVM functions: faster alone,
no change in the kernels; a whole tile in registers also removes the twelve scratch rows ``h``.)

**Same bits.** The arithmetic is traced from the very Python function the loops call (``_bt``, ``_at``, ``_b``,
``_a``): each is run once on symbolic values (:class:`_Node`), and every node becomes one vector instruction
(``fadd``, ``fsub``, ``fmul``, ``fneg``) without fast-math flags, so no contraction into fused multiply-adds and no
reassociation: each result is formed by the same operations in the same order as the Numba loops form it, and
is bit for bit the same (``tests/test_fast_vector_tiles.py``). The accumulating form adds each result onto the
old value as ``old + new``, as winograd4_tiles' ``_vb`` does.

Channel counts that are not a whole number of vectors keep the loops (:func:`fits`).

The copies between the channel-first arrays and those channel-last tiles are square blocks transposed in
registers (:func:`square`, :func:`square_add`: ``fastcnn._microkernel``'s transposes), a vector's lanes on a
side, or half or a quarter of them for the short rows of 14x14 and 7x7 maps (:func:`square_width`).
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._microkernel import (VECTOR_BYTES, _new_function, _pointers, _same_float_arrays, _transpose_add_block,
                           _transpose_add_half_block, _transpose_add_quarter_block, _transpose_block,
                           _transpose_half_block, _transpose_quarter_block)
from ._runtime import KERNEL_FLAGS

__all__ = ["fits", "tile_transform", "square_width", "square_starts", "square_start", "square", "square_add"]


@numba.njit(inline="always", **KERNEL_FLAGS)
def fits(channels, itemsize):
    """Whether :func:`tile_transform` takes tiles of ``channels`` channels of ``itemsize``-byte floats: a whole,
    non-zero number of vectors."""
    return channels > 0 and channels % (VECTOR_BYTES // itemsize) == 0


class _Node:
    """One value of a traced scalar function: an input (``value``: its index), a constant (``value``) or an
    operation (``op``: an LLVM instruction name) on one or two nodes. NumPy scalars (the transforms' float32
    constants) defer to its reflected operators (``__array_ufunc__ = None``)."""

    __array_ufunc__ = None

    def __init__(self, op: str, args: tuple = (), value: float | int | None = None):
        self.op, self.args, self.value = op, args, value

    def _binary(self, op: str, other, reflected: bool = False) -> "_Node":
        if not isinstance(other, _Node):
            other = _Node("const", value=float(other))
        return _Node(op, (other, self) if reflected else (self, other))

    def __add__(self, other):
        return self._binary("fadd", other)

    def __radd__(self, other):
        return self._binary("fadd", other, True)

    def __sub__(self, other):
        return self._binary("fsub", other)

    def __rsub__(self, other):
        return self._binary("fsub", other, True)

    def __mul__(self, other):
        return self._binary("fmul", other)

    def __rmul__(self, other):
        return self._binary("fmul", other, True)

    def __neg__(self):
        return _Node("fneg", (self,))

    def __bool__(self):
        raise TypeError("fastcnn._vector_tiles traces +, -, * and negation only, not a branch on a traced value")


def _trace(fn, n_in: int) -> tuple:
    """The output nodes of ``fn`` (a Numba function's Python original) called on ``n_in`` input nodes."""
    return tuple(getattr(fn, "py_func", fn)(*(_Node("in", value=i) for i in range(n_in))))


def _emit(builder, node: _Node, inputs: list, done: dict, vty):
    """The LLVM vector value of ``node``; each node emitted once, so shared subexpressions stay shared."""
    if id(node) in done:
        return done[id(node)]
    if node.op == "in":
        value = inputs[node.value]
    elif node.op == "const":
        value = ir.Constant(vty, [node.value] * vty.count)
    elif node.op == "fneg":
        value = builder.fneg(_emit(builder, node.args[0], inputs, done, vty))
    else:
        a, b = (_emit(builder, arg, inputs, done, vty) for arg in node.args)
        value = getattr(builder, node.op)(a, b)
    done[id(node)] = value
    return value


def _apply(builder, outputs: tuple, inputs: list, vty) -> list:
    done: dict = {}
    return [_emit(builder, node, inputs, done, vty) for node in outputs]


def _tile_function(module, fty, lanes: int, fn, n_in: int, accumulate: bool):
    """``void f(src, si, sj, dst, dq, dp, vectors)``: for each of ``vectors`` runs of ``lanes`` channels (run v
    at offset v * lanes), ``h[i] = fn(src[i, 0..n_in))`` for i < n_in, then ``dst[q, p] (+)= fn(h[0..n_in), p)[q]``
    for every output q, p of ``fn``; cell (i, j) of src at ``i*si + j*sj``, (q, p) of dst at ``q*dq + p*dp``
    (elements). Defined once per module."""
    outputs = _trace(fn, n_in)
    n_out = len(outputs)
    i64 = ir.IntType(64)
    vty = ir.VectorType(fty, lanes)
    ptr = fty.as_pointer()
    width = "f32" if isinstance(fty, ir.FloatType) else "f64"
    name = f"fastcnn_tile_{getattr(fn, 'py_func', fn).__name__}_{width}_{lanes}{'_add' if accumulate else ''}"
    function = _new_function(module, name, [ptr, i64, i64, ptr, i64, i64, i64])
    if function is None:
        return module.get_global(name)
    src, si, sj, dst, dq, dp, vectors = function.args
    src.add_attribute("noalias")
    dst.add_attribute("noalias")
    item = 4 if isinstance(fty, ir.FloatType) else 8  # the alignment NumPy guarantees: one element's

    entry, body, done = (function.append_basic_block(label) for label in ("entry", "body", "done"))
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", vectors, ir.Constant(i64, 0)), body, done)
    builder.position_at_end(body)
    v = builder.phi(i64)
    v.add_incoming(ir.Constant(i64, 0), entry)
    offset = builder.mul(v, ir.Constant(i64, lanes))

    def cell(base, row, row_stride, col, col_stride):
        at = builder.add(builder.add(builder.mul(ir.Constant(i64, row), row_stride),
                                     builder.mul(ir.Constant(i64, col), col_stride)), offset)
        return builder.bitcast(builder.gep(base, [at]), vty.as_pointer())

    tile = [[builder.load(cell(src, i, si, j, sj), align=item) for j in range(n_in)] for i in range(n_in)]
    h = [_apply(builder, outputs, tile[i], vty) for i in range(n_in)]
    for p in range(n_out):
        column = _apply(builder, outputs, [h[i][p] for i in range(n_in)], vty)
        for q in range(n_out):
            where = cell(dst, q, dq, p, dp)
            value = builder.fadd(builder.load(where, align=item), column[q]) if accumulate else column[q]
            builder.store(value, where, align=item)
    following = builder.add(v, ir.Constant(i64, 1))
    v.add_incoming(following, body)
    builder.cbranch(builder.icmp_signed("<", following, vectors), body, done)
    builder.position_at_end(done)
    builder.ret_void()
    return function


def tile_transform(fn, n_in: int, accumulate: bool = False):
    """A Numba intrinsic ``op(src, s0, si, sj, dst, d0, dq, dp, channels)``: :func:`_tile_function`'s 2-D
    transform by the 1-D scalar function ``fn`` of ``n_in`` values (+, -, * and negation only), of ``channels``
    channels (a multiple of the vector's lanes: :func:`fits`), from the flat C-contiguous array ``src`` at
    element ``s0`` into ``dst`` at ``d0`` (``+=`` when ``accumulate``). The caller checks the bounds."""
    def typer(typingctx, src, s0, si, sj, dst, d0, dq, dp, channels):
        if not _same_float_arrays(src, dst):
            return None
        i64 = types.int64
        signature = types.void(src, i64, i64, i64, dst, i64, i64, i64, i64)

        def codegen(context, builder, sig, args):
            fty = context.get_value_type(sig.args[0].dtype)
            lanes = VECTOR_BYTES // context.get_abi_sizeof(fty)
            src_ptr, dst_ptr = _pointers(context, builder, sig, args, (0, 4))
            function = _tile_function(builder.module, fty, lanes, fn, n_in, accumulate)
            vectors = builder.sdiv(args[8], ir.Constant(ir.IntType(64), lanes))
            builder.call(function, [src_ptr, args[2], args[3], dst_ptr, args[6], args[7], vectors])
            return context.get_dummy_value()

        return signature, codegen

    return intrinsic(typer)


# ----------------------------------------------------------------------------------------------------------
# Square blocks between the channel-first and channel-last layouts: a run of cells of a row of each channel
# (channel-first) is a block of cells of runs of channels (channel-last) transposed. _microkernel's register
# transposes move square blocks of a vector's lanes on a side, or half or a quarter of them.


@numba.njit(inline="always", **KERNEL_FLAGS)
def square_width(run, channels, itemsize):
    """The side of the square blocks that copy a run of ``run`` cells of ``channels`` channels between the
    channel-first and channel-last layouts, transposed in registers: a vector's lanes, or half or a quarter of
    them for shorter runs (14x14 and 7x7 maps in float32 with 16 lanes), when the channels are whole blocks;
    else 0 (cell by cell)."""
    width = VECTOR_BYTES // itemsize
    for _ in range(3):
        if width >= 2 and run >= width and channels % width == 0:
            return width
        width //= 2
    return 0


@numba.njit(inline="always", **KERNEL_FLAGS)
def square_starts(run, width):
    """How many square blocks of ``width`` cover a run of ``run`` cells (0 when width is 0): block b starts at
    ``square_start(b, run, width)``, the last one flush with the run's end (overlapping its neighbour when run
    is not a multiple of width: the copies write the same values twice)."""
    return 0 if width == 0 else -(-run // width)


@numba.njit(inline="always", **KERNEL_FLAGS)
def square_start(b, run, width):
    return min(b * width, run - width)


@numba.njit(inline="always", **KERNEL_FLAGS)
def square(width, src, s0, lds, dst, d0, ldd):
    """dst[d0 + c*ldd + r] = src[s0 + r*lds + c] for r, c < width (a vector's lanes, half or a quarter of them,
    :func:`square_width`), on flat C-contiguous arrays; the caller checks the bounds."""
    lanes = VECTOR_BYTES // src.itemsize
    if width == lanes:
        _transpose_block(src, s0, lds, dst, d0, ldd)
    elif 2 * width == lanes:
        _transpose_half_block(src, s0, lds, dst, d0, ldd)
    else:
        _transpose_quarter_block(src, s0, lds, dst, d0, ldd)


@numba.njit(inline="always", **KERNEL_FLAGS)
def square_add(width, src, s0, lds, dst, d0, ldd, addend, a0):
    """:func:`square` plus addend[a0 + c] on destination row c (one rounded addition)."""
    lanes = VECTOR_BYTES // src.itemsize
    if width == lanes:
        _transpose_add_block(src, s0, lds, dst, d0, ldd, addend, a0)
    elif 2 * width == lanes:
        _transpose_add_half_block(src, s0, lds, dst, d0, ldd, addend, a0)
    else:
        _transpose_add_quarter_block(src, s0, lds, dst, d0, ldd, addend, a0)
