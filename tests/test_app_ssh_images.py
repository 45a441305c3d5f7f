"""Pictures over SSH: the Sixel encoder decoded back to pixels, the mode chosen without asking the
terminal when told, detection that waits for a slow link, late replies that never become keys, and
every picture sent to the terminal once."""

from __future__ import annotations

import io
import os
import pty
import re
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from test_app_support import demo_loader, settled, wait_for, wait_state
from textual.app import App

from fvtui.app import images, sixel
from fvtui.app.app import FvtuiApp, make_app
from fvtui.app.images import ReplyFilter, Terminal, TerminalImage
from fvtui.app.widgets.previews import PreviewCard
from fvtui.errors import UserError
from fvtui.pictures import to_pil


# -- a Sixel decoder, written from the protocol (DEC STD 070), independent of the encoder ---------
def decode(data: str) -> np.ndarray:
    """What a terminal paints for a Sixel sequence: (H, W, 3) uint8; pixels no bit touches stay 0."""
    assert data.startswith("\x1bP") and data.endswith("\x1b\\")
    body = data[data.index("q") + 1:-2]
    registers: dict[int, tuple[int, int, int]] = {}
    painted: dict[tuple[int, int], tuple[int, int, int]] = {}
    width = height = x = y = 0
    colour = (0, 0, 0)
    for token in re.finditer(r'"([0-9;]*)|#([0-9;]*)|!(\d+)([?-~])|([?-~])|(\$)|(-)', body):
        raster, select, count, repeated, single, cr, nl = token.groups()
        if raster is not None:
            _, _, width, height = (int(p) for p in raster.split(";"))
        elif select is not None:
            p = [int(v) for v in select.split(";")]
            if len(p) == 5 and p[1] == 2:
                registers[p[0]] = tuple((v * 255 + 50) // 100 for v in p[2:])
            colour = registers[p[0]]
        elif count is not None or single is not None:
            n, char = (int(count), repeated) if count is not None else (1, single)
            bits = ord(char) - 63
            for dx in range(n):
                for r in range(6):
                    if bits >> r & 1:
                        painted[(y + r, x + dx)] = colour
            x += n
        elif cr:
            x = 0
        elif nl:
            x, y = 0, y + 6
    out = np.zeros((max([height] + [py + 1 for py, _ in painted]), max([width] + [px + 1 for _, px in painted]), 3),
                   np.uint8)
    for (py, px), rgb in painted.items():
        out[py, px] = rgb
    return out


def expected(image: Image.Image) -> np.ndarray:
    return sixel.sixel_level(np.asarray(image.convert("RGB"))).astype(np.uint8)


@pytest.mark.parametrize("size", [(28, 28), (280, 280), (33, 17), (5, 1)])
def test_sixel_round_trip_is_exact_for_grey(size):
    pixels = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    image = Image.fromarray(pixels, "L")
    decoded = decode(sixel.encode(image))
    assert decoded.shape == (size[1], size[0], 3)  # nothing painted outside the picture
    assert np.array_equal(decoded, expected(image))


def test_sixel_round_trip_of_a_scaled_sample_is_exact(demo):
    """A demo sample as the app draws it: 28 x 28 enlarged to 28 x 14 cells of 10 x 20 pixels."""
    x = demo.train_x[7].numpy()
    picture = to_pil(x, demo.image_shape)
    scaled = sixel.scale_nearest(picture.convert("RGB"), 280, 280)
    decoded = decode(sixel.encode(scaled))
    assert np.array_equal(decoded, expected(scaled))
    source = np.asarray(picture)
    for row in (0, 1, 5, 6, 13, 27):  # every sample pixel is a flat 10 x 10 block of its value
        for col in (0, 9, 27):
            block = decoded[row * 10:(row + 1) * 10, col * 10:(col + 1) * 10]
            assert (block == sixel.sixel_level(source[row, col])).all()


def test_sixel_colour_pictures_up_to_256_colours_are_exact():
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    pixels = palette[rng.integers(0, 200, (31, 40))]
    image = Image.fromarray(pixels, "RGB")
    assert np.array_equal(decode(sixel.encode(image)), expected(image))


def test_sixel_levels_are_within_the_protocols_precision():
    values = np.arange(256)
    assert np.abs(sixel.sixel_level(values) - values).max() <= 1.3


# -- choosing the mode ------------------------------------------------------------------------
@pytest.fixture
def fresh_terminal(monkeypatch):
    monkeypatch.setattr(images, "_terminal", None)
    monkeypatch.delenv("FVTUI_IMAGES", raising=False)
    yield


@pytest.mark.parametrize("mode", images.MODES)
def test_forced_modes_never_ask_the_terminal(fresh_terminal, monkeypatch, mode):
    def no_detection(*args, **kwargs):
        raise AssertionError("the terminal was asked")

    monkeypatch.setattr(images, "detect", no_detection)
    monkeypatch.setattr(images, "_is_terminal", lambda: True)
    monkeypatch.setenv("FVTUI_IMAGES", mode.upper())
    assert images.configure(None).mode == mode
    monkeypatch.delenv("FVTUI_IMAGES")
    chosen = images.configure(mode)  # --images
    assert chosen.mode == mode and chosen.source == "--images" and not chosen.late_replies


def test_forced_mode_takes_the_cell_size_from_the_environment(fresh_terminal, monkeypatch):
    monkeypatch.setattr(images, "_kernel_cell_size", lambda: None)
    monkeypatch.setenv("TEXTUAL_CELL_WIDTH", "9")
    monkeypatch.setenv("TEXTUAL_CELL_HEIGHT", "18")
    assert images.configure("sixel").cell == (9, 18)


def test_unknown_mode_is_a_user_error(fresh_terminal, monkeypatch):
    monkeypatch.setenv("FVTUI_IMAGES", "gif")
    with pytest.raises(UserError, match="unknown image mode 'gif'; choose one of: sixel, kitty, halfcell"):
        images.configure(None)


def test_replies_are_interpreted():
    vt340 = "\x1b[?63;1;2;4;6;9;15;22c"
    assert images.interpret(vt340, None) == Terminal("sixel", (10, 20), "detected")
    assert images.interpret("\x1b[6;18;9t" + vt340, None).cell == (9, 18)
    assert images.interpret("\x1b_Gi=4242;OK\x1b\\\x1b[?62;22c", (8, 16)).mode == "kitty"
    assert images.interpret("\x1b[?62;22c", (8, 16)).mode == "halfcell"
    silent = images.interpret("", None)
    assert silent.mode == "halfcell" and silent.late_replies


class FakeTerminal:
    """The far end of a pty: answers fvtui's queries like xterm -ti vt340, after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.master, slave = pty.openpty()
        self.slave = os.fdopen(slave, "r+b", buffering=0)
        self.delay = delay
        self.received = b""
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self) -> None:
        while b"\x1b[c" not in self.received:
            self.received += os.read(self.master, 1024)
        time.sleep(self.delay)
        os.write(self.master, b"\x1b[6;20;10t\x1b[?63;1;2;4;6;9;15;22c")

    def close(self) -> None:
        self.thread.join(5)
        self.slave.close()
        os.close(self.master)


@pytest.fixture
def fake_tty(monkeypatch):
    made = []

    def make(delay: float) -> FakeTerminal:
        term = FakeTerminal(delay)
        made.append(term)
        stream = io.TextIOWrapper(term.slave, write_through=True)
        monkeypatch.setattr(sys, "__stdin__", stream)
        monkeypatch.setattr(sys, "__stdout__", stream)
        monkeypatch.setenv("TERM", "xterm")
        monkeypatch.delenv("TMUX", raising=False)
        return term

    yield make
    for term in made:
        term.close()


def test_detection_waits_for_a_slow_link(fake_tty):
    """A 0.6 s round trip (four times textual-image's 0.1 s wait): still Sixel, and not a moment more."""
    term = fake_tty(0.6)
    started = time.monotonic()
    found = images.detect(timeout=3.0)
    took = time.monotonic() - started
    assert found.mode == "sixel" and not found.late_replies
    assert 0.6 <= took < 2.0
    assert b"\x1b_G" in term.received  # the Kitty probe goes out outside tmux...


def test_detection_skips_the_kitty_probe_in_tmux(fake_tty, monkeypatch):
    term = fake_tty(0.0)
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert images.detect(timeout=3.0).mode == "sixel"
    assert b"\x1b_G" not in term.received  # ...but never in tmux, where it would set the pane title


def test_detection_gives_up_and_says_replies_may_come(fake_tty):
    fake_tty(1.5)
    found = images.detect(timeout=0.3)
    assert found.mode == "halfcell" and found.late_replies


# -- late replies -----------------------------------------------------------------------------
def keys_of(raw: str) -> list:
    """The key events Textual's own input parser makes of bytes from the terminal."""
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    return [*parser.feed(raw), *parser.feed("")]


async def test_a_late_reply_does_not_press_keys(store, demo, monkeypatch):
    """The DA1 reply that arrived after detection gave up: its digits and 'c' switch nothing."""
    monkeypatch.setattr(images, "_terminal", Terminal("halfcell", (10, 20), "timeout", late_replies=True))
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "finished")
        reply = keys_of("\x1b[6;20;10t\x1b[?63;1;2;4;6;9;15;22c")
        assert [k.character for k in reply][:3] == ["^", "[", "6"]  # what would have been pressed
        for key in reply:
            app.post_message(key)
        await pilot.pause(0.6)
        assert app.screen is screen  # no Compare dialog ('c')
        assert screen.query_one("#tabs").active == "curve"  # no panel switch ('6', '3', '1', '2', '4')
        assert app._replies is None or not app._replies.armed  # the DA1 reply disarmed the filter
        await pilot.press("2")  # keys work as usual afterwards
        assert screen.query_one("#tabs").active == "samples"


async def test_keys_typed_while_replies_are_expected_still_work(store, demo, monkeypatch):
    monkeypatch.setattr(images, "_terminal", Terminal("halfcell", (10, 20), "timeout", late_replies=True))
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_state(pilot, screen, "finished")
        assert app._replies is not None and app._replies.armed
        await pilot.press("3")  # not a reply's beginning: through at once
        assert screen.query_one("#tabs").active == "table"
        await pilot.press("escape")  # could begin one: held a moment, then let through
        await pilot.pause(0.6)
        await pilot.press("left_square_bracket", "4")  # '[' then a key that ends the suspicion
        await wait_for(pilot, lambda: screen.query_one("#tabs").active == "log", timeout=10, what="the log panel")


def test_reply_filter_patterns():
    delivered = []
    f = ReplyFilter(delivered.extend)
    kitty = keys_of("\x1b_Gi=4242;OK\x1b\\")
    assert all(f.feed(k) for k in kitty) and not delivered and f.armed
    assert not f.feed(keys_of("x")[0])


# -- every picture sent once ------------------------------------------------------------------
def sent(app) -> list[str]:
    """Install a recorder of what the app writes (its screen updates, as bytes for the terminal)."""
    written: list[str] = []
    original = FvtuiApp._display

    def display(self, screen, renderable):
        if renderable is not None:
            console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=self.size[0],
                              legacy_windows=False, safe_box=False)
            console.print(renderable, end="")
            written.append(console.file.getvalue())
        return original(self, screen, renderable)

    app._display = display.__get__(app)
    return written


