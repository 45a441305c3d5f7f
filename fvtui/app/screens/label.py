"""A person as the oracle: each queried sample large, the model's guess and its probability, a key per
class, skip, undo, zoom and contrast.

Every key press goes straight to the human oracle, which journals it before the screen moves on, so
quitting (or a crash) loses no label typed. The engine's thread waits in the oracle until the batch
is answered; the screen then closes and the round goes on (augment, verify, train).
"""

from __future__ import annotations

import string

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from ...errors import UserError
from ...pictures import to_pil
from ...records import LabelRequest
from ..images import TerminalImage, cell_size
from ..widgets.footer import Footer

COMMAND_LETTERS = "cqsuz"  # contrast, quit, skip, undo, zoom: never a class key
CLASS_KEYS = string.digits + "".join(c for c in string.ascii_lowercase if c not in COMMAND_LETTERS)
CONFIDENT = 0.9  # a certified guess at least this probable gets the "likely right" hint
FIXED_ROWS = 6  # title, guess, hint, message, footer, padding
SIDE_WIDTH = 34  # the class list beside the picture


def class_keys(classes: tuple[str, ...]) -> dict[str, int]:
    """The key of each class: digits 0-9, then letters other than the command keys."""
    return {key: c for c, key in zip(range(len(classes)), CLASS_KEYS)}


class LabelScreen(Screen):
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("s", "skip", "Skip"),
        Binding("u", "undo", "Undo"),
        Binding("z", "zoom", "Zoom"),
        Binding("c", "contrast", "Contrast"),
        Binding("escape", "close", "Session"),
    ]

    def __init__(self, oracle, dataset, request: LabelRequest) -> None:
        super().__init__()
        self.oracle, self.dataset, self.request = oracle, dataset, request
        self.keys = class_keys(dataset.classes)
        self.zoomed = False
        self.contrast = False
        self.current: int | None = None  # the dataset index on show

    def compose(self) -> ComposeResult:
        yield Static(id="label-title")
        with Horizontal(id="label-body"):
            yield TerminalImage(id="label-image")
            with Vertical(id="label-side"):
                yield Static(id="label-guess")
                yield Static(id="label-hint")
                yield Static(id="label-classes")
        yield Static(id="label-message")
        yield Footer()

    def on_mount(self) -> None:
        if len(self.dataset.classes) > len(CLASS_KEYS):
            self._say(f"{len(self.dataset.classes)} classes: only the first {len(CLASS_KEYS)} have keys; label the "
                      "others with fvtui labels --export / --import", "yellow")
        self._next()

    def on_resize(self) -> None:
        self._fit_image()

    # -- what is on show -----------------------------------------------------------------------
    def _next(self, prefer: int | None = None) -> None:
        """Show `prefer` if it still waits, else the first sample waiting; close once the batch is done."""
        if self.oracle.done:
            self.dismiss()
            return
        pending = self.oracle.book.pending()
        self.current = prefer if prefer in pending else (pending[0] if pending else None)
        self._show()

    def _show(self) -> None:
        book, request = self.oracle.book, self.request
        labelled, skipped = len(book.answers()), len(book.skipped())
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"labelling {request.batch_name()} · ", "bold")
        title.append(f"{labelled} / {len(request.indices)} labelled", "bold")
        if skipped:
            title.append(f" · {skipped} skipped (back to the pool)")
        self.query_one("#label-title", Static).update(title)
        if self.current is None:
            self.query_one("#label-image", TerminalImage).image = None
            self._say("every sample is skipped: label at least one (u undoes a skip)", "yellow")
            return
        x = self.dataset.train_x[self.current].numpy()
        if self.contrast and x.max() > x.min():
            x = (x - x.min()) / (x.max() - x.min())
        self._fit_image()
        self.query_one("#label-image", TerminalImage).image = to_pil(x, self.dataset.image_shape)
        position = request.indices.index(self.current)
        guess = request.predicted[position] if request.predicted else None
        self.query_one("#label-guess", Static).update(self._guess_text(position, guess))
        self.query_one("#label-hint", Static).update(self._hint_text(position))
        self.query_one("#label-classes", Static).update(self._classes_text(guess))

    def _guess_text(self, position: int, guess: int | None) -> Text:
        text = Text(f"sample #{self.current}", "bold")
        source = self.dataset.image_file(self.current)
        if source is not None:
            text.append(f" · {source.name}", "dim")
        if guess is None:
            text.append("\nno guess yet: these samples train the first network")
        else:
            text.append("\nthe model's guess: ")
            text.append(f"{self.dataset.classes[guess]} {self.request.confidence[position]:.0%}", "bold")
        return text

    def _hint_text(self, position: int) -> Text:
        request = self.request
        if not request.certified:
            return Text("")
        confidence = request.confidence[position]
        if request.certified[position] and confidence >= CONFIDENT:
            return Text(f"certified robust at eps {request.eps:g} and {confidence:.0%} sure: the guess is likely "
                        "right (a hint: you decide)", "green")
        if request.certified[position]:
            return Text(f"certified robust at eps {request.eps:g}, but only {confidence:.0%} sure", "dim")
        return Text(f"not certified at eps {request.eps:g}: the model is fragile here", "yellow")

    def _classes_text(self, guess: int | None) -> Text:
        text = Text()
        for key, c in self.keys.items():
            text.append(f" {key} ", "reverse bold" if c == guess else "bold")
            text.append(f" {self.dataset.classes[c]}\n")
        return text

    def _fit_image(self) -> None:
        width, height = self.app.size
        shape = self.dataset.image_shape
        room = width - 4 - (0 if self.zoomed else SIDE_WIDTH)
        rows = max(4, height - FIXED_ROWS)
        cells = cell_size(shape, max(8, min(room, int(2 * rows * shape[1] / shape[0]))))
        image = self.query_one("#label-image", TerminalImage)
        image.styles.width, image.styles.height = cells
        self.query_one("#label-side").display = not self.zoomed

    def _say(self, message: str, style: str = "dim") -> None:
        self.query_one("#label-message", Static).update(Text(message, style))

    # -- keys ----------------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        c = self.keys.get(event.character or "")
        if c is None or self.current is None:
            return
        event.stop()
        index = self.current
        if self._saved(self.oracle.give, index, c):
            self._say(f"#{index}: {self.dataset.classes[c]} (saved)")
            self._next()

    def action_skip(self) -> None:
        index = self.current
        if index is not None and self._saved(self.oracle.skip, index):
            self._say(f"#{index} skipped: it returns to the pool")
            self._next()

    def action_undo(self) -> None:
        try:
            undone = self.oracle.undo()
        except UserError as exc:
            self.app.report(str(exc))
            return
        if undone is None:
            self._say("nothing to undo in this batch")
            return
        self._say(f"#{undone}: answer taken back")
        self._next(prefer=undone)

    def _saved(self, answer, *args) -> bool:
        try:
            answer(*args)
        except UserError as exc:  # a full disk: the labels saved so far stay
            self.app.report(str(exc))
            return False
        return True

    def action_zoom(self) -> None:
        self.zoomed = not self.zoomed
        self._show()

    def action_contrast(self) -> None:
        self.contrast = not self.contrast
        self._show()

    def action_close(self) -> None:
        """Back to the session screen; the round waits (l there comes back here)."""
        self.dismiss()
