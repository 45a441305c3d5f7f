"""ONNX and VNN-LIB export (issue 22), re-checked by independent readers.

The exported ONNX is read by maraboupy's ONNX parser and each VNN-LIB file by the small parser
below (not fvtui's code); Marabou solves the resulting query, without fvtui's ReLU folding or
exclusion handling, and its SAT/UNSAT must equal the verdict fvtui recorded, on real sessions of
the demo data, including queries with exclusion disjunctions and UNSAT queries.
"""

from __future__ import annotations

import argparse
import csv
import errno
import os
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest

from fvtui.config import RoundSettings, SessionConfig
from fvtui.engine import Engine
from fvtui.errors import UserError
from fvtui.interop.command import main_export
from fvtui.interop.onnx_export import OPSET, onnx_logits
from fvtui.interop.replay import rebuild_round
from fvtui.store import SessionStore

BASE = dict(dataset="demo", rounds=1, init_size=20, hidden=(8,), epochs=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory, demo):
    """Four one-round sessions: fv from a tiny eps (UNSATs, interior exclusions), the same with the
    region program's points (--fv-points lp), fvaal+fv (its FGSM example seeds every search: many
    two-sided disjunctions), and random+none (no solver)."""
    root = tmp_path_factory.mktemp("interop-sessions")
    st = SessionStore(root)
    settings = dict(query_size=5, pool_size=200, advs_per_sample=3, verify_timeout=10)
    configs = {
        "grow": SessionConfig(**BASE, settings=RoundSettings(strategy="random", augment="fv", eps_start=0.004,
                                                             eps_step=0.01, **settings)),
        "grow-lp": SessionConfig(**BASE, settings=RoundSettings(strategy="random", augment="fv", eps_start=0.004,
                                                                eps_step=0.01, fv_points="lp", **settings)),
        "seeded": SessionConfig(**BASE, settings=RoundSettings(strategy="fvaal", augment="fv", **settings)),
        "plain": SessionConfig(**BASE, settings=RoundSettings(strategy="random", augment="none", **settings)),
    }
    for name, cfg in configs.items():
        with Engine(st.create(name, cfg), demo, workers=1) as engine:
            engine.run()
    return st


def export(store, name, out, **flags):
    args = argparse.Namespace(name=name, out=str(out), data_dir=None, onnx=False, vnnlib=False, round=None)
    vars(args).update(flags)
    lines: list[str] = []
    assert main_export(store, args, say=lines.append) == 0
    return lines


# -- ONNX -----------------------------------------------------------------------------------------
def test_onnx_export_matches_torch_on_the_test_set(store, demo, tmp_path):
    from fvtui import model as nn_model

    lines = export(store, "grow", tmp_path, onnx=True)
    assert [p.name for p in sorted((tmp_path / "onnx").iterdir())] == ["initial.onnx", "round-0001.onnx"]
    assert len(lines) == 2 and all(f"opset {OPSET}" in line and "max abs logit difference" in line for line in lines)
    with store.open("grow", writable=False) as session:
        for r, name in ((0, "initial.onnx"), (1, "round-0001.onnx")):
            proto = onnx.load(str(tmp_path / "onnx" / name))
            onnx.checker.check_model(proto)
            assert proto.opset_import[0].version == OPSET
            assert [n.op_type for n in proto.graph.node] == ["Gemm", "Relu", "MatMul"]
            model = nn_model.model_from_numpy(session.model_state(r), demo.num_features, (8,), demo.num_classes)
            reference = nn_model.logits(model, demo.test_x).numpy()
            got = onnx_logits(tmp_path / "onnx" / name, demo.test_x.numpy())
            assert np.abs(got - reference).max() < 1e-5
            assert (got.argmax(1) == reference.argmax(1)).mean() > 0.999
            # the printed figure is the one measured
            diff = float(re.search(r"difference ([0-9.e+-]+)", lines[r]).group(1))
            assert diff == pytest.approx(np.abs(got - reference).max(), rel=0.05, abs=1e-9)


