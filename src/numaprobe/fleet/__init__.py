"""A fleet: the same measurement on many machines, and the odd one found.

- ``report.py`` builds the fleet report from result documents gathered by any means (Slurm,
  Ansible, scp, or the runner): a row per host with its key figures, the outliers on each
  figure by a robust rule (median and MAD), the settings in which a host differs from the
  fleet's majority, and for each outlier the differences that may explain it;
- ``runner.py`` runs one numaprobe command on every node of a Ray cluster (``numaprobe fleet
  quick --address``) and reports what came back, node by node;
- ``task.py`` is what runs on each node (standard library only, shipped by value);
- ``cluster.py`` starts a Ray cluster on this machine, on loopback only (``--local N``, tests).
"""
