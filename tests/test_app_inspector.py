"""The counterexample inspector: pictures and numbers of one sample, solver calls that never freeze it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from solver_processes import solver_children
from test_app_support import demo_loader, settled, wait_for, wait_state
from textual.widgets import Input

from fvtui.app.app import make_app
from fvtui.app.screens.inspector import InspectorScreen
from fvtui.errors import Cancelled
from fvtui.verify import RadiusResult, VerifyResult


async def open_inspector(pilot, app, row: int = 1) -> InspectorScreen:
    await wait_state(pilot, app.screen, "finished")
    await pilot.press("3", *["down"] * row, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
    return app.screen


async def test_round_files_are_read_off_the_ui_thread(store, demo, monkeypatch):
    """A round's samples (the Samples panel, the inspector) and its weights load in worker threads."""
    from fvtui.store import Session

    on_ui_thread = []
    for name in ("synthetic", "model_state"):
        def spy(self, *args, _real=getattr(Session, name), **kwargs):
            on_ui_thread.append(threading.current_thread() is threading.main_thread())
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Session, name, spy)
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.press("2")
        screen = await open_inspector(pilot, app)
        assert screen.candidates and screen.net is not None
    assert len(on_ui_thread) >= 3 and not any(on_ui_thread)


def result_text(screen) -> str:
    return str(screen.query_one("#verify-result").render())


async def test_inspector_shows_the_sample_and_verifies_with_the_solver(store, demo):
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = await open_inspector(pilot, app, row=1)
        with store.open("s", writable=False) as session:
            record, synthetic = session.rounds[1], session.synthetic(2)
        q = record.queried[1]
        assert inspector.position == 1 and np.array_equal(inspector.x, demo.train_x[q.index].numpy())
        assert f"round 2 · sample 2/{len(record.queried)} (#{q.index})" in str(
            inspector.query_one("#inspect-title").render())
        assert len(inspector.candidates) == int((synthetic.source == q.index).sum())
        detail = str(inspector.query_one("#inspect-detail").render())
        if inspector.candidates:
            c = inspector.candidates[0]
            assert f"L∞ distance {np.abs(c.x - inspector.x).max():.4f}" in detail
            assert "→" in detail
        assert "model after round 1" in str(inspector.query_one("#inspect-title").render())

        await pilot.press("e")
        assert isinstance(app.focused, Input)
        app.focused.value = "0.001"
        await pilot.press("enter")  # verify at that eps, in the inspector's own solver pool
        await wait_for(pilot, lambda: not inspector.busy, timeout=60, what="the solver")
        assert "at eps 0.001" in result_text(inspector)
        assert result_text(inspector).startswith(("robust", "counterexample", "timeout"))
        assert solver_children()
        await pilot.press("escape", "escape")  # leave the field, then the inspector
        assert not isinstance(app.screen, InspectorScreen)
    assert solver_children() == []


