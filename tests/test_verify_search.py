"""The solver-side algorithms, run in-process on small numpy networks."""

import subprocess
import sys
import time

import numpy as np
import pytest

from fvtui.verify import Network, certified_radius, search_counterexamples, verify_sample
from fvtui.verify.exclusions import simplify_exclusions
from fvtui.verify.query import build_query, encode_layers, solve

D = M = 0.001
TOL = 1e-6  # float32 rounding of solver values


def random_net(sizes, seed):
    rng = np.random.default_rng(seed)
    ws = tuple((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in zip(sizes, sizes[1:]))
    bs = tuple(rng.standard_normal(o).astype(np.float32) * 0.1 for o in sizes[1:-1]) + (None,)
    return Network(ws, bs)


def top2(net, x):
    order = np.argsort(-net.logits(x))
    return int(order[0]), int(order[1])


def box(x, eps):
    return np.clip(x.astype(np.float64) - eps, 0, 1), np.clip(x.astype(np.float64) + eps, 0, 1)


def random_query(seed, sizes, eps=(0.02, 0.4), most_points=2):
    """A random net, input x, its top two classes, and x's box with up to most_points random exclusions,
    simplified. -> (net, x, w, r, lower, upper, simplified)"""
    rng = np.random.default_rng(seed)
    net = random_net(sizes, seed)
    x = rng.uniform(0.1, 0.9, sizes[0]).astype(np.float32)
    w, r = top2(net, x)
    lower, upper = box(x, float(rng.uniform(*eps)))
    points = rng.uniform(lower, upper, (int(rng.integers(0, most_points + 1)), sizes[0]))
    return net, x, w, r, lower, upper, simplify_exclusions(lower, upper, points, D)


def plain_marabou(net, simple, w, r):
    """Marabou on the literal query (no folding): the verdict every shortcut must match."""
    plain = solve(build_query(net, simple.lower, simple.upper, w, [r], M, simple.pixels, simple.centers, D,
                              fold=False), net.input_size, 30)
    assert plain.status in ("sat", "unsat")
    return plain


@pytest.fixture(scope="module")
def mnist_like():
    net = random_net((784, 16, 10), 1)
    x = np.random.default_rng(2).uniform(0, 1, 784).astype(np.float32)
    return net, x


def check_counterexamples(net, x, w, r, result, delta=D):
    earlier = []
    for ce in result.counterexamples:
        lo, up = box(x, ce.eps)
        assert ce.x.dtype == np.float32 and ce.x.shape == x.shape
        assert np.all(ce.x >= lo - TOL) and np.all(ce.x <= up + TOL), "outside its eps box"
        assert net.predict(ce.x) != w and ce.predicted == net.predict(ce.x)
        if ce.source == "marabou":
            logits = net.logits(ce.x)
            assert logits[w] - logits[r] <= -M + 1e-4, "runner-up does not beat the winner"
        for a in earlier:
            assert np.abs(ce.x - a).min() >= delta - TOL, "closer than delta to an earlier one in some pixel"
        earlier.append(ce.x)


def test_search_finds_k_distinct_counterexamples_in_their_boxes(mnist_like):
    net, x = mnist_like
    w, r = top2(net, x)
    result = search_counterexamples(net, x, w, r, k=5, eps_start=0.01, eps_step=0.02, timeout=20)
    assert result.status == "sat", result
    assert len(result.counterexamples) == 5
    assert all(ce.source == "marabou" for ce in result.counterexamples)
    check_counterexamples(net, x, w, r, result)
    assert [q.status for q in result.queries].count("sat") == 5
    eps = [q.eps for q in result.queries]
    assert eps == sorted(eps) and eps[0] == 0.01
    assert result.final_eps == result.counterexamples[-1].eps


def test_seed_counts_toward_k_and_is_excluded(mnist_like):
    net, x = mnist_like
    w, r = top2(net, x)
    first = search_counterexamples(net, x, w, r, k=1, eps_start=0.01, eps_step=0.02, timeout=20)
    seed = first.counterexamples[0].x
    events = []
    result = search_counterexamples(
        net, x, w, r, k=3, eps_start=0.01, eps_step=0.02, timeout=20, seeds=[seed], report=lambda *e: events.append(e)
    )
    assert result.status == "sat"
    assert [ce.source for ce in result.counterexamples] == ["seed", "marabou", "marabou"]
    np.testing.assert_array_equal(result.counterexamples[0].x, seed)
    check_counterexamples(net, x, w, r, result)
    kinds = [k for k, _ in events]
    assert kinds.count("counterexample") == 3 and kinds.count("query") == len(result.queries)
    assert kinds.count("start") == sum(not q.presolved for q in result.queries)


def test_seed_counts_unchecked_and_is_excluded(mnist_like):
    net, x = mnist_like
    w, r = top2(net, x)
    result = search_counterexamples(net, x, w, r, k=2, eps_start=0.01, eps_step=0.02, timeout=20, seeds=[x])
    assert [ce.source for ce in result.counterexamples] == ["seed", "marabou"]  # as the authors' get_advs.py
    assert np.abs(result.counterexamples[1].x - x).min() >= D - TOL
    legacy = search_counterexamples(net, x, w, r, k=1, eps_start=0.01, eps_step=0.02, timeout=20, seeds=[x],
                                    legacy=True)
    assert [ce.source for ce in legacy.counterexamples] == ["marabou"]  # fvtui 0.1 counted flipping seeds only
    assert np.abs(legacy.counterexamples[0].x - x).min() >= D - TOL


def test_unflippable_network_is_exhausted_past_eps_one():
    rng = np.random.default_rng(0)
    w1 = rng.uniform(0, 1, (4, 6)).astype(np.float32)
    w2 = np.zeros((2, 4), np.float32)
    w2[0] = 0.001  # logit0 - logit1 = 5 + 0.001 * relu(...) >= 5 everywhere
    net = Network((w1, w2), (None, np.array([5.0, 0.0], np.float32)))
    result = search_counterexamples(net, np.full(6, 0.5, np.float32), 0, 1, 3, 0.06, 0.3, timeout=10)
    assert result.status == "exhausted" and not result.counterexamples
    assert [q.eps for q in result.queries] == pytest.approx([0.06, 0.36, 0.66, 0.96])  # 1.26 > 1: the authors stop
    assert result.final_eps == pytest.approx(0.96)
    legacy = search_counterexamples(net, np.full(6, 0.5, np.float32), 0, 1, 3, 0.06, 0.3, timeout=10, legacy=True)
    assert [q.eps for q in legacy.queries] == pytest.approx([0.06, 0.36, 0.66, 0.96, 1.0])


class _Unconvinced(Network):
    """A network whose numpy prediction never changes: every solver SAT is spurious."""

    def predict(self, x):
        return 0


def test_spurious_solutions_are_excluded_not_counted():
    base = random_net((8, 6, 3), 5)
    net = _Unconvinced(base.weights, base.biases)
    x = np.full(8, 0.5, np.float32)
    w, r = top2(base, x)
    result = search_counterexamples(net, x, 0, r if w == 0 else w, k=2, eps_start=1.0, eps_step=0.1, timeout=10)
    assert result.status == "error" and "not confirmed" in result.message
    assert not result.counterexamples
    assert [q.status for q in result.queries] == ["spurious"] * 3


def test_simplified_query_decides_like_the_literal_one():
    """On a tiny network, the simplified encoding and all n*m literal disjunctions agree on SAT/UNSAT."""
    net = random_net((5, 6, 3), 7)
    rng = np.random.default_rng(3)
    outcomes = set()
    for trial in range(40):
        x = rng.uniform(0, 1, 5).astype(np.float32)
        w, r = top2(net, x)
        eps = float(rng.choice([0.002, 0.05, 0.3, 1.0]))
        lo, up = box(x, eps)
        pts = np.clip(x + rng.uniform(-0.003, 0.003, (int(rng.integers(1, 4)), 5)), 0, 1)
        literal = solve(
            build_query(net, lo, up, w, [r], M, np.tile(np.arange(5), len(pts)), pts.ravel(), D), 5, timeout=10
        )
        s = simplify_exclusions(lo, up, pts, D)
        if s.infeasible:
            simple_status = "unsat"
        else:
            simple = solve(build_query(net, s.lower, s.upper, w, [r], M, s.pixels, s.centers, D), 5, timeout=10)
            simple_status = simple.status
            if simple.status == "sat":
                assert np.all((simple.x <= pts - D + TOL) | (simple.x >= pts + D - TOL))
        assert simple_status == literal.status, (trial, eps)
        outcomes.add((simple_status, s.infeasible))
    assert {("sat", False), ("unsat", False), ("unsat", True)} <= outcomes


def two_pixel_net():
    """logit0 - logit1 = 2 (x0 - x1); at (0.8, 0.2) class 0 wins until eps 0.3 (a tie), class 1 leads by the
    margin 0.001 from 0.30025."""
    eye = np.eye(2, dtype=np.float32)
    return Network((eye, np.array([[1, -1], [-1, 1]], np.float32)), (None, None)), np.array([0.8, 0.2], np.float32)


def test_verify_sample_robust_small_eps_counterexample_large():
    net, x = two_pixel_net()
    assert verify_sample(net, x, 0.01, timeout=10).status == "robust"
    assert verify_sample(net, x, 0.2999, timeout=10).status == "robust"
    tie = verify_sample(net, x, 0.3, timeout=10)  # (0.5, 0.5) ties, and no input within it flips the prediction
    assert tie.status == "undecided" and "reaches the winner" in tie.message
    res = verify_sample(net, x, 1.0, timeout=10)
    assert res.status == "counterexample" and res.predicted == 1
    assert net.predict(res.x) == 1 and np.all(np.abs(res.x - x) <= 1.0)


def test_robust_means_no_input_changes_the_prediction_however_close_the_logits():
    """With the logits scaled by 1e-4 no class ever leads by the search's 0.001 margin, and verify said
    'robust' of boxes where the prediction changes."""
    net, x = two_pixel_net()
    scaled = Network((net.weights[0], net.weights[1] * 1e-4), net.biases)
    res = verify_sample(scaled, x, 1.0, timeout=10)
    assert res.status == "counterexample" and scaled.predict(res.x) == 1 != scaled.predict(x)
    assert verify_sample(scaled, x, 0.2999, timeout=10).status == "robust"


def test_verify_sample_checks_every_other_class(mnist_like):
    net, x = mnist_like
    res = verify_sample(net, x, 1.0, timeout=20)
    assert res.status == "counterexample"
    assert net.predict(res.x) == res.predicted != net.predict(x)
    assert verify_sample(net, x, 1e-4, timeout=20).status == "robust"


def test_verify_sample_finds_a_class_other_than_the_runner_up():
    # logits: 1 + 0.001 h0, 0.9 + 0.0001 h0 (runner-up, never wins), 3 h1 (wins once x1 > 1/3)
    w2 = np.array([[0.001, 0], [0.0001, 0], [0, 3]], np.float32)
    net = Network((np.eye(2, dtype=np.float32), w2), (None, np.array([1.0, 0.9, 0.0], np.float32)))
    x = np.array([0.5, 0.0], np.float32)
    assert top2(net, x) == (0, 1)
    assert verify_sample(net, x, 0.3, timeout=10).status == "robust"
    res = verify_sample(net, x, 0.5, timeout=10)
    assert res.status == "counterexample" and res.predicted == 2 and net.predict(res.x) == 2


def test_branch_and_bound_first_gives_marabous_verdicts(monkeypatch):
    """verify asks branch and bound before Marabou on one hidden layer: the same verdict on random networks
    and boxes, and a robust one without calling Marabou at all."""
    from fvtui.verify import bab, search

    cases = []
    for seed in range(8):
        net = random_net((20, 8, 3), seed)
        x = np.random.default_rng(seed).uniform(0, 1, 20).astype(np.float32)
        for eps in (0.01, 0.05, 0.2):
            cases.append((net, x, eps, verify_sample(net, x, eps, timeout=10)))
    with monkeypatch.context() as m:
        m.setattr(bab, "applies", lambda net: False)  # Marabou alone
        alone = [verify_sample(net, x, eps, timeout=10).status for net, x, eps, _ in cases]
    assert [r.status for *_, r in cases] == alone
    assert {"robust", "counterexample"} <= set(alone)
    for net, x, eps, r in cases:
        if r.status == "counterexample":
            assert net.predict(r.x) == r.predicted != net.predict(x) and np.abs(r.x - x).max() <= eps + 1e-6

    def no_marabou(*args, **kwargs):
        raise AssertionError("Marabou was asked")

    monkeypatch.setattr(search, "solve", no_marabou)
    net, x, eps, r = next(c for c in cases if c[3].status == "robust")
    assert verify_sample(net, x, eps, timeout=10).status == "robust"


def test_certified_radius_of_known_network():
    net, x = two_pixel_net()
    res = certified_radius(net, x, precision=1e-3, timeout=10)
    assert res.status == "exact"
    assert res.lower < 0.30025 <= res.upper and res.upper - res.lower <= 1e-3
    assert net.predict(res.counterexample) == 1
    assert res.queries == 1 + int(np.ceil(np.log2(1 / 1e-3)))


def test_certified_radius_brackets_on_random_net(mnist_like):
    net, x = mnist_like
    res = certified_radius(net, x, precision=2e-3, timeout=20)
    assert res.status == "exact" and 0 < res.lower < res.upper <= res.lower + 2e-3
    assert verify_sample(net, x, res.lower, timeout=20).status == "robust"
    assert verify_sample(net, x, res.upper, timeout=20).status == "counterexample"
    assert np.abs(res.counterexample - x).max() <= res.upper + TOL


def test_certified_radius_robust_everywhere():
    rng = np.random.default_rng(0)
    w2 = np.zeros((2, 4), np.float32)
    w2[0] = 0.001
    net = Network((rng.uniform(0, 1, (4, 3)).astype(np.float32), w2), (None, np.array([5.0, 0.0], np.float32)))
    res = certified_radius(net, np.full(3, 0.5, np.float32), timeout=10)
    assert (res.lower, res.upper, res.status, res.queries) == (1.0, 1.0, "exact", 1)
    assert res.counterexample is None


def test_verify_package_imports_neither_torch_nor_textual():
    code = "import sys, fvtui.verify; print(sorted({'torch', 'textual'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def evaluate_encoding(enc, net, x):
    """The query's variables at input x: inputs, then each undecided ReLU's (pre, post), layer by layer."""
    z = np.zeros(enc.num_variables)
    z[: x.size] = x
    for coeffs, const, pre, _, _ in enc.relus:
        z[pre] = coeffs @ z[: coeffs.size] + const
        z[pre + 1] = max(z[pre], 0.0)
    return z


def test_folded_layers_compute_the_network_on_the_whole_box():
    """Folding the ReLUs the box decides keeps the network's function at every point of the box."""
    net = random_net((6, 8, 7, 3), 5)
    rng = np.random.default_rng(4)
    folded = kept = 0
    for trial in range(30):
        x = rng.uniform(0, 1, 6)
        lo, up = box(x, float(rng.choice([0.01, 0.1, 0.4])))
        enc = encode_layers(net, lo, up)
        assert enc.stable + len(enc.relus) == 15
        folded, kept = folded + enc.stable, kept + len(enc.relus)
        for point in rng.uniform(lo, up, (20, 6)):
            z = evaluate_encoding(enc, net, point)
            for _, _, pre, pre_lo, pre_hi in enc.relus:
                assert pre_lo - 1e-9 <= z[pre] <= pre_hi + 1e-9
            hidden = point
            for w, b in zip(net.weights[:-1], net.biases[:-1]):
                hidden = np.maximum(w.astype(np.float64) @ hidden + b, 0)
            np.testing.assert_allclose(enc.forms @ z + enc.consts, hidden, atol=1e-9)
    assert folded > 0 and kept > 0


def test_folded_query_decides_like_the_plain_one():
    net = random_net((8, 12, 10, 4), 9)
    rng = np.random.default_rng(6)
    outcomes = set()
    for trial in range(30):
        x = rng.uniform(0, 1, 8).astype(np.float32)
        w, r = top2(net, x)
        lo, up = box(x, float(rng.choice([0.02, 0.1, 0.3])))
        plain = solve(build_query(net, lo, up, w, [r], M, fold=False), 8, timeout=10)
        folded = solve(build_query(net, lo, up, w, [r], M), 8, timeout=10)
        assert folded.status == plain.status, trial
        if folded.status == "sat":
            assert np.all(folded.x >= lo - TOL) and np.all(folded.x <= up + TOL)
            logits = net.logits(folded.x.astype(np.float32))
            assert logits[w] - logits[r] <= -M + 1e-4
        outcomes.add(folded.status)
    assert outcomes == {"sat", "unsat"}


@pytest.mark.parametrize("seed", range(12))
def test_the_milp_agrees_with_marabou_on_random_queries(seed):
    """milp.decide says infeasible exactly when plain Marabou says UNSAT, and a feasible program's inputs
    lie in the box, meet the exclusions and reach the runner-up: random nets, boxes and exclusions."""
    from fvtui.verify.milp import decide

    net, _, w, r, _, _, simple = random_query(seed, (10, 8, 6, 4) if seed % 2 else (10, 12, 4))
    if simple.infeasible:
        return
    plain = plain_marabou(net, simple, w, r)
    decision = decide(net, simple.lower, simple.upper, w, r, M, simple.pixels, simple.centers, D)
    assert decision.status == ("infeasible" if plain.status == "unsat" else "feasible")
    if decision.status == "feasible":
        z = decision.x
        assert np.all(z >= simple.lower) and np.all(z <= simple.upper)
        assert all(abs(z[p] - c) >= D - 1e-6 for p, c in zip(simple.pixels, simple.centers))
        logits = net.logits(z.astype(np.float32))
        assert logits[r] - logits[w] >= M - 1e-4


def _plain_and_detour(monkeypatch, mnist_like, verdict):
    """A search, and the same search with Marabou 'timing out' on the first try of every query it answers
    with `verdict` (so that it takes the MILP's detour); both must reach the same eps levels, verdict for
    verdict."""
    import fvtui.verify.search as search

    net, x = mnist_like
    w, r = top2(net, x)
    plain = search_counterexamples(net, x, w, r, k=4, eps_start=0.005, eps_step=0.01, timeout=20, milp_after=20)
    real_solve = search.solve

    def solve(ipq, n, timeout):
        answer = real_solve(ipq, n, timeout)
        if timeout <= 0.5 and answer.status == verdict:
            return search.Solved("timeout", None, timeout, "timed out")
        return answer

    monkeypatch.setattr(search, "solve", solve)
    detour = search.search_counterexamples(net, x, w, r, k=4, eps_start=0.005, eps_step=0.01, timeout=20,
                                           milp_after=0.5)
    assert [q.status for q in detour.queries] == [q.status for q in plain.queries]
    assert [q.eps for q in detour.queries] == [q.eps for q in plain.queries]
    return net, x, w, plain, detour


def test_an_unsat_query_marabou_does_not_settle_in_time_is_settled_by_the_milp(monkeypatch, mnist_like):
    """The same search as without the detour (same queries, same points), the UNSATs decided by HiGHS."""
    _, _, _, plain, detour = _plain_and_detour(monkeypatch, mnist_like, "unsat")
    assert any(q.milp for q in detour.queries) and all(q.status == "unsat" for q in detour.queries if q.milp)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(detour.counterexamples, plain.counterexamples))


