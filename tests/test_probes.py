"""The probes on this machine: correctness, not speed. Kernels touch the bytes they claim,
chains are one cycle through every line, threads run where they were pinned, results carry
their metadata, bad input is refused."""
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import numaprobe
from numaprobe import _core, probes
from numaprobe.probes import detect_levels, sweep_sizes

MiB = 1 << 20


@pytest.mark.parametrize("group", [0, 4096, 2 << 20])
def test_chain_is_one_cycle_through_every_line(group):
    with numaprobe.alloc(8 * MiB, node=0) as mem:
        _core.chase_build(mem.address, mem.nbytes, 64, group, 123)
        assert _core.chase_cycle_length(mem.address, mem.nbytes // 64 + 1) == mem.nbytes // 64
        # Every line's pointer stays inside the buffer and is line-aligned.
        ptrs = np.frombuffer(mem, dtype=np.uint64)[::8].copy()
        assert ptrs.min() >= mem.address and ptrs.max() < mem.address + mem.nbytes
        assert (ptrs % 64 == 0).all()
        assert len(np.unique(ptrs)) == mem.nbytes // 64  # a permutation


def test_tlb_local_chain_stays_in_its_group():
    with numaprobe.alloc(4 * MiB, node=0) as mem:
        _core.chase_build(mem.address, mem.nbytes, 64, 64 * 1024, 5)
        ptrs = np.frombuffer(mem, dtype=np.uint64)[::8] - mem.address  # a new array
        group_of_line = np.arange(len(ptrs)) * 64 // (64 * 1024)
        group_of_next = ptrs // (64 * 1024)
        # Only the last line visited in each group leaves it: one exit per group.
        assert (group_of_line != group_of_next).sum() == mem.nbytes // (64 * 1024)


@pytest.mark.parametrize("isa", _core.isa_supported())
@pytest.mark.parametrize("kernel", list(probes.KERNELS))
def test_bandwidth_kernels_touch_every_byte(kernel, isa, topo):
    n = 64 * 1024
    cpus = list(topo.usable_cpus[:2])
    mems = [[numaprobe.alloc(n * 8, node=0) for _ in range(3)] for _ in cpus]
    try:
        arrs = [[np.frombuffer(m, dtype=np.float64, count=n) for m in g] for g in mems]
        for a, b, c in arrs:
            a[:] = -1.0
            b[:] = np.arange(n)
            c[:] = 2.0
        reps = 3
        t0, t1, sums, ran_on = _core.bw_run(
            cpus, kernel, isa, n, [g[0].address for g in mems], [g[1].address for g in mems],
            [g[2].address for g in mems], reps)
        assert ran_on == cpus
        assert len(t0) == reps and all(e > s for r in range(reps) for s, e in zip(t0[r], t1[r]))
        _check_arrays(kernel, arrs, sums, float(reps), n)
        del arrs, a, b, c  # views must go before the memory is closed
    finally:
        for g in mems:
            for m in g:
                m.close()


def test_bandwidth_kernels_are_the_c_table():
    """One list of kernels: the C core's table; Python's KERNELS and bw_run's names are built
    from it, with the bytes and streams of each entry."""
    from numaprobe.probes import _bandwidth
    table = _core.bw_kernels()
    assert [k["name"] for k in table] == list(probes.KERNELS) == list(_core.BW_KERNELS)
    assert [_core.BW_KERNELS[k["name"]] for k in table] == list(range(len(table)))
    for k in table:
        kern = probes.KERNELS[k["name"]]
        assert (kern.reads, kern.writes, kern.nt, kern.doc, kern.streams, kern.bytes) == (
            k["reads"], k["writes"], k["nt"], k["doc"], k["streams"], k["bytes"])
        assert kern.program_bytes(64) == 64 * k["bytes"] == 8 * 64 * k["streams"]
    assert probes.KERNELS["triad_nt"].nt and probes.KERNELS["triad"].reads == 2
    assert probes.KERNELS["read"].allocate_bytes(64) == 0
    assert probes.KERNELS["copy"].allocate_bytes(64) == 8 * 64  # the destination read first
    assert _bandwidth.KERNELS is probes.KERNELS


def test_team_errors_name_the_call_that_failed():
    """A thread that cannot be pinned fails the run with the errno of the system call and its
    name, the CPU and the kernel it served, not only the wrapper's name."""
    import errno
    bad = 100000  # beyond any machine's CPUs: sched_setaffinity says EINVAL
    with numaprobe.alloc(1 * MiB, node=0) as mem:
        _core.chase_build(mem.address, mem.nbytes // 2, 64, 0, 1)
        line = mem.address + mem.nbytes // 2
        calls = [lambda: _core.bw_run([0, bad], "read", "scalar", 64, [line, line + 4096]),
                 lambda: _core.c2c_run(0, bad, line, 10),
                 lambda: _core.loaded_run([0, bad], mem.address, 1 << 10, 1, [line], 64)]
        for call, wrapper in zip(calls, ("bw_run", "c2c_run", "loaded_run")):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.EINVAL
            assert e.value.strerror.endswith(f"(sched_setaffinity for CPU {bad} in {wrapper})")
        with pytest.raises(OSError, match=r"\(bw_run\)$"):  # the kernel's own argument check
            _core.bw_run([0], "copy", "scalar", 64, [line])


def _check_arrays(kernel, arrs, sums, s, n):
    """s: the last repetition's scalar, 1.0 + (reps - 1)."""
    for (a, b, c), total in zip(arrs, sums):
        expected = {"read": -np.ones(n), "write": np.full(n, s), "write_nt": np.full(n, s),
                    "copy": b, "copy_nt": b, "triad": b + s * c, "triad_nt": b + s * c}[kernel]
        np.testing.assert_array_equal(a, expected)
        if kernel == "read":
            assert total == -n


def test_latency_result_metadata(topo):
    r = probes.latency(0, 0, size=32 * MiB, samples=3)
    assert r.cpu in topo.cpus_of(0) and r.cpu_node == 0 and r.mem_node == 0
    assert r.loads >= 10**6 and r.ns.n == 3 and r.ns.min > 0
    assert r.pages["per_node"] == {"0": r.pages["nbytes"] // r.pages["page_size"]} or \
        sum(r.pages["per_node"].values()) > 0
    assert set(r.pages["per_node"]) == {"0"}
    d = r.to_dict()
    assert d["chain"] == "tlb-local" and d["ns"]["unit"] == "ns" and len(d["ns"]["samples"]) == 3


def test_chase_thread_runs_where_pinned(topo):
    with numaprobe.alloc(MiB, node=0) as mem:
        _core.chase_build(mem.address, mem.nbytes)
        for cpu in topo.usable_cpus:
            _, _, _, ran_on = _core.loaded_run([cpu], mem.address, 1 << 12, 2)
            assert ran_on == [cpu]


def test_matrices_cover_every_cell(topo):
    lat = probes.latency_matrix(size=16 * MiB, samples=2, loads=1 << 16)
    assert set(lat.cells) == {(a, b) for a in topo.cpu_nodes for b in topo.usable_mems}
    assert "idle latency" in lat.table()
    bw = probes.bandwidth_matrix("triad", size=4 * MiB, reps=3)
    cell = bw.cells[(0, 0)]
    assert cell.gbs.n == 3 and cell.gbs.min > 0 and cell.cpus == topo.cpus_of(0, usable=True)
    assert cell.allocate_gbs > 0  # regular stores read the destination first
    assert probes.bandwidth(0, 0, "copy_nt", size=4 * MiB, reps=2).allocate_gbs == 0
    peak = probes.peak_bandwidth(size=4 * MiB, reps=2)
    assert peak.cpus == topo.usable_cpus and peak.checksum_ok


def test_auto_isa_is_the_fastest_of_a_trial():
    widths = _core.isa_supported()
    auto = probes.bandwidth(0, 0, "triad", size=4 * MiB, reps=2)
    if len(widths) == 1:
        assert auto.isa == widths[0] and auto.isa_trials is None
        return
    assert set(auto.isa_trials) == set(widths) and min(auto.isa_trials.values()) > 0
    assert auto.isa == max(auto.isa_trials, key=auto.isa_trials.get)
    assert auto.to_dict()["isa_trials"] == auto.isa_trials and auto.gbs.n == 2
    asked = probes.bandwidth(0, 0, "triad", isa="scalar", size=4 * MiB, reps=2)
    assert asked.isa == "scalar" and asked.isa_trials is None
    assert "isa_trials" not in asked.to_dict()


def test_c2c_pairs_and_loaded_curve(topo):
    if len(topo.usable_cpus) < 2:
        pytest.skip("needs two CPUs")
    m = probes.c2c_matrix(rounds=2000, samples=2)
    assert set(m.ns) == set(itertools.combinations(topo.usable_cpus, 2))
    assert all(s.min > 0 for s in m.ns.values())
    assert m.summary()["pairs"] == len(m.ns)
    curve = probes.loaded_latency(delays=(100, 0), size=16 * MiB, traffic_size=4 * MiB,
                                  samples=2, loads=1 << 20)
    assert [p["delay"] for p in curve.points] == [100, 0]
    assert curve.traffic_cpus and curve.points[-1]["gbs"] > 0


def test_detect_levels_on_known_curves():
    KiB = 1024
    # Three cache levels and DRAM, with a transition point between L2 and L3.
    curve = [(4, 1.1), (16, 1.1), (32, 1.2), (64, 4.0), (256, 4.2), (512, 5.5), (1024, 9.0),
             (2048, 14.0), (4096, 15.0), (8192, 17.0), (16384, 95.0), (65536, 100.0)]
    levels = detect_levels([(s * KiB, ns) for s, ns in curve], [32 * KiB, 512 * KiB, 16384 * KiB])
    assert [lv.name for lv in levels] == ["L1", "L2", "L3", "DRAM"]
    assert [lv.effective_size for lv in levels[:3]] == [32 * KiB, 512 * KiB, 8192 * KiB]
    assert levels[2].reported_size == 16384 * KiB and levels[3].ns == pytest.approx(97.5, abs=3)
    # A lone spike (a preempted point) does not make a level.
    spiked = [(s, ns) for s, ns in curve]
    spiked[1] = (16, 25.0)
    assert [lv.name for lv in detect_levels([(s * KiB, ns) for s, ns in spiked])] == \
        ["L1", "L2", "L3", "DRAM"]
    # A burst over two sizes that falls back is noise too.
    burst = [(s, ns) for s, ns in curve]
    burst[1:3] = [(16, 3.3), (32, 3.4)]
    burst.insert(3, (48, 1.1))
    assert [lv.name for lv in detect_levels([(s * KiB, ns) for s, ns in burst])] == \
        ["L1", "L2", "L3", "DRAM"]
    # A flat curve is one level.
    assert [lv.name for lv in detect_levels([(s, 2.0) for s in (4096, 8192, 16384)])] == ["L1"]
    assert sweep_sizes(4096, 65536, 2) == [4096, 5760, 8192, 11584, 16384, 23168, 32768, 46336, 65536]


# One sweep of this VM (bench/latency_levels.py, 2026-11-27): L3 hits fade out between 6 and
# 64 MiB, and two transition sizes (5.9 and 7.1 MiB) sit between L3 and memory.
VM_SWEEP = [(4096, 1.09), (4864, 1.1), (5760, 1.08), (6848, 1.08), (8192, 1.08), (9728, 1.09),
            (11584, 1.09), (13760, 1.09), (16384, 1.09), (19456, 1.09), (23168, 1.13),
            (27520, 1.08), (32768, 1.25), (38912, 3.89), (46336, 3.93), (55104, 4.18),
            (65536, 3.86), (77888, 3.85), (92672, 3.84), (110208, 3.84), (131072, 3.87),
            (155840, 3.84), (185344, 3.85), (220352, 3.86), (262144, 3.95), (311680, 4.61),
            (370688, 4.35), (440832, 4.61), (524288, 4.86), (623424, 5.04), (741504, 5.91),
            (881792, 7.33), (1048576, 8.87), (1246784, 10.64), (1482688, 11.85),
            (1763712, 12.37), (2097152, 12.96), (2493504, 13.88), (2965376, 14.28),
            (3527424, 15.66), (4194304, 16.09), (4988096, 17.55), (5931776, 64.38),
            (7053760, 53.71), (8388608, 127.13), (9976128, 120.77), (11859392, 123.0),
            (14103360, 134.07), (16777216, 137.99), (19954432, 142.42), (23729280, 148.25),
            (28217152, 157.91), (33554432, 156.49), (39898304, 159.35), (47448064, 164.77),
            (56434368, 164.45), (67108864, 163.19), (79807104, 161.14), (94906624, 161.7),
            (112826752, 161.23), (134217728, 165.18), (159593280, 166.89), (189792256, 165.49),
            (225758400, 157.89), (268435456, 160.45)]


def test_detect_levels_on_a_real_sweep():
    """Transitions shorter than an octave make no level of their own, and memory's latency
    comes from the top octave, not from sizes where the L3 still hits."""
    levels = detect_levels(VM_SWEEP, [32 << 10, 1 << 20, 32 << 20])
    assert [lv.name for lv in levels] == ["L1", "L2", "L3", "DRAM"]
    assert [lv.effective_size for lv in levels[:3]] == [32768, 741504, 4988096]
    assert levels[3].ns == pytest.approx(165.18)   # median of 128-256 MiB, not of 5.9-256 MiB
    assert levels[2].ns == pytest.approx(12.96)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: probes.latency(0, 9), ValueError, r"node 9 does not exist"),
    (lambda: probes.latency(0, 0, size=64), ValueError, r"at least 128 bytes"),
    (lambda: probes.latency(0, 0, size=1 << 50), MemoryError, r"available"),
    (lambda: probes.latency(0, 0, samples=0), ValueError, r"samples"),
    (lambda: probes.latency(0, 0, chain="zigzag"), ValueError, r"chains: tlb-local, random"),
    (lambda: probes.bandwidth(0, 0, threads=0), ValueError, r"threads must be"),
    (lambda: probes.bandwidth(0, 0, threads=4096), ValueError, r"usable CPU\(s\); asked for 4096"),
    (lambda: probes.bandwidth(0, 0, "stream"), ValueError, r"kernels: read, write"),
    (lambda: probes.bandwidth(0, 0, isa="sve"), ValueError, r"it runs: scalar"),
    (lambda: probes.c2c_matrix([0]), ValueError, r"two CPUs or more"),
    (lambda: probes.c2c_matrix([0, 4096]), ValueError, r"CPU 4096 does not exist"),
])
def test_bad_probe_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "numaprobe", *args], capture_output=True,
                          text=True, timeout=300)


