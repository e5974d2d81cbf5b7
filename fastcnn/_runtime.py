"""What every fastcnn module shares: dtypes, threads, scratch buffers.

Kernels are compiled by Numba on first use and cached on disk (``cache=True``). Numba puts the cache in the
package's ``__pycache__`` when it is writable and otherwise in the user's cache folder
(``~/.cache/numba`` on Linux); ``NUMBA_CACHE_DIR`` overrides both. Those rules are Numba's own, so fastcnn
sets nothing here: it only has to pass ``cache=True`` to every kernel.
"""

from __future__ import annotations

import os

import numpy as np
import numba

from refcnn._validation import FLOAT_DTYPES, check_int

__all__ = [
    "set_num_threads", "get_num_threads", "compute_dtype", "as_compute", "result_dtype", "Scratch", "SCRATCH",
    "KERNEL_FLAGS", "FASTMATH", "KERNEL_BLAS", "prefer_quiet_threading_layer",
]

#: Per-kernel compile flags. ``fastmath`` keeps NaN and infinity semantics ('nnan' and 'ninf' are never
#: set): contraction into FMA and reassociation let loops vectorise; a kernel that must keep a fixed
#: summation order (the batch reductions) passes ``fastmath=False`` itself.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}
KERNEL_FLAGS = dict(cache=True, nogil=True)


def set_num_threads(n: int) -> None:
    """Threads used by fastcnn's parallel kernels (at most ``NUMBA_NUM_THREADS``, the count at start-up).

    Results do not depend on it: every reduction splits its work in a fixed way, whatever the count.
    """
    n = check_int(n, "n", "set_num_threads", minimum=1)
    limit = numba.config.NUMBA_NUM_THREADS
    if n > limit:
        raise ValueError(
            f"set_num_threads: invalid value for argument `n`. Expected an int in [1, {limit}] "
            f"(NUMBA_NUM_THREADS={limit} when the process started). Received n={n}."
        )
    numba.set_num_threads(n)


def get_num_threads() -> int:
    """Threads fastcnn's parallel kernels use now."""
    return numba.get_num_threads()


def compute_dtype(*arrays) -> np.dtype:
    """The float type an op computes in: float64 if any array is float64, else float32.

    float16 inputs are computed in float32 (no kernel is compiled for float16); ops return their result in
    the dtype they were given, ``numpy.result_type`` of the float inputs.
    """
    for a in arrays:
        if a is not None and a.dtype == np.float64:
            return np.dtype(np.float64)
    return np.dtype(np.float32)


def as_compute(x: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    """``x`` as a C-contiguous array of ``dtype``, without a copy when it already is one."""
    if x is None:
        return None
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return np.asarray(x, dtype=dtype, order="C")


def result_dtype(*arrays) -> np.dtype:
    """The dtype an op returns: the NumPy promotion of its float inputs."""
    return np.result_type(*[a.dtype for a in arrays if a is not None and a.dtype.type in FLOAT_DTYPES])


class Scratch:
    """Scratch buffers kept between calls, one per (name, dtype), grown when too small.

    Allocating large arrays afresh on every call costs thousands of page faults per call (glibc returns
    big freed blocks to the system), so im2col and reduction buffers are kept here. Not thread-safe: one
    Python thread drives fastcnn at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype], np.ndarray] = {}

    def get(self, name: str, size: int, dtype) -> np.ndarray:
        """A 1-D buffer of at least ``size`` elements; its contents are undefined."""
        key = (name, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, 1), dtype=dtype)
            self._buffers[key] = buf
        return buf[:size]

    def clear(self) -> None:
        """Free every buffer."""
        self._buffers.clear()


SCRATCH = Scratch()


def prefer_quiet_threading_layer() -> None:
    """Prefer Numba's 'workqueue' threading layer, whose idle workers sleep.

    Numba's default OpenMP layer (libgomp) keeps its threads busy-waiting after a parallel region; measured
    here, that made the BLAS and NumPy work between two parallel kernels 2-3x slower, and far worse on a
    loaded machine. Applied only when the user chose no layer and before Numba has started its pool (the
    layer is fixed from the first parallel launch on).
    """
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    from numba.np.ufunc import parallel

    if not parallel._is_initialized:
        numba.config.THREADING_LAYER = "workqueue"


class _KernelBlas:
    """The BLAS that ``np.dot`` inside a Numba kernel calls (SciPy's, through ``scipy.linalg.cython_blas``),
    held at one thread while fastcnn's parallel kernels run, so each of fastcnn's threads does its own
    GEMMs and nothing is oversubscribed; the previous count is restored afterwards (it is SciPy's setting,
    not ours). Without threadpoolctl, or when SciPy's BLAS cannot be told apart, nothing is changed.
    Every family that calls ``np.dot`` inside ``prange`` runs its kernel inside ``with KERNEL_BLAS:``.
    """

    def __init__(self) -> None:
        self._libs = None

    def _find(self):
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba's np.dot calls)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return []
        controllers = ThreadpoolController().lib_controllers
        return [c for c in controllers if c.user_api == "blas" and "scipy" in os.path.basename(
            os.path.dirname(c.filepath)) and "numpy" not in c.filepath]

    def __enter__(self):
        if self._libs is None:
            self._libs = self._find()
        self._saved = [lib.get_num_threads() for lib in self._libs]
        for lib in self._libs:
            lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for lib, n in zip(self._libs, self._saved):
            lib.set_num_threads(n)


KERNEL_BLAS = _KernelBlas()


prefer_quiet_threading_layer()
