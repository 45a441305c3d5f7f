"""FV-Adv: counterexamples from Marabou around each queried sample (PROTOCOL.md, `fv`).

The search itself runs in the solver pool's worker processes; this side prepares the tasks (the
runner-up class, the start eps, the strategy's anchor as the first of the k) and re-checks every
solver counterexample with the torch network, training only on those that really change its
prediction (the authors' code does not re-check; the drops are counted as spurious).

Start, as the authors' get_advs.py: with an anchor (fvaal's FGSM example, dfal's DeepFool example)
the search starts at its size (FGSM eps or DeepFool L2 norm) + eps_step, or at eps_start when that
size is above 0.5 or there is no example; the anchor counts as the first of the k, unchecked.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attacks import fgsm_min_eps
from ..model import logits, to_network
from ..records import QueryCounts, SampleVerification, SyntheticBatch
from ..verify import Counterexample, QueryRecord, SearchResult, SearchTask
from ..verify.results import encode_point
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult


def stored_seconds(q: QueryRecord) -> float:
    """A query's time as the round stores it, to the ms: 0 for a query the exclusions decided, never less
    than 1 ms for one a solver was asked (a region program can take 0.3 ms), so that the time tells them
    apart (interop/replay.py rebuilds the queries from it)."""
    return 0.0 if q.presolved else max(round(q.seconds, 3), 0.001)


def stored_phases(q: QueryRecord) -> dict[str, float]:
    """A query's phases and CPU time as the round stores them (SampleVerification.query_phases): to the ms,
    a phase under half a ms kept as 0 (that it ran tells the query's path)."""
    return {**{name: round(t, 3) for name, t in q.phases.items()}, "cpu": round(q.cpu, 3)}


def sample_status(result: SearchResult, kept: int) -> str:
    if result.status == "exhausted":
        return "counterexample" if kept else "robust"
    return {"sat": "counterexample"}.get(result.status, result.status)


ANCHOR_MAX_SIZE = 0.5  # a larger FGSM eps or DeepFool norm starts the search at eps_start instead


def start_of(ctx: AugmentContext, row: int) -> tuple[float, tuple[np.ndarray, ...]]:
    """The first eps of a sample's search and its seeds (counterexamples it starts with)."""
    settings, anchor = ctx.settings, ctx.selection.anchor
    if ctx.legacy:  # fvtui 0.1: only fvaal's anchor, capped at 1, seeded only if it flips
        if anchor is None or anchor.kind != "fgsm":
            return settings.eps_start, ()
        seeds = (anchor.x[row],) if anchor.present[row] else ()
        return min(1.0, float(anchor.size[row]) + settings.eps_step), seeds
    if anchor is None or not anchor.present[row]:
        return settings.eps_start, ()
    size = float(anchor.size[row])
    eps_start = size + settings.eps_step if size <= ANCHOR_MAX_SIZE else settings.eps_start
    return eps_start, (anchor.x[row],)


def longest_first(ctx: AugmentContext, rows: list[int]) -> list[int]:
    """The order the searches are handed to the solver: a round lasts at least its longest search, so
    the likely longest go first. The guess is the sample's FGSM radius (a search climbs eps through
    UNSAT proofs to about there): in random+fv at 32 units it ranked the round's longest search 0-7th
    of 50, the logit margin 0-20th. Results do not depend on the order; only when they arrive does."""
    if len(rows) < 2:
        return rows
    radius = fgsm_min_eps(ctx.model, ctx.x[rows]).eps.numpy()
    return [rows[i] for i in np.argsort(-radius, kind="stable")]


@AUGMENTATIONS.register("fv", needs_solver=True)
def fv(ctx: AugmentContext) -> AugmentResult:
    settings = ctx.settings
    scores = logits(ctx.model, ctx.x)
    top2 = scores.topk(2, dim=1).indices.numpy()
    net = to_network(ctx.model)
    tasks = []
    for row in range(ctx.x.shape[0]):
        eps_start, seeds = start_of(ctx, row)
        tasks.append(SearchTask(net=net, x=ctx.x[row].numpy(), target=int(top2[row, 0]), runner_up=int(top2[row, 1]),
                                k=settings.advs_per_sample, eps_start=eps_start, eps_step=settings.eps_step,
                                timeout=settings.verify_timeout, seeds=seeds, legacy=ctx.legacy,
                                points=settings.fv_points, slice=settings.marabou_slice))

    batches: dict[int, SyntheticBatch] = {}  # by row: the training samples its kept counterexamples make
    verification: list[SampleVerification | None] = [None] * len(tasks)
    counts = QueryCounts()

    def on_result(row: int, result: SearchResult, fresh: bool = True) -> None:
        nonlocal counts
        if fresh:  # durable before it counts: a kill from here on loses nothing of this sample
            ctx.save(str(int(ctx.source[row])), result.to_dict())
        points = result.counterexamples
        confirmed, predicted = [], []
        if points:
            changed = logits(ctx.model, torch.from_numpy(np.stack([ce.x for ce in points]))).argmax(1).numpy()
            for ce, p in zip(points, changed):
                if p != tasks[row].target or (ce.source == "seed" and not ctx.legacy):
                    confirmed.append(ce)
                    predicted.append(p)
        rejected = len(points) - len(confirmed)
        batches[row] = synthetic_batch(ctx, row, confirmed, predicted)
        statuses = [q.status for q in result.queries]
        kept = {id(ce) for ce in confirmed}
        sat = [i for i, status in enumerate(statuses) if status == "sat"]
        unkept = sorted([{"query": i, "x": q.point, "counted": False} for i, q in enumerate(result.queries)
                         if q.status == "spurious"]
                        + [{"query": i, "x": encode_point(ce.x), "counted": True}
                           for i, ce in zip(sat, (ce for ce in points if ce.source != "seed")) if id(ce) not in kept],
                        key=lambda u: u["query"])
        counts = counts.add(QueryCounts(sat=statuses.count("sat"), unsat=statuses.count("unsat"),
                                        timeout=statuses.count("timeout"), error=statuses.count("error"),
                                        spurious=statuses.count("spurious") + rejected))
        record = SampleVerification(
            source=int(ctx.source[row]), status=sample_status(result, len(confirmed)), eps=float(result.final_eps),
            found=len(confirmed), spurious=statuses.count("spurious") + rejected, queries=len(result.queries),
            seconds=round(result.solver_seconds, 4), message=result.message, search_seconds=round(result.seconds, 4),
            query_seconds=[stored_seconds(q) for q in result.queries],
            query_phases=[stored_phases(q) for q in result.queries], unkept=unkept)
        verification[row] = record
        ctx.on_sample(row, record, batches[row])

    pending = []
    for row in range(len(tasks)):
        saved = ctx.replay.get(str(int(ctx.source[row])))
        if saved is None:
            pending.append(row)
        else:  # solved before an interruption: replayed, never solved again
            on_result(row, SearchResult.from_dict(saved), fresh=False)
    pending = longest_first(ctx, pending)
    if pending:
        ctx.solver.run_searches([tasks[row] for row in pending],
                                on_result=lambda i, result: on_result(pending[i], result), cancel=ctx.cancel,
                                on_progress=lambda i, progress: ctx.on_search(pending[i], progress))
    # task order, whatever order the workers finished in
    batch = SyntheticBatch.concat([batches[row] for row in sorted(batches)], ctx.x.shape[1])
    return AugmentResult(batch, verification, counts)


def synthetic_batch(ctx: AugmentContext, row: int, points: list[Counterexample], predicted: list) -> SyntheticBatch:
    """The training samples a queried sample's kept counterexamples make, labelled as it is; `predicted`: what
    the model says of each (the re-check's own forward pass)."""
    if not points:
        return SyntheticBatch.empty(ctx.x.shape[1])
    n, seed_origin = len(points), ctx.selection.anchor.kind if ctx.selection.anchor is not None else "seed"
    return SyntheticBatch(
        x=np.stack([ce.x for ce in points]).astype(np.float32), y=np.full(n, int(ctx.y[row]), np.int64),
        source=np.full(n, int(ctx.source[row]), np.int64), eps=np.array([ce.eps for ce in points]),
        predicted=np.array(predicted, np.int64), seconds=np.array([ce.seconds for ce in points]),
        origin=np.array([seed_origin if ce.source == "seed" else ce.source for ce in points], dtype="<U8"),
    )
