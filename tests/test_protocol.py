"""The authors'-code protocol rule by rule (PROTOCOL.md), on tiny data, and sessions of the
previous protocol resuming exactly as they ran."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fvtui import model as nn_model
from fvtui.attacks import deepfool, fgsm_direction, fgsm_examples, fgsm_min_eps
from fvtui.augment import AUGMENTATIONS, AugmentContext
from fvtui.augment.fgsm import grid_picks
from fvtui.augment.fv import start_of
from fvtui.config import LEGACY_PROTOCOL, PROTOCOL, RoundSettings, SessionConfig
from fvtui.engine import Engine
from fvtui.metrics import pairwise_distance_stats
from fvtui.model import predict
from fvtui.records import SyntheticBatch
from fvtui.store import SessionStore
from fvtui.strategies import STRATEGIES, SelectionContext
from fvtui.strategies._base import Anchor, Selection
from fvtui.verify.network import Network
from fvtui.verify.search import search_counterexamples

FIXTURES = Path(__file__).parent / "fixtures" / "protocol1"


# -- defaults -----------------------------------------------------------------------------------
def test_defaults_are_the_authors_protocol():
    cfg = SessionConfig(dataset="fashionmnist")
    assert (cfg.hidden, cfg.init, cfg.adam_eps, cfg.train_initial, cfg.protocol) == ((32,), "glorot", 1e-7, False,
                                                                                     PROTOCOL)
    s = cfg.settings
    assert (s.strategy, s.augment, s.advs_per_sample, s.eps_start, s.eps_step) == ("fvaal", "fv", 10, 0.06, 0.05)
    assert (cfg.rounds, cfg.init_size, s.query_size, s.pool_size, cfg.epochs, cfg.batch_size) == (20, 50, 50, 10_000,
                                                                                                 10, 32)


def test_a_config_without_protocol_is_the_legacy_one():
    old = json.loads((FIXTURES / "old-dfal-fgsm" / "session.json").read_text())["config"]
    cfg = SessionConfig.from_dict(old)
    assert (cfg.protocol, cfg.train_initial, cfg.init, cfg.adam_eps) == (LEGACY_PROTOCOL, True, "torch", 1e-8)
    again = SessionConfig.from_dict(cfg.to_dict())
    assert again == cfg  # a recorded protocol is kept as recorded


# -- network --------------------------------------------------------------------------------------
def test_glorot_init_has_keras_scale_and_zero_bias():
    net = nn_model.new_model(784, (32,), 10, seed=3)
    hidden, out = net.linears
    limit_h, limit_o = (6 / (784 + 32)) ** 0.5, (6 / (32 + 10)) ** 0.5
    assert hidden.weight.abs().max() <= limit_h and out.weight.abs().max() <= limit_o
    # uniform on [-a, a] has std a / sqrt(3)
    assert float(hidden.weight.detach().std()) == pytest.approx(limit_h / 3 ** 0.5, rel=0.03)
    assert float(out.weight.detach().std()) == pytest.approx(limit_o / 3 ** 0.5, rel=0.1)
    assert torch.count_nonzero(hidden.bias) == 0 and out.bias is None
    torch_init = nn_model.new_model(784, (32,), 10, seed=3, init="torch")
    assert torch.count_nonzero(torch_init.linears[0].bias) == 32  # nn.Linear's own: biases drawn too
    assert float(torch_init.linears[0].weight.detach().abs().max()) <= 1 / 784 ** 0.5 + 1e-7


def test_training_equals_torch_adam_bit_for_bit_and_uses_the_keras_eps():
    """fvtui's own Adam (torch.optim costs a torch._dynamo import) must train to the same bits."""
    gen = torch.Generator().manual_seed(5)
    x, y = torch.rand(40, 6, generator=gen), torch.randint(0, 3, (40,), generator=gen)

    def reference(eps):
        net = nn_model.new_model(6, (5, 4), 3, seed=1)
        optimizer, order_gen = torch.optim.Adam(net.parameters(), lr=1e-2, eps=eps), torch.Generator().manual_seed(0)
        for _ in range(3):
            order = torch.randperm(40, generator=order_gen)
            for start in range(0, 40, 8):
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(net(x[order[start:start + 8]]), y[order[start:start + 8]]).backward()
                optimizer.step()
        return [p.detach() for p in net.parameters()]

    ours = nn_model.train(nn_model.new_model(6, (5, 4), 3, seed=1), x, y, epochs=3, batch_size=8, lr=1e-2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), reference(1e-7)))
    assert not all(torch.equal(a, b) for a, b in zip(ours.parameters(), reference(1e-8)))


