"""A new session from the browser: the flags of `fvtui new`, checked the same way, as a form."""

from __future__ import annotations

from ...config import DATASETS, RoundSettings, SessionConfig
from ...schema import scoped
from ...store import SessionStore
from ..widgets.form import Field
from .form_dialog import FormDialog
from .settings import round_fields, schema_field, schema_values


class NewSessionScreen(FormDialog):
    """Dismisses with (name, config) or None; nothing is created here."""

    OK_LABEL = "Create"

    def __init__(self, store: SessionStore) -> None:
        defaults = SessionConfig(dataset="demo")
        super().__init__("New session", [
            Field("name", "name (empty: automatic)", str, "", "the session's folder; empty: "
                  "dataset-strategy-augment-sSEED"),
            Field("dataset", "dataset", DATASETS, defaults.dataset, "your own images: fvtui new --dataset PATH "
                  "(a folder with one subfolder per class, or an .npz)"),
            *(schema_field(s, getattr(defaults, s.name)) for s in scoped("session") if s.flag),
            *round_fields(defaults.settings),
        ])
        self.store = store

    def checked(self) -> tuple[str, SessionConfig]:
        values = schema_values(self.form.values())
        name = values.pop("name")
        fixed = {key: values.pop(key) for key in ("dataset", *(s.name for s in scoped("session") if s.flag))}
        config = SessionConfig(settings=RoundSettings(**values), **fixed).validate()
        s = config.settings
        name = name or self.store.unique_name(f"{config.dataset}-{s.strategy}-{s.augment}-s{config.seed}")
        self.store.refuse_taken(name)  # and a bad name
        return name, config
