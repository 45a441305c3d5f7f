"""DFAL's augmentation: each queried sample's DeepFool example, clipped to [0, 1] (flip or not)."""

import torch

from ..attacks import LEGACY_NUDGE, deepfool as deepfool_attack
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult, batch_from


@AUGMENTATIONS.register("deepfool")
def deepfool(ctx: AugmentContext) -> AugmentResult:
    anchor = ctx.selection.anchor
    if anchor is not None and anchor.kind == "deepfool" and not ctx.legacy:  # dfal computed it with this model
        adversarial = torch.from_numpy(anchor.x)
    else:
        nudge = LEGACY_NUDGE if ctx.legacy else 0.0
        adversarial = deepfool_attack(ctx.model, ctx.x, nudge=nudge).adversarial.clamp(0.0, 1.0)
    rows = torch.arange(ctx.x.shape[0])
    eps = (adversarial - ctx.x).abs().amax(dim=1)
    return AugmentResult(batch_from(ctx, adversarial, torch.ones_like(rows, dtype=torch.bool), rows, eps,
                                    "deepfool"))
