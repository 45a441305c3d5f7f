"""Datasets as flat float tensors in [0, 1]: torchvision's classes, or the bundled demo subset."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import UserError

DEMO_FILE = Path(__file__).resolve().parent.parent / "assets" / "demo" / "demo.npz"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    """Train and test splits; inputs flattened to (n, features) float32, labels int64."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    image_shape: tuple[int, ...]  # (h, w) or (h, w, 3), for previews and PNG export
    classes: tuple[str, ...]
    files: tuple[Path, ...] = ()  # own data: every file read, which a session fingerprints
    train_files: tuple[Path, ...] = ()  # own image folders: the file of each training sample

    @property
    def num_features(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def unlabelled(self) -> bool:
        """Training images without labels of their own: only a person can label them."""
        from .own_data import UNLABELLED

        return bool((self.train_y == UNLABELLED).any())

    def image_file(self, index: int) -> Path | None:
        """The file a training sample was read from (own image folders), else None."""
        return self.train_files[index] if self.train_files else None


def default_data_dir() -> Path:
    """--data-dir, else FVTUI_DATA_DIR, else a per-user cache folder."""
    env = os.environ.get("FVTUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("fvtui")) / "datasets"


def load_dataset(name: str, data_dir: str | Path | None = None, *, test: str = "", image_size: str = "",
                 channels: str = "auto") -> Dataset:
    """A built-in dataset by name, or a person's own images (own_data) by path."""
    if name == "demo":
        return _load_demo()
    from .own_data import is_own_data, load_own, parse_image_size

    if is_own_data(name):
        x, y, tx, ty, shape, classes, files = load_own(name, test or None, parse_image_size(image_size),
                                                       None if channels == "auto" else int(channels))
        return Dataset(name, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(tx), torch.from_numpy(ty),
                       image_shape=shape, classes=classes, files=tuple(files),
                       train_files=tuple(files[:len(x)]) if len(files) == len(x) + len(tx) else ())
    loaders = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "cifar10": "CIFAR10"}
    if name not in loaders:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join([*loaders, 'demo'])}")
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    import torchvision.datasets as tvd

    cls = getattr(tvd, loaders[name])
    layout = {"mnist": "MNIST/raw/", "fashionmnist": "FashionMNIST/raw/", "cifar10": "cifar-10-batches-py/"}[name]
    made = [p for p in (root, root / loaders[name], root / loaders[name] / "raw") if not p.exists()]
    try:
        train, test = (cls(root=str(root), train=flag, download=True) for flag in (True, False))
    except Exception as exc:  # torchvision raises URLError, RuntimeError, OSError... when offline
        for folder in reversed(made):  # the download's empty folders: a failed load leaves nothing behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        detail = " ".join(str(exc).split())[:200] or "no detail"
        raise UserError(
            f"dataset '{name}' is not in {root} and could not be downloaded ({type(exc).__name__}: {detail}). "
            f"Pass --data-dir (or set FVTUI_DATA_DIR) to a folder holding torchvision's layout: {layout} in it"
        ) from None
    return Dataset(name, *_flatten(train), *_flatten(test),
                   image_shape=tuple(np.asarray(train.data).shape[1:]), classes=tuple(train.classes))


def dataset_for(config, data_dir: str | Path | None = None) -> Dataset:
    """The dataset a session's configuration names (own data with its test set, size and channels)."""
    return load_dataset(config.dataset, data_dir, test=config.test, image_size=config.image_size,
                        channels=config.channels)


def session_dataset(session, data_dir: str | Path | None = None) -> Dataset:
    """A saved session's dataset, refused when its own image files changed since it recorded them."""
    from .own_data import check_unchanged

    dataset = dataset_for(session.config, data_dir)
    check_unchanged(session, dataset)
    return dataset


def check_room(dataset: Dataset, config, settings=None, *, done: Sequence = ()) -> None:
    """Refuse a session that would run out of unlabelled samples, before it starts or resumes: found in
    a late round, it stopped there with the rounds before it saved. `done`: the finished rounds' records
    (the last one's `labeled` counts the initial samples too)."""
    n = dataset.train_x.shape[0]
    if not done and config.init_size >= n:
        raise UserError(f"initial labeled size {config.init_size} must be below the {n} training samples")
    labeled, rounds_done = (done[-1].labeled if done else config.init_size), len(done)
    size = (settings or config.settings).query_size
    left = config.rounds - rounds_done
    if labeled + left * size > n:
        most = rounds_done + (n - labeled) // size
        raise UserError(f"{left} more rounds of {size} queried samples need {labeled + left * size} training samples "
                        f"with the {labeled} labeled so far; the dataset has {n}: at most {most} rounds at this "
                        "query size")


def _flatten(split) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.as_tensor(np.asarray(split.data))
    return _to_features(images), torch.as_tensor(np.asarray(split.targets), dtype=torch.int64)


def _to_features(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (n, h, w[, c]) -> float32 (n, h*w*c) in [0, 1], channels-last order kept."""
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)


def _load_demo() -> Dataset:
    if not DEMO_FILE.exists():
        raise UserError(f"the demo data {DEMO_FILE} is missing; reinstall fvtui from its source tree")
    with np.load(DEMO_FILE) as npz:
        arrays = {k: torch.as_tensor(npz[k]) for k in npz.files}
    return Dataset(
        "demo",
        _to_features(arrays["train_images"]), arrays["train_labels"].to(torch.int64),
        _to_features(arrays["test_images"]), arrays["test_labels"].to(torch.int64),
        image_shape=(28, 28), classes=FASHION_CLASSES,
    )
