"""`fvtui bench` as a user runs it: a benchmark killed mid-run resumes without redoing finished
sessions, its outputs agree with the sessions, and bad input gets one clear message."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fvtui.bench.methods import PAPER, Method, paper_methods, parse_methods, parse_seeds
from fvtui.bench.runner import Job, longest_first, plan
from fvtui.bench.spec import resolve
from fvtui.cli import build_parser
from fvtui.errors import UserError
from fvtui.metrics import aubc, within_group_distances
from fvtui.store import SessionStore

SMALL = ["--rounds", "2", "--pool-size", "500", "--epochs", "2", "--init-size", "20", "--query-size", "10"]
METHODS = "random+none,margin+fgsm"
SESSIONS = ["random-none-s0", "margin-fgsm-s0", "random-none-s1", "margin-fgsm-s1"]
OUTPUTS = ["accuracy.csv", "aubc.csv", "aubc.md", "learning_curves.png", "learning_curves.svg",
           "learning_curves_by_strategy.png", "learning_curves_by_strategy.svg", "diversity.csv", "diversity.md",
           "diversity_within_sample.csv", "diversity_within_sample.md", "timing.csv", "timing.md", "report.md"]


def command(sessions: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fvtui", "--sessions-dir", str(sessions), "bench", *args]


def bench(sessions: Path, *args: str, check: int | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command(sessions, *args), capture_output=True, text=True, timeout=240)
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def snapshot(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    return sorted((str(p.relative_to(path)), p.stat().st_mtime_ns, p.stat().st_size) for p in path.rglob("*"))


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A benchmark SIGKILLed while its second session runs, then run again to the end."""
    sessions = tmp_path_factory.mktemp("bench") / "sessions"
    group = sessions / "bench-demo"
    args = ["--dataset", "demo", "--methods", METHODS, "--seeds", "0-1", *SMALL]
    killed = subprocess.Popen(command(sessions, *args, "--jobs", "1"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (group / "random-none-s0" / "rounds" / "0002").exists()
                 and (group / "margin-fgsm-s0").exists())
    finally:
        killed.send_signal(signal.SIGKILL)
        killed_output = killed.communicate()[0]
    first = snapshot(group / "random-none-s0")
    assert not (group / "margin-fgsm-s1").exists()
    result = bench(sessions, *args, "--jobs", "2", check=0)
    return SimpleNamespace(sessions=sessions, group=group, results=group / "results", first=first,
                           killed_output=killed_output, output=result.stdout)


def test_killed_bench_resumes_without_redoing_finished_sessions(resumed):
    assert "random-none-s0 (Random, seed 0): finished 2 rounds" in resumed.killed_output
    started = [line.split()[1] for line in resumed.output.splitlines() if line.endswith(")") and "started" in line]
    assert sorted(started) == ["margin-fgsm-s0", "margin-fgsm-s1", "random-none-s1"]
    assert "1 finished already, 3 to run" in resumed.output
    assert snapshot(resumed.group / "random-none-s0") == resumed.first  # not one file rewritten
    store = SessionStore(resumed.group)
    assert store.names() == sorted(SESSIONS)
    for name in SESSIONS:
        with store.open(name, writable=False) as session:
            assert session.finished and len(session.rounds) == 2
    # a plain `fvtui list` works on the group
    listing = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(resumed.group), "list"],
                             capture_output=True, text=True, check=True).stdout
    assert "margin+fgsm" in listing and "2/2" in listing


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_outputs_exist_and_agree_with_the_sessions(resumed):
    for name in OUTPUTS:
        assert (resumed.results / name).stat().st_size > 0, name
    store = SessionStore(resumed.group)
    sessions = {}
    for name in SESSIONS:
        with store.open(name, writable=False) as session:
            sessions[name] = session

    rows = read_csv(resumed.results / "accuracy.csv")
    assert list(rows[0]) == ["dataset", "method", "label", "seed", "session", "round", "labeled", "synthetic",
                             "accuracy"]
    assert {r["dataset"] for r in rows} == {"demo"}
    assert len(rows) == 4 * 2
    for name, session in sessions.items():
        mine = [r for r in rows if r["session"] == name]
        assert [float(r["accuracy"]) for r in mine] == session.accuracies
        assert [int(r["labeled"]) for r in mine] == [30, 40]
        assert {(r["method"], int(r["seed"])) for r in mine} == {(session.method, session.config.seed)}

    table = read_csv(resumed.results / "aubc.csv")
    assert [r["method"] for r in table] == sorted(["random+none", "margin+fgsm"],
                                                  key=lambda m: -float(next(r for r in table if r["method"] == m)
                                                                       ["aubc_mean"]))
    assert [int(r["rank"]) for r in table] == [1, 2]
    markdown = (resumed.results / "aubc.md").read_text()
    for row in table:
        scores = np.array([aubc(s.accuracies) for s in sessions.values() if s.method == row["method"]])
        assert float(row["aubc_mean"]) == pytest.approx(scores.mean(), abs=1e-12)
        assert float(row["aubc_std"]) == pytest.approx(scores.std(), abs=1e-12)
        assert int(row["seeds"]) == 2 and row["dataset"] == "demo"
        assert f"| {row['label']} | `{row['method']}` | {scores.mean():.4f} | {scores.std():.4f} |" in markdown

    png = (resumed.results / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    svg = ET.parse(resumed.results / "learning_curves.svg").getroot()
    assert svg.tag.endswith("svg")
    assert "Random" in (resumed.results / "learning_curves.svg").read_text()

    paper = read_csv(resumed.results / "diversity.csv")  # the paper's measure: round 1 and the last round
    assert [(r["method"], r["round"], r["sessions"]) for r in paper] == [("margin+fgsm", "1", "2"),
                                                                         ("margin+fgsm", "2", "2")]
    assert all(float(r["distance_min"]) <= float(r["distance_mean"]) <= float(r["distance_max"]) for r in paper)
    assert "output (logit) layer" in (resumed.results / "diversity.md").read_text()
    diversity = read_csv(resumed.results / "diversity_within_sample.csv")
    assert [r["method"] for r in diversity] == ["margin+fgsm"]  # random+none makes no synthetic samples
    pairs = 0
    for name in ("margin-fgsm-s0", "margin-fgsm-s1"):
        for r in (1, 2):
            counts = np.unique(sessions[name].synthetic(r).source, return_counts=True)[1]
            pairs += int((counts * (counts - 1) // 2).sum())
    assert int(diversity[0]["pairs"]) == pairs > 0
    assert float(diversity[0]["distance_mean"]) > 0 and float(diversity[0]["distance_std"]) > 0
    assert "not the paper's measure" in (resumed.results / "diversity_within_sample.md").read_text()

    timing = {r["session"]: r for r in read_csv(resumed.results / "timing.csv")}
    assert set(timing) == set(SESSIONS)
    for name, session in sessions.items():
        for phase in ("select", "label", "augment", "train", "evaluate"):
            expected = sum(rec.seconds[phase] for rec in session.rounds)
            assert float(timing[name][f"{phase}_s"]) == pytest.approx(expected, abs=1e-3)
        assert int(timing[name]["synthetic"]) == session.rounds[-1].synthetic
        assert int(timing[name]["queries"]) == 0  # no solver without fv
    report = (resumed.results / "report.md").read_text()
    assert "## AUBC" in report and "learning_curves.png" in report and "## Timing" in report


def test_report_only_remakes_the_same_files(resumed, tmp_path):
    out = tmp_path / "again"
    result = bench(resumed.sessions, "--name", "bench-demo", "--report-only", "--out", str(out), check=0)
    assert "started" not in result.stdout
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (resumed.results / name).read_bytes(), name


def test_the_output_folder_alone_remakes_the_report_and_skips_finished_sessions(resumed, tmp_path):
    """Sessions folder gone (another machine, a fresh checkout): the digests in the output folder
    give the same tables, and running the benchmark again runs nothing."""
    out = tmp_path / "results"
    shutil.copytree(resumed.results, out)
    digests = sorted(p.name for p in (out / "sessions").iterdir())
    assert digests == ["bench.json", *sorted(f"{n}.json.gz" for n in SESSIONS)]
    assert all((out / "sessions" / d).stat().st_size < 20_000 for d in digests)
    for name in OUTPUTS:
        (out / name).unlink()
    empty = tmp_path / "elsewhere"
    bench(empty, "--name", "bench-demo", "--report-only", "--out", str(out), check=0)
    for name in OUTPUTS:
        if not name.endswith((".png", ".svg")):
            assert (out / name).read_bytes() == (resumed.results / name).read_bytes(), name
    rerun = bench(empty, "--name", "bench-demo", "--out", str(out), check=0)
    assert "4 finished already, 0 to run" in rerun.stdout and "started" not in rerun.stdout
    assert not (empty / "bench-demo" / "random-none-s0").exists()
    more = bench(empty, "--name", "bench-demo", "--out", str(out), "--seeds", "0-2", "--methods", "random+none",
                 check=0)
    assert "2 finished already, 1 to run" in more.stdout and "random-none-s2" in more.stdout
    assert {r["session"] for r in read_csv(out / "accuracy.csv")} == {"random-none-s0", "random-none-s1",
                                                                      "random-none-s2"}


def test_each_seed_starts_with_the_methods_that_took_longest(resumed, tmp_path):
    """Seeds 0-1 finished, seed 2 to run: its sessions start longest first, by the time each method's
    finished sessions took, so the run ends on its short ones."""
    sessions = tmp_path / "sessions"
    shutil.copytree(resumed.group, sessions / "bench-demo")
    args = build_parser().parse_args(["--sessions-dir", str(sessions), "bench", "--dataset", "demo", "--methods",
                                      METHODS, "--seeds", "0-2", *SMALL])
    store = SessionStore(sessions / "bench-demo")
    took = {}
    for name in SESSIONS:
        with store.open(name, writable=False) as session:
            took[name] = sum(sum(r.seconds.values()) for r in session.rounds)
    slugs = ["random-none", "margin-fgsm"]
    mean = {slug: (took[f"{slug}-s0"] + took[f"{slug}-s1"]) / 2 for slug in slugs}
    jobs = plan(resolve(args, sessions))
    assert [job.seed for job in jobs] == [0, 0, 1, 1, 2, 2]
    assert [job.name for job in jobs if job.seed == 2] == [f"{slug}-s2" for slug in sorted(slugs, key=mean.get,
                                                                                              reverse=True)]


def test_longest_first_puts_unmeasured_methods_first_and_keeps_seeds_in_order():
    a, b, c = Method("random", "none"), Method("badge", "fv"), Method("dfal", "fgsm")
    jobs = [Job(m, seed, m.session_name(seed), 0, False) for seed in (3, 1) for m in (a, b, c)]
    ordered = longest_first(jobs, {a.key: 10.0, b.key: 100.0})
    assert [job.name for job in ordered] == ["dfal-fgsm-s3", "badge-fv-s3", "random-none-s3",
                                             "dfal-fgsm-s1", "badge-fv-s1", "random-none-s1"]


def test_unfinished_sessions_stay_out_of_every_table(resumed, tmp_path):
    group = tmp_path / "bench-demo"
    shutil.copytree(resumed.group, group, ignore=shutil.ignore_patterns("results"))
    shutil.rmtree(group / "margin-fgsm-s1" / "rounds" / "0002")  # as if stopped after round 1
    out = tmp_path / "out"
    bench(tmp_path, "--name", "bench-demo", "--report-only", "--out", str(out), check=0)

    accuracy = read_csv(out / "accuracy.csv")
    assert [r["round"] for r in accuracy if r["session"] == "margin-fgsm-s1"] == ["1"]  # its curve so far
    aubc_rows = {r["method"]: r for r in read_csv(out / "aubc.csv")}
    assert (aubc_rows["margin+fgsm"]["seeds"], aubc_rows["margin+fgsm"]["seed_list"]) == ("1", "0")
    assert aubc_rows["random+none"]["seeds"] == "2"
    paper = read_csv(out / "diversity.csv")
    assert [(r["method"], r["sessions"]) for r in paper] == [("margin+fgsm", "1"), ("margin+fgsm", "1")]
    diversity = read_csv(out / "diversity_within_sample.csv")
    assert [(r["method"], r["sessions"]) for r in diversity] == [("margin+fgsm", "1")]
    whole = read_csv(resumed.results / "diversity_within_sample.csv")[0]
    assert int(diversity[0]["pairs"]) < int(whole["pairs"])
    assert sorted(r["session"] for r in read_csv(out / "timing.csv")) == sorted(set(SESSIONS) - {"margin-fgsm-s1"})
    assert "1 unfinished (margin-fgsm-s1)" in (out / "report.md").read_text()


def test_figure_gives_seed_counts_when_methods_have_different_numbers_of_seeds(resumed, tmp_path):
    sessions = tmp_path / "sessions"
    shutil.copytree(resumed.group, sessions / "bench-demo", ignore=shutil.ignore_patterns("results"))
    shutil.rmtree(sessions / "bench-demo" / "margin-fgsm-s1")
    bench(sessions, "--name", "bench-demo", "--report-only", check=0)
    svg = (sessions / "bench-demo" / "results" / "learning_curves.svg").read_text()
    assert "mean over 1-2 seeds per method" in svg
    assert ", 1 seed)" in svg and ", 2 seeds)" in svg
    assert "seeds)" not in (resumed.results / "learning_curves.svg").read_text()  # even counts: no clutter


def test_figure_by_strategy_has_one_panel_per_strategy_holding_its_methods(resumed):
    svg = (resumed.results / "learning_curves_by_strategy.svg").read_text()
    panels = [re.findall(r"<!-- (.*?) -->", part) for part in svg.split('id="axes_')[1:]]
    assert len(panels) == 2  # random, margin
    random_panel, margin_panel = panels  # the paper's strategies first
    assert "Random" in random_panel and "margin" in margin_panel  # panel titles
    assert any(t.startswith("Random (") for t in random_panel)
    assert not any(t.startswith("margin+fgsm (") for t in random_panel)
    assert any(t.startswith("margin+fgsm (") for t in margin_panel)
    assert not any(t.startswith("Random (") for t in margin_panel)
    assert "learning_curves_by_strategy.png" in (resumed.results / "report.md").read_text()


def test_a_second_run_of_a_running_benchmark_is_refused(tmp_path):
    """Two runs of one benchmark raced for its sessions and wrote into the same logs."""
    from fvtui.store import take_lock

    (tmp_path / "s" / "b").mkdir(parents=True)
    lock = take_lock(tmp_path / "s" / "b", "benchmark")  # as a first run holds it
    try:
        result = bench(tmp_path / "s", "--dataset", "demo", "--methods", "random+none", "--seeds", "0", "--name", "b",
                       *SMALL, check=2)
    finally:
        os.close(lock)
    assert f"benchmark 'b' is being run by pid {os.getpid()}" in result.stderr
    assert sorted(p.name for p in (tmp_path / "s" / "b").iterdir()) == ["lock"]  # it wrote nothing


def test_changed_settings_are_refused(resumed):
    before = snapshot(resumed.group)
    result = bench(resumed.sessions, "--dataset", "demo", "--methods", METHODS, "--seeds", "0-2", *SMALL,
                   "--epochs", "3", check=2)
    assert "epochs 2" in result.stderr and "epochs 3" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(resumed.group) == before


@pytest.mark.parametrize("methods, bad", [
    ("random+none,badge+pgd", "badge+pgd"),
    ("smart+fv", "smart+fv"),
    ("random", None),  # a paper name: fine
    ("random-none", "random-none"),
    ("random+none+fv", "random+none+fv"),
])
def test_bad_method_names_exit_2_listing_the_valid_ones(tmp_path, methods, bad):
    if bad is None:
        assert parse_methods(methods) == [Method("random", "none")]
        return
    sessions = tmp_path / "s"
    result = bench(sessions, "--dataset", "demo", "--methods", methods, *SMALL, check=2)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert f"unknown method '{bad}'" in message
    from fvtui.augment import AUGMENTATIONS
    from fvtui.strategies import STRATEGIES

    for name in [*STRATEGIES, *AUGMENTATIONS]:
        assert name in message
    assert "BADGE+FV-Adv" in message
    assert not sessions.exists()


@pytest.mark.parametrize("seeds", ["3-1", "x", "-1", "", "1-2-3"])
def test_bad_seeds_exit_2(tmp_path, seeds):
    result = bench(tmp_path / "s", "--dataset", "demo", "--methods", METHODS, "--seeds", seeds, check=2)
    assert "--seeds" in result.stderr or "seeds must be" in result.stderr
    assert not (tmp_path / "s").exists()


def test_seed_syntax():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds("3") == [3]
    assert parse_seeds("0-2,1,7") == [0, 1, 2, 7]
    with pytest.raises(UserError):
        parse_seeds("0-99999")


def test_paper_methods_are_the_twelve_of_protocol():
    names = {label: m for (label, _, _), m in zip(PAPER, paper_methods())}
    assert len(names) == 12
    assert names["Random"] == Method("random", "none")
    assert names["Random+FV-Adv"] == Method("random", "fv")
    assert names["BADGE+FGSM-Adv"] == Method("badge", "fgsm")
    assert names["DFAL"] == Method("dfal", "deepfool")
    assert names["DFAL-No-Adv"] == Method("dfal", "none")
    assert names["FGSM-No-Adv"] == Method("fvaal", "none")
    assert names["FVAAL"] == Method("fvaal", "fv")
    assert parse_methods("BADGE+FV-Adv,badge+fv,dfal-no-adv") == [Method("badge", "fv"), Method("dfal", "none")]
    assert all(m.session_name(0).count("-") == 2 for m in paper_methods())


def test_the_report_says_what_the_machines_load_could_have_changed():
    from fvtui.bench.report import load_note
    from fvtui.config import RoundSettings

    def run(name, timeouts=0, slice="auto", verifies=True):
        record = SimpleNamespace(verification=[object()] if verifies else [],
                                 queries=SimpleNamespace(timeout=timeouts),
                                 settings=RoundSettings(marabou_slice=slice))
        return SimpleNamespace(name=name, records=[record])

    assert load_note([run("a", verifies=False)]) == []
    assert "1 of 2 verifying sessions had solver queries time out (b)" in load_note([run("a"), run("b", 3)])[0]
    off = load_note([run("a", slice="off"), run("b", slice="off")])[0]
    assert "their results do not depend on the machine's load" in off
    # with the slice on, only verdicts and counts are the load's no matter; one such session is enough
    auto = load_note([run("a", slice="off"), run("b")])[0]
    assert "verdicts, eps levels and counterexample counts do not depend" in auto
    assert "Their points can" in auto


def test_the_timing_tables_say_where_the_solver_time_went_and_what_held_the_longest_query():
    """The paper reproduction's longest query (384 s) could not be traced from its record: the tables now carry
    each phase's time, the CPU time behind it, and the longest query's phases."""
    from fvtui.bench.report import timing_markdown, timing_table
    from fvtui.records import SampleVerification

    def sample(seconds, phases):
        return SampleVerification(source=1, status="counterexample", eps=0.1, found=1, spurious=0,
                                  queries=len(seconds), seconds=sum(seconds), query_seconds=seconds,
                                  query_phases=phases)

    record = SimpleNamespace(seconds={"augment": 10.0}, queries=SimpleNamespace(sat=3, unsat=1, timeout=0, error=0,
                                                                                spurious=0),
                             new_synthetic=3, verification=[
        sample([0.2, 0.3], [{"build": 0.01, "marabou": 0.19, "cpu": 0.2}, {"build": 0.01, "marabou": 0.29, "cpu": 0.3}]),
        sample([0.001, 8.0], [{"cpu": 0.0}, {"offer": 0.5, "build": 0.01, "marabou": 1.0, "decide": 6.0,
                                            "narrowed": 0.4, "cpu": 2.0}])])
    run = SimpleNamespace(dataset="mnist", method=Method("random", "fv"), seed=4, name="random-fv-s4",
                          records=[record])
    header, rows = timing_table([run])
    row = dict(zip(header, rows[0]))
    assert row["query_marabou_s"] == pytest.approx(1.48) and row["query_decide_s"] == 6.0
    assert row["query_cpu_s"] == pytest.approx(2.5) and row["longest_query_s"] == 8.0
    assert row["longest_query_phases"] == ("decide 6.000 s, marabou 1.000 s, offer 0.500 s, narrowed 0.400 s, "
                                           "build 0.010 s; cpu 2.000 s")
    text = timing_markdown(header, rows)
    assert "## Where the solver's time went" in text
    section = text.split("## Where the solver's time went")[1]
    line = next(line for line in section.splitlines() if line.startswith("| Random+FV-Adv | 1 |"))
    # shares of 8.41 s: offer 0.06, build 0.00, marabou 0.18, decide 0.71, narrowed 0.05; cpu/wall 0.30
    assert "| 0.00 | 0.06 | 0.00 | 0.18 | 0.71 | 0.05 | 0.00 | 8.4 | 0.30 | 8.0 s: decide 6.000 s" in line


def test_within_group_distances():
    features = np.array([[0, 0], [3, 4], [6, 8], [1, 1], [5, 5]], dtype=np.float32)
    groups = np.array([7, 7, 7, 9, 2])
    assert sorted(within_group_distances(features, groups)) == pytest.approx([5.0, 5.0, 10.0])
    assert within_group_distances(features[:1], groups[:1]).size == 0


def test_bench_parent_stays_light():
    code = ("import sys; from fvtui.cli import build_parser; import fvtui.bench.command, fvtui.bench.runner, "
            "fvtui.bench.spec, fvtui.bench.report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout
    assert out.strip() == "[]"
