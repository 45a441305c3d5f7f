"""The `lp` point source (verify/region.py): sound, in its region, and only ever a shortcut to a SAT Marabou would give."""

import numpy as np
import pytest

from fvtui.verify import search_counterexamples
from fvtui.verify.region import RegionLP

from test_verify_search import D, M, box, check_counterexamples, plain_marabou, random_net, random_query, top2


def in_query(net, z, simple, w, r):
    """z answers the (simplified) query: box, every remaining exclusion disjunction, the runner-up ahead."""
    logits = net.logits(z.astype(np.float64))
    return (bool(np.all(z >= simple.lower - 1e-7) and np.all(z <= simple.upper + 1e-7))
            and all(abs(float(z[p]) - c) >= D - 1e-6 for p, c in zip(simple.pixels, simple.centers))
            and logits[w] - logits[r] <= -M + 1e-6)


@pytest.mark.parametrize("seed", range(16))
def test_a_region_point_answers_the_query_and_marabou_agrees_it_is_sat(seed):
    """Random nets (one and two hidden layers), boxes, exclusions and anchors: a proposed point lies in
    the query and in its anchor's region; whenever plain Marabou says UNSAT, nothing is proposed."""
    net, x, w, r, lower, upper, simple = random_query(seed, (10, 8, 6, 4) if seed % 2 else (10, 12, 4), (0.05, 0.5))
    if simple.infeasible:
        return
    plain = plain_marabou(net, simple, w, r)
    region = RegionLP(net, w, r, M)
    anchors = [x] + ([np.clip(plain.x, lower, upper)] if plain.status == "sat" else [])
    for anchor in anchors:
        z = region.propose(anchor, simple.lower, simple.upper, simple.pixels, simple.centers, D, 10)
        if plain.status == "unsat":
            assert z is None
        elif z is not None:
            assert z.dtype == np.float32 and in_query(net, z, simple, w, r)
    if plain.status == "sat":  # Marabou's own point's region holds that point: the program cannot miss it
        assert region.propose(anchors[-1], simple.lower, simple.upper, simple.pixels, simple.centers, D, 10) \
            is not None or not in_query(net, anchors[-1].astype(np.float32), simple, w, r)


def in_region_up_to_ties(net, z, anchor):
    """Every hidden unit of z has the anchor's phase, a pre-activation at 0 (the region's face) counting as either."""
    a, b = np.asarray(anchor, np.float64), np.asarray(z, np.float64)
    for wt, bias in zip(net.weights[:-1], net.biases[:-1]):
        pa, pb = wt.astype(np.float64) @ a + bias, wt.astype(np.float64) @ b + bias
        if np.any((pa > 0) & (pb < -1e-5)) or np.any((pa <= 0) & (pb > 1e-5)):
            return False
        a, b = np.maximum(pa, 0), np.maximum(pb, 0)
    return True


def test_region_points_stay_in_the_anchors_region(monkeypatch):
    import fvtui.verify.region as region_module

    monkeypatch.setattr(region_module, "WALK", 0)  # the anchor's own region only
    rng = np.random.default_rng(5)
    net = random_net((20, 16, 12, 5), 5)
    x = rng.uniform(0.2, 0.8, 20).astype(np.float32)
    w, r = top2(net, x)
    region = RegionLP(net, w, r, M)
    lower, upper = box(x, 0.4)
    hits = 0
    for _ in range(20):
        anchor = rng.uniform(lower, upper).astype(np.float32)
        z = region.propose(anchor, lower, upper, np.zeros(0, np.int64), np.zeros(0), D, 10)
        if z is not None:
            hits += 1
            assert in_region_up_to_ties(net, z, anchor)
            logits = net.logits(z.astype(np.float64))
            assert logits[w] - logits[r] <= -M + 1e-6
    assert hits >= 3  # the test means something: regions with a counterexample were met


def test_lp_search_keeps_the_protocol_rules_and_marks_its_points(mnist_like_lp):
    """k points, each in its eps box, delta away from every earlier one in every pixel, the runner-up
    ahead; the first from x's own region or Marabou, the rest (the same region, warm) from the program."""
    net, x = mnist_like_lp
    w, r = top2(net, x)
    result = search_counterexamples(net, x, w, r, k=6, eps_start=0.01, eps_step=0.02, timeout=20, points="lp")
    assert result.status == "sat" and len(result.counterexamples) == 6
    check_counterexamples(net, x, w, r, result)
    sources = [ce.source for ce in result.counterexamples]
    assert set(sources) <= {"lp", "marabou"} and sources.count("lp") >= 4
    sat = [q for q in result.queries if q.status == "sat"]
    assert [q.lp for q in sat] == [s == "lp" for s in sources]
    for ce in result.counterexamples:
        logits = net.logits(ce.x.astype(np.float64))
        assert logits[w] - logits[r] <= -M + 1e-6


