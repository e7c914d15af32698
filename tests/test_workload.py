"""The inference driver: layout planning on captured topologies, workers that pin themselves
and refuse escaped threads, the load modes, the fault paths (a killed worker, Ctrl-C) with
partial results kept and no orphans, and bad input."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import workers_alive

import numaprobe
from numaprobe.workload import driver
from numaprobe.workload.infer import analyse_sweep, run_infer, sweep_layouts
from numaprobe.workload.layout import Instance, Layout, parse_layout

TREES = Path(__file__).parent / "data" / "sysfs"


def tree(name):
    return numaprobe.read_topology(TREES / name)


# ------------------------------------------------------------------------ layout planning

def test_presets_on_two_sockets():
    t = tree("two-socket-smt")
    one = parse_layout("one-per-node", t)
    assert [(i.cpus, i.nodes, i.intra) for i in one.instances] == [
        (tuple(range(0, 8)) + tuple(range(16, 24)), (0,), 16),
        (tuple(range(8, 16)) + tuple(range(24, 32)), (1,), 16)]
    cores = parse_layout("cores-per-instance=2", t)
    assert len(cores.instances) == 8
    assert cores.instances[0].cpus == (0, 1, 16, 17)  # SMT siblings stay together
    assert all(i.nodes == (t.node_of(i.cpus[0]),) for i in cores.instances)
    remote = parse_layout("remote-memory", t)
    assert remote.instances[0].nodes == (1,) and t.node_of(remote.instances[0].cpus[0]) == 0
    inter = parse_layout("interleave", t)
    assert inter.instances[0].policy == "interleave" and inter.instances[0].nodes == (0, 1)
    naive = parse_layout("naive", t)
    assert naive.instances[0].intra == 0 and not naive.instances[0].pin
    two = parse_layout("2x4@1", t)
    assert [i.cpus for i in two.instances] == [(8, 9, 10, 11), (12, 13, 14, 15)]


def test_memory_only_nodes_and_cgroups():
    cxl = tree("cxl-hmat")
    one = parse_layout("one-per-node", cxl)
    assert len(one.instances) == 2  # CPU-less nodes hold no instance
    far = parse_layout("remote-memory", cxl).instances[0].nodes
    assert far == (3,)  # the farthest memory from node 0 by SLIT
    limited = tree("cgroup-limited")
    layout = parse_layout("cores-per-instance=1", limited)
    assert [i.cpus for i in layout.instances] == [(2,), (3,)]


@pytest.mark.parametrize("spec, match", [
    ("4x1", r"needs 4 CPUs in groups of 1"),
    ("remote-memory", r"needs a second node with memory"),
    ("cores-per-instance=3", r"no node has 3 usable cores"),
    ("fastest", r"unknown layout 'fastest'; layouts: naive, one-per-node"),
    ("0x1", r"must be >= 1"),
])
def test_layouts_the_machine_cannot_hold(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_layout(spec, tree("this-vm"))


def test_overlap_and_oversubscription_refused_unless_forced(tmp_path):
    t = tree("this-vm")
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"instances": [{"cpus": "0-1", "intra": 2}, {"cpus": "1", "intra": 1}]}))
    with pytest.raises(ValueError, match="share CPU 1: overlapping"):
        parse_layout(str(f), t)
    assert len(parse_layout(str(f), t, force=True).instances) == 2
    f.write_text(json.dumps({"instances": [{"cpus": "0", "intra": 4}]}))
    with pytest.raises(ValueError, match="4 threads on 1 CPU"):
        parse_layout(str(f), t)
    f.write_text(json.dumps({"instances": [{"cpus": "0", "speed": 9}]}))
    with pytest.raises(ValueError, match="unknown key"):
        parse_layout(str(f), t)


# ------------------------------------------------------------------------- real workers

@pytest.mark.parametrize("mode", ["closed", "single", "poisson"])
def test_modes_measure_and_pin(tiny_model, topo, mode):
    layout = parse_layout("cores-per-instance=1", topo)
    n = len(layout.instances)  # one per core: 2 here, 16 or more elsewhere
    run = driver.run_layout(tiny_model, layout, mode=mode, duration=1.0, rate=100 * n)
    assert not run.partial and len(run.instances) == n
    for i in run.instances:
        assert i.count > 10 and (i.latency_ns > 0).all()
        assert i.counters["cpu_s"] > 0 and i.memory  # telemetry came back
        assert i.counters["minor_faults"] >= 0 and i.counters["voluntary_switches"] >= 0
        if mode == "closed":  # back to back: its one intra-op thread ran all the time
            assert 1 <= i.busy_threads <= i.threads
    if mode == "poisson":  # about 100/s offered to each instance for one second
        assert 40 * n < sum(i.count for i in run.instances) < 200 * n
    assert not workers_alive()


def test_escaped_thread_is_refused(tiny_model, topo):
    # ONNX Runtime's default pool ignores the process mask and pins its own threads:
    # a 1-CPU instance with default threads must be refused, naming the thread.
    if len(topo.usable_cpus) < 2:
        pytest.skip("needs two CPUs")
    layout = Layout("escape", (Instance(cpus=(topo.usable_cpus[0],), policy=None, intra=0),))
    with pytest.raises(driver.WorkerFailed, match=r"thread \d+ .* outside the instance's CPUs"):
        driver.run_layout(tiny_model, layout, duration=1.0)
    assert not workers_alive()


def test_killed_worker_keeps_partial_results(tiny_model, topo):
    layout = parse_layout("cores-per-instance=1", topo)
    me = psutil.Process()

    import threading
    killer = []

    def kill_worker_0():
        time.sleep(1.0)  # one second into the measured window
        kids = [p for p in me.children() if "numaprobe.workload.worker" in " ".join(p.cmdline())]
        kids[0].send_signal(signal.SIGKILL)

    def progress(what, frac):  # the driver reports its phases; kill once measuring began
        if "measuring" in what and not killer:
            killer.append(threading.Thread(target=kill_worker_0))
            killer[0].start()

    with pytest.raises(driver.WorkerFailed, match=r"worker 0 .* was killed by SIGKILL") as e:
        driver.run_layout(tiny_model, layout, duration=6.0, progress=progress)
    killer[0].join()
    partial = e.value.partial
    assert partial is not None and partial.failures
    survivors = [i for i in partial.instances if i.index != 0]
    assert survivors and survivors[0].partial and survivors[0].count > 0
    assert not workers_alive()


# A worker that says it is ready, then, half a second into the window, writes a line that is
# not JSON (as a library printing to stdout would) and waits to be ended.
_BABBLER = """
import json, sys, time
json.loads(sys.stdin.readline())
print(json.dumps({"event": "ready", "pid": 0, "threads": []}), flush=True)
sys.stdin.readline()
time.sleep(0.5)
print("Segmentation fault in libfoo: " + "x" * 500, flush=True)
time.sleep(60)
"""


def test_non_json_line_fails_that_worker_and_keeps_the_rest(tiny_model, topo, monkeypatch):
    layout = parse_layout("cores-per-instance=1", topo)
    if len(layout.instances) < 2:
        pytest.skip("needs two cores")
    real_spawn, fakes = driver._spawn, []

    def spawn(cfg, log, topology):
        if cfg["index"] != 1:
            return real_spawn(cfg, log, topology)
        p = subprocess.Popen([sys.executable, "-c", _BABBLER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
                             start_new_session=True)
        p.stdin.write(json.dumps(cfg) + "\n")
        p.stdin.flush()
        fakes.append(p)
        return p

    monkeypatch.setattr(driver, "_spawn", spawn)
    cpus = numaprobe.format_list(layout.instances[1].cpus)
    with pytest.raises(driver.WorkerFailed) as e:
        driver.run_layout(tiny_model, layout, duration=5.0)
    message = str(e.value)
    assert message.startswith(f"worker 1 (CPUs {cpus}) ") and "not a JSON message" in message
    assert "'Segmentation fault in libfoo: xxx" in message and message.endswith("...")
    assert len(message) < 200
    partial = e.value.partial
    assert partial is not None and partial.failures == [message]
    kept = [i for i in partial.instances if i.index == 0]
    assert kept and kept[0].partial and kept[0].count > 0  # what worker 0 measured is kept
    assert fakes[0].poll() is not None and not workers_alive()  # the others were ended


def test_ctrl_c_writes_what_was_measured(tiny_model, tmp_path):
    out = tmp_path / "partial.json"
    p = subprocess.Popen([sys.executable, "-m", "numaprobe", "infer", "--model", tiny_model,
                          "--layouts", "cores-per-instance=1", "--duration", "30", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    doc = json.loads(out.read_text())["result"]
    assert doc["partial"] and doc["error"].startswith("interrupted")
    assert doc["layouts"][0]["latency"]["count"] > 0
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not workers_alive()


def test_infer_compares_layouts(tiny_model, topo):
    layouts = [parse_layout(s, topo) for s in ("naive", "cores-per-instance=1")]
    from numaprobe.workload import models
    ref = models.resolve(tiny_model)
    doc = run_infer(ref, layouts, duration=1.0, rounds=3)
    a, b = doc["layouts"]
    assert "vs_first" not in a and b["vs_first"]["verdict"] in (
        "faster", "slower", "no significant change", "noisy: rerun")
    assert b["vs_first"]["comparison"]["n"] == 3 and len(b["rounds"]) == 3
    assert a["throughput"]["interval_from"] == "rounds" == a["latency"]["interval_from"]
    assert doc["stopped"] == {"rounds": 3, "why": "the 3 round(s) asked for"}
    lo, hi = a["throughput"]["ci"]
    assert lo <= a["throughput"]["per_s"] * 1.5 and hi >= lo
    assert a["latency"]["p50"]["ci"][0] <= a["latency"]["p50"]["ms"] <= a["latency"]["p50"]["ci"][1]
    assert len(b["instances"]) == 3 * len(layouts[1].instances)  # three rounds
    per = b["instances"][0]["per_inference"]
    assert per["cpu_s"] > 0 and "minor_faults" in per and "involuntary_switches" in per
    assert 0 < b["instances"][0]["cpu_utilisation"] <= 1.5
    sw = analyse_sweep({"layouts": [a, b]})
    assert sw["best_throughput"] in ("naive", "cores-per-instance=1")


def test_sweep_layouts_cover_the_cpus(topo):
    names = [l.name for l in sweep_layouts(topo)]
    n = len(topo.usable_cpus)
    assert names[0] == "1x1" and f"1x{n}" in names and f"{n}x1" in names


@pytest.mark.parametrize("args, match", [
    (["--model", "/nonexistent.onnx"], "no such model file"),
    (["--layouts", "9x9"], "needs 81 CPUs"),
    (["--mode", "poisson"], "needs a target rate"),
    (["--dim", "seq"], "--dim takes NAME=N"),
])
def test_bad_infer_input(args, match, tiny_model):
    r = subprocess.run([sys.executable, "-m", "numaprobe", "infer", "--duration", "1", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    import re
    assert re.search(match, r.stderr, re.I), r.stderr


def test_invalid_model_file_and_missing_dim(tmp_path, tiny_model):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = subprocess.run([sys.executable, "-m", "numaprobe", "infer", "--model", str(bad)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not an ONNX model" in r.stderr


# ------------------------------------------------------------------------------ diagnoses

def _worker(index, cpus, intra, *, threads, busy, migrations=0, window_s=1.0, count=100):
    from numaprobe.workload.driver import InstanceRun
    import numpy as np
    inst = {"cpus": cpus, "nodes": "0", "policy": "bind", "intra": intra, "spin": True}
    return InstanceRun(index=index, instance=inst, latency_ns=np.full(count, 1000),
                       start_offset_ns=np.zeros(count), window_ns=int(window_s * 1e9),
                       counters={"migrations": migrations, "voluntary_switches": 0,
                                 "involuntary_switches": 0, "cpu_s": 1.0},
                       memory={"0": 1 << 20}, threads=threads, partial=False, busy_threads=busy)


def _run(instances, mode="closed"):
    from types import SimpleNamespace
    return SimpleNamespace(instances=instances, mode=mode, noise=None, machine={})


def test_diagnose_judges_each_worker_once_over_rounds():
    """Two rounds of a 1x2 layout on two CPUs: two busy threads, not four (a merged run holds
    every worker once per round), and one line per worker."""
    from numaprobe.workload.diagnose import diagnose
    t = tree("this-vm")
    rounds = [_worker(0, "0-1", 2, threads=5, busy=2, migrations=150) for _ in range(2)]
    assert diagnose(_run(rounds), t) == ["threads of worker 0 migrated 150 times per second "
                                         "(not pinned: caches are lost on every move)"]


def test_diagnose_counts_busy_threads_not_idle_pools():
    """A BLAS pool that sleeps does not oversubscribe; ONNX Runtime's own pool beyond the mask
    does, and the document says so."""
    from numaprobe.workload.diagnose import diagnose
    t = tree("this-vm")
    idle_blas = [_worker(0, "0-1", 0, threads=34, busy=2)]
    assert diagnose(_run(idle_blas), t) == []
    too_many = [_worker(0, "0-1", 0, threads=34, busy=4)]
    assert diagnose(_run(too_many), t) == [
        "worker 0: 4 busy threads on 2 CPU(s): ONNX Runtime sized its own pool, beyond the CPU mask",
        "4 busy threads on 2 usable CPUs: oversubscribed"]
    # Documents from before busy_threads existed: ONNX Runtime's thread count stands in.
    old = [_worker(0, "0", 1, threads=9, busy=None), _worker(1, "1", 2, threads=9, busy=None)]
    assert diagnose(_run(old), t) == ["worker 1: 2 busy threads on 1 CPU(s)",
                                      "3 busy threads on 2 usable CPUs: oversubscribed"]
    assert diagnose(_run(old, mode="single"), t) == ["worker 1: 2 busy threads on 1 CPU(s)"]


def test_rounds_document_and_baseline_are_declared():
    """What infer hangs on runs and errors is declared: LayoutRun.rounds, the exceptions'
    ``document``, and the comparison with the first layout from the per-round figures of the
    summaries (not a dict key '_lat')."""
    import dataclasses
    import numpy as np
    from numaprobe.workload import infer
    t = tree("this-vm")
    layout = parse_layout("cores-per-instance=1", t)

    def run(ns):
        inst = [_worker(k, numaprobe.format_list(i.cpus), 1, threads=3, busy=1)
                for k, i in enumerate(layout.instances)]
        for i in inst:  # 100 inferences of ns each, spread over the 1 s window
            i.latency_ns, i.start_offset_ns = np.full(100, ns), np.arange(100) * 10_000_000
        return driver.LayoutRun(layout=layout, mode="closed", duration=1.0, instances=inst,
                                machine={}, noise=None)

    assert "rounds" in {f.name for f in dataclasses.fields(driver.LayoutRun)}
    assert run(1000).rounds == []
    merged = infer._combine([run(1000), run(1000)])
    assert len(merged.rounds) == 2 and len(merged.instances) == 2 * len(layout.instances)
    first = infer.summarize_run(infer._combine([run(1000)] * 3), t)
    assert not any(k.startswith("_") for k in first)
    slower = infer.summarize_run(infer._combine([run(2000)] * 3), t)
    vs = infer.versus_first([first, slower], "single")[0]          # p50 is what single is about
    assert vs["p50_ratio"][0] == pytest.approx(2.0) and vs["figure"] == "p50_ms"
    vs = infer.versus_first([first, slower], "closed")[0]
    assert vs["throughput_ratio"][0] == pytest.approx(1.0) and vs["figure"] == "throughput"

    e = driver.WorkerFailed("worker 0 died", document={"kind": "infer"})
    assert e.document == {"kind": "infer"} and e.partial is None
    assert driver.WorkerFailed("x").document is None
    assert driver.Interrupted(document={"kind": "infer"}).document == {"kind": "infer"}
    assert driver.Interrupted().document is None


def test_busy_threads_counts_running_threads_only():
    import threading
    from numaprobe.workload import telemetry
    stop = threading.Event()
    sleeper = threading.Thread(target=stop.wait)
    sleeper.start()
    before, t0 = telemetry.thread_cpu_ns(), time.monotonic_ns()

    def spin():
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.3)
    after, window = telemetry.thread_cpu_ns(), time.monotonic_ns() - t0
    stop.set()
    spinner.join()
    sleeper.join()
    assert len(after) >= 3   # this thread, the sleeper, the spinner
    assert telemetry.busy_threads(before, after, window) == 1


def _layout_rounds(name, throughputs):
    return {"layout": {"name": name, "instances": [{}]}, "cpus": 1,
            "throughput": {"per_s": sum(throughputs) / len(throughputs)},
            "latency": {"p50": {"ms": 1.0, "ci": [0.9, 1.1]}, "p99": {"ms": 2.0, "ci": [1.8, 2.2]}},
            "rounds": [{"throughput": x, "p50_ms": 1000 / x, "p90_ms": None, "p99_ms": None,
                        "noise": 0.0} for x in throughputs]}


def test_implausible_results_are_flagged_not_ranked():
    from numaprobe.workload import infer
    steady = _layout_rounds("a", [100, 101, 99, 100, 102, 98, 100, 101])
    modes = _layout_rounds("b", [100, 80, 101, 79, 100, 81, 99, 80])       # two speeds
    words = infer.implausible([steady, modes], "closed")
    assert any(w.startswith("b: its rounds fall into two groups") for w in words)
    assert any(w.startswith("the best layout changed between rounds (a in 7 of 8, b in 1 of 8)")
               for w in words)
    assert infer.implausible([steady, _layout_rounds("c", [90, 91, 89, 90, 92, 88, 90, 91])],
                             "closed") == []
    # sweep: more than 100 % scaling efficiency means the 1x1 reference ran slow
    one = _layout_rounds("1x1", [50, 50, 50])
    two = dict(_layout_rounds("2x1", [120, 121, 119]), cpus=2)
    two["layout"] = {"name": "2x1", "instances": [{}, {}]}
    sw = analyse_sweep({"layouts": [one, two]})
    assert any(w.startswith("2x1: scaling efficiency 120 %") for w in sw["warnings"])


def test_verdicts_within_a_document_follow_the_rounds():
    """Fewer than 3 rounds: not established; a clear difference over 10 rounds: faster; the
    same rounds again: no significant change with what it could have detected; a noisy round
    on either side: noisy: rerun."""
    from numaprobe.workload import infer
    base = [100, 102, 98, 101, 99, 100, 103, 97, 100, 101]
    a = _layout_rounds("a", base)
    two = infer.versus_first([_layout_rounds("a", base[:2]), _layout_rounds("b", base[:2])],
                             "closed")[0]
    assert two["verdict"] == "not established" and "rounds" in two["detail"]
    fast = infer.versus_first([a, _layout_rounds("b", [x * 1.3 for x in base])], "closed")[0]
    assert fast["verdict"] == "faster" and fast["throughput_ratio"][0] == pytest.approx(1.3)
    same = _layout_rounds("b", [x * f for x, f in zip(base, (1.01, .99, 1.0, 1.02, .98, 1.0,
                                                              1.01, .99, 1.0, 1.0))])
    vs = infer.versus_first([a, same], "closed")[0]
    assert vs["verdict"] == "no significant change" and "could detect" in vs["detail"]
    loud = _layout_rounds("b", [x * 1.3 for x in base])
    loud["rounds"][3]["noise"] = 0.12
    assert infer.versus_first([a, loud], "closed")[0]["verdict"] == "noisy: rerun"


def test_target_effect_adds_rounds_until_resolved_or_capped(tiny_model, monkeypatch):
    """--target-effect keeps adding rounds until every comparison with the first layout
    could detect the effect, or --max-rounds; the document says which ended it. The rounds
    come from a stand-in driver whose throughput has a known 3 % round-to-round spread."""
    import numpy as np
    from numaprobe.workload import infer, models
    t = tree("this-vm")
    layouts = [parse_layout(s, t) for s in ("1x1", "cores-per-instance=1")]
    rng = np.random.default_rng(7)
    calls = []

    def fake_run_layout(model, layout, **kw):
        calls.append(layout.name)
        count = int(100 * rng.lognormal(0, 0.03))
        inst = [_worker(k, numaprobe.format_list(i.cpus), 1, threads=3, busy=1, count=count)
                for k, i in enumerate(layout.instances)]
        return driver.LayoutRun(layout=layout, mode="closed", duration=1.0, instances=inst,
                                machine={}, noise=None)
    monkeypatch.setattr(infer.driver, "run_layout", fake_run_layout)
    ref = models.resolve(tiny_model)
    doc = run_infer(ref, layouts, duration=1.0, rounds=3, target_effect=0.03, max_rounds=40,
                    topology=t)
    n = doc["stopped"]["rounds"]
    assert 3 < n < 40 and doc["stopped"]["why"].startswith("every comparison could detect 3 %")
    assert len(calls) == 2 * n and calls[:4] == ["1x1", "cores-per-instance=1",
                                                 "cores-per-instance=1", "1x1"]  # rotated
    assert doc["layouts"][1]["vs_first"]["comparison"]["mde"] <= 0.03
    assert f"stopped after {n} round(s): every comparison could detect 3 %" in infer.table(doc)
    capped = run_infer(ref, layouts, duration=1.0, rounds=3, target_effect=0.001, max_rounds=5,
                       topology=t)
    assert capped["stopped"]["rounds"] == 5 and "--max-rounds 5 reached" in capped["stopped"]["why"]


def test_rounds_that_measured_nothing_leave_no_crash_and_say_so():
    """A round where a layout finished no inference (Ctrl-C in its first round, a duration
    shorter than one inference) has no ratio: the comparison says how many rounds each side
    ran, the text and the HTML render, and the layout is flagged."""
    from numaprobe.workload import infer
    a = _layout_rounds("a", [100.0])
    b = _layout_rounds("b", [100.0])
    b["rounds"][0].update(throughput=0.0, p50_ms=None)
    vs = infer.versus_first([a, b], "closed")[0]
    assert vs["verdict"] == "not established" and vs["throughput_ratio"][0] is None
    assert "0 round(s) with a figure on both sides (a ran 1, b 1)" in vs["detail"]
    assert any("b: 1 of 1 round(s) measured nothing" in w for w in infer.implausible([a, b], "closed"))
    b["vs_first"] = vs
    doc = {"model": {"name": "m"}, "asked": {"mode": "closed", "duration": 1, "rounds": 1},
           "layouts": [dict(x, description="x: y", diagnoses=[], failures=[],
                            cpu_s_per_inference=None,
                            throughput=dict(x["throughput"], ci=[1.0, 2.0]))
                       for x in (a, b)]}
    text = infer.table(doc)
    assert "vs first: not established" in text
    assert "not established" in infer._html_infer(doc, "infer")


def test_an_interrupted_sweep_is_still_a_sweep(tiny_model, tmp_path, monkeypatch, capsys):
    """Ctrl-C during a sweep: what was measured is printed and written as a sweep document
    (with its analysis) that loads again, not a KeyError and a file compare refuses."""
    import copy
    from numaprobe import cli as cli_mod, results
    from numaprobe.workload import infer
    measured = json.loads((Path(__file__).parent / "data" / "documents" / "v1" /
                           "sweep.json").read_text())["result"]
    del measured["sweep"]
    measured["warnings"] = []  # as run_infer returns it (the CLI moves them to the document)

    def interrupted(*a, **kw):
        raise driver.Interrupted(document=copy.deepcopy(measured))
    monkeypatch.setattr(infer, "run_infer", interrupted)
    out = tmp_path / "partial.json"
    assert cli_mod.main(["sweep", "--model", tiny_model, "-q", "-o", str(out)]) == 130
    captured = capsys.readouterr()
    assert "best for throughput" in captured.out and "what was measured is above" in captured.err
    doc = results.load(out)
    assert doc["kind"] == "sweep" and doc["result"]["sweep"]["curve"]
