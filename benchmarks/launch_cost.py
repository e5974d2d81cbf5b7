"""What one parallel kernel launch costs, on 1 thread and on 2, with fastcnn's OpenMP settings (docs/threads.md).

    python benchmarks/launch_cost.py [--calls 301]
    GOMP_SPINCOUNT=10000 python benchmarks/launch_cost.py      # libgomp's waiters spinning instead of sleeping
    python benchmarks/launch_cost.py --timeline                # when each thread starts work inside a launch

Times a ``prange`` kernel over 64 cells (almost no work: the launch itself), the median of ``--calls`` calls
back to back, then with a 200 us pause before each call (the waiters asleep, as between a training step's
kernels). fastcnn is imported first, so libgomp is loaded with fastcnn's wait policy unless the environment
sets one (``fastcnn._runtime.openmp_wait_settings()`` is printed).

``--timeline`` (2 threads): a kernel of 200 tasks of ~2 us each, dealt out by ``prange`` (half to each thread, as
fastcnn's elementwise and batch-norm kernels take theirs) or claimed one at a time (fastcnn._claim, as its
Winograd and dense kernels do), with the time-stamp counter read on entry and at each task; per call, when the
kernel is entered and when the calling thread and the other one start their first task (microseconds from the
call); medians over ``--calls`` calls, each after a 300 us pause (the waiters asleep). Measured in session 30
(2-core Xeon VM, passive waiters, three runs): dealt by prange, the kernel entered +1.9-2.2 us, the calling
thread's first task +19.5-21.8 us, the other thread's +48.1-51.5 us; claimed, the same gaps counted from the
entry (+15-17 us: the counter is made in Python first). So a kernel of a few hundred microseconds gains little
from the second thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastcnn  # noqa: E402  (first: it loads libgomp with its wait policy)
import numba  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import prange, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

from fastcnn._claim import claim, claim_args  # noqa: E402


@numba.njit(parallel=True)
def _touch(a):
    for i in prange(a.size):
        a[i] += 1.0


def _median_us(calls: int, pause: float) -> float:
    a = np.zeros(64)
    _touch(a)
    times = []
    for _ in range(calls):
        if pause:
            time.sleep(pause)
        start = time.perf_counter()
        _touch(a)
        times.append(time.perf_counter() - start)
    return 1e6 * float(np.median(times))


@intrinsic
def _cycles(typingctx):
    """The CPU's time-stamp counter (LLVM's readcyclecounter): a clock every thread can read inside a kernel."""
    def codegen(context, builder, signature, args):
        counter = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(counter, [])
    return types.int64(), codegen


@numba.njit
def _now():
    return _cycles()


@numba.njit(inline="always")
def _task(work, log, t):
    """Task t (a sum over one row of ``work``), its start cycle and thread logged in log[t]."""
    log[t, 0], log[t, 1] = _cycles(), numba.get_thread_id()
    total = 0.0
    for v in work[t]:
        total += v
    work[t, 0] = total


@numba.njit(parallel=True)
def _dealt_tasks(work, log):
    """The tasks dealt out by prange; log[-1]: (the entry cycle, the calling thread)."""
    tasks = work.shape[0]
    log[tasks, 0], log[tasks, 1] = _cycles(), numba.get_thread_id()
    for t in prange(tasks):
        _task(work, log, t)


@numba.njit(parallel=True)
def _claimed_tasks(work, log, workers, counter):
    """The tasks claimed one at a time; log[-1]: (the entry cycle, the calling thread)."""
    tasks = work.shape[0]
    log[tasks, 0], log[tasks, 1] = _cycles(), numba.get_thread_id()
    for _ in prange(workers):
        while True:
            t = claim(counter)
            if t >= tasks:
                break
            _task(work, log, t)


def _timeline(calls: int, tasks: int = 200) -> None:
    """Median microseconds from a call to its entry and to each thread's first task, both ways of sharing."""
    fastcnn.set_num_threads(2)
    work, log = np.random.rand(tasks, 2000), np.zeros((tasks + 1, 2), dtype=np.int64)
    c0, t0 = _now(), time.perf_counter()
    time.sleep(0.05)
    per_us = (_now() - c0) / (time.perf_counter() - t0) / 1e6
    for name, run in (("dealt by prange", lambda: _dealt_tasks(work, log)),
                      ("claimed", lambda: _claimed_tasks(work, log, *claim_args(tasks)))):
        run()
        rows = []
        for _ in range(calls):
            time.sleep(3e-4)
            start = _now()
            run()
            starts, threads, caller = log[:tasks, 0], log[:tasks, 1], log[tasks, 1]
            rows.append([(log[tasks, 0] - start) / per_us]
                        + [(starts[mine].min() - start) / per_us if mine.any() else np.nan
                           for mine in (threads == caller, threads != caller)])
        entry, own, other = np.nanmedian(np.array(rows), axis=0)
        print(f"2 threads, {tasks} tasks {name}, medians of {calls} calls: kernel entered +{entry:.1f} us, the "
              f"calling thread's first task +{own:.1f} us, the other thread's +{other:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=301)
    parser.add_argument("--timeline", action="store_true", help="when each thread starts work inside a launch")
    args = parser.parse_args()
    print(f"OpenMP: {fastcnn._runtime.openmp_wait_settings()}")
    if args.timeline:
        _timeline(args.calls)
        return
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            break
        fastcnn.set_num_threads(threads)
        print(f"{threads} thread(s): back to back {_median_us(args.calls, 0.0):.1f} us, "
              f"after a 200 us pause {_median_us(args.calls, 2e-4):.1f} us")


if __name__ == "__main__":
    main()