class GatedPool:
    """A solver pool whose answer waits for the test; cancellation works like the real one's."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.called = threading.Event()

    def verify(self, net, x, eps, timeout=30.0, cancel=None):
        self.called.set()
        while not self.release.wait(0.02):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
        return VerifyResult("counterexample", eps, 0.5, x=np.clip(x + eps, 0, 1).astype(np.float32), predicted=3)

    def close(self) -> None:
        self.release.set()


async def test_solver_calls_do_not_freeze_the_screen(store, demo):
    pool = GatedPool()
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo), pool_factory=lambda: pool)
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = await open_inspector(pilot, app)
        before = len(inspector.candidates)
        await pilot.press("v")
        await wait_for(pilot, pool.called.is_set, what="the solver call")
        assert "verifying at eps" in result_text(inspector)
        await pilot.press("e")  # keys keep answering while the solver call is held open
        assert isinstance(app.focused, Input)
        await pilot.press("escape", "v")  # leave the field; a second call waits for the first
        assert isinstance(app.screen, InspectorScreen)
        assert "still busy" in result_text(inspector)
        pool.release.set()
        await wait_for(pilot, lambda: not inspector.busy, what="the answer")
        assert "counterexample at eps" in result_text(inspector)
        assert len(inspector.candidates) == before + 1 and inspector.current == before
        assert "verify" in str(inspector.query_one("#inspect-detail").render())


async def test_closing_the_inspector_cancels_its_solver_call(store, demo):
    pool = GatedPool()
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo), pool_factory=lambda: pool)
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = await open_inspector(pilot, app)
        await pilot.press("v")
        await wait_for(pilot, pool.called.is_set, what="the solver call")
        await pilot.press("escape")
        assert inspector.cancel.is_set()
        await pilot.pause(0.2)
        assert not [w for w in app.workers if w.group == "inspector" and w.is_running]


class RadiusPool:
    def __init__(self, lower: float, upper: float) -> None:
        self.bracket = lower, upper

    def certified_radius(self, net, x, timeout=30.0, cancel=None):
        return RadiusResult(*self.bracket, "exact", 0.1, 7)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("lower, upper, eps", [(0.0625, 0.063, "0.0625"), (0.0, 0.001, "0.001")])
async def test_the_minimal_eps_leaves_an_eps_that_v_verifies(store, demo, lower, upper, eps):
    """A radius of [0, 0.001] left 0 in the field, which v then refused."""
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo), pool_factory=lambda: RadiusPool(lower, upper))
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = await open_inspector(pilot, app)
        await pilot.press("m")
        await wait_for(pilot, lambda: "certified radius in" in result_text(inspector), what="the radius")
        assert inspector.query_one("#eps", Input).value == eps


async def test_n_and_p_browse_the_rounds_samples_keeping_what_was_found(store, demo):
    pool = GatedPool()
    pool.release.set()
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo), pool_factory=lambda: pool)
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = await open_inspector(pilot, app, row=0)
        with store.open("s", writable=False) as session:
            queried = session.rounds[1].queried
        await pilot.press("v")
        await wait_for(pilot, lambda: not inspector.busy, what="the answer")
        found = len(inspector.candidates)
        await pilot.press("n", "n")
        assert inspector.position == 2 and np.array_equal(inspector.x, demo.train_x[queried[2].index].numpy())
        assert f"sample 3/{len(queried)} (#{queried[2].index})" in str(inspector.query_one("#inspect-title").render())
        await pilot.press("p", "p", "p")  # wraps around
        assert inspector.position == len(queried) - 1
        await pilot.press("n")
        assert inspector.position == 0 and len(inspector.candidates) == found  # the verified one is still there


async def test_a_preview_opens_the_inspector_too(store, demo):
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.press("2")
        await settled(pilot, app.screen)  # the cards are on show (their round loads off the UI thread)
        await pilot.press("right", "enter")  # the first card has the keyboard; the arrows move it
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        assert app.screen.position == 1


def test_a_samples_slow_query_shows_what_held_it(demo):
    """The search line names the phases of a sample's longest query once it took a second or more."""
    from types import SimpleNamespace

    from fvtui.app.screens.inspector import round_subjects
    from fvtui.config import RoundSettings
    from fvtui.records import QueriedSample, SampleVerification, SyntheticBatch

    def line(seconds, phases):
        v = SampleVerification(source=3, status="counterexample", eps=0.16, found=2, spurious=0, queries=2,
                               seconds=sum(seconds), query_seconds=seconds, query_phases=phases)
        record = SimpleNamespace(round=5, settings=RoundSettings(augment="fv"), verification=[v],
                                 queried=[QueriedSample(3, int(demo.train_y[3]), 0.5, 1)])
        return round_subjects(demo, record, SyntheticBatch.empty(demo.train_x[0].numel()))[0].note

    slow = line([0.1, 383.8], [{"marabou": 0.1, "cpu": 0.1}, {"offer": 0.13, "build": 0.01, "cpu": 0.2}])
    assert slow.endswith("; query 2 took 383.8 s: offer 0.130 s, build 0.010 s; cpu 0.200 s")
    assert "took" not in line([0.1, 0.9], [{"marabou": 0.1}, {"marabou": 0.9}])
    assert "took" not in line([0.1, 383.8], [])  # saved before fvtui recorded phases


class HalfDone:
    """Stands in for the solver pool: every search but the first ends at once with one point (a 'seed', so
    the model's re-check keeps it); the first runs until cancelled, or ends the same way once `release` is
    set. Later calls find nothing."""

    def __init__(self, workers=None) -> None:
        self.calls, self.points = 0, {}
        self.release = threading.Event()

    def found(self, t):
        from fvtui.verify import Counterexample, QueryRecord, SearchResult

        x = np.clip(t.x + 0.05 * np.sign(0.5 - t.x), 0, 1).astype(np.float32)
        self.points[t.x.tobytes()] = x
        return SearchResult("sat", [Counterexample(x, 0.06, 0, 0.0, "seed")], [QueryRecord(0.06, "sat", 0.2, 0)],
                            0.06, 0.2)

    def run_searches(self, tasks, on_result=None, cancel=None, on_progress=None):
        from fvtui.errors import Cancelled
        from fvtui.verify import SearchResult
        from fvtui.verify.results import SearchProgress

        self.calls += 1
        if self.calls > 1:
            return [SearchResult("exhausted", final_eps=1.0) for _ in tasks]
        on_progress(0, SearchProgress(eps=0.11, found=1, queries=4, started=time.monotonic()))
        results = [None] + [self.found(t) for t in tasks[1:]]
        for i, result in enumerate(results[1:], 1):
            on_result(i, result)
        while not self.release.wait(0.05):
            if cancel.is_set():
                raise Cancelled()
        results[0] = self.found(tasks[0])
        on_result(0, results[0])
        return results

    def close(self) -> None:
        pass


