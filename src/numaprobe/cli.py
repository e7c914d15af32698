"""``python -m numaprobe [subcommand]``: argparse subcommands and a dispatch table.

Data goes to stdout (``--json`` everywhere), people's text to stderr. Bad input (a
``UsageError`` or ``NotEnoughMemory`` from the library, an argparse error) is one line on
stderr and exit code 2, never a traceback; anything else is a bug and shows its traceback with
a request to report it. What a result looks like as text is its kind's business (kinds.py):
this module parses, dispatches and hands documents on.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import textwrap

from ._version import __version__
from .errors import NotEnoughMemory, UsageError
from .topology import MAX_ID

EXIT_BAD_INPUT = 2


class _Help(argparse.HelpFormatter):
    """Every option's help shows its default (unless the text already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text:
            text += " (default: %(default)s)"
        return text

    def _split_lines(self, text, width):  # tlb-local stays one word
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2) and shows defaults."""

    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", _Help)
        super().__init__(*a, **kw)

    def error(self, message):
        raise _BadInput(f"{self.prog}: {message} (see --help)")


class _BadInput(UsageError):
    """A usage error found by the CLI itself; its message is already complete."""


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


# ------------------------------------------------------------------------------- output

def _progress(args):
    return False if getattr(args, "quiet", False) else None


def _asked(args) -> dict:
    skip = {"func", "json", "csv", "output", "quiet", "command_name"}
    return {"command": getattr(args, "command_name", None) or "quick",
            "options": {k: v for k, v in vars(args).items() if k not in skip}}


def _finish(args, kind: str, result: dict, *, warnings=(), noise=None, topo=None) -> dict:
    """Every subcommand ends here: one versioned document (results.py) to --output, and on
    stdout the document (--json), its table as CSV (--csv) or its kind's text for people."""
    from . import results
    from .topology import read
    doc = results.document(kind, result, topo=topo or read(), asked=_asked(args),
                           noise=noise, warnings=warnings)
    return _emit(args, doc)


def _emit(args, doc: dict) -> dict:
    """A document to -o, and on stdout as JSON, CSV or its kind's text."""
    from . import kinds, results
    text = kinds.get(doc["kind"]).text(doc)
    lost = (_save(doc, args.output, quiet=getattr(args, "quiet", False))
            if getattr(args, "output", None) else None)
    if getattr(args, "json", False) or (lost and lost.endswith("stdout")):
        print(results.dumps(doc))
    elif getattr(args, "csv", False):
        print(results.to_csv(doc), end="")
    else:
        print(text)
        for w in doc["warnings"]:
            print(_fill(f"warning: {w}"))
    if lost:
        raise _WriteFailed(lost)
    return doc


def _fill(text: str) -> str:
    """A paragraph in 79 columns that keeps a number with its unit (7.7 %, 20 ns) and a
    hyphenated word (core-to-core) whole."""
    import re
    glued = re.sub(r"(\d) (%|ns|ms|s|GB/s|MB/s|[KMG]iB)(?=[\s,;:.)]|$)", "\\1\u00a0\\2", text)
    return textwrap.fill(glued, 79, subsequent_indent="    ",
                         break_on_hyphens=False).replace("\u00a0", " ")


class _WriteFailed(Exception):
    """-o could not be written; the message says where the document went instead."""


def _save(doc: dict, path: str, *, quiet: bool = False) -> str | None:
    """Writes the document to -o PATH; None when that worked. When it did not (a full disk, a
    quota), the measurement is not lost: it goes to a file in the temporary folder, or, if
    that fails too, to stdout as JSON; the returned message says which."""
    import tempfile
    from . import results
    try:
        results.write(doc, path)
        if not quiet:
            _say(f"wrote {path}")
        return None
    except OSError as e:
        why = f"numaprobe: could not write {path}: {e.strerror or e}"
    spare = None
    try:
        fd, spare = tempfile.mkstemp(prefix=f"numaprobe-{doc['kind']}-", suffix=".json")
        os.close(fd)
        results.write(doc, spare)
        return f"{why}; the document was saved to {spare} instead"
    except OSError:
        if spare:
            os.unlink(spare)
        return f"{why}; the document is printed as JSON on stdout"


def _measured(fn, topo=None):
    """Runs a measurement while watching what else the machine did; (result, noise dict)."""
    from .noise import NoiseMeter
    from .topology import read
    with NoiseMeter((topo or read()).usable_cpus) as meter:
        out = fn()
    return out, meter.result


def _noise_warnings(noise) -> list[str]:
    w = noise.warning() if noise is not None else None
    return [w] if w else []


# --------------------------------------------------------------------------- subcommands

def cmd_topology(args) -> int:
    from . import topology
    if args.capture:
        topo = topology.capture(args.capture, args.root)
        _say(f"captured {sum(1 for _ in _walk(args.capture))} files into {args.capture}; "
             "send the folder (tar it) to reproduce this machine's topology")
    else:
        topo = topology.read(args.root)
    _finish(args, "topology", topo.to_dict(), warnings=topo.warnings(), topo=topo)
    return 0


def _walk(path):
    for _, _, files in os.walk(path):
        yield from files


def cmd_clock(args) -> int:
    from . import clock
    clk = clock.calibrate(int(args.window * 1e6))
    _finish(args, "clock", clk.to_dict(), warnings=clk.warnings())
    return 0


def cmd_run(args) -> int:
    from . import _core, placement
    from .topology import parse_list, read
    topo = read()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise _BadInput("numaprobe run: no command given; usage: numaprobe run [binding] -- CMD [ARGS...]")

    def nodes_arg(text, need):  # all: every node that has what is needed (CPUs or memory)
        ids = ((topo.cpu_nodes if need == "cpus" else topo.usable_mems) if text == "all"
               else parse_list(text))
        return placement.check_nodes(ids, topo, need=need)

    cpus = None
    if args.physcpubind and args.cpunodebind:
        raise _BadInput("numaprobe run: give --physcpubind or --cpunodebind, not both")
    if args.physcpubind:
        cpus = placement.check_cpus(_cpu_ids(args.physcpubind, topo), topo)
    elif args.cpunodebind:
        cpus = [c for n in nodes_arg(args.cpunodebind, "cpus") for c in topo.cpus_of(n, usable=True)]
    mem = [(name, getattr(args, name)) for name in ("membind", "interleave", "preferred")
           if getattr(args, name)]
    if len(mem) > 1:
        raise _BadInput("numaprobe run: give one of --membind, --interleave, --preferred")
    if cpus is not None:
        _core.affinity_set(cpus, 0)
    if mem:
        policy, text = mem[0][0].replace("membind", "bind"), mem[0][1]
        placement.membind(nodes_arg(text, "memory"), policy, topology=topo)
    sys.stdout.flush()
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:  # as a shell says it: 127 not found, 126 found but not runnable
        _say(f"numaprobe run: cannot run {cmd[0]!r}: {e.strerror}")
        return 127 if isinstance(e, FileNotFoundError) else 126
    return 0  # not reached


