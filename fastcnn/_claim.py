"""Tasks handed out one at a time: a shared counter that each thread takes its next task index from.

Numba's ``prange`` under its OpenMP layer deals the iterations out up front, in equal shares (omppool.cpp's
``omp for`` has no schedule clause): a loop over 64 blocks on 2 threads gives each 32, and the loop ends when
the slower thread ends. A thread is slower when it shares its core with another process (a loaded machine),
or when it wakes late (it sleeps between kernels, ``OMP_WAIT_POLICY`` passive, see fastcnn/_runtime.py and
docs/threads.md). With :func:`claim` a kernel's loop is ``prange`` over the threads, each taking the next free
task until none is left, so the thread that runs does the work that is waiting::

    workers, counter = claim_args(tasks)           # in Python: a fresh zero counter per launch
    for _ in prange(workers):                      # in the kernel: one iteration per thread
        while True:
            task = claim(counter)
            if task >= tasks:
                break
            ...                                    # task ``task``, on scratch of numba.get_thread_id()

``workers`` comes from Python: ``numba.get_num_threads()`` inside a kernel reads the threading layer through a
pointer that keeps Numba from caching the kernel. Kernels launched every step take a fixed bound instead
(:func:`most_workers`, remembered with their set-up) and make the counter themselves (:func:`team`): a
``prange`` iteration past the running threads finds every task claimed and ends, and the Python call it saves
cost ~19 us in a training step, where the kernel before has left the caches cold (issue 16). Only for loops
whose results do not depend on which thread runs which task (each task writes its own outputs, or its own
partial sums that are added in task order afterwards): then they stay bit-identical for any thread count and
any timing.
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._runtime import KERNEL_FLAGS

__all__ = ["claim", "claim_args", "counters", "most_workers", "settled", "team", "wait_for"]


def _counter_intrinsic(name, operation):
    """The intrinsic ``name(counter) -> int64`` on ``counter[0]``, ``counter`` a 1-D int64 array:
    ``operation(builder, pointer)`` gives the value."""

    def typer(typingctx, counter):
        if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1):
            return None

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            first = cgutils.get_item_pointer(context, builder, signature.args[0], array, [context.get_constant(
                types.intp, 0)])
            return operation(builder, first)

        return types.int64(counter), codegen

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


# sequentially consistent: the counter is touched once per task, so the strictest order costs nothing
claim = _counter_intrinsic(
    "claim", lambda builder, first: builder.atomic_rmw("add", first, ir.Constant(ir.IntType(64), 1), "seq_cst"))
claim.__doc__ = """``counter[0]`` before adding 1 to it, in one atomic step (LLVM's ``atomicrmw add``): each call gets
a different number, 0, 1, 2, ..., whatever the threads calling it. ``counter``: a 1-D int64 array."""

settled = _counter_intrinsic("settled", lambda builder, first: builder.load_atomic(first, "acquire", 8))
settled.__doc__ = """``counter[0]``, read atomically (an acquire load): what the threads that added to it with
:func:`claim` wrote before adding is visible after it. ``counter``: a 1-D int64 array."""


_LIBC = ctypes.CDLL(None)
llvm.add_symbol("fastcnn_sched_yield", ctypes.cast(_LIBC.sched_yield, ctypes.c_void_p).value)
_sched_yield = types.ExternalFunction("fastcnn_sched_yield", types.int32())

#: Reads of a counter between two offers of the core to another thread (``sched_yield``) in :func:`wait_for`.
SPINS_BEFORE_YIELD = 1000


@numba.njit(**KERNEL_FLAGS)
def wait_for(counter, target):
    """Return once ``counter[0]`` (added to with :func:`claim`) reaches ``target``. Only for waits on work
    other threads of the same parallel region are doing already (a task they claimed), so a wait is as short as
    that work; the core is offered to other threads every SPINS_BEFORE_YIELD reads, so that on a loaded machine
    a waiter does not hold it while the thread it waits for is descheduled."""
    spins = 0
    while settled(counter) < target:
        spins += 1
        if spins == SPINS_BEFORE_YIELD:
            _sched_yield()
            spins = 0


@numba.njit(**KERNEL_FLAGS)
def counters(n):
    """``n`` zero int64 counters, made inside a parallel kernel. A call, not inlined: Numba would turn an
    ``np.zeros`` written in the parallel kernel itself into a parallel loop of its own, one more launch of the
    threads (3 launches more in each convolution cost 1.3-2.1 ms a ResNet-20 step)."""
    return np.zeros(n, dtype=np.int64)


@numba.njit(**KERNEL_FLAGS)
def team(tasks, most):
    """``(workers, counter)`` made inside a kernel, before its parallel region: ``min(tasks, most)`` workers (at
    least one) and a fresh zero counter (:func:`counters`), ``most`` from :func:`most_workers`."""
    return max(1, min(tasks, most)), counters(1)


def most_workers(tasks: int) -> int:
    """The most workers a kernel that claims ``tasks`` tasks needs whatever its thread count: no more than tasks,
    nor than Numba's threads (``NUMBA_NUM_THREADS``, fixed when the process starts). For :func:`team`, from a
    set-up remembered per shape: with fewer threads running, the extra iterations of ``prange(workers)`` find
    every task claimed and end at once, so the count can be fixed while set_num_threads changes."""
    return max(1, min(tasks, numba.config.NUMBA_NUM_THREADS))


def claim_args(tasks: int) -> tuple[int, np.ndarray]:
    """``(workers, counter)`` for a kernel that claims ``tasks`` tasks: no more threads than tasks (at least one),
    and a fresh zero counter."""
    return max(1, min(tasks, numba.get_num_threads())), np.zeros(1, dtype=np.int64)
