"""Sessions on disk: the only code that touches the sessions folder.

A round is committed by building it in a temporary folder and renaming it into place, so after a
crash it is either wholly there or absent. While a round runs, each sample's finished search is
appended to the round's journal and fsynced, so a crash loses only the samples in flight; a
person's labels go to the session's label journal the same way, each the moment it is given.
Every JSON file carries a checksum of its content and names the checksums of its array files, so
truncated or edited files are reported, never trusted.
One process writes a session at a time (an flock the kernel drops when the process dies, so a
killed run never leaves a lock behind).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import RoundSettings, SessionConfig
from .atomic import fsync_dir as _fsync_dir
from .atomic import write_atomic
from .errors import UserError
from .metrics import aubc
from .records import RoundRecord, SyntheticBatch

FORMAT = 1
JOURNAL_DIR = "journal"
LABELS_FILE = "labels.jsonl"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class CorruptSession(UserError):
    """A session file is truncated, edited or missing; nothing is overwritten."""


class SessionLocked(UserError):
    """Another live process is writing this session."""


def default_sessions_dir() -> Path:
    return Path(os.environ.get("FVTUI_SESSIONS_DIR") or "sessions")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class InitialState:
    labeled: np.ndarray  # dataset indices of the initial labeled set
    model: dict[str, np.ndarray]  # weights after training on it: every round restarts from these
    test_accuracy: float


@dataclass
class JournalState:
    entries: dict[str, dict[str, Any]]  # item -> data, made by this round as it runs now
    torn: int = 0  # lines cut short or damaged: dropped, never half-read
    foreign: int = 0  # entries made with other weights, settings or samples: refused


class RoundJournal:
    """The finished samples of the round in progress, one checksummed JSON line each, fsynced.

    Every line carries the round's key, a hash of what the round started from (its weights,
    settings and queried samples): an entry of another key is refused, so a resumed round reuses
    only what the very same work produced.
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key

    def read(self) -> JournalState:
        entries, torn = _read_lines(self.path)
        state = JournalState({}, torn)
        for entry in entries:
            if entry["key"] != self.key:
                state.foreign += 1
            else:
                state.entries[entry["item"]] = entry["data"]
        return state

    def append(self, item: str, data: dict[str, Any]) -> None:
        _append_line(self.path, {"key": self.key, "item": item, "data": data}, "every sample saved before this one")

    def start(self) -> JournalState:
        """What a resumed round can reuse; a torn last line is cut off so that appends stay whole."""
        state = self.read()
        if state.torn:
            _cut_torn_tail(self.path)
        return state


class LabelJournal:
    """Every labelling action of a person (ask, label, skip, undo), one checksummed JSON line each,
    fsynced the moment it is given, so a quit or crash loses no label typed. Unlike a round's
    journal it is never deleted: it is where a person's labels live."""

    def __init__(self, path: Path, writable: bool) -> None:
        self.path, self.writable = path, writable

    def read(self) -> list[dict[str, Any]]:
        """The actions in the order given (a torn line, cut short by a crash, is dropped)."""
        entries, torn = _read_lines(self.path)
        if torn and self.writable:
            _cut_torn_tail(self.path)
        return entries

    def append(self, action: dict[str, Any]) -> None:
        if not self.writable:
            raise RuntimeError(f"{self.path} is open read-only")
        _append_line(self.path, action, "every label given before this one")


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """A journal's whole, checksummed lines in order, and how many lines were torn or damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise CorruptSession(f"{path}: cannot be read ({exc.strerror})") from None
    lines = raw.split(b"\n")
    torn = int(bool(lines[-1]))  # no newline yet: the write was cut short
    entries = []
    for line in lines[:-1]:
        entry = _journal_entry(line)
        if entry is None:
            torn += 1
        else:
            entries.append(entry)
    return entries, torn


def _append_line(path: Path, body: dict[str, Any], kept: str) -> None:
    line = json.dumps({**body, "sha256": _digest(_canonical(body))}, separators=(",", ":")).encode() + b"\n"
    try:
        path.parent.mkdir(exist_ok=True)
        with open(path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise UserError(f"cannot save {path}: {exc.strerror or exc}; the last saved round and {kept} are "
                        "intact") from None


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line cut short, so that the next append starts a whole line."""
    if path.exists():
        raw = path.read_bytes()
        keep = raw[:raw.rfind(b"\n") + 1]
        if keep != raw:
            _write_atomic(path, keep)


