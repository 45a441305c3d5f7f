"""Scale-out on Dask distributed: solver work and benchmark sessions as tasks on a cluster.

`--cluster tcp://HOST:PORT` (a running scheduler) or `local:N` (a LocalCluster started here);
without it the local SolverPool stays the default. The client side (address, connect, solver)
imports Dask only when a cluster is asked for; `tasks` is what the workers run.
"""

from .address import ClusterAddress, parse_address

__all__ = ["ClusterAddress", "parse_address"]