@pytest.mark.parametrize("centre", ["witness", "offer", "hand-over"])
def test_a_sat_query_marabou_does_not_settle_in_time_is_answered_by_marabou_near_a_known_input(
        monkeypatch, mnist_like, centre):
    """An input of the query is known (the corner witness; else branch and bound's offer; else HiGHS after the
    slice); Marabou, asked within NARROWS[0] of it, finds the counterexample kept: a point of the whole query (its
    box, its exclusions, the runner-up ahead). HiGHS runs after the slice only when neither knew an input."""
    import fvtui.verify.search as search

    if centre != "witness":
        monkeypatch.setattr(search, "corner_witness", lambda *a: None)
    if centre == "hand-over":
        monkeypatch.setattr(search, "PROOF_FIRST", 0)
    handed_over, real_decide = [], search._decide
    monkeypatch.setattr(search, "_decide", lambda *a, **k: handed_over.append(1) or real_decide(*a, **k))
    net, x, w, plain, detour = _plain_and_detour(monkeypatch, mnist_like, "sat")
    narrowed = [q for q in detour.queries if q.narrowed]
    assert narrowed and all(q.status == "sat" and not q.milp for q in narrowed)
    assert bool(handed_over) == (centre == "hand-over")
    assert len(detour.counterexamples) == len(plain.counterexamples) == 4
    for i, ce in enumerate(detour.counterexamples):
        assert np.abs(ce.x - x).max() <= ce.eps + 1e-6 and net.predict(ce.x) != w
        for earlier in detour.counterexamples[:i]:  # each one delta away from the earlier ones in every pixel
            assert np.all(np.abs(ce.x - earlier.x) >= D - 1e-6)


