"""A person's own images as a Dataset: a folder in torchvision's ImageFolder layout, or an .npz.

Images are brought to one shape (the most common size unless --image-size says otherwise; mixed
sizes without it are refused) and scaled to [0, 1]; class names are the folder names. Without a
test set (--test, or train/ and test/ subfolders) every sixth image of each class, by file name,
is held out for measuring accuracy. A folder of images with no class folders is unlabelled: its
labels come from a person (the human oracle), its classes and accuracy from the --test folder, and
its labels are UNLABELLED (-1) until given. A session records a fingerprint of every file it read,
so a resumed session refuses data that changed since and names the files.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
HOLD_OUT_EVERY = 6
UNLABELLED = -1  # the label of a training image no one has labelled yet


def is_own_data(name: str) -> bool:
    """A --dataset value that names a path rather than a built-in dataset. A built-in name stays the
    built-in dataset even where a folder of that name is here (./mnist names the folder)."""
    from .config import DATASETS

    return bool(name) and name not in DATASETS and ("/" in name or name.endswith(".npz") or Path(name).expanduser().exists())


def dataset_label(name: str) -> str:
    """A short name for a dataset: a built-in's name, or own data's folder or file name."""
    return Path(name).stem if is_own_data(name) else name


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--image-size takes HEIGHTxWIDTH, e.g. 28x28, not '{text}'") from None
    if not (1 <= h <= 1024 and 1 <= w <= 1024):
        raise UserError(f"--image-size must be between 1x1 and 1024x1024, not {text}")
    return h, w


def load_own(path: str, test: str | None = None, image_size: tuple[int, int] | None = None,
             channels: int | None = None):
    """(train_x, train_y, test_x, test_y, image_shape, classes, files): images flat in [0, 1]."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"dataset {root} does not exist")
    if root.suffix == ".npz":
        return _load_npz(root)
    if not root.is_dir():
        raise UserError(f"dataset {root} is neither a folder of images nor an .npz file")
    if test is None and (root / "train").is_dir() and (root / "test").is_dir():
        root, test = root / "train", str(root / "test")
    loose = _loose_images(root)
    if loose and not _class_folders(root):
        if test is None:
            raise UserError(f"{root} holds images but no class folders: unlabelled images need --test FOLDER, "
                            "a labelled image folder (one subfolder per class) that gives the classes a person "
                            "labels with and measures accuracy")
        classes, test_files, test_labels = _scan(Path(test).expanduser())
        files, labels = loose, np.full(len(loose), UNLABELLED, np.int64)
    elif test is not None:
        classes, files, labels = _scan(root)
        test_classes, test_files, test_labels = _scan(Path(test).expanduser())
        if test_classes != classes:
            raise UserError(f"the test set's classes ({', '.join(test_classes)}) differ from the training classes "
                            f"({', '.join(classes)})")
    else:
        classes, files, labels = _scan(root)
        held = np.zeros(len(files), bool)
        for c in range(len(classes)):
            mine = np.flatnonzero(labels == c)
            held[mine[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY]] = True
        test_files, test_labels = [f for f, h in zip(files, held) if h], labels[held]
        files, labels = [f for f, h in zip(files, held) if not h], labels[~held]
        if not test_files:
            raise UserError(f"{root} has too few images to hold out a test set (one in {HOLD_OUT_EVERY} per class); "
                            "give --test FOLDER")
    images = [_open(f) for f in files + test_files]
    size = image_size or _common_size(images, files + test_files)
    mode = {1: "L", 3: "RGB"}.get(channels or (3 if any(im.mode not in ("L", "1", "I", "I;16") for im in images)
                                               else 1))
    arrays = np.stack([np.asarray(im.convert(mode).resize((size[1], size[0]))) for im in images])
    x = arrays.reshape(arrays.shape[0], -1).astype(np.float32) / 255.0
    n = len(files)
    shape = tuple(arrays.shape[1:])
    return x[:n], labels, x[n:], test_labels, shape, tuple(classes), files + test_files


def fingerprint(files: list[Path]) -> dict[str, str]:
    """sha256 of every file read, by path: what a resumed session checks its data against."""
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def check_unchanged(session, dataset) -> None:
    """Own data: refuse files changed since the session recorded them. A sample is an index into the
    sorted files, so one image removed would give every later label, query and export another image."""
    recorded = session.data_fingerprint() if dataset.files else None
    if recorded is not None and (change := compare(recorded, fingerprint(list(dataset.files)))) is not None:
        raise UserError(f"session '{session.name}': {change}; restore those files, or start a new session")


def compare(recorded: dict[str, str], now: dict[str, str]) -> str | None:
    """None if the data is as recorded, else a sentence naming what changed."""
    changed = sorted(f for f in recorded.keys() & now.keys() if recorded[f] != now[f])
    added, removed = sorted(now.keys() - recorded.keys()), sorted(recorded.keys() - now.keys())
    if not (changed or added or removed):
        return None
    parts = [f"{len(v)} {what} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
             for what, v in (("changed", changed), ("added", added), ("removed", removed)) if v]
    return "the data changed since the session began: " + "; ".join(parts)


