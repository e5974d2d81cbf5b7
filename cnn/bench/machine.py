"""What a reader needs to compare two benchmark runs: the machine, the versions, the settings that change speed.

Every ``cnn bench`` result carries :func:`environment` under its ``environment`` key, and every rendered table
opens with :func:`_header`'s two lines.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from .tables import _NA


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _installed_version(package: str) -> str | None:
    """The installed version without importing the package (importing torch costs seconds and memory)."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: int | None = None) -> dict:
    """What a reader needs to compare two benchmark runs: machine, versions and the settings that change speed.

    ``GLIBC_TUNABLES`` decides whether glibc keeps freed memory (issue 3 measured PyTorch's conv forward at
    8.4 ms with it and 20.7 ms without); ``OPENBLAS_CORETYPE`` pins OpenBLAS's kernels (AVX2 vs AVX-512).
    """
    return {
        "threads": threads,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": _installed_version("numba"),
        "torch": _installed_version("torch"),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "numba_threading_layer": numba_threading_layer(),
    }


def numba_threading_layer() -> str:
    """The layer Numba's parallel kernels run on in this process (launching a kernel costs 2-4 us on OpenMP
    or TBB and 170-490 us on 'workqueue', see fastcnn._runtime), or what will be tried before the first one."""
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        import numba

        return numba.threading_layer()
    return os.environ.get("NUMBA_THREADING_LAYER") or "not started (Numba tries tbb, omp, workqueue)"


def _header(env: dict) -> list[str]:
    """The two lines under a table's title: machine and versions, then the settings that change speed."""
    return [
        f"threads {env['threads'] or '(default)'}   cpu {env['cpu']} ({env['cpu_count']} logical)   python {env['python']}   "
        f"numpy {env['numpy']}   numba {env['numba']}   torch {env['torch'] or _NA}",
        f"GLIBC_TUNABLES={env['GLIBC_TUNABLES'] or '(unset: glibc returns freed memory to the system)'}   "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or '(unset)'}   "
        f"numba threading layer: {env.get('numba_threading_layer') or _NA}",
    ]