# -- training set ---------------------------------------------------------------------------------
@pytest.mark.parametrize("train_initial", [False, True])
def test_rounds_train_on_queried_samples_only_unless_asked(tmp_path, demo, monkeypatch, train_initial):
    seen: list[torch.Tensor] = []
    real = nn_model.train

    def spy(net, x, y, **kwargs):
        seen.append(x.clone())
        return real(net, x, y, **kwargs)

    monkeypatch.setattr(nn_model, "train", spy)
    cfg = SessionConfig(dataset="demo", rounds=2, init_size=20, epochs=1, hidden=(8,), train_initial=train_initial,
                        settings=RoundSettings(strategy="random", augment="fgsm", query_size=5, pool_size=200,
                                               advs_per_sample=2))
    session = SessionStore(tmp_path).create("t", cfg)
    with Engine(session, demo, workers=1) as engine:
        engine.run()
    initial = session.initial().labeled
    queried = [session.queried_indices(r) for r in (1, 2)]
    synthetic = [session.synthetic(r).x for r in (1, 2)]
    first = [initial] if train_initial else []
    expected_rounds = [
        np.concatenate([demo.train_x[np.concatenate(first + queried[:1])].numpy(), synthetic[0]]),
        np.concatenate([demo.train_x[np.concatenate(first + queried)].numpy(), synthetic[0], synthetic[1]]),
    ]
    assert len(seen) == 3  # the initial network, then rounds 1 and 2
    assert np.array_equal(seen[0].numpy(), demo.train_x[initial].numpy())
    for got, want in zip(seen[1:], expected_rounds):
        assert np.array_equal(got.numpy(), want)
    assert not set(initial) & set(np.concatenate(queried))  # the pool never offers an initial sample


def test_coreset_centres_are_the_trained_on_samples_or_a_random_first(demo, trained):
    pool = demo.train_x[1000:1300]
    empty = SelectionContext(trained, pool, pool[:0], np.random.default_rng(5))
    chosen = STRATEGIES["coreset"](empty, 10)
    assert chosen.positions[0] == np.random.default_rng(5).integers(0, 300)
    assert len(set(chosen.positions)) == 10


# -- FVAAL's epsilon and DeepFool -----------------------------------------------------------------
def test_fvaal_eps_is_the_final_bracket_midpoint(demo, trained):
    x = demo.train_x[3000:3200]
    search = fgsm_min_eps(trained, x)
    legacy = fgsm_min_eps(trained, x, legacy=True)
    width = 2.0 ** -11  # 11 bisections of [0, 1] reach the 5e-4 precision
    assert torch.allclose(legacy.eps - search.eps, torch.full_like(search.eps, width / 2))
    flipped = search.flips
    assert flipped.any()
    assert torch.all(predict(trained, search.adversarial[flipped]) != predict(trained, x[flipped]))
    assert torch.equal(flipped, legacy.eps < 1)


def test_deepfool_step_is_the_authors(demo, trained):
    x = demo.train_x[3000:3040]
    plain, nudged = deepfool(trained, x), deepfool(trained, x, nudge=1e-4)
    assert torch.all(plain.norms <= nudged.norms + 1e-6)  # the legacy step is longer by 1e-4 per iteration
    assert torch.all(plain.iterations >= 1)
    flipped = predict(trained, plain.adversarial) != predict(trained, x)
    assert flipped.float().mean() > 0.9


# -- FGSM-Adv -------------------------------------------------------------------------------------
def test_grid_picks_take_odd_points_then_neighbours_once():
    assert grid_picks(np.ones(6, bool)) == [1, 3, 5]
    assert grid_picks(np.zeros(6, bool)) == []
    # slot 1 (point 1) fails: point 0 stands in; slot 2 (point 3) fails, point 2 flips: taken
    assert grid_picks(np.array([1, 0, 1, 0, 0, 1], bool)) == [0, 2, 5]
    # point 2 is used by slot 1 (its i+1 fallback), so slot 2 cannot take it again
    assert grid_picks(np.array([0, 0, 1, 0, 0, 0], bool)) == [2]
    assert grid_picks(np.array([0, 0, 0, 0, 1, 0], bool)) == [4]  # slot 3's left neighbour


def _context(demo, trained, strategy: str, augment: str, k: int, n: int = 6) -> AugmentContext:
    pool = demo.train_x[2000:2300]
    selection = STRATEGIES[strategy](SelectionContext(trained, pool, pool[:0], np.random.default_rng(0)), n)
    rows = torch.as_tensor(selection.positions)
    return AugmentContext(model=trained, x=pool[rows], y=demo.train_y[2000:2300][rows],
                          source=selection.positions + 2000, selection=selection,
                          settings=RoundSettings(strategy=strategy, augment=augment, advs_per_sample=k))


