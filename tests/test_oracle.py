"""A person as the oracle, headless: an unlabelled folder of PNGs labelled through exported CSVs round by
round to the end, the export/import round trip, each bad labels file (its line named, nothing saved),
the label journal surviving a killed process, and the interval-bound hint being sound."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_own_data import image_folder

from fvtui.cli import main
from fvtui.config import RoundSettings, SessionConfig
from fvtui.data import load_dataset
from fvtui.errors import UserError
from fvtui.model import to_network
from fvtui.oracles import HumanOracle, LabelBook
from fvtui.store import SessionStore
from fvtui.verify.interval import certified

CLASSES = (0, 1, 7)  # T-shirt/top, Trouser, Sneaker in the demo data: their folder names sort to 7, 0, 1
SMALL = ["--rounds", "2", "--init-size", "6", "--query-size", "3", "--pool-size", "30", "--epochs", "2",
         "--hidden", "8", "--strategy", "margin", "--augment", "fgsm", "--advs-per-sample", "2"]


def unlabelled_folder(root: Path, demo, per_class: int = 12) -> dict[str, str]:
    """PNGs of demo images of three classes, no class folders; returns each file's true class folder name."""
    root.mkdir(parents=True)
    truth = {}
    for c in CLASSES:
        for row in np.flatnonzero(demo.train_y.numpy() == c)[:per_class]:
            name = f"img{row:05d}.png"
            pixels = (demo.train_x[row].numpy().reshape(28, 28) * 255).round().astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name)
            truth[name] = demo.classes[c].replace("/", "-")
    return truth


