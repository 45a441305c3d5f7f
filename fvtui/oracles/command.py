"""`fvtui labels NAME`: a person's labels without the app (see files.py for the CSV)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_CODES, UserError


def add_parser(sub, shared) -> None:
    labels = sub.add_parser("labels", parents=shared, epilog=EXIT_CODES,
                            help="a person's labels, headless: export the samples waiting for them, import them back")
    labels.add_argument("name")
    which = labels.add_mutually_exclusive_group()
    which.add_argument("--export", metavar="CSV|DIR", help="write the samples waiting for labels: a .csv with their "
                       "image paths (PNGs beside it when they have no files), or a folder of PNGs and queries.csv")
    which.add_argument("--import", dest="import_", metavar="CSV", help="read labels back: the exported CSV with its "
                       "label column filled in (class names or numbers); an empty label leaves its sample waiting")


def main(store, args: argparse.Namespace) -> int:
    from ..data import session_dataset
    from .files import export_queries, import_labels, waiting_batch
    from .resolve import oracle_for

    session = store.open(args.name, writable=args.import_ is not None)
    try:
        dataset = session_dataset(session, args.data_dir)
        oracle = oracle_for(session, dataset, wait=False)
        if not oracle.person:
            raise UserError(f"session '{session.name}' is labelled by its dataset (--oracle dataset): no one is asked "
                            "for labels")
        request = waiting_batch(oracle)
        if args.export:
            path, rows = export_queries(oracle, dataset, args.export)
            print(f"{rows} samples of {request.batch_name()} wait for labels: written to {path}. Fill in its label "
                  f"column ({', '.join(dataset.classes)}), then: fvtui labels {session.name} --import {path}")
            return 0
        if args.import_:
            trained = session.initial() is not None if request.round == 0 else request.round <= len(session.rounds)
            if trained:  # its labels are in the rounds trained on them and their synthetic samples
                raise UserError(f"{request.batch_name()} is trained on already: its labels can no longer change. "
                                f"The next batch is asked when the session goes on: fvtui resume {session.name}")
            given = import_labels(oracle, dataset.classes, args.import_)
            print(f"{given} labels saved.", end=" ")
        pending = len(oracle.book.pending())
        if pending:
            print(f"{pending} of the {len(request.indices)} samples of {request.batch_name()} wait for labels "
                  f"(fvtui labels {session.name} --export queries.csv)")
        else:
            print(f"every sample of {request.batch_name()} is labelled: fvtui resume {session.name} --headless "
                  "continues")
        return 0
    finally:
        session.close()
