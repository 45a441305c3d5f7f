"""Do solver workers outlive a SIGKILLed fvtui? Kill a headless fv session at random moments and
count the worker processes still alive 1 s after each kill.

    python benchmarks/orphan_workers.py [--kills 100] [--seed 0]

Each run is `fvtui new --headless` on the bundled demo data (fvaal+fv, 2 workers), killed a
uniform 0-3 s after its solver workers appear (they are then mostly inside Marabou), a fresh session
each time.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    survivors, workers_seen, started = [], [], time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        for i in range(args.kills):
            tag = uuid.uuid4().hex
            proc = subprocess.Popen([sys.executable, "-m", "fvtui", "--sessions-dir", root, "new", "--headless",
                                     "--name", f"k{i}", *FLAGS], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, "FVTUI_ORPHAN_TAG": tag})
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
    print(f"{args.kills} SIGKILLs of `fvtui new --headless` (demo, fvaal+fv, 2 workers) in "
          f"{time.monotonic() - started:.0f} s; workers running at the kill: {busy} of {args.kills} runs "
          f"({sum(workers_seen)} workers); alive 1 s after the kill: {sum(survivors)} "
          f"(in {sum(1 for s in survivors if s)} runs)")


if __name__ == "__main__":
    main()
