"""Real system calls on this machine: allocation with every policy and page size on node 0,
every page's node checked; pinning and binding restored; bad input refused without leaks."""
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import numaprobe
from numaprobe import _core, placement

TREES = Path(__file__).parent / "data" / "sysfs"
MiB = 1 << 20


def thread_status(key):
    text = Path(f"/proc/self/task/{_core.gettid()}/status").read_text()
    return re.search(rf"^{key}:\s*(\S+)", text, re.M).group(1)


def mappings():
    return Path("/proc/self/maps").read_text().count("\n")


@pytest.mark.parametrize("policy", ["bind", "preferred", "interleave"])
@pytest.mark.parametrize("page", ["auto", "4k", "2m"])
def test_every_page_on_node_0(policy, page, topo):
    if page == "2m" and topo.settings.thp not in ("always", "madvise") and \
            not topo.node(0).hugepages.get(2 << 20, {}).get("free"):
        pytest.skip("no THP and no reserved 2 MiB pages")
    with numaprobe.alloc(16 * MiB + 123, node=0, policy=policy, page=page) as mem:
        assert mem.nbytes >= 16 * MiB + 123
        pages = mem.pages()
        assert pages.not_present == 0
        assert pages.per_node == {0: pages.present}
        assert pages.present * pages.page_size >= 16 * MiB
        if page == "4k":
            assert pages.huge_bytes == 0 and pages.page_size == 4096
        if page in ("2m", "auto") and topo.settings.thp in ("always", "madvise"):
            # THP is best effort; on a machine with free memory it is most of the range.
            assert pages.huge_fraction > 0.5, str(pages)


def test_1g_pages_need_reservation(topo):
    if topo.node(0).hugepages.get(1 << 30, {}).get("free"):
        pytest.skip("1 GiB pages are reserved here")
    with pytest.raises(ValueError, match=r"1g pages are not available.*available: 4k"):
        numaprobe.alloc(1 << 30, node=0, page="1g")


def test_numpy_views_without_copy_and_close_rules():
    mem = numaprobe.alloc(4 * MiB, node=0)
    a = np.frombuffer(mem, dtype=np.uint64)
    a[:] = 7
    assert np.frombuffer(mem, dtype=np.uint64)[-1] == 7
    assert a.ctypes.data == mem.address  # the same memory, not a copy
    with pytest.raises(BufferError, match="still exist"):
        mem.close()
    del a
    mem.close()
    mem.close()  # idempotent
    assert mem.closed
    with pytest.raises(ValueError, match="closed"):
        mem.pages()
    with pytest.raises(ValueError, match="closed"):
        np.frombuffer(mem, dtype=np.uint8)
    with pytest.raises(ValueError, match="closed"):
        mem.migrate(0)


def test_where_and_migrate_numpy_array():
    a = np.ones(1 << 20)  # 8 MiB from the heap
    p = numaprobe.where(a)
    assert p.per_node == {0: p.present} and p.present >= 8 * MiB // 4096
    moved = numaprobe.migrate(a, 0)
    assert moved.fraction(0) == 1.0
    assert a.sum() == 1 << 20


def test_memory_migrate_rebinds():
    with numaprobe.alloc(8 * MiB, node=0, policy="preferred") as mem:
        p = mem.migrate(0)
        assert p.fraction(0) == 1.0 and mem.policy == "bind" and mem.nodes == (0,)


def test_pin_and_restore(topo):
    before = _core.affinity_get(0)
    cpu = topo.usable_cpus[-1]
    with numaprobe.pinned([cpu]) as cpus:
        assert cpus == (cpu,)
        assert _core.getcpu()[0] == cpu
        assert thread_status("Cpus_allowed_list") == str(cpu)
    assert _core.affinity_get(0) == before
    with pytest.raises(RuntimeError):
        with numaprobe.pinned([cpu]):
            raise RuntimeError("boom")
    assert _core.affinity_get(0) == before


def test_pin_whole_process(topo):
    before = _core.affinity_get(0)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        numaprobe.pin([topo.usable_cpus[0]], process=True)
        for tid in os.listdir("/proc/self/task"):
            status = Path(f"/proc/self/task/{tid}/status").read_text()
            assert re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M).group(1) == \
                str(topo.usable_cpus[0])
    finally:
        stop.set()
        t.join()
        numaprobe.pin(before, process=True)