def fvtui(capsys, sessions: Path, *args: str) -> tuple[int, str]:
    code = main(["--sessions-dir", str(sessions), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def fill(exported: Path, filled: Path, truth: dict[str, str], only: int | None = None) -> list[dict]:
    """The exported CSV with its label column filled in as a person would (the first `only` rows)."""
    with open(exported, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for k, row in enumerate(rows):
        row["label"] = truth[Path(row["image"]).name] if only is None or k < only else ""
    with open(filled, "w", newline="") as fh:
        writer = csv.DictWriter(fh, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    return rows


@pytest.fixture
def unlabelled(tmp_path, demo):
    pool = tmp_path / "pool"
    truth = unlabelled_folder(pool, demo)
    test = image_folder(tmp_path / "test", demo, per_class=4, classes=CLASSES)
    return pool, test, truth


def test_an_unlabelled_folder_is_labelled_through_files_to_the_end(tmp_path, capsys, unlabelled):
    pool, test, truth = unlabelled
    dataset = load_dataset(str(pool), test=str(test))
    assert dataset.unlabelled and dataset.classes == ("Sneaker", "T-shirt-top", "Trouser")  # the test set's folders
    assert (dataset.train_x.shape, dataset.test_x.shape) == ((36, 784), (12, 784))
    sessions = tmp_path / "s"
    code, out = fvtui(capsys, sessions, "new", "--headless", "--dataset", str(pool), "--test", str(test),
                      "--name", "u", *SMALL)
    assert code == 2
    assert "6 of the 6 samples of the initial labelled set wait for a person's labels" in out
    assert "fvtui labels u --export" in out and "--import" in out

    code, out = fvtui(capsys, sessions, "labels", "u", "--export", str(tmp_path / "q0.csv"))
    assert code == 0 and "6 samples of the initial labelled set wait for labels" in out
    rows = fill(tmp_path / "q0.csv", tmp_path / "l0.csv", truth, only=4)
    assert [Path(r["image"]).parent for r in rows] == [pool.resolve()] * 6  # the person's own files
    assert {r["guess"] for r in rows} == {""}  # no network before the initial set is labelled
    assert fvtui(capsys, sessions, "labels", "u", "--import", str(tmp_path / "l0.csv"))[0] == 0
    code, out = fvtui(capsys, sessions, "resume", "u", "--headless")  # two rows were left empty
    assert code == 2 and "2 of the 6 samples of the initial labelled set wait" in out
    main(["--sessions-dir", str(sessions), "show", "u", "--json"])
    assert json.loads(capsys.readouterr().out)["in_progress"]["waiting_for_labels"] == 2

    fill(tmp_path / "q0.csv", tmp_path / "l0.csv", truth)
    code, out = fvtui(capsys, sessions, "labels", "u", "--import", str(tmp_path / "l0.csv"))
    assert code == 0 and "6 labels saved. every sample of the initial labelled set is labelled" in out
    for r in (1, 2):
        code, out = fvtui(capsys, sessions, "resume", "u", "--headless")
        assert code == 2 and f"3 of the 3 samples of round {r} wait" in out
        exported = tmp_path / f"q{r}"
        assert fvtui(capsys, sessions, "labels", "u", "--export", str(exported))[0] == 0  # a folder: PNGs
        rows = list(csv.DictReader(open(exported / "queries.csv")))
        assert sorted(p.name for p in exported.glob("*.png")) == sorted(f"{row['id']}.png" for row in rows)
        assert all(row["guess"] in truth.values() and 0 < float(row["confidence"]) <= 1 for row in rows)
        for row in rows:  # the PNG written is the training sample, pixel for pixel
            source = dataset.image_file(int(row["id"]))
            assert np.array_equal(np.asarray(Image.open(row["image"])), np.asarray(Image.open(source)))
            row["label"] = truth[source.name]
        with open(tmp_path / f"l{r}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, ["id", "label"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        assert fvtui(capsys, sessions, "labels", "u", "--import", str(tmp_path / f"l{r}.csv"))[0] == 0
    code, out = fvtui(capsys, sessions, "resume", "u", "--headless")
    assert code == 0 and "finished 2 rounds" in out
    main(["--sessions-dir", str(sessions), "show", "u", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert [r["labeled"] for r in shown["rounds"]] == [9, 12]
    with SessionStore(sessions).open("u", writable=False) as session:
        rounds = session.rounds
    for record in rounds:  # every label the engine trained on is the person's
        assert all(dataset.classes[q.label] == truth[dataset.image_file(q.index).name] for q in record.queried)
    code, out = fvtui(capsys, sessions, "labels", "u", "--import", str(tmp_path / "l2.csv"))  # changed them unseen
    assert code == 2 and "round 2 is trained on already: its labels can no longer change" in out

    (sessions / "u" / "labels.jsonl").unlink()  # where a person's labels live: without it nothing can train
    code, out = fvtui(capsys, sessions, "resume", "u", "--headless", "--rounds", "3")
    assert code == 2 and "the labels of 12 labelled samples are missing" in out


def test_export_import_round_trip_and_each_bad_labels_file(tmp_path, capsys, demo):
    store = SessionStore(tmp_path / "s")
    config = SessionConfig("demo", rounds=1, init_size=5, hidden=(8,), epochs=1, oracle="human",
                           settings=RoundSettings(strategy="margin", augment="none", query_size=3, pool_size=40))
    session = store.create("d", config)
    session.close()
    code, out = fvtui(capsys, store.root, "resume", "d", "--headless")
    assert code == 2 and "5 of the 5 samples" in out
    code, out = fvtui(capsys, store.root, "labels", "d", "--export", str(tmp_path / "q.csv"))
    rows = list(csv.DictReader(open(tmp_path / "q.csv")))
    ids = [int(r["id"]) for r in rows]
    for r in rows:  # demo samples have no files: PNGs beside the CSV, pixel for pixel the sample
        assert Path(r["image"]).parent == tmp_path / "q-images"
        png = np.asarray(Image.open(r["image"]), np.float32) / 255
        assert np.abs(png.ravel() - demo.train_x[int(r["id"])].numpy()).max() <= 0.5 / 255

    def journal() -> list[dict]:
        with store.open("d", writable=False) as s:
            return s.label_journal().read()

    before = journal()
    bad = {
        "unknown id": (f"id,label\n{ids[0]},Trouser\n99999,Bag\n", r"line 3: unknown id 99999"),
        "duplicate id": (f"id,label\n{ids[0]},Trouser\n{ids[1]},Bag\n{ids[0]},Coat\n",
                         rf"line 4: id {ids[0]} appears twice \(first on line 2\)"),
        "unknown class": (f"id,label\n{ids[0]},Trouser\n{ids[1]},Jumper\n", r"line 3: unknown class 'Jumper'"),
        "not a number": ("id,label\nfive,Trouser\n", r"line 2: id 'five' is not a sample id"),
        "no label column": ("id,class\n1,Trouser\n", r"no label column"),
        "a digit that is no number": (f"id,label\n{ids[0]},²\n", r"line 2: unknown class '²'"),  # was a traceback
    }
    for what, (text, message) in bad.items():
        path = tmp_path / f"{what}.csv"
        path.write_text(text)
        code, out = fvtui(capsys, store.root, "labels", "d", "--import", str(path))
        assert code == 2, what
        assert f"{path}" in out and re.search(message, out), (what, out)
    assert journal() == before  # a refused file saves nothing, not even its good lines
    (tmp_path / "typed.csv").write_text(f"id, label\n{ids[0]}, Trouser\n")  # spaces after commas, as typed
    code, out = fvtui(capsys, store.root, "labels", "d", "--import", str(tmp_path / "typed.csv"))
    assert code == 0 and out.startswith("1 labels saved.")

    labels = ["Trouser", "3", "Ankle boot", "Bag", "T-shirt/top"]  # class names, or their numbers
    with open(tmp_path / "l.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["id", "image", "guess", "confidence", "certified", "label"])
        writer.writeheader()
        writer.writerows({**r, "label": label} for r, label in zip(rows, labels))
    assert fvtui(capsys, store.root, "labels", "d", "--import", str(tmp_path / "l.csv"))[0] == 0
    with store.open("d", writable=False) as s:
        book = LabelBook(s.label_journal().read())
    assert book.labels == dict(zip(ids, [1, 3, 9, 8, 0])) and not book.pending()
    code, out = fvtui(capsys, store.root, "labels", "d")
    assert "every sample of the initial labelled set is labelled" in out


def test_mnist_class_names_are_read_with_or_without_their_digit():
    """MNIST's classes are '7 - seven': 'seven' was an unknown class."""
    import io

    from fvtui.oracles.files import _parse
    from fvtui.records import LabelRequest

    classes = ("0 - zero", "1 - one")
    reader = csv.DictReader(io.StringIO("id,label\n5,one\n6,0 - zero\n7,1\n"))
    assert _parse(reader, Path("l.csv"), LabelRequest(1, (5, 6, 7)), classes) == {5: 1, 6: 0, 7: 1}


def test_skip_returns_a_sample_to_the_pool_and_undo_takes_answers_back(tmp_path, demo):
    store = SessionStore(tmp_path / "s")
    config = SessionConfig("demo", rounds=1, init_size=4, hidden=(8,), epochs=1, oracle="human",
                           settings=RoundSettings(strategy="margin", augment="none", query_size=3, pool_size=40))
    from fvtui.engine import Engine
    from fvtui.oracles import LabelsPending

    with store.create("k", config) as session:
        with pytest.raises(LabelsPending, match="4 of the 4 samples"):
            Engine(session, demo)
        oracle = HumanOracle(session.label_journal(), demo.num_classes, "k", wait=False)
        first = oracle.book.request.indices
        for index in first[:3]:
            oracle.give(index, 2)
        oracle.skip(first[3])
        assert oracle.undo() == first[3] and oracle.book.pending() == [first[3]]
        oracle.skip(first[3])
        with pytest.raises(UserError, match="not in the batch"):
            oracle.give(12345, 1)
        with pytest.raises(UserError, match="not one of the 10 classes"):
            oracle.give(first[0], 10)
        with Engine(session, demo) as engine, pytest.raises(LabelsPending, match="3 of the 3 samples of round 1"):
            engine.run()
        assert session.initial().labeled.tolist() == sorted(first[:3])  # the skipped sample is not labelled
        oracle = HumanOracle(session.label_journal(), demo.num_classes, "k", wait=False)
        asked = oracle.book.request.indices
        assert first[3] not in session.initial().labeled  # back in the pool: a later round may query it
        oracle.give(asked[0], 4)
        oracle.skip(asked[1])
        oracle.give(asked[2], 6)
        with Engine(session, demo) as engine:
            engine.run()
            assert engine.labels[list(first[:3])].tolist() == [2, 2, 2]  # the person's, not the dataset's
        record = session.rounds[0]
    assert [(q.index, q.label) for q in record.queried] == [(asked[0], 4), (asked[2], 6)]
    assert record.labeled == 5


KILLED = """
import os, signal, sys
from fvtui.store import SessionStore
from fvtui.oracles import HumanOracle
session = SessionStore(sys.argv[1]).open("k")
oracle = HumanOracle(session.label_journal(), 10, "k", wait=False)
for index in oracle.book.request.indices[:3]:
    oracle.give(index, 7)
with open(session.path / "labels.jsonl", "ab") as fh:
    fh.write(b'{"do":"label","index":')  # a write the kill cuts short
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_labels_typed_before_a_kill_are_kept(tmp_path, demo):
    store = SessionStore(tmp_path / "s")
    config = SessionConfig("demo", rounds=1, init_size=5, hidden=(8,), epochs=1, oracle="human",
                           settings=RoundSettings(strategy="margin", augment="none", query_size=3, pool_size=40))
    from fvtui.engine import Engine
    from fvtui.oracles import LabelsPending

    with store.create("k", config) as session, pytest.raises(LabelsPending):
        Engine(session, demo)
    run = subprocess.run([sys.executable, "-c", KILLED, str(store.root)], capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert run.returncode == -signal.SIGKILL, run.stderr
    with store.open("k") as session:
        oracle = HumanOracle(session.label_journal(), 10, "k", wait=False)
        asked = oracle.book.request.indices
        assert oracle.book.labels == {i: 7 for i in asked[:3]} and oracle.book.pending() == list(asked[3:])
        oracle.give(asked[3], 1)  # the torn line was cut off: the next label is a whole line
        assert LabelBook(session.label_journal().read()).labels[asked[3]] == 1


def test_interval_bounds_certify_only_what_holds(trained, demo):
    net = to_network(trained)  # the numpy copy the solver gets (its last layer has no bias)
    x = demo.test_x[:200].numpy()
    assert certified(net, x, 0.0).all()  # the guess itself (no ties in float32 logits here)
    assert not certified(net, x, 1.0).any()  # the whole cube holds every image
    eps = 0.01
    sure = np.flatnonzero(certified(net, x, eps))
    assert 0 < sure.size < 200  # a real mixture: some fragile, some certified
    rng = np.random.default_rng(0)
    for row in sure:  # corners of the box, where a ReLU network's extremes lie, never change the guess
        corners = np.clip(x[row] + eps * rng.choice([-1.0, 1.0], size=(64, x.shape[1])), 0, 1).astype(np.float32)
        with torch.no_grad():
            guesses = trained(torch.from_numpy(corners)).argmax(1).numpy()
        assert (guesses == net.predict(x[row])).all()


def test_unlabelled_images_need_a_test_set_and_a_person(tmp_path, capsys, unlabelled):
    pool, test, _ = unlabelled
    with pytest.raises(UserError, match="holds images but no class folders: unlabelled images need --test"):
        load_dataset(str(pool))
    sessions = tmp_path / "s"
    code, out = fvtui(capsys, sessions, "new", "--headless", "--dataset", str(pool), "--test", str(test),
                      "--oracle", "dataset", *SMALL)
    assert code == 2 and "--oracle dataset: these images have no labels of their own" in out
    assert not sessions.exists()  # refused before anything was created
