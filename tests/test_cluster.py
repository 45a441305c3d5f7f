"""--cluster on real Dask processes (a `dask scheduler` and `dask worker`s on 127.0.0.1, no mocks):
a session through them equals the same session on the local solver pool, also when a worker is
SIGKILLed mid-round; a benchmark runs on local:2 and resumes after a kill; and every unusable
cluster is refused with one line, exit 2 and nothing saved."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fvtui.config import RoundSettings, SessionConfig
from fvtui.data import load_dataset
from fvtui.engine import Engine
from fvtui.store import SessionStore
from test_faults import tagged_processes

ROOT = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).parent / "dask")
# Marabou alone on every query (--marabou-slice off): on a loaded machine a 1 s slice can run out where it
# did not in the reference run, and hand the query to branch and bound, whose point is another
FLAGS = ["--dataset", "demo", "--rounds", "2", "--init-size", "20", "--query-size", "8", "--pool-size", "200",
         "--epochs", "2", "--hidden", "10", "--strategy", "margin", "--augment", "fv", "--advs-per-sample", "3",
         "--marabou-slice", "off"]
CONFIG = SessionConfig(dataset="demo", rounds=2, init_size=20, hidden=(10,), epochs=2,
                       settings=RoundSettings(strategy="margin", augment="fv", query_size=8, pool_size=200,
                                              advs_per_sample=3, marabou_slice="off"))


class DaskProcesses:
    """A `dask scheduler` on a free port and `dask worker`s, every one tagged so that none is left behind."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.tag = folder, uuid.uuid4().hex
        self.processes: list[subprocess.Popen] = []
        self._client = None
        file = folder / "scheduler.json"
        self.scheduler = self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(file)])
        wait_for(file.exists)
        self.address = json.loads(file.read_text())["address"]

    def worker(self, pythonpath: str = str(ROOT), prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        """A worker without a nanny (SIGKILL ends it for good) running one task at a time."""
        before, name = self.workers(), f"worker-{len(self.processes)}"
        process = self._start([*prefix, DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                               "--no-nanny", "--no-dashboard", "--death-timeout", "30", "--name", name], pythonpath)
        process.dask_name = name
        wait_for(lambda: self.workers() > before)
        return process

    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    @property
    def client(self):
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=10)
        return self._client

    def busy(self, worker: subprocess.Popen) -> bool:
        """The scheduler has tasks on this worker."""
        address = next((a for a, w in self.client.scheduler_info(n_workers=-1)["workers"].items()
                        if w["name"] == worker.dask_name), None)
        return bool(self.client.processing().get(address))

    def _start(self, command: list[str], pythonpath: str = str(ROOT)) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": pythonpath, "FVTUI_TEST_TAG": self.tag}
        log = open(self.folder / f"process-{len(self.processes)}.log", "w")
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert wait_gone(self.tag, 10) == []


def wait_for(condition, timeout: float = 60.0, why=lambda: "") -> None:
    """Waits for `condition`; `why` says what the world looked like when it did not come."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out {why()}"
        time.sleep(0.1)


def wait_gone(tag: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def command_line(pid: int) -> bytes:
    """A process's arguments, NUL-separated; empty once it has gone."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def session_processes(tag: str) -> list[int]:
    """The tagged processes that run a session (`fvtui new` or `fvtui resume`)."""
    found = []
    for pid in tagged_processes(tag):
        words = command_line(pid).split(b"\0")
        if b"new" in words or b"resume" in words:
            found.append(pid)
    return found


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if int(fields["PPid"]) == pid and "Z" not in fields["State"]:
            found.append(int(status.parent.name))
    return found


