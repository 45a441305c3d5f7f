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
) -> MarabouCore.InputQuery:
    """The query `x in [lower, upper]`, the exclusions, and `logit_w - logit_c <= -margin` for some c in others.

    With one class in `others` the output constraint is a plain equation; with several it is a
    disjunction. The last layer is folded into that constraint (no output variables): it is
    affine, so `logit_w - logit_c` is one linear form over the last hidden layer (builds 20%
    faster than with output variables, solves the same).
    """
    n = net.input_size
    layers = list(zip(net.weights, net.biases))
    hidden = sum(w.shape[0] for w, _ in layers[:-1])
    nvars = n + 2 * hidden
    ipq = MarabouCore.InputQuery()
    ipq.setNumberOfVariables(nvars)
    for i in range(n):
        ipq.markInputVariable(i, i)
        ipq.setLowerBound(i, float(lower[i]))
        ipq.setUpperBound(i, float(upper[i]))
    prev = 0  # first variable of the previous layer's outputs
    nxt = n
    for w, b in layers[:-1]:
        m = w.shape[0]
        w64 = np.asarray(w, dtype=np.float64)
        b64 = np.zeros(m) if b is None else np.asarray(b, dtype=np.float64)
        for j in range(m):
            # w_j . prev - pre_j = -b_j ; post_j = relu(pre_j)
            eq = _equation(_EQ, w64[j], prev, -b64[j])
            eq.addAddend(-1.0, nxt + j)
            ipq.addEquation(eq)
            MarabouCore.addReluConstraint(ipq, nxt + j, nxt + m + j)
        prev = nxt + m
        nxt += 2 * m
    w_last = np.asarray(layers[-1][0], dtype=np.float64)
    b_last = np.zeros(w_last.shape[0]) if layers[-1][1] is None else np.asarray(layers[-1][1], np.float64)
    # (w_w - w_c) . h + (b_w - b_c) <= -margin
    cons = [_equation(_LE, w_last[winner] - w_last[c], prev, -margin - (b_last[winner] - b_last[c])) for c in others]
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
    message = {"timeout": f"Marabou timed out after {seconds:.1f} s", "error": f"Marabou returned {code!r}"}
    return Solved(status, x, seconds, message.get(status, ""))
