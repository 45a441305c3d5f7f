"""Decide an fv query exactly on a network with one hidden layer: branch and bound over few ReLUs.

The question is whether some input of the box (with its exclusion disjunctions) reaches
logit_r - logit_w = d . relu(W x + b) + k >= margin. A hidden unit with d_j <= 0 only lowers that
margin, so "h_j >= W_j x + b_j, h_j >= 0" models it exactly when maximising: no branching. Only
undecided units with d_j > 0 need a phase; each starts with its triangle relaxation and is split
(on, off) where the program's optimum leaves a gap, and so are the disjunctions a program's point
falls inside. A node whose relaxed maximum stays below the margin is pruned; a node whose point
meets the margin in the real network and every disjunction answers SAT. Every change between
nodes is a bound change, so HiGHS starts each node from the last basis (highspy).

Measured on an UNSAT query of a random+fv search at 32 hidden units (eps 0.06, 21 undecided ReLUs,
9 with d_j > 0; other work on both cores): Marabou 54 s, HiGHS' MILP (milp.py) 20 s (9.4 s with the
same d_j <= 0 relaxation, now in milp.py too), this search 0.56 s. Deeper networks keep milp.py:
there a unit's effect on the margin has no fixed sign.
"""

from __future__ import annotations

import time

import numpy as np

from .milp import Decision
from .network import Network

SLACK = 1e-6  # a node's maximum within this of the margin is never pruned (HiGHS' tolerances are 1e-7)


def applies(net: Network) -> bool:
    return len(net.weights) == 2


def decide(net: Network, lower: np.ndarray, upper: np.ndarray, winner: int, runner_up: int, margin: float,
           pixels=(), centers=(), delta: float = 0.001, time_limit: float = 60.0) -> Decision:
    """'infeasible' (UNSAT), 'feasible' with an input (within HiGHS' tolerance), or 'unknown' (out of time)."""
    import highspy

    start = time.perf_counter()
    (w1, b1), (w2, b2) = net.layer(0), net.layer(1)
    d, k = w2[runner_up] - w2[winner], float(b2[runner_up] - b2[winner])
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    pixels, centers = np.asarray(pixels, np.int64), np.asarray(centers, np.float64)
    n, m = w1.shape[1], w1.shape[0]
    pos, neg = np.maximum(w1, 0.0), np.minimum(w1, 0.0)
    lo, hi = pos @ lower + neg @ upper + b1, pos @ upper + neg @ lower + b1  # exact over the box
    split = (lo < 0) & (hi > 0) & (d > 0)  # the units that may need a phase
    slope = np.where(split, hi / np.where(split, hi - lo, 1.0), 0.0)

    # Variables: x (n), z (m) = W x + b, h (m) >= relu(z). Rows: z - W x = b; h - z >= 0; triangle.
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("presolve", "off")
    inf = highspy.kHighsInf
    h.addVars(n + 2 * m, np.zeros(n + 2 * m), np.ones(n + 2 * m))
    for j in range(m):
        nz = np.flatnonzero(w1[j])
        h.addRow(b1[j], b1[j], nz.size + 1, np.concatenate([[n + j], nz]).astype(np.int32),
                 np.concatenate([[1.0], -w1[j, nz]]))
    for j in range(m):
        h.addRow(0.0, inf, 2, np.array([n + m + j, n + j], np.int32), np.array([1.0, -1.0]))
    for j in range(m):
        h.addRow(-inf, inf, 2, np.array([n + m + j, n + j], np.int32), np.array([1.0, -slope[j]]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.changeColsCost(m, np.arange(n + m, n + 2 * m, dtype=np.int32), d)
    all_cols = np.arange(n + 2 * m, dtype=np.int32)
    ge_rows, tri_rows = np.arange(m, 2 * m, dtype=np.int32), np.arange(2 * m, 3 * m, dtype=np.int32)
    tri_hi = np.where(split, -slope * lo, inf)

    def solve(x_lo, x_hi, phase) -> tuple[float, np.ndarray] | None:
        """The node's relaxed maximum of logit_r - logit_w and its input; phase: +1 on, -1 off, 0 free."""
        z_lo = np.where(phase > 0, np.maximum(lo, 0.0), lo)
        z_hi = np.where(phase < 0, np.minimum(hi, 0.0), hi)
        h_hi = np.where(phase < 0, 0.0, np.maximum(hi, 0.0))
        h.changeColsBounds(all_cols.size, all_cols, np.concatenate([x_lo, z_lo, np.zeros(m)]),
                           np.concatenate([x_hi, z_hi, h_hi]))
        h.changeRowsBounds(m, ge_rows, np.zeros(m), np.where(phase > 0, 0.0, inf))
        h.changeRowsBounds(m, tri_rows, np.full(m, -inf), np.where(phase == 0, tri_hi, inf))
        h.setOptionValue("time_limit", max(0.05, time_limit - (time.perf_counter() - start)))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return h.getInfo().objective_function_value + k, np.asarray(h.getSolution().col_value)

    stack = [(lower.copy(), upper.copy(), np.where(lo >= 0, 1, np.where(hi <= 0, -1, 0)))]
    while stack:
        if time.perf_counter() - start > time_limit:
            return Decision("unknown")
        x_lo, x_hi, phase = stack.pop()
        solved = solve(x_lo, x_hi, phase)
        if solved is None:
            if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
                continue
            return Decision("unknown")
        best, values = solved
        if best < margin - SLACK:
            continue
        x = np.clip(values[:n], x_lo, x_hi)
        inside = [t for t, (p, c) in enumerate(zip(pixels.tolist(), centers.tolist()))
                  if c - delta < x[p] < c + delta]
        pre = w1 @ x + b1
        reached = float(d @ np.maximum(pre, 0.0)) + k >= margin - SLACK
        if reached and not inside:
            return Decision("feasible", x)
        if inside:  # a disjunction the point breaks: its two sides
            p, c = int(pixels[inside[0]]), float(centers[inside[0]])
            sides = []
            if x_lo[p] <= c - delta:
                below = x_hi.copy()
                below[p] = min(x_hi[p], c - delta)
                sides.append((x_lo, below))
            if c + delta <= x_hi[p]:
                above = x_lo.copy()
                above[p] = max(x_lo[p], c + delta)
                sides.append((above, x_hi))
            if x[p] >= c:
                sides.reverse()
            stack.extend((a, b, phase) for a, b in reversed(sides))
            continue
        free = np.flatnonzero(split & (phase == 0))
        if free.size == 0:  # the program is exact here and reached the margin: float noise at the edge
            return Decision("feasible", x)
        gap = d * (values[n + m:] - np.maximum(values[n:n + m], 0.0))  # what the triangle adds to the maximum
        j = int(free[np.argmax(gap[free])])
        on, off = phase.copy(), phase.copy()
        on[j], off[j] = 1, -1
        first, second = (on, off) if pre[j] > 0 else (off, on)
        stack.append((x_lo, x_hi, second))
        stack.append((x_lo, x_hi, first))
    return Decision("infeasible")

