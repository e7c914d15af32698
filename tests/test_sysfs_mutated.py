"""A damaged sysfs/procfs tree: `numaprobe topology --root TREE` either reads it (exit 0,
what it can) or refuses it in one line that names the damaged file (exit 2), never with a
traceback and never by running out of memory.

Captured trees (tests/data/sysfs) are copied and damaged one file each, from a fixed seed:
cut short, garbled with random bytes, an absurd list or number written in, emptied, replaced by
a directory, removed. The reads run in one child process limited to 2 GiB of address space,
which loops over the trees and prints one JSON line for each, so a hundred trees cost one
interpreter start. A few cases that must be refused run through `python -m numaprobe` itself.

Also here: Topology.node and Topology.distance for a node the machine does not have.
"""
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from numaprobe import topology
from numaprobe.errors import UsageError

DATA = Path(__file__).resolve().parent / "data" / "sysfs"
TREES = ("this-vm", "two-socket-smt", "cxl-hmat", "cgroup-limited", "offline-cpus")
RANDOM_CASES = 100
LIMIT = 2 << 30   # bytes of address space for the child: a reader that expands a huge list dies

# Files in the kernel's list syntax, where an absurd list is the damage that matters.
LISTS = re.compile(r"(possible|present|online|offline|isolated|cpulist|thread_siblings_list|"
                   r"shared_cpu_list|cpuset\.[a-z_.]+)$")
ABSURD = ("0-99999999999", f"0-{topology.MAX_ID - 1}")  # refused; the widest list allowed

# The damage that must be in the set whatever the seed draws.
NAMED_CASES = [
    ("this-vm", "sys/devices/system/cpu/possible", "absurd", ABSURD[0]),
    ("two-socket-smt", "sys/devices/system/node/node1/cpulist", "absurd", ABSURD[0]),
    ("two-socket-smt", "sys/devices/system/node/online", "absurd", ABSURD[1]),
    ("two-socket-smt", "sys/devices/system/cpu/online", "absurd", ABSURD[1]),
    ("this-vm", "proc/self/status", "absurd", ABSURD[0]),
    ("two-socket-smt", "sys/devices/system/node/node0/distance", "text", "10 x"),
    ("two-socket-smt", "sys/devices/system/node/node0/distance", "text", "10"),
    ("two-socket-smt", "sys/devices/system/cpu/cpu0/cache/index3/size", "text", "9" * 5000 + "K"),
    ("cgroup-limited", "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "text", "150000 0"),
    ("cgroup-limited", "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "text", "lots 100000"),
    ("this-vm", "proc/self/cgroup", "text", "garbage without colons"),
    ("this-vm", "proc/cpuinfo", "text", b"model name\t: \xff\xfe\n"),
    ("this-vm", "proc/meminfo", "text", "MemTotal: " + "9" * 5000 + " kB\n"),
]

# Cases run through the real command line, each in its own process (see the module docstring).
CLI_CASES = (0, 1, 5, 11)


def _files(tree: Path) -> list[str]:
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*")
                  if p.is_file() and p.name != "expected.json")


def _random_cases(rng: random.Random) -> list[tuple]:
    files = {name: _files(DATA / name) for name in TREES}
    cases = []
    for k in range(RANDOM_CASES):
        name = TREES[k % len(TREES)]
        rel = rng.choice(files[name])
        how = rng.choice(["cut", "garble", "bytes", "huge", "empty", "directory", "remove"]
                         + ["absurd"] * 2 * bool(LISTS.search(rel)))
        cases.append((name, rel, how, rng.choice(ABSURD) if how == "absurd" else None))
    return cases


def _damage(path: Path, how: str, arg, rng: random.Random) -> None:
    data = path.read_bytes()
    if how == "cut":
        path.write_bytes(data[:rng.randrange(len(data))] if data else b"")
    elif how == "garble":      # the same length, some bytes random
        b = bytearray(data or b"\n")
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b))
    elif how == "bytes":       # nothing but random bytes
        path.write_bytes(rng.randbytes(rng.randint(1, 64)))
    elif how == "huge":
        path.write_text("9" * 5000 + "\n")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "directory":
        path.unlink()
        path.mkdir()
    elif how == "remove":
        path.unlink()
    elif how == "absurd" and path.name == "status":
        path.write_text(re.sub(r"(?m)^(Cpus_allowed_list:\s*).*$", rf"\g<1>{arg}", data.decode()))
    elif how == "absurd":
        path.write_text(arg + "\n")
    elif how == "text":
        path.write_bytes(arg if isinstance(arg, bytes) else arg.encode())
    else:
        raise AssertionError(how)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> list[dict]:
    """Every case as {"case", "root", "rel"}: its own damaged copy of a captured tree."""
    rng = random.Random(12)
    base = tmp_path_factory.mktemp("damaged")
    out = []
    for k, (name, rel, how, arg) in enumerate(NAMED_CASES + _random_cases(rng)):
        root = base / f"{k:03d}-{name}"
        shutil.copytree(DATA / name, root)
        _damage(root / rel, how, arg, rng)
        out.append({"case": f"{k:03d} {name}: {rel} {how}", "root": str(root), "rel": rel})
    return out


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


