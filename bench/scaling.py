"""Benchmark: how bandwidth and core-to-core latency scale over the CPUs of a node, numaprobe
against independent C references in the same run. Meant for machines with many cores (this
project's own 2-core VM shows only the first two points of each curve).

Prints:
- bandwidth by threads (1, 2, 4, ... all CPUs of the first CPU node; threads placed one per
  core first): numaprobe's read, triad and copy_nt in GB/s, next to a STREAM-style OpenMP
  reference (~50 lines of C built here with `cc -O3 -march=native -fopenmp`, the way STREAM is
  built; threads bound to the same CPUs with OMP_PLACES; read = a sum reduction, triad =
  a[i] = b[i] + s * c[i], bytes counted as STREAM counts them, without write-allocate), and
  the ratio numaprobe / reference of the medians; where the curve stops rising;
- core-to-core latency from the first CPU to every other CPU, numaprobe against a C reference
  (two pinned pthreads bounce a line with compare-and-swap, clock_gettime around N round trips,
  halved), grouped by what the pair shares (SMT core, last-level cache, package).
Rounds alternate numaprobe and the references.

    python bench/scaling.py [--rounds 3] [--reps 5] [--c2c-rounds 20000]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numaprobe
from _common import Noisy, spread
from numaprobe.probes import c2c_matrix, run_bandwidth
from numaprobe.topology import human_bytes

STREAM_C = r"""
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static double *array(size_t n)
{
    size_t bytes = (n * sizeof(double) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    double *p = aligned_alloc(2u << 20, bytes);
    if (p)
        madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
int main(int argc, char **argv)
{
    size_t n = strtoull(argv[1], 0, 0);
    int reps = atoi(argv[2]);
    double *a = array(n), *b = array(n), *c = array(n), s = 3.0, sum = 0;
    if (!a || !b || !c)
        return 1;
#pragma omp parallel for schedule(static) /* first touch by the thread that uses the page */
    for (size_t i = 0; i < n; i++) {
        a[i] = 1.0; b[i] = 2.0; c[i] = 0.0;
    }
    for (int r = -1; r < reps; r++) { /* r = -1 warms up, not printed */
        double t0 = omp_get_wtime(), x = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : x)
        for (size_t i = 0; i < n; i++)
            x += a[i];
        double t1 = omp_get_wtime();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++)
            c[i] = b[i] + s * a[i];
        double t2 = omp_get_wtime();
        sum += x + c[n / 2];
        if (r >= 0)
            printf("read %.4f\ntriad %.4f\n", 8.0 * n / (t1 - t0) / 1e9, 24.0 * n / (t2 - t1) / 1e9);
    }
    printf("# %g\n", sum); /* keeps the loops alive */
    return 0;
}
"""

C2C_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static _Alignas(64) volatile long line;
static long rounds;
static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}
static void *pong(void *arg)
{
    pin((int)(long)arg);
    __sync_bool_compare_and_swap(&line, -1, 0); /* placed: the ping may start */
    for (long i = 0; i < rounds; i++) /* waits for an odd value, answers with the next even one */
        while (!__sync_bool_compare_and_swap(&line, 2 * i + 1, 2 * i + 2))
            ;
    return NULL;
}
int main(int argc, char **argv)
{
    int a = atoi(argv[1]), b = atoi(argv[2]), samples = atoi(argv[4]);
    rounds = atol(argv[3]);
    pin(a);
    for (int s = -1; s < samples; s++) { /* s = -1 warms up, not printed */
        pthread_t t;
        line = -1;
        pthread_create(&t, NULL, pong, (void *)(long)b);
        while (line != 0) /* until the pong thread runs on its CPU */
            ;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < rounds; i++)
            while (!__sync_bool_compare_and_swap(&line, 2 * i, 2 * i + 1))
                ;
        while (line != 2 * rounds)
            ;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        pthread_join(t, NULL);
        if (s >= 0)
            printf("%.3f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / rounds / 2);
    }
    return 0;
}
"""


def build(tmp, name, source, flags):
    src, exe = os.path.join(tmp, name + ".c"), os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(source)
    cmd = ["cc", *flags, "-o", exe, src]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"reference {name} not built ({' '.join(cmd)}): {r.stderr.strip()[:300]}")
        return None, " ".join(cmd)
    return exe, " ".join(cmd)


