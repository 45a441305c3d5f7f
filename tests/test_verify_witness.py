"""The corner witness (verify/witness.py): a point it returns answers the query; an UNSAT query has none."""

import numpy as np
import pytest

from fvtui.verify.witness import corner_witness, margin_gradient

from test_verify_bab import meets_the_query
from test_verify_search import D, M, plain_marabou, random_net, random_query


@pytest.mark.parametrize("sizes", [(10, 12, 4), (10, 8, 6, 4)])
def test_a_witness_is_a_point_of_the_query_and_unsat_queries_have_none(sizes):
    """Random nets (one and two hidden layers), boxes and exclusions, against plain Marabou's verdict."""
    found = {"sat": 0, "unsat": 0}
    for seed in range(30):
        net, x, w, r, _, _, simple = random_query(seed, sizes, (0.02, 0.5), most_points=3)
        if simple.infeasible:
            continue
        point = corner_witness(net, x, simple.lower, simple.upper, simple.pixels, simple.centers, D, w, r, M)
        verdict = plain_marabou(net, simple, w, r).status
        if point is not None:
            assert verdict == "sat" and meets_the_query(net, point, simple, w, r), seed
            found[verdict] += 1
    assert found["sat"] >= 10 and found["unsat"] == 0  # it finds points, where there are any


def test_a_witness_steps_out_of_the_holes_the_corner_falls_in():
    """Every pixel's hole sits around the first corner's value: the witness moves each pixel to a hole's edge."""
    net = random_net((784, 16, 10), 1)
    x = np.random.default_rng(2).uniform(0.2, 0.8, 784)
    logits = net.logits(x)
    w, r = np.argsort(logits)[::-1][:2]
    lower, upper = x - 0.05, x + 0.05
    _, grad = margin_gradient(net, x, w, r)
    corner = np.where(grad > 0, upper, lower)
    pixels, centers = np.arange(784), corner.copy()
    point = corner_witness(net, x, lower, upper, pixels, centers, D, w, r, M)
    assert point is not None
    assert np.all(np.abs(point - centers) >= D - 1e-12) and np.all((point >= lower) & (point <= upper))
    assert np.allclose(np.abs(point - corner), D)  # the nearest edge inside the box: one delta in


def test_the_margin_gradient_is_the_networks():
    """Against central differences of the float64 network on a two-layer net (no ReLU at a kink there)."""
    net = random_net((6, 5, 4, 3), 0)
    x = np.random.default_rng(0).uniform(0, 1, 6)

    def margin(z):
        h = z
        for i in range(len(net.weights) - 1):
            w, b = net.layer(i)
            h = np.maximum(w @ h + b, 0)
        w, b = net.layer(-1)
        out = w @ h + b
        return out[2] - out[0]

    value, grad = margin_gradient(net, x, 0, 2)
    numeric = [(margin(x + e) - margin(x - e)) / 2e-6 for e in np.eye(6) * 1e-6]
    assert value == pytest.approx(margin(x)) and np.allclose(grad, numeric, atol=1e-6)
