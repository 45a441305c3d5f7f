"""Branch and bound for one hidden layer (verify/bab.py): the same verdicts as plain Marabou and as the MILP."""

import time

import numpy as np
import pytest

from fvtui.verify import bab, milp, search_counterexamples
from fvtui.verify.exclusions import simplify_exclusions
from fvtui.verify.highs import run_for

from test_verify_search import D, M, box, plain_marabou, random_net, random_query, top2


def one_layer_query(seed, hidden=12):
    net, _, w, r, _, _, simple = random_query(seed, (10, hidden, 4), (0.02, 0.5), most_points=3)
    return net, w, r, simple


def meets_the_query(net, z, simple, w, r, margin=M):
    logits = net.logits(z.astype(np.float32)).astype(np.float64)
    return (np.all(z >= simple.lower - 1e-7) and np.all(z <= simple.upper + 1e-7)
            and all(abs(z[p] - c) >= D - 1e-6 for p, c in zip(simple.pixels, simple.centers))
            and logits[r] - logits[w] >= margin - 1e-4)


def best_reach(net, w, r, simple):
    """Margins bisected (25 halvings of [-10, 10]) between what branch and bound finds reachable and not."""
    low, high = -10.0, 10.0
    for _ in range(25):
        mid = (low + high) / 2
        found = bab.decide(net, simple.lower, simple.upper, w, r, mid, simple.pixels, simple.centers, D)
        low, high = (mid, high) if found.status == "feasible" else (low, mid)
    return low, high


def milp_agrees(net, w, r, simple, low, high, seed):
    """The MILP reaches 0.002 below the bisected reach and not 0.002 above it."""
    for margin, expected in ((low - 0.002, "feasible"), (high + 0.002, "infeasible")):
        theirs = milp.decide(net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D,
                             time_limit=20)
        assert theirs.status == expected, (seed, margin)


@pytest.mark.parametrize("seed", range(24))
def test_branch_and_bound_agrees_with_marabou(seed):
    """Random one-layer nets, boxes and exclusions: infeasible exactly when plain Marabou says UNSAT."""
    net, w, r, simple = one_layer_query(seed)
    if simple.infeasible:
        return
    plain = plain_marabou(net, simple, w, r)
    decision = bab.decide(net, simple.lower, simple.upper, w, r, M, simple.pixels, simple.centers, D)
    assert decision.status == ("infeasible" if plain.status == "unsat" else "feasible")
    if decision.status == "feasible":
        assert meets_the_query(net, decision.x, simple, w, r)


def test_branch_and_bound_agrees_with_the_milp_at_the_edge():
    """Margins 0.002 either side of the runner-up's best reach in the box (found by bisecting branch and
    bound's own verdicts): the near-degenerate queries that are slow to prove. The MILP must agree on
    each: a pruning that cuts too much makes the bisection stop short, and the MILP then finds the
    margin above it reachable."""
    for seed in range(12):
        net, w, r, simple = one_layer_query(seed, hidden=16)
        if simple.infeasible:
            continue
        low, high = best_reach(net, w, r, simple)
        milp_agrees(net, w, r, simple, low, high, seed)


def test_cuts_below_the_root_keep_the_verdicts_exact(monkeypatch):
    """Trees deep enough for branch and bound to add cuts below the root (30 inputs, 24 hidden units,
    wide boxes; three seeds whose MILPs are quick), at margins 0.002 either side of the bisected best
    reach: the MILP agrees on each, and node cuts were made (more separations than the root's rounds
    allow)."""
    separations = []
    real = bab.strongest_cuts
    monkeypatch.setattr(bab, "strongest_cuts", lambda *a: separations.append(1) or real(*a))
    deepest = 0
    for seed in (3, 4, 7):
        net, _, w, r, _, _, simple = random_query(seed, (30, 24, 4), (0.2, 0.6), most_points=3)
        if simple.infeasible:
            continue
        low, high = best_reach(net, w, r, simple)
        separations.clear()
        assert bab.decide(net, simple.lower, simple.upper, w, r, high + 0.002, simple.pixels, simple.centers,
                          D).status == "infeasible"
        deepest = max(deepest, len(separations))
        milp_agrees(net, w, r, simple, low, high, seed)
    assert deepest > bab.CUT_ROUNDS + 1


