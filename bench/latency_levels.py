"""Benchmark: numaprobe's latency sweep (cache levels, DRAM latency and its spread) against the
topology's cache sizes and an independent C pointer chase, in one run.

Prints:
- the levels each of several sweeps finds (latency, effective size) next to the sizes the
  topology reports for the sweep's CPU;
- the spread of DRAM latency over the repeats (CV of each sweep's DRAM level, of all the
  samples at the largest size, and of the medians of interleaved idle-latency runs next to the
  reference's over the same rounds) against the goal CV <= 2 %: the reference shows how much
  of the spread is the machine's own;
- numaprobe / reference at a DRAM size and an L2 size. The reference is ~40 lines of C written
  here and built with the system cc: mmap, MADV_HUGEPAGE (numaprobe also asks for transparent
  huge pages; both sides print what they got), one random cycle over every 64-byte line
  (stride and multichase's TLB-locality groups can be given: bench/quick_precision.py), N
  dependent loads timed with clock_gettime(CLOCK_MONOTONIC), first pass dropped;
  it runs pinned (sched_setaffinity) to the CPU numaprobe chases from. Its fully random cycle
  matches numaprobe's chain="random" (apples-to-apples); numaprobe's default "tlb-local" chain
  walks one 2 MiB page (or 256 KiB) at a time, so it can only be as fast or faster.
Rounds alternate numaprobe and the reference, order flipped every round.

    python bench/latency_levels.py [--repeats 3] [--rounds 5] [--loads 1048576]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numaprobe
from _common import Noisy
from numaprobe.probes import latency, latency_sweep

REFERENCE_C = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#define HOP p = *(void **)p;
static uint64_t x = 88172645463325252ull;
static size_t below(size_t n) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x % n; }
static void shuffle(size_t *v, size_t n) /* Fisher-Yates */
{
    for (size_t i = n; i > 1; i--) { size_t j = below(i), t = v[i - 1]; v[i - 1] = v[j]; v[j] = t; }
}
/* ./chase SIZE LOADS REPS [STRIDE [GROUP]]: one cycle through every STRIDE-th byte (default
 * 64); with GROUP bytes (multichase's TLB locality), the groups in random order and the lines
 * within each in random order, else one random order over all (GROUP 0, the default). */
int main(int argc, char **argv)
{
    size_t size = strtoull(argv[1], 0, 0), loads = strtoull(argv[2], 0, 0) / 8 * 8;
    int reps = atoi(argv[3]);
    size_t stride = argc > 4 ? strtoull(argv[4], 0, 0) : 64;
    size_t group = argc > 5 ? strtoull(argv[5], 0, 0) / stride : 0;
    size_t huge = 2 << 20, n = size / stride;
    if (stride < sizeof(void *) || n < 2)
        return 2;
    if (group == 0 || group > n)
        group = n;
    char *raw = mmap(NULL, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return 1;
    char *buf = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(buf, size, MADV_HUGEPAGE);
    memset(buf, 1, size);
    size_t groups = (n + group - 1) / group, *gs = malloc(groups * sizeof *gs);
    size_t *order = malloc(n * sizeof *order), k = 0;
    for (size_t g = 0; g < groups; g++)
        gs[g] = g;
    shuffle(gs, groups);
    for (size_t g = 0; g < groups; g++) {
        size_t first = gs[g] * group, count = first + group <= n ? group : n - first;
        for (size_t i = 0; i < count; i++)
            order[k + i] = first + i;
        shuffle(order + k, count);
        k += count;
    }
    for (size_t i = 0; i < n; i++) /* each to the next in the order: one cycle through all */
        *(void **)(buf + order[i] * stride) = buf + order[(i + 1) % n] * stride;
    void *p = buf;
    for (int r = -1; r < reps; r++) { /* r = -1 warms caches and TLBs, not printed */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t i = 0; i < loads; i += 8) { HOP HOP HOP HOP HOP HOP HOP HOP }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r >= 0)
            printf("%.4f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / loads);
    }
    char line[256];
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "AnonHugePages:", 14))
            printf("# huge %lld\n", atoll(line + 14) * 1024);
    printf("# end %p\n", p); /* keeps the chase alive */
    return 0;
}
"""



