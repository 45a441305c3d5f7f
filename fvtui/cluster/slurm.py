"""`fvtui cluster slurm`: Dask workers as Slurm batch jobs (dask-jobqueue), for `--cluster tcp://...`.

The scheduler runs in this command's process; each of the --jobs batch jobs starts a `dask worker`
of this very Python (and fvtui) that connects to it. Options left out come from dask-jobqueue's
configuration (`~/.config/dask/jobqueue.yaml`, section `jobqueue.slurm`), else its defaults.
"""

from __future__ import annotations

import argparse
import sys
import threading

from ..child_python import ROOT
from ..errors import EXIT_CODES, UserError

EXAMPLE = ("example: fvtui cluster slurm --jobs 4 --queue compute --cores 16 --memory 64GB --walltime 24:00:00, "
           "then, elsewhere: fvtui bench --paper --cluster tcp://HOST:8786 --jobs 16.  " + EXIT_CODES)


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    cluster = sub.add_parser("cluster", help="get a Dask cluster from a batch system (for --cluster)",
                             parents=parents, epilog=EXIT_CODES)
    systems = cluster.add_subparsers(dest="system", required=True, parser_class=type(cluster))
    p = systems.add_parser(
        "slurm", help="run a Dask scheduler here and workers as Slurm jobs; prints the address for --cluster",
        description="Start a Dask scheduler in this process and submit --jobs Slurm batch jobs, each running one "
                    "Dask worker of this Python and fvtui (the job script exports PYTHONPATH to this fvtui: the "
                    "nodes need the same filesystem). Prints the scheduler address and keeps it running until "
                    "Ctrl-C, which cancels the jobs. Options left out come from dask-jobqueue's jobqueue.slurm "
                    "configuration.", epilog=EXAMPLE, parents=parents)
    p.add_argument("--jobs", type=int, required=True, metavar="N", help="batch jobs, one Dask worker each")
    p.add_argument("--queue", help="partition (#SBATCH -p)")
    p.add_argument("--account", help="account to charge (#SBATCH -A)")
    p.add_argument("--cores", type=int, help="cores per job: its worker runs that many tasks at once")
    p.add_argument("--memory", help="memory per job, e.g. 16GB")
    p.add_argument("--walltime", help="time limit per job, e.g. 24:00:00")
    p.add_argument("--host", default="", help="interface or address the scheduler listens on (default: all)")
    p.add_argument("--port", type=int, default=8786, help="scheduler port (default 8786; 0 picks a free one)")
    p.add_argument("--script", action="store_true", help="print the job script and submit nothing")


def slurm_cluster(jobs: int, queue: str | None = None, account: str | None = None, cores: int | None = None,
                  memory: str | None = None, walltime: str | None = None, host: str = "", port: int = 8786):
    """A SLURMCluster (its scheduler started here) whose job script starts one worker of this fvtui."""
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}")
    import dask
    from dask_jobqueue import SLURMCluster

    from .connect import QUIET, quiet_environment

    given = {k: v for k, v in dict(queue=queue, account=account, cores=cores, memory=memory,
                                   walltime=walltime).items() if v is not None}
    prologue = [f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]
    prologue += [f"export {name}={value}" for name, value in quiet_environment().items()]
    try:
        with dask.config.set(QUIET):
            return SLURMCluster(processes=1, python=sys.executable, job_script_prologue=prologue,
                                scheduler_options={"host": host, "port": port, "dashboard_address": ":0"}, **given)
    except ValueError as exc:  # e.g. no cores or memory given or configured
        first = str(exc).splitlines()[0].rstrip(":, ")
        raise UserError(f"fvtui cluster slurm: {first} (--cores, --memory, or jobqueue.slurm in "
                        "~/.config/dask/jobqueue.yaml)") from None
    except OSError as exc:
        raise UserError(f"fvtui cluster slurm: cannot start the scheduler on port {port}: {exc}") from None


def main(args: argparse.Namespace) -> int:
    cluster = slurm_cluster(args.jobs, args.queue, args.account, args.cores, args.memory, args.walltime, args.host,
                            args.port)
    with cluster:
        if args.script:
            print(cluster.job_script())
            return 0
        try:
            cluster.scale(jobs=args.jobs)
        except Exception as exc:  # noqa: BLE001 - sbatch missing or refusing: its own words
            raise UserError(f"fvtui cluster slurm: submitting the jobs failed: {exc}") from None
        print(f"scheduler {cluster.scheduler_address}: {args.jobs} Slurm job(s) submitted; run fvtui with "
              f"--cluster {cluster.scheduler_address} (dashboard {cluster.dashboard_link}). Ctrl-C cancels the jobs.",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("cancelling the Slurm jobs", flush=True)
    return 0
