"""The `lp` source of fv counterexamples: a linear program inside one activation region, warm-started.

Where every ReLU keeps the phase it has at some point p, the network is affine, so "an input of
the query's box (its exclusions fixed to one side each) in p's region with logit_w - logit_r <=
-margin" is a linear program. A feasible point answers the fv query exactly as a Marabou point
would (it is checked against the query by the network's own arithmetic before it counts); an
infeasible program settles nothing and the query goes on (to bab.py for one hidden layer, then
Marabou). Successive queries of one search differ only in bounds (the box, the exclusions turned
into bounds, the region's phases), so HiGHS starts each from the last optimal basis: measured 2-4 ms
a query at 32 hidden units and about 8 ms at 128, against 0.08-0.3 s for Marabou.

The program has a variable per input and per hidden unit and a row per hidden unit,
`W[j] . h_prev - h_j = -b_j`; a unit off at p has h_j fixed to 0 and its row turned into
`W[j] . h_prev <= -b_j`, so a phase change is a bound change and keeps the basis. The objective
is the margin itself (the most adversarial point of the region), so points sit at box vertices
much as Marabou's do; being a restriction of the query, it finds no point Marabou could not.
"""

from __future__ import annotations

import numpy as np

from .highs import add_rows, new_program, run_for
from .network import Network

WALK = 2  # regions tried after the anchor's, along box vertices (see RegionLP.propose)
TOLERANCE = 1e-6  # slack allowed on the query's margin, against HiGHS' feasibility tolerance of 1e-7


class RegionLP:
    """One search's program (one network, one winner/runner-up pair); `propose` per query."""

    def __init__(self, net: Network, winner: int, runner_up: int, margin: float) -> None:
        import highspy

        self.net, self.winner, self.runner_up, self.margin = net, winner, runner_up, margin
        self._status = highspy.HighsModelStatus
        self._inf = highspy.kHighsInf
        h = self._highs = new_program()
        n = net.input_size
        total = n + sum(w.shape[0] for w in net.weights[:-1])
        h.addVars(total, np.zeros(total), np.full(total, self._inf))
        self._biases = []
        first = n
        prev = np.arange(n)
        for i in range(len(net.weights) - 1):
            w64, bias = net.layer(i)
            units = first + np.arange(w64.shape[0])
            rows = [np.flatnonzero(w64[j]) for j in range(w64.shape[0])]  # W[j] . h_prev - h_j = -b_j
            add_rows(h, -bias, -bias, [np.append(prev[nz], units[j]) for j, nz in enumerate(rows)],
                     [np.append(w64[j, nz], -1.0) for j, nz in enumerate(rows)])
            self._biases.append(bias)
            prev, first = units, first + w64.shape[0]
        w_last = net.layer(-1)[0]
        # Minimise logit_w - logit_r (up to its constant): the region holds a point of the query exactly
        # when the optimum meets the margin, which checked() tests, so the margin needs no row of its own.
        h.changeColsCost(prev.size, prev.astype(np.int32), w_last[winner] - w_last[runner_up])
        self._n = n
        self._phases: np.ndarray | None = None

    def _set_phases(self, on: np.ndarray) -> None:
        """Fix the region: a unit on keeps h_j = W[j] . h_prev + b_j >= 0, a unit off has h_j = 0 and W[j] . h_prev + b_j <= 0."""
        bias = np.concatenate(self._biases)
        rows = np.arange(on.size, dtype=np.int32)
        row_lo = np.where(on, -bias, -self._inf)
        self._highs.changeRowsBounds(on.size, rows, row_lo, -bias)
        cols = (self._n + rows).astype(np.int32)
        self._highs.changeColsBounds(on.size, cols, np.zeros(on.size), np.where(on, self._inf, 0.0))
        self._phases = on

    def phases(self, p: np.ndarray) -> np.ndarray:
        """Which hidden units are on at p (all layers, in order)."""
        h = np.asarray(p, np.float64)
        on = []
        for w, bias in zip(self.net.weights[:-1], self._biases):
            pre = np.asarray(w, np.float64) @ h + bias
            on.append(pre > 0)
            h = np.maximum(pre, 0.0)
        return np.concatenate(on)

    def margin_at(self, x: np.ndarray) -> float:
        logits = self.net.logits(x)  # float32, as the torch model that re-checks every point
        return float(logits[self.winner]) - float(logits[self.runner_up])

    def propose(self, anchor: np.ndarray, lower: np.ndarray, upper: np.ndarray, pixels: np.ndarray,
                centers: np.ndarray, delta: float, time_limit: float) -> np.ndarray | None:
        """A float32 input answering the query (box, exclusions, margin), or None.

        Tried in the anchor's region, then (when that region has none) in the regions of up to WALK
        box vertices, each the one that minimises the margin's gradient in the region before it."""
        anchor = np.asarray(anchor, np.float64)
        on = self.phases(anchor)
        lo, hi = np.array(lower, np.float64), np.array(upper, np.float64)
        gradient = self._gradient(on)
        for i, c in zip(np.asarray(pixels).tolist(), np.asarray(centers).tolist()):
            # x_i <= c - delta OR x_i >= c + delta: the anchor's side, else the side the margin falls towards
            low_fits, high_fits = lo[i] <= c - delta, c + delta <= hi[i]
            prefer_low = anchor[i] <= c - delta or (anchor[i] < c + delta and gradient[i] > 0)
            if low_fits and (prefer_low or not high_fits):
                hi[i] = min(hi[i], c - delta)
            elif high_fits:
                lo[i] = max(lo[i], c + delta)
            else:
                return None
        self._highs.changeColsBounds(self._n, np.arange(self._n, dtype=np.int32), lo, hi)
        tried = []
        for _ in range(1 + WALK):
            if any(np.array_equal(on, t) for t in tried):
                return None
            tried.append(on)
            x = self._solve_in(on, lo, hi, time_limit)
            if x is not None:
                return x
            vertex = np.where(gradient > 0, lo, hi)
            on = self.phases(vertex)
            gradient = self._gradient(on)
        return None

    def _solve_in(self, on: np.ndarray, lo: np.ndarray, hi: np.ndarray, time_limit: float) -> np.ndarray | None:
        if self._phases is None or not np.array_equal(on, self._phases):
            self._set_phases(on)
        h = self._highs
        run_for(h, max(0.1, float(time_limit)))
        if h.getModelStatus() != self._status.kOptimal:
            return None
        return self.checked(np.asarray(h.getSolution().col_value[: self._n]), lo, hi)

    def checked(self, x: np.ndarray, lower: np.ndarray, upper: np.ndarray, pixels: np.ndarray = (),
                centers: np.ndarray = (), delta: float = 0.0) -> np.ndarray | None:
        """x (a program's optimum, within HiGHS' tolerance) as a float32 input of the query, or None when
        rounding lost the margin or left it inside an exclusion."""
        x = np.clip(x, lower, upper).astype(np.float32)
        if self.margin_at(x) > -self.margin + TOLERANCE:
            return None
        pixels = np.asarray(pixels, np.int64)
        if np.any(np.abs(x[pixels].astype(np.float64) - np.asarray(centers, np.float64)) < delta - TOLERANCE):
            return None
        return x

    def _gradient(self, on: np.ndarray) -> np.ndarray:
        """d(logit_w - logit_r)/dx inside the region."""
        w_last = np.asarray(self.net.weights[-1], np.float64)
        g = w_last[self.winner] - w_last[self.runner_up]
        start = on.size
        for w in reversed(self.net.weights[:-1]):
            width = w.shape[0]
            g = (g * on[start - width:start]) @ np.asarray(w, np.float64)
            start -= width
        return g
