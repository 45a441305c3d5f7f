"""Turn the fv search's exclusion disjunctions into input bounds wherever the box allows.

Each earlier counterexample a excludes, per pixel i, the slab a_i - delta < x_i < a_i + delta:
the disjunction `x_i <= a_i - delta OR x_i >= a_i + delta`. Handed to Marabou literally (784 per
counterexample) it blows up (PROTOCOL.md). Against the box most of them are not disjunctions at
all: a side outside the box is impossible, so the other side is a bound; a box already on one side
makes the disjunction true; neither side fitting makes the whole query UNSAT. New bounds can
resolve other disjunctions on the same pixel, so this runs to a fixpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Simplified:
    """The box after tightening, and the disjunctions that really have two feasible sides."""

    lower: np.ndarray  # float64 (n,)
    upper: np.ndarray
    pixels: np.ndarray  # int (d,): pixel of each remaining disjunction
    centers: np.ndarray  # float64 (d,): the excluded value a_i of each remaining disjunction
    infeasible: bool  # no point of the box satisfies every exclusion: UNSAT without the solver


def simplify_exclusions(
    lower: np.ndarray, upper: np.ndarray, points: np.ndarray | list, delta: float = 0.001
) -> Simplified:
    lower = np.array(lower, dtype=np.float64)
    upper = np.array(upper, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, lower.size)
    below, above = pts - delta, pts + delta  # x_i <= below OR x_i >= above
    active = np.ones(pts.shape, dtype=bool)
    infeasible = bool((lower > upper).any())
    while not infeasible:
        left = lower <= below
        right = above <= upper
        active &= ~((upper <= below) | (lower >= above))  # drop the ones the box already implies
        if (active & ~left & ~right).any():
            infeasible = True
            break
        only_left = active & ~right
        only_right = active & ~left
        if not (only_left.any() or only_right.any()):
            break
        # The bounds make these disjunctions implied, so the next pass drops them.
        upper = np.minimum(upper, np.where(only_left, below, np.inf).min(axis=0))
        lower = np.maximum(lower, np.where(only_right, above, -np.inf).max(axis=0))
        infeasible = bool((lower > upper).any())
    if infeasible:
        empty = np.zeros(0)
        return Simplified(lower, upper, empty.astype(np.int64), empty, True)
    rows, cols = np.nonzero(active)
    return Simplified(lower, upper, cols, pts[rows, cols], False)
