"""One input and its counterexamples: pictures, probabilities, and solver calls on demand.

The inputs are a round's queried samples, judged by the model the counterexamples were found with
(the one after round r-1, which selected them), or the test samples of a network read from ONNX
(`fvtui verify MODEL.onnx --app`). n / p browse them. Verifying at an eps and the certified
radius run in the app's own small solver pool, in a thread worker: the screen keeps answering, and
closing it cancels the call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from ...errors import Cancelled
from ...pictures import to_pil
from ...config import RoundSettings
from ...records import QueriedSample, RoundRecord, SampleVerification, SyntheticBatch, longest_query, phase_text
from ...store import Session
from ..images import TerminalImage, amplified_difference, cell_size
from ..widgets.footer import Footer

FIXED_ROWS = 13  # title, captions, detail, probabilities, the verify line, footer
TOP_CLASSES = 4
SLOW_QUERY_NOTE_S = 1.0  # a sample's longest query at least this long: its phases join the search line


@dataclass(frozen=True)
class Candidate:
    x: np.ndarray
    eps: float
    origin: str  # what found it: 'fgsm', 'marabou', 'verify', 'radius'...


@dataclass
class Subject:
    """One input the inspector shows, and what is known around it."""

    x: np.ndarray
    heading: str  # the title's first line
    note: str  # its second line: what was searched and found
    default_eps: float
    candidates: list[Candidate] = field(default_factory=list)  # grows as the user verifies


@dataclass(frozen=True)
class Judge:
    """The network every subject is judged by, and how the solver treats it."""

    net: object  # verify.Network
    name: str  # e.g. "model after round 3" or "net.onnx"
    classes: Sequence[str]
    shape: tuple[int, ...]
    timeout: float  # seconds per solver query


@dataclass(frozen=True)
class RoundView:
    """What the inspector reads of a round: a saved RoundRecord has it all; a round still verifying has
    its picks and the searches finished so far."""

    round: int
    settings: RoundSettings
    queried: Sequence[QueriedSample]
    verification: Sequence[SampleVerification]


def round_subjects(dataset, record: RoundRecord | RoundView, synthetic: SyntheticBatch,
                   unfinished: Mapping[int, str] | None = None) -> list[Subject]:
    """A round's queried samples with the synthetic samples each one got; `unfinished`: the line of each
    sample (by position) whose search has not ended, in a round still verifying."""
    subjects = []
    s, n = record.settings, len(record.queried)
    for position, q in enumerate(record.queried):
        mine = np.flatnonzero(synthetic.source == q.index)
        v = next((v for v in record.verification if v.source == q.index), None)
        if v is not None:
            note = (f"search: {v.status} at eps {v.eps:.3f}, {v.found} found, {v.spurious} spurious, "
                    f"{v.queries} queries, {v.seconds:.1f} s" + (f" ({v.message})" if v.message else ""))
            slow = longest_query(v.query_seconds, v.query_phases)
            if slow is not None and v.query_seconds[slow] >= SLOW_QUERY_NOTE_S:
                note += f"; query {slow + 1} took {v.query_seconds[slow]:.1f} s: {phase_text(v.query_phases[slow])}"
        elif unfinished is not None:
            note = unfinished.get(position, "search not started yet")
        else:
            note = f"{len(mine)} synthetic samples from {s.augment}"
        candidates = [Candidate(synthetic.x[i], float(synthetic.eps[i]), str(synthetic.origin[i])) for i in mine]
        subjects.append(Subject(
            dataset.train_x[q.index].numpy().astype(np.float32),
            f"round {record.round} · sample {position + 1}/{n} (#{q.index}) · true {dataset.classes[q.label]} · "
            f"{s.strategy} score {q.score:.4g} · {s.augment}",
            note, candidates[0].eps if candidates else s.eps_start, candidates))
    return subjects


def round_judge(session: Session, dataset, record: RoundRecord | RoundView, net) -> Judge:
    return Judge(net, f"model after round {record.round - 1}", dataset.classes, dataset.image_shape,
                 session.settings.verify_timeout)


def network_of(session: Session, dataset, round_index: int):
    """The numpy network after a round (the one that picked the next round's samples)."""
    from ...model import model_from_numpy, to_network

    model = model_from_numpy(session.model_state(round_index), dataset.num_features, session.config.hidden,
                             dataset.num_classes)
    return to_network(model)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


class InspectorScreen(Screen):
    # Textual repaints the whole screen on every focus change (its `focused` reactive repaints); the
    # focused widget and the one left restyle themselves anyway, and a full repaint re-sends every
    # picture on show to the terminal: a card-to-card move cost a screenful of images over SSH.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
    AUTO_FOCUS = ""  # the eps field would swallow the letter keys; e focuses it
    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("left_square_bracket", "step(-1)", "Prev cex", key_display="["),
        Binding("right_square_bracket", "step(1)", "Next cex", key_display="]"),
        Binding("e", "edit_eps", "Set eps"),
        Binding("v", "verify", "Verify"),
        Binding("m", "radius", "Minimal eps"),
        Binding("n", "sample(1)", "Next sample"),
        Binding("p", "sample(-1)", "Prev sample"),
    ]

    def __init__(self, subjects: Sequence[Subject], position: int, judge: Judge, *, exit_on_close: bool = False) -> None:
        super().__init__()
        self.subjects, self.judge, self.exit_on_close = list(subjects), judge, exit_on_close
        self.net, self.class_names, self.shape = judge.net, judge.classes, judge.shape
        self.cancel = threading.Event()
        self.busy = False
        self._select(position)

    def _select(self, position: int) -> None:
        self.position = position
        self.subject = self.subjects[position]
        self.x, self.candidates = self.subject.x, self.subject.candidates
        self.current = 0

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="inspect-title")
        with Horizontal(id="inspect-images"):
            for key in ("original", "counterexample", "difference"):
                with Vertical(classes="tile"):
                    yield Label(id=f"caption-{key}", classes="tile-caption")
                    yield TerminalImage(id=f"image-{key}")
        yield Static(id="inspect-detail")
        yield Static(id="inspect-probs")
        with Horizontal(id="inspect-verify"):
            yield Label("eps ")
            yield Input(f"{self.subject.default_eps:.4g}", restrict=r"[0-9.eE+-]*", compact=True, id="eps")
            yield Static(id="verify-result")
        yield Footer()

    def on_mount(self) -> None:
        self._fit_images()
        self._show_subject()

    def _show_subject(self) -> None:
        self.query_one("#image-original", TerminalImage).image = to_pil(self.x, self.shape)
        self._show_title()
        self._show_candidate()
        self._say("v verifies at this eps, m finds the minimal eps", "dim")

    def on_resize(self) -> None:
        self._fit_images()

    def _fit_images(self) -> None:
        width, height = self.app.size
        h_px, w_px = self.shape[0], self.shape[1]
        tile = min((width - 6) // 3, int(2 * (height - FIXED_ROWS) * w_px / h_px))
        cells = cell_size(self.shape, max(8, tile))
        for key in ("original", "counterexample", "difference"):
            image = self.query_one(f"#image-{key}", TerminalImage)
            image.styles.width, image.styles.height = cells
            self.query_one(f"#caption-{key}", Label).styles.width = cells[0]

    def _show_title(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(self.subject.heading, "bold")
        title.append("\n" + self.subject.note + f" · {self.judge.name}", "dim")
        self.query_one("#inspect-title", Static).update(title)

    def _show_candidate(self) -> None:
        classes = self.class_names
        before = softmax(self.net.logits(self.x))
        self.query_one("#caption-original", Label).update(f"original · {classes[int(before.argmax())]}")
        image = self.query_one("#image-counterexample", TerminalImage)
        diff_image = self.query_one("#image-difference", TerminalImage)
        detail = self.query_one("#inspect-detail", Static)
        if not self.candidates:
            self.query_one("#caption-counterexample", Label).update("no counterexample")
            self.query_one("#caption-difference", Label).update("")
            image.image = diff_image.image = None
            detail.update(Text("no counterexample for this sample: verify it at a larger eps (e, v)", "dim"))
            self.query_one("#inspect-probs", Static).update(self._probabilities(before, None))
            return
        c = self.candidates[self.current]
        after = softmax(self.net.logits(c.x))
        distance = float(np.abs(c.x - self.x).max())
        diff, factor = amplified_difference(self.x, c.x)
        image.image, diff_image.image = to_pil(c.x, self.shape), to_pil(diff, self.shape)
        was, now = classes[int(before.argmax())], classes[int(after.argmax())]
        self.query_one("#caption-counterexample", Label).update(f"counterexample · {now}")
        self.query_one("#caption-difference", Label).update(f"|difference| ×{factor:.0f}")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{self.current + 1}/{len(self.candidates)} ", "bold")
        line.append(f"from {c.origin} · eps {c.eps:.4g} · L∞ distance {distance:.4f} · ")
        line.append(f"{was} → {now}", "bold yellow" if was != now else "bold")
        line.append("  [ ] browse", "dim")
        detail.update(line)
        self.query_one("#inspect-probs", Static).update(self._probabilities(before, after))

    def _probabilities(self, before: np.ndarray, after: np.ndarray | None) -> Table:
        classes = self.class_names
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        table.add_column(self.judge.name)
        table.add_column("original", justify="right")
        table.add_column("")
        if after is not None:
            table.add_column("counterexample", justify="right")
            table.add_column("")
        top = [int(i) for i in np.argsort(-before)[:TOP_CLASSES]]
        if after is not None:
            top = list(dict.fromkeys([*top[:2], *(int(i) for i in np.argsort(-after)[:2]), *top]))[:TOP_CLASSES]
        for c in top:
            row = [classes[c], f"{before[c]:.1%}", _bar(before[c])]
            if after is not None:
                row += [f"{after[c]:.1%}", _bar(after[c])]
            table.add_row(*row)
        return table

    # -- actions -------------------------------------------------------------------------------
    def action_close(self) -> None:
        if isinstance(self.focused, Input):  # leave the eps field first
            self.set_focus(None)
            return
        self.cancel.set()  # a solver call in flight stops (its worker process is killed)
        if self.exit_on_close:
            self.app.exit()
        else:
            self.dismiss()

    def action_sample(self, delta: int) -> None:
        if self.busy:
            self._say("the solver is still busy with this sample (escape stops it)", "yellow")
            return
        self._select((self.position + delta) % len(self.subjects))
        self.query_one("#eps", Input).value = f"{self.subject.default_eps:.4g}"
        self._show_subject()

    def sample_ended(self, position: int, subject: Subject) -> None:
        """A sample of a round still verifying whose search ended while this screen was open: its line and
        its search's points (first, before any asked here) replace what was known when the screen opened."""
        shown = self.subjects[position]
        asked_here = len(shown.candidates)
        shown.note = subject.note
        shown.candidates[:0] = subject.candidates  # the same list the screen browses (and a solve appends to)
        if position == self.position:
            if asked_here:  # the candidate on show stays on show
                self.current += len(subject.candidates)
            self._show_title()
            self._show_candidate()

    def action_step(self, delta: int) -> None:
        if self.candidates:
            self.current = (self.current + delta) % len(self.candidates)
            self._show_candidate()

    def action_edit_eps(self) -> None:
        self.query_one("#eps", Input).focus()

    def on_input_submitted(self) -> None:
        self.action_verify()

    def action_verify(self) -> None:
        try:
            eps = float(self.query_one("#eps", Input).value)
        except ValueError:
            eps = -1.0
        if not 0 < eps <= 1:
            self._say("eps must be a number in (0, 1]", "red")
            return
        if self._start(f"verifying at eps {eps:.4g} ({self.judge.name})…"):
            self.solve("verify", eps)

    def action_radius(self) -> None:
        if self._start(f"searching the minimal eps ({self.judge.name})…"):
            self.solve("radius", 0.0)

    def _start(self, message: str) -> bool:
        if self.busy:
            self._say("the solver is still busy with the last request", "yellow")
            return False
        self.busy = True
        self._say(message, "cyan")
        return True

    @work(thread=True, group="inspector", exit_on_error=False)
    def solve(self, kind: str, eps: float) -> None:
        timeout = self.judge.timeout
        try:
            pool = self.app.solver_pool()
            if kind == "verify":
                result = pool.verify(self.net, self.x, eps, timeout=timeout, cancel=self.cancel)
            else:
                result = pool.certified_radius(self.net, self.x, timeout=timeout, cancel=self.cancel)
        except Cancelled:
            return
        except Exception as exc:  # the solver could not run at all: say so, keep the screen
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._verified if kind == "verify" else self._radius, result)

    def _failed(self, message: str) -> None:
        self.busy = False
        self._say(f"solver failed: {message}", "bold red")
        self.app.report(f"inspector: solver failed: {message}")

    def _verified(self, result) -> None:
        self.busy = False
        classes = self.class_names
        if result.status == "robust":
            self._say(f"robust at eps {result.eps:.4g}: every input within it keeps class "
                      f"{classes[int(self.net.predict(self.x))]} ({result.seconds:.1f} s)", "green")
        elif result.status == "counterexample":
            self._add(Candidate(result.x, result.eps, "verify"))
            self._say(f"counterexample at eps {result.eps:.4g}: class {classes[result.predicted]} "
                      f"({result.seconds:.1f} s), shown as {self.current + 1}/{len(self.candidates)}", "yellow")
        else:
            self._say(f"{result.status} at eps {result.eps:.4g} after {result.seconds:.1f} s"
                      + (f": {result.message}" if result.message else ""), "magenta")

    def _radius(self, result) -> None:
        self.busy = False
        text = (f"certified radius in [{result.lower:.4f}, {result.upper:.4f}] ({result.status}, "
                f"{result.queries} queries, {result.seconds:.1f} s)")
        if result.message:
            text += f": {result.message}"
        if result.counterexample is not None:
            self._add(Candidate(result.counterexample, result.upper, "radius"))
        # The eps v verifies next: the radius proven, or where it flips when nothing is proven (0 is refused).
        self.query_one("#eps", Input).value = f"{result.lower if result.lower > 0 else result.upper:.4g}"
        self._say(text, "green" if result.status == "exact" else "magenta")

    def _add(self, candidate: Candidate) -> None:
        self.candidates.append(candidate)
        self.current = len(self.candidates) - 1
        self._show_candidate()

    def _say(self, message: str, style: str) -> None:
        self.query_one("#verify-result", Static).update(Text(message, style))


def _bar(p: float, width: int = 10) -> Text:
    return Text("█" * round(p * width) or "▏", "cyan")
