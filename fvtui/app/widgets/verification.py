"""One row per queried sample: how its counterexample search ended.

For `fv` the rows come from the round's verification records (and fill in live while the round
verifies); gradient augmentations verify nothing, so their rows count the attack's examples instead.
"""

from __future__ import annotations

import time
from typing import Sequence

from rich.text import Text
from textual.widgets import DataTable

from ...records import QueriedSample, RoundRecord, SampleVerification, SyntheticBatch

STATUS_STYLES = {"robust": "green", "counterexample": "yellow", "timeout": "magenta", "error": "bold red",
                 "pending": "dim", "searching": "cyan"}
# (label, key, width); None: as wide as the longest class name. Fixed widths keep the table steady
# from round to round (and sidestep DataTable's auto-width, which lags behind rows added off screen).
COLUMNS = (("#", "position", 2), ("sample", "sample", 6), ("label", "label", None), ("pred", "pred", None),
           ("status", "status", 14), ("eps", "eps", 5), ("found", "found", 5), ("solver s", "seconds", 8))


def status_text(status: str) -> Text:
    return Text(status, STATUS_STYLES.get(status, "dim"))


class VerificationTable(DataTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.round_index = 0
        self.live = False
        # live rows whose search runs: (eps, found, when it started, monotonic), and the cells on show
        self._searching: dict[int, tuple[float | None, int | None, float]] = {}
        self._shown: dict[int, dict[str, str]] = {}

    def _reset(self, classes: tuple[str, ...]) -> None:
        self._searching.clear()
        self._shown.clear()
        self.clear(columns=True)
        names = max(len(c) for c in classes)
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width or names)

    def show_nothing(self) -> None:
        self.round_index, self.live = 0, False
        self._searching.clear()
        self._shown.clear()
        self.clear(columns=True)

    def show_round(self, record: RoundRecord, synthetic: SyntheticBatch, classes: tuple[str, ...]) -> None:
        self.round_index, self.live = record.round, False
        by_source = {v.source: v for v in record.verification}
        self._reset(classes)
        for position, q in enumerate(record.queried):
            v = by_source.get(q.index)
            mine = synthetic.source == q.index
            if v is not None:
                status, eps, found, seconds = status_text(v.status), f"{v.eps:.3f}", str(v.found), f"{v.seconds:.1f}"
                if v.message:
                    status.append(" !", "bold red")
            else:
                status = Text("not verified", "dim")
                eps = f"{synthetic.eps[mine].max():.3f}" if mine.any() else "-"
                found, seconds = str(int(mine.sum())), "-"
            self.add_row(str(position + 1), str(q.index), classes[q.label], classes[q.predicted], status, eps,
                         found, seconds, key=str(position))

    def start_live(self, round_index: int, queried: Sequence[QueriedSample], classes: tuple[str, ...]) -> None:
        """Rows for a round still verifying, its picks already known: each fills in as its search ends."""
        self.round_index, self.live = round_index, True
        self._reset(classes)
        for position, q in enumerate(queried):
            self.add_row(str(position + 1), str(q.index), classes[q.label], classes[q.predicted],
                         status_text("pending"), "", "", "", key=str(position))

    def live_search(self, position: int, eps: float | None, found: int | None, since: float) -> None:
        """A row whose search runs: the radius it asks now, the points so far, and its seconds since `since`,
        so a long proof shows where it is instead of 'pending'. A search that just started shows at once;
        later news waits for tick() (each second): a search asks up to 20 queries a second, and a slow
        link should not carry a repaint for each."""
        if not self.live or str(position) not in self.rows:
            return
        new = position not in self._searching
        self._searching[position] = (eps, found, since)
        if new:
            self.tick()

    def tick(self) -> None:
        """The running searches' rows, as of now; only the cells whose text changed are written."""
        now = time.monotonic()
        for position, (eps, found, since) in self._searching.items():
            for key, text in (("status", "searching"), ("eps", "-" if eps is None else f"{eps:.3f}"),
                              ("found", "-" if found is None else str(found)), ("seconds", f"{now - since:.0f}")):
                shown = self._shown.setdefault(position, {})
                if shown.get(key) != text:
                    shown[key] = text
                    self.update_cell(str(position), key, status_text(text) if key == "status" else text)

    def live_sample(self, position: int, v: SampleVerification) -> None:
        if not self.live or str(position) not in self.rows:
            return
        self._searching.pop(position, None)
        self._shown.pop(position, None)
        for key, value in (("status", status_text(v.status)), ("eps", f"{v.eps:.3f}"), ("found", str(v.found)),
                           ("seconds", f"{v.seconds:.1f}")):
            self.update_cell(str(position), key, value)
