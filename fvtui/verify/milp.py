"""Decide an fv query as a mixed-integer program (HiGHS, through scipy) before Marabou sees it.

The authors ran Marabou in its MILP mode (Gurobi, `--milp`), which the maraboupy wheel lacks; on
a 784-32-10 network Marabou's default search was measured here to run past 300 s on queries that
HiGHS proves infeasible in seconds (the exclusions of earlier counterexamples leave no room). The
program is exact for the query Marabou gets (encode_layers' folding, a binary per undecided ReLU
with big-M from its interval bounds, a binary per remaining exclusion disjunction), so
'infeasible' settles the query as UNSAT. A feasible program's inputs tell where a counterexample
lies (search.py then lets Marabou find one in a small box around them); HiGHS works to a
feasibility tolerance of 1e-7 on values against the 1e-3 margin of the query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network
from .query import encode_layers


@dataclass(frozen=True)
class Decision:
    status: str  # 'infeasible' (the query is UNSAT), 'feasible' or 'unknown' (out of time)
    x: np.ndarray | None = None  # 'feasible': the program's inputs (float64, within HiGHS' tolerance)


def decide(net: Network, lower: np.ndarray, upper: np.ndarray, winner: int, runner_up: int, margin: float,
           pixels=(), centers=(), delta: float = 0.001, time_limit: float = 60.0) -> Decision:
    """Whether some input of the box (with its exclusions) gives logit_r - logit_w >= margin."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    enc = encode_layers(net, lower, upper)
    pixels, centers = np.asarray(pixels, dtype=np.int64), np.asarray(centers, dtype=np.float64)
    w_last, b_last = net.layer(-1)
    diff = w_last[runner_up] - w_last[winner]  # logit_r - logit_w = diff . h + (b_r - b_w) >= margin
    last = len(net.weights) - 2
    # A last-layer ReLU whose output only lowers logit_r - logit_w needs no binary: with post >= pre and
    # post >= 0 alone, any larger post only makes the margin harder to reach, so the program stays exact.
    relaxed = [layer == last and diff[unit] <= 0 for layer, unit in enc.units]
    nz, nr, nd = enc.num_variables, len(enc.relus), pixels.size
    nvars = nz + nr + nd  # the query's variables, then a binary per ReLU, then one per disjunction
    rows = 4 * nr + 1 + 2 * nd
    a = lil_matrix((rows, nvars))
    lo_rows, hi_rows = np.full(rows, -np.inf), np.full(rows, np.inf)
    var_lo, var_hi = np.zeros(nvars), np.ones(nvars)
    n = net.input_size
    var_lo[:n], var_hi[:n] = lower, upper
    row = 0
    for k, (coeffs, const, pre, lo, hi) in enumerate(enc.relus):
        post, on = pre + 1, nz + k
        var_lo[pre], var_hi[pre], var_lo[post], var_hi[post] = lo, hi, 0.0, max(hi, 0.0)
        nonzero = np.flatnonzero(coeffs)
        for j in nonzero:  # pre = coeffs . z + const
            a[row, j] = coeffs[j]
        a[row, pre] = -1.0
        lo_rows[row] = hi_rows[row] = -const
        a[row + 1, post], a[row + 1, pre] = 1.0, -1.0  # post >= pre
        lo_rows[row + 1] = 0.0
        if relaxed[k]:
            var_hi[on] = 0.0  # a fixed, unused binary; rows row+2 and row+3 stay free
        else:
            a[row + 2, post], a[row + 2, pre], a[row + 2, on] = 1.0, -1.0, -lo  # post <= pre - lo (1 - on)
            hi_rows[row + 2] = -lo
            a[row + 3, post], a[row + 3, on] = 1.0, -max(hi, 0.0)  # post <= hi * on
            hi_rows[row + 3] = 0.0
        row += 4
    objective = diff @ enc.forms
    for j in np.flatnonzero(objective):
        a[row, j] = objective[j]
    lo_rows[row] = margin - (b_last[runner_up] - b_last[winner]) - float(diff @ enc.consts)
    row += 1
    for t, (p, c) in enumerate(zip(pixels.tolist(), centers.tolist())):
        side = nz + nr + t  # 0: x_p <= c - delta, 1: x_p >= c + delta
        a[row, p], a[row, side] = 1.0, -(upper[p] - (c - delta))
        hi_rows[row] = c - delta
        a[row + 1, p], a[row + 1, side] = 1.0, -((c + delta) - lower[p])
        lo_rows[row + 1] = lower[p]
        row += 2
    integrality = np.zeros(nvars)
    integrality[nz:] = 1
    result = milp(np.zeros(nvars), constraints=LinearConstraint(a.tocsr(), lo_rows, hi_rows), bounds=Bounds(var_lo, var_hi), integrality=integrality,
                  options={"time_limit": time_limit, "presolve": True})
    if result.status == 2:
        return Decision("infeasible")
    if result.x is not None and result.status == 0:
        return Decision("feasible", np.clip(result.x[:n], lower, upper))
    return Decision("unknown")
