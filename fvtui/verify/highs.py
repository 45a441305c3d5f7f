"""HiGHS as the solver programs (region.py, bab.py) use it: warm-started LPs in a loop, one thread each."""

from __future__ import annotations

import time

import numpy as np


def new_program():
    """A quiet single-thread HiGHS without presolve: the programs' LPs are re-solved from the last
    basis after bound changes, and presolving 784 x 128 took 0.14 s of a 0.03 s first solve."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("presolve", "off")
    return h


def run_for(h, seconds: float) -> None:
    """Solve with `seconds` for this run. HiGHS compares time_limit with the sum of all runs of the
    object (ERGO-Code/HiGHS#1477): a plain limit stopped warm loops long before their budget.

    A warm start now and then ends in status 'unknown' (numerical trouble with the basis it started
    from), and branch and bound gave up its whole proof on it: a Fashion-MNIST reference query that
    then ran 1,801 s in Marabou was proved UNSAT in 8 s with its 1 of 4,130 programs run again cold."""
    import highspy

    started = time.perf_counter()
    h.setOptionValue("time_limit", h.getRunTime() + seconds)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kUnknown:
        h.clearSolver()  # the basis and solution; the program stays
        h.setOptionValue("time_limit", h.getRunTime() + max(0.0, seconds - (time.perf_counter() - started)))
        h.run()


def add_rows(h, lower, upper, columns: list, coefficients: list) -> None:
    """Rows lower <= sum coefficients x[columns] <= upper in one call: one addRow per dense 784-input
    row took 0.3 ms, 10% of a branch-and-bound proof."""
    if not columns:
        return
    sizes = np.array([len(c) for c in columns])
    starts = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int32)
    h.addRows(len(columns), np.asarray(lower, np.float64), np.asarray(upper, np.float64), int(sizes.sum()), starts,
              np.concatenate(columns).astype(np.int32), np.concatenate(coefficients).astype(np.float64))
