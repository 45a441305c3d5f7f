"""FVAAL's selection: the smallest FGSM step that flips the prediction, found by binary search.

The FGSM examples are kept as anchors: the fv augmentation starts its counterexample search from them.
"""

from ..attacks import fgsm_min_eps
from ._base import STRATEGIES, Selection, SelectionContext, smallest


@STRATEGIES.register("fvaal")
def fvaal(ctx: SelectionContext, n: int) -> Selection:
    search = fgsm_min_eps(ctx.model, ctx.pool_x, legacy=ctx.legacy)
    return smallest(search.eps, n).with_anchor("fgsm", search.adversarial, search.eps, search.flips)
