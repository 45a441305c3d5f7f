"""A pool of solver processes with deadlines enforced from outside.

Marabou can ignore its own timeout, grow past any memory and ignore SIGTERM (PROTOCOL.md), and
`solve()` holds the GIL, so every query runs in a worker process that the parent SIGKILLs when
a query overruns; a worker that dies costs its task (status 'error'), never the run.

Workers are started with subprocess (fork+exec of a fresh interpreter) rather than
multiprocessing's spawn, which would re-run the parent's __main__ (the fvtui script, torch and
all) in every worker and hand them the parent's terminal, where Marabou's prints would corrupt
a Textual screen. They talk over a socketpair wrapped in multiprocessing's Connection.
"""

from __future__ import annotations

import math
import os
import queue
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence

import numpy as np

from ..child_python import python_running
from ..errors import Cancelled
from .apart import query_deadline
from .cores import Cores
from .network import Network
from .results import Counterexample, QueryRecord, RadiusResult, SearchProgress, SearchResult, VerifyResult

_POLL = 0.1  # seconds between checks of the cancel event
# A wait that returns this many seconds late means the process was stopped, not busy: its
# deadlines move by the stop (the workers ask a query the stop timed out again: worker.Resumes).
_STOPPED = 5.0
# A search whose Marabou slice ignored its timeout (apart.solve_guarded ended the process) runs again from
# the start with that query's slice skipped, so that branch and bound decides it; at most this many times.
DEAF_RETRIES = 3
# Signals fvtui never sends a worker: someone else's (`kill`, a service manager stopping the whole process
# group). The job runs again once on a fresh worker rather than ending as a solver error that a journal would
# keep; if the parent is being stopped too, its own stop cancels the call.
_FROM_OUTSIDE = {-signal.SIGTERM, -signal.SIGHUP, -signal.SIGINT}
_WORKER = "from fvtui.verify.worker import main; main()"


@dataclass
class SearchTask:
    """One sample's fv search (see search.search_counterexamples)."""

    net: Network
    x: np.ndarray
    target: int  # the winner w
    runner_up: int  # r
    k: int = 10
    eps_start: float = 0.06
    eps_step: float = 0.05
    timeout: float = 30.0  # seconds per query
    seeds: Sequence[np.ndarray] = ()
    legacy: bool = False  # fvtui 0.1's protocol (see search.search_counterexamples)
    points: str = "marabou"  # or 'lp' (see search.search_counterexamples)
    slice: str = "auto"  # Marabou's time before the hand-over (search.BAB_AFTER, MILP_AFTER), or 'off': none
    fault: str | None = None  # tests only: 'crash' | 'hang' | 'oom' | 'deaf' | 'cores' (worker.py)


@dataclass
class Job:
    """One unit of solver work and what its worker streamed so far (the Dask backend rebuilds it on its worker)."""

    kind: str  # a worker.RUNNERS key
    net: Network
    args: dict[str, Any]
    fault: str | None = None
    retried: bool = False  # its first worker was found dead before it got the job
    killed_outside: bool = False  # it ran again once after a signal from outside (_FROM_OUTSIDE)
    stopped: bool = False  # the process tree was stopped (Ctrl-Z, SIGSTOP) since it last started
    # What the worker streamed so far: kept when it is killed or dies.
    started: float = 0.0
    running: QueryRecord | None = None
    query_started: float = 0.0
    starts: int = 0
    queries: list[QueryRecord] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    bracket: tuple[float, float, np.ndarray | None] | None = None

    def start_over(self) -> None:
        """Forget what its worker streamed: a worker dead after a stop (its orphan timer, worker.py, ran
        on meanwhile) costs the job its progress, not its result."""
        self.stopped, self.running, self.starts, self.bracket = False, None, 0, None
        self.queries, self.counterexamples = [], []

    def progress(self) -> SearchProgress:
        """A search job's progress, as its worker streamed it."""
        running = self.running.eps if self.running is not None else None
        return SearchProgress(running, len(self.counterexamples), len(self.queries) + (self.running is not None),
                              self.started)

    def failed(self, status: str, message: str) -> SearchResult | VerifyResult | RadiusResult:
        now = time.monotonic()
        if self.kind == "verify":
            return VerifyResult(status, self.args["eps"], now - self.started, message=message)
        if self.kind == "radius":
            lower, upper, point = self.bracket or (0.0, self.args["hi"], None)
            return RadiusResult(lower, upper, status, now - self.started, self.starts, point, message)
        queries = list(self.queries)
        if self.running is not None:
            r = self.running
            queries.append(QueryRecord(r.eps, status, now - self.query_started, r.disjunctions))
        eps = queries[-1].eps if queries else self.args["eps_start"]
        return SearchResult(status, list(self.counterexamples), queries, eps, now - self.started, message)



