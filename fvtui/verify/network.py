"""A plain-numpy copy of a ReLU MLP: what solver workers receive instead of a torch module.

Workers never import torch (slow to start, large), so the engine hands them this picklable copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Network:
    """Layers `x -> relu(W_i x + b_i) ... -> W_L x + b_L`; a missing bias is `None`."""

    weights: tuple[np.ndarray, ...]  # each (out, in), float32
    biases: tuple[np.ndarray | None, ...]
    key: str = field(default="", compare=False)  # content hash: the Dask backend scatters each network once

    def __post_init__(self) -> None:
        if not self.key:
            h = hashlib.sha1()
            for w, b in zip(self.weights, self.biases):
                h.update(np.ascontiguousarray(w).tobytes())
                if b is not None:
                    h.update(np.ascontiguousarray(b).tobytes())
            object.__setattr__(self, "key", h.hexdigest()[:16])

    @property
    def input_size(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.weights[-1].shape[0])

    def layer(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer i's weights and bias in float64 (a missing bias as zeros), as the solvers' programs use them."""
        w = np.asarray(self.weights[i], np.float64)
        b = self.biases[i]
        return w, np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for one input (n,) or a batch (m, n), in float32 like the torch model."""
        h = np.asarray(x, dtype=np.float32)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T
            if b is not None:
                h = h + b
            if i < last:
                h = np.maximum(h, 0)
        return h

    def predict(self, x: np.ndarray) -> np.ndarray | int:
        out = self.logits(x).argmax(-1)
        return int(out) if np.ndim(out) == 0 else out
