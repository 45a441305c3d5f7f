"""A person's own images: an ImageFolder of PNGs or an .npz, run end to end headless, a resumed
session that refuses changed data, and one clear message for each bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fvtui.data import load_dataset
from fvtui.errors import UserError
from fvtui.own_data import is_own_data

SMALL = ["--rounds", "2", "--init-size", "10", "--query-size", "4", "--pool-size", "60", "--epochs", "2",
         "--hidden", "8", "--strategy", "margin", "--augment", "fgsm", "--advs-per-sample", "2"]


def image_folder(root: Path, demo, per_class: int = 12, classes=(0, 1, 7), size=(28, 28)) -> Path:
    """PNGs of demo images, one subfolder per class, named like the demo's classes."""
    for c in classes:
        folder = root / demo.classes[c].replace("/", "-")
        folder.mkdir(parents=True)
        rows = np.flatnonzero(demo.train_y.numpy() == c)[:per_class]
        for i, row in enumerate(rows):
            pixels = (demo.train_x[row].numpy().reshape(28, 28) * 255).round().astype(np.uint8)
            Image.fromarray(pixels, "L").resize(size[::-1]).save(folder / f"{i:03d}.png")
    return root


def fvtui(sessions: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(sessions), *args],
                          capture_output=True, text=True, timeout=300)


def test_an_image_folder_runs_end_to_end_and_refuses_changed_data(tmp_path, demo):
    data = image_folder(tmp_path / "garments", demo)
    loaded = load_dataset(str(data))
    assert loaded.classes == ("Sneaker", "T-shirt-top", "Trouser")  # folder names, sorted
    assert (loaded.train_x.shape, loaded.test_x.shape) == ((30, 784), (6, 784))  # every sixth image held out
    assert loaded.image_shape == (28, 28) and 0 <= float(loaded.train_x.min()) and float(loaded.train_x.max()) <= 1
    first = sorted((data / "Sneaker").iterdir())[0]
    expected = np.asarray(Image.open(first), np.float32).ravel() / 255
    assert np.array_equal(loaded.train_x[0].numpy(), expected)

    sessions = tmp_path / "s"
    run = fvtui(sessions, "new", "--headless", "--dataset", str(data), "--name", "mine", *SMALL)
    assert run.returncode == 0, run.stderr
    shown = json.loads(fvtui(sessions, "show", "mine", "--json").stdout)
    assert shown["config"]["dataset"] == str(data.resolve()) and len(shown["rounds"]) == 2

    Image.new("L", (28, 28), 255).save(first)  # the data changes under the session
    refused = fvtui(sessions, "resume", "mine", "--headless", "--rounds", "3")
    assert refused.returncode == 2
    assert "the data changed since the session began: 1 changed" in refused.stderr and "000.png" in refused.stderr
    assert len(json.loads(fvtui(sessions, "show", "mine", "--json").stdout)["rounds"]) == 2
    # exports and labels name samples by their index into the files: refused too, not written for other images
    for command in (["export", "mine", "--out", str(tmp_path / "out"), "--onnx"],
                    ["labels", "mine", "--export", str(tmp_path / "queries.csv")]):
        refused = fvtui(sessions, *command)
        assert refused.returncode == 2 and "the data changed since the session began" in refused.stderr, command
    assert not (tmp_path / "out").exists() and not (tmp_path / "queries.csv").exists()


def test_an_npz_with_its_own_test_split(tmp_path, demo):
    path = tmp_path / "d.npz"
    x = (demo.train_x[:40].numpy().reshape(-1, 28, 28) * 255).astype(np.uint8)
    np.savez(path, x=x, y=demo.train_y[:40].numpy(), x_test=x[:8], y_test=demo.train_y[:8].numpy())
    loaded = load_dataset(str(path))
    assert (loaded.train_x.shape, loaded.test_x.shape) == ((40, 784), (8, 784))
    assert len(loaded.classes) == int(demo.train_y[:40].max()) + 1


GOOD = dict(x=np.zeros((12, 4, 4), np.uint8), y=np.arange(12) % 2)


