/* Core-to-core latency: one cache line passed back and forth between two pinned threads.
 * Thread a writes odd values, thread b even ones, each waiting for the other's turn with a
 * compare-and-swap; a round trip moves the line twice between the cores. */
#define _GNU_SOURCE
#include <errno.h>

#include "numaprobe/numaprobe.h"

struct c2c {
    uint64_t *line;
    uint64_t rounds, ticks;
};

static int c2c_member(np_team *team, int i, void *p)
{
    struct c2c *g = p;
    uint64_t *line = g->line;
    np_team_barrier(team);
    if (i == 0) {
        uint64_t t0 = np_clock_start();
        for (uint64_t r = 0; r < g->rounds; r++) {
            uint64_t want = 2 * r;
            while (!__atomic_compare_exchange_n(line, &want, 2 * r + 1, 0, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE))
                want = 2 * r;
        }
        /* wait for b's last answer so the final trip is inside the timing */
        while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != 2 * g->rounds)
            ;
        g->ticks = np_clock_stop() - t0;
    } else {
        for (uint64_t r = 0; r < g->rounds; r++) {
            uint64_t want = 2 * r + 1;
            while (!__atomic_compare_exchange_n(line, &want, 2 * r + 2, 0, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE))
                want = 2 * r + 1;
        }
    }
    return 0;
}

int np_c2c_run(int cpu_a, int cpu_b, void *line, uint64_t rounds, uint64_t *ticks,
               np_failure *failed)
{
    if (failed != NULL)
        *failed = (np_failure){.call = NULL, .cpu = -1};
    if (line == NULL || ticks == NULL || rounds == 0 || cpu_a == cpu_b ||
        (uintptr_t)line % 64 != 0)
        return -EINVAL;
    struct c2c g = {.line = line, .rounds = rounds};
    *(volatile uint64_t *)line = 0;
    int cpus[2] = {cpu_a, cpu_b};
    int rc = np_team_run(cpus, 2, c2c_member, &g, NULL, failed);
    if (rc == 0)
        *ticks = g.ticks;
    return rc;
}
