"""numaprobe.system, the one reader of /sys and /proc: its parsers on literal text captured from
real kernels, its live readers against a fake /proc, the rule that a redirected description
($NUMAPROBE_SYSFS_ROOT) never redirects a live read, and placement's kept description (read
once, read again after a refused call)."""
import errno
import os
import shutil
from pathlib import Path

import pytest

from numaprobe import _core, placement, system, topology
from numaprobe.noise import NoiseMeter, _cpu_times, _own_jiffies
from numaprobe.workload import telemetry

DATA = Path(__file__).resolve().parent / "data" / "sysfs"
MiB = 1 << 20


# ------------------------------------------------------------------------------ /proc/stat

STAT = """\
cpu  10132153 290696 3084719 46828483 16683 0 25195 1703 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 800 88000 0
cpu1 1335190 49035 524337 13268815 4004 0 2811 903 87628 0
intr 199292441 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 374546063
btime 1700000000
processes 1020403
procs_running 2
procs_blocked 0
softirq 58049102 0 6812104 3 1745011 0 0 4185024 18113614 0 27193346
"""


def test_parse_stat_per_cpu_fields():
    times = system.parse_stat(STAT)
    assert set(times) == {0, 1}  # the all-CPU line is not a CPU
    c0 = times[0]
    assert (c0.user, c0.nice, c0.system, c0.idle, c0.iowait, c0.irq, c0.softirq, c0.steal,
            c0.guest, c0.guest_nice) == (1393280, 32966, 572056, 13343292, 6130, 0, 17875,
                                         800, 88000, 0)


def test_busy_excludes_steal_and_guest():
    c0 = system.parse_stat(STAT)[0]
    # guest time is already inside user; steal is the hypervisor's, not this machine's work.
    assert c0.busy == 1393280 + 32966 + 572056 + 0 + 17875
    assert c0.idle_all == 13343292 + 6130
    assert c0.total == c0.busy + c0.idle_all + 800


def test_parse_stat_old_kernel_without_steal():
    # Linux 2.6.9 wrote seven fields: no steal, no guest.
    c = system.parse_stat("cpu0 100 2 30 400 5 6 7\n")[0]
    assert (c.steal, c.guest) == (0, 0) and c.busy == 145 and c.total == 550


def test_cpu_times_subtract():
    a = system.parse_stat("cpu3 100 0 50 1000 0 0 0 10 0 0\n")[3]
    b = system.parse_stat("cpu3 160 0 70 1100 0 0 0 30 0 0\n")[3]
    d = b - a
    assert (d.busy, d.steal, d.total) == (80, 20, 200)


# --------------------------------------------------------------------- /proc/PID files

PID_STAT = ("4242 (tricky) name) S 1 4242 4242 0 -1 4194560 31337 120 2 0 "
            "1500 250 7 3 20 0 9 0 1234567 1048576000 51200 18446744073709551615\n")

STATUS = """\
Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
Threads:\t9
Cpus_allowed:\tff
Cpus_allowed_list:\t0-3,6-7
Mems_allowed:\t00000000,00000001
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t1520
nonvoluntary_ctxt_switches:\t33
"""

SCHEDSTAT = "812345678 2345678 901\n"

SCHED = """\
python3 (4242, #threads: 9)
-------------------------------------------------------------------
se.exec_start                                :      98765432.123456
se.vruntime                                  :          1234.567890
se.sum_exec_runtime                          :           812.345678
se.nr_migrations                             :                   57
nr_switches                                  :                 1553
"""


def test_parse_pid_stat_command_with_parenthesis():
    s = system.parse_pid_stat(PID_STAT)
    assert s == {"minflt": 31337, "majflt": 2, "utime": 1500, "stime": 250,
                 "cutime": 7, "cstime": 3}


def test_parse_status():
    s = system.parse_status(STATUS)
    assert s["Cpus_allowed_list"] == "0-3,6-7" and s["Mems_allowed_list"] == "0"
    assert s["State"] == "S (sleeping)" and s["voluntary_ctxt_switches"] == "1520"


def test_parse_schedstat_and_sched():
    assert system.parse_schedstat(SCHEDSTAT) == (812345678, 2345678, 901)
    s = system.parse_sched(SCHED)
    assert s["se.nr_migrations"] == "57" and s["nr_switches"] == "1553"
    assert "python3" not in s  # the header is not a field


