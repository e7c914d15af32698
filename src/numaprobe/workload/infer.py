"""`numaprobe infer` and `numaprobe sweep`: layouts compared on one model, with intervals,
verdicts and the reasons.

The round is the unit of evidence: every round starts fresh workers for each layout, in an
order rotated round by round (A B C, B C A, ...), so slow drift hits all layouts alike and a
thread pool's speed is drawn anew. Throughput intervals come from the rounds (a t interval),
percentile intervals from a bootstrap over rounds and then inferences; each layout is compared
with the first on the per-round ratios, paired by round (stats.paired_ratio, Holm over the
layouts). With fewer than 3 rounds the intervals cover one window only and there is no
verdict. README: "What a verdict means".

Every layout runs under each engine and precision asked (layout.combine), in the same rounds;
each shows the settings its engine resolved and, for a precision other than f32, its outputs
against f32 on the same inputs (measured in the first round)."""
from __future__ import annotations

import dataclasses
import os
import sys
import math
import textwrap

import numpy as np

from .. import stats
from .._version import __version__
from ..progress import Progress
from ..errors import NotEnoughMemory, UsageError
from ..kinds import Figure, Kind, register
from ..noise import others_share
from ..report import html as H, plots as P
from ..topology import Topology, current as current_topology, human_bytes, memory_now, parse_list
from ..words import ids, plural
from . import driver, engines as _engines
from .diagnose import bottleneck, diagnose
from .layout import Layout, asked_settings, combine, parse_layout
from .layout import describe as describe_layout

RAW_LIMIT = 20000  # per-inference latencies kept in the document up to this many per layout


def _combine(runs: list[driver.LayoutRun]) -> driver.LayoutRun:
    """One run from several rounds of the same layout (instances appended, windows kept)."""
    first = runs[0]
    # The noise of the worst round: a verdict must not rest on a round the machine disturbed.
    noisy = [r.noise for r in runs if r.noise is not None]
    worst = max(noisy, key=others_share, default=None)
    merged = driver.LayoutRun(layout=first.layout, mode=first.mode, duration=first.duration,
                              instances=[i for r in runs for i in r.instances],
                              machine=first.machine, noise=worst,
                              failures=[f for r in runs for f in r.failures], rounds=list(runs))
    return merged


def _throughput_samples(run) -> np.ndarray:
    rounds = run.rounds or [run]
    return np.concatenate([r.throughput_bins() for r in rounds]) if rounds else np.array([])


def counters_per_inference(run: driver.LayoutRun) -> dict | None:
    """The perf counters of all of a layout's instances and rounds, per inference, with the
    events the kernel did not offer and why (None: from before counters were read)."""
    runs = [i for i in run.instances if i.perf]
    if not runs:
        return None
    n = sum(i.count for i in runs)
    totals: dict[str, int] = {}
    for i in runs:
        for k, v in i.perf["counts"].items():
            totals[k] = totals.get(k, 0) + v
    per = {k: v / n for k, v in totals.items()} if n else {}
    if per.get("cycles") and per.get("instructions"):
        per["ipc"] = per["instructions"] / per["cycles"]
    refused = {}
    for i in runs:
        refused.update(i.perf["refused"])
    return {"per_inference": per, "refused": refused}


def counters_words(c: dict) -> str:
    """A layout's counters in one line: the hardware's, or why there are none, then the
    kernel's."""
    p, refused = c["per_inference"], c["refused"]
    hw = []
    if "cycles" in p:
        hw.append(f"{p['cycles'] / 1e6:.3g} M cycles")
    if "instructions" in p:
        hw.append(f"{p['instructions'] / 1e6:.3g} M instructions"
                  + (f" (IPC {p['ipc']:.2f})" if p.get("ipc") else ""))
    if "llc_misses" in p:
        hw.append(f"{p['llc_misses'] / 1e3:.3g} k LLC misses")
    if not hw and "cycles" in refused:
        hw.append(f"hardware counters {refused['cycles']}")
    sw = []
    if "task_clock_ns" in p:
        sw.append(f"task clock {p['task_clock_ns'] / 1e6:.3g} ms")
    for key, word in (("context_switches", "switches"), ("migrations", "migrations"),
                      ("page_faults", "faults")):
        if key in p:
            sw.append(f"{p[key]:.3g} {word}")
    return "per inference: " + "; ".join(filter(None, (", ".join(hw), ", ".join(sw))))


def _per_inference(i: driver.InstanceRun) -> dict:
    """CPU time, page faults, context switches and migrations per inference."""
    if not i.count:
        return {}
    return {k: (v / i.count if v is not None else None) for k, v in i.counters.items()}


def _round_figures(r: driver.LayoutRun) -> dict:
    """One round's figures (fresh workers each round): what verdicts across rounds rest on.
    Percentiles are None for a round that finished no inference."""
    lat = np.sort(r.latencies.astype(np.float64) / 1e6)
    return {"throughput": r.throughput,
            **{f"p{p:g}_ms": stats.percentile(lat, p) if lat.size else None for p in (50, 90, 99)},
            "noise": others_share(r.noise)}


def summarize_run(run: driver.LayoutRun, topo: Topology) -> dict:
    """One layout's entry in the document. With MIN_ROUNDS rounds or more its intervals come
    from the rounds (a t interval for throughput, a hierarchical bootstrap for percentiles);
    with fewer, from the one window's tenths and samples, which cover only the noise within a
    run (``interval_from`` says which)."""
    rounds = run.rounds or [run]
    per_round = [_round_figures(r) for r in rounds]
    thr_rounds = np.array([r["throughput"] for r in per_round], float)
    thr = float(thr_rounds.mean()) if thr_rounds.size else 0.0
    bins = _throughput_samples(run)
    lat = run.latencies
    latency = driver.latency_summary(lat)
    measured = [r.latencies.astype(np.float64) / 1e6 for r in rounds if r.latencies.size]
    if len(rounds) >= stats.MIN_ROUNDS:
        half = stats.t_quantile(0.975, len(rounds) - 1) * thr_rounds.std(ddof=1) / np.sqrt(len(rounds))
        lo, hi, basis = thr - half, thr + half, "rounds"
        for p in stats.PERCENTILES:
            key = f"p{p:g}"
            if latency.get(key) and len(measured) >= stats.MIN_ROUNDS:
                _, plo, phi = stats.percentile_ci_hierarchical(measured, p, boots=400)
                latency[key]["ci"] = [plo, phi]
    else:
        lo, hi = stats.bootstrap_ci(bins, lambda s: float(np.mean(s))) if bins.size else (thr, thr)
        basis = "window"
    latency["interval_from"] = basis
    cpus = sorted({c for i in run.layout.instances for c in i.cpus})
    count = sum(i.count for i in run.instances)
    doc = {
        "layout": run.layout.to_dict(),
        "description": run.layout.describe(),
        "settings": _settings(run),
        "accuracy": _accuracy(run),
        "counters": counters_per_inference(run),
        "throughput": {"per_s": thr, "ci": [lo, hi], "bins": bins.tolist(), "interval_from": basis},
        "latency": latency,
        "rounds": per_round,
        "cpus": len(cpus),
        "throughput_per_cpu": thr / len(cpus) if cpus else 0.0,
        "cpu_s_per_inference": run.cpu_s / count if count else None,
        "instances": [{"index": i.index, "cpus": i.instance["cpus"], "count": i.count,
                       "throughput": i.throughput, "partial": i.partial,
                       "p50_ms": float(np.median(i.latency_ns)) / 1e6 if i.count else None,
                       "memory_bytes_per_node": i.memory, "counters": i.counters,
                       "per_inference": _per_inference(i),
                       "cpu_utilisation": i.counters["cpu_s"] / (i.window_ns / 1e9)
                       if i.window_ns else None,
                       "threads": i.threads, "busy_threads": i.busy_threads,
                       "engine": i.engine}
                      for i in run.instances],
        "telemetry": run.machine,
        "noise": run.noise.to_dict() if run.noise else None,
        "diagnoses": diagnose(run, topo),
        "partial": run.partial, "failures": run.failures,
    }
    if lat.size <= RAW_LIMIT:
        doc["latency_ms"] = (lat / 1e6).round(4).tolist()
    return doc


def _settings(run: driver.LayoutRun) -> list[dict]:
    """What the layout's engines resolved (engines.RESOLVED), each distinct setting once
    (every instance of a preset, every round, takes the same), with the most threads any
    instance of it created."""
    out: list[dict] = []
    for i in run.instances:
        if not i.engine:
            continue
        same = {k: v for k, v in i.engine.items() if k != "threads_created"}
        seen = next((s for s in out if {k: v for k, v in s.items() if k != "threads_created"}
                     == same), None)
        if seen is None:
            out.append(dict(i.engine))
        elif (i.engine.get("threads_created") or 0) > (seen.get("threads_created") or 0):
            seen["threads_created"] = i.engine["threads_created"]
    return out


