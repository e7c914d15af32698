"""What the probes share: choosing CPUs and nodes (validated), chains, progress."""
from __future__ import annotations

from ..errors import UsageError
from .. import _core, placement
from ..progress import Progress as _Progress
from ..topology import Topology, current, format_list

LINE = 64
# Idle-latency chains use one line in every 128 bytes: the adjacent-line prefetcher fetches a
# line's 128-byte buddy with it, and a chain through both halves would find half its loads
# already cached (measured here: DRAM latency reported ~38 % low). The footprint stays far
# beyond the caches (half the lines of a buffer 8 x the last-level cache).
CHAIN_STRIDE = 128


def topology(topo: Topology | None) -> Topology:
    """The topology given, else this machine's as placement checks it (topology.current)."""
    return current(topo)


def cpu_nodes(topo: Topology, nodes=None) -> tuple[int, ...]:
    """Nodes that have usable CPUs (all of them by default), validated."""
    if nodes is None:
        nodes = tuple(n for n in topo.cpu_nodes if topo.cpus_of(n, usable=True))
    nodes = placement.check_nodes(nodes, topo, need="cpus")
    for n in nodes:
        if not topo.cpus_of(n, usable=True):
            raise UsageError(f"node {n} has no CPU this process may use; usable CPUs: "
                             f"{format_list(topo.usable_cpus)}")
    return nodes


def mem_nodes(topo: Topology, nodes=None) -> tuple[int, ...]:
    """Nodes with memory this process may allocate on (all by default), validated."""
    return placement.check_nodes(topo.usable_mems if nodes is None else nodes, topo)


def node_cpu(topo: Topology, node: int) -> int:
    """The CPU that represents a node: its last usable one (CPU 0 of a node tends to take
    more interrupts)."""
    return topo.cpus_of(node, usable=True)[-1]


def check_size(nbytes, minimum: int, what: str = "size") -> int:
    nbytes = placement._check_size(nbytes)
    if nbytes < minimum:
        raise UsageError(f"{what} must be at least {minimum} bytes, got {nbytes}")
    return nbytes


def hmat(topo: Topology, cpu_node: int, mem_node: int, key: str):
    """What the firmware declares (HMAT) from cpu_node to mem_node: ``key`` (read_latency in
    ns, read_bandwidth in MB/s...) of the first access class that lists cpu_node among its
    initiators and declares it, else None (HMAT lists only the best initiators of each
    target)."""
    for cls in ("1", "0"):
        acc = topo.node(mem_node).access.get(cls)
        if acc and cpu_node in acc["initiators"] and acc.get(key):
            return acc[key]
    return None


def llc_groups(topo: Topology) -> tuple[tuple[tuple[int, ...], int], ...]:
    """The usable CPUs grouped by the last-level cache they share (each CPU's highest data or
    unified cache), as (CPUs, cache bytes); CPUs whose caches the kernel does not list form
    one group per node, of 0 bytes."""
    usable, best = set(topo.usable_cpus), {}
    for c in topo.caches:
        if c.type == "Instruction":
            continue
        for cpu in set(c.cpus) & usable:
            if cpu not in best or c.level > best[cpu].level:
                best[cpu] = c
    groups = {(tuple(sorted(set(c.cpus) & usable)), c.size) for c in best.values()}
    for n in topo.cpu_nodes:
        rest = tuple(c for c in topo.cpus_of(n, usable=True) if c not in best)
        if rest:
            groups.add((rest, 0))
    return tuple(sorted(groups))


def llc_bytes(topo: Topology) -> int:
    """The largest cache a CPU sees (what it says; the sweep finds what is true)."""
    return max((c.size for c in topo.caches if c.type != "Instruction"), default=32 << 20)


CHAINS = ("tlb-local", "random")


def check_chain(chain: str) -> str:
    if chain not in CHAINS:
        raise UsageError(f"unknown chain {chain!r}; chains: {', '.join(CHAINS)}")
    return chain


def chain_group(pages: placement.Pages, chain: str) -> int:
    """Bytes per TLB-local group, sized to stay within the first-level data TLB's reach (64
    entries on current x86 and Arm cores): 32 huge pages (64 MiB) when the memory got 2 MiB
    pages, else 64 base pages (256 KiB); 0 for a fully random chain."""
    if check_chain(chain) == "random":
        return 0
    huge = pages.huge_fraction > 0.5 or pages.page_size >= 2 << 20
    return 32 * (2 << 20) if huge else 64 * 4096


def build_chain(mem: placement.Memory, chain: str, seed: int = 1) -> placement.Pages:
    pages = mem.pages()
    _core.chase_build(mem.address, mem.nbytes, CHAIN_STRIDE, chain_group(pages, chain), seed)
    return pages


# The probes' progress line (one step per cell) is numaprobe.progress.Progress.
Progress = _Progress