def _cpu_ids(text: str, topo):
    """A CPU list as users write it: numactl's (0-3,8 or all) or likwid's thread domains
    (S0:0-3, N:0-7, M1:0-1, several joined by @)."""
    from .placement import likwid_cpus
    from .topology import parse_list
    if text == "all":
        return topo.usable_cpus
    return likwid_cpus(text, topo) if text[:1].isalpha() else parse_list(text)


def cmd_quick(args) -> int:
    """The quick check: what the machine is, its memory system, and what looks wrong; with
    --plan, what it would measure and the time that implies, measuring nothing."""
    from .probes import quick_check
    from .probes._quick import plan
    from .topology import read
    topo = read()
    if args.plan:
        if args.output or args.csv:
            raise UsageError("--plan measures nothing, so there is no document for -o or "
                             "--csv; --json prints the plan")
        p = plan(topo, full=args.full, all_pairs=args.all_pairs)
        print(json.dumps(p.to_dict(), indent=1) if args.json else p.text())
        return 0
    doc = quick_check(topology=topo, progress=_progress(args), full=args.full,
                      all_pairs=args.all_pairs, budget=args.quick_budget)
    warnings, noise = doc.pop("warnings"), doc.pop("noise")
    _finish(args, "quick", doc, warnings=warnings, noise=noise, topo=topo)
    _say(f"({doc['seconds']:.1f} s; subcommands: python -m numaprobe --help)")
    return 0


def _nodes(text):
    from .topology import parse_list
    return None if text is None or text == "all" else parse_list(text)


def _short(text: str) -> str:
    """A value as an error message quotes it: a 300-digit one shortened."""
    return text if len(text) <= 40 else text[:37] + "..."


MAX_BYTES = 1 << 50  # 1 PiB: more than any one machine's memory, so a size above it is a typo


def _bytes(text: str) -> int:
    """'64M', '1G', '4096', '32KiB', '1.5G' -> bytes, exactly (no float rounding), between 1
    and MAX_BYTES; anything else is an argparse error that says what a size looks like."""
    import decimal
    import re
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read size {_short(text)!r}: use bytes or "
                                         "64K, 256M, 1G")
    power = "kmgtp".find(m.group(2).lower()) + 1 if m.group(2) else 0
    digits = m.group(1).split(".")[0].lstrip("0")
    n = MAX_BYTES + 1 if len(digits) > 20 else int(decimal.Decimal(m.group(1)) * 1024 ** power)
    if not 1 <= n <= MAX_BYTES:
        raise argparse.ArgumentTypeError(f"size {_short(text.strip())} is "
                                         f"{'below 1 byte' if n < 1 else 'over 1 PiB'}; sizes "
                                         "run from 1 byte to 1P")
    return n


