"""What Marabou itself spends on a session's SAT queries: the floor under the default mode's speed goals.

The default mode asks Marabou one whole query per counterexample, and the protocol makes each point
Marabou's answer, so a session's SAT queries cost at least Marabou's own time on them, whatever runs
around it. This rebuilds the queries of a kept session's rounds (fvtui/interop/replay.py), solves each
SAT query once in this process, built as the search builds it, and prints Marabou's own statistics per
query: preprocessing, then the main loop and the parts of it that it times (bound tightening on the
explicit basis, simplex steps, DeepPoly), and building the query in Python. Then the floor for a
session of QUERIES such queries on WORKERS workers: the solve time alone, and the preprocessing and
simplex steps alone (what would be left if Marabou tightened no bound at all). A query Marabou does not
answer in --timeout seconds is left out and counted (the session had its point from the narrowed query).

    FVTUI_DATA_DIR=../shared/datasets python benchmarks/marabou_floor.py SESSIONS_DIR NAME
        [--rounds 2,10,18] [--sample 100] [--queries 9000] [--workers 2] [--timeout 10]

Sessions to read: `benchmarks/search_goals.py --goals fvaal128 --keep DIR` keeps its session in DIR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from maraboupy import MarabouCore  # noqa: E402

from fvtui import model as nn_model  # noqa: E402
from fvtui.data import dataset_for  # noqa: E402
from fvtui.interop.replay import rebuild_round  # noqa: E402
from fvtui.store import SessionStore  # noqa: E402
from fvtui.verify.query import FirstLayerEquations, build_query  # noqa: E402

# Marabou's statistics (all in microseconds), as printed
PARTS = {
    "preprocessing": "PREPROCESSING_TIME_MICRO",
    "main loop": "TIME_MAIN_LOOP_MICRO",
    "  explicit-basis tightening": "TOTAL_TIME_EXPLICIT_BASIS_BOUND_TIGHTENING_MICRO",
    "  simplex steps": "TIME_SIMPLEX_STEPS_MICRO",
    "  DeepPoly": "TOTAL_TIME_PERFORMING_SYMBOLIC_BOUND_TIGHTENING",
}


def measure(net, queries, timeout: int) -> tuple[dict[str, np.ndarray], int]:
    """Per query Marabou answers within `timeout` seconds, in seconds: building it, Marabou's solve() wall time,
    and each of PARTS; and how many it did not answer (the session had them from the narrowed query)."""
    first_layer = FirstLayerEquations()
    rows: dict[str, list[float]] = {"build": [], "solve": [], **{name: [] for name in PARTS}}
    unanswered = 0
    for q in queries:
        start = time.perf_counter()
        ipq = build_query(net, q.lower, q.upper, q.winner, [q.runner_up], q.margin, q.pixels, q.centers, q.delta,
                          first_layer=first_layer)
        built = time.perf_counter()
        options = MarabouCore.Options()
        options._verbosity, options._timeoutInSeconds = 0, timeout
        code, _, stats = MarabouCore.solve(ipq, options, "")
        if code != "sat":
            unanswered += 1
            continue
        rows["build"].append(built - start)
        rows["solve"].append(time.perf_counter() - built)
        for name, attribute in PARTS.items():
            rows[name].append(stats.getLongAttribute(getattr(MarabouCore.StatisticsLongAttribute, attribute)) / 1e6)
    return {name: np.array(values) for name, values in rows.items()}, unanswered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sessions", type=Path, help="a sessions folder")
    ap.add_argument("name", help="a session in it")
    ap.add_argument("--rounds", default="2,10,18", help="rounds whose queries to replay, comma-separated")
    ap.add_argument("--sample", type=int, default=100, help="SAT queries per round (the first ones)")
    ap.add_argument("--queries", type=int, default=9000, help="SAT queries in the session the floor is for")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=10, help="Marabou's seconds a query; the rest are left out")
    args = ap.parse_args()
    means = []
    with SessionStore(args.sessions).open(args.name, writable=False) as session:
        dataset = dataset_for(session.config)
        for round_index in (int(r) for r in args.rounds.split(",")):
            rebuilt = rebuild_round(session, dataset, round_index)
            model = nn_model.model_from_numpy(session.model_state(rebuilt.model_round), dataset.num_features,
                                              session.config.hidden, dataset.num_classes)
            sat = [q for q in rebuilt.queries if q.verdict == "sat"][:args.sample]
            rows, unanswered = measure(nn_model.to_network(model), sat, args.timeout)
            means.append({name: float(values.mean()) for name, values in rows.items()})
            print(f"round {round_index}: {len(sat)} SAT queries, mean (median) ms a query"
                  + (f"; {unanswered} left out, not answered by Marabou in {args.timeout} s" if unanswered else ""))
            for name, values in rows.items():
                print(f"  {name:30s} {values.mean() * 1e3:7.1f} ({np.median(values) * 1e3:6.1f})")
    solve = np.mean([m["solve"] for m in means])
    lean = np.mean([m["preprocessing"] + m["  simplex steps"] for m in means])
    print(f"floor for {args.queries:,} such queries on {args.workers} workers: Marabou's solve() "
          f"{args.queries * solve / args.workers:.0f} s; its preprocessing and simplex steps alone "
          f"{args.queries * lean / args.workers:.0f} s")


if __name__ == "__main__":
    main()
