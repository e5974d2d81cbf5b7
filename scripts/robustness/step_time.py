"""Median time of one training step of the seeds' model (keras-mnist, batch 128, fastcnn): run it in two
checkouts, alternating, to compare them (e.g. before and after a change to the argument checks).

    python scripts/robustness/step_time.py          # from the repository root
    python scripts/robustness/step_time.py profile  # and a cProfile of ten steps
"""
import cProfile
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.getcwd())
import cnn  # noqa: E402
from cnnbase import netspec  # noqa: E402

model = cnn.Model(list(netspec.PRESETS["keras-mnist"].layers), (1, 28, 28), seed=0)
x = np.random.default_rng(0).random((128, 1, 28, 28), dtype=np.float32)
y = np.arange(128) % 10
times = []
for _ in range(25):
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)  # one batch: one step plus fit's own set-up
    times.append(time.perf_counter() - start)
print(f"keras-mnist: median fit of one batch of 128: {1000 * sorted(times)[len(times) // 2]:.1f} ms")
if len(sys.argv) > 1:
    cProfile.run("for _ in range(10): model.fit(x, y, epochs=1, batch_size=128, verbose=0)", "/tmp/step_time.prof")
    pstats.Stats("/tmp/step_time.prof").sort_stats("tottime").print_stats(12)
