"""The solver worker processes a test started, read from /proc: what a leak check counts."""

from __future__ import annotations

import os
from pathlib import Path


def solver_children() -> list[int]:
    """Live solver worker processes of this process. A zombie (exited, not yet reaped) has an empty
    cmdline, so it is not counted."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z" and b"fvtui.verify.worker" in cmdline:
            found.append(int(entry))
    return found
