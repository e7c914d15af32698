"""Benchmark: numaprobe's bandwidth kernels against likwid-bench's, side by side in one run.

Compared, pair by pair, on the same CPUs (default: every usable CPU; likwid gets
``-W N:SIZE:THREADS:1:1``, i.e. the first THREADS hardware threads of its domain N, and the
hwthreads it reports are checked against numaprobe's CPUs) and the same total working set:

- likwid's SIZE (default 1 GB = 10^9 bytes) is the total over all its streams and threads;
  numaprobe's ``size`` is per array per thread, so it gets SIZE / (arrays x threads):
  read 1 array, copy 2, triad 3 (likwid's triad_mem, a = b * c + d, has 4 streams, so the
  same SIZE gives it smaller arrays but the same total);
- both count the bytes the program moves, 10^9 (numaprobe GB) = 1000 x 10^6 (likwid MByte),
  without write-allocate; both count each pass: numaprobe ``reps`` = likwid ``-i`` (iterations
  per thread); each side's round figure is bytes over all passes / time over all passes
  (numaprobe's own median of its passes is printed alongside);
- rounds alternate, numaprobe first in odd rounds, likwid first in even ones, all pairs in each.

Apples-to-apples pairs (same streams, store kind and vector width): read/load_avx512,
copy/copy_avx512, copy_nt/copy_mem_avx512, triad/stream_avx512, triad_nt/stream_mem_avx512.
The issue's pairs ("likwid's best of the same kind") are also run and marked: read/load_mem
(likwid: 128-bit movntdqa loads), copy/copy_mem_avx512 (regular stores against non-temporal
ones: numaprobe's copy also pays write-allocate traffic it does not count) and
triad_nt/triad_mem_avx512 (3 streams against 4). One difference stays in every pair: numaprobe
asks for transparent huge pages (MADV_HUGEPAGE), likwid-bench does not, so with THP in
``madvise`` mode likwid runs on 4 KiB pages.
Goal: numaprobe / likwid >= 1.00x. Exits 0 either way (a benchmark, not a test); 2 without likwid.

    python bench/bandwidth_vs_likwid.py [--size 1GB] [--threads N] [--rounds 5] [--reps 10]
"""
import argparse
import re
import shutil
import statistics
import subprocess
import sys

import numaprobe
from _common import Noisy, spread
from numaprobe.probes import run_bandwidth as bw_run

# (numaprobe kernel, likwid kernel, arrays numaprobe uses, apples-to-apples?, label)
PAIRS = [
    ("read", "load_avx512", 1, True, "same: 1 read stream, AVX-512 loads"),
    ("read", "load_mem", 1, False, "issue's pair: likwid 128-bit movntdqa loads"),
    ("copy", "copy_avx512", 2, True, "same: regular stores, AVX-512"),
    ("copy_nt", "copy_mem_avx512", 2, True, "same: non-temporal stores, AVX-512"),
    ("copy", "copy_mem_avx512", 2, False, "issue's pair: regular vs non-temporal stores"),
    ("triad", "stream_avx512", 3, True, "same: a = b + s*c, regular stores"),
    ("triad_nt", "stream_mem_avx512", 3, True, "same: a = b + s*c, non-temporal stores"),
    ("triad_nt", "triad_mem_avx512", 3, False, "issue's pair: likwid a = b*c + d, 4 streams"),
]


