"""DFAL's augmentation: each queried sample's DeepFool example, clipped to [0, 1]."""

import torch

from ..attacks import deepfool as deepfool_attack
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult, batch_from


@AUGMENTATIONS.register("deepfool")
def deepfool(ctx: AugmentContext) -> AugmentResult:
    result = deepfool_attack(ctx.model, ctx.x)
    adversarial = result.adversarial.clamp(0.0, 1.0)
    rows = torch.arange(ctx.x.shape[0])
    eps = (adversarial - ctx.x).abs().amax(dim=1)
    return AugmentResult(batch_from(ctx, adversarial, torch.ones_like(rows, dtype=torch.bool), rows, eps,
                                    "deepfool"))