def _accuracy(run: driver.LayoutRun) -> list[dict]:
    """The accuracy checks against f32 (worker.py), one per engine and precision: the first
    round's (the same inputs give the same figures every round)."""
    out, seen = [], set()
    for i in run.instances:
        kind = (i.instance.get("engine"), i.instance.get("precision"))
        if i.accuracy and kind not in seen:
            seen.add(kind)
            out.append({"engine": kind[0], "precision": kind[1], **i.accuracy})
    return out


def primary(mode: str) -> tuple[str, bool]:
    """The per-round figure a mode's verdict is about, and whether higher is better:
    throughput in closed loop, p50 latency otherwise."""
    return ("throughput", True) if mode == "closed" else ("p50_ms", False)


def versus_first(layouts: list[dict], mode: str, *, min_effect: float = stats.MIN_EFFECT_ROUNDS,
                 max_noise: float = stats.MAX_NOISE, key: str | None = None) -> list[dict]:
    """Each later layout against the first, over rounds paired by round number (the layouts
    of a round ran back to back): ratio, interval, p-value and MDE of the primary figure (or
    of ``key``, another per-round figure: p90_ms, p99_ms, lower better, or rate, higher);
    Holm over the family of layouts decides which may be called faster or slower."""
    key, higher = primary(mode) if key is None else (key, key in ("throughput", "rate",
                                                                   "samples"))
    base, others = layouts[0], layouts[1:]

    def worst(x):  # the largest share of the CPUs others took in any of a layout's rounds
        return max((r["noise"] for r in x["rounds"] if r["noise"] is not None), default=None)

    def few(k, n):  # a round where either side measured nothing stays out of the pairs
        d = others[k]
        return (f"{n} round(s) with a figure on both sides ({base['layout']['name']} ran "
                f"{len(base['rounds'])}, {d['layout']['name']} {len(d['rounds'])}); a "
                f"verdict needs {stats.MIN_ROUNDS}: rerun with --rounds {stats.DEFAULT_ROUNDS}")
    family = stats.paired_family(
        [([r[key] for r in base["rounds"]], [r[key] for r in d["rounds"]]) for d in others],
        higher_is_better=higher, noise=[(worst(base), worst(d)) for d in others], few=few,
        min_effect=min_effect, max_noise=max_noise)
    name = "throughput_ratio" if key == "throughput" else f"{key.split('_')[0]}_ratio"
    out = []
    for c, v in family:
        finite = [x if np.isfinite(x) else None for x in (c.ratio, *c.ci)]  # JSON has no NaN
        out.append({name: finite, "verdict": v.word, "detail": v.detail,
                    "figure": key, "comparison": c.to_dict()})
    return out


def run_infer(model_ref, layouts: list[Layout], *, mode="closed", duration=3.0,
              rounds=stats.DEFAULT_ROUNDS, warmup=5, dims=None, rate=None, seed=0,
              target_effect: float | None = None, max_rounds: int | None = None,
              max_noise: float = stats.MAX_NOISE, min_effect: float = stats.MIN_EFFECT_ROUNDS,
              topology: Topology | None = None, progress: bool | None = None,
              force: bool = False, engines=(_engines.DEFAULT_ENGINE,),
              precisions=(_engines.DEFAULT_PRECISION,), allow_slow_precision: bool = False,
              inputs: str | None = None, quantize: str = "static",
              profile: bool = False, perturb: bool = False) -> dict:
    """Runs every layout under every engine x precision (layout.combine: the first layout's
    first combination is the baseline) ``rounds`` times, interleaved, each round with fresh
    workers, and returns the result document. With ``target_effect`` (a fraction) it keeps adding rounds,
    up to ``max_rounds``, until every layout's comparison with the first could detect that
    effect; ``stopped`` in the document says after how many rounds and why.
    Bad arguments, a layout its nodes cannot hold (``check_memory``; ``force`` runs it
    anyway), an engine that is not installed (ImportError) and a precision the CPU has no
    units for (``allow_slow_precision`` runs it anyway) are refused before any worker starts.
    Every precision other than f32 is measured against f32 in the first round; int8 runs
    the model's int8 copy (quantize.int8_copy, ``quantize`` its method), made before any
    worker starts. ``inputs``: an .npz file of real inputs (models.load_inputs) that the
    workers feed and the int8 copy is calibrated on (default: generated from the signature).
    ``profile``: after the measured rounds, one more pass per layout (PROFILE_S, at most
    ``duration``) with the engine's profiler on, one inference at a time per instance: where
    the time goes, by kernel (its figures are never compared: the profiler costs time).
    ``perturb``: after that, each layout again under numaprobe's own loads on the CPUs it
    leaves free (perturb.py: memory traffic, cache pressure), in rounds of their own: what
    each load costs it says what bounds it. On a failure or Ctrl-C the exception carries ``document`` with what was measured."""
    from . import perturb as _perturb  # the load generator: native code, loaded when run
    topo = current_topology(topology)
    if not isinstance(layouts, (list, tuple)) or not layouts or not all(
            isinstance(l, Layout) for l in layouts):
        raise UsageError(f"layouts must be a non-empty list of Layout (see parse_layout), got "
                         f"{layouts!r:.60}")
    layouts, left_out = combine(layouts, engines, precisions)
    _check_asked(layouts, rounds=rounds, max_rounds=max_rounds, target_effect=target_effect,
                 max_noise=max_noise, min_effect=min_effect)
    driver.check_options(mode=mode, duration=duration, warmup=warmup, rate=rate)
    for name in dict.fromkeys(i.to_dict()["engine"] for l in layouts for i in l.instances):
        _engines.get(name).require()
    for p in dict.fromkeys(i.to_dict()["precision"] for l in layouts for i in l.instances):
        _engines.check_cpu(p, topo, allow_slow=allow_slow_precision)
    check_memory(model_ref, layouts, topo, force=force)
    samples = None
    if inputs is not None:
        from .models import inputs as specs_of, load_inputs
        samples, given = load_inputs(inputs, specs_of(model_ref.path))
        clash = {k: v for k, v in (dims or {}).items() if given.get(k, v) != v}
        if clash:
            raise UsageError(f"--inputs {inputs} gives {', '.join(f'{k}={given[k]}' for k in clash)}"
                             f"; --dim says {', '.join(f'{k}={v}' for k, v in clash.items())}")
        dims = {**(dims or {}), **given}
    from .models import BATCH_DEFAULT, has_batch_dim
    batches = sorted({i.batch for l in layouts for i in l.instances if i.batch})
    if batches and inputs is not None:
        raise UsageError(f"--inputs {inputs} fixes the batch; a layout's own batch "
                         f"({', '.join(map(str, batches))}) needs generated inputs")
    if batches and not has_batch_dim(model_ref.path):
        raise UsageError(f"{model_ref.name}: its inputs have no batch dimension, so a "
                         "layout cannot set a batch size")
    work, work_warning = _cost(model_ref, dims)
    work_of = {b: work if (dims or {}).get("batch") == b  # counted once, not twice
               else _cost(model_ref, {**(dims or {}), "batch": b})[0] for b in batches}
    variants, int8 = {}, None
    if any(i.precision == "int8" for l in layouts for i in l.instances):
        from .quantize import int8_copy
        int8 = int8_copy(model_ref.path, method=quantize, dims=dims, samples=samples,
                         say=(lambda line: print(f"numaprobe: {line}", file=sys.stderr))
                         if progress is not False else None)
        variants["int8"] = int8["path"]
    limit = max(rounds, max_rounds or 0) if target_effect else rounds
    per_run = duration * max((len(l.instances) if mode == "single" else 1) for l in layouts)
    extra = len(layouts) * ((min(duration, PROFILE_S) + 3 if profile else 0) + (
        _perturb.ROUNDS * (1 + len(_perturb.LOADS)) * (min(duration, _perturb.PERTURB_S) + 3)
        if perturb else 0))
    bar = Progress(rounds * sum(per_run + 3 for _ in layouts) + extra, "infer", progress,
                   seconds=True)
    runs: dict[int, list] = {k: [] for k in range(len(layouts))}
    profiles: dict[int, driver.LayoutRun] = {}
    perturbed: dict[int, dict] = {}
    error, done, why = None, 0, f"the {rounds} round(s) asked for"
    try:
        while done < limit:
            r = done
            # Each round starts fresh workers, in an order rotated round by round (A B C, B C A,
            # C A B), so no layout always runs first and a thread pool's mode is drawn anew.
            for k in [(r + j) % len(layouts) for j in range(len(layouts))]:
                layout = layouts[k]
                bar.update(f"round {r + 1}/{limit}: {layout.name}")
                runs[k].append(driver.run_layout(
                    model_ref.path, layout, mode=mode, duration=duration, warmup=warmup,
                    dims=dims, rate=rate, seed=seed, topology=topo, check_accuracy=r == 0,
                    variants=variants, inputs=inputs,
                    progress=lambda what, frac, r=r: bar.update(f"round {r + 1}/{limit}: {what}")))
            done += 1
            if target_effect and done >= rounds:
                mde = _worst_mde(runs, mode)
                if mde <= target_effect:
                    why = (f"every comparison could detect {100 * target_effect:g} % "
                           f"(worst {100 * mde:.1f} %)")
                    break
                why = (f"--max-rounds {limit} reached; the worst comparison could detect "
                       f"{'nothing yet' if not np.isfinite(mde) else f'{100 * mde:.1f} %'}"
                       f", not the {100 * target_effect:g} % asked for")
        for k, layout in enumerate(layouts) if profile else ():
            bar.update(f"profiling pass: {layout.name}")
            profiles[k] = driver.run_layout(
                model_ref.path, layout, mode="closed", duration=min(duration, PROFILE_S),
                warmup=warmup, dims=dims, seed=seed, topology=topo, check_accuracy=False,
                variants=variants, inputs=inputs, profile=True,
                progress=lambda what, frac: bar.update(f"profiling pass: {what}"))
        for k, layout in enumerate(layouts) if perturb else ():
            perturbed[k] = _perturb.perturb(
                model_ref.path, layout, topo, duration=min(duration, _perturb.PERTURB_S),
                warmup=warmup, dims=dims, seed=seed, variants=variants, inputs=inputs,
                progress=lambda what, name=layout.name: bar.update(
                    f"perturbation, {name}: {what}"))
    except (driver.WorkerFailed, KeyboardInterrupt) as e:
        # A Ctrl-C that came between two layouts, not inside the driver, stops the run alike.
        error = e if isinstance(e, (driver.WorkerFailed, driver.Interrupted)) else (
            driver.Interrupted())
        if error.partial is not None and error.partial.instances:
            runs[[k for k, l in enumerate(layouts) if l is error.partial.layout][0]].append(
                error.partial)
    finally:
        bar.close()
    doc = document(model_ref, layouts, runs, topo, mode=mode, duration=duration, rounds=rounds,
                   dims=dims, rate=rate, target_effect=target_effect, max_rounds=max_rounds,
                   max_noise=max_noise, min_effect=min_effect, engines=list(engines),
                   precisions=list(precisions), allow_slow_precision=allow_slow_precision,
                   inputs=inputs, quantize=quantize if int8 else None)
    if int8 is not None:
        doc["int8"] = {k: int8[k] for k in ("method", "calibration", "ops")} | {
            "file": os.path.basename(int8["path"])}
    for k, pass_ in profiles.items():
        name = layouts[k].name
        d = next((d for d in doc["layouts"] if d["layout"]["name"] == name), None)
        if d is not None:
            d["profile"] = profile_summary(pass_, work)
    for k, p in perturbed.items():
        d = next((d for d in doc["layouts"] if d["layout"]["name"] == layouts[k].name), None)
        if d is not None:
            d["perturbation"] = p
    if work_of:
        doc["cost_by_batch"] = {str(b): w for b, w in work_of.items() if w}
    if work is not None:
        doc["cost"] = work
        for d in doc["layouts"]:
            per_s = d["throughput"]["per_s"] if mode == "closed" else None
            w = work_of.get(d["batch"]) or work
            d["achieved"] = ({"ops_per_s": per_s * w["ops"],
                              "weight_bytes_per_s": per_s * w["weight_bytes"]}
                             if per_s else None)
    if profile and error is None:
        _bounds(doc, topo)
    if (profile or perturb) and error is None:
        for d in doc["layouts"]:
            d["bottleneck"] = bottleneck(d)
    hint = _engines.idle_units_hint(topo, list(dict.fromkeys(
        (i.to_dict()["engine"], i.to_dict()["precision"]) for l in layouts for i in l.instances)))
    doc["warnings"] = (left_out + doc["warnings"] + ([hint] if hint else [])
                       + ([work_warning] if work_warning else []))
    doc["stopped"] = {"rounds": done, "why": why if error is None else "stopped early"}
    if error is not None:
        doc["partial"] = True
        if isinstance(error, driver.WorkerFailed):
            doc["error"] = str(error)
            raise driver.WorkerFailed(str(error), error.partial, document=doc) from error
        doc["error"] = "interrupted (Ctrl-C)"
        raise driver.Interrupted(error.partial, document=doc) from error
    return doc


