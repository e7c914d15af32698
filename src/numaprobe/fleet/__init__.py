"""A fleet: the same measurement on many machines, and the odd one found.

``report.py`` builds the fleet report from result documents gathered by any means (Slurm,
Ansible, scp, or numaprobe's own runner): a row per host with its key figures, the outliers on
each figure by a robust rule (median and MAD), the settings in which a host differs from the
fleet's majority, and for each outlier the differences that may explain it.
"""
