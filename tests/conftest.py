"""Test configuration: Hypothesis profiles and shared fixtures."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python cli.py` and the tests work from a checkout without installing
    sys.path.insert(0, str(ROOT))

# CI: no deadlines (the machines are shared and noisy, and Numba compiles on first call), derandomized so
# that a red run can be reproduced. Every shrunk failure worth keeping becomes an @example.
settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
# The bounds-checked rerun of the fast engine's agreement tests (make test-boundscheck) needs fewer examples:
# it is looking for an out-of-bounds access on any path, not for a rare numerical disagreement.
settings.register_profile(
    "boundscheck", deadline=None, derandomize=True, max_examples=10,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng():
    """A fresh, seeded generator per test."""
    return np.random.default_rng(20261121)
