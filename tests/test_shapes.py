"""Properties of the shape module (cnnbase.shapes), checked against brute-force counting."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbase import shapes
from cnnbase.shapes import ShapeError


def count_windows(n, k, s, p_b, p_e, d, ceil_mode):
    """Count window starts by walking them one by one: the definition the formula must match.

    Floor mode: every start whose whole window lies in the padded input [-p_b, n + p_e).
    Ceil mode also keeps a window that runs past the end padding by fewer than s cells (the ceiling of the
    division), provided it starts inside the input or the begin padding (start < n).
    """
    count, start = 0, -p_b
    while True:
        overrun = start + d * (k - 1) + 1 - (n + p_e)  # cells past the end of the padded input
        if overrun > 0 and not (ceil_mode and overrun < s and start < n):
            break
        count += 1
        start += s
    return count


hyper = st.fixed_dictionaries({
    "n": st.integers(1, 40), "k": st.integers(1, 7), "s": st.integers(1, 5),
    "p_b": st.integers(0, 6), "p_e": st.integers(0, 6), "d": st.integers(1, 4),
})


@given(hyper)
def test_output_size_counts_window_positions_floor(h):
    n, k, s, p_b, p_e, d = h["n"], h["k"], h["s"], h["p_b"], h["p_e"], h["d"]
    expected = count_windows(n, k, s, p_b, p_e, d, ceil_mode=False)
    if expected == 0:
        with pytest.raises(ShapeError, match="less than 1"):
            shapes.conv_output_size(n, k, s, p_b, p_e, d)
    else:
        assert shapes.conv_output_size(n, k, s, p_b, p_e, d) == expected


@given(hyper)
def test_output_size_counts_window_positions_ceil(h):
    n, k, s, p_b, p_e, d = h["n"], h["k"], h["s"], h["p_b"], h["p_e"], h["d"]
    if n + p_b + p_e < d * (k - 1) + 1:
        return  # no window fits at all: the floor-mode test covers the error
    assert shapes.conv_output_size(n, k, s, p_b, p_e, d, ceil_mode=True) == count_windows(n, k, s, p_b, p_e, d, True)


@given(hyper)
def test_ceil_mode_matches_pytorch_formula_where_pytorch_applies(h):
    """PyTorch: out = ceil(...) + 1, then out -= 1 if (out-1)*s >= n + p_b; it allows p <= k/2 only."""
    n, k, s, p_b, d = h["n"], h["k"], h["s"], h["p_b"], h["d"]
    if 2 * p_b > k or n + 2 * p_b < d * (k - 1) + 1:
        return
    out = -(-(n + 2 * p_b - d * (k - 1) - 1) // s) + 1
    if (out - 1) * s >= n + p_b:
        out -= 1
    assert shapes.conv_output_size(n, k, s, p_b, p_b, d, ceil_mode=True) == out


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 4), st.booleans())
def test_same_padding_gives_ceil_n_over_s(n, k, s, d, lower):
    p_b, p_e = shapes.same_padding(n, k, s, d, lower)
    assert shapes.conv_output_size(n, k, s, p_b, p_e, d) == -(-n // s)
    assert abs(p_b - p_e) <= 1
    assert (p_b >= p_e) if lower else (p_e >= p_b)


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 4))
def test_same_padding_is_minimal(n, k, s, d):
    """One cell less of padding would lose an output position."""
    p_b, p_e = shapes.same_padding(n, k, s, d)
    total = p_b + p_e
    if total > 0:
        extent = d * (k - 1) + 1
        fewer = n + total - 1 - extent
        assert fewer < 0 or fewer // s + 1 < -(-n // s)


def test_resolve_padding_forms():
    sizes, kernel, stride, dil = (5, 6), (3, 4), (1, 2), (1, 1)
    resolve = lambda p: shapes.resolve_padding(p, sizes, kernel, stride, dil, op="conv2d")  # noqa: E731
    assert resolve(2) == ((2, 2), (2, 2))
    assert resolve((1, 2)) == ((1, 1), (2, 2))
    assert resolve(((0, 1), (2, 0))) == ((0, 1), (2, 0))
    assert resolve([[0, 1], [2, 0]]) == ((0, 1), (2, 0))
    assert resolve("valid") == ((0, 0), (0, 0))
    assert resolve("same") == ((1, 1), (1, 1))
    assert shapes.resolve_padding("same", (5,), (2,), (1,), (1,)) == ((0, 1),)
    assert shapes.resolve_padding("same_lower", (5,), (2,), (1,), (1,)) == ((1, 0),)


@pytest.mark.parametrize("bad", [-1, (1,), (1, 2, 3), ((1, 1), 2), ((1, -1), (0, 0)), "full", 1.5, True, None,
                                 ((1, 2, 3), (0, 0))])
def test_resolve_padding_rejects(bad):
    with pytest.raises(ValueError, match=r"conv2d: invalid value for argument `padding`.*Received padding="):
        shapes.resolve_padding(bad, (5, 5), (3, 3), (1, 1), (1, 1), op="conv2d")


def test_transpose_inverts_conv_size():
    """A transposed conv maps the conv's output size back to its input size, for the matching output_padding."""
    for n in range(3, 20):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                for p in (0, 1):
                    if n + 2 * p < k:
                        continue
                    out = shapes.conv_output_size(n, k, s, p, p)
                    back = shapes.conv_transpose_output_size(out, k, s, p, p, 1, (n + 2 * p - k) % s)
                    assert back == n


