"""Command line: `fvtui` opens the session browser; subcommands run, inspect and export sessions.

Heavy imports (torch, textual, maraboupy) are deferred into the commands that need them, so
`fvtui list` and the app's first frame stay fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import UserError

SETTING_FLAGS = ("strategy", "augment", "query_size", "pool_size", "advs_per_sample", "eps_start", "eps_step",
                 "verify_timeout")


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with code 2 and one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"fvtui: error: {message} (see fvtui {self.prog.split()[-1]} --help)\n"
                  if " " in self.prog else f"fvtui: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fvtui", description="Deep active learning improved with formal verification.")
    parser.add_argument("--sessions-dir", help="where sessions live (default: $FVTUI_SESSIONS_DIR or ./sessions)")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    new = sub.add_parser("new", help="start a session (the app, or --headless)")
    new.add_argument("--dataset", required=True, help="mnist, fashionmnist, cifar10 or demo")
    new.add_argument("--name", help="session name (default: dataset-strategy-augment-sSEED)")
    new.add_argument("--rounds", type=int, default=20)
    new.add_argument("--init-size", type=int, default=50)
    new.add_argument("--epochs", type=int, default=10)
    new.add_argument("--hidden", default="32", help="hidden layer widths, e.g. 32 (default) or 100,100")
    new.add_argument("--seed", type=int, default=0)
    new.add_argument("--train-initial", action="store_true",
                     help="train every round on the initial labeled samples too (the protocol uses them only "
                          "for the initial network)")
    new.add_argument("--init", default="glorot", help="weight initialisation: glorot (Keras', the protocol) or "
                                                      "torch (nn.Linear's)")
    _add_settings(new, defaults=True)
    _add_run_flags(new)

    resume = sub.add_parser("resume", help="continue a saved session after its last finished round")
    resume.add_argument("name")
    resume.add_argument("--rounds", type=int, help="new target number of rounds")
    _add_settings(resume, defaults=False)
    _add_run_flags(resume)

    sub.add_parser("list", help="table of saved sessions")

    show = sub.add_parser("show", help="a session's configuration, rounds and AUBC")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="machine-readable output")

    export = sub.add_parser("export", help="learning curve as CSV, synthetic samples as .npz and PNG")
    export.add_argument("name")
    export.add_argument("--out", required=True, help="folder to write into")
    export.add_argument("--data-dir", help="dataset folder (for the originals beside each synthetic sample)")

    delete = sub.add_parser("delete", help="delete a saved session")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask")

    from .bench.command import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def _add_settings(p: argparse.ArgumentParser, defaults: bool) -> None:
    from .config import RoundSettings

    d = RoundSettings() if defaults else None

    def default(name: str):
        return getattr(d, name) if d else None

    p.add_argument("--strategy", default=default("strategy"),
                   help="random, entropy, margin, badge, coreset, dfal or fvaal (default: fvaal)")
    p.add_argument("--augment", default=default("augment"), help="none, deepfool, fgsm or fv (default: fv)")
    p.add_argument("--query-size", type=int, default=default("query_size"))
    p.add_argument("--pool-size", type=int, default=default("pool_size"))
    p.add_argument("--advs-per-sample", type=int, default=default("advs_per_sample"),
                   help="synthetic samples per queried sample (k)")
    p.add_argument("--eps-start", type=float, default=default("eps_start"),
                   help="first L-inf radius of the fv search (fvaal: its FGSM eps + eps-step)")
    p.add_argument("--eps-step", type=float, default=default("eps_step"))
    p.add_argument("--verify-timeout", type=float, default=default("verify_timeout"),
                   help="seconds per solver query (default: 1800, the authors' budget)")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no app: print one line per round")
    p.add_argument("--workers", type=int, default=None, help="solver processes (default: number of CPUs)")
    p.add_argument("--data-dir", help="dataset folder (default: $FVTUI_DATA_DIR or a per-user cache)")


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
    if getattr(args, "workers", None) is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, not {args.workers}")
    command = args.command
    if command is None:
        from .app import run_app

        return run_app(store)
    if command == "new":
        return _new(store, args)
    if command == "resume":
        return _resume(store, args)
    if command == "bench":
        from .bench.command import main as bench_main

        return bench_main(store, args)
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
    from .config import RoundSettings, SessionConfig, parse_hidden

    settings = RoundSettings(**{k: getattr(args, k) for k in SETTING_FLAGS})
    config = SessionConfig(dataset=args.dataset, seed=args.seed, rounds=args.rounds, init_size=args.init_size,
                           hidden=parse_hidden(args.hidden), epochs=args.epochs, settings=settings,
                           train_initial=args.train_initial, init=args.init).validate()
    name = args.name or store.unique_name(f"{config.dataset}-{settings.strategy}-{settings.augment}-s{config.seed}")
    store.path(name)
    if store.exists(name):
        raise UserError(f"session '{name}' already exists in {store.root}; resume it with `fvtui resume {name}` "
                        "or choose another --name")
    if not args.headless:
        from .app import run_app

        return run_app(store, new_config=config, new_name=name, data_dir=args.data_dir, workers=args.workers)
    from .data import load_dataset

    dataset = load_dataset(config.dataset, args.data_dir)  # before creating: bad data leaves no session behind
    session = store.create(name, config)
    from .headless import run_headless

    return run_headless(session, dataset, workers=args.workers)


def _resume(store, args: argparse.Namespace) -> int:
    changes = {k: getattr(args, k) for k in SETTING_FLAGS if getattr(args, k) is not None}
    if not args.headless:
        from .app import run_app

        return run_app(store, resume_name=args.name, data_dir=args.data_dir, workers=args.workers,
                       settings_changes=changes, rounds=args.rounds)
    session = store.open(args.name)
    try:
        settings = session.settings.replace(**changes) if changes else None
        if settings is not None or args.rounds is not None:
            session.update(settings=settings, rounds=args.rounds)
        from .data import load_dataset

        dataset = load_dataset(session.config.dataset, args.data_dir)
    except BaseException:
        session.close()
        raise
    from .headless import run_headless

    return run_headless(session, dataset, workers=args.workers)


def _delete(store, args: argparse.Namespace) -> int:
    session = store.open(args.name, writable=False)
    session.close()
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete '{args.name}' without --yes when not on a terminal")
        answer = input(f"delete session '{args.name}' ({len(session.rounds)} rounds)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    store.delete(args.name)
    print(f"deleted {args.name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


