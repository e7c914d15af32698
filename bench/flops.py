"""Benchmark: numaprobe's compute kernels against a plain C reference of the same instruction
mix, compiled here with cc, pinned to the same CPU, alternating run by run; and each rate
against the theoretical peak from the ISA width and the measured clock.

The reference is written independently of flops.c: one function per kernel, 12 independent
accumulators, the intrinsic named in the kernel's doc, timed with clock_gettime. Goal:
numaprobe >= 0.97 x the reference on every kernel this CPU has.

    python bench/flops.py [--pairs 5] [--seconds 0.5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numaprobe
from _common import ratio_interval
from numaprobe import _core, probes

REFERENCE = r"""
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define N 12
#define LOOP(T, INIT, STEP, SUM) do { T acc[N]; for (int k = 0; k < N; k++) acc[k] = INIT; \
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a); \
    for (long i = 0; i < iters; i++) { _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) \
        acc[k] = STEP; } \
    clock_gettime(CLOCK_MONOTONIC, &b); T s = acc[0]; for (int k = 1; k < N; k++) s = SUM; \
    memcpy(sink, &s, sizeof s < 64 ? sizeof s : 64); \
    return (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec); } while (0)
static char sink[64];
__attribute__((target("fma"))) static double f32_scalar(long iters, float x, float y) {
    __m128 vx = _mm_set_ss(x), vy = _mm_set_ss(y);
    LOOP(__m128, _mm_set_ss(1 + k), _mm_fmadd_ss(acc[k], vx, vy), _mm_add_ss(s, acc[k])); }
__attribute__((target("avx2,fma"))) static double f32_avx2(long iters, float x, float y) {
    __m256 vx = _mm256_set1_ps(x), vy = _mm256_set1_ps(y);
    LOOP(__m256, _mm256_set1_ps(1 + k), _mm256_fmadd_ps(acc[k], vx, vy), _mm256_add_ps(s, acc[k])); }
__attribute__((target("avx512f"))) static double f32_avx512(long iters, float x, float y) {
    __m512 vx = _mm512_set1_ps(x), vy = _mm512_set1_ps(y);
    LOOP(__m512, _mm512_set1_ps(1 + k), _mm512_fmadd_ps(acc[k], vx, vy), _mm512_add_ps(s, acc[k])); }
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(long iters, float x, float y) {
    __m512bh vx = _mm512_cvtne2ps_pbh(_mm512_set1_ps(x), _mm512_set1_ps(x));
    __m512bh vy = _mm512_cvtne2ps_pbh(_mm512_set1_ps(y), _mm512_set1_ps(y));
    LOOP(__m512, _mm512_set1_ps(1 + k), _mm512_dpbf16_ps(acc[k], vx, vy), _mm512_add_ps(s, acc[k])); }
__attribute__((target("avxvnni"))) static double int8_avxvnni(long iters, float x, float y) {
    __m256i vx = _mm256_set1_epi8((char)x), vy = _mm256_set1_epi8((char)y);
    LOOP(__m256i, _mm256_set1_epi32(k), _mm256_dpbusd_avx_epi32(acc[k], vx, vy), _mm256_add_epi32(s, acc[k])); }
__attribute__((target("avx512f,avx512vnni"))) static double int8_avx512(long iters, float x, float y) {
    __m512i vx = _mm512_set1_epi8((char)x), vy = _mm512_set1_epi8((char)y);
    LOOP(__m512i, _mm512_set1_epi32(k), _mm512_dpbusd_epi32(acc[k], vx, vy), _mm512_add_epi32(s, acc[k])); }
