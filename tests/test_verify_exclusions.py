"""The exclusion simplification: every disjunction becomes a bound, disappears, or stays two-sided."""

import numpy as np

from fvtui.verify.exclusions import simplify_exclusions

D = 0.001


def test_side_outside_the_box_becomes_a_bound():
    # a - delta below the lower bound: only x >= a + delta is possible
    s = simplify_exclusions([0.0], [0.1], [[0.0]], D)
    assert not s.infeasible
    assert s.lower[0] == D and s.upper[0] == 0.1
    assert s.pixels.size == 0
    # symmetric at the upper bound
    s = simplify_exclusions([0.5], [1.0], [[1.0]], D)
    assert s.lower[0] == 0.5 and s.upper[0] == 1.0 - D
    assert s.pixels.size == 0


def test_implied_disjunction_is_dropped_and_box_kept():
    s = simplify_exclusions([0.2, 0.2], [0.3, 0.3], [[0.5, 0.1]], D)
    assert not s.infeasible
    np.testing.assert_array_equal(s.lower, [0.2, 0.2])
    np.testing.assert_array_equal(s.upper, [0.3, 0.3])
    assert s.pixels.size == 0


def test_two_sided_disjunction_stays():
    s = simplify_exclusions([0.0, 0.0], [1.0, 0.05], [[0.5, 0.5]], D)
    # pixel 0: both sides fit; pixel 1: the box lies below a - delta, implied
    np.testing.assert_array_equal(s.pixels, [0])
    np.testing.assert_allclose(s.centers, [0.5])
    np.testing.assert_array_equal(s.lower, [0.0, 0.0])


def test_neither_side_fits_is_infeasible():
    # the box [0.4995, 0.5005] lies inside the excluded slab around 0.5
    assert simplify_exclusions([0.0, 0.4995], [1.0, 0.5005], [[0.5, 0.5]], D).infeasible


def test_fixpoint_across_two_counterexamples_on_one_pixel():
    # box [0, 0.0015]; a=0 forces x >= 0.001; then a=0.0012 leaves neither side -> infeasible,
    # which only shows once the first bound is applied.
    assert simplify_exclusions([0.0], [0.0015], [[0.0], [0.0012]], D).infeasible
    # box [0, 0.1]; a=0 forces x >= 0.001, which pushes a=0.0015 (two-sided before) to x >= 0.0025
    s = simplify_exclusions([0.0], [0.1], [[0.0015], [0.0]], D)
    assert not s.infeasible
    np.testing.assert_allclose(s.lower, [0.0025])
    assert s.pixels.size == 0


def test_chain_of_bounds_converges():
    points = [[0.0015 * j] for j in reversed(range(10))]  # each bound unlocks the next one
    s = simplify_exclusions([0.0], [1.0], points, D)
    np.testing.assert_allclose(s.lower, [0.0145])
    assert s.pixels.size == 0


def test_no_points_keeps_box():
    s = simplify_exclusions(np.zeros(3), np.ones(3), np.zeros((0, 3)), D)
    assert not s.infeasible and s.pixels.size == 0
    np.testing.assert_array_equal(s.upper, np.ones(3))


def test_simplified_box_allows_exactly_the_points_the_literal_exclusions_allow():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = 3, int(rng.integers(1, 4))
        x = rng.uniform(0, 1, n)
        eps = rng.uniform(0.0005, 0.004)
        lo, up = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
        pts = np.clip(x + rng.uniform(-0.004, 0.004, (m, n)), 0, 1)
        s = simplify_exclusions(lo, up, pts, D)
        grid = lo + (up - lo) * rng.uniform(0, 1, (400, n))
        literal = ((grid[:, None, :] <= pts - D) | (grid[:, None, :] >= pts + D)).all(axis=(1, 2))
        if s.infeasible:
            assert not literal.any()
            continue
        simple = ((grid >= s.lower) & (grid <= s.upper)).all(axis=1)
        for i, a in zip(s.pixels, s.centers):
            simple &= (grid[:, i] <= a - D) | (grid[:, i] >= a + D)
        np.testing.assert_array_equal(simple, literal)
