"""Command line: `fvtui` opens the session browser; subcommands run, inspect and export sessions.

Heavy imports (torch, textual, maraboupy) are deferred into the commands that need them, so
`fvtui list` and the app's first frame stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Sequence

from .errors import EXIT_CODES, UserError

MAX_WORKERS = 1024  # solver processes a command may start (a typo of 100000 would fork until the machine stalls)

class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with code 2 and one line, like every other user error; no
    abbreviations (bench --seed read as --seeds, where bench takes no --seed)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"fvtui: error: {message} (see fvtui {self.prog.split()[-1]} --help)\n"
                  if " " in self.prog else f"fvtui: error: {message}\n")


def _shared_options(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (a value after the name wins)."""
    shared = argparse.ArgumentParser(add_help=False)
    keep = None if defaults else argparse.SUPPRESS
    shared.add_argument("--sessions-dir", default=keep,
                        help="where sessions live (default: $FVTUI_SESSIONS_DIR or ./sessions)")
    shared.add_argument("--data-dir", default=keep,
                        help="dataset folder (default: $FVTUI_DATA_DIR or a per-user cache)")
    shared.add_argument("--cluster", default=keep, metavar="ADDRESS",
                        help="run solver work (and bench sessions) on Dask: tcp://HOST:PORT, a running scheduler, or "
                             "local:N, N worker processes here (default: $FVTUI_CLUSTER, else this machine's "
                             "solver pool)")
    shared.add_argument("--images", default=keep,
                        help="how the app draws samples: sixel, kitty, halfcell, unicode or auto (default: "
                             "$FVTUI_IMAGES, else ask the terminal); a mode given skips asking the terminal")
    return shared


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .schema import add_flags, scoped

    parser = Parser(prog="fvtui", description="Deep active learning improved with formal verification.",
                    epilog=EXIT_CODES, parents=[_shared_options(defaults=True)])
    parser.add_argument("--version", action="version", version=f"fvtui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    shared = [_shared_options(defaults=False)]

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=shared, epilog=EXIT_CODES, **kwargs)

    new = command("new", help="start a session (the app, or --headless)")
    new.add_argument("--dataset", required=True, help="mnist, fashionmnist, cifar10 or demo, or the path of your own "
                                                      "images: a folder with one subfolder per class, or an .npz")
    new.add_argument("--name", help="session name (default: dataset-strategy-augment-sSEED)")
    add_flags(new, scoped("session") + scoped("round"), defaults=True)
    _add_run_flags(new)

    resume = command("resume", help="continue a saved session after its last finished round")
    resume.add_argument("name")
    resume.add_argument("--rounds", type=int, help="new target number of rounds")
    add_flags(resume, scoped("round"), defaults=False)
    _add_run_flags(resume)

    command("list", help="table of saved sessions")

    show = command("show", help="a session's configuration, rounds and AUBC")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="machine-readable output")

    export = command("export", help="learning curve as CSV, synthetic samples as .npz and PNG")
    export.add_argument("name")
    export.add_argument("--out", required=True, help="folder to write into")
    from .interop.command import add_export_flags, add_parser as add_verify_parser

    add_export_flags(export)
    add_verify_parser(sub, shared)

    delete = command("delete", help="delete a saved session")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask")

    from .oracles.command import add_parser as add_labels_parser

    add_labels_parser(sub, shared)

    from .bench.command import add_parser as add_bench_parser

    add_bench_parser(sub, shared)
    from .cluster.slurm import add_parser as add_cluster_parser

    add_cluster_parser(sub, shared)
    return parser


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no app: print one line per round")
    p.add_argument("--workers", type=int, default=None, help="solver processes (default: number of CPUs)")


