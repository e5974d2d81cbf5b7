"""Finite-difference gradient checks in float64.

For an op ``y = f(a_1, ..., a_m)`` and a random ``grad_out`` ``g`` of y's shape, the scalar
``L = sum(g * y)`` has ``dL/da_i = <op>_backward(g, a_1, ..., a_m)[i]``. Central differences
``(L(a + eps e_j) - L(a - eps e_j)) / (2 eps)`` estimate each element with error ``O(eps^2)``.
"""

from __future__ import annotations

import numpy as np


def finite_difference(loss, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``loss()`` with respect to ``x`` (perturbed in place, then restored)."""
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = loss()
        x[idx] = old - eps
        down = loss()
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def assert_close(actual, expected, *, atol: float, rtol: float, what: str) -> None:
    """Compare two arrays; on failure name the worst element, its values and the error."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if actual.size == 0:
        return
    # Matching NaNs and equal infinities agree; anything else non-finite is an error of infinite size.
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    err = np.where(same, 0.0, np.abs(actual - expected))
    err = np.where(np.isnan(err), np.inf, err)
    bound = atol + rtol * np.where(np.isfinite(expected), np.abs(expected), 0.0)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"{what}: largest excess error at index {tuple(int(i) for i in worst)}: got {actual[worst]!r}, "
        f"expected {expected[worst]!r} (|diff| {err[worst]:.3e}, allowed {bound[worst]:.3e}); "
        f"max |diff| over all {err.max():.3e}"
    )


def check_backward(forward, backward, arrays, differentiable, *, kwargs=None, seed=0,
                   eps=1e-6, atol=1e-6, rtol=1e-5, what="") -> None:
    """Compare ``backward``'s gradients of ``arrays[i]`` (for each ``i`` in ``differentiable``) with finite
    differences of ``sum(grad_out * forward(*arrays, **kwargs))``.

    ``backward`` returns one array or a tuple of gradients in the order of ``differentiable``.
    Arrays are float64 and are perturbed in place (callers pass copies they do not need).
    """
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed)
    out = forward(*arrays, **kwargs)
    grad_out = rng.standard_normal(np.shape(out))
    if np.ndim(out) == 0:
        grad_out = float(grad_out)
    analytic = backward(grad_out, *arrays, **kwargs)
    if not isinstance(analytic, tuple):
        analytic = (analytic,)
    assert len(analytic) >= len(differentiable), f"{what}: backward returned {len(analytic)} gradients"

    def loss():
        return float(np.sum(grad_out * forward(*arrays, **kwargs)))

    for k, i in enumerate(differentiable):
        numeric = finite_difference(loss, arrays[i], eps)
        assert_close(analytic[k], numeric, atol=atol, rtol=rtol, what=f"{what} gradient of argument {i}")