NUMA_MAPS = """\
55d0c0a00000 default file=/usr/bin/python3.11 mapped=250 active=0 N0=250 kernelpagesize_kB=4
55d0c2b3e000 default heap anon=9000 dirty=9000 active=8000 N0=6000 N1=3000 kernelpagesize_kB=4
7f2a00000000 bind:1 anon=64 dirty=64 N1=64 kernelpagesize_kB=2048
7f2a40000000 default
7f2b10000000 default file=/usr/lib/libc.so.6 anon=2 dirty=2 mapped=300 N0=302 kernelpagesize_kB=4
7ffd1a2f0000 default stack anon=33 dirty=33 N0=33 kernelpagesize_kB=4
"""


def test_parse_numa_maps_counts_anonymous_memory_only():
    assert system.parse_numa_maps(NUMA_MAPS) == {
        0: (6000 + 33) * 4096,
        1: 3000 * 4096 + 64 * 2 * MiB}


NUMASTAT = """\
numa_hit 2726623
numa_miss 12
numa_foreign 0
interleave_hit 1174
local_node 2726600
other_node 35
"""


def test_parse_numastat():
    assert system.parse_numastat(NUMASTAT) == {
        "numa_hit": 2726623, "numa_miss": 12, "numa_foreign": 0, "interleave_hit": 1174,
        "local_node": 2726600, "other_node": 35}


SMAPS = """\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                4096 kB
AnonHugePages:      2048 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
VmFlags: rd wr mr mw me ac sd hg
7f0000400000-7f0000800000 rw-p 00000000 00:0f 1234                       /anon_hugepage (deleted)
Size:               4096 kB
KernelPageSize:     2048 kB
MMUPageSize:        2048 kB
Rss:                   0 kB
AnonHugePages:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:    4096 kB
VmFlags: rd wr mr mw me de ht sd
7f0000800000-7f0000801000 rw-p 00000000 00:00 0
Size:                  4 kB
KernelPageSize:        4 kB
AnonHugePages:         0 kB
"""


def test_parse_smaps_sums_the_overlapping_mappings():
    base = 0x7f0000000000
    assert system.parse_smaps(SMAPS, base, 4 * MiB) == (4096, 2 * MiB)           # THP only
    assert system.parse_smaps(SMAPS, base + 4 * MiB, 4 * MiB) == (2 * MiB, 4 * MiB)  # hugetlb
    assert system.parse_smaps(SMAPS, base + MiB, 4 * MiB) == (2 * MiB, 6 * MiB)     # both
    assert system.parse_smaps(SMAPS, 0x1000, 4096) == (0, 0)                        # none
    assert system.parse_smaps(SMAPS.splitlines(True), base, 4 * MiB) == (4096, 2 * MiB)


# -------------------------------------------------------------- live readers, fake /proc

def _fake_proc(root: Path, threads: dict, pid: str = "42") -> Path:
    """A /proc with one process: ``threads`` maps tid -> its sched text (None: no file, as
    on a kernel without CONFIG_SCHED_DEBUG)."""
    proc = root / "proc" / pid
    proc.mkdir(parents=True)
    (proc / "stat").write_text(PID_STAT)
    for tid, sched in threads.items():
        task = proc / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "status").write_text(STATUS)
        (task / "comm").write_text(f"worker-{tid}\n")
        (task / "schedstat").write_text(SCHEDSTAT)
        if sched is not None:
            (task / "sched").write_text(sched)
    return root


def test_migrations_counted_when_the_first_thread_has_no_sched_file(tmp_path):
    """The defect: a thread whose sched file could not be read set the count to None, and the
    next thread's migrations were then added to None (TypeError)."""
    root = _fake_proc(tmp_path, {101: None, 102: SCHED, 103: SCHED})
    c = telemetry.process_counters("42", root=root)
    assert c["migrations"] == 2 * 57
    assert c["voluntary_switches"] == 3 * 1520 and c["involuntary_switches"] == 3 * 33
    assert c["cpu_s"] == (1500 + 250) / system.HZ and c["minor_faults"] == 31337


def test_migrations_none_where_the_kernel_does_not_count_them(tmp_path):
    root = _fake_proc(tmp_path, {101: None, 102: None})
    assert telemetry.process_counters("42", root=root)["migrations"] is None


def test_thread_readers_on_a_fake_proc(tmp_path):
    root = _fake_proc(tmp_path, {7: SCHED, 12: SCHED})
    assert system.tasks("42", root=root) == [7, 12]
    assert system.threads("42", root=root) == [
        {"tid": 7, "name": "worker-7", "cpus": "0-3,6-7"},
        {"tid": 12, "name": "worker-12", "cpus": "0-3,6-7"}]
    assert telemetry.thread_cpu_ns("42", root=root) == {7: 812345678, 12: 812345678}


