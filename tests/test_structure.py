"""The house keeps its shape: one settings schema behind every face, layers that do not import
upward, and every registered plug-in pair running end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fvtui import __version__
from fvtui.augment import AUGMENTATIONS
from fvtui.cli import build_parser
from fvtui.config import RoundSettings, SessionConfig
from fvtui.engine import Engine
from fvtui.events import PhaseStarted
from fvtui.schema import SETTINGS, markdown_table, scoped
from fvtui.store import SessionStore
from fvtui.strategies import STRATEGIES

README = Path(__file__).resolve().parent.parent / "README.md"


def _help(*command: str) -> str:
    result = subprocess.run([sys.executable, "-m", "fvtui", *command, "--help"], capture_output=True, text=True,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_readme_flag_table_is_the_schema():
    text = README.read_text()
    table = text.split("<!-- settings table: python -m fvtui.schema -->\n")[1].split("\n<!-- end of settings table")[0]
    assert table == markdown_table()


def test_help_offers_every_setting_with_its_default():
    new, resume, bench = _help("new"), _help("resume"), _help("bench")
    for s in SETTINGS:
        if not s.flag:
            continue
        own = "(default:" in s.help  # said in its own words, once
        shown = "(default:" if own else f"(default: {s.shown(s.default())})"
        assert re.search(rf"{re.escape(s.option)}\b.*?{re.escape(shown)}", new, re.S), s.name
        offered = re.compile(rf"{re.escape(s.option)}(?![\w-])")
        assert bool(offered.search(resume)) == (s.scope == "round" or s.name == "rounds"), s.name
        if s.scope == "round":  # resume keeps the session's value: the help quoted new's default
            options = resume.split("\noptions:")[1]
            help_of = re.search(rf"{re.escape(s.option)} [A-Z_]+(.*?)(?=\n  -|\Z)", options, re.S).group(1)
            assert " ".join(help_of.split()).endswith("(default: the session's own)"), s.name
        assert bool(offered.search(bench)) == (s.name not in ("seed", "strategy", "augment", "oracle")), s.name
    assert ") (default: -)" not in " ".join(new.split())  # a help that says its default, then '-' again
    for face in (new, resume, bench):
        assert "exit codes: 0 done" in " ".join(face.split())


def test_every_config_field_is_a_setting():
    import dataclasses

    session = {f.name for f in dataclasses.fields(SessionConfig)} - {"dataset", "settings", "protocol"}
    assert {s.name for s in scoped("session")} == session
    assert {s.name for s in scoped("round")} == {f.name for f in dataclasses.fields(RoundSettings)}


@pytest.mark.parametrize("where", ["before", "after"])
def test_shared_options_work_before_or_after_the_command(tmp_path, where):
    shared = ["--sessions-dir", str(tmp_path / "s"), "--data-dir", str(tmp_path / "d")]
    argv = [*shared, "list"] if where == "before" else ["list", *shared]
    args = build_parser().parse_args(argv)
    assert (args.sessions_dir, args.data_dir) == (str(tmp_path / "s"), str(tmp_path / "d"))
    assert build_parser().parse_args(["list"]).sessions_dir is None


def test_version():
    result = subprocess.run([sys.executable, "-m", "fvtui", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"fvtui {__version__}"


@pytest.mark.parametrize("modules, forbidden", [
    (["fvtui.engine", "fvtui.store", "fvtui.verify", "fvtui.strategies", "fvtui.augment", "fvtui.headless"],
     "textual"),
    (["fvtui.verify", "fvtui.verify.worker", "fvtui.verify.pool"], "torch"),
    (["fvtui.store"], "fvtui.engine"),
    (["fvtui.bench.runner", "fvtui.bench.report", "fvtui.bench.command"], "fvtui.app"),
])
def test_layers_do_not_import_upward(modules, forbidden):
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"bad = sorted(m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.'))\n"
            "print(' '.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{modules} import {result.stdout.strip()}"


class FakeSolver:
    """Stands in for the solver pool: every search ends with no counterexample."""

    def __init__(self, workers) -> None:
        self.searches = 0

    def run_searches(self, tasks, on_result=None, cancel=None, on_progress=None):
        from fvtui.verify import SearchResult

        results = [SearchResult("exhausted", final_eps=1.0) for _ in tasks]
        for i, result in enumerate(results):
            self.searches += 1
            if on_result:
                on_result(i, result)
        return results

    def close(self) -> None:
        pass


@pytest.mark.parametrize("augment", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_runs_with_every_augmentation(tmp_path, demo, strategy, augment):
    config = SessionConfig(dataset="demo", rounds=2, init_size=20, epochs=1, hidden=(8,),
                           settings=RoundSettings(strategy=strategy, augment=augment, query_size=3, pool_size=60,
                                                  advs_per_sample=2))
    solvers, order = [], []

    def factory(workers):
        solvers.append(FakeSolver(workers))
        order.append("solver")
        return solvers[-1]

    def on_event(event):
        if isinstance(event, PhaseStarted) and event.phase == "select":
            order.append("select")

    with SessionStore(tmp_path).create("p", config) as session, \
            Engine(session, demo, solver_factory=factory, on_event=on_event) as engine:
        engine.run()
        assert len(session.rounds) == 2
        picked = np.concatenate([session.queried_indices(r) for r in (1, 2)])
        assert len(set(picked)) == 6 and not set(picked) & set(session.initial().labeled)
        assert all(0 <= r.test_accuracy <= 1 for r in session.rounds)
        made = [len(session.synthetic(r)) for r in (1, 2)]
        assert all(m <= 3 * 2 for m in made)
    verifies = AUGMENTATIONS.trait(augment, "needs_solver")
    assert [s.searches for s in solvers] == ([6] if verifies else [])
    # a verifying session's workers start before its first round selects: they import their solvers meanwhile
    assert order == (["solver", "select", "select"] if verifies else ["select", "select"])
