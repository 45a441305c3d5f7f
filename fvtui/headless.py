"""The headless face: runs a session in the foreground and prints one line per finished round."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from .data import Dataset
from .engine import Engine
from .errors import Cancelled
from .events import (Event, Log, PhaseProgress, PhaseStarted, RoundFinished, RoundStarted, SampleSearching,
                     SampleVerified, SamplesQueried)
from .metrics import aubc
from .oracles import LabelsPending
from .records import RoundRecord
from .store import Session

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def format_round(record: RoundRecord, rounds_target: int, accuracies: list[float]) -> str:
    phases = " ".join(f"{k} {v:.1f}" for k, v in record.seconds.items())
    line = (f"round {record.round:3d}/{rounds_target}  labeled {record.labeled:6d}  synthetic {record.synthetic:6d}  "
            f"acc {record.test_accuracy:.4f}  aubc {aubc(accuracies):.4f}  {sum(record.seconds.values()):7.1f}s  "
            f"({phases})")
    q = record.queries
    if q.sat or q.unsat or q.timeout or q.error:
        line += f"  solver sat {q.sat} unsat {q.unsat} timeout {q.timeout} error {q.error} spurious {q.spurious}"
    return line


class LongestSearch(ProgressColumn):
    """While a round verifies, the search that has run longest: where a slow round's time goes."""

    def __init__(self, searching: dict[int, SampleSearching], queried: dict[int, int]) -> None:
        super().__init__()
        self.searching, self.queried = searching, queried  # the printer's, kept up to date by its events

    def render(self, task: Task) -> Text:
        running = list(self.searching.items())  # one step under the GIL: the engine's thread changes it
        if not running:
            return Text("")
        position, event = min(running, key=lambda item: item[1].started)
        sample = self.queried.get(position)
        text = f"longest search: sample {'#' + str(sample) if sample is not None else position + 1}"
        if event.eps is not None:
            text += f" at eps {event.eps:.3f}, {event.found} found"
        return Text(f"{text}, {time.monotonic() - event.started:.0f} s", "dim")


class _Printer:
    def __init__(self, session: Session, console: Console) -> None:
        self.session = session
        self.console = console
        self.progress: Progress | None = None
        self.task = None
        self.searching: dict[int, SampleSearching] = {}  # by position: the last word of each running search
        self.queried: dict[int, int] = {}  # position -> dataset index, this round

    def __call__(self, event: Event) -> None:
        if isinstance(event, RoundStarted) and self.console.is_terminal:
            self.stop()
            self.searching.clear()
            self.queried.clear()
            self.progress = Progress(TextColumn("round {task.fields[round]} {task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     LongestSearch(self.searching, self.queried), console=self.console,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("select", total=None, round=event.round)
        elif isinstance(event, SamplesQueried):
            self.queried.update((position, q.index) for position, q in enumerate(event.queried))
        elif isinstance(event, SampleSearching):
            self.searching[event.position] = event
        elif isinstance(event, SampleVerified):
            self.searching.pop(event.position, None)
        elif isinstance(event, PhaseStarted) and self.progress is not None:
            self.progress.update(self.task, description=event.phase, total=None, completed=0)
        elif isinstance(event, PhaseProgress) and self.progress is not None:
            label = "verifying" if event.phase == "augment" else event.phase
            self.progress.update(self.task, description=label, total=event.total, completed=event.done)
        elif isinstance(event, RoundFinished):
            self.stop()
            self.console.print(format_round(event.record, self.session.config.rounds, self.session.accuracies),
                               highlight=False, soft_wrap=True)
        elif isinstance(event, Log):
            style = {"warning": "yellow", "error": "red"}.get(event.level, "dim")
            self.console.print(f"[{style}]{event.message}[/]", soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def run_headless(session: Session, dataset: Dataset, workers: int | None = None,
                 solver_factory: Callable[[int | None], object] | None = None) -> int:
    """Run to the session's target, its solver from `solver_factory` (by default a local SolverPool). A first
    Ctrl-C, SIGTERM or hang-up stops after cleanup (the round in progress is discarded, finished rounds are
    kept); a second one stops at once. A batch waiting for a person's labels stops the run with exit code 2
    and says how to give them."""
    console = Console(file=sys.stdout, highlight=False)
    cancel = threading.Event()
    printer = _Printer(session, console)

    def on_signal(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    started = time.perf_counter()
    try:
        console.print(f"session {session.name}: {session.config.dataset}, {session.method}, seed "
                      f"{session.config.seed}, {len(session.rounds)}/{session.config.rounds} rounds done "
                      f"(saved in {session.path})", highlight=False, soft_wrap=True)
        with Engine(session, dataset, workers=workers, on_event=printer, cancel=cancel,
                    solver_factory=solver_factory) as engine:
            engine.run(should_pause=cancel.is_set)
    except Cancelled:
        pass
    except LabelsPending as waiting:  # a person's turn: not an error, but the run cannot go on
        printer.stop()
        console.print(f"session {session.name} stops for labels: {waiting}", highlight=False, soft_wrap=True)
        return waiting.exit_code
    finally:
        printer.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        session.close()
    done, target = len(session.rounds), session.config.rounds
    if done < target:
        console.print(f"stopped after round {done}/{target}; continue with: fvtui resume {session.name} --headless",
                      highlight=False, soft_wrap=True)
        return 130 if cancel.is_set() else 1
    console.print(f"finished {done} rounds in {time.perf_counter() - started:.1f}s; "
                  f"AUBC {session.aubc:.4f}", highlight=False)
    return 0