def _machine_root(root: Path, stat: str, numastat: dict) -> Path:
    (root / "proc").mkdir(parents=True)
    (root / "proc/stat").write_text(stat)
    for n, text in numastat.items():
        d = root / f"sys/devices/system/node/node{n}"
        d.mkdir(parents=True)
        (d / "numastat").write_text(text)
    return root


def test_telemetry_reports_steal_apart_from_busy(tmp_path):
    before = _machine_root(tmp_path / "a", "cpu0 100 0 50 1000 0 0 0 10 0 0\n"
                                           "cpu1 100 0 50 1000 0 0 0 10 0 0\n",
                           {0: "numa_hit 10\nnuma_miss 1\nlocal_node 10\nother_node 1\n"})
    after = _machine_root(tmp_path / "b", "cpu0 160 0 70 1100 0 0 0 30 0 0\n"
                                          "cpu1 100 0 50 1200 0 0 0 10 0 0\n",
                          {0: "numa_hit 25\nnuma_miss 3\nlocal_node 24\nother_node 4\n"})
    m = telemetry.Machine.now(root=after).since(telemetry.Machine.now(root=before), 2.0)
    assert m["cpu_utilisation"] == {"0": 80 / 200, "1": 0.0}
    assert m["busy_cpu_s"] == 80 / system.HZ and m["steal_cpu_s"] == 20 / system.HZ
    assert m["numastat"] == {"0": {"numa_hit": 15, "numa_miss": 2, "local_node": 14,
                                   "other_node": 3}}


def test_noise_uses_the_same_rule(monkeypatch):
    answers = iter([system.parse_stat("cpu0 100 0 50 1000 0 0 0 10 0 0\n"
                                      "cpu1 100 0 50 1000 0 0 0 10 0 0\n"),
                    system.parse_stat("cpu0 160 0 70 1100 0 0 0 30 0 0\n"
                                      "cpu1 130 0 50 1200 0 0 0 10 0 0\n")])
    monkeypatch.setattr(system, "cpu_times", lambda root=system.LIVE: next(answers))
    own = iter([{"utime": 0, "stime": 0, "cutime": 0, "cstime": 0},
                {"utime": 40, "stime": 0, "cutime": 0, "cstime": 0}])
    monkeypatch.setattr(system, "pid_stat", lambda *a, **k: next(own))
    with NoiseMeter([0, 1]) as m:
        pass
    n = m.result
    assert n.steal == 20 / system.HZ            # cpu0's steal, reported on its own
    assert n.foreign == (80 + 30 - 40) / system.HZ  # busy without steal, less our own
    assert n.own == 40 / system.HZ


# ------------------------------------------------- the description root vs live reads

def _stale_tree(tmp_path: Path) -> Path:
    """A captured description with stale live files in it: a live reader that followed
    $NUMAPROBE_SYSFS_ROOT would find these."""
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "two-socket-smt", tree)
    (tree / "proc/stat").write_text("cpu  1 0 0 0 0 0 0 0 0 0\ncpu999 1 0 0 0 0 0 0 0 0 0\n")
    (tree / "proc/self/stat").write_text(PID_STAT.replace("31337", "999999999")
                                         .replace(" 1500 ", " 999999999 "))
    task = tree / "proc/self/task/999999"
    task.mkdir(parents=True)
    (task / "status").write_text(STATUS)
    (task / "comm").write_text("stale\n")
    for n in (0, 1):
        (tree / f"sys/devices/system/node/node{n}/numastat").write_text("numa_hit 1\nnuma_miss 1\n")
    return tree


