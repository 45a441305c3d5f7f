"""What a benchmark is: a dataset, methods, seeds and one set of engine settings shared by all its
sessions, which live in `<sessions-dir>/<bench name>/` (an ordinary sessions folder).

The settings are remembered in that folder's bench.json, so re-running or resuming a benchmark
needs no flags beyond its name; a flag that contradicts the sessions already there is refused
instead of silently mixing settings (only --rounds may grow: finished sessions are extended).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..config import PROTOCOL_NAMES, RoundSettings, SessionConfig, with_protocol
from ..schema import SETTINGS
from ..errors import UserError
from ..store import Session, SessionStore
from .digest import DIGEST_DIR, Digest, load_all
from .methods import Method, paper_methods, parse_method, parse_methods, parse_seeds

BENCH_FILE = "bench.json"
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
# Engine flags of `fvtui bench`: every setting but those that make a benchmark's methods and seeds, and
# the oracle (a benchmark's labels are its dataset's: no one waits at a labelling screen for it).
ENGINE_SETTINGS = tuple(s for s in SETTINGS if s.name not in ("seed", "strategy", "augment", "oracle"))
NOT_COMPARED = ("dataset", "seed", "rounds", "strategy", "augment")


@dataclass
class BenchSpec:
    name: str
    root: Path  # the group folder: a SessionStore root
    dataset: str
    methods: list[Method] | None  # None: every session found in the group (report only)
    seeds: list[int] | None
    template: SessionConfig  # seed and method filled in per session
    saved: dict[str, Any] | None  # bench.json as found
    out: Path  # the output folder; its sessions/ holds the digests of finished sessions

    @property
    def digests(self) -> Path:
        return self.out / DIGEST_DIR

    @property
    def store(self) -> SessionStore:
        return SessionStore(self.root)

    @property
    def rounds(self) -> int:
        return self.template.rounds

    def config_for(self, method: Method, seed: int) -> SessionConfig:
        settings = dataclasses.replace(self.template.settings, strategy=method.strategy, augment=method.augment)
        return dataclasses.replace(self.template, seed=seed, settings=settings).validate()

    def settings_dict(self) -> dict[str, Any]:
        return _flat(self.template, keep_rounds=True)

    def check_session(self, session: Session | Digest, method: Method | None = None, seed: int | None = None) -> None:
        """Refuse a session of the group that was made with other settings than this benchmark asks for
        (and, for a planned session, another method or seed than its name says)."""
        cfg = session.config
        where = f"session '{session.name}' of benchmark '{self.name}' ({session.path})"
        made_as = (cfg.seed, cfg.settings.strategy, cfg.settings.augment)
        if cfg.dataset != self.dataset or (method is not None and made_as != (seed, method.strategy, method.augment)):
            expected = f"{self.dataset} {method.key} seed {seed}" if method is not None else self.dataset
            raise UserError(f"{where} is {cfg.dataset} {cfg.settings.strategy}+{cfg.settings.augment} seed {cfg.seed}, "
                            f"not {expected}; move it away or choose another --name")
        wanted = _flat(self.template)
        _same_protocol(where, cfg.protocol, self.template.protocol)
        for label, have in (("was made with", _flat(cfg)),
                            ("was set to continue with", _flat_settings(session.settings))):
            diff = [k for k in have if k in wanted and have[k] != wanted[k]]
            if diff:
                raise UserError(
                    f"{where} {label} {_describe(have, diff)}, but this benchmark asks for {_describe(wanted, diff)}; "
                    f"run it with the benchmark's settings (flags left out are taken from {self.root / BENCH_FILE}) "
                    "or choose another --name")
        if len(session.rounds) > self.rounds:
            raise UserError(f"{where} already has {len(session.rounds)} rounds, more than --rounds {self.rounds}; "
                            f"a benchmark's curves must have one length: use --rounds {len(session.rounds)} or more, "
                            "or choose another --name")

    def check_saved(self) -> None:
        """Refuse settings that contradict bench.json while the group has sessions made with it."""
        stored = (self.saved or {}).get("settings")
        if not stored or not self.store.names():
            return
        wanted = _flat(self.template)
        _same_protocol(f"benchmark '{self.name}' ({self.root / BENCH_FILE})", stored["protocol"],
                       self.template.protocol)
        diff = [k for k in wanted if k in stored and stored[k] != wanted[k]]
        if diff:
            raise UserError(
                f"benchmark '{self.name}' was run with {_describe(stored, diff)} ({self.root / BENCH_FILE}), but this "
                f"command asks for {_describe(wanted, diff)}; leave those flags out to use the benchmark's settings, "
                "or choose another --name")

    def save(self) -> None:
        """Remember the settings, and every method and seed ever run here (for --report-only), in the
        group folder and beside the digests (which may outlive it)."""
        saved = self.saved or {}
        methods = list(saved.get("methods", []))
        methods += [m.key for m in self.methods or [] if m.key not in methods]
        seeds = list(saved.get("seeds", []))
        seeds += [s for s in self.seeds or [] if s not in seeds]
        data = {"format": 1, "name": self.name, "dataset": self.dataset, "methods": methods, "seeds": seeds,
                "settings": self.settings_dict()}
        for folder in (self.root, self.digests):
            path = folder / BENCH_FILE
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
            write_atomic(path, json.dumps(data, indent=1) + "\n")
        self.saved = data


def resolve(args: argparse.Namespace, sessions_root: Path) -> BenchSpec:
    """The benchmark a command line asks for: flags, else bench.json, else the protocol's defaults."""
    from ..config import DATASETS

    if args.dataset and args.dataset not in DATASETS:  # own images: no unattended oracle for methods x seeds
        raise UserError(f"fvtui bench runs the built-in datasets ({', '.join(DATASETS)}), not '{args.dataset}'; run "
                        "your own images as sessions: fvtui new --dataset FOLDER")
    if args.name:
        name = args.name
    elif args.dataset:
        name = f"bench-{args.dataset}"
    else:
        raise UserError("give --dataset (the benchmark is then named bench-DATASET) or the --name of a benchmark")
    root = SessionStore(sessions_root).path(name)  # checks the name like a session name
    out = Path(args.out) if args.out else root / "results"
    saved = _load(root / BENCH_FILE) or _load(out / DIGEST_DIR / BENCH_FILE)
    dataset = args.dataset or (saved or {}).get("dataset")
    if dataset is None:
        raise UserError(f"no benchmark '{name}' in {sessions_root} (no {root / BENCH_FILE}); "
                        "give --dataset to start one")
    if saved and saved.get("dataset") not in (None, dataset):
        raise UserError(f"benchmark '{name}' in {root} is on dataset '{saved['dataset']}', not '{dataset}'; "
                        "choose another --name")

    if args.paper:
        methods: list[Method] | None = paper_methods()
    elif args.methods is not None:
        methods = parse_methods(args.methods)
    elif saved and saved.get("methods"):
        methods = [parse_method(m) for m in saved["methods"]]
    elif args.report_only:
        methods = None
    else:
        raise UserError("say what to run: --methods STRATEGY+AUGMENTATION,... (e.g. random+none,badge+fv) or --paper")
    if args.seeds is not None:
        seeds: list[int] | None = parse_seeds(args.seeds)
    elif saved and saved.get("seeds"):
        seeds = [int(s) for s in saved["seeds"]]
    else:
        seeds = None if args.report_only else list(DEFAULT_SEEDS)

    stored = (saved or {}).get("settings", {})
    if stored:
        stored = with_protocol(stored)
        saved["settings"] = stored
    protocol = _flat(SessionConfig(dataset=dataset), keep_rounds=True)
    values: dict[str, Any] = {}
    for key in (*(s.name for s in ENGINE_SETTINGS), "protocol"):
        flag = getattr(args, key, None)
        if flag is not None:
            values[key] = flag
        elif key in stored:
            values[key] = tuple(stored[key]) if key == "hidden" else stored[key]
        else:
            values[key] = protocol[key]
    if args.report_only and args.rounds is None and "rounds" not in stored:
        values["rounds"] = _longest(root, out)
    round_names = {f.name for f in dataclasses.fields(RoundSettings)}
    settings = RoundSettings(**{k: v for k, v in values.items() if k in round_names})
    template = SessionConfig(dataset=dataset, seed=0, settings=settings,
                             **{k: v for k, v in values.items() if k not in round_names})
    spec = BenchSpec(name, root, dataset, methods, seeds, template, saved, out)
    for method in methods or []:
        spec.config_for(method, 0)  # every flag checked before anything runs
    template.validate()
    return spec


