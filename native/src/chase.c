/* Pointer chasing: one random cycle through the lines of a buffer, and the dependent-load loop
 * that follows it. Each load's address comes from the previous load, so the loop measures
 * latency, not bandwidth; the random order defeats the prefetchers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "numaprobe/numaprobe.h"

/* xorshift64*: small, fast, good enough to shuffle. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Unbiased enough for n << 2^64: the modulo bias is below 2^-40 for the sizes used here. */
static size_t below(uint64_t *s, size_t n)
{
    return (size_t)(next_rand(s) % n);
}

static void shuffle(size_t *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = below(s, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

int np_chase_build(void *buf, size_t nbytes, size_t line, size_t group_bytes, uint64_t seed)
{
    if (buf == NULL || line < sizeof(void *) || line % sizeof(void *) != 0)
        return -EINVAL;
    size_t nlines = nbytes / line;
    if (nlines < 2)
        return -EINVAL;
    size_t per_group = group_bytes ? group_bytes / line : nlines;
    if (per_group < 1 || per_group > nlines)
        per_group = nlines;
    size_t ngroups = (nlines + per_group - 1) / per_group;
    size_t *order = malloc(nlines * sizeof *order);
    size_t *groups = malloc(ngroups * sizeof *groups);
    if (order == NULL || groups == NULL) {
        free(order);
        free(groups);
        return -ENOMEM;
    }
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
    for (size_t g = 0; g < ngroups; g++)
        groups[g] = g;
    shuffle(groups, ngroups, &s);
    /* The visiting order: groups in random order, lines within a group in random order. */
    size_t k = 0;
    for (size_t g = 0; g < ngroups; g++) {
        size_t first = groups[g] * per_group;
        size_t count = first + per_group <= nlines ? per_group : nlines - first;
        for (size_t i = 0; i < count; i++)
            order[k + i] = first + i;
        shuffle(order + k, count, &s);
        k += count;
    }
    /* Linking consecutive entries of a random order, the last back to the first, gives one
     * cycle through every line (what Sattolo's algorithm produces directly). */
    char *base = buf;
    for (size_t i = 0; i < nlines; i++)
        *(void **)(base + order[i] * line) = base + order[(i + 1) % nlines] * line;
    free(order);
    free(groups);
    return 0;
}

#define HOP(p) p = *(void *const *)p
#define HOP8(p) HOP(p); HOP(p); HOP(p); HOP(p); HOP(p); HOP(p); HOP(p); HOP(p)

int np_chase_run(void *start, uint64_t loads, uint64_t *ticks, void **end)
{
    if (start == NULL || ticks == NULL || loads % 32 != 0)
        return -EINVAL;
    void *p = start;
    uint64_t t0 = np_clock_start();
    for (uint64_t i = 0; i < loads; i += 32) {
        HOP8(p);
        HOP8(p);
        HOP8(p);
        HOP8(p);
    }
    uint64_t t1 = np_clock_stop();
    *ticks = t1 - t0;
    if (end)
        *end = p;
    return 0;
}

int np_chase_cycle_length(void *buf, size_t max_steps, size_t *length)
{
    if (buf == NULL || length == NULL)
        return -EINVAL;
    void *p = buf;
    size_t n = 0;
    do {
        p = *(void **)p;
        n++;
    } while (p != buf && n <= max_steps);
    *length = n;
    return p == buf ? 0 : -ELOOP;
}
