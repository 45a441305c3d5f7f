"""How many bytes does the app write to the terminal, per screen, idle and while a round runs?

What a slow SSH link carries is what the app writes to its terminal, so this counts exactly that:
the app runs under a pseudo-terminal (100 x 30 cells of 10 x 20 pixels) and every byte it writes
is read from the pty's other end and time-stamped. Keys are sent as a person would press them.

Phases, on a saved session of the demo data (two rounds, fv): the curve, samples, table and log
panels idle, a card's inspector (first view and idle), the browser idle; then one more round runs
and the curve and samples panels are measured while it verifies.

    python benchmarks/app_bytes.py [--images halfcell|sixel|kitty|unicode] [--idle 8]
        [--textual-image-sixel]   # the Sixel widget textual-image ships, in today's screens

The README's "before" figures were taken with this script at commit 3626d83 (fvtui's screens before
issue 24; `--textual-image-sixel` for Sixel, `--images halfcell`).

Needs only the bundled demo data and the fvtui of the active environment (no terminal emulator).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROWS, COLS, CELL_W, CELL_H = 30, 100, 10, 20
SESSION = "bytes"

CHILD = r"""
import os, sys
if os.environ.get("BENCH_TEXTUAL_IMAGE_SIXEL") == "1":  # textual-image's own Sixel widget, unfixed
    import fvtui.app.images as images
    from textual_image.widget import SixelImage
    SixelImage.hold = SixelImage.release = lambda self: None  # fvtui's cards hold pictures back
    images.TerminalImage = SixelImage
from fvtui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def make_session(sessions: Path) -> None:
    from fvtui.config import RoundSettings, SessionConfig
    from fvtui.data import load_dataset
    from fvtui.engine import Engine
    from fvtui.store import SessionStore

    config = SessionConfig(dataset="demo", rounds=2, init_size=20, hidden=(16,), epochs=2,
                           settings=RoundSettings(strategy="margin", augment="fv", query_size=10, pool_size=300,
                                                  advs_per_sample=3, verify_timeout=5.0))
    store = SessionStore(sessions)
    with store.create(SESSION, config) as session, Engine(session, load_dataset("demo")) as engine:
        engine.run()


class Pty:
    """The app on a pseudo-terminal; a thread reads everything it writes, with the time it came."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the app
            os.execve(sys.executable, [sys.executable, "-c", CHILD, *argv], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, COLS * CELL_W, ROWS * CELL_H))
        self.chunks: list[tuple[float, int]] = []
        self.data = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                if not ready:
                    continue
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.chunks.append((time.monotonic(), len(chunk)))
                self.data.extend(chunk)

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def bytes_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(n for t, n in self.chunks if start <= t < end)

    def seen(self, text: bytes) -> bool:
        with self.lock:
            return text in self.data

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.2)
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def wait_for(term: Pty, text: bytes, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not term.seen(text):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {text!r} on screen")
        time.sleep(0.1)


def measure(term: Pty, label: str, keys: str, settle: float, idle: float, rows: list) -> None:
    """Press `keys`, count what the change itself sends for `settle` s, then `idle` s of quiet."""
    start = time.monotonic()
    if keys:
        term.send(keys)
    time.sleep(settle)
    middle = time.monotonic()
    time.sleep(idle)
    end = time.monotonic()
    first, quiet = term.bytes_between(start, middle), term.bytes_between(middle, end)
    rows.append((label, first, quiet / (end - middle)))
    print(f"{label:<34} {first:>10,} B on change {quiet / (end - middle):>12,.0f} B/s idle", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="sixel", help="FVTUI_IMAGES for the app (default sixel)")
    parser.add_argument("--textual-image-sixel", action="store_true",
                        help="use textual-image's own Sixel widget (the state before fvtui's encoder)")
    parser.add_argument("--idle", type=float, default=8.0, help="seconds of each idle measurement")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds allowed for a change to draw")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sessions = Path(tmp) / "sessions"
        print("making a two-round demo session (fv)…", flush=True)
        make_session(sessions)
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "FVTUI_IMAGES": args.images,
               "TEXTUAL_ANIMATIONS": "none"}
        env["BENCH_TEXTUAL_IMAGE_SIXEL"] = "1" if args.textual_image_sixel else "0"
        rows: list = []
        mode = "textual-image sixel" if args.textual_image_sixel else args.images
        print(f"images: {mode}; {COLS} x {ROWS} cells of {CELL_W} x {CELL_H} px", flush=True)

        term = Pty(["--sessions-dir", str(sessions), "resume", SESSION, "--workers", "1"], env)
        try:
            wait_for(term, b"finished")
            time.sleep(2.0)
            measure(term, "session: 1 curve", "", 0.5, args.idle, rows)
            measure(term, "session: 2 samples", "2", args.settle, args.idle, rows)
            measure(term, "session: 3 table", "3", args.settle, args.idle, rows)
            measure(term, "session: 4 log", "4", args.settle, args.idle, rows)
            term.send("2")
            time.sleep(args.settle)
            measure(term, "inspector (enter on a card)", "\r", args.settle, args.idle, rows)
            measure(term, "session: samples again (esc)", "\x1b", args.settle, args.idle, rows)
            measure(term, "browser (b)", "b", args.settle, args.idle, rows)
        finally:
            term.close()

        # One more round: the panels while it runs (the solver's progress is what changes).
        term = Pty(["--sessions-dir", str(sessions), "resume", SESSION, "--rounds", "3", "--workers", "1"], env)
        try:
            wait_for(term, b"verifying", timeout=300)
            measure(term, "round running: 1 curve", "", 0.5, args.idle, rows)
            measure(term, "round running: 2 samples", "2", args.settle, args.idle, rows)
        finally:
            term.close()

    print()
    print(f"| screen ({mode}) | bytes on change | bytes/s idle |")
    print("| --- | ---: | ---: |")
    for label, first, rate in rows:
        print(f"| {label} | {first:,} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
