"""A checked connection to a Dask cluster: reached within 10 s, its workers running this fvtui,
maraboupy and Python, and (for benchmarks) seeing the sessions folder. Every refusal is a UserError
raised before anything is saved."""

from __future__ import annotations

import contextlib
import logging
import platform
import threading
import uuid
from importlib import metadata
from pathlib import Path

from ..errors import UserError
from .address import ClusterAddress, cluster_text, parse_address

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler, and for it to have a worker
REFRESH = 2.0  # seconds between updates of the worker count the status line shows
# Dask's housekeeping, turned down in the clusters fvtui starts (local:N, `fvtui cluster slurm`): idle,
# a local:2 cluster's scheduler and two workers took 13% of a core on this 2-core machine (the workers'
# 10 ms statistical profiler, the 20 ms event-loop tick, the 100 ms memory monitor), time the niced
# solvers lost; 2% with these. Dask's dashboard still works, without the per-task profile.
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def quiet_environment() -> dict[str, str]:
    """QUIET as the environment variables a `dask worker` or `dask scheduler` started elsewhere reads."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in QUIET.items()}


class Cluster:
    """The Dask client of one command (and the LocalCluster of `local:N`); solvers and sessions run on it."""

    def __init__(self, address: ClusterAddress, client, local=None) -> None:
        self.address, self.client, self._local = address, client, local
        self.workers, self.threads, self._serves_dashboard = 0, 1, False
        self._refresh()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._watch, name="fvtui-cluster-watch", daemon=True).start()

    # -- what runs on it -----------------------------------------------------------------------
    def solver(self, workers: int | None = None):
        """A DaskSolver (the engine's solver_factory; `workers` is the cluster's business)."""
        from .solver import DaskSolver

        return DaskSolver(self)

    def start_session(self, root: Path, name: str, new: list[str], resume: list[str], log: Path) -> "SessionTask":
        from .tasks import run_session

        key = f"fvtui-session-{name}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_session, key, str(root), name, new, resume, str(log), key=key, pure=False)
        return SessionTask(future, log)

    def count_in_flight(self, change: int) -> None:
        with self._lock:
            self._in_flight += change

    # -- status --------------------------------------------------------------------------------
    @property
    def dashboard(self) -> str:
        """The scheduler's dashboard link, or "" when it serves none (it needs bokeh)."""
        try:
            return self.client.dashboard_link if self._serves_dashboard else ""
        except Exception:  # noqa: BLE001 - a status line never fails
            return ""

    def describe(self) -> str:
        plural = "s" if self.workers != 1 else ""
        text = f"{self.address.text}: {self.workers} worker{plural}, {self._in_flight} in flight"
        return text + (f", {self.dashboard}" if self.dashboard else "")

    def _watch(self) -> None:
        while not self._closed.wait(REFRESH):
            try:
                self._refresh()
            except Exception:  # noqa: BLE001 - closing, or the scheduler is gone: the next call says so
                pass

    def _refresh(self) -> None:
        info = self.client.scheduler_info(n_workers=-1)
        self.workers = len(info["workers"])
        self.threads = max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))  # jobs at a time
        self._serves_dashboard = "dashboard" in info.get("services", {})

    # -- checks --------------------------------------------------------------------------------
    def check_workers(self, sessions: Path | None = None) -> None:
        """Refuse workers that differ from here in fvtui, maraboupy or Python, lack maraboupy, or (with
        `sessions`) cannot see that folder; each worker with a problem is named."""
        from .tasks import probe

        here = {"fvtui": _fvtui_version(), "maraboupy": _version("maraboupy"), "python": platform.python_version()}
        probe_file = None
        if sessions is not None:
            folder = next(p for p in (sessions.resolve(), *sessions.resolve().parents) if p.is_dir())
            probe_file = folder / f".fvtui-cluster-probe-{uuid.uuid4().hex}"
            probe_file.write_text("fvtui checks that the cluster's workers see this folder\n")
        try:
            found = self.client.run(probe, str(probe_file) if probe_file else None)
        except Exception as exc:  # noqa: BLE001 - e.g. fvtui not importable there
            raise UserError(f"the workers of {self.address.text} cannot run fvtui: {type(exc).__name__}: {exc}") \
                from None
        finally:
            if probe_file is not None:
                probe_file.unlink(missing_ok=True)
        problems = []
        for worker, got in sorted(found.items()):
            if got["maraboupy"] is None:
                problems.append(f"{worker} cannot import maraboupy ({got['problem']})")
                continue
            differ = [f"{what} {got[what]}" for what in ("fvtui", "maraboupy", "python") if got[what] != here[what]]
            if differ:
                problems.append(f"{worker} has {', '.join(differ)}")
            if probe_file is not None and not got["sees_sessions"]:
                problems.append(f"{worker} cannot see the sessions folder {sessions.resolve()} (a shared filesystem "
                                "is needed)")
        if problems:
            mine = ", ".join(f"{k} {v}" for k, v in here.items())
            raise UserError(f"cluster {self.address.text}: {'; '.join(problems)} (here: {mine})")

    def close(self) -> None:
        self._closed.set()
        try:
            self.client.close(timeout=CONNECT_TIMEOUT)
        finally:
            if self._local is not None:
                self._local.close(timeout=CONNECT_TIMEOUT)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SessionTask:
    """A benchmark session running as a Dask task, seen by the bench runner as it sees a child process."""

    def __init__(self, future, log: Path) -> None:
        self.future, self.log = future, log

    def poll(self) -> int | None:
        if not self.future.done():
            return None
        if self.future.status == "finished":
            return self.future.result()
        problem = self.future.exception() if self.future.status == "error" else self.future.status
        with open(self.log, "a") as fh:
            fh.write(f"fvtui: the Dask task of this session ended: {problem}\n")
        return 1

    def send_signal(self, signum: int) -> None:
        """Any stop request cancels the task; its worker then stops the session as Ctrl-C would."""
        self.future.cancel()

    def wait(self) -> None:
        pass  # a cancelled task's worker stops the session on its own


