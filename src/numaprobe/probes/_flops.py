"""Compute ceilings: operations per second of each arithmetic unit, on one core and on every
usable core at once, and the core clock that implies.

Kernels (flops.c): fp32 FMA scalar, AVX2 and AVX-512; bf16 dot products (AVX512-BF16); int8
dot products (AVX-VNNI, AVX512-VNNI); AMX tiles (bf16, int8); NEON and SVE (as many lanes as
the vector length, read at run time) on AArch64. Each is a loop
of independent multiply-accumulates on registers, so it measures the unit's throughput, not
memory. The ``clock`` kernel is a chain of dependent integer adds (one per cycle on every
core numaprobe runs on): its rate is the core clock, measured with the same team of pinned
threads; dividing a kernel's rate by it gives operations per cycle, which names how many
units of that width a core has (a multiply-add is 2 operations: AVX2 at 2 FMA units is 32
flop per cycle).

"All cores" runs one thread on one CPU of each physical core (SMT siblings share the units:
two threads on one core would not add units). Every figure is the median of ``reps`` timed
passes with its spread; each pass's threads start at a barrier, and the all-core rate of a
pass is its operations over the span from the first start to the last end.
"""
from __future__ import annotations

import errno as _errno
import platform
import statistics
from dataclasses import dataclass, field

from .. import _core, clock, placement
from ..errors import UsageError
from ..kinds import Figure, Kind, register
from ..report import html as H
from ..stats import Summary, summarize
from ..topology import Topology, format_list
from ..words import plural
from . import _common as C

KERNELS = tuple(_core.FL_KERNELS)          # the table in flops.c, in its order
COMPUTE = tuple(k for k in KERNELS if k != "clock")
# The cpuinfo flags each kernel needs, for a refusal that names them.
NEEDS = {"f32_scalar": "fma", "f32_avx2": "avx2 and fma", "f32_avx512": "avx512f",
         "bf16_avx512": "avx512_bf16", "int8_avxvnni": "avx_vnni",
         "int8_avx512": "avx512_vnni", "bf16_amx": "amx_bf16", "int8_amx": "amx_int8",
         "f32_neon": "asimd (AArch64)", "f32_sve": "sve (AArch64)"}
# The architecture each kernel is for (the rest run on both); by default only this one's run.
ARCH = {"f32_neon": "aarch64", "f32_sve": "aarch64", **{k: "x86_64" for k in NEEDS if k not in (
    "f32_scalar", "f32_neon", "f32_sve")}}
PASS_S = 0.02      # seconds per timed pass (sized from a short trial)
REPS = 7


@dataclass(frozen=True)
class KernelResult:
    kernel: str
    doc: str
    unit: str
    one: Summary          # operations per second on one core
    all: Summary | None   # on every core at once (None: one core only)
    cores: int
    ended_by: dict | None = None  # with a stopping rule: {"one_core": ..., "all_cores": ...}


@dataclass
class FlopsResult:
    cpu: int                               # the one-core figures' CPU
    cpus: tuple[int, ...]                  # one per core, for "all cores"
    results: dict[str, KernelResult] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    tsc_hz: float | None = None

    def clock_hz(self, which: str = "one") -> float | None:
        r = self.results.get("clock")
        s = getattr(r, which, None) if r else None
        return s.median if s else None

    def to_dict(self) -> dict:
        def one(r: KernelResult) -> dict:
            d = {"kernel": r.kernel, "doc": r.doc, "unit": r.unit, "cores": r.cores,
                 "one_core": r.one.to_dict(), "all_cores": r.all.to_dict() if r.all else None}
            if r.ended_by:
                d["ended_by"] = dict(r.ended_by)
            hz = self.clock_hz()
            if r.kernel != "clock" and hz:
                d["per_cycle"] = r.one.median / hz
                d["instructions_per_cycle"] = d["per_cycle"] / info[r.kernel]["ops"]
            return d
        info = {k["name"]: k for k in _core.fl_kernels()}
        return {"cpu": self.cpu, "cpus": list(self.cpus), "tsc_hz": self.tsc_hz,
                "kernels": [one(r) for r in self.results.values()],
                "refused": [{"kernel": k, "why": w} for k, w in self.refused.items()]}

    def warnings(self) -> list[str]:
        return [w for r in self.results.values() for s in (r.one, r.all) if s
                if (w := s.warning(f"{r.kernel} ({'one core' if s is r.one else 'all cores'})",
                                   limit=0.05))]


def _refusal(kernel: str, err: OSError) -> str:
    machine = platform.machine()
    if ARCH.get(kernel, machine) != machine:
        return f"an {ARCH[kernel]} kernel; this CPU is {machine}"
    if err.errno == _errno.ENOTSUP:
        return f"this CPU has no {NEEDS.get(kernel, kernel)}"
    return (f"the kernel refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: "
            f"{err.strerror}; Linux 5.16 or later with AMX support is needed)")