def fingerprint(root: Path, name: str) -> list:
    """Everything a session decided, bit for bit: queried samples, every search's outcome and query
    verdicts, the synthetic samples, the trained weights and accuracy (not timings)."""
    with SessionStore(root).open(name, writable=False) as session:
        rounds = []
        for r in session.rounds:
            synthetic = session.synthetic(r.round)
            weights = session.model_state(r.round)
            rounds.append((
                [q.index for q in r.queried], r.test_accuracy, r.queries,
                [(v.source, v.status, v.eps, v.found, v.spurious, v.queries, v.message) for v in r.verification],
                synthetic.x.tobytes(), synthetic.y.tobytes(), synthetic.source.tobytes(), synthetic.eps.tobytes(),
                [weights[k].tobytes() for k in sorted(weights)]))
        return rounds


def cli(capsys, sessions: Path, *args: str) -> subprocess.CompletedProcess:
    """fvtui's command line in this process (no interpreter to start): exit code, stdout and stderr."""
    from fvtui.cli import main

    capsys.readouterr()
    code = main(["--sessions-dir", str(sessions), *args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The session on this machine's solver pool."""
    root = tmp_path_factory.mktemp("local")
    with SessionStore(root).create("s", CONFIG) as session, Engine(session, load_dataset("demo"), workers=2) as engine:
        engine.run()
    found = fingerprint(root, "s")
    assert sum(len(r[4]) for r in found) > 0 and any(v[1] == "counterexample" for r in found for v in r[3])
    return found


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler; the test starts the workers it needs."""
    cluster = DaskProcesses(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """A scheduler and two workers, shared by the tests below (the last of them SIGKILLs one)."""
    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        cluster.worker()
        cluster.worker()
        yield cluster
    finally:
        cluster.close()


def test_a_session_on_two_dask_workers_equals_the_local_pool(tmp_path, two_workers, reference, capsys):
    result = cli(capsys, tmp_path / "sessions", "new", *FLAGS, "--name", "s", "--headless", "--cluster",
                   two_workers.address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert fingerprint(tmp_path / "sessions", "s") == reference


def test_stop_cancels_the_tasks_and_kills_their_solvers(two_workers):
    """A stop (the cancel event) ends a call at once; the hung solver children on the workers are killed,
    the workers live on, and the status line's counts say so."""
    import threading

    from fvtui.cluster.connect import open_cluster
    from fvtui.errors import Cancelled
    from test_verify_pool import task

    def executing() -> int:
        return sum(two_workers.client.run(lambda dask_worker: len(dask_worker.state.executing)).values())

    with open_cluster(two_workers.address) as cluster:
        assert cluster.describe().startswith(f"{two_workers.address}: 2 workers, 0 in flight")
        solver, cancel, seen = cluster.solver(), threading.Event(), []

        def stop_when_both_hang() -> None:
            wait_for(lambda: executing() == 2)
            time.sleep(1.0)  # the jobs have reached their solver children, which hang
            seen.append((cluster.describe(), [pid for w in two_workers.processes[1:] for pid in children(w.pid)]))
            cancel.set()

        stopper = threading.Thread(target=stop_when_both_hang)
        stopper.start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            solver.run_searches([task(i, fault="hang", timeout=60) for i in range(2)], cancel=cancel)
        stopper.join()
        status, hung = seen[0]
        assert time.monotonic() - started < 30 and "2 in flight" in status and len(hung) == 2
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in hung), 10)  # not their 77 s deadline
        wait_for(lambda: executing() == 0, 10)
        assert "0 in flight" in cluster.describe()
        told = []  # a Dask task streams nothing back while it runs: that it went out is all a live view sees
        results = solver.run_searches([task(i, k=2) for i in range(2)],  # the workers live on
                                      on_progress=lambda i, progress: told.append((i, progress)))
        assert [r.status for r in results] == ["sat", "sat"]
        assert [(i, progress.eps, progress.found, progress.queries) for i, progress in told] == \
            [(0, None, None, 0), (1, None, None, 0)]
        assert all(0 < progress.started <= time.monotonic() for _, progress in told)
    assert all(w.poll() is None for w in two_workers.processes)



