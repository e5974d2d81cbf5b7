"""What every fastcnn module shares: dtypes, threads, scratch buffers, and refcnn's docstrings.

Kernels are compiled by Numba on first use and cached on disk (``cache=True``). Numba puts the cache in the
package's ``__pycache__`` when it is writable and otherwise in the user's cache folder
(``~/.cache/numba`` on Linux); ``NUMBA_CACHE_DIR`` overrides both. Those rules are Numba's own, so fastcnn
sets nothing here: it only has to pass ``cache=True`` to every kernel.
"""

from __future__ import annotations

import contextlib

import os
import sys
import textwrap

import numpy as np
import numba

from cnnbase.checks import FLOAT_DTYPES, check_int, invalid

__all__ = [
    "set_num_threads", "get_num_threads", "compute_dtype", "as_compute", "result_dtype", "Scratch", "SCRATCH", "Plans",
    "KERNEL_FLAGS", "FASTMATH", "DTYPE_NOTE", "share_docstrings", "OPENMP_WAIT", "openmp_wait_settings",
    "SERIAL_BELOW", "launch", "serial_below",
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
        expected = f"an int in [1, {limit}] (NUMBA_NUM_THREADS={limit} when the process started)"
        raise ValueError(invalid("set_num_threads", "n", expected, n))
    numba.set_num_threads(n)


#: Work (elements of an Adam-like update) below which :func:`launch` runs a kernel on the calling thread alone.
#: fastcnn's OpenMP threads sleep between kernels (``OMP_WAIT_POLICY=passive``, kept for loaded machines), and
#: waking them costs about 90 us on a 2-core VM, more than a small kernel's work: Adam on 2,304 elements 123 us
#: on 2 threads against 34 on 1; 36,864: 183 against 136; 73,728: 249 against 268; 147,456: 680 against 704 (session 27,
#: 2-core Xeon AVX-512, medians with a 200 us pause between calls).
SERIAL_BELOW = 65536


def launch(kernel, size: int, *args):
    """``kernel(*args)``, on the calling thread alone when its work, ``size``, is under SERIAL_BELOW (callers
    weigh a cheaper element as a fraction of one). Only for kernels whose results do not depend on the thread
    count (elementwise ones, and those that split their work in a fixed way): it changes the speed only. The
    thread count is per calling thread in Numba, so other Python threads are not affected."""
    restore = _go_serial(size)  # no context manager here: its generator cost more than the rule (~3 us a call)
    if not restore:
        return kernel(*args)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(restore)


@contextlib.contextmanager
def serial_below(size: int):
    """:func:`launch`'s rule for a block of several kernels: inside, fastcnn runs on the calling thread alone
    when ``size`` is under SERIAL_BELOW."""
    restore = _go_serial(size)
    try:
        yield
    finally:
        if restore:
            numba.set_num_threads(restore)


def _go_serial(size: int) -> int:
    """The rule: below SERIAL_BELOW, with more than one thread, set one thread and return the count to restore;
    otherwise 0 (nothing to restore)."""
    if size >= SERIAL_BELOW:
        return 0
    threads = numba.get_num_threads()
    if threads == 1:
        return 0
    numba.set_num_threads(1)
    return threads


def get_num_threads() -> int:
    """Threads fastcnn's parallel kernels use now."""
    return numba.get_num_threads()


def compute_dtype(*arrays) -> np.dtype:
    """The float type an op computes in: float64 if any array is float64, else float32.

    float16 inputs are computed in float32 (no kernel is compiled for float16); ops return their result in
    the dtype they were given, ``numpy.result_type`` of the float inputs.
    """
    for a in arrays:
        # dtype.type, not the dtype: a big-endian '>f8' is a float64 too (and '>f8' != np.float64)
        if a is not None and a.dtype.type is np.float64:
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


#: What fastcnn adds to a refcnn docstring: the formula is the same, the float type is the caller's.
DTYPE_NOTE = ("fastcnn: computed in float32 or float64 (float16 in float32) and returned in the dtype of the float "
              "inputs (NumPy's promotion), where refcnn computes and returns float64.")


def share_docstrings(namespace: dict, names, notes: dict | None = None) -> None:
    """Give each fastcnn function in ``names`` the docstring of refcnn's function of that name, then a note:
    ``notes[name]`` where one is given, else :data:`DTYPE_NOTE`. The formulas and shapes are written once,
    in refcnn, so the engines' documentation cannot drift apart."""
    import refcnn  # its public functions only; refcnn imports nothing of fastcnn

    notes = notes or {}
    for name in names:
        doc = (getattr(refcnn, name).__doc__ or "").rstrip()
        note = textwrap.fill(notes.get(name, DTYPE_NOTE), width=108, initial_indent="    ",
                             subsequent_indent="    ")
        namespace[name].__doc__ = f"{doc}\n\n{note}\n"


class Scratch:
    """Scratch buffers kept between calls, one per (name, dtype), grown when too small.

    Allocating large arrays afresh on every call costs thousands of page faults per call (glibc returns
    big freed blocks to the system), so im2col and reduction buffers are kept here. Not thread-safe: one
    Python thread drives fastcnn at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype], np.ndarray] = {}
        #: Counts the buffers made or let go: a :class:`Plans` entry holding views of them is current while it
        #: has not moved.
        self.generation = 0

    def get(self, name: str, size: int, dtype) -> np.ndarray:
        """A 1-D buffer of at least ``size`` elements; its contents are undefined."""
        key = (name, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, 1), dtype=dtype)
            self._buffers[key] = buf
            self.generation += 1
        return buf[:size]

    def clear(self) -> None:
        """Free every buffer."""
        self._buffers.clear()
        self.generation += 1


SCRATCH = Scratch()


class Plans:
    """A kernel's set-up per call shape (issue 16): what a wrapper derives from the geometry, the dtype and its
    flags alone (index maps, block sizes, scratch buffers of the right shapes, stand-ins for unused arguments),
    remembered under a key of those, so that a layer calling with the same shapes every step does not rebuild
    it. ResNet-20's training step makes 91 public calls; each ran ~100 us of Python before its kernels, and
    ~70 us more in a step, where the previous kernel has just evicted the interpreter's data from the caches.

    An entry holds views of :data:`SCRATCH`'s buffers, so all entries are forgotten whenever SCRATCH makes or
    lets go of a buffer (its ``generation``): an entry never keeps a replaced buffer alive or writes into one
    another call no longer uses, and memory stays what SCRATCH alone holds. Not thread-safe, as SCRATCH."""

    #: Entries at most; past it all are forgotten (a network has a few call shapes per layer).
    MAX = 512

    def __init__(self) -> None:
        self._plans: dict = {}
        self._generation = SCRATCH.generation

    def get(self, key, build):
        """The entry for ``key`` (hashable), made by ``build()`` when there is none current."""
        if self._generation != SCRATCH.generation:
            self._forget()
        plan = self._plans.get(key)
        if plan is None:
            plan = build()
            if self._generation != SCRATCH.generation:  # build() grew a buffer another entry may hold
                self._forget()
            if len(self._plans) >= self.MAX:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _forget(self) -> None:
        self._plans.clear()
        self._generation = SCRATCH.generation


# Threading layer: fastcnn leaves the choice to Numba (``NUMBA_THREADING_LAYER``; by default TBB when its
# library can be loaded, else OpenMP, else 'workqueue'). Measured on the 2-core development machine, launching
# one empty parallel kernel took: OpenMP (GNU libgomp) 2-3 us, TBB 4 us, 'workqueue' 170-490 us. A convolution
# launches two or three kernels, a training step dozens: on 'workqueue' keras-mnist trained about 20% slower.
# Its one advantage is fork safety: a process that forks after GNU OpenMP ran cannot use OpenMP in the child
# (Numba stops the child with a message), so fastcnn in forked workers wants NUMBA_THREADING_LAYER=forksafe
# (TBB, else 'workqueue'); README.md says so. (An earlier fastcnn forced 'workqueue' to keep libgomp's
# spinning workers away from multithreaded BLAS calls between kernels; every BLAS call now runs
# single-threaded inside the kernels, see _blas.py.)


# Threads on a loaded machine (issue 16, item 4; docs/threads.md has the figures). A parallel kernel ends when
# its slowest thread does, and a machine running other work deschedules one of fastcnn's threads now and then.
# GNU OpenMP's default makes the other thread spin while it waits (GOMP_SPINCOUNT 300,000 iterations, 30
# billion under OMP_WAIT_POLICY=active), and between kernels too: on a busy core that spinning takes the
# time slices the descheduled thread needs. Measured on this project's 2-core Xeon (benchmarks/threads_load.py:
# keras-mnist training steps, batch 64, --load 1 busy process; two nice-0 trainings and other tests shared the
# machine too, load average 7.8-10.3, every benchmark process under nice 15), median ms per step:
#
#     libgomp setting                  1 thread    2 threads (2/1)   2 threads, ops < 262,144 elements serial
#     default (GOMP_SPINCOUNT 300k)    2,161 ms    5,090 ms (2.36)   3,398 ms (1.57)
#     GOMP_SPINCOUNT=100000            1,095 ms    1,757 ms (1.60)   1,333 ms (1.22)
#     GOMP_SPINCOUNT=10000             2,011 ms    1,507 ms (0.75)   1,484 ms (0.74)
#     OMP_WAIT_POLICY=passive          1,796 ms    1,132 ms (0.63)   1,097 ms (0.61)
#
# A launch costs about 2 us more with sleeping waiters (fastcnn.relu on 4,096 elements, 2 threads: 7.1-7.3 us
# against 5.0-5.2 us spinning; GOMP_SPINCOUNT=10000: 242-364 us), under 0.5% of a training step.
#
# So the wait policy decides it: with sleeping waiters 2 threads beat 1 on a loaded machine, with spinning ones
# they lose 2.4x (3x at batch 32). Running small ops on one thread helps only while the waiters spin. Numba's
# set_parallel_chunksize(1) made steps 20x slower: under OpenMP its chunks are still dealt out statically
# (omppool.cpp's `omp for` has no schedule clause), each with its own set-up. TBB (work stealing) would need
# `pip install tbb` (libtbb.so.12), which this project does not require. docs/threads.md has every run.
#
# OpenMP has no call to change the wait policy: libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it
# is loaded (which Numba does at the first parallel kernel). So :func:`_load_openmp` loads libgomp itself at
# import, with :data:`OPENMP_WAIT` set for the moment of the load and the environment restored right after:
# child processes and other libraries (PyTorch loads its own libgomp) see the user's environment unchanged.
# It does not start Numba's threads (a process that forks before its first kernel keeps working in the child,
# as before). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins, and nothing happens when libgomp is already
# loaded, on other systems than Linux, or when NUMBA_THREADING_LAYER names another layer.

#: The libgomp settings fastcnn loads OpenMP with (unless the user set either variable).
OPENMP_WAIT = {"OMP_WAIT_POLICY": "passive"}
_OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_LIBGOMP = "libgomp.so.1"


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line and "libgomp-" not in line for line in maps)  # libgomp-<hash>: torch's
    except OSError:
        return True  # cannot tell: do nothing


def openmp_wait_settings() -> dict:
    """What :func:`_load_openmp` decided at import: ``{"applied": {...}}`` with the variables libgomp was loaded
    with, or ``{"skipped": reason}``."""
    return dict(_OPENMP_STATE)


def _load_openmp() -> dict:
    """Load the system's libgomp (the one Numba's OpenMP layer links) with :data:`OPENMP_WAIT` in the
    environment for the duration of the load; the environment is restored afterwards."""
    if not sys.platform.startswith("linux"):
        return {"skipped": "not Linux"}
    layer = os.environ.get("NUMBA_THREADING_LAYER", "default").lower()
    if layer not in ("default", "omp", "threadsafe"):  # the ones that may choose OpenMP (with TBB absent)
        return {"skipped": f"NUMBA_THREADING_LAYER={layer}"}
    chosen = [name for name in _OPENMP_VARIABLES if name in os.environ]
    if chosen:
        return {"skipped": "set by the user: " + ", ".join(f"{n}={os.environ[n]}" for n in chosen)}
    if _libgomp_loaded():
        return {"skipped": "libgomp already loaded"}
    import ctypes

    os.environ.update(OPENMP_WAIT)
    try:
        ctypes.CDLL(_LIBGOMP)
    except OSError as error:
        return {"skipped": f"cannot load {_LIBGOMP}: {error}"}
    finally:
        for name in OPENMP_WAIT:
            os.environ.pop(name, None)
    return {"applied": dict(OPENMP_WAIT)}


_OPENMP_STATE = _load_openmp()
