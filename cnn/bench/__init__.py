"""Benchmarks: ``cnn bench ops``, ``cnn bench train`` and ``cnn bench startup``, one module each.

Speed is measured, not tested: these commands print what each engine does on this machine, and the test
suite only checks the structure of what they return. Every measurement is a function returning data
(a dict of ``environment``, ``rows`` and ``notes``); renderers turn it into a table, ``--json`` prints it
as is. The click commands are in ``cnn/cli/bench.py``; nothing here imports click.

* :mod:`~cnn.bench.ops`: forward and backward of fastcnn's convolution and max pooling against PyTorch (same
  threads, float32, NCHW) and against refcnn (on scaled-down shapes), the engines interleaved in one process,
  median of repeated runs.
* :mod:`~cnn.bench.train`: training steps and inference of a preset (the seeds' Keras model ``keras-mnist``
  unless ``--model`` names another, e.g. the CIFAR ResNet-20 ``resnet20-28``; ``--profile``: time per layer
  type, :mod:`cnn.profiling`; ``--augment``: fastcnn's steps on augmented batches and the augmentation's own
  time; ``--optimizer``: the same optimizer in every engine; ``--load N``: N busy processes beside them,
  :mod:`~cnn.bench.load`)
  with fastcnn (:class:`cnn.Model`), with an equivalent ``torch.nn`` model (:mod:`~cnn.bench.torch_twin`)
  and, when Keras 3 is installed, with a Keras twin (:mod:`~cnn.bench.keras_twin`), each engine in its own
  child process so that its peak resident memory is its own; ``--data random:CxHxW:CLASSES`` for seeded
  synthetic batches.
* :mod:`~cnn.bench.startup`: the cold compile time of fastcnn's kernels (a fresh, empty ``NUMBA_CACHE_DIR``)
  and the time from process start to the first result once that cache is warm.

Shared by the three: :mod:`~cnn.bench.machine` (machine, versions and settings: every result's
``environment`` and every table's header lines), :mod:`~cnn.bench.timing` (interleaved medians, peak memory),
:mod:`~cnn.bench.tables` (the text table) and :mod:`~cnn.bench.child` (child processes:
``python -m cnn.bench --child SPEC`` prints one JSON line).

Ratios always read "above 1: fastcnn is better": ``torch_time / fastcnn_time`` for ops, ``fastcnn images/s /
torch images/s`` for training (images/s from the median step), and against the best peer of each
column. FLOPs count 2 per multiply-accumulate (``specs/counting.md``); a
convolution's backward (input and weight gradients) counts twice the forward's MACs.
"""

from .machine import environment, numba_threading_layer
from .ops import (DIRECTIONS, OPS_CASES, OPS_NOTES, Conv1dCase, ConvCase, MaxPoolCase, measure_ops, ops_row, render_ops,
                  select_cases)
from .startup import (BASELINE_CODE, FIRST_RESULT_CODE, IMPORT_CODE, NUMBA_FLOOR_SCRIPT, measure_startup,
                      render_startup)
from .timing import interleaved_medians
from .torch_twin import TorchTwinError, torch_model
from .load import MAX_LOAD, background_load
from .ratios import MAX_ROUNDS, best_peer_summary, check_rounds, train_summary
from .train import (OPTIMIZER, OPTIMIZERS, PRESET, SYNTHETIC, WARMUP, check_optimizer, check_train_model,
                    check_train_sizes, is_synthetic, measure_train, parse_synthetic, render_train)

__all__ = [
    "ConvCase", "Conv1dCase", "MaxPoolCase", "OPS_CASES", "DIRECTIONS", "OPS_NOTES", "select_cases", "environment",
    "numba_threading_layer", "interleaved_medians", "ops_row", "measure_ops", "render_ops", "TorchTwinError",
    "torch_model", "PRESET", "SYNTHETIC", "is_synthetic", "parse_synthetic",
    "check_train_model", "check_train_sizes", "measure_train", "train_summary", "render_train",
    "OPTIMIZER", "OPTIMIZERS", "WARMUP", "best_peer_summary", "check_optimizer", "MAX_LOAD", "background_load",
    "MAX_ROUNDS", "check_rounds",
    "FIRST_RESULT_CODE", "IMPORT_CODE",
    "BASELINE_CODE", "NUMBA_FLOOR_SCRIPT", "measure_startup", "render_startup",
]
