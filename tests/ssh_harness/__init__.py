"""A person's setup, in processes a test starts: Xvfb, xterm with Sixel (-ti vt340), an sshd on
127.0.0.1 with throw-away keys, and a TCP proxy that delays both directions and counts the bytes.

Debian packages: xvfb, xterm, openssh-server, openssh-client, x11-apps or imagemagick (`xwd` or
`import` for screenshots), xdotool (keys). `missing()` names what is absent so tests can skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TOOLS = {"Xvfb": "xvfb", "xterm": "xterm", "sshd": "openssh-server", "ssh": "openssh-client",
         "ssh-keygen": "openssh-client", "xdotool": "xdotool"}
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def missing() -> list[str]:
    """Debian packages the harness needs and this machine lacks."""
    absent = {pkg for tool, pkg in TOOLS.items() if not (SSHD if tool == "sshd" else shutil.which(tool))}
    if not (shutil.which("xwd") or shutil.which("import")):
        absent.add("x11-apps (xwd) or imagemagick")
    return sorted(absent)


def read_xwd(data: bytes) -> np.ndarray:
    """An X window dump of a TrueColor screen (what xwd writes for Xvfb) as (H, W, 3) uint8: no
    ImageMagick needed (a `convert` on PATH may be something else)."""
    header = np.frombuffer(data[:100], ">u4")
    size, width, height, byte_order = int(header[0]), int(header[4]), int(header[5]), int(header[7])
    bits, stride, masks, colours = int(header[11]), int(header[12]), header[14:17], int(header[19])
    if bits != 32:
        raise ValueError(f"xwd: {bits} bits per pixel, only 32 read here")
    start = size + 12 * colours
    rows = np.frombuffer(data[start:start + stride * height], "<u4" if byte_order == 0 else ">u4")
    pixels = rows.reshape(height, stride // 4)[:, :width]
    channels = [(pixels & int(m)) >> (int(m) & -int(m)).bit_length() - 1 for m in masks]
    return np.stack(channels, axis=-1).astype(np.uint8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DelayProxy:
    """127.0.0.1:port -> target, each direction delayed by `one_way` seconds; counts what the server
    sends (time, bytes)."""

    def __init__(self, target_port: int, one_way: float) -> None:
        self.target, self.one_way = target_port, one_way
        self.port = free_port()
        self.received: list[tuple[float, int]] = []  # from the server, as it arrives at the proxy
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for src, dst, count in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, count), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        queue: list[tuple[float, bytes]] = []
        cond = threading.Condition()

        def deliver() -> None:
            while True:
                with cond:
                    while not queue:
                        cond.wait()
                    due, data = queue.pop(0)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=deliver, daemon=True).start()
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if count and data:
                with self.lock:
                    self.received.append((time.monotonic(), len(data)))
            with cond:
                queue.append((time.monotonic() + self.one_way, data))
                cond.notify()
            if not data:
                return

    def bytes_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(n for t, n in self.received if start <= t < end)

    def close(self) -> None:
        self.closed = True
        self.server.close()


class Desktop:
    """Xvfb, an sshd, a delay proxy in front of it, and xterm windows running commands over ssh."""

    def __init__(self, one_way_delay: float = 0.075) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fvtui-ssh-"))
        self.procs: list[subprocess.Popen] = []
        self.display = f":{free_port() % 400 + 100}"
        self._start_x()
        self.sshd_port = self._start_sshd()
        self.proxy = DelayProxy(self.sshd_port, one_way_delay)

    def _spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "stderr.log", "ab"),
                                **kwargs)
        self.procs.append(proc)
        return proc

    def _start_x(self) -> None:
        self._spawn(["Xvfb", self.display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{self.display[1:]}").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.1)

    def _start_sshd(self) -> int:
        keys = self.tmp / "keys"
        keys.mkdir()
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
        (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
        port = free_port()
        config = self.tmp / "sshd_config"
        config.write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {keys / 'host'}",
            f"AuthorizedKeysFile {keys / 'authorized_keys'}", "PermitRootLogin yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", f"PidFile {self.tmp / 'sshd.pid'}",
            "AcceptEnv COLORTERM LANG", "PrintMotd no", ""]))
        self._spawn([SSHD, "-D", "-e", "-f", str(config)])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(self.tmp / 'stderr.log').read_text()[-500:]}")
                time.sleep(0.1)

    def ssh_command(self, remote: str) -> list[str]:
        key = self.tmp / "keys" / "client"
        return ["ssh", "-tt", "-p", str(self.proxy.port), "-i", str(key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "SendEnv=COLORTERM",
                f"{os.environ.get('USER') or 'root'}@127.0.0.1", remote]

    def xterm(self, command: list[str], columns: int = 100, rows: int = 30) -> subprocess.Popen:
        """xterm as a VT340 (Sixel), black, no border, at the screen's top left, running `command`."""
        env = {**os.environ, "DISPLAY": self.display, "COLORTERM": "truecolor"}
        return self._spawn(["xterm", "-ti", "vt340", "-xrm", "XTerm*numColorRegisters: 256",
                            "-geometry", f"{columns}x{rows}+0+0", "-bw", "0", "-b", "0", "-fg", "white",
                            "-bg", "black", "-fn", "fixed", "-e", *command], env=env)

    def window(self) -> str:
        env = {**os.environ, "DISPLAY": self.display}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = subprocess.run(["xdotool", "search", "--class", "xterm"], env=env, capture_output=True,
                                   text=True).stdout.split()
            if found:
                return found[-1]
            time.sleep(0.2)
        raise RuntimeError("no xterm window")

    def keys(self, *keys: str) -> None:
        env = {**os.environ, "DISPLAY": self.display}
        window = self.window()
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, check=False)
        for key in keys:
            subprocess.run(["xdotool", "key", "--clearmodifiers", key], env=env, check=True)
            time.sleep(0.1)

    def screenshot(self) -> np.ndarray:
        """The X screen as (H, W, 3) uint8."""
        from PIL import Image

        env = {**os.environ, "DISPLAY": self.display}
        if shutil.which("xwd"):
            xwd = self.tmp / "screen.xwd"
            subprocess.run(["xwd", "-root", "-silent", "-out", str(xwd)], env=env, check=True)
            return read_xwd(xwd.read_bytes())
        out = self.tmp / "screen.png"
        subprocess.run(["import", "-window", "root", str(out)], env=env, check=True)
        return np.asarray(Image.open(out).convert("RGB"))

    def close(self) -> None:
        self.proxy.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def find_picture(screen: np.ndarray, expected: np.ndarray, cell: tuple[int, int], tolerance: int = 2
                 ) -> tuple[int, int, int] | None:
    """Where `expected` (H, W, 3) sits on `screen`, aligned to the cell grid: (x, y, pixels off by more
    than `tolerance`), the best place; None when it does not fit anywhere."""
    h, w = expected.shape[:2]
    best = None
    for y in range(0, screen.shape[0] - h + 1, cell[1]):
        for x in range(0, screen.shape[1] - w + 1, cell[0]):
            patch = screen[y:y + h, x:x + w].astype(np.int16)
            if abs(int(patch[h // 2, w // 2, 0]) - int(expected[h // 2, w // 2, 0])) > 40:
                continue
            off = int((np.abs(patch - expected).max(axis=2) > tolerance).sum())
            if best is None or off < best[2]:
                best = (x, y, off)
    return best
