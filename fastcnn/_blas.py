"""Matrix products inside fastcnn's kernels: one single-threaded GEMM per task.

Every GEMM of the engine (convolution, dense) runs inside a ``prange`` task on the task's own thread, with the
BLAS held at one thread meanwhile: a multi-threaded BLAS called from inside a parallel region oversubscribes
the cores (issue 3 measured 2-3x slower), and one BLAS call per fixed block of work keeps results
independent of the thread count.

Which BLAS: NumPy's OpenBLAS through CBLAS when NumPy ships one, else SciPy's through Numba's ``np.dot``.

* Speed: measured here with the same 'Haswell' kernels on one thread, SciPy's OpenBLAS ran this engine's
  GEMM shapes 15-60% slower than NumPy's (64x288x576: 56 against 70 GFLOP/s; 32x27x1024: 36 against 57).
* Features: CBLAS takes leading dimensions, transposes and ``beta = 1``, so a weight gradient accumulates in
  place without a temporary.
* Start-up: the CBLAS path needs neither SciPy nor threadpoolctl, whose imports took about 0.35 s of the first
  call (``cnn bench startup``).

NumPy's wheels ship a 64-bit-integer OpenBLAS whose symbols carry a suffix; the kernels call it through a
symbol name registered with LLVM at import, which keeps them cacheable. Without such a library the name points
at a stub that is never called: kernels receive ``CBLAS`` as a flag and take ``np.dot`` instead.

Editing this module: Numba checks a cached kernel against its own source file only, so the kernels of
conv.py and dense.py keep the old code of :func:`gemm` until their cache is removed (``make clean-cache``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import overload

from ._runtime import KERNEL_FLAGS

__all__ = ["CBLAS", "gemm", "gemm_strided", "single_threaded", "hold_one_thread", "release", "outside_kernel"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _signature(dtype):
    """``cblas_?gemm`` with 64-bit integers: (order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C,
    ldc)."""
    ptr = types.CPointer(dtype)
    return types.void(types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, dtype,
                      ptr, types.int64, ptr, types.int64, dtype, ptr, types.int64)


def _numpy_openblas():
    """(ctypes library, symbol prefix) of the 64-bit-integer OpenBLAS NumPy ships, or (None, None)."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            names = [prefix + n for n in ("cblas_sgemm64_", "cblas_dgemm64_", "openblas_set_num_threads64_",
                                          "openblas_get_num_threads64_")]
            if all(hasattr(lib, n) for n in names):
                return lib, prefix
    return None, None


def _stub(*args):  # pragma: no cover - only linked, never called (kernels get CBLAS = False)
    raise RuntimeError("fastcnn: no CBLAS")


_LIB, _PREFIX = _numpy_openblas()
#: Whether NumPy's OpenBLAS was found; kernels take it as their ``cblas`` flag (tests set it False to check
#: the ``np.dot`` path).
CBLAS = _LIB is not None
_STUBS = []
for _kind, _ctype in (("s", ctypes.c_float), ("d", ctypes.c_double)):
    if CBLAS:
        _address = ctypes.cast(getattr(_LIB, f"{_PREFIX}cblas_{_kind}gemm64_"), ctypes.c_void_p).value
    else:
        _i, _p = ctypes.c_int64, ctypes.c_void_p
        _STUBS.append(ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, _i, _i, _i, _ctype, _p,
                                       _i, _p, _i, _ctype, _p, _i)(_stub))
        _address = ctypes.cast(_STUBS[-1], ctypes.c_void_p).value
    llvm.add_symbol(f"fastcnn_cblas_{_kind}gemm64", _address)
_SGEMM = types.ExternalFunction("fastcnn_cblas_sgemm64", _signature(types.float32))
_DGEMM = types.ExternalFunction("fastcnn_cblas_dgemm64", _signature(types.float64))


def _thread_count_stub():  # pragma: no cover - only linked, never called (kernels get CBLAS = False)
    raise RuntimeError("fastcnn: no OpenBLAS")


if CBLAS:
    _GET_ADDRESS, _SET_ADDRESS = (ctypes.cast(getattr(_LIB, f"{_PREFIX}openblas_{verb}_num_threads64_"),
                                              ctypes.c_void_p).value for verb in ("get", "set"))
else:
    _STUBS += [ctypes.CFUNCTYPE(ctypes.c_int)(_thread_count_stub), ctypes.CFUNCTYPE(None, ctypes.c_int)(_stub)]
    _GET_ADDRESS, _SET_ADDRESS = (ctypes.cast(f, ctypes.c_void_p).value for f in _STUBS[-2:])
llvm.add_symbol("fastcnn_openblas_get_num_threads", _GET_ADDRESS)
llvm.add_symbol("fastcnn_openblas_set_num_threads", _SET_ADDRESS)
_GET_THREADS = types.ExternalFunction("fastcnn_openblas_get_num_threads", types.int32())
_SET_THREADS = types.ExternalFunction("fastcnn_openblas_set_num_threads", types.void(types.int32))


