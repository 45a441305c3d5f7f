"""How long does each strategy take to pick 50 samples from a 10,000-sample pool?

The protocol's network (784-128-10) trained on 500 labeled Fashion-MNIST samples (the demo subset
when FVTUI_DATA_DIR has no Fashion-MNIST, with a smaller pool); every strategy is timed on the same
pool, best of --repeats, as the engine calls it.

    FVTUI_DATA_DIR=../shared/datasets python benchmarks/strategy_speed.py [--pool 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fvtui.data import load_dataset
from fvtui.errors import UserError
from fvtui.model import new_model, train
from fvtui.seeding import rng_for
from fvtui.strategies import STRATEGIES, SelectionContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--query", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        data = load_dataset("fashionmnist")
    except UserError:
        data = load_dataset("demo")
    rng = np.random.default_rng(0)
    order = rng.permutation(data.train_x.shape[0])
    labeled, pool = order[:500], order[500:500 + args.pool]
    model = new_model(data.num_features, (128,), data.num_classes, seed=0)
    train(model, data.train_x[labeled], data.train_y[labeled], epochs=10, batch_size=32, lr=1e-3, seed=0)
    print(f"{data.name}: pool {pool.size}, query {args.query}, torch threads {torch.get_num_threads()}")
    for name in STRATEGIES:
        times = []
        for repeat in range(args.repeats):
            context = SelectionContext(model, data.train_x[pool], data.train_x[labeled], rng_for(0, repeat, "strategy"))
            start = time.perf_counter()
            STRATEGIES[name](context, args.query)
            times.append(time.perf_counter() - start)
        print(f"{name:8s} best {min(times):6.2f} s   median {sorted(times)[len(times) // 2]:6.2f} s")


if __name__ == "__main__":
    main()
