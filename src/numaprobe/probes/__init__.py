"""The memory system, measured: idle latency (and its curve over working-set sizes), bandwidth,
loaded latency and core-to-core latency. Every kernel runs in C on threads pinned before they
touch memory, without the GIL; every figure comes with its spread (numaprobe.stats)."""
from .bandwidth import (KERNELS, BandwidthResult, bandwidth, bandwidth_matrix, peak_bandwidth,
                        threads_sweep)
from .c2c import C2CMatrix, c2c_matrix
from .latency import (LatencyMatrix, LatencyResult, Sweep, latency, latency_matrix,
                      latency_sweep)
from .loaded import LoadedCurve, loaded_latency

__all__ = [
    "KERNELS", "BandwidthResult", "C2CMatrix", "LatencyMatrix", "LatencyResult", "LoadedCurve",
    "Sweep", "bandwidth", "bandwidth_matrix", "c2c_matrix", "latency", "latency_matrix",
    "latency_sweep", "loaded_latency", "peak_bandwidth", "threads_sweep",
]
