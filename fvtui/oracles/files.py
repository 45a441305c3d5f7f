"""Headless labelling through files: the pending samples out as a CSV (with image paths, or PNGs in a
folder), their labels back in from the same CSV filled in, through whatever labelling tool a team uses.

The CSV has one row per pending sample: id (the dataset index), image, the model's guess and its
probability, whether interval bounds certify the guess, and an empty label column to fill in with
class names (or their numbers). An import is checked whole before any label is saved: an unknown
id, a duplicate id or an unknown class name is refused with its line, and nothing is saved.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UserError
from .human import HumanOracle

COLUMNS = ("id", "image", "guess", "confidence", "certified", "label")


def waiting_batch(oracle: HumanOracle):
    """The batch asked last, refused when none was ever asked."""
    request = oracle.book.request
    if request is None:
        raise UserError(f"session '{oracle.session}' has asked no one for labels (its oracle is the dataset's "
                        "labels, or no batch has been queried yet)")
    return request


def export_queries(oracle: HumanOracle, dataset, target: str) -> tuple[Path, int]:
    """Write the pending samples to target (a .csv, beside PNGs when the samples have no files of their own;
    or a folder: PNGs and queries.csv). Returns the CSV written and the number of rows."""
    request = waiting_batch(oracle)
    out = Path(target).expanduser()
    folder = out if out.suffix.lower() != ".csv" else None
    csv_path = out if folder is None else folder / "queries.csv"
    pending = oracle.book.pending()
    files = {i: dataset.image_file(i) for i in pending}
    if folder is None and any(f is None for f in files.values()):
        folder = out.with_name(out.stem + "-images")  # the samples have no files of their own: PNGs beside the CSV
    position = {index: k for k, index in enumerate(request.indices)}
    rows = []
    try:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        for index in pending:
            image = files[index]
            if folder is not None:
                from ..pictures import to_pil

                image = folder / f"{index}.png"
                to_pil(dataset.train_x[index].numpy(), dataset.image_shape).save(image)
            k = position[index]
            guessed = bool(request.predicted)
            rows.append({"id": index, "image": str(image),
                         "guess": dataset.classes[request.predicted[k]] if guessed else "",
                         "confidence": f"{request.confidence[k]:.4f}" if guessed else "",
                         "certified": ("yes" if request.certified[k] else "no") if guessed else "", "label": ""})
        with open(csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    return csv_path, len(rows)


def import_labels(oracle: HumanOracle, classes: tuple[str, ...], source: str) -> int:
    """Read labels back (id and label columns; an empty label leaves its sample pending). Returns how many."""
    request = waiting_batch(oracle)
    path = Path(source).expanduser()
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames:  # "id, label" as a person types it
                reader.fieldnames = [name.strip() for name in reader.fieldnames]
            missing = [c for c in ("id", "label") if c not in (reader.fieldnames or ())]
            if missing:
                raise UserError(f"{path}: no {' or '.join(missing)} column (the first line must name the columns "
                                "id and label, as fvtui labels --export writes them)")
            answers = _parse(reader, path, request, classes)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a CSV file ({exc})") from None
    for index, label in answers.items():
        oracle.give(index, label)
    return len(answers)


def _parse(reader: csv.DictReader, path: Path, request, classes: tuple[str, ...]) -> dict[int, int]:
    asked, by_name = set(request.indices), {name: c for c, name in enumerate(classes)}
    short = [name.split(" - ", 1)[1] for name in classes if " - " in name]  # MNIST's "7 - seven": "seven" too
    if len(set(short)) == len(classes):
        by_name |= {name: c for c, name in enumerate(short)}
    answers: dict[int, int] = {}
    first_line: dict[int, int] = {}
    for row in reader:
        line = reader.line_num
        text, name = (row.get("id") or "").strip(), (row.get("label") or "").strip()
        if not text and not name:
            continue
        where = f"{path} line {line}"
        try:
            index = int(text)
        except ValueError:
            raise UserError(f"{where}: id '{text}' is not a sample id (a whole number)") from None
        if index not in asked:
            raise UserError(f"{where}: unknown id {index}: it is not one of the {len(asked)} samples of "
                            f"{request.batch_name()} waiting for labels")
        if index in first_line:
            raise UserError(f"{where}: id {index} appears twice (first on line {first_line[index]})")
        first_line[index] = line
        if not name:
            continue
        if name in by_name:
            answers[index] = by_name[name]
        elif name.isdecimal() and name.isascii() and int(name) < len(classes):
            answers[index] = int(name)
        else:
            raise UserError(f"{where}: unknown class '{name}'; the classes are {', '.join(classes)} "
                            f"(or their numbers 0-{len(classes) - 1})")
    return answers
