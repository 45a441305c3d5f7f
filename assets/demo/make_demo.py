"""Rebuild demo.npz: a stratified Fashion-MNIST subset, so fvtui runs with no network at all.

Usage: python assets/demo/make_demo.py /path/to/datasets   (torchvision layout: FashionMNIST/raw/)
"""

import sys
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS, TEST_PER_CLASS = 500, 100


def read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks))


def main(root: str) -> None:
    raw = Path(root) / "FashionMNIST" / "raw"
    rng = np.random.default_rng(2025)
    out = {}
    for split, prefix, per_class in (("train", "train", TRAIN_PER_CLASS), ("test", "t10k", TEST_PER_CLASS)):
        images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte")
        keep = stratified(labels, per_class, rng)
        out[f"{split}_images"], out[f"{split}_labels"] = images[keep], labels[keep]
    np.savez_compressed(Path(__file__).with_name("demo.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1])