def _one_per_core(topo: Topology, cpus) -> tuple[int, ...]:
    seen, out = set(), []
    for c in cpus:
        cpu = topo.cpu(c)
        key = (cpu.package, cpu.core)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return tuple(out)


def flops(kernels=None, *, cpus=None, reps: int | None = None, pass_s: float = PASS_S,
          all_cores: bool = True, target_ci: float | None = None,
          budget: float | None = None, topology: Topology | None = None,
          progress: bool | None = None) -> FlopsResult:
    """The rate of each compute kernel (default: every one of this architecture; those this
    CPU lacks are refused, each with the flag it needs) on the first of ``cpus`` (default: the usable
    ones) and, with ``all_cores``, on one CPU of each of their cores at once: ``reps`` passes
    (default REPS), or with ``target_ci`` or ``budget`` (seconds for all of it, shared
    equally) the stopping rule, ``reps`` at most (default RULE_MAX_SAMPLES)."""
    topo = C.topology(topology)
    cpus = placement.check_cpus(topo.usable_cpus if cpus is None else cpus, topo)
    names = list([k for k in KERNELS if ARCH.get(k, platform.machine()) == platform.machine()]
                 if kernels is None else kernels)
    bad = [k for k in names if k not in KERNELS]
    if bad or not names:
        raise UsageError(f"unknown kernel {bad[0]!r}; kernels: {', '.join(KERNELS)}" if bad
                         else f"no kernel given; kernels: {', '.join(KERNELS)}")
    if reps is None:
        reps = REPS if target_ci is None and budget is None else C.RULE_MAX_SAMPLES
    if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= 1000:
        raise UsageError(f"reps must be a whole number from 1 to 1000, got {reps!r}")
    rule = C.stopping_rule(target_ci, budget, reps)
    if "clock" not in names:
        names.insert(0, "clock")  # the clock makes the rates per cycle
    names = list(dict.fromkeys(names))
    team = _one_per_core(topo, cpus) if all_cores else ()
    info = {k["name"]: k for k in _core.fl_kernels()}
    clk = clock.get()
    out = FlopsResult(cpu=cpus[0], cpus=team, tsc_hz=clk.hz if clk.kind != "monotonic" else None)
    bar = C.Progress(len(names), "compute", progress)
    try:
        for name in names:
            why = _core.fl_supported(name)
            if why is not None:
                out.refused[name] = _refusal(name, why)
                bar.step(f"{name}: refused")
                continue
            iters = _iterations(name, cpus[0], pass_s, clk)
            # the rule's budget: an equal share for each kernel's one-core and all-core runs
            mine = rule and rule.share(1 / (len(names) * (2 if len(team) > 1 else 1)))
            one, e1 = _rates(name, [cpus[0]], iters, reps, clk, rule=mine)
            many, e2 = (_rates(name, list(team), iters, reps, clk, per_core=name == "clock",
                               rule=mine) if len(team) > 1 else (None, None))
            ended = {k: v for k, v in (("one_core", e1), ("all_cores", e2)) if v}
            out.results[name] = KernelResult(name, info[name]["doc"], info[name]["unit"], one,
                                             many, max(1, len(team)), ended or None)
            bar.step(f"{name}: {one.median / 1e9:.3g} G{info[name]['unit']}/s")
    finally:
        bar.close()
    return out


def _iterations(name: str, cpu: int, pass_s: float, clk) -> int:
    """Iterations for a pass of about ``pass_s`` seconds, from a trial of a few thousand."""
    iters = 2000
    for _ in range(4):
        t0, t1, _ran = _core.fl_run([cpu], name, iters, 1)
        ns = clk.to_ns(t1[0][0] - t0[0][0])
        if ns > 2e6:  # long enough to scale from
            break
        iters *= 8
    return max(1, int(iters * pass_s * 1e9 / max(ns, 1.0)))


def _rates(name: str, cpus: list[int], iters: int, reps: int, clk,
           per_core: bool = False, rule: C.Rule | None = None) -> tuple[Summary, str | None]:
    """Each pass's rate: all its operations over its span, first start to last end; with
    ``per_core`` (the clock) the mean of each thread's own rate instead, so that a thread
    that starts late does not lower a core's clock. ``reps`` passes in one run, or with a
    stopping ``rule`` one pass a run until it stops. Returns (the rates, what ended them)."""
    ops = _core.fl_ops(name, iters)

    def rates_of(t0, t1):
        if per_core:
            return [statistics.fmean(ops / (clk.to_ns(b - a) / 1e9) for a, b in zip(s, e))
                    for s, e in zip(t0, t1)]
        return [ops * len(cpus) / (clk.to_ns(max(e) - min(s)) / 1e9) for s, e in zip(t0, t1)]
    if rule is None:
        t0, t1, _ran = _core.fl_run(cpus, name, iters, reps)
        return summarize(rates_of(t0, t1), "op/s"), None
    xs, ended = C.sample(lambda: rates_of(*_core.fl_run(cpus, name, iters, 1)[:2])[0], rule)
    return summarize(xs, "op/s"), ended


