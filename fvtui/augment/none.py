"""No synthetic samples: plain active learning."""

from ..records import SyntheticBatch
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult


@AUGMENTATIONS.register("none")
def none(ctx: AugmentContext) -> AugmentResult:
    return AugmentResult(SyntheticBatch.empty(ctx.x.shape[1]))
