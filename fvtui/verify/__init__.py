"""Marabou on the numpy copy of a network: the fv search for counterexamples, robustness checks
and certified radii, run in a pool of killable worker processes. Never imports torch."""

from .network import Network
from .pool import SearchTask, SolverPool
from .results import Counterexample, QueryRecord, RadiusResult, SearchResult, VerifyResult
from .search import certified_radius, search_counterexamples, verify_sample

__all__ = [
    "Counterexample",
    "Network",
    "QueryRecord",
    "RadiusResult",
    "SearchResult",
    "SearchTask",
    "SolverPool",
    "VerifyResult",
    "certified_radius",
    "search_counterexamples",
    "verify_sample",
]
