"""The two lines at the top of a session: what runs, where it is, for how long."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

PHASE_LABELS = {"initial": "training the initial model", "select": "selecting", "label": "labeling",
                "train": "training", "evaluate": "evaluating"}
STATE_LABELS = {
    "loading": "loading the dataset…", "starting": "preparing the model…", "paused": "paused · p resumes",
    "stopped": "stopped · verified samples kept · p resumes", "finished": "finished · e raises the target",
    "read-only": "read-only: another process runs it", "failed": "failed: see the log (4)",
}
BAR_WIDTH = 16
PROGRESS_RATE = 2  # progress repaints per second at most


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StatusLine(Widget):
    """Fed by the session screen; redraws itself every second for the clocks, but only while its screen
    is the one on show: a clock ticking under the inspector made Textual repaint the inspector, three
    pictures included, every second (about 1 Mbit/s over SSH while nothing changed)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_name, self.dataset, self.method = "", "", ""
        self.round, self.rounds_done, self.rounds_target = 0, 0, 0
        self.pausing = False
        self.state, self.phase, self.done, self.total = "loading", "", 0, 0
        self.augment = ""
        self.started = time.monotonic()  # when this screen began running the session
        self.round_started: float | None = None
        self._painted = 0.0  # when render last ran
        self._soon = False  # a progress repaint is scheduled

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        # Only on show, and not when progress repainted it a moment ago (the clocks are current then).
        if self.is_attached and self.screen.is_active and self.display and time.monotonic() - self._painted > 0.9:
            self.refresh()

    def set_session(self, name: str, dataset: str, strategy: str, augment: str, rounds_done: int,
                    rounds_target: int) -> None:
        self.session_name, self.dataset, self.method, self.augment = name, dataset, f"{strategy}+{augment}", augment
        self.rounds_done, self.rounds_target = rounds_done, rounds_target
        self.refresh()

    def set_state(self, state: str) -> None:
        self.state = state
        if state != "running":
            self.phase, self.round_started = "", None
        self.refresh()

    def set_phase(self, round_index: int, phase: str, done: int = 0, total: int = 0) -> None:
        if round_index != self.round or self.round_started is None:  # a stopped round runs again: a new clock
            self.round, self.round_started = round_index, time.monotonic()
        changed = phase != self.phase
        self.phase, self.done, self.total = phase, done, total
        if changed:
            self.refresh()
        else:  # progress within a phase: at most PROGRESS_RATE repaints a second (bytes over SSH)
            self._refresh_soon()

    def _refresh_soon(self) -> None:
        now = time.monotonic()
        wait = self._painted + 1 / PROGRESS_RATE - now
        if wait <= 0:
            self._painted = now
            self.refresh()
        elif not self._soon:
            self._soon = True
            self.set_timer(wait, self._refresh_now)

    def _refresh_now(self) -> None:
        self._soon = False
        self.refresh()

    def render(self) -> Text:
        self._painted = time.monotonic()
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(self.session_name or "…", "bold")
        for part in (self.dataset, self.method):
            if part:
                line.append("  " + part)
        shown = self.round if self.state == "running" and self.round else self.rounds_done
        line.append(f"  round {shown}/{self.rounds_target}", "bold")
        line.append("\n")
        line.append_text(self._activity())
        if self.pausing and self.state == "running":
            line.append("  pauses after this round", "yellow")
        now = time.monotonic()
        if self.round_started is not None:
            line.append(f"  round {clock(now - self.round_started)}", "dim")
        line.append(f"  elapsed {clock(now - self.started)}", "dim")
        cluster = getattr(self.app, "cluster", None)
        if cluster is not None:
            line.append(f"  cluster {cluster.describe()}", "dim")
        return line

    def _activity(self) -> Text:
        if self.state != "running" or not self.phase:
            style = {"failed": "bold red", "paused": "yellow", "stopped": "yellow", "finished": "green"}.get(self.state, "")
            return Text(STATE_LABELS.get(self.state, self.state), style)
        if self.phase == "augment":
            from ...augment import verifies  # a round runs: the engine has imported it already

            label = "verifying" if verifies(self.augment) else f"augmenting ({self.augment})"
        else:
            label = PHASE_LABELS.get(self.phase, self.phase)
        text = Text(label, "bold cyan")
        if self.total:
            filled = round(BAR_WIDTH * self.done / self.total)
            text.append(f" {self.done} / {self.total} ")
            text.append("━" * filled, "cyan")
            text.append("━" * (BAR_WIDTH - filled), "dim")
        return text
