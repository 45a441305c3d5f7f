"""Marabou input queries built straight from a numpy `Network` (no ONNX round trip)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from maraboupy import MarabouCore

from .network import Network

_EQ, _LE, _GE = MarabouCore.Equation.EQ, MarabouCore.Equation.LE, MarabouCore.Equation.GE


def _equation(kind, coeffs: np.ndarray, first_var: int, scalar: float):
    """sum_i coeffs[i] * var(first_var + i) (kind) scalar, zero coefficients left out."""
    eq = MarabouCore.Equation(kind)
    add = eq.addAddend
    nz = np.flatnonzero(coeffs)
    for c, v in zip(coeffs[nz].tolist(), (nz + first_var).tolist()):
        add(c, v)
    eq.setScalar(float(scalar))
    return eq


def _bound(kind, var: int, value: float):
    eq = MarabouCore.Equation(kind)
    eq.addAddend(1.0, var)
    eq.setScalar(value)
    return eq


@dataclass
class Encoding:
    """The hidden layers over the query's variables, each ReLU the box fixes folded away.

    `forms @ z + consts` is the last hidden layer's output as an affine function of the query's
    variables z (inputs first, then a (pre, post) pair per ReLU the box leaves undecided).
    """

    num_variables: int
    forms: np.ndarray  # float64 (last hidden width, num_variables)
    consts: np.ndarray  # float64 (last hidden width,)
    relus: list[tuple[np.ndarray, float, int, float, float]]  # (coefficients over z, constant, pre variable, bounds)
    stable: int  # ReLUs the box decided (active or inactive), encoded without a constraint
    units: list[tuple[int, int]]  # (hidden layer, unit) of each entry of relus


def encode_layers(net: Network, lower: np.ndarray, upper: np.ndarray, slack: float = 1e-9) -> Encoding:
    """Fold every ReLU that interval bounds over the box prove always active or always inactive.

    A stably active ReLU is the identity and an inactive one is zero, so both become part of the
    next layer's affine form and only undecided ReLUs reach Marabou. The query keeps exactly the
    same set of solutions but is far smaller: on the protocol's 784-128-10 network the box leaves
    about a quarter of the ReLUs undecided, and Marabou's per-query cost is dominated by
    bound tightening over the whole tableau (measured 0.55 s -> 0.1 s per SAT query). Interval
    bounds are exact for the first layer and sound (looser) for deeper ones; `slack` keeps a ReLU
    whose bound is within rounding of zero undecided.
    """
    n = net.input_size
    var_lower = [np.asarray(lower, dtype=np.float64)]
    var_upper = [np.asarray(upper, dtype=np.float64)]
    forms: np.ndarray | None = None  # the inputs themselves: the identity, never multiplied out
    consts = np.zeros(n)
    relus: list[tuple[np.ndarray, float, int, float, float]] = []
    units: list[tuple[int, int]] = []
    stable = 0
    nvars = n
    for layer, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        w64 = np.asarray(w, dtype=np.float64)
        pre_forms = w64 if forms is None else w64 @ forms  # a 784x784 identity product cost ~10 ms a query
        pre_consts = w64 @ consts + (0.0 if b is None else np.asarray(b, dtype=np.float64))
        lo, hi = np.concatenate(var_lower), np.concatenate(var_upper)
        pos, neg = np.maximum(pre_forms, 0.0), np.minimum(pre_forms, 0.0)
        pre_lo = pos @ lo + neg @ hi + pre_consts
        pre_hi = pos @ hi + neg @ lo + pre_consts
        undecided = np.flatnonzero((pre_lo <= slack) & (pre_hi >= -slack))
        active = pre_lo > slack
        stable += pre_forms.shape[0] - undecided.size
        post_forms = np.zeros((pre_forms.shape[0], nvars + 2 * undecided.size))
        post_forms[active, :nvars] = pre_forms[active]
        post_consts = np.where(active, pre_consts, 0.0)
        for k, j in enumerate(undecided.tolist()):
            pre_var = nvars + 2 * k
            relus.append((pre_forms[j], float(pre_consts[j]), pre_var, float(pre_lo[j]), float(pre_hi[j])))
            units.append((layer, j))
            post_forms[j, pre_var + 1] = 1.0
        var_lower.append(np.ravel(np.column_stack([pre_lo[undecided], np.zeros(undecided.size)])))
        var_upper.append(np.ravel(np.column_stack([pre_hi[undecided], np.maximum(pre_hi[undecided], 0.0)])))
        nvars += 2 * undecided.size
        forms, consts = post_forms, post_consts
    return Encoding(nvars, forms, consts, relus, stable, units)


class FirstLayerEquations:
    """The first hidden layer's ReLU equations `W1[j] . x - pre = -b1[j]`, kept across the queries of one
    search. Their coefficients do not depend on the box (deeper layers' do, through the folding), only
    the pre variable's index does, and each costs a Python call into maraboupy per input (784): building
    them was a third of a SAT query's time at 32 hidden units. InputQuery.addEquation copies, so one
    Equation serves every query."""

    def __init__(self) -> None:
        self._made: dict[tuple[int, int], MarabouCore.Equation] = {}

    def get(self, unit: int, pre: int, coeffs: np.ndarray, const: float) -> MarabouCore.Equation:
        eq = self._made.get((unit, pre))
        if eq is None:
            eq = self._made[unit, pre] = _relu_equation(coeffs, const, pre)
        return eq


def _relu_equation(coeffs: np.ndarray, const: float, pre: int) -> MarabouCore.Equation:
    """coeffs . z - pre = -const (then post = relu(pre))."""
    eq = _equation(_EQ, coeffs, 0, -const)
    eq.addAddend(-1.0, pre)
    return eq


def build_query(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    winner: int,
    others: list[int],
    margin: float = 0.001,
    pixels: np.ndarray = (),
    centers: np.ndarray = (),
    delta: float = 0.001,
    fold: bool = True,
    first_layer: FirstLayerEquations | None = None,
) -> MarabouCore.InputQuery:
    """The query `x in [lower, upper]`, the exclusions, and `logit_w - logit_c <= -margin` for some c in others.

    With one class in `others` the output constraint is a plain equation; with several it is a
    disjunction. The last layer is folded into that constraint (no output variables): it is
    affine, so `logit_w - logit_c` is one linear form over the query's variables. `fold=False`
    keeps every ReLU (the plain encoding, for comparisons). `first_layer` reuses the equations of
    earlier queries of the same network.
    """
    n = net.input_size
    enc = encode_layers(net, lower, upper, slack=1e-9 if fold else np.inf)
    ipq = MarabouCore.InputQuery()
    ipq.setNumberOfVariables(enc.num_variables)
    for i in range(n):
        ipq.markInputVariable(i, i)
        ipq.setLowerBound(i, float(lower[i]))
        ipq.setUpperBound(i, float(upper[i]))
    for (coeffs, const, pre, lo, hi), (layer, unit) in zip(enc.relus, enc.units):
        if layer == 0 and first_layer is not None:
            ipq.addEquation(first_layer.get(unit, pre, coeffs, const))
        else:
            ipq.addEquation(_relu_equation(coeffs, const, pre))
        ipq.setLowerBound(pre, lo)
        ipq.setUpperBound(pre, hi)
        ipq.setLowerBound(pre + 1, 0.0)
        ipq.setUpperBound(pre + 1, max(hi, 0.0))
        MarabouCore.addReluConstraint(ipq, pre, pre + 1)
    w_last, b_last = net.layer(-1)
    cons = []
    for c in others:
        diff = w_last[winner] - w_last[c]  # (w_w - w_c) . h + (b_w - b_c) <= -margin
        scalar = -margin - (b_last[winner] - b_last[c]) - float(diff @ enc.consts)
        cons.append(_equation(_LE, diff @ enc.forms, 0, scalar))
    if len(cons) == 1:
        ipq.addEquation(cons[0])
    else:
        MarabouCore.addDisjunctionConstraint(ipq, [[eq] for eq in cons])
    for i, a in zip(np.asarray(pixels).tolist(), np.asarray(centers).tolist()):
        MarabouCore.addDisjunctionConstraint(ipq, [[_bound(_LE, i, a - delta)], [_bound(_GE, i, a + delta)]])
    return ipq


@dataclass
class Solved:
    status: str  # 'sat' | 'unsat' | 'timeout' | 'error'
    x: np.ndarray | None  # the input part of a SAT assignment
    seconds: float
    message: str = ""
    work: int = 0  # Marabou's main-loop iterations: how hard the query was, the same on any machine and load


_STATUS = {"sat": "sat", "unsat": "unsat", "TIMEOUT": "timeout"}


def solve(ipq: MarabouCore.InputQuery, n_inputs: int, timeout: float) -> Solved:
    """Solve with Marabou's own timeout (whole seconds, rounded up; the pool's kill is the hard limit)."""
    opts = MarabouCore.Options()
    opts._verbosity = 0
    opts._timeoutInSeconds = max(1, math.ceil(timeout))
    t = time.perf_counter()
    code, values, stats = MarabouCore.solve(ipq, opts, "")
    seconds = time.perf_counter() - t
    work = stats.getLongAttribute(MarabouCore.StatisticsLongAttribute.NUM_MAIN_LOOP_ITERATIONS)
    status = _STATUS.get(code, "error")
    x = np.array([values[i] for i in range(n_inputs)]) if status == "sat" else None
    message = {"timeout": f"Marabou timed out after {seconds:.1f} s", "error": f"Marabou returned {code!r}"}
    return Solved(status, x, seconds, message.get(status, ""), work)
