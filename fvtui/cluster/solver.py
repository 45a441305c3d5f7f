"""DaskSolver: the SolverPool interface with every job a Dask task, so the engine and the inspector
do not know which one they have.

Each job's task runs it in a one-process SolverPool on its worker (tasks.run_job), so the local
pool's guarantees hold there: Marabou in a killable child with a memory cap and a hard deadline,
the counterexamples of a killed search kept, and the same queries, hence the same results. The
network is scattered to every worker once per call instead of riding in each task. A worker lost
mid-task has its task rerun elsewhere by Dask; each job's result is taken once, by its index.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Callable

from ..errors import Cancelled
from ..verify.pool import Job, Solver
from ..verify.results import SearchProgress

POLL = 0.1  # seconds between checks of the cancel event


class DaskSolver(Solver):
    def __init__(self, cluster, memory_limit_mb: int | None = 4096, grace: float = 2.0) -> None:
        self.cluster = cluster
        self._memory_limit_mb, self._grace = memory_limit_mb or 0, grace
        self._closed = False

    def run_jobs(self, jobs: list[Job], on_result: Callable | None = None,
                 cancel: threading.Event | None = None, on_progress: Callable | None = None) -> list:
        """Results in job order; `on_result(i, result)` runs in this thread as each job ends. Setting `cancel`
        (or close() from another thread) cancels the futures, whose workers then kill their solvers. A task
        streams nothing back while it runs: `on_progress(i, SearchProgress(started=...))` says only that a search went
        out, and when.

        Jobs go out in order, no more at a time than the cluster has worker threads, so a worker gets its
        next job when it is free, as in the local pool. Handed all at once, Dask spreads them by guessed
        durations and steals back later: a search could wait behind a long one while another worker idles,
        and a round's end came 0-6% later than the pool's on local:2."""
        from .tasks import run_job

        client = self.cluster.client
        nets = {}
        for job in jobs:
            if job.net.key not in nets:
                nets[job.net.key] = client.scatter(job.net, broadcast=True, hash=False)
        ended: queue.SimpleQueue = queue.SimpleQueue()
        batch = uuid.uuid4().hex[:12]
        futures: dict[int, object] = {}

        def submit(i: int) -> None:
            job = jobs[i]
            job.started = time.monotonic()
            key = f"fvtui-{job.kind}-{batch}-{i}"
            future = client.submit(run_job, key, job.kind, job.args, job.fault, nets[job.net.key],
                                   self._memory_limit_mb, self._grace, key=key, pure=False)
            future.add_done_callback(lambda _, i=i: ended.put(i))
            futures[i] = future
            self.cluster.count_in_flight(1)
            if on_progress is not None and job.kind == "search":
                on_progress(i, SearchProgress(started=job.started))

        results: list = [None] * len(jobs)
        taken: set[int] = set()
        try:
            while len(taken) < len(jobs):
                while len(futures) < len(jobs) and len(futures) - len(taken) < self.cluster.threads:
                    submit(len(futures))
                if self._closed or (cancel is not None and cancel.is_set()):
                    raise Cancelled("verification stopped")
                try:
                    i = ended.get(timeout=POLL)
                except queue.Empty:
                    continue
                if i in taken:
                    continue
                taken.add(i)
                self.cluster.count_in_flight(-1)
                results[i] = self._result(jobs[i], futures[i])
                if on_result is not None:
                    on_result(i, results[i])
        except BaseException:
            running = [f for i, f in futures.items() if i not in taken]
            client.cancel(running)
            self.cluster.count_in_flight(-len(running))
            raise
        return results

    @staticmethod
    def _result(job: Job, future):
        if future.status == "finished":
            return future.result()
        # Dask gave up on it (e.g. its workers kept dying: KilledWorker), as the pool does with a dead worker.
        if future.status == "error":
            exc = future.exception()
            return job.failed("error", f"Dask task failed: {type(exc).__name__}: {exc}")
        return job.failed("error", f"Dask task {future.status}")

    def close(self) -> None:
        """Stop a call running in another thread (it raises Cancelled and cancels its futures)."""
        self._closed = True