def _whole(lo: int, hi: int, unit: str = ""):
    """An argparse type: a whole number from lo to hi (the bound and why it is there are in
    the message)."""
    def convert(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {lo} to {hi}{unit}, got {_short(text)!r}")
        return n
    convert.__name__ = "whole number"
    return convert


def _number(lo: float, hi: float, unit: str = "", *, above: bool = False):
    """An argparse type: a finite number from lo (or above lo, with ``above``) to hi; inf and
    nan are refused here, before anything starts."""
    import math

    def convert(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or not (lo < x if above else lo <= x) or x > hi:
            low = f"above {lo:g} and up to" if above else f"from {lo:g} to"
            raise argparse.ArgumentTypeError(f"expected a number {low} {hi:g}{unit}, "
                                             f"got {_short(text)!r}")
        return x
    convert.__name__ = "number"
    return convert


def _seconds(lo: float, hi: float):
    """An argparse type: a time from lo to hi seconds, as seconds (600, 600s) or with a unit
    (10m, 1.5h)."""
    import math
    scale = {"s": 1, "m": 60, "h": 3600}

    def convert(text: str) -> float:
        t = text.strip().lower()
        k = scale.get(t[-1:], None)
        try:
            x = float(t[:-1] if k else t) * (k or 1)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or not lo <= x <= hi:
            raise argparse.ArgumentTypeError(f"expected a time from {lo:g} s to {hi / 3600:g} h "
                                             f"(600, 600s, 10m or 1h), got {_short(text)!r}")
        return x
    convert.__name__ = "time"
    return convert


def _wholes(lo: int, hi: int, what: str):
    """An argparse type: a comma-separated list of whole numbers from lo to hi."""
    one = _whole(lo, hi)

    def convert(text: str) -> list[int]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty value")
        try:
            return [one(p) for p in parts]
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{what}: {e}") from None
    convert.__name__ = what
    return convert


def _text(what: str):
    """An argparse type: text that is not empty (``-C ''`` must not mean 'unbound')."""
    def convert(text: str) -> str:
        if not text.strip(" ,"):
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty value")
        return text
    convert.__name__ = what
    return convert


_CPUS, _NODES = _text("a list of CPUs such as 0-3,8 or all"), _text("a list of nodes such as 0,1 or all")
_PCT = _number(0, 99, " %")
_NOISE_PCT = _number(0, 100, " %")  # 100: no noise gate
MAX_REPEAT = 100


def _repeated(args, fn):
    """fn run --repeat times and pooled (probes.repeat): (result, None), or, when Ctrl-C came
    after at least one run finished, (the finished runs pooled, the interruption)."""
    from . import probes

    def run():
        try:
            return probes.repeat(fn, args.repeat, progress=_progress(args)), None
        except probes.Interrupted as e:
            if e.result is None:
                raise KeyboardInterrupt from None
            return e.result, e
    return run


def _probe(args, kind, fn, *, result=None, warnings=None) -> int:
    """A probe measured --repeat times and emitted. ``result`` and ``warnings`` turn what the
    probe returned into the document's result and its warnings (default: .to_dict() and
    .warnings()). Runs finished before a Ctrl-C are written, marked partial."""
    (out, stopped), noise = _measured(_repeated(args, fn))
    said = warnings(out) if warnings else (out.warnings() if hasattr(out, "warnings") else [])
    said = said + _noise_warnings(noise) + ([stopped.warning()] if stopped else [])
    _finish(args, kind, result(out) if result else out.to_dict(), warnings=said,
            noise=noise.to_dict())
    if stopped:
        _say(f"numaprobe: interrupted; the {stopped.done} finished run(s) are above")
        return 128 + _stopped_by
    return 0


def cmd_latency(args) -> int:
    from . import probes
    cn, mn = _nodes(args.cpu_nodes), _nodes(args.mem_nodes)
    target = None if args.target_ci is None else args.target_ci / 100
    if args.sweep:
        if target is not None or args.budget is not None:
            raise UsageError("--target-ci and --budget stop the cells of the latency matrix; "
                             "--sweep takes --samples at every size")
        return _probe(args, "latency-sweep", lambda: probes.latency_sweep(
            cn[0] if cn else None, mn[0] if mn else None, hi=args.size, chain=args.chain,
            samples=5 if args.samples is None else args.samples, progress=_progress(args)))
    return _probe(args, "latency", lambda: probes.latency_matrix(
        cn, mn, size=args.size, page=args.page, chain=args.chain, samples=args.samples,
        target_ci=target, budget=args.budget, progress=_progress(args)))


def cmd_bandwidth(args) -> int:
    from . import probes
    cn, mn = _nodes(args.cpu_nodes), _nodes(args.mem_nodes)
    if args.peak and (args.threads or args.threads_sweep or cn or mn):
        raise _BadInput("numaprobe bandwidth: --peak runs every usable CPU on its own node; it "
                        "takes no --threads, --threads-sweep, --cpu-nodes or --mem-nodes")
    target = None if args.target_ci is None else args.target_ci / 100
    if (args.peak or args.threads_sweep) and (target is not None or args.budget is not None):
        raise _BadInput("numaprobe bandwidth: --target-ci and --budget stop the cells of the "
                        "bandwidth matrix; --peak and --threads-sweep take --reps")
    reps = 10 if args.reps is None and (args.peak or args.threads_sweep) else args.reps
    if args.peak:
        return _probe(args, "bandwidth-peak", lambda: probes.peak_bandwidth(
            args.kernel, isa=args.isa, size=args.size, reps=reps),
            warnings=lambda r: [x for x in [r.gbs.warning("aggregate bandwidth")] if x])
    if args.threads_sweep:
        node = cn[0] if cn else 0
        return _probe(args, "bandwidth-threads", lambda: probes.threads_sweep(
            node, mn[0] if mn else node, args.kernel, isa=args.isa, size=args.size,
            reps=reps, progress=_progress(args)),
            result=lambda runs: {"cpu_node": node, "runs": [r.to_dict() for r in runs]},
            warnings=lambda runs: [])
    return _probe(args, "bandwidth", lambda: probes.bandwidth_matrix(
        args.kernel, cn, mn, threads=args.threads, isa=args.isa, size=args.size, reps=reps,
        target_ci=target, budget=args.budget, progress=_progress(args)))


def cmd_loaded(args) -> int:
    from . import probes
    cn, mn = _nodes(args.cpu_nodes), _nodes(args.mem_nodes)
    target = None if args.target_ci is None else args.target_ci / 100
    samples = 2 if args.samples is None and target is None and args.budget is None \
        else args.samples
    return _probe(args, "loaded-latency", lambda: probes.loaded_latency(
        cn[0] if cn else None, mn[0] if mn else None, size=args.size, samples=samples,
        target_ci=target, budget=args.budget, progress=_progress(args)))


def cmd_flops(args) -> int:
    from . import probes
    from .topology import read
    topo = read()
    cpus = None if args.cpus in (None, "all") else _cpu_ids(args.cpus, topo)
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()] if args.kernels else None
    return _probe(args, "flops", lambda: probes.flops(
        kernels, cpus=cpus, reps=args.reps, all_cores=not args.one_core, topology=topo,
        target_ci=None if args.target_ci is None else args.target_ci / 100,
        budget=args.budget, progress=_progress(args)))


def cmd_c2c(args) -> int:
    from . import probes
    from .topology import read
    cpus = None if args.cpus in (None, "all") else _cpu_ids(args.cpus, read())
    target = None if args.target_ci is None else args.target_ci / 100
    return _probe(args, "c2c", lambda: probes.c2c_matrix(
        cpus, node=args.node, rounds=args.rounds, samples=args.samples, target_ci=target,
        budget=args.budget, progress=_progress(args)))


def _dims(items) -> dict:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit() or int(value) < 1:
            raise _BadInput(f"numaprobe: --dim takes NAME=N with N >= 1, got {item!r}")
        out[name] = int(value)
    return out


def _layouts(args, topo):
    from .workload.layout import parse_layout
    specs = [s for s in (args.layouts or "").split(",") if s.strip()] + list(args.instances or [])
    if not specs:
        specs = ["naive", "one-per-node", "cores-per-instance=1"]
    layouts = [parse_layout(s, topo, spin=not args.no_spin, force=args.force) for s in specs]
    # The same layout twice (an A/A test: --layouts naive,naive) keeps apart by name.
    seen: dict[str, int] = {}
    for k, layout in enumerate(layouts):
        seen[layout.name] = seen.get(layout.name, 0) + 1
        if seen[layout.name] > 1:
            layouts[k] = dataclasses.replace(layout, name=f"{layout.name}#{seen[layout.name]}")
    return layouts


def _model(args):
    from .workload import models
    ref = models.resolve(args.model or "encoder")
    dims, given = _dims(args.dim), {}
    if getattr(args, "inputs", None):  # real inputs fix the dimensions they have
        _, given = models.load_inputs(args.inputs, models.inputs(ref.path))
    if (args.model or "encoder") == "encoder" and "seq" not in given:
        dims.setdefault("seq", 128)  # the built-in encoder on 128 tokens, named or by default
    # Every dynamic dimension must be known before workers start: fail here, in one line.
    models.make_inputs(models.inputs(ref.path), {**dims, **given})
    return ref, dims


def _workload(args, kind, fn, topo) -> int:
    """Runs an inference workload; a failure or Ctrl-C still writes what was measured."""
    from .workload import driver
    try:
        doc = fn()
    except (driver.WorkerFailed, driver.Interrupted) as e:
        doc = e.document
        measured = doc is not None and bool(doc.get("layouts") or doc.get("steps"))
        if measured:
            warnings = doc.pop("warnings", [])
            _finish(args, kind, doc, warnings=warnings, topo=topo)
        if isinstance(e, driver.Interrupted):
            _say("numaprobe: interrupted; what was measured is above" if measured
                 else "numaprobe: interrupted before anything was measured")
            return 128 + _stopped_by
        _say(f"numaprobe: {e}")
        return 1
    warnings = doc.pop("warnings")
    _finish(args, kind, doc, warnings=warnings, topo=topo)
    return 0


def cmd_infer(args) -> int:
    from .topology import read
    from .workload.infer import run_infer
    topo = read()
    layouts = _layouts(args, topo)
    ref, dims = _model(args)
    return _workload(args, "infer", lambda: run_infer(
        ref, layouts, mode=args.mode, duration=args.duration, warmup=args.warmup, dims=dims,
        rate=args.rate, topology=topo, progress=_progress(args), force=args.force,
        **_engine_options(args), **_rounds(args)), topo)


def _rounds(args) -> dict:
    """--rounds, --target-effect, --max-rounds, --max-noise and --min-effect (each checked by
    its type), as run_infer takes them."""
    if args.max_rounds is not None and args.max_rounds < args.rounds:
        raise _BadInput(f"numaprobe: --max-rounds ({args.max_rounds}) is below --rounds "
                        f"({args.rounds})")
    return {"rounds": args.rounds,
            "target_effect": args.target_effect / 100 if args.target_effect else None,
            "max_rounds": args.max_rounds or (4 * args.rounds if args.target_effect else None),
            "max_noise": args.max_noise / 100, "min_effect": args.min_effect / 100}


def cmd_cost(args) -> int:
    from .workload import cost, models
    ref, dims = _model(args)
    c = cost.model_cost(ref.path, dims)
    _finish(args, "cost", {"model": models.describe(ref), **c.to_dict(per_node=args.per_node)})
    return 0


def cmd_tune(args) -> int:
    from .topology import read
    from .workload.layout import parse_layout
    from .workload.tune import LEVERS, tune
    topo = read()
    ref, dims = _model(args)
    start = parse_layout(args.start, topo) if args.start else None

    def run():
        doc = tune(ref, topo, goal=args.goal, budget_s=args.budget, start=start,
                   engines=[x.strip() for x in args.engines.split(",") if x.strip()],
                   precisions=[x.strip() for x in (args.allow_precision or "").split(",")
                               if x.strip()],
                   dims=dims, progress=_progress(args),
                   allow_slow_precision=args.allow_slow_precision,
                   levers=[x.strip() for x in args.levers.split(",") if x.strip()]
                   if args.levers else LEVERS,
                   batches=args.batch or ())
        doc["warnings"] = doc.pop("notes", [])
        return doc
    return _workload(args, "tune", run, topo)


def cmd_sweep(args) -> int:
    from .topology import read
    from .workload import driver
    from .workload.infer import analyse_sweep, run_infer, sweep_layouts
    topo = read()
    ref, dims = _model(args)

    def analysed(doc):
        doc["sweep"] = analyse_sweep(doc, args.p99_max)
        doc["warnings"] += doc["sweep"]["warnings"]
        return doc

    def run():
        try:
            return analysed(run_infer(
                ref, sweep_layouts(topo), mode="closed", duration=args.duration,
                warmup=args.warmup, dims=dims, topology=topo, progress=_progress(args),
                **_engine_options(args), **_rounds(args)))
        except (driver.WorkerFailed, driver.Interrupted) as e:
            if e.document is not None and e.document["layouts"]:
                analysed(e.document)  # what was measured is a sweep too, a partial one
            raise
    return _workload(args, "sweep", run, topo)


def cmd_compare(args) -> int:
    from . import compare, results
    docs = [results.load(f) for f in args.files]
    out = compare.compare(docs, args.files, min_effect=args.min_effect / 100, strict=args.strict,
                          drift=args.drift / 100,
                          max_noise=args.max_noise / 100)
    warnings = out.pop("warnings")
    _finish(args, "compare", out, warnings=warnings)
    return 0


def cmd_fleet_report(args) -> int:
    from .fleet.report import fleet_report, load_dir
    docs, skipped = load_dir(args.dir)
    r = fleet_report(docs, skipped)
    warnings = [f"{len(skipped)} file(s) skipped: not result documents"] if skipped else []
    if len(r["hosts"]) < 3:
        warnings.append(f"{len(r['hosts'])} host(s): outliers need 3 or more")
    _finish(args, "fleet", r, warnings=warnings)
    return 0


def cmd_fleet_run(args) -> int:
    from .fleet import runner
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()] if args.hosts else None

    def run(address):
        return runner.run_fleet(args.fleet_command, args.node_args, address=address,
                                hosts=hosts, timeout=args.timeout, show=_progress(args))
    if args.local:
        from .fleet.cluster import local_cluster
        runner.check_command(args.fleet_command, args.node_args)  # refused before it starts
        with local_cluster(args.local) as cluster:
            r = run(cluster.address)
    else:
        r = run(args.address)
    bad = [x for x in r["runs"] if x["state"] != "ok"]
    warnings = [f"{x['host']}: {x['state']}: {x['why']}" for x in bad]
    if len(r["hosts"]) < 3:
        warnings.append(f"{len(r['hosts'])} host(s) answered: outliers need 3 or more")
    _finish(args, "fleet", r, warnings=warnings)
    if r["interrupted"]:
        return 128 + _stopped_by
    return 1 if bad else 0


