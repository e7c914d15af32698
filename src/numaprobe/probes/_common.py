"""What the probes share: choosing CPUs and nodes (validated), chains, progress, the stopping
rule."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..errors import UsageError
from .. import _core, placement
from ..progress import Progress as _Progress
from ..stats import DEFAULT_TARGET, sample_until
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


# ------------------------------------------------------------------ the stopping rule

RULE_MAX_SAMPLES = 100  # with a rule, the most a cell takes unless told otherwise


@dataclass(frozen=True)
class Rule:
    """When a cell stops sampling (stats.sample_until): the median's interval within
    ``target`` (a fraction), ``budget`` seconds spent, or ``samples`` drawn. Every probe's
    cells (latency, bandwidth, core-to-core) take the same rule (--target-ci, --budget)."""
    target: float | None
    budget: float           # seconds for this cell (math.inf: none)
    samples: int

    def share(self, fraction: float) -> "Rule":
        """The rule for one cell of a matrix that shares the budget out."""
        return Rule(self.target, self.budget * fraction, self.samples)

    def to_dict(self) -> dict:
        return {"target": self.target, "max_samples": self.samples,
                "budget_s": None if self.budget == math.inf else self.budget}


def stopping_rule(target_ci, budget, samples) -> Rule | None:
    """The stopping rule asked for (None: a fixed count of samples), its input checked;
    ``target_ci`` defaults to DEFAULT_TARGET (2 %) when only a budget is given."""
    if target_ci is None and budget is None:
        return None
    if target_ci is not None and not (isinstance(target_ci, (int, float))
                                      and 0 < target_ci < 1):
        raise UsageError(f"target_ci must be a fraction of the median between 0 and 1 (0.02 "
                         f"for 2 %), got {target_ci!r}")
    if budget is not None and not (isinstance(budget, (int, float)) and 0 < budget < math.inf):
        raise UsageError(f"budget must be a number of seconds above 0, got {budget!r}")
    return Rule(DEFAULT_TARGET if target_ci is None else float(target_ci),
                math.inf if budget is None else float(budget), samples)


def sample(draw, rule: Rule) -> tuple[list[float], str]:
    """Samples ``draw()`` (one figure a call) under ``rule``, timing each draw: the samples
    and what ended them (stats.ENDED_BY)."""
    def timed():
        t0 = time.perf_counter()
        value = draw()
        return value, time.perf_counter() - t0
    got = sample_until(timed, target=rule.target, budget=rule.budget, max_samples=rule.samples)
    return list(got.samples), got.ended_by


def ended_text(items, stopping: dict | None, what: str = "cell") -> str | None:
    """What ended the sampling of a document's cells (or pairs), where a stopping rule did:
    one line for the text tables (None without a rule)."""
    from ..words import plural
    ended = [c["ended_by"] for c in items if c.get("ended_by")]
    if not ended:
        return None
    stop = stopping or {}
    said = {"target": "median's 95 % interval within "
                      + (f"{100 * stop['target']:g} %" if stop.get("target") else "the target"),
            "budget": "share of the time spent",
            "samples": f"{stop.get('max_samples', 'the most')} samples taken"}
    return "how sampling ended: " + ", ".join(
        f"{said.get(k, k)} ({plural(ended.count(k), what)})" for k in dict.fromkeys(ended))


def shares(cells: list, weights: dict | None) -> dict:
    """Each cell's fraction of the budget: equal, or in proportion to ``weights``."""
    if weights is None:
        return {c: 1 / len(cells) for c in cells}
    missing = [c for c in cells if c not in weights]
    if missing or not all(isinstance(weights[c], (int, float)) and weights[c] > 0
                          for c in cells):
        said = f"missing: {missing[:4]}" if missing else f"got {weights}"
        raise UsageError(f"shares needs a weight above 0 for every cell (CPU node, memory "
                         f"node); {said}")
    total = sum(weights[c] for c in cells)
    return {c: weights[c] / total for c in cells}
