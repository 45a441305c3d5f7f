"""Steering between rounds: the budget, strategy, augmentation and target of the next rounds.

Values are checked as they are typed, by the same `validate()` the CLI uses; an invalid form cannot
be saved, and the reason stays under the fields.
"""

from __future__ import annotations

import dataclasses

from ...config import RoundSettings
from ...errors import UserError
from ...registry import plugin_names
from ...store import Session
from ..widgets.form import Field
from .form_dialog import FormDialog

ROUND_FIELDS = (("eps_start", "eps start", float), ("eps_step", "eps step", float),
                ("advs_per_sample", "counterexamples per sample", int), ("verify_timeout", "solver timeout (s)", float),
                ("query_size", "query size", int), ("pool_size", "pool size", int))


def round_fields(settings: RoundSettings) -> list[Field]:
    return [Field("strategy", "strategy", tuple(plugin_names("fvtui.strategies")), settings.strategy),
            Field("augment", "augmentation", tuple(plugin_names("fvtui.augment")), settings.augment),
            *(Field(key, label, kind, getattr(settings, key)) for key, label, kind in ROUND_FIELDS)]


class SettingsScreen(FormDialog):
    """Dismisses with (settings, rounds target) or None."""

    def __init__(self, session: Session, next_round: int) -> None:
        super().__init__(f"Next rounds of {session.name} (from round {next_round})",
                         [*round_fields(session.settings), Field("rounds", "rounds (target)", int,
                                                                 session.config.rounds)])
        self.session = session

    def checked(self) -> tuple[RoundSettings, int]:
        values = self.form.values()
        rounds = values.pop("rounds")
        settings = self.session.settings.replace(**values)
        dataclasses.replace(self.session.config, rounds=rounds).validate()
        done = len(self.session.rounds)
        if rounds < done:
            raise UserError(f"rounds must be at least {done}: that many are finished already")
        return settings, rounds
