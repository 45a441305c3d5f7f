"""Typed results of a round, as the engine produces them and the store saves them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import RoundSettings

PHASES = ("select", "label", "augment", "train", "evaluate")


@dataclass
class SyntheticBatch:
    """Synthetic training samples with provenance; each carries its source's oracle label."""

    x: np.ndarray  # (m, d) float32
    y: np.ndarray  # (m,) int64
    source: np.ndarray  # (m,) dataset index of the queried sample it came from
    eps: np.ndarray  # (m,) L-inf radius it was found in (the actual distance is <= eps)
    predicted: np.ndarray  # (m,) class the model that made it predicts for it
    seconds: np.ndarray  # (m,) solver time of the query that found it (0 for gradient attacks)
    origin: np.ndarray  # (m,) str: 'marabou', 'lp' (fv's region program), 'fgsm' or 'deepfool'

    @classmethod
    def empty(cls, features: int) -> "SyntheticBatch":
        return cls(np.zeros((0, features), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype="<U8"))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to_arrays(self, prefix: str = "synthetic_") -> dict[str, np.ndarray]:
        return {prefix + f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str = "synthetic_") -> "SyntheticBatch":
        return cls(**{f.name: np.asarray(arrays[prefix + f.name]) for f in dataclasses.fields(cls)})

    @classmethod
    def concat(cls, batches: list["SyntheticBatch"], features: int) -> "SyntheticBatch":
        if not batches:
            return cls.empty(features)
        return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in batches])
                      for f in dataclasses.fields(cls)})


@dataclass
class SampleVerification:
    """One queried sample's counterexample search, as the verification table shows it."""

    source: int  # dataset index
    status: str  # 'counterexample', 'robust', 'timeout' or 'error'
    eps: float  # the last radius searched
    found: int  # counterexamples kept (re-checked with the torch network)
    spurious: int  # solver answers the torch network did not confirm
    queries: int
    seconds: float  # solver time summed over its queries
    message: str = ""
    # The worker's wall time for the whole search: queries plus building them (pool load balance).
    # 0 in sessions saved before fvtui recorded it.
    search_seconds: float = 0.0
    query_seconds: list[float] = field(default_factory=list)  # each query's solver time, in order
    # Each query's wall seconds per phase it passed through (fvtui/verify/phases.py) and its CPU seconds under
    # 'cpu', to the ms: what held a long query. Empty in sessions saved before fvtui recorded it.
    query_phases: list[dict[str, float]] = field(default_factory=list)
    # Solver points that are not among the round's synthetic samples, so that the queries after them
    # can be rebuilt (interop/replay.py): {"query": 0-based index, "x": encode_point, "counted": it
    # counted toward k (the torch check dropped it) or not (spurious to the numpy network too)}.
    unkept: list[dict[str, Any]] = field(default_factory=list)


def longest_query(seconds: list[float], phases: list[dict[str, float]]) -> int | None:
    """The index of the longest of these queries, None when there is none or their phases were not recorded."""
    return int(np.argmax(seconds)) if seconds and len(phases) == len(seconds) else None


def phase_text(phases: dict[str, float]) -> str:
    """A stored query's phases (SampleVerification.query_phases) as a line, largest first:
    'marabou 0.120 s, build 0.006 s; cpu 0.125 s'."""
    parts = sorted(((t, name) for name, t in phases.items() if name != "cpu"), reverse=True)
    text = ", ".join(f"{name} {t:.3f} s" for t, name in parts)
    return f"{text}; cpu {phases['cpu']:.3f} s" if "cpu" in phases else text


@dataclass
class QueryCounts:
    sat: int = 0
    unsat: int = 0
    timeout: int = 0
    error: int = 0
    spurious: int = 0

    def add(self, other: "QueryCounts") -> "QueryCounts":
        return QueryCounts(**{k: getattr(self, k) + getattr(other, k) for k in dataclasses.asdict(self)})


@dataclass
class QueriedSample:
    index: int  # dataset index
    label: int  # the oracle's answer
    score: float  # what the strategy ranked it by
    predicted: int  # what the selecting model predicted


@dataclass
class RoundRecord:
    """Everything a round decided and measured; the arrays live beside it in the store."""

    round: int
    settings: RoundSettings
    labeled: int  # labeled-set size after this round
    synthetic: int  # synthetic samples accumulated up to and including this round
    queried: list[QueriedSample]
    verification: list[SampleVerification]
    queries: QueryCounts
    seconds: dict[str, float]  # per phase
    test_accuracy: float
    pool_size: int  # the candidate pool actually drawn (at most settings.pool_size)
    new_synthetic: int = 0
    finished_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RoundRecord":
        data = dict(data)
        data["settings"] = RoundSettings(**data["settings"])
        data["queried"] = [QueriedSample(**q) for q in data["queried"]]
        data["verification"] = [SampleVerification(**v) for v in data["verification"]]
        data["queries"] = QueryCounts(**data["queries"])
        return cls(**data)


@dataclass(frozen=True)
class LabelRequest:
    """One labelling batch: a round's queried samples (round 0: the initial labelled set, drawn at random)."""

    round: int
    indices: tuple[int, ...]  # dataset indices, in the order queried
    predicted: tuple[int, ...] = ()  # the model's guess of each (empty before the initial network exists)
    confidence: tuple[float, ...] = ()  # its softmax probability
    certified: tuple[bool, ...] = ()  # the guess is certified robust at `eps` (interval bounds): a hint only
    eps: float = 0.0

    def to_dict(self) -> dict:
        return {"round": self.round, "indices": list(self.indices), "predicted": list(self.predicted),
                "confidence": list(self.confidence), "certified": list(self.certified), "eps": self.eps}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelRequest":
        return cls(int(data["round"]), tuple(data["indices"]), tuple(data["predicted"]), tuple(data["confidence"]),
                   tuple(data["certified"]), float(data["eps"]))

    def batch_name(self) -> str:
        return "the initial labelled set" if self.round == 0 else f"round {self.round}"
