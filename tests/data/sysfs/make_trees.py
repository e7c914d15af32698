#!/usr/bin/env python3
"""Writes the sysfs/procfs trees of machine shapes that the test machine is not, each with the
``expected.json`` a correct reader must report, both from one definition per shape.

    python tests/data/sysfs/make_trees.py             # rewrites the shapes beside this file
    python tests/data/sysfs/make_trees.py --out DIR   # writes them under DIR instead

The trees in git are exactly what this script writes (tests/test_topology_trees.py checks it),
so change a tree by changing its definition here. ``this-vm`` is a capture of a real machine,
not written here, and left alone.

expected.json is derived from the shape's definition (which CPUs, caches, nodes, settings the
machine has), never from numaprobe's output.

Faithfulness: file contents are what Linux (5.15 to 6.x, x86_64) writes: trailing newlines, the
kernel's padding in meminfo files, cache sizes in K, list syntax, cpumask/nodemask hex. Only the
files numaprobe.topology reads are written, plus a few that belong with them (cpu/offline,
cpuN/online, node/possible, has_*, smt/control). Symbolic links (nodeN/cpuK,
nodeN/accessK/initiators/nodeM, nodeN/accessK/targets/nodeM) are written as EMPTY REGULAR FILES
named like the link: the reader only lists their names, git keeps empty files (not empty
directories), and nothing can loop. A link to a directory whose files are read
(cpuN/cpufreq -> ../cpufreq/policyN) is written as a plain directory.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = ("two-socket-smt", "epyc-nps4", "cxl-hmat", "offline-cpus", "cgroup-limited",
          "epyc-2p-nps4")

CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
KB = 1024
MAX_NUMNODES = 1024      # CONFIG_NODES_SHIFT=10 (Ubuntu, RHEL, Fedora x86_64)


# ------------------------------------------------------------------------------ formats

def klist(ids) -> str:
    """The kernel's list syntax ("%*pbl"): 0-7,16-23."""
    ids = sorted(set(ids))
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


def kmask(ids, nbits: int) -> str:
    """The kernel's bitmap syntax ("%*pb"): 32-bit hex groups, most significant first, the first
    group only as wide as the bits it holds (8 CPUs: "0c"; 32: "ffff0000")."""
    value = sum(1 << i for i in set(ids))
    groups = []
    for lo in range(0, nbits, 32):
        groups.append((value >> lo) & 0xFFFFFFFF)
    groups.reverse()
    first_bits = nbits - 32 * (len(groups) - 1)
    out = [f"{groups[0]:0{(first_bits + 3) // 4}x}"] + [f"{g:08x}" for g in groups[1:]]
    return ",".join(out)


def node_meminfo(nid: int, m: dict) -> str:
    """drivers/base/node.c node_read_meminfo: "Node %d MemTotal:       %8lu kB" (label padded to
    16 characters), then hugetlb_report_node_meminfo's "Node %d HugePages_Total: %5u"."""
    rows = [
        ("MemTotal", m["total"]), ("MemFree", m["free"]), ("MemUsed", m["total"] - m["free"]),
        ("SwapCached", 0),
        ("Active", m["active_anon"] + m["active_file"]),
        ("Inactive", m["inactive_anon"] + m["inactive_file"]),
        ("Active(anon)", m["active_anon"]), ("Inactive(anon)", m["inactive_anon"]),
        ("Active(file)", m["active_file"]), ("Inactive(file)", m["inactive_file"]),
        ("Unevictable", 0), ("Mlocked", 0), ("Dirty", m["dirty"]), ("Writeback", 0),
        ("FilePages", m["active_file"] + m["inactive_file"] + m["shmem"]),
        ("Mapped", m["mapped"]), ("AnonPages", m["anon"]), ("Shmem", m["shmem"]),
        ("KernelStack", m["kstack"]), ("PageTables", m["ptables"]), ("SecPageTables", 0),
        ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0),
        ("KReclaimable", m["sreclaim"]), ("Slab", m["sreclaim"] + m["sunreclaim"]),
        ("SReclaimable", m["sreclaim"]), ("SUnreclaim", m["sunreclaim"]),
        ("AnonHugePages", m["anon_huge"]), ("ShmemHugePages", 0), ("ShmemPmdMapped", 0),
        ("FileHugePages", 0), ("FilePmdMapped", 0),
    ]
    text = "".join(f"Node {nid} {k + ':':<16}{v:>8} kB\n" for k, v in rows)
    hp_total, hp_free = m["hugepages"].get(2048, (0, 0))
    text += (f"Node {nid} HugePages_Total: {hp_total:>5}\n"
             f"Node {nid} HugePages_Free:  {hp_free:>5}\n"
             f"Node {nid} HugePages_Surp:  {0:>5}\n")
    return text


