/* The clock: which counter, whether it is invariant, its declared and measured frequency, and
 * the cost and resolution of a read. The reads themselves are inline in the header. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "numaprobe/numaprobe.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

int np_clock_kind(void)
{
    return NP_CLOCK_KIND;
}

int np_clock_invariant(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
        return 0;
    __cpuid(0x80000007, a, b, c, d);
    return (d >> 8) & 1;
#elif defined(__aarch64__)
    return 1; /* the generic timer runs at a fixed frequency by architecture */
#else
    return -ENOTSUP;
#endif
}

int np_clock_declared_hz(double *hz)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    /* Leaf 0x15: TSC/crystal ratio b/a and the crystal's frequency c (Intel; often 0). */
    if (__get_cpuid_max(0, NULL) >= 0x15) {
        __cpuid(0x15, a, b, c, d);
        if (a != 0 && b != 0 && c != 0) {
            *hz = (double)c * b / a;
            return 0;
        }
    }
    /* Hypervisor timing leaf (VMware, and KVM/QEMU with the feature on): EAX = TSC kHz. */
    __cpuid(1, a, b, c, d);
    if (c & (1u << 31)) {
        __cpuid(0x40000000, a, b, c, d);
        if (a >= 0x40000010) {
            __cpuid(0x40000010, a, b, c, d);
            if (a != 0) {
                *hz = (double)a * 1e3;
                return 0;
            }
        }
    }
    return -ENOTSUP;
#elif defined(__aarch64__)
    uint64_t f;
    __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(f));
    *hz = (double)f;
    return 0;
#else
    *hz = 1e9;
    return 0;
#endif
}

/* One bracketed reference read: the tick reads before and after, the reference between. The
 * midpoint of the two tick reads is paired with the reference; the width says how much to
 * trust it. */
struct bracket {
    uint64_t width;
    double ticks;
    uint64_t ref;
};

static struct bracket tightest(clockid_t ref, int tries)
{
    struct bracket best = {UINT64_MAX, 0, 0};
    for (int i = 0; i < tries; i++) {
        uint64_t t0 = np_clock_start();
        uint64_t r = np_clock_ref_ns(ref);
        uint64_t t1 = np_clock_stop();
        if (t1 - t0 < best.width) {
            best.width = t1 - t0;
            best.ticks = (double)t0 + (double)(t1 - t0) / 2;
            best.ref = r;
        }
    }
    return best;
}

int np_clock_calibrate(clockid_t ref, uint64_t window_ns, int rounds, double *ticks_per_ns)
{
    struct timespec probe;
    if (window_ns == 0 || rounds < 1 || ticks_per_ns == NULL)
        return -EINVAL;
    if (clock_gettime(ref, &probe) != 0)
        return -errno;
    struct bracket a = tightest(ref, rounds);
    /* Spin rather than sleep: a sleeping CPU may change its state and the point is to measure
     * the counter the kernels will read while busy. */
    uint64_t until = a.ref + window_ns;
    while (np_clock_ref_ns(ref) < until)
        ;
    struct bracket b = tightest(ref, rounds);
    if (b.ref <= a.ref || b.ticks <= a.ticks)
        return -EAGAIN;
    *ticks_per_ns = (b.ticks - a.ticks) / (double)(b.ref - a.ref);
    return 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

int np_clock_overhead(int n, double *min_ticks, double *median_ticks)
{
    if (n < 1)
        return -EINVAL;
    uint64_t *d = malloc((size_t)n * sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = np_clock_start();
        uint64_t t1 = np_clock_stop();
        d[i] = t1 - t0;
    }
    qsort(d, (size_t)n, sizeof *d, cmp_u64);
    *min_ticks = (double)d[0];
    *median_ticks = n % 2 ? (double)d[n / 2] : ((double)d[n / 2 - 1] + (double)d[n / 2]) / 2;
    free(d);
    return 0;
}

int np_clock_resolution(int n, uint64_t *ticks)
{
    if (n < 2 || ticks == NULL)
        return -EINVAL;
    uint64_t best = UINT64_MAX, prev = np_clock_start();
    for (int i = 1; i < n; i++) {
        uint64_t t = np_clock_start();
        if (t > prev && t - prev < best)
            best = t - prev;
        prev = t;
    }
    if (best == UINT64_MAX)
        return -EAGAIN;
    *ticks = best;
    return 0;
}
