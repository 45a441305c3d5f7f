"""The session screen driven with Textual's pilot: rounds run, show up, can be steered and stopped."""

from __future__ import annotations

import contextlib
import time

import pytest
from solver_processes import solver_children
from test_app_support import (demo_loader, finished_session, fv_config, gated_loader, log_text, notified, tiny_config,
                              wait_for, wait_state)
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from fvtui.app.app import make_app
from fvtui.app.screens.session import SessionScreen
from fvtui.app.screens.settings import SettingsScreen
from fvtui.app.widgets.curve import LearningCurve
from fvtui.app.widgets.previews import PreviewCard, PreviewGrid
from fvtui.app.widgets.status import StatusLine
from fvtui.app.widgets.verification import VerificationTable
from fvtui.errors import UserError
from fvtui.metrics import aubc
from fvtui.events import RoundStarted
from fvtui.store import SessionStore


@pytest.fixture
def store(tmp_path):
    return SessionStore(tmp_path / "sessions")


async def test_new_session_runs_and_shows_each_round(store):
    """The real loader (torch is imported in the worker), two rounds, and every panel filled in."""
    app = make_app(store, new_config=tiny_config(), new_name="s")
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, SessionScreen)
        await wait_state(pilot, screen, "finished")
        session = screen.session
        assert len(session.rounds) == 2
        table = screen.query_one(VerificationTable)
        await wait_for(pilot, lambda: table.round_index == 2, what="the table to show round 2")  # its own frame
        assert screen.query_one(LearningCurve).accuracies == session.accuracies
        record = session.rounds[-1]
        assert table.row_count == len(record.queried) == 10
        assert table.round_index == 2
        grid = screen.query_one(PreviewGrid)
        cards = [c for c in grid.query(PreviewCard) if c.display]
        assert len(cards) == 10 and cards[0].preview.position == 0
        assert cards[0].preview.label == screen.dataset.classes[record.queried[0].label]
        assert cards[0].image.image.size == (28, 28)
        assert "round 2/2" in str(screen.query_one(StatusLine).render())
        assert "round 2/2: accuracy" in log_text(screen)
        await pilot.press("left_square_bracket")  # back to round 1
        assert table.round_index == 1 and grid.previews[0].round_index == 1
    assert store.open("s", writable=True).rounds  # the lock was released at exit


async def test_pause_and_resume(store, demo):
    """A pause asked for during a round lets that round finish, then nothing runs until p resumes."""
    app = make_app(store, new_config=tiny_config(rounds=3), new_name="s", loader=demo_loader(demo))
    runner = app.start
    emit = runner._emit

    def pause_during_round_1(event) -> None:  # as if p came mid-round, without the key's timing
        if isinstance(event, RoundStarted) and event.round == 1:
            runner.pause()
        emit(event)

    runner._emit = pause_during_round_1
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "paused")
        assert len(screen.session.rounds) == 1
        await pilot.pause(0.5)
        assert len(screen.session.rounds) == 1  # nothing runs while paused
        assert "paused" in str(screen.query_one(StatusLine).render())
        keys = list(screen.query_one(Footer).query(FooterKey))
        assert "Resume" in [k.description for k in keys] and "Pause" not in [k.description for k in keys]
        for key in "3241":  # each moves the focus, but the footer's keys stay: it is not rebuilt
            await pilot.press(key)
        await pilot.pause()
        assert list(screen.query_one(Footer).query(FooterKey)) == keys
        await pilot.press("p")
        await wait_state(pilot, screen, "finished")
        assert len(screen.session.rounds) == 3
        assert "Resume" not in [k.description for k in screen.query_one(Footer).query(FooterKey)]


@contextlib.asynccontextmanager
async def paused_before_round_one(store, demo, rounds: int):
    """A new session 's' of tiny rounds, paused before its first: the p lands while the data loads."""
    loader, gate = gated_loader(demo)
    app = make_app(store, new_config=tiny_config(rounds=rounds), new_name="s", loader=loader)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("p")
        assert app.screen.runner.pause_requested
        gate.set()
        await wait_state(pilot, app.screen, "paused")
        yield app, pilot