def _count_samples(d: dict, run_batch: int) -> None:
    """A layout's entry counted in samples too: ``batch`` (its instances' or the run's) and
    samples per second, overall and per round (an inference of batch B is B samples), so that
    layouts of different batches compare on what they deliver."""
    b = (d["layout"]["instances"][0].get("batch") if d["layout"]["instances"] else None)
    d["batch"] = b = int(b or run_batch)
    d["throughput"]["samples_per_s"] = d["throughput"]["per_s"] * b
    for r in d.get("rounds") or []:
        r["samples"] = r["throughput"] * b if r.get("throughput") is not None else None


def _cost(model_ref, dims) -> tuple[dict | None, str | None]:
    """The model's cost per inference (cost.py: operations, weights and activations read),
    from which each layout's achieved rates follow; a model it cannot count runs anyway,
    with a warning that says why."""
    from .cost import model_cost
    try:
        c = model_cost(model_ref.path, dims)
    except (UsageError, ValueError, RuntimeError) as e:
        return None, f"the model's operations could not be counted ({e}): no achieved rates"
    return {"ops": c.ops, "weight_bytes": c.weight_bytes, "activation_bytes": c.activation_bytes,
            "ops_by_type": {k: t["ops"] for k, t in c.by_type().items() if t["ops"]}}, None


def _bounds(doc: dict, topo: Topology) -> None:
    """Each layout's roofline verdict (roofline.bound), from ceilings measured now, after the
    rounds, on each layout's CPUs."""
    from . import roofline
    cache: dict = {}
    for d in doc["layouts"]:
        d["roofline"] = roofline.bound(d, roofline.work_of(doc, d), topo, cache)


PROFILE_S = 2.0  # seconds of the profiling pass (infer --profile), at most --duration


def profile_summary(run: driver.LayoutRun, work: dict | None) -> dict:
    """A profiling pass in figures: each kernel type's share of the kernels' time and its
    milliseconds per inference, and per ONNX op type (engines.FAMILY: FusedMatMul and
    FullyConnected are MatMul's arithmetic) the operations per second one instance achieved
    in those kernels, where the model's cost counts that type (``work``)."""
    times: dict[str, int] = {}
    for i in run.instances:
        for k, ns in (i.profile or {}).items():
            times[k] = times.get(k, 0) + ns
    n = sum(i.count for i in run.instances)
    total = sum(times.values()) or 1
    kernels = {k: {"share": ns / total, "ms_per_inference": ns / 1e6 / max(1, n),
                   "family": _engines.FAMILY.get(k, k)}
               for k, ns in sorted(times.items(), key=lambda kv: -kv[1])}
    families: dict[str, dict] = {}
    for k, ns in times.items():
        f = families.setdefault(_engines.FAMILY.get(k, k), {"ns": 0})
        f["ns"] += ns
    ops: dict[str, float] = {}
    for k, v in ((work or {}).get("ops_by_type") or {}).items():  # the cost, by family too
        ops[_engines.FAMILY.get(k, k)] = ops.get(_engines.FAMILY.get(k, k), 0.0) + v
    for name, f in families.items():
        f["share"] = f["ns"] / total
        f["ops_per_s"] = ops[name] * n / (f["ns"] / 1e9) if ops.get(name) and f["ns"] else None
        del f["ns"]
    return {"inferences": n, "seconds": run.duration, "kernels": kernels,
            "families": dict(sorted(families.items(), key=lambda kv: -kv[1]["share"])),
            "note": "a separate pass with the profiler on, one inference at a time per "
                    "instance: shares and rates, not speeds to compare"}