def _reachable(text: str, scheduler: str) -> None:
    """A port that refuses the connection is said at once (Dask's client retries it for the whole timeout)."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(scheduler)
    if where.scheme != "tcp" or where.hostname is None or where.port is None:
        return  # other transports: left to Dask
    try:
        socket.create_connection((where.hostname, where.port), timeout=CONNECT_TIMEOUT).close()
    except ConnectionRefusedError:
        raise UserError(f"cannot reach the Dask scheduler at {text}: nothing listens on port {where.port} of "
                        f"{where.hostname}; start one with `dask scheduler`, or check the address") from None
    except OSError as exc:
        raise UserError(f"cannot reach the Dask scheduler at {text} within {CONNECT_TIMEOUT:.0f} s ({exc}); "
                        "start one with `dask scheduler`, or check the address") from None


def open_cluster(text: str, sessions: Path | None = None) -> Cluster:
    """Connect to (or start) the cluster `text` and check its workers; UserError with one line if it cannot be used."""
    address = parse_address(text)
    import dask
    from distributed import Client, LocalCluster

    for name in ("distributed", "tornado"):  # their log lines would land on the app's screen
        logging.getLogger(name).setLevel(logging.CRITICAL)
    local = None
    if address.local_workers:
        try:
            with dask.config.set(QUIET):
                local = LocalCluster(n_workers=address.local_workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0", silence_logs=logging.CRITICAL)
            client = Client(local, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - e.g. a worker process that failed to start
            if local is not None:
                local.close()
            raise UserError(f"cannot start a local Dask cluster of {address.local_workers} workers: "
                            f"{type(exc).__name__}: {exc}") from None
    else:
        _reachable(text, address.scheduler)
        try:
            client = Client(address.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {text} within {CONNECT_TIMEOUT:.0f} s ({exc}); "
                            "start one with `dask scheduler`, or check the address") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        _close(client, local)
        raise UserError(f"the Dask scheduler at {text} has no worker (none joined within {CONNECT_TIMEOUT:.0f} s); "
                        "start some with `dask worker " + text + "`") from None
    cluster = Cluster(address, client, local)
    try:
        cluster.check_workers(sessions)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _close(client, local) -> None:
    client.close()
    if local is not None:
        local.close()


def _fvtui_version() -> str:
    from .. import __version__

    return __version__


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cluster_for(option: str | None, sessions: Path | None = None) -> contextlib.AbstractContextManager:
    """The checked cluster of --cluster (or $FVTUI_CLUSTER), closed on leaving; None without one."""
    text = cluster_text(option)
    return open_cluster(text, sessions) if text else contextlib.nullcontext(None)
