"""What happened, newest last: engine logs, round summaries, steering changes and errors."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import RichLog

LEVEL_STYLES = {"info": "", "warning": "yellow", "error": "bold red", "success": "green"}


class LogPanel(RichLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, max_lines=2000, min_width=40, **kwargs)

    def add(self, message: str, level: str = "info") -> None:
        line = Text(time.strftime("%H:%M:%S "), "dim")
        line.append(message, LEVEL_STYLES.get(level, ""))
        self.write(line)
