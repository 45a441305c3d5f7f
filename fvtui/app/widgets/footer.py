"""The key footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes on every bindings update, and each focus change is one: switching a
panel rebuilt every key (restyling each twice), a third of the UI thread's time while keys were
pressed during a round. Moving focus between widgets whose own bindings are hidden shows the same
keys, so nothing needs rebuilding.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


def shown_keys(screen: Screen) -> list[tuple]:
    return [(binding.key, binding.action, binding.description, enabled, tooltip)
            for _, binding, enabled, tooltip in screen.active_bindings.values() if binding.show]


class Footer(TextualFooter):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: list[tuple] | None = None  # the keys of the last rebuild

    def bindings_changed(self, screen: Screen) -> None:
        keys = shown_keys(screen)
        if keys == self.shown:
            return
        super().bindings_changed(screen)
        if screen.app.app_focus and self.is_attached and screen is self.screen:  # else Textual did not rebuild
            self.shown = keys
