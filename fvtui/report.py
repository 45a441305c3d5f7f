"""Read-only views of saved sessions: the list table, `show`, and `export`."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .errors import UserError
from .metrics import aubc
from .store import Session, SessionStore


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _console() -> Console:
    """Rich fits its tables to a terminal, and to 80 columns when output goes to a pipe or a file; there
    nothing is cut (a session name cut to "fashionmnist…" cannot be resumed) and each row stays one line."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)


def print_list(store: SessionStore) -> int:
    summaries = store.list()
    console = _console()
    if not summaries:
        console.print(f"no sessions in {store.root}; start one with: fvtui new --dataset demo")
        return 0
    table = Table("name", "dataset", "method", "rounds", "last acc", "AUBC", "last change", box=None)
    for s in summaries:
        if s.problem:
            table.add_row(s.name, "[red]unreadable[/]", "-", "", "", "", s.updated)
        else:
            table.add_row(s.name, s.dataset, s.method, f"{s.rounds_done}/{s.rounds_target}", _fmt(s.last_accuracy),
                          _fmt(s.aubc), s.updated)
    console.print(table)
    for s in summaries:  # below the table, whose columns a long reason would stretch
        if s.problem:
            console.print(f"[red]{s.name}[/]: {s.problem} (fvtui delete {s.name} removes it)")
    return 0


def session_json(session: Session) -> dict[str, Any]:
    config = session.config.to_dict()
    config.update(config.pop("settings"))  # round 1's settings, flat: dataset, strategy, augment, seed...
    initial = session.initial()
    return {
        "name": session.name,
        "config": config,
        "next_settings": dataclasses.asdict(session.settings),
        "initial_accuracy": None if initial is None else initial.test_accuracy,
        "aubc": session.aubc,
        # A timed-out query cut its sample's search short: on a less loaded machine the same seed can
        # find more counterexamples, so these results depend on the wall clock.
        "timed_out_queries": sum(r.queries.timeout for r in session.rounds),
        "in_progress": {"round": len(session.rounds) + 1, "saved_samples": session.journal_progress(),
                        "waiting_for_labels": _waiting_for_labels(session)},
        "rounds": [{
            "round": r.round, "labeled": r.labeled, "synthetic": r.synthetic, "new_synthetic": r.new_synthetic,
            "test_accuracy": r.test_accuracy, "seconds": r.seconds,
            "verification": dataclasses.asdict(r.queries),
            "samples": {status: sum(v.status == status for v in r.verification)
                        for status in ("counterexample", "robust", "timeout", "error")},
            "settings": dataclasses.asdict(r.settings), "pool_size": r.pool_size, "finished_at": r.finished_at,
        } for r in session.rounds],
    }


def print_show(store: SessionStore, name: str, as_json: bool) -> int:
    with store.open(name, writable=False) as session:
        data = session_json(session)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    console = _console()
    cfg = data["config"]
    latest = data["rounds"][-1]["settings"] if data["rounds"] else data["next_settings"]  # as `list` names it
    console.print(f"[bold]{name}[/]  {cfg['dataset']}  {latest['strategy']}+{latest['augment']}  seed {cfg['seed']}  "
                  f"hidden {','.join(map(str, cfg['hidden']))}  rounds {len(data['rounds'])}/{cfg['rounds']}")
    console.print(f"protocol {cfg['protocol']}  {cfg['init']} init  Adam eps {cfg['adam_eps']}  initial samples "
                  f"{'trained on every round' if cfg['train_initial'] else 'train the initial network only'}")
    console.print("next rounds: " + "  ".join(f"{k} {v}" for k, v in data["next_settings"].items()))
    # Settings changed between rounds, against the session's first: only when some were.
    changed = [", ".join(f"{k} {v}" for k, v in r["settings"].items() if v != cfg[k]) for r in data["rounds"]]
    table = Table("round", "labeled", "synthetic", "accuracy", "seconds", "sat", "unsat", "timeout", "error",
                  "spurious", *(["changed settings"] if any(changed) else []), box=None)
    for r, change in zip(data["rounds"], changed):
        v = r["verification"]
        table.add_row(str(r["round"]), str(r["labeled"]), str(r["synthetic"]), f"{r['test_accuracy']:.4f}",
                      f"{sum(r['seconds'].values()):.1f}", *(str(v[k]) for k in
                      ("sat", "unsat", "timeout", "error", "spurious")), *([change] if any(changed) else []))
    console.print(table)
    console.print(f"initial accuracy {_fmt(data['initial_accuracy'])}   AUBC {_fmt(data['aubc'])}")
    if data["timed_out_queries"]:
        console.print(f"[yellow]{data['timed_out_queries']} solver queries timed out: these results depend on the "
                      "machine's load (the same seed may find more counterexamples with more time)[/]")
    progress = data["in_progress"]
    if progress["saved_samples"]:
        console.print(f"round {progress['round']} in progress: {progress['saved_samples']} samples verified and "
                      "saved; resuming reuses them")
    if progress["waiting_for_labels"]:
        console.print(f"[yellow]{progress['waiting_for_labels']} samples wait for your labels: fvtui labels {name} "
                      f"--export queries.csv, or label them in the app (fvtui resume {name})[/]")
    return 0


