"""Sessions on disk and the engine's replay guarantee."""

import errno
import json
import os
import threading

import numpy as np
import pytest

from fvtui.config import RoundSettings, SessionConfig
from fvtui.engine import Engine
from fvtui.errors import Cancelled, UserError
from fvtui.events import PhaseStarted, RoundFinished, RoundStarted, SampleSearching, SampleVerified
from fvtui.store import CorruptSession, SessionLocked, SessionStore

SMALL = dict(rounds=3, init_size=20, hidden=(16,), epochs=2)


def small_config(strategy="margin", augment="fgsm", **kw) -> SessionConfig:
    settings = RoundSettings(strategy=strategy, augment=augment, query_size=10, pool_size=300, advs_per_sample=3)
    return SessionConfig(dataset="demo", settings=settings, **{**SMALL, **kw})


def run_rounds(store, name, demo, n=None, config=None):
    with store.open(name) if store.exists(name) else store.create(name, config or small_config()) as session:
        with Engine(session, demo) as engine:
            for _ in range(n if n is not None else session.config.rounds - len(session.rounds)):
                engine.run_round()
        return [r.test_accuracy for r in session.rounds], [session.queried_indices(r.round) for r in session.rounds]


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, demo):
    store = SessionStore(tmp_path)
    full_acc, full_queried = run_rounds(store, "full", demo)
    run_rounds(store, "split", demo, n=1)
    run_rounds(store, "split", demo, n=1)
    split_acc, split_queried = run_rounds(store, "split", demo)
    assert split_acc == full_acc
    assert all(np.array_equal(a, b) for a, b in zip(full_queried, split_queried))
    assert len(full_acc) == 3


def test_round_record_round_trips(tmp_path, demo):
    store = SessionStore(tmp_path)
    events = []
    with store.create("s", small_config()) as session:
        with Engine(session, demo, on_event=events.append) as engine:
            record = engine.run_round()
            model = engine.model
    with store.open("s", writable=False) as again:
        loaded = again.rounds[0]
        assert loaded == record
        synthetic = again.synthetic(1)
        assert len(synthetic) == record.new_synthetic == record.synthetic > 0
        assert set(synthetic.source) <= {q.index for q in record.queried}
        state = again.model_state(1)
        assert all(np.array_equal(state[k], v.numpy()) for k, v in model.state_dict().items())
        assert record.labeled == 20 + 10
        assert [q.label for q in record.queried] == demo.train_y[[q.index for q in record.queried]].tolist()
        assert set(record.seconds) == {"select", "label", "augment", "train", "evaluate"}
    kinds = [type(e) for e in events]
    assert kinds[0] is PhaseStarted and RoundStarted in kinds and kinds[-1] is RoundFinished


def test_each_sample_keeps_its_searchs_wall_time_and_each_querys_phases(tmp_path, demo):
    store = SessionStore(tmp_path)
    settings = RoundSettings(strategy="random", augment="fv", query_size=4, pool_size=300, advs_per_sample=2)
    with store.create("s", SessionConfig(dataset="demo", settings=settings, **SMALL)) as session:
        with Engine(session, demo, workers=1) as engine:
            record = engine.run_round()
    with store.open("s", writable=False) as again:
        samples = again.rounds[0].verification
    assert len(samples) == 4 and all(v.queries > 0 for v in samples)
    # the whole search holds its queries, and one worker runs the searches one after another
    assert all(v.search_seconds >= v.seconds > 0 for v in samples)
    assert sum(v.search_seconds for v in samples) <= record.seconds["augment"]
    # each query Marabou was asked keeps what held it (to the ms), through the worker pipe and the store
    from fvtui.verify.phases import PHASES

    asked = [(seconds, phases) for v in samples for seconds, phases in zip(v.query_seconds, v.query_phases) if seconds]
    assert all(len(v.query_phases) == v.queries for v in samples) and asked
    assert any({"build", "marabou"} <= set(phases) for _, phases in asked)
    for seconds, phases in asked:
        assert set(phases) - {"cpu"} <= set(PHASES) and phases["cpu"] > 0
        assert sum(t for name, t in phases.items() if name != "cpu") <= seconds + 0.004


