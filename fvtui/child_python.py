"""Child Python processes that run this very fvtui: solver workers, benchmark sessions, Slurm's Dask workers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding the fvtui package
CLI = "from fvtui.cli import main; sys.exit(main())"  # `fvtui ...` (argv after the code)


def python_running(code: str) -> list[str]:
    """`python -c code` with this fvtui first on sys.path. `-c` and `-m` put the working directory there: a
    child started from a folder holding another fvtui (a checkout of another version) once ran its code."""
    return [sys.executable, "-c", f"import sys; sys.path[0] = {ROOT!r}; {code}"]
