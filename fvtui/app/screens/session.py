"""The session screen: status, learning curve, the round's previews and verification table, the log.

It owns one Runner (the worker thread running the engine) and turns its messages into widget
updates. Below 140 x 40 the four panels are tabs (keys 1-4); above, they share the screen.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical, VerticalScroll
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static, Tab, Tabs

from ...errors import UserError
from ...events import (LabelsWanted, Log, PhaseProgress, PhaseStarted, RoundFinished, RoundStarted, SampleSearching,
                       SampleVerified, SamplesQueried)
from ...metrics import aubc
from ...records import QueriedSample, RoundRecord, SampleVerification, SyntheticBatch
from ..runner import EngineEvent, Failed, Loaded, Runner, StateChanged
from ..widgets.curve import LearningCurve
from ..widgets.footer import Footer
from ..widgets.log import LogPanel
from ..widgets.previews import InspectRequested, Preview, PreviewCard, PreviewGrid
from ..widgets.status import StatusLine
from ..widgets.verification import VerificationTable
from .compare import CompareScreen
from .confirm import ConfirmScreen
from .inspector import InspectorScreen, RoundView, network_of, round_judge, round_subjects
from .label import LabelScreen
from .settings import SettingsScreen

WIDE = (140, 40)
PANELS = (("curve", "1 Curve"), ("samples", "2 Samples"), ("table", "3 Table"), ("log", "4 Log"))


class PanelTabs(Tabs):
    """Tabs whose underline jumps to the chosen panel: the animated slide repaints the tab row about
    twenty times, which over SSH costs more than the panel switch it decorates."""

    def _highlight_active(self, animate: bool = True) -> None:
        super()._highlight_active(animate=False)


class SessionScreen(Screen):
    # Textual repaints the whole screen on every focus change (its `focused` reactive repaints); the
    # focused widget and the one left restyle themselves anyway, and a full repaint re-sends every
    # picture on show to the terminal: a card-to-card move cost a screenful of images over SSH.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("s", "stop", "Stop"),
        Binding("e", "edit", "Settings"),
        Binding("i", "inspect", "Inspect"),
        Binding("c", "compare", "Compare"),
        Binding("l", "label", "Label"),
        Binding("b", "back", "Sessions"),
        # Shown in the samples and table titles rather than the footer, which 80 columns cannot hold.
        Binding("left_square_bracket", "round(-1)", "Previous round", key_display="[", show=False),
        Binding("right_square_bracket", "round(1)", "Next round", key_display="]", show=False),
        Binding("comma", "page(-1)", "Previous page", key_display=",", show=False),
        Binding("full_stop", "page(1)", "Next page", key_display=".", show=False),
        *(Binding(str(i), f"panel('{key}')", f"{label[2:]} panel", show=False)
          for i, (key, label) in enumerate(PANELS, start=1)),
    ]

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.session = runner.session
        self.dataset = None
        self.shown_round = 0  # the round in the previews and the table (0: none yet)
        self.follow = True  # move to each round as it finishes
        self.overlays: list[str] = []
        self._synthetic: dict[int, SyntheticBatch] = {}
        self._queried: dict[int, tuple[QueriedSample, ...]] = {}  # the running round's picks
        self._verified: dict[int, SampleVerification] = {}  # its searches so far, by position
        self._searching: dict[int, SampleSearching] = {}  # its searches running: the last word of each
        self._points: dict[int, SyntheticBatch] = {}  # the synthetic samples of its finished searches
        self._running_settings = None  # what the running round runs with (RoundStarted.settings)
        self._live_inspector: InspectorScreen | None = None  # opened on the running round: told as searches end
        self._verifying = 0  # the running round, once its fv searches have started
        self._after_close: Callable[[], None] | None = None
        self._wanted = None  # the batch waiting for a person's labels (LabelsWanted.request)

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield PanelTabs(*(Tab(label, id=key) for key, label in PANELS), id="tabs")
        with Container(id="panels"):
            yield LearningCurve(id="panel-curve", classes="panel")
            with Vertical(id="panel-table", classes="panel"):
                yield Static(id="table-title", classes="panel-title")
                yield VerificationTable(id="verification")
            with Vertical(id="panel-samples", classes="panel"):
                yield Static(id="samples-title", classes="panel-title")
                with VerticalScroll(id="previews-scroll"):
                    yield PreviewGrid(id="previews")
            yield LogPanel(id="panel-log", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        status = self.query_one(StatusLine)
        if self.session is not None:  # a saved session: its history is drawn before the data loads
            self._describe_session()
            self._draw_curve()
        else:
            cfg = self.runner.new_config
            status.set_session(self.runner.name, cfg.dataset, cfg.settings.strategy, cfg.settings.augment, 0,
                               cfg.rounds)
        self.log_panel.add(f"session {self.runner.name}: loading dataset {self.runner.dataset_name}")
        self.run_worker(self.runner.run, thread=True, exit_on_error=False, group="runner", name="runner")
        self.set_interval(1.0, self.query_one(VerificationTable).tick)  # a running search's seconds
        self.call_after_refresh(self.runner.first_frame.set)
        self.on_resize()

    def on_resize(self) -> None:
        width, height = self.app.size
        self.set_class(width >= WIDE[0] and height >= WIDE[1], "-wide")
        self._activate(self.query_one(Tabs).active or PANELS[0][0])

    @property
    def log_panel(self) -> LogPanel:
        return self.query_one(LogPanel)

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._activate(event.tab.id)

    def _activate(self, key: str) -> None:
        """One panel on show, or all in the wide layout. Set directly rather than through a CSS class:
        a class change restyles the panel's whole subtree, which cost more than drawing it."""
        wide = self.has_class("-wide")
        for panel, _ in PANELS:
            self.query_one(f"#panel-{panel}").display = wide or key == panel

    def action_panel(self, key: str) -> None:
        """Show a panel (narrow layout) and put the keyboard in it."""
        self.query_one(Tabs).active = key
        self._activate(key)
        target = {"table": "VerificationTable", "samples": "PreviewCard", "log": "LogPanel"}.get(key)
        widgets = [w for w in self.query(target) if w.display] if target else []
        if widgets:
            widgets[0].focus()

    # -- runner messages -----------------------------------------------------------------------
    def on_loaded(self, message: Loaded) -> None:
        self.session, self.dataset = message.session, message.dataset
        self._describe_session()
        self._draw_curve()
        self._show_round(len(self.session.rounds))
        self.log_panel.add(f"{len(self.session.rounds)}/{self.session.config.rounds} rounds done; "
                           f"saved in {self.session.path}")

    def on_state_changed(self, message: StateChanged) -> None:
        status = self.query_one(StatusLine)
        if message.state != "closed":  # the last word (finished, failed...) stays on show
            status.set_state(message.state)
        status.pausing = self.runner.pause_requested
        self.refresh_bindings()
        self._retitle_budget_form()
        if message.state not in ("starting", "running"):  # no round waits for labels any more
            self._wanted = None
            if isinstance(self.app.screen, LabelScreen):
                self.app.screen.dismiss()
        if message.state in ("paused", "stopped", "finished"):
            done = len(self.session.rounds) if self.session else 0
            self._queried, self._verified, self._searching, self._points, self._verifying = {}, {}, {}, {}, 0
            if self.shown_round > done:  # the picks of a discarded round
                self._show_round(done)
            self.log_panel.add(f"{message.state} after round {done}", "success" if message.state == "finished"
                               else "warning")
        if message.state == "closed" and self._after_close is not None:
            then, self._after_close = self._after_close, None
            then()

    def on_failed(self, message: Failed) -> None:
        self.app.report(message.message)
        if message.fatal and self.session is None:
            self.app.exit_code = 2  # `fvtui new` could not start: nothing was created

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        status = self.query_one(StatusLine)
        if isinstance(event, RoundStarted):
            self._running_settings = event.settings
            self._retitle_budget_form()
            if self.query_one(LearningCurve).initial is None:  # a new session's initial model is saved now
                self._draw_curve()
            status.set_phase(event.round, "select")
            status.rounds_target = event.rounds_target
            status.pausing = self.runner.pause_requested
        elif isinstance(event, PhaseStarted):
            status.set_phase(event.round, event.phase, 0, event.total)
            if event.phase == "augment" and _verifies(self.session.settings.augment):
                self._verifying = event.round
                if self.follow:
                    self._show_live_table()
                    self._title_samples()
        elif isinstance(event, PhaseProgress):
            status.set_phase(event.round, event.phase, event.done, event.total)
        elif isinstance(event, SamplesQueried):
            self._queried, self._verified, self._searching, self._points = {event.round: event.queried}, {}, {}, {}
            if self.follow:
                self._show_round(event.round)
        elif isinstance(event, SampleSearching):
            if event.position not in self._verified:
                self._searching[event.position] = event
                self.query_one(VerificationTable).live_search(event.position, event.eps, event.found, event.started)
        elif isinstance(event, SampleVerified):
            self._verified[event.position] = event.record
            self._searching.pop(event.position, None)
            if event.points is not None:
                self._points[event.position] = event.points
            inspector = self._live_inspector
            if inspector is not None and inspector in self.app.screen_stack and event.round == self._verifying:
                view, points = self._running_view()
                inspector.sample_ended(event.position, round_subjects(self.dataset, view, points)[event.position])
            self.query_one(VerificationTable).live_sample(event.position, event.record)
            if event.record.status in ("timeout", "error"):
                self.log_panel.add(f"round {event.round} sample {event.position + 1} (#{event.record.source}): "
                                   f"{event.record.status} at eps {event.record.eps:.3f}"
                                   + (f": {event.record.message}" if event.record.message else ""), "warning")
        elif isinstance(event, LabelsWanted):
            self._wanted = event.request
            self.refresh_bindings()
            self.log_panel.add(f"{event.pending} samples of {event.request.batch_name()} wait for your labels "
                               "(l opens the labelling screen)", "warning")
            self.action_label()
        elif isinstance(event, RoundFinished):
            self._round_finished(event.record)
        elif isinstance(event, Log):
            self.log_panel.add(event.message, event.level)

    def _round_finished(self, record: RoundRecord) -> None:
        self._draw_curve()
        self.query_one(StatusLine).rounds_done = record.round
        accuracies = self.session.accuracies
        seconds = sum(record.seconds.values())
        self.log_panel.add(f"round {record.round}/{self.session.config.rounds}: accuracy {record.test_accuracy:.4f}"
                           f", AUBC {aubc(accuracies):.4f}, {record.new_synthetic} new synthetic, {seconds:.1f} s",
                           "success")
        if self.follow:
            self._show_round(record.round)
            self.follow = True  # a later round already on disk is shown when its own event arrives

    # -- drawing -------------------------------------------------------------------------------
    def _describe_session(self) -> None:
        s, cfg = self.session.settings, self.session.config
        self.query_one(StatusLine).set_session(self.session.name, cfg.dataset, s.strategy, s.augment,
                                               len(self.session.rounds), cfg.rounds)

    def _draw_curve(self) -> None:
        initial = self.session.initial()
        self.query_one(LearningCurve).set_curve(self.session.accuracies,
                                                None if initial is None else initial.test_accuracy)

    @work(thread=True, exclusive=True, group="synthetic", exit_on_error=False)
    def _load_synthetic(self, round_index: int, page: int) -> None:
        """A round's synthetic samples, read off the UI thread; the round is shown once they are in."""
        try:
            batch = self.session.synthetic(round_index)
        except UserError as exc:  # a damaged round file
            self.app.call_from_thread(self.app.report, str(exc))
            return
        self.app.call_from_thread(self._synthetic_loaded, round_index, batch, page)

    def _synthetic_loaded(self, round_index: int, batch: SyntheticBatch, page: int) -> None:
        self._synthetic = {round_index: batch, **{k: v for k, v in list(self._synthetic.items())[-4:]}}
        if self.shown_round == round_index:  # unless another round came on show meanwhile
            self._show_round(round_index, page)
            if self.query_one(Tabs).active == "samples":  # the keyboard goes to the cards, as on a panel switch
                self.call_after_refresh(self._focus_first_card)

    def _focus_first_card(self) -> None:
        cards = [card for card in self.query(PreviewCard) if card.display and card.preview is not None]
        if cards and not isinstance(self.focused, PreviewCard):
            cards[0].focus()

    def _show_round(self, round_index: int, page: int = 0) -> None:
        """A finished round, or the running one's picks (previews only: its table fills in live)."""
        if self.dataset is None:
            return
        self.shown_round = round_index
        self.follow = round_index >= len(self.session.rounds)
        grid, table = self.query_one(PreviewGrid), self.query_one(VerificationTable)
        classes = self.dataset.classes
        if round_index > len(self.session.rounds):
            queried = self._queried.get(round_index, ())
            grid.show([Preview(round_index, i, self.dataset.train_x[q.index].numpy(), classes[q.label],
                               classes[q.predicted], q.score, 0) for i, q in enumerate(queried)],
                      self.dataset.image_shape, page)
            self._title_samples()
            if self._verifying == round_index:
                if not (table.live and table.round_index == round_index):
                    self._show_live_table()
            else:
                table.show_nothing()
                self._title_table(f"round {round_index} running · " + (
                    "its rows appear as verification starts" if _verifies(self.session.settings.augment)
                    else "its table shows once the round is saved"))
            return
        if round_index == 0:
            self.query_one("#samples-title", Static).update("no finished round yet")
            self._title_table("no finished round yet")
            table.show_nothing()
            grid.show([], self.dataset.image_shape)
            return
        if round_index not in self._synthetic:
            self._load_synthetic(round_index, page)
            return
        record = self.session.rounds[round_index - 1]
        synthetic = self._synthetic[round_index]
        previews = [Preview(round_index, i, self.dataset.train_x[q.index].numpy(), classes[q.label],
                            classes[q.predicted], q.score, int((synthetic.source == q.index).sum()))
                    for i, q in enumerate(record.queried)]
        grid.show(previews, self.dataset.image_shape, page)
        self._title_samples()
        self.set_timer(0.01, partial(self._fill_table, record, synthetic))  # a frame of its own
        augment = record.settings.augment
        note = ("[ ] rounds · enter inspects" if record.verification else
                "no augmentation" if augment == "none" else f"{augment} examples, not verified")
        self._title_table(f"round {round_index} · {record.settings.strategy}+{augment} · {note}")

    def _fill_table(self, record: RoundRecord, synthetic: SyntheticBatch) -> None:
        tables = self.query(VerificationTable)  # none once the screen is being torn down (the app quits)
        if self.shown_round == record.round and tables:  # unless another round came on show meanwhile
            tables.first().show_round(record, synthetic, self.dataset.classes)

    def _show_live_table(self) -> None:
        table, round_index = self.query_one(VerificationTable), self._verifying
        table.start_live(round_index, self._queried.get(round_index, ()), self.dataset.classes)
        for position, record in self._verified.items():
            table.live_sample(position, record)
        for position, event in self._searching.items():
            table.live_search(position, event.eps, event.found, event.started)
        self._title_table(f"round {round_index} verifying · rows fill in as samples finish · enter inspects")

    def _title_samples(self) -> None:
        grid, done = self.query_one(PreviewGrid), len(self.session.rounds)
        pages = f"page {grid.page + 1}/{grid.pages} (, .)"
        if self.shown_round > done:
            text = f"round {self.shown_round} running · {len(grid.previews)} queried · {pages}"
            if self.shown_round == self._verifying:
                text += " · enter inspects the searches so far"
            strategy = self.session.settings.strategy
        else:
            text = f"round {self.shown_round}/{done} · {len(grid.previews)} queried · {pages} · rounds ([ ]) · enter inspects"
            strategy = self.session.rounds[self.shown_round - 1].settings.strategy
        if any(p.score for p in grid.previews):  # the number under each picture (none for random)
            text += f" · number after pred: {strategy} score"
        self.query_one("#samples-title", Static).update(text)

    def _title_table(self, text: str) -> None:
        self.query_one("#table-title", Static).update(text)

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.runner.state
        pending = self.runner.pause_requested  # p again takes back a pause that has not happened yet
        if action == "pause":
            return state in ("", "loading", "starting", "running") and not pending  # "": the worker starts after the first frame
        if action == "resume":
            return state in ("paused", "stopped") or (pending and state in ("", "loading", "starting", "running"))
        if action == "stop":
            return self.runner.busy
        if action == "edit":
            return True if self.session is not None and self.session.writable and state != "closed" else None
        if action == "label":
            return self._wanted is not None
        return True

    def action_pause(self) -> None:
        self.runner.pause()
        self.query_one(StatusLine).pausing = True
        self.query_one(StatusLine).refresh()
        self.log_panel.add("pause requested: the round in progress finishes first", "warning")
        self.refresh_bindings()

    def action_resume(self) -> None:
        self.runner.resume()
        self.query_one(StatusLine).pausing = False
        self.log_panel.add("resumed")
        self.refresh_bindings()

    def action_stop(self) -> None:
        from ..app import kept_of_round

        def answer(yes: bool | None) -> None:
            if yes:
                self.runner.stop()
                kept = kept_of_round(self.session)  # as it stands at the answer, not at the question
                self.log_panel.add(f"stop requested: {kept[0].lower()}{kept[1:]}", "warning")

        self.app.push_screen(ConfirmScreen(f"Stop now? {kept_of_round(self.session)}, and p resumes.", yes="Stop"),
                             answer)

    def action_edit(self) -> None:
        def apply(result) -> None:
            if result is None:
                return
            settings, rounds = result
            saved = 0 if self.runner.busy else self.session.journal_progress()
            if saved and settings != self.session.settings:  # a stopped round's samples were verified under these
                question = (f"Save? Round {self._next_round()} has {saved} samples verified and saved under the "
                            "settings you change: a resume under the new ones verifies them again.")
                self.app.push_screen(ConfirmScreen(question, yes="Save"), lambda yes: save(settings, rounds) if yes
                                     else self.log_panel.add("settings not saved", "warning"))
                return
            save(settings, rounds)

        def save(settings, rounds) -> None:
            before = self.session.settings
            try:
                self.session.update(settings=settings, rounds=rounds)
            except UserError as exc:
                self.app.report(str(exc))
                return
            changed = [f"{k} {getattr(before, k)} → {getattr(settings, k)}" for k in settings.__dataclass_fields__
                       if getattr(before, k) != getattr(settings, k)]
            next_round = self._next_round()
            self.log_panel.add(f"saved for round {next_round} on: " + (", ".join(changed) or "no change")
                               + f"; target {rounds} rounds", "success")
            self.notify(f"saved: applies from round {next_round}")
            self._describe_session()
            self.runner.wake()

        self.app.push_screen(SettingsScreen(self.session, self._next_round(), self.dataset), apply)

    def _next_round(self) -> int:
        """The first round a budget saved now applies to: the one in progress has its settings already."""
        return len(self.session.rounds) + (2 if self.runner.busy else 1)

    def _retitle_budget_form(self) -> None:
        if isinstance(self.app.screen, SettingsScreen) and self.session is not None:
            self.app.screen.show_next_round(self._next_round())

    def action_round(self, delta: int) -> None:
        if self.session is None:
            return
        done = len(self.session.rounds)
        last = done + 1 if done + 1 in self._queried else done  # the running round's picks are the newest
        target = min(max(1, self.shown_round + delta), last)
        if last and target != self.shown_round:
            self._show_round(target)

    def action_page(self, delta: int) -> None:
        grid = self.query_one(PreviewGrid)
        if self.shown_round and grid.pages > 1:
            self._show_round(self.shown_round, grid.page + delta)

    def action_inspect(self) -> None:
        focused = self.focused
        if isinstance(focused, PreviewCard) and focused.preview is not None:
            focused.action_inspect()
        elif isinstance(focused, VerificationTable) and focused.row_count:
            self._inspect_row(focused, focused.cursor_row)
        else:
            self.notify("choose a sample first: a preview (2) or a table row (3)")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._inspect_row(self.query_one(VerificationTable), event.cursor_row)

    def _inspect_row(self, table: VerificationTable, row: int) -> None:
        self.post_message(InspectRequested(table.round_index, row))

    def on_inspect_requested(self, message: InspectRequested) -> None:
        r = message.round_index
        if r <= len(self.session.rounds):
            self._open_inspector(self.session.rounds[r - 1], message.position)
        elif r == self._verifying and r in self._queried:  # as it stands: its searches so far
            view, points = self._running_view()
            running = {position: f"search running at eps {event.eps:.3f}, {event.found} found so far (as of "
                                 "opening)" if event.eps is not None else "search running"
                       for position, event in self._searching.items()}
            self._open_inspector(view, message.position, points, running)
        else:
            self.notify("this round's samples open once their searches start"
                        if _verifies(self.session.settings.augment) else "this round's samples open once it is saved")

    def _running_view(self) -> tuple[RoundView, SyntheticBatch]:
        """The round verifying as it stands, and the synthetic samples of its searches so far."""
        r = self._verifying
        view = RoundView(r, self._running_settings, self._queried[r], tuple(self._verified.values()))
        return view, SyntheticBatch.concat(list(self._points.values()), self.dataset.num_features)

    @work(thread=True, exclusive=True, group="inspector", exit_on_error=False)
    def _open_inspector(self, record: RoundRecord | RoundView, position: int, synthetic: SyntheticBatch | None = None,
                        unfinished: dict[int, str] | None = None) -> None:
        """The inspector, its round's samples and network read off the UI thread (a running round's
        samples come from the screen, taken on the UI thread)."""
        try:
            if synthetic is None:
                synthetic = self._synthetic.get(record.round) or self.session.synthetic(record.round)
            net = network_of(self.session, self.dataset, record.round - 1)
        except UserError as exc:  # a damaged round file
            self.app.call_from_thread(self.app.report, str(exc))
            return
        subjects = round_subjects(self.dataset, record, synthetic, unfinished)
        judge = round_judge(self.session, self.dataset, record, net)
        def show() -> None:
            inspector = InspectorScreen(subjects, position, judge)
            self._live_inspector = inspector if unfinished is not None else None
            self.app.push_screen(inspector)

        self.app.call_from_thread(show)

    def action_label(self) -> None:
        """The labelling screen for the batch waiting for a person (the round goes on once it is labelled)."""
        oracle = self.runner.oracle
        if self._wanted is None or oracle is None or oracle.done:
            self.notify("no samples wait for labels")
            return
        if not isinstance(self.app.screen, LabelScreen):
            self.app.push_screen(LabelScreen(oracle, self.dataset, self._wanted))

    def action_compare(self) -> None:
        if self.session is None:
            return

        def chosen(names: list[str] | None) -> None:
            if names is not None:
                self.overlays = names
                self.load_overlays(names)

        self.app.push_screen(CompareScreen(self.app.store, self.session.name, self.overlays), chosen)

    @work(thread=True, exclusive=True, group="overlays", exit_on_error=False)
    def load_overlays(self, names: list[str]) -> None:
        curves = {}
        for name in names:
            try:
                with self.app.store.open(name, writable=False) as other:
                    curves[name] = other.accuracies
            except UserError as exc:
                self.app.call_from_thread(self.app.report, str(exc), "warning")
        self.app.call_from_thread(self.query_one(LearningCurve).set_overlays, curves)

    def action_back(self) -> None:
        self.app.close_session(self, then=self.app.show_browser)

    # -- closing -------------------------------------------------------------------------------
    def on_unmount(self) -> None:
        self.runner.quit()  # however the screen goes, its worker thread must end

    def close_runner(self, then: Callable[[], None]) -> None:
        """Stop the worker (discarding a round in progress), then call `then` once it has ended."""
        if self.runner.state == "closed":
            then()
            return
        self._after_close = then
        self.runner.quit()
        if self.runner.busy:
            self.log_panel.add("stopping: the samples of this round verified so far are kept…", "warning")


def _verifies(augment: str) -> bool:
    from ...augment import verifies  # imported by the engine before any round: no cost at start-up

    return verifies(augment)
