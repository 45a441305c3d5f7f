"""The learning-curve figures: mean test accuracy over seeds per method, a band of one std around it.

Colour by strategy, line style and marker by augmentation, so Random / Random+FGSM-Adv /
Random+FV-Adv read as one family and FV is told from FGSM in print too. `learning_curves` puts
every method in one plot, and beside it a figure that gives each strategy a panel of its own
(shared axes), where twelve lines would crowd one plot. Drawn on a bare matplotlib Figure (no pyplot,
no display needed) as PNG and SVG, without dates in the files so re-made figures of the same sessions
are byte-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..metrics import aubc
from .methods import STRATEGY_LABELS, Method, strategies

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


@dataclass(frozen=True)
class Curve:
    method: Method
    aubc: float
    labeled: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    seeds: int


def strategy_color(strategy: str) -> int:
    if strategy in PAPER_COLORS:
        return PAPER_COLORS[strategy]
    others = [s for s in strategies() if s not in PAPER_COLORS]  # stable: the registry's sorted names
    position = others.index(strategy) if strategy in others else len(others)
    return SPARE_COLORS[position % len(SPARE_COLORS)]


def learning_curves(spec: "BenchSpec", runs: list["Run"], out: Path) -> list[Path]:
    """`learning_curves.*` (every method in one plot) and `learning_curves_by_strategy.*` in `out`."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("the learning-curve figure needs matplotlib: pip install matplotlib") from None
    curves = _curves(runs)
    styles = _Styles(matplotlib, curves)
    return (_save(matplotlib, _all_methods(Figure, spec, curves, styles), out / "learning_curves")
            + _save(matplotlib, _by_strategy(Figure, spec, curves, styles), out / "learning_curves_by_strategy"))


def _all_methods(Figure, spec: "BenchSpec", curves: list[Curve], styles: "_Styles"):
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for curve in curves:
        styles.draw(ax, curve)
    ax.set_xlabel("labeled samples")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{spec.dataset}: {styles.over}, band ±1 std; legend: AUBC", fontsize=10)
    if curves:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig


def _by_strategy(Figure, spec: "BenchSpec", curves: list[Curve], styles: "_Styles"):
    present = {c.method.strategy for c in curves}
    order = list(PAPER_COLORS) + strategies()  # the paper's first, then the registry's sorted names
    panels = list(dict.fromkeys(s for s in order if s in present)) + sorted(present - set(order))
    cols = 1 if len(panels) < 2 else 2 if len(panels) <= 4 else 3
    rows = max(1, math.ceil(len(panels) / cols))
    fig = Figure(figsize=(3.9 * cols, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, strategy in zip(axes, panels):
        for curve in curves:
            if curve.method.strategy == strategy:
                styles.draw(ax, curve)
        ax.set_title(STRATEGY_LABELS.get(strategy, strategy), fontsize=10)
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols:]:
        ax.set_xlabel("labeled samples")
    for ax in axes[::cols]:
        ax.set_ylabel("test accuracy")
    fig.suptitle(f"{spec.dataset} by strategy: {styles.over}, band ±1 std; legend: AUBC", fontsize=10)
    return fig


def seed_note(n: int) -> str:
    return f", {n} seed" + "s" * (n > 1)


def _curves(runs: list["Run"]) -> list[Curve]:
    """One curve per method, best AUBC first (the legends' order)."""
    groups: dict[Method, list] = {}
    for r in runs:
        groups.setdefault(r.method, []).append(r)
    curves = []
    for method, members in groups.items():
        acc = np.array([m.accuracies for m in members])  # (seeds, rounds)
        labeled = np.array([rec.labeled for rec in members[0].records])
        score = float(np.mean([aubc(m.accuracies) for m in members]))
        curves.append(Curve(method, score, labeled, acc.mean(0), acc.std(0), len(members)))
    curves.sort(key=lambda c: (-c.aubc, c.method.label))
    return curves


class _Styles:
    """Colour, dash and marker of each method, and the seed-count wording, the same in every figure."""

    def __init__(self, matplotlib, curves: list[Curve]) -> None:
        self.colors = matplotlib.colormaps["tab10"].colors
        self.other: dict[str, tuple] = {}
        counts = sorted({c.seeds for c in curves}) or [0]
        self.uneven = len(counts) > 1  # some methods have fewer seeds so far: say how many each has
        self.over = (f"mean over {counts[0]}-{counts[-1]} seeds per method" if self.uneven
                     else f"mean over {counts[0]} seed(s)")

    def draw(self, ax, curve: Curve) -> None:
        method = curve.method
        color = self.colors[strategy_color(method.strategy)]
        if method.augment in STYLES:
            style, marker = STYLES[method.augment]
        else:
            style, marker = self.other.setdefault(method.augment, OTHER_STYLES[len(self.other) % len(OTHER_STYLES)])
        note = seed_note(curve.seeds) if self.uneven else ""
        ax.plot(curve.labeled, curve.mean, linestyle=style, marker=marker,
                markevery=max(1, len(curve.labeled) // 10), markersize=4, color=color, linewidth=1.6,
                label=f"{method.label} ({curve.aubc:.3f}{note})")
        if curve.seeds > 1:
            ax.fill_between(curve.labeled, curve.mean - curve.std, curve.mean + curve.std, color=color, alpha=0.12,
                            linewidth=0)


def _save(matplotlib, fig, stem: Path) -> list[Path]:
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
