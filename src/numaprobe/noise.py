"""How busy the machine was with other work while numaprobe measured: CPU time that did not
belong to this process (from /proc/stat and /proc/self/stat), and time stolen by a
hypervisor. Busy and steal follow system.CpuTimes's rule: steal is not busy time.

Always read from the real /proc (numaprobe.system's live readers), also when
$NUMAPROBE_SYSFS_ROOT points the topology at a captured tree."""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import system

__all__ = ["Noise", "NoiseMeter"]

_HZ = system.HZ


@dataclass(frozen=True)
class Noise:
    seconds: float         # wall time of the window
    cpus: int              # CPUs watched
    foreign: float         # CPU-seconds used by other processes on those CPUs
    steal: float           # CPU-seconds taken by the hypervisor
    own: float             # CPU-seconds of this process

    @property
    def foreign_fraction(self) -> float:
        """Foreign CPU time as a share of the CPUs' capacity over the window."""
        cap = self.seconds * self.cpus
        return self.foreign / cap if cap > 0 else 0.0

    @property
    def steal_fraction(self) -> float:
        cap = self.seconds * self.cpus
        return self.steal / cap if cap > 0 else 0.0

    @property
    def others_fraction(self) -> float:
        """What others took of the CPUs' capacity: other processes and the hypervisor. A
        verdict resting on a window where this is large is "noisy: rerun"."""
        return self.foreign_fraction + self.steal_fraction

    def warning(self, limit: float = 0.05) -> str | None:
        parts = []
        if self.foreign_fraction > limit:
            parts.append(f"other processes used {100 * self.foreign_fraction:.0f} % of the CPUs")
        if self.steal_fraction > limit:
            parts.append(f"the hypervisor stole {100 * self.steal_fraction:.0f} % of CPU time")
        return ("noisy machine: " + " and ".join(parts) + " during the run") if parts else None

    @classmethod
    def total(cls, parts) -> "Noise":
        """Several windows over the same CPUs as one."""
        parts = list(parts)
        return cls(seconds=sum(p.seconds for p in parts), cpus=max(p.cpus for p in parts),
                   foreign=sum(p.foreign for p in parts), steal=sum(p.steal for p in parts),
                   own=sum(p.own for p in parts))

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "cpus": self.cpus, "foreign_cpu_s": self.foreign,
                "steal_cpu_s": self.steal, "own_cpu_s": self.own,
                "foreign_fraction": self.foreign_fraction, "steal_fraction": self.steal_fraction}


def _cpu_times(cpus) -> tuple[int, int]:
    """(busy, steal) jiffies summed over the given CPUs (offline ones have none)."""
    times = system.cpu_times()
    mine = [times[c] for c in set(cpus) if c in times]
    return sum(t.busy for t in mine), sum(t.steal for t in mine)


def _own_jiffies() -> int:
    """This process's CPU time, all threads, plus that of children it waited for (a tool it
    ran, a benchmark's reference): that work is ours, not foreign."""
    s = system.pid_stat()
    return s["utime"] + s["stime"] + s["cutime"] + s["cstime"]


class NoiseMeter:
    """with NoiseMeter(cpus) as m: ...; then m.result is a Noise."""

    def __init__(self, cpus):
        self.cpus = tuple(cpus)
        self.result: Noise | None = None

    def __enter__(self):
        self._t = time.monotonic()
        self._busy, self._steal = _cpu_times(self.cpus)
        self._own = _own_jiffies()
        return self

    def __exit__(self, *exc):
        busy, steal = _cpu_times(self.cpus)
        own = _own_jiffies() - self._own
        # Own time may have run on CPUs outside the watched set; never count it as foreign.
        foreign = max(0, (busy - self._busy) - own)
        self.result = Noise(seconds=time.monotonic() - self._t, cpus=len(self.cpus),
                            foreign=foreign / _HZ, steal=(steal - self._steal) / _HZ,
                            own=own / _HZ)
        return False


def others_share(noise) -> float | None:
    """Noise.others_fraction of a Noise or of its to_dict() (a document's); None: unmeasured."""
    if noise is None:
        return None
    if isinstance(noise, Noise):
        return noise.others_fraction
    return noise["foreign_fraction"] + (noise.get("steal_fraction") or 0.0)
