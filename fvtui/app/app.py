"""The Textual app, and `make_app`, the one factory both `run_app` and the tests use.

The browser is always the bottom screen; `fvtui new` and `fvtui resume` push a session screen on
it. Quitting asks first while a round runs, then waits for every worker to end (the engine stops
at its next phase boundary and kills its solver processes) before the terminal is handed back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Callable, Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from ..config import SessionConfig
from ..store import Session, SessionLocked, SessionStore
from .images import ReplyFilter, late_replies_expected
from .runner import Loader, Runner, load_dataset
from .screens.browser import BrowserScreen
from .screens.confirm import ConfirmScreen
from .screens.session import SessionScreen
from .screens.too_small import MIN_HEIGHT, MIN_WIDTH, TooSmallScreen

WORKER_GRACE = 20.0  # seconds a session worker gets to reach a phase boundary when the app ends


def new_solver_pool():
    from ..verify import SolverPool

    return SolverPool(1)


class FvtuiApp(App):
    CSS_PATH = "fvtui.tcss"
    TITLE = "fvtui"
    BINDINGS = [Binding("q", "quit", "Quit")]  # ctrl+q too, from Textual

    def __init__(self, store: SessionStore, *, data_dir: str | None = None, workers: int | None = None,
                 loader: Loader = load_dataset, pool_factory: Callable[[], object] = new_solver_pool,
                 solver_factory: Callable[[int | None], object] | None = None, cluster=None) -> None:
        super().__init__()
        self.cluster = cluster  # a fvtui.cluster Cluster that runs the solver work, shown on the status line
        self.store = store
        self.data_dir, self.solver_workers, self.loader = data_dir, workers, loader
        self.pool_factory = pool_factory  # the inspector's solver pool
        self.solver_factory = solver_factory  # the rounds' (None: the engine's own SolverPool)
        self.start: Runner | None = None  # the session to open on top of the browser, if any
        self.start_screen: Screen | None = None  # a screen to show alone, instead of the browser
        self._pool = None
        self._pool_lock = threading.Lock()
        self._quitting = False
        self.runners: list[Runner] = []  # every session worker started, so that exit can wait for them
        self.exit_code = 0
        # The terminal did not answer the graphics queries in time: its replies may still come, as keys.
        self._replies = ReplyFilter(self._replay) if late_replies_expected() else None

    async def on_event(self, event: events.Event) -> None:
        replies = self._replies
        if (replies is not None and isinstance(event, events.Key) and not event.is_forwarded
                and not getattr(event, "fvtui_replayed", False)):
            if replies.feed(event):
                self.set_timer(replies.hold + 0.05, replies.expire)
                return
            if not replies.armed:
                self._replies = None
        await super().on_event(event)

    def _replay(self, keys: list[events.Key]) -> None:
        """Keys the reply filter held that were not a reply: handled now, in their order."""
        for key in keys:
            again = events.Key(key.key, key.character)
            again.fvtui_replayed = True
            self.post_message(again)

    # -- screens -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.hang_up)
        loop.add_signal_handler(signal.SIGTERM, self._shut_down)
        if self.start_screen is not None:
            self.push_screen(self.start_screen)
        else:
            self.push_screen(BrowserScreen())
        if self.start is not None:
            self._push_session(self.start)
        self._fit(self.size)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size)  # runs before Textual's own handler has updated self.size

    def _fit(self, size) -> None:
        width, height = size
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        if small and not isinstance(self.screen, TooSmallScreen):
            self.push_screen(TooSmallScreen())
        elif not small and isinstance(self.screen, TooSmallScreen):
            self.pop_screen()

    def make_runner(self, **kwargs) -> Runner:
        """A worker for a session screen (its target is set when the screen is made)."""
        return Runner(None, self.store, data_dir=self.data_dir, workers=self.solver_workers, loader=self.loader,
                      solver_factory=self.solver_factory, **kwargs)

    def _push_session(self, runner: Runner) -> None:
        runner.target = SessionScreen(runner)
        self.runners.append(runner)
        self.push_screen(runner.target)

    def start_session(self, name: str, config: SessionConfig) -> None:
        self._push_session(self.make_runner(new_name=name, new_config=config))

    def open_session(self, name: str) -> None:
        try:
            session = self.store.open(name)
        except SessionLocked as exc:
            def answer(yes: bool | None) -> None:
                if yes:
                    self._open_read_only(name)

            self.push_screen(ConfirmScreen(f"{exc}\n\nOpen it read-only?", yes="Read-only"), answer)
            return
        except Exception as exc:
            self.report(str(exc))
            return
        self._push_session(self.make_runner(session=session))

    def _open_read_only(self, name: str) -> None:
        try:
            session = self.store.open(name, writable=False)
        except Exception as exc:
            self.report(str(exc))
            return
        self._push_session(self.make_runner(session=session))

    def show_browser(self) -> None:
        while not isinstance(self.screen, BrowserScreen) and len(self.screen_stack) > 1:
            self.pop_screen()

    def session_screens(self) -> list[SessionScreen]:
        return [s for s in self.screen_stack if isinstance(s, SessionScreen)]

    # -- closing -------------------------------------------------------------------------------
    def close_session(self, screen: SessionScreen, then: Callable[[], None]) -> None:
        """Leave a session, asking first while a round runs (it would be discarded)."""
        def leave() -> None:
            screen.close_runner(then)

        if not screen.runner.busy:
            leave()
            return
        self.push_screen(ConfirmScreen(_discard_question(screen), yes="Leave"),
                         lambda yes: leave() if yes else None)

    async def action_quit(self) -> None:
        if self._quitting:  # asked twice: do not wait for the round to notice
            self.exit(return_code=self.exit_code)
            return
        busy = [s for s in self.session_screens() if s.runner.busy]
        if not busy:
            self._shut_down()
            return
        self.push_screen(ConfirmScreen(_discard_question(busy[-1], quitting=True), yes="Quit"),
                         lambda yes: self._shut_down() if yes else None)

    def hang_up(self) -> None:
        """The terminal went away: stop the workers and solver processes, then leave at once.

        Nothing can be drawn any more, and Textual's own shutdown can block writing to the dead
        terminal, so this waits for the runners here and exits the process directly.
        """
        runners = [s.runner for s in self.session_screens()]
        for runner in runners:
            runner.quit()
        self.close_pool()
        deadline = time.monotonic() + WORKER_GRACE
        for runner in runners:
            runner.ended.wait(max(0.0, deadline - time.monotonic()))
        os._exit(128 + signal.SIGHUP)

    def _shut_down(self) -> None:
        self._quitting = True
        screens = self.session_screens()
        self.close_pool()
        pending = {id(s) for s in screens}

        def closed(screen: SessionScreen) -> None:
            pending.discard(id(screen))
            if not pending:
                self.exit(return_code=self.exit_code)

        if not screens:
            self.exit(return_code=self.exit_code)
        for screen in screens:
            screen.close_runner(lambda screen=screen: closed(screen))

    async def on_unmount(self) -> None:
        """However the app ends, its workers end first: the engine closed, the session lock released."""
        self.close_pool()
        for runner in self.runners:
            runner.quit()
            await asyncio.to_thread(runner.ended.wait, WORKER_GRACE)

    # -- services for screens ------------------------------------------------------------------
    def solver_pool(self):
        """The inspector's own solver pool, started on first use (call from a worker thread)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = self.pool_factory()
            return self._pool

    def close_pool(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def report(self, message: str, level: str = "error") -> None:
        """A problem the person should see: a notification and a line in the session's log."""
        self.notify(message, severity="error" if level == "error" else "warning", timeout=8)
        screens = self.session_screens()
        if screens:
            screens[-1].log_panel.add(message, level)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.report(f"{event.worker.name or 'background task'} failed: {type(error).__name__}: {error}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key of the screen in the command palette, beside Textual's own commands."""
        yield from super().get_system_commands(screen)
        seen = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            yield SystemCommand(binding.description, f"key: {binding.key_display or key}",
                                lambda action=binding.action, node=active.node: self.run_action(action, node))


def _discard_question(screen: SessionScreen, quitting: bool = False) -> str:
    session = screen.session
    done = len(session.rounds) if session is not None else 0
    verb = "Quit" if quitting else "Leave the session"
    oracle = screen.runner.oracle
    labels = (f" Every label you gave ({len(oracle.known())}) is saved." if oracle is not None and oracle.person
              else "")
    return f"{verb} while round {done + 1} runs? {kept_of_round(session)} (fvtui resume {screen.runner.name} " \
           f"continues).{labels}"


def kept_of_round(session: Session | None) -> str:
    """What stopping keeps: the round in progress's samples verified so far (the round journal, which grows
    while the question is open, so the count is 'now'), and the finished rounds."""
    done = len(session.rounds) if session is not None else 0
    saved = session.journal_progress() if session is not None else 0
    now = (f"Round {done + 1} stops there; its samples verified so far ({saved} now) are kept and resuming reuses "
           "them" if saved else f"Round {done + 1} stops there and starts again on resume")
    finished = {0: "no round has finished yet", 1: "the finished round is kept"}.get(
        done, f"the {done} finished rounds are kept")
    return f"{now}; {finished}"


def make_app(store: SessionStore, *, new_config: SessionConfig | None = None, new_name: str | None = None,
             session: Session | None = None, data_dir: str | None = None, workers: int | None = None,
             loader: Loader = load_dataset, pool_factory: Callable[[], object] = new_solver_pool,
             solver_factory: Callable[[int | None], object] | None = None, screen: Screen | None = None,
             cluster=None) -> FvtuiApp:
    """The browser alone, a session screen on a new (`new_name` + `new_config`) or opened `session`, or
    `screen` alone; with a `cluster`, the rounds' and the inspector's solver work runs on it."""
    if cluster is not None:
        solver_factory, pool_factory = cluster.solver, cluster.solver
    app = FvtuiApp(store, data_dir=data_dir, workers=workers, loader=loader, pool_factory=pool_factory,
                   solver_factory=solver_factory, cluster=cluster)
    app.start_screen = screen
    if session is not None or new_config is not None:
        app.start = app.make_runner(session=session, new_name=new_name, new_config=new_config)
    return app
