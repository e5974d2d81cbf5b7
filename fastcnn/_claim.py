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

``workers`` comes from Python: ``numba.get_num_threads()`` inside a kernel reads the threading layer through
a pointer that keeps Numba from caching the kernel. Only for loops whose results do not depend on which thread
runs which task (each task writes its own outputs, or its own partial sums that are added in task order
afterwards): then they stay bit-identical for any thread count and any timing.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["claim", "claim_args"]


@intrinsic
def claim(typingctx, counter):
    """``counter[0]`` before adding 1 to it, in one atomic step (LLVM's ``atomicrmw add``): each call gets
    a different number, 0, 1, 2, ..., whatever the threads calling it. ``counter``: a 1-D int64 array."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1):
        return None
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        first = cgutils.get_item_pointer(context, builder, signature.args[0], array, [context.get_constant(
            types.intp, 0)])
        # sequentially consistent: the counter is touched once per task, so the strictest order costs nothing
        return builder.atomic_rmw("add", first, ir.Constant(ir.IntType(64), 1), "seq_cst")

    return sig, codegen


def claim_args(tasks: int) -> tuple[int, np.ndarray]:
    """``(workers, counter)`` for a kernel that claims ``tasks`` tasks: no more threads than tasks (at least one),
    and a fresh zero counter."""
    return max(1, min(tasks, numba.get_num_threads())), np.zeros(1, dtype=np.int64)
