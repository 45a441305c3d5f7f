"""Every solver query of a finished round, rebuilt from what the session stores.

A session does not store the queries fvtui sent to Marabou. It stores, per queried sample, the
search's outcome (`SampleVerification`: number of queries, the last eps, each query's solver
time, spurious answers) and the counterexamples kept (the round's synthetic samples, bit-exact
float32, each with the eps of the box it was found in). That is enough to replay the fv search
(fvtui/verify/search.py) step by step without the solver: the target w and runner-up r come from
the model before the round, the start eps and the seeds from `augment.fv.start_of` (for fvaal and
dfal the strategy is replayed to get its anchor, and must pick the very samples the round
recorded), and each query's outcome from the stored counterexamples: SAT where the next stored
counterexample was found at the current eps, UNSAT (by the solver, or decided by the exclusion
simplification alone) otherwise, and the recorded timeout or error for the last query of a
search that ended so. The exclusions are then simplified by the very code the search used, so
each rebuilt query is the one Marabou saw (the same box after tightening, the same disjunctions).

Solver points that are not synthetic samples (spurious answers the network did not confirm, which
later queries still exclude) are stored with the sample's record (`SampleVerification.unkept`) and
replayed at their query. What cannot be rebuilt exactly: a sample with spurious answers from a
session written before they were stored, and a sample whose replay disagrees with its record
(query count, last eps, counterexamples left over). Such samples are left out, with the reason,
never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ..errors import UserError
from ..schema import FV_POINTS  # the origins the fv search writes: its point sources

MARGIN = 0.001  # search_counterexamples' defaults, which fv always uses
DELTA = 0.001


@dataclass
class RebuiltQuery:
    round: int
    sample: int  # dataset index of the queried sample
    number: int  # 1-based, within the sample's search
    eps: float
    winner: int  # w: the query asks for logit_w - logit_r <= -margin
    runner_up: int  # r
    x: np.ndarray  # float32 (n,) the queried sample
    lower: np.ndarray  # float64 (n,) the box after the exclusions tightened it
    upper: np.ndarray
    pixels: np.ndarray  # int (d,) pixel of each remaining exclusion disjunction
    centers: np.ndarray  # float64 (d,) its excluded value: x_p <= c - delta OR x_p >= c + delta
    excluded: int  # earlier points (seeds and counterexamples) the query excludes
    verdict: str  # 'sat', 'unsat', 'timeout' or 'error'
    presolved: bool  # UNSAT decided by the exclusion simplification, Marabou never called
    counterexample: np.ndarray | None  # float32 (n,), for 'sat'
    predicted: int | None  # class the model gives the counterexample
    seconds: float  # solver time the round recorded for this query
    margin: float = MARGIN
    delta: float = DELTA


@dataclass
class RebuiltRound:
    round: int
    model_round: int  # the queries are about the model after this round (0: the initial model)
    timeout: float  # seconds per query the round ran with
    queries: list[RebuiltQuery] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (sample, why it cannot be rebuilt exactly)
    samples: int = 0  # queried samples whose search ran


def rebuild_round(session, dataset, round_index: int) -> RebuiltRound:
    import torch

    from .. import model as nn_model
    from ..augment.fv import start_of

    if not 1 <= round_index <= len(session.rounds):
        raise UserError(f"session '{session.name}' has rounds 1 to {len(session.rounds)}, not round {round_index}"
                        if session.rounds else f"session '{session.name}' has no finished round")
    record = session.rounds[round_index - 1]
    settings = record.settings
    total = sum(v.queries for v in record.verification)
    if settings.augment != "fv" or total == 0:
        why = (f"its augmentation is '{settings.augment}', which runs no solver" if settings.augment != "fv"
               else "its searches ran no solver query")
        raise UserError(f"round {round_index} of session '{session.name}' has no solver queries to export: {why}")
    cfg = session.config
    state = session.model_state(round_index - 1)
    model = nn_model.model_from_numpy(state, dataset.num_features, cfg.hidden, dataset.num_classes)
    net = nn_model.to_network(model)
    queried = session.queried_indices(round_index)
    x_all = dataset.train_x[torch.from_numpy(queried)]
    top2 = nn_model.logits(model, x_all).topk(2, dim=1).indices.numpy()
    selection = _replay_selection(session, dataset, round_index, model, queried)
    ctx = SimpleNamespace(settings=settings, selection=selection, legacy=cfg.legacy)
    synthetic = session.synthetic(round_index)
    by_source = {v.source: v for v in record.verification}

    out = RebuiltRound(round_index, round_index - 1, float(settings.verify_timeout))
    for row, source in enumerate(queried.tolist()):
        verification = by_source.get(int(source))
        if verification is None:
            continue
        out.samples += 1
        if verification.spurious and not verification.unkept:
            out.skipped.append((int(source), f"{verification.spurious} spurious solver answer(s) from before fvtui "
                                             "stored them: the points they excluded from later queries are unknown"))
            continue
        eps_start, seeds = start_of(ctx, row)
        mine = (synthetic.source == source) & np.isin(synthetic.origin, FV_POINTS)
        points = list(zip(synthetic.x[mine], synthetic.eps[mine].tolist()))
        queries, problem = _replay_search(
            net, x_all[row].numpy(), int(top2[row, 0]), int(top2[row, 1]), settings.advs_per_sample, eps_start,
            settings.eps_step, seeds, cfg.legacy, points, verification)
        if problem:
            out.skipped.append((int(source), problem))
            continue
        for q in queries:
            q.round = round_index
            q.sample = int(source)
        out.queries.extend(queries)
    return out


def _replay_selection(session, dataset, r: int, model, queried: np.ndarray):
    """The round's selection again (engine.run_round's select phase), for the strategy's anchors.

    Only strategies that hand an anchor to the augmentation need it; the others start at eps_start
    without seeds, whatever they selected.
    """
    from ..seeding import rng_for
    from ..strategies import STRATEGIES, SelectionContext

    settings, cfg = session.rounds[r - 1].settings, session.config
    if settings.strategy not in ANCHORED:
        return SimpleNamespace(anchor=None)
    initial = session.initial()
    labeled = np.concatenate([initial.labeled] + [session.queried_indices(i) for i in range(1, r)])
    unlabeled = np.setdiff1d(np.arange(dataset.train_x.shape[0]), labeled)
    pool_size = min(settings.pool_size, unlabeled.size)
    pool = rng_for(cfg.seed, r, "pool").choice(unlabeled, pool_size, replace=False)
    trained_on = labeled if cfg.train_initial else labeled[initial.labeled.size:]
    context = SelectionContext(model, dataset.train_x[pool], dataset.train_x[trained_on],
                               rng_for(cfg.seed, r, "strategy"), legacy=cfg.legacy)
    selection = STRATEGIES[settings.strategy](context, settings.query_size)
    if not np.array_equal(pool[selection.positions], queried):
        raise UserError(f"round {r} of session '{session.name}': replaying its '{settings.strategy}' selection on "
                        "this machine picks other samples than the round recorded (float results differ across "
                        "CPUs and BLAS builds), so the start of its searches cannot be rebuilt exactly")
    return selection


ANCHORED = frozenset({"fvaal", "dfal"})  # strategies whose example seeds the fv search (augment/fv.py start_of)


def _replay_search(net, x, w, r, k, eps_start, eps_step, seeds, legacy, points, verification):
    """search_counterexamples with the solver's answers read from the record. -> (queries, problem)."""
    from ..verify.exclusions import simplify_exclusions
    from ..verify.results import decode_point
    from ..verify.search import _box  # the very box the search used

    x = np.asarray(x, dtype=np.float32).ravel()
    excluded: list[np.ndarray] = []
    found = 0
    for seed in seeds:
        seed = np.asarray(seed, dtype=np.float32).ravel()
        excluded.append(seed)
        if (int(net.predict(seed)) != w or not legacy) and found < k:
            found += 1
    eps = min(float(eps_start), 1.0) if legacy else float(eps_start)
    stored = verification.queries
    seconds = list(verification.query_seconds) + [float("nan")] * stored
    queries: list[RebuiltQuery] = []
    unkept = {u["query"]: u for u in verification.unkept}
    used = 0
    while found < k:
        if len(queries) == stored:
            return [], f"the replay needs more than the {stored} queries the round recorded"
        lower, upper = _box(x, eps)
        simple = simplify_exclusions(lower, upper, np.reshape(excluded, (-1, x.size)), DELTA)
        last = len(queries) == stored - 1
        point = predicted = None
        answer = unkept.pop(len(queries), None)
        if simple.infeasible:
            verdict = "unsat"
        elif answer is not None:
            verdict, point = "sat", decode_point(answer["x"])
            predicted = int(net.predict(point))
        elif used < len(points) and points[used][1] == eps:
            verdict, point = "sat", np.asarray(points[used][0], np.float32)
            predicted = int(net.predict(point))
            used += 1
        elif last and verification.status in ("timeout", "error"):
            verdict = verification.status
        else:
            verdict = "unsat"
        queries.append(RebuiltQuery(
            0, 0, len(queries) + 1, eps, w, r, x, simple.lower, simple.upper, simple.pixels, simple.centers,
            len(excluded), verdict, simple.infeasible, point, predicted, float(seconds[len(queries)])))
        if verdict in ("timeout", "error"):
            break
        if verdict == "sat":
            excluded.append(point)
            found += 1 if answer is None or answer["counted"] else 0
            continue
        if legacy:
            if eps >= 1.0:
                break
            eps = min(1.0, round(eps + eps_step, 10))
            continue
        if round(eps + eps_step, 10) > 1.0:
            break
        eps = round(eps + eps_step, 10)
    if len(queries) != stored:
        return [], f"the replay makes {len(queries)} queries, the round recorded {stored}"
    if used != len(points) or unkept:
        return [], f"{len(points) - used + len(unkept)} stored solver answer(s) do not fit the replayed search"
    if queries and queries[-1].eps != verification.eps:
        return [], f"the replay ends at eps {queries[-1].eps}, the round recorded {verification.eps}"
    if any(q.presolved != (q.seconds == 0.0) for q in queries):
        return [], "the replay's presolved queries differ from the ones the round recorded"
    return queries, ""