def _check_asked(layouts, *, rounds, max_rounds, target_effect, max_noise, min_effect) -> None:
    """The arguments that are run_infer's own (driver.check_options checks the window's),
    for ``layouts`` as they will run (every engine x precision: layout.combine)."""
    counts = {"rounds": rounds, **({} if max_rounds is None else {"max_rounds": max_rounds})}
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
    fractions = {"target_effect": target_effect or 0, "max_noise": max_noise,
                 "min_effect": min_effect}
    for name, value in fractions.items():
        # NaN and infinity fail the comparison too.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise UsageError(f"{name} is a fraction, 0 or more and below 1, got {value!r}")
    if target_effect and len(layouts) < 2:
        raise UsageError("--target-effect needs two layouts or more: it adds rounds until the "
                         "comparisons with the first layout can resolve the effect")


# What one instance holds, at least, in bytes per byte of the model file: the weights as read,
# ONNX Runtime's own copy of them, and its arenas and pre-packed weights.
MODEL_COPIES = 3


def check_memory(model_ref, layouts: list[Layout], topo: Topology, *, force: bool = False) -> None:
    """Refuses (NotEnoughMemory) a layout whose instances need more memory on a node than it
    has available now, each at least MODEL_COPIES x the model file (a floor: the interpreter
    and ONNX Runtime themselves come on top). Bound memory counts on its node, interleaved
    memory a share on each of its nodes; preferred and the kernel's default may spill to
    other nodes and are not counted. Layouts run one after another, so each is checked alone.
    ``force`` skips the check."""
    if force:
        return
    per = MODEL_COPIES * model_ref.bytes
    now = memory_now(topo, {n for l in layouts for i in l.instances for n in i.nodes})
    for layout in layouts:
        need: dict[int, float] = {}
        count: dict[int, int] = {}
        for inst in layout.instances:
            if inst.policy not in ("bind", "interleave"):
                continue
            for n in inst.nodes:
                need[n] = need.get(n, 0.0) + per / len(inst.nodes)
                count[n] = count.get(n, 0) + 1
        for n in sorted(need):
            free = now.free_bytes(n)
            if need[n] > free:
                shared = " (a share of each on this node)" if need[n] < count[n] * per else ""
                raise NotEnoughMemory(
                    f"layout {layout.name} needs {human_bytes(need[n])} on node {n}: "
                    f"{count[n]} instance(s) x {human_bytes(per)}{shared}, {MODEL_COPIES} x "
                    f"the model's {human_bytes(model_ref.bytes)} each at least; node {n} has "
                    f"{human_bytes(free)} available (use fewer instances, or --force to run it)")


def _worst_mde(runs: dict, mode: str) -> float | None:
    """The largest MDE among the comparisons with the first layout so far, computed as the
    document will compute them (versus_first)."""
    rows = [{"layout": {"name": str(k)}, "rounds": [_round_figures(r) for r in runs[k]]}
            for k in sorted(runs)]
    return max(v["comparison"]["mde"] if v["comparison"]["mde"] is not None else np.inf
               for v in versus_first(rows, mode))


def document(model_ref, layouts, runs, topo, **asked) -> dict:
    from .models import describe
    out, warnings = [], []
    for k, layout in enumerate(layouts):
        if not runs[k]:
            continue
        d = summarize_run(_combine(runs[k]), topo)
        _count_samples(d, int((asked.get("dims") or {}).get("batch", 1)))
        out.append(d)
        warnings += [f"{layout.name}: {w}" for w in d["latency"]["warnings"]]
        warnings += [f"{layout.name}: {s['asked_precision']} asked, {s['engine']} ran "
                     f"{s['precision']}: its figures are {s['precision']}'s"
                     for s in d["settings"] if s.get("asked_precision") not in (
                         None, s.get("precision"))]
    if len(out) > 1:
        # Layouts of different batches compare on samples per second (closed loop).
        mixed = asked["mode"] == "closed" and len({d["batch"] for d in out}) > 1
        for d, vs in zip(out[1:], versus_first(
                out, asked["mode"], min_effect=asked.get("min_effect", stats.MIN_EFFECT_ROUNDS),
                max_noise=asked.get("max_noise", stats.MAX_NOISE),
                key="samples" if mixed else None)):
            d["vs_first"] = vs
        if mixed:
            warnings.append("the layouts' batches differ: they are compared in samples per "
                            "second (an inference of batch B is B samples), and latency is "
                            "per inference, of B samples")
    warnings += implausible(out, asked["mode"])
    if len(topo.nodes) == 1:
        warnings.append("one NUMA node: memory placement cannot differ between layouts here")
    return {"kind": "infer", "numaprobe": __version__, "model": describe(model_ref),
            "asked": asked, "layouts": out, "warnings": warnings,
            "partial": any(d["partial"] for d in out)}


def implausible(layouts: list[dict], mode: str) -> list[str]:
    """Results that should not be ranked as they stand, in words: a layout whose per-round
    figure has two modes, and a best layout that changes from round to round."""
    key, higher = primary(mode)
    if key == "throughput" and len({d.get("batch") for d in layouts}) > 1:
        key = "samples"  # batches differ: what each delivers
    out = []
    for d in layouts:
        empty = sum(1 for r in d["rounds"] if not r[key])
        if empty:
            out.append(f"{d['layout']['name']}: {empty} of {len(d['rounds'])} round(s) measured "
                       "nothing and are left out of its comparisons")
        xs = [r[key] for r in d["rounds"] if r[key]]
        if stats.bimodal(xs):
            out.append(f"{d['layout']['name']}: its rounds fall into two groups "
                       f"({', '.join(f'{x:.3g}' for x in sorted(xs))}): a thread pool or the "
                       "machine switches between two speeds; rank it only with many rounds")
    n = min((len(d["rounds"]) for d in layouts), default=0)
    if len(layouts) > 1 and n >= 2:
        pick = max if higher else min
        best = [pick(layouts, key=lambda d: d["rounds"][i][key] or (0 if higher else np.inf))
                ["layout"]["name"] for i in range(n)]
        counts = {b: best.count(b) for b in dict.fromkeys(best)}
        if len(counts) > 1:
            out.append("the best layout changed between rounds ("
                       + ", ".join(f"{b} in {c} of {n}" for b, c in counts.items())
                       + "): the ranking is within the round-to-round spread")
    return out


def model_line(r: dict) -> str:
    """The model in one line: name, parameters and size, and each input as it was fed (its
    dynamic dimensions filled in: --dim, batch 1 by default)."""
    from .models import _is_batch_dim
    m, dims = r["model"], r["asked"].get("dims") or {}

    def dim(d, axis, name):
        if isinstance(d, int):
            return str(d)
        value = dims.get(d, 1 if _is_batch_dim(d, axis) else None)
        return f"{d}={value}" if value is not None else d
    feeds = [f"{i['name']} {i['dtype']} [{', '.join(dim(d, k, i['name']) for k, d in enumerate(i['shape']))}]"
             if i.get("shape") is not None else f"{i['name']} {i['dtype']}"
             for i in m.get("inputs") or []]
    if m.get("params") is not None and m.get("param_bytes") is not None:
        size = f"{m['params'] / 1e6:.1f} M parameters ({m['param_bytes'] / 1e6:.0f} MB)"
    else:
        size = f"{m['bytes'] / 1e6:.0f} MB file" if m.get("bytes") else "size not recorded"
    source = {"builtin": "built-in, random weights", "package": "from a package"}.get(
        m.get("source"), "file")
    fed = (f" from {os.path.basename(r['asked']['inputs'])}" if r["asked"].get("inputs")
           else " generated" if feeds else "")
    line = (f"model {m.get('name', '?')} ({source}): {size}; "
            + (plural(len(feeds), "input") + fed + ": " + ", ".join(feeds) if feeds
               else "no inputs"))
    return line


def achieved_words(a: dict) -> str:
    """A layout's achieved rates (the model's cost x its throughput) in words."""
    return (f"{a['ops_per_s'] / 1e9:.3g} G operations/s, weights read "
            f"{a['weight_bytes_per_s'] / 1e9:.3g} GB/s")


def profile_words(p: dict, top: int = 5) -> str:
    """A profiling pass in one line: the heaviest kernel types, with the rate one instance
    achieved in each op type the model's cost counts."""
    rates = {k: f["ops_per_s"] for k, f in p["families"].items() if f.get("ops_per_s")}
    parts = []
    for name, k in list(p["kernels"].items())[:top]:
        rate = rates.pop(k["family"], None)  # said once, at the family's heaviest kernel
        parts.append(f"{name} {100 * k['share']:.0f} %" + (
            f" ({'' if k['family'] == name else k['family'] + ' '}{rate / 1e9:.3g} G op/s)"
            if rate else ""))
    return (f"profile ({p['inferences']} inferences, profiler on, not compared): "
            + ", ".join(parts))


