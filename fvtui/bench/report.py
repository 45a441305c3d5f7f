"""A benchmark's outputs, made from its saved sessions only (so --report-only remakes them exactly).

  accuracy.csv         one row per saved round of every session, unfinished ones too: the learning curves
  aubc.csv, aubc.md    AUBC mean and std over seeds per method, best first
  learning_curves.png/.svg   one line per method (mean over seeds) with a band of one std
  learning_curves_by_strategy.png/.svg   the same lines, one panel per strategy
  diversity.csv, .md   the paper's diversity: pairwise logit-layer distances among a round's synthetic samples
  diversity_within_sample.csv, .md   an extra: hidden-layer distances within each queried sample's samples
  timing.csv, .md      seconds per phase, solver queries, their outcomes and throughput, per session
  report.md            all of it on one page, with the settings
The tables and figures take finished sessions only, so every row compares whole sessions.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import UserError
from ..metrics import DISTANCE_STATS, aubc
from ..records import PHASES, RoundRecord, longest_query, phase_text
from ..store import Session
from ..verify.phases import PHASES as QUERY_PHASES
from .digest import Digest, Moments, load_all, of_session, save
from .methods import PAPER_METHODS, Method
from .spec import BenchSpec

STD_NOTE = "std is numpy's population std (ddof=0) over seeds"
AUBC_NOTE = ("AUBC: trapezoid area under test accuracy versus round index 0..n-1, divided by n-1 "
             "(so in [0, 1]); " + STD_NOTE + ".")
DIVERSITY_NOTE = (
    "Diversity, the paper's measure (result_scripts/diversity_measure.py): the synthetic samples of round 1 "
    "(the first query size x k of the session's synthetic samples) and of the last round (the last query size x k), "
    "passed through the network after that round; every pairwise Euclidean distance among them in its output "
    "(logit) layer, across all queried samples of the round (scipy pdist); each statistic averaged over the "
    "sessions (seeds). As in the authors' code, a round 1 with fewer than query size x k samples lends the rest "
    "from round 2. A larger mean means more diverse synthetic samples.")
WITHIN_NOTE = (
    "An extra, not the paper's measure: for every queried sample with at least two synthetic samples, the "
    "Euclidean distance between each pair of them in the hidden-layer feature space (last ReLU layer) of the "
    "network that generated them (the model after the previous round); pooled over rounds and seeds.")
OUTCOMES = ("sat", "unsat", "timeout", "error", "spurious")
SLOW_QUERY_S = 30.0  # fvtui 0.1's per-query timeout: how many queries would it have cut short?
SAMPLE_STATUSES = ("counterexample", "robust", "timeout", "error")


@dataclass
class Run:
    """One session as the report sees it: its first `rounds` rounds."""

    name: str
    method: Method
    seed: int
    dataset: str
    hidden: tuple[int, ...]
    records: list[RoundRecord]
    target: int
    diversity: dict[int, dict[str, float]]  # the paper's statistics (finished sessions only)
    within: Moments | None  # within-sample distances (finished sessions that augment)

    @property
    def complete(self) -> bool:
        return len(self.records) >= self.target

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.records]


@dataclass
class Outputs:
    folder: Path
    files: list[Path]
    runs: list[Run]
    missing: list[str]
    incomplete: list[str]


def collect(spec: BenchSpec, digests: Path | None = None) -> tuple[list[Run], list[str]]:
    """The sessions the report covers, and the planned ones that do not exist (yet). A session that is
    gone from the sessions folder counts by its digest in `digests`; every finished one present gets
    its digest (re)written there."""
    store = spec.store
    saved = load_all(digests)
    present = set(store.names())
    if spec.methods is not None and spec.seeds is not None:
        names = [m.session_name(s) for s in spec.seeds for m in spec.methods]
        missing = [n for n in names if n not in present and n not in saved]
        names = [n for n in names if n not in missing]
    else:
        missing, names = [], sorted(present | set(saved))
    runs = []
    for name in names:
        if name in present:
            with store.open(name, writable=False) as session:
                if not _covered(spec, session):
                    continue
                if len(session.rounds) >= spec.rounds and digests is not None:
                    digest = of_session(session, spec.rounds, digests)
                    save(digest)
                else:
                    digest = Digest(name, session.path, session.config, session.settings, session.rounds, {}, None)
        else:
            digest = saved[name]
            if not _covered(spec, digest):
                continue
        cfg = digest.config
        runs.append(Run(name, Method(cfg.settings.strategy, cfg.settings.augment), cfg.seed, cfg.dataset, cfg.hidden,
                        digest.rounds[:spec.rounds], spec.rounds, digest.diversity, digest.within))
    order = _method_order(spec.methods, [r.method for r in runs])
    runs.sort(key=lambda r: (order.index(r.method), r.seed))
    return runs, missing


def _covered(spec: BenchSpec, session: Session | Digest) -> bool:
    cfg = session.config
    if spec.methods is not None and Method(cfg.settings.strategy, cfg.settings.augment) not in spec.methods:
        return False
    if (spec.seeds is not None and cfg.seed not in spec.seeds) or cfg.dataset != spec.dataset:
        return False
    if cfg.protocol != spec.template.protocol:
        spec.check_session(session)  # refuses, saying which protocols and why they do not mix
    return True


def _method_order(planned: Sequence[Method] | None, found: Iterable[Method]) -> list[Method]:
    order = list(planned or [])
    extra = {m for m in found if m not in order}
    paper = [m for m in PAPER_METHODS if m in extra]
    return order + paper + sorted(extra - set(paper), key=lambda m: m.key)


def make(spec: BenchSpec, say: Callable[[str], None] = print) -> Outputs:
    out = spec.out
    runs, missing = collect(spec, spec.digests)
    if not any(r.records for r in runs):
        raise UserError(f"benchmark '{spec.name}' has no finished round to report on (sessions in {spec.root})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    files: list[Path] = []
    incomplete = [r.name for r in runs if not r.complete]
    finished = [r for r in runs if r.complete]  # every table compares whole sessions only

    files.append(_write_csv(out / "accuracy.csv", *accuracy_table(runs)))
    aubc_header, aubc_rows = aubc_table(finished)
    files.append(_write_csv(out / "aubc.csv", aubc_header, aubc_rows))
    aubc_md = aubc_markdown(spec, aubc_rows, incomplete)
    files.append(_write_text(out / "aubc.md", aubc_md))

    from .figure import learning_curves

    files += learning_curves(spec, finished, out)

    div_header, div_rows = paper_diversity_table(spec, finished)
    files.append(_write_csv(out / "diversity.csv", div_header, div_rows))
    div_md = paper_diversity_markdown(div_rows)
    files.append(_write_text(out / "diversity.md", div_md))
    within_header, within_rows = diversity_table(spec, finished)
    files.append(_write_csv(out / "diversity_within_sample.csv", within_header, within_rows))
    files.append(_write_text(out / "diversity_within_sample.md", diversity_markdown(within_rows)))

    time_header, time_rows = timing_table(finished)
    files.append(_write_csv(out / "timing.csv", time_header, time_rows))
    time_md = timing_markdown(time_header, time_rows)
    files.append(_write_text(out / "timing.md", time_md))

    page = [f"# Benchmark {spec.name}", "", settings_line(spec, runs), ""]
    if missing or incomplete:
        page += [f"Not in the tables: {len(missing)} session(s) not started ({', '.join(missing) or '-'}), "
                 f"{len(incomplete)} unfinished ({', '.join(incomplete) or '-'}).", ""]
    page += load_note(finished)
    page += [_strip_title(aubc_md), "", "![learning curves](learning_curves.png)", "",
             "![learning curves by strategy](learning_curves_by_strategy.png)", "",
             _strip_title(div_md), "", _strip_title(time_md)]
    files.append(_write_text(out / "report.md", "\n".join(page)))
    return Outputs(out, files, runs, missing, incomplete)


def load_note(finished: list[Run]) -> list[str]:
    """What in the verifying sessions' results the machine's load could have changed: a reader
    comparing two runs of one benchmark needs to know which differences mean something."""
    verified = [r for r in finished if any(rec.verification for rec in r.records)]
    timed_out = [r.name for r in verified if any(rec.queries.timeout for rec in r.records)]
    if timed_out:
        return [f"Results that depend on the machine's load: {len(timed_out)} of {len(verified)} verifying "
                f"sessions had solver queries time out ({', '.join(timed_out)}); with more time the same seeds "
                "can find more counterexamples.", ""]
    if not verified:
        return []
    if all(rec.settings.marabou_slice == "off" for r in verified for rec in r.records):
        return [f"No solver query timed out in the {len(verified)} verifying sessions, and Marabou had every "
                "query to itself (--marabou-slice off): their results do not depend on the machine's load.", ""]
    return [f"No solver query timed out in the {len(verified)} verifying sessions: their verdicts, eps levels "
            "and counterexample counts do not depend on the machine's load. Their points can, from a query "
            "Marabou settled near the end of its slice on (README, Sessions: --marabou-slice off takes the "
            "clock out).", ""]


# -- accuracy and AUBC ------------------------------------------------------------------------
def accuracy_table(runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    header = ["dataset", "method", "label", "seed", "session", "round", "labeled", "synthetic", "accuracy"]
    rows = [[r.dataset, r.method.key, r.method.label, r.seed, r.name, rec.round, rec.labeled, rec.synthetic,
             rec.test_accuracy] for r in runs for rec in r.records]
    return header, rows


def aubc_table(runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    header = ["rank", "dataset", "method", "label", "seeds", "aubc_mean", "aubc_std", "final_accuracy_mean",
              "final_accuracy_std", "rounds", "seed_list"]
    groups = _by_method(runs)
    rows = []
    for method, members in groups.items():
        scores = np.array([aubc(r.accuracies) for r in members])
        finals = np.array([r.accuracies[-1] for r in members])
        rows.append([0, members[0].dataset, method.key, method.label, len(members), float(scores.mean()),
                     float(scores.std()), float(finals.mean()), float(finals.std()), members[0].target,
                     " ".join(str(r.seed) for r in members)])
    rows.sort(key=lambda row: (-row[5], row[3]))
    for rank, row in enumerate(rows, start=1):
        row[0] = rank
    return header, rows


def aubc_markdown(spec: BenchSpec, rows: list[list[Any]], incomplete: list[str]) -> str:
    lines = [f"# AUBC on {spec.dataset}, best first", "",
             "| rank | method | strategy+augmentation | AUBC mean | AUBC std | final accuracy | seeds |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for rank, _, key, label, n, mean, std, fmean, fstd, *_ in rows:
        lines.append(f"| {rank} | {label} | `{key}` | {mean:.4f} | {std:.4f} | {fmean:.4f} ± {fstd:.4f} | {n} |")
    lines += ["", AUBC_NOTE + f" Final accuracy: after round {spec.rounds}."]
    if incomplete:
        lines.append(f"Left out (fewer than {spec.rounds} rounds saved): {', '.join(incomplete)}.")
    return "\n".join(lines) + "\n"


def _by_method(runs: list[Run]) -> dict[Method, list[Run]]:
    groups: dict[Method, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.method, []).append(r)
    return groups


# -- diversity --------------------------------------------------------------------------------
def paper_diversity_table(spec: BenchSpec, runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    header = ["dataset", "scope", "method", "label", "augment", "round", "sessions", "samples",
              *(f"distance_{s}" for s in DISTANCE_STATS)]
    per_method: dict[tuple[Method, str], list[dict[str, float]]] = {}
    for run in runs:
        for round_index, stats in run.diversity.items():
            which = "first" if round_index == 1 else "last"
            per_method.setdefault((run.method, which), []).append({"round": round_index, **stats})
    rows, per_augment = [], {}
    for (method, which), results in per_method.items():
        rows.append(_paper_row(spec.dataset, "method", method.key, method.label, method.augment, results))
        per_augment.setdefault((method.augment, which), []).extend(results)
    methods = {m for m, _ in per_method}
    if len(methods) > len({m.augment for m in methods}):  # several strategies share an augmentation: pool them
        for (augment, which), results in per_augment.items():
            rows.append(_paper_row(spec.dataset, "augmentation", f"*+{augment}", f"all +{augment}", augment, results))
    return header, rows


def _paper_row(dataset: str, scope: str, key: str, label: str, augment: str,
               results: list[dict[str, float]]) -> list[Any]:
    rounds = sorted({int(r["round"]) for r in results})
    return [dataset, scope, key, label, augment, "/".join(map(str, rounds)), len(results),
            int(sum(r["samples"] for r in results)), *(float(np.mean([r[s] for r in results])) for s in DISTANCE_STATS)]


def paper_diversity_markdown(rows: list[list[Any]]) -> str:
    lines = ["# Diversity of the synthetic samples (the paper's measure)", ""]
    if not rows:
        return "\n".join(lines + ["No session made two or more synthetic samples in a round, so there is nothing "
                                  "to compare.", "", DIVERSITY_NOTE]) + "\n"
    lines += ["| method | augmentation | round | sessions | samples | " + " | ".join(DISTANCE_STATS) + " |",
              "|---|---|---:|---:|---:|" + "---:|" * len(DISTANCE_STATS)]
    for _, scope, key, label, augment, rounds, sessions, samples, *stats in rows:
        name = f"**{label}**" if scope == "augmentation" else label
        lines.append(f"| {name} | {augment} | {rounds} | {sessions} | {samples} | "
                     + " | ".join(f"{v:.4f}" for v in stats) + " |")
    return "\n".join(lines + ["", DIVERSITY_NOTE]) + "\n"


def diversity_table(spec: BenchSpec, runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    header = ["dataset", "scope", "method", "label", "augment", "sessions", "queried_samples", "synthetic_samples",
              "pairs", "distance_mean", "distance_std"]
    per_method: dict[Method, list[Moments]] = {}
    for run in runs:
        if run.within is not None and run.within.pairs:
            per_method.setdefault(run.method, []).append(run.within)
    rows = []
    per_augment: dict[str, list[Moments]] = {}
    for method, results in per_method.items():
        rows.append(_diversity_row(spec.dataset, "method", method.key, method.label, method.augment, results))
        per_augment.setdefault(method.augment, []).extend(results)
    if len(per_method) > len(per_augment):  # several strategies share an augmentation: pool them too
        for augment, results in per_augment.items():
            rows.append(_diversity_row(spec.dataset, "augmentation", f"*+{augment}", f"all +{augment}", augment,
                                       results))
    return header, rows


def _diversity_row(dataset: str, scope: str, key: str, label: str, augment: str,
                   results: list[Moments]) -> list[Any]:
    pairs, mean, std = Moments.pooled(results)
    return [dataset, scope, key, label, augment, len(results), sum(r.sources for r in results),
            sum(r.samples for r in results), pairs, mean, std]


def diversity_markdown(rows: list[list[Any]]) -> str:
    lines = ["# Diversity within each queried sample's synthetic samples (an extra, not the paper's measure)", ""]
    if not rows:
        return "\n".join(lines + ["No session made two or more synthetic samples from one queried sample "
                                  "(e.g. fgsm or fv), so there is nothing to compare.", "", WITHIN_NOTE]) + "\n"
    lines += ["| method | augmentation | sessions | queried samples | pairs | distance mean | distance std |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for _, scope, key, label, augment, sessions, sources, _, pairs, mean, std in rows:
        name = f"**{label}**" if scope == "augmentation" else label
        lines.append(f"| {name} | {augment} | {sessions} | {sources} | {pairs} | {mean:.4f} | {std:.4f} |")
    return "\n".join(lines + ["", WITHIN_NOTE]) + "\n"


# -- timing -----------------------------------------------------------------------------------
def timing_table(runs: list[Run]) -> tuple[list[str], list[list[Any]]]:
    header = ["dataset", "method", "label", "seed", "session", "rounds", *(f"{p}_s" for p in PHASES), "total_s",
              "queries", *OUTCOMES, *(f"samples_{s}" for s in SAMPLE_STATUSES), "synthetic", "queries_per_s",
              "counterexamples_per_s", "queries_over_30s", "longest_query_s",
              *(f"query_{p}_s" for p in QUERY_PHASES), "query_cpu_s", "longest_query_phases"]
    rows = []
    for r in runs:
        seconds = {p: sum(rec.seconds.get(p, 0.0) for rec in r.records) for p in PHASES}
        outcomes = {k: sum(getattr(rec.queries, k) for rec in r.records) for k in OUTCOMES}
        statuses = {s: sum(v.status == s for rec in r.records for v in rec.verification) for s in SAMPLE_STATUSES}
        queries = sum(v.queries for rec in r.records for v in rec.verification)
        synthetic = sum(rec.new_synthetic for rec in r.records)
        verify = seconds["augment"]
        verifying = queries > 0
        query_seconds = [t for rec in r.records for v in rec.verification for t in v.query_seconds]
        phases = [p for rec in r.records for v in rec.verification for p in v.query_phases]
        slow = longest_query(query_seconds, phases)
        longest = phase_text(phases[slow]) if slow is not None else ""
        rows.append([r.dataset, r.method.key, r.method.label, r.seed, r.name, len(r.records),
                     *(round(seconds[p], 3) for p in PHASES), round(sum(seconds.values()), 3), queries,
                     *outcomes.values(), *statuses.values(), synthetic,
                     round(queries / verify, 3) if verifying and verify > 0 else "",
                     round(synthetic / verify, 3) if verifying and verify > 0 else "",
                     sum(t > SLOW_QUERY_S for t in query_seconds), max(query_seconds, default=""),
                     *(round(sum(p.get(name, 0.0) for p in phases), 3) if phases else "" for name in QUERY_PHASES),
                     round(sum(p.get("cpu", 0.0) for p in phases), 3) if phases else "", longest])
    return header, rows


def timing_markdown(header: list[str], rows: list[list[Any]]) -> str:
    col = {name: i for i, name in enumerate(header)}
    lines = ["# Timing", "",
             "Seconds per phase summed over a session's rounds, averaged over its seeds (augment is the "
             "verification phase for fv); solver queries and outcomes summed over seeds; throughput over the "
             "augment/verify phase. spurious: solver answers the network re-check dropped (the authors' code keeps "
             "them); > 30 s: queries that ran longer than 30 s, and the longest one. Per-session numbers: "
             "timing.csv.", "",
             "| method | sessions | select | label | augment/verify | train | evaluate | total s | queries | "
             "sat | unsat | timeout | error | spurious | queries/s | counterexamples/s | > 30 s | longest s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[str, list[list[Any]]] = {}
    for row in rows:
        groups.setdefault(row[col["label"]], []).append(row)
    def longest(members: list[list[Any]]) -> str:
        times = [m[col["longest_query_s"]] for m in members if m[col["longest_query_s"]] != ""]
        return f"{max(times):.1f}" if times else "-"

    for label, members in groups.items():
        def mean(name: str) -> float:
            return float(np.mean([m[col[name]] for m in members]))

        def total(name: str) -> int:
            return int(sum(m[col[name]] for m in members))

        verify = sum(m[col["augment_s"]] for m in members)
        queries = total("queries")
        rate = f"{queries / verify:.2f}" if queries and verify > 0 else "-"
        made = f"{total('synthetic') / verify:.2f}" if queries and verify > 0 else "-"
        lines.append(f"| {label} | {len(members)} | " + " | ".join(f"{mean(p + '_s'):.1f}" for p in PHASES)
                     + f" | {mean('total_s'):.1f} | {queries} | "
                     + " | ".join(str(total(k)) for k in OUTCOMES) + f" | {rate} | {made} | "
                     + f"{total('queries_over_30s') if queries else '-'} | {longest(members)} |")
    return "\n".join(lines + _phase_lines(header, groups)) + "\n"


def _phase_lines(header: list[str], groups: dict[str, list[list[Any]]]) -> list[str]:
    """Where the solver's time went, per method: each phase's share of the queries' summed time (phases.py),
    CPU time over wall time (well below 1: the queries waited for a core or were stopped), and the longest
    query's phases. Only sessions that recorded phases count."""
    col = {name: i for i, name in enumerate(header)}
    lines = []
    for label, members in groups.items():
        recorded = [m for m in members if m[col["query_cpu_s"]] != ""]
        wall = {p: sum(m[col[f"query_{p}_s"]] for m in recorded) for p in QUERY_PHASES}
        total = sum(wall.values())
        if not total:
            continue
        slowest = max(recorded, key=lambda m: m[col["longest_query_s"]])
        cpu = sum(m[col["query_cpu_s"]] for m in recorded) / total
        lines.append(f"| {label} | {len(recorded)} | " + " | ".join(f"{wall[p] / total:.2f}" for p in QUERY_PHASES)
                     + f" | {total:.1f} | {cpu:.2f} | {slowest[col['longest_query_s']]:.1f} s: "
                     + f"{slowest[col['longest_query_phases']]} ({slowest[col['session']]}) |")
    if not lines:
        return []
    return ["", "## Where the solver's time went", "",
            "Each phase's share of the queries' time, summed over the sessions that recorded it: lp (the region "
            "program), offer (branch and bound before Marabou), build (Marabou's input query), marabou (its first "
            "call: the slice, or the whole budget), decide (HiGHS after the slice), narrowed (Marabou near HiGHS' "
            "input), whole (Marabou on the whole query after that). cpu/wall: the queries' CPU time over their "
            "time, forks included; well below 1, they waited (a loaded machine, a stop).", "",
            "| method | sessions | " + " | ".join(QUERY_PHASES) + " | phases s | cpu/wall | longest query |",
            "|---|---:|" + "---:|" * len(QUERY_PHASES) + "---:|---:|---|", *lines]