def _journal_entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
        stated = entry.pop("sha256")
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    if not isinstance(entry, dict) or _digest(_canonical(entry)) != stated:
        return None
    return entry


@dataclass(frozen=True)
class SessionSummary:
    name: str
    dataset: str
    method: str
    rounds_done: int
    rounds_target: int
    last_accuracy: float | None
    aubc: float | None
    updated: str
    problem: str = ""  # why the session could not be read, if it could not


class Session:
    """One session folder, opened for writing (locked) or read-only."""

    def __init__(self, path: Path, writable: bool) -> None:
        self.path = path
        self.name = path.name
        self.writable = writable
        self._lock_fd: int | None = None
        if writable:
            self._lock()
        try:
            meta = _read_json(path / "session.json")
            if meta.get("format", 0) > FORMAT:
                raise UserError(
                    f"session '{self.name}' was written by a newer fvtui (format {meta['format']}, "
                    f"fvtui {meta.get('fvtui', '?')}); this fvtui {__version__} reads format {FORMAT}. "
                    "Upgrade fvtui to open it")
            try:
                self.config = SessionConfig.from_dict(meta["config"])
                self.settings = RoundSettings(**meta["settings"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CorruptSession(f"{path / 'session.json'}: bad configuration ({exc})") from None
            self.created = meta.get("created", "")
            self.rounds = self._load_rounds()
        except BaseException:
            self.close()
            raise

    # -- locking -------------------------------------------------------------------------------
    def _lock(self) -> None:
        self._lock_fd = take_lock(self.path)
        for leftover in (self.path / "rounds").glob(".tmp-*"):  # a commit a crash interrupted
            shutil.rmtree(leftover, ignore_errors=True)
        for stale in (self.path / JOURNAL_DIR).glob("*.jsonl"):  # a crash between commit and cleanup
            if stale.stem.isdigit() and int(stale.stem) <= len(list((self.path / "rounds").glob("[0-9]*"))):
                stale.unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------
    def _load_rounds(self) -> list[RoundRecord]:
        rounds = []
        folders = sorted(p for p in (self.path / "rounds").glob("[0-9]*") if p.is_dir())
        for expected, folder in enumerate(folders, start=1):
            if folder.name != f"{expected:04d}":
                raise CorruptSession(f"{folder}: expected round {expected:04d} here (a round folder is missing)")
            data = _read_json(folder / "round.json")
            try:
                rounds.append(RoundRecord.from_dict(data["record"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise CorruptSession(f"{folder / 'round.json'}: bad round record ({exc})") from None
        return rounds

    @property
    def method(self) -> str:
        s = self.rounds[-1].settings if self.rounds else self.settings
        return f"{s.strategy}+{s.augment}"

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.rounds]

    @property
    def aubc(self) -> float | None:
        return aubc(self.accuracies) if self.rounds else None

    @property
    def finished(self) -> bool:
        return len(self.rounds) >= self.config.rounds

    def initial(self) -> InitialState | None:
        folder = self.path / "initial"
        if not folder.exists():
            return None
        meta = _read_json(folder / "initial.json")
        arrays = _read_npz(folder, "arrays.npz", meta)
        model = _read_npz(folder, "model.npz", meta)
        return InitialState(arrays["labeled"], model, float(meta["test_accuracy"]))

    def round_arrays(self, round_index: int) -> dict[str, np.ndarray]:
        folder = self._round_folder(round_index)
        return _read_npz(folder, "arrays.npz", _read_json(folder / "round.json"))

    def synthetic(self, round_index: int) -> SyntheticBatch:
        return SyntheticBatch.from_arrays(self.round_arrays(round_index))

    def queried_indices(self, round_index: int) -> np.ndarray:
        return np.array([q.index for q in self.rounds[round_index - 1].queried], dtype=np.int64)

    def model_state(self, round_index: int) -> dict[str, np.ndarray]:
        """Weights after a round (0: the initial model)."""
        if round_index == 0:
            initial = self.initial()
            if initial is None:
                raise CorruptSession(f"{self.path / 'initial'}: missing")
            return initial.model
        folder = self._round_folder(round_index)
        return _read_npz(folder, "model.npz", _read_json(folder / "round.json"))

    def _round_folder(self, round_index: int) -> Path:
        return self.path / "rounds" / f"{round_index:04d}"

    # -- writing -------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable or self._lock_fd is None:
            raise RuntimeError(f"session '{self.name}' is open read-only")

    def save_initial(self, labeled: np.ndarray, model: dict[str, np.ndarray], test_accuracy: float) -> None:
        self._require_writable()
        _commit_folder(self.path / "initial", self.path / ".tmp-initial", {
            "arrays.npz": _npz_bytes({"labeled": np.asarray(labeled, np.int64)}),
            "model.npz": _npz_bytes(model),
        }, "initial.json", {"test_accuracy": test_accuracy, "saved": now()})

    def commit_round(self, record: RoundRecord, synthetic: SyntheticBatch, model: dict[str, np.ndarray]) -> None:
        self._require_writable()
        if record.round != len(self.rounds) + 1:
            raise RuntimeError(f"round {record.round} does not follow round {len(self.rounds)}")
        _commit_folder(self._round_folder(record.round), self.path / "rounds" / f".tmp-{record.round:04d}", {
            "arrays.npz": _npz_bytes(synthetic.to_arrays()),
            "model.npz": _npz_bytes(model),
        }, "round.json", {"record": record.to_dict()})
        self.rounds.append(record)
        self._journal_path(record.round).unlink(missing_ok=True)

    def data_fingerprint(self) -> dict[str, str] | None:
        """sha256 of every own-data file, as recorded when the session first ran (None: not recorded)."""
        path = self.path / "data.json"
        return _read_json(path)["files"] if path.exists() else None

    def save_data_fingerprint(self, files: dict[str, str]) -> None:
        self._require_writable()
        _write_json(self.path / "data.json", {"files": files})

    def journal(self, round_index: int, key: str) -> RoundJournal:
        self._require_writable()
        return RoundJournal(self._journal_path(round_index), key)

    def journal_progress(self) -> int:
        """Samples of the next round already verified and saved (whatever they were made with)."""
        state = RoundJournal(self._journal_path(len(self.rounds) + 1), "").read()
        return len(state.entries) + state.foreign

    def label_journal(self) -> LabelJournal:
        """The labels a person gave this session (read-only unless the session is open for writing)."""
        return LabelJournal(self.path / LABELS_FILE, self.writable)

    def _journal_path(self, round_index: int) -> Path:
        return self.path / JOURNAL_DIR / f"{round_index:04d}.jsonl"

    def update(self, *, settings: RoundSettings | None = None, rounds: int | None = None) -> None:
        """Change what the next rounds run with; saved at once, honoured on resume."""
        self._require_writable()
        if settings is not None:
            self.settings = settings.validate()
        if rounds is not None:
            self.config = self.with_target(rounds)
        self._write_meta()

    def with_target(self, rounds: int) -> SessionConfig:
        """The configuration with a new target; one below the rounds finished would read '4/2 rounds done'."""
        config = dataclasses.replace(self.config, rounds=rounds).validate()
        if rounds < len(self.rounds):
            raise UserError(f"rounds must be at least {len(self.rounds)}: that many are finished already")
        return config

    def _write_meta(self) -> None:
        _write_json(self.path / "session.json", {
            "format": FORMAT, "fvtui": __version__, "name": self.name, "created": self.created,
            "updated": now(), "config": self.config.to_dict(), "settings": dataclasses.asdict(self.settings),
        })

    def summary(self) -> SessionSummary:
        from .own_data import dataset_label

        return SessionSummary(self.name, dataset_label(self.config.dataset), self.method, len(self.rounds), self.config.rounds,
                              self.accuracies[-1] if self.rounds else None, self.aubc, _mtime(self.path))


class SessionStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_sessions_dir()

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise UserError(f"'{name}' is not a valid session name: use letters, digits, '.', '_' and '-' "
                            "(at most 100, starting with a letter or digit)")
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.path(name) / "session.json").exists()

    def create(self, name: str, config: SessionConfig) -> Session:
        config.validate()
        path = self.path(name)
        self.refuse_taken(name)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root))  # unique: two creates may race
            _write_json(tmp / "session.json", {
                "format": FORMAT, "fvtui": __version__, "name": name, "created": now(), "updated": now(),
                "config": config.to_dict(), "settings": dataclasses.asdict(config.settings),
            })
            (tmp / "rounds").mkdir()
            os.rename(tmp, path)
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            self.refuse_taken(name)  # another process created it meanwhile
            raise UserError(f"cannot create session '{name}' in {self.root}: {exc.strerror or exc}") from None
        return Session(path, writable=True)

    def refuse_taken(self, name: str) -> None:
        """Before a new session of this name: a session, or a folder that is none, is in the way."""
        path = self.path(name)
        if (path / "session.json").exists():
            raise UserError(f"session '{name}' already exists in {self.root}; "
                            f"resume it with `fvtui resume {name}` or choose another name")
        if path.exists():
            raise UserError(f"'{name}' in {self.root} is not a session (it has no session.json): remove it or "
                            "choose another name")

    def open(self, name: str, writable: bool = True) -> Session:
        return Session(self.open_check(name), writable=writable)

    def open_check(self, name: str) -> Path:
        """The session's folder; UserError naming the sessions there when it has none."""
        path = self.path(name)
        if not (path / "session.json").exists():
            known = ", ".join(self.names()[:10]) or "none yet"
            raise UserError(f"no session '{name}' in {self.root} (sessions there: {known})")
        return path

    def names(self) -> list[str]:
        if self.root.exists() and not self.root.is_dir():  # it said "no sessions" of a file
            raise UserError(f"the sessions folder {self.root} is a file, not a folder (--sessions-dir)")
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "session.json").exists())

    def list(self) -> list[SessionSummary]:
        summaries = []
        for name in self.names():
            try:
                with self.open(name, writable=False) as session:
                    summaries.append(session.summary())
            except UserError as exc:
                summaries.append(SessionSummary(name, "?", "?", 0, 0, None, None, _mtime(self.root / name), str(exc)))
        return summaries

    def delete(self, name: str) -> None:
        """Without reading it: a session too damaged to open can still go."""
        path = self.open_check(name)
        fd = take_lock(path)  # refuses while another process runs it
        try:
            trash = self.root / f".tmp-delete-{name}-{os.getpid()}"
            try:
                os.rename(path, trash)
            except OSError as exc:
                raise UserError(f"cannot delete session '{name}' in {self.root}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)

    def unique_name(self, base: str) -> str:
        name, n = base, 2
        while self.path(name).exists():
            name, n = f"{base}-{n}", n + 1
        return name


# -- files -------------------------------------------------------------------------------------
def take_lock(path: Path, what: str = "session") -> int:
    """A session's (or a benchmark's) folder write lock, its fd; UserError when another process holds it
    or the folder cannot be written (a read-only disk: a session is still readable)."""
    read_only = f" (read-only: fvtui show {path.name})" if what == "session" else ""
    try:
        fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write to {what} '{path.name}' in {path.parent}: {exc.strerror or exc}"
                        f"{read_only}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SessionLocked(f"{what} '{path.name}' is being run by {holder}; wait for it to finish or stop it"
                            f"{read_only}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
    return fd


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps({**data, "sha256": _digest(_canonical(data))}, indent=1).encode() + b"\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptSession(f"{path}: missing") from None
    except OSError as exc:
        raise CorruptSession(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptSession(f"{path}: not valid JSON, truncated or edited ({exc})") from None
    if not isinstance(data, dict) or "sha256" not in data:
        raise CorruptSession(f"{path}: no checksum; not a file fvtui wrote")
    stated = data.pop("sha256")
    if _digest(_canonical(data)) != stated:
        raise CorruptSession(f"{path}: checksum mismatch, the file was edited or damaged")
    return data


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_npz(folder: Path, filename: str, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    path = folder / filename
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorruptSession(f"{path}: cannot be read ({exc.strerror})") from None
    if _digest(raw) != meta.get("files", {}).get(filename):
        raise CorruptSession(f"{path}: checksum mismatch, the file is truncated or damaged")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_atomic(path, _json_bytes(data))


def _write_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, data, durable=True, verb="save", after="; the last saved round is intact")


def _commit_folder(final: Path, tmp: Path, files: dict[str, bytes], meta_name: str, meta: dict[str, Any]) -> None:
    """Write files and their manifest into tmp, then rename tmp to final in one step."""
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for filename, data in files.items():
            with open(tmp / filename, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        manifest = {**meta, "files": {name: _digest(data) for name, data in files.items()}}
        with open(tmp / meta_name, "wb") as fh:
            fh.write(_json_bytes(manifest))
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot save {final}: {exc.strerror or exc}; the last saved round is intact") from None


def _mtime(path: Path) -> str:
    try:
        stamp = max(p.stat().st_mtime for p in [path, *path.glob("rounds/[0-9]*")])
    except (OSError, ValueError):
        return ""
    return dt.datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="minutes")