def test_redirected_description_leaves_live_reads_on_the_real_system(tmp_path, monkeypatch):
    tree = _stale_tree(tmp_path)
    monkeypatch.setenv("NUMAPROBE_SYSFS_ROOT", str(tree))
    topology.forget()
    try:
        # The description did move: this is the captured two-socket machine.
        assert topology.current().node_ids == (0, 1) and len(topology.current().cpus) == 32

        threads = system.threads()
        assert 999999 not in [t["tid"] for t in threads]
        me = next(t for t in threads if t["tid"] == _core.gettid())
        assert me["cpus"] == topology.format_list(_core.affinity_get(0))

        times = system.cpu_times()
        assert 999 not in times and len(times) == os.cpu_count()
        assert _cpu_times(list(times))[0] > 1

        assert system.pid_stat()["utime"] < 999999999 and _own_jiffies() < 999999999
        assert telemetry.process_counters()["minor_faults"] < 999999999
        real_nodes = {int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*")}
        numa = telemetry.Machine.now().numa
        assert set(numa) == real_nodes
        assert all(d["numa_hit"] != 1 for d in numa.values())
    finally:
        topology.forget()


# --------------------------------------------------- placement's kept description

@pytest.fixture
def reads(monkeypatch):
    """Every path the description reader reads or lists, in order."""
    seen = []
    text, listing = system.FS.text, system.FS.list

    def counting_text(self, rel):
        seen.append(rel.lstrip("/"))
        return text(self, rel)

    def counting_list(self, rel, pattern):
        seen.append(rel.lstrip("/"))
        return listing(self, rel, pattern)

    monkeypatch.setattr(system.FS, "text", counting_text)
    monkeypatch.setattr(system.FS, "list", counting_list)
    monkeypatch.delenv("NUMAPROBE_SYSFS_ROOT", raising=False)
    topology.forget()
    yield seen
    topology.forget()


def _sysfs(reads):
    return [r for r in reads if r.startswith("sys/")]


def test_second_pin_does_not_read_sysfs(reads):
    before = _core.affinity_get(0)
    cpu = max(before)
    try:
        placement.pin([cpu])
        assert _sysfs(reads), "the first pin() read no description: the counter is broken"
        reads.clear()
        placement.pin([cpu])
        placement.pin([cpu], process=True)
        assert _sysfs(reads) == []
        assert "proc/self/status" in reads  # what this process may use is read every time
    finally:
        placement.pin(before, process=True)


def test_alloc_reads_only_the_memory_it_checks(reads):
    with placement.alloc(MiB, node=0):
        pass
    reads.clear()
    with placement.alloc(MiB, node=0):
        pass
    assert "proc/meminfo" in reads
    assert all(r.startswith("sys/devices/system/node/node0/") for r in _sysfs(reads)), reads


def test_refused_call_reads_the_description_again(tmp_path, monkeypatch, reads):
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "two-socket-smt", tree)
    monkeypatch.setenv("NUMAPROBE_SYSFS_ROOT", str(tree))
    assert 3 in topology.current().online_cpus
    (tree / "sys/devices/system/cpu/online").write_text("0-2,4-31\n")  # CPU 3 goes offline
    assert 3 in topology.current().online_cpus  # kept: not read again

    def refuse(cpus, tid=0):
        raise OSError(errno.EINVAL, "Invalid argument (sched_setaffinity)")

    monkeypatch.setattr(placement._core, "affinity_set", refuse)
    with pytest.raises(ValueError, match=r"CPU 3 is offline; online CPUs: 0-2,4-31") as e:
        placement.pin([3])
    assert isinstance(e.value.__cause__, OSError)
    assert 3 not in topology.current().online_cpus

    # A refusal the fresh description cannot explain stays the kernel's error, and the
    # description is read again all the same.
    reads.clear()
    with pytest.raises(OSError, match="sched_setaffinity"):
        placement.pin([4])
    assert "sys/devices/system/cpu/online" in reads


def test_given_topology_is_used_as_is(reads):
    two = topology.read(DATA / "two-socket-smt")
    reads.clear()
    assert placement.check_cpus([17], two) == (17,)
    assert topology.current(two) is two and reads == []


def test_a_stale_no_is_checked_against_the_machine_again(tmp_path, monkeypatch):
    """A kept description that says a CPU is offline while it is back online (seen in the VM
    suite: a test took a CPU offline and brought it back) must not refuse it: a no is read
    again before it is said, also when the kept description is handed down explicitly."""
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "two-socket-smt", tree)
    monkeypatch.setenv("NUMAPROBE_SYSFS_ROOT", str(tree))
    online = tree / "sys/devices/system/cpu/online"
    online.write_text("0-2,4-31\n")                      # CPU 3 offline
    kept = topology.current(refresh=True)
    assert 3 not in kept.online_cpus
    online.write_text("0-31\n")                          # and back
    assert placement.check_cpus([3]) == (3,)
    assert placement.check_cpus([3], kept) == (3,)       # handed down: the same root, read again
    online.write_text("0-2,4-31\n")                      # a no that holds stays a no
    with pytest.raises(ValueError, match="CPU 3 is offline"):
        placement.check_cpus([3], kept)
    other = topology.read(DATA / "two-socket-smt")       # another root: used as it is
    assert placement.check_nodes([1], other) == (1,)