def _expected_fgsm(ctx: AugmentContext, row: int, start: float, slots: int) -> list[np.ndarray]:
    grid = np.linspace(start, 0.1, 2 * slots)
    x = ctx.x[row:row + 1].repeat(len(grid), 1)
    direction = fgsm_direction(ctx.model, ctx.x[row:row + 1]).repeat(len(grid), 1)
    examples = fgsm_examples(x, direction, torch.from_numpy(grid).float())
    flips = (predict(ctx.model, examples) != predict(ctx.model, ctx.x[row:row + 1])).numpy()
    return [examples[j].numpy() for j in grid_picks(flips)]


def test_fgsm_uses_the_odd_grid_from_005_without_an_anchor(demo, trained):
    ctx = _context(demo, trained, "random", "fgsm", k=4)
    batch = AUGMENTATIONS["fgsm"](ctx).synthetic
    for row in range(len(ctx.source)):
        got = batch.x[batch.source == ctx.source[row]]
        want = _expected_fgsm(ctx, row, 0.05, 4)
        assert len(got) == len(want) and all(np.allclose(g, w, atol=1e-6) for g, w in zip(got, want))
    assert set(batch.origin) == {"fgsm"}


def test_dfal_fgsm_starts_with_the_clipped_deepfool_example(demo, trained):
    ctx = _context(demo, trained, "dfal", "fgsm", k=4)
    anchor = ctx.selection.anchor
    assert anchor.kind == "deepfool"
    expected_anchor = deepfool(trained, ctx.x).adversarial.clamp(0, 1).numpy()
    assert np.allclose(anchor.x, expected_anchor, atol=1e-6)
    batch = AUGMENTATIONS["fgsm"](ctx).synthetic
    for row in range(len(ctx.source)):
        mine = batch.source == ctx.source[row]
        norm = float(anchor.size[row])
        start = norm if norm < 0.1 else 0.0
        want = [anchor.x[row], *_expected_fgsm(ctx, row, start, 3)]
        got = batch.x[mine]
        assert len(got) == len(want) and all(np.allclose(g, w, atol=1e-6) for g, w in zip(got, want))
        assert batch.origin[mine][0] == "deepfool" and set(batch.origin[mine][1:]) <= {"fgsm"}


# -- FV-Adv starts ------------------------------------------------------------------------------
def _anchored(kind: str, sizes, present=None, legacy: bool = False) -> AugmentContext:
    n = len(sizes)
    anchor = Anchor(kind, np.full((n, 4), 0.5, np.float32), np.asarray(sizes, np.float64),
                    np.ones(n, bool) if present is None else np.asarray(present))
    return AugmentContext(model=None, x=torch.zeros(n, 4), y=torch.zeros(n, dtype=torch.long), source=np.arange(n),
                          selection=Selection(np.arange(n), np.zeros(n), anchor), settings=RoundSettings(),
                          legacy=legacy)


def test_dfal_fv_seeds_with_the_deepfool_example_and_starts_at_its_norm():
    ctx = _anchored("deepfool", [0.3, 0.5, 0.7])
    assert start_of(ctx, 0)[0] == pytest.approx(0.35)
    assert start_of(ctx, 1)[0] == pytest.approx(0.55)
    assert start_of(ctx, 2)[0] == pytest.approx(0.06)  # norm above 0.5: 0.01 + 0.05
    for row in range(3):
        seeds = start_of(ctx, row)[1]
        assert len(seeds) == 1 and np.array_equal(seeds[0], ctx.selection.anchor.x[row])


def test_fvaal_fv_start_above_05_and_without_an_example():
    ctx = _anchored("fgsm", [0.02, 0.62, 0.9997], present=[True, True, False])
    assert start_of(ctx, 0)[0] == pytest.approx(0.07)
    assert start_of(ctx, 1)[0] == pytest.approx(0.06) and len(start_of(ctx, 1)[1]) == 1
    assert start_of(ctx, 2) == (0.06, ())  # the FGSM search never flipped: no example to seed with
    legacy = _anchored("fgsm", [0.62], legacy=True)
    assert start_of(legacy, 0)[0] == pytest.approx(0.67)  # fvtui 0.1 had no 0.5 rule
    assert start_of(_anchored("deepfool", [0.3], legacy=True), 0) == (0.06, ())


def _always_w(features: int = 4) -> Network:
    """Class 0 beats class 1 by 1 everywhere: every fv query is UNSAT."""
    return Network(weights=(np.zeros((1, features), np.float32), np.array([[1.0], [0.0]], np.float32)),
                   biases=(np.ones(1, np.float32), None))