def cmd_show(args) -> int:
    from . import results
    _emit(args, results.load(args.file))
    return 0


def cmd_plot(args) -> int:
    from . import results
    from .report import plot_files
    doc = results.load(args.file)
    paths = plot_files(doc, args.out, name=os.path.splitext(os.path.basename(args.file))[0])
    if not paths:
        raise _BadInput(f"numaprobe plot: {args.file} (kind {doc['kind']}) has no "
                        "figures to draw")
    for p in paths:
        print(p)
    return 0


def cmd_report(args) -> int:
    from . import results
    from .report import html_report
    docs = [results.load(f) for f in args.files]
    _say(f"wrote {html_report(docs, args.html, plots=not args.no_plots, names=args.files)}")
    return 0


# ------------------------------------------------------------------------------ parser

def _output_args(sp) -> None:
    sp.add_argument("--json", action="store_true", help="print the result document (JSON)")
    sp.add_argument("--csv", action="store_true", help="print the result's table as CSV")
    sp.add_argument("-o", "--output", metavar="FILE", help="also write the result document")


def _sub_output_args(sp) -> None:
    """--json, --csv, -o and -q after a subcommand's name. Their defaults are left to the top
    level (SUPPRESS), so `numaprobe -o x.json topology` keeps the -o given before the name."""
    quiet = argparse.SUPPRESS
    sp.add_argument("--json", action="store_true", default=quiet,
                    help="print the result document (JSON)")
    sp.add_argument("--csv", action="store_true", default=quiet,
                    help="print the result's table as CSV")
    sp.add_argument("-o", "--output", metavar="FILE", default=quiet,
                    help="also write the result document")
    sp.add_argument("-q", "--quiet", action="store_true", default=quiet,
                    help="nothing on stderr but errors and warnings (no progress line)")


def _probe_parser(sub, name, func, help, description):
    """A subcommand that measures: output options, -q, and its dispatch entry."""
    sp = sub.add_parser(name, help=help, description=description)
    _sub_output_args(sp)
    sp.set_defaults(func=func, command_name=name)
    return sp


def _repeat_arg(sp) -> None:
    sp.add_argument("--repeat", type=_whole(1, MAX_REPEAT), default=1, metavar="N",
                    help="run the whole measurement N times and pool them; each figure keeps "
                    "every run's median, and compare tests the runs against each other, so "
                    f"its verdict covers the drift between runs (use 3 or more; at most "
                    f"{MAX_REPEAT})")


def _node_args(sp) -> None:
    sp.add_argument("--cpu-nodes", metavar="NODES", type=_NODES,
                    help="CPU nodes, e.g. 0,1 (default: all with usable CPUs)")
    sp.add_argument("--mem-nodes", metavar="NODES", type=_NODES,
                    help="memory nodes, e.g. 0-3 (default: all usable, CPU-less ones too)")