def proc_meminfo(nodes: list[dict], available: int) -> str:
    """fs/proc/meminfo.c: labels padded to 16 characters, values at least 8 wide, " kB"."""
    s = lambda key: sum(n["mem"][key] for n in nodes)  # noqa: E731
    total, free = s("total"), s("free")
    af, inf, aa, ia = s("active_file"), s("inactive_file"), s("active_anon"), s("inactive_anon")
    shmem, buffers = s("shmem"), 2048 * len(nodes) + 117_764
    hp2 = [n["mem"]["hugepages"].get(2048, (0, 0)) for n in nodes]
    hp1g = [n["mem"]["hugepages"].get(1048576, (0, 0)) for n in nodes]
    hp_total, hp_free = sum(t for t, _ in hp2), sum(f for _, f in hp2)
    hugetlb = hp_total * 2048 + sum(t for t, _ in hp1g) * 1048576
    rows = [
        ("MemTotal", total), ("MemFree", free), ("MemAvailable", available),
        ("Buffers", buffers), ("Cached", af + inf + shmem - buffers), ("SwapCached", 0),
        ("Active", aa + af), ("Inactive", ia + inf),
        ("Active(anon)", aa), ("Inactive(anon)", ia),
        ("Active(file)", af), ("Inactive(file)", inf),
        ("Unevictable", 0), ("Mlocked", 0), ("SwapTotal", 0), ("SwapFree", 0),
        ("Zswap", 0), ("Zswapped", 0), ("Dirty", s("dirty")), ("Writeback", 0),
        ("AnonPages", s("anon")), ("Mapped", s("mapped")), ("Shmem", shmem),
        ("KReclaimable", s("sreclaim")), ("Slab", s("sreclaim") + s("sunreclaim")),
        ("SReclaimable", s("sreclaim")), ("SUnreclaim", s("sunreclaim")),
        ("KernelStack", s("kstack")), ("PageTables", s("ptables")), ("SecPageTables", 0),
        ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0),
        ("CommitLimit", (total - hugetlb) // 2), ("Committed_AS", s("anon") * 3 // 2),
        ("VmallocTotal", 34359738367), ("VmallocUsed", 98_304 + 2_048 * len(nodes)),
        ("VmallocChunk", 0), ("Percpu", 1_472 * 8 * len(nodes)), ("HardwareCorrupted", 0),
        ("AnonHugePages", s("anon_huge")), ("ShmemHugePages", 0), ("ShmemPmdMapped", 0),
        ("FileHugePages", 0), ("FilePmdMapped", 0),
    ]
    text = "".join(f"{k + ':':<16}{v:>8} kB\n" for k, v in rows)
    text += (f"HugePages_Total:   {hp_total:>5}\n"
             f"HugePages_Free:    {hp_free:>5}\n"
             f"HugePages_Rsvd:    {0:>5}\n"
             f"HugePages_Surp:    {0:>5}\n"
             f"{'Hugepagesize:':<16}{2048:>8} kB\n"
             f"{'Hugetlb:':<16}{hugetlb:>8} kB\n"
             f"{'DirectMap4k:':<16}{1_019_484:>8} kB\n"
             f"{'DirectMap2M:':<16}{(total // 4) // 2048 * 2048:>8} kB\n"
             f"{'DirectMap1G:':<16}{(total - total // 4) // 1048576 * 1048576:>8} kB\n")
    return text


def mem(total, free, active_file, inactive_file, active_anon, inactive_anon, hugepages):
    """A node's memory in kB; hugepages: {page size in kB: (total, free)}."""
    return dict(total=total, free=free, active_file=active_file, inactive_file=inactive_file,
                active_anon=active_anon, inactive_anon=inactive_anon,
                anon=active_anon + inactive_anon - inactive_anon // 4,
                shmem=inactive_anon // 4,
                mapped=(active_file + inactive_file) // 6, dirty=148, kstack=9_456,
                ptables=6_912, sreclaim=total // 160, sunreclaim=total // 420,
                anon_huge=0, hugepages=hugepages)


def cpuinfo(shape: dict) -> str:
    """/proc/cpuinfo (arch/x86/kernel/cpu/proc.c), one block per online CPU."""
    ci, out = shape["cpuinfo"], []
    online = [c for c in shape["cpus"] if c["online"]]
    for c in online:
        pkg = [x for x in online if x["package"] == c["package"]]
        cores = {x["core"] for x in pkg}
        apic = ci["apicid"](c)
        lines = [
            f"processor\t: {c['id']}",
            f"vendor_id\t: {ci['vendor']}",
            f"cpu family\t: {ci['family']}",
            f"model\t\t: {ci['model']}",
            f"model name\t: {ci['name']}",
            f"stepping\t: {ci['stepping']}",
            f"microcode\t: {ci['microcode']}",
            f"cpu MHz\t\t: {ci['mhz']}",
            f"cache size\t: {ci['cache_kb']} KB",
            f"physical id\t: {c['package']}",
            f"siblings\t: {len(pkg)}",
            f"core id\t\t: {c['core']}",
            f"cpu cores\t: {len(cores)}",
            f"apicid\t\t: {apic}",
            f"initial apicid\t: {apic}",
            "fpu\t\t: yes",
            "fpu_exception\t: yes",
            f"cpuid level\t: {ci['cpuid_level']}",
            "wp\t\t: yes",
            f"flags\t\t: {ci['flags']}",
            f"bugs\t\t: {ci['bugs']}",
            f"bogomips\t: {ci['bogomips']}",
        ]
        if "tlb" in ci:
            lines.append(f"TLB size\t: {ci['tlb']}")
        lines += [
            "clflush size\t: 64",
            "cache_alignment\t: 64",
            f"address sizes\t: {ci['address_sizes']}",
            f"power management:{ci['power']}",
        ]
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def proc_status(shape: dict) -> str:
    """/proc/self/status of a python3 process (fs/proc/array.c), with the allowed sets."""
    nbits = max(shape["possible"]) + 1          # nr_cpu_ids
    cpus, mems = shape["status_cpus"], shape["status_mems"]
    return (
        "Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nTgid:\t48211\nNgid:\t0\n"
        "Pid:\t48211\nPPid:\t48190\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\n"
        "Gid:\t1000\t1000\t1000\t1000\nFDSize:\t64\nGroups:\t4 24 27 1000 \n"
        "NStgid:\t48211\nNSpid:\t48211\nNSpgid:\t48211\nNSsid:\t48190\n"
        "VmPeak:\t   27344 kB\nVmSize:\t   27344 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n"
        "VmHWM:\t   11420 kB\nVmRSS:\t   11420 kB\nRssAnon:\t    4352 kB\n"
        "RssFile:\t    7068 kB\nRssShmem:\t       0 kB\nVmData:\t    4868 kB\n"
        "VmStk:\t     132 kB\nVmExe:\t    2852 kB\nVmLib:\t    3612 kB\nVmPTE:\t      80 kB\n"
        "VmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\n"
        "Threads:\t1\nSigQ:\t0/512081\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t0000000100000002\n"
        "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
        "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n"
        "Seccomp:\t0\nSeccomp_filters:\t0\n"
        "Speculation_Store_Bypass:\tthread vulnerable\n"
        "SpeculationIndirectBranch:\tconditional enabled\n"
        f"Cpus_allowed:\t{kmask(cpus, nbits)}\n"
        f"Cpus_allowed_list:\t{klist(cpus)}\n"
        f"Mems_allowed:\t{kmask(mems, MAX_NUMNODES)}\n"
        f"Mems_allowed_list:\t{klist(mems)}\n"
        "voluntary_ctxt_switches:\t2\nnonvoluntary_ctxt_switches:\t0\n")


