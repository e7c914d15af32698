"""What the benchmarks share: the spread of a list of figures, and the noise over several
measured windows (numaprobe.noise counts waited-for children, such as likwid-bench or a
reference program, as our own work, not foreign)."""
import math
import statistics

from numaprobe.noise import Noise, NoiseMeter


def spread(xs) -> str:
    med = statistics.median(xs)
    return (f"median {med:8.2f}  min {min(xs):8.2f}  max {max(xs):8.2f}  "
            f"cv {statistics.pstdev(xs) / med * 100:5.2f} %")


class Noisy:
    """Noise summed over several windows: noisy.measure(fn) runs fn inside a NoiseMeter."""

    def __init__(self, cpus):
        self.cpus, self.parts = cpus, []

    def measure(self, fn):
        with NoiseMeter(self.cpus) as m:
            out = fn()
        self.parts.append(m.result)
        return out

    def total(self) -> Noise:
        return Noise.total(self.parts)

    def text(self) -> str:
        t = self.total()
        return f"other processes {100 * t.foreign_fraction:.1f} %, steal {100 * t.steal_fraction:.1f} %"


def ratio_interval(ratios):
    """The 95 % t interval of the geometric mean of per-pair ratios (both ends the mean itself
    with one pair): what a benchmark's "A is 0.97 x B" rests on."""
    from numaprobe.stats import t_quantile
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), math.exp(mean)
    half = t_quantile(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean - half), math.exp(mean + half)
