"""Samples as pictures for the terminal: Sixel, Kitty, coloured half cells or Unicode shades.

Which one is decided once, before the app takes the terminal (`configure`):

- `FVTUI_IMAGES=sixel|kitty|halfcell|unicode` (or `--images`) decides without asking the terminal;
- otherwise, on a terminal, one exchange: the Kitty graphics query (skipped inside tmux and screen,
  where it would set the pane title), the cell size in pixels when the kernel does not know it, and
  the device attributes (DA1), which every terminal answers and answers last. The wait ends when the
  DA1 reply arrives (about one round trip), at most `FVTUI_DETECT_TIMEOUT` seconds (default 3). If
  it never came, half cells are used and `late_replies_expected()` tells the app to swallow replies
  that arrive later, instead of taking them for key presses (`ReplyFilter`);
- without a terminal (tests, pipes): Unicode shades.

textual-image's own detection (at import, 0.1 s per query) is never run: its modules are imported
with stdout looking like a pipe. Its half-cell, Unicode and Kitty renderables are used; Sixel is
fvtui's own (`sixel.py`: pixel-exact, and the cursor put back on the picture's last row, where
textual-image leaves it one row too low, its issue #146).
"""

from __future__ import annotations

import os
import re
import select
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image as PILImage
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from ..pictures import MODES, parse_mode  # noqa: F401 - MODES: this module's modes, re-exported
from . import sixel

DEFAULT_CELL = (10, 20)  # pixels per cell when neither the kernel nor the terminal says (VT340's)
DETECT_TIMEOUT = 3.0

KITTY_QUERY = "\x1b_Gi=4242,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_QUERY = "\x1b[16t"
DA1_QUERY = "\x1b[c"
_DA1_REPLY = re.compile(r"\x1b\[\?([0-9;]*)c")
_CELL_REPLY = re.compile(r"\x1b\[6;(\d+);(\d+)t")
_KITTY_REPLY = re.compile(r"\x1b_Gi=4242;([^\x1b]*)\x1b\\")


@dataclass(frozen=True)
class Terminal:
    mode: str
    cell: tuple[int, int]  # pixels per cell (width, height)
    source: str  # "FVTUI_IMAGES", "--images", "detected", "timeout", "no terminal"
    late_replies: bool = False  # detection gave up waiting: replies may still arrive as input


_terminal: Terminal | None = None


def configure(mode: str | None = None, *, source: str = "--images") -> Terminal:
    """Decide how pictures are drawn (a forced `mode`, FVTUI_IMAGES, or asking the terminal)."""
    global _terminal
    forced, how = parse_mode(mode), source
    if forced is None:
        forced, how = parse_mode(os.environ.get("FVTUI_IMAGES")), "FVTUI_IMAGES"
    if forced is not None:
        _terminal = Terminal(forced, _kernel_cell_size() or _env_cell_size() or DEFAULT_CELL, how)
    elif _is_terminal():
        _terminal = detect(float(os.environ.get("FVTUI_DETECT_TIMEOUT") or DETECT_TIMEOUT))
    else:
        _terminal = Terminal("unicode", DEFAULT_CELL, "no terminal")
    _seed_textual_image(_terminal.cell)
    return _terminal


def terminal() -> Terminal:
    return _terminal if _terminal is not None else configure(None)


def late_replies_expected() -> bool:
    return _terminal is not None and _terminal.late_replies


def _is_terminal() -> bool:
    try:
        return bool(sys.__stdin__ and sys.__stdout__ and sys.__stdin__.isatty() and sys.__stdout__.isatty())
    except (ValueError, OSError):
        return False


def _kernel_cell_size() -> tuple[int, int] | None:
    if not _is_terminal():
        return None
    try:
        import fcntl
        import struct
        import termios

        rows, cols, xpixels, ypixels = struct.unpack(
            "HHHH", fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8))
    except (OSError, ValueError, ImportError):
        return None
    if rows and cols and xpixels and ypixels:
        return xpixels // cols, ypixels // rows
    return None


def _env_cell_size() -> tuple[int, int] | None:
    """TEXTUAL_CELL_WIDTH / TEXTUAL_CELL_HEIGHT (textual-image's and textual-serve's convention)."""
    width, height = os.environ.get("TEXTUAL_CELL_WIDTH", ""), os.environ.get("TEXTUAL_CELL_HEIGHT", "")
    return (int(width), int(height)) if width.isdigit() and height.isdigit() and int(width) and int(height) else None


def _in_multiplexer() -> bool:
    term = os.environ.get("TERM", "")
    return bool(os.environ.get("TMUX") or os.environ.get("STY")) or term.startswith(("screen", "tmux"))


