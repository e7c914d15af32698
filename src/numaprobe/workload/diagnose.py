"""Why a layout ran as it did, in plain words, from its telemetry."""
from __future__ import annotations

from ..topology import Topology, format_list, parse_list
from . import engines

REMOTE_SHARE = 0.10       # more than 10 % of a worker's memory off its nodes is worth saying
MIGRATIONS_PER_S = 100    # per worker
NOISE_SHARE = 0.05


def diagnose(run, topo: Topology) -> list[str]:
    """Plain-word reasons for what ``run`` measured. A run merged from rounds holds each worker
    once per round: counters are summed over the rounds, so every worker is judged once."""
    out = []
    usable = len(topo.usable_cpus)
    workers: dict[int, list] = {}
    for i in run.instances:
        workers.setdefault(i.index, []).append(i)
    total_threads = 0
    for index, rounds in sorted(workers.items()):
        last = rounds[-1]
        inst = last.instance
        seconds = sum(i.window_ns for i in rounds) / 1e9 or 1.0
        cpus = parse_list(inst["cpus"])
        home = set(parse_list(inst["nodes"])) if inst["policy"] in ("bind", "interleave") and inst["nodes"] \
            else {topo.node_of(c) for c in cpus}
        mem = {int(n): b for n, b in last.memory.items()}
        total = sum(mem.values())
        away = sum(b for n, b in mem.items() if n not in home)
        if total and away / total > REMOTE_SHARE and len(topo.nodes) > 1:
            where = ", ".join(f"node {n}" for n in sorted(mem) if n not in home and mem[n])
            out.append(f"{100 * away / total:.0f}% of worker {index}'s memory is on {where} "
                       f"while it runs on node(s) {format_list({topo.node_of(c) for c in cpus})}")
        migs = [i.counters.get("migrations") for i in rounds]
        if None not in migs and sum(migs) / seconds > MIGRATIONS_PER_S:
            out.append(f"threads of worker {index} migrated {sum(migs) / seconds:,.0f} times per "
                       "second (not pinned: caches are lost on every move)")
        # Threads that ran for a tenth of the window or more compete for the CPUs; idle pools
        # (a BLAS library's, say) do not. Documents from before busy_threads: the engine's.
        counted = [i.busy_threads for i in rounds if i.busy_threads is not None]
        busy = max(counted) if counted else (inst["intra"] or max(i.threads for i in rounds))
        total_threads += busy
        if busy > len(cpus):
            title = engines.get(inst.get("engine")).title
            out.append(f"worker {index}: {busy} busy threads on {len(cpus)} CPU(s)"
                       + (f": {title} sized its own pool, beyond the CPU mask"
                          if inst["intra"] == 0 else ""))
        count = sum(i.count for i in rounds)
        if count:
            vol = sum(i.counters["voluntary_switches"] for i in rounds) / count
            invol = sum(i.counters["involuntary_switches"] for i in rounds) / count
            # As the engine resolved it (OpenVINO has no such setting: None); older
            # documents: as asked.
            spin = (last.engine or {}).get("spin", inst["spin"])
            if spin is False and vol > 10:
                out.append(f"worker {index}: spinning is off, {vol:,.0f} voluntary context "
                           "switches per inference (threads sleep and wake for every operator)")
            if invol > 5:
                out.append(f"worker {index}: {invol:,.1f} involuntary context switches per "
                           "inference: its threads were preempted (CPU contention)")
    if run.mode != "single" and total_threads > usable:
        out.append(f"{total_threads} busy threads on {usable} usable CPUs: oversubscribed")
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
