"""Perturbation (infer --perturb): where the load may run, what the rounds say about each load
(on literal rounds, so the verdicts are known), the words and what they mean together with
the roofline (diagnose.bottleneck); and, for real on this machine, the load generator itself
and one short perturbed layout."""
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import numaprobe
from numaprobe import _core, clock
from numaprobe.errors import UsageError
from numaprobe.probes._loaded import Background
from numaprobe.workload import diagnose, infer, models, perturb
from numaprobe.topology import parse_list
from numaprobe.workload.layout import parse_layout

TREES = Path(__file__).resolve().parent / "data" / "sysfs"
TWO = numaprobe.read_topology(TREES / "two-socket-smt")


def _lay(*instances):
    return {"name": "x", "instances": [{"cpus": c, "policy": "bind" if n else None,
                                        "nodes": n} for c, n in instances]}


def test_the_load_runs_on_free_cpus_of_the_node_then_on_another_then_nowhere():
    cpus, node, note = perturb.free_cpus(_lay(("0-3", "0")), TWO)
    assert node == 0 and note is None
    assert cpus == [4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]
    # All of node 0 taken: node 1's CPUs read node 0, and the note says it crosses.
    cpus, node, note = perturb.free_cpus(_lay(("0-7,16-23", "0")), TWO)
    assert node == 0 and cpus == list(range(8, 16)) + list(range(24, 32))
    assert "node 0 has no free CPU" in note and "across the interconnect" in note
    # Memory bound elsewhere than the CPUs: the load reads the bound node.
    cpus, node, _ = perturb.free_cpus(_lay(("0-3", "1")), TWO)
    assert node == 1 and cpus[0] == 8
    cpus, node, note = perturb.free_cpus(_lay(("0-15", "0"), ("16-31", "1")), TWO)
    assert cpus == [] and note.startswith("no free CPU: not measured")


def _rounds(base, ratios, gbs):
    return [{"throughput": b, "gbs": 0.0} for b in base], [
        {"throughput": b * r, "gbs": gbs} for b, r in zip(base, ratios)]


def _summary(traffic_ratio, cache_ratio, light_ratio=1.0, seed=0):
    rng = np.random.default_rng(seed)
    base = 100 * np.exp(rng.normal(0, 0.03, 5))  # rounds that vary 3 % together
    jitter = lambda: np.exp(rng.normal(0, 0.005, 5))
    none, light = _rounds(base, light_ratio * jitter(), 2.0)
    _, full = _rounds(base, traffic_ratio * jitter(), 8.0)
    _, cache = _rounds(base, cache_ratio * jitter(), 1.5)
    return perturb.summarize({"none": none, "traffic, light": light, "traffic, full": full,
                              "cache": cache}, cpus=[1], node=0, note=None)


def test_a_memory_bound_layout_loses_to_traffic_and_the_loss_is_per_gbs():
    s = _summary(traffic_ratio=0.8, cache_ratio=1.0)
    loads = {d["load"]: d for d in s["loads"]}
    full = loads["traffic, full"]
    assert full["verdict"] == "slower" and full["ratio"][0] == pytest.approx(0.8, abs=0.01)
    # (1 - 0.8) / 8 GB/s = 2.5 % per GB/s, its interval around it
    point, lo, hi = full["loss_per_gbs"]
    assert point == pytest.approx(0.025, abs=0.002) and lo < point < hi
    assert loads["cache"]["verdict"] == "no significant change"
    assert "loss_per_gbs" not in loads["cache"]
    assert s["words"].startswith("sensitive to memory bandwidth")
    assert "traffic, full at 8.0 GB/s: 20 %" in s["words"]
    assert "load on CPU 1 reading node 0" in s["words"]


def test_a_layout_in_cache_loses_to_the_chase_and_a_compute_bound_one_to_nothing():
    s = _summary(traffic_ratio=1.0, cache_ratio=0.85)
    assert s["words"].startswith("sensitive to the last-level cache")
    s = _summary(traffic_ratio=1.0, cache_ratio=1.0)
    assert s["words"].startswith("insensitive to memory traffic and cache pressure")
    assert all(d["verdict"] == "no significant change" for d in s["loads"])
    assert "could detect changes of" in s["words"]


def test_a_small_loss_is_not_called_sensitive():
    # 3 % slower, significantly: a verdict, but below the 5 % worth a word on the bound
    s = _summary(traffic_ratio=0.97, cache_ratio=1.0)
    full = {d["load"]: d for d in s["loads"]}["traffic, full"]
    assert full["verdict"] == "slower"
    assert s["words"].startswith("no clear dependence")


def _entry(bound, traffic_verdict, traffic_ratio=(0.8, 0.75, 0.85), cache_verdict=None):
    loads = [{"load": "traffic, full", "kind": "traffic", "gbs": 8.0, "ratio": list(traffic_ratio),
              "verdict": traffic_verdict, "detail": "could detect changes of 4 % or more"}]
    if cache_verdict:
        loads.append({"load": "cache", "kind": "cache", "gbs": 1.0, "ratio": [0.85, 0.8, 0.9],
                      "verdict": cache_verdict, "detail": ""})
    return {"roofline": {"bound": bound},
            "perturbation": {"measured": True, "loads": loads},
            "profile": {"families": {"MatMul": {"share": 0.82, "ops_per_s": 9.5e10},
                                     "Add": {"share": 0.1}}}}