def test_bound_sets_and_restores_policy(topo):
    assert placement.current_policy() == ("default", ())
    with numaprobe.bound(cpus=[topo.usable_cpus[0]], nodes=[0]):
        assert placement.current_policy() == ("bind", (0,))
        assert _core.affinity_get(0) == {topo.usable_cpus[0]}
        # New memory of this thread follows the policy.
        a = np.ones(1 << 19)
        assert numaprobe.where(a).fraction(0) == 1.0
    assert placement.current_policy() == ("default", ())
    with pytest.raises(KeyError):
        with numaprobe.bound(nodes=[0], policy="interleave"):
            assert placement.current_policy() == ("interleave", (0,))
            raise KeyError("x")
    assert placement.current_policy() == ("default", ())


def test_run_bound_child(topo):
    cpu = topo.usable_cpus[-1]
    p = numaprobe.run_bound([sys.executable, "-c",
                             "import os; print(sorted(os.sched_getaffinity(0))); "
                             "print(open('/proc/self/numa_maps').readline())"],
                            cpus=[cpu], nodes=[0], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert f"[{cpu}]" in out and " bind:0 " in out
    assert placement.current_policy() == ("default", ())  # the parent was restored


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("size, match", [
    (0, "positive"), (-5, "positive"), (1.5, "whole number"), ("10", "whole number"),
    (True, "whole number"),
])
def test_bad_sizes(size, match):
    with pytest.raises(ValueError, match=match):
        numaprobe.alloc(size, node=0)


def test_more_than_free_memory_says_how_much(topo):
    before = mappings()
    with pytest.raises(MemoryError, match=r"node 0 has .* available, asked for"):
        numaprobe.alloc(1 << 50, node=0)
    assert mappings() == before


@pytest.mark.parametrize("kwargs, match", [
    ({"node": 7}, r"node 7 does not exist; nodes: 0"),
    ({"node": -1}, "not negative"),
    ({"node": "x"}, "whole numbers"),
    ({"node": 0, "policy": "local"}, r"unknown memory policy 'local'; policies: bind, preferred, interleave"),
    ({"node": 0, "page": "3m"}, r"unknown page size '3m'; page sizes: auto, 4k, 2m, 1g"),
    ({"nodes": [], "policy": "interleave"}, "no nodes given"),
    ({"node": 0, "nodes": [0]}, "not both"),
])
def test_bad_alloc_requests(kwargs, match):
    with pytest.raises(ValueError, match=match):
        numaprobe.alloc(MiB, **kwargs)


def test_cpu_errors_list_valid_ones(topo):
    with pytest.raises(ValueError, match=r"CPU 4096 does not exist; CPUs: 0-"):
        numaprobe.pin([4096])
    with pytest.raises(ValueError, match="no CPUs given"):
        numaprobe.pin([])


def test_memoryless_and_cpuless_nodes_refused():
    cxl = numaprobe.read_topology(TREES / "cxl-hmat")
    with pytest.raises(ValueError, match=r"node 2 has no online CPUs; nodes with CPUs: 0-1"):
        placement.check_nodes([2], cxl, need="cpus")
    offline = numaprobe.read_topology(TREES / "offline-cpus")
    with pytest.raises(ValueError, match=r"CPU 6 is offline; online CPUs: 0-5"):
        placement.check_cpus([6], offline)
    limited = numaprobe.read_topology(TREES / "cgroup-limited")
    with pytest.raises(ValueError, match=r"CPU 0 is outside this process's allowed CPUs 2-3"):
        placement.check_cpus([0], limited)
    with pytest.raises(ValueError, match=r"node 1 is outside this process's allowed memory nodes 0"):
        placement.check_nodes([1], limited)


def test_failed_bind_leaves_nothing_mapped():
    # A topology that claims node 1 exists: validation passes, the kernel refuses the mbind,
    # and the mapping must be gone afterwards.
    two = numaprobe.read_topology(TREES / "two-socket-smt")
    before = mappings()
    with pytest.raises(OSError, match=r"\(mbind\)"):
        numaprobe.alloc(MiB, node=1, topology=two)
    assert mappings() == before


def _deny_numa_syscalls():
    """Makes mbind, set/get_mempolicy and move_pages fail with ENOSYS in this process, as a
    kernel built without NUMA does: a seccomp filter (x86-64 numbers), kept across exec."""
    import ctypes
    import struct
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    allow, enosys = 0x7FFF0000, 0x00050000 | 38
    numa = (237, 238, 239, 279)
    prog = [(ld_abs, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, allow), (ld_abs, 0, 0, 0)]
    prog += [(jeq, len(numa) - i, 0, nr) for i, nr in enumerate(numa)]
    prog += [(ret, 0, 0, allow), (ret, 0, 0, enosys)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    fprog = Fprog(len(prog), ctypes.addressof(code))
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0):
        raise OSError(ctypes.get_errno(), "seccomp")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter uses x86-64 numbers")
def test_kernel_without_numa_is_one_node():
    """Placement on a kernel without NUMA: node 0 is all there is, so binding to it works and
    resident pages are reported there; asking for node 1 is still refused."""
    script = (
        "import numaprobe\n"
        "from numaprobe import placement\n"
        "m = placement.alloc(4 << 20, node=0, page='4k')\n"
        "p = m.pages(); m.close()\n"
        "with placement.bound(cpus=[0], nodes=[0]):\n"
        "    print(placement.current_policy())\n"
        "print(p.per_node, p.not_present)\n"
        "try:\n"
        "    placement.alloc(1 << 20, node=1)\n"
        "except ValueError as e:\n"
        "    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         preexec_fn=_deny_numa_syscalls, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "('default', ())"       # the policy such a kernel has
    assert lines[1] == "{0: 1024} 0"
    assert lines[2].startswith("refused:") and "node 1" in lines[2]


def test_migrate_says_when_pages_were_left_unmapped(monkeypatch):
    """The kernel may report a move done and leave pages unmapped (seen on Linux 6.1 with
    THP "always" in the VM suite): migrate must say so, not report the move as made."""
    buf = bytearray(b"\x01") * (1 * MiB)
    present = placement.Pages(nbytes=MiB, page_size=4096, per_node={0: 256}, not_present=0,
                              huge_bytes=0, kernel_page_size=4096)
    gone = placement.Pages(nbytes=MiB, page_size=4096, per_node={0: 6}, not_present=250,
                           huge_bytes=0, kernel_page_size=4096)
    answers = iter([present, gone])
    monkeypatch.setattr(placement, "_pages", lambda *a: next(answers))
    monkeypatch.setattr(placement._core, "pages_migrate", lambda *a: None)
    with pytest.raises(OSError, match=r"250 of 256 pages were left unmapped by the move to node 0"):
        numaprobe.migrate(buf, 0)


def test_likwid_thread_domains_count_physical_cores_first():
    """likwid's S0:0-3 is four distinct cores of socket 0 (SMT siblings come after all the
    cores), not CPUs 0-3 by number; the captured two-socket tree pairs CPU c with c + 16."""
    from numaprobe import topology
    from numaprobe.placement import likwid_cpus
    t = topology.read(Path(__file__).parent / "data" / "sysfs" / "two-socket-smt")
    assert likwid_cpus("S0:0-3", t) == (0, 1, 2, 3)
    assert likwid_cpus("S0:8-9", t) == (16, 17)          # past the 8 cores: their siblings
    assert likwid_cpus("S1:0-1", t) == (8, 9)
    assert likwid_cpus("M1:0-1@S0:0", t) == (8, 9, 0)
    assert likwid_cpus("N:15-16", t) == (15, 16)
    assert likwid_cpus("C1:0", t) == (8,)                  # the second L3's first core
    assert likwid_cpus("S1:", t) == (*range(8, 16), *range(24, 32))
    for bad, why in [("S2:0", "no socket S2"), ("S0:99", "has 16 CPUs"),
                     ("E:S0:4", "DOMAIN:INDICES"), ("S:0", "DOMAIN:INDICES")]:
        with pytest.raises(ValueError, match=why):
            likwid_cpus(bad, t)
