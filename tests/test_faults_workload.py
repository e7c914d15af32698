"""Hostile input and faults in the inference workload: layout files of any shape refused
naming the file and the field, absurd layout names, a damaged cached model built again, a
layout its node cannot hold refused before it starts, arguments that would overflow refused
before any worker starts, and Ctrl-C during start-up that returns at once with no worker left.
"""
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import psutil
import pytest
from conftest import workers_alive

import numaprobe
from numaprobe import topology
from numaprobe.errors import NotEnoughMemory, UsageError
from numaprobe.workload import driver, infer, models
from numaprobe.workload.infer import run_infer
from numaprobe.workload.layout import Instance, Layout, parse_layout

TREES = Path(__file__).parent / "data" / "sysfs"
TWO_SOCKETS = numaprobe.read_topology(TREES / "two-socket-smt")


# ------------------------------------------------------------------------ layout files

def _layout_file(tmp_path, data, name="L.json") -> Path:
    f = tmp_path / name
    if isinstance(data, bytes):
        f.write_bytes(data)
    else:
        f.write_text(data if isinstance(data, str) else json.dumps(data))
    return f


@pytest.mark.parametrize("data, where, allowed", [
    ({"instances": [1]}, "instances/0", "must be a table of instance settings"),
    ({"instances": [[[]]]}, "instances/0", "must be a table of instance settings"),
    ({"instances": [{"cpus": "0", "intra": None}]}, "instances/0/intra",
     "must be a whole number >= 0 (0: ONNX Runtime's default), got null"),
    ({"instances": [{"cpus": "0", "intra": "x"}]}, "instances/0/intra",
     'must be a whole number >= 0 (0: ONNX Runtime\'s default), got "x"'),
    ({"instances": [{"cpus": "0", "intra": 1.5}]}, "instances/0/intra", "got 1.5"),
    ({"instances": [{"cpus": "0", "intra": True}]}, "instances/0/intra", "got true"),
    ({"instances": [{"cpus": "0", "inter": 0}]}, "instances/0/inter",
     "must be a whole number >= 1, got 0"),
    ({"instances": [{"cpus": "0", "spin": "yes"}]}, "instances/0/spin",
     'must be true or false, got "yes"'),
    ({"instances": [{"cpus": "0", "pin": 1}]}, "instances/0/pin", "must be true or false"),
    ({"instances": [{"cpus": "0", "policy": 3}]}, "instances/0/policy",
     "must be one of bind, preferred, interleave"),
    ({"instances": [{"cpus": "0", "policy": "fast"}]}, "instances/0/policy", 'got "fast"'),
    ({"instances": [{"cpus": None}]}, "instances/0/cpus",
     'must be a CPU list: a string such as "0-3,8"'),
    ({"instances": [{"cpus": [0, "1"]}]}, "instances/0/cpus", "a list of CPU numbers"),
    ({"instances": [{"cpus": [0, -1]}]}, "instances/0/cpus", "a list of CPU numbers"),
    ({"instances": [{"cpus": {"a": 1}}]}, "instances/0/cpus", "must be a CPU list"),
    ({"instances": [{"cpus": []}]}, "instances/0/cpus", "must be at least one CPU, got []"),
    ({"instances": [{"cpus": "x"}]}, "instances/0/cpus", "cannot read 'x'"),
    ({"instances": [{"cpus": "0-999999999"}]}, "instances/0/cpus", "no machine has that many"),
    ({"instances": [{"cpus": "0", "nodes": None}]}, "instances/0/nodes",
     "must be a node list"),
    ({"instances": [{"cpus": "0"}, {"cpus": "1", "nodes": [[0]]}]}, "instances/1/nodes",
     "must be a node list"),
    ({"instances": [{"cpus": "0", "speed": 9}]}, "instances/0", "unknown key(s) speed; keys: cpus"),
    ({"instances": [{"intra": 1}]}, "instances/0", "'cpus' is required"),
    ({"instances": []}, "instances", "must be a non-empty list of instances, got []"),
    ({"instances": {"cpus": "0"}}, "instances", "must be a non-empty list"),
    ({"name": "x"}, "instances", "must be a non-empty list of instances, got null"),
    ({"instances": [{"cpus": "0"}], "name": None}, "name", "must be a non-empty string, got null"),
    ({"instances": [{"cpus": "0"}], "name": 3}, "name", "must be a non-empty string"),
    ({"instances": [{"cpus": "0"}], "nmae": "x"}, "", "unknown key(s) nmae; keys: name, instances"),
    ([1], "", "must be a table with a list 'instances', got [1]"),
    ("null", "", "must be a table with a list 'instances', got null"),
    # What the machine cannot hold names the field too.
    ({"instances": [{"cpus": "99"}]}, "instances/0/cpus", "CPU 99 does not exist"),
    ({"instances": [{"cpus": "99", "policy": "bind"}]}, "instances/0/cpus", "no CPU 99"),
    ({"instances": [{"cpus": "0", "nodes": "5"}]}, "instances/0/nodes", "node 5 does not exist"),
    ({"instances": [{"cpus": "0", "nodes": "0-1", "policy": "preferred"}]}, "instances/0/nodes",
     "preferred takes one node, got 0-1"),
    ({"instances": [{"cpus": "0", "intra": 4}]}, "instances/0/intra",
     "4 threads on 1 CPU(s) (0): oversubscribed"),
])
def test_a_bad_layout_file_names_the_file_the_field_and_what_is_allowed(
        tmp_path, data, where, allowed):
    f = _layout_file(tmp_path, data)
    with pytest.raises(UsageError) as e:
        parse_layout(str(f), TWO_SOCKETS)
    prefix = f"layout file {f}: " + (f"{where}: " if where else "")
    assert str(e.value).startswith(prefix) and allowed in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content, why", [
    (b'{"instances": [{"cpus": "\xff"}]}', "is not UTF-8 text"),
    ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
])
def test_a_layout_file_that_does_not_parse_is_named(tmp_path, content, why):
    f = _layout_file(tmp_path, content)
    with pytest.raises(UsageError, match=f"layout file {f} {why}"):
        parse_layout(str(f), TWO_SOCKETS)


