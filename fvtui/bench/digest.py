"""A session's digest: all a benchmark report takes from it (its round records, the paper's diversity
statistics, the within-sample distance moments), in one small file in the output folder.

Sessions hold megabytes of synthetic samples and weights per round and live on one machine; the
digests (tens of kB each) can be committed beside the tables. A benchmark whose sessions folder
is gone is then re-reported from them, and its finished sessions are not run again.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import RoundSettings, SessionConfig
from ..atomic import write_atomic
from ..errors import UserError
from ..metrics import pairwise_distance_stats, within_group_distances
from ..records import RoundRecord, SyntheticBatch
from ..store import Session

DIGEST_DIR = "sessions"  # inside a benchmark's output folder
SUFFIX = ".json.gz"
FORMAT = 1


@dataclass(frozen=True)
class Moments:
    """Pairwise distances pooled over rounds, kept as sums so that seeds pool without the arrays."""

    pairs: int = 0
    total: float = 0.0
    squares: float = 0.0
    sources: int = 0  # queried samples with two or more synthetic samples
    samples: int = 0  # their synthetic samples

    @classmethod
    def of(cls, distances: np.ndarray, sources: int, samples: int) -> "Moments":
        d = np.asarray(distances, dtype=np.float64)
        return cls(int(d.size), float(d.sum()), float(np.square(d).sum()), sources, samples)

    @staticmethod
    def pooled(parts: list["Moments"]) -> tuple[int, float, float]:
        """Pairs, mean and (population) std of all the distances together."""
        pairs = sum(p.pairs for p in parts)
        mean = sum(p.total for p in parts) / pairs
        return pairs, mean, math.sqrt(max(sum(p.squares for p in parts) / pairs - mean * mean, 0.0))


@dataclass
class Digest:
    name: str
    path: Path  # where it was read from or will be written
    config: SessionConfig
    settings: RoundSettings  # what the session was set to continue with
    rounds: list[RoundRecord]
    diversity: dict[int, dict[str, float]]  # the paper's statistics of round 1 and the last round
    within: Moments | None  # None: no augmentation made several samples per queried sample


def of_session(session: Session, rounds: int, folder: Path) -> Digest:
    records = session.rounds[:rounds]
    augments = session.config.settings.augment != "none" or any(r.settings.augment != "none" for r in records)
    return Digest(session.name, folder / f"{session.name}{SUFFIX}", session.config, session.settings, records,
                  paper_diversity(session, records), within_sample(session, records) if augments else None)


def paper_diversity(session: Session, records: list[RoundRecord]) -> dict[int, dict[str, float]]:
    """The paper's statistics for round 1 and the last round (rounds with fewer than two synthetic
    samples are left out)."""
    import torch

    from ..model import logits, model_from_numpy

    out: dict[int, dict[str, float]] = {}
    if not records or sum(r.new_synthetic for r in records) < 2:
        return out
    first = records[0].settings
    n = first.query_size * first.advs_per_sample
    synthetic = [session.synthetic(r.round) for r in records]
    every = SyntheticBatch.concat(synthetic, synthetic[0].x.shape[1]).x
    last = len(records)
    for round_index, samples in ((1, every[:n]), (last, every[-n:])):
        if samples.shape[0] < 2 or round_index in out:
            continue
        state = session.model_state(round_index)
        inputs, classes = _sizes(state)
        model = model_from_numpy(state, inputs, session.config.hidden, classes)
        feats = logits(model, torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))).numpy()
        out[round_index] = {"samples": samples.shape[0], **pairwise_distance_stats(feats)}
    return out


def within_sample(session: Session, records: list[RoundRecord]) -> Moments:
    """Within-sample pairwise distances of a session's synthetic samples (hidden-layer features of the
    model that made them), pooled over its rounds."""
    import torch

    from ..model import embeddings, model_from_numpy

    distances, sources, samples = [], 0, 0
    for record in records:
        if record.new_synthetic < 2:
            continue
        batch = session.synthetic(record.round)
        counts = np.unique(batch.source, return_counts=True)[1]
        if not (counts >= 2).any():
            continue
        state = session.model_state(record.round - 1)
        inputs, classes = _sizes(state)
        model = model_from_numpy(state, inputs, session.config.hidden, classes)
        feats = embeddings(model, torch.from_numpy(np.ascontiguousarray(batch.x, dtype=np.float32))).numpy()
        distances.append(within_group_distances(feats, batch.source))
        sources += int((counts >= 2).sum())
        samples += int(counts[counts >= 2].sum())
    return Moments.of(np.concatenate(distances) if distances else np.zeros(0), sources, samples)


def _sizes(state: dict[str, np.ndarray]) -> tuple[int, int]:
    """Input and output sizes from the weights (no dataset needed)."""
    weights = sorted((k for k in state if k.endswith("weight")), key=lambda k: int(k.split(".")[-2]))
    return int(state[weights[0]].shape[1]), int(state[weights[-1]].shape[0])


def save(digest: Digest) -> Path:
    data = {"format": FORMAT, "name": digest.name, "config": digest.config.to_dict(),
            "settings": asdict(digest.settings), "rounds": [r.to_dict() for r in digest.rounds],
            "diversity": {str(k): v for k, v in digest.diversity.items()},
            "within": asdict(digest.within) if digest.within is not None else None}
    blob = gzip.compress(json.dumps(data, sort_keys=True).encode(), mtime=0)  # same rounds, same bytes
    path = digest.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_bytes() == blob:
            return path
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    write_atomic(path, blob)
    return path


def load(path: Path) -> Digest:
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
        if data.get("format", 0) > FORMAT:
            raise UserError(f"{path} was written by a newer fvtui (digest format {data['format']}); upgrade fvtui")
        return Digest(data["name"], path, SessionConfig.from_dict(data["config"]), RoundSettings(**data["settings"]),
                      [RoundRecord.from_dict(r) for r in data["rounds"]],
                      {int(k): v for k, v in data["diversity"].items()},
                      Moments(**data["within"]) if data["within"] is not None else None)
    except UserError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not a readable session digest ({exc}); delete it to run that session "
                        "again") from None


def load_all(folder: Path | None) -> dict[str, Digest]:
    if folder is None or not folder.is_dir():
        return {}
    return {d.name: d for d in map(load, sorted(folder.glob(f"*{SUFFIX}")))}

