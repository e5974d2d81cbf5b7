"""What one parallel kernel launch costs, on 1 thread and on 2, with fastcnn's OpenMP settings (docs/threads.md).

    python benchmarks/launch_cost.py [--calls 301]
    GOMP_SPINCOUNT=10000 python benchmarks/launch_cost.py      # libgomp's waiters spinning instead of sleeping
    python benchmarks/launch_cost.py --timeline                # when each thread starts work inside a launch

Times a ``prange`` kernel over 64 cells (almost no work: the launch itself), the median of ``--calls`` calls
back to back, then with a 200 us pause before each call (the waiters asleep, as between a training step's
kernels). fastcnn is imported first, so libgomp is loaded with fastcnn's wait policy unless the environment
sets one (``fastcnn._runtime.openmp_wait_settings()`` is printed).

``--timeline`` (2 threads): a kernel of 200 tasks of ~2 us each, claimed one at a time (fastcnn._claim, as the
Winograd and dense kernels take theirs), with the time-stamp counter read on entry and at each task; per call,
when the calling thread enters the kernel, when each thread starts its first task (microseconds from the
call) and how many tasks it took; medians over ``--calls`` calls, each after a 300 us pause. Measured in session 30
(2-core Xeon VM, passive waiters, two runs of 101 calls): entry +2.3 us, the calling thread's first task +21-22 us,
the other thread's +51-53 us; so a kernel of a few hundred microseconds gains little from the second thread.
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


@numba.njit(parallel=True)
def _claimed_tasks(work, workers, counter, log):
    """log[t] = (start cycle, thread) of task t (a sum over one row of ``work``); log[-1, 0]: the entry cycle."""
    tasks = work.shape[0]
    log[tasks, 0] = _cycles()
    for _ in prange(workers):
        while True:
            t = claim(counter)
            if t >= tasks:
                break
            log[t, 0], log[t, 1] = _cycles(), numba.get_thread_id()
            total = 0.0
            for v in work[t]:
                total += v
            work[t, 0] = total


def _timeline(calls: int, tasks: int = 200) -> None:
    """Median microseconds from a call to its entry and to each thread's first task, and tasks per thread."""
    fastcnn.set_num_threads(2)
    work, log = np.random.rand(tasks, 2000), np.zeros((tasks + 1, 2), dtype=np.int64)
    c0, t0 = _now(), time.perf_counter()
    time.sleep(0.05)
    per_us = (_now() - c0) / (time.perf_counter() - t0) / 1e6
    rows = []
    for _ in range(calls):
        time.sleep(3e-4)
        args = claim_args(tasks)
        start = _now()
        _claimed_tasks(work, *args, log)
        first = {int(tid): (int(log[:tasks, 0][log[:tasks, 1] == tid].min()) - start) / per_us
                 for tid in np.unique(log[:tasks, 1])}
        rows.append(((log[tasks, 0] - start) / per_us, first.get(0, np.nan), first.get(1, np.nan),
                     int((log[:tasks, 1] == 0).sum())))
    entry, caller, other, mine = (np.nanmedian([r[i] for r in rows]) for i in range(4))
    alone = sum(np.isnan(r[2]) or np.isnan(r[1]) for r in rows)
    print(f"2 threads, {tasks} claimed tasks per call, medians of {calls} calls: entry +{entry:.1f} us, calling "
          f"thread's first task +{caller:.1f} us, other thread's +{other:.1f} us; the calling thread took {mine:.0f} "
          f"tasks; {alone} calls ran on one thread alone")


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