def test_deeper_networks_keep_the_milp():
    assert bab.applies(random_net((10, 8, 4), 0)) and not bab.applies(random_net((10, 8, 6, 4), 0))


def search_case():
    """A 784-16-10 network and an input whose searches meet UNSAT levels and SAT answers within seconds."""
    net = random_net((784, 16, 10), 1)
    x = np.random.default_rng(2).uniform(0, 1, 784).astype(np.float32)
    return (net, x, *top2(net, x))


def assert_same_search(a, b, k: int) -> None:
    """Two searches reached the same eps levels with the same verdicts, and the same k points, Marabou's."""
    assert [(q.eps, q.status) for q in a.queries] == [(q.eps, q.status) for q in b.queries]
    assert len(a.counterexamples) == k
    for p, q in zip(a.counterexamples, b.counterexamples):
        assert p.source == q.source == "marabou" and np.array_equal(p.x, q.x)


def test_an_unsat_query_left_by_marabou_is_settled_by_branch_and_bound(monkeypatch):
    """The default search's hand-over after MILP_AFTER goes to branch and bound on a one-layer network."""
    import fvtui.verify.search as search

    calls = []
    real = bab.decide
    monkeypatch.setattr(bab, "decide", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(milp, "decide", lambda *a, **k: pytest.fail("the MILP was asked on a one-layer network"))
    real_solve = search.solve
    monkeypatch.setattr(search, "solve", lambda ipq, n, timeout: search.Solved("timeout", None, timeout)
                        if timeout <= 0.5 else real_solve(ipq, n, timeout))
    monkeypatch.setattr(search, "PROOF_FIRST", 0)  # no proof before Marabou: the hand-over's turn
    net, x, w, r = search_case()
    result = search.search_counterexamples(net, x, w, r, k=2, eps_start=0.001, eps_step=0.01, timeout=20,
                                           milp_after=0.5)
    assert calls and result.queries[0].status == "unsat" and result.queries[0].milp
    assert len(result.counterexamples) == 2


def test_a_query_without_a_witness_is_offered_to_branch_and_bound_and_the_points_stay_marabous(monkeypatch):
    """Default mode, one hidden layer: a query without a corner witness is branch and bound's for PROOF_FIRST
    linear programs, and its UNSAT settles it without Marabou; everything else is Marabou's as before.
    The same search without that proof gives the same verdicts and bit-identical counterexamples."""
    import fvtui.verify.search as search

    net, x, w, r = search_case()
    real_solve = search.solve

    def run(proof_first):
        monkeypatch.setattr(search, "PROOF_FIRST", proof_first)
        marabou = []
        monkeypatch.setattr(search, "solve", lambda *a: marabou.append(1) or real_solve(*a))
        result = search_counterexamples(net, x, w, r, k=3, eps_start=0.001, eps_step=0.01, timeout=20)
        return result, len(marabou)

    offered, asked_offered = run(search.PROOF_FIRST)
    plain, asked_plain = run(0)
    unsat = [q for q in offered.queries if q.status == "unsat" and not q.presolved]
    assert unsat and all(q.milp for q in unsat)  # settled by branch and bound ...
    assert asked_offered == asked_plain - len(unsat)  # ... and Marabou never asked about them
    assert not any(q.milp for q in plain.queries)
    assert_same_search(offered, plain, 3)


def test_a_query_whose_offer_runs_out_of_programs_has_no_marabou_slice(monkeypatch):
    """An offer that ends without a verdict marks a hard proof (in a real session, UNSAT queries only): branch and
    bound goes on with the rest of the budget at once, instead of after Marabou's slice. Verdicts and eps levels
    stay those of Marabou alone."""
    import fvtui.verify.search as search

    net, x, w, r = search_case()
    plain = search_counterexamples(net, x, w, r, k=3, eps_start=0.001, eps_step=0.01, timeout=20, milp_after=np.inf)
    events, real, real_solve = [], bab.proof, search.solve

    def proof(*a, **k):
        run = real(*a, **k)

        def runs(time_limit, lp_limit=None, cores=None):  # every offer ends open, as one on a hard proof does
            decision = milp.Decision("unknown", None) if lp_limit else run(time_limit, lp_limit, cores)
            events.append(("offer" if lp_limit else "proof", decision.status))
            return decision
        return runs

    monkeypatch.setattr(bab, "proof", proof)
    monkeypatch.setattr(search, "solve", lambda ipq, n, t: events.append(("slice" if t <= 1 else "whole", "")) or
                        real_solve(ipq, n, t))
    monkeypatch.setattr(search, "corner_witness", lambda *a: None)  # every query is offered
    result = search_counterexamples(net, x, w, r, k=3, eps_start=0.001, eps_step=0.01, timeout=20)
    assert [(q.eps, q.status) for q in result.queries] == [(q.eps, q.status) for q in plain.queries]
    after_offer = [b for a, b in zip(events, events[1:]) if a[0] == "offer"]
    assert after_offer and all(kind == "proof" for kind, _ in after_offer)
    assert not any(kind == "slice" for kind, _ in events)


def test_branch_and_bound_takes_up_an_open_offer_where_it_stopped(monkeypatch):
    """After an offer that ran out of programs (here one: a query SAT by a hair needs a tree), the query's branch
    and bound goes on with that offer's tree instead of starting over, and the verdicts and eps levels stay
    those of Marabou alone."""
    import fvtui.verify.search as search

    net, x, w, r, *_ = random_query(2, (10, 16, 4))
    lower, upper = box(x, 0.2)
    margin = best_reach(net, w, r, simplify_exclusions(lower, upper, np.zeros((0, x.size)), D))[0] - 0.002
    settings = dict(k=2, eps_start=0.2, eps_step=0.05, timeout=20, margin=margin)
    plain = search_counterexamples(net, x, w, r, **settings, milp_after=np.inf)
    runs, real = [], bab.proof

    def proof(*a, **k):
        run = real(*a, **k)

        def counted(time_limit, lp_limit=None, cores=None):
            decision = run(time_limit, lp_limit, cores)
            runs.append((lp_limit, decision.status))
            return decision
        return counted

    monkeypatch.setattr(bab, "proof", proof)
    monkeypatch.setattr(search, "PROOF_FIRST", 1)
    monkeypatch.setattr(search, "corner_witness", lambda *a: None)  # every query is offered
    monkeypatch.setattr(bab, "decide", lambda *a, **k: pytest.fail("a proof started over"))
    result = search_counterexamples(net, x, w, r, **settings)
    assert [(q.eps, q.status) for q in result.queries] == [(q.eps, q.status) for q in plain.queries]
    taken_up = [b for a, b in zip(runs, runs[1:]) if a == (1, "unknown")]
    assert taken_up and all(lp_limit is None and status == "feasible" for lp_limit, status in taken_up)


def test_only_queries_without_a_witness_are_offered_and_the_points_stay_marabous(monkeypatch):
    """The offer goes to exactly the queries the corner witness leaves open, every UNSAT one among them, and
    not to the SAT ones it answers (there are some after an UNSAT level). Without the witness every query is
    offered: the same verdicts and bit-identical counterexamples."""
    import fvtui.verify.search as search

    net, x, w, r = search_case()
    real, real_witness = bab.proof, search.corner_witness

    def run(witness):
        offers, witnessed = [], []
        monkeypatch.setattr(bab, "proof", lambda *a, **k: offers.append(1) or real(*a, **k))
        monkeypatch.setattr(search, "corner_witness", lambda *a: witnessed.append(witness(*a)) or witnessed[-1])
        result = search_counterexamples(net, x, w, r, k=4, eps_start=0.001, eps_step=0.01, timeout=20)
        return result, len(offers), [p is not None for p in witnessed]

    every, offered_every, _ = run(lambda *a: None)
    gated, offered_gated, found = run(real_witness)
    asked = [q for q in gated.queries if not q.presolved]
    assert offered_every == len(asked) == len(found)  # without a witness every query sent is offered ...
    assert offered_gated == found.count(False) < offered_every  # ... with it, those it left open
    assert not any(f and q.status == "unsat" for f, q in zip(found, asked))
    assert any(q.status == "unsat" for q in asked) and any(found[i] for i, q in enumerate(asked)
                                                          if i and asked[i - 1].status == "unsat")
    assert_same_search(every, gated, 4)


def test_the_fork_after_a_hard_query_counts_marabous_work_not_seconds(monkeypatch):
    """A query slow only because the machine is busy does not send the next one's slice to a fork: a search
    runs the same way on any machine and load, and Marabou meets the same history (worker.py)."""
    import fvtui.verify.search as search

    net, x, w, r = search_case()
    real_solve, real_apart = search.solve, search.solve_apart

    def run(delay):
        forks = []
        monkeypatch.setattr(search, "solve_apart", lambda *a: forks.append(1) or real_apart(*a))
        monkeypatch.setattr(search, "solve", lambda *a: time.sleep(delay) or real_solve(*a))
        return search_counterexamples(net, x, w, r, k=4, eps_start=0.001, eps_step=0.01, timeout=20), len(forks)

    busy, forked_busy = run(0.55)  # every query over the 0.5 s that SLOW_WORK stands for
    idle, forked_idle = run(0.0)
    assert forked_busy == forked_idle == 0
    monkeypatch.setattr(search, "SLOW_WORK", -1)  # every query counts as hard: the next slice is forked
    assert run(0.0)[1] > 0
    assert_same_search(busy, idle, 4)


def test_a_budget_of_linear_programs_stops_branch_and_bound_the_same_way_on_any_machine(monkeypatch):
    """The offer's budget (search.PROOF_FIRST) counts programs, not seconds: a proof that took n programs
    is found again with a budget of n, and given up with a budget of one."""
    net, w, r, simple = one_layer_query(1, hidden=16)  # a proof of 19 programs
    margin = best_reach(net, w, r, simple)[1] + 0.002  # unreachable by a hair: a tree of several nodes
    args = (net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
    programs, real = [], bab.run_for
    monkeypatch.setattr(bab, "run_for", lambda h, seconds: programs.append(1) or real(h, seconds))
    assert bab.decide(*args).status == "infeasible"
    assert bab.decide(*args, lp_limit=len(programs)).status == "infeasible"
    assert bab.decide(*args, lp_limit=1).status == "unknown"


def counted_programs(monkeypatch, fail_at: int = 0) -> list:
    """bab.run_for, counted; the fail_at-th program (1-based) gets no time, so HiGHS gives up on it."""
    programs = []
    monkeypatch.setattr(bab, "run_for", lambda h, seconds: programs.append(1) or
                        run_for(h, 0.0 if len(programs) == fail_at else seconds))
    return programs


def test_a_proof_that_outlasts_its_budget_goes_on_where_it_stopped(monkeypatch):
    """An offer that runs out of programs is not started over when branch and bound takes the query (search.py):
    the next run goes on from the open nodes and ends where one run would, at the very same input, having run
    the very same programs, each once. A verdict is final."""
    net, w, r, simple = one_layer_query(1, hidden=16)
    low, high = best_reach(net, w, r, simple)
    programs = counted_programs(monkeypatch)
    for margin, verdict in ((high + 0.002, "infeasible"), (low - 0.002, "feasible")):
        args = (net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
        programs.clear()
        whole = bab.decide(*args)
        n = len(programs)
        assert whole.status == verdict and n > 12
        for budget in (1, n // 2, n - 1):
            programs.clear()
            run = bab.proof(*args)
            assert run(60, budget).status == "unknown" and budget <= len(programs) < n
            resumed = run(60)
            assert len(programs) == n and resumed.status == verdict
            assert whole.x is None and resumed.x is None or np.array_equal(whole.x, resumed.x)
            assert run(60) is resumed and len(programs) == n


def test_a_program_highs_gives_up_on_stays_open_for_the_next_run(monkeypatch):
    """A node whose program HiGHS leaves without an answer ends the run 'unknown' but stays on the tree: the
    next run solves it, so no part of the box goes unexamined and the verdicts stay exact."""
    net, w, r, simple = one_layer_query(1, hidden=16)
    low, high = best_reach(net, w, r, simple)
    for margin, verdict in ((high + 0.002, "infeasible"), (low - 0.002, "feasible")):
        args = (net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
        programs = counted_programs(monkeypatch)
        bab.decide(*args)
        n = len(programs)
        for fail_at in range(2, n + 1):
            programs = counted_programs(monkeypatch, fail_at)
            run = bab.proof(*args)
            first = run(60)
            decision = run(60) if first.status == "unknown" else first
            assert decision.status == verdict, (margin, fail_at)
            if verdict == "feasible":
                assert meets_the_query(net, decision.x, simple, w, r, margin - 1e-6)


def test_holes_at_points_that_are_no_counterexample_do_not_lengthen_a_proof(monkeypatch):
    """Exclusions centred on every point a hole-free proof's programs reached (none of them a
    counterexample) leave the query UNSAT, and the proof splits ReLUs as before instead of holes: the
    same programs. Splitting the hole first made a 784-32-10 proof with 924 holes (Fashion-MNIST,
    random+fv, eps 0.16) outlast 300 s; it takes 1.6 s, as long as the same box without its holes."""
    net, w, r, simple = one_layer_query(1, hidden=16)
    margin = best_reach(net, w, r, simple)[1] + 0.002
    points, real = [], bab.run_for

    def run_and_keep(h, seconds):
        real(h, seconds)
        points.append(np.asarray(h.getSolution().col_value)[:net.input_size])

    monkeypatch.setattr(bab, "run_for", run_and_keep)
    assert bab.decide(net, simple.lower, simple.upper, w, r, margin).status == "infeasible"
    hole_free = len(points)
    inside = [(i, float(p[i])) for p in points for i in range(p.size)
              if simple.lower[i] + D < p[i] < simple.upper[i] - D]
    assert hole_free > 3 and len(inside) > 10
    pixels, centers = np.array([i for i, _ in inside]), np.array([c for _, c in inside])
    points.clear()
    assert bab.decide(net, simple.lower, simple.upper, w, r, margin, pixels, centers, D).status == "infeasible"
    assert len(points) == hole_free


def test_lp_mode_settles_what_the_region_program_cannot_without_marabou(monkeypatch):
    """points='lp' on one hidden layer: UNSAT levels by branch and bound, points by the programs; Marabou
    is never called when branch and bound decides."""
    import fvtui.verify.search as search

    monkeypatch.setattr(search, "solve", lambda *a, **k: pytest.fail("Marabou was asked"))
    net, x, w, r = search_case()
    result = search_counterexamples(net, x, w, r, k=4, eps_start=0.001, eps_step=0.01, timeout=20, points="lp")
    statuses = [q.status for q in result.queries]
    assert statuses[0] == "unsat" and result.queries[0].milp and statuses.count("sat") == 4
    assert all(q.lp for q in result.queries if q.status == "sat")


def test_lp_mode_gives_branch_and_bound_the_whole_budget_once_and_marabou_what_is_left(monkeypatch):
    """A query branch and bound cannot settle in time is not handed back to it after Marabou (it would
    start over): one call per query, with the query's whole timeout; Marabou then gets the rest."""
    import fvtui.verify.search as search

    limits, marabou = [], []
    monkeypatch.setattr(bab, "decide", lambda *a, time_limit, **k: limits.append(time_limit) or milp.Decision("unknown"))
    real_solve = search.solve
    monkeypatch.setattr(search, "solve", lambda ipq, n, timeout: marabou.append(timeout) or real_solve(ipq, n, timeout))
    net, x, w, r = search_case()
    result = search_counterexamples(net, x, w, r, k=2, eps_start=0.001, eps_step=0.01, timeout=20, points="lp")
    asked = [q for q in result.queries if not q.presolved]
    assert result.queries[0].status == "unsat" and not result.queries[0].milp  # Marabou's verdict this time
    assert len(limits) == len(marabou) >= 1 and len(limits) <= len(asked)
    assert all(limit == 20 for limit in limits)
    assert all(1.0 <= t <= 20 for t in marabou) and marabou[0] > 15  # what was left of the query's 20 s


def test_the_root_cuts_are_valid_exact_at_phases_and_tighter_than_the_triangle():
    """Anderson et al.'s cuts (bab.strongest_cuts) on random units and boxes: never below relu(w x + b)
    with s the unit's phase (where they equal it), and never above big-M's min(hi s, z - lo (1 - s))."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, units = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        w, b = rng.standard_normal((units, n)), rng.standard_normal(units)
        lower = rng.uniform(0, 0.6, n)
        upper = lower + rng.uniform(0, 0.4, n)
        w_low, w_up = w * np.where(w >= 0, lower, upper), w * np.where(w >= 0, upper, lower)
        lo, hi = w_low.sum(1) + b, w_up.sum(1) + b
        x = rng.uniform(lower, upper)
        z = w @ x + b
        at_phase, _ = bab.strongest_cuts(w, b, w_low, w_up, x, (z > 0).astype(float))
        assert np.allclose(at_phase, np.maximum(z, 0.0), atol=1e-9)
        s = rng.uniform(0, 1, units)
        bound, chosen = bab.strongest_cuts(w, b, w_low, w_up, x, s)
        undecided = (lo < 0) & (hi > 0)
        big_m = np.minimum(hi * s, z - lo * (1 - s))
        assert np.all(bound[undecided] <= big_m[undecided] + 1e-9)
        for t in range(units):  # the chosen set gives the lowest bound of all sets I
            others = rng.uniform(size=(20, n)) < 0.5
            rhs = (np.where(others, w[t] * x - w_low[t] * (1 - s[t]), 0.0).sum(1)
                   + (b[t] + np.where(others, 0.0, w_up[t]).sum(1)) * s[t])
            assert np.all(bound[t] <= rhs + 1e-9)


class Unlucky:
    """A HiGHS program whose runs in `failing` (1-based) end in status 'unknown', as warm starts now and
    then do (numerical trouble with the basis they start from); other runs are the real ones."""

    def __init__(self, real, failing):
        self._real, self._failing, self._runs, self._stuck, self.cold = real, failing, 0, False, 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def run(self):
        self._runs += 1
        self._stuck = self._runs in self._failing
        return self._real.run() if not self._stuck else None

    def clearSolver(self):
        self.cold += 1
        return self._real.clearSolver()

    def getModelStatus(self):
        import highspy

        return highspy.HighsModelStatus.kUnknown if self._stuck else self._real.getModelStatus()


def test_a_warm_start_that_ends_unknown_is_run_again_cold_and_the_proof_goes_on(monkeypatch):
    """Branch and bound gave up a whole proof on one program HiGHS left 'unknown': a Fashion-MNIST
    reference query (random-fv-s0, round 1, sample 36517) then ran 1,801 s in Marabou to the timeout;
    with that 1 of its 4,130 programs run again cold, branch and bound proves it UNSAT in 8 s."""
    from fvtui.verify import highs

    net, _, w, r, _, _, simple = random_query(3, (30, 24, 4), (0.2, 0.6), most_points=3)
    margin = best_reach(net, w, r, simple)[1] + 0.002  # past the best reach: a tree to exhaust
    plain = bab.decide(net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
    programs = []
    real_new = highs.new_program
    monkeypatch.setattr(bab, "new_program", lambda: programs.append(Unlucky(real_new(), {2, 5})) or programs[-1])
    unlucky = bab.decide(net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
    assert plain.status == unlucky.status == "infeasible" and programs[0].cold == 2


HANG = 20  # seconds a deaf slice would take in the process itself


def test_a_marabou_slice_that_ignores_its_timeout_is_stopped_and_branch_and_bound_takes_over(monkeypatch, tmp_path):
    """Marabou's DeepSoI local search does not look at its timeout: a 10 s slice of a Fashion-MNIST query
    (482 exclusion disjunctions) ran past 700 s, and the pool killed the job at 1.25 x the cap + grace,
    where branch and bound answers in 0.4 s. The slice now runs in a fork (verify/apart.py) that is
    killed 1.25 x its timeout + 2 s after it starts, when the query before was hard (it costs 11 ms).
    Here the first slice times out, which makes the next query's hard, and every later slice hangs."""
    import os

    import fvtui.verify.search as search
    from fvtui.verify import apart

    real_solve, slices = apart.solve, tmp_path / "slices"  # a file: the hanging ones run in forks

    def deaf(ipq, n, timeout):
        if timeout <= 0.5:  # the slice before the hand-over: the first times out, the others hang
            with slices.open("a") as log:
                log.write(f"{os.getpid()}\n")
            if len(slices.read_text().split()) == 1:
                return search.Solved("timeout", None, timeout, work=search.SLOW_WORK + 1)
            time.sleep(HANG)
        return real_solve(ipq, n, timeout)

    monkeypatch.setattr(apart, "solve", deaf)
    monkeypatch.setattr(search, "solve", deaf)
    monkeypatch.setattr(search, "PROOF_FIRST", 0)  # no proof before Marabou: the hand-over's turn
    net, x, w, r = search_case()
    start = time.perf_counter()
    result = search.search_counterexamples(net, x, w, r, k=2, eps_start=0.001, eps_step=0.01, timeout=20,
                                           milp_after=0.5)
    assert len(result.counterexamples) == 2 and result.queries[0].status == "unsat" and result.queries[0].milp
    assert all(q.status != "timeout" for q in result.queries)
    pids = slices.read_text().split()
    hung = len(pids) - 1  # each stopped 0.5 * 1.25 + 2 s after it started, before branch and bound
    assert str(os.getpid()) not in pids[1:]  # they hung in forks, not here
    assert hung >= 1 and time.perf_counter() - start < hung * (0.5 * 1.25 + apart.SLACK) + 10 < hung * HANG


def test_marabou_apart_answers_as_marabou_in_process(monkeypatch):
    """The fork changes nothing in the answer: the same status and point, bit for bit; a crash in it is an
    error of that query, and the fork is gone either way."""
    import os
    import signal
    import threading
    from pathlib import Path

    from fvtui.verify import apart
    from fvtui.verify.query import build_query, solve

    def children():  # of this thread, which forks them (other tests' pools may have theirs)
        return set(Path(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/children").read_text().split())

    before = children()
    net, w, r, simple = one_layer_query(5)
    query = build_query(net, simple.lower, simple.upper, w, [r], M, simple.pixels, simple.centers, D)
    here, there = solve(query, net.input_size, 10), apart.solve_apart(query, net.input_size, 10)
    assert here.status == there.status == "sat" and np.array_equal(here.x, there.x) and here.work == there.work
    monkeypatch.setattr(apart, "solve", lambda *a: os.kill(os.getpid(), signal.SIGKILL))
    crashed = apart.solve_apart(query, net.input_size, 10)
    assert crashed.status == "error" and "SIGKILL" in crashed.message
    assert children() <= before  # no child left behind


@pytest.mark.parametrize("seed", range(4))
def test_a_proof_split_into_subtrees_gives_the_same_answer_on_one_core_or_three(monkeypatch, seed):
    """A long proof goes on in subtrees (forks), which lent cores (verify/cores.py) run side by side at the end
    of a round. Split after 4 programs here (SPLIT_AFTER is 400): near the runner-up's best reach, both
    verdicts; the point found is the very same, and every lent core comes back."""
    from fvtui.verify.cores import Cores

    net, _, w, r, _, _, simple = random_query(seed, (30, 24, 4), (0.2, 0.6), most_points=3)
    low, high = best_reach(net, w, r, simple)
    forks = []
    real_fork = bab._fork_subtree
    monkeypatch.setattr(bab, "_fork_subtree", lambda *a: forks.append(1) or real_fork(*a))
    for margin, expected in ((low - 0.002, "feasible"), (high + 0.002, "infeasible")):
        args = (net, simple.lower, simple.upper, w, r, margin, simple.pixels, simple.centers, D)
        whole = bab.decide(*args)  # one tree: the split comes after 400 programs
        assert whole.status == expected and not forks
        monkeypatch.setattr(bab, "SPLIT_AFTER", 4)
        alone = bab.decide(*args)
        split = len(forks)
        cores = Cores.new()
        try:
            cores.give_back(2)
            shared = bab.decide(*args, cores=cores)
            back = sum(cores.borrow() for _ in range(3))
        finally:
            cores.close()
        monkeypatch.setattr(bab, "SPLIT_AFTER", 400)
        assert split > 0 and len(forks) >= 2 * split  # it did split, both times
        assert alone.status == shared.status == expected and back == 2
        if expected == "feasible":
            assert alone.x.tobytes() == shared.x.tobytes() and meets_the_query(net, alone.x, simple, w, r, margin)
        forks.clear()
