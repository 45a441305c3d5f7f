"""Test accuracy per round with its AUBC, and other sessions overlaid for comparison.

Redrawn once per finished round (a plotext render costs milliseconds), always on the UI thread,
which alone may touch the widget's figure.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ...metrics import aubc


OWN_COLOR = "blue+"  # plotext's colour for the first line drawn, which is this session's


class LearningCurve(PlotextPlot):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.accuracies: list[float] = []
        self.initial: float | None = None
        self.overlays: dict[str, list[float]] = {}
        self._version = 0  # bumped by every replot
        self._drawn: tuple[object, object] = (None, None)  # (what it was drawn for, the drawing)

    def set_curve(self, accuracies: list[float], initial: float | None = None) -> None:
        self.accuracies = list(accuracies)
        if initial is not None:
            self.initial = initial
        self.replot()

    def set_overlays(self, overlays: dict[str, list[float]]) -> None:
        self.overlays = {name: list(acc) for name, acc in overlays.items() if acc}
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = "test accuracy per round"
        if self.accuracies:
            title += f" · AUBC {aubc(self.accuracies):.4f}"
        if self.initial is not None:
            title += f" · initial {self.initial:.4f}"
        plt.title(title)
        plt.xlabel("round")
        # This session's line starts at round 0, the initial model, so the chart has a point while
        # the first round runs (minutes on real data) rather than an empty frame.
        own = ([] if self.initial is None else [(0, self.initial)]) + list(enumerate(self.accuracies, start=1))
        series = [("this session", own)] + [(f"{n} ({aubc(a):.3f})", list(enumerate(a, start=1)))
                                            for n, a in self.overlays.items()]
        values = [v for _, points in series for _, v in points]
        first = min((r for _, points in series for r, _ in points), default=1)
        last = max((r for _, points in series for r, _ in points), default=0)
        for label, points in series:
            if points:
                plt.plot([r for r, _ in points], [v for _, v in points], label=label if self.overlays else None,
                         marker="braille")
        if own:  # the newest accuracy stands out (alone, at round 0, a braille dot is hard to see)
            plt.scatter([own[-1][0]], [own[-1][1]], marker="●", color=OWN_COLOR)
        if values:
            low, high = min(values), max(values)
            pad = max(0.01, (high - low) * 0.1)
            plt.ylim(max(0.0, low - pad), min(1.0, high + pad))
            plt.xlim(first - 0.5, last + 0.5)
            if last - first < 12:
                plt.xticks(list(range(first, last + 1)))
        self._version += 1
        self.refresh()

    def render(self):
        """The last drawing while neither data, size nor theme changed: plotext builds the chart in
        Python, and every panel switch or layout change would rebuild it."""
        key = (self._version, self.size, self.app.theme)
        if self._drawn[0] != key:
            self._drawn = (key, super().render())
        return self._drawn[1]
