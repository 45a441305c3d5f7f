"""Command-line face of interop: `fvtui export NAME --onnx/--vnnlib` and `fvtui verify MODEL.onnx`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

VERIFY_EXAMPLE = ("examples: fvtui verify net.onnx --dataset mnist --samples 20 --eps 0.02;  "
                  "fvtui verify net.onnx --dataset demo --radius --json")


def add_export_flags(export: argparse.ArgumentParser) -> None:
    """The interop flags of `fvtui export` (which owns NAME, --out and --data-dir)."""
    export.add_argument("--onnx", action="store_true",
                        help="the initial network and each round's as ONNX in OUT/onnx/, each checked against "
                             "torch with onnxruntime on the test set")
    export.add_argument("--vnnlib", action="store_true",
                        help="every solver query of a round as VNN-LIB, beside its ONNX network, with "
                             "instances.csv (VNN-COMP layout) in OUT/vnnlib-round-RRRR/")
    export.add_argument("--round", type=int, metavar="R",
                        help="only round R (--vnnlib: its queries; --onnx: the model after it, 0 for the initial)")


def add_parser(sub: argparse._SubParsersAction, shared: list | None = None) -> argparse.ArgumentParser:
    """The `verify` subcommand; `shared` (cli.py's parent parsers) brings --sessions-dir and --data-dir."""
    p = sub.add_parser(
        "verify", parents=shared or [], help="verify a feed-forward ReLU network from ONNX around test samples (Marabou)",
        description="Read a feed-forward ReLU network (Gemm / MatMul+Add / Relu / Flatten) from ONNX and "
                    "verify its L-inf robustness around the first N test samples of a dataset with fvtui's "
                    "solver pool: at one eps, or the certified radius. Counterexamples are written as PNGs.",
        epilog=VERIFY_EXAMPLE)
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--dataset", required=True, help="mnist, fashionmnist, cifar10 or demo")
    p.add_argument("--samples", type=int, default=10, metavar="N", help="the first N test samples (default 10)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--eps", type=float, metavar="E", help="L-inf radius in (0, 1] (default 0.02)")
    which.add_argument("--radius", action="store_true", help="certified L-inf radius of each sample instead")
    p.add_argument("--precision", type=float, default=1e-3, help="--radius: width of the final bracket (1e-3)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="seconds per solver query (30)")
    p.add_argument("--out", help="folder for the counterexample PNGs (default: MODEL-verify)")
    face = p.add_mutually_exclusive_group()
    face.add_argument("--json", action="store_true", help="machine-readable output")
    face.add_argument("--app", action="store_true", help="open the samples in the app's inspector instead: n / p "
                                                         "browse them, v verifies at an eps, m finds the radius")
    p.add_argument("--workers", type=int, default=None, help="solver processes (default: number of CPUs)")
    if not any("--data-dir" in a.option_strings for parent in shared or [] for a in parent._actions):
        p.add_argument("--data-dir", help="dataset folder (default: $FVTUI_DATA_DIR or a per-user cache)")
    return p


def main_verify(store, args: argparse.Namespace) -> int:
    from .verify_command import VerifyOptions, print_report, run_verify

    opts = VerifyOptions(model=args.model, dataset=args.dataset, samples=args.samples, eps=args.eps,
                         radius=args.radius, precision=args.precision, timeout=args.timeout, out=args.out,
                         workers=args.workers, data_dir=getattr(args, "data_dir", None), as_json=args.json)
    if args.app and opts.radius:
        raise UserError("--radius is for the table; in the app, m finds each sample's radius")
    from ..cluster.connect import cluster_for

    with cluster_for(getattr(args, "cluster", None)) as cluster:
        if args.app:
            from ..app import run_app
            from .verify_command import inspector_screen

            return run_app(store, screen=inspector_screen(opts), images=getattr(args, "images", None),
                           cluster=cluster)
        report = run_verify(opts, pool=cluster.solver() if cluster is not None else None)
    print_report(report, args.json)
    return 0


def main_export(store, args: argparse.Namespace, say=print) -> int:
    """`fvtui export NAME --out DIR --onnx and/or --vnnlib [--round R]`."""
    from ..data import session_dataset
    from .onnx_export import OPSET, export_networks
    from .replay import rebuild_round
    from .vnnlib import export_round

    out = Path(args.out)
    with store.open(args.name, writable=False) as session:
        last = len(session.rounds)
        r = getattr(args, "round", None)
        if not (args.onnx or args.vnnlib):
            raise UserError("--round goes with --onnx or --vnnlib")
        low = 1 if args.vnnlib else 0  # --onnx alone: round 0 is the initial network
        if r is not None and not low <= r <= last:
            raise UserError(f"session '{args.name}' has rounds {low} to {last}, not round {r}" if last >= low else
                            f"session '{args.name}' has no finished round")
        dataset = session_dataset(session, getattr(args, "data_dir", None))
        if args.vnnlib:  # the rounds to export first: a round without queries writes nothing
            if r is not None:
                rebuilt = [rebuild_round(session, dataset, r)]
            else:
                rebuilt = []
                for i in range(1, last + 1):
                    record = session.rounds[i - 1]
                    if record.settings.augment == "fv" and sum(v.queries for v in record.verification):
                        rebuilt.append(rebuild_round(session, dataset, i))
                if not rebuilt:
                    raise UserError(f"session '{args.name}' has no round with solver queries to export (its "
                                    f"augmentation is '{session.settings.augment}'; only fv runs the solver)")
        if args.onnx:
            for e in export_networks(session, dataset, out / "onnx", None if r is None else [r]):
                say(f"{e.path}: {e.label}, ONNX opset {OPSET} ({e.exporter}); onnxruntime vs torch on "
                    f"{e.samples} test samples: max abs logit difference {e.max_abs_diff:.2e}")
        if args.vnnlib:
            for rr in rebuilt:
                done = export_round(session, dataset, rr, out / f"vnnlib-round-{rr.round:04d}")
                verdicts = ", ".join(f"{n} {v}" for v, n in done["verdicts"].items())
                say(f"{done['folder']}: round {rr.round}, {done['queries']} queries as VNN-LIB ({verdicts}; "
                    f"{done['presolved']} decided by the exclusions alone, {done['with_disjunctions']} with "
                    f"exclusion disjunctions) on {done['onnx'].path.name} (onnxruntime vs torch "
                    f"{done['onnx'].max_abs_diff:.2e}), instances.csv")
                if rr.skipped:
                    say(f"  {len(rr.skipped)} of {rr.samples} samples left out, their queries cannot be rebuilt "
                        f"exactly (see not_exported.txt): e.g. sample {rr.skipped[0][0]}: {rr.skipped[0][1]}")
    return 0
