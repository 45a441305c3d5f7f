"""Shared fixtures: the bundled demo data (always present) and small trained models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from fvtui.data import load_dataset
from fvtui.model import new_model, train

REAL_DATA = os.environ.get("FVTUI_DATA_DIR")


def pytest_xdist_auto_num_workers(config) -> int:
    """A worker per core, at most four: each imports torch and many start solver processes of their own,
    so more workers than that crowd the machine and stretch the waits of the timing-bound tests."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


@pytest.fixture(scope="session")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="session")
def trained(demo):
    """A 784-32-10 MLP trained briefly on 300 demo images: meaningful predictions, fast to score."""
    model = new_model(demo.num_features, (32,), demo.num_classes, seed=1)
    torch.set_num_threads(1)
    return train(model, demo.train_x[:300], demo.train_y[:300], epochs=5, batch_size=32, lr=1e-3, seed=1)


@pytest.fixture
def sessions_dir(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "sessions"
    monkeypatch.setenv("FVTUI_SESSIONS_DIR", str(path))
    return path


@pytest.fixture
def store(tmp_path, demo):
    """A sessions folder with one finished session, 's' (test files with other needs define their own)."""
    from test_app_support import finished_session

    from fvtui.store import SessionStore

    store = SessionStore(tmp_path / "sessions")
    finished_session(store, demo, "s")
    return store
