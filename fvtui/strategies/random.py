"""Uniform sampling: the baseline every other strategy must beat."""

import numpy as np

from ._base import STRATEGIES, Selection, SelectionContext


@STRATEGIES.register("random")
def random(ctx: SelectionContext, n: int) -> Selection:
    positions = ctx.rng.choice(ctx.pool_x.shape[0], size=n, replace=False)
    return Selection(positions, np.zeros(n))
