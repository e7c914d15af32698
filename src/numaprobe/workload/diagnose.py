"""Why a layout ran as it did, in plain words, from its telemetry."""
from __future__ import annotations

from ..topology import Topology, format_list, parse_list

REMOTE_SHARE = 0.10       # more than 10 % of a worker's memory off its nodes is worth saying
MIGRATIONS_PER_S = 100    # per worker
NOISE_SHARE = 0.05


def diagnose(run, topo: Topology) -> list[str]:
    out = []
    seconds = max((i.window_ns for i in run.instances), default=0) / 1e9 or 1.0
    usable = len(topo.usable_cpus)
    total_threads = 0
    for i in run.instances:
        inst = i.instance
        cpus = parse_list(inst["cpus"])
        home = set(parse_list(inst["nodes"])) if inst["policy"] in ("bind", "interleave") and inst["nodes"] \
            else {topo.node_of(c) for c in cpus}
        mem = {int(n): b for n, b in i.memory.items()}
        total = sum(mem.values())
        away = sum(b for n, b in mem.items() if n not in home)
        if total and away / total > REMOTE_SHARE and len(topo.nodes) > 1:
            where = ", ".join(f"node {n}" for n in sorted(mem) if n not in home and mem[n])
            out.append(f"{100 * away / total:.0f}% of worker {i.index}'s memory is on {where} "
                       f"while it runs on node(s) {format_list({topo.node_of(c) for c in cpus})}")
        mig = i.counters.get("migrations")
        if mig is not None and mig / seconds > MIGRATIONS_PER_S:
            out.append(f"threads of worker {i.index} migrated {mig / seconds:,.0f} times per "
                       "second (not pinned: caches are lost on every move)")
        # ONNX Runtime's threads plus the worker's own: more than its CPUs means waiting.
        busy_threads = inst["intra"] or i.threads
        total_threads += busy_threads
        if inst["intra"] == 0 and i.threads > len(cpus):
            out.append(f"worker {i.index} runs {i.threads} threads on {len(cpus)} CPU(s): "
                       "ONNX Runtime sized its own pool, ignoring the CPU mask")
        elif busy_threads > len(cpus):
            out.append(f"worker {i.index}: {busy_threads} threads on {len(cpus)} CPU(s)")
        if i.count:
            vol = i.counters["voluntary_switches"] / i.count
            invol = i.counters["involuntary_switches"] / i.count
            if not inst["spin"] and vol > 10:
                out.append(f"worker {i.index}: spinning is off, {vol:,.0f} voluntary context "
                           "switches per inference (threads sleep and wake for every operator)")
            if invol > 5:
                out.append(f"worker {i.index}: {invol:,.1f} involuntary context switches per "
                           "inference: its threads were preempted (CPU contention)")
    if run.mode != "single" and total_threads > usable:
        out.append(f"{total_threads} threads on {usable} usable CPUs: oversubscribed")
    if run.noise is not None and run.noise.foreign_fraction > NOISE_SHARE:
        out.append(f"noisy machine: other processes used {100 * run.noise.foreign_fraction:.0f}% "
                   "of the CPUs during the run")
    if run.machine.get("numastat"):
        miss = sum(d.get("numa_miss", 0) for d in run.machine["numastat"].values())
        hit = sum(d.get("numa_hit", 0) for d in run.machine["numastat"].values())
        if hit + miss and miss / (hit + miss) > REMOTE_SHARE:
            out.append(f"{100 * miss / (hit + miss):.0f}% of the machine's page allocations "
                       "during the run missed their preferred node (numa_miss)")
    return out
