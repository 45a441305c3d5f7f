"""`fvtui bench`: the command-line face of the benchmark (parser and dispatch)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import EXIT_CODES, UserError

EXAMPLE = ("examples: fvtui bench --dataset mnist --paper --jobs 2;  "
           "fvtui bench --dataset demo --methods random+none,badge+fv --seeds 0-1 --rounds 5;  "
           "fvtui bench --name bench-mnist --report-only.  " + EXIT_CODES)


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    from ..schema import add_flags
    from .spec import ENGINE_SETTINGS

    p = sub.add_parser(
        "bench", help="run methods x seeds as sessions; accuracy CSV, AUBC tables, figure, diversity, timing",
        description="Run every method x seed as a headless session of its own, grouped in "
                    "SESSIONS_DIR/NAME/, skipping finished sessions (an interrupted benchmark resumes), then write "
                    "the comparison into the output folder. Engine flags left out are taken from the benchmark's "
                    "bench.json, else the paper's protocol.", epilog=EXAMPLE, parents=parents)
    p.add_argument("--dataset", help="mnist, fashionmnist, cifar10 or demo (may be left out for an existing --name)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--methods", help="comma-separated STRATEGY+AUGMENTATION (e.g. random+none,badge+fv) "
                                         "or the paper's names (e.g. BADGE+FV-Adv)")
    which.add_argument("--paper", action="store_true", help="the paper's twelve methods")
    p.add_argument("--seeds", metavar="SEEDS", help="e.g. 0-4 (default), 0,2,5 or 3")
    p.add_argument("--name", help="benchmark name: the sessions folder it groups (default: bench-DATASET)")
    p.add_argument("--out", help="output folder (default: SESSIONS_DIR/NAME/results)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="sessions run side by side (default 1); each gets CPUs/jobs solver workers (with --cluster: "
                        "sessions run as Dask tasks, on a sessions folder every worker shares)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="solver processes per session (default: CPUs // jobs)")
    p.add_argument("--report-only", action="store_true",
                   help="re-make the outputs from the saved sessions, run nothing")
    engine = p.add_argument_group("engine settings (default: the benchmark's bench.json, else the protocol)")
    add_flags(engine, ENGINE_SETTINGS, defaults=False)
    return p


def main(store, args: argparse.Namespace) -> int:
    from . import report, runner
    from .spec import resolve

    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {args.jobs}")
    spec = resolve(args, store.root)

    def say(line: str) -> None:
        print(line, flush=True)

    if args.report_only:
        if not spec.root.is_dir() and not spec.digests.is_dir():
            raise UserError(f"no benchmark '{spec.name}' in {store.root} (nor session digests in {spec.digests})")
        _print_outputs(report.make(spec, say))
        return 0
    jobs = runner.plan(spec)
    from ..cluster.connect import cluster_for
    from ..store import take_lock

    with cluster_for(args.cluster, sessions=spec.root) as cluster:  # checked before bench.json is written
        spec.root.mkdir(parents=True, exist_ok=True)
        lock = take_lock(spec.root, "benchmark")  # a second run of it would race for its sessions and logs
        try:
            spec.save()
            summary = runner.run(spec, jobs, parallel=args.jobs, workers=args.workers, data_dir=args.data_dir,
                                 say=say, cluster=cluster)
        finally:
            os.close(lock)
    done = len(summary.finished) + len(summary.skipped)
    tally = (f"{done}/{summary.total} sessions finished ({len(summary.skipped)} of them before this run), "
             f"{len(summary.failed)} failed, {len(summary.stopped)} stopped, in {summary.seconds:.1f}s")
    if summary.interrupted:
        say(f"interrupted: {tally}; run the same command again to resume (finished sessions are skipped)")
        return 130
    say(tally)
    if done == 0:
        raise UserError(f"no session of benchmark '{spec.name}' finished; see the logs in {spec.root / runner.LOG_DIR}")
    _print_outputs(report.make(spec, say))
    if summary.failed:
        say(f"failed: {', '.join(summary.failed)}; the tables leave them out. Fix the cause (see their logs) and "
            "run the same command again: it runs only what is missing")
        return 1
    return 0


def _print_outputs(outputs) -> None:
    aubc_md = (outputs.folder / "aubc.md").read_text().splitlines()
    print("\n".join(line for line in aubc_md if line.startswith("|")))
    names = ", ".join(p.name for p in outputs.files)
    print(f"wrote {names} in {outputs.folder}")
    if outputs.missing or outputs.incomplete:
        print(f"not in the tables: {len(outputs.missing)} session(s) not started, {len(outputs.incomplete)} unfinished",
              file=sys.stderr)
