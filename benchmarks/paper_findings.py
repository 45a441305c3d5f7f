"""The paper's findings, checked on a benchmark's results: same-seed AUBC differences per strategy
(FV-Adv vs no augmentation, FGSM-Adv vs none, FV vs FGSM), the rank of BADGE+FV-Adv, and the
paper's diversity measure for FV against FGSM.

    python benchmarks/paper_findings.py assets/reference/fashionmnist

Only whole sessions count (all rounds saved); differences are listed per seed, so a finding on
two seeds reads as such.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from fvtui.metrics import aubc

STRATEGIES = ("random", "badge", "dfal", "fvaal")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def session_aubc(results: Path) -> dict[tuple[str, int], float]:
    curves: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for row in _read(results / "accuracy.csv"):
        curves.setdefault((row["method"], int(row["seed"])), []).append((int(row["round"]), float(row["accuracy"])))
    longest = max((len(c) for c in curves.values()), default=0)
    return {k: aubc([a for _, a in sorted(c)]) for k, c in curves.items() if len(c) == longest}


def differences(scores: dict[tuple[str, int], float], a: str, b: str) -> str:
    seeds = sorted(s for m, s in scores if m == a and (b, s) in scores)
    if not seeds:
        return "no common seed yet"
    diffs = [scores[(a, s)] - scores[(b, s)] for s in seeds]
    wins = sum(d > 0 for d in diffs)
    return (f"{', '.join(f'{d:+.3f}' for d in diffs)} (seeds {','.join(map(str, seeds))}; "
            f"{a} higher on {wins} of {len(seeds)})")


def report(results: Path) -> str:
    scores = session_aubc(results)
    lines = [f"# {results.name}", ""]
    for strategy in STRATEGIES:
        none, fv, fgsm = f"{strategy}+none", f"{strategy}+fv", f"{strategy}+fgsm"
        lines += [f"- {fv} - {none}: {differences(scores, fv, none)}",
                  f"- {fgsm} - {none}: {differences(scores, fgsm, none)}",
                  f"- {fv} - {fgsm}: {differences(scores, fv, fgsm)}"]
    ranked = sorted(_read(results / "aubc.csv"), key=lambda r: -float(r["aubc_mean"]))
    lines += ["", "Ranks (mean AUBC, seeds): " + "; ".join(
        f"{i}. {r['label']} {float(r['aubc_mean']):.4f} ({r['seeds']})" for i, r in enumerate(ranked, 1))]
    diversity = [r for r in _read(results / "diversity.csv") if r["augment"] in ("fv", "fgsm")]
    lines += ["", "Diversity (paper's measure, mean pairwise logit distance; round: sessions):"]
    lines += [f"- {r['label']} round {r['round']}: {float(r['distance_mean']):.2f} ± {float(r['distance_std']):.2f} "
              f"({r['sessions']} sessions)" for r in diversity]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("\n\n".join(report(Path(p)) for p in sys.argv[1:]))
