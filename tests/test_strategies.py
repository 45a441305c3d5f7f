"""Each strategy on cases where the right answer is known."""

from itertools import combinations

import numpy as np
import pytest
import torch

from fvtui.attacks import deepfool, fgsm_direction, fgsm_examples, logits_and_jacobian
from fvtui.model import embeddings, logits, predict
from fvtui.strategies import STRATEGIES, SelectionContext
from fvtui.strategies.badge import kmeans_pp
from fvtui.strategies.coreset import nearest_distance


@pytest.fixture(scope="module")
def ctx(demo, trained):
    return SelectionContext(trained, demo.train_x[1000:1600], demo.train_x[:50], np.random.default_rng(0))


def test_registries_match_their_files_and_the_protocol():
    from fvtui.augment import AUGMENTATIONS
    from fvtui.registry import plugin_names

    assert set(STRATEGIES) == {"random", "entropy", "margin", "badge", "coreset", "dfal", "fvaal"}
    assert set(AUGMENTATIONS) == {"none", "deepfool", "fgsm", "fv"}
    assert plugin_names("fvtui.strategies") == sorted(STRATEGIES)  # validation reads names from file names
    assert plugin_names("fvtui.augment") == sorted(AUGMENTATIONS)


def test_random_is_distinct_and_seeded(ctx):
    a = STRATEGIES["random"](ctx, 20)
    b = STRATEGIES["random"](SelectionContext(ctx.model, ctx.pool_x, ctx.labeled_x, np.random.default_rng(0)), 20)
    assert len(set(a.positions)) == 20
    assert np.array_equal(a.positions, b.positions)


