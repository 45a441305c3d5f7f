"""Run a benchmark's sessions: each one a `fvtui new|resume --headless` child process of its own,
`jobs` at a time, finished ones skipped, so an interrupted benchmark resumes where it stopped.

Children get their own process group (a Ctrl-C reaches only this parent, which asks each child
once, with SIGTERM, to stop after saving its finished rounds; a second Ctrl-C kills them) and, on
Linux, are told to stop when this parent dies (a SIGKILLed benchmark leaves no orphans running).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..child_python import CLI, python_running
from ..errors import UserError
from ..schema import SETTINGS
from ..store import SessionLocked, SessionStore
from .digest import load_all
from .methods import Method
from .spec import BenchSpec

POLL = 0.2
LOCK_WAIT = 60.0  # seconds to wait for a session a stopping child still holds
LOG_DIR = "logs"


@dataclass
class Job:
    method: Method
    seed: int
    name: str
    done: int  # rounds already saved
    exists: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.method.label}, seed {self.seed})"


@dataclass
class RunSummary:
    total: int = 0
    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan(spec: BenchSpec) -> list[Job]:
    """Every method x seed, seed-major (all methods of seed 0 first: an interrupted benchmark has
    whole comparisons early), longest first within a seed (`longest_first`). Every session already
    in the group is checked against the benchmark's settings first, so that nothing runs when they
    would mix. A finished session whose folder is gone but whose digest is in the output folder
    counts as finished."""
    store = spec.store
    spec.check_saved()
    planned = {m.session_name(s): (m, s) for s in spec.seeds or [] for m in spec.methods or []}
    done: dict[str, int] = {}
    took: dict[str, float] = {}  # seconds of finished sessions, by name
    for name in store.names():
        with store.open(name, writable=False) as session:
            spec.check_session(session, *planned.get(name, (None, None)))
            done[name] = len(session.rounds)
            if len(session.rounds) >= spec.rounds:
                took[name] = _seconds(session.rounds[:spec.rounds])
    jobs = [Job(method, seed, name, done.get(name, 0), name in done) for name, (method, seed) in planned.items()]
    digests = load_all(spec.digests)
    for name, digest in digests.items():
        if name not in done and len(digest.rounds) >= spec.rounds:
            took[name] = _seconds(digest.rounds[:spec.rounds])
    for job in jobs:
        digest = digests.get(job.name)
        if not job.exists and digest is not None and len(digest.rounds) >= spec.rounds:
            spec.check_session(digest, job.method, job.seed)
            job.done = len(digest.rounds)
    return longest_first(jobs, _mean_by_method(spec, took))


def _seconds(rounds) -> float:
    return sum(sum(r.seconds.values()) for r in rounds)


def _mean_by_method(spec: BenchSpec, took: dict[str, float]) -> dict[str, float]:
    """Mean seconds of each method's finished sessions in this benchmark, by method key."""
    by_method: dict[str, list[float]] = {}
    for method in spec.methods or []:
        prefix = f"{method.slug}-s"
        for name, seconds in took.items():
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                by_method.setdefault(method.key, []).append(seconds)
    return {key: sum(v) / len(v) for key, v in by_method.items()}


def longest_first(jobs: list[Job], seconds: dict[str, float]) -> list[Job]:
    """Seed-major; within a seed, methods never measured first (they may be long), then the rest by
    the mean time their finished sessions took, longest first. A run then ends on its short sessions
    instead of leaving one long session alone on the machine with the other slots idle (the paper's
    seed 0 at --jobs 2: 1,321 s against the 1,122 s of its sessions' time spread over two slots)."""
    order = list(dict.fromkeys(job.seed for job in jobs))
    return sorted(jobs, key=lambda job: (order.index(job.seed), job.method.key in seconds,
                                         -seconds.get(job.method.key, 0.0)))


def child_command(spec: BenchSpec, job: Job, workers: int | None, data_dir: str | None) -> list[str]:
    """The words after `python -m fvtui` that run the job's session (without --workers when None)."""
    base = ["--sessions-dir", str(spec.root.resolve())]
    tail = ["--headless", "--rounds", str(spec.rounds)] + (["--workers", str(workers)] if workers else [])
    if data_dir:
        tail += ["--data-dir", str(Path(data_dir).resolve())]
    if job.exists:
        return [*base, "resume", job.name, *tail]
    cfg = spec.config_for(job.method, job.seed)
    flags = [word for s in SETTINGS if s.flag and s.name != "rounds"
             for word in s.as_args(getattr(cfg.settings if s.scope == "round" else cfg, s.name))]
    return [*base, "new", "--dataset", cfg.dataset, "--name", job.name, *flags, *tail]


class _Running:
    def __init__(self, job: Job, process, log: Path, number: int) -> None:
        self.job, self.process, self.log, self.number = job, process, log, number
        self.started = time.monotonic()


