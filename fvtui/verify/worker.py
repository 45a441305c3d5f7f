"""The solver worker process: receives jobs from SolverPool over a socket, streams progress back.

Each job runs in a fork of the worker, which itself only keeps the next fork ready (_serve): Marabou's
answers depend on the process's history. Where its objects land in memory steers its choices, so a
sample's counterexamples changed after other samples' searches in the same process (never a
verdict; NeuralNetworkVerification/Marabou#783 is the same symptom). From a fork of a process that
has solved nothing, a sample gets the same points whichever worker gets it and whatever ran there
before, and a session replays exactly. The fork also hands all of a job's memory back.

Marabou can hang past its own timeout and eat memory, so the parent keeps the deadline and kills;
the worker only caps its address space and makes sure it never outlives the parent. On Linux the
kernel SIGKILLs it the moment the parent dies (PR_SET_PDEATHSIG, which works inside
`MarabouCore.solve` too, where the GIL keeps every Python thread out; the pool forks workers from
one thread that lives as long as the process, since the signal follows the thread that forked), and
a job's fork the moment the worker dies. Elsewhere, and as a backstop: an idle worker exits on EOF,
a busy one when a send fails, and a query still running well past the parent's own kill time ends
the process by itself (a C-level faulthandler timer).
"""

from __future__ import annotations

import faulthandler
import os
import resource
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Callable

from .apart import die_with_parent, query_deadline
from .cores import Cores
from .search import certified_radius, search_counterexamples, verify_sample

RUNNERS = {"search": search_counterexamples, "verify": verify_sample, "radius": certified_radius}
NICENESS = 10
ORPHAN_SLACK = 10.0  # seconds past the parent's kill time after which a query ends the worker
REARM = ORPHAN_SLACK / 2  # seconds; see report() in _run_job


def _inject(fault: str, report, cores: Cores | None):
    """Test hook: fail the way a real solver can, at the job's first query (after any seeds were streamed);
    or ('cores') wait up to 20 s for the pool to lend a core, and fail saying how many it could borrow."""

    def faulty(event: str, payload) -> None:
        report(event, payload)
        if event != "start":
            return
        if fault == "cores":
            borrowed, until = 0, time.monotonic() + 20
            while not borrowed and time.monotonic() < until:
                time.sleep(0.05)
                while cores is not None and cores.borrow():
                    borrowed += 1
            if cores is not None:
                cores.give_back(borrowed)
            raise ValueError(f"borrowed {borrowed}")
        if fault == "crash":
            os.abort()  # like std::terminate after an uncaught C++ exception
        if fault == "hang":
            while True:
                time.sleep(3600)
        if fault == "oom":
            bytearray(1 << 44)  # MemoryError under any sane RLIMIT_AS or overcommit setting
        raise ValueError(f"unknown fault {fault!r}")

    return faulty


def _deafen(deaf: tuple[int, ...]) -> float:
    """Test hook ('deaf'): a Marabou slice run in the job's own process ignores its timeout and burns a core,
    as DeepSoI's local search can (apart.py), in the job's first two runs; the slice it returns is short,
    for a quick test."""
    from . import apart

    real, job = apart.solve, os.getpid()

    def deaf_solve(ipq, n_inputs: int, timeout: float):
        while len(deaf) < 2 and os.getpid() == job:
            pass
        return real(ipq, n_inputs, timeout)

    apart.solve = deaf_solve
    return 0.5


class Resumes:
    """How often the process was continued after a stop (Ctrl-Z then fg, SIGSTOP then SIGCONT). A stop
    runs down the wall-clock cap of the query in flight; the fv search asks such a query again."""

    def __init__(self) -> None:
        self.count = 0
        signal.signal(signal.SIGCONT, self._continued)

    def _continued(self, signum: int, frame: object) -> None:
        self.count += 1

    def __call__(self) -> int:
        return self.count