# ------------------------------------------------------------------------------ CPU models

SPR_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi "
    "mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon "
    "pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq "
    "dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 "
    "x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch "
    "cpuid_fault epb cat_l3 cat_l2 cdp_l3 invpcid_single intel_ppin cdp_l2 ssbd mba ibrs ibpb "
    "stibp ibrs_enhanced tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 "
    "smep bmi2 erms invpcid cqm rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt "
    "clwb intel_pt avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc "
    "cqm_occup_llc cqm_mbm_total cqm_mbm_local split_lock_detect avx_vnni avx512_bf16 wbnoinvd "
    "dtherm ida arat pln pts hfi vnmi avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes "
    "vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq la57 rdpid bus_lock_detect "
    "cldemote movdiri movdir64b enqcmd fsrm md_clear serialize tsxldtrk pconfig arch_lbr ibt "
    "amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d arch_capabilities")

GENOA_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good amd_lbr_v2 "
    "nopl nonstop_tsc cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 "
    "pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm "
    "extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext "
    "perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba "
    "perfmon_v2 ibrs ibpb stibp ibrs_enhanced vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid "
    "cqm rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni "
    "avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total "
    "cqm_mbm_local avx512_bf16 clzero irperf xsaveerptr rdpru wbnoinvd amd_ppin cppc arat npt "
    "lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter "
    "pfthreshold avic v_vmsave_vmload vgif x2avic v_spec_ctrl vnmi avx512vbmi umip pku ospke "
    "avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid "
    "overflow_recov succor smca fsrm flush_l1d")

ROCKET_LAKE_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi "
    "mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon "
    "pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq "
    "dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid sse4_1 sse4_2 "
    "x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch "
    "cpuid_fault epb invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority "
    "ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx avx512f avx512dq "
    "rdseed adx smap avx512ifma clflushopt intel_pt avx512cd sha_ni avx512bw avx512vl xsaveopt "
    "xsavec xgetbv1 xsaves dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp "
    "hwp_pkg_req vnmi avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni "
    "avx512_bitalg avx512_vpopcntdq rdpid fsrm md_clear flush_l1d arch_capabilities")

KVM_ICELAKE_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid "
    "tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt "
    "tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch "
    "cpuid_fault invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept "
    "vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed "
    "adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec "
    "xgetbv1 xsaves wbnoinvd arat avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq "
    "avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm md_clear arch_capabilities")

KVM_CASCADELAKE_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid "
    "tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt "
    "tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch "
    "cpuid_fault invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept "
    "vpid ept_ad fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm mpx avx512f "
    "avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec "
    "xgetbv1 xsaves arat pku ospke avx512_vnni md_clear arch_capabilities")

# QEMU's cache description for models without their own (target/i386/cpu.c legacy_l1d_cache,
# legacy_l1i_cache, legacy_l2_cache (CPUID leaf 4), legacy_l3_cache): L3 shared by a socket.
QEMU_L1D, QEMU_L1I, QEMU_L2, QEMU_L3 = 32, 32, 4096, 16384


def tsc_flags(flags: str) -> list[str]:
    """What Settings.tsc_flags is defined to hold: the TSC-related CPU flags, sorted."""
    return sorted(f for f in flags.split()
                  if f.startswith("tsc") or f in ("constant_tsc", "nonstop_tsc", "rdtscp"))


def bracketed(text: str) -> str:
    """The selected word of a sysfs choice file: "always defer [defer+madvise] madvise never"."""
    return text[text.index("[") + 1:text.index("]")]


# ------------------------------------------------------------------------------ the shapes

def cache(level, ctype, size_kb, cpus):
    return {"level": level, "type": ctype, "size_kb": size_kb, "cpus": tuple(sorted(cpus))}


def core_caches(groups, l1d, l1i, l2):
    out = []
    for g in groups:
        out += [cache(1, "Data", l1d, g), cache(1, "Instruction", l1i, g),
                cache(2, "Unified", l2, g)]
    return out


def hugepage_dirs(two_mb=(0, 0), one_gb=(0, 0)):
    return {2048: two_mb, 1048576: one_gb}


