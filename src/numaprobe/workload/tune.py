"""``numaprobe tune``: from naive to best, one lever at a time, each step proven.

Starting from ``naive`` (one process, the engine's defaults) or a given layout, each lever in
``LEVERS`` proposes one or more changes to the current best; they run against it in the same
interleaved rounds (infer.run_infer: fresh workers every round, a rotated order, Holm over
the candidates), and the best candidate is kept only when its verdict is "faster" for the
goal. A lever that cannot matter here is skipped with the reason. At the end the winner runs
once more against naive in fresh rounds, so the total is not the best of many draws.

Goals (parse_goal): ``throughput`` (closed loop, samples per second: an inference of batch B
is B samples, so the batch lever, which tries ``--batch`` sizes, compares what each delivers), ``latency`` (one
request at a time, p50) and ``p99:Xms`` (one request at a time, p99, and whether the best
meets the bound X). Each step's gain is the candidate's over the current best's (throughput
ratio, or the latency ratio inverted), with its 95 % interval over rounds. The winner's total
splits into three parts measured in the same fresh rounds: the layout alone (same engine and
numerics), then the engine, then the precision (totals). ``waterfall`` draws the ladder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import textwrap
import time

from .. import stats
from ..errors import UsageError
from ..topology import Topology, format_list
from . import driver, engines as _engines
from .layout import Layout, parse_layout

__all__ = ["GOALS", "LEVERS", "ROUNDS", "tune"]

GOALS = {"throughput": "closed", "latency": "single", "p99:Xms": "single",
         "rate:p99:Xms": "poisson"}
# rate:p99:Xms offers these loads, fractions of the fastest layout's closed-loop throughput
# (a pilot round), to every layout in the same interleaved rounds; each round's figure is the
# highest rate whose p99 stays within X (sustainable()).
RATE_FRACTIONS = (0.3, 0.5, 0.7, 0.9)


@dataclasses.dataclass(frozen=True)
class Goal:
    """What the ladder climbs for: the mode the layouts run in, the per-round figure that
    verdicts compare, whether higher is better, and for p99:Xms the bound to report."""
    name: str                  # as asked: throughput, latency, p99:50ms, rate:p99:50ms
    mode: str                  # closed (a closed loop), single (one request at a time) or
                               # poisson (arrivals at a rate)
    key: str                   # the per-round figure: throughput, p50_ms, p99_ms, rate
    higher: bool
    bound_ms: float | None = None


def parse_goal(text: str) -> Goal:
    """``throughput``, ``latency`` (p50, one request at a time), ``p99:Xms`` (p99, one
    request at a time, reported against the bound X ms) or ``rate:p99:Xms`` (the highest
    Poisson arrival rate whose p99 stays within X ms: MLPerf's Server scenario)."""
    t = str(text).strip().lower()
    if t == "throughput":
        return Goal(t, "closed", "throughput", True)
    if t == "latency":
        return Goal(t, "single", "p50_ms", False)
    rate = t.startswith("rate:p99:")
    if rate or t.startswith("p99:"):
        num = t[9 if rate else 4:].removesuffix("ms")
        try:
            bound = float(num)
        except ValueError:
            bound = math.nan
        if math.isfinite(bound) and 0 < bound <= 3.6e6 and rate:
            return Goal(f"rate:p99:{bound:g}ms", "poisson", "rate", True, bound)
        if math.isfinite(bound) and 0 < bound <= 3.6e6:
            return Goal(f"p99:{bound:g}ms", "single", "p99_ms", False, bound)
    raise UsageError(f"unknown goal {text!r}; goals: throughput, latency, p99:Xms (for "
                     "example p99:50ms: the p99 of one request at a time, against 50 ms), "
                     "rate:p99:Xms (the highest Poisson arrival rate whose p99 stays within "
                     "X ms)")
LEVERS = ("threads", "pinning", "memory", "instances", "batch", "spinning", "smt", "engine")
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
    detail: str | None = None         # the verdict's detail (for a null: what it could detect)
    bottleneck: str | None = None     # what bounds the best after the step (roofline.py)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _figures(d: dict) -> dict:
    """A layout's figures on the ladder; throughput in samples per second (an inference of
    batch B is B samples: the same as inferences at batch 1)."""
    lat, b = d["latency"], d.get("batch", 1)
    return {"layout": d["layout"]["name"], "throughput": d["throughput"]["per_s"] * b,
            "throughput_ci": [x * b for x in d["throughput"]["ci"]], "batch": b,
            **{k: lat[k]["ms"] for k in ("p50", "p90", "p99") if lat.get(k)},
            **({"rate": d["rate"]["per_s"]} if d.get("rate") else {})}


def _renamed(layout: Layout, name: str, **fields) -> Layout:
    return dataclasses.replace(layout, name=name, instances=tuple(
        dataclasses.replace(i, **fields) for i in layout.instances))


def _candidates(lever: str, best: Layout, topo: Topology, engines_allowed, precisions_allowed,
                batch: tuple = (None, (), True)) -> tuple[list[Layout], str | None]:
    """The changes ``lever`` proposes to ``best``, or the reason it cannot matter here.
    ``batch``: (the goal's name, the --batch sizes, whether the model has a batch
    dimension)."""
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
    if lever == "batch":
        goal, sizes, batched = batch
        if goal != "throughput":
            return [], (f"a batch of B makes each request wait for B - 1 others: a lever for "
                        f"throughput, not for goal {goal}")
        if not batched:
            return [], "the model's inputs have no batch dimension"
        now = inst[0].batch or 1
        sizes = [b for b in dict.fromkeys(sizes) if b != now]
        if not sizes:
            return [], "no batch sizes to try: give --batch, e.g. --batch 4,16"
        return [_renamed(best, f"{best.name}+batch{b}", batch=b) for b in sizes], None
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
         allow_slow_precision: bool = False, levers=LEVERS, batches=()) -> dict:
    """The ladder (see the module's docstring) as a document: every step, the final layout
    against naive, and the final layout as a layout file and as launcher commands.
    ``levers``: a subset of LEVERS to climb (always in LEVERS' order); ``batches``: the batch
    sizes the batch lever tries (throughput compared in samples per second)."""
    from .infer import run_infer
    from .models import has_batch_dim
    aim = parse_goal(goal)
    goal = aim.name
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
    bad = [b for b in batches if not isinstance(b, int) or isinstance(b, bool) or b < 1]
    if bad:
        raise UsageError(f"batch sizes are whole numbers >= 1, got {bad[0]!r}")
    batch = (goal, tuple(batches), has_batch_dim(model_ref.path))
    naive = parse_layout("naive", topo)
    best = start or naive
    mode = aim.mode
    # The budget: each lever's candidates plus the current best, rounds each, plus the final.
    plan = sum(1 + len(_candidates(lv, naive, topo, engines, precs, batch)[0])
               for lv in levers) + 4
    if aim.key == "rate":  # every layout at each offered rate, and a pilot round
        plan *= len(RATE_FRACTIONS) + 1
    if duration is None:
        duration = min(10.0, max(0.5, budget_s / (plan * rounds) - STARTUP_S))
    say = progress_say(progress)
    say(f"tune: {len(levers)} levers ({', '.join(levers)}), about {plan} layout runs x "
        f"{rounds} rounds x {duration:.3g} s (+{STARTUP_S:g} s to start each): about "
        f"{plan * rounds * (duration + STARTUP_S) / 60:.0f} min of the "
        f"{budget_s / 60:.3g} min budget")
    t0 = time.monotonic()
    steps: list[Step] = []
    quantized = None  # the int8 copy the best runs, where it does
    ceilings: dict = {}  # roofline ceilings, measured once per CPU set and precision
    common = dict(mode=mode, duration=duration, rounds=rounds, dims=dims, topology=topo,
                  progress=progress, allow_slow_precision=allow_slow_precision)
    final = start_figures = None
    try:
        for n, lever in enumerate(levers):
            cands, why = _candidates(lever, best, topo, engines, precs, batch)
            if why:
                steps.append(Step(lever, [], skipped=why))
                continue
            spent = time.monotonic() - t0
            if spent > budget_s:
                steps.append(Step(lever, [], skipped="the budget is spent (it would have tried "
                                  f"{', '.join(c.name for c in cands)})"))
                continue
            say(f"tune: lever {n + 1}/{len(levers)}, {lever}: {', '.join(c.name for c in cands)}"
                f" against {best.name} ({spent:.0f} s spent, {budget_s - spent:.0f} s left)")
            layouts = [dataclasses.replace(best, name=f"{best.name}#current"), *cands]
            doc = _measure(run_infer, model_ref, layouts, aim, common)
            noisy = any(vs.get("verdict") == stats.NOISY for vs in _versus(doc, aim))
            if noisy and time.monotonic() - t0 < budget_s:  # once more: the machine was busy
                doc = _measure(run_infer, model_ref, layouts, aim, common)
            if start_figures is None:
                start_figures = _figures(doc["layouts"][0])
            step, best, kept_doc = _step(lever, cands, doc, best, aim, max_accuracy_loss,
                                         noisy)
            if step.kept and any(i.precision == "int8" for i in best.instances):
                quantized = doc.get("int8")
            elif step.kept:
                quantized = None
            step.bottleneck = _bottleneck(kept_doc, doc, topo, ceilings)
            steps.append(step)
        if best is not naive:
            say("tune: the final: the best against naive, in fresh rounds")
            final = _measure(run_infer, model_ref, [naive, *_parts(best, naive)], aim, common)
    except (KeyboardInterrupt, driver.WorkerFailed) as e:
        doc = _document(model_ref, steps, best, None, aim, duration, rounds, budget_s,
                        time.monotonic() - t0, topo, start_figures)
        doc["partial"] = True
        if isinstance(e, driver.WorkerFailed):
            doc["error"] = str(e)
            raise driver.WorkerFailed(str(e), None, document=doc) from e
        doc["error"] = "interrupted (Ctrl-C): the ladder so far"
        raise driver.Interrupted(None, document=doc) from e
    doc = _document(model_ref, steps, best, final, aim, duration, rounds, budget_s,
                    time.monotonic() - t0, topo, start_figures)
    if quantized and any(i.precision == "int8" for i in best.instances):
        from .models import default_cache_dir
        doc["best"]["commands"].append(
            f"# int8: the {quantized['method']} quantized copy "
            f"{default_cache_dir() / quantized['file']} (calibration: "
            f"{quantized['calibration'].split(':')[0]})")
    return doc


