"""Uncertainty sampling: the smallest gap between the two most probable classes."""

import torch

from ..model import logits
from ._base import STRATEGIES, Selection, SelectionContext, smallest


@STRATEGIES.register("margin")
def margin(ctx: SelectionContext, n: int) -> Selection:
    top2 = torch.softmax(logits(ctx.model, ctx.pool_x), dim=1).topk(2, dim=1).values
    return smallest(top2[:, 0] - top2[:, 1], n)