def test_the_default_search_never_asks_the_program(monkeypatch, mnist_like_lp):
    import fvtui.verify.region as region

    def fail(*args, **kwargs):
        raise AssertionError("the default mode asked the region program")

    monkeypatch.setattr(region.RegionLP, "propose", fail)
    net, x = mnist_like_lp
    w, r = top2(net, x)
    result = search_counterexamples(net, x, w, r, k=3, eps_start=0.01, eps_step=0.02, timeout=20)
    assert [ce.source for ce in result.counterexamples] == ["marabou"] * 3


def test_an_unsat_level_goes_to_marabou_in_lp_mode_too():
    """A network no input can flip: every level is UNSAT, the program proposes nothing, Marabou says so."""
    net = random_net((6, 4, 3), 0)
    w_last = np.zeros((3, 4), np.float32)
    b_last = np.array([1.0, 0.0, 0.0], np.float32)
    from fvtui.verify import Network

    fixed = Network((net.weights[0], w_last), (net.biases[0], b_last))
    x = np.full(6, 0.5, np.float32)
    result = search_counterexamples(fixed, x, 0, 1, k=2, eps_start=0.4, eps_step=0.3, timeout=10, points="lp")
    assert result.status == "exhausted" and not result.counterexamples
    assert [q.eps for q in result.queries] == [0.4, 0.7, 1.0]  # every level, up to eps = 1
    assert all(q.status == "unsat" for q in result.queries) and not any(q.lp for q in result.queries)


@pytest.fixture(scope="module")
def mnist_like_lp():
    net = random_net((784, 16, 10), 1)
    x = np.random.default_rng(2).uniform(0, 1, 784).astype(np.float32)
    return net, x


def test_when_the_anchors_region_has_none_the_walk_tries_the_steepest_box_vertex_next(monkeypatch):
    """A random+fv search's first query starts from x, whose own region rarely holds a counterexample:
    the next region tried is that of the box vertex minimising the margin's gradient in x's region."""
    net, x = random_net((784, 16, 10), 1), np.random.default_rng(2).uniform(0, 1, 784).astype(np.float32)
    w, r = top2(net, x)
    lower, upper = box(x, 0.03)
    region = RegionLP(net, w, r, M)
    tried = []
    monkeypatch.setattr(region, "_solve_in", lambda on, lo, hi, limit: tried.append(on.copy()))
    assert region.propose(x, lower, upper, np.zeros(0, np.int64), np.zeros(0), D, 10) is None
    w1, b1 = net.weights[0].astype(np.float64), net.biases[0].astype(np.float64)
    on = w1 @ x + b1 > 0
    margin_gradient = ((net.weights[1][w] - net.weights[1][r]) * on) @ w1
    vertex = np.where(margin_gradient > 0, lower, upper)
    assert len(tried) == 3 and np.array_equal(tried[0], on)
    assert np.array_equal(tried[1], w1 @ vertex + b1 > 0) and not np.array_equal(tried[1], on)


def test_a_warm_program_keeps_its_whole_time_limit_every_run():
    """HiGHS compares time_limit with the sum of an object's runs: before highs.run_for, once a search's
    program had run 0.1 s in total, most later queries stopped at once and went on to Marabou."""
    net, x = random_net((784, 64, 10), 1), np.random.default_rng(2).uniform(0, 1, 784).astype(np.float32)
    w, r = top2(net, x)
    found = search_counterexamples(net, x, w, r, k=3, eps_start=0.01, eps_step=0.02, timeout=20)
    lower, upper = box(x, found.final_eps)
    region = RegionLP(net, w, r, M)
    anchors = [ce.x for ce in found.counterexamples]  # their regions in turn: every run does real work

    def answers():
        return [region.propose(a, lower, upper, np.zeros(0, np.int64), np.zeros(0), D, 0.1) is not None
                for a in anchors]

    first = answers()
    assert any(first)
    while region._highs.getRunTime() < 0.5:
        assert answers() == first