def progress_say(progress):
    """A line to stderr, unless progress is off (progress=False)."""
    import sys
    if progress is False:
        return lambda line: None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _gain(vs: dict, aim: Goal) -> tuple[float | None, tuple | None]:
    """A comparison's gain for the goal (the ratio, inverted where lower is better) and its
    interval."""
    ratio = (vs.get("throughput_ratio") or vs.get("samples_ratio") or vs.get("p50_ratio")
             or vs.get("p99_ratio") or vs.get("rate_ratio") or [None, None, None])
    if ratio[0] is None:
        return None, None
    if None in ratio[1:]:  # not established: no interval
        return (ratio[0] if aim.higher else 1 / ratio[0]), None
    if aim.higher:
        return ratio[0], tuple(ratio[1:])
    return 1 / ratio[0], (1 / ratio[2], 1 / ratio[1])


def sustainable(rates, p99s, bound: float) -> tuple[float, str | None]:
    """The highest offered rate whose p99 stays within ``bound``, from p99s measured at
    ascending ``rates``: interpolated on log p99 between the last rate that met the bound and
    the first that did not. (rate, note): the note says when the figure is censored: every
    rate met the bound (the highest tried; the limit is beyond it) or none did (scaled down
    from the lowest, as if p99 grew in proportion)."""
    ok = [p is not None and p <= bound for p in p99s]
    if all(ok):
        return rates[-1], "every offered rate met the bound: the limit is above the highest"
    j = ok.index(False)
    if j == 0:
        p = p99s[0]
        return (rates[0] * bound / p if p else rates[0]), ("no offered rate met the bound: "
                                                           "scaled down from the lowest")
    lo, hi = p99s[j - 1], p99s[j]
    if hi is None or hi <= lo:
        return rates[j - 1], None
    t = (math.log(bound) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return rates[j - 1] + t * (rates[j] - rates[j - 1]), None


def _measure(run_infer, model_ref, layouts, aim: Goal, common: dict) -> dict:
    """The layouts measured for the goal: run_infer's document, or for rate:p99:Xms one
    built from a closed-loop pilot round (capacity, achieved rates) and a run_infer at each
    offered rate (RATE_FRACTIONS of the fastest pilot), whose round k gives each layout's
    round k figure: its sustainable() rate. Rates are offered to every layout alike, so the
    comparison is at equal load; rounds pair across the rates by number."""
    if aim.key != "rate":
        return run_infer(model_ref, layouts, **common)
    pilot = run_infer(model_ref, layouts, **{**common, "mode": "closed", "rounds": 1})
    top = max(d["throughput"]["per_s"] for d in pilot["layouts"]) or 1.0
    rates = [f * top for f in RATE_FRACTIONS]
    docs = [run_infer(model_ref, layouts, **{**common, "mode": "poisson", "rate": r})
            for r in rates]
    out = []
    for k, entry in enumerate(pilot["layouts"]):
        rounds, notes = [], set()
        for i in range(min(len(d["layouts"][k]["rounds"]) for d in docs)):
            rs = [d["layouts"][k]["rounds"][i] for d in docs]
            figure, note = sustainable(rates, [r.get("p99_ms") for r in rs], aim.bound_ms)
            notes.add(note)
            rounds.append({"rate": figure, "noise": max(
                (r["noise"] for r in rs if r.get("noise") is not None), default=None)})
        per_s = sum(r["rate"] for r in rounds) / len(rounds) if rounds else 0.0
        out.append({**entry, "rounds": rounds, "rate": {
            "per_s": per_s, "offered": rates, "bound_ms": aim.bound_ms,
            "note": "; ".join(sorted(n for n in notes if n)) or None}})
    return {**pilot, "layouts": out}


def _versus(doc: dict, aim: Goal) -> list[dict]:
    """Each candidate's comparison with the current best for the goal: run_infer's own for
    its primary figure (throughput, p50), else the same rule on the goal's per-round figure."""
    if aim.key in ("throughput", "p50_ms"):
        return [d.get("vs_first") or {} for d in doc["layouts"][1:]]
    from .infer import versus_first
    return versus_first(doc["layouts"], aim.mode, key=aim.key)


def _step(lever, cands, doc, best, aim: Goal, max_accuracy_loss, noisy):
    """One lever's step from its run_infer document: the best candidate kept when it is
    "faster" (and its precision within the accuracy floor). Returns (step, the new best, the
    best's entry in the document)."""
    base, rows = doc["layouts"][0], doc["layouts"][1:]
    step = Step(lever, [c.name for c in cands],
                note="measured twice: the first time, other work took the CPUs"
                if noisy else None)
    scored = []
    for c, d, vs in zip(cands, rows, _versus(doc, aim)):
        gain, ci = _gain(vs, aim)
        if gain is None:
            continue
        scored.append((gain, ci, vs.get("verdict"), vs.get("detail"), c, d,
                       _accuracy_loss(d, max_accuracy_loss)))
    if not scored:
        step.best = _figures(base)
        return step, best, base
    gain, ci, verdict, detail, c, d, lost = max(scored, key=lambda s: s[0])
    step.gain, step.ci, step.verdict, step.detail = gain, ci, verdict, detail or None
    if verdict == "faster" and not lost:
        step.kept, step.best = c.name, _figures(d)
        return step, dataclasses.replace(c, name=c.name), d
    step.best = _figures(base)
    step.note = "; ".join(filter(None, (step.note, lost))) or None
    return step, best, base


def _bottleneck(entry: dict, doc: dict, topo: Topology, cache: dict) -> str | None:
    """The roofline's words for a layout's entry of ``doc`` (roofline.bound: its achieved
    rates against the ceilings of its CPUs, measured once per CPU set and precision): what
    bounds it now."""
    from . import roofline
    if not doc.get("cost") or not entry.get("achieved"):
        return None
    return roofline.bound(entry, roofline.work_of(doc, entry), topo, cache)["words"]


def _parts(best: Layout, naive: Layout) -> list[Layout]:
    """The final's layouts after naive: the best's layout with naive's engine and precision
    (what the layout alone bought), then with its engine at naive's precision, then the best
    itself; each only where it differs from the one before."""
    e0 = naive.instances[0].engine or _engines.DEFAULT_ENGINE
    p0 = naive.instances[0].precision or _engines.DEFAULT_PRECISION
    base = best.name
    layout_only = _renamed(best, f"{base}#layout", engine=e0, precision=p0)
    engine_only = _renamed(best, f"{base}#engine", precision=p0)
    same = lambda a, b: a.to_dict()["instances"] == b.to_dict()["instances"]  # defaults resolved
    out = [layout_only]
    if not same(engine_only, layout_only):
        out.append(engine_only)
    if not same(best, out[-1]):
        out.append(dataclasses.replace(best, name=f"{base}#final"))
    else:
        out[-1] = dataclasses.replace(out[-1], name=f"{base}#final")
    return out


def _accuracy_loss(d: dict, floor: float) -> str | None:
    """Why a candidate's precision may not be kept (None: it may): an output whose cosine
    similarity to f32 fell below ``floor``."""
    for a in d.get("accuracy") or []:
        for o in a["outputs"]:
            if o["cosine"] < floor:
                return (f"{a['precision']} not kept: {o['name']} cosine {o['cosine']:.6f} "
                        f"against f32, below {floor}")
    return None


def _document(model_ref, steps, best, final, aim: Goal, duration, rounds, budget_s, seconds,
              topo, start=None) -> dict:
    from .models import describe
    total, parts = None, None
    if final is not None:
        rows = final["layouts"]
        vs = _versus(final, aim)[-1]
        g, ci = _gain(vs, aim)
        if g is not None:
            total = {"gain": g, "ci": list(ci), "verdict": vs.get("verdict"),
                     "detail": vs.get("detail"), "naive": _figures(rows[0]),
                     "best": _figures(rows[-1])}
        parts = totals(rows, aim)
    layout_steps = [s for s in steps if s.kept and s.lever != "engine"]
    engine_steps = [s for s in steps if s.kept and s.lever == "engine"]
    products = {"layout": math.prod(s.gain for s in layout_steps) if layout_steps else 1.0,
                "engine_and_precision": math.prod(s.gain for s in engine_steps)
                if engine_steps else 1.0}
    bound = None
    if aim.bound_ms is not None and aim.key == "p99_ms":
        last = (total or {}).get("best") or (start if not any(s.kept for s in steps) else
                                             next((s.best for s in reversed(steps) if s.best),
                                                  None))
        p99 = (last or {}).get("p99")
        bound = {"ms": aim.bound_ms, "p99_ms": p99,
                 "met": None if p99 is None else p99 <= aim.bound_ms}
    return {"kind": "tune", "model": describe(model_ref), "goal": aim.name,
            "asked": {"goal": aim.name, "budget_s": budget_s, "duration": duration,
                      "rounds": rounds},
            "bound": bound,
            "start": start, "steps": [s.to_dict() for s in steps], "final": total,
            "totals": parts,
            "step_totals": products,
            "best": {"name": best.name, "layout_file": layout_file(best),
                     "commands": launch_commands(best, topo)},
            "seconds": seconds}


PARTS = {"layout": "layout", "engine": "engine", "final": "precision"}


def totals(rows: list[dict], aim: Goal) -> list[dict]:
    """The final's rows (naive, then _parts' layouts: #layout, #engine, #final) as three
    totals, each part against the one before it over the same fresh rounds (paired by round,
    Holm over the parts): what the layout alone bought (same engine, same numerics), then
    the engine, then the precision. A part the best does not change is left out."""
    key, higher = aim.key, aim.higher
    names = []
    for cur in rows[1:]:
        tag = cur["layout"]["name"].rsplit("#", 1)[-1]
        if tag == "final" and len(rows) == 2:
            tag = "layout"  # the best changed only the layout
        names.append(PARTS.get(tag, tag))
    family = stats.paired_family(
        [([r[key] for r in prev["rounds"]], [r[key] for r in cur["rounds"]])
         for prev, cur in zip(rows, rows[1:])], higher_is_better=higher)
    out = []
    for name, (c, v) in zip(names, family):
        g = c.ratio if higher else 1 / c.ratio
        ci = c.ci if higher else (1 / c.ci[1], 1 / c.ci[0])
        finite = [x if math.isfinite(x) else None for x in (g, *ci)]
        out.append({"part": name, "gain": finite[0], "ci": finite[1:], "verdict": v.word,
                    "detail": v.detail})
    return out


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
        if i.batch:
            d["batch"] = i.batch
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
        if i.batch:
            threads += f"; batch {i.batch} samples per call"
        cpus = format_list(i.cpus)
        lines.append(f"numactl -C {cpus}{mem} -- YOUR_SERVER   # {engine}: {threads}"
                     if i.pin else f"YOUR_SERVER   # not pinned; {engine}: {threads}")
    return lines


# ------------------------------------------------------------------------ the result kind

def _shown(goal: str) -> tuple[str, str]:
    """The figure (in _figures) and its unit that a goal's ladder shows."""
    if goal.startswith("rate:"):
        return "rate", "inf/s"
    return {"throughput": ("throughput", "inf/s"), "latency": ("p50", "ms")}.get(
        goal, ("p99", "ms"))


def _value(figs: dict, fig: str, unit: str) -> str:
    v = figs.get(fig)
    if v is None:
        return "-"
    if fig == "throughput":
        b = figs.get("batch") or 1
        return f"{v:.1f} samples/s (batch {b})" if b > 1 else f"{v:.1f} {unit}"
    return f"{fig} {v:.3g} {unit}"


def tune_text(doc: dict) -> str:
    r = doc["result"]
    g = r["goal"]
    fig, unit = _shown(g)
    lines = [f"the ladder for {r['model']['name']}, goal {g}: each step against the best so "
             f"far, {r['asked']['rounds']} rounds x {r['asked']['duration']:.3g} s",
             f"{'step':<11}{'tried':<28}{'gain':>7} {'95 % interval':>16}  verdict / kept"]
    if fig == "rate":
        pct = "-".join(f"{100 * f:.0f}" for f in (RATE_FRACTIONS[0], RATE_FRACTIONS[-1]))
        lines.insert(1, f"rate: the highest Poisson arrival rate whose p99 stays within "
                        f"{g.split(':')[2]}, from loads offered at {pct} % of the fastest "
                        "layout's closed-loop throughput (interpolated)")
    for s in r["steps"]:
        if s["skipped"]:
            lines.append(f"{s['lever']:<11}skipped: {s['skipped']}")
            continue
        gain = f"{s['gain']:.2f}x" if s["gain"] else "-"
        ci = f"[{s['ci'][0]:.2f}, {s['ci'][1]:.2f}]" if s.get("ci") else ""
        kept = f"kept {s['kept']}" if s["kept"] else "not kept"
        best = s.get("best") or {}
        figure = f"; now {_value(best, fig, unit)}" if best else ""
        lines.append(f"{s['lever']:<11}{', '.join(s['tried'])[:27]:<28}{gain:>7} {ci:>16}  "
                     f"{s['verdict']}; {kept}{figure}")
        if s.get("note"):
            lines.append(f"{'':<11}{s['note']}")
        if s.get("verdict") != "faster" and s.get("detail"):
            lines.append(f"{'':<11}{s['detail']}")
        if s.get("bottleneck"):
            lines += textwrap.wrap(f"now {s['bottleneck']}", 79, initial_indent=" " * 11,
                                   subsequent_indent=" " * 13)
    f = r.get("final")
    if f:
        lines.append(f"final, measured again against naive in fresh rounds: {f['gain']:.2f}x "
                     f"[{f['ci'][0]:.2f}, {f['ci'][1]:.2f}] ({f['verdict']}): naive "
                     f"{_value(f['naive'], fig, unit)} -> {_value(f['best'], fig, unit)}")
    else:
        lines.append("final: no step was kept; naive stays the best layout")
    b = r.get("bound")
    if b:
        lines.append(f"the bound p99 <= {b['ms']:g} ms: " + (
            "no p99 measured" if b["met"] is None else
            f"{'met' if b['met'] else 'NOT met'} (p99 {b['p99_ms']:.3g} ms)"))
    for t in r.get("totals") or []:
        gain = f"{t['gain']:.2f}x" if t["gain"] else "-"
        ci = f" [{t['ci'][0]:.2f}, {t['ci'][1]:.2f}]" if t["ci"][0] else ""
        lines.append(f"  of which {t['part']}: {gain}{ci} ({t['verdict']})")
    t = r["step_totals"]
    lines.append(f"the steps' product: layout {t['layout']:.2f}x, engine and precision "
                 f"{t['engine_and_precision']:.2f}x (picked among candidates: the final "
                 "figures above are the ones to quote)")
    lines.append("best layout, as a file for infer --instances:")
    lines.append("  " + json.dumps(r["best"]["layout_file"]))
    lines.append("to deploy it without numaprobe:")
    lines += [f"  {c}" for c in r["best"]["commands"]]
    return "\n".join(lines)


def waterfall(r: dict) -> list[dict]:
    """The ladder as levels of the goal's figure: the start as measured, then each step's
    level from the one before times its proven gain (kept steps; a step not kept stays
    level), so drift between steps' runs does not enter; the final as measured afresh."""
    g = r["goal"]
    key, _ = _shown(g)
    start = (r.get("start") or {}).get(key)
    if not start:
        return []
    out, level = [{"label": "start", "value": start, "base": 0.0, "kind": "start"}], start
    for s in r["steps"]:
        if s["skipped"]:
            continue
        new = level * s["gain"] if s["kept"] and key in ("throughput", "rate") else (
            level / s["gain"] if s["kept"] else level)
        out.append({"label": s["lever"], "value": new, "base": level,
                    "kind": "kept" if s["kept"] else "not kept", "gain": s["gain"],
                    "ci": s["ci"], "verdict": s["verdict"]})
        level = new
    f = r.get("final")
    if f:
        for side in ("naive", "best"):
            v = f[side].get(key)
            if v:
                ci = f[side].get("throughput_ci") if key == "throughput" else None
                out.append({"label": f"final: {side}", "value": v, "base": 0.0,
                            "kind": f"final {side}", "ci": ci})
    return out


def _plot_waterfall(doc: dict):
    from ..report import plots as P
    r = doc["result"]
    bars = waterfall(r)
    if not bars:
        return None
    fig = P.figure(9.0, 5.0)
    ax = fig.add_subplot()
    colour = {"start": "#7f7f7f", "kept": "#2ca02c", "not kept": "#c7c7c7",
              "final naive": "#7f7f7f", "final best": "#1f77b4"}
    for k, b in enumerate(bars):
        lo, hi = sorted((b["base"], b["value"]))
        if b["kind"] == "not kept":
            ax.plot([k - 0.4, k + 0.4], [b["value"]] * 2, color="0.55", linewidth=2)
        else:
            ax.bar(k, hi - lo, bottom=lo, color=colour[b["kind"]], width=0.8)
        if b["kind"].startswith("final") and b.get("ci"):
            ax.errorbar([k], [b["value"]], yerr=[[max(0.0, b["value"] - b["ci"][0])],
                                                 [max(0.0, b["ci"][1] - b["value"])]],
                        color="black", capsize=4, linewidth=1)
        text = (f"{b['gain']:.2f}x" if b["kind"] == "kept" else
                "not kept" if b["kind"] == "not kept" else f"{b['value']:.3g}")
        ax.annotate(text, (k, max(b["value"], b["base"])), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=8.5)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b["label"] for b in bars], rotation=20, ha="right")
    key, _ = _shown(r["goal"])
    unit = {"throughput": "inferences/s", "rate": "sustainable rate, inferences/s"}.get(
        key, f"{key}, ms (lower is better)")
    ax.set_ylabel(unit)
    ax.set_ylim(0, max(b["value"] for b in bars) * 1.2)
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    f = r.get("final")
    extra = (f"final {f['gain']:.2f}x [{f['ci'][0]:.2f}, {f['ci'][1]:.2f}], measured again "
             "against naive" if f else "no step kept")
    P.titles(fig, ax, f"the ladder: model {r['model']['name']}, goal {r['goal']}", doc,
             f"kept steps rise by their proven gain; {extra}")
    return fig


def _html_tune(doc: dict) -> str:
    from ..report import html as H
    r = doc["result"]
    rows = []
    for s in r["steps"]:
        if s["skipped"]:
            rows.append([s["lever"], "-", "-", "-", f"skipped: {s['skipped']}", "-"])
            continue
        ci = f"[{s['ci'][0]:.2f}, {s['ci'][1]:.2f}]" if s.get("ci") else "-"
        rows.append([s["lever"], ", ".join(s["tried"]),
                     f"{s['gain']:.2f}x" if s["gain"] else "-", ci,
                     f"{s['verdict']}; " + (f"kept {s['kept']}" if s["kept"] else "not kept")
                     + (f" ({s['detail']})" if s.get("detail") and not s["kept"] else ""),
                     s.get("bottleneck") or "-"])
    out = [H.table(["lever", "tried", "gain", "95 % interval", "verdict", "bottleneck after"],
                   rows, caption=f"the ladder, goal {r['goal']}: each step against the best so "
                                 f"far, {r['asked']['rounds']} rounds x "
                                 f"{r['asked']['duration']:.3g} s")]
    f = r.get("final")
    if f:
        parts = "".join(f"<li>{H.e(t['part'])}: {t['gain']:.2f}x"
                        + (f" [{t['ci'][0]:.2f}, {t['ci'][1]:.2f}]" if t["ci"][0] else "")
                        + f" ({H.e(t['verdict'])})</li>" for t in r.get("totals") or [])
        out.append(f"<p>final, measured again against naive in fresh rounds: <b>"
                   f"{f['gain']:.2f}x</b> [{f['ci'][0]:.2f}, {f['ci'][1]:.2f}] "
                   f"({H.e(f['verdict'])})</p>" + (f"<ul>{parts}</ul>" if parts else ""))
    else:
        out.append("<p>no step was kept: naive stays the best layout</p>")
    out.append(f"<p>best layout, as a file for <code>infer --instances</code>:</p>"
               f"<pre>{H.e(json.dumps(r['best']['layout_file'], indent=1))}</pre>"
               f"<p>to deploy it without numaprobe:</p>"
               f"<pre>{H.e(chr(10).join(r['best']['commands']))}</pre>")
    return "\n".join(out)


def _register() -> None:
    from ..kinds import Kind, register
    register(Kind("tune", "the tuning ladder", text=tune_text, html=_html_tune,
                  rows=lambda doc: (["lever", "tried", "kept", "gain", "ci_low", "ci_high",
                                     "verdict", "skipped", "bottleneck"],
                                    [[s["lever"], "; ".join(s["tried"]), s["kept"], s["gain"],
                                      *(s["ci"] or (None, None)), s["verdict"], s["skipped"],
                                      s.get("bottleneck")]
                                     for s in doc["result"]["steps"]]),
                  plots=lambda doc: [("waterfall", lambda: _plot_waterfall(doc))]))


_register()
