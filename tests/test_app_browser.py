"""Plain `fvtui`: the session browser, opening (also read-only), creating and deleting sessions; and
what the app does around its screens: minimum size, command palette, start-up errors, light imports."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from test_app_support import demo_loader, finished_session, tiny_config, wait_for, wait_state
from textual.command import CommandPalette
from textual.widgets import DataTable, Input

from fvtui.app import run_app
from fvtui.app.app import make_app
from fvtui.app.screens.browser import BrowserScreen
from fvtui.app.screens.confirm import ConfirmScreen
from fvtui.app.screens.new_session import NewSessionScreen
from fvtui.app.screens.session import SessionScreen
from fvtui.app.screens.settings import SettingsScreen
from fvtui.app.screens.too_small import TooSmallScreen
from fvtui.app.widgets.curve import LearningCurve
from fvtui.cli import main
from fvtui.errors import UserError
from fvtui.store import SessionStore


@pytest.fixture
def store(tmp_path, demo):
    store = SessionStore(tmp_path / "sessions")
    finished_session(store, demo, "a")
    finished_session(store, demo, "b", tiny_config(augment="none", rounds=3))
    return store


async def browser(pilot, app) -> DataTable:
    table = app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.row_count > 0, what="the session list")
    return table


async def test_browser_lists_sessions_and_deletes_only_after_asking(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        table = await browser(pilot, app)
        assert [table.get_row_at(i)[:4] for i in range(2)] == [
            ["a", "demo", "margin+fgsm", "2/2"], ["b", "demo", "margin+none", "3/3"]]
        with store.open("b", writable=False) as b:
            assert table.get_row_at(1)[5] == f"{b.aubc:.4f}"
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert store.exists("a")
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: table.row_count == 1, what="the list to refresh")
        assert not store.exists("a") and store.exists("b")


async def test_open_draws_the_history_before_the_data_loads_and_back_returns(store, demo):
    loaded = threading.Event()

    def slow_loader(name, data_dir):
        loaded.wait(10)
        return demo

    app = make_app(store, loader=slow_loader)
    async with app.run_test(size=(100, 30)) as pilot:
        await browser(pilot, app)
        await pilot.press("down", "enter")
        screen = app.screen
        assert isinstance(screen, SessionScreen) and screen.runner.state in ("", "loading")
        with store.open("b", writable=False) as b:
            assert screen.query_one(LearningCurve).accuracies == b.accuracies
        loaded.set()
        await wait_state(pilot, screen, "finished")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen), what="the browser")
        assert screen.runner.ended.is_set()
        store.open("b").close()  # its lock was given back


async def test_a_locked_session_opens_read_only(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    with store.open("a"):  # another process runs it
        async with app.run_test(size=(100, 30)) as pilot:
            await browser(pilot, app)
            await pilot.press("enter")
            assert isinstance(app.screen, ConfirmScreen)
            assert "is being run by" in str(app.screen.query_one(".dialog-text").render())
            await pilot.press("y")
            screen = app.screen
            await wait_state(pilot, screen, "closed")
            assert screen.runner.state == "closed" and not screen.session.writable
            assert screen.query_one(DataTable).row_count == 10  # its last round, still shown
            await pilot.press("e")
            assert not isinstance(app.screen, SettingsScreen)


async def test_new_session_from_the_browser(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        await browser(pilot, app)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, NewSessionScreen)
        values = {"name": "fresh", "rounds": "1", "init_size": "20", "epochs": "1", "hidden": "8", "query_size": "5",
                  "pool_size": "0"}
        for key, value in values.items():
            form.query_one(f"#field-{key}", Input).value = value
        await pilot.press("ctrl+s")
        assert "pool size must be between 1 and 10000000, not 0" in str(form.query_one("#form-error").render())
        form.query_one("#field-pool_size", Input).value = "100"
        form.query_one("#field-name", Input).value = "a"
        await pilot.press("ctrl+s")
        assert "session 'a' already exists" in str(form.query_one("#form-error").render())
        assert "choose another name" in str(form.query_one("#form-error").render())  # a field here, no --name
        form.query_one("#field-name", Input).value = "fresh"
        await pilot.press("ctrl+s")
        screen = app.screen
        assert isinstance(screen, SessionScreen)
        await wait_state(pilot, screen, "finished")
        assert screen.session.name == "fresh" and len(screen.session.rounds) == 1
        assert screen.session.config.hidden == (8,)


async def test_too_small_terminal_shows_a_notice_until_it_grows(store, demo):
    app = make_app(store, loader=demo_loader(demo))
    async with app.run_test(size=(70, 20)) as pilot:
        assert isinstance(app.screen, TooSmallScreen)
        assert "need 80x24, have 70x20" in str(app.screen.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)
        await pilot.resize_terminal(79, 30)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)


async def test_every_key_is_in_the_command_palette(store, demo):
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "finished")
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {"Settings", "Inspect", "Compare", "Sessions", "Previous round", "Next page", "Log panel",
                "Quit"} <= titles
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Settings")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="the budget form")


def test_resume_refuses_a_locked_session_before_the_app_starts(store, capsys):
    with store.open("a"):
        with pytest.raises(UserError, match="is being run by"):
            run_app(store, resume_name="a")
        assert main(["--sessions-dir", str(store.root), "resume", "a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["--sessions-dir", str(store.root), "resume", "a", "--eps-step", "5"]) == 2  # invalid changes too,
    assert "eps step must be in" in capsys.readouterr().err  # before the terminal is taken, and nothing is saved
    with store.open("a", writable=False) as a:
        assert a.settings.eps_step != 5.0


def test_the_app_module_imports_neither_torch_nor_the_solver():
    """The first frame must not wait for torch or maraboupy: they load in the worker."""
    code = ("import sys, fvtui.app.app; heavy = {'torch', 'maraboupy', 'fvtui.engine', 'fvtui.data'} & "
            "set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_other_sessions_overlay_the_curve(store, demo):
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "finished")
        await pilot.press("c")
        options = app.screen.query_one("SelectionList")
        await wait_for(pilot, lambda: options.option_count == 1, what="the other sessions")
        await pilot.press("space", "ctrl+s")
        curve = screen.query_one(LearningCurve)
        await wait_for(pilot, lambda: "b" in curve.overlays, what="the overlay")
        with store.open("b", writable=False) as b:
            assert curve.overlays == {"b": b.accuracies}