@pytest.mark.parametrize("arrays, message", [  # each was a traceback deep in training, or data read wrong
    (dict(GOOD, y=np.zeros(12, int)), "every label in y is 0; a classifier needs at least two classes"),
    (dict(GOOD, x=np.zeros((0, 4, 4)), y=np.zeros(0, int)), r"x must be images .* n > 0"),
    (dict(GOOD, x_test=np.zeros((3, 5, 5)), y_test=np.arange(3) % 2), r"x_test must be images of x's shape \(4, 4\)"),
    (dict(GOOD, x_test=np.zeros((3, 4, 4))), "x_test without y_test: a test set needs both"),
    (dict(GOOD, x=np.full((12, 4, 4), -0.5)), r"x must hold pixel values in \[0, 255\]"),
    (dict(GOOD, y=np.arange(12) % 2 + 0.7), "y must hold whole-number class labels"),
])
def test_a_bad_npz_is_refused_by_name(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_dataset(str(tmp_path / "d.npz"))


def test_a_zips_macosx_folder_is_no_class(tmp_path, demo):
    data = image_folder(tmp_path / "unzipped", demo)
    (data / "__MACOSX" / "Sneaker").mkdir(parents=True)
    Image.new("L", (28, 28)).save(data / "__MACOSX" / "Sneaker" / "._000.png")
    assert load_dataset(str(data)).classes == ("Sneaker", "T-shirt-top", "Trouser")


def test_a_built_in_name_stays_built_in_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()  # it replaced MNIST: "dataset 'mnist' has 2 classes"
    assert not is_own_data("mnist") and is_own_data("./mnist") and not is_own_data("")


def test_16_bit_grey_images_keep_their_levels(tmp_path, demo):
    """Pillow's conversion to 8 bits clips: every 16-bit image became black and white."""
    data = image_folder(tmp_path / "deep", demo)
    for png in data.glob("*/*.png"):
        pixels = np.asarray(Image.open(png), np.uint16) * 257  # 0..255 to 0..65535
        Image.fromarray(pixels).save(png)
    assert Image.open(next(data.glob("*/*.png"))).mode == "I;16"
    loaded = load_dataset(str(data))
    eight_bit = load_dataset(str(image_folder(tmp_path / "shallow", demo)))
    assert np.array_equal(loaded.train_x.numpy(), eight_bit.train_x.numpy())


def test_mixed_sizes_need_an_image_size(tmp_path, demo):
    data = image_folder(tmp_path / "mixed", demo)
    Image.new("L", (30, 20)).save(data / "Trouser" / "odd.png")
    with pytest.raises(UserError, match=r"2 sizes \(most are 28x28, .*odd.png is not\); give --image-size"):
        load_dataset(str(data))
    resized = load_dataset(str(data), image_size="14x14")
    assert resized.image_shape == (14, 14) and resized.train_x.shape[1] == 196


@pytest.mark.parametrize("make, message", [
    (lambda root, demo: root.mkdir() or root, "is empty: give one subfolder of images per class"),
    (lambda root, demo: (image_folder(root, demo), (root / "Empty").mkdir())[0], "class folder .*Empty has no images"),
    (lambda root, demo: (image_folder(root, demo), (root / "Trouser" / "bad.png").write_bytes(b"not a png"))[0],
     "cannot read image .*bad.png"),
    (lambda root, demo: (np.savez(root.with_suffix(".npz"), y=np.zeros(3)), root.with_suffix(".npz"))[1],
     "has no 'x' array"),
    (lambda root, demo: (np.savez(root.with_suffix(".npz"), x=np.zeros((3, 4, 4)), y=np.array([0, 1, 5]),
                                  classes=np.array(["a", "b"])), root.with_suffix(".npz"))[1],
     "y has labels outside the 2 classes"),
])
def test_bad_own_data_gets_one_clear_message(tmp_path, demo, make, message):
    path = make(tmp_path / "data", demo)
    with pytest.raises(UserError, match=message):
        load_dataset(str(path))


def test_a_test_set_with_other_classes_is_refused(tmp_path, demo):
    train = image_folder(tmp_path / "train", demo)
    test = image_folder(tmp_path / "test", demo, classes=(0, 1, 2))
    with pytest.raises(UserError, match="the test set's classes .* differ from the training classes"):
        load_dataset(str(train), test=str(test))
    sessions = tmp_path / "s"
    run = fvtui(sessions, "new", "--headless", "--dataset", str(train), "--test", str(test), *SMALL)
    assert run.returncode == 2 and "differ from the training classes" in run.stderr and not sessions.exists()
