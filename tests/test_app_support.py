"""Helpers for the app tests (no tests here): tiny sessions on the demo data, waiting, screen text."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from fvtui.config import RoundSettings, SessionConfig

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("FVTUI_UPDATE_SNAPSHOTS") == "1"
VOLATILE = [  # what changes from run to run: clocks, durations, dates, temporary paths
    (re.compile(r"\d+:\d\d:\d\d"), "h:mm:ss"),
    (re.compile(r"\d+\.\d s\b"), "#.# s"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"), "yyyy-mm-dd hh:mm"),
    (re.compile(r"/tmp/\S+"), "<tmp>"),
]


def tiny_config(augment: str = "fgsm", rounds: int = 2, **settings) -> SessionConfig:
    base = dict(strategy="margin", augment=augment, query_size=10, pool_size=300, advs_per_sample=3)
    return SessionConfig(dataset="demo", rounds=rounds, init_size=20, hidden=(16,), epochs=2,
                         settings=RoundSettings(**{**base, **settings}))


def fv_config(rounds: int = 2) -> SessionConfig:
    """Rounds that really call the solver: a few samples, two counterexamples each."""
    return tiny_config(augment="fv", rounds=rounds, query_size=3, advs_per_sample=2, verify_timeout=5.0)


async def wait_for(pilot, predicate, timeout: float = 120.0, what: str | Callable[[], str] = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await pilot.pause(0.05)


async def settled(pilot, screen, previews: bool = True) -> None:
    """The screen is drawn; with `previews`, the samples panel is on show with its round's cards, every
    picture painted. A card's picture is held until the grid lets it draw, one per frame, and the round
    loads off the UI thread: a busy machine needs more than a pause, and a still screen may be one
    from before the cards came."""
    from fvtui.app.widgets.previews import PreviewGrid

    def painted() -> bool:
        grids = [grid for grid in screen.query(PreviewGrid) if grid.region]
        return bool(grids) and all(grid.previews and all(card.image.image is not None and not card.image.held
                                                         for card in grid.cards if card.display) for grid in grids)

    def state() -> str:  # what a timeout says, so that a stall on a busy CI machine tells its cause
        return "; ".join(f"grid region {grid.region}, {len(grid.previews)} previews, pending {grid._pending is not None}, "
                         f"held {[card.image.held for card in grid.cards if card.display]}"
                         for grid in screen.query(PreviewGrid)) or "no grid"

    if previews:
        await wait_for(pilot, painted, what=lambda: f"the samples panel's pictures ({state()})")
    # then until two looks 0.2 s apart show the same screen: a busy machine lays out and paints late
    shown, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        await pilot.pause(0.2)
        now = screen_text(screen.app)
        if now == shown:
            return
        shown = now


def notified(app) -> list[str]:
    """Every notification the app raises from now on. Textual drops a notification when its time is up (8 s for
    fvtui's reports), which a loaded test machine can pass before the test looks."""
    seen, notify = [], app.notify
    app.notify = lambda message, *args, **kwargs: seen.append(str(message)) or notify(message, *args, **kwargs)
    return seen


def log_text(screen) -> str:
    from fvtui.app.widgets.log import LogPanel

    return "\n".join(strip.text for strip in screen.query_one(LogPanel).lines)


async def wait_state(pilot, screen, *states: str, timeout: float = 120.0) -> None:
    from fvtui.app.widgets.status import StatusLine

    status = screen.query_one(StatusLine)
    # The status line has the state once the screen has handled it and every message sent before it.
    # The status line keeps the last word before "closed", so "closed" is the worker thread's state alone: what the
    # screen shows of the messages before it (a failure, its notification) is for the caller to wait for.
    shown = {*states} - {"closed"}
    await wait_for(pilot, lambda: screen.runner.state in states and (not shown or status.state in shown), timeout,
                   f"runner state in {states} (it is {screen.runner.state!r}, the screen shows {status.state!r})")


def screen_text(app) -> str:
    """The screen as plain text, volatile parts masked: what a person reads, diffable in review."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    text = console.export_text()
    for pattern, mask in VOLATILE:
        text = pattern.sub(mask, text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def assert_snapshot(app, name: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    text = screen_text(app)
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            raise AssertionError(f"new snapshot {path.name} written; check it and run again")
        return
    assert text == path.read_text(), (f"{name} differs from {path} (set FVTUI_UPDATE_SNAPSHOTS=1 to accept):\n"
                                      f"{text}")


def finished_session(store, demo, name: str, config: SessionConfig | None = None) -> None:
    """A saved session with all its rounds, made without the app (fast, and the same every time)."""
    from fvtui.engine import Engine

    with store.create(name, config or tiny_config()) as session, Engine(session, demo) as engine:
        engine.run()


def demo_loader(demo):
    return lambda name, data_dir: demo


def gated_loader(demo):
    """A loader that holds the session in 'loading' until the gate opens: keys land before any round."""
    gate = threading.Event()

    def load(name, data_dir):
        gate.wait(60)
        return demo

    return load, gate
