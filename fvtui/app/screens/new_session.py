"""A new session from the browser: the flags of `fvtui new`, checked the same way, as a form."""

from __future__ import annotations

from ...config import DATASETS, RoundSettings, SessionConfig, parse_hidden
from ...errors import UserError
from ...store import SessionStore
from ..widgets.form import Field
from .form_dialog import FormDialog
from .settings import round_fields

SESSION_FIELDS = (("rounds", "rounds", int), ("seed", "seed", int), ("init_size", "initial labeled size", int),
                  ("epochs", "epochs", int))


class NewSessionScreen(FormDialog):
    """Dismisses with (name, config) or None; nothing is created here."""

    OK_LABEL = "Create"

    def __init__(self, store: SessionStore) -> None:
        defaults = SessionConfig(dataset="demo")
        super().__init__("New session", [
            Field("name", "name (empty: automatic)", str, ""),
            Field("dataset", "dataset", DATASETS, defaults.dataset),
            *(Field(key, label, kind, getattr(defaults, key)) for key, label, kind in SESSION_FIELDS),
            Field("hidden", "hidden layers", str, ",".join(map(str, defaults.hidden))),
            *round_fields(defaults.settings),
        ])
        self.store = store

    def checked(self) -> tuple[str, SessionConfig]:
        values = self.form.values()
        name = values.pop("name")
        fixed = {key: values.pop(key) for key in ("dataset", *(k for k, _, _ in SESSION_FIELDS))}
        config = SessionConfig(hidden=parse_hidden(values.pop("hidden")), settings=RoundSettings(**values),
                               **fixed).validate()
        s = config.settings
        name = name or self.store.unique_name(f"{config.dataset}-{s.strategy}-{s.augment}-s{config.seed}")
        self.store.path(name)  # refuses a bad name
        if self.store.exists(name):
            raise UserError(f"session '{name}' already exists; choose another name")
        return name, config