def detect(timeout: float = DETECT_TIMEOUT) -> Terminal:
    """Ask the terminal once (see the module's notes); never more than `timeout` seconds."""
    import termios
    import tty

    fd_in, fd_out = sys.__stdin__.fileno(), sys.__stdout__.fileno()
    cell = _kernel_cell_size() or _env_cell_size()
    queries = ("" if _in_multiplexer() else KITTY_QUERY) + ("" if cell else CELL_QUERY) + DA1_QUERY
    saved = termios.tcgetattr(fd_in)
    reply = ""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, queries.encode())
        deadline = time.monotonic() + timeout
        while not _DA1_REPLY.search(reply):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            chunk = os.read(fd_in, 1024)
            if not chunk:
                break
            reply += chunk.decode("latin-1")
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return interpret(reply, cell)


def interpret(reply: str, cell: tuple[int, int] | None) -> Terminal:
    """The mode and cell size a terminal's replies to `detect`'s queries mean."""
    da1 = _DA1_REPLY.search(reply)
    if cell is None and (m := _CELL_REPLY.search(reply)):
        height, width = int(m.group(1)), int(m.group(2))
        cell = (width, height) if width and height else None
    cell = cell or DEFAULT_CELL
    if da1 is None:
        return Terminal("halfcell", cell, "timeout", late_replies=True)
    if (m := _KITTY_REPLY.search(reply)) and m.group(1) == "OK":
        return Terminal("kitty", cell, "detected")
    if "4" in da1.group(1).split(";"):
        return Terminal("sixel", cell, "detected")
    return Terminal("halfcell", cell, "detected")


def _seed_textual_image(cell: tuple[int, int]) -> None:
    """Import textual-image without its detection, with our cell size in its cache."""
    from textual_image import _terminal as ti_terminal

    setattr(ti_terminal.get_cell_size, "_result", ti_terminal.CellSize(*cell))
    if "textual_image.renderable" not in sys.modules:
        real = sys.__stdout__
        sys.__stdout__ = _NotATerminal(real)  # its package decides Sixel/Kitty/... at import if a tty
        try:
            import textual_image.renderable  # noqa: F401
        finally:
            sys.__stdout__ = real


class _NotATerminal:
    def __init__(self, stream) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


# -- late replies --------------------------------------------------------------------------------
class ReplyFilter:
    """Drops terminal replies that arrive as key presses after detection gave up waiting.

    Textual turns an escape sequence it does not know into keys: ESC as '^' (or escape when it came
    alone, or nothing at all), then '[', '?', digits, ';', 'c'. Keys that could begin such a reply are held (never
    longer than `hold` seconds); a complete reply is dropped, anything else is let through in order.
    Armed for `window` seconds, and disarmed by the DA1 reply (always the last one).
    """

    def __init__(self, deliver: Callable[[list], None], window: float = 30.0, hold: float = 0.3) -> None:
        self.deliver = deliver
        self.until = time.monotonic() + window
        self.hold = hold
        self.held: list = []
        self.text = ""
        self.held_since = 0.0

    @property
    def armed(self) -> bool:
        return time.monotonic() < self.until

    def feed(self, key) -> bool:
        """True when the key is taken (held, dropped, or delivered after held ones); False: handle it."""
        if not self.armed:
            return False
        char = "\x1b" if key.key == "escape" else (key.character or "")
        text = self.text + ("\x1b" if (not self.text and char == "^") else char)
        state = _reply_state(text)
        if state == "complete":
            if text.endswith("c"):
                self.until = 0.0  # DA1 comes last: nothing more to wait for
            self.held, self.text = [], ""
            return True
        if state == "partial":
            if not self.held:
                self.held_since = time.monotonic()
            self.held.append(key)
            self.text = text
            return True
        if self.held:  # not a reply after all: what was held goes first, then this key
            held, self.held, self.text = self.held, [], ""
            self.deliver([*held, key])
            return True
        return False

    def expire(self) -> None:
        """Let held keys through once they have waited `hold` seconds (a lone ESC, a '[' typed)."""
        if self.held and time.monotonic() - self.held_since >= self.hold:
            held, self.held, self.text = self.held, [], ""
            self.deliver(held)


# Textual sometimes drops the ESC of an unknown sequence altogether: the reply may begin at '[' or '_'.
_REPLY_PATTERNS = (re.compile(r"\x1b?\[\??[0-9;]*[ct]"), re.compile(r"\x1b?_G[^\\]{0,200}\\"))
_REPLY_PREFIX = re.compile(r"\x1b|\x1b?(\[(\?[0-9;]*|[0-9;]*)|_(G[^\\]{0,200})?)")


def _reply_state(text: str) -> str:
    if any(p.fullmatch(text) for p in _REPLY_PATTERNS):
        return "complete"
    if _REPLY_PREFIX.fullmatch(text):
        return "partial"
    return "no"


# -- the widget ----------------------------------------------------------------------------------
def amplified_difference(original: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, float]:
    """|other - original| scaled so its largest pixel is white, and the factor used (1 when equal)."""
    diff = np.abs(np.asarray(other, np.float64) - np.asarray(original, np.float64))
    peak = float(diff.max()) if diff.size else 0.0
    return (diff / peak, 1.0 / peak) if peak > 0 else (diff, 1.0)


