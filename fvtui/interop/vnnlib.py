"""Rebuilt solver queries as VNN-LIB files, in VNN-COMP's benchmark layout.

One folder per round: `onnx/` (the network the queries are about: the model before the round),
`vnnlib/` (one file per query), `instances.csv` (onnx, vnnlib, timeout; no header, as VNN-COMP's)
and `queries.csv` (what fvtui got for each). A VNN-LIB property describes the unsafe inputs, so SAT
means a counterexample, as in fvtui: the file asserts the box (after the exclusions tightened it),
the exclusion disjunctions left, and Y_r - Y_w >= margin (runner-up beats winner by the margin).

Numbers are written in positional notation with the shortest digits that read back as the very
float64 fvtui handed Marabou, so the query is the same to the bit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..errors import UserError
from .replay import RebuiltQuery, RebuiltRound


def num(value: float) -> str:
    """Shortest round-trip decimal of a float64, never in exponent notation (SMT-LIB has none)."""
    return np.format_float_positional(np.float64(value), unique=True, trim="0")


def query_file_name(q: RebuiltQuery) -> str:
    return f"r{q.round:04d}_s{q.sample:06d}_q{q.number:02d}.vnnlib"


def vnnlib_text(q: RebuiltQuery, outputs: int, network: str, header: list[str] = ()) -> str:
    n = q.x.size
    verdict = {"sat": "sat: a counterexample (below)", "unsat": "unsat",
               "timeout": "timeout (no answer within the round's budget)", "error": "error (the solver failed)"}
    how = "decided by the exclusion simplification, Marabou not called" if q.presolved else f"{q.seconds:g} s"
    lines = [
        f"; fvtui solver query: round {q.round}, sample {q.sample} (dataset index), query {q.number} of its search",
        f"; network: {network}",
        *[f"; {line}" for line in header],
        f"; eps {num(q.eps)}: every X_i in [max(0, x_i - eps), min(1, x_i + eps)], x the sample",
        f"; output: class {q.runner_up} (runner-up) beats class {q.winner} (winner) by {num(q.margin)}: "
        f"Y_{q.winner} - Y_{q.runner_up} <= -{num(q.margin)}",
        f"; exclusions: {q.excluded} earlier point(s), each excluded by {num(q.delta)} in every pixel; after "
        f"tightening the box {q.pixels.size} disjunction(s) are left (fvtui/verify/exclusions.py)",
        f"; verdict fvtui got: {verdict.get(q.verdict, q.verdict)} ({how})",
    ]
    if q.counterexample is not None:
        lines.append(f"; counterexample (float32 X_0 .. X_{n - 1}, the network gives class {q.predicted}; rounded to "
                     "float32 it meets the margin to within about 1e-6, and fvtui kept it because the class changes):")
        lines.append("; " + " ".join(num(v) for v in np.asarray(q.counterexample, np.float64)))
    lines.append("")
    lines += [f"(declare-const X_{i} Real)" for i in range(n)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(outputs)]
    lines.append("; input box")
    for i, (lo, hi) in enumerate(zip(q.lower.tolist(), q.upper.tolist())):
        lines.append(f"(assert (>= X_{i} {num(lo)}))")
        lines.append(f"(assert (<= X_{i} {num(hi)}))")
    if q.pixels.size:
        lines.append("; exclusion disjunctions")
        for p, c in zip(q.pixels.tolist(), q.centers.tolist()):
            lines.append(f"(assert (or (<= X_{p} {num(c - q.delta)}) (>= X_{p} {num(c + q.delta)})))")
    lines.append("; output constraint")
    lines.append(f"(assert (<= (- Y_{q.winner} Y_{q.runner_up}) (- {num(q.margin)})))")
    return "\n".join(lines) + "\n"


def export_round(session, dataset, rebuilt: RebuiltRound, folder: Path) -> dict:
    """Write the round's folder; returns counts for the summary line."""
    from .onnx_export import model_name, session_model, write_checked

    if not rebuilt.queries:
        reasons = "; ".join(f"sample {s}: {why}" for s, why in rebuilt.skipped[:3])
        raise UserError(f"round {rebuilt.round} of session '{session.name}' has no query that can be rebuilt "
                        f"exactly to export ({reasons})")
    network = f"onnx/{model_name(rebuilt.model_round)}"
    label = "initial" if rebuilt.model_round == 0 else f"round {rebuilt.model_round}"
    exported = write_checked(session_model(session, dataset, rebuilt.model_round), dataset.num_features,
                             dataset.test_x, folder / network, label,
                             {"fvtui_session": session.name, "fvtui_model": label, "fvtui_dataset": dataset.name})
    header = [f"session '{session.name}', dataset {dataset.name}; the queries of round {rebuilt.round} are about "
              f"the model of {label} (the one that selected its samples)",
              "rebuilt from the round's record (the session stores each search's outcome, not the query): "
              "the same box, tightening and disjunctions as fvtui's query (fvtui/interop/replay.py)"]
    rows, summary = [], []
    timeout = f"{rebuilt.timeout:g}"
    try:
        (folder / "vnnlib").mkdir(parents=True, exist_ok=True)
        for q in rebuilt.queries:
            name = f"vnnlib/{query_file_name(q)}"
            write_atomic(folder / name, vnnlib_text(q, dataset.num_classes, network, header))
            rows.append([network, name, timeout])
            summary.append([name, q.sample, q.number, num(q.eps), q.winner, q.runner_up, q.excluded,
                            q.pixels.size, int(q.presolved), q.verdict, "" if q.predicted is None else q.predicted,
                            f"{q.seconds:g}"])
        with open(folder / "instances.csv", "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)
        with open(folder / "queries.csv", "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["vnnlib", "sample", "query", "eps", "winner", "runner_up", "excluded_points",
                             "disjunctions", "presolved", "verdict", "predicted", "seconds"])
            writer.writerows(summary)
        if rebuilt.skipped:
            with open(folder / "not_exported.txt", "w") as fh:
                fh.write("Samples whose queries cannot be rebuilt exactly from the session, left out:\n")
                fh.writelines(f"sample {s}: {why}\n" for s, why in rebuilt.skipped)
    except OSError as exc:
        raise UserError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    verdicts = [q.verdict for q in rebuilt.queries]
    return {"folder": folder, "onnx": exported, "queries": len(rows), "skipped": len(rebuilt.skipped),
            "verdicts": {v: verdicts.count(v) for v in ("sat", "unsat", "timeout", "error") if v in verdicts},
            "presolved": sum(q.presolved for q in rebuilt.queries),
            "with_disjunctions": sum(q.pixels.size > 0 for q in rebuilt.queries)}
