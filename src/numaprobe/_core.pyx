# cython: language_level=3
"""The thin layer over the C core: converts types, releases the GIL, maps -errno to OSError.

No logic lives here. Every failing call raises ``OSError(errno, "<strerror> (<syscall>)")``;
Python's OSError constructor turns well-known errnos into subclasses (PermissionError, ...).
Validation and human messages are the Python modules' job (placement.py, clock.py).
"""
import os
from array import array

from cpython.buffer cimport PyBuffer_FillInfo, PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free
from libc.math cimport NAN

from numaprobe cimport libnumaprobe as c

# Node masks as the kernel takes them: MAX_NUMNODES on common kernels is 1024.
cdef enum:
    MAXNODE = 1024
    MASK_LONGS = 16  # 1024 bits in 64-bit longs

POLICY_DEFAULT = c.NP_POLICY_DEFAULT
POLICY_PREFERRED = c.NP_POLICY_PREFERRED
POLICY_BIND = c.NP_POLICY_BIND
POLICY_INTERLEAVE = c.NP_POLICY_INTERLEAVE
POLICY_LOCAL = c.NP_POLICY_LOCAL
BACKING_4K = c.NP_BACKING_4K
BACKING_THP = c.NP_BACKING_THP
BACKING_HUGETLB_2M = c.NP_BACKING_HUGETLB_2M
BACKING_HUGETLB_1G = c.NP_BACKING_HUGETLB_1G
MF_STRICT = c.NP_MF_STRICT
MF_MOVE = c.NP_MF_MOVE
CLOCK_TSC = c.NP_CLOCK_TSC
CLOCK_CNTVCT = c.NP_CLOCK_CNTVCT
CLOCK_MONOTONIC = c.NP_CLOCK_MONOTONIC
REF_MONOTONIC_RAW = c.CLOCK_MONOTONIC_RAW
REF_MONOTONIC = c.CLOCK_MONOTONIC
MAX_NODES = MAXNODE


cdef int check(int rc, str call) except -1:
    if rc < 0:
        raise OSError(-rc, f"{os.strerror(-rc)} ({call})")
    return 0


cdef int check_team(int rc, str wrapper, c.np_failure *failed) except -1:
    """check() for the kernels that run a team of pinned threads: the message names the call
    that failed inside the team and its CPU ("sched_setaffinity for CPU 9 in bw_run"); the
    wrapper alone when the kernel itself refused its arguments."""
    if rc >= 0:
        return 0
    where = wrapper
    if failed.call != NULL:
        cpu = f" for CPU {failed.cpu}" if failed.cpu != -1 else ""
        where = f"{failed.call.decode()}{cpu} in {wrapper}"
    return check(rc, where)


# ------------------------------------------------------------------------------------ affinity

cdef size_t _cpu_mask_bytes = 128  # grows when the kernel says the machine has more CPUs


def affinity_get(int tid=0):
    """The CPUs thread ``tid`` (0: the caller) may run on, as a frozenset of CPU ids."""
    global _cpu_mask_bytes
    cdef unsigned char *mask
    cdef int rc
    while True:
        mask = <unsigned char *>calloc(_cpu_mask_bytes, 1)
        if mask == NULL:
            raise MemoryError()
        with nogil:
            rc = c.np_affinity_get(tid, mask, _cpu_mask_bytes)
        if rc == -22 and _cpu_mask_bytes < (1 << 20):  # EINVAL: mask smaller than the kernel's
            free(mask)
            _cpu_mask_bytes *= 2
            continue
        try:
            check(rc, "sched_getaffinity")
            cpus = []
            for i in range(_cpu_mask_bytes * 8):
                if mask[i >> 3] & (1 << (i & 7)):
                    cpus.append(i)
            return frozenset(cpus)
        finally:
            free(mask)