def _engine_args(sp) -> None:
    """Engines, precisions and real inputs: infer's and sweep's."""
    from .workload.engines import ENGINES, PRECISIONS
    from .workload.quantize import METHODS
    sp.add_argument("--engines", type=_text("engine names"), default="ort",
                    help=f"comma-separated, each layout runs under each: {', '.join(ENGINES)} "
                    "(openvino: pip install 'numaprobe[openvino]')")
    sp.add_argument("--precision", type=_text("precisions"), default="f32",
                    help=f"comma-separated, each layout runs under each: {', '.join(PRECISIONS)}"
                    " (bf16, f16: openvino only; int8: a quantized copy, either engine; each "
                    "measured against f32 on the same inputs)")
    sp.add_argument("--quantize", choices=METHODS, default="static",
                    help="how the int8 copy is made: static (QDQ, calibrated on --inputs or on "
                    "generated inputs; both engines run it in int8) or dynamic (activations "
                    "quantized at run time; OpenVINO runs it in f32)")
    sp.add_argument("--inputs", metavar="FILE.npz",
                    help="real inputs (numpy.savez, one array per model input, optionally with "
                    "a leading axis of samples): fed to the workers, the accuracy check and "
                    "the int8 calibration (default: generated from the model's signature, "
                    "which measures numerical fidelity only)")
    sp.add_argument("--profile", action="store_true",
                    help="after the measured rounds, one more pass per layout with the "
                    "engine's profiler on (where the time goes by kernel, the rate achieved "
                    "in each op type; never compared: the profiler costs time), and each "
                    "layout's bound: its rates against the compute and memory ceilings of "
                    "its CPUs, measured then")
    sp.add_argument("--perturb", action="store_true",
                    help="after the measured rounds, each layout again while numaprobe's own "
                    "load runs on the CPUs it leaves free: memory traffic (light, full) and a "
                    "chase over the last-level cache, in rounds of their own; what each load "
                    "costs says what bounds the layout (a layout that leaves no CPU free is "
                    "not measured)")
    sp.add_argument("--allow-slow-precision", action="store_true",
                    help="run a precision this CPU has no units for (bf16 without AMX-BF16 or "
                    "AVX512-BF16): the engine runs it in f32 or emulates it")


def _engine_options(args) -> dict:
    """--engines, --precision, --quantize, --inputs and --allow-slow-precision, as run_infer
    takes them."""
    return {"engines": [x.strip() for x in args.engines.split(",") if x.strip()],
            "precisions": [x.strip() for x in args.precision.split(",") if x.strip()],
            "allow_slow_precision": args.allow_slow_precision, "inputs": args.inputs,
            "quantize": args.quantize, "profile": args.profile, "perturb": args.perturb}


def _model_args(sp) -> None:
    """--model and --dim: what every command that runs or reads a model takes."""
    sp.add_argument("--model", help="a .onnx file, a built-in model (encoder, mlp, conv), a "
                    "wheel holding a .onnx (x.whl, or x.whl#path/in/it.onnx) or an installed "
                    "package that ships one (magika, rapidocr, package:NAME); default: the "
                    "built-in encoder on 128 tokens")
    sp.add_argument("--dim", action="append", metavar="NAME=N",
                    help="a dynamic input dimension, e.g. --dim seq=128 (batch defaults to 1)")


def _workload_args(sp) -> None:
    _model_args(sp)
    from .stats import DEFAULT_ROUNDS
    sp.add_argument("--duration", type=_number(0, 3600, " s", above=True), default=3.0, metavar="S",
                    help="seconds measured per layout in each round (default 3)")
    sp.add_argument("--rounds", type=_whole(1, 1000), default=DEFAULT_ROUNDS, metavar="N",
                    help="rounds, each with fresh workers, layouts interleaved in a rotated "
                    f"order; a verdict needs 3 or more (default {DEFAULT_ROUNDS}: what a 10 %% "
                    "change needs to be found 4 times in 5, by simulation)")
    sp.add_argument("--target-effect", type=_number(0, 99, " %", above=True), metavar="PCT",
                    help="keep adding rounds (up to --max-rounds) until every comparison with "
                    "the first layout could detect a change this large (default: off, "
                    "--rounds rounds)")
    sp.add_argument("--max-rounds", type=_whole(1, 4000), metavar="N",
                    help="the most rounds --target-effect may run (default 4 x --rounds)")
    sp.add_argument("--max-noise", type=_PCT, default=5.0, metavar="PCT",
                    help="a layout whose worst round saw more foreign or stolen CPU time than "
                    "this gets 'noisy: rerun' instead of a verdict (default 5 %%)")
    sp.add_argument("--min-effect", type=_PCT, default=2.0, metavar="PCT",
                    help="smallest change called faster or slower (default 2 %%)")
    sp.add_argument("--warmup", type=_whole(0, 100_000), default=5, metavar="N",
                    help="inferences each instance runs before measuring (default 5)")


def _add_topology(sub) -> None:
    t = sub.add_parser("topology", help="CPUs, caches, NUMA nodes, allowed sets, settings",
                       description="Print the machine's topology as read from /sys and /proc.")
    _sub_output_args(t)
    t.add_argument("--root", help="read a captured tree instead of / "
                   "(default: $NUMAPROBE_SYSFS_ROOT or /)")
    t.add_argument("--capture", metavar="DIR", help="copy the files the reader uses into DIR "
                   "(new or empty), with the expected result beside them")
    t.set_defaults(func=cmd_topology, command_name="topology")


def _add_clock(sub) -> None:
    c = sub.add_parser("clock", help="the calibrated clock: frequency, overhead, resolution",
                       description="Calibrate the CPU's counter twice, independently, and "
                       "report its frequency, read overhead and resolution.")
    _sub_output_args(c)
    c.add_argument("--window", type=_number(1, 60_000, " ms"), default=100.0, metavar="MS",
                   help="calibration window in milliseconds (default 100)")
    c.set_defaults(func=cmd_clock, command_name="clock")


def _add_run(sub) -> None:
    r = sub.add_parser("run", help="run a command bound to CPUs and memory nodes (like numactl)",
                       description="Run CMD with its CPUs and memory policy set, like numactl. "
                       "Lists take numactl's syntax: 0-3,8 or all. CPUs may also be given in "
                       "likwid's thread domains: S0:0-3 is the first four CPUs of socket 0, "
                       "counting physical cores before their SMT siblings, and S0: all of "
                       "them; domains N (the whole machine), S0 (a socket), M1 (a NUMA "
                       "domain), C0 (a last-level cache group), D0 (a die); several join "
                       "with @.",
                       usage="numaprobe run [-C CPUS | -N NODES] [-m NODES | -i NODES | "
                             "-p NODE] -- CMD [ARGS...]")
    r.add_argument("-C", "--physcpubind", "--cpus", metavar="CPUS", type=_CPUS,
                   help="run on these CPUs: 0-3,8, all, or likwid's S0:0-3 (see above)")
    r.add_argument("-N", "--cpunodebind", metavar="NODES", type=_NODES,
                   help="run on the CPUs of these nodes")
    r.add_argument("-m", "--membind", metavar="NODES", type=_NODES,
                   help="allocate only on these nodes")
    r.add_argument("-i", "--interleave", metavar="NODES", type=_NODES,
                   help="interleave pages over these nodes")
    r.add_argument("-p", "--preferred", metavar="NODE", type=_NODES,
                   help="prefer this node, fall back when full")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    r.set_defaults(func=cmd_run)