@pytest.mark.parametrize("flag", ["onnx", "vnnlib"])
def test_an_export_that_runs_out_of_disk_leaves_no_part_of_a_file(store, tmp_path, monkeypatch, flag):
    """A full disk left a truncated initial.onnx that looked like an export."""
    from fvtui.errors import UserError

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError, match="No space left on device"):
        export(store, "grow", tmp_path, **{flag: True})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_onnx_export_of_one_round(store, tmp_path):
    export(store, "grow", tmp_path, onnx=True, round=0)
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["initial.onnx"]


# -- the rebuilt queries ------------------------------------------------------------------------------
def test_rebuilt_queries_are_the_recorded_searches(store, demo):
    """Each sample's rebuilt queries count, end and find exactly what the round recorded."""
    for name in ("grow", "grow-lp", "seeded"):
        with store.open(name, writable=False) as session:
            rebuilt = rebuild_round(session, demo, 1)
            record = session.rounds[0]
            assert not rebuilt.skipped or all(v.spurious for v in record.verification
                                              if v.source in dict(rebuilt.skipped))
            done = {v.source: v for v in record.verification if v.source not in dict(rebuilt.skipped)}
            for source, v in done.items():
                mine = [q for q in rebuilt.queries if q.sample == source]
                assert len(mine) == v.queries and [q.number for q in mine] == list(range(1, v.queries + 1))
                assert mine[-1].eps == v.eps
                assert [q.seconds for q in mine] == v.query_seconds
            synthetic = session.synthetic(1)
            sat = [q for q in rebuilt.queries if q.verdict == "sat"]
            assert len(sat) == int(np.isin(synthetic.origin, ("marabou", "lp")).sum())
            assert (synthetic.origin == "lp").any() == (name == "grow-lp")
            for q in sat:  # the counterexample lies in the box and meets every exclusion (up to float32)
                assert np.all(q.counterexample >= q.lower - 1e-6) and np.all(q.counterexample <= q.upper + 1e-6)
                for p, c in zip(q.pixels, q.centers):
                    assert q.counterexample[p] <= c - q.delta + 1e-6 or q.counterexample[p] >= c + q.delta - 1e-6
                assert q.predicted != q.winner


def test_vnnlib_folder_is_in_vnncomp_layout(store, tmp_path):
    lines = export(store, "grow", tmp_path, vnnlib=True)
    folder = tmp_path / "vnnlib-round-0001"
    rows = list(csv.reader(open(folder / "instances.csv")))
    assert rows and all(len(r) == 3 for r in rows)
    assert {r[0] for r in rows} == {"onnx/initial.onnx"} and {r[2] for r in rows} == {"10"}
    for onnx_path, vnnlib_path, _ in rows:
        assert (folder / onnx_path).is_file() and (folder / vnnlib_path).is_file()
    text = (folder / rows[0][1]).read_text()
    assert "; verdict fvtui got:" in text and "(declare-const X_783 Real)" in text and "(declare-const Y_9 Real)" in text
    assert not re.search(r"\d[eE][+-]?\d", "".join(l for l in text.splitlines() if not l.startswith(";")))
    summary = list(csv.DictReader(open(folder / "queries.csv")))
    assert len(summary) == len(rows)
    assert "queries as VNN-LIB" in lines[0]