async def test_samples_panel_sends_each_picture_once(store, demo, monkeypatch):
    monkeypatch.setattr(images, "_terminal", Terminal("sixel", (10, 20), "test"))
    app = make_app(store, session=store.open("s"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_state(pilot, app.screen, "finished")
        await pilot.pause(0.3)
        written = sent(app)
        await pilot.press("2")
        await settled(pilot, app.screen)
        await pilot.pause(0.5)
        pictures = [p for chunk in written for p in re.findall(r"\x1bP[^\x1b]*\x1b\\", chunk)]
        view = app.screen.query_one("#previews-scroll").region
        on_show = [c for c in app.screen.query(PreviewCard) if c.display and c.image.region.overlaps(view)]
        assert len(on_show) == 6  # 3 columns, the second row partly in view
        assert len(pictures) == len(on_show), f"{len(pictures)} pictures sent for {len(on_show)} cards"
        written.clear()
        await pilot.press("right", "right")  # moving the focus repaints borders, not pictures
        await pilot.pause(0.5)
        assert not [p for chunk in written for p in re.findall(r"\x1bP", chunk)]
        written.clear()
        started = time.monotonic()
        await pilot.pause(2.2)  # idle: the status line's clock only, under 1 KB/s
        assert sum(map(len, written)) < 1000 * (time.monotonic() - started)


class OnePicture(App):
    CSS = "TerminalImage { width: 28; height: 14; } Screen { padding: 2 0 0 5; }"

    def __init__(self, picture: Image.Image) -> None:
        super().__init__()
        self.picture = picture

    def compose(self):
        yield TerminalImage(self.picture, id="picture")


async def test_sixel_widget_draws_in_place_and_leaves_the_cursor_on_its_last_row(demo, monkeypatch):
    monkeypatch.setattr(images, "_terminal", Terminal("sixel", (10, 20), "test"))
    picture = to_pil(demo.train_x[3].numpy(), demo.image_shape)
    app = OnePicture(picture)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause(0.2)
        console = Console(file=io.StringIO(), force_terminal=True, width=60, legacy_windows=False)
        console.print(app.screen._compositor.render_update(full=True), end="")
        out = console.file.getvalue()
        match = re.search(r"\x1b\[(\d+);(\d+)H(\x1bP[^\x1b]*\x1b\\)\x1b\[(\d+);(\d+)H", out)
        assert match, "no Sixel picture with cursor moves around it"
        row, col, payload, end_row, end_col = match.groups()
        assert (int(row), int(col)) == (3, 6)  # the widget's top left (1-based), below the padding
        assert (int(end_row), int(end_col)) == (3 + 13, 6 + 28)  # its last row, just after it: not below
        decoded = decode(payload)
        assert np.array_equal(decoded, expected(sixel.scale_nearest(picture.convert("RGB"), 280, 280)))


@pytest.mark.parametrize("mode", ["halfcell", "unicode", "kitty"])
async def test_other_modes_draw_and_send_a_picture_once(demo, monkeypatch, mode):
    monkeypatch.setattr(images, "_terminal", Terminal(mode, (10, 20), "test"))
    kitty_out = io.StringIO()  # textual-image's Kitty renderable writes its upload to sys.__stdout__
    monkeypatch.setattr(sys, "__stdout__", kitty_out)
    picture = to_pil(demo.train_x[3].numpy(), demo.image_shape)
    app = OnePicture(picture)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause(0.2)
        widget = app.query_one(TerminalImage)
        text = "".join(strip.text for strip in widget.render_lines(widget.size.region))
        assert text.strip()  # something drawn
        if mode == "halfcell":  # 28 x 14 cells of two pixels each: the sample's own 28 x 28 pixels
            top = widget.render_lines(widget.size.region)[0]
            colours = [seg.style.color.triplet for seg in top if seg.text == "▀"]
            assert [c[0] for c in colours] == list(np.asarray(picture)[0])
        widget.refresh()
        await pilot.pause(0.2)
        widget.render_lines(widget.size.region)
        if mode == "kitty":
            assert kitty_out.getvalue().count("a=p") == 1  # one placement: sent once, not per repaint
