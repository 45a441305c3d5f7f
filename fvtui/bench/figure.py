"""The learning-curve figure: mean test accuracy over seeds per method, a band of one std around it.

Colour by strategy, line style and marker by augmentation, so Random / Random+FGSM-Adv /
Random+FV-Adv read as one family and FV is told from FGSM in print too. Drawn on a bare matplotlib
Figure (no pyplot, no display needed) as PNG and SVG, without dates in the files so re-made figures of the
same sessions are byte-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..metrics import aubc
from .methods import strategies

if TYPE_CHECKING:
    from .report import Run
    from .spec import BenchSpec

STYLES = {  # augmentation -> (line style, marker)
    "none": (":", None),
    "fgsm": ("--", "s"),
    "fv": ("-", "o"),
    "deepfool": ("-.", "^"),
}
# tab10 indices: the paper's strategies keep their colour in every figure, whatever else is plotted.
PAPER_COLORS = {"random": 7, "badge": 0, "dfal": 2, "fvaal": 3}
SPARE_COLORS = (1, 4, 5, 6, 8, 9)
OTHER_STYLES = [((0, (5, 1, 1, 1)), "D"), ((0, (1, 1)), "v"), ((0, (3, 1, 1, 1, 1, 1)), "P")]


def strategy_color(strategy: str) -> int:
    if strategy in PAPER_COLORS:
        return PAPER_COLORS[strategy]
    others = [s for s in strategies() if s not in PAPER_COLORS]  # stable: the registry's sorted names
    position = others.index(strategy) if strategy in others else len(others)
    return SPARE_COLORS[position % len(SPARE_COLORS)]


def learning_curves(spec: "BenchSpec", runs: list["Run"], stem: Path) -> list[Path]:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("the learning-curve figure needs matplotlib: pip install matplotlib") from None

    groups: dict = {}
    for r in runs:
        groups.setdefault(r.method, []).append(r)
    curves = []
    for method, members in groups.items():
        acc = np.array([m.accuracies for m in members])  # (seeds, rounds)
        labeled = np.array([rec.labeled for rec in members[0].records])
        scores = [aubc(m.accuracies) for m in members]
        curves.append((float(np.mean(scores)), method, labeled, acc.mean(0), acc.std(0), len(members)))
    curves.sort(key=lambda c: (-c[0], c[1].label))  # legend best first

    counts = sorted({c[5] for c in curves}) or [0]
    uneven = len(counts) > 1  # some methods have fewer seeds so far: say how many each has
    colors = matplotlib.colormaps["tab10"].colors
    other = {}
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for score, method, labeled, mean, std, n in curves:
        color = colors[strategy_color(method.strategy)]
        if method.augment in STYLES:
            style, marker = STYLES[method.augment]
        else:
            style, marker = other.setdefault(method.augment, OTHER_STYLES[len(other) % len(OTHER_STYLES)])
        ax.plot(labeled, mean, linestyle=style, marker=marker, markevery=max(1, len(labeled) // 10), markersize=4,
                color=color, linewidth=1.6, label=f"{method.label} ({score:.3f}{seed_note(n) if uneven else ''})")
        if n > 1:
            ax.fill_between(labeled, mean - std, mean + std, color=color, alpha=0.12, linewidth=0)
    ax.set_xlabel("labeled samples")
    ax.set_ylabel("test accuracy")
    over = f"{counts[0]}-{counts[-1]} seeds per method" if uneven else f"{counts[0]} seed(s)"
    ax.set_title(f"{spec.dataset}: mean over {over}, band ±1 std; legend: AUBC", fontsize=10)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, extra in ((".png", {"dpi": 200, "metadata": {"Software": None}}),
                          (".svg", {"metadata": {"Date": None, "Creator": None}})):
        path = stem.with_suffix(suffix)
        with matplotlib.rc_context({"svg.hashsalt": "fvtui"}):
            try:
                fig.savefig(path, **extra)
            except OSError as exc:
                raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written


def seed_note(n: int) -> str:
    return f", {n} seed" + "s" * (n > 1)
