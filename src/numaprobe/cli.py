"""``python -m numaprobe [subcommand]``: argparse subcommands and a dispatch table.

Data goes to stdout (``--json`` everywhere), people's text to stderr. Bad input is one line on
stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import __version__

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2)."""

    def error(self, message):
        raise _BadInput(f"{self.prog}: {message} (see --help)")


class _BadInput(Exception):
    pass


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


# --------------------------------------------------------------------------- subcommands

def cmd_topology(args) -> int:
    from . import topology
    if args.capture:
        topo = topology.capture(args.capture, args.root)
        _say(f"captured {sum(1 for _ in _walk(args.capture))} files into {args.capture}; "
             "send the folder (tar it) to reproduce this machine's topology")
    else:
        topo = topology.read(args.root)
    if args.json:
        print(json.dumps(topo.to_dict(), indent=1))
        return 0
    print(topo.summary())
    for w in topo.warnings():
        print(f"  warning: {w}")
    return 0


def _walk(path):
    for _, _, files in os.walk(path):
        yield from files


def cmd_clock(args) -> int:
    from . import clock
    clk = clock.calibrate(int(args.window * 1e6))
    if args.json:
        print(json.dumps(clk.to_dict(), indent=1))
        return 0
    inv = {True: "invariant", False: "NOT invariant", None: "invariance unknown"}[clk.invariant]
    print(f"clock: {clk.kind} ({inv}), {clk.hz / 1e6:.3f} MHz")
    print(f"  calibrations: {clk.ticks_per_ns * 1e3:.4f} ticks/us (CLOCK_MONOTONIC_RAW), "
          f"{clk.check_ticks_per_ns * 1e3:.4f} ticks/us (CLOCK_MONOTONIC): "
          f"agree within {100 * clk.agreement:.4f} %")
    if clk.declared_hz:
        print(f"  declared by the CPU/hypervisor: {clk.declared_hz / 1e6:.3f} MHz "
              f"(measured differs by {100 * clk.declared_agreement:.3f} %)")
    else:
        print("  declared frequency: none (no CPUID 0x15 or hypervisor timing leaf)")
    print(f"  read overhead: {clk.overhead_ticks:.0f} ticks = {clk.overhead_ns:.1f} ns "
          f"(median {clk.overhead_median_ticks:.0f} ticks); resolution "
          f"{clk.resolution_ticks} ticks = {clk.resolution_ns:.2f} ns")
    for w in clk.warnings():
        print(f"  warning: {w}")
    return 0


def cmd_run(args) -> int:
    from . import _core, placement
    from .topology import parse_list, read
    topo = read()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise _BadInput("numaprobe run: no command given; usage: numaprobe run [binding] -- CMD [ARGS...]")

    def nodes_arg(text, need):
        ids = topo.node_ids if text == "all" else parse_list(text)
        return placement.check_nodes(ids, topo, need=need)

    cpus = None
    if args.physcpubind and args.cpunodebind:
        raise _BadInput("numaprobe run: give --physcpubind or --cpunodebind, not both")
    if args.physcpubind:
        ids = topo.usable_cpus if args.physcpubind == "all" else parse_list(args.physcpubind)
        cpus = placement.check_cpus(ids, topo)
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
    except OSError as e:
        raise _BadInput(f"numaprobe run: cannot run {cmd[0]!r}: {e.strerror}") from None
    return 0  # not reached


def cmd_quick(args) -> int:
    """The quick check: what the machine is, its memory system, and what looks wrong."""
    from .probes.quick import quick_check
    doc = quick_check(progress=_progress(args))
    tables = doc.pop("_tables")
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    from .topology import read
    print(read().summary())
    c = doc["clock"]
    print(f"clock: {c['kind']} {c['hz'] / 1e6:.1f} MHz, read {c['overhead_ns']:.1f} ns, "
          f"calibrations agree within {100 * c['agreement']:.4f} %")
    for t in tables:
        print()
        print(t)
    n = doc["noise"]
    print(f"\nnoise: other processes {100 * n['foreign_fraction']:.1f} %, hypervisor steal "
          f"{100 * n['steal_fraction']:.1f} % of CPU time during the run")
    for w in doc["warnings"]:
        print(f"warning: {w}")
    _say(f"({doc['seconds']:.1f} s; subcommands: python -m numaprobe --help)")
    return 0


def _progress(args):
    return False if getattr(args, "quiet", False) else None