# -- the independent re-check --------------------------------------------------------------------------
def parse_vnnlib(text: str):
    """A small VNN-LIB reader of its own: declarations, and asserts of <=, >=, or, and over linear terms.

    Returns (constraints): a list of clauses, each a list of alternatives, each a list of atoms
    (coefficients {name: c}, op, constant) meaning sum c*name op constant.
    """
    tokens = re.findall(r"\(|\)|[^\s()]+", "\n".join(line.split(";")[0] for line in text.splitlines()))
    pos = 0

    def read():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok != "(":
            return tok
        items = []
        while tokens[pos] != ")":
            items.append(read())
        pos += 1
        return items

    def term(t):  # -> ({name: coeff}, constant) as exact fractions
        if isinstance(t, str):
            if re.fullmatch(r"[XY]_\d+", t):
                return {t: Fraction(1)}, Fraction(0)
            return {}, Fraction(t)
        op, *args = t
        parts = [term(a) for a in args]
        if op == "-" and len(parts) == 1:
            return {k: -v for k, v in parts[0][0].items()}, -parts[0][1]
        if op in "+-":
            sign = [1] + [1 if op == "+" else -1] * (len(parts) - 1)
            coeffs: dict[str, Fraction] = {}
            for s, (c, _) in zip(sign, parts):
                for k, v in c.items():
                    coeffs[k] = coeffs.get(k, 0) + s * v
            return coeffs, sum(s * k for s, (_, k) in zip(sign, parts))
        if op == "*":
            (c1, k1), (c2, k2) = parts
            assert not (c1 and c2)
            c, k, scale = (c2, k2, k1) if not c1 else (c1, k1, k2)
            return {n: v * scale for n, v in c.items()}, k * scale
        raise ValueError(f"unsupported term {op}")

    def atoms(e):  # -> list of alternatives, each a list of atoms (DNF)
        op, *args = e
        if op in ("<=", ">="):
            (ca, ka), (cb, kb) = term(args[0]), term(args[1])
            coeffs = {n: ca.get(n, 0) - cb.get(n, 0) for n in {*ca, *cb}}
            return [[(coeffs, op, kb - ka)]]
        if op == "or":
            return [alt for a in args for alt in atoms(a)]
        if op == "and":
            alts = [[]]
            for a in args:
                alts = [x + y for x in alts for y in atoms(a)]
            return alts
        raise ValueError(f"unsupported formula {op}")

    declared, clauses = [], []
    while pos < len(tokens):
        form = read()
        if form[0] == "declare-const":
            declared.append(form[1])
        elif form[0] == "assert":
            clauses.append(atoms(form[1]))
    return declared, clauses


def solve_pair(onnx_path: Path, vnnlib_path: Path, timeout: int = 20) -> tuple[str, np.ndarray | None]:
    from maraboupy import Marabou, MarabouCore, MarabouUtils

    network = Marabou.read_onnx(str(onnx_path))
    xs, ys = network.inputVars[0].flatten(), network.outputVars[0].flatten()
    declared, clauses = parse_vnnlib(vnnlib_path.read_text())
    assert sum(d.startswith("X_") for d in declared) == xs.size and sum(d.startswith("Y_") for d in declared) == ys.size

    def var(name):
        return int((xs if name[0] == "X" else ys)[int(name[2:])])

    def equation(coeffs, op, constant):
        eq = MarabouUtils.Equation(MarabouCore.Equation.LE if op == "<=" else MarabouCore.Equation.GE)
        for name, c in coeffs.items():
            eq.addAddend(float(c), var(name))
        eq.setScalar(float(constant))
        return eq

    for alternatives in clauses:
        if len(alternatives) == 1 and len(alternatives[0]) == 1 and len(alternatives[0][0][0]) == 1:
            coeffs, op, constant = alternatives[0][0]
            (name, c), = coeffs.items()
            if name.startswith("X_") and c == 1:  # a bound
                (network.setLowerBound if op == ">=" else network.setUpperBound)(var(name), float(constant))
                continue
        if len(alternatives) == 1:
            for atom in alternatives[0]:
                network.addEquation(equation(*atom))
        else:
            network.addDisjunctionConstraint([[equation(*a) for a in alt] for alt in alternatives])
    options = Marabou.createOptions(verbosity=0, timeoutInSeconds=timeout)
    code, values, _ = network.solve(verbose=False, options=options)
    point = np.array([values[int(v)] for v in xs]) if code == "sat" else None
    return code, point


