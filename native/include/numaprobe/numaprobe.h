/*
 * numaprobe native core: the one public header.
 *
 * Plain C, no Python.h. Every function that can fail returns 0 or -errno; nothing here prints,
 * exits or keeps global state other than what is documented. Node masks are arrays of unsigned
 * long with `maxnode` bits, exactly as the kernel's mbind/set_mempolicy take them; CPU masks are
 * arrays of unsigned char (bit i of byte i/8 is CPU i).
 *
 * The clock reads are `static inline` so a kernel (or a Cython consumer in a nogil block) pays
 * only the instruction itself.
 */
#ifndef NUMAPROBE_H
#define NUMAPROBE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- affinity.c */

/* Thread ids: 0 means the calling thread. */
int np_affinity_get(int tid, unsigned char *mask, size_t mask_bytes);
int np_affinity_set(int tid, const unsigned char *mask, size_t mask_bytes);
/* The CPU and node the caller runs on now (getcpu). */
int np_getcpu(unsigned *cpu, unsigned *node);
/* The kernel thread id of the caller (gettid). */
int np_gettid(void);
/* The caller gets signal signum when the thread that forked it exits (prctl
 * PR_SET_PDEATHSIG), so a worker never outlives a driver that was killed. */
int np_die_with_parent(int signum);

/* ---------------------------------------------------------------- memory.c */

/* Memory policies: the kernel's MPOL_* values. */
enum np_policy {
    NP_POLICY_DEFAULT = 0,
    NP_POLICY_PREFERRED = 1,
    NP_POLICY_BIND = 2,
    NP_POLICY_INTERLEAVE = 3,
    NP_POLICY_LOCAL = 4,
};

/* How the pages of a mapping are backed. */
enum np_backing {
    NP_BACKING_4K = 0,          /* base pages, THP disabled for the range (MADV_NOHUGEPAGE)   */
    NP_BACKING_THP = 1,         /* base mapping aligned to 2 MiB, MADV_HUGEPAGE               */
    NP_BACKING_HUGETLB_2M = 2,  /* MAP_HUGETLB | MAP_HUGE_2MB: needs reserved huge pages       */
    NP_BACKING_HUGETLB_1G = 3,  /* MAP_HUGETLB | MAP_HUGE_1GB: needs reserved huge pages       */
};

typedef struct np_region {
    void *addr;        /* start of the usable range (aligned to page_size)              */
    size_t length;     /* usable length, a multiple of page_size                         */
    size_t page_size;  /* the page size the mapping was made with (THP: 4096, see smaps) */
    void *map_addr;    /* what mmap returned, for munmap                                 */
    size_t map_length;
    int backing;       /* enum np_backing */
} np_region;

/* Maps at least `nbytes` of anonymous private memory, nothing touched yet. */
int np_mem_map(np_region *r, size_t nbytes, int backing);
/* Unmaps; safe to call twice (the second call does nothing). */
int np_mem_unmap(np_region *r);
/* mbind(2) on [addr, addr+len): `flags` are MPOL_MF_* (0, or NP_MF_MOVE to move existing pages). */
#define NP_MF_STRICT (1u << 0)
#define NP_MF_MOVE (1u << 1)
int np_mem_bind(void *addr, size_t len, int policy, const unsigned long *nodemask,
                unsigned long maxnode, unsigned flags);
/* Writes one byte to every page of the range so the kernel places it (first touch). */
int np_mem_touch(void *addr, size_t len, size_t page_size);
/* The node of each page of [addr, addr+npages*page_size): move_pages with no target. A page
 * that is not present gets -ENOENT (or another -errno) in nodes[i]. */
int np_mem_where(void *addr, size_t npages, size_t page_size, int *nodes);
/* Moves each page of the range to `node`; status[i] gets the node or -errno per page. */
int np_mem_migrate(void *addr, size_t npages, size_t page_size, int node, int *status);
/* The calling thread's memory policy (get_mempolicy) and a new one (set_mempolicy). */
int np_mempolicy_get(int *policy, unsigned long *nodemask, unsigned long maxnode);
int np_mempolicy_set(int policy, const unsigned long *nodemask, unsigned long maxnode);

