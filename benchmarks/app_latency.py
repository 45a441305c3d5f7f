"""How soon does the app show its first frame, and how fast do keys answer while a round runs?

Measured the way a person sees it: tmux runs `fvtui new` and a tmux control-mode client watches
the pane. Every time the app writes to the terminal, the client reads the screen (`capture-pane`
over the same connection, no process per look, so the measuring takes no CPU from the app between
frames). First frame: from launching the command to the session's status line on screen. Key
latency: while the round verifies (solver workers busy on every core), a panel key (1-4) is sent
and the time until the screen shows that panel is taken. Only narrow sizes measure anything: from
160x45 the wide layout shows every panel at once.

    python benchmarks/app_latency.py [--keys 30] [--size 80x24]
Needs tmux and the `fvtui` command of the active environment; uses the bundled demo data.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

SESSION = "fvtui-latency"
PHASES = ("verifying", "training", "selecting", "labeling", "evaluating")
# What each panel key makes appear (a header only that panel draws).
PANEL_MARK = {"1": "test accuracy per round", "3": "sample  label", "4": "loading dataset"}


class Control:
    """A tmux control-mode client: commands and their replies on one pipe, and an event per burst of
    output the pane receives."""

    def __init__(self, session: str) -> None:
        self.proc = subprocess.Popen(["tmux", "-C", "attach", "-t", session], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, errors="replace")
        self.output = threading.Event()
        self.replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        while self.command("display-message -p ready") != "ready":  # skip the reply to the attach
            pass

    def _read(self) -> None:
        block: list[str] | None = None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if block is not None:
                if line.startswith(("%end", "%error")):
                    self.replies.put("\n".join(block))
                    block = None
                else:
                    block.append(line)
            elif line.startswith("%begin"):
                block = []
            elif line.startswith(("%output", "%extended-output", "%pause")):
                self.output.set()

    def command(self, text: str) -> str:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.replies.get(timeout=10)

    def screen(self) -> str:
        return self.command(f"capture-pane -p -t {SESSION}")

    def wait_for(self, text: str, timeout: float, since: float | None = None) -> float:
        """Seconds from `since` (default: now) until `text` is on screen, looking after each output."""
        t0 = time.perf_counter() if since is None else since
        while True:
            self.output.clear()
            if text in self.screen():
                return time.perf_counter() - t0
            left = timeout - (time.perf_counter() - t0)
            if left <= 0:
                raise TimeoutError(f"'{text}' not on screen within {timeout} s:\n{self.screen()}")
            self.output.wait(min(left, 1.0))  # the clock redraws every second anyway

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=30)
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
        subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", cols, "-y", rows, command], check=True)
        control = Control(SESSION)
        try:
            first = control.wait_for("lat  demo  badge+fv", 30, since=t0)
            print(f"first frame: {first:.2f} s after launch ({args.size})")
            control.wait_for("verifying", 120)
            print("round running (verifying); sending panel keys")
            latencies, phases = [], []
            keys = ["3", "1", "4", "1"]
            for i in range(args.keys):
                key = keys[i % len(keys)]
                control.wait_for("verifying", 120)  # only keys sent mid-verification count
                sent = time.perf_counter()
                control.command(f"send-keys -t {SESSION} {key}")
                latencies.append(control.wait_for(PANEL_MARK[key], 10, since=sent) * 1000)
                phases.append(f"key {key}, " + next((p for p in PHASES if p in control.screen()), "?"))
                time.sleep(0.2)
            control.command(f"send-keys -t {SESSION} q")
            time.sleep(0.5)
            control.command(f"send-keys -t {SESSION} y")
            time.sleep(2)
        finally:
            control.close()
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    slowest = sorted(zip(latencies, phases), reverse=True)[:3]
    latencies.sort()
    print(f"key to screen while verifying, {len(latencies)} keys: median {statistics.median(latencies):.0f} ms, "
          f"p90 {latencies[int(0.9 * (len(latencies) - 1))]:.0f} ms, max {latencies[-1]:.0f} ms")
    print("slowest (key, phase on screen when answered): " + ", ".join(f"{ms:.0f} ms ({phase})" for ms, phase in slowest))


if __name__ == "__main__":
    main()