@pytest.mark.parametrize("verdict", ["sat", "unsat"])
def test_each_query_records_the_phases_it_passed_through(monkeypatch, mnist_like, verdict):
    """What held a long query must be on its record: a query handed over after its slice names Marabou's slice,
    HiGHS' decision and (SAT) the narrowed query; one Marabou answered names only the build and Marabou. The
    phases lie within the query's time, and its CPU time with them."""
    import fvtui.verify.search as search

    monkeypatch.setattr(search, "corner_witness", lambda *a: None)
    monkeypatch.setattr(search, "PROOF_FIRST", 0)
    _, _, _, plain, detour = _plain_and_detour(monkeypatch, mnist_like, verdict)
    asked = [q for q in plain.queries if not q.presolved]
    assert asked and all(set(q.phases) == {"build", "marabou"} for q in asked)
    handed = [q for q in detour.queries if q.milp or q.narrowed]
    expected = {"build", "marabou", "decide"} | ({"narrowed"} if verdict == "sat" else set())
    assert handed and all(set(q.phases) == expected for q in handed)
    for q in asked + handed:
        assert sum(q.phases.values()) <= q.seconds and 0 < q.cpu <= q.seconds + 0.05


def test_a_query_that_waits_shows_wall_time_without_cpu_time(monkeypatch, mnist_like):
    """A query held by a stop or a loaded machine, not by work: its phase's wall time without CPU time behind it."""
    import fvtui.verify.search as search

    real_solve = search.solve

    def waits(ipq, n, timeout):
        time.sleep(0.4)
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", waits)
    net, x = mnist_like
    w, r = top2(net, x)
    result = search_counterexamples(net, x, w, r, k=1, eps_start=0.05, eps_step=0.05, timeout=20, milp_after=20)
    q = result.queries[-1]
    assert q.status == "sat" and q.phases["marabou"] >= 0.4 and q.seconds - q.cpu >= 0.35


