"""What the solver side hands back: plain picklable records, so they cross the worker pipe as is."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class QueryRecord:
    """One solver query of a search.

    status: 'sat' (a confirmed counterexample), 'spurious' (Marabou said SAT but the numpy network
    still predicts the winner there), 'unsat', 'timeout' or 'error'. `presolved` marks an UNSAT
    decided by the exclusion simplification alone, without calling Marabou. The 'start' progress
    event carries a record with status 'running'.
    """

    eps: float
    status: str
    seconds: float  # building plus solving
    disjunctions: int  # two-sided exclusions left after simplification
    presolved: bool = False
    milp: bool = False  # an UNSAT HiGHS decided (branch and bound first at a new eps, or after Marabou's slice)
    narrowed: bool = False  # a SAT whose point Marabou found near HiGHS' solution (search.NARROWS)
    lp: bool = False  # a SAT whose point the activation-region program found (points='lp', region.py)
    point: str = ""  # 'spurious': the solver's point (encode_point), which later queries exclude
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds per phases.PHASES the query passed through
    cpu: float = 0.0  # CPU seconds of the search's process and its forks during the query (phases.py)


def encode_point(x: np.ndarray) -> str:
    """A flat float32 input as plain JSON text, bit-exact."""
    return base64.b64encode(np.ascontiguousarray(x, np.float32).tobytes()).decode()


def decode_point(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32).copy()


@dataclass
class Counterexample:
    x: np.ndarray = field(repr=False)  # float32 flat input
    eps: float  # radius of the box it was found in
    predicted: int  # class the numpy network gives it
    seconds: float  # time of the query that found it (0 for seeds)
    source: str  # 'marabou', 'lp' (region.py) or 'seed'


@dataclass(frozen=True)
class SearchProgress:
    """Where a running search is, for a live view, as of the query it just started. `found` counts the
    points streamed so far, seeds included (the model's check at the end may reject some). None where
    the backend cannot see inside a running search (Dask): then only that it runs is known."""

    eps: float | None = None  # the radius of the query it is asking
    found: int | None = None
    queries: int = 0  # started so far, this one included
    started: float = 0.0  # when the search went out (time.monotonic, in the process that ran run_searches)


@dataclass
class SearchResult:
    """The fv search of one sample.

    status: 'sat' (k counterexamples found), 'exhausted' (every box up to eps = 1 tried, fewer
    than k), 'timeout' (a query ran out of time: the search stops there, protocol step 5) or
    'error' (the solver failed or the worker died). Counterexamples found before a timeout or an
    error are kept.
    """

    status: str
    counterexamples: list[Counterexample] = field(default_factory=list)
    queries: list[QueryRecord] = field(default_factory=list)
    final_eps: float = 0.0
    seconds: float = 0.0
    message: str = ""

    @property
    def solver_seconds(self) -> float:
        return sum(q.seconds for q in self.queries)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, bit-exact: counterexamples as base64 float32 (the round journal stores this)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # asdict would deep-copy every point
        data["queries"] = [dataclasses.asdict(q) for q in self.queries]
        data["counterexamples"] = [{**{f.name: getattr(ce, f.name) for f in dataclasses.fields(ce)}, "x": encode_point(ce.x)}
                                   for ce in self.counterexamples]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchResult":
        data = dict(data)
        data["queries"] = [QueryRecord(**q) for q in data["queries"]]
        data["counterexamples"] = [Counterexample(**{**ce, "x": decode_point(ce["x"])})
                                   for ce in data["counterexamples"]]
        return cls(**data)


@dataclass
class VerifyResult:
    """Robustness of one sample in the L-inf box of radius eps.

    status: 'robust' (no other class reaches the winner's logit anywhere in the box), 'counterexample'
    (x is an input of the box the network gives class `predicted`), 'undecided' (a class ties with the
    winner in the box, but no input found changes the prediction), 'timeout' or 'error'.
    """

    status: str
    eps: float
    seconds: float
    x: np.ndarray | None = field(default=None, repr=False)
    predicted: int | None = None
    message: str = ""


@dataclass
class RadiusResult:
    """The certified L-inf radius lies in [lower, upper].

    lower: the largest eps proven robust; upper: the smallest eps with a counterexample or a tie
    (`hi`, 1.0 by default, when none was found); `counterexample`: the one at the smallest such eps.
    status: 'exact' (the bracket is within the precision), 'timeout' or 'error' (the search stopped
    with the bracket found so far).
    """

    lower: float
    upper: float
    status: str
    seconds: float
    queries: int  # solver queries run
    counterexample: np.ndarray | None = field(default=None, repr=False)
    message: str = ""