def _scan(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    folders = _class_folders(root)
    if not folders:
        if _loose_images(root):
            raise UserError(f"{root} holds images but no class folders: a labelled set needs one subfolder per "
                            "class")
        raise UserError(f"{root} is empty: give one subfolder of images per class")
    files, labels = [], []
    for c, folder in enumerate(folders):
        images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise UserError(f"class folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += images
        labels += [c] * len(images)
    if len(folders) < 2:
        raise UserError(f"{root} has one class folder ({folders[0].name}); a classifier needs at least two")
    return [f.name for f in folders], files, np.asarray(labels, np.int64)


def _class_folders(root: Path) -> list[Path]:
    """Subfolders, less hidden ones and the __MACOSX a zip made on a Mac brings (its '._' files are no images)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")


def _loose_images(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return _eight_bit(im.copy())
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None


def _eight_bit(im):
    """16-bit grey scaled to 8 bits: Pillow's own conversion clips at 255, so a 16-bit PNG became black
    and white. Mode I holds 16-bit PNGs in some Pillow versions; values above 255 say which it is."""
    from PIL import Image

    if im.mode.startswith("I;16") or (im.mode == "I" and np.asarray(im).max() > 255):
        return Image.fromarray(np.round(np.asarray(im, np.float64) * (255 / 65535)).astype(np.uint8), "L")
    return im


def _common_size(images, files: list[Path]) -> tuple[int, int]:
    sizes = Counter((im.height, im.width) for im in images)
    if len(sizes) > 1:
        (h, w), _ = sizes.most_common(1)[0]
        odd = next(f for f, im in zip(files, images) if (im.height, im.width) != (h, w))
        raise UserError(f"the images have {len(sizes)} sizes (most are {h}x{w}, {odd} is not); give --image-size "
                        f"HxW, e.g. --image-size {h}x{w}, to resize them all")
    return next(iter(sizes))


def _labels(path: Path, name: str, labels: np.ndarray) -> np.ndarray:
    """Whole-number labels; 0.7 read as 0 would train on labels nobody gave."""
    labels = np.asarray(labels).ravel()
    if labels.size and not (np.issubdtype(labels.dtype, np.number) and np.array_equal(labels, np.round(labels))):
        raise UserError(f"{path}: {name} must hold whole-number class labels, not {labels.dtype} like {labels[0]!r}")
    return labels.astype(np.int64)


def _load_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UserError(f"{path} has no '{key}' array (it needs x: images, y: labels; x_test, y_test optional)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(f"{path} has {'x_test' if 'x_test' in arrays else 'y_test'} without "
                        f"{'y_test' if 'x_test' in arrays else 'x_test'}: a test set needs both")
    x, y = arrays["x"], _labels(path, "y", arrays["y"])
    if x.ndim not in (3, 4) or x.shape[0] != y.shape[0] or not x.shape[0]:
        raise UserError(f"{path}: x must be images (n, h, w) or (n, h, w, c), n > 0, with one label each in y; "
                        f"got x {x.shape}, y {y.shape}")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(c) for c in range(int(y.max()) + 1)]
    if len(set(y.tolist())) < 2:
        raise UserError(f"{path}: every label in y is {y[0]}; a classifier needs at least two classes")
    for name, labels in (("y", y), ("y_test", arrays.get("y_test"))):
        labels = None if labels is None else _labels(path, name, labels)
        if labels is not None and (labels.min() < 0 or labels.max() >= len(classes)):
            raise UserError(f"{path}: {name} has labels outside the {len(classes)} classes (0..{len(classes) - 1})")
    for name in ("x", "x_test"):
        a = arrays.get(name)
        if a is not None and a.size and (not np.issubdtype(a.dtype, np.number) or a.min() < 0 or a.max() > 255):
            raise UserError(f"{path}: {name} must hold pixel values in [0, 255] (or [0, 1]); found "
                            f"{a.dtype} from {a.min()} to {a.max()}")
    if "x_test" in arrays:
        tx, ty = arrays["x_test"], _labels(path, "y_test", arrays["y_test"])
        if tx.shape[1:] != x.shape[1:] or tx.shape[0] != ty.shape[0] or not tx.shape[0]:
            raise UserError(f"{path}: x_test must be images of x's shape {x.shape[1:]}, n > 0, with one label each "
                            f"in y_test; got x_test {tx.shape}, y_test {ty.shape}")
    else:
        held = np.zeros(len(y), bool)
        held[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY] = True
        x, tx, y, ty = x[~held], x[held], y[~held], y[held]

    def scaled(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        return (a / 255.0 if a.max() > 1.0 else a).reshape(a.shape[0], -1)

    return scaled(x), y, scaled(tx), ty, tuple(x.shape[1:]), tuple(classes), [path]
