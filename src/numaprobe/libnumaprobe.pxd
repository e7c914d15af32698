# Raw declarations of the C core's public header (native/include/numaprobe/numaprobe.h).
# Other packages can `from numaprobe cimport libnumaprobe` and build with
# `include_dirs=[numaprobe.get_include()]`; the inline clock reads need nothing else, the other
# functions are reached through numaprobe._core (see _core.pxd).
from libc.stdint cimport uint64_t

cdef extern from "<time.h>":
    ctypedef int clockid_t
    enum:
        CLOCK_MONOTONIC
        CLOCK_MONOTONIC_RAW
        CLOCK_REALTIME

cdef extern from "numaprobe/numaprobe.h" nogil:
    # affinity.c
    int np_affinity_get(int tid, unsigned char *mask, size_t mask_bytes)
    int np_affinity_set(int tid, const unsigned char *mask, size_t mask_bytes)
    int np_getcpu(unsigned *cpu, unsigned *node)
    int np_gettid()
    int np_die_with_parent(int signum)

    # memory.c
    enum:
        NP_POLICY_DEFAULT
        NP_POLICY_PREFERRED
        NP_POLICY_BIND
        NP_POLICY_INTERLEAVE
        NP_POLICY_LOCAL
    enum:
        NP_BACKING_4K
        NP_BACKING_THP
        NP_BACKING_HUGETLB_2M
        NP_BACKING_HUGETLB_1G
    enum:
        NP_MF_STRICT
        NP_MF_MOVE
    ctypedef struct np_region:
        void *addr
        size_t length
        size_t page_size
        void *map_addr
        size_t map_length
        int backing
    int np_mem_map(np_region *r, size_t nbytes, int backing)
    int np_mem_unmap(np_region *r)
    int np_mem_bind(void *addr, size_t len, int policy, const unsigned long *nodemask,
                    unsigned long maxnode, unsigned flags)
    int np_mem_touch(void *addr, size_t len, size_t page_size)
    int np_mem_where(void *addr, size_t npages, size_t page_size, int *nodes)
    int np_mem_migrate(void *addr, size_t npages, size_t page_size, int node, int *status)
    int np_mempolicy_get(int *policy, unsigned long *nodemask, unsigned long maxnode)
    int np_mempolicy_set(int policy, const unsigned long *nodemask, unsigned long maxnode)

    # clock.c (the reads are static inline)
    enum:
        NP_CLOCK_TSC
        NP_CLOCK_CNTVCT
        NP_CLOCK_MONOTONIC
    uint64_t np_clock_start()
    uint64_t np_clock_stop()
    uint64_t np_clock_ref_ns(clockid_t id)
    int np_clock_kind()
    int np_clock_invariant()
    int np_clock_declared_hz(double *hz)
    int np_clock_calibrate(clockid_t ref, uint64_t window_ns, int rounds, double *ticks_per_ns)
    int np_clock_overhead(int n, double *min_ticks, double *median_ticks)
    int np_clock_resolution(int n, uint64_t *ticks)

    # threads.c (the team itself is C-only; what failed in it comes back to callers)
    ctypedef struct np_failure:
        const char *call
        int cpu

    # chase.c
    int np_chase_build(void *buf, size_t nbytes, size_t line, size_t group_bytes, uint64_t seed)
    int np_chase_run(void *start, uint64_t loads, uint64_t *ticks, void **end)
    int np_chase_cycle_length(void *buf, size_t max_steps, size_t *length)

    # bandwidth.c
    enum:
        NP_BW_READ
        NP_BW_WRITE
        NP_BW_WRITE_NT
        NP_BW_COPY
        NP_BW_COPY_NT
        NP_BW_TRIAD
        NP_BW_TRIAD_NT
        NP_BW_NKERNELS
    ctypedef struct np_bw_kernel_info:
        const char *name
        const char *doc
        int streams, reads, writes, nt, bytes
    const np_bw_kernel_info *np_bw_kernel_info_get(int kernel)
    enum:
        NP_ISA_SCALAR
        NP_ISA_AVX2
        NP_ISA_AVX512
        NP_ISA_NEON
    unsigned np_isa_supported()
    double np_bw_pass(int kernel, int isa, double *a, const double *b, const double *c,
                      size_t n, double s)
    ctypedef struct np_bw_args:
        int kernel, isa
        size_t n
        double **a
        double **b
        double **c
        int reps
        uint64_t *t0
        uint64_t *t1
        double *checksum
        int skip_warmup
    int np_bw_run(const int *cpus, int n, np_bw_args *args, int *ran_on, np_failure *failed)

    # loaded.c
    ctypedef struct np_loaded_args:
        void *chain
        uint64_t loads
        int samples
        uint64_t *lat_ticks
        double **bufs
        size_t n
        uint64_t delay
        uint64_t *bytes
        uint64_t t0, t1
        double sink
    int np_loaded_run(const int *cpus, int n, np_loaded_args *args, int *ran_on,
                      np_failure *failed)
    ctypedef struct np_load_args:
        double **bufs
        size_t n
        uint64_t delay
        void **chains
        volatile int *stop
        uint64_t max_ticks
        uint64_t *bytes
        uint64_t t0, t1
        double sink
    int np_load_run(const int *cpus, int n, np_load_args *args, int *ran_on,
                    np_failure *failed)

    # c2c.c
    int np_c2c_run(int cpu_a, int cpu_b, void *line, uint64_t rounds, uint64_t *ticks,
                   np_failure *failed)

    # flops.c
    enum:
        NP_FL_NKERNELS
    ctypedef struct np_fl_kernel_info:
        const char *name
        const char *doc
        const char *unit
        int ops, instructions
    const np_fl_kernel_info *np_fl_kernel_info_get(int kernel)
    int np_fl_supported(int kernel)
    uint64_t np_fl_ops(int kernel, uint64_t iters)
    ctypedef struct np_fl_args:
        int kernel
        uint64_t iters
        int reps
        uint64_t *t0
        uint64_t *t1
        double *sink
    int np_fl_run(const int *cpus, int n, np_fl_args *args, int *ran_on, np_failure *failed)

    # perf.c
    int np_perf_open(int type, uint64_t config, int tid)
    int np_perf_read(int fd, uint64_t *value)
    int np_perf_close(int fd)
