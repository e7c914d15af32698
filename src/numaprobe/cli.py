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
    """The quick check: what the machine is and what looks misconfigured."""
    from . import clock, placement, topology
    t0 = time.monotonic()
    topo = topology.read()
    clk = clock.calibrate(20_000_000)
    checks = []
    for n in topo.usable_mems:
        with placement.alloc(16 << 20, node=n, topology=topo) as mem:
            pages = mem.pages()
        checks.append({"node": n, "bytes": 16 << 20, "on_node": pages.fraction(n),
                       "huge_fraction": pages.huge_fraction})
    warnings = topo.warnings() + clk.warnings()
    if len(topo.nodes) == 1:
        warnings.append("one NUMA node: local-versus-remote effects cannot show on this machine")
    doc = {"numaprobe": __version__, "topology": topo.to_dict(), "clock": clk.to_dict(),
           "placement": checks, "warnings": warnings, "seconds": time.monotonic() - t0}
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(topo.summary())
    print(f"clock: {clk.kind} {clk.hz / 1e6:.1f} MHz, read {clk.overhead_ns:.1f} ns, "
          f"calibrations agree within {100 * clk.agreement:.4f} %")
    for c in checks:
        print(f"placement: 16 MiB bound to node {c['node']}: {100 * c['on_node']:.0f}% of pages "
              f"there, {100 * c['huge_fraction']:.0f}% in 2 MiB pages")
    for w in warnings:
        print(f"warning: {w}")
    _say(f"({doc['seconds']:.1f} s; subcommands: python -m numaprobe --help)")
    return 0


# ------------------------------------------------------------------------------ parser

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="numaprobe", description=(
        "Measure how memory locality, core allocation and process layout decide the speed of "
        "this machine. With no subcommand: a quick check of the machine."))
    p.add_argument("--version", action="version", version=f"numaprobe {__version__}")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
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