def test_a_bad_toml_layout_names_the_field(tmp_path):
    f = _layout_file(tmp_path, '[[instances]]\ncpus = "0"\nintra = 1979-05-27\n', "L.toml")
    with pytest.raises(UsageError, match=rf"layout file {f}: instances/0/intra: must be a whole "
                                         r"number >= 0 .*, got datetime\.date\(1979, 5, 27\)"):
        parse_layout(str(f), TWO_SOCKETS)


def test_valid_layout_files_read_as_before(tmp_path):
    f = _layout_file(tmp_path, {"name": "mine", "instances": [
        {"cpus": "0-1", "intra": 2},
        {"cpus": [3, 2], "nodes": "1", "spin": False},
        {"cpus": 4, "policy": "interleave", "nodes": [0, 1], "inter": 2, "pin": False},
        {"cpus": "5", "policy": None, "intra": 0}]})
    layout = parse_layout(str(f), TWO_SOCKETS)
    assert layout.name == "mine"
    assert layout.instances == (
        Instance(cpus=(0, 1), policy=None, nodes=(), intra=2),
        Instance(cpus=(2, 3), policy="bind", nodes=(1,), intra=2, spin=False),
        Instance(cpus=(4,), policy="interleave", nodes=(0, 1), intra=1, inter=2, pin=False),
        Instance(cpus=(5,), policy=None, nodes=(), intra=0))
    toml = _layout_file(tmp_path, '[[instances]]\ncpus = "8-9"\npolicy = "bind"\n', "T.toml")
    only = parse_layout(str(toml), TWO_SOCKETS, spin=False)
    assert only.name == "T" and only.instances == (
        Instance(cpus=(8, 9), policy="bind", nodes=(1,), intra=2, spin=False),)


def test_absurd_layout_names_are_refused_in_one_line():
    for spec, match in [("9" * 5000 + "x1", "is more than any machine has"),
                        ("1x" + "9" * 5000, "is more than any machine has"),
                        ("cores-per-instance=" + "9" * 5000, "is more than any machine has"),
                        ("99999999999x1", "'99999999999x1': 99999999999 is more than any machine"),
                        ("1048576x1", "needs 1048576 CPUs in groups of 1"),
                        ("cores-per-instance=0", "needs K >= 1"),
                        ("\u0661x\u0661", "unknown layout"),  # Arabic-Indic digits: not a count
                        ("2x1@0-99999999999", "no machine has that many")]:
        with pytest.raises(UsageError, match=match) as e:
            parse_layout(spec, TWO_SOCKETS)
        assert "\n" not in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(UsageError, match="a layout is a name or a file path, got 3"):
        parse_layout(3, TWO_SOCKETS)


