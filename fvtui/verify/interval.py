"""Interval bounds: a cheap, sound (incomplete) robustness check, for hints rather than verdicts.

Propagating the L-inf box through the network layer by layer bounds every logit; when the lower
bound of (guess - other class) is positive for every other class, no input in the box changes the
guess. It takes a matrix product per layer for a whole batch, so the labelling screen can tell a
person which queried samples are already certified robust before any solver runs.
"""

from __future__ import annotations

import numpy as np

from .network import Network


def certified(net: Network, x: np.ndarray, eps: float) -> np.ndarray:
    """(m,) bool: interval bounds prove each row's predicted class in its [x - eps, x + eps] box (within [0, 1])."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    lower, upper = np.clip(x - eps, 0.0, 1.0), np.clip(x + eps, 0.0, 1.0)
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        centre, radius = (lower + upper) / 2 @ w.T, (upper - lower) / 2 @ np.abs(w).T
        if b is not None:
            centre = centre + b
        lower, upper = np.maximum(centre - radius, 0.0), np.maximum(centre + radius, 0.0)
    w, b = np.asarray(net.weights[-1], np.float64), net.biases[-1]
    guess = np.asarray(net.predict(x.astype(np.float32))).reshape(-1)
    margin_w = w[guess][:, None, :] - w[None, :, :]  # (m, classes, hidden): guess minus each class
    margin_b = 0.0 if b is None else (np.asarray(b, np.float64)[guess][:, None] - np.asarray(b, np.float64)[None, :])
    centre, radius = (lower + upper)[:, None, :] / 2, (upper - lower)[:, None, :] / 2
    low = (margin_w * centre).sum(-1) - (np.abs(margin_w) * radius).sum(-1) + margin_b
    low[np.arange(len(guess)), guess] = np.inf
    return (low > 0).all(axis=1)
