"""Do solver workers outlive a SIGKILLed fvtui? Kill a headless fv session at random moments and
count the worker processes still alive 1 s after each kill.

    python benchmarks/orphan_workers.py [--kills 100] [--seed 0] [--stuck]

Each run is `fvtui new --headless` on the bundled demo data (fvaal+fv, 2 workers), killed a
uniform 0-3 s after its solver workers appear, a fresh session each time. On demo data queries take
milliseconds, so a worker is rarely caught inside one; --stuck instead kills a parent whose two
workers are each inside a call that would last a minute (the pool's test hook 'hang'), as a worker
is inside a long Marabou query.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

FLAGS = ["--dataset", "demo", "--rounds", "50", "--init-size", "20", "--query-size", "8", "--pool-size", "300",
         "--epochs", "3", "--hidden", "24", "--advs-per-sample", "10", "--workers", "2"]


def tagged(tag: str) -> list[int]:
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"FVTUI_ORPHAN_TAG={tag}".encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            pass
    return pids


STUCK = """
import numpy as np
from fvtui.verify import SearchTask, SolverPool
from fvtui.verify.network import Network
net = Network((np.ones((2, 4), np.float32), np.ones((2, 2), np.float32)), (None, None))
pool = SolverPool(2)
pool.run_searches([SearchTask(net, np.zeros(4, np.float32), 0, 1, timeout=60, fault="hang") for _ in range(2)])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stuck", action="store_true", help="kill while both workers are inside a long call")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    survivors, workers_seen, started = [], [], time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        for i in range(args.kills):
            tag = uuid.uuid4().hex
            command = ([sys.executable, "-c", STUCK] if args.stuck else
                       [sys.executable, "-m", "fvtui", "--sessions-dir", root, "new", "--headless", "--name", f"k{i}",
                        *FLAGS])
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "FVTUI_ORPHAN_TAG": tag})
            deadline = time.monotonic() + 60
            while not [p for p in tagged(tag) if p != proc.pid] and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 3.0))
            workers_seen.append(len([p for p in tagged(tag) if p != proc.pid]))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(1.0)
            left = tagged(tag)
            survivors.append(len(left))
            for pid in left:  # leave the machine clean for the next kill
                os.kill(pid, signal.SIGKILL)
    busy = sum(1 for w in workers_seen if w)
    what = "a parent whose 2 workers are inside a long call" if args.stuck else \
        "`fvtui new --headless` (demo, fvaal+fv, 2 workers)"
    print(f"{args.kills} SIGKILLs of {what} in "
          f"{time.monotonic() - started:.0f} s; workers running at the kill: {busy} of {args.kills} runs "
          f"({sum(workers_seen)} workers); alive 1 s after the kill: {sum(survivors)} "
          f"(in {sum(1 for s in survivors if s)} runs)")


if __name__ == "__main__":
    main()
