/* Compute ceilings: how many arithmetic operations a core retires per second in each unit,
 * and the core clock those figures imply.
 *
 * Each kernel is a loop of ACC independent multiply-accumulates (enough to cover the unit's
 * latency on every core of the last ten years: 4-5 cycles x 2 units), on operands held in
 * registers, so it is bound by the unit's throughput alone. The wide kernels are compiled for
 * their target with function attributes and chosen at run time from CPUID (the build targets
 * the baseline ISA only); AMX also needs the kernel's permission (arch_prctl), asked for on
 * first use. The clock kernel is a chain of dependent integer adds, one per cycle on every
 * x86-64 and AArch64 core, so its rate is the core's frequency while it runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaprobe/numaprobe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#include <sys/syscall.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
/* SVE where the compiler can build it for one function (GCC 10 and later), whatever the
 * flags of the rest; the CPU is asked at run time (HWCAP_SVE). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10 && defined(HWCAP_SVE)
#define NP_HAVE_SVE 1
#pragma GCC push_options
#pragma GCC target("+sve")
#include <arm_sve.h>
#pragma GCC pop_options
#endif
#endif

#define ACC 12 /* independent accumulators per kernel */

/* {name, doc, unit, ops per instruction, instructions per iteration}; SVE's ops follow the
 * vector length, set on first use where the CPU has SVE (the 128-bit minimum until then). */
static np_fl_kernel_info kernels[NP_FL_NKERNELS] = {
    [NP_FL_CLOCK] = {"clock", "dependent 64-bit integer adds, one per cycle", "add", 1, 1},
    [NP_FL_F32_SCALAR] = {"f32_scalar", "fp32 FMA, scalar (vfmadd231ss / fmadd s)", "flop", 2, ACC},
    [NP_FL_F32_AVX2] = {"f32_avx2", "fp32 FMA, 8 lanes (vfmadd231ps ymm)", "flop", 16, ACC},
    [NP_FL_F32_AVX512] = {"f32_avx512", "fp32 FMA, 16 lanes (vfmadd231ps zmm)", "flop", 32, ACC},
    [NP_FL_BF16_AVX512] = {"bf16_avx512", "bf16 dot products into fp32, 16 lanes x 2 "
                           "(vdpbf16ps zmm)", "flop", 64, ACC},
    [NP_FL_INT8_AVXVNNI] = {"int8_avxvnni", "u8 x s8 dot products into int32, 8 lanes x 4 "
                            "(vpdpbusd ymm, AVX-VNNI)", "op", 64, ACC},
    [NP_FL_INT8_AVX512] = {"int8_avx512", "u8 x s8 dot products into int32, 16 lanes x 4 "
                           "(vpdpbusd zmm, AVX512-VNNI)", "op", 128, ACC},
    [NP_FL_BF16_AMX] = {"bf16_amx", "bf16 tile multiply 16x32 by 32x16 into fp32 (tdpbf16ps)",
                        "flop", 2 * 16 * 16 * 32, 4},
    [NP_FL_INT8_AMX] = {"int8_amx", "u8 x s8 tile multiply 16x64 by 64x16 into int32 "
                        "(tdpbusd)", "op", 2 * 16 * 16 * 64, 4},
    [NP_FL_F32_NEON] = {"f32_neon", "fp32 FMA, 4 lanes (fmla v.4s)", "flop", 8, ACC},
    [NP_FL_F32_SVE] = {"f32_sve", "fp32 FMA, the vector length's lanes (fmla z.s, SVE)", "flop",
                       8, ACC},
};

#if defined(NP_HAVE_SVE)
#pragma GCC push_options
#pragma GCC target("+sve")
static int sve_lanes(void) { return (int)svcntw(); }
#pragma GCC pop_options
#endif

const np_fl_kernel_info *np_fl_kernel_info_get(int kernel)
{
    if (kernel < 0 || kernel >= NP_FL_NKERNELS)
        return NULL;
#if defined(NP_HAVE_SVE)
    if (kernel == NP_FL_F32_SVE && (getauxval(AT_HWCAP) & HWCAP_SVE))
        kernels[kernel].ops = 2 * sve_lanes(); /* the same value from every thread */
#endif
    return &kernels[kernel];
}

/* ------------------------------------------------------------------ what this CPU runs */

#if defined(__x86_64__)
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* The kernel's permission for AMX tile data in this process: 0, or -errno (EINVAL: a kernel
 * older than 5.16 or without AMX support; EPERM or ENOSPC: refused). */
