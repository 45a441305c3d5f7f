"""What a query strategy sees and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..model import MLP
from ..registry import Registry


@dataclass(frozen=True)
class SelectionContext:
    model: MLP  # the model trained in the previous round
    pool_x: torch.Tensor  # (pool, d) candidates
    labeled_x: torch.Tensor  # (labeled, d) what is already labeled (coreset seeds its centres with it)
    rng: np.random.Generator  # this round's stream for the strategy


@dataclass(frozen=True)
class Selection:
    positions: np.ndarray  # (n,) chosen rows of the pool, in the order chosen
    scores: np.ndarray  # (n,) the strategy's score of each chosen row (what it ranked by)
    fgsm_eps: np.ndarray | None = None  # fvaal: each chosen sample's smallest flipping FGSM eps
    fgsm_x: np.ndarray | None = None  # fvaal: the FGSM example at that eps
    fgsm_flips: np.ndarray | None = None  # fvaal: whether that example changes the prediction


Strategy = Callable[[SelectionContext, int], Selection]
STRATEGIES: Registry[Strategy] = Registry("strategy")


def smallest(scores: torch.Tensor, n: int) -> Selection:
    """The n lowest scores, lowest first (ties broken by position, so selection is deterministic)."""
    order = np.lexsort((np.arange(scores.shape[0]), scores.numpy()))[:n]
    return Selection(order, scores.numpy()[order])


def largest(scores: torch.Tensor, n: int) -> Selection:
    chosen = smallest(-scores, n)
    return Selection(chosen.positions, -chosen.scores)
