# The typed API of numaprobe's extension for other Cython code:
#     from numaprobe._core cimport clock_start, clock_stop, ticks_to_ns
# Call numaprobe.clock.calibrate() (Python) once first; then these are safe in `nogil` blocks.
from libc.stdint cimport uint64_t

cdef uint64_t clock_start() noexcept nogil
cdef uint64_t clock_stop() noexcept nogil
# Nanoseconds for a tick count by the current calibration (NaN before calibrate()).
cdef double ticks_to_ns(double ticks) noexcept nogil