def int8_line(r: dict) -> str | None:
    """How the int8 copy was made (quantize.py); None where nothing ran in int8."""
    q = r.get("int8")
    return q and (f"int8: a {q['method']} quantized copy ({', '.join(q['ops'])}; the rest "
                  f"f32), calibration: {q['calibration']}")


def analysis_lines(d: dict) -> list[str]:
    """Why a layout ran as it did, from what infer measured beyond the rounds: its work, its
    counters, the profile, the roofline's bound, the perturbation and what they mean
    together (diagnose.bottleneck); the text table and the HTML report show the same."""
    out = []
    if d.get("achieved"):
        out.append(f"work: {achieved_words(d['achieved'])}")
    if d.get("counters"):
        out.append(f"counters {counters_words(d['counters'])}")
    if d.get("profile"):
        out.append(profile_words(d["profile"]))
    if d.get("roofline"):
        out.append(f"bound: {d['roofline']['words']}")
    p = d.get("perturbation")
    if p and p.get("measured"):
        out.append(f"perturbation ({p['rounds']} rounds, not compared): {p['words']}")
    out += [f"so: {x}" for x in d.get("bottleneck") or []]
    return out


def settings_lines(d: dict) -> list[str]:
    """A layout's engine settings as they resolved ("ran: ..."; what was asked where nothing
    resolved, as in a run that failed) and its accuracy against f32, one line each. A
    document from before engines were recorded has neither: its description holds the
    threads."""
    if "settings" not in d:
        return []
    lines = [f"ran: {_engines.describe(s)}" for s in d["settings"]] or [
        f"asked: {_engines.describe(a)}" for a in
        [dict(t) for t in dict.fromkeys(tuple(asked_settings(i).items())
                                        for i in d["layout"]["instances"])]]
    for a in d.get("accuracy") or []:
        figures = "; ".join(f"{o['name']} max abs {o['max_abs']:.3g}, max rel "
                            + (f"{o['max_rel']:.3g}" if o["max_rel"] is not None else "-")
                            + f", cosine {o['cosine']:.6f}" for o in a["outputs"])
        lines.append(f"{a['engine']} {a['precision']} against {a['reference']} (inputs "
                     f"{a['inputs']}): {figures}")
    return lines


def _worst_accuracy(d: dict) -> tuple[float, float] | None:
    """The largest absolute error and the lowest cosine similarity over a layout's checked
    outputs (None: not checked, as an f32 run is not)."""
    outs = [o for a in d.get("accuracy") or [] for o in a["outputs"]]
    if not outs:
        return None
    return max(o["max_abs"] for o in outs), min(o["cosine"] for o in outs)


def table(doc: dict) -> str:
    """Per layout (80 columns): throughput with its interval, CPU time per inference and the
    ratio to the first layout; p50/p90/p99 with intervals (a dagger: too few samples for that
    percentile); the verdict against the first and what it rests on. Then each layout's
    diagnoses."""
    asked = doc["asked"]
    basis = {"rounds": "over rounds", "window": "within one window only"}
    first = doc["layouts"][0]["throughput"].get("interval_from", "window") if doc["layouts"] else ""
    vs_head = "vs first" if asked["mode"] == "closed" else "p50 vs first"
    lines = textwrap.wrap(model_line(doc), 79, subsequent_indent="    ") + textwrap.wrap(
        int8_line(doc) or "", 79, subsequent_indent="    ") + [
             f"{asked['mode']} loop, {asked['duration']:g} s x {plural(asked['rounds'], 'round')}"
             f"; 95 % intervals {basis.get(first, '')}",
             f"{'layout':<24}{'inferences/s':>13} {'interval':>15} {'CPU ms/inf':>11}  {vs_head}"]
    weak = False
    for d in doc["layouts"]:
        t, lat = d["throughput"], d["latency"]
        vs = d.get("vs_first", {})
        ratio = (vs.get("throughput_ratio") or vs.get("samples_ratio")
                 if asked["mode"] == "closed" else vs.get("p50_ratio"))
        if not vs:
            vs_text = "(baseline)"
        elif ratio and ratio[0] is not None:
            vs_text = f"{ratio[0]:.2f}x"
        else:
            vs_text = "-"
        cpu = f"{d['cpu_s_per_inference'] * 1e3:.1f}" if d["cpu_s_per_inference"] else "-"
        ci = f"[{t['ci'][0]:.1f}, {t['ci'][1]:.1f}]"
        lines.append(f"{d['layout']['name'][:23]:<24}{t['per_s']:13.1f} {ci:>15} {cpu:>11}  {vs_text}")
        pct = []
        for key in ("p50", "p90", "p99"):
            if lat.get(key):
                mark = "" if lat[key].get("enough_samples", True) else "\u2020"
                weak = weak or bool(mark)
                pct.append(f"{key} {lat[key]['ms']:.3g}{mark} "
                           f"({lat[key]['ci'][0]:.3g}-{lat[key]['ci'][1]:.3g})")
        lines.append("    ms: " + "  ".join(pct))
        for text in analysis_lines(d):
            lines += textwrap.wrap(text, 79, initial_indent="    ", subsequent_indent="      ")
        for text in settings_lines(d):
            lines += textwrap.wrap(text, 79, initial_indent="    ", subsequent_indent="      ")
        if vs.get("verdict"):
            lines += textwrap.wrap(f"vs first: {vs['verdict']}"
                                   + (f" ({vs['detail']})" if vs.get("detail") else ""),
                                   79, initial_indent="    ", subsequent_indent="      ")
    if weak:
        lines.append("    \u2020 too few samples for this percentile to be more than the "
                     "maximum: run longer")
    if asked.get("target_effect") and doc.get("stopped"):
        lines += textwrap.wrap(f"stopped after {doc['stopped']['rounds']} round(s): "
                               f"{doc['stopped']['why']}", 79)
    for d in doc["layouts"]:
        lines += textwrap.wrap(describe_layout(d["layout"]),
                               79, subsequent_indent="    ")
        for x in d["diagnoses"]:
            lines += textwrap.wrap(f"- {x}", 79, initial_indent="  ", subsequent_indent="    ")
        if d["failures"]:
            lines += textwrap.wrap(f"! {'; '.join(d['failures'])}", 79, initial_indent="  ",
                                   subsequent_indent="    ")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- sweep

def sweep_layouts(topo: Topology) -> list[Layout]:
    """Every split of the usable CPUs into N instances x T threads with N x T = CPUs, the
    single-thread instance (1x1) as the reference for scaling efficiency, and 2, 4, 8...
    single-thread instances below the CPU count (the instances' scaling curve)."""
    n = len(topo.usable_cpus)
    specs = ["1x1"] + [f"{i}x{n // i}" for i in range(1, n + 1) if n % i == 0 and not (i == 1 and n == 1)]
    # Instances of one thread, 2, 4, 8... of them: the curve the scaling model fits for
    # instances (the splits above give the one for threads in an instance).
    specs += [f"{2 ** k}x1" for k in range(1, n.bit_length()) if 2 ** k < n]
    out = []
    for s in dict.fromkeys(specs):
        try:
            out.append(parse_layout(s, topo))
        except ValueError:
            continue  # a split that does not fit within nodes
    return out


def analyse_sweep(doc: dict, p99_max: float | None = None) -> dict:
    """Where throughput stops rising, the best layout for throughput and for latency."""
    rows = doc["layouts"]
    one = next((d for d in rows if d["layout"]["name"] == "1x1"), None)
    curve = []
    for d in rows:
        cpus = d["cpus"]
        eff = d["throughput"]["per_s"] / (cpus * one["throughput"]["per_s"]) if one and cpus else None
        curve.append({"layout": d["layout"]["name"], "instances": len(d["layout"]["instances"]),
                      "cpus": cpus, "throughput": d["throughput"]["per_s"],
                      "p50_ms": d["latency"]["p50"]["ms"] if d["latency"].get("p50") else None,
                      "p99_ms": d["latency"]["p99"]["ms"] if d["latency"].get("p99") else None,
                      "scaling_efficiency": eff})
    widest = max(c["cpus"] for c in curve)
    full = [c for c in curve if c["cpus"] == widest and (c["layout"] != "1x1" or len(curve) == 1)]
    full.sort(key=lambda c: c["instances"])
    plateau = None
    for prev, cur in zip(full, full[1:]):
        if cur["throughput"] < 1.05 * prev["throughput"]:
            plateau = prev["layout"]
            break
    best_thr = max(full, key=lambda c: c["throughput"])
    ok = [c for c in full if p99_max is None or (c["p99_ms"] is not None and c["p99_ms"] <= p99_max)]
    best_lat = min(ok, key=lambda c: c["p50_ms"] if c["p50_ms"] is not None else float("inf")) if ok else None
    warnings = [f"{c['layout']}: scaling efficiency {100 * c['scaling_efficiency']:.0f} % is "
                "above 100 %: the 1x1 reference ran slow (warm-up, drift, a noisy round), so "
                "the curve is not to be ranked as it stands"
                for c in curve if (c["scaling_efficiency"] or 0) > 1.0 and c["layout"] != "1x1"]
    return {"curve": curve, "stops_rising_after": plateau, "best_throughput": best_thr["layout"],
            "best_latency": best_lat["layout"] if best_lat else None, "p99_max_ms": p99_max,
            "scaling": scaling_models(rows), "warnings": warnings}


