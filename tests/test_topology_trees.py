"""numaprobe.topology against captured sysfs/procfs trees of machines this one is not.

Every directory of tests/data/sysfs with an expected.json is a case: read(tree).to_dict() must
equal it. The synthetic shapes (two-socket-smt, epyc-nps4, cxl-hmat, offline-cpus,
cgroup-limited) are written by tests/data/sysfs/make_trees.py, expected.json included, from
each shape's definition; this-vm is a capture of a real machine. On top of the documents, a few
facts per shape through the Topology API, the capture() round trip, and the command line.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from numaprobe import topology

DATA = Path(__file__).resolve().parent / "data" / "sysfs"
TREES = sorted(p.name for p in DATA.iterdir() if (p / "expected.json").is_file())
SHAPES = ("two-socket-smt", "epyc-nps4", "cxl-hmat", "offline-cpus", "cgroup-limited",
          "epyc-2p-nps4")
MiB, GiB = 2**20, 2**30


def _diff(got, want, path="") -> list[str]:
    """Where two JSON documents differ, one line per difference (pytest's dict diff truncates)."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for k in sorted(set(got) | set(want), key=str):
            if k not in got:
                out.append(f"{path}.{k}: missing (expected {want[k]!r})")
            elif k not in want:
                out.append(f"{path}.{k}: not expected (got {got[k]!r})")
            else:
                out += _diff(got[k], want[k], f"{path}.{k}")
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in _diff(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: got {got!r}, expected {want!r}"]


def _read(name: str) -> topology.Topology:
    return topology.read(DATA / name)


def test_the_shapes_are_there():
    missing = [s for s in SHAPES if s not in TREES]
    assert not missing, f"no expected.json in tests/data/sysfs/{missing}: run make_trees.py"


@pytest.mark.parametrize("name", TREES)
def test_tree_reads_as_expected(name):
    want = json.loads((DATA / name / "expected.json").read_text())
    got = topology.read(DATA / name).to_dict()
    differences = _diff(got, want)
    assert not differences, f"{name}:\n  " + "\n  ".join(differences)


def test_trees_are_what_make_trees_writes(tmp_path):
    """The committed trees are exactly the generator's output: change a shape there."""
    spec = importlib.util.spec_from_file_location("make_trees", DATA / "make_trees.py")
    make_trees = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_trees)
    assert tuple(make_trees.SHAPES) == SHAPES
    for name in SHAPES:
        fresh = make_trees.write_shape(tmp_path, name)
        files = lambda root: sorted(  # noqa: E731
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        assert files(DATA / name) == files(fresh), name
        changed = [f for f in files(fresh)
                   if (DATA / name / f).read_bytes() != (fresh / f).read_bytes()]
        assert not changed, f"{name}: differs from make_trees.py's output: {changed[:10]}"


# ------------------------------------------------------------------------------ the shapes

def test_two_socket_smt():
    t = _read("two-socket-smt")
    assert t.packages == (0, 1)
    assert len(t.cores) == 16 and all(len(core) == 2 for core in t.cores)
    assert t.cpu(3).siblings == (3, 19) and t.cpu(19).siblings == (3, 19)
    assert t.cpu(16).package == 0 and t.cpu(24).package == 1
    assert t.node_of(16) == 0 and t.node_of(8) == 1 and t.node_of(31) == 1
    assert t.cpus_of(0) == tuple(range(0, 8)) + tuple(range(16, 24))
    assert t.cpu_nodes == (0, 1) and t.memory_nodes == (0, 1)
    assert t.distance(0, 1) == 21 and t.distance(1, 0) == 21 and t.distance(0, 0) == 10
    assert t.node(0).hugepages[2 * MiB] == {"total": 512, "free": 500}
    assert t.node(0).hugepages[GiB] == {"total": 0, "free": 0}
    assert t.node(1).hugepages[2 * MiB] == {"total": 0, "free": 0}
    l3 = [c for c in t.caches if c.level == 3]
    assert [c.cpus for c in l3] == [t.cpus_of(0), t.cpus_of(1)]
    assert all(c.size == 23040 * 1024 for c in l3)
    l2 = [c for c in t.caches if c.level == 2]
    assert len(l2) == 16 and (5, 21) in [c.cpus for c in l2]
    assert {(c.type, c.size) for c in t.caches if c.level == 1} == {
        ("Data", 48 * 1024), ("Instruction", 32 * 1024)}
    s = t.settings
    assert (s.thp, s.numa_balancing, s.governors, s.smt_active, s.virtualized) == (
        "madvise", 1, ("performance",), True, False)
    assert "constant_tsc" in s.tsc_flags and "nonstop_tsc" in s.tsc_flags
    assert t.allowed.cgroup_version == 1 and t.allowed.cgroup_cpus == tuple(range(32))
    assert t.allowed.cpu_quota is None
    assert t.free_bytes(0) == t.node(0).memory_free + t.node(0).memory_reclaimable
    warnings = t.warnings()
    assert len(warnings) == 1 and "NUMA balancing" in warnings[0]


def test_epyc_nps4():
    t = _read("epyc-nps4")
    assert t.node_ids == (0, 1, 2, 3) and t.packages == (0,)
    assert all(t.cpus_of(n) == tuple(range(8 * n, 8 * n + 8)) for n in range(4))
    assert len(t.cores) == 32 and t.settings.smt_active is False
    l3 = [c.cpus for c in t.caches if c.level == 3]
    assert l3 == [tuple(range(x, x + 4)) for x in range(0, 32, 4)]   # a CCX: 4 cores
    for n in range(4):                                              # 2 CCXs per node
        assert [g for g in l3 if set(g) <= set(t.cpus_of(n))] == l3[2 * n:2 * n + 2]
    assert all(c.size == 32 * MiB for c in t.caches if c.level == 3)
    assert (t.distance(0, 1), t.distance(0, 2), t.distance(2, 3), t.distance(3, 0)) == (
        11, 12, 11, 12)
    s = t.settings
    assert s.governors == ("schedutil",)
    assert any("governor" in w and "schedutil" in w for w in t.warnings())
    assert s.thp == "always"
    # The kernel writes "always defer [defer+madvise] madvise never": the choice is the whole
    # bracketed word.
    assert s.thp_defrag == "defer+madvise"
    assert s.cpu_model == "AMD EPYC 9354 32-Core Processor"


def test_cxl_hmat():
    t = _read("cxl-hmat")
    assert t.cpu_nodes == (0, 1)
    assert t.memory_nodes == (0, 1, 2, 3)
    assert t.node(2).has_cpus is False and t.node(2).cpus == () and t.node(3).cpus == ()
    assert t.node(2).has_memory and t.node(2).memory_total > t.node(0).memory_total
    acc = t.node(2).access["0"]
    assert acc["initiators"] == [0]
    assert (acc["read_latency"], acc["write_latency"]) == (250, 270)
    assert (acc["read_bandwidth"], acc["write_bandwidth"]) == (30000, 25000)
    assert t.node(3).access["0"]["initiators"] == [1]
    assert t.node(3).access["1"] == t.node(3).access["0"]
    local = t.node(0).access["0"]
    assert local["initiators"] == [0] and local["read_latency"] == 100
    assert local["read_bandwidth"] == 80000
    assert (t.distance(0, 2), t.distance(0, 3), t.distance(1, 3), t.distance(2, 3)) == (
        14, 24, 14, 26)
    assert t.usable_mems == (0, 1, 2, 3)
    s = t.settings
    assert s.virtualized is True and s.governors == () and s.numa_balancing == 2
    assert s.clocksource == "kvm-clock"
    summary = t.summary()
    assert "node 2: CPUs none (memory only)" in summary
    assert "HMAT node 2 from node 0: read 250 ns, 30000 MB/s" in summary


def test_offline_cpus():
    t = _read("offline-cpus")
    assert t.offline_cpus == (6, 7)
    assert t.online_cpus == (0, 1, 2, 3, 4, 5)
    assert t.cpus_of(0) == tuple(range(8))                # the node keeps its offline CPUs
    assert t.node_of(6) == 0 and t.node_of(7) == 0
    assert t.cpus_of(0, usable=True) == (0, 1, 2, 3, 4, 5)
    assert t.allowed.cpus == tuple(range(8))              # the affinity mask keeps them too
    assert t.usable_cpus == (0, 1, 2, 3, 4, 5)
    off = t.cpu(6)
    assert (off.online, off.package, off.die, off.core, off.siblings) == (
        False, None, None, None, (6,))
    assert t.cpu(0).siblings == (0, 4) and t.cpu(2).siblings == (2,)
    assert t.cores == ((0, 4), (1, 5), (2,), (3,))
    assert [c.cpus for c in t.caches if c.level == 3] == [(0, 1, 2, 3, 4, 5)]
    assert all(6 not in c.cpus and 7 not in c.cpus for c in t.caches)
    assert t.settings.isolated == (4, 5)
    warnings = t.warnings()
    assert any("offline" in w and "6-7" in w for w in warnings)
    assert any("isolated" in w and "4-5" in w for w in warnings)
    assert not any("NUMA balancing" in w for w in warnings)


def test_cgroup_limited():
    t = _read("cgroup-limited")
    a = t.allowed
    assert a.cpus == (2, 3) and a.mems == (0,)
    assert (a.cgroup, a.cgroup_version) == ("/kubepods/pod1/ctr", 2)
    assert a.cgroup_cpus == (2, 3) and a.cgroup_mems == (0,)
    assert a.cpu_quota == 1.5
    assert t.usable_cpus == (2, 3) and t.usable_mems == (0,)
    assert t.cpus_of(0, usable=True) == (2, 3) and t.cpus_of(1, usable=True) == ()
    assert t.online_cpus == tuple(range(8))
    assert t.distance(0, 1) == 20
    warnings = t.warnings()
    assert any("quota" in w and "1.5" in w for w in warnings)
    assert any("2-3" in w and "cgroup /kubepods/pod1/ctr" in w for w in warnings)


def test_kernel_without_numa(tmp_path):
    """A kernel built without NUMA (micro-VMs) has no node directory: one node 0 holding every
    CPU and the machine's memory, and a warning that says so."""
    import shutil
    tree = tmp_path / "no-numa"
    shutil.copytree(DATA / "this-vm", tree)
    shutil.rmtree(tree / "sys/devices/system/node")
    t = topology.read(tree)
    assert t.numa is False and t.node_ids == (0,)
    assert t.cpus_of(0) == t.online_cpus == (0, 1)
    assert t.node(0).memory_total == 24684084 * 1024 and t.free_bytes(0) == 23933416 * 1024
    assert t.usable_mems == (0,) and t.node_of(1) == 0
    assert any("no NUMA nodes" in w for w in t.warnings())


# ------------------------------------------------------------------------------ capture, CLI

@pytest.mark.parametrize("name", SHAPES)
def test_capture_round_trip(name, tmp_path):
    dest = tmp_path / "captured"
    captured = topology.capture(dest, root=DATA / name)
    original = topology.read(DATA / name).to_dict()
    assert captured.to_dict() == original
    differences = _diff(topology.read(dest).to_dict(), original)
    assert not differences, f"{name}: read(capture) differs:\n  " + "\n  ".join(differences)
    assert json.loads((dest / "expected.json").read_text()) == original


def test_capture_saves_what_it_read_when_files_change(tmp_path, monkeypatch):
    """On a live machine /proc/meminfo changes between two reads: the captured file must be the
    one the returned topology (and expected.json) came from, so read(dest) gives the same."""
    src = DATA / "two-socket-smt"
    meminfo = (src / "proc" / "meminfo").resolve()
    real_read_text, reads = Path.read_text, []

    def changing(self, *args, **kwargs):
        text = real_read_text(self, *args, **kwargs)
        if Path(self).resolve() == meminfo:        # MemAvailable grows 4 kB at every read
            reads.append(1)
            old = next(l for l in text.splitlines() if l.startswith("MemAvailable:"))
            kb = int(old.split()[1]) + 4 * len(reads)
            text = text.replace(old, f"{'MemAvailable:':<16}{kb:>8} kB")
        return text

    monkeypatch.setattr(Path, "read_text", changing)
    captured = topology.capture(tmp_path / "captured", root=src)
    monkeypatch.undo()
    assert reads, "the reader did not read proc/meminfo through Path.read_text"
    again = topology.read(tmp_path / "captured")
    assert again.memory_available == captured.memory_available, (
        f"proc/meminfo was read {len(reads)} times; the captured file is not the one the "
        "captured topology came from")
    expected = json.loads((tmp_path / "captured" / "expected.json").read_text())
    assert again.to_dict() == expected


@pytest.mark.parametrize("name, shows", [
    ("two-socket-smt", ["Intel(R) Xeon(R) Gold 6434: 2 packages, 16 cores, 32 online "
                        "CPUs, 2 NUMA nodes",
                        "node 0: CPUs 0-7,16-23", "2 MiB pages 500/512 free",
                        "warning: automatic NUMA balancing is on"]),
    ("cxl-hmat", ["[virtual machine]", "node 3: CPUs none (memory only)",
                  "HMAT node 3 from node 1: read 250 ns, 30000 MB/s"]),
    ("offline-cpus", ["warning: CPUs 6-7 are offline", "warning: CPUs 4-5 are isolated"]),
    ("cgroup-limited", ["CPU quota 1.5", "warning: cgroup CPU quota is 1.5 CPUs"]),
])
def test_command_line(name, shows, tmp_path):
    tree = str(DATA / name)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "numaprobe", "topology", "--root", tree, *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    text = run()
    assert text.returncode == 0, text.stderr
    for line in shows:
        assert line in text.stdout, f"{line!r} not in:\n{text.stdout}"
    doc = run("--json")
    assert doc.returncode == 0, doc.stderr
    assert json.loads(doc.stdout)["result"] == topology.read(tree).to_dict()
