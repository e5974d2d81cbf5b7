"""Data-parallel training speed: images/s of the sharded step, and the cost of the gradient exchange.

One process::

    python benchmarks/mpi_bench.py --threads 2                 # 1 rank x 2 threads
    python benchmarks/mpi_bench.py --threads 1 --shards 2      # the 2-shard step in one process

Under MPI (every rank runs it; rank 0 prints)::

    mpiexec -n 2 python benchmarks/mpi_bench.py --threads 1    # 2 ranks x 1 thread

Prints one JSON line: images/s over ``--batches`` timed steps (after ``--warmup`` untimed ones, which compile),
the seconds per step spent waiting in the exchange (the all-gather, including waiting for the slower rank),
and, under MPI, the time of the exchange alone: the all-gather and in-order sum of the model's P gradients,
measured after a barrier so that no rank waits for another's compute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cnn import distributed, train  # noqa: E402
from cnn.model import Model  # noqa: E402
from cnn.optimizers import make_optimizer  # noqa: E402
from cnn.threads import set_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="keras-mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--exchanges", type=int, default=20)
    args = parser.parse_args()

    set_threads(args.threads)
    shards = distributed.make_shards(args.shards)
    model = Model(args.model, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size,) + model.input_shape).astype(np.float32)
    y = rng.integers(0, 10, args.batch_size)
    optimizer = make_optimizer("adam")

    def load(start, stop):
        return x[start:stop], y[start:stop]

    def step(t):
        return train.sharded_step(model, optimizer, load, args.batch_size, step=t, lr=optimizer.lr, shards=shards)

    for t in range(args.warmup):
        step(t)
    shards.barrier("the benchmark's start")
    waited = getattr(shards, "wait_seconds", 0.0)
    start = time.perf_counter()
    for t in range(args.batches):
        step(args.warmup + t)
    seconds = time.perf_counter() - start
    waited = getattr(shards, "wait_seconds", 0.0) - waited

    result = {"model": args.model, "params": sum(a.size for _, layer, p in model.parameters(trainable_only=True)
                                                 for a in [layer.params[p]]),
              "ranks": shards.size if isinstance(shards, distributed.MpiShards) else 1,
              "shards": shards.size, "threads": args.threads, "batch_size": args.batch_size,
              "batches": args.batches, "images_per_second": args.batches * args.batch_size / seconds,
              "ms_per_step": 1e3 * seconds / args.batches,
              "ms_waiting_in_exchange_per_step": 1e3 * waited / args.batches,
              "load_average": os.getloadavg()[0]}
    if isinstance(shards, distributed.MpiShards):
        result["ms_exchange_alone"] = exchange_ms(model, shards, args.exchanges)
    if shards.writer:
        print(json.dumps(result), flush=True)


def exchange_ms(model, shards, repeats: int) -> float:
    """Median ms of one all-gather of the gradient rows plus their sum in rank order, ranks in step."""
    layout = train._ShardLayout(model)
    rows = np.zeros((shards.size, layout.nbytes), dtype=np.uint8)
    times = []
    for _ in range(repeats):
        shards.barrier("the exchange benchmark")
        start = time.perf_counter()
        gathered = shards.gather_rows(rows)
        distributed.sum_in_order(layout.floats_of(gathered)[:, :layout.grad_size])
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


if __name__ == "__main__":
    main()
