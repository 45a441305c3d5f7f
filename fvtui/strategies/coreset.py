"""Core-set (Sener & Savarese): k-center greedy on hidden-layer embeddings, seeded with the labeled set.

As in the authors' coreset.py, the first centres are the samples the model trains on (under the
protocol: those queried so far), and with none yet the first centre is a random pool sample.
"""

import numpy as np
import torch

from ..model import embeddings
from ._base import STRATEGIES, Selection, SelectionContext

CHUNK = 4096


def nearest_distance(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Distance from each point to its nearest center, chunked to bound memory."""
    best = torch.full((points.shape[0],), float("inf"))
    for i in range(0, centers.shape[0], CHUNK):
        best = torch.minimum(best, torch.cdist(points, centers[i:i + CHUNK]).min(1).values)
    return best


@STRATEGIES.register("coreset")
def coreset(ctx: SelectionContext, n: int) -> Selection:
    pool = embeddings(ctx.model, ctx.pool_x)
    positions, scores = [], []
    if ctx.labeled_x.shape[0]:
        distance = nearest_distance(pool, embeddings(ctx.model, ctx.labeled_x))
    else:
        first = int(ctx.rng.integers(0, pool.shape[0]))
        positions.append(first)
        scores.append(0.0)
        distance = (pool - pool[first]).norm(dim=1)
    while len(positions) < n:
        pick = int(distance.argmax())
        positions.append(pick)
        scores.append(float(distance[pick]))  # its distance to the nearest centre when chosen
        distance = torch.minimum(distance, (pool - pool[pick]).norm(dim=1))
    return Selection(np.array(positions), np.array(scores))
