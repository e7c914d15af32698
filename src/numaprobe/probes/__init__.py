"""The memory system, measured: idle latency (and its curve over working-set sizes), bandwidth,
loaded latency and core-to-core latency; and the compute ceilings (flops). Every kernel runs in C on threads pinned before they
touch memory, without the GIL; every figure comes with its spread (numaprobe.stats).

The modules are private; everything public is re-exported here."""
from ._bandwidth import (KERNELS, BandwidthMatrix, BandwidthResult, bandwidth, bandwidth_matrix,
                         peak_bandwidth, threads_sweep)
from ._bandwidth import run as run_bandwidth
from ._c2c import C2CMatrix, c2c_matrix
from ._flops import FlopsResult, flops
from ._latency import (LatencyMatrix, LatencyResult, Level, Sweep, detect_levels, latency,
                       latency_matrix, latency_sweep, sweep_sizes)
from ._loaded import LoadedCurve, loaded_latency
from ._quick import quick_check
from ._repeat import Interrupted, repeat

__all__ = [
    "KERNELS", "BandwidthMatrix", "BandwidthResult", "C2CMatrix", "FlopsResult", "Interrupted", "LatencyMatrix",
    "LatencyResult", "Level", "LoadedCurve", "Sweep", "bandwidth", "bandwidth_matrix",
    "c2c_matrix", "detect_levels", "flops", "latency", "latency_matrix", "latency_sweep",
    "loaded_latency", "peak_bandwidth", "quick_check", "repeat", "run_bandwidth", "sweep_sizes",
    "threads_sweep",
]
