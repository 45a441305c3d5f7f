"""The --cluster address: a running scheduler, or a LocalCluster of N worker processes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import UserError

ENV = "FVTUI_CLUSTER"
FORMS = "tcp://HOST:PORT (a running Dask scheduler) or local:N (N worker processes on this machine)"


@dataclass(frozen=True)
class ClusterAddress:
    text: str
    scheduler: str = ""  # tcp://host:port, or "" for a local cluster
    local_workers: int = 0


def parse_address(text: str) -> ClusterAddress:
    text = text.strip()
    if (local := re.fullmatch(r"local:(\d+)", text)) is not None:
        n = int(local[1])
        if n < 1:
            raise UserError(f"--cluster {text}: a local cluster needs at least 1 worker")
        return ClusterAddress(text, local_workers=n)
    tcp = re.fullmatch(r"tcp://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})", text)
    if tcp is not None and 0 < int(tcp[2]) < 65536:
        return ClusterAddress(text, scheduler=text)
    raise UserError(f"--cluster takes {FORMS}, not '{text}'")


def cluster_text(option: str | None) -> str | None:
    """The --cluster value, else $FVTUI_CLUSTER, else None (this machine's solver pool)."""
    return option or os.environ.get(ENV) or None
