"""DFAL: the samples closest to the decision boundary by DeepFool's perturbation norm."""

from ..attacks import deepfool
from ._base import STRATEGIES, Selection, SelectionContext, smallest


@STRATEGIES.register("dfal")
def dfal(ctx: SelectionContext, n: int) -> Selection:
    return smallest(deepfool(ctx.model, ctx.pool_x).norms, n)
