"""How fast is the fv search on the protocol's network, and how well does SolverPool use the cores?

Fits a 784-128-10 MLP (no output bias) on Fashion-MNIST with torch (here only: the verify
package never imports it), runs the protocol's search (k=10, eps 0.06 + 0.05 steps, 30 s per
query) on test samples through SolverPool, and compares the simplified exclusions with the
literal encoding on a few samples (in a capped child process: the literal one can eat memory).

    python benchmarks/verify_speed.py [--samples 20] [--train 1000] [--literal 2]
Data: $FVTUI_DATA_DIR (default /work/shared/datasets)/FashionMNIST/raw/*-idx*-ubyte.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fvtui.verify import Network, SearchTask, SolverPool  # noqa: E402
from fvtui.verify.query import build_query, solve  # noqa: E402


def load_idx(name: str) -> np.ndarray:
    raw = Path(os.environ.get("FVTUI_DATA_DIR", "/work/shared/datasets")) / "FashionMNIST" / "raw" / name
    data = raw.read_bytes()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fit_network(n_train: int, seed: int = 0) -> tuple[Network, float]:
    import torch
    from torch import nn

    x = load_idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    y = load_idx("train-labels-idx1-ubyte").astype(np.int64)
    idx = np.random.default_rng(seed).choice(len(x), n_train, replace=False)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, bias=False))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
    for _ in range(10):
        for b in torch.randperm(n_train).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
    net = Network(
        (model[0].weight.detach().numpy().copy(), model[2].weight.detach().numpy().copy()),
        (model[0].bias.detach().numpy().copy(), None),
    )
    xs = load_idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    ys = load_idx("t10k-labels-idx1-ubyte")
    return net, float((net.predict(xs) == ys).mean())


def literal_search(net, x, w, r, k, eps_start, eps_step, timeout, out) -> None:
    """The protocol's loop with every exclusion passed to Marabou as is (no simplification)."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    points: list[np.ndarray] = []
    eps = eps_start
    while len(points) < k:
        lo = np.clip(x.astype(np.float64) - eps, 0, 1)
        up = np.clip(x.astype(np.float64) + eps, 0, 1)
        pixels = np.tile(np.arange(x.size), len(points))
        centers = np.ravel(points) if points else np.zeros(0)
        s = solve(build_query(net, lo, up, w, [r], 0.001, pixels, centers, 0.001), x.size, timeout)
        out.put((eps, s.status, s.seconds, pixels.size))
        if s.status == "sat":
            points.append(np.clip(s.x, lo, up).astype(np.float32))
        elif s.status == "unsat" and eps < 1:
            eps = min(1.0, eps + eps_step)
        else:
            return


def run_literal(net, x, w, r, per_query: float, total: float) -> list[tuple]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=literal_search, args=(net, x, w, r, 10, 0.06, 0.05, per_query, out))
    proc.start()
    rows, end = [], time.monotonic() + total
    while time.monotonic() < end and (proc.is_alive() or not out.empty()):
        try:
            rows.append(out.get(timeout=0.2))
        except Exception:  # queue.Empty
            continue
    if proc.is_alive():
        proc.kill()
        rows.append(("killed", f"after {total:.0f} s total"))
    proc.join()
    if proc.exitcode not in (0, None) and rows[-1][0] != "killed":
        rows.append(("died", f"exit code {proc.exitcode}"))
    return rows


