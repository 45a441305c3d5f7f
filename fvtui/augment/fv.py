"""FV-Adv: counterexamples from Marabou around each queried sample (PROTOCOL.md, `fv`).

The search itself runs in the solver pool's worker processes; this side prepares the tasks (the
runner-up class, the start eps, fvaal's FGSM example as the first of the k) and re-checks every
counterexample with the torch network, training only on those that really change its prediction.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model import logits, to_network
from ..records import QueryCounts, SampleVerification, SyntheticBatch
from ..verify import SearchResult, SearchTask
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult


def sample_status(result: SearchResult, kept: int) -> str:
    if result.status == "exhausted":
        return "counterexample" if kept else "robust"
    return {"sat": "counterexample"}.get(result.status, result.status)


@AUGMENTATIONS.register("fv")
def fv(ctx: AugmentContext) -> AugmentResult:
    settings, selection = ctx.settings, ctx.selection
    scores = logits(ctx.model, ctx.x)
    top2 = scores.topk(2, dim=1).indices.numpy()
    net = to_network(ctx.model)
    tasks = []
    for row in range(ctx.x.shape[0]):
        seeds, eps_start = (), settings.eps_start
        if selection.fgsm_eps is not None:  # fvaal: start one step above the FGSM eps, from its example
            eps_start = min(1.0, float(selection.fgsm_eps[row]) + settings.eps_step)
            if selection.fgsm_flips[row]:
                seeds = (selection.fgsm_x[row],)
        tasks.append(SearchTask(net=net, x=ctx.x[row].numpy(), target=int(top2[row, 0]), runner_up=int(top2[row, 1]),
                                k=settings.advs_per_sample, eps_start=eps_start, eps_step=settings.eps_step,
                                timeout=settings.verify_timeout, seeds=seeds))

    kept_rows: list[tuple[int, object]] = []
    verification: list[SampleVerification | None] = [None] * len(tasks)
    counts = QueryCounts()

    def on_result(row: int, result: SearchResult) -> None:
        nonlocal counts
        points = result.counterexamples
        confirmed = []
        if points:
            predicted = logits(ctx.model, torch.from_numpy(np.stack([ce.x for ce in points]))).argmax(1).numpy()
            confirmed = [ce for ce, p in zip(points, predicted) if p != tasks[row].target]
        rejected = len(points) - len(confirmed)
        kept_rows.extend((row, ce) for ce in confirmed)
        statuses = [q.status for q in result.queries]
        counts = counts.add(QueryCounts(sat=statuses.count("sat"), unsat=statuses.count("unsat"),
                                        timeout=statuses.count("timeout"), error=statuses.count("error"),
                                        spurious=statuses.count("spurious") + rejected))
        record = SampleVerification(
            source=int(ctx.source[row]), status=sample_status(result, len(confirmed)), eps=float(result.final_eps),
            found=len(confirmed), spurious=statuses.count("spurious") + rejected, queries=len(result.queries),
            seconds=round(result.solver_seconds, 4), message=result.message)
        verification[row] = record
        ctx.on_sample(row, record)

    ctx.solver.run_searches(tasks, on_result=on_result, cancel=ctx.cancel)
    kept_rows.sort(key=lambda item: item[0])  # task order, whatever order the workers finished in
    if not kept_rows:
        return AugmentResult(SyntheticBatch.empty(ctx.x.shape[1]), verification, counts)
    rows = np.array([row for row, _ in kept_rows])
    x = np.stack([ce.x for _, ce in kept_rows]).astype(np.float32)
    batch = SyntheticBatch(
        x=x, y=ctx.y.numpy()[rows].astype(np.int64), source=ctx.source[rows].astype(np.int64),
        eps=np.array([ce.eps for _, ce in kept_rows]),
        predicted=logits(ctx.model, torch.from_numpy(x)).argmax(1).numpy().astype(np.int64),
        seconds=np.array([ce.seconds for _, ce in kept_rows]),
        origin=np.array(["fgsm" if ce.source == "seed" else "marabou" for _, ce in kept_rows], dtype="<U8"),
    )
    return AugmentResult(batch, verification, counts)