static int amx_permission(void)
{
    unsigned long features = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &features) == 0 &&
        (features & (1ul << XFEATURE_XTILEDATA)))
        return 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        return -errno;
    return 0;
}
#endif

int np_fl_supported(int kernel)
{
    if (np_fl_kernel_info_get(kernel) == NULL)
        return -EINVAL;
    if (kernel == NP_FL_CLOCK)
        return 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (kernel) {
    case NP_FL_F32_SCALAR:
        return __builtin_cpu_supports("fma") ? 0 : -ENOTSUP;
    case NP_FL_F32_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 0 : -ENOTSUP;
    case NP_FL_F32_AVX512:
        return __builtin_cpu_supports("avx512f") ? 0 : -ENOTSUP;
    case NP_FL_BF16_AVX512:
        return __builtin_cpu_supports("avx512bf16") ? 0 : -ENOTSUP;
    case NP_FL_INT8_AVXVNNI:
        return __builtin_cpu_supports("avxvnni") ? 0 : -ENOTSUP;
    case NP_FL_INT8_AVX512:
        return __builtin_cpu_supports("avx512vnni") ? 0 : -ENOTSUP;
    case NP_FL_BF16_AMX:
    case NP_FL_INT8_AMX: {
        /* CPUID leaf 7: EDX bit 24 AMX-TILE, 22 AMX-BF16, 25 AMX-INT8. */
        unsigned a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        (void)a, (void)b, (void)c;
        unsigned need = (1u << 24) | (kernel == NP_FL_BF16_AMX ? 1u << 22 : 1u << 25);
        if ((d & need) != need)
            return -ENOTSUP;
        return amx_permission();
    }
    default:
        return -ENOTSUP;
    }
#elif defined(__aarch64__)
    /* NEON and the scalar FMA are part of AArch64; SVE is optional. */
    if (kernel == NP_FL_F32_NEON || kernel == NP_FL_F32_SCALAR)
        return 0;
#if defined(NP_HAVE_SVE)
    if (kernel == NP_FL_F32_SVE)
        return getauxval(AT_HWCAP) & HWCAP_SVE ? 0 : -ENOTSUP;
#endif
    return -ENOTSUP;
#else
    return -ENOTSUP;
#endif
}

/* ------------------------------------------------------------------ the kernels */

/* Each returns a value made from every accumulator, stored by the caller, so that no
 * iteration can be left out. `x` and `y` come from memory the compiler cannot see into. */

static uint64_t clock_chain(uint64_t iters, uint64_t step)
{
    uint64_t v = 0;
    for (uint64_t i = 0; i < iters; i++) {
#if defined(__x86_64__)
        __asm__ __volatile__(
            ".rept 100\n\tadd %1, %0\n\t.endr" : "+r"(v) : "r"(step));
#elif defined(__aarch64__)
        __asm__ __volatile__(
            ".rept 100\n\tadd %0, %0, %1\n\t.endr" : "+r"(v) : "r"(step));
#else
        for (int k = 0; k < 100; k++)
            v += step;
#endif
    }
    return v;
}
#define CLOCK_ADDS 100 /* adds per iteration of clock_chain */