def wait(conns: list[Connection], timeout: float) -> list[Connection]:
    """The connections with a message (or closed), waiting up to timeout seconds. multiprocessing's own
    wait builds a selector each call, 65 us, three times a message when reading until none is left:
    2 ms of a core the solvers share in every 10-query lp job."""
    poller, by_fd = select.poll(), {}
    for conn in conns:
        by_fd[conn.fileno()] = conn
        poller.register(conn.fileno(), select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]


def search_job(t: SearchTask) -> Job:
    args = dict(x=np.asarray(t.x, dtype=np.float32), target_w=t.target, runner_up_r=t.runner_up, k=t.k,
                eps_start=t.eps_start, eps_step=t.eps_step, timeout=t.timeout,
                seeds=[np.asarray(s, dtype=np.float32) for s in t.seeds], legacy=t.legacy, points=t.points,
                milp_after=math.inf if t.slice == "off" else None, deaf=())
    return Job("search", t.net, args, t.fault)


def verify_job(net: Network, x: np.ndarray, eps: float, timeout: float) -> Job:
    return Job("verify", net, dict(x=np.asarray(x, dtype=np.float32), eps=eps, timeout=timeout))


def radius_job(net: Network, x: np.ndarray, precision: float, timeout: float, hi: float) -> Job:
    return Job("radius", net, dict(x=np.asarray(x, dtype=np.float32), precision=precision, timeout=timeout, hi=hi))