def test_the_phase_clock_counts_the_cpu_of_the_forks_a_query_waited_for():
    """Slices and subtrees run in forks (apart.py, bab.py): their CPU time is the query's once they are reaped."""
    import os

    from fvtui.verify.phases import PhaseClock

    clock = PhaseClock()
    with clock("marabou"):
        pid = os.fork()
        if pid == 0:
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
    assert clock.seconds["marabou"] >= 0.3 and clock.cpu() >= 0.28
    with pytest.raises(AssertionError):
        with clock("lunch"):
            pass


def test_where_marabou_runs_out_in_the_first_box_it_is_asked_in_a_tenth_of_it(monkeypatch, mnist_like):
    """A sub-box around the known input can still leave Marabou too many ReLUs to split on (a paper-reproduction
    query ran out its 0.01 box, then took 722 s on the whole query); NARROWS[1] leaves it nearly none. Its answer
    there is kept: a point of the whole query, at the plain search's levels, verdict for verdict. Run-outs come
    in runs, so after one the level's next narrowed queries start at the tenth. The first box has BOX_SLICE
    seconds (its answers come in well under one), the tenth MILP_AFTER."""
    import fvtui.verify.search as search

    real, boxes, caps = search.solve_apart, [], {}

    def solve_apart(ipq, n, timeout):
        if timeout <= 0.5:  # a slice, not a narrowed query
            return real(ipq, n, timeout)
        half = max(ipq.getUpperBound(v) - ipq.getLowerBound(v) for v in range(n)) / 2
        boxes.append(half)
        caps.setdefault(half > search.NARROWS[1] + 1e-9, set()).add(timeout)
        if half > search.NARROWS[1] + 1e-9:  # the first box: Marabou 'runs out'
            return search.Solved("timeout", None, timeout, "timed out")
        return real(ipq, n, timeout)

    monkeypatch.setattr(search, "solve_apart", solve_apart)
    net, x, w, plain, detour = _plain_and_detour(monkeypatch, mnist_like, "sat")
    narrowed = [q for q in detour.queries if q.narrowed]
    assert narrowed and all(q.status == "sat" for q in narrowed)
    wide = [h > search.NARROWS[1] + 1e-9 for h in boxes]
    levels = [q.eps for q in narrowed]
    assert len(set(levels)) < len(levels)  # some level has a narrowed query after its first box ran out
    # a level's first narrowed query: the first box, then the tenth; its later ones: the tenth only
    expected = [box for i, eps in enumerate(levels) for box in ([False] if eps in levels[:i] else [True, False])]
    assert wide == expected
    assert caps[True] == {search.BOX_SLICE} and min(caps[False]) > search.BOX_SLICE
    assert len(detour.counterexamples) == len(plain.counterexamples) == 4
    check_counterexamples(net, x, w, r=top2(net, x)[1], result=detour)


