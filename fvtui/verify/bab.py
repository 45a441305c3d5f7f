"""Decide an fv query exactly on a network with one hidden layer: branch and bound over few ReLUs.

The question is whether some input of the box (with its exclusion disjunctions) reaches
logit_r - logit_w = d . relu(W x + b) + k >= margin. A hidden unit with d_j <= 0 only lowers that
margin, so "h_j >= W_j x + b_j, h_j >= 0" models it exactly when maximising: no branching. Only
undecided units with d_j > 0 need a phase s_j (on 1, off 0, relaxed to [0, 1]); they start with the
big-M rows (the triangle relaxation) and are split (on, off) where the program's optimum leaves a
gap. A disjunction the program's point falls inside is split only when that point meets the margin in
the real network (or no unit is left to split): a hole of 2 delta seldom moves the bound, and splitting
holes first made a proof with 924 of them outlast 300 s that takes 1.6 s without. A node whose relaxed
maximum stays below the margin is pruned; a node whose point meets the margin in the real network and
every disjunction answers SAT. Every change between nodes is a bound change, so HiGHS starts each node
from the last basis (highspy).

The triangle relaxes each unit in its own pre-activation z, blind to which inputs make z large.
At the root the program is tightened with the cuts of Anderson et al., "Strong mixed-integer
programming formulations for trained neural networks" (2020): for a unit and any set I of inputs,
h <= sum_I w_i (x_i - L_i (1 - s)) + (b + sum_not-I w_i U_i) s, with L_i, U_i the box end that
makes w_i x_i smallest and largest. Together they give the convex hull of (x, relu(w x + b)) over
the box; the most violated one of each unit is found in linear time. They hold wherever the box
shrinks and whatever phases are fixed, so they stay for the whole tree; those slack after the root
rounds are dropped, as they only slow every node's LP. Below the root, every second node adds one
round of cuts at its own optimum (the triangle's gaps move as phases are fixed), and when more than
CUT_POOL of them have gathered the slack ones are dropped: on 784-128-10 proofs that took a tree of
221-979 nodes, 87-287 nodes and half the time.

Measured (784-128-10 network trained on 50 Fashion-MNIST samples, first queries of random+fv, eps
0.05-0.06, other work on both cores): the root bound of one query fell from 1.95 (triangle) to 0.20
in 8 rounds, where the best input attack found reaches -0.99. Nodes 997 -> 31, 287 -> 7 and
3,109 -> 23; times 8.7 s -> 0.7 s, 2.9 s -> 0.2 s, 31 s -> 3.7 s; at eps 0.06, three of four
queries that ran past 120 s before were decided in 13-110 s. An earlier version without cuts, on an
UNSAT query at 32 hidden units: Marabou 54 s, HiGHS' MILP (milp.py) 20 s, this search 0.56 s.
Deeper networks keep milp.py: there a unit's effect on the margin has no fixed sign.

A proof still open after SPLIT_AFTER programs goes on as subtrees: the open nodes, each explored in
a fork of the process as it is then, and split again after as many programs of its own. The answer
is the first subtree's (in depth-first order) that is not infeasible, so it does not depend on how
many run at once; they run on the proof's own core and on those the pool lends while its other
workers have nothing to do (cores.py), which is when a round waits for its last, longest search.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import traceback
from typing import Callable

import numpy as np

from .apart import die_with_parent
from .cores import Cores
from .highs import add_rows, new_program, run_for
from .milp import Decision
from .network import Network

SLACK = 1e-6  # a node's maximum within this of the margin is never pruned (HiGHS' tolerances are 1e-7)
CUT_ROUNDS = 8  # rounds of cuts at the root (each adds at most one cut per undecided d_j > 0 unit)
NODE_CUTS_EVERY = 2  # one round of cuts at every second node below the root
CUT_POOL = 60  # more cuts than this below the root: the slack ones are dropped (each slows every LP);
# on 784-128-10 proofs 60 was about 10% faster than 100 or 40
VIOLATION = 1e-6  # a cut is added only when the optimum breaks it by more
# A proof still open after this many programs goes on as subtrees, each in a fork (_subtrees), so that
# cores the pool lends (cores.py) can share it. Counted in programs so that the split, and with it the
# answer, is the same on any machine and load; most proofs end before it.
SPLIT_AFTER = 400
LEND_POLL = 0.2  # seconds between looks for a lent core while subtrees wait to start
SUBTREE_GRACE = 5.0  # seconds past the proof's time limit after which a subtree still running is stopped
STOP_WAIT = 2.0  # seconds a stopped subtree has to give back its cores before it is killed


def applies(net: Network) -> bool:
    return len(net.weights) == 2


def strongest_cuts(w: np.ndarray, b: np.ndarray, w_low: np.ndarray, w_up: np.ndarray, x: np.ndarray,
                   s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit (rows of w; w_low, w_up: w_i times the box end making w_i x_i smallest, largest), the
    lowest of Anderson et al.'s bounds on relu(w x + b) at the point (x, s), and its input set I."""
    with_x = w * x - w_low * (1 - s)[:, None]
    chosen = with_x < w_up * s[:, None]  # the set I: where the input term is the smaller one
    return np.where(chosen, with_x, 0.0).sum(1) + (b + np.where(chosen, 0.0, w_up).sum(1)) * s, chosen