# ------------------------------------------------------------------------ the result kind

def _ghz(x):
    return f"{x / 1e9:.3g}"


def flops_text(r: dict) -> str:
    kernels = {k["kernel"]: k for k in r["kernels"]}
    clk = kernels.get("clock")
    lines = []
    if clk:
        hz1 = clk["one_core"]["median"]
        hzn = clk["all_cores"]["median"] if clk.get("all_cores") else None
        tsc = r.get("tsc_hz")
        lines.append(f"core clock {_ghz(hz1)} GHz on CPU {r['cpu']}"
                     + (f", {_ghz(hzn)} GHz with {plural(len(r['cpus']), 'core')} busy"
                        if hzn else "")
                     + (f"; {hz1 / tsc:.2f} x the TSC ({_ghz(tsc)} GHz)" if tsc else ""))
    n = len(r["cpus"])
    lines.append(f"{'kernel':<14}{'one core':>10}{'cv':>6}{f'{n} cores' if n > 1 else '':>10}"
                 f"{'ops/cycle':>10}{'instr/cycle':>12}  unit")
    for k in r["kernels"]:
        if k["kernel"] == "clock":
            continue
        one, many = k["one_core"], k.get("all_cores")
        unit = {"flop": "GFLOP/s", "op": "GOP/s"}.get(k["unit"], k["unit"])
        per_cycle = f"{k['per_cycle']:.3g}" if k.get("per_cycle") else ""
        ipc = f"{k['instructions_per_cycle']:.3g}" if k.get("instructions_per_cycle") else ""
        lines.append(f"{k['kernel']:<14}{_ghz(one['median']):>10}{100 * one['cv']:>5.1f}%"
                     f"{_ghz(many['median']) if many else '':>10}{per_cycle:>10}{ipc:>12}  "
                     f"{unit}")
    for x in r.get("refused") or []:
        lines.append(f"{x['kernel']:<14}refused: {x['why']}")
    if n > 1:
        lines.append(f"all cores: one thread on each of CPUs {format_list(r['cpus'])} (one "
                     "CPU per core)")
    lines.append("instr/cycle: the unit's instructions retired per cycle of the measured "
                 "clock (2 for two FMA units)")
    for k in r["kernels"]:
        if k["kernel"] != "clock":
            lines.append(f"  {k['kernel']}: {k['doc']}")
    return "\n".join(lines)


def flops_html(r: dict) -> str:
    rows = [[k["kernel"], _ghz(k["one_core"]["median"]),
             _ghz(k["all_cores"]["median"]) if k.get("all_cores") else "-",
             f"{k['per_cycle']:.3g}" if k.get("per_cycle") else "-", k["doc"]]
            for k in r["kernels"]]
    refused = "".join(f"<li>{H.e(x['kernel'])}: {H.e(x['why'])}</li>"
                      for x in r.get("refused") or [])
    return (H.table(["kernel", "one core (G/s)", "all cores (G/s)", "per cycle", "what"],
                    rows, caption="compute ceilings", numeric=(1, 2, 3))
            + (f"<p>refused:</p><ul>{refused}</ul>" if refused else ""))


def flops_figures(r: dict) -> list[Figure]:
    out = []
    for k in r["kernels"]:
        out.append(Figure.of(f"{k['kernel']} one core", k["one_core"], True))
        if k.get("all_cores"):
            out.append(Figure.of(f"{k['kernel']} all cores", k["all_cores"], True))
    return out


def flops_rows(r: dict) -> tuple[list, list]:
    return (["kernel", "unit", "one_core_per_s", "one_core_cv", "all_cores_per_s", "cores",
             "per_cycle"],
            [[k["kernel"], k["unit"], k["one_core"]["median"], k["one_core"]["cv"],
              (k.get("all_cores") or {}).get("median"), k["cores"], k.get("per_cycle")]
             for k in r["kernels"]])


def best_ceiling(r: dict, precision: str) -> tuple[str, float] | None:
    """The fastest measured kernel for ``precision`` (f32, bf16, int8) on all cores (one core
    where that is all there is): (kernel, operations per second), None if none ran."""
    found = [(k["kernel"], (k.get("all_cores") or k["one_core"])["median"])
             for k in r["kernels"] if k["kernel"].startswith(precision + "_")]
    return max(found, key=lambda kv: kv[1]) if found else None


register(Kind("flops", "compute ceilings",
              text=lambda doc: flops_text(doc["result"]),
              html=lambda doc: flops_html(doc["result"]),
              figures=lambda doc: flops_figures(doc["result"]),
              rows=lambda doc: flops_rows(doc["result"])))
