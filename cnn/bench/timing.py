"""How the benchmarks measure: medians of interleaved blocks of calls, and a process's peak resident memory."""

from __future__ import annotations

import resource
import statistics
import sys
import time


def interleaved_medians(fns: dict, repeats: int, rounds: int = 3) -> dict:
    """Median seconds of each callable over ``repeats`` timed calls, taken in blocks that alternate.

    Each of ``rounds`` rounds runs every callable in turn as a block: one untimed warm-up call, then its
    share of the timed calls. Alternating the blocks lets noise from other processes hit every engine
    alike; timing blocks rather than single calls keeps one engine's thread pool out of the other's
    timings. Measured here with 2 threads: a fastcnn conv2d timed right after a PyTorch call took 63 ms,
    against 41 ms in a block of its own (PyTorch's OpenMP workers keep spinning after its call).
    """
    times = {name: [] for name in fns}
    per_round = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    for count in per_round:
        for name, fn in fns.items():
            fn()
            for _ in range(count):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _peak_rss_mib() -> float:
    """This process's peak resident set so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
