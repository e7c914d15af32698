/* Memory bandwidth kernels (read, write, copy, triad; regular and non-temporal stores) in
 * three widths: the baseline build, AVX2 and AVX-512. The wide ones are compiled for their
 * target with function attributes and chosen at run time from CPUID, so the library runs on
 * any x86-64: the build itself targets only the baseline ISA. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "numaprobe/numaprobe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The kernel table: every kernel once, with what it moves per element of its arrays.
 * {name, doc, streams, reads, writes, nt, bytes} */
static const np_bw_kernel_info kernels[NP_BW_NKERNELS] = {
    [NP_BW_READ] = {"read", "s += a[i]", 1, 1, 0, 0, 8},
    [NP_BW_WRITE] = {"write", "a[i] = s", 1, 0, 1, 0, 8},
    [NP_BW_WRITE_NT] = {"write_nt", "a[i] = s, non-temporal stores", 1, 0, 1, 1, 8},
    [NP_BW_COPY] = {"copy", "a[i] = b[i]", 2, 1, 1, 0, 16},
    [NP_BW_COPY_NT] = {"copy_nt", "a[i] = b[i], non-temporal stores", 2, 1, 1, 1, 16},
    [NP_BW_TRIAD] = {"triad", "a[i] = b[i] + s * c[i]", 3, 2, 1, 0, 24},
    [NP_BW_TRIAD_NT] = {"triad_nt", "a[i] = b[i] + s * c[i], non-temporal stores", 3, 2, 1, 1, 24},
};

const np_bw_kernel_info *np_bw_kernel_info_get(int kernel)
{
    return kernel >= 0 && kernel < NP_BW_NKERNELS ? &kernels[kernel] : NULL;
}

unsigned np_isa_supported(void)
{
    unsigned isa = 1u << NP_ISA_SCALAR;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        isa |= 1u << NP_ISA_AVX2;
    if (__builtin_cpu_supports("avx512f"))
        isa |= 1u << NP_ISA_AVX512;
#endif
    return isa;
}

/* ------------------------------------------------------------------ baseline (any CPU) */

static double pass_scalar(int k, double *a, const double *b, const double *c, size_t n, double s)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    switch (k) {
    case NP_BW_READ:
        for (size_t i = 0; i < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        return (s0 + s1) + (s2 + s3);
    case NP_BW_WRITE:
        for (size_t i = 0; i < n; i++)
            a[i] = s;
        return 0;
    case NP_BW_COPY:
        for (size_t i = 0; i < n; i++)
            a[i] = b[i];
        return 0;
    case NP_BW_TRIAD:
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
        return 0;
#if defined(__x86_64__)
    /* SSE2 streaming stores are part of x86-64's baseline. */
    case NP_BW_WRITE_NT: {
        __m128d v = _mm_set1_pd(s);
        for (size_t i = 0; i < n; i += 2)
            _mm_stream_pd(a + i, v);
        _mm_sfence();
        return 0;
    }
    case NP_BW_COPY_NT:
        for (size_t i = 0; i < n; i += 2)
            _mm_stream_pd(a + i, _mm_load_pd(b + i));
        _mm_sfence();
        return 0;
    case NP_BW_TRIAD_NT: {
        __m128d vs = _mm_set1_pd(s);
        for (size_t i = 0; i < n; i += 2)
            _mm_stream_pd(a + i, _mm_add_pd(_mm_load_pd(b + i), _mm_mul_pd(vs, _mm_load_pd(c + i))));
        _mm_sfence();
        return 0;
    }
#else
    case NP_BW_WRITE_NT:
        return pass_scalar(NP_BW_WRITE, a, b, c, n, s);
    case NP_BW_COPY_NT:
        return pass_scalar(NP_BW_COPY, a, b, c, n, s);
    case NP_BW_TRIAD_NT:
        return pass_scalar(NP_BW_TRIAD, a, b, c, n, s);
#endif
    }
    return 0;
}

#if defined(__x86_64__)
/* ------------------------------------------------------------------ AVX2: 4 doubles a vector */

#define W 4
__attribute__((target("avx2,fma"))) static double pass_avx2(int k, double *a, const double *b,
                                                              const double *c, size_t n, double s)
{
    __m256d vs = _mm256_set1_pd(s);
    switch (k) {
    case NP_BW_READ: {
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < n; i += 4 * W) {
            s0 = _mm256_add_pd(s0, _mm256_load_pd(a + i));
            s1 = _mm256_add_pd(s1, _mm256_load_pd(a + i + W));
            s2 = _mm256_add_pd(s2, _mm256_load_pd(a + i + 2 * W));
            s3 = _mm256_add_pd(s3, _mm256_load_pd(a + i + 3 * W));
        }
        __m256d t = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
        double out[W];
        _mm256_storeu_pd(out, t);
        return (out[0] + out[1]) + (out[2] + out[3]);
    }
    case NP_BW_WRITE:
        for (size_t i = 0; i < n; i += W)
            _mm256_store_pd(a + i, vs);
        return 0;
    case NP_BW_WRITE_NT:
        for (size_t i = 0; i < n; i += W)
            _mm256_stream_pd(a + i, vs);
        _mm_sfence();
        return 0;
    case NP_BW_COPY:
        for (size_t i = 0; i < n; i += W)
            _mm256_store_pd(a + i, _mm256_load_pd(b + i));
        return 0;
    case NP_BW_COPY_NT:
        for (size_t i = 0; i < n; i += W)
            _mm256_stream_pd(a + i, _mm256_load_pd(b + i));
        _mm_sfence();
        return 0;
    case NP_BW_TRIAD:
        for (size_t i = 0; i < n; i += W)
            _mm256_store_pd(a + i, _mm256_fmadd_pd(vs, _mm256_load_pd(c + i), _mm256_load_pd(b + i)));
        return 0;
    case NP_BW_TRIAD_NT:
        for (size_t i = 0; i < n; i += W)
            _mm256_stream_pd(a + i, _mm256_fmadd_pd(vs, _mm256_load_pd(c + i), _mm256_load_pd(b + i)));
        _mm_sfence();
        return 0;
    }
    return 0;
}
#undef W

