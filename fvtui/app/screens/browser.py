"""Saved sessions: open, start a new one, delete (after asking)."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ...errors import UserError
from ...store import SessionSummary
from ..widgets.footer import Footer
from .confirm import ConfirmScreen
from .new_session import NewSessionScreen

COLUMNS = ("name", "dataset", "method", "rounds", "accuracy", "AUBC", "last change")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class BrowserScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("n", "new", "New"),
        Binding("d", "delete", "Delete"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[SessionSummary] = []

    def compose(self) -> ComposeResult:
        yield Static(f"fvtui · sessions in {self.app.store.root}", id="browser-title")
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Static("reading sessions…", id="browser-note")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.is_mounted and self.query_one(DataTable).columns:
            self.action_refresh()

    def action_refresh(self) -> None:
        self.list_sessions()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def list_sessions(self) -> None:
        summaries = self.app.store.list()
        self.app.call_from_thread(self._fill, summaries)

    def _fill(self, summaries: list[SessionSummary]) -> None:
        table = self.query_one(DataTable)
        selected = self.selected
        rows = [[s.name, Text("unreadable", "red"), Text(s.problem, "dim"), "", "", "", s.updated] if s.problem else
                [s.name, s.dataset, s.method, f"{s.rounds_done}/{s.rounds_target}", _fmt(s.last_accuracy),
                 _fmt(s.aubc), s.updated] for s in summaries]
        # Widths fitted here, not by DataTable's auto-width: a frame drawn before the table's idle
        # pass caches its cells at the header's widths and keeps them (Textual 8.2).
        table.clear(columns=True)
        for i, label in enumerate(COLUMNS):
            table.add_column(label, width=max(Text(str(cell)).cell_len for cell in [label, *(r[i] for r in rows)]))
        self.summaries = summaries
        for s, row in zip(summaries, rows):
            table.add_row(*row, key=s.name)
        if selected in [s.name for s in summaries]:
            table.move_cursor(row=[s.name for s in summaries].index(selected))
        self.query_one("#browser-note", Static).update(
            f"{len(summaries)} session{'s' * (len(summaries) != 1)} · enter opens · n starts a new one" if summaries
            else "no sessions yet · n starts a new one")
        table.focus()

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.summaries or table.cursor_row >= len(self.summaries):
            return None
        return self.summaries[table.cursor_row].name

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        if self.selected is not None:
            self.app.open_session(self.selected)

    def action_new(self) -> None:
        def create(result) -> None:
            if result is not None:
                self.app.start_session(*result)

        self.app.push_screen(NewSessionScreen(self.app.store), create)

    def action_delete(self) -> None:
        name = self.selected
        if name is None:
            return
        summary = self.summaries[self.query_one(DataTable).cursor_row]

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.app.store.delete(name)
            except UserError as exc:
                self.app.report(str(exc))
                return
            self.notify(f"deleted {name}")
            self.action_refresh()

        self.app.push_screen(ConfirmScreen(f"Delete session {name} ({summary.rounds_done} rounds)? "
                                           "Its files are removed; this cannot be undone.", yes="Delete"), answer)