def size_text(n):
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.4g} {unit}"
    return f"{n} B"


def cv(xs):
    return statistics.pstdev(xs) / statistics.fmean(xs) * 100 if len(xs) > 1 else 0.0


def goal(c):
    return "meets the goal <= 2 %" if c <= 2.0 else "ABOVE the goal 2 %"


def build_reference(tmp):
    src, exe = os.path.join(tmp, "chase.c"), os.path.join(tmp, "chase")
    with open(src, "w") as f:
        f.write(REFERENCE_C)
    cmd = ["cc", "-O2", "-o", exe, src]
    subprocess.run(cmd, check=True)
    return exe, " ".join(cmd)


def run_reference(exe, cpu, size, loads, samples, stride=64, group=0):
    """The C chase pinned to ``cpu``: its ns per load for each sample, and the fraction of its
    chain on huge pages. ``stride`` and ``group`` (bytes; 0: one random order over all) as
    multichase's -s and -T (its defaults: 256 and 256 KiB)."""
    out = subprocess.run([exe, str(size), str(loads), str(samples), str(stride), str(group)],
                         capture_output=True, text=True, check=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, {cpu})).stdout
    ns = [float(x) for x in out.splitlines() if x and x[0] != "#"]
    huge = int(out.split("# huge ")[1].split()[0]) if "# huge " in out else 0
    return ns, min(huge / size, 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="sweeps")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds against the reference")
    ap.add_argument("--samples", type=int, default=5, help="samples per point and per reference run")
    ap.add_argument("--loads", type=int, default=1 << 20, help="loads per sample")
    ap.add_argument("--points", action="store_true", help="also print every point of every sweep")
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    node = topo.cpu_nodes[0]
    usable = list(topo.usable_cpus)
    print(f"numaprobe latency sweep vs topology and a C pointer chase: {topo.settings.cpu_model}, "
          f"nodes {numaprobe.format_list(topo.node_ids)}, usable CPUs {numaprobe.format_list(usable)}",
          flush=True)

    noise_np, noise_ref = Noisy(usable), Noisy(usable)
    sweeps = []
    for r in range(args.repeats):
        print(f"sweep {r + 1}/{args.repeats}".ljust(40), file=sys.stderr, end="\r")
        sweeps.append(noise_np.measure(lambda: latency_sweep(node, samples=args.samples, loads=args.loads)))
    cpu, mem = sweeps[0].cpu, sweeps[0].mem_node
    sizes = [s for s, _ in sweeps[0].points]
    print(f"sweep: CPU {cpu}, memory node {mem}, {size_text(sizes[0])} .. {size_text(sizes[-1])}, "
          f"{len(sizes)} sizes, {args.repeats} repeats, {sweeps[0].chain} chain, "
          f"{args.samples} samples x {args.loads} loads a point")
    if args.points:
        print("  size      " + "".join(f"  repeat {r + 1}" for r in range(len(sweeps))) + "   (median ns)")
        for k, size in enumerate(sizes):
            print(f"  {size_text(size):>10}" + "".join(f"{s.points[k][1].median:10.2f}" for s in sweeps))
    reported = {c.level: c.size for c in topo.caches if cpu in c.cpus and c.type in ("Data", "Unified")}
    print("levels found, per repeat: ns | effective size; reported = what the topology says")
    names = sorted({lv.name for s in sweeps for lv in s.levels}, key=lambda n: (n == "DRAM", int(n[1:]) if n != "DRAM" else 0))
    for name in names:
        found = [next((lv for lv in s.levels if lv.name == name), None) for s in sweeps]
        ns = "".join(f"{lv.ns:9.2f}" if lv else f"{'-':>9}" for lv in found)
        eff = "".join(f"{size_text(lv.effective_size) if lv and lv.effective_size else '-':>10}"
                      for lv in found)
        rep = reported.get(int(name[1:])) if name != "DRAM" else None
        print(f"  {name:<5}{ns}  |{eff}   reported {size_text(rep) if rep else '-'}")

    dram = [next((lv.ns for lv in s.levels if lv.name == "DRAM"), None) for s in sweeps]
    dram = [d for d in dram if d is not None]
    if dram:
        print(f"DRAM level over {len(dram)} sweeps: {', '.join(f'{d:.2f}' for d in dram)} ns, "
              f"CV {cv(dram):.2f} %  {goal(cv(dram))}")
    else:
        print("DRAM level: NOT FOUND in any sweep")
    last = [s.points[-1][1] for s in sweeps]
    pooled = [x for p in last for x in p.samples]
    print(f"samples at the largest size ({size_text(sizes[-1])}), {len(pooled)} pooled: median "
          f"{statistics.median(pooled):.2f} ns, min {min(pooled):.2f}, max {max(pooled):.2f}, "
          f"CV {cv(pooled):.2f} %  {goal(cv(pooled))}  (per repeat: "
          f"{', '.join(f'{100 * p.cv:.2f} %' for p in last)})")

    l2 = reported.get(2, 512 << 10)
    ref_sizes = [("DRAM", sizes[-1]), ("L2", l2 // 2)]
    with tempfile.TemporaryDirectory() as tmp:
        exe, cc = build_reference(tmp)
        res = {(k, who): [] for k, _ in ref_sizes for who in ("random", "tlb-local", "ref")}
        per_round = {key: [] for key in res}  # each round's median: the spread over repeats
        huge = {}
        for r in range(args.rounds):
            print(f"reference round {r + 1}/{args.rounds}".ljust(40), file=sys.stderr, end="\r")
            for k, size in ref_sizes:
                for who in (("np", "ref") if r % 2 == 0 else ("ref", "np")):
                    if who == "ref":
                        ns, huge[(k, "ref")] = noise_ref.measure(
                            lambda: run_reference(exe, cpu, size, args.loads, args.samples))
                        res[(k, "ref")] += ns
                        per_round[(k, "ref")].append(statistics.median(ns))
                        continue
                    for chain in ("random", "tlb-local"):
                        lr = noise_np.measure(lambda: latency(node, mem, size=size, chain=chain,
                                                              samples=args.samples, loads=args.loads))
                        res[(k, chain)] += lr.ns.samples
                        per_round[(k, chain)].append(lr.ns.median)
                        huge[(k, "np")] = lr.pages.get("huge_fraction", 0.0)
    print(" " * 40, file=sys.stderr, end="\r")
    print(f"\nreference: {cc}; ./chase SIZE {args.loads} {args.samples}, pinned to CPU {cpu}, "
          f"{args.rounds} alternating rounds")
    for k, size in ref_sizes:
        ref = statistics.median(res[(k, "ref")])
        print(f"{k} size {size_text(size)} (huge pages: numaprobe {100 * huge[(k, 'np')]:.0f} %, "
              f"reference {100 * huge[(k, 'ref')]:.0f} %)")
        for who, label in (("ref", "reference (C chase)"), ("random", "numaprobe random"),
                           ("tlb-local", "numaprobe tlb-local")):
            xs = res[(k, who)]
            ratio = "" if who == "ref" else f"   ratio numaprobe / reference {statistics.median(xs) / ref:.3f}x"
            print(f"  {label:<21} median {statistics.median(xs):8.2f} ns  min {min(xs):8.2f}  "
                  f"max {max(xs):8.2f}  cv {cv(xs):5.2f} %  cv over rounds "
                  f"{cv(per_round[(k, who)]):5.2f} %{ratio}")
    mine, ref = cv(per_round[("DRAM", "tlb-local")]), cv(per_round[("DRAM", "ref")])
    print(f"DRAM latency over {args.rounds} interleaved repeats (each the median of its "
          f"{args.samples} samples): numaprobe CV {mine:.2f} %  {goal(mine)}; the reference on "
          f"the same machine, same minutes: CV {ref:.2f} %  ({mine / ref if ref else float('nan'):.2f}x)")
    print(f"noise during numaprobe: {noise_np.text()}; during the reference: {noise_ref.text()}")


if __name__ == "__main__":
    main()
