"""What the engine tells its front ends. Plain dataclasses: no UI knowledge flows the other way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from .config import RoundSettings
from .records import LabelRequest, QueriedSample, RoundRecord, SampleVerification, SyntheticBatch


@dataclass(frozen=True)
class RoundStarted:
    round: int
    rounds_target: int
    settings: RoundSettings


@dataclass(frozen=True)
class PhaseStarted:
    round: int
    phase: str  # one of records.PHASES, or 'initial' for the first training
    total: int = 0  # steps, when the phase reports progress


@dataclass(frozen=True)
class PhaseProgress:
    round: int
    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class SamplesQueried:
    """The round's picks and their labels, as soon as they are known (long before the round ends)."""

    round: int
    queried: tuple[QueriedSample, ...]


@dataclass(frozen=True)
class LabelsWanted:
    """A person's labels are needed for these samples (the round waits in its label phase)."""

    request: LabelRequest
    pending: int


@dataclass(frozen=True)
class SampleSearching:
    """A sample's search runs: sent as it starts and at each query's start (verify.results.SearchProgress;
    eps and found are None where the solver backend cannot see inside a running search)."""

    round: int
    position: int  # row in the round's queried list
    eps: float | None  # radius of the query it asks now
    found: int | None  # counterexamples so far, seeds included
    queries: int
    started: float  # when the search went out (time.monotonic)


@dataclass(frozen=True)
class SampleVerified:
    round: int
    position: int  # row in the round's queried list
    record: SampleVerification
    points: SyntheticBatch | None = None  # the synthetic samples its kept counterexamples make


@dataclass(frozen=True)
class RoundFinished:
    record: RoundRecord


@dataclass(frozen=True)
class Log:
    message: str
    level: str = "info"  # 'info', 'warning' or 'error'


Event = Union[RoundStarted, PhaseStarted, PhaseProgress, SamplesQueried, LabelsWanted, SampleSearching, SampleVerified,
              RoundFinished, Log]
EventSink = Callable[[Event], None]