class _Spawner:
    """Forks every worker from one daemon thread that lives as long as the process.

    A worker asks the kernel to kill it when its parent dies (apart.die_with_parent), and Linux
    takes the parent to be the *thread* that forked it: forked from the app's short-lived engine
    thread, workers would die with that thread. One per process, because that is its purpose.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="fvtui-solver-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            start, box, done = self._requests.get()
            try:
                box.append(start())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box.append(exc)
            done.set()

    def run(self, start: Callable[[], Any]) -> Any:
        box: list[Any] = []
        done = threading.Event()
        self._requests.put((start, box, done))
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]


_spawner_lock = threading.Lock()
_spawner: _Spawner | None = None


def _spawn(start: Callable[[], Any]) -> Any:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.run(start)


class _Worker:
    def __init__(self, memory_limit_mb: int | None, grace: float, cores: Cores) -> None:
        ours, theirs = socket.socketpair()
        self.log = tempfile.TemporaryFile()  # its stderr: the last words of a crashed solver
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        argv = [*python_running(_WORKER), str(theirs.fileno()), str(memory_limit_mb or 0), str(grace),
                str(os.getpid()), str(cores.read_fd), str(cores.write_fd)]
        with theirs:
            self.proc = _spawn(lambda: subprocess.Popen(
                argv,
                pass_fds=(theirs.fileno(), cores.read_fd, cores.write_fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                env=env,
            ))
        self.conn = Connection(ours.detach())
        self.job: int | None = None
        self.deadline: float | None = None

    def death_message(self) -> str:
        code = self.proc.wait()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - 300))
        tail = self.log.read().decode(errors="replace").strip().splitlines()
        return f"solver process {how}" + (f": {tail[-1]}" if tail else "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()
        self.log.close()


def _kill_all(workers: list[_Worker]) -> None:
    for w in workers:
        w.kill()
    workers.clear()


def _shut(workers: list[_Worker], cores: Cores) -> None:
    _kill_all(workers)
    cores.close()


class Solver(ABC):
    """What the engine and the inspector call; a backend (SolverPool, the Dask one) supplies run_jobs and close."""

    def run_searches(
        self,
        tasks: Sequence[SearchTask],
        on_result: Callable[[int, SearchResult], None] | None = None,
        cancel: threading.Event | None = None,
        on_progress: Callable[[int, SearchProgress], None] | None = None,
    ) -> list[SearchResult]:
        """Results in task order; `on_result(i, result)` runs in this thread as each task ends, and
        `on_progress(i, progress)` as it starts and, where the backend streams them, at each query's start.

        Setting `cancel` stops the work and raises Cancelled; so does close() from another thread.
        """
        jobs = [search_job(t) for t in tasks]
        return self.run_jobs(jobs, on_result, cancel, on_progress)

    def verify(
        self, net: Network, x: np.ndarray, eps: float, timeout: float = 30.0, cancel: threading.Event | None = None
    ) -> VerifyResult:
        return self.run_jobs([verify_job(net, x, eps, timeout)], None, cancel)[0]

    def certified_radius(
        self,
        net: Network,
        x: np.ndarray,
        precision: float = 1e-3,
        timeout: float = 30.0,
        hi: float = 1.0,
        cancel: threading.Event | None = None,
    ) -> RadiusResult:
        return self.run_jobs([radius_job(net, x, precision, timeout, hi)], None, cancel)[0]

    @abstractmethod
    def run_jobs(self, jobs: list[Job], on_result: Callable | None = None,
                 cancel: threading.Event | None = None, on_progress: Callable | None = None) -> list: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SolverPool(Solver):
    """Worker processes running searches, verifications and radius searches under hard deadlines.

    A query's deadline is `timeout * 1.25 + grace` from the moment the worker says it starts.
    One call at a time (a lock): run_searches, verify and certified_radius may come from any
    thread. Workers start with the pool, are replaced as they die, and never outlive it.
    """

    def __init__(self, workers: int | None = None, memory_limit_mb: int | None = 4096, grace: float = 2.0) -> None:
        self.size = workers or os.cpu_count() or 1
        self._memory_limit_mb = memory_limit_mb
        self._grace = grace
        self._workers: list[_Worker] = []
        self._cores = Cores.new()  # lent to long proofs while workers idle at the end of a call (cores.py)
        self._lock = threading.RLock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _shut, self._workers, self._cores)
        self._fill()

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def close(self) -> None:
        """Kill every worker; a call running in another thread stops with Cancelled."""
        self._closed = True
        with self._lock:
            self._finalizer()

    # -- internals ---------------------------------------------------------------------------

    def _fill(self) -> None:
        while not self._closed and len(self._workers) < self.size:
            self._workers.append(_Worker(self._memory_limit_mb, self._grace, self._cores))

    def _remove(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)

    def run_jobs(self, jobs: list[Job], on_result: Callable | None = None,
                 cancel: threading.Event | None = None, on_progress: Callable | None = None) -> list:
        """The jobs' results in order (run_searches, verify and certified_radius hand theirs here). `cancel` is
        anything with is_set(): the Dask backend's tells whether the scheduler still wants the task.
        `on_progress(i, progress)`: a search job's progress at each of its queries' start."""
        with self._lock:
            results: list = [None] * len(jobs)
            todo = deque(range(len(jobs)))
            finished: list[int] = []

            def finish(w: _Worker, result: Any) -> None:
                results[w.job] = result
                finished.append(w.job)
                w.job, w.deadline = None, None

            def died(w: _Worker) -> None:
                job = jobs[w.job]
                # apart.solve_guarded's alarm (after a stop the job just starts over: the stop may have moved it)
                code = w.proc.wait()
                deaf = not job.stopped and job.kind == "search" and code == -signal.SIGPROF
                outside = code in _FROM_OUTSIDE and not job.killed_outside
                if deaf and len(job.args["deaf"]) == DEAF_RETRIES:
                    times = DEAF_RETRIES + 1
                    queries = "1 query" if times == 1 else f"{times} queries"
                    message = f"Marabou ignored its timeout in {queries} and was stopped"
                    finish(w, job.failed("timeout", message))
                elif job.stopped or deaf or outside:
                    if deaf:  # again, that query's slice skipped
                        job.args = {**job.args, "deaf": (*job.args["deaf"], job.starts)}
                    job.killed_outside |= outside
                    job.start_over()
                    todo.appendleft(w.job)
                    w.job, w.deadline = None, None
                else:
                    finish(w, job.failed("error", w.death_message()))

            tick = time.monotonic()
            lent = 0
            try:
                while todo or finished or any(w.job is not None for w in self._workers):
                    stop = self._closed or (cancel is not None and cancel.is_set())
                    if todo and not stop:
                        if lent:  # a job to start again (after a stop): the lent cores are needed back
                            self._cores.take_back()
                            lent = 0
                        self._fill()
                        for w in list(self._workers):
                            if todo and w.job is None:
                                self._dispatch(w, todo, jobs, finish)
                    if not todo:  # nothing left to hand out: each idle worker's core goes to a proof that can use it
                        idle = sum(w.job is None for w in self._workers)
                        if idle > lent:
                            self._cores.give_back(idle - lent)
                            lent = idle
                    # after dispatching: a worker does not wait while its last result is saved
                    for i in finished:
                        if on_result is not None:
                            on_result(i, results[i])
                    finished.clear()
                    if stop:
                        raise Cancelled("verification stopped")
                    now = time.monotonic()
                    deadlines = [w.deadline - now for w in self._workers if w.deadline is not None]
                    timeout = max(0.0, min([_POLL] + deadlines))
                    by_conn = {w.conn: w for w in self._workers}
                    ready = wait(list(by_conn), timeout)
                    now = time.monotonic()
                    stopped, tick = now - tick - timeout, now  # how late since the last wait
                    if stopped > _STOPPED:  # this process was stopped (Ctrl-Z, SIGSTOP): so were the deadlines
                        for w in self._workers:
                            if w.deadline is not None:
                                w.deadline += stopped
                            if w.job is not None:
                                jobs[w.job].stopped = True
                    for conn in ready:
                        self._read(by_conn[conn], jobs, finish, died, on_progress)
                    now = time.monotonic()
                    for w in list(self._workers):
                        if w.deadline is not None and now > w.deadline:
                            job = jobs[w.job]
                            limit = query_deadline(job.args["timeout"], self._grace)
                            finish(w, job.failed("timeout", f"solver killed after {limit:.0f} s"))
                            self._remove(w)
            except BaseException:
                _kill_all(self._workers)  # abandoned jobs; fresh workers start on the next call
                raise
            finally:
                self._cores.take_back()  # every borrowed core came back with its job's end, or died with it
            self._fill()  # replace the dead now, so the next call finds warm workers
            return results

    def _dispatch(self, w: _Worker, todo: deque[int], jobs: list[Job], finish: Callable) -> None:
        i = todo.popleft()
        job = jobs[i]
        w.job = i
        job.started = time.monotonic()
        try:  # the network with every job: the worker keeps nothing between jobs (worker._serve)
            w.conn.send((i, job.kind, job.net, job.args, job.fault))
        except OSError:  # it died while idle: give the job one more worker, not endless ones
            if job.retried:
                finish(w, job.failed("error", w.death_message()))
            else:
                job.retried = True
                w.job = None
                todo.appendleft(i)
            self._remove(w)

    def _read(self, w: _Worker, jobs: list[Job], finish: Callable[[_Worker, Any], None],
              died: Callable[[_Worker], None], on_progress: Callable | None) -> None:
        try:  # one message: the next wait returns at once if there is another
            i, events, outcome = w.conn.recv()  # worker._run_job's messages
            job = jobs[i]
            for event, payload in events:
                self._on_event(w, job, event, payload)
            if on_progress is not None and job.kind == "search" and any(event == "start" for event, _ in events):
                on_progress(i, job.progress())
            if outcome is not None:
                kind, payload = outcome
                finish(w, payload if kind == "done" else job.failed("error", payload))
        except (EOFError, OSError):
            if w.job is not None:
                died(w)
            self._remove(w)

    def _on_event(self, w: _Worker, job: Job, event: str, payload: Any) -> None:
        if event == "start":
            job.running, job.query_started = payload, time.monotonic()
            job.starts += 1
            w.deadline = job.query_started + query_deadline(job.args["timeout"], self._grace)
        elif event == "query":
            job.running, w.deadline = None, None
            job.queries.append(payload)
        elif event == "counterexample":
            job.counterexamples.append(payload)
        elif event == "bracket":
            job.bracket = payload
