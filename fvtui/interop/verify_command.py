"""`fvtui verify MODEL.onnx`: robustness of a network trained elsewhere around test samples.

The network is read into fvtui's numpy `Network` (onnx_import.py), checked against onnxruntime on
the samples, and verified by the same solver pool the sessions use: at one eps (robust,
counterexample, timeout or error per sample) or, with --radius, the certified L-inf radius by
binary search. Counterexamples are written as PNGs: original | counterexample | difference.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

DEFAULT_EPS = 0.02
DEFAULT_SAMPLES = 10


@dataclass
class VerifyOptions:
    model: str
    dataset: str
    samples: int = DEFAULT_SAMPLES
    eps: float | None = None  # None with radius=False: DEFAULT_EPS
    radius: bool = False
    precision: float = 1e-3
    timeout: float = 30.0
    out: str | None = None  # PNG folder (default: MODEL-verify beside the current folder)
    workers: int | None = None
    data_dir: str | None = None
    as_json: bool = False


def check_options(opts: VerifyOptions) -> None:
    if opts.eps is not None and not 0.0 < opts.eps <= 1.0:
        raise UserError(f"eps must be in (0, 1], not {opts.eps:g}")
    if opts.eps is not None and opts.radius:
        raise UserError("give either --eps or --radius, not both")
    if opts.samples < 1:
        raise UserError(f"--samples must be at least 1, not {opts.samples}")
    if not 0 < opts.timeout <= 86_400:  # nan and inf too: every query failed, and --json wrote NaN
        raise UserError(f"--timeout must be in (0, 86400] seconds, not {opts.timeout:g}")
    if not 0.0 < opts.precision < 1.0:
        raise UserError(f"--precision must be in (0, 1), not {opts.precision:g}")


def load_subjects(opts: VerifyOptions):
    """The network and the first N test samples it is verified around, both checked."""
    from ..data import load_dataset
    from .onnx_import import channels_first, from_channels_first, model_input_shape, read_network

    check_options(opts)
    net = read_network(opts.model)  # before the dataset: a bad file fails fast
    dataset = load_dataset(opts.dataset, opts.data_dir)
    if channels_first(model_input_shape(opts.model), dataset.image_shape):  # fvtui's pixels are (H, W, C)
        net = from_channels_first(net, dataset.image_shape)
    if net.input_size != dataset.num_features:
        raise UserError(f"{opts.model} takes {net.input_size} input values, but dataset '{dataset.name}' has "
                        f"{dataset.num_features} per sample ({'x'.join(map(str, dataset.image_shape))})")
    if net.num_classes != dataset.num_classes:
        raise UserError(f"{opts.model} gives {net.num_classes} outputs, but dataset '{dataset.name}' has "
                        f"{dataset.num_classes} classes")
    n = min(opts.samples, int(dataset.test_x.shape[0]))
    x = dataset.test_x[:n].numpy().astype(np.float32)
    labels = dataset.test_y[:n].numpy()
    return net, dataset, x, labels


def run_verify(opts: VerifyOptions, pool=None) -> dict[str, Any]:
    """Verify and return the report (what --json prints); `pool` may be a running SolverPool or DaskSolver."""
    from .onnx_export import onnx_logits

    net, dataset, x, labels = load_subjects(opts)
    n = len(labels)
    from .onnx_import import channels_first, model_input_shape

    shape = model_input_shape(opts.model)
    h, w, *c = dataset.image_shape  # onnxruntime gets each sample in the model's own layout
    as_model = (x.reshape(n, h, w, *c).transpose(0, 3, 1, 2).reshape(n, -1) if channels_first(shape, dataset.image_shape)
                else x)
    try:
        ort_diff = float(np.abs(net.logits(x) - onnx_logits(opts.model, as_model, shape)).max())
    except Exception:  # noqa: BLE001 - e.g. a model onnxruntime cannot run at all
        ort_diff = None
    eps = None if opts.radius else (opts.eps if opts.eps is not None else DEFAULT_EPS)
    predicted = net.predict(x)
    rows = []
    own_pool = pool is None
    if own_pool:
        from ..verify import SolverPool

        pool = SolverPool(opts.workers)
    t0 = time.perf_counter()
    try:
        for i in range(n):
            row = {"index": i, "label": int(labels[i]), "predicted": int(predicted[i])}
            if opts.radius:
                r = pool.certified_radius(net, x[i], precision=opts.precision, timeout=opts.timeout)
                row.update(status=r.status, radius_lower=r.lower,
                           radius_upper=r.upper, queries=r.queries, seconds=round(r.seconds, 3),
                           message=r.message)
                point = r.counterexample
            else:
                r = pool.verify(net, x[i], eps, timeout=opts.timeout)
                row.update(status=r.status, eps=eps, seconds=round(r.seconds, 3), message=r.message)
                point = r.x
            if point is not None:
                point = np.asarray(point, np.float32)
                row["counterexample_class"] = int(net.predict(point))
                row["counterexample_distance"] = float(np.abs(point - x[i]).max())
                row["_point"] = point
            rows.append(row)
    finally:
        if own_pool:
            pool.close()
    seconds = time.perf_counter() - t0
    pngs = _write_pngs(opts, dataset, x, rows)
    for row in rows:
        row.pop("_point", None)
    statuses = [r["status"] for r in rows]
    return {
        "model": str(opts.model), "dataset": dataset.name, "classes": list(dataset.classes), "samples": n,
        "mode": "radius" if opts.radius else "eps",
        "eps": eps, "precision": opts.precision if opts.radius else None, "timeout": opts.timeout,
        "layers": [list(w.shape) for w in net.weights], "onnxruntime_max_abs_diff": ort_diff,
        "counts": {s: statuses.count(s) for s in dict.fromkeys(statuses)}, "seconds": round(seconds, 3),
        "png_folder": str(pngs) if pngs else None, "results": rows,
    }


def inspector_screen(opts: VerifyOptions):
    """`--app`: the inspector over the samples (n / p browse, v verifies at an eps, m finds the radius),
    judged by the ONNX network."""
    from ..app.screens.inspector import InspectorScreen, Judge, Subject

    net, dataset, x, labels = load_subjects(opts)
    name = Path(opts.model).name
    eps = opts.eps if opts.eps is not None else DEFAULT_EPS
    subjects = [Subject(x[i], f"{name} · test sample {i + 1}/{len(x)} (#{i}) · true {dataset.classes[labels[i]]}",
                        f"{dataset.name} test set, nothing verified yet", eps) for i in range(len(x))]
    return InspectorScreen(subjects, 0, Judge(net, name, dataset.classes, dataset.image_shape, opts.timeout),
                           exit_on_close=True)


def _write_pngs(opts: VerifyOptions, dataset, x: np.ndarray, rows: list[dict]) -> Path | None:
    from PIL import Image

    from ..report import side_by_side

    found = [r for r in rows if "_point" in r]
    if not found:
        return None
    folder = Path(opts.out) if opts.out else Path(f"{Path(opts.model).stem}-verify")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for r in found:
            name = f"test{r['index']:05d}_label{r['label']}_to{r['counterexample_class']}.png"
            Image.fromarray(side_by_side(x[r["index"]], r["_point"], dataset.image_shape)).save(folder / name)
            r["png"] = str(folder / name)
    except OSError as exc:
        raise UserError(f"cannot write counterexample PNGs into {folder}: {exc.strerror or exc}") from None
    return folder


def print_report(report: dict[str, Any], as_json: bool, file=None) -> None:
    file = file or sys.stdout
    if as_json:
        print(json.dumps(report, indent=1), file=file)
        return
    layers = " -> ".join(str(s[1]) for s in report["layers"]) + f" -> {report['layers'][-1][0]}"
    diff = report["onnxruntime_max_abs_diff"]
    print(f"{report['model']}: feed-forward ReLU network {layers}; onnxruntime agrees with fvtui's copy to "
          f"{diff:.2e} (max abs logit difference)" if diff is not None else
          f"{report['model']}: feed-forward ReLU network {layers}", file=file)
    radius = report["mode"] == "radius"
    what = (f"certified L-inf radius (precision {report['precision']:g})" if radius
            else f"L-inf eps {report['eps']:g}")
    print(f"{report['samples']} test samples of {report['dataset']}, {what}, {report['timeout']:g} s per query",
          file=file)
    head = ["test", "label", "predicted", "status", "radius in" if radius else "eps", "counterexample", "seconds"]
    table = [head]
    classes = report["classes"]
    for r in report["results"]:
        where = f"[{r['radius_lower']:.4f}, {r['radius_upper']:.4f}]" if radius else f"{r['eps']:g}"
        ce = (f"{classes[r['counterexample_class']]} at {r['counterexample_distance']:.4f}"
              if "counterexample_class" in r else "")
        table.append([str(r["index"]), classes[r["label"]], classes[r["predicted"]], r["status"], where, ce,
                      f"{r['seconds']:.2f}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=file)
    counts = ", ".join(f"{v} {k}" for k, v in report["counts"].items())
    print(f"{counts}; {report['seconds']:.1f} s", file=file)
    if report["png_folder"]:
        print(f"counterexamples as PNG (original | counterexample | difference) in {report['png_folder']}", file=file)