# ------------------------------------------------------------------------ cached models

def test_a_damaged_cached_model_is_built_again(tmp_path, capsys):
    ref = models.resolve("conv", cache_dir=str(tmp_path))
    whole = models.build_conv(0).SerializeToString()
    data = Path(ref.path).read_bytes()
    assert data == whole
    Path(ref.path).write_bytes(data[:len(data) // 2])  # cut in half, as a full disk leaves it
    again = models.resolve("conv", cache_dir=str(tmp_path))
    assert Path(again.path).read_bytes() == whole and again == ref
    onnx.checker.check_model(again.path)
    assert [p.name for p in tmp_path.iterdir()] == [Path(ref.path).name]  # nothing left over
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and Path(ref.path).name in said[0] and "damaged" in said[0]
    models.resolve("conv", cache_dir=str(tmp_path))  # an intact file is used as it is
    assert capsys.readouterr().err == ""


def test_a_flipped_byte_in_a_cached_model_is_built_again(tmp_path):
    ref = models.resolve("conv", cache_dir=str(tmp_path))
    data = bytearray(Path(ref.path).read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a weight: still a valid protobuf
    Path(ref.path).write_bytes(bytes(data))
    again = models.resolve("conv", cache_dir=str(tmp_path))
    assert Path(again.path).read_bytes() == models.build_conv(0).SerializeToString()


# ---------------------------------------------------------------- memory of the layout

class Started(Exception):
    """Raised by a stand-in driver: the run got as far as starting workers."""


def _no_workers(*args, **kwargs):
    raise Started


def test_a_layout_its_node_cannot_hold_is_refused_with_the_figures(tiny_model, monkeypatch):
    monkeypatch.setattr(driver, "run_layout", _no_workers)
    monkeypatch.setattr(topology.Topology, "free_bytes", lambda self, node: 20 * 2**30)
    big = models.ModelRef("big", tiny_model, "file", "a 1 GiB model", 2**30)
    layout = parse_layout("cores-per-instance=1", TWO_SOCKETS)  # 8 instances on each node
    assert sum(1 for i in layout.instances if i.nodes == (0,)) == 8
    with pytest.raises(NotEnoughMemory) as e:
        run_infer(big, [layout], duration=1.0, rounds=1, topology=TWO_SOCKETS, progress=False)
    assert str(e.value) == (
        "layout cores-per-instance=1 needs 24 GiB on node 0: 8 instance(s) x 3 GiB, 3 x the "
        "model's 1 GiB each at least; node 0 has 20 GiB available (use fewer instances, or "
        "--force to run it)")
    with pytest.raises(Started):  # forced, or small enough: it starts
        run_infer(big, [layout], duration=1.0, rounds=1, topology=TWO_SOCKETS, progress=False,
                  force=True)
    with pytest.raises(Started):
        run_infer(big, [parse_layout("2x8", TWO_SOCKETS)], duration=1.0, rounds=1,
                  topology=TWO_SOCKETS, progress=False)


def test_interleaved_memory_counts_a_share_on_each_node(tiny_model, monkeypatch):
    monkeypatch.setattr(topology.Topology, "free_bytes",
                        lambda self, node: 2 * 2**30 if node == 1 else 64 * 2**30)
    big = models.ModelRef("big", tiny_model, "file", "a 1 GiB model", 2**30)
    shared = Layout("shared", tuple(Instance(cpus=(c,), policy="interleave", nodes=(0, 1),
                                             intra=1) for c in (0, 1)))
    # One interleaved instance puts 1.5 GiB on node 1: it fits; two need 3 GiB there.
    infer.check_memory(big, [parse_layout("interleave", TWO_SOCKETS)], TWO_SOCKETS)
    with pytest.raises(NotEnoughMemory, match=r"^layout shared needs 3 GiB on node 1: 2 "
                                              r"instance\(s\) x 3 GiB \(a share of each on this "
                                              r"node\), .* node 1 has 2 GiB available"):
        infer.check_memory(big, [parse_layout("interleave", TWO_SOCKETS), shared], TWO_SOCKETS)


# ------------------------------------------------------------- arguments of a run

@pytest.mark.parametrize("kwargs, match", [
    ({"duration": math.inf}, "duration must be a number of seconds > 0"),
    ({"duration": math.nan}, "duration must be a number of seconds > 0"),
    ({"duration": "3"}, "duration must be"),
    ({"duration": 1e300}, "at most 86400"),
    ({"warmup": -1}, "warmup must be a whole number of inferences >= 0, got -1"),
    ({"warmup": 1.5}, "warmup must be a whole number"),
    ({"warmup": True}, "warmup must be a whole number"),
    ({"rate": math.inf}, "rate must be a number of inferences per second > 0"),
    ({"rate": 0}, "rate must be"),
    ({"rate": math.nan, "mode": "poisson"}, "rate must be"),
    ({"rounds": 0}, "rounds must be a whole number >= 1, got 0"),
    ({"rounds": 2.5}, "rounds must be a whole number >= 1"),
    ({"max_rounds": 0, "target_effect": 0.05}, "max_rounds must be a whole number >= 1"),
    ({"target_effect": math.nan}, "target_effect is a fraction"),
    ({"max_noise": math.inf}, "max_noise is a fraction"),
])
def test_run_infer_refuses_what_it_cannot_run_before_any_worker_starts(
        tiny_model, monkeypatch, kwargs, match):
    monkeypatch.setattr(driver, "_spawn", _no_workers)
    ref = models.resolve(tiny_model)
    layouts = [parse_layout("1x1", TWO_SOCKETS), parse_layout("2x1", TWO_SOCKETS)]
    with pytest.raises(UsageError, match=match):
        run_infer(ref, layouts, **{"duration": 1.0, "rounds": 1, "topology": TWO_SOCKETS,
                                   "progress": False, **kwargs})


def test_run_layout_refuses_an_infinite_window_before_any_worker_starts(tiny_model, monkeypatch):
    monkeypatch.setattr(driver, "_spawn", _no_workers)
    for kwargs in ({"duration": math.inf}, {"rate": math.inf}, {"warmup": -1}):
        with pytest.raises(UsageError):
            driver.run_layout(tiny_model, parse_layout("1x1", TWO_SOCKETS), topology=TWO_SOCKETS,
                              **{"duration": 1.0, **kwargs})


def test_ctrl_c_between_layouts_still_carries_the_document(tiny_model, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if it came while the progress line was drawn
    monkeypatch.setattr(driver, "run_layout", interrupted)
    try:
        run_infer(models.resolve(tiny_model), [parse_layout("1x1", TWO_SOCKETS)], duration=1.0,
                  rounds=1, topology=TWO_SOCKETS, progress=False)
    except KeyboardInterrupt as e:
        caught = e
    assert isinstance(caught, driver.Interrupted)
    assert caught.document["partial"] and caught.document["error"] == "interrupted (Ctrl-C)"


# ---------------------------------------------------------------- Ctrl-C at start-up

# run_infer with workers kept in their warm-up (ten million inferences): a Ctrl-C lands while
# they start, before any is ready. The driver then says which of its children are left.
_INFER = """
import json, sys
import psutil
from numaprobe.topology import read
from numaprobe.workload import driver, models
from numaprobe.workload.infer import run_infer
from numaprobe.workload.layout import parse_layout
topo = read()
ref = models.resolve(sys.argv[1])
print("starting", flush=True)
try:
    run_infer(ref, [parse_layout("cores-per-instance=1", topo)], duration=30.0, rounds=1,
              warmup=10**7, topology=topo, progress=False)
except driver.Interrupted as e:
    left = [p.pid for p in psutil.Process().children(recursive=True)]
    print(json.dumps({"measured": bool(e.document["layouts"]), "left": left}), flush=True)
"""


def test_ctrl_c_while_workers_start_returns_at_once_and_leaves_none(tiny_model):
    p = subprocess.Popen([sys.executable, "-c", _INFER, tiny_model], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "starting"
        driver_process = psutil.Process(p.pid)
        deadline = time.monotonic() + 60
        while not driver_process.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = driver_process.children()
        assert workers
        time.sleep(0.5)  # the workers are importing ONNX Runtime or warming up
        p.send_signal(signal.SIGINT)
        # Generous: this checks that the driver does not wait for the workers to get ready
        # (it used to wait 10 s, then 5 more, then kill them), not how fast it is.
        stdout, stderr = p.communicate(timeout=8)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, stderr
    assert json.loads(stdout) == {"measured": False, "left": []}
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive and not workers_alive()
