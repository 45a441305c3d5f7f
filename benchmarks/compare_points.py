"""Two benchmarks of the same methods and seeds that differ in how counterexample points are made (the
default, Marabou's, against `--fv-points lp`): same-seed AUBC differences per method, whether the
methods without FV gave the same curves, and the paper's diversity side by side. Issue 23 asks for
this comparison of any faster way of making points: it is a finding, not a shortcut.

    python benchmarks/compare_points.py assets/reference/fashionmnist assets/reference/paper-lp/fashionmnist

Differences read second minus first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_findings import _read, differences, session_aubc  # noqa: E402


def _curves(results: Path) -> dict[tuple[str, int], list[str]]:
    curves: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for row in _read(results / "accuracy.csv"):
        curves.setdefault((row["method"], int(row["seed"])), []).append((int(row["round"]), row["accuracy"]))
    return {k: [a for _, a in sorted(c)] for k, c in curves.items()}


def report(first: Path, second: Path) -> str:
    a, b = session_aubc(first), session_aubc(second)
    scores = {(f"{m} second", s): v for (m, s), v in b.items()} | {(f"{m} first", s): v for (m, s), v in a.items()}
    methods = sorted({m for m, _ in a} & {m for m, _ in b})
    lines = [f"# {second} against {first}", ""]
    for m in (m for m in methods if m.endswith("+fv")):
        seeds = sorted(s for mm, s in a if mm == m and (m, s) in b)
        gap = mean(b[(m, s)] - a[(m, s)] for s in seeds) if seeds else float("nan")
        lines.append(f"- {m}: mean {gap:+.4f}; {differences(scores, m + ' second', m + ' first')}")
    ca, cb = _curves(first), _curves(second)
    same = [k for k in ca if k in cb and not k[0].endswith("+fv")]
    equal = sum(ca[k] == cb[k] for k in same)
    lines += ["", f"Methods without FV: {equal} of {len(same)} sessions gave the same accuracy curve, every round."]
    rows = {(r["method"], r["round"]): r for r in _read(first / "diversity.csv") if r["scope"] == "method"}
    lines += ["", "Diversity (paper's measure, mean pairwise logit distance of a round's synthetic samples):"]
    for r in _read(second / "diversity.csv"):
        other = rows.get((r["method"], r["round"]))
        if r["scope"] == "method" and other is not None and r["augment"] in ("fv", "fgsm"):
            lines.append(f"- {r['method']} round {r['round']}: {float(other['distance_mean']):.2f} -> "
                         f"{float(r['distance_mean']):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(report(Path(sys.argv[1]), Path(sys.argv[2])))
