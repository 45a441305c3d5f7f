"""Pick saved sessions to overlay on the learning curve."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static

from ...store import SessionStore, SessionSummary


class CompareScreen(ModalScreen["list[str] | None"]):
    BINDINGS = [Binding("ctrl+s", "ok", "Overlay"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, store: SessionStore, current: str, chosen: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.store, self.current, self.chosen = store, current, set(chosen)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Overlay saved sessions on the curve (space toggles)", classes="dialog-title")
            yield SelectionList[str](id="sessions", compact=True)
            yield Static("reading sessions…", id="compare-note", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Overlay (ctrl+s)", variant="primary", id="ok", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()
        self.list_sessions()

    @work(thread=True, exit_on_error=False)
    def list_sessions(self) -> None:
        summaries = [s for s in self.store.list() if s.name != self.current and not s.problem and s.rounds_done]
        self.app.call_from_thread(self._fill, summaries)

    def _fill(self, summaries: list[SessionSummary]) -> None:
        if not self.is_attached:  # closed before the list came
            return
        options = self.query_one(SelectionList)
        for s in summaries:
            options.add_option((f"{s.name}  {s.dataset} {s.method}  {s.rounds_done} rounds  AUBC {s.aubc:.4f}",
                                s.name, s.name in self.chosen))
        if summaries:
            options.highlighted = 0
        self.query_one("#compare-note", Static).update(
            "" if summaries else "no other session with a finished round yet")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_ok() if event.button.id == "ok" else self.action_cancel()

    def action_ok(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        self.dismiss(None)