def _print(args, result, extra_warnings=()) -> int:
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    print(result.table())
    warnings = list(extra_warnings)
    if hasattr(result, "warnings"):
        warnings += result.warnings()
    for w in warnings:
        print(f"warning: {w}")
    return 0


def _nodes(text):
    from .topology import parse_list
    return None if text is None or text == "all" else parse_list(text)


def _bytes(text: str) -> int:
    """'64M', '1G', '4096', '32KiB' -> bytes."""
    import re
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r}: use bytes or 64K, 256M, 1G")
    power = "kmgt".find(m.group(2).lower()) + 1 if m.group(2) else 0
    return int(float(m.group(1)) * 1024 ** power)


def cmd_latency(args) -> int:
    from . import probes
    if args.sweep:
        cn = _nodes(args.cpu_nodes)
        mn = _nodes(args.mem_nodes)
        return _print(args, probes.latency_sweep(
            cn[0] if cn else None, mn[0] if mn else None, hi=args.size, chain=args.chain,
            samples=args.samples, progress=_progress(args)))
    return _print(args, probes.latency_matrix(
        _nodes(args.cpu_nodes), _nodes(args.mem_nodes), size=args.size, page=args.page,
        chain=args.chain, samples=args.samples, progress=_progress(args)))


def cmd_bandwidth(args) -> int:
    from . import probes
    if args.peak:
        r = probes.peak_bandwidth(args.kernel, isa=args.isa, size=args.size, reps=args.reps)
        if args.json:
            print(json.dumps(r.to_dict(), indent=1))
        else:
            print(f"aggregate {r.kernel} bandwidth, all {len(r.cpus)} usable CPUs on their own "
                  f"nodes ({r.isa}): {r.gbs}")
        return 0
    if args.threads_sweep:
        cn, mn = _nodes(args.cpu_nodes), _nodes(args.mem_nodes)
        cn = cn[0] if cn else 0
        results = probes.threads_sweep(cn, mn[0] if mn else cn, args.kernel, isa=args.isa,
                                       size=args.size, reps=args.reps, progress=_progress(args))
        if args.json:
            print(json.dumps([r.to_dict() for r in results], indent=1))
            return 0
        print(f"{args.kernel} bandwidth by threads, CPU node {cn} ({results[0].isa})")
        for r in results:
            print(f"  {len(r.cpus):>3} thread(s)  {r.gbs}")
        return 0
    return _print(args, probes.bandwidth_matrix(
        args.kernel, _nodes(args.cpu_nodes), _nodes(args.mem_nodes), threads=args.threads,
        isa=args.isa, size=args.size, reps=args.reps, progress=_progress(args)))


def cmd_loaded(args) -> int:
    from . import probes
    cn, mn = _nodes(args.cpu_nodes), _nodes(args.mem_nodes)
    return _print(args, probes.loaded_latency(cn[0] if cn else None, mn[0] if mn else None,
                                              size=args.size, samples=args.samples,
                                              progress=_progress(args)))


def cmd_c2c(args) -> int:
    from . import probes
    from .topology import parse_list
    cpus = None if args.cpus in (None, "all") else parse_list(args.cpus)
    return _print(args, probes.c2c_matrix(cpus, node=args.node, rounds=args.rounds,
                                          samples=args.samples, progress=_progress(args)))


