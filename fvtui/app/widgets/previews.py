"""The round's queried samples as pictures, a page at a time (a live image costs ~9 ms per repaint,
so fifty at once would make the screen sluggish), painted one per frame so keys answer in between."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from ...pictures import to_pil
from ..images import TerminalImage, cell_size

PAGE = 10
IMAGE_WIDTH = 28


class InspectRequested(Message):
    """Open the inspector on a queried sample (a preview or a table row was chosen)."""

    def __init__(self, round_index: int, position: int) -> None:
        super().__init__()
        self.round_index, self.position = round_index, position


@dataclass(frozen=True)
class Preview:
    round_index: int
    position: int  # row in the round's queried list
    pixels: object  # flat array
    label: str  # the oracle's
    predicted: str  # the selecting model's
    score: float
    synthetic: int  # synthetic samples made from it


class PreviewCard(Vertical, can_focus=True):
    BINDINGS = [Binding("enter", "inspect", "Inspect", show=False),
                Binding("left", "app.focus_previous", "Previous sample", show=False),
                Binding("right", "app.focus_next", "Next sample", show=False)]

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(classes="preview")
        self.shape = shape
        self.preview: Preview | None = None
        self.image = TerminalImage()
        self.caption = Static(classes="caption")
        self.set_image_width(self.natural_width(shape))

    @staticmethod
    def natural_width(shape: tuple[int, ...]) -> int:
        return IMAGE_WIDTH if shape[1] <= IMAGE_WIDTH else shape[1]

    def set_image_width(self, width: int) -> None:
        width, height = cell_size(self.shape, width)
        self.image.styles.width, self.image.styles.height = width, height
        self.styles.width = width + 2

    def compose(self) -> ComposeResult:
        yield self.image
        yield self.caption

    def show(self, preview: Preview) -> None:
        """The caption now; the picture when `paint` is called."""
        self.preview = preview
        right = preview.label == preview.predicted
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"#{preview.position + 1} ", "dim")
        text.append(preview.label, "bold")
        text.append("\npred ", "dim")
        text.append(preview.predicted, "green" if right else "red")
        if preview.score:
            text.append(f" {preview.score:.3g}", "dim")
        if preview.synthetic:
            text.append(f" +{preview.synthetic}", "yellow")
        self.caption.update(text)
        self.tooltip = (f"sample {preview.position + 1}: true {preview.label}, predicted {preview.predicted}, "
                        f"score {preview.score:.4g}, {preview.synthetic} synthetic")

    def paint(self) -> None:
        """The picture, held back: `PreviewGrid` lets each card draw in its own frame once on show."""
        if self.preview is not None:
            self.image.hold()
            self.image.image = to_pil(self.preview.pixels, self.shape)

    # Textual repaints a widget's whole region when it gains or loses focus: for a card that is its
    # picture sent to the terminal again on every arrow key. The focus shows in the caption (CSS), so
    # only the caption needs repainting.
    def _on_focus(self, event: events.Focus) -> None:
        event.prevent_default()
        self.has_focus = True
        self.caption.refresh()
        if self.parent is not None:
            self.parent.post_message(events.DescendantFocus(self))

    def _on_blur(self, event: events.Blur) -> None:
        event.prevent_default()
        self.has_focus = False
        self.caption.refresh()
        if self.parent is not None:
            self.parent.post_message(events.DescendantBlur(self))

    def action_inspect(self) -> None:
        if self.preview is not None:
            self.post_message(InspectRequested(self.preview.round_index, self.preview.position))

    def on_click(self) -> None:
        self.action_inspect()


class PreviewGrid(Grid):
    """Cards for one page of one round; as many columns as fit."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cards: list[PreviewCard] = []
        self.previews: list[Preview] = []
        self.page = 0
        self._generation = 0  # a newer show() abandons the painting of an older one
        self._pending: tuple[int, list[PreviewCard]] | None = None  # painting held while hidden
        self._retry: Timer | None = None  # a look again for a region, while on show without one

    def show(self, previews: list[Preview], shape: tuple[int, ...], page: int = 0) -> None:
        if not self.cards or self.cards[0].shape != shape:
            self.remove_children()
            self.cards = [PreviewCard(shape) for _ in range(PAGE)]
            self.mount_all(self.cards)
            self._fit_columns()
        self.previews = previews
        self.page = max(0, min(page, self.pages - 1))
        chunk = previews[self.page * PAGE:(self.page + 1) * PAGE]
        for card, preview in zip(self.cards, chunk):
            card.show(preview)
            card.display = True
        for card in self.cards[len(chunk):]:
            card.display = False
        self._generation += 1
        cards = self.cards[:len(chunk)]
        for card in cards:
            card.paint()
        self._pending = (self._generation, cards)
        self._resume_painting()

    def _paint(self, generation: int, cards: list[PreviewCard]) -> None:
        """Lets one held picture draw per frame, and only while the grid is on show: a hidden panel's
        pictures wait, so showing the panel lays it out and repaints it first (two frames), then
        sends each picture once. Keys are answered between two pictures."""
        if not cards or generation != self._generation:
            return
        if not self.region:
            self._pending = (generation, cards)
            self._resume_painting()
            return
        cards[0].image.release()
        self.call_after_refresh(self._paint, generation, cards[1:])

    def _resume_painting(self) -> None:
        if self._pending is None:
            return
        if self.region:
            pending, self._pending = self._pending, None
            self.call_after_refresh(self._paint, *pending)
        elif self._meant_to_show() and self._retry is None:  # out of the layout for a moment and back at
            self._retry = self.set_timer(0.2, self._retry_painting)  # the same size: no Show or Resize tells

    def _retry_painting(self) -> None:
        self._retry = None
        self._resume_painting()

    def _meant_to_show(self) -> bool:
        """Meant to be seen: it and every container above it displayed (a hidden panel waits for its Show)."""
        return self.is_attached and all(node.display for node in self.ancestors_with_self)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.previews) // PAGE))

    def on_resize(self) -> None:
        self._fit_height()
        self._fit_columns()
        self._resume_painting()

    def _fit_height(self) -> None:
        """Cards no taller than the panel (the wide layout gives them 17 rows, a 28 x 28 sample 18): the
        focused card's caption and border stay in view. Pictures shrink, never grow past natural."""
        view = self.parent.size.height if self.parent is not None else 0
        if not self.cards or not view:
            return
        shape = self.cards[0].shape
        width = PreviewCard.natural_width(shape)
        while width > 8 and cell_size(shape, width)[1] + 4 > view:  # + border (2) and caption (2)
            width -= 1
        if int(self.cards[0].image.styles.width.value) != cell_size(shape, width)[0]:
            for card in self.cards:
                card.set_image_width(width)

    def on_show(self) -> None:
        self._resume_painting()

    def _fit_columns(self) -> None:
        """As many columns as fit. While the panel is hidden the grid has no width: the columns are
        worked out from the screen's, so that showing the panel lays the cards out once (a second
        layout would send every picture on show to the terminal again)."""
        if self.cards:
            width = int(self.cards[0].styles.width.value)
            available = self.size.width or self._expected_width()
            columns = max(1, available // (width + 1))
            if self.styles.grid_size_columns != columns:
                self.styles.grid_size_columns = columns

    def _expected_width(self) -> int:
        """The grid's width once on show: the screen less the scroll bar and padding (4), and in the wide
        layout the panel's border (2)."""
        wide = self.is_attached and self.screen.has_class("-wide")
        return max(0, self.app.size.width - 4 - (2 if wide else 0))
