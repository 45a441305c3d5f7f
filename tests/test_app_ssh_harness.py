"""The app as a person meets it over SSH: xterm with Sixel under Xvfb, `ssh -t` to an sshd on
127.0.0.1 through a proxy adding 150 ms of round trip. Slow (about 30 s); skipped when the Debian
packages are missing (xvfb xterm openssh-server openssh-client xdotool, and x11-apps or imagemagick).

Checked: the terminal is detected as Sixel over the slow link; a sample on the Samples panel shows
on the X screen pixel for pixel (within Sixel's percent precision); the idle link carries under
1 KB/s; quitting ends the remote app.
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

from fvtui.app import images, sixel
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


def test_sixel_over_a_slow_ssh_link(desktop, tmp_path, demo):
    store = SessionStore(tmp_path / "sessions")
    finished_session(store, demo, "s")
    with store.open("s", writable=False) as session:
        first = session.rounds[-1].queried[0].index  # the first card of the last round
    marker = tmp_path / "run"
    remote = (f"cd {REPO} && FVTUI_SESSIONS_DIR={tmp_path / 'sessions'} TEXTUAL_ANIMATIONS=none "
              f"FVTUI_MODE_FILE={marker}.mode {sys.executable} -c "
              "\"import os, sys; from fvtui.cli import main; rc = main(sys.argv[1:]); "
              "from fvtui.app import images; open(os.environ['FVTUI_MODE_FILE'], 'w').write(images.terminal().mode); "
              "sys.exit(rc)\" resume s --workers 1")
    desktop.xterm(desktop.ssh_command(remote))
    wait_quiet(desktop.proxy, at_least=5000)

    desktop.keys("2")  # the Samples panel
    wait_quiet(desktop.proxy, at_least=20000)
    time.sleep(1.0)
    screen = desktop.screenshot()
    picture = images.to_pil(demo.train_x[first].numpy(), demo.image_shape).convert("RGB")
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

    desktop.keys("q")
    deadline = time.monotonic() + 20
    while not Path(f"{marker}.mode").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Path(f"{marker}.mode").read_text() == "sixel"  # detected over 150 ms, not guessed
