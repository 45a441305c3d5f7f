"""Dask scale-out: one fv round's searches at --hidden 128 on 1 and 2 Dask workers, against the local pool.

Trains a 784-128-10 network with fvtui's own code (Glorot init, 10 epochs on --train samples of the
demo data, or of $FVTUI_DATA_DIR's Fashion-MNIST with --dataset fashionmnist), queries --samples
random samples and builds their fv searches as a round does (winner, runner-up, k, eps 0.06 + 0.05),
then times the same searches through SolverPool(1), SolverPool(2), and DaskSolver on local:1 and
local:2 (LocalClusters of one-thread workers). Prints the wall times, the efficiency at 2 workers
(speedup / workers) for each backend, the per-task overhead of Dask against the pool of the same
size, and checks that every backend found the very same counterexamples. Then the overhead per task
alone, on --tiny searches so small (784-8-10, k=1) that the solver's time hardly counts: the best of
three runs on SolverPool(1) against DaskSolver on local:1. Last, the CPU that an idle local:2 cluster
(client and scheduler here, two worker processes) burns in --idle seconds, with fvtui's settings
(connect.QUIET) and with Dask's defaults: on a small machine that is the solvers' time.

    python benchmarks/cluster_scaling.py [--samples 24] [--train 500] [--dataset demo] [--tiny 100] [--idle 20]

(--samples 0 skips the scaling part, --tiny 0 the overhead part, --idle 0 the idle part.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tasks(dataset: str, samples: int, train: int, k: int, hidden: int = 128):
    import torch

    from fvtui.data import load_dataset
    from fvtui.model import logits, new_model, to_network
    from fvtui.model import train as fit
    from fvtui.verify import SearchTask

    torch.set_num_threads(1)
    data = load_dataset(dataset)
    rng = np.random.default_rng(0)
    labeled = rng.choice(data.train_x.shape[0], train, replace=False)
    model = fit(new_model(data.num_features, (hidden,), data.num_classes, seed=0), data.train_x[labeled],
                data.train_y[labeled], epochs=10, batch_size=32, lr=1e-3, seed=0)
    queried = rng.choice(np.setdiff1d(np.arange(data.train_x.shape[0]), labeled), samples, replace=False)
    x = data.train_x[queried]
    top2 = logits(model, x).topk(2, dim=1).indices.numpy()
    net = to_network(model)
    return [SearchTask(net, x[i].numpy(), int(top2[i, 0]), int(top2[i, 1]), k=k, eps_start=0.06, eps_step=0.05,
                       timeout=30.0) for i in range(samples)]


def timed(solver, work) -> tuple[float, list]:
    solver.run_searches(work[:2])  # warm: worker processes started, maraboupy imported
    start = time.perf_counter()
    results = solver.run_searches(work)
    return time.perf_counter() - start, results


def outcome(results) -> list:
    return [(r.status, [q.status for q in r.queries], [ce.x.tobytes() for ce in r.counterexamples]) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--tiny", type=int, default=100)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    if args.samples:
        scaling(tasks(args.dataset, args.samples, args.train, args.k), args)
    if args.tiny:
        overhead(tasks(args.dataset, args.tiny, args.train, k=1, hidden=8))
    if args.idle:
        idle(args.idle)


def scaling(work, args) -> None:
    from fvtui.cluster.connect import open_cluster
    from fvtui.verify import SolverPool

    seconds, outcomes = {}, {}
    for n in (1, 2):
        with SolverPool(n) as pool:
            seconds[f"pool {n}"], results = timed(pool, work)
        outcomes[f"pool {n}"] = outcome(results)
        with open_cluster(f"local:{n}") as cluster:
            seconds[f"dask {n}"], results = timed(cluster.solver(), work)
        outcomes[f"dask {n}"] = outcome(results)
    queries = sum(len(r[1]) for r in outcomes["pool 1"])
    print(f"{len(work)} fv searches (784-128-10, k={args.k}, {queries} solver queries), {args.dataset}")
    for name, s in seconds.items():
        print(f"  {name}: {s:7.2f} s wall, {s / len(work) * 1000:7.1f} ms per search")
    for backend in ("pool", "dask"):
        speedup = seconds[f"{backend} 1"] / seconds[f"{backend} 2"]
        print(f"  {backend}: speedup at 2 workers {speedup:.2f}, efficiency {speedup / 2:.0%}")
    for n in (1, 2):
        extra = seconds[f"dask {n}"] - seconds[f"pool {n}"]
        print(f"  dask against the pool, {n} worker(s): {extra / len(work) * 1000:+.1f} ms per task "
              f"({extra / seconds[f'pool {n}']:+.1%})")
    same = all(o == outcomes["pool 1"] for o in outcomes.values())
    print(f"  same searches, same counterexamples on every backend: {same}")


def overhead(work) -> None:
    from fvtui.cluster.connect import open_cluster
    from fvtui.verify import SolverPool

    with SolverPool(1) as pool:
        local = min(timed(pool, work)[0] for _ in range(3))
    with open_cluster("local:1") as cluster:
        dask = min(timed(cluster.solver(), work)[0] for _ in range(3))
    print(f"{len(work)} tiny searches (784-8-10, k=1), one worker, best of 3: pool {local / len(work) * 1000:.1f} ms, "
          f"dask {dask / len(work) * 1000:.1f} ms per task: {(dask - local) / len(work) * 1000:+.1f} ms of overhead")


def idle(seconds: float) -> None:
    import psutil

    import fvtui.cluster.connect as connect

    quiet = dict(connect.QUIET)
    for name, settings in (("fvtui's settings", quiet), ("Dask's defaults", {})):
        connect.QUIET = settings
        with connect.open_cluster("local:2"):
            time.sleep(2.0)
            processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
            before = [sum(p.cpu_times()[:2]) for p in processes]
            time.sleep(seconds)
            used = [sum(p.cpu_times()[:2]) - b for p, b in zip(processes, before)]
        print(f"idle local:2 cluster, {name}: {sum(used) / seconds:.1%} of a core in all "
              f"(client and scheduler {used[0] / seconds:.1%}, worker processes "
              f"{', '.join(f'{u / seconds:.1%}' for u in used[1:] if u > 0)})")
    connect.QUIET = quiet


if __name__ == "__main__":
    main()