def test_search_counts_seeds_unchecked_and_stops_past_eps_one():
    net, x = _always_w(), np.full(4, 0.5, np.float32)
    seed = np.full(4, 0.4, np.float32)  # does not change the prediction: still counted, as the authors do
    result = search_counterexamples(net, x, 0, 1, k=3, eps_start=0.06, eps_step=0.05, timeout=30, seeds=[seed])
    assert [ce.source for ce in result.counterexamples] == ["seed"]
    assert result.status == "exhausted"
    radii = [q.eps for q in result.queries]
    assert radii[0] == pytest.approx(0.06) and radii[-1] == pytest.approx(0.96) and len(radii) == 19
    legacy = search_counterexamples(net, x, 0, 1, k=3, eps_start=0.06, eps_step=0.05, timeout=30, seeds=[seed],
                                    legacy=True)
    assert legacy.counterexamples == [] and legacy.queries[-1].eps == 1.0  # fvtui 0.1 re-checked, tried eps 1


# -- diversity ------------------------------------------------------------------------------------
def test_pairwise_distance_stats_by_hand():
    pts = np.array([[0, 0], [3, 4], [6, 8]], float)  # distances 5, 10, 5
    stats = pairwise_distance_stats(pts)
    d = np.array([5.0, 10.0, 5.0])
    assert stats == pytest.approx({"mean": d.mean(), "std": d.std(), "median": 5.0, "p10": 5.0,
                                   "p90": np.percentile(d, 90), "min": 5.0, "max": 10.0})
    assert stats["p90"] == pytest.approx(9.0)
    with pytest.raises(ValueError):
        pairwise_distance_stats(pts[:1])


def test_bench_diversity_is_the_papers_measure(tmp_path, demo):
    from fvtui.bench.digest import paper_diversity
    from fvtui.metrics import DISTANCE_STATS
    from scipy.spatial.distance import pdist

    cfg = SessionConfig(dataset="demo", rounds=3, init_size=20, epochs=1, hidden=(8,),
                        settings=RoundSettings(strategy="random", augment="fgsm", query_size=4, pool_size=200,
                                               advs_per_sample=3))
    store = SessionStore(tmp_path)
    session = store.create("d", cfg)
    with Engine(session, demo, workers=1) as engine:
        engine.run()
    got = paper_diversity(session, session.rounds)
    every = SyntheticBatch.concat([session.synthetic(r) for r in (1, 2, 3)], 784).x
    for round_index, samples in ((1, every[:12]), (3, every[-12:])):
        model = nn_model.model_from_numpy(session.model_state(round_index), 784, (8,), 10)
        d = pdist(nn_model.logits(model, torch.from_numpy(samples)).numpy().astype(np.float64))
        assert got[round_index]["mean"] == pytest.approx(d.mean())
        assert got[round_index]["max"] == pytest.approx(d.max())
        assert set(DISTANCE_STATS) <= set(got[round_index])


# -- the previous protocol ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["old-dfal-fgsm", "old-fvaal-fv"])
def test_a_protocol_1_session_resumes_as_it_ran(tmp_path, demo, name):
    shutil.copytree(FIXTURES / name, tmp_path / name)
    expected = json.loads((FIXTURES / "expected.json").read_text())[name]
    want = np.load(FIXTURES / f"{name}-round3.npz")
    session = SessionStore(tmp_path).open(name)
    assert session.config.protocol == LEGACY_PROTOCOL and len(session.rounds) == 2
    with Engine(session, demo, workers=1) as engine:
        record = engine.run_round()
    session.close()
    assert [q.index for q in record.queried] == expected["queried"]
    assert record.test_accuracy == expected["test_accuracy"]
    synthetic = SessionStore(tmp_path).open(name, writable=False).synthetic(3)
    assert np.array_equal(synthetic.x, want["x"]) and np.array_equal(synthetic.source, want["source"])


def test_a_bench_refuses_to_mix_protocols(tmp_path):
    bench_dir = tmp_path / "bench-demo"
    bench_dir.mkdir()
    shutil.copytree(FIXTURES / "old-dfal-fgsm", bench_dir / "dfal-fgsm-s1")
    args = ["--dataset", "demo", "--methods", "dfal+fgsm", "--seeds", "1", "--rounds", "3", "--hidden", "16",
            "--pool-size", "300", "--query-size", "5", "--advs-per-sample", "3", "--init-size", "50", "--epochs", "5"]
    result = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(tmp_path), "bench", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "ran protocol 1" in result.stderr and "runs protocol 2" in result.stderr
    assert "not comparable" in result.stderr and result.stderr.count("\n") == 1
    assert len(list((bench_dir / "dfal-fgsm-s1" / "rounds").iterdir())) == 2  # nothing saved was touched
