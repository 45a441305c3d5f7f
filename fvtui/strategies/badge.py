"""BADGE (Ash et al.): k-means++ seeding on gradient embeddings of the last layer.

The embedding of x is the gradient of the loss at the predicted label w.r.t. the output layer's
weights, (p - onehot(yhat)) outer h(x): large when the model is unsure, pointing where it would learn.
"""

import numpy as np
import torch

from ..model import embeddings, logits
from ._base import STRATEGIES, Selection, SelectionContext


def gradient_embeddings(ctx: SelectionContext) -> torch.Tensor:
    hidden = embeddings(ctx.model, ctx.pool_x)
    probs = torch.softmax(logits(ctx.model, ctx.pool_x), dim=1)
    probs[torch.arange(probs.shape[0]), probs.argmax(1)] -= 1.0
    return (probs.unsqueeze(2) * hidden.unsqueeze(1)).flatten(1)


def kmeans_pp(points: torch.Tensor, n: int, rng: np.random.Generator) -> tuple[list[int], list[float]]:
    """k-means++ seeding; the first centre is the largest embedding, as in BADGE's reference code."""
    buffer = torch.empty_like(points)  # reused: a fresh (pool x 1280) temporary per centre cost 3x the time

    def squared_distances(centre: int) -> torch.Tensor:
        torch.sub(points, points[centre], out=buffer)
        return buffer.square_().sum(1).double()

    first = int(points.norm(dim=1).argmax())
    chosen, scores = [first], [float(points[first].norm())]
    dist2 = squared_distances(first)
    for _ in range(n - 1):
        total = float(dist2.sum())
        if total <= 0:  # every point coincides with a centre: fall back to uniform among the rest
            weights = np.ones(points.shape[0])
            weights[chosen] = 0
        else:
            weights = dist2.numpy()
        pick = int(rng.choice(points.shape[0], p=weights / weights.sum()))
        chosen.append(pick)
        scores.append(float(dist2[pick]) ** 0.5)
        dist2 = torch.minimum(dist2, squared_distances(pick))
    return chosen, scores


@STRATEGIES.register("badge")
def badge(ctx: SelectionContext, n: int) -> Selection:
    chosen, scores = kmeans_pp(gradient_embeddings(ctx), n, ctx.rng)
    return Selection(np.array(chosen), np.array(scores))
