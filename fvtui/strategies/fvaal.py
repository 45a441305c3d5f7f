"""FVAAL's selection: the smallest FGSM step that flips the prediction, found by binary search.

The FGSM examples are kept: the fv augmentation starts its counterexample search from them.
"""

import dataclasses

from ..attacks import fgsm_min_eps
from ._base import STRATEGIES, Selection, SelectionContext, smallest


@STRATEGIES.register("fvaal")
def fvaal(ctx: SelectionContext, n: int) -> Selection:
    search = fgsm_min_eps(ctx.model, ctx.pool_x)
    chosen = smallest(search.eps, n)
    rows = chosen.positions
    return dataclasses.replace(
        chosen,
        fgsm_eps=search.eps.numpy()[rows],
        fgsm_x=search.adversarial.numpy()[rows],
        fgsm_flips=search.flips.numpy()[rows],
    )
