"""NUMA topologies of the test guest.

One definition per topology drives both the QEMU command line (harness.qemu_command)
and NUMAPROBE_VM_SPEC, the JSON that tests inside the guest compare numaprobe against.

    description   one line, for `python -m tests.vm --list`
    nodes         [{"id", "cpus": [...], "memory_mib"}], in id order; a node with no
                  cpus is a CPU-less memory node and names the CPU node it hangs off
                  as "initiator" (used for HMAT)
    distance      SLIT matrix, distance[i][j] from node i to node j
    hmat          absent, or one entry per (CPU node, node) pair:
                  {"initiator", "target", "latency_ns", "bandwidth_mbs"}

HMAT units are those of the guest's sysfs, /sys/devices/system/node/nodeN/access0/
initiators/{read,write}_latency (ns) and {read,write}_bandwidth (MB/s): QEMU is given
latency=<latency_ns> and bandwidth=<bandwidth_mbs>M, which the guest shows unchanged.
Only the best initiator of each node appears there (access0 and access1: here always
the node itself or, for a memory node, its "initiator"); the other pairs are in the
spec only. Node sizes in the guest are a little smaller than memory_mib (node0 710 of
768 MB: the kernel's own memory; node2 503 of 512 MB).
"""

# (latency ns, bandwidth MB/s) from a CPU node to: its own DRAM, the other socket's
# DRAM, the CXL memory on its own socket, the CXL memory on the other socket.
DRAM, REMOTE, CXL, CXL_REMOTE = (100, 20480), (150, 10240), (250, 8192), (300, 6144)


def _hmat(table):
    """{(initiator, target): (latency_ns, bandwidth_mbs)} -> list of entries."""
    return [{"initiator": i, "target": t, "latency_ns": lat, "bandwidth_mbs": bw}
            for (i, t), (lat, bw) in sorted(table.items())]


TOPOLOGIES = {
    "two-socket": {
        "description": "2 nodes x 2 CPUs x 768 MiB, SLIT 10/21",
        "nodes": [
            {"id": 0, "cpus": [0, 1], "memory_mib": 768},
            {"id": 1, "cpus": [2, 3], "memory_mib": 768},
        ],
        "distance": [[10, 21],
                     [21, 10]],
    },
    "cxl": {
        "description": "2 CPU nodes x 2 CPUs x 768 MiB + 2 CPU-less 512 MiB memory "
                       "nodes (CXL-like, node2 on node0, node3 on node1), SLIT and HMAT",
        "nodes": [
            {"id": 0, "cpus": [0, 1], "memory_mib": 768},
            {"id": 1, "cpus": [2, 3], "memory_mib": 768},
            {"id": 2, "cpus": [], "memory_mib": 512, "initiator": 0},
            {"id": 3, "cpus": [], "memory_mib": 512, "initiator": 1},
        ],
        "distance": [[10, 21, 24, 28],
                     [21, 10, 28, 24],
                     [24, 28, 10, 28],
                     [28, 24, 28, 10]],
        "hmat": _hmat({
            (0, 0): DRAM, (0, 1): REMOTE, (0, 2): CXL, (0, 3): CXL_REMOTE,
            (1, 0): REMOTE, (1, 1): DRAM, (1, 2): CXL_REMOTE, (1, 3): CXL,
        }),
    },
}
