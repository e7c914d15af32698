"""``numaprobe fleet quick|latency|bandwidth|infer|tune ... --address ADDR``: the same numaprobe
command on every node of a Ray cluster, and the fleet report of what came back.

In order, and nothing measured before the last step:

1. The command for the nodes is checked here with numaprobe's own parser (bad input is refused
   before any host starts), and its files (``--model``, ``--instances``) are found: a file that
   exists here is sent to a node that lacks it (Ray's object store); a path that is not here
   must be on every node.
2. The cluster's nodes (or those named by ``--hosts``) each answer a probe (task.probe): host,
   boot id, usable CPUs, numaprobe's version, the files' digests. A node without numaprobe is
   reported so and not run; a missing file refuses the whole fleet.
3. Per node, layouts in relative words pass through (``one-per-node``,
   ``cores-per-instance=K``: each host resolves them on its own topology) and ``NxT`` is scaled
   to the host's usable CPUs where it does not fit (T kept, N reduced; said so).
4. One task per node holds all of that node's CPUs (Ray's CPU resource, node affinity, no
   retries), so nothing else Ray schedules runs beside the measurement; it runs the command
   as a subprocess (task.measure). Nodes that share a boot id share a machine and run one at
   a time; machines run at once.
5. A node that dies, does not answer within ``--timeout`` or fails is reported with its reason;
   the others' documents are kept. Ctrl-C cancels what runs and returns what arrived.

The result is the fleet report (report.fleet_report) of the documents that came back, plus
``runs``: per node its state, reason, time, the environment dropped and Ray's noise.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time

from ..errors import UsageError
from . import report, task

__all__ = ["COMMANDS", "SHIPPED", "DEFAULT_TIMEOUT_S", "check_command", "scale_layouts",
           "run_fleet"]

# The fleet's commands and the numaprobe arguments each starts with.
COMMANDS = {"quick": [], "latency": ["latency"], "bandwidth": ["bandwidth"],
            "infer": ["infer"], "tune": ["tune"]}
SHIPPED = ("--model", "--instances")    # options whose value may be a file to send
LAYOUT_OPTIONS = ("--layouts", "--from")
DEFAULT_TIMEOUT_S = 1800.0
PROBE_TIMEOUT_S = 180.0
GRACE_S = 60.0            # past a node's own timeout, the driver waits this long for its answer
_FILE_SUFFIXES = (".onnx", ".xml", ".json", ".yaml", ".yml", ".toml")
_NOT_FOR_NODES = ("-o", "--output", "--json", "--csv", "--html", "-q", "--quiet")


# ------------------------------------------------------------------------ the command

def _values(args: list[str], option: str) -> list[tuple[int, str]]:
    """(index, value) of each ``option VALUE`` or ``option=VALUE`` in args."""
    out = []
    for i, a in enumerate(args):
        if a == option and i + 1 < len(args):
            out.append((i + 1, args[i + 1]))
        elif a.startswith(option + "="):
            out.append((i, a[len(option) + 1:]))
    return out


def _set(args: list[str], i: int, option: str, value: str) -> None:
    args[i] = f"{option}={value}" if args[i].startswith(option + "=") else value


def check_command(command: str, args: list[str]) -> tuple[list[str], dict, list[str]]:
    """The node command, checked here: (its arguments with files made absolute, {path: sha256}
    of files to send where a node lacks them, [paths that must be on every node]). Bad input
    is a UsageError naming it, before any host starts."""
    from .. import cli
    if command not in COMMANDS:
        raise UsageError(f"fleet {command}: not a fleet command (allowed: {', '.join(COMMANDS)})")
    for a in args:
        if a.split("=")[0] in _NOT_FOR_NODES:
            raise UsageError(f"fleet {command}: {a.split('=')[0]} is the fleet's own option: "
                             "give it before the node's arguments or leave it out (every "
                             "node returns its document to the fleet document)")
    try:
        parsed = cli.build_parser().parse_args(COMMANDS[command] + list(args))
    except UsageError as e:
        raise UsageError(f"fleet {command}: the nodes' command is not valid: "
                         f"{str(e).removeprefix('numaprobe: ')}") from None
    if getattr(parsed, "command_name", "quick") != (command if COMMANDS[command] else "quick"):
        raise UsageError(f"fleet {command}: give the node's options, not another subcommand")
    args = list(args)
    send, everywhere = {}, []
    for option in SHIPPED:
        for i, value in _values(args, option):
            if os.path.isfile(value):
                path = os.path.abspath(value)
                _set(args, i, option, path)
                send[path] = task.digest(path)
            elif os.path.isabs(value) or value.lower().endswith(_FILE_SUFFIXES):
                if not os.path.isabs(value):
                    raise UsageError(f"fleet {command}: {option} {value}: not a file here, so "
                                     "it cannot be sent; give its absolute path on the nodes")
                everywhere.append(value)
    return args, send, everywhere


def scale_layouts(args: list[str], usable: int) -> tuple[list[str], list[str]]:
    """``NxT`` layouts scaled to a host with ``usable`` CPUs: (the arguments, what changed)."""
    args, notes = list(args), []
    for option in LAYOUT_OPTIONS:
        for i, value in _values(args, option):
            specs = []
            for spec in value.split(","):
                m = re.fullmatch(r"([0-9]+)x([0-9]+)", spec.strip())
                if m and int(m[1]) * int(m[2]) > usable:
                    t = min(int(m[2]), usable)
                    new = f"{max(1, usable // t)}x{t}"
                    notes.append(f"{spec} scaled to {new}: {usable} usable CPUs")
                    spec = new
                specs.append(spec)
            _set(args, i, option, ",".join(specs))
    return args, notes


# ------------------------------------------------------------------------------ Ray

def _ray():
    import ray  # ImportError names the extra: pip install 'numaprobe[fleet]'
    from ray import cloudpickle
    cloudpickle.register_pickle_by_value(task)  # a node without numaprobe still runs it
    return ray


def _reachable(address: str) -> None:
    """A clear refusal, not Ray's minutes of retries, where nothing listens at ADDRESS."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address}: give the head's HOST:PORT (ray start --head "
                         "prints it; the port is 6379 by default)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"--address {address}: no Ray cluster answers there "
                         f"({e.strerror or e}); start one with 'ray start --head', or try "
                         "the fleet on this machine with --local N") from None