# ------------------------------------------------------------------------------ parser

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="numaprobe", description=(
        "Measure how memory locality, core allocation and process layout decide the speed of "
        "this machine. With no subcommand: a quick check of the machine."))
    p.add_argument("--version", action="version", version=f"numaprobe {__version__}")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_quick)
    sub = p.add_subparsers(title="subcommands", metavar="SUBCOMMAND", parser_class=_Parser)

    t = sub.add_parser("topology", help="CPUs, caches, NUMA nodes, allowed sets, settings",
                       description="Print the machine's topology as read from /sys and /proc.")
    t.add_argument("--json", action="store_true", help="print the topology document")
    t.add_argument("--root", help="read a captured tree instead of / "
                   "(default: $NUMAPROBE_SYSFS_ROOT or /)")
    t.add_argument("--capture", metavar="DIR", help="copy the files the reader uses into DIR "
                   "(new or empty), with the expected result beside them")
    t.set_defaults(func=cmd_topology)

    c = sub.add_parser("clock", help="the calibrated clock: frequency, overhead, resolution",
                       description="Calibrate the CPU's counter twice, independently, and "
                       "report its frequency, read overhead and resolution.")
    c.add_argument("--json", action="store_true")
    c.add_argument("--window", type=float, default=100.0, metavar="MS",
                   help="calibration window in milliseconds (default 100)")
    c.set_defaults(func=cmd_clock)

    r = sub.add_parser("run", help="run a command bound to CPUs and memory nodes (like numactl)",
                       description="Run CMD with its CPUs and memory policy set, like numactl. "
                       "Lists take numactl's syntax: 0-3,8 or all.",
                       usage="numaprobe run [-C CPUS | -N NODES] [-m NODES | -i NODES | "
                             "-p NODE] -- CMD [ARGS...]")
    r.add_argument("-C", "--physcpubind", "--cpus", metavar="CPUS", help="run on these CPUs")
    r.add_argument("-N", "--cpunodebind", metavar="NODES", help="run on the CPUs of these nodes")
    r.add_argument("-m", "--membind", metavar="NODES", help="allocate only on these nodes")
    r.add_argument("-i", "--interleave", metavar="NODES", help="interleave pages over these nodes")
    r.add_argument("-p", "--preferred", metavar="NODE", help="prefer this node, fall back when full")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    r.set_defaults(func=cmd_run)

    def probe(name, func, help, description):
        sp = sub.add_parser(name, help=help, description=description)
        sp.add_argument("--json", action="store_true", help="print the result document")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress line")
        sp.set_defaults(func=func)
        return sp

    def node_args(sp):
        sp.add_argument("--cpu-nodes", metavar="NODES", help="CPU nodes (default: all with usable CPUs)")
        sp.add_argument("--mem-nodes", metavar="NODES", help="memory nodes (default: all usable, CPU-less ones too)")

    lt = probe("latency", cmd_latency, "idle memory latency: CPU node x memory node, or --sweep",
               "Dependent loads through a random cycle of cache lines; ns per load.")
    node_args(lt)
    lt.add_argument("--sweep", action="store_true",
                    help="latency versus working-set size and the cache levels it reveals")
    lt.add_argument("--size", type=_bytes, help="bytes in the chain (sweep: the largest); "
                    "default 8 x the last-level cache, at least 256M")
    lt.add_argument("--page", default="auto", choices=("auto", "4k", "2m", "1g"))
    lt.add_argument("--chain", default="tlb-local", choices=("tlb-local", "random"))
    lt.add_argument("--samples", type=int, default=5)

    bw = probe("bandwidth", cmd_bandwidth, "memory bandwidth: CPU node x memory node",
               "Read, write, copy and triad kernels on every usable CPU of a node; GB/s.")
    node_args(bw)
    from .probes.bandwidth import KERNELS
    bw.add_argument("--kernel", default="read", choices=tuple(KERNELS))
    bw.add_argument("--threads", type=int, help="threads per CPU node (default: all usable CPUs)")
    bw.add_argument("--isa", default="auto", choices=("auto", "scalar", "avx2", "avx512"))
    bw.add_argument("--size", type=_bytes, help="bytes per array per thread")
    bw.add_argument("--reps", type=int, default=10, help="repetitions (samples)")
    bw.add_argument("--threads-sweep", action="store_true",
                    help="1, 2, ... all CPUs of the (first) CPU node: where bandwidth stops rising")
    bw.add_argument("--peak", action="store_true",
                    help="every usable CPU at once, each on its own node: the aggregate")

    ll = probe("loaded-latency", cmd_loaded, "latency while the node's other CPUs read memory",
               "The latency chase on one CPU while the node's other CPUs generate read "
               "traffic at several injection delays: the latency-bandwidth curve.")
    node_args(ll)
    ll.add_argument("--size", type=_bytes, help="bytes in the chain")
    ll.add_argument("--samples", type=int, default=2, help="latency samples per delay")

    cc = probe("c2c", cmd_c2c, "core-to-core latency matrix",
               "A cache line passed between two pinned CPUs (compare-and-swap); ns one way.")
    cc.add_argument("--cpus", help="CPUs to pair (default: all usable)")
    cc.add_argument("--node", type=int, help="memory node holding the line (default: the first CPU's)")
    cc.add_argument("--rounds", type=int, default=20000)
    cc.add_argument("--samples", type=int, default=5)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except _BadInput as e:
        _say(str(e))
    except (ValueError, MemoryError) as e:
        _say(f"numaprobe: {e}")
    except OSError as e:
        _say(f"numaprobe: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return 1
    except KeyboardInterrupt:
        _say("numaprobe: interrupted")
        return 130
    return EXIT_BAD_INPUT