def test_a_running_search_is_told_query_by_query_before_its_result(tmp_path, demo):
    """The front ends see where each search is (SampleSearching at each query's start: eps, points so far),
    then its result: the app's table shows it instead of 'pending'."""
    settings = RoundSettings(strategy="random", augment="fv", query_size=4, pool_size=300, advs_per_sample=2)
    events = []
    with SessionStore(tmp_path).create("s", SessionConfig(dataset="demo", settings=settings, **SMALL)) as session:
        with Engine(session, demo, workers=1, on_event=events.append) as engine:
            record = engine.run_round()
    for position, sample in enumerate(record.verification):
        told = [e for e in events if isinstance(e, (SampleSearching, SampleVerified)) and e.position == position]
        assert [type(e) for e in told] == [SampleSearching] * sample.queries + [SampleVerified]
        assert all(e.round == 1 for e in told) and told[-1].record == sample
        assert [e.queries for e in told[:-1]] == list(range(1, sample.queries + 1))
        assert told[-2].eps == sample.eps and told[-2].found <= sample.found
        assert [e.found for e in told[:-1]] == sorted(e.found for e in told[:-1])


def test_searches_go_to_the_solver_longest_first_and_give_what_task_order_gives(tmp_path, demo, monkeypatch):
    from fvtui.attacks import fgsm_min_eps
    from fvtui.augment import fv

    handed, radii = [], []
    real = fv.longest_first

    def spy(ctx, rows):
        order = real(ctx, rows)
        handed.append(order)
        radii.append(fgsm_min_eps(ctx.model, ctx.x).eps.numpy())
        return order

    def run(name):
        settings = RoundSettings(strategy="random", augment="fv", query_size=6, pool_size=300, advs_per_sample=2)
        with SessionStore(tmp_path).create(name, SessionConfig(dataset="demo", settings=settings, **SMALL)) as s:
            with Engine(s, demo, workers=1) as engine:
                record = engine.run_round()
                synthetic = s.synthetic(1)
        return [(v.source, v.status, v.eps, v.found, v.queries) for v in record.verification], synthetic

    monkeypatch.setattr(fv, "longest_first", spy)
    ordered = run("longest-first")
    assert sorted(handed[0]) == list(range(6)) and handed[0] != list(range(6))
    assert list(radii[0][handed[0]]) == sorted(radii[0], reverse=True)
    monkeypatch.setattr(fv, "longest_first", lambda ctx, rows: rows)
    in_task_order = run("task-order")
    assert ordered[0] == in_task_order[0]
    assert np.array_equal(ordered[1].x, in_task_order[1].x) and np.array_equal(ordered[1].source,
                                                                                in_task_order[1].source)


def test_settings_change_between_rounds_is_recorded_and_honoured(tmp_path, demo):
    store = SessionStore(tmp_path)
    run_rounds(store, "s", demo, n=1)
    with store.open("s") as session:
        session.update(settings=session.settings.replace(strategy="random", advs_per_sample=2), rounds=4)
    with store.open("s") as session:
        assert session.config.rounds == 4 and session.settings.strategy == "random"
        with Engine(session, demo) as engine:
            engine.run()
        assert [r.settings.strategy for r in session.rounds] == ["margin", "random", "random", "random"]
        assert session.rounds[1].new_synthetic <= 10 * 2


def test_second_writer_is_refused_and_lock_dies_with_its_owner(tmp_path, demo):
    store = SessionStore(tmp_path)
    session = store.create("s", small_config())
    with pytest.raises(SessionLocked, match="being run by pid"):
        store.open("s")
    store.open("s", writable=False).close()  # read-only viewing still works
    session.close()
    store.open("s").close()  # released


def test_a_session_on_a_read_only_disk_is_refused_for_writing_in_one_message_and_still_reads(tmp_path, monkeypatch):
    store = SessionStore(tmp_path)
    store.create("s", small_config()).close()
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    for write in (lambda: store.open("s"), lambda: store.delete("s")):  # before: OSError's traceback
        with pytest.raises(UserError, match="cannot write to session 's' in .*: Read-only file system"):
            write()
    store.open("s", writable=False).close()


def test_two_news_of_one_name_at_once_leave_one_session_and_no_leftovers(tmp_path, monkeypatch):
    store, rename = SessionStore(tmp_path), os.rename

    def other_process_first(src, dst):  # the other `new` renames its folder into place just before this one
        monkeypatch.setattr(os, "rename", rename)
        SessionStore(tmp_path).create("race", small_config()).close()
        rename(src, dst)

    monkeypatch.setattr(os, "rename", other_process_first)
    with pytest.raises(UserError, match="session 'race' already exists"):  # was "Directory not empty"
        store.create("race", small_config())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race"]  # no .tmp-race-PID left behind


