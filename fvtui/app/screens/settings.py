"""Steering between rounds: the budget, strategy, augmentation and target of the next rounds.

Values are checked as they are typed, by the same `validate()` the CLI uses; an invalid form cannot
be saved, and the reason stays under the fields.
"""

from __future__ import annotations

from textual.widgets import Static

from ...config import RoundSettings
from ...schema import BY_NAME, Setting, scoped
from ...store import Session
from ..widgets.form import Field
from .form_dialog import FormDialog


def schema_field(setting: Setting, value) -> Field:
    """A form field for a setting: choices as a list, layer widths as text, the rest typed."""
    kind = setting.kind
    if setting.kind == "choice":
        kind = tuple(setting.choices())
    elif setting.kind is bool:
        kind, value = ("off", "on"), setting.shown(value)
    elif setting.kind == "widths":
        kind, value = str, setting.shown(value)
    return Field(setting.name, setting.form_label, kind, value, setting.help)


def schema_values(values: dict) -> dict:
    """Form values back to setting values (widths parsed, on/off to booleans)."""
    out = dict(values)
    for key, value in values.items():
        setting = BY_NAME.get(key)
        if setting is not None and (setting.kind == "widths" or setting.kind is bool):
            out[key] = setting.parse(value)
    return out


def round_fields(settings: RoundSettings) -> list[Field]:
    return [schema_field(s, getattr(settings, s.name)) for s in scoped("round") if s.flag]


class SettingsScreen(FormDialog):
    """Dismisses with (settings, rounds target) or None."""

    def __init__(self, session: Session, next_round: int, dataset=None) -> None:
        super().__init__(self._title(session, next_round),
                         [*round_fields(session.settings), Field("rounds", "rounds (target)", int,
                                                                 session.config.rounds, BY_NAME["rounds"].help)])
        self.session, self.dataset = session, dataset  # the dataset: to refuse a target it has no samples for

    @staticmethod
    def _title(session: Session, next_round: int) -> str:
        return f"Next rounds of {session.name} (from round {next_round})"

    def show_next_round(self, next_round: int) -> None:
        """Rounds go on while the form is open: the title keeps saying where a save would apply."""
        self.query_one(".dialog-title", Static).update(self._title(self.session, next_round))

    def checked(self) -> tuple[RoundSettings, int]:
        values = schema_values(self.form.values())
        rounds = values.pop("rounds")
        settings = self.session.settings.replace(**values)
        config = self.session.with_target(rounds)
        if self.dataset is not None:
            from ...data import check_room

            check_room(self.dataset, config, settings, done=self.session.rounds)
        return settings, rounds
