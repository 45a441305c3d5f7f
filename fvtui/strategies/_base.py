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
    labeled_x: torch.Tensor  # (labeled, d) the labeled samples the model trains on (coreset's first centres)
    rng: np.random.Generator  # this round's stream for the strategy
    legacy: bool = False  # the session runs fvtui 0.1's protocol (config.LEGACY_PROTOCOL)


@dataclass(frozen=True)
class Anchor:
    """A strategy's own adversarial example of each chosen sample, which augmentations start from.

    FVAAL hands its FGSM example (size: the flipping eps), DFAL its DeepFool example clipped to
    [0, 1] (size: the perturbation's L2 norm), as the authors' create_row.py saves them.
    """

    kind: str  # 'fgsm' or 'deepfool'
    x: np.ndarray  # (n, d)
    size: np.ndarray  # (n,)
    present: np.ndarray  # (n,) bool: an FGSM search that never flipped leaves no example


@dataclass(frozen=True)
class Selection:
    positions: np.ndarray  # (n,) chosen rows of the pool, in the order chosen
    scores: np.ndarray  # (n,) the strategy's score of each chosen row (what it ranked by)
    anchor: Anchor | None = None

    def with_anchor(self, kind: str, x: torch.Tensor, size: torch.Tensor, present: torch.Tensor) -> "Selection":
        """This selection, with the anchors of its chosen rows taken from pool-wide tensors."""
        rows = self.positions
        return Selection(self.positions, self.scores,
                         Anchor(kind, x.numpy()[rows], size.numpy()[rows], present.numpy()[rows]))

    def subset(self, keep: np.ndarray) -> "Selection":
        """The chosen rows `keep` (a mask) marks: what is left once a person skipped some."""
        a = self.anchor
        return Selection(self.positions[keep], self.scores[keep],
                         None if a is None else Anchor(a.kind, a.x[keep], a.size[keep], a.present[keep]))


Strategy = Callable[[SelectionContext, int], Selection]
STRATEGIES: Registry[Strategy] = Registry("strategy")


def smallest(scores: torch.Tensor, n: int) -> Selection:
    """The n lowest scores, lowest first (ties broken by position, so selection is deterministic)."""
    order = np.lexsort((np.arange(scores.shape[0]), scores.numpy()))[:n]
    return Selection(order, scores.numpy()[order])


def largest(scores: torch.Tensor, n: int) -> Selection:
    chosen = smallest(-scores, n)
    return Selection(chosen.positions, -chosen.scores)
