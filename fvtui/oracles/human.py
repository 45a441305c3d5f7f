"""A person as the oracle: each answer is journalled the moment it is given, and the engine's label
phase waits for the batch (in the app) or stops with LabelsPending (headless, where labels come
back through `fvtui labels --import`).

The front end answers from its own thread through give / skip / undo; the engine's thread waits in
`answers` until every queried sample is labelled or skipped (and at least one labelled).
"""

from __future__ import annotations

import threading

from ..errors import Cancelled, UserError
from ..store import LabelJournal
from ._base import LabelRequest, LabelsPending
from .book import LabelBook

POLL = 0.2  # seconds between looks at the cancel flag while waiting for a person


class HumanOracle:
    person = True

    def __init__(self, journal: LabelJournal, num_classes: int, session: str, *, wait: bool) -> None:
        self.journal, self.num_classes, self.session, self.wait = journal, num_classes, session, wait
        self.book = LabelBook(journal.read())
        self._changed = threading.Condition()

    # -- the engine's side ---------------------------------------------------------------------
    def known(self) -> dict[int, int]:
        with self._changed:
            return dict(self.book.labels)

    def ask(self, request: LabelRequest) -> int:
        with self._changed:
            if self.book.request != request:
                self._record({"do": "ask", "request": request.to_dict()})
            return len(self.book.pending())

    def answers(self, request: LabelRequest, cancel: threading.Event) -> dict[int, int]:
        with self._changed:
            while not self.done:
                if not self.wait:
                    raise LabelsPending(self.session, request, len(self.book.pending()))
                if cancel.is_set():
                    raise Cancelled()
                self._changed.wait(POLL)
            return self.book.answers()

    @property
    def done(self) -> bool:
        """Every sample answered, and at least one labelled (a batch of skips would teach nothing)."""
        return not self.book.pending() and bool(self.book.answers())

    # -- the person's side (any thread) --------------------------------------------------------
    def give(self, index: int, label: int) -> None:
        if not 0 <= label < self.num_classes:
            raise UserError(f"label {label} is not one of the {self.num_classes} classes")
        self._answer({"do": "label", "index": index, "label": label})

    def skip(self, index: int) -> None:
        self._answer({"do": "skip", "index": index})

    def undo(self) -> int | None:
        """Take back the batch's last answer; the sample it was for (None: nothing to undo)."""
        with self._changed:
            index = self.book.last_answered()
            if index is not None:
                self._answer({"do": "undo", "index": index})
            return index

    def _answer(self, action: dict) -> None:
        with self._changed:
            if self.book.request is None or action["index"] not in self.book.request.indices:
                raise UserError(f"sample {action['index']} is not in the batch being labelled")
            self._record({**action, "round": self.book.request.round})

    def _record(self, action: dict) -> None:
        self.journal.append(action)  # on disk first: an answer the book shows is never lost
        self.book.apply(action)
        self._changed.notify_all()