def run(spec: BenchSpec, jobs: list[Job], *, parallel: int, workers: int | None, data_dir: str | None,
        say: Callable[[str], None], cluster=None) -> RunSummary:
    """Run the jobs `parallel` at a time: as child processes here, or as Dask tasks on `cluster` (a
    fvtui.cluster.connect.Cluster; each worker then gives a session its share of its cores)."""
    cpus = cpu_count()
    per_session = workers if workers is not None or cluster is not None else max(1, cpus // parallel)
    summary = RunSummary(total=len(jobs))
    todo = []
    for job in jobs:
        if job.done >= spec.rounds:
            summary.skipped.append(job.name)
        else:
            todo.append(job)
    logs = spec.root / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    say(f"benchmark {spec.name}: {spec.dataset}, {len(spec.methods or [])} methods x {len(spec.seeds or [])} seeds = "
        f"{len(jobs)} sessions of {spec.rounds} rounds; {len(summary.skipped)} finished already, {len(todo)} to run, "
        f"{min(parallel, max(1, len(todo)))} at a time " + (
            f"on the cluster {cluster.describe()}" if cluster is not None else
            f"with {per_session} solver worker(s) each ({cpus} CPUs)") + f"; sessions in {spec.root}, logs in {logs}")
    if parallel > cpus and cluster is None:
        say(f"note: --jobs {parallel} is more than the {cpus} CPUs; sessions will share them and each run slower")

    stop = {"count": 0}
    running: list[_Running] = []

    def on_signal(signum: int, frame: object) -> None:  # no printing here: the main loop may be mid-print
        stop["count"] += 1
        for r in running:
            _signal(r.process, signal.SIGTERM if stop["count"] == 1 else signal.SIGKILL)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    started = time.monotonic()
    pending = list(todo)
    number = len(summary.skipped)
    user_error: str | None = None
    told = 0
    try:
        while pending or running:
            while pending and len(running) < parallel and not stop["count"] and user_error is None:
                job = pending.pop(0)
                number += 1
                launched = _launch(spec, job, per_session, data_dir, logs, number, say, cluster)
                if launched is None:
                    summary.failed.append(job.name)
                    continue
                running.append(launched)
                if stop["count"]:  # the signal came while it was starting
                    _signal(launched.process, signal.SIGTERM)
            time.sleep(POLL)
            if stop["count"] != told:
                told = stop["count"]
                say(f"stopping: asked {len(running)} running session(s) to save their finished rounds and stop "
                    "(Ctrl-C again to kill them)" if told == 1 else f"killing {len(running)} running session(s)")
            for r in list(running):
                code = r.process.poll()
                if code is None:
                    continue
                running.remove(r)
                problem = _finished(spec, r, code, bool(stop["count"]), summary, say)
                if problem:
                    user_error = problem
            if (stop["count"] or user_error is not None) and not running:
                break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for r in running:  # only after an exception here: never leave children behind
            _signal(r.process, signal.SIGKILL)
            r.process.wait()
    summary.seconds = time.monotonic() - started
    summary.interrupted = bool(stop["count"])
    if user_error is not None:
        raise UserError(user_error)
    return summary


def _launch(spec: BenchSpec, job: Job, workers: int | None, data_dir: str | None, logs: Path, number: int,
            say: Callable[[str], None], cluster=None) -> _Running | None:
    if job.exists and not _wait_unlocked(spec.store, job.name):
        say(f"[{number}] {job.label}: skipped, another process is still running it")
        return None
    log = logs / f"{job.name}.log"
    if cluster is not None:  # a Dask task that runs the same child on a worker
        process = cluster.start_session(spec.root.resolve(), job.name,
                                        child_command(spec, replace(job, exists=False), workers, data_dir),
                                        child_command(spec, replace(job, exists=True), workers, data_dir), log)
    else:
        process = start_child([*python_running(CLI), *child_command(spec, job, workers, data_dir)], log)
    what = f"resuming after round {job.done}" if job.exists else "new"
    say(f"[{number}] {job.label}: started ({what})")
    return _Running(job, process, log, number)


def start_child(command: list[str], log: Path) -> subprocess.Popen:
    """A session child in a process group of its own, told to stop when its parent dies, output to `log`."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(command)}\n")
        fh.flush()
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_die_with_parent())


def _finished(spec: BenchSpec, r: _Running, code: int, stopping: bool, summary: RunSummary,
              say: Callable[[str], None]) -> str | None:
    """Report a child that exited; return the error of a new session that refused to start (exit 2: a
    user error such as a missing dataset, which every other session would repeat)."""
    seconds = time.monotonic() - r.started
    rounds, aubc = 0, None
    try:
        with spec.store.open(r.job.name, writable=False) as session:
            rounds, aubc = len(session.rounds), session.aubc
    except UserError:
        pass
    if code == 0 and rounds >= spec.rounds:
        summary.finished.append(r.job.name)
        say(f"[{r.number}] {r.job.label}: finished {rounds} rounds in {seconds:.1f}s, AUBC {aubc:.4f}")
        return None
    if stopping:
        summary.stopped.append(r.job.name)
        say(f"[{r.number}] {r.job.label}: stopped after {seconds:.1f}s with {rounds}/{spec.rounds} rounds saved")
        return None
    tail = _tail(r.log)
    summary.failed.append(r.job.name)
    errors = [line for line in tail if line.startswith("fvtui: error:")]
    refused = code == 2 and bool(errors) and not r.job.exists  # a new session refused to start: all would
    how = f"exit {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
    then = "stopping the benchmark, the other sessions would fail the same way" if refused else "the others go on"
    say(f"[{r.number}] {r.job.label}: FAILED ({how}) after {seconds:.1f}s with {rounds}/{spec.rounds} rounds "
        f"saved; {then}. End of {r.log}:\n    " + "\n    ".join(line for line in tail if line.strip()))
    return f"session {r.job.name}: {errors[-1][len('fvtui: error: '):]}" if refused else None


def _tail(path: Path, lines: int = 6) -> list[str]:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return []
    return text[-lines:]


def _wait_unlocked(store: SessionStore, name: str) -> bool:
    """A child stopped by the death of an earlier benchmark may still be saving; wait for it."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            store.open(name, writable=True).close()
            return True
        except SessionLocked:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        except UserError:
            return True  # unreadable: the child says why, in its log


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        process.send_signal(signum)
    except (ProcessLookupError, OSError):
        pass


def _die_with_parent() -> Callable[[], None] | None:
    """preexec_fn: SIGTERM the child when the benchmark process dies (Linux prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal
