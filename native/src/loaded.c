/* Loaded latency: the latency chase on one CPU while the others read memory as fast as a
 * delay between blocks lets them. Sweeping the delay traces latency against bandwidth. */
#define _GNU_SOURCE
#include <errno.h>

#include "numaprobe/numaprobe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

static int loaded_member(np_team *team, int i, void *p)
{
    np_loaded_args *g = p;
    volatile int *stop = np_team_stop_flag(team);
    np_team_barrier(team);
    if (i == 0) {
        void *q = g->chain;
        g->t0 = np_clock_start();
        for (int s = 0; s < g->samples; s++)
            np_chase_run(q, g->loads, &g->lat_ticks[s], &q);
        g->t1 = np_clock_stop();
        __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
        g->sink = (double)(uintptr_t)q;
        return 0;
    }
    /* Traffic: read the buffer in 512-byte blocks, pausing `delay` spins between blocks. */
    const double *buf = g->bufs[i - 1];
    uint64_t bytes = 0;
    double acc = 0;
    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
        for (size_t off = 0; off < g->n && !*stop; off += 64) {
            double s0 = 0, s1 = 0;
            for (int j = 0; j < 64; j += 2) {
                s0 += buf[off + j];
                s1 += buf[off + j + 1];
            }
            acc += s0 + s1;
            bytes += 512;
            for (uint64_t d = 0; d < g->delay; d++)
                CPU_RELAX();
        }
    }
    g->bytes[i - 1] = bytes;
    if (acc == 12345.678) /* keeps the loads from being optimised away */
        g->sink += acc;
    return 0;
}

int np_loaded_run(const int *cpus, int n, np_loaded_args *args, int *ran_on,
                  np_failure *failed)
{
    if (failed != NULL)
        *failed = (np_failure){.call = NULL, .cpu = -1};
    if (args == NULL || args->chain == NULL || args->samples < 1 || args->loads % 32 != 0 ||
        args->lat_ticks == NULL || (n > 1 && (args->bufs == NULL || args->bytes == NULL ||
                                              args->n == 0 || args->n % 64 != 0)))
        return -EINVAL;
    return np_team_run(cpus, n, loaded_member, args, ran_on, failed);
}