def _connect(ray, address: str) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _reachable(address)
    ray.init(address=address, logging_level="ERROR", log_to_driver=False,
             include_dashboard=False)


def _select(ray, names) -> list[dict]:
    """The alive nodes as {"node_id", "label", "address", "cpus", "hostname"}, those in
    ``names`` (host name, address, node id or its prefix, or label) if given."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    count = {}
    for n in alive:
        count[n["NodeManagerHostname"]] = count.get(n["NodeManagerHostname"], 0) + 1
    nodes = [{"node_id": n["NodeID"], "address": n["NodeManagerAddress"],
              "cpus": n["Resources"].get("CPU", 0.0), "hostname": n["NodeManagerHostname"],
              "label": (n["NodeManagerHostname"] if count[n["NodeManagerHostname"]] == 1
                        else f"{n['NodeManagerHostname']}-{n['NodeID'][:6]}")}
             for n in alive]
    nodes.sort(key=lambda n: n["label"])
    if names:
        def hit(n, w):
            return w in (n["label"], n["address"], n["hostname"]) or n["node_id"].startswith(w)
        missing = [w for w in names if not any(hit(n, w) for n in nodes)]
        if missing:
            raise UsageError(f"--hosts: no such node: {', '.join(missing)} (the cluster's: "
                             + ", ".join(f"{n['label']} {n['address']}" for n in nodes) + ")")
        nodes = [n for n in nodes if any(hit(n, w) for w in names)]
    if not nodes:
        raise UsageError("the cluster has no alive node")
    return nodes


def _on(ray, node: dict, fn, *, cpus: float = 0):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    return ray.remote(fn).options(
        num_cpus=cpus, max_retries=0, retry_exceptions=False,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["node_id"], soft=False))


def _why(ray, e: Exception) -> tuple[str, str]:
    """(state, reason) of a task that raised."""
    ex = ray.exceptions
    if isinstance(e, ex.TaskCancelledError):
        return "cancelled", "cancelled"
    if isinstance(e, (ex.NodeDiedError, ex.WorkerCrashedError, ex.ObjectLostError,
                      ex.LocalRayletDiedError, ex.RaySystemError)):
        return "died", f"the node or its worker died ({type(e).__name__})"
    if isinstance(e, ex.GetTimeoutError):
        return "timed out", "did not answer"
    return "failed", f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"


def _probe_all(ray, nodes, paths) -> None:
    refs = {_on(ray, n, task.probe).remote(paths): n for n in nodes}
    ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
    for ref in pending:
        ray.cancel(ref, force=True)
        refs[ref]["state"] = ("timed out", f"no answer to the probe in {PROBE_TIMEOUT_S:g} s")
    for ref in ready:
        try:
            refs[ref]["probe"] = ray.get(ref)
        except ray.exceptions.RayError as e:
            refs[ref]["state"] = _why(ray, e)


def _outcome(node: dict, out: dict, timeout: float) -> None:
    doc = out["doc"]
    tail = [ln for ln in out["stderr"].splitlines() if ln.strip()]
    node["run"] = {k: out.get(k) for k in ("rc", "seconds", "dropped", "settle",
                                             "ray_noise", "python")}
    if out["timed_out"]:
        node["state"] = ("timed out", f"ran past --timeout {timeout:g} s and was stopped"
                         + ("; its partial document is kept" if doc else ""))
    elif out["rc"] == 0 and doc is not None:
        node["state"] = ("ok", "")
    elif "No module named numaprobe" in out["stderr"]:
        node["state"] = ("not installed", f"{out['python']}: no numaprobe")
    else:
        node["state"] = ("failed", f"exit {out['rc']}: " + (tail[-1] if tail else "no output"))
    node["doc"] = doc


def _run_all(ray, nodes, argv_of, files_of, timeout, progress) -> bool:
    """Run every node's command; nodes of one machine (boot id) one after another. Returns
    False where Ctrl-C stopped it (the nodes not finished are 'cancelled')."""
    groups: dict[str, list[dict]] = {}
    for n in nodes:
        groups.setdefault(n["probe"]["boot_id"], []).append(n)
    running: dict = {}   # ref -> (node, started)

    def start(group):
        if group:
            n = group.pop(0)
            fn = _on(ray, n, task.measure, cpus=n["cpus"])
            files = {p: ray.put(blob) for p, blob in files_of(n).items()}
            ref = fn.remote(argv_of(n), label=n["label"], timeout=timeout,
                            files=files or None)
            running[ref] = (n, time.monotonic(), group)

    for g in groups.values():
        start(g)
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            now = time.monotonic()
            for ref in ready:
                n, _, group = running.pop(ref)
                try:
                    _outcome(n, ray.get(ref), timeout)
                except ray.exceptions.RayError as e:
                    n["state"] = _why(ray, e)
                progress.step(f"{n['label']}: {n['state'][0]}")
                start(group)
            for ref, (n, t0, group) in list(running.items()):
                if now - t0 > timeout + GRACE_S:
                    ray.cancel(ref, force=True)
                    running.pop(ref)
                    n["state"] = ("timed out", f"no answer within --timeout {timeout:g} s and "
                                  f"{GRACE_S:g} s more; its task was killed")
                    progress.step(f"{n['label']}: timed out")
                    start(group)
    except KeyboardInterrupt:
        for ref, (n, _, _) in running.items():
            ray.cancel(ref)  # the task stops its subprocess (SIGTERM, then SIGKILL)
            n["state"] = ("cancelled", "interrupted (Ctrl-C) while it ran")
        if running:
            ray.wait(list(running), num_returns=len(running), timeout=task.KILL_AFTER_S + 5)
        for group in groups.values():
            for n in group:
                n["state"] = ("cancelled", "interrupted (Ctrl-C) before it started")
        return False
    return True


def run_fleet(command: str, args: list[str], *, address: str, hosts=None,
              timeout: float = DEFAULT_TIMEOUT_S, show: bool | None = None) -> dict:
    """The fleet run (see the module's docstring): the fleet report with ``runs``, and
    ``interrupted`` True where Ctrl-C ended it."""
    args, send, everywhere = check_command(command, args)
    ray = _ray()
    # Ray's driver prints what it hears of the cluster (a node marked dead, a worker's error)
    # on stdout from a thread of its own: to stderr while it runs, so that --json stays JSON.
    with contextlib.redirect_stdout(sys.stderr):
        return _run(ray, command, args, send, everywhere, address=address, hosts=hosts,
                    timeout=timeout, show=show)


def _run(ray, command, args, send, everywhere, *, address, hosts, timeout, show) -> dict:
    from ..progress import Progress
    _connect(ray, address)
    try:
        nodes = _select(ray, hosts)
        _probe_all(ray, nodes, list(send) + everywhere)
        for n in nodes:
            p = n.get("probe")
            if p and p["numaprobe"] is None:
                n["state"] = ("not installed", f"{p['python']}: {p['why']}")
        lacking = {path: [n["label"] for n in nodes if n.get("probe")
                          and n["probe"]["files"].get(path) is None]
                   for path in everywhere}
        lacking = {p: ls for p, ls in lacking.items() if ls}
        if lacking:
            raise UsageError("; ".join(f"{p}: not on this machine to send, and missing on "
                                       f"{', '.join(ls)}" for p, ls in lacking.items())
                             + " (nothing was run)")
        blobs = {}
        for path in send:
            with open(path, "rb") as f:
                blobs[path] = f.read()
        todo = [n for n in nodes if "state" not in n]
        for n in todo:
            n["argv"], n["scaled"] = scale_layouts(args, n["probe"]["usable_cpus"])
            n["argv"] = COMMANDS[command] + n["argv"] + ["--json"]
            n["sent"] = [p for p, d in send.items() if n["probe"]["files"].get(p) != d]
        bar = Progress(len(todo), "fleet", enabled=show)
        try:
            done = _run_all(ray, todo, lambda n: n["argv"],
                            lambda n: {p: blobs[p] for p in n["sent"]}, timeout, bar)
        finally:
            bar.close()
    finally:
        ray.shutdown()
    ok = [n for n in nodes if n.get("doc") is not None]
    r = report.fleet_report([(n["label"], n["doc"]) for n in ok],
                            hosts=[n["label"] for n in ok])
    r["runs"] = [_run_entry(n) for n in nodes]
    r["command"] = " ".join(["numaprobe"] + COMMANDS[command] + args)
    r["cluster"] = {"address": address, "nodes": len(nodes), "timeout_s": timeout,
                    "machines": len({n["probe"]["boot_id"] for n in nodes if n.get("probe")})}
    r["interrupted"] = not done
    return r


def _run_entry(n: dict) -> dict:
    state, why = n.get("state", ("failed", "no state"))
    run = n.get("run") or {}
    p = n.get("probe") or {}
    return {"host": n["label"], "node_id": n["node_id"], "address": n["address"],
            "state": state, "why": why, "seconds": run.get("seconds"),
            "numaprobe": p.get("numaprobe"), "usable_cpus": p.get("usable_cpus"),
            "argv": n.get("argv"), "scaled": n.get("scaled", []), "sent": n.get("sent", []),
            "dropped_env": run.get("dropped", {}), "settle": run.get("settle"),
            "ray_noise": run.get("ray_noise")}
