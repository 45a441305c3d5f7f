"""DFAL: the samples closest to the decision boundary by DeepFool's perturbation norm.

Each chosen sample's DeepFool example, clipped to [0, 1], is its anchor (DFAL+FGSM and DFAL+FV
start from it, as in the authors' code).
"""

import torch

from ..attacks import LEGACY_NUDGE, deepfool
from ._base import STRATEGIES, Selection, SelectionContext, smallest


@STRATEGIES.register("dfal")
def dfal(ctx: SelectionContext, n: int) -> Selection:
    result = deepfool(ctx.model, ctx.pool_x, nudge=LEGACY_NUDGE if ctx.legacy else 0.0)
    norms = result.norms
    return smallest(norms, n).with_anchor("deepfool", result.adversarial.clamp(0.0, 1.0), norms,
                                          torch.ones_like(norms, dtype=torch.bool))
