"""What a person sees on the main screens, as text (tests/snapshots/*.txt; clocks and dates masked).

FVTUI_UPDATE_SNAPSHOTS=1 rewrites them after an intended change; review the diff like code. The
sessions on show are kept in tests/fixtures/snapshot_sessions, made once: trained at test time, a
BLAS build's float noise could move their numbers, curves and picks (delete the folder to make
them again).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_app_support import (assert_snapshot, demo_loader, finished_session, settled, tiny_config, wait_for,
                              wait_state)

SAVED = Path(__file__).parent / "fixtures" / "snapshot_sessions"
from textual.widgets import DataTable, Input

from fvtui.app.app import make_app
from fvtui.app.screens.browser import COLUMNS
from fvtui.app.screens.inspector import InspectorScreen
from fvtui.store import SessionStore


@pytest.fixture
def store(tmp_path, demo, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sessions folder shows as a short relative path
    store = SessionStore("sessions")
    for name, config in (("a", tiny_config()), ("b", tiny_config(augment="none", rounds=3))):
        if not (SAVED / name).exists():
            finished_session(SessionStore(SAVED), demo, name, config)
        shutil.copytree(SAVED / name, store.root / name, ignore=shutil.ignore_patterns("lock"))
    return store


async def test_browser(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "2 sessions" in str(app.screen.query_one("#browser-note").render()))
        # the first fill again, with a frame drawn before the table's next idle pass (as on a busy
        # machine's CI): the cells must not stay cut to the headers' widths
        table = app.screen.query_one(DataTable)
        table.clear(columns=True).add_columns(*COLUMNS)
        app.screen._fill(app.screen.summaries)
        for y in range(table.size.height):
            table.render_line(y)
        await pilot.pause(0.2)
        assert_snapshot(app, "browser_80x24")


@pytest.mark.parametrize("panel", ["curve", "samples", "table"])
async def test_session_panels_at_80x24(store, demo, panel):
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.press({"curve": "1", "samples": "2", "table": "3"}[panel])
        await settled(pilot, app.screen, previews=panel == "samples")
        assert_snapshot(app, f"session_{panel}_80x24")


async def test_session_wide(store, demo):
    app = make_app(store, session=store.open("b"), loader=demo_loader(demo))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await settled(pilot, app.screen)
        assert_snapshot(app, "session_160x45")


async def test_inspector(store, demo):
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.press("3", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
        await pilot.pause(0.2)
        assert_snapshot(app, "inspector_80x24")


async def test_budget_form(store, demo):
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.press("e")
        for field in app.screen.query(Input):
            field.cursor_blink = False
        app.screen.query_one("#field-eps_start", Input).value = "0"
        await pilot.pause(0.2)
        assert_snapshot(app, "budget_form_80x24")


async def test_too_small(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause(0.2)
        assert_snapshot(app, "too_small_70x20")
