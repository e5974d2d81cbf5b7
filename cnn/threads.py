"""One thread count for everything that computes: fastcnn's kernels and the BLAS library.

refcnn and NumPy call BLAS directly; fastcnn's kernels run on Numba's thread pool and call BLAS single-threaded
inside it (``fastcnn/_blas.py``). ``cnn train --threads``, ``cnn evaluate``, ``cnn predict`` and ``cnn bench``
set both through :func:`set_threads`.
"""

from __future__ import annotations

import contextlib

__all__ = ["set_threads", "threads_for_all", "default_threads"]


def default_threads() -> int:
    """The size of fastcnn's thread pool, fixed when the process started (``NUMBA_NUM_THREADS``)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def _blas_limits(threads: int):
    """Limit BLAS to ``threads`` threads; returns the limiter (to restore later), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then BLAS keeps its own count; fastcnn still follows the count
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def set_threads(threads: int | None) -> None:
    """fastcnn's kernel threads and the BLAS threads follow one count; None leaves both as they are.

    Raises ``ValueError`` (from :func:`fastcnn.set_num_threads`) for a count above the pool size.
    """
    if threads is None:
        return
    import fastcnn

    fastcnn.set_num_threads(threads)
    _blas_limits(threads)


@contextlib.contextmanager
def threads_for_all(threads: int, torch=None):
    """fastcnn, BLAS and (when given) PyTorch at ``threads`` threads for the duration, then as they were (the
    caller may be a longer-lived process, a test session for one)."""
    import fastcnn

    saved = fastcnn.get_num_threads(), (torch.get_num_threads() if torch is not None else None)
    fastcnn.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    blas = _blas_limits(threads)
    try:
        yield
    finally:
        fastcnn.set_num_threads(saved[0])
        if torch is not None:
            torch.set_num_threads(saved[1])
        if blas is not None:
            blas.restore_original_limits()
