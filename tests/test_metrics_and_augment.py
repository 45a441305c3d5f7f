"""AUBC on hand-computed curves, and the gradient augmentations' guarantees."""

import numpy as np
import pytest
import torch

from fvtui.attacks import deepfool
from fvtui.augment import AUGMENTATIONS, AugmentContext
from fvtui.config import RoundSettings
from fvtui.metrics import aubc
from fvtui.model import predict
from fvtui.strategies import STRATEGIES, SelectionContext


def test_aubc_hand_computed():
    # trapezoids: (0.5+0.6)/2 + (0.6+0.8)/2 = 1.25, over 2 intervals
    assert aubc([0.5, 0.6, 0.8]) == pytest.approx(0.625)
    assert aubc([0.7] * 20) == pytest.approx(0.7)
    assert aubc(np.linspace(0, 1, 20)) == pytest.approx(0.5)
    assert aubc([0.42]) == pytest.approx(0.42)


def _context(demo, trained, strategy: str, augment: str, k: int = 10) -> AugmentContext:
    pool = demo.train_x[2000:2400]
    selection = STRATEGIES[strategy](SelectionContext(trained, pool, demo.train_x[:50], np.random.default_rng(0)), 8)
    rows = torch.as_tensor(selection.positions)
    return AugmentContext(model=trained, x=pool[rows], y=demo.train_y[2000:2400][rows],
                          source=(selection.positions + 2000), selection=selection,
                          settings=RoundSettings(strategy=strategy, augment=augment, advs_per_sample=k))


@pytest.mark.parametrize("strategy", ["random", "fvaal"])
def test_fgsm_examples_flip_and_stay_in_their_budget(demo, trained, strategy):
    ctx = _context(demo, trained, strategy, "fgsm")
    batch = AUGMENTATIONS["fgsm"](ctx).synthetic
    assert 0 < len(batch) <= 8 * 10
    source_row = {int(s): i for i, s in enumerate(ctx.source)}
    rows = np.array([source_row[int(s)] for s in batch.source])
    x = torch.from_numpy(batch.x)
    assert torch.all(predict(trained, x) != predict(trained, ctx.x)[rows])  # only flipping examples kept
    assert np.array_equal(batch.y, ctx.y.numpy()[rows])  # labeled with the source's oracle label
    distance = (x - ctx.x[rows]).abs().amax(1).numpy()
    assert np.all(distance <= batch.eps + 1e-6)
    assert batch.eps.max() <= 0.1 + 1e-6
    grid = batch.origin == "fgsm"
    if strategy == "fvaal":  # the anchor (its FGSM example) first, then a grid from its eps (0 above 0.1)
        size = ctx.selection.anchor.size[rows]
        start = np.where(size < 0.1, size, 0.0)
        assert set(batch.origin) == {"fgsm"}
    else:
        start = np.full(len(rows), 0.05)
    assert np.all(batch.eps[grid] >= start[grid] - 1e-6)
    assert x.min() >= 0 and x.max() <= 1


def test_deepfool_augmentation_is_clipped_and_labeled(demo, trained):
    ctx = _context(demo, trained, "dfal", "deepfool")
    batch = AUGMENTATIONS["deepfool"](ctx).synthetic
    assert len(batch) == 8
    assert batch.x.min() >= 0 and batch.x.max() <= 1
    assert np.array_equal(batch.source, ctx.source)
    assert np.array_equal(batch.y, ctx.y.numpy())
    expected = deepfool(trained, ctx.x).adversarial.clamp(0, 1).numpy()
    assert np.allclose(batch.x, expected)  # the DeepFool example itself, projected onto [0, 1]


def test_none_adds_nothing(demo, trained):
    assert len(AUGMENTATIONS["none"](_context(demo, trained, "random", "none")).synthetic) == 0
