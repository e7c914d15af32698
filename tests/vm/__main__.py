"""python -m tests.vm TOPOLOGY [--timeout S] [--keep] [-v] -- COMMAND [ARGS...]

Exit status: the command's; 124 on timeout; 3 when QEMU, a kernel or busybox is
missing; 125 when the guest failed before the command finished.
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
        prog="python -m tests.vm", usage=__doc__.splitlines()[0].removeprefix("python -m tests.vm "),
        description="Boot a QEMU guest with a NUMA topology and run COMMAND in it.")
    parser.add_argument("topology", nargs="?", choices=sorted(TOPOLOGIES))
    parser.add_argument("--list", action="store_true", help="list the topologies")
    parser.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the guest's console")
    args = parser.parse_args(options)
    if args.list:
        for name, topo in TOPOLOGIES.items():
            print(f"{name:12} {topo['description']}")
        return 0
    if not args.topology or not command:
        parser.error("a TOPOLOGY and, after --, a COMMAND are required")
    # Turn SIGTERM into an exception so that run() kills QEMU on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rundir = tempfile.mkdtemp(prefix="numaprobe-vm-") if args.keep else None
    try:
        return run(args.topology, command, timeout=args.timeout, verbose=args.verbose,
                   rundir=rundir)
    except VMUnavailable as e:
        print(f"tests.vm: {e}", file=sys.stderr)
        return 3
    except VMTimeout as e:
        print(f"tests.vm: {e}", file=sys.stderr)
        return 124
    except VMError as e:
        print(f"tests.vm: {e}", file=sys.stderr)
        return 125
    finally:
        if rundir:
            print(f"tests.vm: run directory kept: {rundir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
