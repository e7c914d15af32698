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

/* Reads buf (n doubles) in 512-byte blocks, `delay` spins between blocks, until *stop is set
 * or, with deadline > 0, the counter passes it. Returns the bytes read. */
static uint64_t read_traffic(const double *buf, size_t n, uint64_t delay, volatile int *stop,
                             uint64_t deadline, double *sink)
{
    uint64_t bytes = 0;
    double acc = 0;
    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
        for (size_t off = 0; off < n && !*stop; off += 64) {
            double s0 = 0, s1 = 0;
            for (int j = 0; j < 64; j += 2) {
                s0 += buf[off + j];
                s1 += buf[off + j + 1];
            }
            acc += s0 + s1;
            bytes += 512;
            for (uint64_t d = 0; d < delay; d++)
                CPU_RELAX();
            if (deadline != 0 && (bytes & 0x7fff) == 0 && np_clock_start() > deadline)
                goto out; /* every 64 blocks */
        }
    }
out:
    if (acc == 12345.678) /* keeps the loads from being optimised away */
        *sink += acc;
    return bytes;
}

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
    g->bytes[i - 1] = read_traffic(g->bufs[i - 1], g->n, g->delay, stop, 0, &g->sink);
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

/* A load generator: every member reads its buffer (traffic) or walks its chain (cache
 * pressure) until the caller, from another thread, sets *stop, or max_ticks pass. */
static int load_member(np_team *team, int i, void *p)
{
    np_load_args *g = p;
    volatile int *stop = g->stop;
    np_team_barrier(team);
    uint64_t t0 = np_clock_start();
    uint64_t deadline = t0 + g->max_ticks;
    if (i == 0)
        g->t0 = t0;
    if (g->chains != NULL && g->chains[i] != NULL) {
        void *q = g->chains[i];
        uint64_t loads = 0, ticks;
        while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE) && np_clock_start() < deadline) {
            np_chase_run(q, NP_LOAD_CHASE_STEP, &ticks, &q);
            loads += NP_LOAD_CHASE_STEP;
        }
        g->bytes[i] = loads * 64;
        g->sink += (double)(uintptr_t)q;
    } else {
        g->bytes[i] = read_traffic(g->bufs[i], g->n, g->delay, stop, deadline, &g->sink);
    }
    np_team_barrier(team);
    if (i == 0)
        g->t1 = np_clock_start();
    return 0;
}

int np_load_run(const int *cpus, int n, np_load_args *args, int *ran_on, np_failure *failed)
{
    if (failed != NULL)
        *failed = (np_failure){.call = NULL, .cpu = -1};
    if (args == NULL || args->stop == NULL || args->bytes == NULL || args->max_ticks == 0 ||
        n < 1)
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        int chase = args->chains != NULL && args->chains[i] != NULL;
        if (!chase && (args->bufs == NULL || args->bufs[i] == NULL || args->n == 0 ||
                       args->n % 64 != 0))
            return -EINVAL;
    }
    return np_team_run(cpus, n, load_member, args, ran_on, failed);
}