def test_margin_picks_the_smallest_margins(ctx):
    probs = torch.softmax(logits(ctx.model, ctx.pool_x), 1).numpy()
    top2 = np.sort(probs, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    chosen = STRATEGIES["margin"](ctx, 15)
    assert set(chosen.positions) == set(np.argsort(margins, kind="stable")[:15])
    assert np.allclose(chosen.scores, margins[chosen.positions], atol=1e-6)
    assert chosen.scores.max() <= np.delete(margins, chosen.positions).min() + 1e-7


def test_entropy_picks_the_highest_entropy(ctx):
    probs = torch.softmax(logits(ctx.model, ctx.pool_x).double(), 1).numpy()
    entropy = -(probs * np.log(probs)).sum(1)
    chosen = STRATEGIES["entropy"](ctx, 15)
    assert chosen.scores.min() >= np.delete(entropy, chosen.positions).max() - 1e-5


def test_coreset_is_greedy_k_center(ctx):
    chosen = STRATEGIES["coreset"](ctx, 10)
    pool = embeddings(ctx.model, ctx.pool_x)
    centers = embeddings(ctx.model, ctx.labeled_x)
    for pick, score in zip(chosen.positions, chosen.scores):
        distance = nearest_distance(pool, centers)
        assert distance[pick] == pytest.approx(distance.max().item(), rel=1e-5)  # the farthest point
        assert score == pytest.approx(distance[pick].item(), rel=1e-5)
        centers = torch.cat([centers, pool[pick:pick + 1]])
    radius = nearest_distance(pool, centers).max().item()
    assert radius <= chosen.scores[-1] + 1e-5  # every point is within the last pick's distance
    assert np.all(np.diff(chosen.scores) <= 1e-5)


def test_coreset_is_within_twice_the_optimal_radius():
    """The k-center bound: greedy's covering radius is at most twice the best possible."""
    points = torch.tensor(np.random.default_rng(3).normal(size=(14, 2)), dtype=torch.float32)
    labeled = points[:1]
    rest = points[1:]

    def radius(chosen):
        return nearest_distance(rest, torch.cat([labeled, rest[list(chosen)]])).max().item()

    optimal = min(radius(c) for c in combinations(range(len(rest)), 3))
    distance = nearest_distance(rest, labeled)
    picks = []
    for _ in range(3):
        pick = int(distance.argmax())
        picks.append(pick)
        distance = torch.minimum(distance, (rest - rest[pick]).norm(dim=1))
    assert radius(picks) <= 2 * optimal + 1e-6


def test_kmeans_pp_spreads_picks_over_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(6)[:, :6] * 100
    points = np.concatenate([c + rng.normal(scale=0.01, size=(40, 6)) for c in centers])
    chosen, _ = kmeans_pp(torch.tensor(points, dtype=torch.float32), 6, np.random.default_rng(1))
    assert sorted(p // 40 for p in chosen) == list(range(6))  # one pick in every cluster


def test_badge_first_pick_has_the_largest_gradient_embedding(ctx):
    from fvtui.strategies.badge import gradient_embeddings

    chosen = STRATEGIES["badge"](ctx, 10)
    norms = gradient_embeddings(ctx).norm(dim=1)
    assert chosen.positions[0] == int(norms.argmax())
    assert len(set(chosen.positions)) == 10
    # spread: badge's picks cover the pool better (k-means cost) than the 10 largest or 10 random ones
    emb = gradient_embeddings(ctx)

    def cost(rows) -> float:
        return float((nearest_distance(emb, emb[torch.as_tensor(rows)]) ** 2).sum())

    randoms = [cost(np.random.default_rng(s).choice(len(emb), 10, replace=False)) for s in range(10)]
    assert cost(chosen.positions) < cost(torch.topk(norms, 10).indices)
    assert cost(chosen.positions) < np.mean(randoms)


def test_jacobian_matches_autograd(trained, demo):
    x = demo.train_x[:3]
    _, jac = logits_and_jacobian(trained, x)
    for i in range(3):
        expected = torch.autograd.functional.jacobian(trained, x[i:i + 1]).squeeze()
        assert torch.allclose(jac[i], expected, atol=1e-5)


def test_dfal_picks_smallest_deepfool_norms_and_they_flip(ctx):
    result = deepfool(ctx.model, ctx.pool_x)
    flipped = predict(ctx.model, result.adversarial) != predict(ctx.model, ctx.pool_x)
    assert flipped.float().mean() > 0.95
    chosen = STRATEGIES["dfal"](ctx, 10)
    assert set(chosen.positions) == set(torch.argsort(result.norms)[:10].tolist())


def test_a_samples_deepfool_does_not_depend_on_the_samples_beside_it(ctx):
    """DeepFool carries on with the rows that have not flipped yet, at the end one or two: their
    numbers must be those of a full batch (a few-row product rounds differently)."""
    x = ctx.pool_x[:64]
    together = deepfool(ctx.model, x)
    for i in range(64):
        alone = deepfool(ctx.model, x[i:i + 1])
        assert torch.equal(alone.perturbation[0], together.perturbation[i]), i
        assert int(alone.iterations[0]) == int(together.iterations[i])


def test_fvaal_eps_matches_brute_force(ctx):
    x = ctx.pool_x[:60]
    small = SelectionContext(ctx.model, x, ctx.labeled_x, ctx.rng)
    chosen = STRATEGIES["fvaal"](small, 60)
    anchor = chosen.anchor
    assert anchor.kind == "fgsm" and np.array_equal(anchor.size, chosen.scores)
    eps_by_row = dict(zip(chosen.positions, anchor.size))
    direction = fgsm_direction(ctx.model, x)
    original = predict(ctx.model, x)
    grid = torch.arange(0, 1.0 + 1e-9, 2.5e-4)
    flips = torch.stack([predict(ctx.model, fgsm_examples(x, direction, torch.full((60,), float(e)))) != original
                         for e in grid], dim=1)  # (60, grid)
    checked = 0
    for row in range(60):
        if not flips[row].any():
            assert eps_by_row[row] == pytest.approx(1.0, abs=5e-4)
            continue
        first = int(flips[row].float().argmax())
        if flips[row, first:].all():  # monotone along the FGSM line: binary search must find the boundary
            assert abs(eps_by_row[row] - float(grid[first])) <= 5e-4 + 2.5e-4
            checked += 1
    assert checked >= 40
    assert np.all(np.diff(anchor.size) >= 0)  # smallest first
    adversarial = torch.as_tensor(anchor.x)
    # the example sits at the bracket's upper end, half a bracket (2^-12) above the eps reported
    assert (adversarial - x[chosen.positions]).abs().amax(1).max() <= anchor.size.max() + 2.0 ** -12 + 1e-6
    flipped = (predict(ctx.model, adversarial) != original[chosen.positions]).numpy()
    assert np.array_equal(anchor.present, flipped)


@pytest.mark.parametrize("name", ["random", "entropy", "margin", "badge", "coreset", "dfal", "fvaal"])
def test_every_strategy_returns_n_distinct_rows_with_scores(ctx, name):
    chosen = STRATEGIES[name](ctx, 12)
    assert len(chosen.positions) == 12 == len(set(chosen.positions)) == len(chosen.scores)
    assert chosen.positions.max() < ctx.pool_x.shape[0]
