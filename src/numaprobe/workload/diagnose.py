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


def bottleneck(d: dict) -> list[str]:
    """What bounds a layout, from all that ``infer --profile --perturb`` measured of it (its
    document entry ``d``): whether the perturbation confirms the roofline's bound, and which
    op type takes the time. The roofline's and the perturbation's own words are in the entry
    beside these; these lines say what the two together mean."""
    out = []
    roof = (d.get("roofline") or {}).get("bound")
    p = d.get("perturbation") or {}
    loads = {x["load"]: x for x in p.get("loads") or []}
    traffic, cache = loads.get("traffic, full"), loads.get("cache")

    def cost(x):
        r = x["ratio"]
        return (f"{x['load']} ({x['gbs']:.1f} GB/s) cost {100 * (1 - r[0]):.0f} % "
                f"[{100 * (1 - r[2]):.0f}, {100 * (1 - r[1]):.0f}]")

    def hurt(x):
        return x is not None and x["verdict"] == "slower"

    def unmoved(x):
        return x is not None and x["verdict"] == "no significant change"

    if roof and p.get("measured") and traffic:
        if roof == "memory" and hurt(traffic):
            out.append(f"memory-bound, and the perturbation confirms it: {cost(traffic)}")
        elif roof == "memory" and unmoved(traffic):
            out.append("the roofline says memory-bound, but memory traffic beside it changed "
                       f"nothing measurable ({traffic['detail']}): the weights may be served "
                       "from cache more than the bandwidth ceiling assumes")
        elif roof == "compute" and unmoved(traffic):
            out.append("compute-bound, and the perturbation agrees: memory traffic beside it "
                       f"changed nothing measurable ({traffic['detail']})")
        elif roof == "compute" and hurt(traffic):
            out.append(f"the roofline says compute-bound, yet {cost(traffic)}: memory "
                       "latency or bandwidth matters too (a mixed bound)")
        elif roof == "neither" and hurt(traffic):
            out.append(f"no ceiling is near, yet {cost(traffic)}: the time goes to memory "
                       "accesses that do not stream (latency-bound), not to bandwidth")
        elif roof == "neither" and unmoved(traffic) and not hurt(cache):
            out.append("no ceiling is near and memory traffic changed nothing measurable: "
                       "the time goes to overhead (synchronisation, small ops, the framework)")
        if hurt(cache) and not hurt(traffic):
            out.append(f"{cost(cache)}: its working set lives in the last-level cache")
    elif p and not p.get("measured"):
        out.append(f"perturbation: {p.get('why')}")
    prof = d.get("profile") or {}
    fams = sorted((prof.get("families") or {}).items(), key=lambda kv: -kv[1].get("share", 0))
    if fams and fams[0][1].get("share", 0) >= 0.5:
        name, f = fams[0]
        rate = (f" at {f['ops_per_s'] / 1e9:.3g} G op/s" if f.get("ops_per_s") else "")
        out.append(f"{name} takes {100 * f['share']:.0f} % of the kernel time{rate}: that op "
                   "type is where a faster kernel, precision or layout pays")
    return out
