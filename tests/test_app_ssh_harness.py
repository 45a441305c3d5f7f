"""The app as a person meets it over SSH: xterm with Sixel under Xvfb, `ssh -t` to an sshd on
127.0.0.1 through a proxy adding 150 ms of round trip. Slow (about 30 s); skipped when the Debian
packages are missing (xvfb xterm openssh-server openssh-client xdotool, and x11-apps or imagemagick).

Checked: the terminal is detected as Sixel over the slow link; a sample on the Samples panel shows
on the X screen pixel for pixel (within Sixel's percent precision); the idle link carries under
1 KB/s; answers that come after detection gave up press no keys (without fvtui's reply filter that
test fails: Compare opens and q no longer quits).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ssh_harness import Desktop, find_picture, missing
from test_app_support import finished_session

from fvtui.app import sixel
from fvtui.pictures import to_pil
from fvtui.store import SessionStore

REPO = Path(__file__).resolve().parent.parent
CELL = (6, 13)  # xterm's "fixed" font
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
              pytest.mark.skipif(bool(missing()), reason=f"needs Debian packages: {' '.join(missing())}")]


def wait_quiet(proxy, quiet: float = 1.5, timeout: float = 60.0, at_least: int = 1) -> None:
    """Until the server has sent `at_least` bytes and then nothing (beyond the clock) for `quiet` s."""
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        if proxy.bytes_between(start, now) >= at_least and proxy.bytes_between(now - quiet, now) < 2500:
            return
        time.sleep(0.2)
    raise AssertionError("the app never settled")


@pytest.fixture
def desktop():
    desk = Desktop(one_way_delay=0.075)
    yield desk
    desk.close()


# Run remotely instead of `fvtui`: the same CLI, and at quit (q) it writes the picture mode and what
# was on show (screen, panel) to $FVTUI_STATE_FILE, for the test to read.
LAUNCHER = """
import os, sys
import fvtui.app.app as app_module
from fvtui.app import images
quit_ = app_module.FvtuiApp.action_quit
async def action_quit(self):
    tabs = [s.query_one('#tabs').active for s in self.screen_stack if type(s).__name__ == 'SessionScreen']
    with open(os.environ['FVTUI_STATE_FILE'], 'w') as f:
        f.write(f'{images.terminal().mode} {type(self.screen).__name__} {tabs[0] if tabs else None}')
    await quit_(self)
app_module.FvtuiApp.action_quit = action_quit
from fvtui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_remote(desktop, tmp_path, demo, **env) -> Path:
    """A finished demo session, resumed in xterm over ssh through the slow proxy; the state file."""
    store = SessionStore(tmp_path / "sessions")
    finished_session(store, demo, "s")
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    state = tmp_path / "state"
    settings = {"FVTUI_SESSIONS_DIR": tmp_path / "sessions", "TEXTUAL_ANIMATIONS": "none",
                "FVTUI_STATE_FILE": state, **env}
    remote = (f"cd {REPO} && " + " ".join(f"{k}={v}" for k, v in settings.items())
              + f" {sys.executable} {launcher} resume s --workers 1")
    desktop.xterm(desktop.ssh_command(remote))
    wait_quiet(desktop.proxy, at_least=5000)
    return state


def quit_remote(desktop, state: Path) -> list[str]:
    desktop.keys("q")
    deadline = time.monotonic() + 20
    while not (state.exists() and state.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.exists(), "q did not quit the app (a dialog up, opened by a phantom key?)"
    return state.read_text().split()


def test_sixel_over_a_slow_ssh_link(desktop, tmp_path, demo):
    state = start_remote(desktop, tmp_path, demo)
    with SessionStore(tmp_path / "sessions").open("s", writable=False) as session:
        first = session.rounds[-1].queried[0].index  # the first card of the last round

    desktop.keys("2")  # the Samples panel
    wait_quiet(desktop.proxy, at_least=20000)
    time.sleep(1.0)
    screen = desktop.screenshot()
    picture = to_pil(demo.train_x[first].numpy(), demo.image_shape).convert("RGB")
    expected = np.asarray(sixel.scale_nearest(picture, 28 * CELL[0], 14 * CELL[1])).astype(np.int16)
    found = find_picture(screen, expected, CELL)
    if found is None or found[2]:
        Image.fromarray(screen).save(tmp_path / "screen.png")
    assert found is not None, f"the sample is nowhere on screen (see {tmp_path / 'screen.png'})"
    assert found[2] == 0, f"{found[2]} pixels differ at {found[:2]} (see {tmp_path / 'screen.png'})"

    start = time.monotonic()
    time.sleep(6.0)
    idle = desktop.proxy.bytes_between(start, time.monotonic()) / (time.monotonic() - start)
    print(f"\nsample at {found[:2]}, {found[2]} pixels off; idle link {idle:.0f} B/s (ssh, encrypted)")
    assert idle < 1024, f"{idle:.0f} B/s on the idle link"
    assert quit_remote(desktop, state) == ["sixel", "SessionScreen", "samples"]  # detected over 150 ms


def test_a_reply_later_than_the_wait_presses_no_keys(desktop, tmp_path, demo):
    """Detection told to wait 50 ms over a 150 ms link (textual-image waits 100 ms): the terminal's
    answers come after it gave up, and must not switch panels (digits) or open Compare (c)."""
    state = start_remote(desktop, tmp_path, demo, FVTUI_DETECT_TIMEOUT="0.05")
    time.sleep(2.0)
    assert quit_remote(desktop, state) == ["halfcell", "SessionScreen", "curve"]
