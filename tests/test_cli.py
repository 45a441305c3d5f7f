"""The command line as a user runs it: exit codes, messages, and files left behind."""

import json
import os
import shutil
import subprocess
import sys

import pytest

SMALL = ["--rounds", "2", "--init-size", "20", "--query-size", "10", "--pool-size", "300", "--epochs", "2",
         "--hidden", "16"]


def fvtui(*args, sessions, env=None, check=None):
    result = subprocess.run([sys.executable, "-m", "fvtui", "--sessions-dir", str(sessions), *args],
                            capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def snapshot(path):
    return sorted((str(p.relative_to(path)), p.stat().st_mtime_ns) for p in path.rglob("*")) if path.exists() else []


def test_headless_run_show_list_export(tmp_path):
    sessions = tmp_path / "s"
    name = "a-name-too-long-for-80-columns-beside-the-other-columns"  # piped output: nothing cut
    run = fvtui("new", "--headless", "--dataset", "demo", "--name", name, "--augment", "fgsm", *SMALL,
                sessions=sessions, check=0)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("round")]
    assert len(lines) == 2 and "labeled     30" in lines[0] and "labeled     40" in lines[1]
    shown = json.loads(fvtui("show", name, "--json", sessions=sessions, check=0).stdout)
    assert shown["name"] == name
    assert {k: shown["config"][k] for k in ("dataset", "strategy", "augment", "seed")} == \
        {"dataset": "demo", "strategy": "fvaal", "augment": "fgsm", "seed": 0}  # fvaal: the default strategy
    assert {k: shown["config"][k] for k in ("init", "train_initial", "protocol")} == \
        {"init": "glorot", "train_initial": False, "protocol": 2}
    assert [r["labeled"] for r in shown["rounds"]] == [30, 40]
    accuracies = [r["test_accuracy"] for r in shown["rounds"]]
    assert shown["aubc"] == pytest.approx(sum(accuracies) / 2)
    assert set(shown["rounds"][0]["verification"]) == {"sat", "unsat", "timeout", "error", "spurious"}
    assert f"{accuracies[-1]:.4f}" in lines[-1]
    listing = fvtui("list", sessions=sessions, check=0).stdout
    row = [line.split() for line in listing.splitlines()][1]
    assert row[:4] == [name, "demo", "fvaal+fgsm", "2/2"], listing
    shown_table = fvtui("show", name, sessions=sessions, check=0).stdout.splitlines()
    assert shown_table[0].split()[0] == name and shown_table[3].split() == [
        "round", "labeled", "synthetic", "accuracy", "seconds", "sat", "unsat", "timeout", "error", "spurious"]
    out = tmp_path / "export"
    fvtui("export", name, "--out", str(out), sessions=sessions, check=0)
    csv_rows = (out / "learning_curve.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and csv_rows[0].startswith("round,labeled,synthetic,test_accuracy")
    import numpy as np
    with np.load(out / "synthetic.npz") as npz:
        assert npz["x"].shape[0] == shown["rounds"][-1]["synthetic"] == len(list((out / "png").glob("*.png")))
        assert set(npz.files) >= {"x", "y", "source", "eps", "round"}


def test_resume_continues_after_the_last_round(tmp_path):
    sessions = tmp_path / "s"
    fvtui("new", "--headless", "--dataset", "demo", "--name", "a", "--strategy", "random", "--augment", "none",
          "--init", "torch", "--train-initial", *SMALL, sessions=sessions, check=0)
    run = fvtui("resume", "a", "--headless", "--rounds", "3", "--strategy", "margin", sessions=sessions, check=0)
    assert [ln.split()[1] for ln in run.stdout.splitlines() if ln.startswith("round")] == ["3/3"]
    shown = json.loads(fvtui("show", "a", "--json", sessions=sessions, check=0).stdout)
    assert [r["settings"]["strategy"] for r in shown["rounds"]] == ["random", "random", "margin"]
    text = fvtui("show", "a", sessions=sessions, check=0).stdout.splitlines()
    assert text[0].split()[:3] == ["a", "demo", "margin+none"]  # the method `list` and the app name
    rows = [line.split() for line in text if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert [row[10:] for row in rows] == [[], [], ["strategy", "margin"]]
    assert (shown["config"]["init"], shown["config"]["train_initial"]) == ("torch", True)


@pytest.mark.parametrize("args, message", [
    (["new", "--headless", "--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of: mnist"),
    (["new", "--headless", "--dataset", "demo", "--strategy", "smart"], "unknown strategy 'smart'; choose one of"),
    (["new", "--headless", "--dataset", "demo", "--augment", "pgd"], "unknown augmentation 'pgd'; choose one of"),
    (["new", "--headless", "--dataset", "demo", "--eps-start", "1.5"], "eps start must be in"),
    (["new", "--headless", "--dataset", "demo", "--eps-step", "-0.1"], "eps step must be in"),
    (["new", "--headless", "--dataset", "demo", "--eps-start", "abc"], "argument --eps-start: eps start must be a number, not 'abc'"),
    (["new", "--headless", "--dataset", "demo", "--query-size", "500", "--pool-size", "100"], "larger than the pool"),
    (["new", "--headless", "--dataset", "demo", "--rounds", "0"], "rounds must be between"),
    (["new", "--dataset", "demo", "--images", "bogus"], "unknown image mode 'bogus'; choose one of: sixel"),
    (["new", "--headless", "--dataset", "demo", "--images", "bogus"], "unknown image mode 'bogus'"),
    (["new", "--headless", "--dataset", "demo", "--init", "he"], "unknown initialisation 'he'; choose one of: glorot"),
    (["new", "--headless", "--dataset", "demo", "--hidden", "12,x"], "argument --hidden: hidden layers must be widths separated by commas"),
    (["new", "--headless", "--dataset", "demo", "--hidden", "32,,32"], "hidden layers must be widths separated by"),
    (["new", "--headless", "--dataset", "demo", "--name", ""], "'' is not a valid session name"),
    (["new", "--headless", "--dataset", "demo", "--image-size", "10x10"],
     "--image-size is for your own images; 'demo' is a built-in dataset"),
    (["new", "--headless", "--dataset", ""], "unknown dataset ''"),
    (["new", "--headless", "--dataset", "demo", "--workers", "0"], "--workers must be between 1 and 1024, not 0"),
    (["new", "--headless", "--dataset", "demo", "--workers", "99999999999"], "--workers must be between 1 and 1024"),
    (["new", "--headless", "--dataset", "demo", "--init-size", "5000"],
     "initial labeled size 5000 must be below the 5000 training samples"),
    (["new", "--headless", "--dataset", "demo", "--init-size", "4990", "--query-size", "5", "--pool-size", "10",
      "--rounds", "3"], "3 more rounds of 5 queried samples need 5005 training samples with the 4990 labeled so far; "
                        "the dataset has 5000: at most 2 rounds at this query size"),
    (["new", "--headless", "--dataset", "demo", "--name", "../evil"], "not a valid session name"),
    (["new", "--headless", "--dataset", "mnist", "--data-dir", "{tmp}/empty"], "could not be downloaded"),
    (["resume", "ghost", "--headless"], "no session 'ghost'"),
    (["bench", "--dataset", "demo", "--seed", "3"], "unrecognized arguments: --seed 3"),
    (["bench", "--dataset", "{tmp}", "--methods", "random+none"], "fvtui bench runs the built-in datasets"),
    (["show", "ghost"], "no session 'ghost'"),
    (["export", "ghost", "--out", "{tmp}/x"], "no session 'ghost'"),
])
def test_bad_input_gets_one_message_exit_2_and_no_files(tmp_path, args, message):
    sessions = tmp_path / "s"
    before = snapshot(sessions)
    result = fvtui(*[a.replace("{tmp}", str(tmp_path)) for a in args], sessions=sessions,
                   env={"no_proxy": "*", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(sessions) == before


def test_a_failed_download_leaves_no_folders_and_names_the_layout(tmp_path):
    result = fvtui("new", "--headless", "--dataset", "fashionmnist", "--data-dir", str(tmp_path / "none"),
                   sessions=tmp_path / "s", check=2,
                   env={"no_proxy": "*", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert "torchvision's layout: FashionMNIST/raw/ in it" in result.stderr  # it said "... for MNIST and Fashion-MNIST"
    assert not (tmp_path / "none").exists()  # torchvision's download made none/FashionMNIST/raw


def test_a_sessions_folder_that_is_a_file_is_named_as_one(tmp_path):
    (tmp_path / "file").write_text("x")  # `list` said "no sessions" here, exit 0
    result = fvtui("list", sessions=tmp_path / "file", check=2)
    assert result.stderr.strip() == f"fvtui: error: the sessions folder {tmp_path / 'file'} is a file, not a folder " \
                                    "(--sessions-dir)"


def test_a_folder_that_is_no_session_is_named_as_such_by_new(tmp_path):
    (tmp_path / "s" / "empty").mkdir(parents=True)  # new said "already exists; resume it", resume "no session"
    result = fvtui("new", "--headless", "--dataset", "demo", "--name", "empty", sessions=tmp_path / "s", check=2)
    assert "'empty' in " in result.stderr and "is not a session (it has no session.json)" in result.stderr


def test_existing_name_is_refused_and_its_files_untouched(tmp_path, finished):
    sessions = tmp_path / "s"
    shutil.copytree(finished, sessions)
    before = snapshot(sessions)
    result = fvtui("new", "--headless", "--dataset", "demo", "--name", "a", *SMALL, sessions=sessions, check=2)
    assert "already exists" in result.stderr
    assert snapshot(sessions) == before


def test_engine_modules_do_not_import_textual():
    code = ("import sys, fvtui.engine, fvtui.store, fvtui.headless, fvtui.report, fvtui.verify; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_image', 'plotext')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One small finished session, copied by each test that damages it."""
    sessions = tmp_path_factory.mktemp("finished")
    fvtui("new", "--headless", "--dataset", "demo", "--name", "a", *SMALL, sessions=sessions, check=0)
    return sessions


@pytest.mark.parametrize("face", [["--headless"], []])
def test_a_target_below_the_rounds_finished_is_refused_and_nothing_changes(finished, tmp_path, face):
    """Accepted, it read '2/1 rounds done' everywhere, and the app's form then refused every save."""
    sessions = tmp_path / "s"
    shutil.copytree(finished, sessions)
    saved = [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")]
    result = fvtui("resume", "a", *face, "--rounds", "1", sessions=sessions, check=2)
    assert result.stderr.strip() == "fvtui: error: rounds must be at least 2: that many are finished already"
    assert [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")] == saved


def test_a_resume_that_would_run_out_of_samples_is_refused_before_it_changes_anything(finished, tmp_path):
    """Refused only once it ran out, round 499 failed after the others were saved, and the new settings
    were saved even though the resume was refused."""
    sessions = tmp_path / "s"
    shutil.copytree(finished, sessions)
    saved = [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")]
    result = fvtui("resume", "a", "--headless", "--rounds", "1000", "--strategy", "margin", sessions=sessions, check=2)
    assert "998 more rounds of 10 queried samples need 10020 training samples with the 40 labeled so far; the " \
           "dataset has 5000: at most 498 rounds" in result.stderr
    assert [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")] == saved


def test_a_damaged_session_is_listed_with_its_reason_below_and_can_be_deleted(finished, tmp_path):
    sessions = tmp_path / "s"
    shutil.copytree(finished, sessions)
    (sessions / "a" / "session.json").write_text("{x")
    lines = fvtui("list", sessions=sessions, check=0).stdout.splitlines()
    assert lines[1].split()[:3] == ["a", "unreadable", "-"]
    assert lines[2].startswith(f"a: {sessions / 'a' / 'session.json'}: not valid JSON")
    assert lines[2].endswith("(fvtui delete a removes it)")
    assert fvtui("delete", "a", "--yes", sessions=sessions, check=0).stdout.strip() == "deleted a"
    assert list(sessions.iterdir()) == []


def _truncate(path):
    path.write_bytes(path.read_bytes()[:40])


def _edit(path):
    path.write_text(path.read_text().replace('"test_accuracy": 0.', '"test_accuracy": 0.9', 1))


def _newer(path):
    from fvtui.store import _write_json  # as a later fvtui would write it: checksummed, format 99

    data = json.loads(path.read_text())
    data["format"] = 99
    data.pop("sha256")
    _write_json(path, data)


@pytest.mark.parametrize("command", [["show", "a"], ["resume", "a", "--headless", "--rounds", "3"]])
@pytest.mark.parametrize("file, damage, message", [
    ("rounds/0002/round.json", _truncate, "rounds/0002/round.json"),
    ("rounds/0001/round.json", _edit, "rounds/0001/round.json: checksum mismatch"),
    ("session.json", _newer, "newer fvtui"),
])
def test_damaged_or_newer_sessions_are_refused_and_left_as_they_are(finished, tmp_path, command, file, damage,
                                                                    message):
    sessions = tmp_path / "s"
    shutil.copytree(finished, sessions)
    damage(sessions / "a" / file)
    saved = [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")]  # the lock is not saved work
    result = fvtui(*command, sessions=sessions, check=2)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [entry for entry in snapshot(sessions) if not entry[0].endswith("/lock")] == saved


def test_headless_progress_in_a_terminal_names_the_search_running_longest(monkeypatch):
    """The progress line of `--headless` in a terminal says which sample's search holds the round, at which
    eps, with how many points, for how long; a finished search gives the place to the next longest."""
    import io

    from rich.console import Console

    from fvtui import headless
    from fvtui.config import RoundSettings
    from fvtui.events import PhaseStarted, RoundStarted, SampleSearching, SampleVerified, SamplesQueried
    from fvtui.records import QueriedSample, SampleVerification

    clock = [100.0]
    monkeypatch.setattr(headless.time, "monotonic", lambda: clock[0])
    printer = headless._Printer(None, Console(file=io.StringIO(), force_terminal=True, width=200))

    def line() -> str:
        shown = Console(file=io.StringIO(), width=200, record=True)
        shown.print(printer.progress.get_renderable())
        return shown.export_text()

    printer(RoundStarted(1, 3, RoundSettings()))
    printer(SamplesQueried(1, tuple(QueriedSample(index, 0, 0.0, 0) for index in (412, 77, 9031))))
    printer(PhaseStarted(1, "augment"))
    assert "longest search" not in line()
    printer(SampleSearching(1, 2, 0.06, 0, 1, 100.0))
    clock[0] = 104.0
    printer(SampleSearching(1, 0, 0.06, 1, 1, 104.0))
    printer(SampleSearching(1, 2, 0.11, 3, 6, 100.0))  # the same search, further on: its clock runs from its start
    clock[0] = 112.0
    assert "longest search: sample #9031 at eps 0.110, 3 found, 12 s" in line()
    printer(SampleVerified(1, 2, SampleVerification(9031, "counterexample", 0.11, 10, 0, 9, 4.0)))
    assert "longest search: sample #412 at eps 0.060, 1 found, 8 s" in line()
    printer(SampleVerified(1, 0, SampleVerification(412, "robust", 1.0, 0, 0, 20, 9.0)))
    assert "longest search" not in line()
    printer.stop()
