"""What one parallel kernel launch costs, on 1 thread and on 2, with fastcnn's OpenMP settings (docs/threads.md).

    python benchmarks/launch_cost.py [--calls 301]
    GOMP_SPINCOUNT=10000 python benchmarks/launch_cost.py      # libgomp's waiters spinning instead of sleeping

Times a ``prange`` kernel over 64 cells (almost no work: the launch itself), the median of ``--calls`` calls
back to back, then with a 200 us pause before each call (the waiters asleep, as between a training step's
kernels). fastcnn is imported first, so libgomp is loaded with fastcnn's wait policy unless the environment
sets one (``fastcnn._runtime.openmp_wait_settings()`` is printed).
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
from numba import prange  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=301)
    args = parser.parse_args()
    print(f"OpenMP: {fastcnn._runtime.openmp_wait_settings()}")
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            break
        fastcnn.set_num_threads(threads)
        print(f"{threads} thread(s): back to back {_median_us(args.calls, 0.0):.1f} us, "
              f"after a 200 us pause {_median_us(args.calls, 2e-4):.1f} us")


if __name__ == "__main__":
    main()
