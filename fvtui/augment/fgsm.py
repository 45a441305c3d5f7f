"""FGSM-Adv: k FGSM examples per queried sample at eps spread evenly from a start to 0.1.

The start is the sample's own flipping eps under fvaal, else 0.05; only examples that change the
prediction are kept, so fewer than k may come back.
"""

import torch

from ..attacks import fgsm_direction, fgsm_examples
from ..model import predict
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult, batch_from

DEFAULT_START, END = 0.05, 0.1


@AUGMENTATIONS.register("fgsm")
def fgsm(ctx: AugmentContext) -> AugmentResult:
    n, k = ctx.x.shape[0], ctx.settings.advs_per_sample
    starts = (torch.as_tensor(ctx.selection.fgsm_eps, dtype=torch.float32)
              if ctx.selection.fgsm_eps is not None else torch.full((n,), DEFAULT_START))
    fractions = torch.linspace(0.0, 1.0, k) if k > 1 else torch.zeros(1)
    eps = (starts.unsqueeze(1) + (END - starts).unsqueeze(1) * fractions).reshape(-1)  # (n*k,)
    rows = torch.arange(n).repeat_interleave(k)
    direction = fgsm_direction(ctx.model, ctx.x)
    examples = fgsm_examples(ctx.x[rows], direction[rows], eps)
    original = predict(ctx.model, ctx.x)
    flips = predict(ctx.model, examples) != original[rows]
    return AugmentResult(batch_from(ctx, examples, flips, rows, eps, "fgsm"))