def _run_job(conn: Connection, grace: float, resumed: Callable[[], int], took: Callable[[], None] = lambda: None,
             cores: Cores | None = None) -> None:
    """One job, in a fork of the worker: it reads the job, runs it and sends the result.

    Messages are (job_id, events, outcome). A query's end and its counterexample wait for the next
    query's start or the result, so that a query costs the pool one wake-up, not three: each costs the
    parent about 0.15 ms of a core the solvers share, 4 ms of a 10-query search. Nothing runs between a
    query's end and the next start but the next box's exclusions, so the parent's deadline (set at a
    start, cleared at an end) holds no longer than it did."""
    job_id, kind, net, args, fault = conn.recv()
    took()
    watchdog = query_deadline(args["timeout"], grace) + ORPHAN_SLACK
    armed = float("-inf")  # when the timer was last set
    events: list = []

    def report(event: str, payload) -> None:
        nonlocal armed
        events.append((event, payload))
        if event != "start":
            return
        # Setting the timer costs a thread handshake, as much as a whole region-program query: it is
        # set again only when older than REARM, so it fires at least watchdog - REARM after any
        # query's start (still past the parent's kill time). The fork's exit clears it.
        if time.monotonic() - armed > REARM:
            faulthandler.dump_traceback_later(watchdog, exit=True)
            armed = time.monotonic()
        conn.send((job_id, events[:], None))
        events.clear()

    try:
        extra = {"resumed": resumed, "cores": cores} if kind == "search" else {}
        if fault == "deaf":
            extra["milp_after"], fault = _deafen(args["deaf"]), None
        result = RUNNERS[kind](net, report=_inject(fault, report, cores) if fault else report, **{**args, **extra})
    except MemoryError:
        conn.send((job_id, events, ("failed", "out of memory (MemoryError)")))
        return
    except Exception as exc:  # noqa: BLE001 - any solver failure is reported, the worker lives on
        conn.send((job_id, events, ("failed", f"{type(exc).__name__}: {exc}")))
        return
    conn.send((job_id, events, ("done", result)))


CLOSED = 3  # a fork's exit status when the pipe closed: the pool is gone, the worker ends too
AHEAD = 2  # forks alive at once: the one running a job (or exiting), and the next, waiting for one


def _fork(conn: Connection, grace: float, resumed: Resumes, worker: int, turn: tuple[int, int],
          cores: Cores) -> int:
    """A fork that waits for its turn (a byte in the `turn` pipe: the fork before has read its job), then
    reads a job, passes the turn on, runs the job and exits."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        die_with_parent(worker)
        os.read(turn[0], 1)
        _run_job(conn, grace, resumed, lambda: os.write(turn[1], b"."), cores)
        status = 0
    except (EOFError, OSError):
        status = CLOSED
    except BaseException:  # noqa: BLE001 - its last words go to the worker's stderr, which the pool reads
        traceback.print_exc()
    finally:
        os._exit(status)


def _serve(conn: Connection, grace: float, cores: Cores) -> None:
    """Keep a fork ready for the next job; read nothing, keep nothing, so every fork starts from the same
    process. The next fork is made while a job runs, and takes the next job while the last one's fork
    still exits: fork and exit cost about 5 ms a job here, a tenth of a small search, and no longer wait
    between jobs. A fork that dies (a crash, the orphan timer) takes the worker with it, the same way,
    for the pool to see and report."""
    resumed = Resumes()
    worker = os.getpid()
    turn = os.pipe()
    os.write(turn[1], b".")
    forks: set[int] = set()
    try:
        while True:
            while len(forks) < AHEAD:
                forks.add(_fork(conn, grace, resumed, worker, turn, cores))
            pid, wait_status = os.wait()
            forks.discard(pid)
            status = os.waitstatus_to_exitcode(wait_status)
            if status == CLOSED:
                return
            if status != 0:
                _end(forks)
                if status < 0:  # killed by a signal: end the same way
                    signal.signal(-status, signal.SIG_DFL)
                    os.kill(worker, -status)
                os._exit(status)
    finally:
        _end(forks)


def _end(forks: set[int]) -> None:
    """The waiting fork does not outlive the worker where no parent-death signal kills it (not Linux)."""
    for pid in forks:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
    forks.clear()


def main() -> None:
    fd, limit_mb, grace, parent = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    cores = Cores(int(sys.argv[5]), int(sys.argv[6]))  # what the pool lends a long proof (cores.py)
    die_with_parent(parent)
    # Ctrl-C and a closed terminal reach the whole process group; they are the parent's to handle (it saves,
    # then ends us). Died of SIGHUP, a job would end as a solver error that the round's journal keeps.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Solvers fill every core; a lower priority keeps the app answering keys while they do, and
    # costs nothing when they have the machine to themselves.
    os.nice(NICENESS)
    if limit_mb > 0:
        limit = limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import highspy  # noqa: F401 - once here, not in every job's fork: 8-11 ms of a region-program search of 24-28

    try:
        _serve(Connection(fd), grace, cores)
    except (EOFError, OSError):
        pass  # the parent closed the pipe or died: nothing left to do
