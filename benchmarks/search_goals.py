"""The figures of issue 23's goals, from real headless sessions on this machine.

Each goal is one session run by the CLI (so the solver pool, its worker processes and the round
journal are all in the measurement), in a scratch sessions folder. Printed per goal: wall time,
the augment (verification) phase, solver queries and their outcomes, samples cut short by the
per-query cap, the MILP fallback's UNSAT answers, and two efficiencies of the pool, each a sum over
samples divided by workers, over the augment phase's wall time: "busy" sums each sample's whole
search in its worker (1.0: no worker ever idle, the load-balance goal), "query" sums solver queries
only (what is left is building queries, messages and the parent's checks). "Bound" is the best busy
efficiency any order of the samples could reach without splitting one sample's search across
workers: a round lasts at least its longest sample. Then each phase's share of the queries' time
(fvtui/verify/phases.py), their CPU time over it (well below 1: they waited for a core), and what held the
longest query.

    FVTUI_DATA_DIR=../shared/datasets python benchmarks/search_goals.py [--goals fvaal128,random128,random32]
        [--rounds 20] [--seed 0] [--workers 2] [--timeout 300] [--dataset fashionmnist] [--marabou-slice auto|off]
        [--limit SECONDS] [--keep DIR]

Goals (issue 23, on an idle 2-core machine): fvaal128 <= 180 s; random128 <= 20 min with <= 1% of samples
cut short at a >= 300 s cap; random32 <= 5 min with none cut short.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fvtui.records import longest_query, phase_text  # noqa: E402
from fvtui.schema import FV_POINTS, MARABOU_SLICES  # noqa: E402
from fvtui.verify.phases import PHASES  # noqa: E402
from fvtui.store import SessionStore  # noqa: E402

GOALS = {  # name: (strategy, hidden, goal in seconds)
    "fvaal128": ("fvaal", 128, 180),
    "random128": ("random", 128, 1200),
    "random32": ("random", 32, 300),
    "fvaal32": ("fvaal", 32, None),
}


def run_goal(name: str, args: argparse.Namespace, root: Path) -> str:
    strategy, hidden, goal = GOALS[name]
    command = [sys.executable, "-m", "fvtui", "--sessions-dir", str(root), "new", "--dataset", args.dataset,
               "--name", name, "--strategy", strategy, "--augment", "fv", "--hidden", str(hidden),
               "--rounds", str(args.rounds), "--seed", str(args.seed), "--verify-timeout", str(args.timeout),
               "--workers", str(args.workers), "--fv-points", args.fv_points,
               "--marabou-slice", args.marabou_slice, "--headless"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = False
    try:
        _, err = process.communicate(timeout=args.limit)
    except subprocess.TimeoutExpired:  # as Ctrl-C: the finished rounds are saved and reported
        stopped = True
        process.send_signal(signal.SIGINT)
        _, err = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode != 0 and not stopped:
        return f"{name}: exit {process.returncode}: {err.strip().splitlines()[-1:]}"
    with SessionStore(root).open(name, writable=False) as session:
        rounds = session.rounds
        origins = np.concatenate([session.synthetic(r.round).origin for r in rounds] or [np.zeros(0, "<U8")])
    samples = [v for r in rounds for v in r.verification]
    augment = sum(r.seconds["augment"] for r in rounds)
    solver = sum(v.seconds for v in samples)
    busy = sum(v.search_seconds for v in samples)
    searches = [[v.search_seconds for v in r.verification] for r in rounds]  # per round
    shortest_rounds = sum(max(sum(t) / args.workers, max(t, default=0.0)) for t in searches)
    queries = sum(v.queries for v in samples)
    short = sum(v.status == "timeout" for v in samples)
    counts = {k: sum(getattr(r.queries, k) for r in rounds) for k in ("sat", "unsat", "timeout", "error", "spurious")}
    times = [t for v in samples for t in v.query_seconds]
    longest = max(times, default=0.0)
    phases = [p for v in samples for p in v.query_phases]
    by_phase = {name: sum(p.get(name, 0.0) for p in phases) for name in PHASES}
    timed = sum(by_phase.values())
    slow = longest_query(times, phases)
    went = "" if not timed or slow is None else (
        "; the queries' time by phase: " + ", ".join(f"{name} {t / timed:.0%}" for name, t in by_phase.items() if t)
        + f", cpu/wall {sum(p.get('cpu', 0.0) for p in phases) / timed:.2f}; longest query: "
        + phase_text(phases[slow]))
    verdict = "" if goal is None or (args.rounds != 20 and wall <= goal) else (
        " (goal %d s: %s)" % (goal, "met" if wall <= goal and not stopped else "not met"))
    how = f"stopped at --limit after {len(rounds)} finished rounds" if stopped else f"{len(rounds)} rounds"
    per_round = "".join(
        f"\n  round {r.round}: augment {r.seconds['augment']:.1f} s, searches {sum(t):.1f} s over {len(t)} samples, "
        f"longest {max(t, default=0.0):.1f} s, busy {sum(t) / args.workers / max(r.seconds['augment'], 1e-9):.2f}"
        for r, t in zip(rounds, searches)) if args.per_round else ""
    return (f"{name}: {how}, hidden {hidden}, {wall:.0f} s wall{verdict}; augment {augment:.0f} s; "
            f"{queries} queries ({', '.join(f'{v} {k}' for k, v in counts.items())}), longest {longest:.1f} s; "
            f"{short} of {len(samples)} samples cut short ({100 * short / max(1, len(samples)):.1f}%); "
            f"efficiency busy {busy / args.workers / max(augment, 1e-9):.2f} "
            f"(bound {busy / args.workers / max(shortest_rounds, 1e-9):.2f}), "
            f"query {solver / args.workers / max(augment, 1e-9):.2f}; counterexamples by origin: "
            f"{', '.join(f'{o} {n}' for o, n in zip(*np.unique(origins, return_counts=True)))}{went}{per_round}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goals", default="fvaal128,random128,random32")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--dataset", default="fashionmnist")
    ap.add_argument("--fv-points", default="marabou", choices=FV_POINTS,
                    help="who finds fv's counterexamples (the session setting of that name)")
    ap.add_argument("--marabou-slice", default="auto", choices=MARABOU_SLICES,
                    help="off: Marabou alone has every query (the load-independent mode), to measure its cost")
    ap.add_argument("--limit", type=float, default=None,
                    help="seconds per goal, then stop the session as Ctrl-C would and report its finished rounds")
    ap.add_argument("--per-round", action="store_true", help="also print each round's augment time and efficiency")
    ap.add_argument("--keep", metavar="DIR", help="keep the sessions in this sessions folder, to replay their searches "
                    "or read their queries' phases (default: a temporary folder, removed)")
    args = ap.parse_args()
    unknown = [g for g in args.goals.split(",") if g not in GOALS]
    if unknown:
        sys.exit(f"unknown goal(s) {', '.join(unknown)}; choose from {', '.join(GOALS)}")
    with tempfile.TemporaryDirectory(prefix="fvtui-goals-") as tmp:
        root = Path(args.keep or tmp)
        for name in args.goals.split(","):
            print(run_goal(name, args, root), flush=True)


if __name__ == "__main__":
    main()