def scaling_models(rows: list[dict]) -> list[dict]:
    """The scaling model (scaling.py, the Universal Scalability Law) fitted twice for each
    engine and precision: to one instance's throughput against its threads, over the layouts
    that fill the same CPUs (N x T, N T fixed: every point under the same load, so the curve
    isolates what threads add inside a process), and to the total throughput against
    instances of one thread (1x1, 2x1, 4x1...). Intervals resample each layout's rounds."""
    from .. import scaling
    groups: dict[tuple, list[dict]] = {}
    for d in rows:
        insts = d["layout"]["instances"]
        key = tuple(dict.fromkeys((i.get("engine") or _engines.DEFAULT_ENGINE,
                                   i.get("precision") or _engines.DEFAULT_PRECISION)
                                  for i in insts))
        groups.setdefault(key, []).append(d)
    out = []
    for key, ds in groups.items():
        label = "" if len(groups) == 1 else " (" + ", ".join(" ".join(k) for k in key) + ")"
        even = [d for d in ds if d["layout"]["instances"] and len(
            {i.get("intra") for i in d["layout"]["instances"]}) == 1
            and d["layout"]["instances"][0].get("intra")]
        widest = max((d["cpus"] for d in even), default=0)
        split = [d for d in even if d["cpus"] == widest]
        pts, rounds = [], []
        for d in split:
            n = len(d["layout"]["instances"])
            pts.append((d["layout"]["instances"][0]["intra"], d["throughput"]["per_s"] / n))
            rounds.append([r["throughput"] / n for r in d.get("rounds") or [] if r["throughput"]])
        out.append(scaling.fit("threads in one instance" + label, pts, rounds))
        single = [d for d in even if d["layout"]["instances"][0]["intra"] == 1]
        out.append(scaling.fit("instances of one thread" + label,
                               [(len(d["layout"]["instances"]), d["throughput"]["per_s"])
                                for d in single],
                               [[r["throughput"] for r in d.get("rounds") or []
                                 if r["throughput"]] for d in single]))
    return out


# ------------------------------------------------------------------------ the result kinds

def sweep_text(r: dict) -> str:
    sw = r["sweep"]
    lines = [table(r), "", "throughput by instances (scaling efficiency vs one thread):"]
    for c in sw["curve"]:
        eff = f"{100 * c['scaling_efficiency']:.0f}%" if c["scaling_efficiency"] else "-"
        p50 = f"{c['p50_ms']:.2f} ms" if c["p50_ms"] is not None else "-"
        lines.append(f"  {c['layout']:<8} {plural(c['cpus'], 'CPU'):>8} {c['throughput']:9.1f}/s  "
                     f"p50 {p50}  efficiency {eff}")
    lines.append(f"throughput stops rising after: {sw['stops_rising_after'] or 'it did not stop'}")
    bound = f" (p99 <= {sw['p99_max_ms']} ms)" if sw["p99_max_ms"] else ""
    lines.append(f"best for throughput: {sw['best_throughput']}; best for latency{bound}: "
                 f"{sw['best_latency'] or 'none meets the bound'}")
    for m in sw.get("scaling") or []:
        lines += textwrap.wrap(f"scaling, {m['words']}", 79, subsequent_indent="    ")
    return "\n".join(lines)


def _figures(r: dict) -> list[Figure]:
    """Throughput and p50/p90/p99 per layout, each with one value per round (documents from
    before rounds were kept have none: their comparisons are not established). The mode's
    primary figure (throughput, or p50 outside closed loop) is the primary family."""
    key, _ = primary(r["asked"]["mode"])
    out = []
    for d in r["layouts"]:
        name, t, rounds = d["layout"]["name"], d["throughput"], d.get("rounds") or []
        noise = max((x["noise"] for x in rounds if x["noise"] is not None), default=None)
        out.append(Figure(f"{name} throughput", "inf/s", True, t["per_s"],
                          runs=tuple(x["throughput"] for x in rounds), noise=noise,
                          family="primary" if key == "throughput" else "secondary"))
        for p in ("p50", "p90", "p99"):
            if d["latency"].get(p):
                out.append(Figure(f"{name} {p} latency", "ms", False, d["latency"][p]["ms"],
                                  runs=tuple(x[f"{p}_ms"] for x in rounds
                                             if x[f"{p}_ms"] is not None),
                                  noise=noise,
                                  family="primary" if key == f"{p}_ms" else "secondary"))
    return out


def _engine_and_precision(d: dict) -> tuple[str | None, str | None]:
    """The engines and precisions a layout ran ("+" between several), as they resolved; as
    asked where nothing resolved; None for a document from before engines were recorded."""
    if "settings" not in d:
        return None, None
    got = d["settings"] or [asked_settings(i) for i in d["layout"]["instances"]]
    return tuple("+".join(dict.fromkeys(str(s.get(k)) for s in got))
                 for k in ("engine", "precision"))


def _rows(r: dict) -> tuple[list, list]:
    """One row per layout: its figures, its comparison with the first (the ratio of the
    mode's primary figure, its interval and the verdict) and the model, so a row stands alone."""
    head = ["model", "model_sha256", "mode", "layout", "instances", "cpus", "throughput_per_s",
            "throughput_ci_low", "throughput_ci_high", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms",
            "cpu_s_per_inference", "rounds", "vs_first_figure", "vs_first_ratio",
            "vs_first_ci_low", "vs_first_ci_high", "vs_first_verdict", "engine", "precision",
            "vs_f32_max_abs", "vs_f32_cosine", "ops_per_s", "weight_bytes_per_s"]
    model, mode = r["model"], r["asked"]["mode"]
    out = []
    for d in r["layouts"]:
        lat, vs = d["latency"], d.get("vs_first") or {}
        ratio = vs.get("throughput_ratio") or vs.get("p50_ratio") or [None, None, None]
        out.append([model["name"], model.get("sha256"), mode, d["layout"]["name"],
                    len(d["layout"]["instances"]), d["cpus"],
                    d["throughput"]["per_s"], *d["throughput"]["ci"],
                    *[lat[k]["ms"] if lat.get(k) else None for k in ("p50", "p90", "p99", "p99.9")],
                    d["cpu_s_per_inference"], len(d.get("rounds") or []),
                    vs.get("figure"), *ratio, vs.get("verdict", "baseline" if not vs else None),
                    *_engine_and_precision(d), *(_worst_accuracy(d) or (None, None)),
                    *((d.get("achieved") or {}).get(k) for k in ("ops_per_s",
                                                                 "weight_bytes_per_s"))])
    return head, out


