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