def decide(net: Network, lower: np.ndarray, upper: np.ndarray, winner: int, runner_up: int, margin: float,
           pixels=(), centers=(), delta: float = 0.001, time_limit: float = 60.0,
           lp_limit: int | None = None, cores: Cores | None = None) -> Decision:
    """'infeasible' (UNSAT), 'feasible' with an input (within HiGHS' tolerance), or 'unknown' (out of time,
    or past `lp_limit` linear programs: a budget of work, which decides the same on any machine and load).
    Without `lp_limit`, a proof longer than SPLIT_AFTER programs goes on in subtrees (_subtrees), on as
    many cores as `cores` lends at the time; the answer is the same on one."""
    return proof(net, lower, upper, winner, runner_up, margin, pixels, centers, delta)(time_limit, lp_limit, cores)


Run = Callable[..., Decision]  # (time_limit, lp_limit=None, cores=None), as decide's


def proof(net: Network, lower: np.ndarray, upper: np.ndarray, winner: int, runner_up: int, margin: float,
          pixels=(), centers=(), delta: float = 0.001) -> Run:
    """The query's branch and bound, to run as `run(time_limit, lp_limit, cores)` (decide's arguments). A run
    that ends 'unknown' leaves every open node on the tree, and the next run goes on from there: a proof that
    outlasts the offer's budget (search.PROOF_FIRST) is not started over, and reaches the very answer a single
    run would (the same programs in the same order, on the same HiGHS object). A verdict is final."""
    import highspy

    start, time_limit, lp_limit, cores = 0.0, 0.0, None, None  # set by each run
    (w1, b1), (w2, b2) = net.layer(0), net.layer(1)
    d, k = w2[runner_up] - w2[winner], float(b2[runner_up] - b2[winner])
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    pixels, centers = np.asarray(pixels, np.int64), np.asarray(centers, np.float64)
    n, m = w1.shape[1], w1.shape[0]
    pos, neg = np.maximum(w1, 0.0), np.minimum(w1, 0.0)
    lo, hi = pos @ lower + neg @ upper + b1, pos @ upper + neg @ lower + b1  # exact over the box
    split = (lo < 0) & (hi > 0) & (d > 0)  # the units that may need a phase
    units = np.flatnonzero(split)
    # The most the triangle can add for a unit (at z = 0), weighted by d: the branching score, which
    # took 25% fewer nodes than the gap at the program's optimum on 784-128-10 proofs.
    widest = np.where(split, d * -lo * hi / np.where(split, hi - lo, 1.0), 0.0)

    # Variables: x (n), h (m) >= relu(W x + b), s and z = W x + b (one each per split unit). Rows: h - W x >= b
    # for the units that may be off and are not split; per split unit z - W x = b, h >= z, h <= hi s and
    # h <= z - lo (1 - s); then the cuts. A unit always on is h = W x + b: its d_j (W x + b) goes into the
    # objective and it has no row (h fixed at 0). Each a dense row less: 8-10% faster on 784-128-10
    # proofs for the split units' z, 17% for the folded units.
    inf = highspy.kHighsInf
    h = new_program()
    h_col, s_col = n + np.arange(m), n + m + np.arange(units.size)
    z_col = n + m + units.size + np.arange(units.size)
    on = lo >= 0
    h_hi = np.where((hi <= 0) | on, 0.0, inf)
    col_lower = np.concatenate([lower, np.zeros(m + units.size), lo[units]])
    col_upper = np.concatenate([upper, h_hi, np.ones(units.size), hi[units]])
    h.addVars(col_lower.size, col_lower, col_upper)
    row_lower, row_upper, columns, coefficients = [], [], [], []
    for j in np.flatnonzero((hi > 0) & ~split & ~on):
        nz = np.flatnonzero(w1[j])
        row_lower.append(b1[j]), row_upper.append(inf)
        columns.append(np.append(nz, h_col[j])), coefficients.append(np.append(-w1[j, nz], 1.0))
    for t, j in enumerate(units):
        nz = np.flatnonzero(w1[j])
        row_lower += [b1[j], 0.0, -inf, -inf]
        row_upper += [b1[j], inf, 0.0, -lo[j]]
        columns += [np.append(nz, z_col[t]), np.array([h_col[j], z_col[t]]), np.array([h_col[j], s_col[t]]),
                    np.array([h_col[j], z_col[t], s_col[t]])]
        coefficients += [np.append(-w1[j, nz], 1.0), np.array([1.0, -1.0]), np.array([1.0, -hi[j]]),
                         np.array([1.0, -1.0, -lo[j]])]
    add_rows(h, row_lower, row_upper, columns, coefficients)
    base_rows = h.getNumRow()
    # Minimised as -(d . h): HiGHS' dual simplex then stops as soon as its dual objective proves the node
    # below the margin (objective_bound acts on minimisations only, ERGO-Code/HiGHS#2473). Pruned
    # nodes need no optimum: 23-38% fewer simplex iterations on 784-128-10 proofs.
    h.changeColsCost(m, h_col.astype(np.int32), np.where(on, 0.0, -d))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), -(d[on] @ w1[on]))
    k_program = k + float(d[on] @ b1[on])  # the program's constant: the network's plus the folded biases
    h.setOptionValue("objective_bound", k_program - (margin - SLACK))
    w_u = w1[units]
    w_low = w_u * np.where(w_u >= 0, lower, upper)  # w_i L_i and w_i U_i of the cuts
    w_up = w_u * np.where(w_u >= 0, upper, lower)

    def add_cuts(values: np.ndarray, free: np.ndarray) -> int:
        """The most violated cut of each free split unit at the program's optimum; how many were added."""
        bound, chosen = strongest_cuts(w_u, b1[units], w_low, w_up, values[:n], values[s_col])
        violated = np.flatnonzero(free & (values[h_col[units]] > bound + VIOLATION))
        if violated.size == 0:
            return 0
        # h - sum_I w_i x_i - s (sum_I w_i L_i + b + sum_not-I w_i U_i) <= -sum_I w_i L_i
        row_upper, columns, coefficients = [], [], []
        for t in violated:
            inputs = np.flatnonzero(chosen[t] & (w_u[t] != 0))
            low_sum = w_low[t, inputs].sum()
            row_upper.append(-low_sum)
            columns.append(np.append(inputs, [h_col[units[t]], s_col[t]]))
            s_coef = -(low_sum + b1[units[t]] + w_up[t, ~chosen[t]].sum())
            coefficients.append(np.append(-w_u[t, inputs], [1.0, s_coef]))
        add_rows(h, np.full(violated.size, -inf), row_upper, columns, coefficients)
        return violated.size

    def drop_slack_cuts() -> None:
        rows = np.arange(base_rows, h.getNumRow())
        if rows.size:
            slack = rows[np.asarray(h.getSolution().row_value)[rows] < np.asarray(h.getLp().row_upper_)[rows] - 1e-6]
            h.deleteRows(slack.size, slack.astype(np.int32))

    all_cols = np.arange(col_lower.size, dtype=np.int32)
    lps = 0

    def solve(x_lo, x_hi, phase) -> tuple[float, np.ndarray | None] | None:
        """The node's relaxed maximum of logit_r - logit_w and its variables; phase: +1 on, -1 off, 0 free.
        (-inf, None) when the node is proved below the margin before its optimum."""
        nonlocal lps
        lps += 1
        fixed = phase[units]
        col_lower[:n], col_upper[:n] = x_lo, x_hi
        col_lower[s_col], col_upper[s_col] = fixed > 0, fixed >= 0
        h.changeColsBounds(all_cols.size, all_cols, col_lower, col_upper)
        run_for(h, max(0.05, time_limit - (time.perf_counter() - start)))
        if h.getModelStatus() == highspy.HighsModelStatus.kObjectiveBound:
            return -np.inf, None
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return k_program - h.getInfo().objective_function_value, np.asarray(h.getSolution().col_value)

    def answers(values, x_lo, x_hi) -> tuple[np.ndarray, np.ndarray, list[int], bool]:
        """The program's input, its pre-activations, the disjunctions it breaks, and whether the network there
        meets the margin (a counterexample if it breaks none)."""
        x = np.clip(values[:n], x_lo, x_hi)
        inside = [t for t, (p, c) in enumerate(zip(pixels.tolist(), centers.tolist()))
                  if c - delta < x[p] < c + delta]
        pre = w1 @ x + b1
        return x, pre, inside, float(d @ np.maximum(pre, 0.0)) + k >= margin - SLACK

    def solve_with_cuts(x_lo, x_hi, phase, rounds: int) -> tuple[float, np.ndarray] | None:
        """The node's program, tightened by up to `rounds` rounds of cuts (valid in the whole tree, so kept)."""
        solved = solve(x_lo, x_hi, phase)
        for _ in range(rounds):
            if solved is None or solved[0] < margin - SLACK:
                break
            _, _, inside, meets = answers(solved[1], x_lo, x_hi)
            if (meets and not inside) or not add_cuts(solved[1], phase[units] == 0):
                break
            solved = solve(x_lo, x_hi, phase)
        return solved

    root = np.where(lo >= 0, 1, np.where(hi <= 0, -1, 0))
    nodes = 0
    split_at: int | None = None

    def explore(stack: list) -> Decision:
        """Depth first from the stack's top; once past split_at programs, its nodes go on as subtrees."""
        nonlocal split_at
        while stack:
            if time.perf_counter() - start > time_limit or (lp_limit is not None and lps >= lp_limit):
                return Decision("unknown")
            if split_at is not None and lps >= split_at and len(stack) > 1:
                split_at = lps + SPLIT_AFTER  # a subtree splits again after as many programs of its own
                return _subtrees(stack[::-1], explore, start + time_limit, cores)
            node = stack.pop()
            out = expand(node)
            if isinstance(out, Decision):
                if out.status == "unknown":
                    stack.append(node)  # HiGHS gave up on its program: still open, should the proof go on
                return out
            stack.extend(out)
        return Decision("infeasible")

    def expand(node) -> Decision | list:
        """A node's program: its answer if it has one, else its children (none when pruned), the first last."""
        nonlocal nodes
        x_lo, x_hi, phase = node
        rounds = CUT_ROUNDS if nodes == 0 else 1 if nodes % NODE_CUTS_EVERY == 0 else 0
        solved = solve_with_cuts(x_lo, x_hi, phase, rounds)
        if solved is not None and solved[1] is not None and (nodes == 0 or h.getNumRow() - base_rows > CUT_POOL):
            drop_slack_cuts()  # rows the optimum leaves slack: it stays the optimum without them
        nodes += 1
        if solved is None:
            if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
                return []
            return Decision("unknown")
        best, values = solved
        if best < margin - SLACK:
            return []
        x, pre, inside, meets = answers(values, x_lo, x_hi)
        if meets and not inside:
            return Decision("feasible", x)
        free = np.flatnonzero(split & (phase == 0))
        if inside and (meets or free.size == 0):
            # a disjunction keeps a point that is a counterexample of the network: its two sides
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
            return [(a, b, phase) for a, b in reversed(sides)]
        if free.size == 0:  # the program is exact here and reached the margin: float noise at the edge
            return Decision("feasible", x)
        gap = d * (values[h_col] - np.maximum(pre, 0.0))  # what the relaxation adds to the maximum
        relaxed = free[gap[free] > 1e-9]  # splitting one of these moves this optimum on both sides
        j = int(relaxed[np.argmax(widest[relaxed])]) if relaxed.size else int(free[np.argmax(gap[free])])
        on, off = phase.copy(), phase.copy()
        on[j], off[j] = 1, -1
        first, second = (on, off) if pre[j] > 0 else (off, on)
        return [(x_lo, x_hi, second), (x_lo, x_hi, first)]

    stack = [(lower.copy(), upper.copy(), root)]
    verdict: Decision | None = None

    def run(limit: float, budget: int | None = None, lending: Cores | None = None) -> Decision:
        nonlocal start, time_limit, lp_limit, cores, split_at, verdict
        if verdict is None:
            start, time_limit, lp_limit, cores = time.perf_counter(), limit, budget, lending
            # a run with a budget of work (the offer) stays one tree; the first without one splits at SPLIT_AFTER
            split_at = None if budget is not None else split_at or SPLIT_AFTER
            decision = explore(stack)
            if decision.status != "unknown":
                verdict = decision
            return decision
        return verdict

    return run