def run() -> None:
    """The `fvtui` command: main, then out without the interpreter's teardown, which unloads torch's libraries
    for 1.6 s (2-core x86_64) while the terminal the app just left stays blank. Everything is saved and closed
    by then: sessions, solver pools, clusters."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing left to say
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as exc:
        print(f"fvtui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fvtui: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from .store import SessionStore

    store = SessionStore(args.sessions_dir)
    from .pictures import parse_mode

    parse_mode(getattr(args, "images", None))
    if getattr(args, "workers", None) is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UserError(f"--workers must be between 1 and {MAX_WORKERS}, not {args.workers}")
    command = args.command
    if command is None:
        from .app import run_app

        with open_cluster(args) as cluster:
            return run_app(store, images=args.images, cluster=cluster)
    if command == "new":
        return _new(store, args)
    if command == "resume":
        return _resume(store, args)
    if command == "labels":
        from .oracles.command import main as labels_main

        return labels_main(store, args)
    if command == "bench":
        from .bench.command import main as bench_main

        return bench_main(store, args)
    if command == "cluster":
        from .cluster.slurm import main as cluster_main

        return cluster_main(args)
    if command == "verify" or (command == "export" and (args.onnx or args.vnnlib or args.round is not None)):
        from .interop.command import main_export, main_verify

        return main_verify(store, args) if command == "verify" else main_export(store, args)
    from . import report

    if command == "list":
        return report.print_list(store)
    if command == "show":
        return report.print_show(store, args.name, as_json=args.json)
    if command == "export":
        return report.export(store, args.name, args.out, args.data_dir)
    if command == "delete":
        return _delete(store, args)
    raise AssertionError(command)


def _new(store, args: argparse.Namespace) -> int:
    from .config import RoundSettings, SessionConfig
    from .schema import scoped

    from .own_data import is_own_data

    if is_own_data(args.dataset):  # recorded absolute, so the session resumes from any folder
        args.dataset = str(Path(args.dataset).expanduser().resolve())
        args.test = str(Path(args.test).expanduser().resolve()) if args.test else ""
    settings = RoundSettings(**{s.name: getattr(args, s.name) for s in scoped("round")})
    config = SessionConfig(dataset=args.dataset, settings=settings,
                           **{s.name: getattr(args, s.name) for s in scoped("session")}).validate()
    from .own_data import dataset_label

    name = args.name if args.name is not None else store.unique_name(
        f"{dataset_label(config.dataset)}-{settings.strategy}-{settings.augment}-s{config.seed}")
    store.refuse_taken(name)
    if not args.headless:
        from .app import run_app

        with open_cluster(args) as cluster:
            return run_app(store, new_config=config, new_name=name, data_dir=args.data_dir, workers=args.workers,
                           images=args.images, cluster=cluster)
    from .data import check_room, dataset_for

    dataset = dataset_for(config, args.data_dir)  # before creating: bad data leaves no session behind
    from .oracles import resolve_oracle

    resolve_oracle(config, dataset)
    check_room(dataset, config)
    with open_cluster(args) as cluster:  # so is a cluster that cannot be used
        session = store.create(name, config)
        from .headless import run_headless

        return run_headless(session, dataset, workers=args.workers, solver_factory=cluster and cluster.solver)


def _resume(store, args: argparse.Namespace) -> int:
    from .schema import scoped

    changes = {s.name: getattr(args, s.name) for s in scoped("round") if getattr(args, s.name) is not None}
    if not args.headless:
        from .app import run_app

        with open_cluster(args) as cluster:
            if changes or args.rounds is not None:  # checked and saved before the app takes the terminal
                with store.open(args.name) as session:
                    _apply_changes(session, changes, args.rounds, args.data_dir)
            return run_app(store, resume_name=args.name, data_dir=args.data_dir, workers=args.workers,
                           images=args.images, cluster=cluster)
    with open_cluster(args) as cluster:  # before the session is touched
        return _resume_headless(store, args, changes, cluster)


def _apply_changes(session, changes: dict, rounds: int | None, data_dir: str | None):
    """A resume's new settings and target, checked against the session and its data, then saved (a refusal
    changes nothing); returns the dataset."""
    from .data import check_room, session_dataset

    settings = session.settings.replace(**changes) if changes else None
    target = session.with_target(rounds) if rounds is not None else session.config
    dataset = session_dataset(session, data_dir)
    check_room(dataset, target, settings or session.settings, done=session.rounds)
    if settings is not None or rounds is not None:
        session.update(settings=settings, rounds=rounds)
    return dataset


def _resume_headless(store, args: argparse.Namespace, changes: dict, cluster) -> int:
    session = store.open(args.name)
    try:
        dataset = _apply_changes(session, changes, args.rounds, args.data_dir)
    except BaseException:
        session.close()
        raise
    from .headless import run_headless

    return run_headless(session, dataset, workers=args.workers, solver_factory=cluster and cluster.solver)


def open_cluster(args: argparse.Namespace):
    from .cluster.connect import cluster_for

    return cluster_for(args.cluster)


def _delete(store, args: argparse.Namespace) -> int:
    from .store import CorruptSession

    try:
        with store.open(args.name, writable=False) as session:
            what = f"{len(session.rounds)} round{'' if len(session.rounds) == 1 else 's'}"
    except CorruptSession:  # damaged beyond opening: it can still go
        what = "unreadable"
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete '{args.name}' without --yes when not on a terminal")
        try:
            answer = input(f"delete session '{args.name}' ({what})? [y/N] ")
        except EOFError:  # Ctrl-D: no answer is no
            answer = ""
            print()
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    store.delete(args.name)
    print(f"deleted {args.name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