/* ------------------------------------------------------------------ AVX-512: 8 doubles */

#define W 8
__attribute__((target("avx512f"))) static double pass_avx512(int k, double *a, const double *b,
                                                             const double *c, size_t n, double s)
{
    __m512d vs = _mm512_set1_pd(s);
    switch (k) {
    case NP_BW_READ: {
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < n; i += 4 * W) {
            s0 = _mm512_add_pd(s0, _mm512_load_pd(a + i));
            s1 = _mm512_add_pd(s1, _mm512_load_pd(a + i + W));
            s2 = _mm512_add_pd(s2, _mm512_load_pd(a + i + 2 * W));
            s3 = _mm512_add_pd(s3, _mm512_load_pd(a + i + 3 * W));
        }
        return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    }
    case NP_BW_WRITE:
        for (size_t i = 0; i < n; i += W)
            _mm512_store_pd(a + i, vs);
        return 0;
    case NP_BW_WRITE_NT:
        for (size_t i = 0; i < n; i += W)
            _mm512_stream_pd(a + i, vs);
        _mm_sfence();
        return 0;
    case NP_BW_COPY:
        for (size_t i = 0; i < n; i += W)
            _mm512_store_pd(a + i, _mm512_load_pd(b + i));
        return 0;
    case NP_BW_COPY_NT:
        for (size_t i = 0; i < n; i += W)
            _mm512_stream_pd(a + i, _mm512_load_pd(b + i));
        _mm_sfence();
        return 0;
    case NP_BW_TRIAD:
        for (size_t i = 0; i < n; i += W)
            _mm512_store_pd(a + i, _mm512_fmadd_pd(vs, _mm512_load_pd(c + i), _mm512_load_pd(b + i)));
        return 0;
    case NP_BW_TRIAD_NT:
        for (size_t i = 0; i < n; i += W)
            _mm512_stream_pd(a + i, _mm512_fmadd_pd(vs, _mm512_load_pd(c + i), _mm512_load_pd(b + i)));
        _mm_sfence();
        return 0;
    }
    return 0;
}
#undef W
#endif

double np_bw_pass(int kernel, int isa, double *a, const double *b, const double *c, size_t n,
                  double s)
{
#if defined(__x86_64__)
    if (isa == NP_ISA_AVX512)
        return pass_avx512(kernel, a, b, c, n, s);
    if (isa == NP_ISA_AVX2)
        return pass_avx2(kernel, a, b, c, n, s);
#endif
    (void)isa;
    return pass_scalar(kernel, a, b, c, n, s);
}

/* ------------------------------------------------------------------ the multi-threaded run */

static int bw_member(np_team *team, int i, void *p)
{
    np_bw_args *g = p;
    int nt = np_team_size(team);
    double *a = g->a[i];
    const double *b = g->b ? g->b[i] : NULL, *c = g->c ? g->c[i] : NULL;
    double sum = g->skip_warmup ? 0 : np_bw_pass(g->kernel, g->isa, a, b, c, g->n, 1.0);
    for (int r = 0; r < g->reps; r++) {
        np_team_barrier(team);
        g->t0[r * nt + i] = np_clock_start();
        sum = np_bw_pass(g->kernel, g->isa, a, b, c, g->n, 1.0 + r);
        g->t1[r * nt + i] = np_clock_stop();
    }
    g->checksum[i] = sum;
    return 0;
}

int np_bw_run(const int *cpus, int n, np_bw_args *args, int *ran_on, np_failure *failed)
{
    if (failed != NULL)
        *failed = (np_failure){.call = NULL, .cpu = -1};
    const np_bw_kernel_info *k = args != NULL ? np_bw_kernel_info_get(args->kernel) : NULL;
    if (k == NULL || args->n == 0 || args->n % 64 != 0 || args->reps < 1 || args->a == NULL ||
        args->t0 == NULL || args->t1 == NULL || args->checksum == NULL)
        return -EINVAL;
    if (args->isa < 0 || args->isa > NP_ISA_NEON || !(np_isa_supported() & (1u << args->isa)))
        return -ENOTSUP;
    if (k->reads >= 1 && k->writes >= 1 && args->b == NULL) /* the source of copy and triad */
        return -EINVAL;
    if (k->reads >= 2 && args->c == NULL)
        return -EINVAL;
    return np_team_run(cpus, n, bw_member, args, ran_on, failed);
}
