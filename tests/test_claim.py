"""fastcnn._claim: tasks handed out one at a time through an atomic counter."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import prange

import fastcnn
from fastcnn._claim import claim, claim_args, settled, wait_for


@numba.njit(parallel=True)
def _claim_all(tasks, owner, workers, counter):
    """owner[t] = the thread that claimed task t; each task adds 1 to its own cell of hits."""
    hits = np.zeros(tasks, dtype=np.int64)
    for _ in prange(workers):
        while True:
            task = claim(counter)
            if task >= tasks:
                break
            hits[task] += 1
            owner[task] = numba.get_thread_id()
    return hits


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tasks", [0, 1, 7, 20_000])
def test_every_task_is_claimed_once(threads, tasks):
    """Every task goes to exactly one thread, whatever the thread count; the counter ends past the last task
    by one claim per worker (each stops at its first number past the end)."""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("fewer threads available")
    before = fastcnn.get_num_threads()
    try:
        fastcnn.set_num_threads(threads)
        workers, counter = claim_args(tasks)
        assert workers == max(1, min(tasks, threads)) and counter.tolist() == [0]
        owner = np.full(tasks, -1, dtype=np.int64)
        hits = _claim_all(tasks, owner, workers, counter)
    finally:
        fastcnn.set_num_threads(before)
    np.testing.assert_array_equal(hits, np.ones(tasks, dtype=np.int64))
    assert ((owner >= 0) & (owner < threads)).all()
    assert counter[0] == tasks + workers


def test_claim_refuses_what_is_not_a_1d_int64_array():
    @numba.njit
    def take(c):
        return claim(c)

    assert take(np.zeros(1, dtype=np.int64)) == 0
    with pytest.raises(numba.TypingError):
        take(np.zeros(1, dtype=np.int32))


@numba.njit(parallel=True)
def _count_then_wait(workers, counter, done):
    """Each worker claims work items, counts each done, then waits for all of them: returns what each read."""
    seen = np.zeros(workers, dtype=np.int64)
    for w in prange(workers):
        while claim(counter) < 50:
            claim(done)
        wait_for(done, 50)
        seen[w] = settled(done)
    return seen


@pytest.mark.parametrize("threads", [1, 2])
def test_wait_for_returns_once_every_item_is_done(threads):
    """wait_for returns once the counter reaches its target, whichever thread did the items; settled reads the
    counter as the threads left it (the waits before the region's end cannot hang: each item is done by the
    thread that claimed it)."""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("fewer threads available")
    before = fastcnn.get_num_threads()
    try:
        fastcnn.set_num_threads(threads)
        done = np.zeros(1, dtype=np.int64)
        seen = _count_then_wait(threads, np.zeros(1, dtype=np.int64), done)
    finally:
        fastcnn.set_num_threads(before)
    assert seen.tolist() == [50] * threads and done.tolist() == [50]