def affinity_set(cpus, int tid=0):
    """Restricts thread ``tid`` (0: the caller) to ``cpus`` (an iterable of CPU ids)."""
    cpus = sorted(set(cpus))
    cdef size_t nbytes = max(_cpu_mask_bytes, ((max(cpus) // 64) + 1) * 8 if cpus else 8)
    cdef unsigned char *mask = <unsigned char *>calloc(nbytes, 1)
    cdef int rc
    if mask == NULL:
        raise MemoryError()
    try:
        for cpu in cpus:
            if cpu < 0:
                raise ValueError(f"negative CPU id {cpu}")
            mask[cpu >> 3] |= 1 << (cpu & 7)
        with nogil:
            rc = c.np_affinity_set(tid, mask, nbytes)
        check(rc, "sched_setaffinity")
    finally:
        free(mask)


def getcpu():
    """(cpu, node) the caller runs on at this instant."""
    cdef unsigned cpu = 0, node = 0
    check(c.np_getcpu(&cpu, &node), "getcpu")
    return cpu, node


def gettid():
    """The kernel thread id of the caller."""
    return c.np_gettid()


def die_with_parent(int signum):
    """From now on this process gets ``signum`` when the thread that forked it exits."""
    check(c.np_die_with_parent(signum), "prctl PR_SET_PDEATHSIG")


# ------------------------------------------------------------------------------ memory policy

cdef void _to_mask(nodes, unsigned long *mask) except *:
    cdef int bits = 8 * sizeof(unsigned long)
    for n in nodes:
        if not 0 <= n < MAXNODE:
            raise ValueError(f"node {n} is outside 0..{MAXNODE - 1}")
        mask[n // bits] |= 1UL << (n % bits)


cdef frozenset _from_mask(unsigned long *mask):
    cdef int bits = 8 * sizeof(unsigned long)
    nodes = []
    for n in range(MAXNODE):
        if mask[n // bits] & (1UL << (n % bits)):
            nodes.append(n)
    return frozenset(nodes)


def mempolicy_get():
    """The calling thread's memory policy: (policy, frozenset of nodes)."""
    cdef unsigned long mask[MASK_LONGS]
    cdef int policy = 0
    for i in range(MASK_LONGS):
        mask[i] = 0
    check(c.np_mempolicy_get(&policy, mask, MAXNODE), "get_mempolicy")
    return policy, _from_mask(mask)


def mempolicy_set(int policy, nodes=()):
    """Sets the calling thread's memory policy (set_mempolicy)."""
    cdef unsigned long mask[MASK_LONGS]
    for i in range(MASK_LONGS):
        mask[i] = 0
    _to_mask(nodes, mask)
    cdef unsigned long *m = mask if nodes else NULL
    check(c.np_mempolicy_set(policy, m, MAXNODE), "set_mempolicy")


# ------------------------------------------------------------------------------------- memory

cdef class Region:
    """Anonymous memory mapped by the C core; exposes the buffer protocol (bytes, writable).

    ``close()`` unmaps it; it refuses while views (numpy arrays, memoryviews) still exist, so
    no view can ever point at unmapped memory.
    """
    cdef c.np_region r
    cdef Py_ssize_t exports

    def __cinit__(self, size_t nbytes, int backing, *args, **kwargs):
        cdef int rc
        with nogil:
            rc = c.np_mem_map(&self.r, nbytes, backing)
        check(rc, "mmap")

    def __dealloc__(self):
        if self.exports == 0:
            c.np_mem_unmap(&self.r)

    @property
    def address(self):
        return <size_t>self.r.addr

    @property
    def nbytes(self):
        return self.r.length

    @property
    def page_size(self):
        """The page size the mapping was made with (THP-backed mappings say 4096 here)."""
        return self.r.page_size

    @property
    def backing(self):
        return self.r.backing

    @property
    def closed(self):
        return self.r.addr == NULL

    cdef int _open(self) except -1:
        if self.r.addr == NULL:
            raise ValueError("the memory was closed (use after close())")
        return 0

    def bind(self, int policy, nodes, unsigned flags=0):
        """mbind(2) the whole range."""
        self._open()
        cdef unsigned long mask[MASK_LONGS]
        cdef int rc
        for i in range(MASK_LONGS):
            mask[i] = 0
        _to_mask(nodes, mask)
        with nogil:
            rc = c.np_mem_bind(self.r.addr, self.r.length, policy, mask, MAXNODE, flags)
        check(rc, "mbind")

    def touch(self):
        """First touch: one write per page, so the policy places every page now."""
        self._open()
        with nogil:
            c.np_mem_touch(self.r.addr, self.r.length, self.r.page_size)

    def close(self):
        if self.exports > 0:
            raise BufferError(f"cannot close: {self.exports} view(s) of this memory still exist;"
                              " delete the arrays or memoryviews first")
        check(c.np_mem_unmap(&self.r), "munmap")

    def __getbuffer__(self, Py_buffer *buf, int flags):
        self._open()
        PyBuffer_FillInfo(buf, self, self.r.addr, self.r.length, 0, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *buf):
        self.exports -= 1


def buffer_span(obj):
    """(address, nbytes) of any object with the buffer protocol (a numpy array, bytearray...)."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)
    try:
        return <size_t>view.buf, view.len
    finally:
        PyBuffer_Release(&view)


def pages_where(size_t address, size_t npages, size_t page_size):
    """The node of every page (move_pages without a target): array('i'); -errno for a page
    that is not present (-ENOENT: never touched)."""
    out = array("i", bytes(4 * npages))
    cdef int[::1] v = out
    cdef int rc = 0
    if npages:
        with nogil:
            rc = c.np_mem_where(<void *>address, npages, page_size, &v[0])
    check(rc, "move_pages")
    return out


def pages_migrate(size_t address, size_t npages, size_t page_size, int node):
    """Moves every page to ``node``: array('i') of the node or -errno for each page."""
    out = array("i", bytes(4 * npages))
    cdef int[::1] v = out
    cdef int rc = 0
    if npages:
        with nogil:
            rc = c.np_mem_migrate(<void *>address, npages, page_size, node, &v[0])
    check(rc, "move_pages")
    return out


# -------------------------------------------------------------------------------------- clock

cdef double _ticks_per_ns = NAN


cdef uint64_t clock_start() noexcept nogil:
    return c.np_clock_start()


cdef uint64_t clock_stop() noexcept nogil:
    return c.np_clock_stop()


cdef double ticks_to_ns(double ticks) noexcept nogil:
    return ticks / _ticks_per_ns


def set_ticks_per_ns(double value):
    """Installs the calibration that ticks_to_ns (the cimport API) uses."""
    global _ticks_per_ns
    _ticks_per_ns = value


def clock_ticks():
    """One serialised read of the counter (start-of-region form)."""
    return c.np_clock_start()


def clock_ref_ns(int ref=c.CLOCK_MONOTONIC_RAW):
    return c.np_clock_ref_ns(ref)


def clock_kind():
    return c.np_clock_kind()


def clock_invariant():
    """1 invariant, 0 not, -errno when the hardware cannot be asked."""
    return c.np_clock_invariant()


def clock_declared_hz():
    """The frequency the hardware or hypervisor declares, or None."""
    cdef double hz = 0
    return hz if c.np_clock_declared_hz(&hz) == 0 else None


def clock_calibrate(int ref, uint64_t window_ns, int rounds=50):
    """Ticks per ns against reference clock ``ref`` over ``window_ns`` (GIL released)."""
    cdef double tpn = 0
    cdef int rc
    with nogil:
        rc = c.np_clock_calibrate(ref, window_ns, rounds, &tpn)
    check(rc, "clock_calibrate")
    return tpn


def clock_overhead(int n=100000):
    """(min, median) ticks of one back-to-back start/stop pair."""
    cdef double lo = 0, med = 0
    cdef int rc
    with nogil:
        rc = c.np_clock_overhead(n, &lo, &med)
    check(rc, "clock_overhead")
    return lo, med


def clock_resolution(int n=100000):
    """Smallest non-zero step between consecutive reads, in ticks."""
    cdef uint64_t t = 0
    cdef int rc
    with nogil:
        rc = c.np_clock_resolution(n, &t)
    check(rc, "clock_resolution")
    return t


# ------------------------------------------------------------------------------------- probes

ISA_NAMES = {c.NP_ISA_SCALAR: "scalar", c.NP_ISA_AVX2: "avx2", c.NP_ISA_AVX512: "avx512"}


def bw_kernels():
    """The C core's bandwidth kernel table (bandwidth.c), in its order: one dict a kernel with
    name, doc, streams, reads, writes, nt (non-temporal stores) and bytes (per element)."""
    cdef const c.np_bw_kernel_info *k
    cdef int i = 0
    out = []
    while True:
        k = c.np_bw_kernel_info_get(i)
        if k == NULL:
            return out
        out.append({"name": k.name.decode(), "doc": k.doc.decode(), "streams": k.streams,
                    "reads": k.reads, "writes": k.writes, "nt": bool(k.nt), "bytes": k.bytes})
        i += 1


BW_KERNELS = {k["name"]: i for i, k in enumerate(bw_kernels())}  # name -> enum np_bw_kernel


def isa_supported():
    """Names of the kernel widths this CPU runs: scalar, avx2, avx512."""
    cdef unsigned mask = c.np_isa_supported()
    return tuple(name for bit, name in ISA_NAMES.items() if mask & (1u << bit))


cdef int *_int_array(values) except NULL:
    cdef int *out = <int *>calloc(max(1, len(values)), sizeof(int))
    if out == NULL:
        raise MemoryError()
    for i, v in enumerate(values):
        out[i] = v
    return out


def chase_build(size_t address, size_t nbytes, size_t line=64, size_t group_bytes=0,
                uint64_t seed=1):
    """One random cycle through the lines of [address, address+nbytes) (see chase.c)."""
    cdef int rc
    with nogil:
        rc = c.np_chase_build(<void *>address, nbytes, line, group_bytes, seed)
    check(rc, "chase_build")


def chase_cycle_length(size_t address, size_t max_steps):
    cdef size_t n = 0
    cdef int rc
    with nogil:
        rc = c.np_chase_cycle_length(<void *>address, max_steps, &n)
    check(rc, "chase_cycle_length")
    return n


def loaded_run(cpus, size_t chain, uint64_t loads, int samples, bufs=(), size_t n=0,
               uint64_t delay=0):
    """cpus[0] follows the chain for `samples` samples of `loads` loads while cpus[1:] read
    bufs (addresses of n doubles each). Returns (latency ticks per sample, bytes read per
    traffic thread, ticks spanning the samples, CPUs the threads ran on)."""
    cdef int nt = len(cpus)
    if nt < 1 or len(bufs) != nt - 1:
        raise ValueError("loaded_run needs one CPU for the chase and one buffer per other CPU")
    cdef int *cpu_arr = _int_array(cpus)
    cdef int *ran_on = _int_array([-1] * nt)
    cdef uint64_t *lat = <uint64_t *>calloc(samples, sizeof(uint64_t))
    cdef uint64_t *nbytes = <uint64_t *>calloc(max(1, nt - 1), sizeof(uint64_t))
    cdef double **b = <double **>calloc(max(1, nt - 1), sizeof(double *))
    cdef c.np_loaded_args args
    cdef c.np_failure failed
    cdef int rc
    try:
        if lat == NULL or nbytes == NULL or b == NULL:
            raise MemoryError()
        for i, addr in enumerate(bufs):
            b[i] = <double *><size_t>addr
        args.chain = <void *>chain
        args.loads = loads
        args.samples = samples
        args.lat_ticks = lat
        args.bufs = b
        args.n = n
        args.delay = delay
        args.bytes = nbytes
        args.t0 = args.t1 = 0
        args.sink = 0
        with nogil:
            rc = c.np_loaded_run(cpu_arr, nt, &args, ran_on, &failed)
        check_team(rc, "loaded_run", &failed)
        return ([lat[i] for i in range(samples)], [nbytes[i] for i in range(nt - 1)],
                args.t1 - args.t0, [ran_on[i] for i in range(nt)])
    finally:
        free(cpu_arr)
        free(ran_on)
        free(lat)
        free(nbytes)
        free(b)


cdef class StopFlag:
    """A flag that ends a load_run() from another thread (set() is safe while it runs)."""
    cdef volatile int flag

    def set(self):
        self.flag = 1

    def clear(self):
        self.flag = 0

    @property
    def is_set(self):
        return self.flag != 0


def load_run(cpus, StopFlag stop, uint64_t max_ticks, bufs=None, size_t n=0, uint64_t delay=0,
             chains=None):
    """The load generator (loaded.c): thread i, on cpus[i], reads bufs[i] (the address of n
    doubles) with `delay` spins between 512-byte blocks, or walks chains[i] (a chain's
    address, where chains is given and chains[i] is not None), until stop.set() or
    max_ticks counter ticks. Call it from a thread of its own: it releases the GIL. Returns
    (bytes per thread, ticks it ran, CPUs the threads ran on)."""
    cdef int nt = len(cpus)
    bufs = list(bufs) if bufs is not None else [None] * nt
    chains = list(chains) if chains is not None else [None] * nt
    if nt < 1 or len(bufs) != nt or len(chains) != nt:
        raise ValueError("load_run needs one buffer or chain per CPU")
    if max_ticks == 0:
        raise ValueError("max_ticks must be positive")
    cdef int *cpu_arr = _int_array(cpus)
    cdef int *ran_on = _int_array([-1] * nt)
    cdef uint64_t *nbytes = <uint64_t *>calloc(nt, sizeof(uint64_t))
    cdef double **b = <double **>calloc(nt, sizeof(double *))
    cdef void **ch = <void **>calloc(nt, sizeof(void *))
    cdef c.np_load_args args
    cdef c.np_failure failed
    cdef int rc
    try:
        if nbytes == NULL or b == NULL or ch == NULL:
            raise MemoryError()
        for i in range(nt):
            b[i] = <double *><size_t>bufs[i] if bufs[i] is not None else NULL
            ch[i] = <void *><size_t>chains[i] if chains[i] is not None else NULL
        args.bufs = b
        args.n = n
        args.delay = delay
        args.chains = ch
        args.stop = &stop.flag
        args.max_ticks = max_ticks
        args.bytes = nbytes
        args.t0 = args.t1 = 0
        args.sink = 0
        with nogil:
            rc = c.np_load_run(cpu_arr, nt, &args, ran_on, &failed)
        check_team(rc, "load_run", &failed)
        return ([nbytes[i] for i in range(nt)], args.t1 - args.t0,
                [ran_on[i] for i in range(nt)])
    finally:
        free(cpu_arr)
        free(ran_on)
        free(nbytes)
        free(b)
        free(ch)


def bw_run(cpus, str kernel, str isa, size_t n, a, b=None, cc=None, int reps=5, bint warmup=True):
    """Runs a bandwidth kernel on every CPU at once, `reps` times (after one warm-up pass
    unless warmup=False); thread i works on the arrays at addresses a[i], b[i], cc[i] of n
    doubles. Returns (t0, t1, checksums, ran_on) with t0/t1 as lists of per-repetition lists
    of per-thread ticks."""
    cdef int nt = len(cpus)
    if kernel not in BW_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(BW_KERNELS)}")
    isa_ids = {v: k for k, v in ISA_NAMES.items()}
    if isa not in isa_ids:
        raise ValueError(f"unknown ISA {isa!r}; this CPU runs: {', '.join(isa_supported())}")
    cdef int *cpu_arr = _int_array(cpus)
    cdef int *ran_on = _int_array([-1] * nt)
    cdef uint64_t *t0 = <uint64_t *>calloc(reps * nt, sizeof(uint64_t))
    cdef uint64_t *t1 = <uint64_t *>calloc(reps * nt, sizeof(uint64_t))
    cdef double *sums = <double *>calloc(nt, sizeof(double))
    cdef double **pa = <double **>calloc(nt, sizeof(double *))
    cdef double **pb = <double **>calloc(nt, sizeof(double *))
    cdef double **pc = <double **>calloc(nt, sizeof(double *))
    cdef c.np_bw_args args
    cdef c.np_failure failed
    cdef int rc
    try:
        if not (t0 and t1 and sums and pa and pb and pc):
            raise MemoryError()
        for i in range(nt):
            pa[i] = <double *><size_t>a[i]
            pb[i] = <double *><size_t>b[i] if b is not None else NULL
            pc[i] = <double *><size_t>cc[i] if cc is not None else NULL
        args.kernel = BW_KERNELS[kernel]
        args.isa = isa_ids[isa]
        args.n = n
        args.a = pa
        args.b = pb if b is not None else NULL
        args.c = pc if cc is not None else NULL
        args.reps = reps
        args.t0 = t0
        args.t1 = t1
        args.checksum = sums
        args.skip_warmup = not warmup
        with nogil:
            rc = c.np_bw_run(cpu_arr, nt, &args, ran_on, &failed)
        check_team(rc, "bw_run", &failed)
        return ([[t0[r * nt + i] for i in range(nt)] for r in range(reps)],
                [[t1[r * nt + i] for i in range(nt)] for r in range(reps)],
                [sums[i] for i in range(nt)], [ran_on[i] for i in range(nt)])
    finally:
        free(cpu_arr)
        free(ran_on)
        free(t0)
        free(t1)
        free(sums)
        free(pa)
        free(pb)
        free(pc)


def c2c_run(int cpu_a, int cpu_b, size_t line, uint64_t rounds):
    """Ticks for `rounds` round trips of the cache line at `line` between two CPUs."""
    cdef uint64_t ticks = 0
    cdef c.np_failure failed
    cdef int rc
    with nogil:
        rc = c.np_c2c_run(cpu_a, cpu_b, <void *>line, rounds, &ticks, &failed)
    check_team(rc, "c2c_run", &failed)
    return ticks


# ------------------------------------------------------------------------------------- flops

def fl_kernels():
    """The compute kernel table (flops.c), in enum order: name, doc, unit, ops per
    instruction, instructions per iteration."""
    out = []
    cdef const c.np_fl_kernel_info *k
    for i in range(c.NP_FL_NKERNELS):
        k = c.np_fl_kernel_info_get(i)
        out.append({"name": k.name.decode(), "doc": k.doc.decode(), "unit": k.unit.decode(),
                    "ops": k.ops, "instructions": k.instructions})
    return out


FL_KERNELS = {k["name"]: i for i, k in enumerate(fl_kernels())}  # name -> enum np_fl_kernel


def fl_supported(str kernel):
    """None when this CPU (and kernel) can run the compute kernel; else the OSError that says
    why not (ENOTSUP: the CPU lacks the unit; AMX: the kernel's arch_prctl refusal)."""
    if kernel not in FL_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(FL_KERNELS)}")
    cdef int rc = c.np_fl_supported(FL_KERNELS[kernel])
    return None if rc == 0 else OSError(-rc, os.strerror(-rc))


def fl_ops(str kernel, uint64_t iters):
    """Operations in one pass of ``iters`` iterations."""
    return c.np_fl_ops(FL_KERNELS[kernel], iters)


def fl_run(cpus, str kernel, uint64_t iters, int reps=5):
    """Runs a compute kernel on every CPU at once, ``reps`` timed passes of ``iters``
    iterations after a short warm-up. Returns (t0, t1, ran_on) with t0/t1 as lists of
    per-pass lists of per-thread ticks."""
    if kernel not in FL_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(FL_KERNELS)}")
    cdef int nt = len(cpus)
    cdef int *cpu_arr = _int_array(cpus)
    cdef int *ran_on = _int_array([-1] * nt)
    cdef uint64_t *t0 = <uint64_t *>calloc(max(1, reps * nt), sizeof(uint64_t))
    cdef uint64_t *t1 = <uint64_t *>calloc(max(1, reps * nt), sizeof(uint64_t))
    cdef double *sink = <double *>calloc(max(1, nt), sizeof(double))
    cdef c.np_fl_args args
    cdef c.np_failure failed
    cdef int rc
    try:
        if not (t0 and t1 and sink):
            raise MemoryError()
        args.kernel = FL_KERNELS[kernel]
        args.iters = iters
        args.reps = reps
        args.t0 = t0
        args.t1 = t1
        args.sink = sink
        with nogil:
            rc = c.np_fl_run(cpu_arr, nt, &args, ran_on, &failed)
        check_team(rc, "fl_run", &failed)
        return ([[t0[r * nt + i] for i in range(nt)] for r in range(reps)],
                [[t1[r * nt + i] for i in range(nt)] for r in range(reps)],
                [ran_on[i] for i in range(nt)])
    finally:
        free(cpu_arr)
        free(ran_on)
        free(t0)
        free(t1)
        free(sink)


# -------------------------------------------------------------------------------------- perf

def perf_open(int type, uint64_t config, int tid=0):
    """A counter of thread ``tid`` (0: the caller), counting from now: its descriptor, or
    OSError (ENOENT: the machine does not offer the event)."""
    cdef int rc = c.np_perf_open(type, config, tid)
    check(rc, "perf_event_open")
    return rc


def perf_read(int fd):
    cdef uint64_t value = 0
    check(c.np_perf_read(fd, &value), "perf read")
    return value


def perf_close(int fd):
    check(c.np_perf_close(fd), "perf close")
