# A package outside numaprobe that uses it from Cython: the inline header reads and the
# typed API exported by numaprobe._core, inside a nogil block.
from numaprobe cimport libnumaprobe
from numaprobe._core cimport clock_start, clock_stop, ticks_to_ns


def spin_ns(long iterations):
    """Times a busy loop with numaprobe's clock without the GIL; returns (ns, ticks, sum)."""
    cdef unsigned long long t0, t1, raw0
    cdef double ns
    cdef volatile long acc = 0
    cdef long i
    with nogil:
        raw0 = libnumaprobe.np_clock_start()
        t0 = clock_start()
        for i in range(iterations):
            acc += i
        t1 = clock_stop()
        ns = ticks_to_ns(<double>(t1 - t0))
    return ns, t1 - t0, acc, t0 >= raw0