def one_per_core_first(topo, cpus):
    """The CPUs ordered so that every core gets its first CPU before any core gets a second."""
    ranked = []
    for c in cpus:
        sib = next((core for core in topo.cores if c in core), (c,))
        ranked.append((sorted(sib).index(c), c))
    return [c for _, c in sorted(ranked)]


def thread_counts(n):
    counts, t = [], 1
    while t < n:
        counts.append(t)
        t *= 2
    return counts + [n]


def shares(topo, a, b):
    if any(a in core and b in core for core in topo.cores):
        return "same core (SMT)"
    llc = max((c.level for c in topo.caches), default=0)
    if any(c.level == llc and a in c.cpus and b in c.cpus for c in topo.caches):
        return f"same L{llc}"
    pa, pb = topo.cpu(a).package, topo.cpu(b).package
    return "same package" if pa == pb else "other package"


def bandwidth_part(args, topo, node, cpus, tmp, noise_np, noise_ref):
    exe, cc = build(tmp, "stream", STREAM_C, ["-O3", "-march=native", "-fopenmp"])
    counts = thread_counts(len(cpus))
    kernels = ("read", "triad", "copy_nt")
    np_res = {(k, t): [] for k in kernels for t in counts}
    ref_res = {(k, t): [] for k in ("read", "triad") for t in counts}
    per_thread = {}
    for r in range(args.rounds):
        for t in counts:
            print(f"bandwidth round {r + 1}/{args.rounds}, {t} threads".ljust(50), file=sys.stderr, end="\r")
            # numaprobe first in round 1, so the reference always gets the same array size
            order = ("np", "ref") if r % 2 == 0 else ("ref", "np")
            for who in order:
                if who == "np":
                    for k in kernels:
                        res = noise_np.measure(lambda: run_bandwidth(
                            cpus[:t], [node] * t, k, reps=args.reps, topology=topo))
                        np_res[(k, t)].append(res.gbs.median)
                        per_thread[t] = res.bytes_per_thread
                elif exe:
                    n = per_thread.get(t, 0) // 8 * t or (256 << 20) // 8
                    env = dict(os.environ, OMP_NUM_THREADS=str(t), OMP_PROC_BIND="close",
                               OMP_PLACES=",".join(f"{{{c}}}" for c in cpus[:t]))
                    out = noise_ref.measure(lambda: subprocess.run(
                        [exe, str(n), str(args.reps)], env=env, capture_output=True, text=True,
                        check=True).stdout)
                    for k in ("read", "triad"):
                        xs = [float(line.split()[1]) for line in out.splitlines() if line.startswith(k + " ")]
                        ref_res[(k, t)].append(statistics.median(xs))
    print(" " * 50, file=sys.stderr, end="\r")
    print(f"\nbandwidth by threads, CPU node {node} -> memory node {node}, CPUs in the order "
          f"{numaprobe.format_list(cpus) if len(cpus) < 3 else ','.join(map(str, cpus))}; "
          f"{human_bytes(per_thread[counts[0]])} per array in all, split over the threads; median of "
          f"{args.rounds} rounds x median of {args.reps} reps, GB/s")
    if exe:
        print(f"reference: {cc}, OMP_PROC_BIND=close, OMP_PLACES = the same CPUs")
    print(f"{'threads':>7}  {'read':>8} {'ref':>8} {'ratio':>6}   {'triad':>8} {'ref':>8} {'ratio':>6}"
          f"   {'copy_nt':>8}   read/thread")
    for t in counts:
        row = f"{t:>7}"
        for k in ("read", "triad"):
            m = statistics.median(np_res[(k, t)])
            ref = statistics.median(ref_res[(k, t)]) if ref_res[(k, t)] else None
            row += f"  {m:8.1f} {ref:8.1f} {m / ref:5.2f}x " if ref else f"  {m:8.1f} {'-':>8} {'-':>6} "
        row += f"  {statistics.median(np_res[('copy_nt', t)]):8.1f}"
        row += f"   {statistics.median(np_res[('read', t)]) / t:8.1f}"
        print(row)
    for k in kernels:
        meds = [statistics.median(np_res[(k, t)]) for t in counts]
        best = max(meds)
        knee = next(t for t, m in zip(counts, meds) if m >= 0.9 * best)
        print(f"{k}: peak {best:.1f} GB/s; 90 % of it from {knee} thread(s); "
              f"{meds[0]:.1f} GB/s on one thread, x{best / meds[0]:.1f} at the peak")
    for k in ("read", "triad"):
        ratios = [statistics.median(np_res[(k, t)]) / statistics.median(ref_res[(k, t)])
                  for t in counts if ref_res[(k, t)]]
        if ratios:
            print(f"{k}: numaprobe / reference over the thread counts: min {min(ratios):.2f}x, "
                  f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x (goal >= 1.00x)")


def c2c_part(args, topo, node, cpus, tmp, noise_np, noise_ref):
    exe, cc = build(tmp, "c2c", C2C_C, ["-O2", "-pthread"])
    first, others = cpus[0], sorted(cpus[1:])
    np_ns = {b: [] for b in others}
    ref_ns = {b: [] for b in others}
    for r in range(args.rounds):
        print(f"core-to-core round {r + 1}/{args.rounds}".ljust(50), file=sys.stderr, end="\r")
        for who in (("np", "ref") if r % 2 == 0 else ("ref", "np")):
            for b in others:
                if who == "np":
                    m = noise_np.measure(lambda: c2c_matrix([first, b], rounds=args.c2c_rounds,
                                                            samples=3, topology=topo, progress=False))
                    np_ns[b].append(m.ns[(min(first, b), max(first, b))].median)
                elif exe:
                    out = noise_ref.measure(lambda: subprocess.run(
                        [exe, str(first), str(b), str(args.c2c_rounds), "3"], capture_output=True,
                        text=True, check=True).stdout)
                    ref_ns[b].append(statistics.median(float(x) for x in out.split()))
    print(" " * 50, file=sys.stderr, end="\r")
    print(f"\ncore-to-core latency from CPU {first}, ns one way (median of {args.rounds} rounds; "
          f"{args.c2c_rounds} round trips a sample)")
    if exe:
        print(f"reference: {cc}; compare-and-swap ping-pong, clock_gettime, halved")
    groups = {}
    for b in others:
        groups.setdefault(shares(topo, first, b), []).append(b)
    ratios = []
    for g, bs in groups.items():
        np_m = [statistics.median(np_ns[b]) for b in bs]
        line = f"  {g:<16} CPUs {numaprobe.format_list(bs):<12} numaprobe {spread(np_m)}"
        if exe:
            ref_m = [statistics.median(ref_ns[b]) for b in bs]
            ratios += [x / y for x, y in zip(np_m, ref_m)]
            line += f"\n  {'':<16} {'':<17} reference {spread(ref_m)}"
        print(line)
    if ratios:
        print(f"c2c numaprobe / reference per pair: min {min(ratios):.2f}x, median "
              f"{statistics.median(ratios):.2f}x, max {max(ratios):.2f}x (numaprobe removes the "
              "clock overhead; the reference does not)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--reps", type=int, default=5, help="bandwidth passes a measurement")
    ap.add_argument("--c2c-rounds", type=int, default=20000, help="round trips a c2c sample")
    ap.add_argument("--skip", choices=("bandwidth", "c2c"), action="append", default=[])
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    node = topo.cpu_nodes[0]
    cpus = one_per_core_first(topo, topo.cpus_of(node, usable=True))
    print(f"scaling over the CPUs of node {node}: {topo.settings.cpu_model}, {len(topo.cores)} "
          f"cores, usable CPUs {numaprobe.format_list(topo.usable_cpus)}, "
          f"nodes {numaprobe.format_list(topo.node_ids)}", flush=True)
    if len(cpus) < 2:
        print("one usable CPU: nothing scales")
        return
    noise_np, noise_ref = Noisy(topo.usable_cpus), Noisy(topo.usable_cpus)
    with tempfile.TemporaryDirectory() as tmp:
        if "bandwidth" not in args.skip:
            bandwidth_part(args, topo, node, cpus, tmp, noise_np, noise_ref)
        if "c2c" not in args.skip:
            c2c_part(args, topo, node, cpus, tmp, noise_np, noise_ref)
    print(f"\nnoise during numaprobe: {noise_np.text()}; during the references: {noise_ref.text()}")


if __name__ == "__main__":
    main()
