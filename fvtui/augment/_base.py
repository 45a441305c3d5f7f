"""What an augmentation sees and returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..config import RoundSettings
from ..model import MLP
from ..records import QueryCounts, SampleVerification, SyntheticBatch
from ..registry import Registry
from ..strategies import Selection
from ..verify.results import SearchProgress


@dataclass
class AugmentContext:
    model: MLP  # the model that selected the samples (before this round's training)
    x: torch.Tensor  # (n, d) queried samples
    y: torch.Tensor  # (n,) their oracle labels
    source: np.ndarray  # (n,) their dataset indices
    selection: Selection  # its anchor: the strategy's own adversarial examples (fvaal, dfal)
    settings: RoundSettings
    solver: object | None = None  # fvtui.verify.SolverPool, for augmentations that verify
    cancel: threading.Event | None = None
    # a sample's search ended: its record and the synthetic samples its kept points make
    on_sample: Callable[[int, SampleVerification, SyntheticBatch], None] = lambda i, record, points: None
    on_search: Callable[[int, SearchProgress], None] = lambda i, progress: None  # a sample's search, while it runs
    legacy: bool = False  # the session runs fvtui 0.1's protocol (config.LEGACY_PROTOCOL)
    # The round journal: per-sample results this round saved before it was interrupted (by dataset
    # index, as the augmentation wrote them), and where to save each new one the moment it is done.
    replay: dict[str, dict] = field(default_factory=dict)
    save: Callable[[str, dict], None] = lambda item, data: None


@dataclass
class AugmentResult:
    synthetic: SyntheticBatch
    verification: list[SampleVerification] = field(default_factory=list)
    queries: QueryCounts = field(default_factory=QueryCounts)


Augmentation = Callable[[AugmentContext], AugmentResult]
# Traits an augmentation may declare when it registers:
#   needs_solver: it verifies, so it gets the solver pool, streams each sample's result through
#   `on_sample` as it ends, and the engine journals those results (replay / save).
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def verifies(name: str) -> bool:
    """Whether an augmentation calls the solver (its samples' searches show as they end)."""
    return bool(AUGMENTATIONS.trait(name, "needs_solver"))


def batch_from(ctx: AugmentContext, x: torch.Tensor, keep: torch.Tensor, rows: torch.Tensor, eps: torch.Tensor,
               origin: str | np.ndarray) -> SyntheticBatch:
    """Synthetic samples x[keep] (a mask, or indices in the order wanted), each labeled with its
    source row's oracle label; `origin` is one name for all or one per row of x."""
    from ..model import predict

    x, rows, eps = x[keep], rows[keep], eps[keep]
    if not isinstance(origin, str):
        origin = np.asarray(origin)[keep.numpy()]
    return SyntheticBatch(
        x=x.numpy().astype(np.float32), y=ctx.y[rows].numpy().astype(np.int64),
        source=ctx.source[rows.numpy()].astype(np.int64), eps=eps.numpy().astype(np.float64),
        predicted=predict(ctx.model, x).numpy().astype(np.int64), seconds=np.zeros(len(rows)),
        origin=np.full(len(rows), origin, dtype="<U8") if isinstance(origin, str) else origin.astype("<U8"),
    )
