"""Nothing lost: SIGKILL at random moments, hang-ups, and second writers."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from fvtui.config import RoundSettings, SessionConfig
from fvtui.data import load_dataset
from fvtui.engine import Engine
from fvtui.store import SessionStore

ROUNDS = 4
# Marabou alone on every query (--marabou-slice off): on a loaded machine a 1 s slice can run out where it
# did not in the reference run, and hand the query to branch and bound, whose point is another
FLAGS = ["--dataset", "demo", "--rounds", str(ROUNDS), "--init-size", "20", "--query-size", "5", "--pool-size",
         "200", "--epochs", "3", "--hidden", "12", "--strategy", "fvaal", "--augment", "fv",
         "--advs-per-sample", "3", "--workers", "2", "--marabou-slice", "off"]
CONFIG = SessionConfig(dataset="demo", rounds=ROUNDS, init_size=20, hidden=(12,), epochs=3,
                       settings=RoundSettings(strategy="fvaal", augment="fv", query_size=5, pool_size=200,
                                              advs_per_sample=3, marabou_slice="off"))


def fingerprint(root: Path, name: str) -> list:
    """What a session decided and measured, round by round (not timings)."""
    with SessionStore(root).open(name, writable=False) as session:
        rounds = []
        for r in session.rounds:
            synthetic = session.synthetic(r.round)
            rounds.append((r.round, [q.index for q in r.queried], r.test_accuracy, r.synthetic,
                           synthetic.x.round(6).tobytes(), [(v.status, v.found) for v in r.verification]))
            session.model_state(r.round)  # every file readable and its checksum right
        return rounds


def tagged_processes(tag: str) -> list[int]:
    """Live processes (solver workers included) whose environment carries the test's tag."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"FVTUI_TEST_TAG={tag}".encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            pass
    return pids


def start(root: Path, name: str, tag: str, resume: bool, script: str | None = None, stdout=subprocess.DEVNULL,
          env: dict[str, str] | None = None, workers: int | None = None) -> subprocess.Popen:
    args = (["resume", name, "--headless"] if resume else ["new", "--headless", "--name", name, *FLAGS])
    args += ["--workers", str(workers)] if workers else []
    command = [sys.executable, "-m", "fvtui", "--sessions-dir", str(root), *args]
    if script:
        command = [sys.executable, "-c", script, *command[3:]]
    return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE,
                            env={**os.environ, "FVTUI_TEST_TAG": tag, **(env or {})})


def wait_gone(tag: str, timeout: float = 5.0) -> list[int]:
    """The tagged processes still alive after `timeout`. A running solver worker dies with its parent (the
    kernel's parent-death SIGKILL); one the kill caught still starting up exits when its Python reaches
    die_with_parent, which on a loaded machine took over 1 s: so 5 s, still far short of a leaked one's life."""
    deadline = time.monotonic() + timeout
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    with SessionStore(root).create("ref", CONFIG) as session, Engine(session, load_dataset("demo")) as engine:
        engine.run()
    return fingerprint(root, "ref")


# Crash in the middle of saving a round: the round's files are written, the rename never happens.
KILL_MID_SAVE = """
import os, signal, sys
import fvtui.store as store
real = store._commit_folder
def crash(final, tmp, files, meta_name, meta):
    if final.parent.name == "rounds":
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    real(final, tmp, files, meta_name, meta)
store._commit_folder = crash
from fvtui.cli import main
sys.exit(main(sys.argv[1:]))
"""


# Crash in the middle of a journal write: half of the Nth sample's line is on disk, then SIGKILL.
KILL_MID_JOURNAL = """
import json, os, signal, sys
import fvtui.store as store
real = store.RoundJournal.append
seen = [0]
def torn(self, item, data):
    seen[0] += 1
    if seen[0] == int(os.environ["FVTUI_KILL_AT_APPEND"]):
        line = json.dumps({"key": self.key, "item": item, "data": data}).encode()
        self.path.parent.mkdir(exist_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(line[: len(line) // 2])
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, item, data)
store.RoundJournal.append = torn
from fvtui.cli import main
sys.exit(main(sys.argv[1:]))
"""
KILLS = 30