def _waiting_for_labels(session: Session) -> int:
    """Samples of the batch asked last that no one has labelled or skipped (0 when the dataset labels)."""
    from .oracles import LabelBook

    return len(LabelBook(session.label_journal().read()).pending())


def export(store: SessionStore, name: str, out: str, data_dir: str | None) -> int:
    out_dir = Path(out)
    with store.open(name, writable=False) as session:
        if not session.rounds:
            raise UserError(f"session '{name}' has no finished round to export")
        try:
            (out_dir / "png").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write to {out_dir}: {exc.strerror}") from None
        accuracies = session.accuracies
        with open(out_dir / "learning_curve.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["round", "labeled", "synthetic", "test_accuracy", "aubc_so_far", "seconds"])
            for i, r in enumerate(session.rounds):
                writer.writerow([r.round, r.labeled, r.synthetic, f"{r.test_accuracy:.6f}",
                                 f"{aubc(accuracies[:i + 1]):.6f}", f"{sum(r.seconds.values()):.3f}"])
        batches = [(r.round, session.synthetic(r.round)) for r in session.rounds]
        fields = ("x", "y", "source", "eps", "predicted", "seconds", "origin")
        arrays = {f: np.concatenate([getattr(b, f) for _, b in batches]) for f in fields}
        arrays["round"] = np.concatenate([np.full(len(b), r, np.int64) for r, b in batches])
        np.savez_compressed(out_dir / "synthetic.npz", **arrays)
        written = _export_pngs(session, batches, out_dir / "png", data_dir) if len(arrays["y"]) else 0
    print(f"wrote {out_dir / 'learning_curve.csv'}, {out_dir / 'synthetic.npz'} ({len(arrays['y'])} samples) "
          f"and {written} PNG files in {out_dir / 'png'}")
    return 0


def _export_pngs(session: Session, batches, folder: Path, data_dir: str | None) -> int:
    """Each synthetic sample beside its original and their difference (amplified to full range)."""
    from PIL import Image

    from .data import session_dataset

    dataset = session_dataset(session, data_dir)
    shape = dataset.image_shape
    written = 0
    for round_index, batch in batches:
        counts: dict[int, int] = {}
        for x, source in zip(batch.x, batch.source):
            original = dataset.train_x[int(source)].numpy()
            panel = side_by_side(original, x, shape)
            k = counts[int(source)] = counts.get(int(source), -1) + 1
            Image.fromarray(panel).save(folder / f"r{round_index:04d}_s{int(source)}_{k:02d}.png")
            written += 1
    return written


def side_by_side(original: np.ndarray, synthetic: np.ndarray, shape: tuple[int, ...], gap: int = 2) -> np.ndarray:
    """uint8 image: original | synthetic | |difference| scaled so its largest pixel is white."""
    diff = np.abs(synthetic - original)
    diff = diff / diff.max() if diff.max() > 0 else diff
    tiles = [np.clip(np.asarray(t, np.float64).reshape(shape), 0, 1) for t in (original, synthetic, diff)]
    spacer = np.ones((shape[0], gap, *shape[2:]))
    return (np.concatenate([tiles[0], spacer, tiles[1], spacer, tiles[2]], axis=1) * 255).round().astype(np.uint8)