def test_after_a_slice_runs_out_the_levels_next_queries_go_straight_to_the_narrowed_query(monkeypatch, mnist_like):
    """A level's hard queries come in runs, so once Marabou's slice has run out at an eps, later SAT queries at
    that eps with a known input are not given the slice again: each level asks for one slice that runs out,
    and the search still reaches the plain search's eps levels, verdict for verdict, with Marabou's points."""
    import fvtui.verify.search as search

    slices = []
    real_solve = search.solve

    def counted(ipq, n, timeout):
        answer = real_solve(ipq, n, timeout)
        if timeout <= 0.5:
            slices.append(answer.status)
        return answer

    monkeypatch.setattr(search, "solve", counted)
    net, x, w, plain, detour = _plain_and_detour(monkeypatch, mnist_like, "sat")
    sat_levels = {q.eps for q in detour.queries if q.status == "sat"}
    asked = [q for q in plain.queries if q.status == "sat"]
    assert len(asked) > len(sat_levels)  # some level has more than one SAT query to skip
    assert slices.count("sat") == len(sat_levels)  # one slice a level ran out ('sat' turned into a timeout)
    assert all(q.narrowed for q in detour.queries if q.status == "sat")
    assert len(detour.counterexamples) == len(plain.counterexamples) == 4


@pytest.mark.parametrize("sizes, slice_", [((784, 16, 10), 1.0), ((784, 16, 8, 10), 10.0)])
def test_marabou_has_one_second_before_branch_and_bound_and_ten_before_the_milp(monkeypatch, sizes, slice_):
    """The default hand-over: after BAB_AFTER on one hidden layer, where branch and bound decides in a second
    or two what Marabou can hold for long; after MILP_AFTER on deeper networks."""
    import fvtui.verify.search as search

    asked, real_solve = [], search.solve

    def solve(ipq, n, timeout):
        asked.append(timeout)
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", solve)
    net = random_net(sizes, 3)
    x = np.random.default_rng(4).uniform(0, 1, 784).astype(np.float32)
    w, r = top2(net, x)
    result = search.search_counterexamples(net, x, w, r, k=2, eps_start=0.05, eps_step=0.05, timeout=30)
    assert len(result.counterexamples) == 2 and asked[0] == slice_


