# `cimport numaprobe` gives the raw header declarations and the typed clock API.
from numaprobe cimport libnumaprobe
from numaprobe._core cimport clock_start, clock_stop, ticks_to_ns
