"""Dropout: the counter-based mask, inverted scaling, the backward, errors; PyTorch as an oracle of the
semantics that do not depend on the random stream (scaling, p = 0, p = 1, evaluation)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcnn import dropout, dropout_backward, dropout_mask
from tests.gradcheck import check_backward


def binomial_bound(n: int, p_keep: float, sigmas: float = 5.0) -> float:
    """Allowed |kept/n - p_keep|: ``sigmas`` standard deviations of a binomial proportion."""
    return sigmas * math.sqrt(p_keep * (1.0 - p_keep) / n)


# ----------------------------------------------------------------------------------------------- the mask

def test_mask_matches_the_spec_worked_example():
    # u_0..u_5 for seed 0 from specs/dropout.md: 0.8833, 0.4315, 0.0264, 0.9709, 0.1063, 0.3273
    assert dropout_mask((6,), 0.5, 0).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert dropout_mask((6,), 0.3, 0).tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_is_one_minus_p(p):
    n = 20000
    kept = dropout_mask((n,), p, 12345).mean()
    assert abs(kept - (1.0 - p)) <= binomial_bound(n, 1.0 - p), f"p={p}: kept fraction {kept}"


def test_mask_is_deterministic_and_depends_only_on_the_flat_index():
    a = dropout_mask((4, 5), 0.5, 7)
    assert np.array_equal(a, dropout_mask((4, 5), 0.5, 7))
    assert np.array_equal(a.reshape(-1), dropout_mask((20,), 0.5, 7))
    assert np.array_equal(a.reshape(-1), dropout_mask((2, 2, 5), 0.5, 7).reshape(-1))


def test_masks_of_different_seeds_are_independent():
    n, p = 20000, 0.5
    a, b = dropout_mask((n,), p, 1), dropout_mask((n,), p, 2)
    agree = float(np.mean(a == b))  # independent fair bits agree half of the time
    assert abs(agree - 0.5) <= binomial_bound(n, 0.5)


def test_neighbouring_elements_are_uncorrelated():
    n = 20001
    m = dropout_mask((n,), 0.5, 99)
    agree = float(np.mean(m[:-1] == m[1:]))
    assert abs(agree - 0.5) <= binomial_bound(n - 1, 0.5)


def test_seed_is_taken_modulo_2_pow_64():
    assert np.array_equal(dropout_mask((16,), 0.5, -1), dropout_mask((16,), 0.5, 2**64 - 1))
    assert np.array_equal(dropout_mask((16,), 0.5, 2**64 + 3), dropout_mask((16,), 0.5, 3))


def test_p_zero_keeps_all_and_p_one_drops_all():
    assert np.all(dropout_mask((5, 3), 0.0, 4) == 1.0)
    assert np.all(dropout_mask((5, 3), 1.0, 4) == 0.0)


# ----------------------------------------------------------------------------------------------- forward

@settings(max_examples=25)
@given(p=st.floats(0.0, 0.95), seed=st.integers(-(2**70), 2**70), n=st.integers(1, 12), c=st.integers(1, 3))
def test_forward_is_x_times_mask_over_keep_probability(p, seed, n, c):
    x = np.random.default_rng(abs(seed) % 1000).uniform(-10, 10, size=(n, c))
    y = dropout(x, p, seed=seed)
    m = dropout_mask(x.shape, p, seed)
    np.testing.assert_allclose(y, x * m / (1.0 - p), rtol=1e-15, atol=0)


def test_evaluation_and_p_zero_return_a_float64_copy():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for y in (dropout(x, 0.7, training=False), dropout(x, 0.0)):
        assert y.dtype == np.float64 and y is not x
        assert np.array_equal(y, x)


def test_p_one_gives_zeros():
    x = np.array([1.0, -2.0, 3.0])
    assert np.array_equal(dropout(x, 1.0, seed=5), np.zeros(3))


def test_input_is_not_changed_unless_inplace():
    x = np.array([[1.0, -2.0, 3.0, 4.0]])
    before = x.copy()
    y = dropout(x, 0.5, seed=3)
    assert np.array_equal(x, before)
    z = dropout(x, 0.5, inplace=True, seed=3)
    assert z is x and np.array_equal(x, y)


def test_inplace_on_float32_writes_x_and_returns_float64():
    x = np.array([1.0, -2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    expected = dropout(x.astype(np.float64), 0.5, seed=8)
    y = dropout(x, 0.5, inplace=True, seed=8)
    assert y.dtype == np.float64 and np.array_equal(y, expected)
    assert np.array_equal(x, expected.astype(np.float32))


# ----------------------------------------------------------------------------------------------- backward

@pytest.mark.parametrize("p,training", [(0.5, True), (0.2, True), (0.9, True), (0.5, False), (1.0, True)])
def test_backward_is_mask_times_scale(p, training):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    g = np.random.default_rng(2).standard_normal(x.shape)
    got = dropout_backward(g, x, p, training, seed=21)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    expected = g * dropout_mask(x.shape, p, 21) * scale if training else g
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.6])
def test_backward_agrees_with_finite_differences(p):
    x = np.random.default_rng(3).standard_normal((2, 2, 3))
    check_backward(dropout, dropout_backward, [x], [0], kwargs={"p": p, "seed": 5}, what=f"dropout p={p}")


# ----------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs,error,name", [
    ({"p": 1.5}, ValueError, "`p`"),
    ({"p": -0.1}, ValueError, "`p`"),
    ({"p": float("nan")}, ValueError, "`p`"),
    ({"p": "0.5"}, TypeError, "`p`"),
    ({"seed": 1.0}, TypeError, "`seed`"),
    ({"seed": True}, TypeError, "`seed`"),
    ({"training": 1}, TypeError, "`training`"),
    ({"inplace": None}, TypeError, "`inplace`"),
])
def test_invalid_hyperparameters_raise(kwargs, error, name):
    with pytest.raises(error, match=name):
        dropout(np.ones((2, 2)), **kwargs)


def test_invalid_arrays_raise():
    with pytest.raises(TypeError, match="`x`"):
        dropout([1.0, 2.0])
    with pytest.raises(TypeError, match="`x`"):
        dropout(np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"grad_out.*\(3, 2\).*\(2, 3\)"):
        dropout_backward(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        dropout_mask((2, -1), 0.5, 0)


# ----------------------------------------------------------------------------------------------- PyTorch

def test_torch_agrees_on_the_deterministic_cases_and_the_scaling():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(4).uniform(-10, 10, size=(3, 4, 5))
    xt = torch.tensor(x)
    np.testing.assert_array_equal(dropout(x, 0.4, training=False), F.dropout(xt, 0.4, training=False).numpy())
    np.testing.assert_array_equal(dropout(x, 0.0), F.dropout(xt, 0.0).numpy())
    np.testing.assert_array_equal(dropout(x, 1.0), F.dropout(xt, 1.0).numpy())
    # The streams differ, so compare what every kept element becomes: x / (1 - p) in both.
    p = 0.3
    ours, theirs = dropout(x, p, seed=1), F.dropout(xt, p).numpy()
    for y in (ours, theirs):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)


def test_torch_keep_rate_matches_ours_in_distribution():
    torch = pytest.importorskip("torch")
    n, p = 20000, 0.35
    torch.manual_seed(0)
    theirs = float((torch.nn.functional.dropout(torch.ones(n, dtype=torch.float64), p) != 0).double().mean())
    ours = float(dropout_mask((n,), p, 0).mean())
    assert abs(ours - theirs) <= 2 * binomial_bound(n, 1 - p)