def test_a_narrowed_query_marabou_does_not_finish_is_stopped_and_the_whole_query_is_marabous(monkeypatch, mnist_like):
    """A sub-box around HiGHS' input is no promise of a short search: the narrowed query runs in a fork for at
    most MILP_AFTER (here 0.7 s, and it hangs), then Marabou has the whole query with the time left, and its
    answers are plain Marabou's, point for point."""
    import fvtui.verify.search as search
    from fvtui.verify import apart

    net, x = mnist_like
    w, r = top2(net, x)
    settings = dict(k=4, eps_start=0.005, eps_step=0.01, timeout=20)
    start = time.perf_counter()
    plain = search_counterexamples(net, x, w, r, **settings, milp_after=20)
    plain_seconds = time.perf_counter() - start
    real_solve, hung = search.solve, []

    def solve(ipq, n, timeout):
        if timeout <= 0.5:
            return search.Solved("timeout", None, timeout, "timed out")
        if timeout == 0.7:  # the narrowed query, in its fork
            hung.append(1)
            time.sleep(60)
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", solve)
    monkeypatch.setattr(apart, "solve", solve)
    monkeypatch.setattr(search, "MILP_AFTER", 0.7)
    start = time.perf_counter()
    detour = search.search_counterexamples(net, x, w, r, **settings, milp_after=0.5)
    seconds = time.perf_counter() - start
    assert [(q.status, q.eps) for q in detour.queries] == [(q.status, q.eps) for q in plain.queries]
    assert all(np.array_equal(a.x, b.x) for a, b in zip(detour.counterexamples, plain.counterexamples))
    # each SAT query's narrowed tries (one for each box of NARROWS) hung in a fork
    stopped = sum(q.status == "sat" for q in detour.queries) * len(search.NARROWS)
    assert not hung and not any(q.narrowed for q in detour.queries)
    # each hung try costs its fork's wall-clock kill and a second, beyond the plain search (timed alike, so
    # that a loaded machine stretches both), not the hang's 60 s
    assert stopped and seconds - plain_seconds < stopped * (0.7 * 1.25 + apart.SLACK + 1) < 60


