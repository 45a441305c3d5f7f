"""How soon does the app show its first frame, and how fast do keys answer while a round runs?

Measured the way a person sees it: tmux runs `fvtui new`, `capture-pane` reads the screen every
few milliseconds. First frame: from launching the command to the session's status line on screen.
Key latency: while the round verifies (solver workers busy on every core), a panel key (1-4) is
sent and the time until the screen shows that panel is taken; the poll interval bounds the error.
Only narrow sizes measure anything: from 160x45 the wide layout shows every panel at once.

    python benchmarks/app_latency.py [--keys 20] [--size 80x24]
Needs tmux and the `fvtui` command of the active environment; uses the bundled demo data.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time

SESSION = "fvtui-latency"
# What each panel key makes appear (a header only that panel draws).
PANEL_MARK = {"1": "test accuracy per round", "3": "sample  label", "4": "loading dataset"}


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_for(predicate, timeout: float, poll: float = 0.002) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if predicate(screen()):
            return time.perf_counter() - t0
        time.sleep(poll)
    raise TimeoutError(f"screen did not change within {timeout} s:\n{screen()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--size", default="80x24")
    args = parser.parse_args()
    cols, rows = args.size.split("x")
    fvtui = shutil.which("fvtui")
    if not fvtui or not shutil.which("tmux"):
        raise SystemExit("needs tmux and fvtui on PATH")
    with tempfile.TemporaryDirectory() as sessions:
        command = (f"{fvtui} --sessions-dir {sessions} new --dataset demo --name lat --strategy badge --augment fv "
                   "--rounds 50 --query-size 50 --pool-size 2000 --advs-per-sample 10")
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        t0 = time.perf_counter()
        tmux("new-session", "-d", "-s", SESSION, "-x", cols, "-y", rows, command)
        wait_for(lambda s: "lat  demo  badge+fv" in s, 30)
        first = time.perf_counter() - t0
        print(f"first frame: {first:.2f} s after launch ({args.size})")
        wait_for(lambda s: "verifying" in s, 120, poll=0.05)
        print("round running (verifying); sending panel keys")
        latencies = []
        keys = ["3", "1", "4", "1"]
        for i in range(args.keys):
            key = keys[i % len(keys)]
            wait_for(lambda s: "verifying" in s, 120, poll=0.05)  # only keys sent mid-verification count
            tmux("send-keys", "-t", SESSION, key)
            latencies.append(wait_for(lambda s: PANEL_MARK[key] in s, 10) * 1000)
            time.sleep(0.2)
        tmux("send-keys", "-t", SESSION, "q")
        time.sleep(0.5)
        tmux("send-keys", "-t", SESSION, "y")
        time.sleep(2)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    latencies.sort()
    print(f"key to screen while verifying, {len(latencies)} keys: median {statistics.median(latencies):.0f} ms, "
          f"p90 {latencies[int(0.9 * (len(latencies) - 1))]:.0f} ms, max {latencies[-1]:.0f} ms")


if __name__ == "__main__":
    main()