# -- shared -----------------------------------------------------------------------------------
def settings_line(spec: BenchSpec, runs: list[Run]) -> str:
    s = spec.settings_dict()
    seeds = sorted({r.seed for r in runs})
    return (f"Dataset {spec.dataset}; {len({r.method for r in runs})} methods x seeds {_ranges(seeds)}; "
            f"{s['rounds']} rounds; initial labeled {s['init_size']}; query {s['query_size']} per round from a "
            f"pool of {s['pool_size']}; MLP hidden {','.join(map(str, s['hidden']))}; {s['epochs']} epochs, batch "
            f"{s['batch_size']}, lr {s['lr']}; k = {s['advs_per_sample']} synthetic samples per queried sample; fv: "
            f"eps start {s['eps_start']}, step {s['eps_step']}, {s['verify_timeout']} s per solver query; "
            f"protocol {s['protocol']}, {s['init']} init, Adam eps {s['adam_eps']}, initial samples "
            f"{'in' if s['train_initial'] else 'not in'} the rounds' training sets.")


def _ranges(values: list[int]) -> str:
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(parts) or "-"


def _strip_title(markdown: str) -> str:
    return "#" + markdown if markdown.startswith("# ") else markdown


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    try:
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _write_text(path: Path, text: str) -> Path:
    try:
        path.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
