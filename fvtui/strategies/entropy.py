"""Uncertainty sampling: the highest predictive entropy."""

import torch

from ..model import logits
from ._base import STRATEGIES, Selection, SelectionContext, largest


@STRATEGIES.register("entropy")
def entropy(ctx: SelectionContext, n: int) -> Selection:
    log_p = torch.log_softmax(logits(ctx.model, ctx.pool_x), dim=1)
    return largest(-(log_p.exp() * log_p).sum(1), n)