def two_socket_smt() -> dict:
    """2 x Intel Xeon Gold 6434 (Sapphire Rapids, 8 cores, 2 threads each), Ubuntu 20.04 with
    the 5.15 HWE kernel: cgroup v1 controllers (hybrid hierarchy)."""
    cpus = []
    for c in range(32):
        first = c % 16                      # 0-7 package 0, 8-15 package 1; +16: second threads
        cpus.append(dict(id=c, online=True, node=first // 8, package=first // 8, die=0,
                         core=first % 8, siblings=(first, first + 16)))
    pkg_cpus = {p: [c["id"] for c in cpus if c["package"] == p] for p in (0, 1)}
    caches = core_caches([(i, i + 16) for i in range(16)], 48, 32, 2048)
    caches += [cache(3, "Unified", 23040, pkg_cpus[p]) for p in (0, 1)]
    nodes = [
        dict(id=0, cpus=pkg_cpus[0], distances=(10, 21),
             mem=mem(65_538_080, 58_112_404, 1_873_220, 2_410_996, 612_588, 40_116,
                     hugepage_dirs(two_mb=(512, 500)))),
        dict(id=1, cpus=pkg_cpus[1], distances=(21, 10),
             mem=mem(66_030_564, 62_845_120, 1_120_532, 1_394_840, 388_212, 22_704,
                     hugepage_dirs())),
    ]
    flags = SPR_FLAGS
    return dict(
        description=two_socket_smt.__doc__,
        possible=range(32), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=(0, 1), has_normal_memory=(0, 1),
        available=125_311_692,
        cpuinfo=dict(vendor="GenuineIntel", family=6, model=143, stepping=8,
                     name="Intel(R) Xeon(R) Gold 6434", microcode="0x2b0004d0",
                     mhz="3700.000", cache_kb=23040, cpuid_level=32, flags=flags,
                     bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs eibrs_pbrsb bhi",
                     bogomips="7400.00", address_sizes="46 bits physical, 57 bits virtual",
                     power="",
                     apicid=lambda c: (c["package"] << 7) | (c["core"] << 1) | (c["id"] >= 16)),
        thp="always [madvise] never", thp_defrag="always defer defer+madvise [madvise] never",
        numa_balancing=1, governor="performance", clocksource="tsc",
        smt_active=1, smt_control="on", isolated=(),
        status_cpus=range(32), status_mems=(0, 1),
        cgroup_lines=["12:devices:/user.slice", "11:hugetlb:/",
                      "10:memory:/user.slice/user-1000.slice/session-4.scope", "9:freezer:/",
                      "8:perf_event:/", "7:rdma:/", "6:cpuset:/", "5:blkio:/user.slice",
                      "4:net_cls,net_prio:/", "3:cpu,cpuacct:/user.slice",
                      "2:pids:/user.slice/user-1000.slice/session-4.scope",
                      "1:name=systemd:/user.slice/user-1000.slice/session-4.scope",
                      "0::/user.slice/user-1000.slice/session-4.scope"],
        cgroup_files={
            # hybrid: the unified hierarchy is at sys/fs/cgroup/unified, sys/fs/cgroup is tmpfs
            "sys/fs/cgroup/unified/cgroup.controllers": "\n",
            "sys/fs/cgroup/cpuset/cpuset.effective_cpus": "0-31\n",
            "sys/fs/cgroup/cpuset/cpuset.effective_mems": "0-1\n",
            "sys/fs/cgroup/cpuset/cpuset.cpus": "0-31\n",
            "sys/fs/cgroup/cpuset/cpuset.mems": "0-1\n",
            "sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_period_us": "100000\n",
        },
        allowed=dict(cpus=list(range(32)), mems=[0, 1], cgroup="/", cgroup_version=1,
                     cgroup_cpus=list(range(32)), cgroup_mems=[0, 1], cpu_quota=None),
        virtualized=False,
    )


def genoa_cpuinfo(name: str, microcode: str, mhz: str, bogomips: str, apicid) -> dict:
    """/proc/cpuinfo of an AMD EPYC 9004 (Genoa, family 25 model 17): what the models share."""
    return dict(vendor="AuthenticAMD", family=25, model=17, stepping=1, name=name,
                microcode=microcode, mhz=mhz, cache_kb=1024, cpuid_level=16, flags=GENOA_FLAGS,
                bugs="sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass srso",
                bogomips=bogomips, tlb="3584 4K pages",
                address_sizes="52 bits physical, 57 bits virtual",
                power=" ts ttp tm hwpstate cpb eff_freq_ro [13] [14]", apicid=apicid)


