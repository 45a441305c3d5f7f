"""Over SSH: what the app sends to its terminal while nothing changes, and how it lays out pictures.

Every byte the app writes crosses the link; these tests hold the screens that used to repaint while
idle (the status clock under the inspector) and the Samples panel that laid its cards out twice
(sending each picture again) to what a slow link can afford.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from test_app_support import demo_loader, settled, wait_for, wait_state
from textual._compositor import Compositor

from fvtui.app.app import make_app
from fvtui.app.screens.inspector import InspectorScreen
from fvtui.app.widgets.previews import PreviewCard
from fvtui.app.widgets.status import StatusLine


async def test_status_clock_ticks_only_on_its_own_screen(store, demo, monkeypatch):
    refreshes: Counter = Counter()
    original = StatusLine.refresh

    def counting(self, *args, **kwargs):
        refreshes[self.screen.__class__.__name__] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StatusLine, "refresh", counting)
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        session_screen = app.screen
        await wait_state(pilot, session_screen, "finished")
        await pilot.press("3", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        await pilot.pause(0.3)
        refreshes.clear()
        await pilot.pause(2.6)  # two ticks of the clock under the inspector: nothing redrawn
        assert refreshes["SessionScreen"] == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is session_screen, what="the session screen")
        refreshes.clear()
        # on show again the clock ticks (each second; later on a machine busy with other tests)
        await wait_for(pilot, lambda: refreshes["SessionScreen"] >= 2, timeout=30, what="two ticks of the clock")


async def test_samples_panel_lays_its_cards_out_once(store, demo, monkeypatch):
    """A card that moves is sent again: showing the panel must place every card once, at its place."""
    moves: Counter = Counter()
    original = Compositor.reflow

    def reflow(self, parent, size):
        before = dict(self._full_map or {})
        result = original(self, parent, size)
        for widget, geometry in (self._full_map or {}).items():
            if isinstance(widget, PreviewCard) and before.get(widget) != geometry and widget.display:
                moves[id(widget)] += 1
        return result

    monkeypatch.setattr(Compositor, "reflow", reflow)
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.pause(0.3)
        moves.clear()
        await pilot.press("2")
        await settled(pilot, app.screen)
        await pilot.pause(0.5)
        cards = [c for c in app.screen.query(PreviewCard) if c.display]
        assert len(cards) == 10
        assert max(moves.values()) == 1, f"cards laid out more than once: {sorted(moves.values())}"


async def test_progress_repaints_the_status_line_at_most_twice_a_second(monkeypatch):
    from textual.app import App

    class One(App):
        def compose(self):
            yield StatusLine()

    refreshes = []  # repaints, as Textual asks for them (several refresh() calls make one)
    original = StatusLine.render
    monkeypatch.setattr(StatusLine, "render", lambda self: (refreshes.append(time.monotonic()), original(self))[1])
    app = One()
    async with app.run_test(size=(100, 10)) as pilot:
        status = app.query_one(StatusLine)
        status.set_state("running")
        status.set_phase(1, "augment", 0, 50)
        await pilot.pause(0.6)
        refreshes.clear()
        started = time.monotonic()
        for done in range(1, 41):  # forty samples verified in a second or two
            status.set_phase(1, "augment", done, 50)
            await pilot.pause(0.025)
        await pilot.pause(0.6)
        seconds = time.monotonic() - started
        assert 1 <= len(refreshes) <= 2 * seconds + 2  # twice a second, the clock included, not 40 times
        assert "40 / 50" in str(original(status))


async def test_a_grid_out_of_the_layout_for_a_moment_still_paints_every_picture(monkeypatch):
    """Laid out again at its old size, the grid gets neither a Show nor a Resize: a picture that came while
    it had no region must not wait for them (a CI run once waited 120 s for the samples panel)."""
    from textual.app import App
    from textual.geometry import Region

    from fvtui.app.widgets.previews import Preview, PreviewGrid

    class One(App):
        def compose(self):
            yield PreviewGrid()

    misses = [0]  # how many more looks at the grid's region find none, as in the middle of a layout
    real = PreviewGrid.region.fget

    def region(self):
        if misses[0]:
            misses[0] -= 1
            return Region()
        return real(self)

    monkeypatch.setattr(PreviewGrid, "region", property(region))
    app = One()
    async with app.run_test(size=(100, 30)) as pilot:
        grid = app.query_one(PreviewGrid)
        await pilot.pause(0.2)
        previews = [Preview(1, i, np.linspace(0, 1, 28 * 28), "a", "b", 0.5, 0) for i in range(4)]
        painted = lambda: not any(card.image.held for card in grid.cards[:4])  # noqa: E731
        grid.show(previews, (28, 28))  # the cards laid out: the next page comes at the same size
        await wait_for(pilot, painted, timeout=10, what="the first page painted")
        await pilot.pause(0.2)
        misses[0] = 2  # show() finds a region, the first picture's turn does not, nor the look after
        grid.show(previews[::-1], (28, 28))
        assert [card.image.held for card in grid.cards[:4]] == [True] * 4
        await wait_for(pilot, painted, timeout=10, what="every picture painted")
        assert misses[0] == 0
