"""python -m tests.vm TOPOLOGY [--timeout S] [--keep] [-v] -- COMMAND [ARGS...]
       python -m tests.vm --list

Exit status: the command's; 124 on timeout; 3 when QEMU, a kernel or busybox is
missing; 125 when the guest failed before the command finished; 130 on Ctrl-C.
"""

import argparse
import signal
import sys
import tempfile

from . import TOPOLOGIES, VMError, VMTimeout, VMUnavailable, run


def main(argv):
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        prog="python -m tests.vm", usage=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[1],
        description="Boot a QEMU guest with a NUMA topology and run COMMAND in it.")
    parser.add_argument("topology", nargs="?", choices=sorted(TOPOLOGIES), metavar="TOPOLOGY",
                        help="one of: " + ", ".join(TOPOLOGIES))
    parser.add_argument("--list", action="store_true", help="list the topologies")
    parser.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run directory (console.log, command.sh, initramfs)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the guest's boot messages on stderr")
    args = parser.parse_args(options)
    if args.list:
        for name, topo in TOPOLOGIES.items():
            print(f"{name:12} {topo['description']}")
        return 0
    if not args.topology or not command:
        parser.error("a TOPOLOGY and, after --, a COMMAND are required")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that run() kills QEMU
    rundir = tempfile.mkdtemp(prefix="numaprobe-vm-") if args.keep else None
    try:
        return run(args.topology, command, timeout=args.timeout, verbose=args.verbose,
                   rundir=rundir)
    except VMError as e:
        print(f"tests.vm: {e}", file=sys.stderr)
        return 3 if isinstance(e, VMUnavailable) else 124 if isinstance(e, VMTimeout) else 125
    except KeyboardInterrupt:
        return 130
    finally:
        if rundir:
            print(f"tests.vm: run directory kept: {rundir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
