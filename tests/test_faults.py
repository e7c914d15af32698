"""Hostile input and faults (the severe ones): an absurd list is refused before it is expanded,
a terminated or killed driver leaves no worker behind and keeps what was measured, and -o
never replaces what is not a regular file of ours."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import numaprobe
from numaprobe import results, topology
from numaprobe.errors import UsageError

DATA = Path(__file__).parent / "data" / "sysfs"


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "numaprobe", *args], capture_output=True,
                          text=True, timeout=timeout)


def workers_alive():
    return [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and "numaprobe.workload.worker" in " ".join(p.info["cmdline"])]


# ------------------------------------------------------------------------ absurd lists

def test_an_absurd_list_is_refused_before_it_is_expanded():
    t0 = time.process_time()
    with pytest.raises(UsageError, match=r"'0-999999999' .* names id 999999999; no machine"):
        numaprobe.parse_list("0-999999999")
    assert time.process_time() - t0 < 1.0  # refused, not built (it used to take 24 GB)
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
    assert workers_alive()
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, stderr
    doc = results.load(out)["result"]
    assert doc["partial"] and doc["layouts"][0]["latency"]["count"] > 0
    assert "Traceback" not in stderr and not workers_alive()


def test_a_killed_driver_takes_its_workers_with_it(tiny_model, tmp_path):
    p = _start_infer(tiny_model, tmp_path / "never.json")
    workers = workers_alive()
    assert workers
    p.kill()  # SIGKILL: no handler runs in the driver
    p.communicate(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"orphaned workers: {[w.pid for w in alive]}"