def test_marabou_reading_the_exported_files_agrees_with_fvtui(store, tmp_path):
    """Every exported query of the three fv sessions (at most 60), solved from the files alone: in
    grow-lp the UNSATs are branch and bound's and the SATs the region program's."""
    agree, checked, disjunctive, unsat, inconclusive = 0, 0, 0, 0, 0
    for name in ("grow", "grow-lp", "seeded"):
        export(store, name, tmp_path / name, vnnlib=True)
        folder = tmp_path / name / "vnnlib-round-0001"
        summary = {row["vnnlib"]: row for row in csv.DictReader(open(folder / "queries.csv"))}
        for onnx_path, vnnlib_path, _ in list(csv.reader(open(folder / "instances.csv")))[:20]:
            expected = summary[vnnlib_path]["verdict"]
            if expected not in ("sat", "unsat"):
                continue
            code, point = solve_pair(folder / onnx_path, folder / vnnlib_path)
            if code not in ("sat", "unsat"):
                inconclusive += 1
                continue
            checked += 1
            agree += code == expected
            disjunctive += int(summary[vnnlib_path]["disjunctions"]) > 0
            unsat += expected == "unsat"
            if code == "sat":  # Marabou's point is a real counterexample of the exported network
                logits = onnx_logits(folder / onnx_path, point[None].astype(np.float32))[0]
                w, r = int(summary[vnnlib_path]["winner"]), int(summary[vnnlib_path]["runner_up"])
                assert logits[w] - logits[r] <= -0.001 + 1e-4
    print(f"re-check: {agree}/{checked} agree ({disjunctive} with exclusion disjunctions, {unsat} UNSAT), "
          f"{inconclusive} without an answer")
    assert checked >= 10 and agree == checked
    assert disjunctive >= 3 and unsat >= 1


def test_the_vnnlib_parser_reads_what_it_should():
    _, clauses = parse_vnnlib("(declare-const X_0 Real)\n(assert (or (<= X_0 0.25) (>= X_0 0.75)))\n"
                              "(assert (<= (- Y_1 Y_2) (- 0.001)))\n")
    assert clauses[0] == [[({"X_0": 1}, "<=", Fraction("0.25"))], [({"X_0": 1}, ">=", Fraction("0.75"))]]
    assert clauses[1] == [[({"Y_1": 1, "Y_2": -1}, "<=", Fraction("-0.001"))]]


# -- bad input ---------------------------------------------------------------------------------------
def test_a_round_without_queries_is_refused(store, tmp_path):
    with pytest.raises(UserError, match="no round with solver queries to export"):
        export(store, "plain", tmp_path, vnnlib=True)
    with pytest.raises(UserError, match="round 1 of session 'plain' has no solver queries to export"):
        export(store, "plain", tmp_path, vnnlib=True, round=1)
    assert not (tmp_path / "vnnlib-round-0001").exists()


def test_a_round_out_of_range_is_refused(store, tmp_path):
    with pytest.raises(UserError, match="has rounds 1 to 1, not round 5"):
        export(store, "grow", tmp_path, vnnlib=True, round=5)
    with pytest.raises(UserError, match="--round goes with --onnx or --vnnlib"):
        export(store, "grow", tmp_path, round=1)


def test_a_protocol_1_session_rebuilds_exactly(demo):
    """fvtui 0.1's fvaal+fv (its own start rules, legacy search): every query rebuilt, none left out."""
    fixtures = SessionStore(Path(__file__).parent / "fixtures" / "protocol1")
    with fixtures.open("old-fvaal-fv", writable=False) as session:
        for r in range(1, len(session.rounds) + 1):
            rebuilt = rebuild_round(session, demo, r)
            assert not rebuilt.skipped
            assert len(rebuilt.queries) == sum(v.queries for v in session.rounds[r - 1].verification) > 0