def compare_encodings(tasks) -> None:
    """One first query per sample (its eps-0.06 box), ReLUs the box decides folded or all kept."""
    times: dict[bool, list[float]] = {True: [], False: []}
    agree = 0
    for t in tasks:
        lo, up = np.clip(t.x - 0.06, 0, 1), np.clip(t.x + 0.06, 0, 1)
        status = {}
        for fold in (False, True):
            start = time.perf_counter()
            status[fold] = solve(build_query(t.net, lo, up, t.target, [t.runner_up], fold=fold), t.x.size, 30).status
            times[fold].append(time.perf_counter() - start)
        agree += status[True] == status[False]
    if tasks:
        plain, folded = np.median(times[False]), np.median(times[True])
        print(f"\nReLU encoding, {len(tasks)} first queries (build + solve, median): all ReLUs {plain:.3f} s, "
              f"decided ones folded {folded:.3f} s ({plain / folded:.1f}x); same answer on {agree}/{len(tasks)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--literal", type=int, default=2, help="samples for the literal-vs-simplified comparison")
    ap.add_argument("--literal-timeout", type=float, default=10.0)
    ap.add_argument("--encodings", type=int, default=10, help="samples for the folded-vs-plain ReLU encoding")
    args = ap.parse_args()

    t = time.perf_counter()
    net, acc = fit_network(args.train)
    seconds = time.perf_counter() - t
    print(f"network 784-128-10 fit on {args.train} samples in {seconds:.1f} s, test accuracy {acc:.3f}")
    xs = load_idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32)[: args.samples] / 255
    tasks = []
    for x in xs:
        order = np.argsort(-net.logits(x))
        w, r = int(order[0]), int(order[1])
        tasks.append(SearchTask(net, x, w, r, k=10, eps_start=0.06, eps_step=0.05, timeout=args.timeout))

    with SolverPool(args.workers) as pool:
        time.sleep(1.0)  # let the workers finish importing, as they would have in a running app
        t = time.perf_counter()
        results = pool.run_searches(tasks)
        wall = time.perf_counter() - t

    queries = [q for r in results for q in r.queries]
    solved = [q for q in queries if not q.presolved]
    solver_sum = sum(q.seconds for q in queries)
    n_ce = sum(len(r.counterexamples) for r in results)
    statuses = {s: sum(r.status == s for r in results) for s in ("sat", "exhausted", "timeout", "error")}
    qstat = {s: sum(q.status == s for q in queries) for s in ("sat", "unsat", "spurious", "timeout", "error")}
    print(f"\n{len(tasks)} samples, {args.workers} workers: {n_ce} counterexamples, sample statuses {statuses}")
    print(f"queries {len(queries)} ({sum(q.presolved for q in queries)} decided by simplification): {qstat}")
    print(f"seconds per counterexample: {wall / max(n_ce, 1):.2f} wall, {solver_sum / max(n_ce, 1):.2f} solver")
    fast = [q.seconds for q in solved if q.status != "timeout"]
    print(f"per-query time (build + solve), timeouts excluded: mean {np.mean(fast):.3f} s, "
          f"median {np.median(fast):.3f} s")
    d = [q.disjunctions for q in solved]
    print(f"disjunctions per query: mean {np.mean(d):.1f}, median {np.median(d):.0f}, max {max(d)}")
    print(f"wall {wall:.1f} s vs solver sum {solver_sum:.1f} s: ratio {wall / solver_sum:.2f} (target <= 0.6)")
    for i, r in enumerate(results):
        print(
            f"  sample {i:2d}: {r.status:9s} {len(r.counterexamples):2d} ce, final eps {r.final_eps:.2f}, "
            f"{len(r.queries):2d} queries, {r.solver_seconds:6.2f} s solver {r.message}"
        )

    compare_encodings(tasks[: args.encodings])

    for i in range(min(args.literal, len(tasks))):
        t = tasks[i]
        rows = run_literal(net, t.x, t.target, t.runner_up, args.literal_timeout, total=90)
        simple = results[i]
        cap = f"{args.literal_timeout:.0f} s a query, 90 s, 4 GB"
        print(f"\nliteral vs simplified, sample {i} (literal capped at {cap}):")
        print(f"  simplified: {simple.status}, {len(simple.counterexamples)} ce in {simple.solver_seconds:.2f} s "
              f"solver, disjunctions {[q.disjunctions for q in simple.queries]}")
        found = sum(1 for row in rows if row[1] == "sat")
        spent = sum(row[2] for row in rows if len(row) == 4)
        print(f"  literal:    {found} ce in {spent:.2f} s solver; queries (eps, status, s, disjunctions):")
        for row in rows:
            print("   ", row if len(row) != 4 else (row[0], row[1], round(row[2], 2), row[3]))


if __name__ == "__main__":
    main()
