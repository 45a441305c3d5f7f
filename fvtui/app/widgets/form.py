"""A compact label/field grid whose values are parsed and checked the way the CLI checks flags.

Parsing turns text into numbers; the screens then build the config objects, whose `validate()`
gives the reason a value is refused, shown under the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Input, Label, Select, Static

from ...errors import UserError


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    kind: Any  # int, float, str, or a tuple of the allowed choices
    value: Any
    help: str = ""  # shown under the grid while the field has the focus (the flag's --help text)


class Form(Vertical):
    def __init__(self, fields: list[Field], **kwargs) -> None:
        super().__init__(**kwargs)
        self.fields = fields
        self._help = ""

    def compose(self) -> ComposeResult:
        with Grid(classes="form-grid"):
            for f in self.fields:
                yield Label(f.label, classes="form-label")
                if isinstance(f.kind, tuple):
                    yield Select([(c, c) for c in f.kind], value=f.value, allow_blank=False, compact=True,
                                 id=f"field-{f.key}")
                else:
                    # A whole-number field takes a '.' too, to refuse '2.5' by name: dropped as typed, it read 25.
                    restrict = r"-?[0-9.eE+-]*" if f.kind in (int, float) else None
                    yield Input(str(f.value), restrict=restrict, compact=True, id=f"field-{f.key}")
        yield Static("", id="form-help")
        yield Static("", id="form-error")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """What the focused field means: a label has no room to say that fvaal starts from its own eps."""
        node = event.widget
        while node is not None and node is not self and not (node.id or "").startswith("field-"):
            node = node.parent
        field = next((f for f in self.fields if node is not None and node.id == f"field-{f.key}"), None)
        self._help = field.help if field else ""
        self.query_one("#form-help", Static).update(self._help)
        self._show_help()

    def _show_help(self) -> None:
        """The help takes the error's place, only while there is no error: an 80 x 24 terminal has no line
        to spare for both."""
        shown = bool(self._help) and not self.query_one("#form-error", Static).has_class("-shown")
        self.query_one("#form-help", Static).set_class(shown, "-shown")

    def values(self) -> dict[str, Any]:
        """Typed values; UserError naming the field when one does not parse."""
        out = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.key}")
            if isinstance(widget, Select):
                out[f.key] = widget.value
                continue
            text = widget.value.strip()
            if f.kind is str:
                out[f.key] = text
                continue
            try:
                out[f.key] = f.kind(text)
            except ValueError:
                noun = "a whole number" if f.kind is int else "a number"
                raise UserError(f"{f.label} must be {noun}, not '{text}'" if text else
                                f"{f.label} is empty: it takes {noun}") from None
        return out

    def show_error(self, message: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(message)
        error.set_class(bool(message), "-shown")
        self._show_help()