async def test_budget_edits_are_refused_when_invalid_then_saved_and_used(store, demo):
    async with paused_before_round_one(store, demo, rounds=1) as (app, pilot):
        screen = app.screen
        assert not screen.session.rounds
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, SettingsScreen)
        form.query_one("#field-eps_step", Input).value = "2"
        await pilot.press("ctrl+s")
        assert app.screen is form  # refused, with the reason under the fields
        assert "eps step must be in (0.0, 1.0], not 2.0" in str(form.query_one("#form-error").render())
        form.query_one("#field-eps_step", Input).value = "0.07"
        form.query_one("#field-advs_per_sample", Input).value = "2"
        form.query_one("#field-rounds", Input).value = "2"
        await pilot.press("ctrl+s")
        assert app.screen is screen
        assert screen.session.settings.eps_step == 0.07 and screen.session.config.rounds == 2
        with store.open("s", writable=False) as saved:  # saved with the session at once
            assert saved.settings.advs_per_sample == 2 and saved.config.rounds == 2
        await pilot.press("p")
        await wait_state(pilot, screen, "finished")
        assert [r.settings.eps_step for r in screen.session.rounds] == [0.07, 0.07]
        assert screen.session.rounds[0].settings.advs_per_sample == 2


async def test_the_budget_form_says_from_which_round_a_save_applies_and_what_a_field_means(store, demo):
    async with paused_before_round_one(store, demo, rounds=3) as (app, pilot):
        screen = app.screen
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, SettingsScreen)

        def title() -> str:
            return str(form.query_one(".dialog-title").render())

        assert title() == "Next rounds of s (from round 1)"
        told = [1]  # every round the title was given that differs from the one before, as the screen tells it
        show = form.show_next_round

        def recorded(next_round: int) -> None:
            show(next_round)
            if next_round != told[-1]:
                told.append(next_round)

        form.show_next_round = recorded
        screen.runner.resume()  # the form stays open: the session's p would type into it
        await wait_state(pilot, screen, "finished")
        await pilot.pause()
        # a round runs with the settings it started with: while round r runs, a save applies from r + 1
        # (test_the_budget_form_follows_a_stopped_round_back holds a round to see it). The title reads the
        # session when the screen hears of a round, which on a loaded machine can be a round later: so it
        # moves on with the rounds, never back, and not necessarily through each of these tiny rounds.
        assert told == sorted(set(told)) and set(told) <= {1, 2, 3, 4}
        assert told[-1] == 4 and title() == "Next rounds of s (from round 4)" and app.screen is form

        def help_text() -> str:
            return str(form.query_one("#form-help").render())

        form.query_one("#field-eps_start", Input).focus()
        await pilot.pause()
        assert help_text() == "first L-inf radius of the fv search (dfal/fvaal: their example's size + eps step)"
        await pilot.press("tab")
        assert help_text() == "radius growth after an UNSAT query"
        form.query_one("#field-strategy").focus()
        await pilot.pause()
        assert help_text().startswith("query strategy") and form.query_one("#form-help").display
        form.query_one("#field-eps_step", Input).value = "2"
        await pilot.pause()  # the reason a value is refused takes the help's place
        assert form.query_one("#form-error").display and not form.query_one("#form-help").display
        form.query_one("#field-eps_step", Input).value = "0.05"
        await pilot.pause()
        assert not form.query_one("#form-error").display and form.query_one("#form-help").display
        form.query_one("#field-eps_step", Input).value = "0.07"
        await pilot.press("ctrl+s")
        assert "saved for round 4 on: eps_step 0.05 → 0.07" in log_text(screen)


class EndlessSolver:
    """Stands in for the solver pool: the first search runs until cancelled, later ones find nothing."""

    progress = ()  # what the first search tells of itself while it runs (SearchProgress), in order

    def __init__(self, workers=None) -> None:
        self.calls = 0

    def run_searches(self, tasks, on_result=None, cancel=None, on_progress=None):
        from fvtui.errors import Cancelled
        from fvtui.verify import SearchResult

        self.calls += 1
        if self.calls == 1:
            for progress in self.progress:
                on_progress(0, progress)
            cancel.wait()
            raise Cancelled()
        results = [SearchResult("exhausted", final_eps=1.0) for _ in tasks]
        for i, result in enumerate(results):
            on_result(i, result)
        return results

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def verifying_forever(store, demo, solver=EndlessSolver):
    """A new session 's' whose round 1 verifies until it is cancelled (EndlessSolver)."""
    app = make_app(store, new_config=fv_config(rounds=1), new_name="s", loader=demo_loader(demo),
                   solver_factory=solver)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(StatusLine).phase == "augment", what="verification")
        yield app, pilot


async def test_the_budget_form_follows_a_stopped_round_back(store, demo):
    async with verifying_forever(store, demo) as (app, pilot):
        screen = app.screen
        await pilot.press("e")
        form = app.screen
        assert str(form.query_one(".dialog-title").render()).endswith("(from round 2)")  # round 1 runs
        screen.runner.stop()  # discards round 1: a save now applies to it
        await wait_state(pilot, screen, "stopped")
        await pilot.pause()
        assert str(form.query_one(".dialog-title").render()).endswith("(from round 1)")


