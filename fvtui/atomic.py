"""Files written whole or not at all: a full disk or a kill leaves the old file, or none, never a part."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def write_atomic(path: Path, data: bytes | str, *, durable: bool = False, after: str = "", verb: str = "write") -> None:
    """Write through a temporary file renamed into place; `durable`: fsync the file and its folder (a
    session's records survive a power cut). A failure is a UserError naming the path (`after` appended)."""
    data = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot {verb} {path}: {exc.strerror or exc}{after}") from None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