def _same_protocol(where: str, have: int, wanted: int) -> None:
    if have != wanted:
        raise UserError(
            f"{where} ran protocol {have} ({PROTOCOL_NAMES.get(have, 'unknown')}), but this benchmark runs protocol "
            f"{wanted} ({PROTOCOL_NAMES[wanted]}); results of two protocols are not comparable, so one benchmark "
            "holds one protocol: choose another --name")


def _flat(config: SessionConfig, keep_rounds: bool = False) -> dict[str, Any]:
    data = config.to_dict()
    data.update(data.pop("settings"))
    data["hidden"] = list(data["hidden"])
    return {k: v for k, v in data.items() if k not in NOT_COMPARED or (keep_rounds and k == "rounds")}


def _flat_settings(settings: RoundSettings) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in NOT_COMPARED}


def _describe(values: dict[str, Any], keys: list[str]) -> str:
    def show(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return ", ".join(f"{k.replace('_', '-')} {show(values[k])}" for k in keys)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}); fix or delete it "
                        "(the sessions beside it are intact)") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a benchmark description; fix or delete it")
    return data


def _longest(root: Path, out: Path) -> int:
    """--report-only on a folder without bench.json: the longest target among its sessions (or digests)."""
    store, longest = SessionStore(root), 0
    for name in store.names():
        try:
            with store.open(name, writable=False) as session:
                longest = max(longest, session.config.rounds, len(session.rounds))
        except UserError:
            continue
    for digest in load_all(out / DIGEST_DIR).values():
        longest = max(longest, digest.config.rounds, len(digest.rounds))
    if not longest:
        raise UserError(f"no sessions in {root} to report on")
    return longest