def test_the_clusters_fvtui_starts_keep_dask_housekeeping_down():
    """local:N workers run without Dask's 10 ms profiler and with the slower monitors of connect.QUIET (their
    CPU time would be the solvers'); `benchmarks/cluster_scaling.py` measures what that saves."""
    from fvtui.cluster.connect import open_cluster

    with open_cluster("local:1") as cluster:
        callbacks = cluster.client.run(lambda dask_worker: {k: float(v.callback_time)
                                                            for k, v in dask_worker.periodic_callbacks.items()})
    (timers,) = callbacks.values()
    assert "profile" not in timers and timers["tick"] == 1000 and timers["memory_monitor"] == 1000
    assert timers["monitor"] == 2000


def test_no_search_waits_behind_a_long_one_while_a_worker_is_free(two_workers):
    """A worker gets its next search when it is free, as in the local pool: Dask never holds more tasks than
    the workers have threads (handed all at once, it would park some behind a long one, to be stolen back
    later), and the searches after a long one all end before it."""
    import threading

    from fvtui.cluster.connect import open_cluster
    from test_verify_pool import task

    ended: list[int] = []
    held: list[int] = []
    with open_cluster(two_workers.address) as cluster:
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.02):
                held.append(sum(len(keys) for keys in cluster.client.processing().values()))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            results = cluster.solver().run_searches([task(0, fault="hang", timeout=2)] +
                                                    [task(i, k=1) for i in range(1, 9)],
                                                    on_result=lambda i, _: ended.append(i))
        finally:
            done.set()
            watcher.join()
    assert max(held) == 2 and len(held) > 20
    assert ended[-1] == 0 and sorted(ended) == list(range(9))
    assert results[0].status == "timeout" and all(r.status == "sat" for r in results[1:])

async def test_the_app_runs_rounds_on_the_cluster_and_shows_it(tmp_path, two_workers, reference):
    """The app with --cluster: the round's searches run on the workers (same result as the local pool)
    and the status line names the cluster, its workers and the tasks in flight."""
    import dataclasses

    from test_app_support import wait_state

    from fvtui.app.app import make_app
    from fvtui.app.widgets.status import StatusLine
    from fvtui.cluster.connect import open_cluster

    store = SessionStore(tmp_path / "sessions")
    with open_cluster(two_workers.address) as cluster:
        app = make_app(store, new_config=dataclasses.replace(CONFIG, rounds=1), new_name="s", cluster=cluster)
        async with app.run_test(size=(200, 45)) as pilot:
            await wait_state(pilot, app.screen, "finished")
            status = str(app.screen.query_one(StatusLine).render())
            assert f"cluster {two_workers.address}: 2 workers, 0 in flight" in status, status
    assert fingerprint(tmp_path / "sessions", "s") == reference[:1]


def test_a_worker_sigkilled_mid_round_costs_nothing(tmp_path, two_workers, reference):
    dask_cluster = two_workers
    doomed, survivor = dask_cluster.processes[1], dask_cluster.processes[2]
    sessions = tmp_path / "sessions"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FVTUI_CLUSTER": dask_cluster.address}  # the variable, not the flag
    run = subprocess.Popen([sys.executable, "-m", "fvtui", "--sessions-dir", str(sessions), "new", *FLAGS,
                            "--name", "s", "--headless"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    journal = sessions / "s" / "journal" / "0001.jsonl"

    def verified() -> int:
        return len(journal.read_bytes().splitlines()) if journal.exists() else 0

    # Mid-round: a sample of round 1 verified, and the doomed worker given searches of that round.
    wait_for(lambda: verified() >= 1 and dask_cluster.busy(doomed), 120)
    solvers = children(doomed.pid)
    doomed.kill()
    doomed.wait()
    assert 1 <= verified() < 8 and solvers
    output = run.communicate(timeout=240)[0]
    assert run.returncode == 0, output
    assert fingerprint(sessions, "s") == reference
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and pid in tagged_processes(dask_cluster.tag)
                             for pid in solvers), 10)  # its solver children died with it
    assert survivor.poll() is None


