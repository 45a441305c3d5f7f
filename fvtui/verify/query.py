"""Marabou input queries built straight from a numpy `Network` (no ONNX round trip)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from maraboupy import MarabouCore

from .network import Network

_EQ, _LE, _GE = MarabouCore.Equation.EQ, MarabouCore.Equation.LE, MarabouCore.Equation.GE


def _equation(kind, coeffs: np.ndarray, variables, scalar: float):
    eq = MarabouCore.Equation(kind)
    add = eq.addAddend
    for c, v in zip(coeffs.tolist(), variables):
        if c != 0.0:
            add(c, v)
    eq.setScalar(float(scalar))
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
    fold_output: bool = True,
) -> MarabouCore.InputQuery:
    """The query `x in [lower, upper]`, the exclusions, and `logit_w - logit_c <= -margin` for some c in others.

    With one class in `others` the output constraint is a plain equation; with several it is a
    disjunction. The last layer is folded into that constraint (no output variables): it is
    affine, so `logit_w - logit_c` is one linear form over the last hidden layer.
    """
    n = net.input_size
    layers = list(zip(net.weights, net.biases))
    hidden = sum(w.shape[0] for w, _ in layers[:-1])
    nvars = n + 2 * hidden + (0 if fold_output else net.num_classes)
    ipq = MarabouCore.InputQuery()
    ipq.setNumberOfVariables(nvars)
    for i in range(n):
        ipq.markInputVariable(i, i)
        ipq.setLowerBound(i, float(lower[i]))
        ipq.setUpperBound(i, float(upper[i]))
    prev = range(n)
    nxt = n
    for w, b in layers[:-1]:
        w64 = np.asarray(w, dtype=np.float64)
        b64 = np.zeros(w.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
        pre = range(nxt, nxt + w.shape[0])
        post = range(nxt + w.shape[0], nxt + 2 * w.shape[0])
        for j in range(w.shape[0]):
            # w_j . prev - pre_j = -b_j
            eq = _equation(_EQ, w64[j], prev, -b64[j])
            eq.addAddend(-1.0, pre[j])
            ipq.addEquation(eq)
            MarabouCore.addReluConstraint(ipq, pre[j], post[j])
        prev = post
        nxt += 2 * w.shape[0]
    w_last = np.asarray(layers[-1][0], dtype=np.float64)
    b_last = np.zeros(w_last.shape[0]) if layers[-1][1] is None else np.asarray(layers[-1][1], np.float64)
    if fold_output:
        # (w_w - w_c) . h + (b_w - b_c) <= -margin
        cons = [
            _equation(_LE, w_last[winner] - w_last[c], prev, -margin - (b_last[winner] - b_last[c]))
            for c in others
        ]
    else:
        out = range(nxt, nxt + w_last.shape[0])
        for j in range(w_last.shape[0]):
            eq = _equation(_EQ, w_last[j], prev, -b_last[j])
            eq.addAddend(-1.0, out[j])
            ipq.addEquation(eq)
            ipq.markOutputVariable(out[j], j)
        cons = []
        for c in others:
            eq = MarabouCore.Equation(_LE)
            eq.addAddend(1.0, out[winner])
            eq.addAddend(-1.0, out[c])
            eq.setScalar(-margin)
            cons.append(eq)
    if len(cons) == 1:
        ipq.addEquation(cons[0])
    else:
        MarabouCore.addDisjunctionConstraint(ipq, [[eq] for eq in cons])
    for i, a in zip(np.asarray(pixels).tolist(), np.asarray(centers).tolist()):
        MarabouCore.addDisjunctionConstraint(
            ipq, [[_equation(_LE, np.ones(1), (i,), a - delta)], [_equation(_GE, np.ones(1), (i,), a + delta)]]
        )
    return ipq


@dataclass
class Solved:
    status: str  # 'sat' | 'unsat' | 'timeout' | 'error'
    x: np.ndarray | None  # the input part of a SAT assignment
    seconds: float
    message: str = ""


_STATUS = {"sat": "sat", "unsat": "unsat", "TIMEOUT": "timeout"}


def solve(ipq: MarabouCore.InputQuery, n_inputs: int, timeout: float) -> Solved:
    """Solve with Marabou's own timeout (whole seconds, rounded up; the pool's kill is the hard limit)."""
    opts = MarabouCore.Options()
    opts._verbosity = 0
    opts._timeoutInSeconds = max(1, math.ceil(timeout))
    t = time.perf_counter()
    code, values, _ = MarabouCore.solve(ipq, opts, "")
    seconds = time.perf_counter() - t
    status = _STATUS.get(code, "error")
    x = np.array([values[i] for i in range(n_inputs)]) if status == "sat" else None
    return Solved(status, x, seconds, "" if status != "error" else f"Marabou returned {code}")