def epyc_nps4() -> dict:
    """AMD EPYC 9354 (Genoa, 32 cores: 8 CCDs of 4 cores, one CCX each with 32 MiB L3) in NPS4
    with SMT disabled in the firmware: 4 nodes of 8 CPUs, 2 CCXs per node. RHEL 9, cgroup v2."""
    cpus = [dict(id=c, online=True, node=c // 8, package=0, die=0, core=c, siblings=(c,))
            for c in range(32)]
    caches = core_caches([(c,) for c in range(32)], 32, 32, 1024)
    caches += [cache(3, "Unified", 32768, range(x, x + 4)) for x in range(0, 32, 4)]
    slit = [(10, 11, 12, 12), (11, 10, 12, 12), (12, 12, 10, 11), (12, 12, 11, 10)]
    totals = [98_998_212, 100_628_164, 100_628_164, 100_592_168]
    frees = [92_410_032, 97_880_416, 98_120_900, 97_904_332]
    nodes = [dict(id=n, cpus=list(range(8 * n, 8 * n + 8)), distances=slit[n],
                  mem=mem(totals[n], frees[n], 2_112_404 - 300_000 * n, 1_406_232, 1_288_004,
                          30_220, hugepage_dirs()))
             for n in range(4)]
    return dict(
        description=epyc_nps4.__doc__,
        possible=range(32), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=(0, 1, 2, 3), has_normal_memory=(0, 1, 2, 3),
        available=392_804_412,
        cpuinfo=genoa_cpuinfo("AMD EPYC 9354 32-Core Processor", "0xa101148", "3249.999",
                              "6499.99", apicid=lambda c: c["id"] * 2),
        # defer+madvise: the kernel brackets the whole word, '+' included
        thp="[always] madvise never", thp_defrag="always defer [defer+madvise] madvise never",
        numa_balancing=1, governor="schedutil", clocksource="tsc",
        smt_active=0, smt_control="notsupported", isolated=(),
        status_cpus=range(32), status_mems=(0, 1, 2, 3),
        cgroup_lines=["0::/user.slice/user-1000.slice/session-3.scope"],
        cgroup_files={
            "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        },
        allowed=dict(cpus=list(range(32)), mems=[0, 1, 2, 3],
                     cgroup="/user.slice/user-1000.slice/session-3.scope", cgroup_version=2,
                     cgroup_cpus=None, cgroup_mems=None, cpu_quota=None),
        virtualized=False,
    )


def epyc_2p_nps4() -> dict:
    """2 x AMD EPYC 9554 (Genoa, 64 cores each: 8 CCDs of 8 cores, one CCX each with 32 MiB
    L3) in NPS4 with SMT on: 256 CPUs, 8 nodes of 16 cores (32 CPUs, 2 CCXs) each, the size of
    machine the quick check's cost must stay bounded on. Linux numbers AMD's threads as
    0-63 socket 0 and 64-127 socket 1 (first threads), 128-255 their second threads, so node
    n holds CPUs 16n..16n+15 and 128+16n..128+16n+15. SLIT: 10 local, 11 and 12 within a
    socket (as epyc-nps4), 32 across the sockets. Ubuntu 22.04, cgroup v2."""
    cpus = []
    for c in range(256):
        first = c % 128                     # the core's first thread
        cpus.append(dict(id=c, online=True, node=first // 16, package=first // 64, die=0,
                         core=first % 64, siblings=(first, first + 128)))
    caches = core_caches([(i, i + 128) for i in range(128)], 32, 32, 1024)
    caches += [cache(3, "Unified", 32768, list(range(x, x + 8)) + list(range(x + 128, x + 136)))
               for x in range(0, 128, 8)]
    within = [(10, 11, 12, 12), (11, 10, 12, 12), (12, 12, 10, 11), (12, 12, 11, 10)]
    slit = [within[n % 4] + (32,) * 4 if n < 4 else (32,) * 4 + within[n % 4] for n in range(8)]
    nodes = [dict(id=n, cpus=list(range(16 * n, 16 * n + 16)) + list(range(128 + 16 * n,
                                                                          144 + 16 * n)),
                  distances=slit[n],
                  mem=mem(197_951_964 + 4_096 * (n % 2), 188_215_340 - 611_204 * n,
                          1_730_516 - 120_004 * n, 1_106_248, 996_112, 28_876,
                          hugepage_dirs()))
             for n in range(8)]
    return dict(
        description=epyc_2p_nps4.__doc__,
        possible=range(256), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=tuple(range(8)), has_normal_memory=tuple(range(8)),
        available=1_528_402_916,
        cpuinfo=genoa_cpuinfo("AMD EPYC 9554 64-Core Processor", "0xa10113e", "3100.000",
                              "6190.82", apicid=lambda c: (c["package"] << 7) | (c["core"] << 1)
                              | (c["id"] >= 128)),
        thp="[always] madvise never", thp_defrag="always defer defer+madvise [madvise] never",
        numa_balancing=1, governor="performance", clocksource="tsc",
        smt_active=1, smt_control="on", isolated=(),
        status_cpus=range(256), status_mems=tuple(range(8)),
        cgroup_lines=["0::/user.slice/user-1000.slice/session-7.scope"],
        cgroup_files={
            "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        },
        allowed=dict(cpus=list(range(256)), mems=list(range(8)),
                     cgroup="/user.slice/user-1000.slice/session-7.scope", cgroup_version=2,
                     cgroup_cpus=None, cgroup_mems=None, cpu_quota=None),
        virtualized=False,
    )


def cxl_hmat() -> dict:
    """A QEMU/KVM guest (Cascadelake-Server model) laid out like a 2-socket host with CXL
    memory expanders: 2 sockets of 4 cores (nodes 0 and 1, 16 GiB each) and 2 CPU-less memory
    nodes (node 2 behind socket 0, node 3 behind socket 1, 32 GiB each, onlined movable), with
    SLIT and HMAT. HMAT: local DRAM 100 ns, 80000 MB/s; CXL 250 ns read / 270 ns write,
    30000 MB/s read / 25000 MB/s write; access0 and access1 alike (every initiator is a CPU)."""
    cpus = [dict(id=c, online=True, node=c // 4, package=c // 4, die=0, core=c % 4,
                 siblings=(c,)) for c in range(8)]
    caches = core_caches([(c,) for c in range(8)], QEMU_L1D, QEMU_L1I, QEMU_L2)
    caches += [cache(3, "Unified", QEMU_L3, range(4 * p, 4 * p + 4)) for p in (0, 1)]
    slit = [(10, 21, 14, 24), (21, 10, 24, 14), (14, 24, 10, 26), (24, 14, 26, 10)]
    dram = dict(read_latency=100, write_latency=100, read_bandwidth=80000, write_bandwidth=80000)
    cxl = dict(read_latency=250, write_latency=270, read_bandwidth=30000, write_bandwidth=25000)
    best = {0: (0, dram), 1: (1, dram), 2: (0, cxl), 3: (1, cxl)}
    mems = [mem(16_181_328, 14_502_116, 610_224, 498_332, 305_112, 12_004, hugepage_dirs()),
            mem(16_480_012, 15_733_460, 240_188, 201_920, 160_440, 4_096, hugepage_dirs()),
            mem(33_030_144, 33_001_472, 4_096, 8_192, 0, 0, hugepage_dirs()),
            mem(33_030_144, 33_005_568, 2_048, 6_144, 0, 0, hugepage_dirs())]
    nodes = []
    for n in range(4):
        ini, perf = best[n]
        nodes.append(dict(id=n, cpus=[c["id"] for c in cpus if c["node"] == n],
                          distances=slit[n], mem=mems[n],
                          access={cls: dict(initiators=[ini], **perf) for cls in ("0", "1")},
                          targets={cls: sorted(t for t, (i, _) in best.items() if i == n)
                                   for cls in ("0", "1")}))
    return dict(
        description=cxl_hmat.__doc__,
        possible=range(8), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=(0, 1, 2, 3), has_normal_memory=(0, 1),
        available=95_964_276,
        cpuinfo=dict(vendor="GenuineIntel", family=6, model=85, stepping=6,
                     name="Intel Xeon Processor (Cascadelake)", microcode="0x1",
                     mhz="2593.906", cache_kb=QEMU_L3, cpuid_level=13,
                     flags=KVM_CASCADELAKE_FLAGS,
                     bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs taa mmio_stale_data "
                          "retbleed gds bhi",
                     bogomips="5187.81", address_sizes="40 bits physical, 48 bits virtual",
                     power="", apicid=lambda c: (c["package"] << 2) | c["core"]),
        thp="always [madvise] never", thp_defrag="always defer defer+madvise [madvise] never",
        numa_balancing=2,  # NUMA_BALANCING_MEMORY_TIERING: promote hot CXL pages
        governor=None, clocksource="kvm-clock",
        smt_active=0, smt_control="notsupported", isolated=(),
        status_cpus=range(8), status_mems=(0, 1, 2, 3),
        cgroup_lines=["0::/system.slice/numaprobe-bench.service"],
        cgroup_files={
            "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
            "sys/fs/cgroup/system.slice/numaprobe-bench.service/cpuset.cpus.effective": "0-7\n",
            "sys/fs/cgroup/system.slice/numaprobe-bench.service/cpuset.mems.effective": "0-3\n",
            "sys/fs/cgroup/system.slice/numaprobe-bench.service/cpu.max": "max 100000\n",
        },
        allowed=dict(cpus=list(range(8)), mems=[0, 1, 2, 3],
                     cgroup="/system.slice/numaprobe-bench.service", cgroup_version=2,
                     cgroup_cpus=list(range(8)), cgroup_mems=[0, 1, 2, 3], cpu_quota=None),
        virtualized=True,
    )


def offline_cpus() -> dict:
    """Intel Xeon E-2334 (Rocket Lake, 4 cores, 2 threads each: CPUs 0-3 first threads, 4-7
    second threads), one node, with CPUs 6 and 7 (second threads of cores 2 and 3) taken
    offline and CPUs 4-5 isolated (isolcpus=4-5). Ubuntu 22.04, cgroup v2.

    What x86 Linux does on offlining: the CPU leaves cpu/online, node0/cpulist, its siblings'
    thread_siblings_list and every cache's shared_cpu_list; its cpuN/topology and cpuN/cache
    directories go away; node0/cpuN and cpuN/online (0) stay. The process's affinity mask is
    not changed (tasks of the root cpuset are left alone), so Cpus_allowed_list is still 0-7."""
    online = set(range(6))
    cpus = []
    for c in range(8):
        core = c % 4
        sib = tuple(x for x in (core, core + 4) if x in online)
        on = c in online
        cpus.append(dict(id=c, online=on, node=0, package=0 if on else None,
                         die=0 if on else None, core=core if on else None,
                         siblings=sib if on else (c,)))
    groups = [tuple(x for x in (core, core + 4) if x in online) for core in range(4)]
    caches = core_caches(groups, 48, 32, 512) + [cache(3, "Unified", 8192, sorted(online))]
    nodes = [dict(id=0, cpus=list(range(8)), distances=(10,),
                  mem=mem(32_617_020, 27_804_332, 2_204_880, 1_598_112, 712_040, 20_488,
                          hugepage_dirs()))]
    return dict(
        description=offline_cpus.__doc__,
        possible=range(8), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=(0,), has_normal_memory=(0,),
        available=31_118_916,
        cpuinfo=dict(vendor="GenuineIntel", family=6, model=167, stepping=1,
                     name="Intel(R) Xeon(R) E-2334 @ 3.40GHz", microcode="0x62",
                     mhz="3400.000", cache_kb=8192, cpuid_level=27, flags=ROCKET_LAKE_FLAGS,
                     bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs eibrs_pbrsb gds bhi",
                     bogomips="6799.81", address_sizes="39 bits physical, 48 bits virtual",
                     power="", apicid=lambda c: (c["core"] << 1) | (c["id"] >= 4)),
        thp="always [madvise] never", thp_defrag="always defer defer+madvise [madvise] never",
        numa_balancing=0,  # the kernel enables it by default only with more than one node
        governor="performance", clocksource="tsc",
        smt_active=1, smt_control="on", isolated=(4, 5),
        status_cpus=range(8), status_mems=(0,),
        cgroup_lines=["0::/user.slice/user-1000.slice/session-2.scope"],
        cgroup_files={
            "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        },
        allowed=dict(cpus=list(range(8)), mems=[0],
                     cgroup="/user.slice/user-1000.slice/session-2.scope", cgroup_version=2,
                     cgroup_cpus=None, cgroup_mems=None, cpu_quota=None),
        virtualized=False,
    )


def cgroup_limited() -> dict:
    """A Kubernetes worker VM (QEMU/KVM, Icelake-Server model, 2 sockets of 4 cores, one node
    each, no SLIT given to QEMU so Linux uses 10/20). The process runs in a container: cgroup v2
    /kubepods/pod1/ctr, cpuset 2-3 on node 0, cpu.max 150000/100000 (1.5 CPUs)."""
    cpus = [dict(id=c, online=True, node=c // 4, package=c // 4, die=0, core=c % 4,
                 siblings=(c,)) for c in range(8)]
    caches = core_caches([(c,) for c in range(8)], QEMU_L1D, QEMU_L1I, QEMU_L2)
    caches += [cache(3, "Unified", QEMU_L3, range(4 * p, 4 * p + 4)) for p in (0, 1)]
    nodes = [
        dict(id=0, cpus=[0, 1, 2, 3], distances=(10, 20),
             mem=mem(16_169_052, 9_418_296, 3_402_112, 2_116_488, 1_104_260, 36_872,
                     hugepage_dirs())),
        dict(id=1, cpus=[4, 5, 6, 7], distances=(20, 10),
             mem=mem(16_495_360, 11_280_444, 2_560_708, 1_802_332, 802_908, 24_576,
                     hugepage_dirs())),
    ]
    d = "sys/fs/cgroup/kubepods/pod1/ctr"
    return dict(
        description=cgroup_limited.__doc__,
        possible=range(8), cpus=cpus, caches=caches, nodes=nodes,
        node_possible=(0, 1), has_normal_memory=(0, 1),
        available=29_977_060,
        cpuinfo=dict(vendor="GenuineIntel", family=6, model=134, stepping=0,
                     name="Intel Xeon Processor (Icelake)", microcode="0x1",
                     mhz="2799.998", cache_kb=QEMU_L3, cpuid_level=13,
                     flags=KVM_ICELAKE_FLAGS,
                     bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs bhi",
                     bogomips="5599.99", address_sizes="40 bits physical, 48 bits virtual",
                     power="", apicid=lambda c: (c["package"] << 2) | c["core"]),
        thp="always [madvise] never", thp_defrag="always defer defer+madvise [madvise] never",
        numa_balancing=1, governor=None, clocksource="kvm-clock",
        smt_active=0, smt_control="notsupported", isolated=(),
        status_cpus=(2, 3), status_mems=(0,),
        cgroup_lines=["0::/kubepods/pod1/ctr"],
        cgroup_files={
            "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
            f"{d}/cpuset.cpus.effective": "2-3\n",
            f"{d}/cpuset.mems.effective": "0\n",
            f"{d}/cpu.max": "150000 100000\n",
        },
        allowed=dict(cpus=[2, 3], mems=[0], cgroup="/kubepods/pod1/ctr", cgroup_version=2,
                     cgroup_cpus=[2, 3], cgroup_mems=[0], cpu_quota=1.5),
        virtualized=True,
    )


BUILDERS = {"two-socket-smt": two_socket_smt, "epyc-nps4": epyc_nps4, "cxl-hmat": cxl_hmat,
            "offline-cpus": offline_cpus, "cgroup-limited": cgroup_limited,
            "epyc-2p-nps4": epyc_2p_nps4}


# ------------------------------------------------------------------------------ writing

def write_tree(root: Path, s: dict) -> None:
    def put(rel: str, text: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def link(rel: str) -> None:            # a sysfs symlink, as an empty file of its name
        put(rel, "")

    possible = list(s["possible"])
    online = [c["id"] for c in s["cpus"] if c["online"]]
    offline = [c["id"] for c in s["cpus"] if not c["online"]]
    put(f"{CPU}/possible", klist(possible) + "\n")
    put(f"{CPU}/present", klist(c["id"] for c in s["cpus"]) + "\n")
    put(f"{CPU}/online", klist(online) + "\n")
    put(f"{CPU}/offline", klist(offline) + "\n")
    put(f"{CPU}/isolated", klist(s["isolated"]) + "\n")
    put(f"{CPU}/smt/active", f"{s['smt_active']}\n")
    put(f"{CPU}/smt/control", f"{s['smt_control']}\n")
    nbits = max(possible) + 1
    for c in s["cpus"]:
        base = f"{CPU}/cpu{c['id']}"
        if c["id"] != 0:                     # x86: the boot CPU has no online file
            put(f"{base}/online", "1\n" if c["online"] else "0\n")
        if not c["online"]:
            continue                         # no topology/, cache/ on an offline x86 CPU
        t = f"{base}/topology"
        put(f"{t}/physical_package_id", f"{c['package']}\n")
        put(f"{t}/die_id", f"{c['die']}\n")
        put(f"{t}/core_id", f"{c['core']}\n")
        put(f"{t}/thread_siblings_list", klist(c["siblings"]) + "\n")
        put(f"{t}/thread_siblings", kmask(c["siblings"], nbits) + "\n")
        mine = [k for k in s["caches"] if c["id"] in k["cpus"]]
        order = {(1, "Data"): 0, (1, "Instruction"): 1, (2, "Unified"): 2, (3, "Unified"): 3}
        for k in mine:
            d = f"{base}/cache/index{order[(k['level'], k['type'])]}"
            put(f"{d}/level", f"{k['level']}\n")
            put(f"{d}/type", f"{k['type']}\n")
            put(f"{d}/size", f"{k['size_kb']}K\n")
            put(f"{d}/coherency_line_size", "64\n")
            put(f"{d}/shared_cpu_list", klist(k["cpus"]) + "\n")
            put(f"{d}/shared_cpu_map", kmask(k["cpus"], nbits) + "\n")
        if s["governor"]:
            put(f"{base}/cpufreq/scaling_governor", f"{s['governor']}\n")

    node_ids = [n["id"] for n in s["nodes"]]
    put(f"{NODE}/possible", klist(s["node_possible"]) + "\n")
    put(f"{NODE}/online", klist(node_ids) + "\n")
    put(f"{NODE}/has_cpu", klist(n["id"] for n in s["nodes"]
                                 if set(n["cpus"]) & set(online)) + "\n")
    put(f"{NODE}/has_memory", klist(n["id"] for n in s["nodes"] if n["mem"]["total"]) + "\n")
    put(f"{NODE}/has_normal_memory", klist(s["has_normal_memory"]) + "\n")
    for n in s["nodes"]:
        base = f"{NODE}/node{n['id']}"
        put(f"{base}/cpulist", klist(c for c in n["cpus"] if c in online) + "\n")
        put(f"{base}/cpumap", kmask([c for c in n["cpus"] if c in online], nbits) + "\n")
        for c in n["cpus"]:
            link(f"{base}/cpu{c}")
        put(f"{base}/distance", " ".join(str(x) for x in n["distances"]) + "\n")
        put(f"{base}/meminfo", node_meminfo(n["id"], n["mem"]))
        for size_kb, (total, free) in n["mem"]["hugepages"].items():
            d = f"{base}/hugepages/hugepages-{size_kb}kB"
            put(f"{d}/nr_hugepages", f"{total}\n")
            put(f"{d}/free_hugepages", f"{free}\n")
            put(f"{d}/surplus_hugepages", "0\n")
        for cls, a in n.get("access", {}).items():
            d = f"{base}/access{cls}/initiators"
            for i in a["initiators"]:
                link(f"{d}/node{i}")
            for key in ("read_latency", "write_latency", "read_bandwidth", "write_bandwidth"):
                put(f"{d}/{key}", f"{a[key]}\n")
        for cls, targets in n.get("targets", {}).items():
            for t in targets:
                link(f"{base}/access{cls}/targets/node{t}")

    put("proc/cpuinfo", cpuinfo(s))
    put("proc/meminfo", proc_meminfo(s["nodes"], s["available"]))
    put("proc/self/status", proc_status(s))
    put("proc/self/cgroup", "".join(line + "\n" for line in s["cgroup_lines"]))
    for rel, text in s["cgroup_files"].items():
        put(rel, text)
    put("proc/sys/kernel/numa_balancing", f"{s['numa_balancing']}\n")
    put("sys/kernel/mm/transparent_hugepage/enabled", s["thp"] + "\n")
    put("sys/kernel/mm/transparent_hugepage/defrag", s["thp_defrag"] + "\n")
    put("sys/devices/system/clocksource/clocksource0/current_clocksource",
        s["clocksource"] + "\n")


def expected(s: dict) -> dict:
    """What a correct reader reports for the shape (Topology.to_dict(), JSON-exact)."""
    nodes = []
    for n in s["nodes"]:
        m = n["mem"]
        nodes.append({
            "id": n["id"], "cpus": sorted(n["cpus"]),
            "memory_total": m["total"] * KB, "memory_free": m["free"] * KB,
            "memory_reclaimable": (m["active_file"] + m["inactive_file"]) * KB,
            "distances": list(n["distances"]),
            "hugepages": {str(size_kb * KB): {"total": t, "free": f}
                          for size_kb, (t, f) in sorted(m["hugepages"].items())},
            "access": {cls: dict(a) for cls, a in n.get("access", {}).items()},
        })
    caches = sorted(s["caches"], key=lambda k: (k["level"], k["type"], k["cpus"]))
    flags = s["cpuinfo"]["flags"]
    return {
        "cpus": [{"id": c["id"], "online": c["online"], "node": c["node"],
                  "package": c["package"], "die": c["die"], "core": c["core"],
                  "siblings": list(c["siblings"])} for c in s["cpus"]],
        "nodes": nodes,
        "caches": [{"level": k["level"], "type": k["type"], "size": k["size_kb"] * KB,
                    "line_size": 64, "cpus": list(k["cpus"])} for k in caches],
        "allowed": dict(s["allowed"]),
        "settings": {
            "cpu_model": s["cpuinfo"]["name"],
            "numa_balancing": s["numa_balancing"],
            "thp": bracketed(s["thp"]),
            "thp_defrag": bracketed(s["thp_defrag"]),
            "governors": [s["governor"]] if s["governor"] else [],
            "isolated": list(s["isolated"]),
            "smt_active": bool(s["smt_active"]),
            "tsc_flags": tsc_flags(flags),
            "virtualized": s["virtualized"],
            "clocksource": s["clocksource"],
            "cpu_flags": sorted(set(flags.split())),
        },
        "memory_available": s["available"] * KB,
        "memory_total": sum(n["mem"]["total"] for n in s["nodes"]) * KB,
        "numa": True,
    }


def write_shape(out: Path, name: str) -> Path:
    s = BUILDERS[name]()
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    write_tree(d, s)
    (d / "expected.json").write_text(json.dumps(expected(s), indent=1) + "\n")
    return d


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE, help="where to write (default: beside me)")
    p.add_argument("shapes", nargs="*", metavar="SHAPE", help=f"some of {', '.join(SHAPES)}")
    args = p.parse_args(argv)
    bad = set(args.shapes) - set(SHAPES)
    if bad:
        p.error(f"unknown shape(s) {', '.join(sorted(bad))}: the shapes are {', '.join(SHAPES)}")
    args.shapes = args.shapes or list(SHAPES)
    for name in args.shapes:
        print(write_shape(args.out, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