def _add_latency(sub) -> None:
    lt = _probe_parser(sub, "latency", cmd_latency,
                       "idle memory latency: CPU node x memory node, or --sweep",
                       "Dependent loads through a random cycle of cache lines; ns per load.")
    _node_args(lt)
    lt.add_argument("--sweep", action="store_true",
                    help="latency versus working-set size and the cache levels it reveals")
    lt.add_argument("--size", type=_bytes, help="bytes in the chain (sweep: the largest); "
                    "default 8 x the last-level cache, at least 256M")
    lt.add_argument("--page", default="auto", choices=("auto", "4k", "2m", "1g"),
                    help="page size of the chain's memory: auto takes 2 MiB pages where "
                    "reserved or transparent huge pages allow, so TLB misses stay out of the "
                    "figure")
    lt.add_argument("--chain", default="tlb-local", choices=("tlb-local", "random"),
                    help="tlb-local visits the lines of a group of pages within the "
                    "first-level TLB's reach in random order before moving on, so page walks "
                    "stay out of the figure; random may cross pages on every load")
    lt.add_argument("--samples", type=_whole(1, 10_000), metavar="N",
                    help="timed passes per cell, the figure being their median (default 5); "
                    "with --target-ci or --budget the most a cell takes (default 100)")
    _stopping_args(lt, "matrix", "cell")
    _repeat_arg(lt)


def _stopping_args(sp, whole: str, cell: str) -> None:
    """--target-ci and --budget: the stopping rule every probe takes (probes/_common.py)."""
    sp.add_argument("--target-ci", type=_number(0, 50, " %", above=True), metavar="PCT",
                    help=f"sample each {cell} until the 95 %% interval of its median is within "
                    "PCT %% of it (2 when only --budget is given)")
    sp.add_argument("--budget", type=_number(0, 86_400, " s", above=True), metavar="S",
                    help=f"seconds for the whole {whole}, shared equally by its {cell}s: a "
                    f"{cell} stops when its share is spent, if it has not reached --target-ci "
                    "first")


def _add_bandwidth(sub) -> None:
    from .probes import KERNELS
    bw = _probe_parser(sub, "bandwidth", cmd_bandwidth, "memory bandwidth: CPU node x memory node",
                       "Read, write, copy and triad kernels on every usable CPU of a node; GB/s.")
    _node_args(bw)
    bw.add_argument("--kernel", default="read", choices=tuple(KERNELS),
                    help="what each thread does with its arrays (README: reading the output)")
    bw.add_argument("--threads", type=_whole(1, MAX_ID), metavar="N",
                    help="threads per CPU node (default: all usable CPUs)")
    bw.add_argument("--isa", default="auto", choices=("auto", "scalar", "avx2", "avx512"),
                    help="vector width of the kernels: auto takes the widest this CPU runs")
    bw.add_argument("--size", type=_bytes, help="bytes per array per thread "
                    "(default: 4 x the last-level cache, at least 256M, shared by the threads; "
                    "at least 16M each)")
    bw.add_argument("--reps", type=_whole(1, 10_000), metavar="N",
                    help="timed repetitions (samples) per cell (default 10); with --target-ci "
                    "or --budget the most a cell takes (default 100)")
    _stopping_args(bw, "matrix", "cell")
    bw.add_argument("--threads-sweep", action="store_true",
                    help="1, 2, ... all CPUs of the (first) CPU node: where bandwidth stops rising")
    bw.add_argument("--peak", action="store_true",
                    help="every usable CPU at once, each on its own node: the aggregate")
    _repeat_arg(bw)


def _add_loaded(sub) -> None:
    ll = _probe_parser(sub, "loaded-latency", cmd_loaded,
                       "latency while the node's other CPUs read memory",
                       "The latency chase on one CPU while the node's other CPUs generate read "
                       "traffic at several injection delays: the latency-bandwidth curve.")
    _node_args(ll)
    ll.add_argument("--size", type=_bytes, help="bytes in the chain")
    ll.add_argument("--samples", type=_whole(1, 10_000), metavar="N",
                    help="latency samples per delay (default 2); with --target-ci or --budget "
                    "the most a delay takes (default 100)")
    _stopping_args(ll, "curve", "delay")
    _repeat_arg(ll)


def _add_c2c(sub) -> None:
    cc = _probe_parser(sub, "c2c", cmd_c2c, "core-to-core latency matrix",
                       "A cache line passed between two pinned CPUs (compare-and-swap); ns one way.")
    cc.add_argument("--cpus", type=_CPUS, help="CPUs to pair, e.g. 0-7 or likwid's S0:0-3 "
                    "(default: all usable)")
    cc.add_argument("--node", type=_whole(0, MAX_ID - 1), metavar="NODE",
                    help="memory node holding the line (default: the first CPU's)")
    cc.add_argument("--rounds", type=_whole(1, 100_000_000), default=20000, metavar="N",
                    help="round trips of the line per sample")
    cc.add_argument("--samples", type=_whole(1, 10_000), metavar="N",
                    help="timed samples per pair, the figure being their median (default 5); "
                    "with --target-ci or --budget the most a pair takes (default 100)")
    _stopping_args(cc, "matrix", "pair")
    _repeat_arg(cc)


def _add_flops(sub) -> None:
    from .probes._flops import KERNELS
    fl = _probe_parser(sub, "flops", cmd_flops, "compute ceilings: operations per second",
                       "Peak arithmetic throughput of each unit (fp32 FMA scalar, AVX2, "
                       "AVX-512; bf16 and int8 dot products; AMX tiles; NEON) on one core and "
                       "on one CPU of every core at once, the core clock (dependent adds) and "
                       "what that makes per cycle. Kernels the CPU lacks are refused, naming "
                       "the flag.")
    fl.add_argument("--kernels", type=_text("kernel names"),
                    help=f"comma-separated (default: all): {', '.join(KERNELS)}")
    fl.add_argument("--cpus", metavar="LIST",
                    help="CPUs to use (default: the usable ones; the first for one core)")
    fl.add_argument("--reps", type=_whole(1, 1000), metavar="N",
                    help="timed passes per kernel; the figure is their median (default 7); "
                    "with --target-ci or --budget the most a kernel takes (default 100)")
    _stopping_args(fl, "run", "kernel")
    fl.add_argument("--one-core", action="store_true", help="skip the all-cores run")
    _repeat_arg(fl)


def _add_infer(sub) -> None:
    inf = _probe_parser(sub, "infer", cmd_infer, "run a model under layouts and compare them",
                        "Run an ONNX model under layouts (processes x threads x CPUs x memory "
                        "node), engines and precisions: throughput and latency percentiles with "
                        "intervals, the settings each engine resolved, the accuracy of every "
                        "precision against f32, the reasons, and each layout against the first.")
    _workload_args(inf)
    inf.add_argument("--layouts", type=_text("layout names"), help="comma-separated: naive, one-per-node, "
                     "cores-per-instance=K, remote-memory, interleave, NxT (default: naive,"
                     "one-per-node,cores-per-instance=1)")
    inf.add_argument("--instances", action="append", metavar="SPEC",
                     help="an explicit layout: NxT@NODES (e.g. 2x1@0,1) or a .json/.toml file")
    inf.add_argument("--mode", default="closed", choices=("closed", "single", "poisson"),
                     help="closed: back to back (throughput); single: one instance at a time "
                     "(latency); poisson: open loop at --rate")
    inf.add_argument("--rate", type=_number(0, 1e7, " per s", above=True), metavar="PER_S",
                     help="target inferences per second (poisson; needed there)")
    _engine_args(inf)
    inf.add_argument("--no-spin", action="store_true",
                     help="ONNX Runtime's threads sleep when idle (OpenVINO has no such setting)")
    inf.add_argument("--force", action="store_true",
                     help="run overlapping, oversubscribed or too-large-for-the-node layouts "
                     "anyway")


