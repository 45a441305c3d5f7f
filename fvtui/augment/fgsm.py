"""FGSM-Adv: k FGSM examples per queried sample, at epsilons on a grid up to 0.1.

As the authors' get_advs_FGSM (bounded): the grid is linspace(start, 0.1, 2m) and slot j takes
its odd point 2j+1 when that step flips the prediction, else the point before it, else the one
after it (each point used once), else stays empty. A strategy with an anchor (dfal's DeepFool
example, fvaal's FGSM example) gives it as the first of the k and starts the other k-1 at its
size (0 when that is 0.1 or more); otherwise k slots start at 0.05.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attacks import fgsm_direction, fgsm_examples
from ..model import predict
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult, batch_from

DEFAULT_START, END = 0.05, 0.1


def grid_picks(flips: np.ndarray) -> list[int]:
    """Which grid points become synthetic samples, in slot order (see the module docstring)."""
    free = np.array(flips, dtype=bool)
    picks = []
    for i in range(1, len(free), 2):
        for j in (i, i - 1, i + 1):
            if j < len(free) and free[j]:
                free[j] = False
                picks.append(j)
                break
    return picks


@AUGMENTATIONS.register("fgsm")
def fgsm(ctx: AugmentContext) -> AugmentResult:
    if ctx.legacy:
        return _legacy_fgsm(ctx)
    n, k, anchor = ctx.x.shape[0], ctx.settings.advs_per_sample, ctx.selection.anchor
    slots = k - 1 if anchor is not None else k
    starts = np.where(anchor.size < END, anchor.size, 0.0) if anchor is not None else np.full(n, DEFAULT_START)
    width = 2 * slots
    grids = np.stack([np.linspace(s, END, width) for s in starts]).reshape(n, width)
    rows = torch.arange(n).repeat_interleave(width)
    eps = torch.from_numpy(grids.reshape(-1)).float()
    examples = fgsm_examples(ctx.x[rows], fgsm_direction(ctx.model, ctx.x)[rows], eps)
    flips = (predict(ctx.model, examples) != predict(ctx.model, ctx.x)[rows]).numpy().reshape(n, width)
    origin = ["fgsm"] * len(rows)
    base = 0
    if anchor is not None:  # the anchors go in front of the grid examples
        anchor_x = torch.from_numpy(anchor.x)
        examples = torch.cat([anchor_x, examples])
        eps = torch.cat([(anchor_x - ctx.x).abs().amax(1), eps])
        rows = torch.cat([torch.arange(n), rows])
        origin = [anchor.kind] * n + origin
        base = n
    order = []
    for row in range(n):
        if anchor is not None and anchor.present[row]:
            order.append(row)
        order += [base + row * width + j for j in grid_picks(flips[row])]
    return AugmentResult(batch_from(ctx, examples, torch.tensor(order, dtype=torch.long), rows, eps,
                                    np.array(origin)))


def _legacy_fgsm(ctx: AugmentContext) -> AugmentResult:
    """fvtui 0.1: k epsilons evenly from the start (fvaal: its FGSM eps; else 0.05) to 0.1; flips only."""
    n, k, anchor = ctx.x.shape[0], ctx.settings.advs_per_sample, ctx.selection.anchor
    starts = (torch.as_tensor(anchor.size, dtype=torch.float32) if anchor is not None and anchor.kind == "fgsm"
              else torch.full((n,), DEFAULT_START))
    fractions = torch.linspace(0.0, 1.0, k) if k > 1 else torch.zeros(1)
    eps = (starts.unsqueeze(1) + (END - starts).unsqueeze(1) * fractions).reshape(-1)  # (n*k,)
    rows = torch.arange(n).repeat_interleave(k)
    direction = fgsm_direction(ctx.model, ctx.x)
    examples = fgsm_examples(ctx.x[rows], direction[rows], eps)
    original = predict(ctx.model, ctx.x)
    flips = predict(ctx.model, examples) != original[rows]
    return AugmentResult(batch_from(ctx, examples, flips, rows, eps, "fgsm"))
