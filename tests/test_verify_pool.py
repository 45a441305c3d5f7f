"""SolverPool: task order, deadlines and kills from outside, crashes, cancel, no orphans."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from solver_processes import solver_children

from fvtui.errors import Cancelled
from fvtui.verify import Network, SearchTask, SolverPool


def random_net(sizes, seed):
    rng = np.random.default_rng(seed)
    ws = tuple((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in zip(sizes, sizes[1:]))
    bs = tuple(rng.standard_normal(o).astype(np.float32) * 0.1 for o in sizes[1:-1]) + (None,)
    return Network(ws, bs)


NET = random_net((20, 8, 3), 0)


def task(seed, **kw):
    x = np.random.default_rng(seed).uniform(0, 1, 20).astype(np.float32)
    order = np.argsort(-NET.logits(x))
    settings = dict(k=3, eps_start=0.05, eps_step=0.1, timeout=10) | kw
    return SearchTask(NET, x, int(order[0]), int(order[1]), **settings)


def with_forks(pids):
    """The workers and their jobs' forks (worker._serve)."""
    forks = [int(c) for p in pids for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return list(pids) + forks


def timer_waits(worker):
    """A fork of `worker` whose orphan timer (worker._run_job) waits: its thread counts from its first wait,
    not from dump_traceback_later's call, so a stop between the two leaves the fork alive."""
    for fork in with_forks([worker])[1:]:
        with contextlib.suppress(OSError):  # the fork ended meanwhile
            for task in Path(f"/proc/{fork}/task").iterdir():
                stat = (task / "stat").read_text()
                if task.name != str(fork) and stat[stat.rindex(")") + 2] == "S":
                    return True
    return False


def alive(pid):
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except OSError:
        return False
    return "Z" not in state.split()[1]  # a zombie has exited


@pytest.fixture
def pool():
    p = SolverPool(2, grace=0.5)
    yield p
    p.close()


def test_results_in_task_order_whatever_the_completion_order(pool):
    # task 0 hangs until its deadline, so it ends last whatever the machine's load
    tasks = [task(0, fault="hang", timeout=1), task(1, k=1), task(2, k=1), task(3, k=3)]
    seen = []
    results = pool.run_searches(tasks, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3] and seen[-1] == 0
    assert results[0].status == "timeout"
    for t, r in list(zip(tasks, results))[1:]:
        assert r.status == "sat" and len(r.counterexamples) == t.k
        for ce in r.counterexamples:  # each belongs to its own task's box
            assert np.abs(ce.x - t.x).max() <= ce.eps + 1e-6
            assert NET.predict(ce.x) != t.target


def test_a_worker_gets_its_next_task_before_the_last_result_is_handled():
    """on_result saves and re-checks a sample in the parent; the worker is not left idle meanwhile."""
    busy = []
    with SolverPool(1, grace=0.5) as one:
        results = one.run_searches([task(i, k=1) for i in range(3)],
                                   on_result=lambda i, r: busy.append(one._workers[0].job))
    assert [r.status for r in results] == ["sat"] * 3
    assert busy == [1, 2, None]  # while result i was handled, task i + 1 was already running


def test_a_worker_left_idle_lends_its_core_to_a_job_still_running_and_the_pool_takes_it_back(pool):
    """At a round's end one long proof holds one core while the others wait (verify/cores.py): once the last
    job is handed out, the job still running can borrow the core of the worker left idle."""
    results = pool.run_searches([task(0, fault="cores", timeout=30), task(1, k=1), task(2, k=1)])
    assert [r.status for r in results[1:]] == ["sat", "sat"]
    assert results[0].status == "error" and results[0].message == "ValueError: borrowed 1"
    assert not pool._cores.borrow()  # taken back at the end of the call


def test_crash_is_an_error_and_the_run_goes_on(pool):
    before = pool.pids()
    results = pool.run_searches([task(0, fault="crash"), task(1), task(2), task(3)])
    assert results[0].status == "error" and "SIGABRT" in results[0].message
    assert [r.status for r in results[1:]] == ["sat"] * 3
    assert len(pool.pids()) == 2 and set(pool.pids()) != set(before)
    assert not any(alive(p) for p in set(before) - set(pool.pids()))


def test_hang_past_deadline_is_killed_and_replaced(pool):
    before = pool.pids()
    t0 = time.monotonic()
    results = pool.run_searches([task(0, fault="hang", timeout=1), task(1)])
    elapsed = time.monotonic() - t0
    assert results[0].status == "timeout" and "killed" in results[0].message
    assert results[0].queries[-1].status == "timeout"
    assert results[1].status == "sat"
    assert elapsed > 1.1  # not before its deadline (the kill itself is checked below, not timed)
    gone = set(before) - set(pool.pids())
    assert len(gone) == 1 and not alive(gone.pop())
    assert len(pool.pids()) == 2


def test_a_marabou_slice_deaf_to_its_timeout_ends_its_job_which_runs_again_without_that_slice(pool, monkeypatch):
    """Marabou's DeepSoI local search can ignore the timeout of a slice run in the job's own process (seen
    past 700 s of a 10 s slice; the pool's kill comes at 1.25 x the query's cap, 2,252 s at the default
    1,800 s). A CPU-time alarm ends the job's process instead (apart.solve_guarded, 2.6 s for these 0.5 s
    slices), and the pool runs the job again with that query's slice skipped, so that branch and bound
    decides it: here once (the 'deaf' fault burns a core in the first two runs, but the slice that ran out marks
    its level, whose later queries skip theirs), then the answer; with no retry allowed, the sample ends as a
    timeout, and says why."""
    from fvtui.verify import pool as pool_module

    plain = pool.run_searches([task(4, k=4, timeout=20)])[0]
    before = set(pool.pids())
    deaf = pool.run_searches([task(4, k=4, timeout=20, fault="deaf")])[0]
    # "sat": not the pool's kill at 1.25 x 20 s of a query, which ends the sample as a timeout (no wall-clock
    # bound here: the alarm counts CPU seconds, which a loaded machine stretches)
    assert plain.status == deaf.status == "sat" and len(deaf.counterexamples) == len(plain.counterexamples) == 4
    assert [(q.eps, q.status) for q in deaf.queries] == [(q.eps, q.status) for q in plain.queries]
    # the deaf slice's query and the rest of its level: a known input, then Marabou's point near it (search.NARROWS)
    sat = [q for q in deaf.queries if q.status == "sat"]
    assert len({q.eps for q in sat}) == 1 and all(q.narrowed for q in sat)
    assert not any(q.narrowed for q in plain.queries)
    assert len(before - set(pool.pids())) == 1  # one run ended by the alarm, its worker replaced
    monkeypatch.setattr(pool_module, "DEAF_RETRIES", 0)
    given_up = pool.run_searches([task(4, k=4, timeout=20, fault="deaf")])[0]
    assert given_up.status == "timeout" and given_up.message == "Marabou ignored its timeout in 1 query and was stopped"
    assert given_up.queries[-1].status == "timeout"


def test_worker_killed_while_idle_costs_no_task(pool):
    victim = pool.pids()[0]
    os.kill(victim, 9)
    deadline = time.monotonic() + 10
    while alive(victim) and time.monotonic() < deadline:  # wait for the death itself, not a guess
        time.sleep(0.01)
    results = pool.run_searches([task(i, k=1) for i in range(4)])
    assert [r.status for r in results] == ["sat"] * 4
    assert len(pool.pids()) == 2


def test_out_of_memory_is_an_error(pool):
    results = pool.run_searches([task(0, fault="oom"), task(1)])
    assert results[0].status == "error" and "memory" in results[0].message.lower()
    assert results[1].status == "sat"


def test_counterexamples_streamed_before_a_kill_are_kept(pool):
    seed = next(iter(pool.run_searches([task(0, k=1)])[0].counterexamples)).x
    result = pool.run_searches([task(0, fault="hang", timeout=1, seeds=[seed])])[0]
    assert result.status == "timeout"
    assert [ce.source for ce in result.counterexamples] == ["seed"]


def test_a_closed_terminal_is_the_parents_to_handle_not_its_solvers(pool):
    """A terminal's hang-up reaches the whole process group. A solver dead of it ended its search as an
    'error' that the round's journal kept, and a resumed round reused."""
    started = set()

    def on_progress(i, progress):
        started.add(i)
        if len(started) == 2:  # both workers inside a job: hang up on every process of the pool
            tree = with_forks(pool.pids())
            for pid in tree:
                os.kill(pid, signal.SIGHUP)
            time.sleep(0.5)
            survivors.extend(alive(pid) for pid in tree)

    survivors = []
    results = pool.run_searches([task(0, fault="hang", timeout=2), task(2, fault="hang", timeout=2)],
                                on_progress=on_progress)
    assert len(survivors) >= 4 and all(survivors)  # two workers, each with a job's fork
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert all("killed after" in r.message for r in results)


def test_a_job_whose_solver_is_killed_from_outside_runs_again_once(pool):
    """SIGTERM from someone else (a service manager stopping the group) is no answer of the solver's: the
    job starts over on a fresh worker; a second such death is an error, so a kill loop cannot hold a run."""
    starts = []

    def kill_its_worker(i, progress):
        starts.append(i)
        worker = next(w for w in pool._workers if w.job == i)
        os.kill(worker.proc.pid, signal.SIGTERM)

    results = pool.run_searches([task(0, fault="hang", timeout=30), task(1)], on_progress=lambda i, p:
                                kill_its_worker(i, p) if i == 0 else None)
    assert starts == [0, 0]
    assert results[0].status == "error" and "SIGTERM" in results[0].message
    assert results[1].status == "sat" and len(pool.pids()) == 2


def test_progress_follows_each_query_a_search_starts(pool):
    """on_progress tells, at each query's start, the radius it asks and the points found before it (seeds
    included), so a live view can show where a long search is."""
    seed = pool.run_searches([task(4, k=1)])[0].counterexamples[0].x
    tasks = [task(3, k=6, seeds=[seed]), task(4, k=4)]
    seen: list = [[], []]
    results = pool.run_searches(tasks, on_progress=lambda i, p: seen[i].append(p))
    for progress, result in zip(seen, results, strict=True):
        queries = result.queries
        assert len(queries) >= 3 and [p.eps for p in progress] == [q.eps for q in queries]
        assert [p.queries for p in progress] == list(range(1, len(queries) + 1))
        points = [ce for ce in result.counterexamples if ce.source != "seed"]
        seeds = len(result.counterexamples) - len(points)
        found_before = [seeds + sum(q.status == "sat" for q in queries[:n]) for n in range(len(queries))]
        assert [p.found for p in progress] == found_before
    assert seen[0][0].found == 1  # the seed counts from the first query on


def test_cancel_raises_and_leaves_no_solver_process():
    with SolverPool(2, grace=0.5) as pool:
        cancel = threading.Event()
        threading.Timer(0.8, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            pool.run_searches([task(i, fault="hang", timeout=60) for i in range(3)], cancel=cancel)
        assert time.monotonic() - t0 < 8  # not the hang's 60 s (0.8 s + grace, later on a busy machine)
        assert solver_children() == []
        assert pool.run_searches([task(1, k=1)])[0].status == "sat"  # still usable
    assert solver_children() == []


def test_close_leaves_no_children_and_verify_radius_run_in_workers():
    with SolverPool(2) as pool:
        assert len(solver_children()) == 2
        x = np.random.default_rng(0).uniform(0, 1, 20).astype(np.float32)
        assert pool.verify(NET, x, 1e-4, timeout=10).status == "robust"
        radius = pool.certified_radius(NET, x, precision=1e-2, timeout=10)
        assert radius.status == "exact" and radius.upper - radius.lower <= 1e-2
        v = pool.verify(NET, x, radius.upper, timeout=10)
        assert v.status == "counterexample" and NET.predict(v.x) != NET.predict(x)
    assert solver_children() == []


def test_close_from_another_thread_stops_a_run():
    pool = SolverPool(2, grace=0.5)
    outcome = []

    def run():
        try:
            pool.run_searches([task(0, fault="hang", timeout=60)])
        except Cancelled:
            outcome.append("cancelled")

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(0.5)
    pool.close()
    runner.join(5)
    assert outcome == ["cancelled"] and solver_children() == []


def test_workers_exit_when_the_parent_dies():
    script = (
        "import time; from fvtui.verify import SolverPool\n"
        "pool = SolverPool(2); print(*pool.pids(), flush=True); time.sleep(60)"
    )
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=root)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    end = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


class JobPipe:
    """The pool's end of a job's connection, for worker._run_job in this process: hands out one job, keeps
    every message sent back."""

    def __init__(self, job):
        self.job, self.sent = job, []

    def recv(self):
        return 0, self.job.kind, self.job.net, self.job.args, None

    def send(self, message):
        self.sent.append(message)


def test_a_worker_sets_its_orphan_timer_once_per_job_not_per_query(monkeypatch):
    """faulthandler's timer (the backstop that ends a worker whose query outlives a dead parent) costs a
    thread handshake each time it is set or cleared, as much as a region-program query."""
    import faulthandler

    from fvtui.verify import worker
    from fvtui.verify.pool import search_job

    calls = []
    monkeypatch.setattr(faulthandler, "dump_traceback_later", lambda *a, **k: calls.append("set"))
    monkeypatch.setattr(faulthandler, "cancel_dump_traceback_later", lambda: calls.append("clear"))
    job = search_job(task(0, k=6, timeout=10))

    pipe = JobPipe(job)
    worker._run_job(pipe, 0.5, lambda: 0)  # what a job's fork runs
    starts = [m for m in pipe.sent if m[1] and m[1][-1][0] == "start"]
    assert pipe.sent[-1][2][0] == "done" and len(starts) >= 6  # every query of the job said it started
    assert calls == ["set"]  # the fork's exit clears it


def test_a_job_sends_one_message_a_query_and_the_pool_sees_every_event_in_order(monkeypatch):
    """A query's end and its counterexample ride with the next start (or the result): one wake-up of the
    parent a query, and the same events, in the same order, as a search reporting in the process."""
    import faulthandler

    from fvtui.verify import worker
    from fvtui.verify.pool import search_job
    from fvtui.verify.search import search_counterexamples

    monkeypatch.setattr(faulthandler, "dump_traceback_later", lambda *a, **k: None)  # not in pytest's process
    job = search_job(task(3, k=6, timeout=10))
    in_process = []
    search_counterexamples(NET, **job.args, report=lambda e, p: in_process.append((e, p)))

    pipe = JobPipe(job)
    worker._run_job(pipe, 0.5, lambda: 0)
    streamed = [event for _, events, _ in pipe.sent for event in events]
    assert [e for e, _ in streamed] == [e for e, _ in in_process]
    points = [[p.x for e, p in events if e == "counterexample"] for events in (streamed, in_process)]
    assert len(points[0]) >= 3 and all(np.array_equal(a, b) for a, b in zip(*points, strict=True))
    starts = sum(e == "start" for e, _ in streamed)
    assert len(pipe.sent) == starts + 1  # a message per query, and the result
    assert all(events[-1][0] == "start" for _, events, outcome in pipe.sent[:-1])


def test_a_stop_of_the_whole_process_tree_costs_no_query(monkeypatch):
    """Ctrl-Z (or SIGSTOP) stops the parent and its workers alike, and the wall-clock limits ran on
    meanwhile: the pool moves its deadlines by the stop, and a job whose worker the stop ended (its
    orphan timer, 1.25 * 2 + 0.5 + 10 s after a query's start) starts over. The results are those of
    a run never stopped. (A query the stop timed out inside Marabou: test_verify_search.)"""
    from fvtui.verify import pool as pool_module

    net = random_net((400, 24, 5), 1)  # queries of 0.1-0.2 s: the stop finds one in flight
    xs = [np.random.default_rng(s).uniform(0, 1, 400).astype(np.float32) for s in range(2)]
    tasks = [SearchTask(net, x, *map(int, np.argsort(-net.logits(x))[:2]), k=10, eps_start=0.05, eps_step=0.05,
                        timeout=2) for x in xs]
    with SolverPool(2, grace=0.5) as plain:
        expected = plain.run_searches(tasks)
    real_wait, stops = pool_module.wait, []

    def wait_then_stop(conns, timeout):
        ready = real_wait(conns, timeout)
        # once, with a query in flight (started, nothing sent since, its timer counting): stop
        # the workers, and this process (asleep), and read nothing yet (what they sent stays for the
        # next wait), as if the stop came before it was sent
        if not stops and any(w.deadline is not None and w.conn not in ready and timer_waits(w.proc.pid)
                             for w in stopped._workers):
            stops.append(stopped.pids())
            tree = with_forks(stops[0])
            for pid in tree:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(14)  # past every deadline and orphan timer
            for pid in tree:  # a worker whose fork's timer fired ends its waiting fork before it is continued
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            return []
        return ready

    monkeypatch.setattr(pool_module, "wait", wait_then_stop)
    with SolverPool(2, grace=0.5) as stopped:
        results = stopped.run_searches(tasks)
        assert stops and set(stops[0]) - set(stopped.pids())  # stopped, and a worker ended by it
    for got, want in zip(results, expected):
        assert got.status == want.status == "sat"
        assert [q.status for q in got.queries] == [q.status for q in want.queries]
        assert [ce.x.tobytes() for ce in got.counterexamples] == [ce.x.tobytes() for ce in want.counterexamples]


def test_a_samples_points_do_not_depend_on_what_its_worker_solved_before():
    """Marabou's points depend on its process's history (worker.py), so each job runs in a fork of a
    worker that has solved nothing. A real case: a reference session's MNIST 784-32-10 network after
    round 4 and its sample 14951, whose points changed from the 2nd to the 6th on after other samples'
    searches in the same process, depending on which ones."""
    data = np.load(Path(__file__).parent / "fixtures" / "mnist_history.npz")
    net = Network((data["w1"], data["w2"]), (data["b1"], None))
    # Marabou alone on every query: on a loaded machine a 1 s slice can run out in one run and not the other
    tasks = [SearchTask(net, x, *map(int, np.argsort(-net.logits(x))[:2]), k=10, eps_start=0.06, eps_step=0.05,
                        timeout=60, slice="off") for x in data["x"]]
    with SolverPool(1) as one:
        alone = one.run_searches(tasks[:1])[0]
        after = one.run_searches(tasks[1:] + tasks[:1])[-1]
    assert alone.status == after.status == "sat" and len(alone.counterexamples) == 10
    assert [ce.x.tobytes() for ce in after.counterexamples] == [ce.x.tobytes() for ce in alone.counterexamples]


def test_workers_run_this_fvtui_whatever_the_working_directory_holds(tmp_path, monkeypatch):
    """`python -c` puts the working directory first on sys.path: run from a folder holding another fvtui
    (a checkout of another version), the workers once ran its code."""
    (tmp_path / "fvtui").mkdir()
    (tmp_path / "fvtui" / "__init__.py").write_text("raise ImportError('the other fvtui')\n")
    monkeypatch.chdir(tmp_path)
    with SolverPool(1, grace=0.5) as one:
        assert one.run_searches([task(1, k=1)])[0].status == "sat"