def test_bench_on_local_2_resumes_after_a_kill(tmp_path):
    sessions = tmp_path / "sessions"
    group = sessions / "bench-demo"
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FVTUI_TEST_TAG": tag}
    args = [sys.executable, "-m", "fvtui", "--sessions-dir", str(sessions), "bench", "--dataset", "demo",
            "--methods", "random+none,margin+fgsm", "--seeds", "0-1", "--rounds", "2", "--pool-size", "100",
            "--epochs", "2000", "--init-size", "20", "--query-size", "5", "--hidden", "10", "--jobs", "2",
            "--cluster", "local:2"]  # 2000 epochs of one batch: a round takes 0.3 s here
    killed = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    frozen = []

    def frozen_mid_benchmark() -> bool:
        """Stop the sessions where they are, then look: seed 0's random session done, seed 1's saved, running
        and short of its last round. Looking first and stopping after once let seed 1's (a second's work) finish
        in between on a busy machine; the cluster's workers also take a moment to follow their parent. At one
        epoch a demo round took 15 ms, and the looks, 0.1 s apart, mostly missed seed 1's rounds."""
        frozen[:] = session_processes(tag)
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        running = any(b"random-none-s1" in command_line(pid) for pid in frozen)
        if (running and (group / "random-none-s0" / "rounds" / "0002").exists() and (group / "random-none-s1").exists()
                and not (group / "random-none-s1" / "rounds" / "0002").exists()):
            return True
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return False

    try:
        wait_for(frozen_mid_benchmark, 180)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed_output = killed.communicate()[0]
    with contextlib.suppress(AssertionError):  # gone with their parent, or not (then they end on SIGCONT)
        wait_for(lambda: set(tagged_processes(tag)) <= set(frozen), 30)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert wait_gone(tag, 90) == []  # the local cluster and its sessions stop with their parent
    done = [name for name in SessionStore(group).names() if (group / name / "rounds" / "0002").exists()]
    assert "random-none-s0" in done and "random-none-s1" not in done, killed_output
    before = {name: sorted((str(p), p.stat().st_mtime_ns) for p in (group / name).rglob("*")) for name in done}
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"4/4 sessions finished ({len(done)} of them before this run)" in again.stdout, again.stdout
    assert "random-none-s1 (Random, seed 1): started (resuming after round" in again.stdout, again.stdout
    for name in done:  # finished sessions skipped, untouched
        assert sorted((str(p), p.stat().st_mtime_ns) for p in (group / name).rglob("*")) == before[name]
    for name in ("random-none-s0", "margin-fgsm-s0", "random-none-s1", "margin-fgsm-s1"):
        with SessionStore(group).open(name, writable=False) as session:
            assert len(session.rounds) == 2
    assert wait_gone(tag, 30) == []