def shown(root: Path, name: str, capsys) -> dict:
    """`fvtui show --json`, as a script would read the session after a kill."""
    from fvtui.cli import main

    capsys.readouterr()
    assert main(["--sessions-dir", str(root), "show", name, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def under_way(log: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the run prints its first line (imports done, session open) or ends: a kill's moment is then
    drawn from the run's own work. Drawn from its start, on a loaded machine every kill fell in the
    imports, before the session existed, and a chain made no progress."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not log.read_bytes().strip() and time.monotonic() < deadline:
        time.sleep(0.02)


def kill_chain(root: Path, seed: int, kills_wanted: int, reference: list, show) -> tuple[int, int, int]:
    """SIGKILL sessions under `root` at random moments, resuming each, until `kills_wanted` kills have
    landed; checks after every kill what test_sigkill_at_random_moments_loses_no_finished_work says.
    Returns how many kills fell inside a round's commit, inside a journal write, and how many resumes
    reused saved samples."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex
    kills, sessions, name, resume, mid_save, mid_journal, reused = 0, 0, "k0", False, 0, 0, 0
    saved = 0
    while kills < kills_wanted:
        script = KILL_MID_SAVE if kills % 5 == 3 else KILL_MID_JOURNAL if kills % 5 == 1 else None
        log = root / f"run-{kills}-{sessions}.log"
        with open(log, "w") as out:
            proc = start(root, name, tag, resume, script, stdout=out, workers=1,
                         env={"FVTUI_KILL_AT_APPEND": str(rng.randint(1, 5)), "PYTHONUNBUFFERED": "1"})
            before = fingerprint(root, name) if resume else []
            try:
                if not script:
                    under_way(log, proc)
                proc.wait(timeout=(None if script else rng.uniform(0.0, 2.0)))
                # a targeted resume with nothing left to save or verify ends by itself
                finished_by_itself = not script or proc.returncode == 0
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                finished_by_itself = False
        if script and not finished_by_itself:
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
            mid_save += script is KILL_MID_SAVE
            mid_journal += script is KILL_MID_JOURNAL
        assert wait_gone(tag) == [], "a solver process outlived the killed run by 5 s"
        if not (root / name / "session.json").exists():
            resume = False  # killed before the session was created: start again
            continue
        now = fingerprint(root, name)
        assert now[:len(before)] == before  # every round finished before the kill is intact
        assert now == reference[:len(now)]
        text = log.read_text()
        if saved and (len(now) > len(before) or "before the interruption" in text):
            # the samples saved before the last kill were reused, none solved again
            assert f"{saved} samples verified before the interruption are reused" in text
            reused += 1
        state = show(root, name)
        assert len(state["rounds"]) == len(now)
        saved = state["in_progress"]["saved_samples"]
        if finished_by_itself:
            assert proc.returncode == 0, proc.stderr.read().decode()
            assert now == reference
            sessions += 1
            name, resume, saved = f"k{sessions}", False, 0
        else:
            kills += 1
            resume = True
    if resume:  # finish the last one undisturbed
        start(root, name, tag, True, workers=1).wait(timeout=120)
        assert fingerprint(root, name) == reference
    return mid_save, mid_journal, reused


def test_sigkill_at_random_moments_loses_no_finished_work(tmp_path, reference, capsys):
    """30 SIGKILLs, some inside a round's commit and some inside a journal write, each followed by a
    resume: every finished round and every saved sample survives, a resumed round reuses exactly the
    samples saved before the kill, no solver outlives the kill by 5 s, and the end equals a run never
    interrupted. Two chains of 15 run side by side (one solver process each), to halve the wall time."""
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def show(root: Path, name: str) -> dict:
        with lock:  # capsys is one for the test
            return shown(root, name, capsys)

    roots = [tmp_path / f"chain{c}" for c in range(2)]
    for root in roots:
        root.mkdir()
    with ThreadPoolExecutor(2) as chains:
        counts = list(chains.map(lambda c: kill_chain(roots[c], 1234 + c, KILLS // 2, reference, show), range(2)))
    mid_save, mid_journal, reused = (sum(column) for column in zip(*counts))
    assert mid_save >= 4 and mid_journal >= 4 and reused >= 5


def test_hangup_ends_a_headless_run_like_a_quit(tmp_path):
    tag = uuid.uuid4().hex
    proc = start(tmp_path, "h", tag, False)
    deadline = time.monotonic() + 60
    while not (tmp_path / "h" / "rounds" / "0001").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) in (0, 130)
    assert wait_gone(tag) == []
    rounds = fingerprint(tmp_path, "h")
    assert len(rounds) >= 1
    with SessionStore(tmp_path).open("h"):  # the lock went with the process
        pass


def test_closing_the_terminal_under_the_app_ends_it_like_a_quit(tmp_path, reference):
    """The real hang-up: the app runs on a pseudo-terminal whose other end is closed mid-session."""
    tag = uuid.uuid4().hex
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fvtui", "--sessions-dir", str(tmp_path), "new", "--name", "t", *FLAGS],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the pty is its controlling terminal
        env={**os.environ, "FVTUI_TEST_TAG": tag, "TERM": "xterm-256color"})
    os.close(slave)
    screen = bytearray()

    def drain() -> None:  # a terminal reads what the app draws
        try:
            while chunk := os.read(master, 65536):
                screen.extend(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "t" / "rounds" / "0001").exists():
        assert proc.poll() is None and time.monotonic() < deadline, bytes(screen[-2000:]).decode(errors="replace")
        time.sleep(0.05)
    os.close(master)  # the terminal goes away: the kernel sends SIGHUP
    assert proc.wait(timeout=30) == 128 + signal.SIGHUP
    assert wait_gone(tag) == []
    assert b"fvtui" in screen or b"demo" in screen  # it really drew on the terminal
    rounds = fingerprint(tmp_path, "t")
    assert len(rounds) >= 1 and rounds == reference[:len(rounds)]  # what it finished is what a whole run makes
    with SessionStore(tmp_path).open("t"):  # the lock went with the process
        pass


def test_a_second_writer_gets_a_clear_message(tmp_path):
    tag = uuid.uuid4().hex
    proc = start(tmp_path, "w", tag, False)
    deadline = time.monotonic() + 60
    while not (tmp_path / "w" / "initial").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(tmp_path), "resume", "w",
                             "--headless"], capture_output=True, text=True, timeout=60)
    shown = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(tmp_path), "show", "w", "--json"],
                           capture_output=True, text=True, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert second.returncode == 2
    assert f"session 'w' is being run by pid {proc.pid}" in second.stderr
    assert json.loads(shown.stdout)["name"] == "w"  # read-only viewing works meanwhile
    assert wait_gone(tag) == []
    # the killed owner's lock is stale: the next writer takes over
    resumed = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(tmp_path), "resume", "w",
                              "--headless"], capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert len(fingerprint(tmp_path, "w")) == ROUNDS


@pytest.mark.parametrize("fault", ["full disk", "read-only folder"])
def test_a_disk_fault_while_saving_keeps_the_last_round(tmp_path, monkeypatch, fault):
    import fvtui.store as store

    demo = load_dataset("demo")
    root = tmp_path / "s"
    with SessionStore(root).create("d", CONFIG) as session, Engine(session, demo) as engine:
        engine.run_round()
        before = fingerprint(root, "d")

        code = errno.ENOSPC if fault == "full disk" else errno.EROFS

        def fail(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        # A full disk fails the first flush to disk; a read-only folder already the round's folder.
        monkeypatch.setattr(*((store.os, "fsync") if fault == "full disk" else (store.Path, "mkdir")), fail)
        # fv: the round's first journal write is the first write to fail
        with pytest.raises(store.UserError, match=f"journal/0002.jsonl: {os.strerror(code)}; the last saved round"):
            engine.run_round()
        monkeypatch.undo()
        assert len(session.rounds) == 1
    assert fingerprint(root, "d") == before
    assert not list((root / "d" / "rounds").glob(".tmp-*"))
    assert np.isfinite(before[0][2])


def test_a_journal_write_that_fails_keeps_every_complete_entry(tmp_path, monkeypatch, reference):
    import fvtui.store as store

    demo = load_dataset("demo")
    real_append = store.RoundJournal.append
    calls = []

    def fail_third(self, item, data):
        calls.append(item)
        if len(calls) == 3:
            raise store.UserError(f"cannot save {self.path}: No space left on device; the last saved round and "
                                  "every sample saved before this one are intact")
        real_append(self, item, data)

    with SessionStore(tmp_path).create("j", CONFIG) as session, Engine(session, demo, workers=1) as engine:
        monkeypatch.setattr(store.RoundJournal, "append", fail_third)
        with pytest.raises(store.UserError, match="every sample saved before this one are intact"):
            engine.run_round()
        monkeypatch.undo()
        assert session.rounds == [] and session.journal_progress() == 2
    events = []
    with SessionStore(tmp_path).open("j") as session, \
            Engine(session, demo, on_event=events.append) as engine:
        engine.run()
    assert "2 samples verified before the interruption are reused" in " ".join(
        e.message for e in events if type(e).__name__ == "Log")
    assert fingerprint(tmp_path, "j") == reference


def test_a_journal_entry_of_other_weights_is_refused_and_solved_again(tmp_path, reference):
    from fvtui.store import RoundJournal

    demo = load_dataset("demo")
    with SessionStore(tmp_path).create("f", CONFIG) as session, Engine(session, demo) as engine:
        engine.run_round()
        first = session.queried_indices(1)
    # An entry for a sample of round 2 made under another key (other weights or settings), with a
    # result that would change the round if it were reused, and a torn line after it.
    bogus = {"status": "sat", "counterexamples": [], "queries": [], "final_eps": 0.5, "seconds": 0.0,
             "message": "not this round's"}
    journal = RoundJournal(tmp_path / "f" / "journal" / "0002.jsonl", "another-key")
    for item in map(str, range(demo.train_x.shape[0])):
        if int(item) not in first:
            journal.append(item, bogus)
        if len(journal.read().entries) >= 40:
            break
    with open(journal.path, "ab") as fh:
        fh.write(b'{"key": "another-key", "item": "1", "da')
    events = []
    with SessionStore(tmp_path).open("f") as session, Engine(session, demo, on_event=events.append) as engine:
        engine.run()
    logs = " ".join(e.message for e in events if type(e).__name__ == "Log")
    assert "1 torn journal lines dropped, 40 entries of other weights or settings refused" in logs
    assert fingerprint(tmp_path, "f") == reference
    assert not (tmp_path / "f" / "journal" / "0002.jsonl").exists()  # gone with the round's commit