@numba.njit(**KERNEL_FLAGS)
def hold_one_thread(cblas):
    """Inside a kernel, before its parallel region: hold NumPy's OpenBLAS at one thread, as
    :func:`single_threaded` does from Python, and return the count :func:`release` restores (0: nothing to
    restore; without CBLAS nothing is held here). Two calls into OpenBLAS instead of three through ctypes around
    the kernel, which cost ~18 us a call in a training step, where the kernel before has left the caches cold
    (issue 16). A kernel that raises between the two leaves OpenBLAS at one thread (a kernel raises only on a
    bug: the wrappers check every argument first)."""
    if not cblas:
        return 0
    saved = _GET_THREADS()
    if saved == 1:
        return 0
    _SET_THREADS(1)
    return saved


@numba.njit(**KERNEL_FLAGS)
def release(saved):
    """After the parallel region: restore the count :func:`hold_one_thread` returned."""
    if saved > 0:
        _SET_THREADS(saved)


def outside_kernel(cblas: bool):
    """:func:`single_threaded` around a kernel that holds OpenBLAS itself (:func:`hold_one_thread`): SciPy's
    BLAS, on the np.dot path, is held from here; with CBLAS, nothing (a context manager that does nothing)."""
    return _NOTHING if cblas else single_threaded(False)


@functools.cache
def _scipy_blas():
    """threadpoolctl's handles on SciPy's BLAS (the library Numba's ``np.dot`` calls); [] without
    threadpoolctl or when that library cannot be told apart. Looked up once, on the first ``np.dot`` path."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba's np.dot calls)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    controllers = ThreadpoolController().lib_controllers
    return [c for c in controllers if c.user_api == "blas" and "scipy" in os.path.basename(
        os.path.dirname(c.filepath)) and "numpy" not in c.filepath]


#: :func:`outside_kernel`'s context manager with CBLAS: reentrant and reusable.
_NOTHING = contextlib.nullcontext()


@contextlib.contextmanager
def single_threaded(cblas: bool):
    """Around every kernel that calls :func:`gemm` with this ``cblas`` flag: holds that BLAS at one thread,
    then restores the caller's count (it is NumPy's or SciPy's setting, not ours). NumPy's OpenBLAS is set
    through its own ``openblas_set_num_threads``, SciPy's through threadpoolctl."""
    if cblas:
        get = getattr(_LIB, f"{_PREFIX}openblas_get_num_threads64_")
        put = getattr(_LIB, f"{_PREFIX}openblas_set_num_threads64_")
        saved = get()
        put(1)
        try:
            yield
        finally:
            put(saved)
        return
    libs = _scipy_blas()
    saved = [lib.get_num_threads() for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, saved):
            lib.set_num_threads(n)


@numba.njit(inline="always", **KERNEL_FLAGS)
def _leading_dimension(a):
    """CBLAS's leading dimension of a row-major 2-D array: its row stride in elements, so a view of some
    columns of a wider matrix needs no copy. A single row's stride means nothing (NumPy counts an array of
    one row, or one broadcast by a zero stride, as C-contiguous whatever that stride is) and CBLAS wants at
    least max(1, columns): then the column count is given."""
    if a.shape[0] <= 1:
        return max(1, a.shape[1])
    return a.strides[0] // a.itemsize


def _cblas_gemm(trans_a, trans_b, a, b, out, accumulate):
    """Typed by the overload below: ``out = op(a) @ op(b) (+ out)`` through CBLAS."""


@overload(_cblas_gemm, jit_options=dict(fastmath=False))
def _cblas_gemm_impl(trans_a, trans_b, a, b, out, accumulate):
    call = _SGEMM if out.dtype == types.float32 else _DGEMM

    def impl(trans_a, trans_b, a, b, out, accumulate):
        M, N = out.shape
        K = a.shape[0] if trans_a else a.shape[1]
        call(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, M, N, K, 1.0,
             a.ctypes, _leading_dimension(a), b.ctypes, _leading_dimension(b), 1.0 if accumulate else 0.0,
             out.ctypes, _leading_dimension(out))

    return impl


@numba.njit(fastmath=False, **KERNEL_FLAGS)
def gemm(trans_a, trans_b, a, b, out, accumulate, cblas):
    """``out = op(a) @ op(b)``, plus the old ``out`` when ``accumulate``; ``op`` transposes when asked.

    All three are C-contiguous 2-D arrays; one GEMM on the calling thread, through CBLAS when ``cblas`` is
    true (see ``CBLAS``), else through np.dot (SciPy's BLAS) with a temporary for the accumulation.
    """
    if cblas:
        _cblas_gemm(trans_a, trans_b, a, b, out, accumulate)
        return
    prod = np.empty_like(out) if accumulate else out
    if trans_a and trans_b:
        np.dot(a.T, b.T, prod)
    elif trans_a:
        np.dot(a.T, b, prod)
    elif trans_b:
        np.dot(a, b.T, prod)
    else:
        np.dot(a, b, prod)
    if accumulate:
        out += prod


@numba.njit(fastmath=False, **KERNEL_FLAGS)
def gemm_strided(trans_a, trans_b, a, b, out, accumulate):
    """:func:`gemm` through CBLAS only, for arrays whose rows are contiguous but further apart than their
    length (views of some columns of a wider matrix: CBLAS takes the row strides as leading dimensions).
    Only when ``CBLAS`` is true; Numba's ``np.dot`` takes no such views."""
    _cblas_gemm(trans_a, trans_b, a, b, out, accumulate)