# One threaded BLAS pool reserves address space per core: one thread keeps the child's use
# below the limit on machines with many cores.
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

# The child: `numaprobe topology --root ROOT` for each root on stdin, one JSON line each.
LOOP = """
import contextlib, io, json, sys
from numaprobe import cli
for root in sys.stdin.read().split("\\n"):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(["topology", "--root", root])
        except SystemExit as e:
            rc = e.code
        except BaseException as e:
            rc = f"{type(e).__name__} escaped main"
    print(json.dumps({"root": root, "rc": rc, "stdout": out.getvalue(),
                      "stderr": err.getvalue()}), flush=True)
"""


def _problems(case: dict, rc, stdout: str, stderr: str) -> list[str]:
    """What is wrong with how the command line met a damaged tree ([] if nothing)."""
    if "Traceback" in stderr or rc not in (0, 2):
        return [f"exit {rc}: {stderr.strip()[-600:]}"]
    if rc == 0:
        return [] if stdout.strip() else ["exit 0 and nothing on stdout"]
    lines = stderr.splitlines()
    if len(lines) != 1:
        return [f"exit 2 with {len(lines)} lines on stderr: {stderr[-600:]}"]
    line = lines[0]
    if not line.startswith("numaprobe: ") or len(line) < len("numaprobe: ") + 10:
        return [f"exit 2 without a message: {line!r}"]
    if case["rel"] not in line:
        return [f"exit 2 without naming {case['rel']}: {line}"]
    return []


def test_a_damaged_tree_is_read_or_refused_naming_the_file(damaged):
    r = subprocess.run([sys.executable, "-c", LOOP], input="\n".join(c["root"] for c in damaged),
                       capture_output=True, text=True, timeout=600, preexec_fn=_limited, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    got = {d["root"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert len(got) == len(damaged)
    problems = [f"{c['case']}: {p}" for c in damaged
                for p in _problems(c, got[c["root"]]["rc"], got[c["root"]]["stdout"],
                                   got[c["root"]]["stderr"])]
    assert not problems, "\n".join(problems)
    refused = [c for c in damaged if got[c["root"]]["rc"] == 2]
    # Both outcomes occur, and every named case that cannot be read is refused.
    assert refused and len(refused) < len(damaged)
    assert all(got[damaged[k]["root"]]["rc"] == 2 for k in CLI_CASES)


@pytest.mark.parametrize("k", CLI_CASES)
def test_the_command_line_refuses_a_damaged_tree_in_one_line(damaged, k):
    case = damaged[k]
    r = subprocess.run([sys.executable, "-m", "numaprobe", "topology", "--root", case["root"]],
                       capture_output=True, text=True, timeout=120, preexec_fn=_limited, env=ENV)
    assert r.returncode == 2 and not _problems(case, r.returncode, r.stdout, r.stderr), r.stderr


def test_a_widest_list_stays_within_memory(damaged):
    """node/online "0-1048575" (the widest list there is) is refused at the first node that
    has no directory, not read as a million nodes."""
    case = damaged[2]
    with pytest.raises(UsageError, match=r"node/online: lists node 2, which has no directory"):
        topology.read(case["root"])


# ------------------------------------------------------------------- nodes that are not there

def test_distance_to_a_node_that_is_not_there_names_the_nodes():
    t = topology.read(DATA / "two-socket-smt")
    for a, b in ((0, 9), (9, 0)):
        with pytest.raises(UsageError, match=r"^there is no node 9; nodes: 0-1$"):
            t.distance(a, b)
    with pytest.raises(UsageError, match=r"^there is no node 9; nodes: 0-1$"):
        t.node(9)
    assert t.distance(1, 0) == 21


def test_a_document_whose_distances_do_not_match_its_nodes_is_refused():
    d = topology.read(DATA / "two-socket-smt").to_dict()
    d["nodes"][1]["distances"] = [21]
    with pytest.raises(UsageError, match=r"node 1 has 1 distance\(s\) for 2 node\(s\)"):
        topology.Topology.from_dict(d)
