"""Hostile input and faults: an absurd list is refused before it is expanded, a bad value is
one line naming the option, API misuse is refused rather than guessed at, a terminated or
killed driver leaves no worker behind and keeps what was measured, and -o never replaces what
is not a regular file of ours, nor loses the document when the write fails."""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import workers_alive

import numaprobe
from numaprobe import results, topology
from numaprobe.errors import UsageError

DATA = Path(__file__).parent / "data" / "sysfs"


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "numaprobe", *args], capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------ absurd lists

def test_an_absurd_list_is_refused_before_it_is_expanded():
    tracemalloc.start()
    with pytest.raises(UsageError, match=r"'0-999999999' .* names id 999999999; no machine"):
        numaprobe.parse_list("0-999999999")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # refused, not built (it used to take 24 GB)
    assert numaprobe.parse_list(f"0-{topology.MAX_ID - 1}:{topology.MAX_ID // 4}") == (
        0, 262144, 524288, 786432)


def test_an_absurd_cpu_list_on_the_command_line_is_one_line():
    r = cli("c2c", "--cpus", "0-999999999", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "no machine has that many" in r.stderr


def test_an_absurd_sysfs_file_is_named(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "two-socket-smt", tree)
    (tree / "sys/devices/system/cpu/possible").write_text("0-99999999999\n")
    with pytest.raises(UsageError, match=r"sys/devices/system/cpu/possible: '0-99999999999'"):
        topology.read(tree)
    r = cli("topology", "--root", str(tree))
    assert r.returncode == 2 and "cpu/possible" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------------- -o

def test_output_to_a_device_writes_through_it(tmp_path):
    before = os.stat("/dev/null")
    results.write({"x": 1}, "/dev/null")
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev,
                                                            before.st_ino)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    results.write({"x": 2}, fifo)
    assert json.loads(reader.communicate(timeout=30)[0]) == {"x": 2}
    assert fifo.is_fifo()


def test_output_to_a_symlink_writes_its_target(tmp_path):
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    results.write({"x": 3}, link)
    assert link.is_symlink() and json.loads(target.read_text()) == {"x": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "target.json"]


def test_bad_output_paths_are_refused_before_measuring(tmp_path):
    for path, what in ((tmp_path, "is a directory"),
                       (tmp_path / "missing" / "x.json", "does not exist")):
        t0 = time.monotonic()
        r = cli("latency", "--size", "64M", "-q", "-o", str(path))
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr
        assert time.monotonic() - t0 < 30  # refused up front: a 64 MiB latency run never began
    r = cli("report", "--html", str(tmp_path), str(tmp_path / "none.json"))
    assert r.returncode == 2 and "is a directory" in r.stderr
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "doc.json"

    def full(self, *a, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError, match="No space left"):
        results.write({"x": 4}, target)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------- a driver that is stopped

