"""Learning-curve summaries."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def aubc(accuracies: Sequence[float]) -> float:
    """Area under the budget curve: trapezoids over round index 0..n-1, divided by n-1, so in [0, 1]."""
    acc = np.asarray(accuracies, dtype=np.float64)
    if acc.size == 0:
        return float("nan")
    if acc.size == 1:
        return float(acc[0])
    return float(((acc[1:] + acc[:-1]) / 2).sum() / (acc.size - 1))


DISTANCE_STATS = ("mean", "std", "median", "p10", "p90", "min", "max")


def pairwise_distance_stats(features: np.ndarray) -> dict[str, float]:
    """The paper's diversity statistics (result_scripts/diversity_measure.py): every pairwise
    Euclidean distance among the rows (scipy's pdist), summarised; std is numpy's (ddof=0)."""
    from scipy.spatial.distance import pdist

    feats = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if feats.shape[0] < 2:
        raise ValueError("need at least 2 samples to compute pairwise distances")
    d = pdist(feats, metric="euclidean")
    return {"mean": float(d.mean()), "std": float(d.std()), "median": float(np.median(d)),
            "p10": float(np.percentile(d, 10)), "p90": float(np.percentile(d, 90)),
            "min": float(d.min()), "max": float(d.max())}


def within_group_distances(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Euclidean distances between every pair of rows that share a group, all groups pooled.

    An extra beside the paper's measure (pairwise_distance_stats): `features` are the hidden-layer
    embeddings of synthetic samples and `groups` the queried sample each came from, so only samples
    of one source are compared.
    Groups with a single row contribute nothing. Pure numpy, so the torch-free store may import this.
    """
    feats = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    groups = np.asarray(groups)
    if feats.shape[0] != groups.shape[0]:
        raise ValueError(f"{feats.shape[0]} feature rows but {groups.shape[0]} group labels")
    out = []
    for group in np.unique(groups):
        rows = feats[groups == group]
        if rows.shape[0] < 2:
            continue
        first, second = np.triu_indices(rows.shape[0], k=1)
        out.append(np.linalg.norm(rows[first] - rows[second], axis=1))
    return np.concatenate(out) if out else np.zeros(0)