/* ---------------------------------------------------------------- clock.c */

enum np_clock_kind {
    NP_CLOCK_TSC = 1,        /* x86-64 time-stamp counter         */
    NP_CLOCK_CNTVCT = 2,     /* aarch64 generic timer             */
    NP_CLOCK_MONOTONIC = 3,  /* clock_gettime(CLOCK_MONOTONIC_RAW) */
};

#if defined(__x86_64__)
#define NP_CLOCK_KIND NP_CLOCK_TSC
/* Start of a timed region: lfence keeps earlier instructions from drifting past the read and
 * the read from starting before them; the trailing lfence keeps later loads from starting
 * before the read. */
static inline uint64_t np_clock_start(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
/* End of a timed region: rdtscp waits for earlier instructions to finish; lfence keeps later
 * ones from starting before the read. */
static inline uint64_t np_clock_stop(void)
{
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}
#elif defined(__aarch64__)
#define NP_CLOCK_KIND NP_CLOCK_CNTVCT
static inline uint64_t np_clock_start(void)
{
    uint64_t t;
    __asm__ __volatile__("isb; mrs %0, cntvct_el0; isb" : "=r"(t) :: "memory");
    return t;
}
static inline uint64_t np_clock_stop(void) { return np_clock_start(); }
#else
#define NP_CLOCK_KIND NP_CLOCK_MONOTONIC
static inline uint64_t np_clock_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t np_clock_stop(void) { return np_clock_start(); }
#endif

/* Nanoseconds of CLOCK_MONOTONIC_RAW (or another clock id), the reference the ticks are
 * calibrated against. */
static inline uint64_t np_clock_ref_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock this build reads (enum np_clock_kind). */
int np_clock_kind(void);
/* 1 if the hardware says the counter runs at a constant rate in every state (x86: CPUID
 * 0x80000007 EDX bit 8; aarch64: always), 0 if not, -ENOTSUP where it cannot be asked. */
int np_clock_invariant(void);
/* The counter's frequency as the hardware declares it (x86: CPUID 0x15, else the hypervisor's
 * leaf 0x40000010; aarch64: CNTFRQ_EL0), or -ENOTSUP. */
int np_clock_declared_hz(double *hz);
/* Ticks per nanosecond, measured against clock `ref` (a CLOCK_* id) over about `window_ns`.
 * Each end of the window is a reference read bracketed by two tick reads; the tightest of
 * `rounds` brackets is kept, so a preemption during one read does not skew the result. */
int np_clock_calibrate(clockid_t ref, uint64_t window_ns, int rounds, double *ticks_per_ns);
/* Cost of one back-to-back start/stop pair in ticks: the minimum and the median of `n` pairs. */
int np_clock_overhead(int n, double *min_ticks, double *median_ticks);
/* The smallest non-zero difference between consecutive reads, in ticks, over `n` reads. */
int np_clock_resolution(int n, uint64_t *ticks);

/* ---------------------------------------------------------------- threads.c */

/* What failed inside a run of pinned threads, so the caller's message can name it: `call` is
 * the system call or library function ("sched_setaffinity", "pthread_create", "calloc"), a
 * string literal; `cpu` the CPU of the thread it failed for (-1: none in particular). `call`
 * stays NULL when nothing failed, when an argument check refused the run (the function's own
 * -EINVAL), or when the failure was the kernel function's own return value. */
typedef struct np_failure {
    const char *call;
    int cpu;
} np_failure;

/* A team of threads, each pinned to one CPU before it runs anything, released together. */
typedef struct np_team np_team;
typedef int (*np_team_fn)(np_team *team, int index, void *arg);
/* Runs fn(team, i, arg) on n threads, thread i pinned to cpus[i]; returns when all are done.
 * ran_on[i] (optional) gets the CPU thread i ran on after pinning (getcpu). Returns the first
 * failure: -errno from pinning or thread creation, or fn's own negative return; `failed`
 * (optional) says which call that was. */
int np_team_run(const int *cpus, int n, np_team_fn fn, void *arg, int *ran_on,
                np_failure *failed);
/* All threads of the team wait here until every one has arrived. */
void np_team_barrier(np_team *team);
int np_team_size(const np_team *team);
/* A flag threads poll to stop (set by one of them). */
volatile int *np_team_stop_flag(np_team *team);

/* ---------------------------------------------------------------- chase.c */

/* Builds one random cycle through every `line`-byte line of buf (each line's first word holds
 * the address of the next). With group_bytes > 0 the walk visits the lines of one group (a
 * page or a few) in random order before moving to the next group, groups in random order, so
 * page walks are amortised (TLB-local); with group_bytes == 0 it is random over the whole
 * buffer. Deterministic for a seed. */
int np_chase_build(void *buf, size_t nbytes, size_t line, size_t group_bytes, uint64_t seed);
/* Follows the chain from `start` for `loads` dependent loads; *ticks = elapsed counter ticks
 * (the read overhead not subtracted); *end = where it stopped (keeps the loads alive). */
int np_chase_run(void *start, uint64_t loads, uint64_t *ticks, void **end);
/* Walks the cycle from buf and counts its length (to check it covers every line). */
int np_chase_cycle_length(void *buf, size_t max_steps, size_t *length);

/* ---------------------------------------------------------------- bandwidth.c */

enum np_bw_kernel {
    NP_BW_READ = 0,      /* s += a[i]                       */
    NP_BW_WRITE = 1,     /* a[i] = s                        */
    NP_BW_WRITE_NT = 2,  /* a[i] = s, non-temporal stores   */
    NP_BW_COPY = 3,      /* a[i] = b[i]                     */
    NP_BW_COPY_NT = 4,   /* a[i] = b[i], non-temporal       */
    NP_BW_TRIAD = 5,     /* a[i] = b[i] + s * c[i]          */
    NP_BW_TRIAD_NT = 6,  /* the same, non-temporal stores   */
    NP_BW_NKERNELS = 7,
};
/* One entry of the kernel table, the one list of kernels (Python builds its own from it): what
 * the kernel does and what it moves per element of its arrays, as likwid-bench describes a
 * test (STREAMS, BYTES). */
typedef struct np_bw_kernel_info {
    const char *name;  /* "read", "write_nt", ...: the name users give                      */
    const char *doc;   /* what one element does: "a[i] = b[i] + s * c[i]"                  */
    int streams;       /* arrays the kernel walks: reads + writes                           */
    int reads;         /* arrays read (a for read; b, then c, for the others)               */
    int writes;        /* arrays written (a)                                                */
    int nt;            /* 1: non-temporal stores, no write-allocate reads of a              */
    int bytes;         /* bytes the program moves per element: 8 (a double) per stream      */
} np_bw_kernel_info;
/* The table entry of kernel `kernel` (enum np_bw_kernel), or NULL outside 0..NKERNELS-1. */
const np_bw_kernel_info *np_bw_kernel_info_get(int kernel);
enum np_isa { NP_ISA_SCALAR = 0, NP_ISA_AVX2 = 1, NP_ISA_AVX512 = 2, NP_ISA_NEON = 3 };
/* Which ISAs this CPU can run (bit 1 << NP_ISA_*). */
unsigned np_isa_supported(void);
/* One pass of a kernel over n doubles (n a multiple of 64); returns the sum for NP_BW_READ
 * (a checksum) and 0 otherwise. -EINVAL-like misuse is the caller's to avoid: Python checks. */
double np_bw_pass(int kernel, int isa, double *a, const double *b, const double *c, size_t n,
                  double s);

typedef struct np_bw_args {
    int kernel, isa;
    size_t n;           /* doubles per array per thread (multiple of 64)           */
    double **a, **b, **c; /* per-thread arrays (b, c may be NULL when unused)      */
    int reps;           /* timed repetitions; each one is a sample                  */
    uint64_t *t0, *t1;  /* [reps * nthreads]: start and end ticks of each thread    */
    double *checksum;   /* [nthreads]: read kernels' sum of the last pass           */
    int skip_warmup;    /* 1: the arrays are warm already (0, the default: one pass) */
} np_bw_args;
/* Runs the kernel on every CPU of `cpus` at once, `reps` times, each repetition started by a
 * barrier; one warm-up pass first (not recorded) unless skip_warmup. The arrays a kernel
 * needs are the table's: b when it reads and writes, c when it reads two. `failed`
 * (optional): see np_failure. */
int np_bw_run(const int *cpus, int n, np_bw_args *args, int *ran_on, np_failure *failed);

/* ---------------------------------------------------------------- loaded.c */

typedef struct np_loaded_args {
    void *chain;         /* a chain built by np_chase_build                              */
    uint64_t loads;      /* loads per latency sample                                     */
    int samples;         /* latency samples (the first is a warm-up, also recorded)      */
    uint64_t *lat_ticks; /* [samples]                                                    */
    double **bufs;       /* per traffic thread: a read buffer                            */
    size_t n;            /* doubles per traffic buffer (multiple of 64)                  */
    uint64_t delay;      /* spin iterations between 512-byte read blocks (0: full speed) */
    uint64_t *bytes;     /* [traffic threads] bytes read during the latency samples      */
    uint64_t t0, t1;     /* ticks spanning the latency samples                           */
    double sink;
} np_loaded_args;
/* cpus[0] runs the latency chase; cpus[1..n-1] read their buffers until it is done.
 * `failed` (optional): see np_failure. */
int np_loaded_run(const int *cpus, int n, np_loaded_args *args, int *ran_on,
                  np_failure *failed);

/* A load generator beside a workload (infer --perturb): member i reads bufs[i] like the
 * traffic threads above, or walks chains[i] (where chains is given and chains[i] is not
 * NULL: pressure on a cache), from the first barrier until *stop is set by the caller's
 * other thread or max_ticks pass. bytes[i]: bytes read (a walked line counts 64). */
#define NP_LOAD_CHASE_STEP 4096 /* loads between two looks at the stop flag */
typedef struct np_load_args {
    double **bufs;       /* [n] traffic buffers (NULL where that member walks a chain)   */
    size_t n;            /* doubles per traffic buffer (multiple of 64)                  */
    uint64_t delay;      /* spin iterations between 512-byte read blocks (0: full speed) */
    void **chains;       /* [n] chains built by np_chase_build, or NULL: all traffic     */
    volatile int *stop;  /* the caller sets *stop = 1 to end the run                     */
    uint64_t max_ticks;  /* the run ends by itself after this many counter ticks         */
    uint64_t *bytes;     /* [n] out                                                      */
    uint64_t t0, t1;     /* out: counter ticks at the start and at the end               */
    double sink;
} np_load_args;
int np_load_run(const int *cpus, int n, np_load_args *args, int *ran_on, np_failure *failed);

/* ---------------------------------------------------------------- c2c.c */

/* Bounces the cache line at `line` between CPUs a and b `rounds` times (compare-and-swap);
 * *ticks = counter ticks for all round trips, measured on CPU a. `failed` (optional): see
 * np_failure. */
int np_c2c_run(int cpu_a, int cpu_b, void *line, uint64_t rounds, uint64_t *ticks,
               np_failure *failed);

/* ---------------------------------------------------------------- flops.c */

/* Compute kernels: each a loop of independent multiply-accumulates on registers (bound by the
 * unit's throughput), and NP_FL_CLOCK, a chain of dependent integer adds (one per cycle: its
 * rate is the core clock). */
enum np_fl_kernel {
    NP_FL_CLOCK = 0,
    NP_FL_F32_SCALAR = 1,   /* vfmadd231ss (x86, needs FMA3) / fmadd s (AArch64) */
    NP_FL_F32_AVX2 = 2,     /* vfmadd231ps ymm                                   */
    NP_FL_F32_AVX512 = 3,   /* vfmadd231ps zmm                                   */
    NP_FL_BF16_AVX512 = 4,  /* vdpbf16ps zmm (AVX512-BF16)                       */
    NP_FL_INT8_AVXVNNI = 5, /* vpdpbusd ymm (AVX-VNNI)                           */
    NP_FL_INT8_AVX512 = 6,  /* vpdpbusd zmm (AVX512-VNNI)                        */
    NP_FL_BF16_AMX = 7,     /* tdpbf16ps (AMX-BF16)                              */
    NP_FL_INT8_AMX = 8,     /* tdpbusd (AMX-INT8)                                */
    NP_FL_F32_NEON = 9,     /* fmla v.4s (AArch64)                               */
    NP_FL_F32_SVE = 10,     /* fmla z.s (AArch64 SVE, where the compiler has it) */
    NP_FL_NKERNELS = 11,
};
/* One entry of the kernel table, the one list of compute kernels. */
typedef struct np_fl_kernel_info {
    const char *name;  /* "f32_avx2", ...: the name users give              */
    const char *doc;   /* what one instruction does                          */
    const char *unit;  /* "flop", "op" (integer) or "add" (the clock)        */
    int ops;           /* operations per instruction (a multiply-add is 2)   */
    int instructions;  /* instructions per iteration                         */
} np_fl_kernel_info;
/* The table entry of `kernel` (enum np_fl_kernel), or NULL outside 0..NKERNELS-1. */
const np_fl_kernel_info *np_fl_kernel_info_get(int kernel);
/* 0 when this CPU (and, for AMX, the kernel: arch_prctl ARCH_REQ_XCOMP_PERM, asked for here)
 * can run `kernel`; -ENOTSUP when the CPU lacks the unit; AMX's refusal as -errno (EINVAL:
 * a kernel without AMX support); -EINVAL for no such kernel. */
int np_fl_supported(int kernel);
/* One pass of `iters` iterations; returns a value that depends on every operation. `xy`:
 * three operands the compiler cannot see. The caller checks np_fl_supported first. */
double np_fl_pass(int kernel, uint64_t iters, const float *xy);
/* Operations in a pass of `iters` iterations (the clock: adds). */
uint64_t np_fl_ops(int kernel, uint64_t iters);

typedef struct np_fl_args {
    int kernel;
    uint64_t iters;     /* iterations per timed pass                           */
    int reps;           /* timed passes; each one is a sample                  */
    uint64_t *t0, *t1;  /* [reps * nthreads]: start and end ticks of each pass  */
    double *sink;       /* [nthreads]: the passes' values, kept                 */
} np_fl_args;
/* Runs the kernel on every CPU of `cpus` at once, `reps` times, each pass started by a
 * barrier, after an untimed warm-up pass (1/8 as long) that lets the clock ramp up.
 * `failed` (optional): see np_failure. */
int np_fl_run(const int *cpus, int n, np_fl_args *args, int *ran_on, np_failure *failed);

/* ---------------------------------------------------------------- perf.c */

/* A counter (perf_event_open) of thread `tid` (0: the caller) on any CPU, counting from now:
 * `type` PERF_TYPE_HARDWARE (0; user space only), PERF_TYPE_SOFTWARE (1) or
 * PERF_TYPE_HW_CACHE (3), `config` the event. The file descriptor, or -errno: ENOENT or
 * EOPNOTSUPP where the machine does not offer the event (most VMs have no hardware ones),
 * EACCES or EPERM where perf_event_paranoid forbids it. */
int np_perf_open(int type, uint64_t config, int tid);
/* The count so far, scaled to the whole time enabled when the kernel multiplexed it. */
int np_perf_read(int fd, uint64_t *value);
int np_perf_close(int fd);

#ifdef __cplusplus
}
#endif
#endif /* NUMAPROBE_H */