def test_probe_subcommands_json():
    r = cli("latency", "--size", "16M", "--samples", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["cells"][0]["ns"]["n"] == 2
    r = cli("bandwidth", "--kernel", "copy", "--size", "8M", "--reps", "2", "--json")
    assert json.loads(r.stdout)["result"]["kernel"] == "copy"
    r = cli("c2c", "--rounds", "1000", "--samples", "2", "--json")
    assert r.returncode == 0 and "summary" in json.loads(r.stdout)["result"]
    r = cli("loaded-latency", "--size", "16M", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["result"]["points"]) > 2
    r = cli("bandwidth", "--threads-sweep", "--size", "4M", "--reps", "2", "--json")
    usable = numaprobe.read_topology().cpus_of(0, usable=True)
    assert [len(x["cpus"]) for x in json.loads(r.stdout)["result"]["runs"]] == list(range(1, len(usable) + 1))
    r = cli("latency", "--sweep", "--size", "1M", "--samples", "1")
    assert r.returncode == 0 and "levels found" in r.stdout


@pytest.mark.parametrize("args, match", [
    (["latency", "--mem-nodes", "7"], "node 7 does not exist"),
    (["latency", "--size", "32"], "at least 128 bytes"),
    (["latency", "--size", "1000T"], "available"),
    (["latency", "--size", "lots"], "cannot read size"),
    (["bandwidth", "--threads", "0"], "--threads: expected a whole number from 1"),
    (["bandwidth", "--threads", "999"], "asked for 999 threads"),
    (["c2c", "--cpus", "0"], "two CPUs or more"),
])
def test_probe_bad_input_cli(args, match):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert match in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_repeat_pools_runs_and_finds_levels_on_the_pooled_curve():
    calls = []

    def sweep():
        calls.append(1)
        return probes.latency_sweep(0, 0, hi=64 << 10, samples=1, loads=1 << 16)

    merged = probes.repeat(sweep, 3)
    assert len(calls) == 3
    assert all(len(ns.runs) == 3 and ns.n == 3 for _, ns in merged.points)
    from numaprobe.probes._latency import _reported
    reported = _reported(numaprobe.read_topology(), merged.cpu)
    assert merged.levels == tuple(detect_levels(merged.points, reported))
    with pytest.raises(ValueError, match="repeat must be a whole number >= 1"):
        probes.repeat(sweep, 0)
    assert len(calls) == 3   # refused before measuring


# ------------------------------------------------------------------------------- progress

class _Terminal(__import__("io").StringIO):
    def isatty(self):
        return True


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(monkeypatch):
    """DESIGN: long runs show progress, plain lines when stderr is not a terminal (a log):
    at most one line every few seconds, none for a run shorter than that."""
    import io
    import time
    from numaprobe.probes import _common
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = _common.Progress(4, "latency")
    for k, dt in enumerate((20, 1, 20, 20)):  # the second step comes too soon for a line
        now[0] += dt
        bar.step(f"cell {k}")
    bar.close()
    assert log.getvalue().splitlines() == ["latency 1/4 ~60 s left: cell 0",
                                           "latency 3/4 ~14 s left: cell 2", "latency 4/4: cell 3"]
    short, log2 = _common.Progress(3, "bandwidth"), io.StringIO()
    monkeypatch.setattr(sys, "stderr", log2)
    for k in range(3):  # a run of seconds: nothing in the log
        now[0] += 0.5
        short.step()
    short.close()
    assert log2.getvalue() == ""
    quiet, log3 = _common.Progress(1, "x", enabled=False), io.StringIO()
    monkeypatch.setattr(sys, "stderr", log3)
    now[0] += 60
    quiet.step()
    assert log3.getvalue() == ""

    # On a terminal: one line rewritten in place, every step, cleared at the end.
    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    live = _common.Progress(2, "c2c")
    now[0] += 1
    live.step("0-1")
    live.close()
    assert tty.getvalue().startswith("\rc2c 1/2 ~1 s left: 0-1") and tty.getvalue().endswith("\r")
    assert "\n" not in tty.getvalue()


def test_infer_and_probes_share_one_progress(monkeypatch):
    import io
    import time
    from numaprobe import progress
    from numaprobe.probes import _common
    from numaprobe.workload import infer
    assert _common.Progress is progress.Progress and infer.Progress is progress.Progress
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress.Progress(60, seconds=True)  # infer: the expected run time, phases by name
    for dt, what in ((0, "round 1/2: naive"), (12, "round 1/2: naive: measuring 10 s"),
                     (1, "round 1/2: naive: measuring 10 s"), (20, "round 2/2: naive")):
        now[0] += dt
        bar.update(what)
    bar.close()
    assert log.getvalue().splitlines() == ["round 1/2: naive: measuring 10 s (about 48 s left)",
                                           "round 2/2: naive (about 27 s left)"]


def test_a_loaded_latency_curve_that_falls_is_flagged():
    from numaprobe.probes import LoadedCurve
    from numaprobe.stats import summarize
    pts = tuple({"delay": d, "latency": summarize([ns], "ns"), "gbs": g}
                for d, ns, g in ((400, 120.0, 1.0), (0, 100.0, 30.0)))
    words = LoadedCurve(0, 0, 1, (0,), pts).warnings()
    assert len(words) == 1 and "falls as traffic rises" in words[0]
    rising = tuple(dict(p, latency=summarize([120.0 + p["gbs"]], "ns")) for p in pts)
    assert LoadedCurve(0, 0, 1, (0,), rising).warnings() == []
