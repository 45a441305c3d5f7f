"""A person's labelling, replayed from the label journal's actions: what is labelled, skipped, pending.

Actions, in the order given: {"do": "ask", "request": ...} opens a batch; {"do": "label", "index",
"label", "round"}, {"do": "skip", "index", "round"} and {"do": "undo", "index", "round"} answer it.
Labels are kept by dataset index across batches (a label stays given whatever batch asks again);
a skip holds for its batch only, and an undo takes back the sample's last answer in its batch.
"""

from __future__ import annotations

from typing import Any

from ._base import LabelRequest


class LabelBook:
    def __init__(self, actions: list[dict[str, Any]] = ()) -> None:
        self.labels: dict[int, int] = {}
        self.request: LabelRequest | None = None  # the batch asked last
        self._skipped: dict[int, set[int]] = {}  # round -> skipped indices
        self._history: dict[int, list[int]] = {}  # round -> indices answered, in order (what undo takes back)
        for action in actions:
            self.apply(action)

    def apply(self, action: dict[str, Any]) -> None:
        do = action["do"]
        if do == "ask":
            self.request = LabelRequest.from_dict(action["request"])
            return
        index, r = int(action["index"]), int(action["round"])
        skipped, history = self._skipped.setdefault(r, set()), self._history.setdefault(r, [])
        if index in history:
            history.remove(index)
        if do == "undo":
            if index in skipped:
                skipped.discard(index)
            else:
                self.labels.pop(index, None)
            return
        history.append(index)
        if do == "skip":
            skipped.add(index)
            self.labels.pop(index, None)
        else:
            skipped.discard(index)
            self.labels[index] = int(action["label"])

    # -- the batch asked last ------------------------------------------------------------------
    def pending(self) -> list[int]:
        """Its samples not yet labelled or skipped, in the order queried."""
        if self.request is None:
            return []
        skipped = self._skipped.get(self.request.round, set())
        return [i for i in self.request.indices if i not in self.labels and i not in skipped]

    def answers(self) -> dict[int, int]:
        """Its labelled samples' labels (skipped ones left out)."""
        if self.request is None:
            return {}
        skipped = self._skipped.get(self.request.round, set())
        return {i: self.labels[i] for i in self.request.indices if i in self.labels and i not in skipped}

    def skipped(self) -> set[int]:
        return set() if self.request is None else self._skipped.get(self.request.round, set()) & set(
            self.request.indices)

    def last_answered(self) -> int | None:
        """The sample an undo takes back: the last one answered in this batch."""
        if self.request is None:
            return None
        asked = set(self.request.indices)
        history = [i for i in self._history.get(self.request.round, []) if i in asked]
        return history[-1] if history else None