def test_a_session_too_damaged_to_open_can_still_be_deleted(tmp_path):
    store = SessionStore(tmp_path)
    store.create("s", small_config()).close()
    (tmp_path / "s" / "session.json").write_text("{garbage")
    with pytest.raises(CorruptSession):
        store.open("s")
    store.delete("s")
    assert not store.exists("s") and list(tmp_path.iterdir()) == []


def test_cancel_discards_the_round_in_progress(tmp_path, demo):
    store = SessionStore(tmp_path)
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, PhaseStarted) and event.phase == "train" and event.round == 2:
            cancel.set()

    with store.create("s", small_config()) as session:
        with Engine(session, demo, on_event=on_event, cancel=cancel) as engine:
            with pytest.raises(Cancelled):
                engine.run()
        assert len(session.rounds) == 1
    assert sorted(p.name for p in (tmp_path / "s" / "rounds").iterdir()) == ["0001"]


def test_corrupt_files_are_reported_with_the_file(tmp_path, demo):
    store = SessionStore(tmp_path)
    run_rounds(store, "s", demo, n=2)
    model = tmp_path / "s" / "rounds" / "0002" / "model.npz"
    model.write_bytes(model.read_bytes()[:100])
    with store.open("s", writable=False) as session:
        with pytest.raises(CorruptSession, match="0002/model.npz: checksum mismatch"):
            session.model_state(2)
    meta = tmp_path / "s" / "session.json"
    data = json.loads(meta.read_text())
    data["config"]["seed"] = 7
    meta.write_text(json.dumps(data))
    with pytest.raises(CorruptSession, match="session.json: checksum mismatch"):
        store.open("s")
    meta.write_text(meta.read_text()[:50])
    with pytest.raises(CorruptSession, match="not valid JSON"):
        store.open("s")


def test_newer_format_is_refused(tmp_path, demo):
    from fvtui import store as store_module

    store = SessionStore(tmp_path)
    store.create("s", small_config()).close()
    path = tmp_path / "s" / "session.json"
    data = json.loads(path.read_text())
    data.pop("sha256")
    data["format"] = 99
    store_module._write_json(path, data)
    with pytest.raises(UserError, match="newer fvtui"):
        store.open("s")


@pytest.mark.parametrize("change, message", [
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (dict(rounds=0), "rounds must be between"),
    (dict(hidden=()), "hidden layers need at least one width"),
    (dict(settings=RoundSettings(strategy="nope")), "choose one of: .*badge"),
    (dict(settings=RoundSettings(augment="nope")), "choose one of: .*fgsm"),
    (dict(settings=RoundSettings(eps_start=0)), r"eps start must be in \(0.0, 1.0\]"),
    (dict(settings=RoundSettings(eps_step=1.5)), "eps step"),
    (dict(settings=RoundSettings(query_size=60, pool_size=50)), "larger than the pool"),
    (dict(settings=RoundSettings(advs_per_sample=0)), "counterexamples per sample"),
])
def test_bad_configs_are_refused_with_a_reason(change, message):
    with pytest.raises(UserError, match=message):
        SessionConfig(**{"dataset": "demo", **change}).validate()


def test_torch_computes_with_the_same_cpu_kernels_on_every_x86_machine():
    """torch's AVX-512 kernels round differently from its AVX2 ones: a session made on one machine drifted
    from round 1 on another. fvtui pins AVX2 where the CPU has it, and a setting of one's own wins."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if " avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("a CPU without AVX2 (or not Linux): nothing to pin")
    code = "import fvtui, torch; torch.ones(2) @ torch.ones(2); print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}

    def kernels(**extra):
        return subprocess.run([sys.executable, "-c", code], env=env | extra, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert kernels() == "AVX2"
    assert kernels(ATEN_CPU_CAPABILITY="default") == "DEFAULT"


def test_a_rounds_marabou_slice_reaches_its_searches_and_its_record(tmp_path, demo):
    """The setting a round ran with goes with each of its fv searches (SolverPool.run_searches' tasks)."""
    from test_structure import FakeSolver

    slices = []

    class Recording(FakeSolver):
        def run_searches(self, tasks, on_result=None, cancel=None, on_progress=None):
            slices.extend(t.slice for t in tasks)
            return super().run_searches(tasks, on_result, cancel, on_progress)

    config = small_config(augment="fv", rounds=2)
    with SessionStore(tmp_path).create("s", config) as session, Engine(session, demo, solver_factory=Recording) as engine:
        engine.run_round()
        session.update(settings=session.settings.replace(marabou_slice="off"))
        engine.run_round()
        assert [r.settings.marabou_slice for r in session.rounds] == ["auto", "off"]
    assert slices == ["auto"] * 10 + ["off"] * 10
