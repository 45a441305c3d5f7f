"""The dataset's own labels: the benchmarks' oracle, which answers at once."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ._base import LabelRequest

if TYPE_CHECKING:
    from ..data import Dataset


class DatasetOracle:
    person = False

    def __init__(self, dataset: "Dataset") -> None:
        self.dataset = dataset

    def known(self) -> dict[int, int]:
        return {}

    def ask(self, request: LabelRequest) -> int:
        return 0

    def answers(self, request: LabelRequest, cancel: threading.Event) -> dict[int, int]:
        labels = self.dataset.train_y[list(request.indices)].tolist()
        return dict(zip(request.indices, labels))