class SpuriousSolver:
    """Runs each search in this process, with every second solver SAT answer replaced by the sample
    itself: a point the network does not confirm (spurious), which the search still excludes. Its
    results are kept by sample (the input's bytes): fv hands the searches over longest first."""

    def __init__(self, workers=None) -> None:
        self.results = {}

    @staticmethod
    def key(x) -> bytes:
        return np.asarray(x, np.float32).tobytes()

    def run_searches(self, tasks, on_result=None, cancel=None, on_progress=None):
        from fvtui.verify import search
        from fvtui.verify.query import Solved

        real, answers = search.solve, [0]
        for i, t in enumerate(tasks):
            def solve(query, n, timeout, x=np.asarray(t.x, np.float32)):
                solved = real(query, n, timeout)
                if solved.status == "sat":
                    answers[0] += 1
                    if answers[0] % 2:
                        return Solved("sat", x.astype(np.float64), solved.seconds)
                return solved

            search.solve = solve
            try:
                result = search.search_counterexamples(t.net, t.x, t.target, t.runner_up, t.k, t.eps_start,
                                                       t.eps_step, t.timeout, seeds=t.seeds, legacy=t.legacy)
            finally:
                search.solve = real
            self.results[self.key(t.x)] = result
            on_result(i, result)
        return [self.results[self.key(t.x)] for t in tasks]

    def close(self) -> None:
        pass


def test_spurious_answers_are_stored_and_their_queries_rebuilt(demo, tmp_path):
    from fvtui.interop.vnnlib import export_round

    store = SessionStore(tmp_path / "sessions")
    cfg = SessionConfig(**BASE, settings=RoundSettings(strategy="random", augment="fv", query_size=3, pool_size=200,
                                                       advs_per_sample=2, verify_timeout=10))
    solver = SpuriousSolver()
    with Engine(store.create("spurious", cfg), demo, workers=1, solver_factory=lambda workers: solver) as engine:
        engine.run()
    with store.open("spurious", writable=False) as session:
        record = session.rounds[0]
        assert sum(v.spurious for v in record.verification) > 0
        assert all(len(v.unkept) == v.spurious and not any(u["counted"] for u in v.unkept)
                   for v in record.verification)
        rebuilt = rebuild_round(session, demo, 1)
        assert not rebuilt.skipped
        for v in record.verification:
            result = solver.results[solver.key(demo.train_x[v.source].numpy())]
            mine = [q for q in rebuilt.queries if q.sample == v.source]
            assert [q.eps for q in mine] == [q.eps for q in result.queries]  # the same searches, query by query
            assert [q.pixels.size for q in mine] == [q.disjunctions for q in result.queries]
            assert [q.verdict for q in mine] == [{"spurious": "sat"}.get(q.status, q.status) for q in result.queries]
            for q, ran in zip(mine, result.queries):
                if ran.status == "spurious":  # the solver's point (the sample, clipped into the box): still the winner
                    assert np.array_equal(q.counterexample, np.clip(q.x, q.lower, q.upper).astype(np.float32))
                    assert q.predicted == q.winner
        export_round(session, demo, rebuilt, tmp_path / "vnnlib")
        assert not (tmp_path / "vnnlib" / "not_exported.txt").exists()


def test_a_sample_with_spurious_answers_is_left_out_and_named(store, demo, tmp_path):
    from fvtui.interop.vnnlib import export_round

    with store.open("grow", writable=False) as session:
        first = session.rounds[0].verification[0]
        first.spurious = 1  # in memory only: a spurious answer of a session written before they were stored
        rebuilt = rebuild_round(session, demo, 1)
        assert [s for s, _ in rebuilt.skipped] == [first.source] and "spurious" in rebuilt.skipped[0][1]
        assert first.source not in {q.sample for q in rebuilt.queries}
        export_round(session, demo, rebuilt, tmp_path)
        assert f"sample {first.source}: " in (tmp_path / "not_exported.txt").read_text()
        rebuilt.queries = []
        with pytest.raises(UserError, match="has no query that can be rebuilt exactly"):
            export_round(session, demo, rebuilt, tmp_path / "none")