def _html_infer(r: dict, kind: str) -> str:
    asked = r.get("asked") or {}
    mode = asked.get("mode", "closed")
    model = r.get("model") or {}
    int8 = int8_line(r)
    out = [f"<p>{H.e(model_line(r))}<br>{H.e(int8) + '<br>' if int8 else ''}{H.e(mode)} loop, {asked.get('duration', 0):g} s "
           f"x {H.e(plural(asked.get('rounds') or 0, 'round'))}: "
           f"{H.e(model.get('description'))}</p>"]
    rows, weak = [], False
    for k, d in enumerate(r.get("layouts") or []):
        t, lat = d["throughput"], d["latency"]

        def p(key):
            nonlocal weak
            if not lat.get(key):
                return "-"
            mark = "" if lat[key].get("enough_samples", True) else "\u2020"
            weak = weak or bool(mark)
            return f"{lat[key]['ms']:.2f}{mark}"
        vs = d.get("vs_first") or {}
        ratio = vs.get("throughput_ratio") if mode == "closed" else vs.get("p50_ratio")
        if vs:
            verdict = vs.get("verdict", "")
            cls = "faster" if verdict == "faster" else ("slower" if verdict == "slower" else "")
            has = ratio and ratio[0] is not None
            ci = f"[{ratio[1]:.2f}, {ratio[2]:.2f}]" if has and ratio[1] is not None else ""
            vs_cell = ("raw", (f"{ratio[0]:.2f}x " if has else "")
                       + f"<span class='{cls}'>{H.e(verdict)}</span>"
                       f"<span class=sub>{H.e(ci)} {H.e(vs.get('detail', ''))}</span>")
        else:
            vs_cell = "(baseline)" if k == 0 else "-"
        cpu = f"{d['cpu_s_per_inference'] * 1e3:.1f}" if d.get("cpu_s_per_inference") else "-"
        noise = d.get("noise")
        worst = _worst_accuracy(d)
        rows.append([d["layout"]["name"], f"{t['per_s']:.1f}",
                     f"[{t['ci'][0]:.1f},{t['ci'][1]:.1f}]", p("p50"), p("p90"), p("p99"), cpu,
                     H.pct(noise["foreign_fraction"]) if noise else "-",
                     f"{worst[0]:.3g} / {worst[1]:.6f}" if worst else "-", vs_cell])
    out.append(H.table(["layout", "inferences/s", "95 % CI", "p50 ms", "p90 ms", "p99 ms",
                       "CPU ms per inference", "other load", "vs f32: max abs / cosine",
                       "vs first" if mode == "closed" else "p50 vs first"], rows,
                      caption="per layout: throughput (mean, 95 % CI), latency percentiles, CPU "
                              "time per inference (ms, summed over the layout's worker "
                              "processes), other processes' share of the CPUs, the outputs "
                              "against f32 (the largest error and the lowest cosine "
                              "similarity over the outputs; -: an f32 run, not checked) and "
                              "the layout against the first"))
    if weak:
        out.append('<p class="small muted">\u2020 too few samples for this percentile to be more '
                   "than the maximum; run longer</p>")
    out.append("<h4>layouts and diagnoses</h4>")
    for d in r.get("layouts") or []:
        desc = describe_layout(d["layout"]).split(": ", 1)[1]
        items = "".join(f"<li>{H.e(x)}</li>" for x in settings_lines(d) + analysis_lines(d)
                        + (d.get("diagnoses") or []))
        if d.get("failures"):
            items += f"<li><b>failed:</b> {H.e('; '.join(d['failures']))}</li>"
        out.append(f"<p><b>{H.e(d['layout']['name'])}</b>: {H.e(desc)}</p>"
                   + (f'<ul class="diag">{items}</ul>' if items else
                      '<p class="small muted">no diagnoses</p>'))
    if r.get("error"):
        out.append(f'<ul class="warn"><li>the run stopped early: {H.e(r["error"])}</li></ul>')
    sw = r.get("sweep")
    if kind == "sweep" and sw:
        rows = []
        for c in sw.get("curve") or []:
            rows.append([c["layout"], str(c["instances"]), str(c["cpus"]), f"{c['throughput']:.1f}",
                         f"{c['p50_ms']:.2f}" if c.get("p50_ms") is not None else "-",
                         f"{c['p99_ms']:.2f}" if c.get("p99_ms") is not None else "-",
                         f"{100 * c['scaling_efficiency']:.0f}%"
                         if c.get("scaling_efficiency") else "-"])
        out.append(H.table(["layout", "instances", "CPUs", "inferences/s", "p50 ms", "p99 ms",
                           "efficiency"], rows,
                          caption="throughput by instances (scaling efficiency vs one thread)"))
        bound = f" (p99 \u2264 {sw['p99_max_ms']} ms)" if sw.get("p99_max_ms") else ""
        stop = sw.get("stops_rising_after") or "it did not stop"
        out.append(f"<p>throughput stops rising after: <b>{H.e(stop)}</b><br>"
                   f"best for throughput: <b>{H.e(sw.get('best_throughput'))}</b>; best for latency"
                   f"{H.e(bound)}: <b>{H.e(sw.get('best_latency') or 'none meets the bound')}</b></p>")
    return "\n".join(out)