def cell_size(shape: tuple[int, ...], width: int) -> tuple[int, int]:
    """Cells for an image `width` cells wide: two pixel rows per cell, as half-cell rendering draws."""
    return width, max(1, round(width * shape[0] / shape[1] / 2))


_NULL_STYLE = Style()
_RAW = ((ControlType.CURSOR_FORWARD, 0),)  # a no-op control: Rich and Textual pass the text through


class TerminalImage(Widget):
    """A picture in the mode `configure` chose; give it an explicit CSS width and height.

    Setting `image` repaints only this widget (no layout pass: the size is fixed by CSS), and each
    mode keeps what it sent for the current size, so an unchanged picture costs nothing to repaint
    but the bytes of its own update. Pictures are scaled with the nearest pixel: each pixel of a
    sample stays one flat block of its exact value.
    """

    DEFAULT_CSS = "TerminalImage { width: auto; height: auto; }"

    def __init__(self, image: PILImage.Image | None = None, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._image: PILImage.Image | None = image
        self._cache: tuple | None = None  # (key, payload) of the last encoding
        self._kitty = None  # textual-image's Kitty renderable, which owns the terminal's copy
        self._held = False  # drawn blank until release(): the owner chooses the frame it is sent in

    @property
    def image(self) -> PILImage.Image | None:
        return self._image

    @image.setter
    def image(self, value: PILImage.Image | None) -> None:
        if value is self._image:
            return
        self._image, self._cache = value, None
        self._drop_kitty()
        self.refresh()

    def hold(self) -> None:
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self.refresh()

    @property
    def mode(self) -> str:
        return terminal().mode

    def on_unmount(self) -> None:
        self._drop_kitty()

    def render_lines(self, crop):
        width, height = self.size
        if self._image is None or self._held or not width or not height:
            return super().render_lines(crop)
        mode = self.mode
        if mode == "sixel":
            return self._sixel_lines(crop)
        return super().render_lines(crop)

    def render(self):
        width, height = self.size
        if self._image is None or self._held or not width or not height:
            return ""
        mode = self.mode
        if mode == "kitty":
            return self._kitty_renderable(width, height)
        from textual_image.renderable.halfcell import Image as Halfcell
        from textual_image.renderable.unicode import Image as Unicode

        if mode == "halfcell":  # two pixel rows per cell: scaled here, so its own resize does nothing
            return Halfcell(sixel.scale_nearest(self._image.convert("RGB"), width, 2 * height), width, height)
        return Unicode(self._image, width, height)

    # -- Sixel ---------------------------------------------------------------------------------
    def _sixel_lines(self, crop) -> list[Strip]:
        if not self.is_attached or not self.screen.is_active:
            return [Strip.blank(crop.width, self.rich_style)] * crop.height
        cell_w, cell_h = terminal().cell
        key = (self.size, crop, (cell_w, cell_h))
        if self._cache is None or self._cache[0] != key:
            width, height = self.size
            scaled = sixel.scale_nearest(self._image.convert("RGB"), width * cell_w, height * cell_h)
            part = scaled.crop((crop.x * cell_w, crop.y * cell_h, crop.right * cell_w, crop.bottom * cell_h))
            self._cache = (key, sixel.encode(part))
        payload = self._cache[1]
        region = self.region  # where this widget sits on screen; crop is relative to it
        x, y = region.x + crop.x, region.y + crop.y
        segments = [
            Segment(Control.move_to(x, y).segment.text, _NULL_STYLE),
            Segment(payload, _NULL_STYLE, _RAW),
            # Back to the end of the picture's last row, where the rest of this line continues
            # (textual-image goes to the row below it: its issue #146, stale cells after resizes).
            Segment(Control.move_to(x + crop.width, y + crop.height - 1).segment.text, _NULL_STYLE),
        ]
        return [Strip([])] * (crop.height - 1) + [Strip(segments, cell_length=crop.width)]

    # -- Kitty ---------------------------------------------------------------------------------
    def _kitty_renderable(self, width: int, height: int):
        from textual_image.renderable.tgp import Image as Kitty

        cell_w, cell_h = terminal().cell
        key = (width, height, cell_w, cell_h)
        if self._kitty is None or self._kitty[0] != key:
            self._drop_kitty()
            picture = sixel.scale_nearest(self._image.convert("RGB"), width * cell_w, height * cell_h)
            self._kitty = (key, Kitty(picture, width, height))  # sent once, on its first render
        return self._kitty[1]

    def _drop_kitty(self) -> None:
        if self._kitty is not None:
            _, renderable, self._kitty = *self._kitty, None
            try:
                renderable.cleanup()
            except Exception:  # the terminal is gone: nothing to free
                pass
