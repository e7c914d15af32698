"""A Ray cluster on this machine, on loopback only: for trying the fleet out (``numaprobe fleet
quick --local 3``) and for the tests.

Every node (a head and N - 1 more, each a raylet of its own with its own resources and, if
asked, its own environment) binds to 127.0.0.1; there is no dashboard and no usage statistics.
Left alone, Ray resolves "127.0.0.1" to the machine's external address when a driver connects
(services.resolve_ip_for_localhost); RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, Ray's switch for a
machine that may not form a multi-machine cluster, makes it keep loopback. The nodes share this
machine's CPUs, so the runner measures them one at a time (they share a boot id).
"""
from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["LOOPBACK", "RAY_ENV", "local_cluster"]

LOOPBACK = "127.0.0.1"
# Set in this process (and so in every node it starts) while a local cluster runs.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# A node that stops answering is declared dead after about period x threshold.
_SYSTEM = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}


@contextmanager
def local_cluster(nodes: int, *, cpus: int | None = None, env=None):
    """A cluster of ``nodes`` Ray nodes on 127.0.0.1, yielded as the ray.cluster_utils.Cluster
    (its ``address`` for ``--address``; ``in_order``: its nodes, the head first), shut down on
    leaving. ``cpus``: the CPUs each node
    offers (default all of this machine's usable CPUs: a fleet task holds all of a node's);
    ``env``: {node index: {name: value}} for a node's environment (index 0 is the head)."""
    env = env or {}
    cpus = cpus or len(os.sched_getaffinity(0))
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)   # before Ray is imported: it reads them then
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster
    was = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # where Ray was imported before (a test run)
    cluster = None
    try:
        def args(i):
            a = {"num_cpus": cpus, "node_ip_address": LOOPBACK,
                 "resources": {f"numaprobe_local_{i}": 1}}
            if env.get(i):
                a["env_vars"] = {k: str(v) for k, v in env[i].items()}
            return a
        head = args(0) | {"include_dashboard": False, "_system_config": _SYSTEM}
        cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
        cluster.in_order = [cluster.head_node]  # the nodes as asked (Ray keeps a set)
        for i in range(1, nodes):
            cluster.in_order.append(cluster.add_node(**args(i)))
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if cluster is not None:
            cluster.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = was
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