def test_a_round_run_again_after_a_stop_gets_its_clock_back():
    """The status line lost its 'round' timer when a stopped round ran again: the same round index."""
    status = StatusLine()
    status.set_phase(1, "select")
    status.set_state("stopped")
    assert status.round_started is None
    status.set_state("running")
    status.set_phase(1, "select")
    assert status.round_started is not None  # what the "round 0:00:07" clock counts from


async def test_stop_discards_the_round_and_resume_redoes_it(store, demo):
    async with verifying_forever(store, demo) as (app, pilot):
        screen = app.screen
        table = screen.query_one(VerificationTable)
        assert table.live and table.row_count == 3
        # the picks, their labels and predictions are on show while their searches run
        picked = [[str(cell) for cell in table.get_row_at(row)[1:5]] for row in range(3)]
        assert all(status == "pending" for *_, status in picked)
        grid = screen.query_one(PreviewGrid)  # so are their pictures, which open only once the round is saved
        live = [(p.round_index, p.label, p.predicted) for p in grid.previews]
        assert [label for _, label, _ in live] == [row[1] for row in picked]
        assert "round 1 running" in str(screen.query_one("#samples-title").render())
        grid.query(PreviewCard).first().focus()
        await pilot.press("enter")  # a round verifying opens as it stands: here no search has ended yet
        await wait_for(pilot, lambda: app.screen is not screen, what="the inspector")
        assert [s.note for s in app.screen.subjects] == ["search not started yet"] * 3
        assert not any(s.candidates for s in app.screen.subjects)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="the session screen")
        curve = screen.query_one(LearningCurve)  # round 0, the initial model, is drawn while round 1 runs
        assert curve.initial == screen.session.initial().test_accuracy and not curve.accuracies
        await pilot.press("s")
        await pilot.press("y")
        await wait_state(pilot, screen, "stopped")
        assert not screen.session.rounds and not grid.previews  # the discarded picks are gone
        said = " ".join(log_text(screen).split())  # as one line, wherever the panel wraps it
        assert "round 1 stops there and starts again on resume; no round has finished yet" in said
        await pilot.press("p")
        await wait_state(pilot, screen, "finished")
        record = screen.session.rounds[0]
        assert [v.status for v in record.verification] == ["robust"] * 3
        classes = screen.dataset.classes
        assert picked == [[str(q.index), classes[q.label], classes[q.predicted], "pending"] for q in record.queried]
        assert live == [(1, classes[q.label], classes[q.predicted]) for q in record.queried]
        assert table.row_count == 3 and not table.live
        assert str(table.get_cell_at((0, 4))) == "robust"


async def test_a_running_search_shows_its_radius_points_and_seconds(store, demo):
    from fvtui.verify.results import SearchProgress

    class Telling(EndlessSolver):  # the row shows the last word by the next second's tick
        started = time.monotonic()
        progress = (SearchProgress(0.06, 0, 1, started), SearchProgress(0.11, 2, 3, started))

    async with verifying_forever(store, demo, Telling) as (app, pilot):
        screen = app.screen
        table = screen.query_one(VerificationTable)

        def rows():
            return [[str(cell) for cell in table.get_row_at(row)[4:]] for row in range(table.row_count)]

        await wait_for(pilot, lambda: any(row[:2] == ["searching", "0.110"] for row in rows()),
                       what=lambda: f"a search in {rows()}")
        (running,) = [row for row in rows() if row[0] == "searching"]
        assert running[1:3] == ["0.110", "2"] and int(running[3]) <= 1
        assert sorted(row[0] for row in rows()) == ["pending", "pending", "searching"]
        await wait_for(pilot, lambda: "2" in [row[3] for row in rows()], 10,
                       what=lambda: f"its seconds to tick: {rows()}")
        screen._show_live_table()  # drawn again (back from another round): the running search is still told
        assert [row[:3] for row in rows() if row[0] == "searching"] == [["searching", "0.110", "2"]]


async def test_quit_mid_round_keeps_a_resumable_session_and_no_solver(store, demo):
    # Far more rounds than can finish before the key lands, even on a loaded machine: a short session
    # could end between the dialog opening and the confirmation, and then nothing would be discarded.
    app = make_app(store, new_config=fv_config(rounds=50), new_name="s", loader=demo_loader(demo), workers=1)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_for(pilot, solver_children, what="the engine's solver processes")
        await pilot.press("q")
        assert "Quit while round" in str(app.screen.query_one(".dialog-text").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert screen.runner.ended.is_set()
    assert solver_children() == []
    with store.open("s") as session:  # not locked, and the discarded round left nothing behind
        assert len(session.rounds) < 50
        assert not list((session.path / "rounds").glob(".tmp-*"))


async def test_a_failing_round_is_reported_and_the_session_stays_usable(store, demo, monkeypatch):
    from fvtui.engine import Engine

    real = Engine.run_round
    calls = []

    def flaky(self):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError()
        return real(self)

    monkeypatch.setattr(Engine, "run_round", flaky)
    app = make_app(store, new_config=tiny_config(rounds=1), new_name="s", loader=demo_loader(demo))
    notes = notified(app)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "paused")
        assert "round 1 failed: out of memory" in log_text(screen)
        assert any("out of memory" in note for note in notes)
        await pilot.press("p")
        await wait_state(pilot, screen, "finished")
        assert len(screen.session.rounds) == 1