def parse_size(text):
    m = re.fullmatch(r"(\d+)\s*(kB|MB|GB)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"size like 1GB, 500MB or 64kB (likwid's units), not {text!r}")
    return int(m.group(1)) * {"kB": 10**3, "MB": 10**6, "GB": 10**9}[m.group(2)], text.strip()





def likwid_domain_n():
    out = subprocess.run(["likwid-bench", "-p"], capture_output=True, text=True).stdout
    m = re.search(r"Tag N:\s*([\d ]+)", out)
    if not m:
        sys.exit(f"cannot read likwid's domain N from `likwid-bench -p`:\n{out}")
    return [int(x) for x in m.group(1).split()]


def run_likwid(kernel, size_text, cpus, reps):
    cmd = ["likwid-bench", "-t", kernel, "-W", f"N:{size_text}:{len(cpus)}:1:1", "-i", str(reps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    mbs = re.search(r"MByte/s:\s*([\d.]+)", out.stdout)
    ran = [int(x) for x in re.findall(r"Global Thread \d+ running on hwthread (\d+)", out.stdout)]
    if out.returncode != 0 or not mbs:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    if sorted(ran) != sorted(cpus):
        sys.exit(f"likwid ran on hwthreads {ran}, numaprobe on CPUs {cpus}: not the same CPUs")
    return float(mbs.group(1)) / 1000, " ".join(cmd)


def run_numaprobe(kernel, arrays, total, cpus, node, reps, isa):
    r = bw_run(cpus, [node] * len(cpus), kernel, isa=isa, size=total // (arrays * len(cpus)), reps=reps)
    overall = len(r.gbs.samples) / sum(1 / g for g in r.gbs.samples)  # bytes / time, all passes
    return overall, r.gbs.median, r.isa


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("1GB"),
                    help="total working set, likwid's units (10^3/10^6/10^9 bytes); default 1GB")
    ap.add_argument("--threads", type=int, help="threads (default: every usable CPU)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10, help="passes per run (numaprobe reps, likwid -i)")
    ap.add_argument("--isa", default="avx512", help="numaprobe's ISA (likwid's kernels are AVX-512)")
    args = ap.parse_args()
    if shutil.which("likwid-bench") is None:
        print("likwid-bench not found: install it with `apt-get install likwid`", file=sys.stderr)
        sys.exit(2)
    topo = numaprobe.read_topology()
    usable = list(topo.usable_cpus)
    threads = args.threads or len(usable)
    cpus = likwid_domain_n()[:threads]  # likwid's N:...:T:1:1 takes these, in this order
    if len(cpus) < threads or not set(cpus) <= set(usable):
        sys.exit(f"likwid's first {threads} CPUs of domain N ({cpus}) are not all usable here ({usable})")
    node = topo.node_of(cpus[0]) if topo.node_of(cpus[0]) in topo.usable_mems else topo.usable_mems[0]
    total, size_text = args.size
    print(f"numaprobe vs likwid-bench bandwidth: {topo.settings.cpu_model}, nodes "
          f"{numaprobe.format_list(topo.node_ids)}, usable CPUs {numaprobe.format_list(usable)}")
    print(f"{threads} threads on CPUs {numaprobe.format_list(cpus)} (both sides), memory node {node}, "
          f"total working set {total / 1e9:g} GB, {args.reps} passes per run, {args.rounds} rounds", flush=True)
    res = {i: {"np": [], "np_med": [], "lk": []} for i in range(len(PAIRS))}
    noise = {"np": Noisy(usable), "lk": Noisy(usable)}
    cmds, isa = {}, args.isa
    for r in range(args.rounds):
        for i, (nk, lk, arrays, _, _) in enumerate(PAIRS):
            for side in (("np", "lk") if r % 2 == 0 else ("lk", "np")):
                print(f"round {r + 1}/{args.rounds}: {nk} vs {lk} ({side})".ljust(60),
                      file=sys.stderr, end="\r")
                if side == "np":
                    g, med, isa = noise["np"].measure(
                        lambda: run_numaprobe(nk, arrays, total, cpus, node, args.reps, args.isa))
                    res[i]["np"].append(g)
                    res[i]["np_med"].append(med)
                else:
                    g, cmds[lk] = noise["lk"].measure(lambda: run_likwid(lk, size_text, cpus, args.reps))
                    res[i]["lk"].append(g)
    print(" " * 60, file=sys.stderr, end="\r")
    print(f"noise during numaprobe runs: {noise['np'].text()}; during likwid runs: {noise['lk'].text()}")
    print("likwid command lines:")
    for c in cmds.values():
        print(f"  {c}")
    print(f"GB/s (10^9 bytes/s, program bytes), numaprobe ISA {isa}:")
    for i, (nk, lk, _, same, label) in enumerate(PAIRS):
        a, b = res[i]["np"], res[i]["lk"]
        ratio = statistics.median(a) / statistics.median(b)
        verdict = "meets the goal >= 1.00x" if ratio >= 1.0 else "BELOW the goal 1.00x"
        if ratio < 1.0 and max(a) >= min(b):
            verdict += " (ranges overlap)"
        print(f"\n{nk} vs {lk}  [{'APPLES-TO-APPLES' if same else 'not like-for-like'}: {label}]")
        print(f"  {'numaprobe ' + nk:<26}{spread(a)}  (numaprobe's own median of passes "
              f"{statistics.median(res[i]['np_med']):.2f})")
        print(f"  {'likwid ' + lk:<26}{spread(b)}")
        print(f"  ratio numaprobe / likwid: {ratio:.2f}x  {verdict}; best rounds: {max(a) / max(b):.2f}x")


if __name__ == "__main__":
    main()