def brute_receptive_field(layers, n=64):
    """Input cells (of a 1-D network input of size n) that output unit 0 depends on, by walking windows."""
    reach = {0}
    for k, s, d, p_b in reversed(layers):
        reach = {o * s - p_b + j * d for o in reach for j in range(k)}
    return min(reach), max(reach) - min(reach) + 1


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2)),
                min_size=1, max_size=5))
def test_receptive_field_matches_brute_force(layers):
    rf, jump, begin = 1, 1, 0
    for k, s, d, p_b in layers:
        rf, jump, begin = shapes.receptive_field_step(rf, jump, begin, k, s, d, p_b)
    assert (begin, rf) == brute_receptive_field(layers)


def test_first_empty_window():
    # n=2, k=2, d=3: window starting at -1 reads -1 and 2, both outside [0, 2)
    assert shapes.first_empty_window(2, 2, 1, 1, 3, 1) == 0
    assert shapes.first_empty_window(4, 2, 2, 1, 1, 3) is None
    # padding 3 on n=1 with k=2: window 0 reads -3, -2
    assert shapes.first_empty_window(1, 2, 1, 3, 1, 6) == 0


def walk_to_first_empty_window(n, k, s, p_b, d, out):
    """The definition: look at the windows one by one, tap by tap."""
    for o in range(out):
        if not any(0 <= o * s - p_b + j * d < n for j in range(k)):
            return o
    return None


@given(st.integers(1, 12), st.integers(1, 6), st.integers(1, 6), st.integers(0, 20), st.integers(1, 8),
       st.integers(0, 30))
def test_first_empty_window_is_the_first_window_that_misses_the_input(n, k, s, p_b, d, out):
    assert shapes.first_empty_window(n, k, s, p_b, d, out) == walk_to_first_empty_window(n, k, s, p_b, d, out)


def test_first_empty_window_is_solved_not_searched():
    """Issue 10: `cnn shape maxpool2 --input 1x10**12x1` walked 5*10**11 windows (hours); now it is a formula."""
    assert shapes.first_empty_window(10**12, 2, 2, 0, 1, 5 * 10**11) is None
    assert shapes.first_empty_window(10**12, 2, 2, 1, 1, 5 * 10**11 + 2) == 5 * 10**11 + 1


def test_costs():
    # the seed model's first layer: 32 filters 3x3 on 1 channel: 32*9 + 32 = 320 parameters (Keras)
    assert shapes.conv_params(1, 32, (3, 3)) == 320
    assert shapes.conv_params(32, 64, (3, 3)) == 18_496
    assert shapes.linear_params(1600, 128) == 204_928
    assert shapes.conv_params(8, 8, (3, 3), groups=8, bias=False) == 72
    assert shapes.conv_macs(1, 32, (3, 3), (26, 26)) == 26 * 26 * 32 * 9