int main(int argc, char **argv) {
    long iters = atol(argv[2]); float x = (float)atof(argv[3]), y = (float)atof(argv[4]);
    const char *k = argv[1]; double ns = -1;
    if (!strcmp(k, "f32_scalar")) ns = f32_scalar(iters, x, y);
    else if (!strcmp(k, "f32_avx2")) ns = f32_avx2(iters, x, y);
    else if (!strcmp(k, "f32_avx512")) ns = f32_avx512(iters, x, y);
    else if (!strcmp(k, "bf16_avx512")) ns = bf16_avx512(iters, x, y);
    else if (!strcmp(k, "int8_avxvnni")) ns = int8_avxvnni(iters, x, y);
    else if (!strcmp(k, "int8_avx512")) ns = int8_avx512(iters, x, y);
    printf("%.0f\n", ns);
    fprintf(stderr, "%d\n", sink[0] + sink[63]);  /* the sums are used: nothing is left out */
    return ns < 0;
}
"""
# operations per instruction, as the reference counts them (a multiply-add is 2)
OPS = {"f32_scalar": 2, "f32_avx2": 16, "f32_avx512": 32, "bf16_avx512": 64,
       "int8_avxvnni": 64, "int8_avx512": 128}


def reference_rate(binary, kernel, cpu, seconds):
    iters = 2_000_000
    for _ in range(3):  # size the run to about `seconds`
        ns = float(subprocess.run(["taskset", "-c", str(cpu), binary, kernel, str(iters),
                                   "0.999999", "0.000001"], capture_output=True, text=True,
                                  check=True).stdout)
        if ns > seconds * 1e9 / 4:
            break
        iters = int(iters * seconds * 1e9 / max(ns, 1))
    return iters * 12 * OPS[kernel] / (ns / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    cpu = topo.usable_cpus[0]
    with tempfile.TemporaryDirectory() as tmp:
        src, binary = os.path.join(tmp, "ref.c"), os.path.join(tmp, "ref")
        with open(src, "w") as f:
            f.write(REFERENCE)
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", binary, src], check=True)
        kernels = [k for k in OPS if _core.fl_supported(k) is None]
        print(f"{topo.settings.cpu_model}, CPU {cpu}; {args.pairs} pairs per kernel")
        print(f"{'kernel':<14}{'numaprobe G/s':>14}{'reference G/s':>15}{'ratio':>8}"
              f"{'95 % interval':>18}{'peak G/s':>10}{'of peak':>9}")
        for kernel in kernels:
            ours, theirs, clocks = [], [], []
            for k in range(args.pairs):
                runs = [lambda: ours.append(_ours(kernel, cpu, args.seconds, topo, clocks)),
                        lambda: theirs.append(reference_rate(binary, kernel, cpu, args.seconds))]
                for run in (runs if k % 2 == 0 else runs[::-1]):
                    run()
            ratios = [a / b for a, b in zip(ours, theirs)]
            lo, hi = ratio_interval(ratios)
            hz = statistics.median(clocks)
            # Theoretical peak: the instructions per cycle this core sustains, rounded to the
            # whole units it must have (1, 2, ...), x the ISA width x the measured clock.
            ipc = max(1, round(statistics.median(ours) / hz / OPS[kernel]))
            peak = ipc * OPS[kernel] * hz
            print(f"{kernel:<14}{statistics.median(ours) / 1e9:14.1f}"
                  f"{statistics.median(theirs) / 1e9:15.1f}"
                  f"{statistics.median(ratios):7.3f}x  [{lo:.3f}, {hi:.3f}]"
                  f"{peak / 1e9:10.1f}{statistics.median(ours) / peak:8.1%}"
                  + ("" if lo >= 0.97 else "   below the 0.97 goal" if hi < 0.97
                     else "   not resolved: more --pairs"))
        print("peak: the whole units per cycle the core shows (rounded) x ISA width x the "
              "measured clock (dependent adds)")


def _ours(kernel, cpu, seconds, topo, clocks):
    r = probes.flops([kernel], cpus=[cpu], reps=5, pass_s=seconds / 5, all_cores=False,
                     topology=topo, progress=False)
    clocks.append(r.clock_hz())
    return r.results[kernel].one.median


if __name__ == "__main__":
    sys.exit(main())
