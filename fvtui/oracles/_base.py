"""What the engine asks an oracle, and what an oracle promises."""

from __future__ import annotations

import threading
from typing import Protocol

from ..errors import UserError
from ..records import LabelRequest


class LabelsPending(UserError):
    """Samples wait for a person's labels and no one is there to type them (headless)."""

    def __init__(self, session: str, request: LabelRequest, pending: int) -> None:
        self.pending = pending
        super().__init__(
            f"{pending} of the {len(request.indices)} samples of {request.batch_name()} wait for a person's labels. "
            f"Export them (fvtui labels {session} --export queries.csv, or --export DIR for PNGs), fill in the "
            f"label column, import it (fvtui labels {session} --import queries.csv) and run fvtui resume {session} "
            f"--headless; or label them in the app: fvtui resume {session}")


class Oracle(Protocol):
    person: bool  # a person answers: the engine shows them its guesses and hints

    def known(self) -> dict[int, int]:
        """Labels given so far that override the dataset's (a person's answers of earlier batches)."""

    def ask(self, request: LabelRequest) -> int:
        """Record a batch; returns how many of its samples still wait for an answer."""

    def answers(self, request: LabelRequest, cancel: threading.Event) -> dict[int, int]:
        """Each kept sample's label, by dataset index (a skipped sample is left out: it returns to the pool)."""
