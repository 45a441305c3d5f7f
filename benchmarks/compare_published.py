"""fvtui's AUBC beside the paper's published AUBC, method by method, as a Markdown table.

    python benchmarks/compare_published.py assets/reference/fashionmnist/aubc.csv [more aubc.csv ...]

The published figures are assets/reference/published_aubc.csv (see PUBLISHED.md there). With
several aubc.csv files (e.g. two initialisations), each gets its own columns, headed by its folder.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parent.parent / "assets" / "reference" / "published_aubc.csv"


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def table(paths: list[Path]) -> str:
    ours = [{row["method"]: row for row in _read(p)} for p in paths]
    datasets = {row["dataset"] for result in ours for row in result.values()}
    published = [row for row in _read(PUBLISHED) if row["dataset"] in datasets]
    head = "| method | published |" + "".join(f" {p.parent.name} | diff |" for p in paths)
    lines = [head, "|---|---:|" + "---:|---:|" * len(paths)]
    for pub in sorted(published, key=lambda r: -float(r["aubc_mean"])):
        cells = [pub["label"], f"{float(pub['aubc_mean']):.4f} ± {float(pub['aubc_std']):.4f}"]
        for result in ours:
            row = result.get(pub["method"])
            if row is None:
                cells += ["-", "-"]
                continue
            mean = float(row["aubc_mean"])
            seeds = f" ({row['seeds']})" if row["seeds"] != "5" else ""
            cells += [f"{mean:.4f} ± {float(row['aubc_std']):.4f}{seeds}", f"{mean - float(pub['aubc_mean']):+.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(table([Path(p) for p in sys.argv[1:]]))