def refused(result: subprocess.CompletedProcess, sessions: Path, *expected: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("fvtui: error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not sessions.exists() or not any(sessions.iterdir())
    return lines[0]


def test_addresses_that_are_not_clusters_are_refused(tmp_path, capsys):
    sessions = tmp_path / "sessions"
    refused(cli(capsys, sessions, "new", *FLAGS, "--headless", "--cluster", "local:0"), sessions,
            "at least 1 worker")
    refused(cli(capsys, sessions, "new", *FLAGS, "--headless", "--cluster", "tcp:/host"), sessions,
            "tcp://HOST:PORT", "local:N")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    refused(cli(capsys, sessions, "new", *FLAGS, "--headless", "--cluster", f"tcp://127.0.0.1:{port}"), sessions,
            f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: nothing listens on port {port}")
    assert time.monotonic() - started < 10


def test_workers_of_another_install_are_refused(tmp_path, dask_cluster, capsys):
    sessions = tmp_path / "sessions"
    other = tmp_path / "other"  # another fvtui, and a maraboupy that does not import
    shutil.copytree(ROOT / "fvtui", other / "fvtui", ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "fvtui" / "__init__.py"
    init.write_text(init.read_text().replace("__version__ = ", "__version__ = '9.9.9'  # ", 1))
    broken = tmp_path / "broken"
    (broken / "maraboupy").mkdir(parents=True)
    (broken / "maraboupy" / "__init__.py").write_text("raise ImportError('libMarabouCore.so: cannot open')\n")
    old = dask_cluster.worker(pythonpath=str(other))
    line = refused(cli(capsys, sessions, "new", *FLAGS, "--headless", "--cluster", dask_cluster.address), sessions,
                   "has fvtui 9.9.9")
    old.kill()
    old.wait()
    wait_for(lambda: dask_cluster.workers() == 0)
    dask_cluster.worker(pythonpath=f"{broken}:{ROOT}")
    line = refused(cli(capsys, sessions, "new", *FLAGS, "--headless", "--cluster", dask_cluster.address), sessions,
                   "cannot import maraboupy (ImportError: libMarabouCore.so: cannot open)")
    assert "here: fvtui" in line


def test_a_sessions_folder_the_workers_cannot_see_is_refused(tmp_path, dask_cluster, capsys):
    """The worker runs in a mount namespace of its own, where a tmpfs hides the sessions folder."""
    sessions = tmp_path / "sessions"
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--mount", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare --mount needs root)")
    dask_cluster.worker(prefix=("unshare", "--mount", "--propagation", "private", "sh", "-c",
                                f"mount -t tmpfs none {hidden} && exec \"$0\" \"$@\""))
    result = cli(capsys, hidden / "sessions", "bench", "--dataset", "demo", "--methods", "random+none", "--seeds", "0",
                   "--rounds", "1", "--cluster", dask_cluster.address)
    refused(result, hidden / "sessions", "cannot see the sessions folder", "a shared filesystem is needed")
    assert sessions.exists() is False


def test_the_slurm_job_script_starts_a_worker_that_runs_fvtui(tmp_path, capsys):
    """The script `fvtui cluster slurm` would submit, run here by bash (no Slurm here: its #SBATCH lines are
    comments to bash), joins the scheduler and verifies as the local pool does."""
    from fvtui.cluster.connect import Cluster, parse_address
    from fvtui.cluster.slurm import slurm_cluster
    from fvtui.verify import SolverPool
    from test_verify_pool import task

    shown = cli(capsys, tmp_path, "cluster", "slurm", "--jobs", "2", "--queue", "debug", "--cores", "2", "--memory",
                  "4GB", "--walltime", "00:30:00", "--port", "0", "--script")
    assert shown.returncode == 0, shown.stderr
    for line in ("#SBATCH -p debug", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "#SBATCH -t 00:30:00",
                 f"export PYTHONPATH={ROOT}", f"{sys.executable} -m distributed.cli.dask_worker tcp://"):
        assert line in shown.stdout, shown.stdout
    assert "--nthreads 2" in shown.stdout
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in shown.stdout
    lacking = cli(capsys, tmp_path, "cluster", "slurm", "--jobs", "1", "--port", "0", "--script")
    assert lacking.returncode == 2 and "--cores, --memory" in lacking.stderr

    tag = uuid.uuid4().hex
    with slurm_cluster(1, cores=1, memory="2GB", walltime="00:10:00", host="127.0.0.1", port=0) as slurm:
        script = tmp_path / "job.sh"
        script.write_text(slurm.job_script())
        job = subprocess.Popen(["bash", str(script)], env={**os.environ, "FVTUI_TEST_TAG": tag},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            from distributed import Client

            client = Client(slurm.scheduler_address, timeout=10)
            client.wait_for_workers(1, timeout=60)
            assert not any(client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks).values())
            cluster = Cluster(parse_address(slurm.scheduler_address), client)
            cluster.check_workers()
            work = [task(i, k=2) for i in range(3)]
            got = cluster.solver().run_searches(work)
            with SolverPool(1) as pool:
                want = pool.run_searches(work)
            assert [[ce.x.tobytes() for ce in r.counterexamples] for r in got] == \
                [[ce.x.tobytes() for ce in r.counterexamples] for r in want]
            cluster.close()
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert wait_gone(tag, 10) == []


SLURM_CONF = """ClusterName=fvtui
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=fvtui-node NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=fvtui-node Default=YES MaxTime=INFINITE State=UP
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def single_node_slurm():
    """A Slurm of one node on this machine (Debian's slurmctld, slurmd and munge; root), its own config,
    ports and munge socket: SLURM_CONF points every Slurm command at it. Its folder is a short one under /tmp:
    slurmstepd's and munge's Unix sockets live there, and a socket's path may not pass 108 bytes (under
    pytest's tmp_path it did once pytest's run counter reached three digits, and no job could start)."""
    import tempfile

    needed = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel"]
    if os.geteuid() != 0 or not all(shutil.which(n) or Path(f"/usr/sbin/{n}").exists() for n in needed):
        pytest.skip("needs root and Debian's slurmctld, slurmd, slurm-client and munge packages")
    with tempfile.TemporaryDirectory(prefix="fvtui-slurm-", dir="/tmp", ignore_cleanup_errors=True) as short:
        yield from _single_node_slurm(Path(short))


def _single_node_slurm(folder: Path):
    import socket

    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = folder / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=socket.gethostname().split(".")[0], folder=folder, cpus=os.cpu_count(),
                                      ctld_port=free_port(), d_port=free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = []
    try:
        subprocess.run(["/usr/sbin/munged", "--force", f"--socket={folder}/munge.socket", f"--key-file={key}",
                        f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
                        f"--seed-file={folder}/munged.seed"], check=True, capture_output=True, timeout=30)
        daemons.append(folder / "munged.pid")
        for command in (["/usr/sbin/slurmctld"], ["/usr/sbin/slurmd", "-N", "fvtui-node"]):
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=30)
        daemons += [folder / "slurmctld.pid", folder / "slurmd.pid"]
        wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                                  text=True).stdout, 30)
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
        pids = []
        for pid_file in reversed(daemons):
            try:
                pids.append(int(pid_file.read_text()))
                os.kill(pids[-1], signal.SIGTERM)
            except (OSError, ValueError):
                pass
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 30)  # munged writes on its way out


def slurm_state(env: dict) -> str:
    """The jobs with their reasons and the end of slurmd's log: why a job that should run does not."""
    jobs = subprocess.run(["squeue", "-o", "%i %T %r"], env=env, capture_output=True, text=True).stdout
    return jobs + (Path(env["SLURM_CONF"]).parent / "slurmd.log").read_text()[-2000:]


@pytest.mark.slow
def test_a_session_on_slurm_jobs_equals_the_local_pool(tmp_path, single_node_slurm, reference, capsys):
    """End to end on a one-node Slurm: `fvtui cluster slurm` submits two worker jobs, a session runs on them
    (its first round equals the local pool's), and Ctrl-C cancels the jobs."""
    env = {**single_node_slurm, "PYTHONPATH": str(ROOT)}
    cluster = subprocess.Popen([sys.executable, "-m", "fvtui", "cluster", "slurm", "--jobs", "2", "--cores", "1",
                                "--memory", "1GB", "--walltime", "00:10:00", "--queue", "debug", "--host",
                                "127.0.0.1", "--port", "0"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # where sbatch puts slurm-N.out
    try:
        line = cluster.stdout.readline()
        assert "2 Slurm job(s) submitted" in line, line
        address = line.split()[1].rstrip(":")
        wait_for(lambda: len(subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], env=env, capture_output=True,
                                            text=True).stdout.split()) == 2, 60, lambda: slurm_state(env))
        sessions = tmp_path / "sessions"
        at = FLAGS.index("--rounds")
        flags = [*FLAGS[:at], "--rounds", "1", *FLAGS[at + 2:]]
        result = cli(capsys, sessions, "new", *flags, "--name", "s", "--headless", "--cluster", address)
        assert result.returncode == 0, result.stdout + result.stderr
        assert fingerprint(sessions, "s") == reference[:1]
    finally:
        cluster.send_signal(signal.SIGINT)
        cluster.communicate(timeout=60)
    wait_for(lambda: subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True).stdout == "", 30)
