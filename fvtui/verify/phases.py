"""Where one query's time went: wall seconds per phase, and the CPU time behind them.

A query's total alone cannot say whether Marabou, branch and bound, or a wait for a core held it: the
paper reproduction's longest query (384 s, MNIST random-fv-s4) took 0.13 s when replayed, and its
record could not tell why (benchmarks/SPEED.md#paper-whole). CPU time well below the wall time means
the query waited (a loaded machine, a stop); CPU time near it names the phase that worked.
"""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from typing import Iterator

# In the order a query can pass through them (search.py):
# lp: points='lp', the region program and branch and bound (region.py, bab.py)
# offer: branch and bound's offer before Marabou, to a query without a corner witness (PROOF_FIRST)
# build: building Marabou's input queries (query.py)
# marabou: Marabou's first call on the whole query (its slice, or the whole budget)
# decide: HiGHS after the slice ran out (branch and bound, or the MILP deeper), or the open offer's tree, taken up
# narrowed: Marabou in the boxes around HiGHS' input (search.NARROWS), building included
# whole: Marabou on the whole query once nothing else settled it
PHASES = ("lp", "offer", "build", "marabou", "decide", "narrowed", "whole")


def cpu_seconds() -> float:
    """CPU time of this process and of the children it has reaped: the forks a query runs its slices and
    subtrees in (apart.py, bab.py) are waited for before the query ends."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class PhaseClock:
    """Adds up wall seconds per phase over one query, and its CPU seconds from start to `cpu()`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._cpu_start = cpu_seconds()

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        assert phase in PHASES, phase
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def cpu(self) -> float:
        return cpu_seconds() - self._cpu_start

