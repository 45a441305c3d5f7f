"""What a person as the oracle costs the machine: saving a label, and the hint beside each sample.

Each label is appended to the session's labels.jsonl and fsynced before the screen moves on, so
its latency is one small write and one fsync on the sessions folder's disk. The hint asks interval
bounds whether the model's guess is certified robust at the round's eps start, for the whole
batch before it is shown. Both are measured on the protocol's 784-128-10 network (a Fashion-MNIST
shape, the demo data) with a batch of 50:

    python benchmarks/labelling.py [--labels 200] [--batch 50] [--eps 0.06]

Prints the median and 95th percentile of a saved label, the seconds to certify the batch, and how
many of its samples were certified (with a briefly trained network).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from fvtui.config import RoundSettings, SessionConfig
from fvtui.data import load_dataset
from fvtui.model import new_model, to_network, train
from fvtui.oracles import HumanOracle
from fvtui.records import LabelRequest
from fvtui.store import SessionStore
from fvtui.verify.interval import certified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--eps", type=float, default=0.06)
    args = parser.parse_args()
    demo = load_dataset("demo")
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as root:
        store = SessionStore(root)
        with store.create("bench", SessionConfig("demo", oracle="human", settings=RoundSettings())) as session:
            oracle = HumanOracle(session.label_journal(), demo.num_classes, "bench", wait=False)
            indices = tuple(range(args.labels))
            oracle.ask(LabelRequest(1, indices))
            seconds = []
            for index in indices:
                start = time.perf_counter()
                oracle.give(index, int(demo.train_y[index]))
                seconds.append(time.perf_counter() - start)
    ms = np.array(seconds) * 1000
    print(f"saving a label (append + fsync, {args.labels} labels): median {np.median(ms):.2f} ms, "
          f"95th percentile {np.percentile(ms, 95):.2f} ms")

    model = train(new_model(demo.num_features, (128,), demo.num_classes, seed=0), demo.train_x[:1000],
                  demo.train_y[:1000], epochs=5, batch_size=32, lr=1e-3, seed=0)
    net, x = to_network(model), demo.train_x[1000:1000 + args.batch].numpy()
    certified(net, x, args.eps)  # warm-up
    start = time.perf_counter()
    verdicts = certified(net, x, args.eps)
    took = time.perf_counter() - start
    print(f"certifying a batch of {args.batch} at eps {args.eps} (interval bounds, 784-128-10): {took * 1000:.1f} ms, "
          f"{int(verdicts.sum())} of {args.batch} certified")


if __name__ == "__main__":
    main()
