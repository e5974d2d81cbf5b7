"""``cnn bench train --load N``: N busy processes beside the engines, to measure speed on a loaded machine.

Issue 16 measured fastcnn on 2 threads at 620 images/s with one core busy, against 894 on 1 thread: a
machine that runs other work is the common case, and a benchmark on an idle machine hides how an engine's
threads behave then. Each load is a separate Python interpreter spinning in a pure-Python loop (no I/O,
no memory traffic to speak of: it takes a core's time slices, as another CPU-bound program does); the
operating system shares the cores between it and the engine's threads.

Cleanup is guaranteed three ways: :func:`background_load` stops its processes in a ``finally`` (an error or a
KeyboardInterrupt in the measured block included), a process that does not stop on SIGTERM within
:data:`STOP_WAIT_S` is killed, and each busy loop ends by itself when its parent dies (it checks
``os.getppid()`` every few milliseconds), so even a benchmark killed by SIGKILL leaves nothing spinning.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

__all__ = ["BUSY_CODE", "MAX_LOAD", "STOP_WAIT_S", "background_load", "describe_load", "start_load", "stop_load"]

#: The most busy processes ``--load`` takes (a safeguard against a typo starting thousands).
MAX_LOAD = 64
#: Seconds a busy process gets to stop after SIGTERM before it is killed.
STOP_WAIT_S = 5.0

#: The busy loop: spin in the interpreter; every 100,000 iterations (a few ms) check that the parent that
#: started it (its pid is the one argument: read from os.getppid() at start, it would be init's already when
#: the parent died while the interpreter started) is still its parent, and end when it is not (re-parented).
BUSY_CODE = """\
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


def start_load(n: int) -> list[subprocess.Popen]:
    """Start ``n`` busy processes (0: none); if starting one fails, the ones already started are stopped."""
    processes: list[subprocess.Popen] = []
    command = [sys.executable, "-c", BUSY_CODE, str(os.getpid())]
    try:
        for _ in range(n):
            processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
    except BaseException:
        stop_load(processes)
        raise
    return processes


def stop_load(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every process, then wait for each; one still running after :data:`STOP_WAIT_S` is killed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def background_load(n: int):
    """``n`` busy processes for the duration of the ``with`` block, stopped when it ends however it ends;
    yields the list of their ``Popen`` objects."""
    processes = start_load(n)
    try:
        yield processes
    finally:
        stop_load(processes)


def describe_load(n: int) -> str:
    """The header line of a table measured under ``n`` busy processes."""
    if not n:
        return "background load: none (--load 0)"
    return (f"background load: {n} busy process{'es' if n > 1 else ''} (pure-Python loops, --load {n}), running "
            "from before the first engine's child starts until after the last one ends")
