"""fastcnn loads GNU OpenMP with sleeping waiters (fastcnn/_runtime.py, docs/threads.md; issue 16 item 4).

Each case runs a fresh interpreter: libgomp reads its settings once, when it loads. What libgomp itself says
it runs with is read from its own report (``OMP_DISPLAY_ENV=true`` makes it print its settings to stderr
when it loads, gcc.gnu.org/onlinedocs/libgomp/OMP_005fDISPLAY_005fENV.html), not from fastcnn.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Imports fastcnn, runs one parallel kernel, prints what fastcnn decided, whether OMP_WAIT_POLICY is in the
#: environment afterwards, Numba's layer, and the libgomp files mapped (torch's own copy, libgomp-<hash>, aside).
PROBE = """
import json, os
import numpy as np
import fastcnn, numba
from fastcnn import _runtime
fastcnn.relu(np.ones(1 << 16, np.float32))
maps = {line.split()[-1] for line in open('/proc/self/maps') if 'libgomp' in line and 'libgomp-' not in line}
print(json.dumps({'settings': _runtime.openmp_wait_settings(), 'env': os.environ.get('OMP_WAIT_POLICY'),
                  'layer': numba.threading_layer(), 'libgomp': sorted(maps)}))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP on Linux only")


def _probe(**env):
    """Run :data:`PROBE` with ``env`` on top of a clean environment (no OpenMP variables of the caller's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "NUMBA_THREADING"))}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600,
                          env={**base, "PYTHONPATH": str(ROOT), "OMP_DISPLAY_ENV": "true", **env}, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def test_openmp_runs_with_passive_waiters_and_the_environment_is_left_as_it_was():
    result, output = _probe()
    if result["layer"] != "omp":
        pytest.skip(f"Numba chose {result['layer']}, not OpenMP")
    assert result["settings"] == {"applied": {"OMP_WAIT_POLICY": "passive"}}
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in output  # libgomp's own report
    assert result["env"] is None  # children and other libraries see the user's environment
    assert len(result["libgomp"]) == 1  # the one fastcnn loaded is the one Numba's kernels use


def test_a_users_own_openmp_setting_wins():
    result, output = _probe(OMP_WAIT_POLICY="active")
    assert result["settings"] == {"skipped": "set by the user: OMP_WAIT_POLICY=active"}
    if result["layer"] == "omp":
        assert "OMP_WAIT_POLICY = 'ACTIVE'" in output


def test_another_threading_layer_is_left_alone():
    result, _ = _probe(NUMBA_THREADING_LAYER="workqueue")
    assert result["settings"] == {"skipped": "NUMBA_THREADING_LAYER=workqueue"}
    assert result["layer"] == "workqueue" and result["libgomp"] == []