#if defined(__x86_64__)
/* One lane of an SSE register: the scalar FMA (vfmadd231ss), which needs FMA3. */
__attribute__((target("fma"))) static double f32_scalar(uint64_t iters, const float *xy)
{
    __m128 x = _mm_set_ss(xy[0]), y = _mm_set_ss(xy[1]);
    __m128 a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm_set_ss(xy[2] + (float)k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm_fmadd_ss(a[k], x, y);
    double s = 0;
    for (int k = 0; k < ACC; k++)
        s += _mm_cvtss_f32(a[k]);
    return s;
}
#else
/* fmadd s on AArch64; kept scalar (the vectoriser would make it NEON). */
__attribute__((optimize("no-tree-vectorize"))) static double f32_scalar(uint64_t iters,
                                                                        const float *xy)
{
    float x = xy[0], y = xy[1];
    float a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = xy[2] + (float)k;
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = __builtin_fmaf(a[k], x, y);
    double s = 0;
    for (int k = 0; k < ACC; k++)
        s += a[k];
    return s;
}
#endif

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double f32_avx2(uint64_t iters, const float *xy)
{
    __m256 x = _mm256_set1_ps(xy[0]), y = _mm256_set1_ps(xy[1]);
    __m256 a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm256_set1_ps(xy[2] + (float)k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm256_fmadd_ps(a[k], x, y);
    __m256 s = a[0];
    for (int k = 1; k < ACC; k++)
        s = _mm256_add_ps(s, a[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

__attribute__((target("avx512f"))) static double f32_avx512(uint64_t iters, const float *xy)
{
    __m512 x = _mm512_set1_ps(xy[0]), y = _mm512_set1_ps(xy[1]);
    __m512 a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm512_set1_ps(xy[2] + (float)k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm512_fmadd_ps(a[k], x, y);
    __m512 s = a[0];
    for (int k = 1; k < ACC; k++)
        s = _mm512_add_ps(s, a[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(uint64_t iters,
                                                                         const float *xy)
{
    /* Operands: bf16 pairs made from x and y (the accumulators grow by x*y*2 per step). */
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(xy[0]), _mm512_set1_ps(xy[0]));
    __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(xy[1]), _mm512_set1_ps(xy[1]));
    __m512 a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm512_set1_ps(xy[2] + (float)k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm512_dpbf16_ps(a[k], x, y);
    __m512 s = a[0];
    for (int k = 1; k < ACC; k++)
        s = _mm512_add_ps(s, a[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avxvnni"))) static double int8_avxvnni(uint64_t iters, const float *xy)
{
    __m256i x = _mm256_set1_epi8((char)xy[0]), y = _mm256_set1_epi8((char)xy[1]);
    __m256i a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm256_set1_epi32(k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm256_dpbusd_avx_epi32(a[k], x, y);
    __m256i s = a[0];
    for (int k = 1; k < ACC; k++)
        s = _mm256_add_epi32(s, a[k]);
    return (double)_mm256_extract_epi32(s, 0);
}

__attribute__((target("avx512f,avx512vnni"))) static double int8_avx512(uint64_t iters,
                                                                        const float *xy)
{
    __m512i x = _mm512_set1_epi8((char)xy[0]), y = _mm512_set1_epi8((char)xy[1]);
    __m512i a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = _mm512_set1_epi32(k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = _mm512_dpbusd_epi32(a[k], x, y);
    __m512i s = a[0];
    for (int k = 1; k < ACC; k++)
        s = _mm512_add_epi32(s, a[k]);
    return (double)_mm512_reduce_add_epi32(s);
}

/* AMX: eight tiles of 16 rows x 64 bytes; C0..C3 accumulate A (tile 4 or 5) x B (6 or 7). */
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Configures eight tiles of 16 rows x 64 bytes, zeroes the accumulators C0..C3 and loads
 * the sources A (tiles 4, 5) and B (6, 7) from `data`, every byte `fill`. The tile state is
 * the thread's: the kernels below use it after this returns. */
__attribute__((target("amx-tile"))) static void amx_load(uint8_t data[4][16 * 64], int fill)
{
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    memset(data, fill, 4 * 16 * 64);
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, data[0], 64);
    _tile_loadd(5, data[1], 64);
    _tile_loadd(6, data[2], 64);
    _tile_loadd(7, data[3], 64);
}

static __thread uint8_t amx_data[4][16 * 64] __attribute__((aligned(64)));

__attribute__((target("amx-tile,amx-bf16"))) static double bf16_amx(uint64_t iters,
                                                                    const float *xy)
{
    amx_load(amx_data, (int)xy[0] & 0x3f); /* small bf16 values: no overflow */
    for (uint64_t i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}

__attribute__((target("amx-tile,amx-int8"))) static double int8_amx(uint64_t iters,
                                                                    const float *xy)
{
    amx_load(amx_data, (int)xy[0]);
    for (uint64_t i = 0; i < iters; i++) {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    int32_t out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return (double)out[0];
}
#endif

#if defined(__aarch64__)
static double f32_neon(uint64_t iters, const float *xy)
{
    float32x4_t x = vdupq_n_f32(xy[0]), y = vdupq_n_f32(xy[1]);
    float32x4_t a[ACC];
    for (int k = 0; k < ACC; k++)
        a[k] = vdupq_n_f32(xy[2] + (float)k);
    for (uint64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++)
            a[k] = vfmaq_f32(y, a[k], x);
    float32x4_t s = a[0];
    for (int k = 1; k < ACC; k++)
        s = vaddq_f32(s, a[k]);
    return vaddvq_f32(s);
}
#endif

#if defined(NP_HAVE_SVE)
#pragma GCC push_options
#pragma GCC target("+sve")
/* SVE registers cannot form an array: twelve named accumulators. */
#define SVE_EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
static double f32_sve(uint64_t iters, const float *xy)
{
    svbool_t pg = svptrue_b32();
    svfloat32_t x = svdup_f32(xy[0]), y = svdup_f32(xy[1]);
#define SVE_INIT(k) svfloat32_t a##k = svdup_f32(xy[2] + (float)k);
#define SVE_FMA(k) a##k = svmad_f32_x(pg, a##k, x, y);
#define SVE_SUM(k) s = svadd_f32_x(pg, s, a##k);
    SVE_EACH(SVE_INIT)
    for (uint64_t i = 0; i < iters; i++) {
        SVE_EACH(SVE_FMA)
    }
    svfloat32_t s = svdup_f32(0);
    SVE_EACH(SVE_SUM)
    return svaddv_f32(pg, s);
}
#pragma GCC pop_options
#endif

double np_fl_pass(int kernel, uint64_t iters, const float *xy)
{
    switch (kernel) {
    case NP_FL_CLOCK:
        return (double)clock_chain(iters, (uint64_t)xy[1]);
    case NP_FL_F32_SCALAR:
        return f32_scalar(iters, xy);
#if defined(__x86_64__)
    case NP_FL_F32_AVX2:
        return f32_avx2(iters, xy);
    case NP_FL_F32_AVX512:
        return f32_avx512(iters, xy);
    case NP_FL_BF16_AVX512:
        return bf16_avx512(iters, xy);
    case NP_FL_INT8_AVXVNNI:
        return int8_avxvnni(iters, xy);
    case NP_FL_INT8_AVX512:
        return int8_avx512(iters, xy);
    case NP_FL_BF16_AMX:
        return bf16_amx(iters, xy);
    case NP_FL_INT8_AMX:
        return int8_amx(iters, xy);
#endif
#if defined(__aarch64__)
    case NP_FL_F32_NEON:
        return f32_neon(iters, xy);
#endif
#if defined(NP_HAVE_SVE)
    case NP_FL_F32_SVE:
        return f32_sve(iters, xy);
#endif
    default:
        return 0;
    }
}

uint64_t np_fl_ops(int kernel, uint64_t iters)
{
    const np_fl_kernel_info *k = np_fl_kernel_info_get(kernel);
    if (k == NULL)
        return 0;
    uint64_t per = kernel == NP_FL_CLOCK ? CLOCK_ADDS : (uint64_t)k->instructions;
    return iters * per * (uint64_t)k->ops;
}

/* ------------------------------------------------------------------ the multi-threaded run */

static int fl_member(np_team *team, int i, void *p)
{
    np_fl_args *g = p;
    int nt = np_team_size(team);
    /* Floating point: a <- a * x + y converges (no overflow, no denormals); integer
     * kernels: bytes of 1, sums that wrap; the clock: adds of 3. */
    float xy[3] = {0.999999f, 1e-6f, 1.0f};
    if (g->kernel == NP_FL_INT8_AVXVNNI || g->kernel == NP_FL_INT8_AVX512 ||
        g->kernel == NP_FL_INT8_AMX)
        xy[0] = 1, xy[1] = 1;
    if (g->kernel == NP_FL_CLOCK)
        xy[1] = 3;
    double sink = np_fl_pass(g->kernel, g->iters / 8 + 1, xy); /* warm-up: clocks ramp up */
    for (int r = 0; r < g->reps; r++) {
        np_team_barrier(team);
        g->t0[r * nt + i] = np_clock_start();
        sink += np_fl_pass(g->kernel, g->iters, xy);
        g->t1[r * nt + i] = np_clock_stop();
    }
    g->sink[i] = sink;
    return 0;
}

int np_fl_run(const int *cpus, int n, np_fl_args *args, int *ran_on, np_failure *failed)
{
    if (failed != NULL)
        *failed = (np_failure){.call = NULL, .cpu = -1};
    if (args == NULL || np_fl_kernel_info_get(args->kernel) == NULL || args->iters == 0 ||
        args->reps < 1 || args->t0 == NULL || args->t1 == NULL || args->sink == NULL)
        return -EINVAL;
    int rc = np_fl_supported(args->kernel);
    if (rc != 0)
        return rc;
    return np_team_run(cpus, n, fl_member, args, ran_on, failed);
}
