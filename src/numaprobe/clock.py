"""The calibrated clock: the CPU's counter (TSC on x86-64, the generic timer on aarch64,
CLOCK_MONOTONIC_RAW elsewhere), measured before it is trusted.

    >>> clk = numaprobe.clock.get()          # calibrated once per process (about 0.2 s)
    >>> t0 = numaprobe.clock.ticks(); ...; clk.to_ns(numaprobe.clock.ticks() - t0)

The frequency is calibrated twice, independently: against CLOCK_MONOTONIC_RAW and against
CLOCK_MONOTONIC, each over its own window, each end of a window bracketed by counter reads and
the tightest bracket kept. Their agreement says how far the conversion can be trusted; the
frequency the hardware or hypervisor declares (CPUID 0x15 / 0x40000010, CNTFRQ) is a third
opinion where there is one. The cost of a read and its resolution are measured too; kernels
subtract the read cost from what they time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import UsageError
from . import _core

__all__ = ["Clock", "calibrate", "get", "ticks"]

_KINDS = {_core.CLOCK_TSC: "tsc", _core.CLOCK_CNTVCT: "cntvct",
          _core.CLOCK_MONOTONIC: "monotonic_raw"}


@dataclass(frozen=True)
class Clock:
    kind: str                    # tsc, cntvct or monotonic_raw
    ticks_per_ns: float          # the calibration in use (against CLOCK_MONOTONIC_RAW)
    check_ticks_per_ns: float    # the second, independent calibration (CLOCK_MONOTONIC)
    declared_hz: float | None    # what the hardware/hypervisor says, where it says
    invariant: bool | None       # constant rate in every CPU state; None: cannot be asked
    overhead_ticks: float        # minimum cost of a start/stop pair
    overhead_median_ticks: float
    resolution_ticks: int        # smallest step between consecutive reads
    window_ns: int               # calibration window

    @property
    def hz(self) -> float:
        return self.ticks_per_ns * 1e9

    @property
    def agreement(self) -> float:
        """Relative difference of the two calibrations (0.0001 = 0.01 %)."""
        return abs(self.ticks_per_ns - self.check_ticks_per_ns) / self.ticks_per_ns

    @property
    def declared_agreement(self) -> float | None:
        if not self.declared_hz:
            return None
        return abs(self.hz - self.declared_hz) / self.declared_hz

    @property
    def overhead_ns(self) -> float:
        return self.overhead_ticks / self.ticks_per_ns

    @property
    def resolution_ns(self) -> float:
        return self.resolution_ticks / self.ticks_per_ns

    def to_ns(self, ticks: float) -> float:
        return ticks / self.ticks_per_ns

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(hz=self.hz, agreement=self.agreement, overhead_ns=self.overhead_ns,
                 resolution_ns=self.resolution_ns, declared_agreement=self.declared_agreement)
        return d

    def warnings(self) -> list[str]:
        out = []
        if self.invariant is False:
            out.append("the counter is not invariant: its rate may change with CPU power "
                       "states; timings may be wrong")
        if self.agreement > 1e-3:
            out.append(f"the two calibrations differ by {100 * self.agreement:.3f} % "
                       "(more than 0.1 %): the machine was busy or the clock is unstable")
        da = self.declared_agreement
        if da is not None and da > 1e-2:
            out.append(f"the measured frequency differs from the declared one by {100 * da:.2f} %")
        return out


def calibrate(window_ns: int = 100_000_000) -> Clock:
    """Measures the clock now (about 2 x window_ns) and makes it the one get() returns and the
    Cython API (numaprobe._core.ticks_to_ns) uses."""
    global _clock
    if window_ns < 1_000_000:
        raise UsageError(f"calibration window must be at least 1 ms (1000000 ns), got {window_ns}")
    main = _core.clock_calibrate(_core.REF_MONOTONIC_RAW, window_ns)
    check = _core.clock_calibrate(_core.REF_MONOTONIC, window_ns)
    lo, med = _core.clock_overhead(200_000)
    inv = _core.clock_invariant()
    _clock = Clock(kind=_KINDS[_core.clock_kind()], ticks_per_ns=main, check_ticks_per_ns=check,
                   declared_hz=_core.clock_declared_hz(),
                   invariant=None if inv < 0 else bool(inv),
                   overhead_ticks=lo, overhead_median_ticks=med,
                   resolution_ticks=_core.clock_resolution(100_000), window_ns=window_ns)
    _core.set_ticks_per_ns(main)
    return _clock


_clock: Clock | None = None


def get() -> Clock:
    """The calibrated clock, calibrating on first use."""
    return _clock if _clock is not None else calibrate()


def ticks() -> int:
    """One serialised read of the counter."""
    return _core.clock_ticks()


# ------------------------------------------------------------------------ the result kind

_INVARIANT = {True: "invariant", False: "NOT invariant", None: "invariance unknown"}


def _within(fraction: float) -> str:
    """How far two calibrations are apart, as a percentage; below what 4 decimals show, "<"."""
    return "< 0.0001 %" if 100 * fraction < 0.00005 else f"{100 * fraction:.4f} %"


def summary_line(r: dict) -> str:
    """The clock in one line (the quick check's text and HTML)."""
    return (f"clock: {r['kind']} {r['hz'] / 1e6:.1f} MHz, one serialised read costs at least "
            f"{r['overhead_ns']:.1f} ns, calibrations differ by {_within(r['agreement'])}")


def _text(r: dict) -> str:
    lines = [f"clock: {r['kind']} ({_INVARIANT[r['invariant']]}), {r['hz'] / 1e6:.3f} MHz",
             f"  calibrations: {r['ticks_per_ns'] * 1e3:.4f} ticks/us against "
             f"CLOCK_MONOTONIC_RAW, {r['check_ticks_per_ns'] * 1e3:.4f} against",
             f"  CLOCK_MONOTONIC; they differ by {_within(r['agreement'])}"]
    if r["declared_hz"]:
        lines.append(f"  declared by the CPU/hypervisor: {r['declared_hz'] / 1e6:.3f} MHz "
                     f"(measured differs by {100 * r['declared_agreement']:.3f} %)")
    else:
        lines.append("  declared frequency: none (no CPUID 0x15 or hypervisor timing leaf)")
    median_ns = r["overhead_median_ticks"] / r["ticks_per_ns"]
    lines.append(f"  overhead of one serialised read: min {r['overhead_ticks']:.0f} ticks = "
                 f"{r['overhead_ns']:.1f} ns (subtracted from timings),")
    lines.append(f"  median {r['overhead_median_ticks']:.0f} ticks = {median_ns:.1f} ns")
    lines.append(f"  resolution (smallest step two reads can show): {r['resolution_ticks']} "
                 f"ticks = {r['resolution_ns']:.2f} ns")
    return "\n".join(lines)


def _html(r: dict) -> str:
    from .report import html as H
    inv = _INVARIANT[r.get("invariant")]
    pairs = [("counter", f"{r['kind']} ({inv}), {r['hz'] / 1e6:.3f} MHz"),
             ("calibrations differ by", _within(r["agreement"])),
             ("declared frequency", f"{r['declared_hz'] / 1e6:.3f} MHz" if r.get("declared_hz")
              else "none (no CPUID 0x15 or hypervisor timing leaf)"),
             ("overhead of one serialised read", f"{r['overhead_ns']:.1f} ns"),
             ("resolution", f"{r['resolution_ns']:.2f} ns")]
    return H.kv(pairs)


def _register() -> None:
    from .kinds import Figure, Kind, register
    register(Kind("clock", "clock calibration", text=lambda doc: _text(doc["result"]),
                  html=lambda doc: _html(doc["result"]),
                  figures=lambda doc: [Figure("clock read overhead", "ns", False,
                                              doc["result"]["overhead_ns"])]))


_register()