def test_reused_first_layer_equations_give_the_very_same_queries(capfd):
    """One search's queries share the first layer's equations (FirstLayerEquations); each query must be the
    query built from scratch (Marabou's own dump, whose coefficients it rounds; and the coefficients and
    constant a unit's equation is asked for are bit-equal every time), across eps levels, exclusions that
    decide other ReLUs (so the pre variables move), and a deeper layer rebuilt every time."""
    from fvtui.verify.query import FirstLayerEquations

    class Watched(FirstLayerEquations):
        def __init__(self):
            super().__init__()
            self.asked, self.pres = {}, set()

        def get(self, unit, pre, coeffs, const):
            assert self.asked.setdefault(unit, (coeffs.tobytes(), const)) == (coeffs.tobytes(), const)
            self.pres.add((unit, pre))
            return super().get(unit, pre, coeffs, const)

    moved = []
    for sizes in ((784, 16, 10), (30, 12, 9, 4)):
        net = random_net(sizes, 3)
        rng = np.random.default_rng(8)
        x = rng.uniform(0, 1, sizes[0])
        w, r = top2(net, x)
        shared = Watched()
        for eps in (0.02, 0.3, 0.05, 0.3, 0.6):
            lo, up = box(x, eps)
            points = rng.uniform(lo, up, (int(rng.integers(0, 3)), x.size))
            simple = simplify_exclusions(lo, up, points, D)
            args = (net, simple.lower, simple.upper, w, [r], M, simple.pixels, simple.centers, D)
            dumps = []
            for first_layer in (None, shared):
                build_query(*args, first_layer=first_layer).dump()
                dumps.append(capfd.readouterr().out)
            assert dumps[0] == dumps[1] and "ReluConstraint" in dumps[0]
        assert len(shared.asked) > 1
        moved.append(len(shared.pres) > len(shared.asked))  # some unit's pre variable moved between queries
    assert any(moved)


@pytest.mark.parametrize("stopped", [True, False])
def test_a_query_timed_out_across_a_stop_is_asked_again(monkeypatch, mnist_like, stopped):
    """The third query 'times out' the way a stop makes Marabou time out (its wall-clock cap ran on while
    the process was stopped). When the process was continued meanwhile (`resumed` moved: the worker's
    SIGCONT count) it is asked again, and the search is the plain one, point for point; when not, it is a
    real timeout and ends the search. (Any query that ran across a stop is asked again: the stop can
    also cut short Marabou's time before its hand-over to branch and bound, and so change the point.)"""
    import fvtui.verify.search as search

    net, x = mnist_like
    w, r = top2(net, x)
    settings = dict(k=5, eps_start=0.01, eps_step=0.02, timeout=10, milp_after=10)  # Marabou has the whole cap
    plain = search_counterexamples(net, x, w, r, **settings)
    real_solve, calls, continued = search.solve, [], [0]

    def solve(ipq, n, timeout):
        calls.append(timeout)
        if len(calls) == 3:
            continued[0] += stopped
            return search.Solved("timeout", None, timeout, "timed out")
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", solve)
    starts = []
    result = search.search_counterexamples(net, x, w, r, **settings, resumed=lambda: continued[0],
                                           report=lambda kind, _: starts.append(kind == "start"))
    if stopped:
        assert [q.status for q in result.queries] == [q.status for q in plain.queries]
        assert [ce.x.tobytes() for ce in result.counterexamples] == [ce.x.tobytes() for ce in plain.counterexamples]
        assert sum(starts) == len(result.queries) + 1  # the query asked again said so (the pool's deadline)
    else:
        assert result.status == "timeout" and len(result.queries) == 3


def test_a_slice_a_stop_cut_short_is_given_again(monkeypatch, mnist_like):
    """A slice that 'ran out' because the process was stopped meanwhile does not count as a level's run-out
    (after which the level's next queries skip the slice): the query asked again gets its slice, and the
    search is the unstopped one, point for point."""
    import fvtui.verify.search as search

    net, x = mnist_like
    w, r = top2(net, x)
    settings = dict(k=5, eps_start=0.01, eps_step=0.02, timeout=10, milp_after=1.0)
    plain = search_counterexamples(net, x, w, r, **settings)
    real_solve, slices, continued = search.solve, [], [0]

    def solve(ipq, n, timeout):
        if timeout <= 1.0:
            slices.append(timeout)
            if len(slices) == 2:  # the second query's slice, as a stop leaves it
                continued[0] += 1
                return search.Solved("timeout", None, timeout, "timed out")
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", solve)
    result = search.search_counterexamples(net, x, w, r, **settings, resumed=lambda: continued[0])
    assert len(slices) == sum(not q.presolved and not q.milp for q in plain.queries) + 1  # that one, twice
    assert not any(q.narrowed for q in result.queries)
    assert [ce.x.tobytes() for ce in result.counterexamples] == [ce.x.tobytes() for ce in plain.counterexamples]