def _start_infer(tiny_model, out):
    p = subprocess.Popen([sys.executable, "-m", "numaprobe", "infer", "--model", tiny_model,
                          "--layouts", "cores-per-instance=1", "--duration", "30", "--rounds",
                          "1", "-q", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not workers_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(6)  # past start-up and warm-up: measuring
    return p


def test_sigterm_stops_the_workers_and_keeps_what_was_measured(tiny_model, tmp_path):
    out = tmp_path / "partial.json"
    p = _start_infer(tiny_model, out)
    workers = workers_alive()
    assert workers
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, stderr
    doc = results.load(out)["result"]
    assert doc["partial"] and doc["layouts"][0]["latency"]["count"] > 0
    assert "Traceback" not in stderr
    gone, alive = psutil.wait_procs(workers, timeout=10)  # orphans too: they were ours
    assert not alive and not workers_alive()


def test_a_killed_driver_takes_its_workers_with_it(tiny_model, tmp_path):
    p = _start_infer(tiny_model, tmp_path / "never.json")
    workers = workers_alive()
    assert workers
    p.kill()  # SIGKILL: no handler runs in the driver
    p.communicate(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"orphaned workers: {[w.pid for w in alive]}"


# ------------------------------------------------- bad values: one line, exit 2, no traceback

NINES = "9" * 310
BAD_OPTIONS = [
    (["latency", "--size", NINES], "--size", "over 1 PiB"),
    (["latency", "--size", "9" * 300 + "G"], "--size", "over 1 PiB"),
    (["latency", "--size", "0"], "--size", "below 1 byte"),
    (["bandwidth", "--size", "2P"], "--size", "over 1 PiB"),
    (["clock", "--window", "inf"], "--window", "from 1 to 60000 ms"),
    (["clock", "--window", "1e30"], "--window", "from 1 to 60000 ms"),
    (["clock", "--window", "nan"], "--window", "got 'nan'"),
    (["infer", "--duration", "inf"], "--duration", "above 0 and up to 3600 s"),
    (["infer", "--rounds", "0"], "--rounds", "from 1 to 1000"),
    (["infer", "--rounds", "-1"], "--rounds", "from 1 to 1000"),
    (["infer", "--layouts", ","], "--layouts", "empty"),
    (["infer", "--rate", "nan", "--mode", "poisson"], "--rate", "above 0"),
    (["sweep", "--rounds", "0"], "--rounds", "from 1 to 1000"),
    (["compare", "--min-effect", "nan", "a.json"], "--min-effect", "from 0 to 99 %"),
    (["compare", "--min-effect", "-50", "a.json"], "--min-effect", "from 0 to 99 %"),
    (["loaded-latency", "--samples", "-1"], "--samples", "from 1 to 10000"),
    (["latency", "--repeat", "100000000"], "--repeat", "from 1 to 100"),
    (["c2c", "--node", "-1"], "--node", "whole number"),
    (["run", "-C", "", "true"], "-C", "empty"),
    (["run", "-m", " ", "true"], "--membind", "empty"),
]


@pytest.mark.parametrize("argv,option,why", BAD_OPTIONS, ids=lambda x: " ".join(x)[:40]
                         if isinstance(x, list) else None)
def test_a_bad_value_is_one_line_naming_the_option(argv, option, why):
    r = cli(*argv, "-q") if argv[0] not in ("run", "compare", "clock") else cli(*argv)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert option in r.stderr and why in r.stderr, r.stderr
    assert len(r.stderr) < 400  # a 310-digit value is shortened, not echoed


# ------------------------------------------------------------------ Python API misuse

def test_pin_reads_a_list_text_and_refuses_what_is_not_a_cpu_id(topo):
    last = topo.usable_cpus[-1]
    assert numaprobe.placement.check_cpus(str(last)) == (last,)  # not its digits one by one
    assert numaprobe.placement.check_cpus(np.int64(last)) == (last,)
    for bad in ([1.7], [True], 0.9, None, [[0]]):
        with pytest.raises(UsageError, match="whole number"):
            numaprobe.pin(bad)


def test_alloc_takes_numpy_sizes_and_refuses_a_fractional_node(topo):
    with numaprobe.alloc(np.int64(4096)) as m:
        assert m.nbytes >= 4096
    with pytest.raises(UsageError, match="whole number"):
        numaprobe.alloc(4096, node=topo.usable_mems[0] + 0.9)
    with pytest.raises(UsageError, match="whole number of bytes"):
        numaprobe.alloc(4096.5)


def test_an_exception_in_an_alloc_block_is_not_hidden_by_a_live_view():
    with pytest.raises(RuntimeError, match="the one that matters") as caught:
        with numaprobe.alloc(1 << 20) as m:
            view = np.frombuffer(m, dtype=np.uint8)
            raise RuntimeError("the one that matters")
    assert "stays mapped until its last view is gone" in caught.value.__notes__[0]
    assert not m.closed
    del view
    m.close()
    assert m.closed


# ------------------------------------------------------ a write that fails loses nothing

def test_a_failed_write_saves_the_document_elsewhere_and_says_where():
    r = cli("topology", "-o", "/dev/full")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    m = re.search(r"could not write /dev/full: No space left on device; the document was "
                  r"saved to (\S+) instead", r.stderr)
    assert m, r.stderr
    try:
        assert results.load(m.group(1))["kind"] == "topology"
    finally:
        os.unlink(m.group(1))


def test_when_no_file_can_be_written_the_document_goes_to_stdout(tmp_path):
    def limit():  # every file this process writes stops at 1000 bytes (a full quota)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    before = set(Path(tempfile.gettempdir()).glob("numaprobe-topology-*"))
    r = subprocess.run([sys.executable, "-m", "numaprobe", "topology", "-o",
                        str(tmp_path / "t.json")], capture_output=True, text=True,
                       preexec_fn=limit, timeout=60)
    assert r.returncode == 1 and "printed as JSON on stdout" in r.stderr, r.stderr
    assert json.loads(r.stdout)["kind"] == "topology"
    assert list(tmp_path.iterdir()) == []  # no truncated temporary file left
    assert set(Path(tempfile.gettempdir()).glob("numaprobe-topology-*")) == before


# ------------------------------------------------- Ctrl-C under --repeat keeps the runs

def test_ctrl_c_under_repeat_keeps_the_finished_runs(tmp_path, monkeypatch, topo):
    from numaprobe import cli as cli_module, probes
    real, calls = probes.latency_matrix, []

    def two_then_ctrl_c(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(probes, "latency_matrix", two_then_ctrl_c)
    out = tmp_path / "partial.json"
    rc = cli_module.main(["latency", "--size", "4M", "--samples", "2", "--repeat", "5", "-q",
                          "--cpu-nodes", str(topo.cpu_nodes[0]), "-o", str(out)])
    assert rc == 128 + signal.SIGINT
    doc = results.load(out)
    assert any(w.startswith("partial: interrupted after 2 of 5 runs") for w in doc["warnings"])
    assert doc["result"]["cells"], "the two finished runs are in the document"


def test_ctrl_c_in_the_first_run_of_repeat_is_an_interrupt():
    from numaprobe import probes

    def ctrl_c():
        raise KeyboardInterrupt
    with pytest.raises(probes.Interrupted) as caught:
        probes.repeat(ctrl_c, 3)
    assert caught.value.result is None and caught.value.done == 0
