"""The fleet runner on a real Ray cluster on this machine: a head and two more nodes, each a
raylet with its own resources, on 127.0.0.1 only, no dashboard, no usage statistics (every
socket its processes listen on is checked). `fleet quick` runs for real; one node reads a
captured sysfs tree with THP off through NUMAPROBE_SYSFS_ROOT, and the report must single it
out and name THP. Nodes added later are made to lack numaprobe, to be killed mid-run, and to
run past --timeout; the rest are kept each time, and no measurement is left running.

The runner's pieces that need no cluster (the node command's checks, layout scaling, the
task's environment, its file shipping, Ray's noise) are tested on their own below."""
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from numaprobe import cli, results, topology
from numaprobe.errors import UsageError
from numaprobe.fleet import runner, task
from numaprobe.fleet.cluster import LOOPBACK, local_cluster

NUMAPROBE = [sys.executable, "-m", "numaprobe"]


# ------------------------------------------------------------------- without a cluster

@pytest.mark.parametrize("command, args, words", [
    ("quick", ["--budget", "-3"], "the nodes' command is not valid"),
    ("latency", ["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ("quick", ["-o", "x.json"], "-o is the fleet's own option"),
    ("infer", ["--model", "nowhere.onnx"], "not a file here, so it cannot be sent"),
    ("quick", ["latency"], "not another subcommand"),
    ("top", [], "not a fleet command"),
])
def test_the_node_command_is_checked_before_any_host_starts(command, args, words):
    with pytest.raises(UsageError, match=words):
        runner.check_command(command, args)


def test_a_file_here_is_made_absolute_and_a_path_only_on_the_nodes_must_be_everywhere(
        tmp_path, monkeypatch):
    (tmp_path / "m.onnx").write_bytes(b"not really a model")
    monkeypatch.chdir(tmp_path)
    args, send, everywhere = runner.check_command(
        "infer", ["--model", "m.onnx", "--instances=/opt/layouts/a.json"])
    path = str(tmp_path / "m.onnx")
    assert args == ["--model", path, "--instances=/opt/layouts/a.json"]
    assert send == {path: task.digest(path)} and everywhere == ["/opt/layouts/a.json"]


def test_nxt_layouts_are_scaled_to_a_hosts_usable_cpus_and_relative_words_pass():
    args, notes = runner.scale_layouts(
        ["--layouts", "8x1,2x2,one-per-node,cores-per-instance=2,1x16@0", "--from=4x4"], 4)
    assert args == ["--layouts", "4x1,2x2,one-per-node,cores-per-instance=2,1x16@0",
                    "--from=1x4"]
    assert notes == ["8x1 scaled to 4x1: 4 usable CPUs", "4x4 scaled to 1x4: 4 usable CPUs"]
    assert runner.scale_layouts(["--layouts", "2x3"], 2)[0] == ["--layouts", "1x2"]


def test_hosts_are_picked_by_host_name_label_address_or_node_id():
    """Two nodes share a host name with dashes in it (labels gain the node id); a third's
    name starts the same. ray.nodes() as a list of literal entries."""
    def node(host, nid, ip):
        return {"Alive": True, "NodeID": nid, "NodeManagerHostname": host,
                "NodeManagerAddress": ip, "Resources": {"CPU": 4.0}}
    fake = type("Ray", (), {"nodes": staticmethod(lambda: [
        node("gpu-node-1", "aaaaaa11", "10.0.0.1"), node("gpu-node-1", "bbbbbb22", "10.0.0.1"),
        node("gpu-node-10", "cccccc33", "10.0.0.2"), {"Alive": False}])})
    pick = lambda *names: [n["node_id"] for n in runner._select(fake, list(names))]
    assert pick("gpu-node-1") == ["aaaaaa11", "bbbbbb22"]
    assert pick("gpu-node-1-bbbbbb") == ["bbbbbb22"] == pick("bbbb")
    assert pick("10.0.0.2") == ["cccccc33"]
    assert [n["label"] for n in runner._select(fake, None)] == [
        "gpu-node-1-aaaaaa", "gpu-node-1-bbbbbb", "gpu-node-10"]
    with pytest.raises(UsageError, match="--hosts: no such node: gpu "):
        pick("gpu")


def test_the_tasks_environment_drops_rays_thread_caps_and_keeps_the_rest():
    env, dropped = task.scrubbed_env({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                                      "NUMAPROBE_SYSFS_ROOT": "/t", "PATH": "/bin"})
    assert dropped == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert env == {"NUMAPROBE_SYSFS_ROOT": "/t", "PATH": "/bin"}


def test_rays_noise_is_the_cpu_time_its_processes_took_of_the_window():
    before = {(1, "10"): 5.0, (2, "20"): 1.0}
    after = {(1, "10"): 5.5, (3, "30"): 0.3}   # 2 exited, 3 started meanwhile
    n = task.ray_noise(before, after, seconds=2.0, cpus=4)
    assert n["cpu_s"] == pytest.approx(0.8) and n["fraction"] == pytest.approx(0.1)
    assert task._is_ray("raylet", "") and task._is_ray("ray::IDLE", "")
    assert not task._is_ray("python", "python -m numaprobe")


def test_the_task_waits_for_rays_processes_to_settle_and_says_when_they_did_not(
        monkeypatch):
    """Ray's CPU time as a stream of readings: 50 % of 2 CPUs over two windows, then quiet."""
    readings = iter([{(1, "1"): 0.0}, {(1, "1"): 0.5}, {(1, "1"): 0.5}, {(1, "1"): 1.0},
                     {(1, "1"): 1.0}, {(1, "1"): 1.01}])
    monkeypatch.setattr(task, "ray_cpu", lambda exclude=(): next(readings))
    monkeypatch.setattr(task.time, "sleep", lambda s: None)
    st = task.settle(2)
    assert st["settled"] and st["share"] == pytest.approx(0.01)
    busy = itertools.count()  # a CPU-second more at every reading: 200 % of one CPU
    monkeypatch.setattr(task, "ray_cpu", lambda exclude=(): {(1, "1"): float(next(busy))})
    monkeypatch.setattr(task, "SETTLE_MOST_S", 0.0)   # busy all along: gives up, says so
    st = task.settle(1)
    assert not st["settled"]


def test_a_file_the_node_lacks_arrives_and_the_command_reads_the_copy(tmp_path):
    """task.measure without Ray: the document is 'sent' as bytes for a path that does not
    exist, and `numaprobe show` reads the copy it was written to."""
    doc = json.loads((Path(__file__).parent / "data/documents/v1/quick.json").read_text())
    missing = str(tmp_path / "not-here.json")
    out = task.measure(["show", missing, "--json"], label="h",
                       files={missing: json.dumps(doc).encode()}, timeout=120)
    assert out["rc"] == 0, out["stderr"]
    assert out["doc"]["kind"] == "quick" and not out["timed_out"]
    assert not list(Path("/tmp").glob("numaprobe-fleet-*/0-not-here.json"))  # removed


def test_a_run_past_its_timeout_is_stopped_and_says_so():
    out = task.measure(["--budget", "30"], label="h", timeout=1.0)
    assert out["timed_out"] and out["seconds"] < 1.0 + task.KILL_AFTER_S + 5


def test_the_fleet_commands_refuse_without_a_cluster_and_an_unanswered_address():
    r = subprocess.run(NUMAPROBE + ["fleet", "quick"], capture_output=True, text=True)
    assert r.returncode == 2 and "--address" in r.stderr and "Traceback" not in r.stderr
    t0 = time.monotonic()
    r = subprocess.run(NUMAPROBE + ["fleet", "quick", "--address", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no Ray cluster answers there" in r.stderr
    assert time.monotonic() - t0 < 30 and "Traceback" not in r.stderr
    r = subprocess.run(NUMAPROBE + ["latency", "--address", "x"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "unrecognized arguments: --address x" in r.stderr


# ------------------------------------------------------------------------ the cluster

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and two nodes; node 2 reads this machine's tree captured with THP off."""
    tree = tmp_path_factory.mktemp("thp-never")
    topology.capture(tree)
    (tree / "sys/kernel/mm/transparent_hugepage/enabled").write_text(
        "always madvise [never]\n")
    with local_cluster(3, env={2: {"NUMAPROBE_SYSFS_ROOT": str(tree)}}) as c:
        yield c


def _ids(c):
    """The fixture's three nodes' ids, the head first, the odd one last."""
    return [n.node_id for n in c.in_order]


def _fleet(c, *args, timeout=600):
    return subprocess.run(NUMAPROBE + ["fleet", *args[:1], "--address", c.address, *args[1:]],
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def _started(c, *args):
    """`fleet quick ARGS` on the cluster, running in the background (killed if left)."""
    run = subprocess.Popen(NUMAPROBE + ["fleet", "quick", "--address", c.address, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def _label(p: psutil.Process):
    try:
        return p.environ().get(task.HOST_ENV)
    except psutil.Error:
        return None


def _measuring() -> list[psutil.Process]:
    """The fleet measurements running on this machine."""
    return [p for p in psutil.process_iter() if _label(p)]


def test_every_socket_the_cluster_listens_on_is_loopback(cluster):
    assert _fleet(cluster, "quick", "--budget", "2", timeout=300).returncode == 0  # workers too
    me = psutil.Process()
    seen = []
    for p in [me] + me.children(recursive=True):
        try:
            conns = p.net_connections(kind="inet")
        except psutil.Error:
            continue
        for cn in conns:
            if cn.status == psutil.CONN_LISTEN or (cn.type == 2 and not cn.raddr):
                seen.append((p.name(), cn.laddr.ip, cn.laddr.port))
    assert len(seen) >= 6  # GCS, raylets, agents, workers
    assert all(ip in (LOOPBACK, "::ffff:" + LOOPBACK) for _, ip, _ in seen), seen


def test_fleet_quick_runs_on_every_node_and_singles_out_the_misconfigured_one(
        cluster, tmp_path):
    out = tmp_path / "fleet.json"
    r = _fleet(cluster, "quick", "--budget", "2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = results.load(out)                      # validates against the schema
    res = doc["result"]
    runs = {x["node_id"]: x for x in res["runs"]}
    assert set(runs) == set(_ids(cluster)) == {n.node_id for n in cluster.list_all_nodes()}
    assert all(x["state"] == "ok" for x in runs.values())
    assert all(x["dropped_env"].get("OMP_NUM_THREADS") for x in runs.values())
    assert all(0 <= x["ray_noise"]["fraction"] < 1 for x in runs.values())
    assert res["cluster"]["machines"] == 1 and len(res["hosts"]) == 3
    odd = runs[_ids(cluster)[2]]["host"]
    thp = [s for s in res["settings"] if s["key"] == "thp"]
    assert thp and [d["host"] for d in thp[0]["differ"]] == [odd]
    assert thp[0]["differ"][0]["value"] == "never"
    assert f"THP differs from the fleet's majority" in r.stdout and odd in r.stdout
    assert all(h["documents"][0]["kind"] == "quick" for h in res["hosts"])


def test_a_node_without_numaprobe_is_reported_and_the_others_run(cluster, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    py = str(bare / "bin" / "python")
    assert subprocess.run([py, "-c", "import numaprobe"], capture_output=True).returncode
    node = cluster.add_node(num_cpus=len(os.sched_getaffinity(0)), node_ip_address=LOOPBACK,
                            env_vars={task.PYTHON_ENV: py})
    cluster.wait_for_nodes()
    try:
        other = _ids(cluster)[0]
        r = _fleet(cluster, "quick", "--budget", "2", "--hosts",
                   f"{node.node_id[:12]},{other[:12]}", "--json")
        assert r.returncode == 1, r.stderr
        res = json.loads(r.stdout)["result"]
        runs = {x["node_id"]: x for x in res["runs"]}
        assert set(runs) == {node.node_id, other}
        assert runs[node.node_id]["state"] == "not installed"
        assert "No module named" in runs[node.node_id]["why"]
        assert runs[other]["state"] == "ok" and len(res["hosts"]) == 1
        assert any("not installed" in w for w in json.loads(r.stdout)["warnings"])
    finally:
        cluster.remove_node(node)


def test_a_node_killed_mid_run_is_reported_and_the_rest_kept(cluster, tmp_path):
    node = cluster.add_node(num_cpus=len(os.sched_getaffinity(0)), node_ip_address=LOOPBACK)
    cluster.wait_for_nodes()
    out = tmp_path / "fleet.json"
    keep = _ids(cluster)[0]
    # The label sorts the order; the doomed node's measurement is waited for by its label.
    with _started(cluster, "--budget", "6", "--hosts", f"{node.node_id[:12]},{keep[:12]}",
                  "-o", str(out)) as run:
        deadline = time.monotonic() + 120
        victim = []
        while not victim and time.monotonic() < deadline and run.poll() is None:
            victim = [p for p in _measuring()
                      if (_label(p) or "").endswith(node.node_id[:6])]
            time.sleep(0.1)
        assert victim, "the node's measurement never started"
        time.sleep(1.0)
        cluster.remove_node(node, allow_graceful=False)
        stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, stderr
    res = results.load(out)["result"]
    runs = {x["node_id"]: x for x in res["runs"]}
    assert runs[node.node_id]["state"] == "died", runs[node.node_id]
    assert runs[keep]["state"] == "ok" and len(res["hosts"]) == 1
    assert psutil.wait_procs(victim, timeout=30)[1] == []   # its measurement ended too


def test_past_timeout_a_node_is_stopped_and_ctrl_c_keeps_what_arrived(cluster, tmp_path):
    r = _fleet(cluster, "quick", "--budget", "30", "--timeout", "2", "--hosts",
               _ids(cluster)[1][:12], "--json")
    assert r.returncode == 1, r.stderr
    (x,) = json.loads(r.stdout)["result"]["runs"]
    assert x["state"] == "timed out" and "--timeout 2 s" in x["why"]

    out = tmp_path / "fleet.json"
    with _started(cluster, "--budget", "2", "-o", str(out)) as run:
        _wait_for_second_host(run, time.monotonic() + 120)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    res = results.load(out)["result"]
    states = [x["state"] for x in res["runs"]]
    assert res["interrupted"] and "ok" in states and "cancelled" in states
    assert len(res["hosts"]) == states.count("ok")
    time.sleep(2)
    assert psutil.wait_procs(_measuring(), timeout=30)[1] == []


def _wait_for_second_host(run, deadline) -> None:
    """Until a second host's measurement has started: the first one is done then (the
    nodes share this machine and run one at a time)."""
    labels = set()
    while time.monotonic() < deadline and run.poll() is None:
        labels |= {_label(p) for p in _measuring()} - {None}
        if len(labels) >= 2:
            return
        time.sleep(0.05)
    raise AssertionError("the fleet never reached its second host")


def test_fleet_infer_ships_the_command_and_scales_nxt_to_each_host(cluster, tiny_model):
    usable = len(os.sched_getaffinity(0))
    hosts = ",".join(i[:12] for i in _ids(cluster)[:2])
    r = _fleet(cluster, "infer", "--model", tiny_model, "--layouts", "64x1,one-per-node",
               "--duration", "0.3", "--rounds", "1", "--hosts", hosts, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["result"]
    assert [x["state"] for x in res["runs"]] == ["ok", "ok"]
    for x in res["runs"]:
        assert x["scaled"] == [f"64x1 scaled to {usable}x1: {usable} usable CPUs"]
        assert x["sent"] == []   # the file is on every node (one machine)
    for h in res["hosts"]:
        names = [d["layout"]["name"] for d in h["documents"][0]["result"]["layouts"]]
        assert f"{usable}x1" in " ".join(names) and "one-per-node" in " ".join(names)
        assert h["figures"]["best throughput"] > 0


def test_two_commands_from_zero_to_a_fleet_report_on_this_machine():
    """The README's path: fleet quick --local N starts a loopback cluster, runs, reports,
    and stops it."""
    r = subprocess.run(NUMAPROBE + ["fleet", "quick", "--local", "2", "--budget", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "fleet: 2 hosts" in r.stdout and "2 node(s) of 127.0.0.1:" in r.stdout
    assert "dropped OMP_NUM_THREADS" in r.stdout and "Traceback" not in r.stderr
