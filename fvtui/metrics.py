"""Learning-curve summaries."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def aubc(accuracies: Sequence[float]) -> float:
    """Area under the budget curve: trapezoids over round index 0..n-1, divided by n-1, so in [0, 1]."""
    acc = np.asarray(accuracies, dtype=np.float64)
    if acc.size == 0:
        return float("nan")
    if acc.size == 1:
        return float(acc[0])
    return float(((acc[1:] + acc[:-1]) / 2).sum() / (acc.size - 1))
