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
FLAGS = ["--dataset", "demo", "--rounds", str(ROUNDS), "--init-size", "20", "--query-size", "5", "--pool-size",
         "200", "--epochs", "3", "--hidden", "12", "--strategy", "fvaal", "--augment", "fv",
         "--advs-per-sample", "3", "--workers", "2"]
CONFIG = SessionConfig(dataset="demo", rounds=ROUNDS, init_size=20, hidden=(12,), epochs=3,
                       settings=RoundSettings(strategy="fvaal", augment="fv", query_size=5, pool_size=200,
                                              advs_per_sample=3))


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


def start(root: Path, name: str, tag: str, resume: bool, script: str | None = None) -> subprocess.Popen:
    args = (["resume", name, "--headless"] if resume else ["new", "--headless", "--name", name, *FLAGS])
    command = [sys.executable, "-m", "fvtui", "--sessions-dir", str(root), *args]
    if script:
        command = [sys.executable, "-c", script, *command[3:]]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "FVTUI_TEST_TAG": tag})


def wait_gone(tag: str, timeout: float = 10.0) -> list[int]:
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


def test_sigkill_at_random_moments_loses_no_finished_round(tmp_path, reference):
    rng = random.Random(1234)
    tag = uuid.uuid4().hex
    kills, sessions, name, resume, mid_save = 0, 0, "k0", False, 0
    while kills < 20:
        targeted = kills % 7 == 3  # every 7th kill lands inside a round's save
        proc = start(tmp_path, name, tag, resume, KILL_MID_SAVE if targeted else None)
        before = fingerprint(tmp_path, name) if resume else []
        try:
            proc.wait(timeout=(None if targeted else rng.uniform(2.0, 6.0)))
            # a targeted resume whose rounds were all saved before the last kill has nothing to save
            finished_by_itself = not targeted or proc.returncode == 0
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            finished_by_itself = False
        if targeted and not finished_by_itself:
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
            mid_save += 1
        assert wait_gone(tag) == [], "a solver process outlived the killed run"
        if not (tmp_path / name / "session.json").exists():
            resume = False  # killed before the session was created: start again
            continue
        now = fingerprint(tmp_path, name)
        assert now[:len(before)] == before  # every round finished before the kill is intact
        assert now == reference[:len(now)]
        if finished_by_itself:
            assert proc.returncode == 0, proc.stderr.read().decode()
            assert now == reference
            sessions += 1
            name, resume = f"k{sessions}", False
        else:
            kills += 1
            resume = True
    # finish the last one undisturbed
    if resume:
        start(tmp_path, name, tag, True).wait(timeout=120)
        assert fingerprint(tmp_path, name) == reference
    assert mid_save >= 2


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
        with pytest.raises(store.UserError, match=f"{os.strerror(code)}; the last saved round is intact"):
            engine.run_round()
        monkeypatch.undo()
        assert len(session.rounds) == 1
    assert fingerprint(root, "d") == before
    assert not list((root / "d" / "rounds").glob(".tmp-*"))
    assert np.isfinite(before[0][2])
