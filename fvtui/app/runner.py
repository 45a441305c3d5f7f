"""The background side of a session screen: load the data, open the session, run rounds.

Runs in a Textual thread worker. Torch is first imported here (through the dataset loader and the
engine), never on the UI's start-up path. The UI steers through pause / resume / stop / quit, which
only set flags and events; the engine watches the same cancel event, so a stop or a quit ends the
round in progress at its next phase boundary (and kills solver processes at once).
"""

from __future__ import annotations

import threading
from typing import Callable

from textual.message import Message
from textual.message_pump import MessagePump

from ..config import SessionConfig
from ..errors import Cancelled, UserError
from ..events import Event, PhaseProgress
from ..store import Session, SessionStore

FIRST_FRAME_WAIT = 1.0  # seconds
Loader = Callable[[object, "str | None"], object]  # (SessionConfig, data_dir) -> Dataset


def load_dataset(config, data_dir: str | None):
    from ..data import dataset_for

    return dataset_for(config, data_dir)


class Loaded(Message):
    """The dataset is in memory and the session exists (created now, for a new one)."""

    def __init__(self, session: Session, dataset) -> None:
        super().__init__()
        self.session, self.dataset = session, dataset


class EngineEvent(Message):
    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # Progress is a gauge: a newer reading makes an unprocessed older one worthless.
        return (isinstance(message, EngineEvent) and isinstance(message.event, PhaseProgress)
                and isinstance(self.event, PhaseProgress))


class StateChanged(Message):
    """loading, starting, running, paused, stopped, finished, failed, read-only or closed."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state


class Failed(Message):
    """Something went wrong in the worker; `fatal` when nothing can run (e.g. the data did not load)."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__()
        self.message, self.fatal = message, fatal


class Runner:
    """One session's worker. Exactly one of `session` (opened) or `new_name` + `new_config` is given."""

    def __init__(self, target: MessagePump, store: SessionStore, *, session: Session | None = None,
                 new_name: str | None = None, new_config: SessionConfig | None = None, data_dir: str | None = None,
                 workers: int | None = None, loader: Loader = load_dataset,
                 solver_factory: Callable[[int | None], object] | None = None) -> None:
        self.target = target
        self.solver_factory = solver_factory
        self.store = store
        self.session = session
        self.new_name, self.new_config = new_name, new_config
        self.data_dir, self.workers, self.loader = data_dir, workers, loader
        self.cancel = threading.Event()  # the engine's: set to stop the round in progress
        self.ended = threading.Event()  # set when the thread is done (engine closed, session lock released)
        self._wake = threading.Event()
        self.first_frame = threading.Event()  # set by the screen once it has been drawn
        self.pause_requested = False
        self.quitting = False
        self.state = ""
        self.oracle = None  # the session's oracle once the engine runs: a person answers it from the UI thread

    @property
    def name(self) -> str:
        return self.session.name if self.session is not None else str(self.new_name)

    @property
    def config(self):
        return self.session.config if self.session is not None else self.new_config

    @property
    def dataset_name(self) -> str:
        return self.config.dataset

    @property
    def read_only(self) -> bool:
        return self.session is not None and not self.session.writable

    @property
    def busy(self) -> bool:
        """A round (or the initial training) is in progress: quitting would discard it."""
        return self.state in ("starting", "running")

    # -- steering (UI thread) ------------------------------------------------------------------
    def pause(self) -> None:
        self.pause_requested = True

    def resume(self) -> None:
        self.pause_requested = False
        self._wake.set()

    def stop(self) -> None:
        """Discard the round in progress now and wait, paused."""
        self.pause_requested = True
        if self.busy:
            self.cancel.set()

    def quit(self) -> None:
        self.quitting = True
        self.cancel.set()
        self._wake.set()

    def wake(self) -> None:
        """The session's target changed: a finished runner may have more to do."""
        self._wake.set()

    # -- the worker thread ---------------------------------------------------------------------
    def run(self) -> None:
        # Loading imports torch, which holds the GIL for seconds: let the screen draw first. The wait
        # is bounded because Textual drops after-refresh callbacks posted while the app starts up.
        self.first_frame.wait(FIRST_FRAME_WAIT)
        try:
            self._state("loading")
            dataset = self.loader(self.config, self.data_dir)
            from ..data import check_room
            from ..own_data import check_unchanged
            from ..oracles import oracle_for, resolve_oracle

            resolve_oracle(self.config, dataset)
            if self.session is None:  # created only now, so bad data leaves nothing behind
                check_room(dataset, self.new_config)
                self.session = self.store.create(self.new_name, self.new_config)
            elif self.session.writable:  # the engine checks its data is unchanged
                check_room(dataset, self.session.config, self.session.settings, done=self.session.rounds)
            else:  # viewed only: its samples are still indices into the files it recorded
                check_unchanged(self.session, dataset)
            self._post(Loaded(self.session, dataset))
            if self.read_only:
                self._state("read-only")
                return
            from ..engine import Engine

            self._state("starting")
            self.oracle = oracle_for(self.session, dataset, wait=True)  # a person labels on the labelling screen
            with Engine(self.session, dataset, workers=self.workers, on_event=self._emit, cancel=self.cancel,
                        solver_factory=self.solver_factory, oracle=self.oracle) as engine:
                self._loop(engine)
        except Cancelled:
            pass
        except UserError as exc:
            self._fail(str(exc), fatal=True)
        except Exception as exc:  # bad data, out of memory...: a message, never a traceback
            self._fail(_describe(exc), fatal=True)
        finally:
            if self.session is not None:
                self.session.close()  # releases the write lock; finished rounds are on disk
            self._state("closed")
            self.ended.set()

    def _loop(self, engine) -> None:
        while not self.quitting:
            if engine.finished or self.pause_requested:
                self.cancel.clear()  # a stop that came as the round ended has nothing left to stop
                self._state("finished" if engine.finished else ("stopped" if self.state == "stopped" else "paused"))
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._state("running")
            try:
                engine.run_round()
            except Cancelled:
                if self.quitting:
                    return
                self.cancel.clear()
                self.pause_requested = True
                self._state("stopped")
            except UserError as exc:
                self.pause_requested = True
                self._fail(f"round {engine.rounds_done + 1} failed: {exc}", fatal=False)
            except Exception as exc:  # a solver crash, out of memory...: the session stays usable
                self.pause_requested = True
                self._fail(f"round {engine.rounds_done + 1} failed: {_describe(exc)}", fatal=False)

    def _emit(self, event: Event) -> None:
        self._post(EngineEvent(event))

    def _state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._post(StateChanged(state))

    def _fail(self, message: str, fatal: bool) -> None:
        if fatal:
            self.state = "failed"
        self._post(Failed(message, fatal))
        if fatal:
            self._post(StateChanged("failed"))

    def _post(self, message: Message) -> None:
        try:
            self.target.post_message(message)
        except Exception:  # the screen is gone (the app is closing): nobody to tell
            pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
