"""What the Dask workers run. Every solver job goes through a local SolverPool of one process, so each
Marabou query still runs in a killable child with a memory cap and a hard deadline (a hang or an OOM
costs the query, never the Dask worker) and a killed search still hands back its counterexamples;
a benchmark session runs as the same `fvtui new|resume --headless` child as without a cluster.

A running Dask task cannot be interrupted, so each one watches the worker's own record of it: once
the scheduler no longer wants it (cancelled, its client gone) the solver children are killed, or the
session is asked to stop as Ctrl-C would.

Kept free of heavy imports at module level: `probe` must run on a worker that lacks maraboupy.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

POLL = 0.5  # seconds between a running session's checks
STOP_GRACE = 60.0  # seconds a session gets to save its finished rounds and stop before SIGKILL

_idle_pools: dict[tuple[int, float], list] = {}  # SolverPool(1)s of this worker process, not in use
_pools_lock = threading.Lock()


def probe(sessions: str | None = None) -> dict[str, Any]:
    """This worker's versions, whether maraboupy imports, and whether it sees the `sessions` probe file."""
    import platform
    from importlib import metadata

    import fvtui

    found: dict[str, Any] = {"fvtui": fvtui.__version__, "python": platform.python_version(), "maraboupy": None,
                             "problem": ""}
    try:
        import maraboupy  # noqa: F401

        found["maraboupy"] = metadata.version("maraboupy")
    except Exception as exc:  # noqa: BLE001 - any failure to import is the finding
        found["problem"] = f"{type(exc).__name__}: {exc}"
    if sessions is not None:
        found["sees_sessions"] = os.path.isfile(sessions)
    return found


class _Unwanted:
    """is_set() once the scheduler no longer wants this task: SolverPool's cancel check."""

    def __init__(self, key: str) -> None:
        from distributed import get_worker

        self.worker, self.key = get_worker(), key

    def is_set(self) -> bool:
        task = self.worker.state.tasks.get(self.key)
        return task is None or task.state == "cancelled"


def run_job(key: str, kind: str, args: dict, fault: str | None, net, memory_limit_mb: int, grace: float):
    """One SolverPool job (search, verify or radius) on this worker; `key` is this task's Dask key."""
    from ..verify.pool import Job, SolverPool

    limits = (memory_limit_mb, grace)
    with _pools_lock:
        idle = _idle_pools.setdefault(limits, [])
        pool = idle.pop() if idle else None
    if pool is None:
        pool = SolverPool(1, memory_limit_mb=memory_limit_mb or None, grace=grace)
    try:
        return pool.run_jobs([Job(kind, net, args, fault)], None, _Unwanted(key))[0]
    finally:
        with _pools_lock:
            _idle_pools[limits].append(pool)  # warm for the next task, its network cached


def run_session(key: str, root: str, name: str, new: list[str], resume: list[str], log: str) -> int:
    """A benchmark session as a child process of this worker: `fvtui new` unless the session exists by now
    (a task rerun after its first worker died resumes it), with this worker's share of the cores as solver
    workers unless the command names them. Returns the child's exit code."""
    from ..bench.runner import start_child
    from ..child_python import CLI, python_running
    from ..store import SessionStore

    words = resume if SessionStore(root).exists(name) else new
    if "--workers" not in words:
        words = [*words, "--workers", str(_cores_per_task())]
    unwanted = _Unwanted(key)
    process = start_child([*python_running(CLI), *words], Path(log))
    stop_at = None
    while (code := process.poll()) is None:
        if stop_at is None and unwanted.is_set():
            process.send_signal(signal.SIGTERM)  # as Ctrl-C: finished rounds are kept
            stop_at = time.monotonic() + STOP_GRACE
        elif stop_at is not None and time.monotonic() > stop_at:
            process.kill()
        time.sleep(POLL)
    return code


def _cores_per_task() -> int:
    from distributed import get_worker

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, get_worker().state.nthreads))