async def test_changing_settings_after_a_stop_asks_before_its_saved_samples_are_verified_again(store, demo):
    """The stop promised 'resuming reuses them'; a settings change made every saved sample solve again, unsaid."""
    from test_app_support import fv_config, log_text, wait_state

    from fvtui.app.screens.confirm import ConfirmScreen

    app = make_app(store, new_config=fv_config(rounds=1), new_name="stopped", loader=demo_loader(demo),
                   solver_factory=HalfDone)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.session is not None and screen.session.journal_progress() == 2,
                       what="two searches saved")
        screen.runner.stop()
        await wait_state(pilot, screen, "stopped")
        meta = (screen.session.path / "session.json").read_bytes()
        for answer in ("n", "y"):
            await pilot.press("e")
            app.screen.query_one("#field-eps_step", Input).value = "0.07"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            assert "Round 1 has 2 samples verified and saved" in app.screen.question
            await pilot.press(answer)
            await wait_for(pilot, lambda: app.screen is screen, what="the session screen")
            if answer == "n":
                assert (screen.session.path / "session.json").read_bytes() == meta and "settings not saved" in log_text(screen)
        assert screen.session.settings.eps_step == 0.07


async def test_a_round_still_verifying_opens_in_the_inspector_with_its_searches_so_far(store, demo):
    """enter on a running round's row: the samples whose search ended show their counterexamples, the one
    still searching says where it is; the network is the one that picked them (the initial model). A search
    that ends while the inspector is open shows its points there."""
    from test_app_support import fv_config

    from fvtui.app.widgets.verification import VerificationTable

    solvers = []

    def solver(workers=None):
        solvers.append(HalfDone(workers))
        return solvers[-1]

    app = make_app(store, new_config=fv_config(rounds=1), new_name="live", loader=demo_loader(demo),
                   solver_factory=solver)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        table = screen.query_one(VerificationTable)

        def statuses():
            return [str(table.get_cell_at((row, 4))) for row in range(table.row_count)]

        await wait_for(pilot, lambda: sorted(statuses()) == ["counterexample", "counterexample", "searching"],
                       what=lambda: f"two searches done, one running: {statuses()}")
        searching, done = statuses().index("searching"), statuses().index("counterexample")
        await pilot.press("3", *["down"] * done, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        inspector = app.screen
        assert inspector.position == done and inspector.judge.name == "model after round 0"
        queried = screen._queried[1]
        for position, subject in enumerate(inspector.subjects):
            assert np.array_equal(subject.x, demo.train_x[queried[position].index].numpy())
            if position == searching:
                assert subject.note == "search running at eps 0.110, 1 found so far (as of opening)"
                assert subject.candidates == []
            else:
                assert subject.note.startswith("search: counterexample at eps 0.060, 1 found")
                (candidate,) = subject.candidates
                assert np.array_equal(candidate.x, solvers[0].points[subject.x.tobytes()])
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="the session screen")
        # open on the sample still searching; its search ends meanwhile: its point appears on the screen
        await pilot.press(*["up"] * done, *["down"] * searching, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        inspector = app.screen
        assert inspector.position == searching and inspector.candidates == []
        from fvtui.app.screens.inspector import Candidate

        asked = Candidate(inspector.x, 0.5, "verify")  # as if `v` had found one here meanwhile; on show
        inspector.candidates.append(asked)
        solvers[0].release.set()
        await wait_for(pilot, lambda: len(inspector.candidates) == 2, 10, what="the ended search's point")
        assert inspector.subject.note.startswith("search: counterexample at eps 0.060, 1 found")
        candidate, later = inspector.candidates
        assert np.array_equal(candidate.x, solvers[0].points[inspector.x.tobytes()]) and later is asked
        assert inspector.current == 1  # what was on show stays on show
        assert str(inspector.query_one("#caption-counterexample").render()).startswith("counterexample · ")
        await wait_state(pilot, screen, "finished")