@pytest.mark.parametrize("where", ["marabou", "narrowed"])
def test_a_query_answered_across_a_stop_is_kept(monkeypatch, mnist_like, where):
    """A stop costs no query that its clocks did not cut short after it: Marabou's answer does not depend on
    the clock, and a slice that ran out before the stop ran out without it too. 'marabou': the stop falls in a
    Marabou call that answers; 'narrowed': every slice runs out, then the stop falls in the narrowed query
    that answers. No query is asked again, and the search is the unstopped one, point for point."""
    import fvtui.verify.search as search

    net, x = mnist_like
    w, r = top2(net, x)
    settings = dict(k=4, eps_start=0.005, eps_step=0.01, timeout=20, milp_after=20 if where == "marabou" else 0.5)
    continued = [0]

    def stopping(real):
        def solve(ipq, n, timeout):
            if timeout <= 0.5:  # a slice: it runs out, before any stop
                return search.Solved("timeout", None, timeout, "timed out")
            answer = real(ipq, n, timeout)
            continued[0] += 1  # the process was stopped and continued meanwhile
            return answer
        return solve

    monkeypatch.setattr(search, "solve", stopping(search.solve))
    monkeypatch.setattr(search, "solve_apart", stopping(search.solve_apart))
    plain = search.search_counterexamples(net, x, w, r, **settings)  # the same search, never stopped
    assert any(q.narrowed for q in plain.queries) == (where == "narrowed")
    continued[0], starts = 0, []
    result = search.search_counterexamples(net, x, w, r, **settings, resumed=lambda: continued[0],
                                           report=lambda kind, _: starts.append(kind == "start"))
    assert continued[0] > 0 and sum(starts) == len(result.queries) - sum(q.presolved for q in result.queries)
    assert [(q.status, q.eps, q.narrowed) for q in result.queries] == \
        [(q.status, q.eps, q.narrowed) for q in plain.queries]
    assert [ce.x.tobytes() for ce in result.counterexamples] == [ce.x.tobytes() for ce in plain.counterexamples]


def test_a_search_result_survives_the_round_journal_bit_for_bit():
    """The journal line (JSON) is what a resumed round replays instead of solving again."""
    import json

    from fvtui.verify.results import Counterexample, QueryRecord, SearchResult

    rng = np.random.default_rng(3)
    points = [Counterexample(rng.random(784, dtype=np.float32), 0.11, 3, 0.02, "lp"),
              Counterexample(np.nextafter(np.float32(0.5), np.float32(1), dtype=np.float32).repeat(784), 0.11, 4,
                             0.0, "seed")]
    queries = [QueryRecord(0.06, "unsat", 1.5, 12, milp=True, phases={"marabou": 1.0, "decide": 0.49}, cpu=1.47),
               QueryRecord(0.11, "sat", 0.01, 3, lp=True),
               QueryRecord(0.11, "spurious", 0.2, 0, point="AAAA")]
    result = SearchResult("timeout", points, queries, 0.11, 2.25, "cut short")
    again = SearchResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.queries == queries and (again.status, again.final_eps, again.seconds, again.message) == \
        ("timeout", 0.11, 2.25, "cut short")
    assert [(c.eps, c.predicted, c.seconds, c.source) for c in again.counterexamples] == \
        [(0.11, 3, 0.02, "lp"), (0.11, 4, 0.0, "seed")]
    assert all(a.x.dtype == np.float32 and a.x.tobytes() == b.x.tobytes() for a, b in zip(again.counterexamples, points))


def test_with_the_slice_off_marabou_alone_has_each_query_however_slow_the_machine(monkeypatch):
    """--marabou-slice off: each fv query is Marabou's alone, with the whole timeout, so a machine on which
    every slice runs out (a loaded one, stood in for here) hands nothing over and finds Marabou's answers to
    the whole queries, as an idle one does. With the slice on (auto), that machine hands them over."""
    import fvtui.verify.search as search
    from fvtui.verify import apart
    from fvtui.verify.pool import SearchTask, search_job

    net = random_net((784, 16, 10), 3)
    x = np.random.default_rng(4).uniform(0, 1, 784).astype(np.float32)
    w, r = top2(net, x)
    asked, real_solve = [], search.solve

    def loaded(ipq, n, timeout):
        asked.append(timeout)
        if timeout <= search.BAB_AFTER:  # the slice: never long enough here
            return search.Solved("timeout", None, timeout, "timed out", work=search.SLOW_WORK + 1)
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(search, "solve", loaded)
    monkeypatch.setattr(apart, "solve", loaded)

    def run(slice_: str):
        asked.clear()
        args = search_job(SearchTask(net, x, w, r, k=3, eps_start=0.05, eps_step=0.05, timeout=30, slice=slice_)).args
        return search.search_counterexamples(net, **{**args, "deaf": None})  # in this process: no CPU alarm

    off = run("off")
    assert len(off.counterexamples) == 3 and asked and set(asked) == {30}
    assert not any(q.narrowed or q.milp for q in off.queries)
    auto = run("auto")
    assert asked[0] == search.BAB_AFTER and any(q.narrowed or q.milp for q in auto.queries)
    assert [(q.eps, q.status) for q in auto.queries] == [(q.eps, q.status) for q in off.queries]
