"""``numaprobe tune``: from naive to best, one lever at a time, each step proven.

Starting from ``naive`` (one process, the engine's defaults) or a given layout, each lever in
``LEVERS`` proposes one or more changes to the current best; they run against it in the same
interleaved rounds (infer.run_infer: fresh workers every round, a rotated order, Holm over
the candidates), and the best candidate is kept only when its verdict is "faster" for the
goal. A lever that cannot matter here is skipped with the reason. At the end the winner runs
once more against naive in fresh rounds, so the total is not the best of many draws.

Goals: ``throughput`` (closed loop, inferences per second) and ``latency`` (one instance at a
time, p50). Each step's gain is the candidate's speed over the current best's (throughput
ratio, or p50 ratio inverted), with its 95 % interval over rounds.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time

from .. import stats
from ..errors import UsageError
from ..topology import Topology, format_list
from . import engines as _engines
from .layout import Layout, parse_layout

__all__ = ["GOALS", "LEVERS", "ROUNDS", "tune"]

GOALS = {"throughput": "closed", "latency": "single"}
LEVERS = ("threads", "pinning", "memory", "instances", "spinning", "smt", "engine")
ROUNDS = 8          # per step: an exact sign-flip test over 8 rounds can reach p < 0.01
MIN_ROUNDS = 6      # below this no step could ever be significant (2 / 2^5 > 0.05)
STARTUP_S = 2.5     # stated estimate of a worker's start per layout and round, for the budget
MAX_ACCURACY_LOSS = 0.999  # the lowest cosine similarity to f32 a precision may keep


@dataclasses.dataclass
class Step:
    lever: str
    tried: list[str]                  # candidates' names
    kept: str | None = None           # the candidate kept (None: the current best stays)
    gain: float | None = None         # kept (or best tried) over the current best
    ci: tuple | None = None
    verdict: str | None = None
    skipped: str | None = None        # why the lever was not tried
    best: dict | None = None          # the current best's figures after the step
    note: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _speed(d: dict, goal: str) -> float:
    return d["throughput"]["per_s"] if goal == "throughput" else (
        1e3 / d["latency"]["p50"]["ms"] if d["latency"].get("p50") else 0.0)


def _figures(d: dict) -> dict:
    lat = d["latency"]
    return {"layout": d["layout"]["name"], "throughput": d["throughput"]["per_s"],
            "throughput_ci": d["throughput"]["ci"],
            **{k: lat[k]["ms"] for k in ("p50", "p90", "p99") if lat.get(k)}}


def _renamed(layout: Layout, name: str, **fields) -> Layout:
    return dataclasses.replace(layout, name=name, instances=tuple(
        dataclasses.replace(i, **fields) for i in layout.instances))


def _candidates(lever: str, best: Layout, topo: Topology, engines_allowed, precisions_allowed
                ) -> tuple[list[Layout], str | None]:
    """The changes ``lever`` proposes to ``best``, or the reason it cannot matter here."""
    inst = best.instances
    if lever == "threads":
        if all(i.intra for i in inst):
            return [], "the thread counts are already explicit"
        return [_renamed(best, f"{best.name}+threads", intra=len(inst[0].cpus),
                         streams=max(1, inst[0].streams))], None
    if lever == "pinning":
        if all(i.pin for i in inst):
            return [], "already pinned"
        return [_renamed(best, f"{best.name}+pinned", pin=True)], None
    if lever == "memory":
        if len(topo.usable_mems) == 1:
            return [], "one NUMA node: memory binding cannot change placement"
        if all(i.policy == "bind" for i in inst):
            return [], "memory is already bound to each instance's node"
        return [dataclasses.replace(best, name=f"{best.name}+bound", instances=tuple(
            dataclasses.replace(i, policy="bind", nodes=(topo.node_of(i.cpus[0]),))
            for i in inst))], None
    if lever == "instances":
        n = len(topo.usable_cpus)
        out = []
        for k in range(1, n + 1):
            if n % k or (k == len(inst) and inst[0].intra == n // k):
                continue
            try:
                lay = parse_layout(f"{k}x{n // k}", topo, spin=inst[0].spin)
            except UsageError:
                continue
            # Only the division changes: pinning and memory binding stay as the best has them.
            lay = _renamed(lay, f"{k}x{n // k}", engine=inst[0].engine, spin=inst[0].spin,
                           precision=inst[0].precision, pin=all(i.pin for i in inst))
            if inst[0].policy is None:
                lay = _renamed(lay, lay.name, policy=None, nodes=())
            out.append(lay)
        return (out, None) if out else ([], "one CPU: nothing to divide")
    if lever == "spinning":
        if any((i.engine or _engines.DEFAULT_ENGINE) != "ort" for i in inst):
            return [], "OpenVINO has no spinning setting"
        spin = inst[0].spin
        return [_renamed(best, f"{best.name}+{'no-spin' if spin else 'spin'}",
                         spin=not spin)], None
    if lever == "smt":
        if not any(len(c.siblings) > 1 for c in topo.cpus if c.id in topo.usable_cpus):
            return [], "no SMT siblings: one CPU per core"
        cores = {}
        for c in topo.cpus:
            if c.id in topo.usable_cpus:
                cores.setdefault((c.package, c.core), c.id)
        firsts = tuple(sorted(cores.values()))
        if len(inst) != 1:
            return [], "SMT off is tried for one instance only in this version"
        return [dataclasses.replace(best, name=f"{best.name}+one-per-core", instances=(
            dataclasses.replace(inst[0], cpus=firsts, intra=len(firsts)),))], None
    if lever == "engine":
        combos = [(e, p) for e in engines_allowed for p in precisions_allowed
                  if (e, p) != ((inst[0].engine or _engines.DEFAULT_ENGINE),
                                (inst[0].precision or _engines.DEFAULT_PRECISION))
                  and not _engines.limit(e, p, inst[0].streams)]
        if not combos:
            return [], "one engine and precision allowed: nothing to try (--engines, " \
                       "--allow-precision)"
        return [_renamed(best, f"{best.name} {e} {p}", engine=e, precision=p)
                for e, p in combos], None
    raise ValueError(lever)


def tune(model_ref, topo: Topology, *, goal: str = "throughput", budget_s: float = 600.0,
         start: Layout | None = None, engines=(_engines.DEFAULT_ENGINE,),
         precisions=(), rounds: int = ROUNDS, duration: float | None = None,
         dims=None, max_accuracy_loss: float = MAX_ACCURACY_LOSS, progress=None,
         allow_slow_precision: bool = False, levers=LEVERS) -> dict:
    """The ladder (see the module's docstring) as a document: every step, the final layout
    against naive, and the final layout as a layout file and as launcher commands.
    ``levers``: a subset of LEVERS to climb (always in LEVERS' order)."""
    from .infer import run_infer
    if goal not in GOALS:
        raise UsageError(f"unknown goal {goal!r}; goals: {', '.join(GOALS)}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < MIN_ROUNDS:
        raise UsageError(f"rounds must be a whole number >= {MIN_ROUNDS}: fewer cannot make "
                         f"a step significant, got {rounds!r}")
    if not (isinstance(budget_s, (int, float)) and 10 <= budget_s <= 86400):
        raise UsageError(f"the budget is 10 s to 24 h, got {budget_s!r}")
    bad = [lv for lv in levers if lv not in LEVERS]
    if bad or not levers:
        raise UsageError(f"unknown lever {bad[0]!r}; levers: {', '.join(LEVERS)}" if bad
                         else f"no lever given; levers: {', '.join(LEVERS)}")
    levers = [lv for lv in LEVERS if lv in levers]
    precs = list(dict.fromkeys([_engines.DEFAULT_PRECISION, *precisions]))
    engines = list(dict.fromkeys(engines))
    for p in precs:
        _engines.check_cpu(p, topo, allow_slow=allow_slow_precision)
    for e in engines:
        _engines.get(e).require()
    naive = parse_layout("naive", topo)
    best = start or naive
    mode = GOALS[goal]
    # The budget: each lever's candidates plus the current best, rounds each, plus the final.
    plan = sum(1 + len(_candidates(lv, naive, topo, engines, precs)[0]) for lv in levers) + 2
    if duration is None:
        duration = min(10.0, max(0.5, budget_s / (plan * rounds) - STARTUP_S))
    t0 = time.monotonic()
    steps: list[Step] = []
    quantized = None  # the int8 copy the best runs, where it does
    common = dict(mode=mode, duration=duration, rounds=rounds, dims=dims, topology=topo,
                  progress=progress, allow_slow_precision=allow_slow_precision)
    for lever in levers:
        cands, why = _candidates(lever, best, topo, engines, precs)
        if why:
            steps.append(Step(lever, [], skipped=why))
            continue
        if time.monotonic() - t0 > budget_s:
            steps.append(Step(lever, [], skipped="the budget is spent (it would have tried "
                              f"{', '.join(c.name for c in cands)})"))
            continue
        layouts = [dataclasses.replace(best, name=f"{best.name}#current"), *cands]
        doc = run_infer(model_ref, layouts, **common)
        noisy = any((d.get("vs_first") or {}).get("verdict") == stats.NOISY
                    for d in doc["layouts"][1:])
        if noisy and time.monotonic() - t0 < budget_s:  # once more: the machine was busy
            doc = run_infer(model_ref, layouts, **common)
        base, rows = doc["layouts"][0], doc["layouts"][1:]
        step = Step(lever, [c.name for c in cands],
                    note="measured twice: the first time, other work took the CPUs"
                    if noisy else None)
        scored = []
        for c, d in zip(cands, rows):
            vs = d.get("vs_first") or {}
            ratio = vs.get("throughput_ratio") or vs.get("p50_ratio") or [None, None, None]
            if ratio[0] is None:
                continue
            gain = ratio[0] if goal == "throughput" else 1 / ratio[0]
            ci = tuple(ratio[1:]) if goal == "throughput" else (1 / ratio[2], 1 / ratio[1])
            lost = _accuracy_loss(d, max_accuracy_loss)
            scored.append((gain, ci, vs.get("verdict"), c, d, lost))
        if scored:
            gain, ci, verdict, c, d, lost = max(scored, key=lambda s: s[0])
            step.gain, step.ci, step.verdict = gain, ci, verdict
            if verdict == "faster" and not lost:
                step.kept, best = c.name, dataclasses.replace(c, name=c.name)
                step.best = _figures(d)
                quantized = doc.get("int8") if any(i.precision == "int8" for i in c.instances) \
                    else None
            else:
                step.best = _figures(base)
                step.note = "; ".join(filter(None, (step.note, lost))) or None
        steps.append(step)
    final = run_infer(model_ref, [naive, dataclasses.replace(best, name=f"{best.name}#final")],
                      **common) if best is not naive else None
    doc = _document(model_ref, steps, best, final, goal, duration, rounds, budget_s,
                    time.monotonic() - t0, topo)
    if quantized and any(i.precision == "int8" for i in best.instances):
        from .models import default_cache_dir
        doc["best"]["commands"].append(
            f"# int8: the {quantized['method']} quantized copy "
            f"{default_cache_dir() / quantized['file']} (calibration: "
            f"{quantized['calibration'].split(':')[0]})")
    return doc


def _accuracy_loss(d: dict, floor: float) -> str | None:
    """Why a candidate's precision may not be kept (None: it may): an output whose cosine
    similarity to f32 fell below ``floor``."""
    for a in d.get("accuracy") or []:
        for o in a["outputs"]:
            if o["cosine"] < floor:
                return (f"{a['precision']} not kept: {o['name']} cosine {o['cosine']:.6f} "
                        f"against f32, below {floor}")
    return None


def _document(model_ref, steps, best, final, goal, duration, rounds, budget_s, seconds,
              topo) -> dict:
    from .models import describe
    total = None
    if final is not None:
        vs = final["layouts"][1].get("vs_first") or {}
        ratio = vs.get("throughput_ratio") or vs.get("p50_ratio") or [None, None, None]
        if ratio[0] is not None:
            g = ratio[0] if goal == "throughput" else 1 / ratio[0]
            ci = ratio[1:] if goal == "throughput" else [1 / ratio[2], 1 / ratio[1]]
            total = {"gain": g, "ci": list(ci), "verdict": vs.get("verdict"),
                     "naive": _figures(final["layouts"][0]), "best": _figures(final["layouts"][1])}
    layout_steps = [s for s in steps if s.kept and s.lever != "engine"]
    engine_steps = [s for s in steps if s.kept and s.lever == "engine"]
    totals = {"layout": math.prod(s.gain for s in layout_steps) if layout_steps else 1.0,
              "engine_and_precision": math.prod(s.gain for s in engine_steps)
              if engine_steps else 1.0}
    return {"kind": "tune", "model": describe(model_ref), "goal": goal,
            "asked": {"goal": goal, "budget_s": budget_s, "duration": duration,
                      "rounds": rounds},
            "steps": [s.to_dict() for s in steps], "final": total, "step_totals": totals,
            "best": {"name": best.name, "layout_file": layout_file(best),
                     "commands": launch_commands(best, topo)},
            "seconds": seconds}


def layout_file(layout: Layout) -> dict:
    """The layout as a file that ``infer --instances`` reads."""
    out = []
    for i in layout.instances:
        d = {"cpus": format_list(i.cpus), "policy": i.policy, "nodes": format_list(i.nodes),
             "intra": i.intra, "inter": i.inter, "spin": i.spin, "pin": i.pin,
             "engine": i.engine or _engines.DEFAULT_ENGINE,
             "precision": i.precision or _engines.DEFAULT_PRECISION}
        if (i.engine or _engines.DEFAULT_ENGINE) == "openvino":
            d["streams"] = i.streams
        out.append(d)
    return {"name": layout.name.split("#")[0], "instances": out}


def launch_commands(layout: Layout, topo: Topology) -> list[str]:
    """One launcher line per instance, with the engine's thread settings to give it."""
    lines = []
    for i in layout.instances:
        bind = {"bind": "-m", "preferred": "--preferred", "interleave": "--interleave"}.get(
            i.policy or "")
        mem = f" {bind} {format_list(i.nodes)}" if bind and i.nodes else ""
        engine = i.engine or _engines.DEFAULT_ENGINE
        threads = (f"intra_op_num_threads={i.intra}, inter_op_num_threads={i.inter}, "
                   f"allow_spinning={int(i.spin)}" if engine == "ort" else
                   f"INFERENCE_NUM_THREADS={i.intra}, NUM_STREAMS={i.streams}, "
                   f"ENABLE_CPU_PINNING={i.pin}")
        cpus = format_list(i.cpus)
        lines.append(f"numactl -C {cpus}{mem} -- YOUR_SERVER   # {engine}: {threads}"
                     if i.pin else f"YOUR_SERVER   # not pinned; {engine}: {threads}")
    return lines


# ------------------------------------------------------------------------ the result kind

def tune_text(doc: dict) -> str:
    r = doc["result"]
    g = r["goal"]
    unit = "inf/s" if g == "throughput" else "p50 ms"
    lines = [f"the ladder for {r['model']['name']}, goal {g}: each step against the best so "
             f"far, {r['asked']['rounds']} rounds x {r['asked']['duration']:.3g} s",
             f"{'step':<11}{'tried':<28}{'gain':>7} {'95 % interval':>16}  verdict / kept"]
    for s in r["steps"]:
        if s["skipped"]:
            lines.append(f"{s['lever']:<11}skipped: {s['skipped']}")
            continue
        gain = f"{s['gain']:.2f}x" if s["gain"] else "-"
        ci = f"[{s['ci'][0]:.2f}, {s['ci'][1]:.2f}]" if s.get("ci") else ""
        kept = f"kept {s['kept']}" if s["kept"] else "not kept"
        best = s.get("best") or {}
        figure = (f"; now {best['throughput']:.1f} inf/s" if g == "throughput" and best
                  else f"; now p50 {best.get('p50', 0):.3g} ms" if best else "")
        lines.append(f"{s['lever']:<11}{', '.join(s['tried'])[:27]:<28}{gain:>7} {ci:>16}  "
                     f"{s['verdict']}; {kept}{figure}")
        if s.get("note"):
            lines.append(f"{'':<11}{s['note']}")
    f = r.get("final")
    if f:
        lines.append(f"final, measured again against naive in fresh rounds: {f['gain']:.2f}x "
                     f"[{f['ci'][0]:.2f}, {f['ci'][1]:.2f}] ({f['verdict']}): naive "
                     + (f"{f['naive']['throughput']:.1f} -> {f['best']['throughput']:.1f} {unit}"
                        if g == "throughput" else
                        f"p50 {f['naive'].get('p50', 0):.3g} -> {f['best'].get('p50', 0):.3g} ms"))
    else:
        lines.append("final: no step was kept; naive stays the best layout")
    t = r["step_totals"]
    lines.append(f"the steps' product: layout {t['layout']:.2f}x, engine and precision "
                 f"{t['engine_and_precision']:.2f}x (picked among candidates: the final "
                 "figure above is the one to quote)")
    lines.append("best layout, as a file for infer --instances:")
    lines.append("  " + json.dumps(r["best"]["layout_file"]))
    lines.append("to deploy it without numaprobe:")
    lines += [f"  {c}" for c in r["best"]["commands"]]
    return "\n".join(lines)


def _register() -> None:
    from ..kinds import Kind, register
    from ..report import html as H
    register(Kind("tune", "the tuning ladder", text=tune_text,
                  html=lambda doc: f"<pre>{H.e(tune_text(doc))}</pre>",
                  rows=lambda doc: (["lever", "tried", "kept", "gain", "ci_low", "ci_high",
                                     "verdict", "skipped"],
                                    [[s["lever"], "; ".join(s["tried"]), s["kept"], s["gain"],
                                      *(s["ci"] or (None, None)), s["verdict"], s["skipped"]]
                                     for s in doc["result"]["steps"]])))


_register()