def _add_sweep(sub) -> None:
    sw = _probe_parser(sub, "sweep", cmd_sweep,
                       "find the best split of the CPUs into instances x threads",
                       "Run instances x threads over the usable CPUs; the throughput curve, "
                       "where it stops rising, the best layout for throughput and for latency.")
    _workload_args(sw)
    _engine_args(sw)
    sw.add_argument("--p99-max", type=_number(0, 1e7, " ms", above=True), metavar="MS",
                    help="latency bound for 'best for latency' (default: none)")


def _goal(text: str) -> str:
    """An argparse type: a tuning goal (tune.parse_goal), refused with the goals there are."""
    from .workload.tune import parse_goal
    try:
        return parse_goal(text).name
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_tune(sub) -> None:
    from .workload.tune import LEVERS
    tu = _probe_parser(sub, "tune", cmd_tune, "from naive to best, one lever at a time",
                       "Start where a user starts (one process, the engine's defaults) and try "
                       f"one lever at a time ({', '.join(LEVERS)}), each against the best so far "
                       "in interleaved rounds; a step is kept only when it is significantly "
                       "better for the goal. The winner is measured again against naive in "
                       "fresh rounds, and printed as a layout file and as launcher commands.")
    _model_args(tu)
    tu.add_argument("--goal", type=_goal, default="throughput",
                    help="throughput (closed loop), latency (one request at a time, p50), "
                    "p99:Xms (one request at a time, p99; says whether the best meets X ms, "
                    "e.g. p99:50ms) or rate:p99:Xms (the highest Poisson arrival rate whose "
                    "p99 stays within X ms: MLPerf's Server scenario; about 5 x the time)")
    tu.add_argument("--budget", type=_seconds(10, 86400), default=600.0, metavar="TIME",
                    help="time for the whole ladder, in seconds or with a unit (10m, 1h; "
                    "default 10m): sets each round's length")
    tu.add_argument("--from", dest="start", metavar="LAYOUT",
                    help="start from this layout instead of naive (as infer --layouts names one)")
    tu.add_argument("--engines", type=_text("engine names"), default="ort",
                    help="engines the last step may try (openvino: pip install "
                    "'numaprobe[openvino]')")
    tu.add_argument("--allow-precision", type=_text("precisions"), metavar="LIST",
                    help="precisions beyond f32 the last step may try (bf16, f16, int8); kept "
                    "only with every output's cosine similarity to f32 >= 0.999")
    tu.add_argument("--levers", type=_text("levers"), metavar="LIST",
                    help=f"climb only these (in this order always): {', '.join(LEVERS)}")
    tu.add_argument("--batch", type=_wholes(1, 4096, "batch sizes"), metavar="LIST",
                    help="batch sizes the batch lever tries, e.g. 4,16 (goal throughput, a "
                    "model with a batch dimension): compared in samples per second, an "
                    "inference of batch B being B samples; without it the lever is skipped")
    tu.add_argument("--allow-slow-precision", action="store_true",
                    help="allow a precision this CPU has no units for")


def _add_cost(sub) -> None:
    co = _probe_parser(sub, "cost", cmd_cost, "what one inference of a model costs",
                       "Count the arithmetic (a multiply-add is 2 operations) and the bytes of "
                       "one inference from the ONNX graph, per op type: weights read, "
                       "activations read and written, and the intensity (operations per byte) "
                       "that places the model on a roofline. Nothing is timed.")
    _model_args(co)
    co.add_argument("--per-node", action="store_true",
                    help="keep every node's cost in the document (--json), not only per op type")


def _add_compare(sub) -> None:
    cmp = sub.add_parser("compare", help="compare result documents: change, interval, verdict",
                         description="Put runs side by side: each later document against the "
                         "first, matched figure by figure, with the ratio's interval over runs "
                         "and a verdict (faster, slower, no significant change).")
    cmp.add_argument("files", nargs="+", metavar="RESULT.json")
    cmp.add_argument("--min-effect", type=_PCT, default=2.0, metavar="PCT",
                     help="smallest change called faster or slower (default 2 %%)")
    cmp.add_argument("--drift", type=_PCT, default=7.5, metavar="PCT",
                     help="how far a document's level may drift from another's on the same "
                     "machine (sd, beyond its rounds' spread), allowed for in every interval "
                     "(default 7.5 %%: separate identical runs on this project's VMs; a quiet "
                     "machine drifts less, and bench/aa.py measures yours; 0 assumes none)")
    cmp.add_argument("--max-noise", type=_NOISE_PCT, default=5.0, metavar="PCT",
                     help="a figure whose window saw more foreign or stolen CPU time than this "
                     "gets 'noisy: rerun' instead of a verdict (default 5 %%)")
    cmp.add_argument("--strict", action="store_true",
                     help="refuse documents whose workloads differ (command options, model) "
                     "instead of warning")
    _sub_output_args(cmp)
    cmp.set_defaults(func=cmd_compare, command_name="compare")


def _add_fleet(sub) -> None:
    fl = sub.add_parser("fleet", help="the same measurement on many machines: the odd one "
                        "found",
                        description="A fleet of machines: one report with a row per host, the "
                        "outliers on each figure (median and MAD) and the settings that may "
                        "explain them.")
    parts = fl.add_subparsers(title="fleet commands", metavar="COMMAND", parser_class=_Parser,
                              required=True)
    rp = parts.add_parser("report", help="the fleet report from a directory of documents",
                          description="Build the fleet report from numaprobe result documents "
                          "gathered by any means (Slurm srun, Ansible, scp): DIR holds one or "
                          "more per host (python -m numaprobe -o HOST.json on each), the host "
                          "taken from each document's machine fingerprint.")
    rp.add_argument("dir", metavar="DIR")
    _sub_output_args(rp)
    rp.set_defaults(func=cmd_fleet_report, command_name="fleet report")
    from .fleet.runner import COMMANDS, DEFAULT_TIMEOUT_S
    what = {"quick": "the quick check (python -m numaprobe)", "latency": "numaprobe latency",
            "bandwidth": "numaprobe bandwidth", "infer": "numaprobe infer",
            "tune": "numaprobe tune"}
    for name in COMMANDS:
        sp = parts.add_parser(
            name, allow_abbrev=False, help=f"{what[name]} on every node of a Ray cluster",
            description=f"Run {what[name]} on every node of a Ray cluster (pip install "
            "'numaprobe[fleet]'), one task per node holding all of its CPUs, and build the "
            "fleet report from the documents that come back. Options this command does not "
            f"know are the nodes' own, as for {what[name]} (e.g. --budget); NxT layouts are "
            "scaled to each host's usable CPUs, one-per-node and cores-per-instance=K are "
            "resolved by each host. Nodes on one machine are measured one at a time. A node "
            "that dies, fails or passes --timeout is reported and the rest kept.")
        where = sp.add_mutually_exclusive_group(required=True)
        where.add_argument("--address", metavar="HOST:PORT",
                           help="the Ray cluster's head (ray start --head prints it)")
        where.add_argument("--local", type=_whole(1, 16), metavar="N",
                           help="start a cluster of N Ray nodes on this machine, on 127.0.0.1 "
                           "only, for trying the fleet out, and stop it after")
        sp.add_argument("--hosts", type=_text("hosts"), metavar="LIST",
                        help="only these nodes: host names, addresses or node id prefixes, "
                        "comma-separated (default every alive node)")
        sp.add_argument("--timeout", type=_seconds(1, 86400), default=DEFAULT_TIMEOUT_S,
                        metavar="TIME", help="a node still running after this is stopped "
                        "and reported (e.g. 90s, 10m)")
        _sub_output_args(sp)
        sp.set_defaults(func=cmd_fleet_run, command_name=f"fleet {name}", fleet_command=name,
                        node_args=[])