_PCTS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def _plot_latency_cdf(doc, r):
    """Per layout, the fraction of inferences slower than each latency (1 - F) on a log scale,
    so the tail (p99, p99.9) gets as much room as the median; dots mark the percentiles the
    document reports (hollow: too few samples to trust)."""
    import numpy as np
    lays = r.get("layouts") or []
    if not lays:
        return None
    fig = P.figure(9.0, 5.4)
    ax = fig.add_subplot()
    lo, hi, lowest = math.inf, 0.0, 1 - _PCTS[-1][1]
    for d, col in zip(lays, P.colours(len(lays))):
        name, lat = d["layout"]["name"], d["latency"]
        raw = d.get("latency_ms")
        if raw:
            xs = np.sort(np.asarray(raw, float))
            n = xs.size
            # points spread evenly over the samples and over the tail's decades alike
            half = max(2, P.CDF_POINTS // 2)
            idx = np.unique(np.concatenate([np.linspace(0, n - 1, min(n, half)),
                                            n - np.geomspace(1, n, min(n, half))])
                            .round().astype(int))
            # (n - i) / n of the inferences take at least xs[i]: never 0, so always on the axis
            ax.step(xs[idx], (n - idx) / n, where="pre", color=col, linewidth=1.6,
                    label=f"{name} ({n} inferences)")
            lo, hi, lowest = min(lo, float(xs[0])), max(hi, float(xs[-1])), min(lowest, 1 / n)
        marks = [(lat[k]["ms"], 1 - q, lat[k].get("enough_samples", True)) for k, q in _PCTS
                 if lat.get(k)]
        if not marks:
            continue
        if not raw:
            ax.plot([m[0] for m in marks], [m[1] for m in marks], "--", color=col, linewidth=1,
                    label=f"{name} (percentiles only:\nno per-inference latencies)")
        for ms, slower, ok in marks:
            ax.plot([ms], [slower], "o", color=col, markersize=6,
                    markerfacecolor=col if ok else "white", markeredgewidth=1.4)
        lo, hi = min(lo, min(m[0] for m in marks)), max(hi, max(m[0] for m in marks))
    if hi > 0 and lo > 0 and hi / lo > 8:
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        xlabel = "latency per inference, ms (log scale)"
    else:
        xlabel = "latency per inference, ms"
    P.tail_y(ax, _PCTS, lowest / 1.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of inferences slower than this (log scale)")
    ax.grid(True, axis="x", color="0.92", linewidth=0.8)
    P.legend_outside(ax)
    P.titles(fig, ax, f"latency tail per layout: model {r['model']['name']}", doc,
             "the share of inferences slower than each latency; dots: p50, p90, p99, p99.9 "
             "(hollow: too few samples to trust)")
    return fig


def _plot_throughput_bars(doc, r):
    lays = r.get("layouts") or []
    if not lays:
        return None
    names = [d["layout"]["name"] for d in lays]
    y = [d["throughput"]["per_s"] for d in lays]
    ci = [d["throughput"]["ci"] for d in lays]
    err = [[max(0.0, v - c[0]) for v, c in zip(y, ci)], [max(0.0, c[1] - v) for v, c in zip(y, ci)]]
    fig = P.figure(min(max(5.5, 1.4 * len(lays) + 2.5), 14.0), 5.2)
    ax = fig.add_subplot()
    ax.bar(range(len(lays)), y, color=P.colours(len(lays)), alpha=0.85, width=0.6)
    ax.errorbar(range(len(lays)), y, yerr=err, fmt="none", ecolor="black", capsize=6,
                elinewidth=1.2)
    top = max(c[1] for c in ci) if ci else max(y)
    mode = (r.get("asked") or {}).get("mode", "closed")
    for i, d in enumerate(lays):
        vs = d.get("vs_first") or {}
        ratio = vs.get("throughput_ratio" if mode == "closed" else "p50_ratio")
        what = "" if mode == "closed" else " p50"
        note = "baseline" if i == 0 else (f"{ratio[0]:.2f}x{what}, {vs.get('verdict', '')}"
                                          if ratio and ratio[0] is not None else "")
        ax.annotate(f"{y[i]:.1f}/s\n{note}", (i, ci[i][1]), textcoords="offset points",
                    xytext=(0, 5), ha="center", va="bottom", fontsize=8.5)
    ax.set_xticks(range(len(lays)), names, rotation=0 if len(lays) <= 5 else 30,
                  ha="center" if len(lays) <= 5 else "right")
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_ylabel("throughput, inferences/s")
    ax.set_xlabel("layout")
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    P.titles(fig, ax, f"throughput per layout: model {r['model']['name']} ({mode} loop)", doc,
            "bars: mean; whiskers: 95 % confidence interval; each layout against the first")
    return fig


def _plot_sweep_curve(doc, r):
    sw = r.get("sweep") or {}
    curve = sw.get("curve") or []
    if not curve:
        return None
    ci = {d["layout"]["name"]: d["throughput"]["ci"] for d in r.get("layouts", [])}
    widest = max(c["cpus"] for c in curve)
    full = sorted([c for c in curve if c["cpus"] == widest and (
        c["layout"] != "1x1" or len(curve) == 1)], key=lambda c: c["instances"])
    ref = [c for c in curve if c["layout"] == "1x1" and len(curve) > 1]
    singles = sorted([c for c in curve if c["cpus"] < widest and c["layout"] != "1x1"
                      and c["cpus"] == c["instances"]], key=lambda c: c["instances"])
    fig = P.figure(8.5, 5.2)
    ax = fig.add_subplot()

    def errs(cs):
        return [[max(0.0, c["throughput"] - ci.get(c["layout"], [c["throughput"]] * 2)[0]) for c in cs],
                [max(0.0, ci.get(c["layout"], [c["throughput"]] * 2)[1] - c["throughput"]) for c in cs]]
    ax.errorbar([c["instances"] for c in full], [c["throughput"] for c in full], yerr=errs(full),
                fmt="o-", color="#1f77b4", capsize=4, markersize=7,
                label="all usable CPUs split into instances x threads")
    if ref:
        ax.errorbar([c["instances"] for c in ref], [c["throughput"] for c in ref], yerr=errs(ref),
                    fmt="D", color="0.5", capsize=4, markersize=6,
                    label="1x1: one instance, one thread (reference)")
    if singles:
        line = ref + singles
        ax.errorbar([c["instances"] for c in line], [c["throughput"] for c in line],
                    yerr=errs(line), fmt="s--", color="#9467bd", capsize=3, markersize=5,
                    label="instances of one thread (fewer CPUs)")
    for c in full + ref + singles:
        p50 = f", p50 {c['p50_ms']:.3g} ms" if c.get("p50_ms") is not None else ""
        left = c in ref  # the reference sits at 1 instance too: its label goes to the left
        ax.annotate(f"{c['layout']}: {c['throughput']:.1f}/s{p50}", (c["instances"], c["throughput"]),
                    textcoords="offset points", xytext=(-14 if left else 14, -6), fontsize=8.5,
                    va="top", ha="right" if left else "left")
    by_name = {c["layout"]: c for c in curve}
    best_t, best_l = by_name.get(sw.get("best_throughput")), by_name.get(sw.get("best_latency"))
    if best_t:
        ax.plot([best_t["instances"]], [best_t["throughput"]], marker="*", markersize=20,
                color="#ffbf00", markeredgecolor="black", linestyle="none", zorder=5,
                label=f"best throughput: {best_t['layout']}")
    if best_l:
        ax.plot([best_l["instances"]], [best_l["throughput"]], marker="o", markersize=22,
                markerfacecolor="none", markeredgecolor="#2ca02c", markeredgewidth=2,
                linestyle="none", zorder=4, label=f"best latency (p50): {best_l['layout']}")
    stop = by_name.get(sw.get("stops_rising_after"))
    if stop:
        ax.axvline(stop["instances"], color="0.5", linestyle=":",
                   label=f"throughput stops rising after {stop['layout']}")
    xs = [c["instances"] for c in curve]
    ax.set_xticks(sorted(set(xs)))
    ax.set_xlim(min(xs) - (1.1 if ref else 0.5), max(xs) + 0.9)
    tops = [ci.get(c["layout"], [0, c["throughput"]])[1] for c in curve]
    ax.set_ylim(0, max(tops + [c["throughput"] for c in curve]) * 1.35 or 1)
    ax.set_xlabel("instances (processes)")
    ax.set_ylabel("throughput, inferences/s")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="upper left", frameon=False, markerscale=0.6)
    P.titles(fig, ax, f"throughput vs instances: model {r['model']['name']}", doc,
            "whiskers: 95 % confidence interval")
    return fig


def _plot_scaling_model(doc: dict, r: dict):
    """Each scaling model that could be fitted: its points and the law's curve, out to past
    its peak (or twice the counts measured)."""
    from .. import scaling
    fits = [m for m in (r.get("sweep") or {}).get("scaling") or [] if m.get("fit")]
    if not fits:
        return None
    fig = P.figure(5.0 * len(fits) + 1.0, 4.8)
    for k, m in enumerate(fits):
        f = m["fit"]
        ax = fig.add_subplot(1, len(fits), k + 1)
        top = max(f["n"]) * 2
        if f.get("peak_n"):
            top = max(top, f["peak_n"] * 1.3)
        n = np.geomspace(1, top, 200)
        ax.plot(n, scaling.usl(n, f["lam"], f["sigma"], f["kappa"]), color="#1f77b4",
                label=f"USL: sigma {f['sigma']:.3f}, kappa {f['kappa']:.2g}")
        ax.plot(f["n"], f["x"], "o", color="black", label="measured")
        ax.plot(n, f["lam"] * n, ":", color="0.6", label="linear (no loss)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, max(f["x"]) * 1.6)
        ax.set_xlabel(f"N: {m['what']}")
        ax.set_ylabel("inferences/s" + (" per instance" if m["what"].startswith("threads")
                                        else ""))
        ax.grid(True, color="0.9", linewidth=0.8)
        ax.legend(loc="upper left", frameon=False, fontsize=8)
    P.titles(fig, fig.axes[0], f"scaling model: model {r['model']['name']}", doc,
             "the Universal Scalability Law fitted by least squares on relative error")
    return fig


def _plot_roofline(doc: dict, r: dict):
    """Each layout as a point (per instance: operations per weight byte, operations per
    second), under the roofs of its instance's CPUs: the compute ceiling, and the memory
    ceiling (bandwidth x intensity), in the layout's colour."""
    lays = [d for d in r.get("layouts") or [] if (d.get("roofline") or {}).get("ceilings")
            and d.get("achieved")]
    cost = r.get("cost") or {}
    if not lays or not cost.get("weight_bytes"):
        return None
    intensity = cost["ops"] / cost["weight_bytes"]
    fig = P.figure(8.5, 5.4)
    ax = fig.add_subplot()
    xs = np.geomspace(intensity / 100, intensity * 100, 200)
    for d, col in zip(lays, P.colours(len(lays))):
        c = d["roofline"]["ceilings"]
        peak, bw = c["compute"]["ops_per_s"], c["memory"]["bytes_per_s"]
        ax.plot(xs, np.minimum(peak, bw * xs) / 1e9, color=col, alpha=0.6, linewidth=1.2)
        n = len(d["layout"]["instances"]) or 1
        y = d["achieved"]["ops_per_s"] / n
        ax.plot([intensity], [y / 1e9], "o", color=col, markersize=9,
                label=f"{d['layout']['name']}: {d['roofline']['bound'] or '?'}; roof "
                      f"{c['compute']['name']} on {ids('CPU', parse_list(c['cpus']))}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operations per weight byte (the model's intensity)")
    ax.set_ylabel("G operations/s per instance")
    ax.grid(True, which="both", color="0.92", linewidth=0.7)
    P.legend_outside(ax)
    P.titles(fig, ax, f"roofline: model {r['model']['name']}", doc,
             "lines: each layout's compute ceiling and weight bandwidth x intensity")
    return fig


def _plots(doc: dict) -> list:
    r = doc["result"]
    out = [("latency-cdf", lambda: _plot_latency_cdf(doc, r)),
           ("throughput", lambda: _plot_throughput_bars(doc, r)),
           ("roofline", lambda: _plot_roofline(doc, r))]
    if doc["kind"] == "sweep":
        out.append(("scaling", lambda: _plot_sweep_curve(doc, r)))
        out.append(("scaling-model", lambda: _plot_scaling_model(doc, r)))
    return out


register(Kind(
    "infer", "inference layouts",
    text=lambda doc: table(doc["result"]),
    html=lambda doc: _html_infer(doc["result"], "infer"),
    figures=lambda doc: _figures(doc["result"]), rows=lambda doc: _rows(doc["result"]),
    plots=_plots))

register(Kind(
    "sweep", "instances x threads sweep",
    text=lambda doc: sweep_text(doc["result"]),
    html=lambda doc: _html_infer(doc["result"], "sweep"),
    figures=lambda doc: _figures(doc["result"]), rows=lambda doc: _rows(doc["result"]),
    plots=_plots))
