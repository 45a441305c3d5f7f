"""Marabou's timeout made to hold for the default search's first slice of a query, after which branch and
bound takes over (search.BAB_AFTER, MILP_AFTER): in a fork of its own (solve_apart), or in the process under a
CPU-time alarm that ends the process (solve_guarded).

Marabou checks its timeout in its main loop only. Its DeepSoI local search
(`Engine::performDeepSoILocalSearch`, seen with gdb) runs simplex steps without looking, and on a
Fashion-MNIST 784-32-10 query with 482 exclusion disjunctions a 10 s call was still there after 700 s,
deaf to SIGTERM too. Inside a job the query then ran until the pool killed the worker (1.25 times the
cap plus grace: 377 s at a 300 s cap), where branch and bound finds its answer in 0.4 s. It holds the
GIL, so nothing in its process can stop it; a fork can be killed.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import sys
import time

from .query import Solved, solve

PR_SET_PDEATHSIG = 1
SLACK = 2.0  # the grace of query_deadline for a fork


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


def query_deadline(timeout: float, grace: float) -> float:
    """Seconds after a query starts when it is killed from outside (the pool kills its worker; solve_apart
    its fork). Marabou's timeout is whole seconds and does not count preprocessing: a 10 s query was seen
    to return after 13 s."""
    return timeout * 1.25 + grace


def solve_guarded(ipq, n_inputs: int, timeout: float) -> Solved:
    """query.solve in this process, which the kernel ends with SIGPROF once the call has used
    query_deadline(timeout, SLACK) seconds of CPU: free where solve_apart's fork costs 11 ms, for the
    slices that are rarely hard. CPU time, not wall time, so that a stop (Ctrl-Z) or a busy machine never
    fires it early. The pool runs such a job again with that query's slice skipped (pool.DEAF_RETRIES)."""
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_PROF, query_deadline(timeout, SLACK))
    try:
        return solve(ipq, n_inputs, timeout)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def solve_apart(ipq, n_inputs: int, timeout: float) -> Solved:
    """query.solve in a fork, killed query_deadline(timeout, SLACK) after it starts: then 'timeout'."""
    parent, start = os.getpid(), time.perf_counter()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            die_with_parent(parent)
            try:
                solved = solve(ipq, n_inputs, timeout)
            except Exception as exc:  # noqa: BLE001 - reported like solve's own errors
                solved = Solved("error", None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
            with os.fdopen(write, "wb") as out:
                out.write(pickle.dumps(solved))
        finally:
            os._exit(0)
    os.close(write)
    deadline = start + query_deadline(timeout, SLACK)
    data, ended = b"", False
    with os.fdopen(read, "rb", buffering=0) as answer:
        while not ended:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([answer], [], [], left)[0]:
                break
            chunk = answer.read(1 << 16)
            data, ended = data + chunk, not chunk
    if not ended:
        os.kill(pid, signal.SIGKILL)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    seconds = time.perf_counter() - start
    if not ended:
        return Solved("timeout", None, seconds, f"Marabou ran past its {timeout:.0f} s timeout and was stopped")
    if status != 0 or not data:
        how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exited with code {status}"
        return Solved("error", None, seconds, f"Marabou's process {how}")
    return pickle.loads(data)
