"""Data-parallel training: one global batch computed as K shards, in one process or over K MPI ranks.

Why shards define the step. One process that computes a whole batch's gradient in one pass cannot in
general be bit-identical to a sum of per-rank gradients: the kernels' and BLAS's reduction orders depend on
the rows they see. So a step with ``shards = K`` is defined canonically by its shards, and one process
(:class:`LocalShards`) and K MPI ranks (:class:`MpiShards`) run exactly the same float operations:

1. The global batch of ``B`` rows (the batch order as with one shard) is split into ``K`` contiguous shards
   of ``np.array_split`` sizes (:func:`shard_bounds`: uneven allowed; a shard is empty when ``B < K``).
2. Shard ``r`` runs forward and backward on its rows, dropout seeded by ``(model seed, layer, global step,
   r)``; its loss gradient is scaled by ``n_r / B``, so the sum over shards is the gradient of the global
   batch's mean loss. An empty shard contributes zeros and computes nothing.
3. Each shard's trainable gradients are one flat row (model order, :meth:`Model.parameters`); the ``K`` rows
   are summed in shard order ``0 .. K-1`` (:func:`sum_in_order`), element by element, in the model's dtype.
4. Batch norm uses each shard's own batch statistics (as PyTorch's DistributedDataParallel without
   SyncBatchNorm). Each shard starts from the same running statistics; after the step they are the mean, in
   shard order, of the updated running statistics of the non-empty shards, so every rank holds the same.
5. The loss is ``sum_r (n_r / B) * loss_r`` (shard order), the correct count ``sum_r correct_r``; then one
   optimizer step, the same on every rank from the same summed gradient.

Under MPI, rank ``r`` computes shard ``r`` and the rows travel as bytes in one ``Allgather`` (every rank then
holds all K rows and sums them itself, in rank order): ``mpiexec -n K`` gives bit for bit what one process
with ``shards = K`` gives (same thread settings). ``shards = 1`` is the unsharded step, unchanged.

Every collective is non-blocking and polled against a deadline (``timeout``, :data:`TIMEOUT_ENV`): a rank
that dies or stalls makes the others print one line and ``Abort``, never hang. mpi4py is imported only when
the environment says the process is one of several MPI ranks (:func:`world_size_from_env`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import numpy as np

from cnnbase.checks import check_int, invalid

__all__ = ["shard_bounds", "sum_in_order", "LocalShards", "MpiShards", "make_shards", "world_size_from_env",
           "DistributedError", "rank_from_env", "abort_job", "TIMEOUT_ENV", "DEFAULT_TIMEOUT",
           "default_threads_per_rank", "fingerprint"]

#: The environment variable that sets the collectives' timeout in seconds (``--mpi-timeout`` wins).
TIMEOUT_ENV = "CNN_MPI_TIMEOUT"
#: Seconds a rank waits in one collective before it gives up the job (a validation pass on rank 0 included).
DEFAULT_TIMEOUT = 300.0
#: Environment variables the MPI launchers set to the number of ranks (Open MPI, MPICH/Hydra, PMIx, MVAPICH).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")


class DistributedError(RuntimeError):
    """The ranks of an MPI job cannot go on together (they disagree on the run, or mpi4py is missing).

    ``quiet`` is True on the ranks that should not print it (rank 0 says it once for all)."""

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


# --------------------------------------------------------------------------------------------------
# The canonical step's arithmetic, shared by both backends


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each of ``shards`` contiguous shards of ``n`` rows, ``np.array_split``'s sizes:
    the first ``n % shards`` shards hold one row more; a shard is empty when ``n < shards``."""
    base, extra = divmod(int(n), int(shards))
    bounds, start = [], 0
    for r in range(shards):
        stop = start + base + (1 if r < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def sum_in_order(rows: np.ndarray, which=None) -> np.ndarray:
    """``rows[0] + rows[1] + ... `` (the rows ``which``, default all), added left to right in the rows' dtype:
    the fixed order that makes the sum the same whatever computed the rows."""
    which = range(len(rows)) if which is None else list(which)
    total = None
    for r in which:
        if total is None:
            total = rows[r].copy()
        else:
            total += rows[r]
    return total


def world_size_from_env() -> int:
    """The number of MPI ranks the launcher started, from its environment variables (1 when not under MPI)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            return max(1, int(value))
    return 1


def rank_from_env() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under MPI)."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"):
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return 0


def abort_job(status: int) -> None:
    """End every rank of the MPI job (``MPI_Abort``) with ``status``; a plain exit without mpi4py."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise SystemExit(status) from None
    sys.stdout.flush()
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(status)


def default_threads_per_rank(world: int) -> int:
    """Threads per rank when ``--threads`` is not given: this machine's cores shared among the ranks on it
    (the launcher's local size; the world size when it says none), at least 1."""
    local = world
    for name in _LOCAL_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            local = max(1, int(value))
            break
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // local)


def fingerprint(value) -> str:
    """A sha256 hex digest of ``value``: JSON text (sorted keys), or the bytes of NumPy arrays in a list."""
    digest = hashlib.sha256()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
        for array in value:
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    else:
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Backends: who computes which shard, and how the rows meet


class LocalShards:
    """All ``shards`` shards computed one after the other in this process; the writer of every file."""

    rank = 0
    writer = True

    def __init__(self, shards: int = 1):
        self.size = check_int(shards, "shards", "fit", minimum=1)

    @property
    def local(self) -> range:
        """The shards this process computes."""
        return range(self.size)

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (K, nbytes) holds every shard's row already."""
        return rows

    def agree(self, parts: dict) -> None:
        """One process always agrees with itself."""

    def barrier(self, what: str = "") -> None:
        """Nothing to wait for."""

    def broadcast_scores(self, compute):
        return compute()

    def describe(self) -> str:
        return f"{self.size} shard(s) in one process"


class MpiShards:
    """Rank ``r`` of ``MPI.COMM_WORLD`` computes shard ``r``; rows are gathered with a polled ``Iallgather``.

    ``timeout`` (seconds) bounds every collective: past it the rank prints one line and calls
    ``comm.Abort(1)``, which ends every rank (so ``mpiexec`` returns non-zero instead of hanging)."""

    def __init__(self, timeout: float | None = None, comm=None):
        try:
            from mpi4py import MPI
        except ImportError:
            raise DistributedError(
                "this process runs under mpiexec with several ranks but mpi4py is not installed: "
                "install the mpi extra (pip install 'cnn-ref-fast[mpi]', or pip install mpi4py)") from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.size, self.rank = self.comm.Get_size(), self.comm.Get_rank()
        self.writer = self.rank == 0
        self.timeout = resolve_timeout(timeout)
        self.wait_seconds = 0.0  # time spent in collectives (the all-reduce's share of a step)

    @property
    def local(self) -> range:
        return range(self.rank, self.rank + 1)

    def _wait(self, request, what: str) -> None:
        """Poll ``request`` until it completes; past the deadline, one line and ``Abort(1)``."""
        start = time.perf_counter()
        deadline, pause = start + self.timeout, 0.0
        while not request.Test():
            now = time.perf_counter()
            if now > deadline:
                self.abort(f"rank {self.rank}: no answer from the other ranks in {what} after {self.timeout:g} s "
                           "(a rank died, stalls or diverged); ending the job")
            time.sleep(pause)
            pause = min(0.001, pause + 0.00002)
        self.wait_seconds += time.perf_counter() - start

    def abort(self, message: str, status: int = 1) -> None:
        sys.stderr.write(f"cnn: error: {message}\n")
        sys.stderr.flush()
        self.comm.Abort(status)

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        """Every rank's row (this rank's is ``rows[rank]``) in one ``Iallgather``; returns (K, nbytes)."""
        mine = np.ascontiguousarray(rows[self.rank])
        out = np.empty((self.size, mine.size), dtype=np.uint8)
        request = self.comm.Iallgather([mine, self.MPI.BYTE], [out, self.MPI.BYTE])
        self._wait(request, "the gradient all-gather")
        return out

    def barrier(self, what: str = "a barrier") -> None:
        """Wait (polled, with the timeout) until every rank is here."""
        self._wait(self.comm.Ibarrier(), what)

    def _allgather_bytes(self, data: bytes, what: str) -> list[bytes]:
        """Equal-length byte strings from every rank (lengths gathered first)."""
        size = np.array([len(data)], dtype=np.int64)
        sizes = np.empty(self.size, dtype=np.int64)
        self._wait(self.comm.Iallgather([size, self.MPI.INT64_T], [sizes, self.MPI.INT64_T]), what)
        width = int(sizes.max())
        mine = np.zeros(width, dtype=np.uint8)
        mine[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        out = np.empty((self.size, width), dtype=np.uint8)
        self._wait(self.comm.Iallgather([mine, self.MPI.BYTE], [out, self.MPI.BYTE]), what)
        return [bytes(out[r, :sizes[r]]) for r in range(self.size)]

    def agree(self, parts: dict) -> None:
        """Every rank checks that all ranks computed the same fingerprint of each part (model, data,
        options, state); on a difference every rank raises :class:`DistributedError` (rank 0 says it)."""
        names = sorted(parts)
        mine = json.dumps([parts[n] for n in names]).encode()
        everyone = [json.loads(b) for b in self._allgather_bytes(mine, "the start-of-run agreement check")]
        differing = []
        for r, theirs in enumerate(everyone[1:], start=1):
            what = [n for n, a, b in zip(names, everyone[0], theirs) if a != b]
            if what:
                differing.append(f"rank {r} ({', '.join(what)})")
        if differing:
            raise DistributedError(
                f"the MPI ranks disagree with rank 0 on the run: {'; '.join(differing)}; every rank needs the "
                "same model, data, options and seed (and, to resume, the same checkpoint)", quiet=self.rank != 0)

    def broadcast_scores(self, compute):
        """Rank 0 computes (a validation pass), every rank gets its dict of floats."""
        data = json.dumps(compute() if self.rank == 0 else None).encode()
        return json.loads(self._allgather_bytes(data, "the validation scores' broadcast")[0])

    def describe(self) -> str:
        return f"{self.size} MPI ranks"


def resolve_timeout(timeout: float | None) -> float:
    """``timeout`` when given, else :data:`TIMEOUT_ENV`, else :data:`DEFAULT_TIMEOUT`; a positive number."""
    if timeout is None:
        text = os.environ.get(TIMEOUT_ENV)
        try:
            timeout = float(text) if text else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(invalid("fit", TIMEOUT_ENV, "a number of seconds > 0", text)) from None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0 \
            or timeout != timeout or timeout == float("inf"):
        raise ValueError(invalid("fit", "mpi_timeout", "a finite number of seconds > 0", timeout))
    return float(timeout)


def make_shards(shards=None, *, timeout: float | None = None):
    """The backend of a training run: :class:`MpiShards` when the environment says this process is one of
    several MPI ranks (then ``shards`` must be None or the world size), else :class:`LocalShards` of
    ``shards`` (default 1). An object with ``local``, ``gather_rows`` ... (a backend) is returned as is."""
    if hasattr(shards, "gather_rows"):
        return shards
    world = world_size_from_env()
    if world > 1:
        if shards is not None and check_int(shards, "shards", "fit", minimum=1) != world:
            raise ValueError(invalid("fit", "shards", f"None or {world} (the number of MPI ranks: under MPI each "
                                     "rank computes one shard)", shards))
        return MpiShards(timeout)
    return LocalShards(1 if shards is None else shards)