async def test_bad_data_leaves_no_session_and_exits_2(store):
    def broken(name, data_dir):
        raise UserError("dataset 'demo' is not in /nowhere")

    app = make_app(store, new_config=tiny_config(), new_name="s", loader=broken)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "closed")
        # the runner's state is the worker thread's; the screen shows the failure once it has handled its message
        await wait_for(pilot, lambda: "not in /nowhere" in log_text(screen)
                       and "failed" in str(screen.query_one(StatusLine).render()), 30, "the failure shown")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.return_code == 2
    assert not store.exists("s")


@pytest.mark.parametrize("field, text, message", [
    ("eps_start", ".", "eps start must be a number, not '.'"),
    ("eps_start", "1.5", "eps start must be in (0.0, 1.0], not 1.5"),
    ("eps_step", "0", "eps step must be in (0.0, 1.0], not 0.0"),
    ("advs_per_sample", "0", "counterexamples per sample must be between"),
    ("verify_timeout", "0", "verify timeout must be in (0.0, 86400.0], not 0.0"),
    ("query_size", "400", "query size 400 is larger than the pool size 300"),
    ("rounds", "", "rounds (target) is empty: it takes a whole number"),
    ("rounds", "9999", "rounds at this query size"),  # more than the dataset has samples for: it failed late
    ("advs_per_sample", "2.5", "counterexamples per sample must be a whole number, not '2.5'"),
])
async def test_the_budget_form_refuses_bad_values_and_saves_nothing(store, demo, field, text, message):
    async with paused_before_round_one(store, demo, rounds=1) as (app, pilot):
        screen = app.screen
        before = (tmp := store.path("s") / "session.json").read_bytes()
        await pilot.press("e")
        form = app.screen
        form.query_one(f"#field-{field}", Input).value = text
        await pilot.press("ctrl+s")
        assert app.screen is form
        assert message in str(form.query_one("#form-error").render())
        await pilot.press("escape")
        assert app.screen is screen and tmp.read_bytes() == before


async def test_a_fraction_typed_into_a_whole_number_field_is_refused_as_typed(store, demo):
    """The field's mask dropped the '.', so '2.5' became 25 counterexamples per sample, saved without a word."""
    async with paused_before_round_one(store, demo, rounds=1) as (app, pilot):
        await pilot.press("e")
        form = app.screen
        field = form.query_one("#field-advs_per_sample", Input)
        field.focus()
        field.value = ""
        await pilot.press("2", ".", "5", "x")
        assert field.value == "2.5"  # letters stay out
        await pilot.press("ctrl+s")
        assert app.screen is form
        assert "must be a whole number, not '2.5'" in str(form.query_one("#form-error").render())


async def test_the_layout_follows_the_terminal_size(store, demo):
    """From 140x40 every panel shares the screen; below, one at a time, the chosen one kept across resizes."""
    finished_session(store, demo, "a")
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "finished")

        def shown() -> list[str]:
            return [panel.id for panel in screen.query(".panel") if panel.display]

        assert shown() == ["panel-curve", "panel-table", "panel-samples", "panel-log"]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert shown() == ["panel-curve"]
        await pilot.press("3")
        assert shown() == ["panel-table"] and screen.focused is screen.query_one(VerificationTable)
        await pilot.resize_terminal(160, 45)
        await pilot.pause()
        assert len(shown()) == 4
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert shown() == ["panel-table"]


async def test_the_curve_is_drawn_again_only_when_its_data_changes(store, demo):
    finished_session(store, demo, "a")
    app = make_app(store, session=store.open("a"), loader=demo_loader(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        curve = app.screen.query_one(LearningCurve)
        drawn = curve.render()
        assert curve.render() is drawn  # a panel switch or a refresh reuses the drawing
        curve.set_curve([*curve.accuracies, 0.9])
        again = curve.render()
        assert again is not drawn and again.plain != drawn.plain
        assert "AUBC" in again.plain and f"{aubc(curve.accuracies):.4f}" in again.plain