def _add_show(sub) -> None:
    sh = sub.add_parser("show", help="a saved result document as text, CSV or JSON",
                        description="Print a saved result document as the command that made "
                        "it did (its table and warnings), or as CSV or JSON, without "
                        "measuring again.")
    sh.add_argument("file", metavar="RESULT.json")
    _sub_output_args(sh)
    sh.set_defaults(func=cmd_show, command_name="show")


def _add_plot(sub) -> None:
    pl = sub.add_parser("plot", help="draw a result document's figures (PNG and SVG)",
                        description="Write <file>-<kind>-<figure>.png and .svg for a result "
                        "document (file: RESULT.json's name without .json; needs matplotlib: "
                        "pip install 'numaprobe[plot]').")
    pl.add_argument("file", metavar="RESULT.json")
    pl.add_argument("--out", default=".", metavar="DIR", help="folder for the figures (default: .)")
    pl.set_defaults(func=cmd_plot, command_name="plot")


def _add_report(sub) -> None:
    rp = sub.add_parser("report", help="one self-contained HTML page for result documents",
                        description="Tables, warnings, the machine and figures of result "
                        "documents in one HTML file that opens without a network.")
    rp.add_argument("files", nargs="+", metavar="RESULT.json")
    rp.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    rp.add_argument("--no-plots", action="store_true", help="tables only (needs no matplotlib)")
    rp.set_defaults(func=cmd_report, command_name="report")


# The subcommands in the order --help lists them: each adds its parser and its dispatch entry.
SUBCOMMANDS = (_add_topology, _add_clock, _add_run, _add_latency, _add_bandwidth, _add_loaded,
               _add_c2c, _add_flops, _add_infer, _add_sweep, _add_tune, _add_cost, _add_compare, _add_show, _add_plot, _add_report, _add_fleet)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="numaprobe", description=(
        "Measure how memory locality, core allocation and process layout decide the speed of "
        "this machine. With no subcommand: a quick check of the machine."))
    p.add_argument("--version", action="version", version=f"numaprobe {__version__}")
    _output_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--plan", action="store_true",
                   help="print what the quick check would measure (cells, pairs, loads, bytes, "
                   "chains) and the time that implies at stated rates, and measure nothing; "
                   "NUMAPROBE_SYSFS_ROOT=tree plans for a captured machine")
    p.add_argument("--budget", dest="quick_budget", type=_number(0, 3600, " s", above=True),
                   metavar="S", help="seconds for the quick check: every cell's and pair's "
                   "planned sampling time is scaled to fit (the clock, chains and arrays take "
                   "what they take; --plan shows how much that is)")
    p.add_argument("--full", action="store_true",
                   help="measure every bandwidth cell, not one per SLIT distance class")
    p.add_argument("--all-pairs", action="store_true",
                   help="core-to-core between every two usable CPUs, not one CPU per "
                   "last-level cache and node plus an SMT and a shared-cache pair")
    p.set_defaults(func=cmd_quick, command_name="quick")
    sub = p.add_subparsers(title="subcommands", metavar="SUBCOMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return p


def _check_outputs(args) -> None:
    """-o FILE and --html FILE are checked before anything is measured: a directory, a missing
    folder or a file that may not be written is bad input now, not a lost run later."""
    from . import results
    for path in (getattr(args, "output", None), getattr(args, "html", None)):
        if path:
            results.check_output(path)


_stopped_by = signal.SIGINT  # the signal that ended the run: exit code 128 + it


def _stop(signum, frame):
    """SIGTERM and SIGHUP end a run as Ctrl-C does: workers stopped, what was measured kept."""
    global _stopped_by
    _stopped_by = signum
    raise KeyboardInterrupt


# Optional dependencies and the extra that brings each (pyproject.toml).
_EXTRAS = {"onnxruntime": "infer", "onnx": "infer", "openvino": "openvino", "matplotlib": "plot",
           "magika": "models", "ray": "fleet"}


def main(argv=None) -> int:
    """The command line. Errors are printed where they are known: bad input (UsageError,
    NotEnoughMemory) is one line and exit 2, a system call that failed is one line and exit 1,
    a missing extra names its pip command; anything else is a bug and keeps its traceback."""
    parser = build_parser()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        args, rest = parser.parse_known_args(argv)
        if rest and not hasattr(args, "node_args"):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if rest:
            args.node_args = rest  # fleet: what the fleet does not know is the nodes' command
        if getattr(args, "quick_budget", None) is not None and args.command_name != "quick":
            raise _BadInput(f"numaprobe: --budget before a subcommand is the quick check's; "
                            f"give it after '{args.command_name}'")
        _check_outputs(args)
        return args.func(args)
    except (UsageError, NotEnoughMemory) as e:
        _say(str(e) if isinstance(e, _BadInput) else f"numaprobe: {e}")
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ImportError as e:
        extra = _EXTRAS.get((e.name or "").split(".")[0])
        if extra is None and "pip install" not in str(e):
            return _bug()  # not a missing extra
        _say(f"numaprobe: {e}" if extra is None else
             f"numaprobe: this needs {e.name.split('.')[0]}, which is not installed: "
             f"pip install 'numaprobe[{extra}]'")
    except OSError as e:
        _say(f"numaprobe: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return 1
    except _WriteFailed as e:
        _say(str(e))
        return 1
    except KeyboardInterrupt:
        _say("numaprobe: interrupted")
        return 128 + _stopped_by
    except Exception:
        return _bug()
    return EXIT_BAD_INPUT


def _bug() -> int:
    """The exception being handled is numaprobe's fault: its traceback and a request."""
    import traceback
    traceback.print_exc()
    _say(f"numaprobe {__version__}: this is a bug in numaprobe, not in what you asked for; "
         "please report it with the lines above and the command you ran")
    return 70  # EX_SOFTWARE