def _subtrees(roots: list, explore: Callable[[list], Decision], deadline: float, cores: Cores | None) -> Decision:
    """The open nodes of a proof (in the order depth first would take them), each explored in a fork of this
    process as it is now: the answer is the first subtree's that is not infeasible, so it is the same
    whether they run one after another or side by side. They run on this process's core and on every
    core borrowed from `cores` (given back when done); this process only waits."""
    parent = os.getpid()
    results: list[Decision | None] = [None] * len(roots)
    running: dict[int, tuple[int, int]] = {}  # a fork's pipe -> (its subtree, its pid)
    started = borrowed = 0
    try:
        while True:
            for result in results:
                if result is None:
                    break
                if result.status != "infeasible":
                    return result
            else:
                return Decision("infeasible")
            while started < len(roots):
                if len(running) > borrowed:  # this core and every borrowed one busy: one more only if lent
                    if cores is None or not cores.borrow():
                        break
                    borrowed += 1
                fd, pid = _fork_subtree(explore, roots[started], parent)
                running[fd] = (started, pid)
                started += 1
            if started == len(roots) and cores is not None and borrowed >= len(running) > 0:
                cores.give_back(borrowed - len(running) + 1)  # more cores than subtrees left to run
                borrowed = len(running) - 1
            left = deadline + SUBTREE_GRACE - time.perf_counter()
            if left <= 0:
                return Decision("unknown")
            poll = LEND_POLL if cores is not None and started < len(roots) else left
            for fd in select.select(list(running), [], [], min(left, poll))[0]:
                index, pid = running.pop(fd)
                results[index] = _answer(fd, pid)
    finally:  # a SIGTERM now (this process's own stop) would leave borrowed cores behind
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        for _, pid in running.values():
            os.kill(pid, signal.SIGTERM)  # unneeded now: it gives back what it borrowed and ends
        for fd, (_, pid) in running.items():
            _reap(pid)
            os.close(fd)
        if cores is not None:
            cores.give_back(borrowed)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _fork_subtree(explore: Callable[[list], Decision], root: tuple, parent: int) -> tuple[int, int]:
    """A fork exploring one subtree; its decision comes back pickled through the pipe returned."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            signal.signal(signal.SIGTERM, _stopped)
            os.close(read)
            die_with_parent(parent)
            decision = explore([root])
            with os.fdopen(write, "wb") as out:
                out.write(pickle.dumps(decision))
            status = 0
        except _Stopped:
            pass
        except BaseException:  # noqa: BLE001 - its last words go to the worker's stderr
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write)
    return read, pid


class _Stopped(Exception):
    """A subtree's answer is no longer needed: unwinding gives back the cores it and its own subtrees hold."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _reap(pid: int) -> None:
    """Wait for a subtree's fork to end after its SIGTERM; SIGKILL it after STOP_WAIT seconds (a program that
    long in HiGHS, which Python cannot interrupt: the cores it borrowed come back with the pool's next call)."""
    until = time.perf_counter() + STOP_WAIT
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        if time.perf_counter() > until:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.002)


def _answer(fd: int, pid: int) -> Decision:
    """A subtree fork's decision; 'unknown' if it died without one (the proof then settles nothing)."""
    with os.fdopen(fd, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    try:
        return pickle.loads(data)
    except (pickle.UnpicklingError, EOFError):
        return Decision("unknown")
