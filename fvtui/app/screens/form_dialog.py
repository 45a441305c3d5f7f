"""A modal form that refuses invalid values with the reason, and dismisses with the checked result."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...errors import UserError
from ..widgets.form import Field, Form


class FormDialog(ModalScreen[Any]):
    """Subclasses give the title, the fields and `checked()` (the result, or UserError saying why not)."""

    BINDINGS = [Binding("ctrl+s", "ok", "Save"), Binding("escape", "cancel", "Cancel")]
    OK_LABEL = "Save"

    def __init__(self, title: str, fields: list[Field]) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.fields = title, fields

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog form-dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Form(self.fields)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.OK_LABEL} (ctrl+s)", variant="primary", id="ok", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    @property
    def form(self) -> Form:
        return self.query_one(Form)

    def checked(self) -> Any:
        raise NotImplementedError

    def _check(self) -> bool:
        try:
            self.checked()
        except UserError as exc:
            self.form.show_error(str(exc))
            return False
        self.form.show_error("")
        return True

    def on_input_changed(self) -> None:
        self._check()

    def on_select_changed(self) -> None:
        self._check()

    def on_input_submitted(self) -> None:
        self.action_ok()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_ok() if event.button.id == "ok" else self.action_cancel()

    def action_ok(self) -> None:
        if self._check():
            self.dismiss(self.checked())

    def action_cancel(self) -> None:
        self.dismiss(None)