@pytest.mark.parametrize("bound, verdict, start", [
    ("memory", "slower", "memory-bound, and the perturbation confirms it: traffic, full "
                         "(8.0 GB/s) cost 20 % [15, 25]"),
    ("memory", "no significant change", "the roofline says memory-bound, but"),
    ("compute", "no significant change", "compute-bound, and the perturbation agrees"),
    ("compute", "slower", "the roofline says compute-bound, yet traffic, full"),
    ("neither", "slower", "no ceiling is near, yet"),
    ("neither", "no significant change", "no ceiling is near and memory traffic changed "
                                         "nothing"),
])
def test_the_bottleneck_says_whether_the_perturbation_confirms_the_roofline(bound, verdict,
                                                                            start):
    lines = diagnose.bottleneck(_entry(bound, verdict))
    assert lines[0].startswith(start)
    assert lines[-1] == ("MatMul takes 82 % of the kernel time at 95 G op/s: that op type is "
                         "where a faster kernel, precision or layout pays")


def test_the_bottleneck_names_the_cache_and_a_layout_not_measured():
    lines = diagnose.bottleneck(_entry("neither", "no significant change",
                                       cache_verdict="slower"))
    assert lines[0].startswith("cache (1.0 GB/s) cost 15 %")
    lines = diagnose.bottleneck({"perturbation": {"measured": False, "why": "no free CPU: x"}})
    assert lines == ["perturbation: no free CPU: x"]
    assert diagnose.bottleneck({}) == []


def test_the_load_generator_reads_and_chases_and_stops_when_told(topo):
    with pytest.raises(UsageError, match="unknown load 'disk'; loads: traffic, cache"):
        Background([0], 0, kind="disk", topology=topo)
    with pytest.raises(UsageError, match="needs at least one CPU"):
        Background([], 0, topology=topo)
    cpu, node = topo.usable_cpus[-1], topo.usable_mems[0]
    for kind in ("traffic", "cache"):
        t0 = time.monotonic()
        with Background([cpu], node, kind=kind, topology=topo) as load:
            time.sleep(0.2)
        assert time.monotonic() - t0 < 30  # stopped by the block's end, not by MAX_S
        assert 0.15 < load.seconds < 30 and load.gbs > 0.01, (kind, load.seconds, load.gbs)
    assert not [t for t in threading.enumerate() if t.name == "numaprobe-load"]


def test_load_run_ends_by_its_deadline_and_refuses_bad_arguments(topo):
    flag = _core.StopFlag()
    with pytest.raises(ValueError, match="one buffer or chain per CPU"):
        _core.load_run([0, 0], flag, 1000, bufs=[None])
    with pytest.raises(ValueError, match="max_ticks must be positive"):
        _core.load_run([0], flag, 0, bufs=[None])
    with pytest.raises(OSError):  # a traffic member without a buffer: EINVAL from C
        _core.load_run([0], flag, 1000, bufs=[None], n=64)
    buf = np.zeros(1 << 16)
    ticks = int(0.05e9 * clock.get().ticks_per_ns)
    nbytes, ran, ran_on = _core.load_run([topo.usable_cpus[0]], flag, ticks,
                                         bufs=[buf.ctypes.data], n=buf.size, delay=0)
    assert ran >= ticks and nbytes[0] > 0 and nbytes[0] % 512 == 0
    assert ran_on == [topo.usable_cpus[0]] and not flag.is_set


def test_infer_perturb_measures_a_layout_with_a_free_cpu_and_says_why_not_for_naive(
        topo, tiny_model):
    one = parse_layout("1x1", topo)
    doc = infer.run_infer(models.resolve(tiny_model), [parse_layout("naive", topo), one],
                          duration=0.2, rounds=3, warmup=1, perturb=True, progress=False)
    by = {d["layout"]["name"]: d for d in doc["layouts"]}
    naive = by["naive"]["perturbation"]
    assert naive["measured"] is False and naive["why"].startswith("no free CPU")
    assert by["naive"]["bottleneck"] == [f"perturbation: {naive['why']}"]
    p = by["1x1"]["perturbation"]
    if len(topo.usable_cpus) < 2:
        assert p["measured"] is False
        return
    assert p["measured"] and p["rounds"] == perturb.ROUNDS
    assert [d["load"] for d in p["loads"]] == [n for n, _, _ in perturb.LOADS]
    assert all(len(d["rounds"]) == perturb.ROUNDS and all(x > 0 for x in d["rounds"])
               for d in p["loads"])
    assert all(d["gbs"] > 0 for d in p["loads"])
    assert p["cpus"] and set(p["cpus"]).isdisjoint(
        parse_list(by["1x1"]["layout"]["instances"][0]["cpus"]))
    text = infer.table(doc)
    assert f"perturbation ({perturb.ROUNDS} rounds, not compared): " in text
